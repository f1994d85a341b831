"""Page requisites in the metadata index: what became of each URL archiver fetched, and what each
page and stylesheet referenced; from these, each article's requisite counts.

Every fetch (an article's page, its lead image, a requisite) writes a `links` metadata record
(`links_block`): the fetch's outcome and, for a page or a stylesheet, the requisites it referenced.
Capture hands the same records to the index as it writes them; `archiver index` reads them back
from the WARC files, so both build the same two tables:

* `captures`: one row per URL fetched, its latest outcome merged with the earlier ones in an order
  that does not depend on the order the records are met (`merge`), which is also the registry
  capture consults to fetch a shared requisite once while it is fresh;
* `refs`: (parent, url) for every reference, a page's and a stylesheet's alike.

An article's counts are those of every URL its page reaches through `refs` (its stylesheets' own
references included), each once.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from archiver.extract.requisites import Reference

# the WARC Content-Type of a links record
LINKS_TYPE = "application/x-archiver-links+json"
# Reasons a requisite counts as skipped (a bound or the address guard refused it), not failed
SKIP_REASONS = frozenset({"blocked_address", "too_large", "url_too_long", "unsupported_scheme", "invalid_url",
                          "over_requisites_max", "over_requisites_max_bytes", "too_deep"})
# What a links record may hold when it is read back: a hostile WARC's costs stay bounded
MAX_BLOCK = 4 * 1024 * 1024
MAX_REFERENCES = 10_000


@dataclass(frozen=True)
class Capture:
    """One fetch of a URL, and how it ended."""

    url: str  # as requested
    date: str  # WARC-Date of the attempt
    status: int | None  # of the final response; None without one
    error: str  # "" when captured; else why not (http_404, timeout, blocked_address, too_large, ...)
    digest: str = ""  # payload digest of the final response ("sha1:...")
    # the record whose payload this is: this capture's own final response, or what its revisit refers to
    original_uri: str = ""
    original_date: str = ""
    size: int = 0  # payload bytes
    revisit: bool = False  # stored as a revisit record (identical payload), no body

    @property
    def outcome(self) -> str:
        """ok, failed or skipped (over a bound, or refused by the address guard)."""
        if not self.error:
            return "ok"
        return "skipped" if self.error in SKIP_REASONS else "failed"


@dataclass(frozen=True)
class Previous:
    """What a new fetch of a URL is compared with: its last payload, and where that payload is."""

    digest: str
    uri: str
    date: str


@dataclass(frozen=True)
class Links:
    """What one links record says."""

    url: str  # the page or requisite fetched
    capture: Capture | None
    references: tuple[Reference, ...] | None = None  # None: not looked for (not HTML or CSS, or turned off)
    depth: int = 0  # of the references: 0 for a page's, n for those of a stylesheet n @imports deep
    cut: int = 0  # references left out: over requisites_max, or @imports too deep
    page: tuple[str, str] | None = None  # a revisited page's title and publication time (not in its record)


def links_block(links: Links) -> bytes:
    """The links record's block: JSON, one reference a line (a reader sees the list at a glance)."""
    head: dict[str, Any] = {"url": links.url, "depth": links.depth, "cut": links.cut}
    if links.page is not None:
        head["page"] = list(links.page)
    if links.capture is not None:
        head["capture"] = {k: v for k, v in vars(links.capture).items() if k != "url"}
    if links.references is None:
        return (json.dumps(head, ensure_ascii=False) + "\n").encode("utf-8")
    lines = [json.dumps({**head, "references": len(links.references)}, ensure_ascii=False)]
    lines += [json.dumps([r.url, r.via, int(r.stylesheet)], ensure_ascii=False) for r in links.references]
    return ("\n".join(lines) + "\n").encode("utf-8")


