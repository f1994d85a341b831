"""The metadata index: one SQLite file per collection, one row per seed.

It doubles as the capture journal: a row is written only after the seed's records are durable
on disk, and a rerun skips seeds whose row says captured. Everything in it can be rebuilt from
the WARC files alone (`archiver index`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from archiver.errors import ConfigError, DiskError, is_disk_error
from archiver.index import links, versions


@dataclass(frozen=True)
class Article:
    """One seed's row: the export format, field for field."""

    url: str
    title: str
    seed_timestamp: int | None
    seed_time: str
    page_title: str
    published: str
    capture_time: str
    status: int | None
    final_url: str
    lead_image_url: str
    lead_image_status: int | None  # HTTP status of the lead image's final response; None without one
    lead_image_error: str  # "" when the image was captured, else why not (http_404, timeout, ...), as `error`
    warc_file: str
    warc_offset: int | None
    warc_length: int | None
    payload_digest: str
    replay_path: str
    source: str
    error: str
    attempts: int | None  # requests made for the page's final URL (retries included)
    # the page's requisites (index/links.py), None when they were not looked for: those captured
    # (now or earlier, and fresh), those that failed, those left out (over a bound, a refused address)
    requisites: int | None = None
    requisites_failed: int | None = None
    requisites_skipped: int | None = None
    # its versions (index/versions.py): how many, the checks after the capture, when it was last
    # checked, last changed, first seen removed (while it stays removed), and is due to be checked
    versions: int | None = None
    checks: int | None = None
    last_checked: str = ""
    last_changed: str = ""
    removed_at: str = ""
    next_check: str = ""

    @property
    def captured(self) -> bool:
        return not self.error

    @property
    def search_title(self) -> str:
        """The title full-text search indexes: the page's own, else the feed's."""
        return self.page_title or self.title

    def row(self) -> tuple[object, ...]:
        """The values in FIELDS order. Not dataclasses.astuple, which deep-copies each value (a
        profile of capture found it among the largest costs)."""
        return tuple(getattr(self, name) for name in FIELDS)


FIELDS = tuple(f.name for f in fields(Article))


def check_of(article: Article, seen: versions.Seen) -> versions.Check:
    """The checks row of a capture or check (index/versions.py): where its records are, what it found."""
    return versions.Check(article.url, seen.date, seen.kind, article.status, article.error, article.final_url,
                          article.page_title, seen.text_digest, seen.text_length, seen.lead_digest,
                          article.payload_digest, article.warc_file, article.warc_offset, article.warc_length,
                          article.replay_path)

INTEGER_FIELDS = frozenset({"seed_timestamp", "status", "lead_image_status", "warc_offset", "warc_length",
                            "attempts", "requisites", "requisites_failed", "requisites_skipped", "versions",
                            "checks"})
