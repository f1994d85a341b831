"""Export the metadata index, one row per seed, for people who analyse collections.

Formats: csv and jsonl (text, exact), parquet (typed columns, for DuckDB, pandas, pyarrow), and
cdxj (the collection's replay index as is). For the row formats the filters (`Filters`) run in
SQL over the metadata index, so that only matching rows leave SQLite; for cdxj, line by line.
Every format streams, so memory stays flat however large the collection.
"""

from __future__ import annotations

import contextlib
import csv
import email.utils
import ipaddress
import json
import math
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from archiver._arrow import pyarrow
from archiver._fs import output_file
from archiver.collection import Collection
from archiver.config import Config
from archiver.errors import UsageError
from archiver.index.cdxj import parse_line
from archiver.index.metadata import FIELDS, Store
from archiver.index.versions import VERSION_COLUMNS
from archiver.warc.record import article_url

FORMATS = ("csv", "jsonl", "parquet", "cdxj")
TEXT_FORMATS = ("csv", "jsonl", "cdxj")
TIME_FIELDS = ("seed", "capture")
# Rows handed to the Parquet writer at a time (one row group each): bounds memory, not output.
BATCH_ROWS = 10_000
# A cell starting with one of these is run as a formula by spreadsheet programs (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_REASON = re.compile(r"[a-z][a-z0-9_]*")
_STATUS_CLASS = re.compile(r"[1-5]xx")
# The order of Store.articles(), so that an unfiltered export is the same whichever way it is read.
_ORDER = "ORDER BY seed_timestamp IS NULL, seed_timestamp, url"


def safe_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return "" if value is None else value


# --- filters ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Filters:
    """Which rows to export. Empty filters keep every row; different filters must all match.

    `since` (inclusive) and `until` (exclusive) are aware UTC datetimes compared with the seed
    time, or the capture time when `time_field` is "capture" (None: seed for rows, capture for
    cdxj, whose only time is the capture's). `statuses` and `hosts` match when any value does.
    """

    since: datetime | None = None
    until: datetime | None = None
    time_field: str | None = None
    statuses: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()

    @classmethod
    def parse(cls, since: str | None = None, until: str | None = None, time_field: str | None = None,
              statuses: Sequence[str] = (), hosts: Sequence[str] = ()) -> Filters:
        """Filters from command-line text; raises UsageError on anything it cannot read."""
        start = parse_time(since, "--since") if since else None
        end = parse_time(until, "--until") if until else None
        if start is not None and end is not None and start >= end:
            raise UsageError(f"--since {since} is not before --until {until}: no row could match")
        if time_field is not None and time_field not in TIME_FIELDS:
            raise UsageError(f"unknown time field {time_field!r} (choose from {', '.join(TIME_FIELDS)})")
        return cls(start, end, time_field, tuple(_status_value(s) for s in statuses),
                   tuple(_host_value(h) for h in hosts))

    @property
    def timed(self) -> bool:
        return self.since is not None or self.until is not None