def parse_links(block: bytes) -> Links | None:
    """A links record's block read back; None for one that is not (or is damaged)."""
    try:
        lines = block[:MAX_BLOCK].decode("utf-8").splitlines()
        head = json.loads(lines[0])
        url = str(head["url"])
        found = head.get("capture")
        capture = None
        if isinstance(found, dict):
            status = found.get("status")
            capture = Capture(url=url, date=str(found.get("date", "")), error=str(found.get("error", "")),
                              status=int(status) if isinstance(status, int) else None,
                              digest=str(found.get("digest", "")), original_uri=str(found.get("original_uri", "")),
                              original_date=str(found.get("original_date", "")), size=int(found.get("size") or 0),
                              revisit=bool(found.get("revisit")))
        references = None
        if "references" in head:
            references = tuple(Reference(str(u), str(v), bool(s)) for u, v, s in
                               (json.loads(line) for line in lines[1:MAX_REFERENCES + 1]))
        page = head.get("page")
        fields = (str(page[0]), str(page[1])) if isinstance(page, list) and len(page) == 2 else None
        return Links(url, capture, references, int(head.get("depth", 0)), int(head.get("cut", 0)), fields)
    except (ValueError, KeyError, TypeError, IndexError):
        return None


SCHEMA = """
CREATE TABLE IF NOT EXISTS captures (
    url TEXT PRIMARY KEY,
    outcome TEXT NOT NULL,  -- ok, failed, skipped
    status INTEGER,
    error TEXT NOT NULL,
    attempted TEXT NOT NULL,  -- WARC-Date of the latest attempt
    fetched TEXT NOT NULL,  -- ... of the latest that captured it ('' never)
    digest TEXT NOT NULL,  -- the latest payload, and the record holding it (what a revisit refers to)
    original_uri TEXT NOT NULL,
    original_date TEXT NOT NULL,
    size INTEGER NOT NULL,  -- its bytes
    fetches INTEGER NOT NULL,  -- attempts, all told
    revisit_bytes INTEGER NOT NULL,  -- payload bytes not stored again, thanks to revisit records
    cut INTEGER  -- references left out of its latest links; NULL: its references were not looked for
);
CREATE TABLE IF NOT EXISTS refs (
    parent TEXT NOT NULL,
    url TEXT NOT NULL,
    via TEXT NOT NULL,
    stylesheet INTEGER NOT NULL,
    depth INTEGER NOT NULL,
    PRIMARY KEY (parent, url)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS refs_by_url ON refs (url);
-- URLs whose outcome or references changed: the articles reaching them are counted again (`recount`)
CREATE TABLE IF NOT EXISTS recount_pending (url TEXT PRIMARY KEY) WITHOUT ROWID;
"""
TABLES = ("captures", "refs", "recount_pending")
_CAPTURE_COLUMNS = ("url", "outcome", "status", "error", "attempted", "fetched", "digest", "original_uri",
                    "original_date", "size", "fetches", "revisit_bytes", "cut")


def put_links(db: sqlite3.Connection, links: Links) -> None:
    """Record one links record (in the caller's transaction)."""
    row = db.execute(f"SELECT {', '.join(_CAPTURE_COLUMNS)} FROM captures WHERE url = ?", (links.url,)).fetchone()
    old = dict(zip(_CAPTURE_COLUMNS, row, strict=True)) if row else None
    new = merge(old, links)
    if new == old:
        return
    db.execute(f"INSERT OR REPLACE INTO captures ({', '.join(_CAPTURE_COLUMNS)}) "
               f"VALUES ({', '.join('?' for _ in _CAPTURE_COLUMNS)})", tuple(new[c] for c in _CAPTURE_COLUMNS))
    if links.references is not None and _latest_links(old, links):
        db.execute("DELETE FROM refs WHERE parent = ?", (links.url,))
        db.executemany("INSERT OR IGNORE INTO refs VALUES (?, ?, ?, ?, ?)",
                       [(links.url, r.url, r.via, int(r.stylesheet), links.depth) for r in links.references])
    if old is None or (old["outcome"], old["cut"]) != (new["outcome"], new["cut"]) or links.references is not None:
        db.execute("INSERT OR IGNORE INTO recount_pending VALUES (?)", (links.url,))


