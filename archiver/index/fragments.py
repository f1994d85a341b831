"""Metadata fragments: one Parquet file per committed unit of work (a capture batch, an indexed file).

A fragment holds the rows the work produced (the metadata index's columns, exactly as stored),
the replay-index lines of its records, the article texts for search, and, in the file's key-value
metadata, the WARC files it covers. Writing it is the commit: it appears whole (written aside,
then published: a rename on a filesystem, a completed PUT on an object store) after the WARC
files it names are published, so a fragment in the store always means "this work is done and its
files are there". The collection's SQLite index is merged from them.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from archiver._arrow import pyarrow
from archiver.index.links import Links
from archiver.index.metadata import FIELDS, INTEGER_FIELDS, Article
from archiver.index.versions import Seen
from archiver.storage import Storage

FOLDER = "indexes/fragments"
SUFFIX = ".parquet"
ROWS = 256  # entries a row group (written and read a group at a time)


@dataclass(frozen=True)
class Entry:
    """One seed's outcome: its row, its records' replay-index lines, why it failed, its text."""

    article: Article
    cdxj: list[str]
    detail: str = ""  # why it failed, when the reason alone does not say
    text: str = ""  # the article's main text, for full-text search
    links: tuple[Links, ...] = ()  # the links records of its fetches (page, lead image), as written
    seen: Seen | None = None  # what a capture or check found (index/versions.py); None: nothing (failed capture)


def fragment_name(name: str) -> str:
    """The store name of fragment `name`."""
    return f"{FOLDER}/{name}{SUFFIX}"


def _schema() -> Any:
    pa = pyarrow()  # large: imported by the code that writes or reads fragments only

    columns = [pa.field(name, pa.int64() if name in INTEGER_FIELDS else pa.string()) for name in FIELDS]
    columns += [pa.field("cdxj", pa.list_(pa.string())), pa.field("detail", pa.string()),
                pa.field("text", pa.string()), pa.field("seen_kind", pa.string()), pa.field("seen_date", pa.string()),
                pa.field("text_digest", pa.string()), pa.field("text_length", pa.int64()),
                pa.field("lead_digest", pa.string())]
    return pa.schema(columns)


def write_fragment(storage: Storage, name: str, files: list[str], entries: Iterable[Entry],
                   folder: str = FOLDER, compression: str = "zstd") -> str:
    """Commit: write the fragment aside, then publish it whole. Returns its store name. `entries`
    may be a generator: they are taken a row group at a time. `compression`: a Parquet codec
    (zstd for fragments that are kept; an index part, read once and removed, takes lz4)."""
    pa = pyarrow()
    import pyarrow.parquet as pq

    schema = _schema().with_metadata({"archiver.files": json.dumps(files)})
    target = f"{folder}/{name}{SUFFIX}"
    staged = storage.staging_path(target)
    try:
        with pq.ParquetWriter(staged, schema, compression=compression) as writer:
            pending = iter(entries)
            first = True
            while (group := list(itertools.islice(pending, ROWS))) or first:  # a row group at a time
                first = False
                columns: list[list[Any]] = [[] for _ in schema]
                for entry in group:
                    seen = entry.seen
                    values = (*entry.article.row(), entry.cdxj, entry.detail, entry.text,
                              *((seen.kind, seen.date, seen.text_digest, seen.text_length, seen.lead_digest)
                                if seen is not None else (None, None, None, None, None)))
                    for column, value in zip(columns, values, strict=True):
                        column.append(value)
                arrays = [pa.array(c, type=f.type) for c, f in zip(columns, schema, strict=True)]
                writer.write_table(pa.table(arrays, schema=schema))
        storage.publish(staged, target)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    return target


def iter_entries(storage: Storage, target: str) -> Iterator[Entry]:
    """A fragment's entries, a row group (`ROWS`) at a time: an indexed file's fragment holds
    thousands of texts. read_row_group, not iter_batches or pyarrow's pre-buffering, which peaked at
    nearly twice the memory (bench/README.md, "Measurements behind the code")."""
    pyarrow()
    import pyarrow.parquet as pq

    with storage.open_read(target) as fh:
        parquet = pq.ParquetFile(fh, pre_buffer=False)
        for group in range(parquet.num_row_groups):
            for row in parquet.read_row_group(group).to_pylist():
                seen = (Seen(row["seen_kind"], row["seen_date"] or "", row["text_digest"] or "",
                             row["text_length"] or 0, row["lead_digest"] or "") if row.get("seen_kind") else None)
                yield Entry(Article(**{name: row[name] for name in FIELDS}), list(row["cdxj"] or []),
                            row["detail"] or "", row["text"] or "", seen=seen)


def files_named(storage: Storage, target: str) -> list[str]:
    """The WARC files a fragment commits (read from its footer only)."""
    import pyarrow.parquet as pq

    with storage.open_read(target) as fh:
        metadata = pq.read_schema(fh).metadata or {}
    return list(json.loads(metadata.get(b"archiver.files", b"[]")))


# <prefix>-<stamp>-<shard>-<key>-<serial>.warc.gz: a WARC file of a capture batch (capture/batch.py)
_BATCH_FILE = re.compile(r"-(\d{14}-\d{4}-[0-9a-f]{12})-\d{3}\.warc\.gz(?:\.open)?$")


def orphans(storage: Storage, names: list[str], known: dict[str, set[str]] | None = None) -> list[str]:
    """Those of the WARC files `names` (in archive/) written by a batch attempt that died, the batch
    being committed since by another attempt (whose fragment does not name them): their seeds are in
    the committed files. Files of a batch that has no fragment are no orphans: nothing else holds
    their records. `known`: fragments whose files the caller knows already (not read again)."""
    found = []
    named: dict[str, set[str] | None] = dict(known or {})  # fragment -> the files it commits (None: not committed)
    for name in names:
        match = _BATCH_FILE.search(name)
        if match is None:
            continue
        target = fragment_name(match.group(1))
        if target not in named:
            named[target] = set(files_named(storage, target)) if storage.exists(target) else None
        files = named[target]
        if files is not None and name not in files:
            found.append(name)
    return found
