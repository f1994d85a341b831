"""What each collection holds: seeds captured and failed, WARC files, last capture, leftovers.

It only reads (nothing is mended or rebuilt), so it is safe to run while a capture is writing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from archiver.collection import Collection, collection_names
from archiver.config import Config
from archiver.errors import UsageError
from archiver.index.links import Totals, totals
from archiver.index.metadata import LISTING_TIMES, Store
from archiver.storage import LocalStorage, collection_storage, warc_sizes


@dataclass(frozen=True)
class CollectionStatus:
    name: str
    seeds: int = 0
    captured: int = 0
    failed: int = 0
    failed_by_reason: dict[str, int] = field(default_factory=dict)
    warc_files: int = 0
    warc_bytes: int = 0
    unindexed_files: int = 0  # complete WARC files the metadata index has not read yet
    last_capture_time: str | None = None  # latest capture_time, attempts that failed included
    open_files: list[str] = field(default_factory=list)  # *.open: being written, or left by a killed run
    has_index: bool = False
    search_pending: int = 0  # captured articles whose text the next `archiver search` indexes first
    requisites: Totals = field(default_factory=Totals)  # what the pages needed, and what sharing saved


@dataclass(frozen=True)
class StatusReport:
    root: str
    collections: list[CollectionStatus]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def status(cfg: Config, every: bool = False) -> StatusReport:
    """The state of `cfg.collection`, or with `every` of every collection under the root."""
    if not every:
        collection = Collection.of(cfg)
        if not collection.path.is_dir():
            raise UsageError(f"no collection {collection.name!r} under {cfg.root}")
        names = [collection.name]
    else:
        names = collection_names(cfg.root)
    return StatusReport(str(cfg.root), [collection_status(cfg, Collection.at(cfg.root, name)) for name in names])


def collection_status(cfg: Config, collection: Collection) -> CollectionStatus:
    storage = collection_storage(cfg, collection)
    files = warc_sizes(storage)  # in the archive/ folder, or in the bucket (`storage: s3://...`)
    open_files = [p.name for p in collection.open_files()] if isinstance(storage, LocalStorage) else []
    if not collection.db_path.exists():  # opening the Store would create an empty index
        return CollectionStatus(collection.name, warc_files=len(files), warc_bytes=sum(files.values()),
                                unindexed_files=len(files), open_files=open_files)
    with Store(collection.db_path, readonly=True) as store:
        db = store.db
        # each through an index, not a scan of the rows: status stays quick on millions of them
        seeds = int(db.execute("SELECT count(*) FROM articles").fetchone()[0])
        reasons = dict(db.execute(
            "SELECT error, count(*) FROM articles WHERE error > '' GROUP BY error ORDER BY error").fetchall())
        captured = seeds - sum(reasons.values())
        found = db.execute(f"SELECT {LISTING_TIMES['capture']} FROM articles WHERE ({LISTING_TIMES['capture']} "
                           f"IS NULL) = 0 ORDER BY {LISTING_TIMES['capture']} DESC LIMIT 1").fetchone()
        last = found[0] if found else None
        indexed = store.indexed_files()
        search_pending = store.pending_span()[0]
        requisites = totals(db)
    return CollectionStatus(
        name=collection.name,
        seeds=seeds,
        captured=captured,
        failed=seeds - captured,
        failed_by_reason=reasons,
        warc_files=len(files),
        warc_bytes=sum(files.values()),
        unindexed_files=sum(1 for name, size in files.items() if indexed.get(name) != size),
        last_capture_time=last,
        open_files=open_files,
        has_index=True,
        search_pending=search_pending,
        requisites=requisites,
    )
