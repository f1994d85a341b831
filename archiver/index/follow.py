"""Keeping a collection's own replay index (zipnum or Redis, named in config.yaml) in step.

`index.cdxj` is always the collection's index; `archiver index --zipnum/--redis` gives replay a copy
of it elsewhere (zipnum.py, redis.py, pywbconfig.py). Capture and index update that copy too
whenever they change `index.cdxj`, so replay never lags behind the archive.
"""

from __future__ import annotations

from archiver.collection import Collection
from archiver.errors import ReplayIndexError
from archiver.index.pywbconfig import collection_index
from archiver.index.redis import load_into, parse_redis_url
from archiver.index.zipnum import pywb_index, write_zipnum, zipnum_dir


def follow_cdxj(collection: Collection) -> str:
    """Rebuild the collection's configured replay index from its `index.cdxj`; the caller holds the
    collection's lock. Returns what was updated ("" when replay reads `indexes/` itself)."""
    index = collection_index(collection.root, collection.name)
    if not index or not collection.cdxj_path.exists():
        return ""
    if index == pywb_index(collection):
        report = write_zipnum(collection.cdxj_path, zipnum_dir(collection))
        return f"zipnum index: {report.lines} lines"
    if index.startswith("redis://"):
        target = parse_redis_url(index, collection.name)
        lines, _ = load_into(target, collection.cdxj_path)
        return f"Redis index {target.display}: {lines} lines"
    raise ReplayIndexError(f"config.yaml gives collection {collection.name!r} the index {index!r}, which "
                           "archiver does not maintain: update it yourself after each capture")