def _latest_links(old: dict[str, Any] | None, links: Links) -> bool:
    """Are `links`' references the ones to keep: those of the latest attempt that looked for them?"""
    date = moment(links.capture.date) if links.capture is not None else ""
    return old is None or old["cut"] is None or date >= old["attempted"]


def moment(date: str) -> str:
    """A WARC-Date written so that dates compare as text (with and without fractions alike)."""
    if not date:
        return ""
    body = date.rstrip("Z")
    whole, _, fraction = body.partition(".")
    return f"{whole}.{fraction.ljust(6, '0')[:6]}Z"


def merge(old: dict[str, Any] | None, links: Links) -> dict[str, Any]:
    """A captures row with one more links record: the same whatever order the records come in
    (the latest attempt's outcome, unless an earlier one captured it: replay still has that)."""
    capture = links.capture or Capture(links.url, "", None, "")
    new = {
        "url": links.url, "outcome": capture.outcome, "status": capture.status, "error": capture.error,
        "attempted": moment(capture.date), "fetched": moment(capture.date) if capture.outcome == "ok" else "",
        "digest": capture.digest, "original_uri": capture.original_uri,
        "original_date": capture.original_date, "size": capture.size, "fetches": 1 if links.capture else 0,
        "revisit_bytes": capture.size if capture.revisit else 0,
        "cut": links.cut if links.references is not None else None,
    }
    if old is None:
        return new
    out = dict(old)
    out["fetches"] += new["fetches"]
    out["revisit_bytes"] += new["revisit_bytes"]
    if new["attempted"] >= old["attempted"]:
        out.update(attempted=new["attempted"], status=new["status"], error=new["error"], outcome=new["outcome"])
    if old["fetched"] and out["outcome"] != "ok":  # captured before: replay has that capture
        out.update(outcome="ok", error="")
    out["fetched"] = max(old["fetched"], new["fetched"])
    if capture.digest and moment(capture.original_date or capture.date) >= moment(old["original_date"]):
        out.update(digest=capture.digest, original_uri=capture.original_uri, original_date=capture.original_date,
                   size=capture.size)
    if links.references is not None and _latest_links(old, links):
        out["cut"] = links.cut
    return out


def previous(db: sqlite3.Connection, url: str) -> Previous | None:
    """The payload a new fetch of `url` may turn out to repeat."""
    row = db.execute("SELECT digest, original_uri, original_date FROM captures WHERE url = ? AND digest != ''",
                     (url,)).fetchone()
    return Previous(*row) if row else None


def last_attempt(db: sqlite3.Connection, url: str) -> tuple[str, str, str] | None:
    """(outcome, attempted, fetched) of `url`, or None if it was never fetched."""
    row = db.execute("SELECT outcome, attempted, fetched FROM captures WHERE url = ?", (url,)).fetchone()
    return (str(row[0]), str(row[1]), str(row[2])) if row else None


def unattempted(db: sqlite3.Connection, limit: int) -> list[tuple[str, str, bool, int]]:
    """(parent, url, stylesheet, depth) of references never fetched (a run stopped before them)."""
    return db.execute(
        "SELECT parent, url, stylesheet, depth FROM refs r WHERE NOT EXISTS "
        "(SELECT 1 FROM captures c WHERE c.url = r.url) LIMIT ?", (limit,)).fetchall()


_REACH = """
WITH RECURSIVE reach(url) AS (
    SELECT url FROM refs WHERE parent = :page
    UNION
    SELECT r.url FROM refs r JOIN reach ON r.parent = reach.url
)
"""
_COUNTS = _REACH + """
SELECT
    (SELECT cut FROM captures WHERE url = :page),
    count(CASE WHEN c.outcome = 'ok' THEN 1 END),
    count(CASE WHEN c.outcome = 'failed' THEN 1 END),
    count(CASE WHEN c.outcome = 'skipped' THEN 1 END),
    coalesce(sum(CASE WHEN reach.url != :page THEN c.cut END), 0)
FROM reach LEFT JOIN captures c ON c.url = reach.url
"""


