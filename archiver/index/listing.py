"""The collection page's data: the metadata index as static, paginated JSON files.

pywb renders `/<coll>/` with the template `search.html`; archiver ships its own
(templates/search.html), which lists the collection's articles. A template cannot query SQLite, so
`write_listing` (called when `capture` or `index` has changed the metadata index) writes the rows
as JSON under `collections/<coll>/static/articles/`, which pywb serves at
`/static/_/<coll>/articles/`:

* `manifest.json`: `{"version", "generation", "generated", "count", "page_size", "pages",
  "fields", "orders": {"seed": {"prefix": "by-seed-", "timed": N, "generations": [...]}, "capture": {...}}}`;
* `by-seed-0000.json`, ...: the rows by seed time, ascending (rows without a seed time last,
  `timed` says how many have one), URL breaking ties; `by-capture-0000.json`, ...: the same by
  capture time. Each holds `{"generation", "order", "page", "start", "rows"}`, `page_size` rows
  (the last fewer); its generation is the one the manifest lists for it (`generations[page]`).
  Descending order reads the timed rows backwards, then the untimed ones.

A row is an array of the manifest's `fields`: `title` (the seed's, else the page's, else the
URL), `url`, `seed_time`, `capture_time`, `status`, `error`, `replay_path` (as in the metadata
index), `thumbnail`: the lead image's replay path `/<coll>/<capture ts>im_/<image URL>` when
it was captured with status 200 and is http(s), else ""; `removed_at`, and `versions`: JSON text
of `[number, kind, replay path]` for each version when a recapture found more than one, else "[]".

Rows are streamed from SQLite in order (SQLite computes each one) and written a page at a time,
so memory stays flat and 100,000 rows take about a second. A run that added or changed a few rows
(the metadata index notes where, as rows are put: `Store.listing_changes`) rewrites only the
pages from the first row it touched onwards: new articles sort last, so a capture rewrites the
last pages, not the whole collection. Each file is written to a temporary file and renamed over the old one; the
manifest goes last, then pages past the new end are removed. A page whose generation differs
from the one the manifest lists for it tells the page's script to read the manifest again.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
import time
from collections.abc import Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archiver._fs import atomic_write
from archiver.collection import Collection
from archiver.index.metadata import LISTING_TIMES, ListingKey, Store

PAGE_SIZE = 500
LISTING_VERSION = 3
MANIFEST = "manifest.json"
# order name -> SQL expression of the row's time for that order, NULL when it has none
ORDERS = LISTING_TIMES
# field -> SQL expression over a row of `articles` (`:coll` is the collection's name)
_FIELDS = {
    "title": "COALESCE(NULLIF(title, ''), NULLIF(page_title, ''), url)",
    "url": "url",
    "seed_time": "COALESCE(seed_time, '')",
    "capture_time": "COALESCE(capture_time, '')",
    "status": "status",
    "error": "COALESCE(error, '')",
    "replay_path": "COALESCE(replay_path, '')",
    # capture_time is ISO 8601 (2024-01-02T03:04:05Z): its digits are the 14-digit timestamp
    "thumbnail": """CASE WHEN lead_image_status = 200 AND lead_image_error = '' AND COALESCE(capture_time, '') != ''
        AND (lead_image_url LIKE 'http://%' OR lead_image_url LIKE 'https://%')
        THEN '/' || :coll || '/' || substr(replace(replace(replace(replace(capture_time, '-', ''), ':', ''),
             'T', ''), 'Z', '') || '00000000000000', 1, 14) || 'im_/' || lead_image_url
        ELSE '' END""",
    # (archiver recapture) when the article was found removed, and [number, kind, replay path] of
    # each version, as JSON text, when it has more than one
    "removed_at": "COALESCE(removed_at, '')",
    "versions": """CASE WHEN versions > 1 THEN (SELECT json_group_array(json_array(v.version, v.kind, v.replay_path))
        FROM (SELECT version, kind, replay_path FROM versions WHERE versions.url = articles.url ORDER BY version) v)
        ELSE '[]' END""",
}
FIELDS = tuple(_FIELDS)
@dataclass(frozen=True)
class ListingReport:
    path: Path
    count: int
    pages: int
    page_size: int


def listing_dir(collection: Collection) -> Path:
    """Where the collection page's JSON lives (pywb serves it at /static/_/<coll>/articles/)."""
    return collection.path / "static" / "articles"


def page_name(order: str, page: int) -> str:
    return f"by-{order}-{page:04d}.json"


def write_listing(collection: Collection, store: Store | None = None, page_size: int | None = None,
                  changed: bool = True) -> ListingReport | None:
    """Write the collection page's manifest and pages from the metadata index.

    With `changed=False` it writes only when there is no listing yet (a root made before the
    collection page existed); returns None when it wrote nothing. `store` is an open connection
    to the collection's metadata index (opened read-only here when not given); through it only
    the pages from the first row changed since the last listing on are written (every page when
    the listing on disk cannot be kept: none yet, another version or page size, a rebuild).
    """
    folder = listing_dir(collection)
    if not changed and (folder / MANIFEST).is_file():
        return None
    size = PAGE_SIZE if page_size is None else page_size
    if size < 1:
        raise ValueError(f"page size must be at least 1, not {size}")
    folder.mkdir(parents=True, exist_ok=True)
    if store is not None:
        return _write(collection, folder, store, size)
    if not collection.db_path.exists():
        return _write(collection, folder, None, size)
    with Store(collection.db_path, readonly=True) as own:
        return _write(collection, folder, own, size, keep=False)  # (it cannot mark the changes shown)


