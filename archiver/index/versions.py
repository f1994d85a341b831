"""Versions in the metadata index: every check of an article, the versions they make, and when
each article is checked next.

A capture and each later check (`archiver recapture`) write the article's records again, and
their seed metadata record says what the check found (`Archiver-Check`: unchanged, same, edited,
removed, restored or failed; none on a first capture) with the fingerprint of what a reader reads
(title, main-text digest and length, lead-image digest). Capture hands the same to the index as
it writes them, and `archiver index` reads them back from the WARC files, into one table:

* `checks`: one row per capture or check, in any order;

from which `revise` derives, in time order, for each article whose checks changed:

* `versions`: a new version at the first capture and at every edit, removal and restoration, its
  first and last time seen (an unchanged check extends the last one);
* the article row's `versions`, `checks`, `last_checked`, `last_changed`, `removed_at` and
  `next_check`: an adaptive schedule, `recheck_min` after a capture or a change, doubling with
  each check that finds the article unchanged, up to `recheck_max`; a failed check is tried again
  after the same interval (a failure is not news).

Since all of it is derived from `checks`, the order the records are met in (file order, a
rebuild, a resumed run) never changes the result.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from archiver.index.links import moment

# what a check found: a capture ("captured"), then one of these
CHECK_KINDS = ("unchanged", "same", "edited", "removed", "restored", "failed")
# the kinds that start a new version
NEW_VERSION = frozenset({"captured", "edited", "removed", "restored"})

SCHEMA = """
CREATE TABLE IF NOT EXISTS checks (
    url TEXT NOT NULL,
    date TEXT NOT NULL,            -- WARC-Date of the check's metadata record, normalised (links.moment)
    kind TEXT NOT NULL,            -- captured, or what the check found
    status INTEGER,
    error TEXT NOT NULL,
    final_url TEXT NOT NULL,
    title TEXT NOT NULL,
    text_digest TEXT NOT NULL,
    text_length INTEGER NOT NULL,
    lead_digest TEXT NOT NULL,
    payload_digest TEXT NOT NULL,
    warc_file TEXT NOT NULL,
    warc_offset INTEGER,
    warc_length INTEGER,
    replay_path TEXT NOT NULL,
    PRIMARY KEY (url, date, kind)
);
CREATE TABLE IF NOT EXISTS versions (
    url TEXT NOT NULL,
    version INTEGER NOT NULL,
    kind TEXT NOT NULL,            -- captured, edited, removed or restored
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    title TEXT NOT NULL,
    text_digest TEXT NOT NULL,
    text_length INTEGER NOT NULL,
    lead_digest TEXT NOT NULL,
    status INTEGER,
    warc_file TEXT NOT NULL,
    warc_offset INTEGER,
    warc_length INTEGER,
    replay_path TEXT NOT NULL,
    PRIMARY KEY (url, version)
);
CREATE TABLE IF NOT EXISTS versions_pending (url TEXT PRIMARY KEY);
-- what is due is found through this index: its cost follows what is due, not the collection
CREATE INDEX IF NOT EXISTS articles_by_next_check ON articles (next_check, url) WHERE next_check != '';
"""
TABLES = ("checks", "versions", "versions_pending")

_CHECK_COLUMNS = ("url", "date", "kind", "status", "error", "final_url", "title", "text_digest", "text_length",
                  "lead_digest", "payload_digest", "warc_file", "warc_offset", "warc_length", "replay_path")
VERSION_COLUMNS = ("url", "version", "kind", "first_seen", "last_seen", "title", "text_digest", "text_length",
                    "lead_digest", "status", "warc_file", "warc_offset", "warc_length", "replay_path")


@dataclass(frozen=True)
class Seen:
    """What one capture or check found, as its seed metadata record says."""

    kind: str  # "captured" for a capture, else the check's verdict (CHECK_KINDS)
    date: str  # WARC-Date of its metadata record
    text_digest: str = ""
    text_length: int = 0
    lead_digest: str = ""


@dataclass(frozen=True)
class Check:
    """One row of `checks`."""

    url: str
    date: str
    kind: str
    status: int | None
    error: str
    final_url: str
    title: str
    text_digest: str
    text_length: int
    lead_digest: str
    payload_digest: str
    warc_file: str
    warc_offset: int | None
    warc_length: int | None
    replay_path: str


@dataclass(frozen=True)
class Version:
    """One row of `versions`."""

    url: str
    version: int
    kind: str
    first_seen: str
    last_seen: str
    title: str
    text_digest: str
    text_length: int
    lead_digest: str
    status: int | None
    warc_file: str
    warc_offset: int | None
    warc_length: int | None
    replay_path: str


@dataclass(frozen=True)
class Schedule:
    recheck_min: float  # seconds
    recheck_max: float


def put_check(db: sqlite3.Connection, check: Check) -> None:
    """Record a capture or check (in the caller's transaction); its article is revised later."""
    normal = replace(check, date=moment(check.date))  # dates that compare as text
    db.execute(f"INSERT OR REPLACE INTO checks ({', '.join(_CHECK_COLUMNS)}) "
               f"VALUES ({', '.join('?' for _ in _CHECK_COLUMNS)})", tuple(getattr(normal, n) for n in _CHECK_COLUMNS))
    db.execute("INSERT OR IGNORE INTO versions_pending VALUES (?)", (check.url,))


def checks_of(db: sqlite3.Connection, url: str) -> list[Check]:
    """Every capture and check of `url`, in time order (a capture before a check of the same second)."""
    rows = db.execute(f"SELECT {', '.join(_CHECK_COLUMNS)} FROM checks WHERE url = ? "
                      "ORDER BY date, kind != 'captured'", (url,)).fetchall()
    return [Check(*row) for row in rows]


def versions_of(db: sqlite3.Connection, url: str) -> list[Version]:
    rows = db.execute(f"SELECT {', '.join(VERSION_COLUMNS)} FROM versions WHERE url = ? ORDER BY version",
                      (url,)).fetchall()
    return [Version(*row) for row in rows]


def latest(db: sqlite3.Connection, url: str) -> tuple[Version, Check] | None:
    """The article's current version and its latest check that reached the page (a check compares
    with both: the reader's view with the version, the bytes with the last payload)."""
    version = db.execute(f"SELECT {', '.join(VERSION_COLUMNS)} FROM versions WHERE url = ? "
                         "ORDER BY version DESC LIMIT 1", (url,)).fetchone()
    check = db.execute(f"SELECT {', '.join(_CHECK_COLUMNS)} FROM checks WHERE url = ? AND kind != 'failed' "
                       "ORDER BY date DESC LIMIT 1", (url,)).fetchone()
    if version is None or check is None:
        return None
    return Version(*version), Check(*check)


@dataclass
class _Summary:
    versions: int = 0
    checks: int = 0
    last_checked: str = ""  # ("" when none, as in the row)
    last_changed: str = ""
    removed_at: str = ""
    next_check: str = ""


def derive(checks: Iterable[Check], schedule: Schedule) -> tuple[list[Version], _Summary]:
    """The versions and the article's schedule that a time-ordered list of checks makes (times as
    ISO 8601 UTC to the second, as the export's capture_time)."""
    versions: list[Version] = []
    summary = _Summary()
    interval = schedule.recheck_min
    last = ""
    for check in checks:
        current = versions[-1] if versions else None
        # captured again (a rerun of capture): nothing new
        kind = "unchanged" if check.kind == "captured" and current is not None else check.kind
        if current is not None and kind == "removed" and current.kind == "removed":
            kind = "unchanged"  # still gone: the same removal
        date = _iso(check.date)
        if check.kind != "captured":
            summary.checks += 1
            summary.last_checked = date
        last = date
        if kind in NEW_VERSION or current is None:
            versions.append(Version(check.url, len(versions) + 1, kind if kind in NEW_VERSION else "captured",
                                    date, date, check.title, check.text_digest, check.text_length,
                                    check.lead_digest, check.status, check.warc_file, check.warc_offset,
                                    check.warc_length, check.replay_path))
            interval = schedule.recheck_min
            if len(versions) > 1:
                summary.last_changed = date
            if kind == "removed":
                summary.removed_at = date
            elif kind == "restored":
                summary.removed_at = ""
        elif kind in ("unchanged", "same"):
            versions[-1] = replace(versions[-1], last_seen=date)
            interval = min(interval * 2, schedule.recheck_max)
        # failed: the same interval again
    summary.versions = len(versions)
    if last:
        summary.next_check = _plus(last, interval)
    return versions, summary


def _iso(normal: str) -> str:
    """A normalised WARC-Date (links.moment) to the second."""
    return normal[:19] + "Z" if normal else ""


def _plus(date: str, seconds: float) -> str:
    moment_of = datetime.fromisoformat(date.replace("Z", "+00:00")).astimezone(UTC)
    return (moment_of + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def revise(db: sqlite3.Connection, schedule: Schedule, everything: bool = False) -> list[str]:
    """Derive the versions and schedule of the articles whose checks changed (of all, with
    `everything`), in the caller's transaction. Returns those of them with more than one version:
    the collection page shows their versions (listing.py)."""
    if everything:
        db.execute("INSERT OR IGNORE INTO versions_pending SELECT DISTINCT url FROM checks")
    urls = [row[0] for row in db.execute("SELECT url FROM versions_pending")]
    shown = []
    for url in urls:
        versions, summary = derive(checks_of(db, url), schedule)
        db.execute("DELETE FROM versions WHERE url = ?", (url,))
        db.executemany(f"INSERT INTO versions ({', '.join(VERSION_COLUMNS)}) "
                       f"VALUES ({', '.join('?' for _ in VERSION_COLUMNS)})",
                       [tuple(getattr(v, name) for name in VERSION_COLUMNS) for v in versions])
        db.execute("UPDATE articles SET versions = ?, checks = ?, last_checked = ?, last_changed = ?, "
                   "removed_at = ?, next_check = ? WHERE url = ?",
                   (summary.versions, summary.checks, summary.last_checked, summary.last_changed,
                    summary.removed_at, summary.next_check, url))
        if summary.versions > 1:
            shown.append(url)
    db.execute("DELETE FROM versions_pending")
    return shown