def parse_time(text: str, option: str = "time") -> datetime:
    """An ISO 8601 date or date-time as an aware UTC datetime; no offset means UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        _seconds(value)  # rounded up later: the year 9999's last second would overflow there
    except (ValueError, OverflowError):
        raise UsageError(f"{option} {text!r} is not an ISO 8601 date or date-time "
                         "(e.g. 2024-01-31, 2024-01-31T12:00, 2024-01-31T12:00:00+08:00)") from None
    return value


def _status_value(text: str) -> str:
    value = text.strip().lower()
    if value.isdigit() and 100 <= int(value) <= 599:
        return str(int(value))
    if _STATUS_CLASS.fullmatch(value) or _REASON.fullmatch(value):
        return value
    raise UsageError(f"--status {text!r}: give an HTTP status (200), a class (4xx), 'captured', 'failed', "
                     "'edited', 'removed' or an error reason (http_404, timeout, dns_error, ...)")


def _host_value(text: str) -> str:
    value = _norm_host(text.strip().removeprefix("*.").removeprefix("[").removesuffix("]"))
    if ":" in value:  # an IPv6 address, or a mistaken host:port that could never match
        with contextlib.suppress(ValueError):
            return str(ipaddress.IPv6Address(value))
    elif value and not value.startswith(".") and not any(c in value for c in "/@ \t"):
        return value
    raise UsageError(f"--host {text!r}: give a host name such as example.org (it also matches its subdomains)")


def _norm_host(host: str) -> str:
    """Lower case, no trailing dot, IDNA (punycode) where possible: one spelling for comparing."""
    host = host.lower().rstrip(".")
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:  # labels the IDNA 2003 codec refuses are compared as written
        return host


def _url_host(url: str) -> str:
    try:
        return _norm_host(urlsplit(url).hostname or "")
    except ValueError:  # junk URLs (bad port, bad IPv6 brackets) have no host to match
        return ""


def _host_matcher(hosts: tuple[str, ...]) -> Callable[[str], bool]:
    suffixes = tuple("." + h for h in hosts)

    def matches(url: str | None) -> bool:
        host = _url_host(url or "")
        return host in hosts or host.endswith(suffixes)

    return matches


def _ms(moment: datetime) -> int:
    """Milliseconds since the epoch, rounded up: `t >= since` and `t < until` hold for whole ms."""
    return math.ceil((moment - _EPOCH) / timedelta(milliseconds=1))


def _seconds(moment: datetime) -> str:
    """YYYY-MM-DDTHH:MM:SSZ rounded up, for comparisons with times kept to the second."""
    whole = moment.replace(microsecond=0)
    whole = whole if whole == moment else whole + timedelta(seconds=1)
    # isoformat pads every year to 4 digits (strftime's %Y does not), so text order is time order
    return whole.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _where(filters: Filters, db: sqlite3.Connection) -> tuple[str, list[object]]:
    """The WHERE clause (with its parameters) selecting the rows `filters` keeps."""
    clauses: list[str] = []
    params: list[object] = []
    if filters.timed:
        if (filters.time_field or "seed") == "seed":
            # seed_timestamp is the seed's epoch ms; seeds without a time (URL lists) never match
            clauses.append("seed_timestamp IS NOT NULL")
            for moment, op in ((filters.since, ">="), (filters.until, "<")):
                if moment is not None:
                    clauses.append(f"seed_timestamp {op} ?")
                    params.append(_ms(moment))
        else:
            # capture_time is always YYYY-MM-DDTHH:MM:SSZ (articles.iso_seconds): text order is time order
            clauses.append("capture_time <> ''")
            for moment, op in ((filters.since, ">="), (filters.until, "<")):
                if moment is not None:
                    clauses.append(f"capture_time {op} ?")
                    params.append(_seconds(moment))
    if filters.statuses:
        anyof: list[str] = []
        for value in filters.statuses:
            if value.isdigit():
                anyof.append("status = ?")
                params.append(int(value))
            elif _STATUS_CLASS.fullmatch(value):
                anyof.append("status BETWEEN ? AND ?")
                params.extend((int(value[0]) * 100, int(value[0]) * 100 + 99))
            elif value == "captured":
                anyof.append("coalesce(error, '') = ''")
            elif value == "failed":
                anyof.append("coalesce(error, '') <> ''")
            elif value == "removed":  # found removed by its last checks (index/versions.py)
                anyof.append("coalesce(removed_at, '') <> ''")
            elif value == "edited":  # a check found it edited, at least once
                anyof.append("EXISTS (SELECT 1 FROM versions v WHERE v.url = articles.url AND v.kind = 'edited')")
            else:
                anyof.append("error = ?")
                params.append(value)
        clauses.append("(" + " OR ".join(anyof) + ")")
    if filters.hosts:
        # SQLite cannot parse URLs; a Python function does it inside the query, row by row
        db.create_function("archiver_host_matches", 1, _host_matcher(filters.hosts), deterministic=True)
        clauses.append("archiver_host_matches(url)")
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


# --- export ----------------------------------------------------------------------------------

def export(cfg: Config, out: IO[str] | Path, fmt: str = "csv",
           filters: Filters | None = None, progress: Callable[[int], None] | None = None,
           versions: bool = False) -> int:
    """Write the collection's rows that pass `filters` to `out`; return how many were written.
    With `versions`, one row per version of those articles instead (index/versions.py).

    `out` is a text stream, or a Path that is then written atomically (a temporary file renamed
    over it when complete, so a reader never sees half an export). parquet needs a Path.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    if fmt not in TEXT_FORMATS and not isinstance(out, Path):
        raise UsageError(f"{fmt} is a binary format: give a file to write with -o FILE")
    filters = filters or Filters()
    collection = Collection.of(cfg)
    if fmt == "cdxj":
        if versions:
            raise UsageError("--versions: cdxj lines are records; every version's records are in the cdxj export")
        return _export_cdxj(collection, out, filters)
    if not collection.db_path.exists():
        raise UsageError(f"collection {collection.name!r} has no metadata index under {cfg.root} "
                         "(capture something, or run 'archiver index')")
    with Store(collection.db_path, readonly=True) as store:
        where, params = _where(filters, store.db)
        columns: tuple[str, ...] = FIELDS
        if versions:
            columns = VERSION_COLUMNS
            cursor = store.db.execute(f"SELECT {', '.join(VERSION_COLUMNS)} FROM versions WHERE url IN "
                                      f"(SELECT url FROM articles{where}) ORDER BY url, version", params)
        else:
            cursor = store.db.execute(f"SELECT {', '.join(FIELDS)} FROM articles{where} {_ORDER}", params)
        if isinstance(out, Path) and fmt == "parquet":
            with _file_output(out, None) as binary:
                return _write_parquet(cursor, binary, progress, versions)
        rows: Iterator[tuple[Any, ...]] = cursor if progress is None else _counted(cursor, progress)
        with _text_output(out) as stream:
            return _write_text(rows, stream, fmt, columns)


