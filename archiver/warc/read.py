"""Reading a WARC file's records for indexing: FastWARC where it answers as warcio would, else warcio.

Replay depends on every record's offset and length being exactly where pywb (which reads with
warcio) finds the record, so warcio is the reference. FastWARC (C++) reads a gzip WARC with far less
CPU than warcio (bench/README.md, "Measurements behind the code"), but it answers differently on
some files other tools write: it reads damaged or oddly framed files that warcio refuses, it gives
uncompressed records other lengths, and it leaves spaces in target URIs that warcio %-encodes. So
FastWARC reads a file only when it is gzip and not ARC, its records must sit one after another from
byte 0 to the end of the file, each exactly one gzip member (checked against the member's gzip
trailer), and anything else sends the whole file to warcio (`Unsure`): the caller reads it again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

# what to read of a record's body, given (record type, header lookup, HTTP Content-Type or None):
# at most this many bytes (0: nothing). A metadata/resource block, or a response's payload as sent
# (content encoding and chunking kept).
Want = Callable[[str, Callable[[str], str | None], str | None], int]


@dataclass(slots=True)
class RecordRead:
    """One record as the index needs it."""

    rec_type: str
    headers: list[tuple[str, str]]  # WARC headers in file order
    http: bool  # an HTTP message was parsed from the block
    http_status: str
    http_content_type: str
    http_content_encoding: str
    body: bytes | None  # what `want` asked for
    offset: int
    length: int

    def header(self, name: str) -> str | None:
        """The first value of a WARC header, whatever the case of its name (as warcio's get_header)."""
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None


class Unsure(Exception):
    """FastWARC's reading of a file is not certain to match warcio's: read it with warcio."""


def fast_readable(path: Path) -> bool:
    """Worth trying FastWARC: a gzip WARC (ARC files are converted by warcio's reader only)."""
    if ".arc" in path.name.lower():
        return False
    with path.open("rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def read_fast(path: Path, want: Want) -> Iterator[RecordRead]:
    """Records by FastWARC; raises Unsure (possibly after some records) when warcio must decide."""
    from fastwarc.warc import ArchiveIterator as FastIterator  # here: capture workers never load it

    size = path.stat().st_size
    held: tuple[RecordRead, int] | None = None  # a record's length is known once the next one starts
    with path.open("rb") as fh:
        try:
            for record in FastIterator(fh, parse_http=True):
                offset = record.stream_pos
                if held is None and offset != 0:
                    raise Unsure(f"first record at {offset}")
                if held is not None:
                    yield _one_member(fh, *held, offset)
                held = _fast_record(record, offset, want)
        except Unsure:
            raise
        except Exception as exc:  # anything FastWARC raises: warcio's reading decides
            raise Unsure(f"{type(exc).__name__}: {exc}") from exc
        if held is not None:
            yield _one_member(fh, *held, size)


def _one_member(fh: IO[bytes], record: RecordRead, inflated: int, end: int) -> RecordRead:
    """The record, if the bytes from its offset to `end` are one gzip member holding exactly it.

    FastWARC reports where records start, not where gzip members do; warcio (and so pywb) reads a
    record as one member. The member's gzip trailer says how many bytes it inflates to (ISIZE,
    modulo 2**32): that must be the record's header block, its Content-Length and the closing
    CRLF CRLF. A record over several members, or two in one, or a cut file, fails this.
    """
    if end <= record.offset:
        raise Unsure(f"record at {end} after one at {record.offset}")
    fd = fh.fileno()
    if os.pread(fd, 2, record.offset) != b"\x1f\x8b":
        raise Unsure(f"no gzip member at {record.offset}")
    trailer = os.pread(fd, 4, end - 4)
    if len(trailer) != 4 or int.from_bytes(trailer, "little") != inflated % (1 << 32):
        raise Unsure(f"the bytes {record.offset}-{end} are not one gzip member holding one record")
    record.length = end - record.offset
    return record


def _fast_record(record: object, offset: int, want: Want) -> tuple[RecordRead, int]:
    """The record, and how many bytes it takes uncompressed if written as FastWARC parsed it."""
    r: object = record
    headers = r.headers  # type: ignore[attr-defined]
    rtype = str(r.record_type)  # type: ignore[attr-defined]
    if rtype == "unknown":
        raise Unsure("a record type FastWARC does not know")
    declared = headers.get("Content-Length") or ""
    if not declared.isdigit():
        raise Unsure("no valid Content-Length")
    raw = headers.items_bytes()
    # (FastWARC's own content_length is the payload's once the HTTP headers are parsed)
    inflated = len(headers.status_line_bytes) + 2 + sum(len(k) + len(v) + 4 for k, v in raw) + 2 + int(declared) + 4
    pairs = list(headers.items())
    http = r.http_headers if r.is_http else None  # type: ignore[attr-defined]
    content_type = status = encoding = ""
    if http is not None:
        content_type = http.get("Content-Type") or ""
        encoding = http.get("Content-Encoding") or ""
        status = "" if http.status_code is None else str(http.status_code)
    uri = headers.get("WARC-Target-URI")
    if uri is not None and " " in uri:
        raise Unsure("a space in WARC-Target-URI")  # warcio rewrites it; pywb looks it up rewritten
    limit = want(rtype, headers.get, content_type if http is not None else None)
    body = r.reader.read(limit) if limit else None  # type: ignore[attr-defined]
    return RecordRead(rtype, pairs, http is not None, status, content_type, encoding, body, offset, 0), inflated


# The longest line warcio may read: its readline grows a line until it finds a newline, so a file
# of zeros (or a run of them inside one) would hold gigabytes; a longer line makes the file unreadable.
MAX_LINE = 1 << 20


def warcio_iterator(fh: IO[bytes], **options: Any) -> Any:
    """warcio's ArchiveIterator over `fh`, every line it reads bounded by MAX_LINE (ValueError past it)."""
    # imported here: warcio imports fsspec (megabytes in every process), and most files never need it
    from warcio.archiveiterator import ArchiveIterator

    iterator = ArchiveIterator(fh, **options)
    reader = iterator.reader  # every record header, and (through LimitReader) every HTTP head, is read here
    unbounded = reader.readline

    def readline(length: int | None = None) -> bytes:
        line: bytes = unbounded(MAX_LINE if length is None else min(length, MAX_LINE))
        if len(line) >= MAX_LINE and not line.endswith(b"\n"):
            raise ValueError(f"a line longer than {MAX_LINE} bytes: not WARC or HTTP headers")
        return line

    reader.readline = readline
    return iterator


def read_warcio(path: Path, want: Want) -> Iterator[RecordRead]:
    """Records by warcio (the reference); a file it cannot read raises ValueError."""
    from warcio.exceptions import ArchiveLoadFailed

    with path.open("rb") as fh:
        iterator = warcio_iterator(fh, arc2warc=True)
        try:
            for record in iterator:
                rec_headers = record.rec_headers
                rtype = record.rec_type
                http = record.http_headers
                content_type = encoding = status = ""
                if http is not None:
                    content_type = http.get_header("Content-Type") or ""
                    encoding = http.get_header("Content-Encoding") or ""
                    status = http.get_statuscode() or ""
                limit = want(rtype, rec_headers.get_header, content_type if http is not None else None)
                body = None
                if limit:
                    stream = record.raw_stream if http is not None else record.content_stream()
                    body = stream.read(limit)
                iterator.read_to_end(record)
                # (warcio's get_record_offset() reads the record to its end: ask only now)
                yield RecordRead(rtype, list(rec_headers.headers), http is not None, status, content_type,
                                 encoding, body, iterator.get_record_offset(), iterator.get_record_length())
        except ArchiveLoadFailed as exc:
            raise ValueError(str(exc)) from exc
