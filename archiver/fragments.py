"""Metadata fragments: one Parquet file per committed unit of work (a capture batch, an indexed file).

A fragment holds the rows the work produced (the metadata index's columns, exactly as stored),
the replay-index lines of its records, the article texts for search, and, in the file's key-value
metadata, the WARC files it covers. Writing it is the commit: it appears whole (temporary file,
fsync, rename) after the WARC files it names are complete, so a fragment on disk always means
"this work is done and its files are there". The collection's SQLite index is merged from them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

from .layout import Collection
from .store import FIELDS, Article
from .warc import fsync_dir

SUFFIX = ".parquet"
_INTEGERS = {"seed_timestamp", "status", "warc_offset", "warc_length", "attempts"}


@dataclass(frozen=True)
class Entry:
    """One seed's outcome: its row, its records' replay-index lines, why it failed, its text."""

    article: Article
    cdxj: list[str]
    detail: str = ""  # why it failed, when the reason alone does not say
    text: str = ""  # the article's main text, for full-text search


@dataclass(frozen=True)
class Fragment:
    name: str
    files: list[str]  # the WARC files (names in the archive directory) the entries point into
    entries: list[Entry]


def fragments_dir(collection: Collection) -> Path:
    return collection.indexes_dir / "fragments"


def fragment_path(collection: Collection, name: str) -> Path:
    return fragments_dir(collection) / (name + SUFFIX)


def _schema() -> Any:
    import pyarrow as pa  # large: imported by the code that writes or reads fragments only

    columns = [pa.field(name, pa.int64() if name in _INTEGERS else pa.string()) for name in FIELDS]
    columns += [pa.field("cdxj", pa.list_(pa.string())), pa.field("detail", pa.string()),
                pa.field("text", pa.string())]
    return pa.schema(columns)


def write_fragment(path: Path, files: list[str], entries: list[Entry]) -> Path:
    """Commit: write the fragment whole, then rename it into place."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _schema().with_metadata({"archiver.files": json.dumps(files)})
    columns: list[list[Any]] = [[] for _ in schema]
    for entry in entries:
        values = (*astuple(entry.article), entry.cdxj, entry.detail, entry.text)
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    table = pa.table([pa.array(c, type=f.type) for c, f in zip(columns, schema, strict=True)], schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, tmp, compression="zstd")
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def read_fragment(path: Path) -> Fragment:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    files = list(json.loads((table.schema.metadata or {}).get(b"archiver.files", b"[]")))
    rows = table.to_pylist()
    entries = [
        Entry(Article(**{name: row[name] for name in FIELDS}), list(row["cdxj"] or []), row["detail"] or "",
              row["text"] or "")
        for row in rows
    ]
    return Fragment(path.name.removesuffix(SUFFIX), files, entries)


# <prefix>-<stamp>-<shard>-<key>-<serial>.warc.gz: a WARC file of a capture batch (batches.py)
_BATCH_FILE = re.compile(r"-(\d{14}-\d{4}-[0-9a-f]{12})-\d{3}\.warc\.gz(?:\.open)?$")


def files_named(path: Path) -> list[str]:
    """The WARC files a fragment commits (read from its footer only)."""
    import pyarrow.parquet as pq

    return list(json.loads((pq.read_schema(path).metadata or {}).get(b"archiver.files", b"[]")))


def orphans(collection: Collection, paths: list[Path]) -> list[Path]:
    """Those of `paths` written by a batch attempt that died, the batch being committed since by
    another attempt (whose fragment does not name them): their seeds are in the committed files.

    Files of a batch that has no fragment are no orphans: nothing else holds their records."""
    found = []
    named: dict[str, set[str]] = {}
    for path in paths:
        match = _BATCH_FILE.search(path.name)
        if match is None:
            continue
        fragment = fragment_path(collection, match.group(1))
        if not fragment.exists():
            continue
        if fragment.name not in named:
            named[fragment.name] = set(files_named(fragment))
        if path.name not in named[fragment.name]:
            found.append(path)
    return found


def committed(collection: Collection) -> Iterator[Path]:
    """Every fragment of the collection, by name."""
    folder = fragments_dir(collection)
    if folder.is_dir():
        yield from sorted(p for p in folder.iterdir() if p.name.endswith(SUFFIX) and not p.name.startswith("."))