def _write(collection: Collection, folder: Path, store: Store | None, size: int, keep: bool = True) -> ListingReport:
    generation = secrets.token_hex(8)
    generated = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    orders: dict[str, dict[str, Any]] = {}
    count = 0
    db = store.db if store is not None else None
    changes = store.listing_changes() if store is not None and keep else None
    old = _old_generations(folder, size) if changes is not None else {}
    own_read = db is not None and not db.in_transaction
    if db is not None and own_read:
        db.execute("BEGIN")  # one snapshot for both orders
    try:
        timed = [0] * len(ORDERS)  # rows that have each order's time
        rows = 0
        if db is not None:
            *timed, rows = db.execute(f"SELECT {', '.join(f'count({key})' for key in ORDERS.values())}, count(*) "
                                      "FROM articles").fetchone()
        for (order, key), has_time in zip(ORDERS.items(), timed, strict=True):
            kept = old.get(order, [])
            if db is not None and changes is not None:
                first = changes.get(order)
                unchanged = rows if first is None else _position(db, key, first)
                kept = kept[:unchanged // size]  # the pages wholly before the first change
            count, written = _write_pages(folder, order, _pages(db, collection.name, key, size, len(kept)), size,
                                          generation, len(kept))
            orders[order] = {"prefix": f"by-{order}-", "timed": int(has_time), "generations": kept + written}
    finally:
        if db is not None and own_read:
            db.execute("COMMIT")
    pages = -(-count // size)
    manifest = {"version": LISTING_VERSION, "generation": generation, "generated": generated, "count": count,
                "page_size": size, "pages": pages, "fields": list(FIELDS), "orders": orders}
    _write_file(folder, MANIFEST, _dumps(manifest))
    _remove_stale(folder, pages)
    if store is not None and keep:
        store.listing_written(changes)
    return ListingReport(folder, count, pages, size)


def _old_generations(folder: Path, size: int) -> dict[str, list[str]]:
    """Each order's page generations in the listing on disk, if its pages can be kept as they are."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        if (manifest["version"], manifest["page_size"], manifest["fields"]) != (LISTING_VERSION, size, list(FIELDS)):
            return {}
        found = {order: [str(g) for g in manifest["orders"][order]["generations"]] for order in ORDERS}
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    if any(len(generations) != manifest["pages"] for generations in found.values()):
        return {}
    return found


def _position(db: sqlite3.Connection, key: str, first: ListingKey) -> int:
    """How many rows sort before `first` (a Store.listing_changes key) in the order of `key`
    (written so that SQLite counts along the order's index, see metadata.py)."""
    untimed, value, url = first
    if untimed:
        query = (f"SELECT (SELECT count(*) FROM articles WHERE {key} IS NULL = 0) + "
                 f"(SELECT count(*) FROM articles WHERE {key} IS NULL = 1 AND url < ?)")
        return int(db.execute(query, (url,)).fetchone()[0])
    query = f"SELECT count(*) FROM articles WHERE {key} IS NULL = 0 AND ({key}, url) < (?, ?)"
    return int(db.execute(query, (value, url)).fetchone()[0])


Pages = Generator[list[tuple[Any, ...]], None, None]


def _pages(db: sqlite3.Connection | None, collection: str, key: str, size: int, skip: int = 0) -> Pages:
    """The rows in ascending order of `key` (rows without it last, then by URL), `size` at a time,
    from page `skip` on."""
    if db is None:
        return
    columns = ", ".join(_FIELDS.values())
    cursor = db.execute(f"SELECT {columns} FROM articles ORDER BY {key} IS NULL, {key}, url LIMIT -1 OFFSET :skip",
                        {"coll": collection, "skip": skip * size})
    with contextlib.closing(cursor):
        while batch := cursor.fetchmany(size):
            yield batch


def _write_pages(folder: Path, order: str, pages: Pages, size: int, generation: str,
                 skip: int = 0) -> tuple[int, list[str]]:
    """Write pages `skip`, `skip` + 1, ...; returns the row count (the skipped pages' included, all
    full) and the generations of the pages written."""
    count = skip * size
    written: list[str] = []
    with contextlib.closing(pages):  # its cursor is closed before the COMMIT, even on errors
        for number, rows in enumerate(pages, start=skip):
            body = {"generation": generation, "order": order, "page": number, "start": number * size, "rows": rows}
            _write_file(folder, page_name(order, number), _dumps(body))
            count += len(rows)
            written.append(generation)
    return count, written


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _write_file(folder: Path, name: str, text: str) -> None:
    """Write `folder/name` so that a reader sees the old file or the new one, never a part.

    Not fsynced: the listing is derived data (`archiver index` writes it again), and a rename
    alone already keeps readers from half-written files.
    """
    with atomic_write(folder / name, encoding="utf-8", durable=False) as out:
        out.write(text)


def _remove_stale(folder: Path, pages: int) -> None:
    """Pages past the new end (the collection can shrink on a rebuild), and temporary files left
    by a killed run (an hour old: another writer's may be in use)."""
    old = time.time() - 3600
    for path in folder.iterdir():
        name = path.name
        if name.startswith(".") and name.endswith(".tmp"):
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < old:
                    path.unlink()
            continue
        for order in ORDERS:
            prefix = f"by-{order}-"
            number = name.removeprefix(prefix).removesuffix(".json")
            if name.startswith(prefix) and name.endswith(".json") and number.isdigit() and int(number) >= pages:
                path.unlink(missing_ok=True)