def _counted(rows: Iterator[tuple[Any, ...]], progress: Callable[[int], None],
             every: int = 10_000) -> Iterator[tuple[Any, ...]]:
    for number, row in enumerate(rows, 1):
        if number % every == 0:
            progress(number)
        yield row


def _write_text(rows: Iterator[tuple[Any, ...]], out: IO[str], fmt: str, columns: tuple[str, ...] = FIELDS) -> int:
    count = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([safe_cell(v) for v in row])
            count += 1
    else:
        for row in rows:
            out.write(json.dumps(dict(zip(columns, row, strict=True)), ensure_ascii=False) + "\n")
            count += 1
    return count


@contextlib.contextmanager
def _file_output(path: Path, encoding: str | None) -> Iterator[IO[Any]]:
    """`path` written whole (_fs.output_file); a path that cannot be written is a usage error."""
    if path.is_dir():
        raise UsageError(f"cannot write {path}: it is a directory")
    with contextlib.ExitStack() as stack:
        try:  # fails at once, with a plain message, where the file cannot be made
            out = stack.enter_context(output_file(path, encoding=encoding))
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
        yield out


@contextlib.contextmanager
def _text_output(out: IO[str] | Path) -> Iterator[IO[str]]:
    if not isinstance(out, Path):
        yield out
        return
    with _file_output(out, "utf-8") as stream:
        yield stream


def _export_cdxj(collection: Collection, out: IO[str] | Path, filters: Filters) -> int:
    """The replay index, line for line, keeping the lines whose record passes `filters`."""
    if not collection.cdxj_path.exists():
        raise UsageError(f"collection {collection.name!r} has no replay index {collection.cdxj_path} "
                         "(capture something, or run 'archiver index')")
    if filters.timed and filters.time_field == "seed":
        raise UsageError("cdxj lines carry only the capture time: use --time-field capture (or leave it out)")
    keep = _cdxj_filter(filters)
    count = 0
    with collection.cdxj_path.open(encoding="utf-8", newline="") as src, _text_output(out) as stream:
        for line in src:  # streamed: the index can be far larger than memory
            if keep(line):
                stream.write(line)
                count += 1
    return count


def _cdxj_filter(filters: Filters) -> Callable[[str], bool]:
    statuses = filters.statuses
    for value in statuses:
        if not (value.isdigit() or _STATUS_CLASS.fullmatch(value)):
            raise UsageError(f"--status {value}: cdxj lines are records, not seeds; "
                             "only HTTP statuses (200) and classes (4xx) apply")
    # the CDXJ timestamp is the capture time as 14 digits
    since = re.sub(r"\D", "", _seconds(filters.since)) if filters.since else ""
    until = re.sub(r"\D", "", _seconds(filters.until)) if filters.until else ""
    host_ok = _host_matcher(filters.hosts) if filters.hosts else None
    if not (since or until or statuses or host_ok):
        return lambda line: True

    def keep(line: str) -> bool:
        parsed = parse_line(line)
        if parsed is None:
            return False
        stamp = parsed.timestamp
        if (since and stamp < since) or (until and stamp >= until):
            return False
        fields = parsed.fields()
        if fields is None:
            return False
        if statuses and not any(_status_matches(v, str(fields.get("status", ""))) for v in statuses):
            return False
        return host_ok is None or host_ok(article_url(str(fields.get("url", ""))))

    return keep


