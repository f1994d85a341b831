"""Export the metadata index, one row per seed, for people who analyse collections."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import astuple
from typing import IO

from .config import Config
from .errors import UsageError
from .layout import Collection
from .store import FIELDS, Article, Store

FORMATS = ("csv", "jsonl")
# A cell starting with one of these is run as a formula by spreadsheet programs (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return "" if value is None else value


def _articles(cfg: Config, collection_name: str | None) -> Iterator[Article]:
    collection = Collection.at(cfg.root, cfg.collection if collection_name is None else collection_name)
    if not collection.db_path.exists():
        raise UsageError(f"collection {collection.name!r} has no metadata index under {cfg.root} "
                         "(capture something, or run 'archiver index')")

    def rows() -> Iterator[Article]:
        with Store(collection.db_path) as store:
            yield from store.articles()

    return rows()


def export(cfg: Config, out: IO[str], fmt: str = "csv", collection_name: str | None = None) -> int:
    """Write every row of the collection's metadata index to `out`; return the row count."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    count = 0
    rows = _articles(cfg, collection_name)
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(FIELDS)
        for article in rows:
            writer.writerow([safe_cell(v) for v in astuple(article)])
            count += 1
    else:
        for article in rows:
            out.write(json.dumps(dict(zip(FIELDS, astuple(article), strict=True)), ensure_ascii=False) + "\n")
            count += 1
    return count
