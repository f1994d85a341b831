"""`archiver history`: every version and check of one article, and what changed between versions."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from archiver.collection import Collection
from archiver.config import Config
from archiver.errors import UsageError
from archiver.extract.versions import diff as versions_diff
from archiver.index.metadata import Store
from archiver.index.reader import page_at
from archiver.index.versions import Check, Version, checks_of, versions_of

# the versions a diff compares: those with a page to read (a removal has none of the article's)
_WITH_TEXT = frozenset({"captured", "edited", "restored"})


@dataclass(frozen=True)
class Change:
    """The diff of title and main text from one version to a later one ("" when the reader reads the same)."""

    before: int
    after: int
    diff: str


@dataclass(frozen=True)
class History:
    url: str
    versions: list[Version]
    checks: list[Check]  # the capture and every check after it, in time order
    changes: list[Change] = field(default_factory=list)  # with diff=True


def history(cfg: Config, url: str, diff: bool = False) -> History:
    """The versions and checks of `url` in the collection; with `diff`, what changed between each
    version that has the article's text and the next one (read back from the WARC files)."""
    collection = Collection.of(cfg)
    if not collection.db_path.exists():
        raise UsageError(f"collection {collection.name!r} has no metadata index: run 'archiver index'")
    with Store(collection.db_path, readonly=True) as store:
        if store.get(url) is None:
            raise UsageError(f"{url} is not in collection {collection.name!r}")
        versions, checks = versions_of(store.db, url), checks_of(store.db, url)
    found = History(url, versions, checks)
    if diff:
        readable = [v for v in versions if v.kind in _WITH_TEXT]
        texts = {v.version: _text(collection, v) for v in readable}
        for before, after in itertools.pairwise(readable):
            (old_title, old_text), (new_title, new_text) = texts[before.version], texts[after.version]
            found.changes.append(Change(before.version, after.version, versions_diff(
                old_title, old_text, new_title, new_text, f"version {before.version} ({before.first_seen})",
                f"version {after.version} ({after.first_seen})")))
    return found


def _text(collection: Collection, version: Version) -> tuple[str, str]:
    path = collection.archive_dir / version.warc_file
    if version.warc_offset is None or not path.is_file():
        raise UsageError(f"{version.warc_file} (version {version.version}) is not in {collection.archive_dir}: "
                         "history --diff reads the WARC files of a local collection")
    page = page_at(path, version.warc_offset, version.url)
    return (page.title, page.reading) if page is not None else ("", "")