# Bumped whenever the tables change. The index is derived data: on a mismatch it is dropped and
# rebuilt from the WARC files by the next capture or index run.
SCHEMA_VERSION = 7  # 5: lead_image_status an integer, lead_image_error; 6: requisites; 7: versions
_COLUMNS = ",\n    ".join(
    f"{name} {'INTEGER' if name in INTEGER_FIELDS else 'TEXT'}{' PRIMARY KEY' if name == 'url' else ''}"
    for name in FIELDS
)
# The orders of the collection page's listing (listing.py): name -> the column giving a row's time
# in that order. A row without one sorts after those with one; the URL breaks ties.
LISTING_ORDERS = {"seed": "seed_timestamp", "capture": "capture_time"}
# name -> that time in SQL, NULL when the row has none: the listing sorts by it, the indexes below
# are on it (SQLite uses an expression index only for the very same expression)
LISTING_TIMES = {order: f"NULLIF({column}, '')" for order, column in LISTING_ORDERS.items()}
_ORDER_FIELDS = tuple(dict.fromkeys(LISTING_ORDERS.values()))
_LISTING_INDEXES = "\n".join(
    f"CREATE INDEX IF NOT EXISTS articles_by_{order}_time ON articles ({time} IS NULL, {time}, url);"
    for order, time in LISTING_TIMES.items())

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS articles (
    {_COLUMNS}
);
CREATE TABLE IF NOT EXISTS warc_files (
    name TEXT PRIMARY KEY,
    size INTEGER NOT NULL
);
-- the collection page's listing reads the rows in these orders, from a page on (listing.py):
-- with these indexes that costs the rows read, not a sort of the whole table
{_LISTING_INDEXES}
-- `archiver status` counts the rows, and the failed ones by reason, through this small index
CREATE INDEX IF NOT EXISTS articles_by_error ON articles (error);
-- the first position (per listing order) a row changed since the collection page's listing was
-- written: its pages before it stay (listing.py). order_name '*': everything changed.
CREATE TABLE IF NOT EXISTS listing_changes (
    order_name TEXT PRIMARY KEY,
    untimed INTEGER NOT NULL,
    value,
    url TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS search_pending (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a text queued again sorts after a drain's end
    url TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    text TEXT NOT NULL
);
""" + links.SCHEMA + versions.SCHEMA


def readonly_uri(path: Path) -> str:
    """The SQLite URI that opens `path` read-only (for connect(uri=True) and ATTACH)."""
    return path.resolve().as_uri() + "?mode=ro"


def open_readonly(path: Path, version: int, what: str) -> sqlite3.Connection:
    """One of a collection's SQLite indexes, opened read-only (nothing is written, nothing of another
    version dropped: export, status, search, replay and verify read copies they may not change),
    checked to be of schema `version`; else ConfigError saying how to rebuild it. `what` names it."""
    try:
        try:
            db = sqlite3.connect(readonly_uri(path), uri=True, isolation_level=None)
            found = db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.OperationalError:
            # a read-only copy (a folder this user may not write): WAL mode wants to create its
            # -shm file even to read; `immutable` reads without it, as nobody writes such a copy
            db = sqlite3.connect(readonly_uri(path) + "&immutable=1", uri=True, isolation_level=None)
            found = db.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc} (run 'archiver index')") from exc
    if found != version:
        db.close()
        raise ConfigError(f"the {what} {path} is from another archiver version (schema {found}, not {version}): "
                          "run 'archiver index' to rebuild it from the WARC files")
    return db


ListingKey = tuple[int, Any, str]  # (untimed, time, url), as the listing sorts


def _before(a: ListingKey, b: ListingKey) -> bool:
    if a[0] != b[0]:
        return a[0] < b[0]
    if a[0] == 0 and a[1] != b[1]:
        return bool(a[1] < b[1])
    return a[2] < b[2]


class Store:
    """A connection to one collection's metadata index. Use from one thread."""

    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = path
        self._first_change: dict[str, ListingKey] | None = None  # listing_changes, once read
        if readonly:  # export, status, replay: never change (or drop) what they read
            self.db = open_readonly(path, SCHEMA_VERSION, "metadata index")
            return
        try:
            self.db = sqlite3.connect(path, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            # NORMAL: a crash can lose the last commits but never corrupts the file, and every
            # row can be rebuilt from the WARC files (which are fsynced before rows are written)
            self.db.execute("PRAGMA synchronous=NORMAL")
            if self.db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                self.db.executescript("".join(f"DROP TABLE IF EXISTS {name};" for name in (
                    "articles", "warc_files", "search", *links.TABLES, *versions.TABLES)))
                self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self.db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            if is_disk_error(exc):
                raise DiskError(f"opening the metadata index {path}", exc) from exc
            raise ConfigError(
                f"cannot open the metadata index {path}: {exc} (move it aside and run 'archiver index' to rebuild it)"
            ) from exc

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if is_disk_error(exc):
                raise DiskError(f"writing the metadata index {self.path}", exc) from exc
            raise

    def put(self, article: Article, prefer_existing_capture: bool = False) -> bool:
        """Insert or replace the row of `article.url`.

        With `prefer_existing_capture`, a failed attempt never replaces a captured row (the
        index rebuild meets attempts in file order, not time order).
        """
        if prefer_existing_capture and article.error:
            row = self.db.execute("SELECT error FROM articles WHERE url = ?", (article.url,)).fetchone()
            if row is not None and not row[0]:
                return False
        self._listing_change(article.url)
        self._listing_change(article.url, article)
        marks = ", ".join("?" for _ in FIELDS)
        self.db.execute(f"INSERT OR REPLACE INTO articles ({', '.join(FIELDS)}) VALUES ({marks})", article.row())
        self.db.execute("INSERT OR IGNORE INTO recount_pending VALUES (?)", (article.url,))  # its requisites
        return True

    def put_links(self, found: links.Links) -> None:
        """Record a links record: a fetch's outcome, the requisites a page or stylesheet references."""
        links.put_links(self.db, found)

    def recount(self, everything: bool = False) -> int:
        """Count the requisites of the articles whose own changed (of all, with `everything`)."""
        return links.recount(self.db, everything)

    def put_check(self, check: versions.Check) -> None:
        """Record a capture or a check of an article (index/versions.py)."""
        versions.put_check(self.db, check)

    def revise(self, schedule: versions.Schedule, everything: bool = False) -> None:
        """Derive the versions and next checks of the articles whose checks changed (of all, with `everything`)."""
        shown = versions.revise(self.db, schedule, everything)
        if not everything:  # (a rebuild rewrites the whole listing anyway)
            for url in shown:  # their rows show their versions on the collection page (listing.py)
                self._listing_change(url)

    def get(self, url: str) -> Article | None:
        row = self.db.execute(f"SELECT {', '.join(FIELDS)} FROM articles WHERE url = ?", (url,)).fetchone()
        return Article(*row) if row else None

    def is_captured(self, url: str) -> bool:
        row = self.db.execute("SELECT error FROM articles WHERE url = ?", (url,)).fetchone()
        return row is not None and not row[0]

    def articles(self) -> Iterator[Article]:
        """Every row, ordered by seed time then URL (streamed, not loaded whole)."""
        cursor = self.db.execute(
            f"SELECT {', '.join(FIELDS)} FROM articles ORDER BY seed_timestamp IS NULL, seed_timestamp, url"
        )
        for row in cursor:
            yield Article(*row)

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM articles").fetchone()[0])

    def clear(self) -> None:
        self.db.execute("DELETE FROM listing_changes")
        self.db.execute("INSERT INTO listing_changes VALUES ('*', 0, NULL, '')")
        self._first_change = None
        self.db.execute("DELETE FROM articles")
        self.db.execute("DELETE FROM warc_files")
        self.db.execute("DELETE FROM search_pending")
        for table in (*links.TABLES, *versions.TABLES):
            self.db.execute(f"DELETE FROM {table}")

    # Where the collection page's listing must be written again from (listing.py), kept in the
    # same transactions as the rows, so that a run killed before it wrote the listing is not lost.
    def _listing_change(self, url: str, article: Article | None = None) -> None:
        """Note a row's sort keys: `article`'s, or (without it) those the row of `url` has now."""
        if self._first_change is None:
            self._first_change = self._listing_rows()
        if "*" in self._first_change:
            return  # everything is rewritten anyway
        if article is None:
            found = self.db.execute(f"SELECT {', '.join(_ORDER_FIELDS)} FROM articles WHERE url = ?",
                                    (url,)).fetchone()
            if found is None:
                return
            times = dict(zip(_ORDER_FIELDS, found, strict=True))
        else:
            times = {name: getattr(article, name) for name in _ORDER_FIELDS}
        for order, field in LISTING_ORDERS.items():
            value = times[field] if times[field] not in (None, "") else None
            key: ListingKey = (1, None, url) if value is None else (0, value, url)
            first = self._first_change.get(order)
            if first is None or _before(key, first):
                self._first_change[order] = key
                self.db.execute("INSERT OR REPLACE INTO listing_changes VALUES (?, ?, ?, ?)", (order, *key))

    def listing_changes(self) -> dict[str, ListingKey] | None:
        """For each listing order, the first sort key changed since `listing_written` (absent: none);
        None: everything (a rebuild, or a metadata index older than this record)."""
        try:
            found = self._listing_rows()
        except sqlite3.OperationalError:
            return None
        return None if "*" in found else found

    def _listing_rows(self) -> dict[str, ListingKey]:
        rows = self.db.execute("SELECT order_name, untimed, value, url FROM listing_changes")
        return {name: (untimed, value, url) for name, untimed, value, url in rows}

    def listing_written(self, seen: dict[str, ListingKey] | None) -> None:
        """The listing now shows the changes `seen` (as listing_changes gave them): forget them,
        but not a change made since."""
        if seen is None:
            self.db.execute("DELETE FROM listing_changes WHERE order_name = '*'")
            seen = {}
        for order, key in seen.items():
            self.db.execute("DELETE FROM listing_changes WHERE order_name = ? AND untimed = ? AND value IS ? "
                            "AND url = ?", (order, *key))
        self._first_change = None

    # Texts waiting for the full-text index (textindex.update_search). Queued in the same
    # transaction as their rows, so an article is always either searchable or waiting here.
    def queue_text(self, url: str, title: str, text: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO search_pending (url, title, text) VALUES (?, ?, ?)",
                        (url, title, text))

    def pending_texts(self, after: int, up_to: int, limit: int) -> list[tuple[int, str, str, str]]:
        """(seq, url, title, text) of queued texts with after < seq <= up_to, in queue order."""
        return self.db.execute(
            "SELECT seq, url, title, text FROM search_pending WHERE seq > ? AND seq <= ? "
            "ORDER BY seq LIMIT ?", (after, up_to, limit)).fetchall()

    def pending_span(self) -> tuple[int, int]:
        """How many texts are queued, and the last one's seq (0 if none)."""
        try:
            count, top = self.db.execute("SELECT count(*), coalesce(max(seq), 0) FROM search_pending").fetchone()
        except sqlite3.OperationalError:  # opened read-only, written by a version that indexed texts at once
            return 0, 0
        return int(count), int(top)

    def drop_pending(self, up_to: int) -> None:
        """Forget the queued texts up to `up_to`: they are in the full-text index now (a text queued
        again meanwhile has a higher seq, and stays)."""
        self.db.execute("DELETE FROM search_pending WHERE seq <= ?", (up_to,))

    def indexed_files(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT name, size FROM warc_files").fetchall())

    def mark_indexed(self, files: Iterable[tuple[str, int]]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO warc_files (name, size) VALUES (?, ?)", list(files))