def _status_matches(value: str, status: str) -> bool:
    return status == value if value.isdigit() else (len(status) == 3 and status[0] == value[0])


# --- parquet ---------------------------------------------------------------------------------

def _instant_ms(text: str | None) -> int | None:
    """Epoch ms of an ISO 8601 time that names its zone (Z or an offset); None otherwise."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        try:  # RFC 2822 dates ("Fri, 06 Oct 2023 02:11:00 GMT") appear in some pages' meta tags
            value = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if value.tzinfo is None:
        return None  # a local time without offset is no instant: guessing a zone would be wrong
    return _ms(value)


def parquet_schema() -> Any:
    """Column types: times as UTC timestamps (ms), counts as nullable integers, the rest strings.

    `published` stays the page's string (it may have an offset, or none, or be a bare date);
    `published_utc` beside it is that instant where the string names its zone, else null.
    """
    pa = pyarrow()
    stamp = pa.timestamp("ms", tz="UTC")
    types = dict.fromkeys(FIELDS, pa.string())
    types.update(seed_timestamp=stamp, seed_time=stamp, capture_time=stamp, status=pa.int32(),
                 lead_image_status=pa.int32(), warc_offset=pa.int64(), warc_length=pa.int64(), attempts=pa.int32(),
                 requisites=pa.int32(), requisites_failed=pa.int32(), requisites_skipped=pa.int32(),
                 versions=pa.int32(), checks=pa.int32(), last_checked=stamp, last_changed=stamp, removed_at=stamp,
                 next_check=stamp)
    columns = []
    for name in FIELDS:
        columns.append(pa.field(name, types[name]))
        if name == "published":
            columns.append(pa.field("published_utc", stamp))
    return pa.schema(columns)


def versions_schema() -> Any:
    """The Parquet schema of `export --versions`."""
    pa = pyarrow()
    stamp = pa.timestamp("ms", tz="UTC")
    types = dict.fromkeys(VERSION_COLUMNS, pa.string())
    types.update(version=pa.int32(), first_seen=stamp, last_seen=stamp, text_length=pa.int64(), status=pa.int32(),
                 warc_offset=pa.int64(), warc_length=pa.int64())
    return pa.schema([pa.field(name, types[name]) for name in VERSION_COLUMNS])


def _write_parquet(cursor: sqlite3.Cursor, out: IO[bytes], progress: Callable[[int], None] | None = None,
                   versions: bool = False) -> int:
    # imported here: pyarrow is large, and only this format needs it
    pyarrow()
    import pyarrow.parquet as pq

    schema = versions_schema() if versions else parquet_schema()
    count = 0
    with pq.ParquetWriter(out, schema) as writer:
        while batch := cursor.fetchmany(BATCH_ROWS):
            writer.write_batch(_record_batch(schema, batch, _VERSION_COLUMN if versions else _SOURCE_COLUMN))
            count += len(batch)
            del batch  # dropped before the next is fetched: one batch in memory at a time
            if progress is not None:
                progress(count)
    return count


_SOURCE_COLUMN = {name: i for i, name in enumerate(FIELDS)} | {"published_utc": FIELDS.index("published")}
_CONVERT: dict[str, Callable[[Any], Any]] = {
    "seed_time": _instant_ms, "capture_time": _instant_ms, "published_utc": _instant_ms,
    "last_checked": _instant_ms, "last_changed": _instant_ms, "removed_at": _instant_ms, "next_check": _instant_ms,
    "first_seen": _instant_ms, "last_seen": _instant_ms,  # (of export --versions)
}
_VERSION_COLUMN = {name: i for i, name in enumerate(VERSION_COLUMNS)}


def _record_batch(schema: Any, rows: list[tuple[Any, ...]], source: dict[str, int]) -> Any:
    """A Parquet batch of `rows`, each column taken from the row's value at `source[name]`."""
    pa = pyarrow()
    columns = list(zip(*rows, strict=True))
    arrays = []
    for field in schema:
        values = columns[source[field.name]]
        if field.name in _CONVERT:
            values = tuple(map(_CONVERT[field.name], values))
        arrays.append(pa.array(values, type=field.type))
    return pa.record_batch(arrays, schema=schema)
