"""`archiver verify`: check WARC/ARC files record by record (warc/check.py), and a collection's
indexes against them: every CDXJ line and metadata row must point at exactly one record, and
every record a replay index lists must have its line. Damage is reported, never raised; only a
missing collection or file raises.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from archiver.collection import Collection
from archiver.config import Config
from archiver.errors import ConfigError, UsageError
from archiver.index.cdxj import parse_line
from archiver.index.metadata import Store
from archiver.warc.check import FILE_KINDS, Findings, Problem, RecordSeen, check_file
from archiver.warc.record import INDEXED_TYPES, timestamp14_of

# Every problem kind, for --help and for whoever parses the output.
KINDS: dict[str, str] = {
    **FILE_KINDS,
    "open_file": "a leftover *.open file: a capture is running or was killed (`archiver index` mends it)",
    "missing_index": "WARC files but no indexes/index.cdxj or indexes/metadata.sqlite",
    "bad_index": "a CDXJ line or the metadata index that cannot be read",
    "cdxj_unsorted": "index.cdxj is not sorted (pywb then misses captures)",
    "cdxj_points_nowhere": "a CDXJ line that is not exactly one record with its URL and time",
    "record_not_indexed": "a response, revisit or resource record with no CDXJ line",
    "row_points_nowhere": "a metadata row whose warc_file/offset/length is not exactly one record",
}


@dataclass
class VerifyReport:
    files: int = 0
    records: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class _Out(Findings):
    """Findings kept in the report (and shown by `on_problem` as they come)."""

    def __init__(self, report: VerifyReport, on_problem: Callable[[Problem], None] | None,
                 records: dict[tuple[str, int], RecordSeen] | None = None) -> None:
        def found(problem: Problem) -> None:
            report.problems.append(problem)
            if on_problem is not None:
                on_problem(problem)

        super().__init__(found, records)
        self.report = report


# --- a collection: its WARC files, and its indexes against them --------------------------------

def _check_cdxj(collection: Collection, names: set[str], records: dict[tuple[str, int], RecordSeen],
                out: _Out) -> None:
    path = collection.cdxj_path
    shown = f"indexes/{path.name}"
    if not path.exists():
        if any(r.rtype in INDEXED_TYPES and r.uri for r in records.values()):
            out.problem(shown, None, "missing_index", "no replay index: run `archiver index`")
        return
    indexed: set[tuple[str, int]] = set()
    previous, unsorted = "", False
    with path.open(encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            if line < previous and not unsorted:
                unsorted = True
                out.problem(shown, None, "cdxj_unsorted", f"line {number} sorts before line {number - 1}")
            previous = line
            pointer = _cdxj_pointer(line)
            if pointer is None:
                out.problem(shown, None, "bad_index", f"line {number} is not 'key timestamp JSON': {line[:80]!r}")
                continue
            stamp, url, filename, offset, length = pointer
            indexed.add((filename, offset))
            wrong = _pointer_problem(names, records, filename, offset, length) or \
                _cdxj_mismatch(records[(filename, offset)], stamp, url)
            if wrong:
                out.problem(filename, offset, "cdxj_points_nowhere", f"{shown} line {number}: {wrong}")
    for (filename, offset), record in records.items():
        if record.rtype in INDEXED_TYPES and record.uri and (filename, offset) not in indexed:
            out.problem(filename, offset, "record_not_indexed",
                        f"{record.rtype} record for {record.uri} has no line in {shown}")


def _cdxj_pointer(line: str) -> tuple[str, str, str, int, int] | None:
    """(timestamp, url, filename, offset, length) of a CDXJ line, or None if it has none."""
    parsed = parse_line(line)
    data = parsed.fields() if parsed is not None else None
    if parsed is None or data is None:
        return None
    try:
        return parsed.timestamp, str(data["url"]), str(data["filename"]), int(data["offset"]), int(data["length"])
    except (ValueError, KeyError, TypeError):
        return None


def _cdxj_mismatch(record: RecordSeen, stamp: str, url: str) -> str:
    if url not in (record.uri, record.uri.replace(" ", "%20")):  # warcio %-encodes spaces when indexing
        return f"URL {url}, but the record there is for {record.uri}"
    if timestamp14_of(record.date) != stamp:
        return f"time {stamp}, but the record there is dated {record.date}"
    return ""


def _pointer_problem(names: set[str], records: dict[tuple[str, int], RecordSeen], filename: str,
                     offset: int | None, length: int | None) -> str:
    """Why (filename, offset, length) is not exactly one record; "" when it is."""
    if filename not in names:
        return f"names {filename!r}, which is not a WARC file of the collection"
    if offset is None or length is None:
        return "no offset or length"
    record = records.get((filename, offset))
    if record is None:
        return f"no record starts at offset {offset}"
    if length not in record.lengths:
        real = " or ".join(map(str, record.lengths)) or "not delimited by any length"
        return f"length {length}, but the record at {offset} is {real}"
    return ""


def _check_rows(collection: Collection, names: set[str], records: dict[tuple[str, int], RecordSeen],
                out: _Out) -> None:
    shown = f"indexes/{collection.db_path.name}"
    if not collection.db_path.exists():
        if names:
            out.problem(shown, None, "missing_index", "no metadata index: run `archiver index`")
        return
    try:
        # read-only: opening a Store for writing drops an index of another schema version so that
        # it gets rebuilt; verify must change nothing
        with Store(collection.db_path, readonly=True) as store:
            rows = store.db.execute("SELECT url, warc_file, warc_offset, warc_length, payload_digest FROM articles")
            for url, file, offset, length, digest in rows:
                wrong = _row_problem(names, records, file, offset, length, digest)
                if wrong:
                    out.problem(file, offset, "row_points_nowhere", f"metadata row of {url}: {wrong}")
    except ConfigError as exc:  # unreadable, or of another version
        out.problem(shown, None, "bad_index", str(exc))
    except sqlite3.Error as exc:
        out.problem(shown, None, "bad_index", f"cannot read the metadata index: {exc}")


def _row_problem(names: set[str], records: dict[tuple[str, int], RecordSeen], file: str, offset: int | None,
                 length: int | None, digest: str) -> str:
    if not file:
        return ""  # a seed with no record at all
    wrong = _pointer_problem(names, records, file, offset, length)
    if wrong or not digest or offset is None:
        return wrong
    recorded = records[(file, offset)].payload_digest
    if recorded and digest.split(":", 1)[-1] != recorded.split(":", 1)[-1]:
        return f"payload digest {digest}, but the record there has {recorded}"
    return ""


Progress = Callable[[int, int, str], None]  # (done, total, what is being read)


def _verify_collection(cfg: Config, out: _Out, progress: Progress | None = None) -> None:
    collection = Collection.of(cfg)
    if not collection.exists():
        raise UsageError(f"no collection {collection.name!r} under {cfg.root}")
    for leftover in collection.open_files():
        out.problem(leftover.name, None, "open_file",
                    "still being written, or left by a killed capture; `archiver index` mends it")
    for name in collection.irregular_files():
        out.problem(name, None, "unreadable", "not a regular file (a FIFO, a device or a broken link): never read")
    files = collection.warc_files()
    for done, path in enumerate(files):
        if progress is not None:
            progress(done, len(files), path.name)
        out.report.records += check_file(path, path.name, out)
        out.report.files += 1
    records = out.records if out.records is not None else {}
    names = {path.name for path in files}
    _check_cdxj(collection, names, records, out)
    _check_rows(collection, names, records, out)


def local_only(cfg: Config, command: str) -> None:
    """Commands that read a collection's WARC files from its folder refuse one kept on an object store."""
    if cfg.storage:
        raise UsageError(f"'archiver {command}' reads a collection's files from collections/<name>/archive/, and this "
                         f"root keeps them at {cfg.storage} (storage in config.yaml): copy them to a local root "
                         "first (e.g. 'aws s3 sync'), or give the files to 'archiver verify FILES...'")


def verify(cfg: Config, files: Sequence[Path] = (), *, on_problem: Callable[[Problem], None] | None = None,
           progress: Progress | None = None) -> VerifyReport:
    """Check `files`; with none, the collection's WARC files and its two indexes against them.

    Problems are returned (and passed to `on_problem` as they are found), never raised. A
    missing collection or file raises UsageError.
    """
    report = VerifyReport()
    if not files:
        local_only(cfg, "verify")
        _verify_collection(cfg, _Out(report, on_problem, records={}), progress)
        return report
    for path in files:
        if not path.is_file():
            raise UsageError(f"no such file: {path}")
    out = _Out(report, on_problem)
    for done, path in enumerate(files):
        if progress is not None:
            progress(done, len(files), str(path))
        report.records += check_file(path, str(path), out)
        report.files += 1
    return report