def counts(db: sqlite3.Connection, page: str) -> tuple[int | None, int | None, int | None]:
    """(requisites, requisites_failed, requisites_skipped) of an article; None when its page's
    requisites were not looked for."""
    own_cut, ok, failed, skipped, cut = db.execute(_COUNTS, {"page": page}).fetchone()
    if own_cut is None:
        return None, None, None
    return ok, failed, skipped + own_cut + cut


_UPWARDS = """
WITH RECURSIVE up(url) AS (
    SELECT url FROM recount_pending
    UNION
    SELECT r.parent FROM refs r JOIN up ON r.url = up.url
)
SELECT a.url FROM up JOIN articles a ON a.url = up.url
"""


def recount(db: sqlite3.Connection, everything: bool = False) -> int:
    """Count again the requisites of every article reaching a URL that changed (all of them with
    `everything`); in the caller's transaction. Returns how many rows were counted."""
    query = "SELECT url FROM articles" if everything else _UPWARDS
    urls = [row[0] for row in db.execute(query)]
    for url in urls:
        db.execute("UPDATE articles SET requisites = ?, requisites_failed = ?, requisites_skipped = ? WHERE url = ?",
                   (*counts(db, url), url))
    db.execute("DELETE FROM recount_pending")
    return len(urls)


@dataclass(frozen=True)
class Totals:
    """Requisites of a collection, for `archiver status`."""

    urls: int = 0  # URLs that pages or stylesheets reference, fetched
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    stored_bytes: int = 0  # payload bytes of the requisites stored
    shared_bytes: int = 0  # bytes pages would have fetched again had each fetched its own
    revisit_bytes: int = 0  # payload bytes written as revisit records instead


def totals(db: sqlite3.Connection) -> Totals:
    row = db.execute("""
        SELECT count(*), count(CASE WHEN outcome = 'ok' THEN 1 END), count(CASE WHEN outcome = 'failed' THEN 1 END),
               count(CASE WHEN outcome = 'skipped' THEN 1 END), coalesce(sum(size), 0),
               coalesce(sum(revisit_bytes), 0)
        FROM captures c WHERE EXISTS (SELECT 1 FROM refs r WHERE r.url = c.url)""").fetchone()
    shared = db.execute("""
        SELECT coalesce(sum(max(0, n - c.fetches) * c.size), 0)
        FROM (SELECT url, count(*) AS n FROM refs GROUP BY url) r JOIN captures c ON c.url = r.url
        WHERE c.outcome = 'ok'""").fetchone()[0]
    urls, ok, failed, skipped, stored, revisits = (int(v) for v in row)
    return Totals(urls, ok, failed, skipped, stored, int(shared), revisits)


def capture_of(url: str, date: str, exchange: Any, error: str, revisit_of: Previous | None) -> Capture:
    """The Capture of a fetch whose final exchange is `exchange` (None: no response)."""
    if exchange is None:
        return Capture(url, date, None, error)
    if revisit_of is not None:
        return Capture(url, date, exchange.status, error, exchange.payload_digest, revisit_of.uri,
                       revisit_of.date, exchange.body_length, revisit=True)
    return Capture(url, date, exchange.status, error, exchange.payload_digest, exchange.url, date,
                   exchange.body_length)


def dated(links: Links, date: str) -> Links:
    """`links` with `date` as the date of a capture that had no response to date it."""
    if links.capture is None or links.capture.date:
        return links
    return replace(links, capture=replace(links.capture, date=date))


def iter_lines(links: Iterable[Links]) -> Iterator[str]:
    """Links as JSON lines (an index part's side file), and back with `read_lines`."""
    for item in links:
        yield links_block(item).decode("utf-8").replace("\n", "\x1e").rstrip("\x1e") + "\n"


def read_lines(lines: Iterable[str]) -> Iterator[Links]:
    for line in lines:
        found = parse_links(line.rstrip("\n").replace("\x1e", "\n").encode("utf-8"))
        if found is not None:
            yield found
