"""Checking WARC and ARC files record by record, whoever wrote them, and finding where a cut file's
last complete record ends (`complete_end`, which `mend` cuts to).

Reads any WARC or ARC: gzip with one member per record, gzip over the whole file, uncompressed,
ARC and ARC.gz. Everything streams: no file, record or body is held in memory, and digests are
computed while reading, so a 100 MB record costs a 1 MB buffer.

The framing is checked here rather than through warcio, because warcio's iterator (and `warcio
check`, cdxj-indexer, pywb) accept a .warc.gz cut in the middle of a record: every record must
have Content-Length block bytes followed by CRLF CRLF, and every gzip member must be complete.
Where warcio is lenient on purpose (blank lines between records, digests in any RFC 3548
encoding, a `Transfer-Encoding: chunked` header kept on a body stored de-chunked), so is this.
Damage is reported, never raised.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from archiver.errors import WarcError
from archiver.warc.record import MAX_HEADER_LINE, target_uri

CHUNK = 1 << 20  # bytes read (or inflated) at a time: the memory bound per file
MAX_LINE = MAX_HEADER_LINE  # one header line of a WARC/ARC record
MAX_HEAD = 1 << 20  # all header lines of a WARC record, or an HTTP head inside a block
END = b"\r\n\r\n"  # what must follow every WARC record's block

# Every problem kind a file can have, for --help and for whoever parses the output.
FILE_KINDS: dict[str, str] = {
    "not_a_warc": "the file does not start with a WARC or ARC record, or is empty",
    "unreadable": "the file cannot be opened or read",
    "bad_header": "a record header that cannot be parsed, lacks Content-Length, or has lines not in CRLF",
    "truncated": "a record cut short: the file or gzip member ends in it, or CRLF CRLF does not follow "
    "its Content-Length bytes (cut, or Content-Length wrong)",
    "bad_gzip": "damaged compressed data, or bytes that are no gzip member where one should start",
    "whole_file_gzip": "a gzip member holding several records (whole file gzipped): `warcio recompress` mends it",
    "misaligned_gzip_members": "a record spread over several gzip members instead of exactly one",
    "bad_chunking": "an HTTP body sent with Transfer-Encoding: chunked whose chunk framing is broken",
    "block_digest_mismatch": "WARC-Block-Digest does not match the block",
    "payload_digest_mismatch": "WARC-Payload-Digest does not match the payload",
    "unknown_digest": "a digest that cannot be checked: unknown algorithm, or not 'algorithm:value'",
}



@dataclass(frozen=True)
class Problem:
    file: str
    offset: int | None  # where the record (or its gzip member) starts; None for whole-file problems
    kind: str  # one of KINDS
    detail: str

    def __str__(self) -> str:
        where = "" if self.offset is None else f" @{self.offset}"
        return f"{self.file}{where}: {self.kind}: {self.detail}"



@dataclass(frozen=True)
class RecordSeen:
    """What the index checks need to know of one record that starts at an offset of its own."""

    rtype: str
    uri: str
    date: str
    lengths: tuple[int, ...]  # lengths that delimit exactly this record; empty if none does
    payload_digest: str



class Findings:
    """What a check found: every problem (handed to `on_problem` as it is found) and, when `records`
    is given, what the collection checks need to know of every record, by (file, offset)."""

    def __init__(self, on_problem: Callable[[Problem], None],
                 records: dict[tuple[str, int], RecordSeen] | None = None) -> None:
        self.on_problem = on_problem
        self.records = records

    def problem(self, file: str, offset: int | None, kind: str, detail: str) -> None:
        self.on_problem(Problem(file, offset, kind, detail))


class _Damage(Exception):
    """The file cannot be read on from here."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


class _Resync(_Damage):
    """This record is damaged, but the next one can be looked for."""


class _Stop(Exception):
    """The file cannot be read further (already reported)."""


# --- byte streams: plain files, and gzip files with their member boundaries ------------------

class _Stream:
    """Buffered reading with `unread`; `pos` counts the bytes delivered (decompressed for gzip)."""

    compressed = False

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self._buf = b""
        self._i = 0
        self._base = 0  # pos of _buf[0]

    @property
    def pos(self) -> int:
        return self._base + self._i

    def _more(self) -> bool:
        raise NotImplementedError

    def read(self, n: int) -> bytes:
        """Up to n bytes (fewer at a buffer edge); b"" only at the end of the file."""
        if self._i >= len(self._buf) and not self._more():
            return b""
        out = self._buf[self._i:self._i + n]
        self._i += len(out)
        return out

    def readline(self, limit: int = MAX_LINE) -> bytes:
        """One line with its b"\\n"; shorter only at the end of the file or at `limit` bytes."""
        parts: list[bytes] = []
        size = 0
        while size < limit and (self._i < len(self._buf) or self._more()):
            stop = min(len(self._buf), self._i + limit - size)
            newline = self._buf.find(b"\n", self._i, stop)
            end = newline + 1 if newline >= 0 else stop
            parts.append(self._buf[self._i:end])
            size += end - self._i
            self._i = end
            if newline >= 0:
                break
        return b"".join(parts)

    def take_through(self, marker: bytes, limit: int) -> bytes | None:
        """Everything up to and including `marker` if the current buffer holds it within `limit`."""
        if self._i >= len(self._buf) and not self._more():
            return None
        found = self._buf.find(marker, self._i, self._i + limit)
        if found < 0:
            return None
        out = self._buf[self._i:found + len(marker)]
        self._i = found + len(marker)
        return out

    def peek(self, n: int) -> bytes:
        """Up to n bytes ahead, from the current buffer only."""
        if self._i >= len(self._buf):
            self._more()
        return self._buf[self._i:self._i + n]

    def unread(self, data: bytes) -> None:
        if self._i >= len(data) and self._buf[self._i - len(data):self._i] == data:
            self._i -= len(data)  # the usual case: keeps the member bookkeeping exact
            return
        pos = self.pos - len(data)
        self._buf, self._i, self._base = data + self._buf[self._i:], 0, pos

    def start(self) -> tuple[int, bool, int]:
        """(file offset, whether a record starting here is addressable, serial of its first member)."""
        return self.pos, True, 0

    def end(self) -> int | None:
        """File offset just past a record that ends here, or None if it ends inside a member."""
        return self.pos

    def aligned(self) -> bool:
        return True

    def member_ended(self) -> bool:
        return True

    def last_serial(self) -> int:
        """Serial of the gzip member holding the last byte read."""
        return 0


class _PlainStream(_Stream):
    def _more(self) -> bool:
        data = self._fh.read(CHUNK)
        if not data:
            return False
        self._buf, self._i, self._base = data, 0, self.pos
        return True


class _GzipStream(_Stream):
    """The decompressed bytes of a multi-member gzip file, knowing where each member starts and ends.

    The buffer never holds bytes of two members, so the member state describes the read position.
    """

    compressed = True

    def __init__(self, fh: IO[bytes]) -> None:
        super().__init__(fh)
        self._raw = b""  # compressed bytes not yet consumed
        self._raw_offset = 0  # file offset of _raw[0]
        self._inflater: Any = None
        self._member_offset = 0
        self._member_pos = 0
        self._serial = 0

    def _start_member(self) -> bool:
        if not self._raw:
            self._raw = self._fh.read(CHUNK)
            if not self._raw:
                return False
        self._buf, self._i, self._base = b"", 0, self.pos
        self._member_offset, self._member_pos = self._raw_offset, self.pos
        self._serial += 1
        self._inflater = zlib.decompressobj(wbits=31)
        return True

    def _inflate(self) -> None:
        """Replace the (consumed) buffer with the next output of the current member."""
        if not self._raw:
            self._raw = self._fh.read(CHUNK)
            if not self._raw:
                raise _Damage("truncated", f"the file ends inside the gzip member at offset {self._member_offset}")
        try:
            out = self._inflater.decompress(self._raw, CHUNK)
        except zlib.error as exc:
            raise _Damage("bad_gzip", f"damaged gzip data in the member at offset {self._member_offset}: "
                                      f"{exc}") from exc
        rest = self._inflater.unused_data if self._inflater.eof else self._inflater.unconsumed_tail
        self._raw_offset += len(self._raw) - len(rest)
        self._raw = rest
        self._buf, self._i, self._base = out, 0, self.pos

    def _more(self) -> bool:
        while self._i >= len(self._buf):
            if self._inflater is None or self._inflater.eof:
                if not self._start_member():
                    return False
            else:
                self._inflate()
        return True

    def aligned(self) -> bool:
        """True at the start or at the end of a member."""
        return (self._inflater is not None and self.pos == self._member_pos) or self.member_ended()

    def member_ended(self) -> bool:
        """True when every byte of the current member was read (reading its gzip trailer to make sure)."""
        while self._i >= len(self._buf):
            if self._inflater is None or self._inflater.eof:
                return True
            self._inflate()
        return False

    def start(self) -> tuple[int, bool, int]:
        if self._inflater is not None and self.pos == self._member_pos:
            return self._member_offset, True, self._serial
        if self.aligned():
            return self._raw_offset, True, self._serial + 1
        return self._member_offset, False, self._serial

    def end(self) -> int | None:
        return self._raw_offset if self.aligned() else None

    def last_serial(self) -> int:
        return self._serial - (self.pos == self._member_pos)


# --- digests and chunk framing ---------------------------------------------------------------

_ALGORITHMS = {"sha1": "sha1", "sha-1": "sha1", "sha256": "sha256", "sha-256": "sha256", "md5": "md5",
               "sha512": "sha512", "sha-512": "sha512"}


def _hasher(text: str) -> Any:
    """A hashlib object for a digest field such as `sha1:BASE32`; ValueError when there is none."""
    label, sep, value = text.strip().partition(":")
    if not sep or not value.strip():
        raise ValueError(f"{text!r} is not 'algorithm:value'")
    name = _ALGORITHMS.get(label.strip().lower(), label.strip().lower())
    try:
        return hashlib.new(name)
    except (ValueError, TypeError):  # TypeError: names hashlib cannot even look up
        raise ValueError(f"{text!r} names an unknown algorithm") from None


def _matches(text: str, digest: bytes) -> bool:
    """sha1 is base32 by convention; like warcio, accept any RFC 3548 encoding (hex, base64, url-safe)."""
    value = text.partition(":")[2].strip().rstrip("=")
    return (value.upper() == base64.b32encode(digest).decode().rstrip("=") or value.lower() == digest.hex()
            or value in (base64.b64encode(digest).decode().rstrip("="),
                         base64.urlsafe_b64encode(digest).decode().rstrip("=")))


def _shown(text: str, digest: bytes) -> str:
    return f"{text.partition(':')[0]}:{base64.b32encode(digest).decode()}"


def _head_end(head: bytearray, start: int) -> int:
    """Index just past the empty line that ends an HTTP head (CRLF or bare LF lines), or -1."""
    ends = [i + n for i, n in ((head.find(b"\n\r\n", start), 3), (head.find(b"\n\n", start), 2)) if i >= 0]
    return min(ends) if ends else -1


def _is_chunked(head: bytes) -> bool:
    for line in head.split(b"\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"transfer-encoding":
            return value.strip().lower().split(b",")[-1].strip() == b"chunked"
    return False


class _Dechunker:
    """Checks and removes Transfer-Encoding: chunked framing as the body streams by.

    A body whose first line is no chunk size was stored de-chunked under the original header
    (pywb's and Webrecorder's recorders did so, e.g. iana.warc.gz): warcio and pywb then read it
    as it is, and so does this (`not_chunked`).
    """

    def __init__(self, sink: Callable[[bytes], None]) -> None:
        self.sink = sink
        self.state = "size"  # size, data, data_end, trailer, done
        self.line = bytearray()
        self.left = 0
        self.offset = 0  # body bytes consumed before the current feed
        self.line_at = 0  # body offset where the current line starts, for messages
        self.chunks = 0
        self.not_chunked = False
        self.error = ""

    def feed(self, data: bytes) -> None:
        i = 0
        while i < len(data) and not self.error and not self.not_chunked:
            if self.state == "data":
                take = min(self.left, len(data) - i)
                self.sink(data[i:i + take])
                i += take
                self.left -= take
                self.state = "data" if self.left else "data_end"
            elif self.state == "done":
                self.error = f"bytes follow the last chunk, at body offset {self.offset + i}"
            else:
                i = self._take_line(data, i)
        self.offset += len(data)

    def _take_line(self, data: bytes, i: int) -> int:
        if not self.line:
            self.line_at = self.offset + i
        newline = data.find(b"\n", i)
        end = len(data) if newline < 0 else newline + 1
        self.line += data[i:end]
        if len(self.line) > MAX_LINE:
            self.error = f"a chunk line at body offset {self.line_at} is longer than {MAX_LINE} bytes"
        elif newline >= 0:
            self._line(bytes(self.line).rstrip(b"\r\n"))
            self.line.clear()
        return end

    def _line(self, text: bytes) -> None:
        if self.state == "data_end":
            self.state = "size"
            if text:
                self.error = f"chunk data not followed by CRLF at body offset {self.line_at}"
        elif self.state == "size":
            size = text.split(b";")[0].strip()
            if not size or size.strip(b"0123456789abcdefABCDEF"):
                if self.chunks == 0:
                    self.not_chunked = True
                else:
                    self.error = f"bad chunk size line {text[:40]!r} at body offset {self.line_at}"
                return
            self.chunks += 1
            self.left = int(size, 16)
            self.state = "data" if self.left else "trailer"
        elif not text:  # the empty line that ends the trailer
            self.state = "done"

    def close(self, truncated: bool) -> str:
        """Why the framing is broken; "" when it is sound (or the body is not chunked at all)."""
        if self.error or self.state == "done" or truncated or not self.chunks:
            return self.error  # WARC-Truncated bodies may end anywhere; no size line, no chunking
        if self.state == "data":
            return f"the body ends {self.left} bytes short of the end of a chunk"
        return "the body ends without the last (zero-size) chunk and its empty line"


class _BlockCheck:
    """Everything checked on one record's block as it streams by: digests and chunk framing."""

    def __init__(self, fields: dict[str, str], problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        rtype = fields.get("warc-type", "")
        self.truncated = fields.get("warc-truncated", "")
        self.block_text, self.block_hash = self._digest(fields, "warc-block-digest", "WARC-Block-Digest")
        self.payload_text, self.payload_hash = "", None
        if rtype != "revisit":  # a revisit's payload digest is the original record's
            self.payload_text, self.payload_hash = self._digest(fields, "warc-payload-digest", "WARC-Payload-Digest")
        # the payload of an HTTP record is its body; of any other record, the whole block
        self.http = fields.get("content-type", "").lower().startswith("application/http") and rtype != "revisit"
        self.head: bytearray | None = bytearray() if self.http else None
        self.searched = 0
        self.headless = False  # the HTTP head never ended: no payload
        self.dechunker: _Dechunker | None = None
        self.dechunked_hash: Any = None

    def _digest(self, fields: dict[str, str], key: str, name: str) -> tuple[str, Any]:
        text = fields.get(key, "")
        if not text:
            return "", None
        try:
            return text, _hasher(text)
        except ValueError as exc:
            self.problems.append(("unknown_digest", f"{name} {exc}"))
            return "", None

    def update(self, data: bytes) -> None:
        if self.block_hash is not None:
            self.block_hash.update(data)
        if not self.http:
            if self.payload_hash is not None:
                self.payload_hash.update(data)
            return
        if self.head is not None:
            data = self._head_part(data)
        if data and not self.headless:
            if self.payload_hash is not None:
                self.payload_hash.update(data)
            if self.dechunker is not None:
                self.dechunker.feed(data)

    def _head_part(self, data: bytes) -> bytes:
        """Collect the HTTP head; return what follows it (the start of the body), if it ended."""
        assert self.head is not None
        self.head += data
        end = _head_end(self.head, max(0, self.searched - 3))
        self.searched = len(self.head)
        if end < 0:
            if len(self.head) > MAX_HEAD:  # no end in sight: stop collecting (memory bound)
                self.head, self.headless = None, True
            return b""
        head, rest = bytes(self.head[:end]), bytes(self.head[end:])
        self.head = None
        if _is_chunked(head):
            self.dechunked_hash = hashlib.new(self.payload_hash.name) if self.payload_hash is not None else None
            self.dechunker = _Dechunker(self.dechunked_hash.update if self.dechunked_hash else _ignore)
        return rest

    def finish(self) -> None:
        if self.block_hash is not None and not _matches(self.block_text, digest := self.block_hash.digest()):
            self.problems.append(("block_digest_mismatch", f"WARC-Block-Digest {self.block_text} does not match "
                                                           f"the block ({_shown(self.block_text, digest)})"))
        chunk_error = self.dechunker.close(bool(self.truncated)) if self.dechunker is not None else ""
        if chunk_error:
            self.problems.append(("bad_chunking", f"Transfer-Encoding: chunked body: {chunk_error}"))
        if self.payload_hash is not None:
            self._check_payload(self.payload_hash.digest(), chunk_error)

    def _check_payload(self, framed: bytes, chunk_error: str) -> None:
        # WARC 1.1: the payload of a chunked response is the de-chunked body. warcio wrote the
        # digest of the chunk-framed body instead (warcio issue #74), and warcio check and fastwarc
        # accept either, so files in the wild have both: accept either too.
        candidates = [framed]
        if self.dechunker is not None and self.dechunker.chunks and not chunk_error:
            candidates.insert(0, self.dechunked_hash.digest())
        if any(_matches(self.payload_text, digest) for digest in candidates):
            return
        found = _shown(self.payload_text, candidates[0])
        if len(candidates) > 1:
            found += f"; chunk-framed body {_shown(self.payload_text, framed)}"
        note = f"; the record is WARC-Truncated: {self.truncated}" if self.truncated else ""
        self.problems.append(("payload_digest_mismatch",
                              f"WARC-Payload-Digest {self.payload_text} does not match the payload ({found}){note}"))


def _ignore(_data: bytes) -> None:
    pass


# --- WARC records ----------------------------------------------------------------------------

@dataclass
class _Current:
    """The record being read: what is known of it so far, and what is wrong with it."""

    fields: dict[str, str] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)
    block_end: int = 0  # stream position just past the block


def _line_ending(line: bytes) -> str:
    return "CRLF" if line.endswith(b"\r\n") and not line.endswith(b"\r\r\n") else \
        "CR CR LF" if line.endswith(b"\r\r\n") else "LF"


def _read_fields(stream: _Stream, cur: _Current) -> str:
    """Fill cur.fields (lower-case names) from the header lines; return the first line ending that
    is not CRLF, or ""."""
    # fast path: the whole header in the buffer, every line ending in CRLF (nearly always)
    if stream.peek(2) != b"\r\n" and (head := stream.take_through(END, MAX_HEAD)) is not None:
        if b"\r\r\n" not in head and head.count(b"\n") == head.count(b"\r\n"):
            _parse_fields(head[:-len(END)].split(b"\r\n"), cur)
            return ""
        stream.unread(head)
    lines: list[bytes] = []
    wrong, size = "", 0
    while True:
        line = stream.readline()
        if not line.endswith(b"\n"):
            if len(line) >= MAX_LINE:
                raise _Resync("bad_header", f"a header line is longer than {MAX_LINE} bytes")
            raise _Damage("truncated", "the file ends inside the record header")
        size += len(line)
        if size > MAX_HEAD:
            raise _Resync("bad_header", f"the record header is longer than {MAX_HEAD} bytes")
        if not wrong and _line_ending(line) != "CRLF":
            wrong = _line_ending(line)
        text = line.rstrip(b"\r\n")
        if not text:
            _parse_fields(lines, cur)
            return wrong
        lines.append(text)


def _parse_fields(lines: list[bytes], cur: _Current) -> None:
    last = ""
    for text in lines:
        if text[:1] in (b" ", b"\t") and last:  # a continuation line
            cur.fields[last] += " " + text.strip().decode("utf-8", "replace")
            continue
        name, sep, value = text.partition(b":")
        if not sep:
            raise _Resync("bad_header", f"header line without a colon: {text[:60]!r}")
        last = name.strip().decode("latin-1").lower()
        cur.fields.setdefault(last, value.strip().decode("utf-8", "replace"))


def _content_length(fields: dict[str, str]) -> int:
    value = fields.get("content-length")
    if value is None or not value.isascii() or not value.isdigit():
        raise _Resync("bad_header", f"no valid Content-Length (found {value!r})")
    return int(value)


def _read_block(stream: _Stream, length: int, check: _BlockCheck) -> None:
    left = length
    try:
        while left:
            data = stream.read(min(left, CHUNK))
            if not data:
                raise _Damage("truncated", "the file ends")
            check.update(data)
            left -= len(data)
    except _Damage as exc:
        if exc.kind != "truncated":
            raise
        raise _Damage("truncated", f"{exc.detail}, {length - left} bytes into the {length}-byte block "
                                   "(Content-Length)") from None


def _read_end(stream: _Stream, length: int) -> None:
    """The CRLF CRLF after the block, read byte by byte so that a mismatch can be put back exactly."""
    member_ended = stream.compressed and stream.member_ended()
    for count, expected in enumerate(END):
        byte = stream.read(1)
        if not byte:
            raise _Damage("truncated", f"the file ends after the {length}-byte block, before the closing CRLF CRLF")
        if byte[0] != expected:
            stream.unread(byte)
            if member_ended:
                raise _Resync("truncated", f"the gzip member ends right after the {length}-byte block "
                                           "(Content-Length), without the closing CRLF CRLF")
            found = END[:count] + stream.peek(8)
            raise _Resync("truncated", f"the {length}-byte block (Content-Length) is followed by {found!r}, "
                                       "not CRLF CRLF: the record is cut short or its Content-Length is wrong")


def _warc_record(stream: _Stream, cur: _Current) -> bool:
    """Read and check one WARC record into `cur`; False at the clean end of the file. Raises _Damage."""
    line = stream.readline()
    if not line:
        return False
    if not line.startswith(b"WARC/"):
        raise _Resync("bad_header", f"expected a WARC record, found {line[:40]!r}")
    ending = _read_fields(stream, cur) or (_line_ending(line) if _line_ending(line) != "CRLF" else "")
    if ending:
        cur.problems.append(("bad_header", f"header lines end in {ending}, not CRLF"))
    missing = [name for name in ("WARC-Type", "WARC-Record-ID", "WARC-Date") if name.lower() not in cur.fields]
    if missing:
        cur.problems.append(("bad_header", f"mandatory field(s) missing: {', '.join(missing)}"))
    length = _content_length(cur.fields)
    check = _BlockCheck(cur.fields, cur.problems)
    cur.block_end = stream.pos + length
    _read_block(stream, length, check)
    check.finish()
    _read_end(stream, length)
    return True


def _skip_blank_lines(stream: _Stream, within_member: bool = False) -> None:
    """Blank lines between records are tolerated, as warcio and pywb tolerate them."""
    while not (within_member and stream.member_ended()) and (line := stream.peek(2)) \
            and (line[:1] == b"\n" or line == b"\r\n"):
        stream.read(1 if line[:1] == b"\n" else 2)


def _resync(stream: _Stream) -> bool:
    """Skip to where the next record may start: a gzip member boundary, or a line starting WARC/."""
    at_line_start = True
    while not (stream.compressed and stream.aligned()):
        line = stream.readline()
        if not line:
            return False
        if at_line_start and line.startswith(b"WARC/"):
            stream.unread(line)
            return True
        at_line_start = line.endswith(b"\n")
    return True


class _Walker:
    """Reads one file record by record, reporting problems at each record's offset."""

    def __init__(self, stream: _Stream, name: str, out: Findings) -> None:
        self.stream = stream
        self.name = name
        self.out = out
        self.records = 0
        self.reported_members: set[int] = set()

    def warc(self) -> None:
        while True:
            offset, aligned, first = self.stream.start()
            start_pos = self.stream.pos
            cur = _Current()
            try:
                _skip_blank_lines(self.stream)
                if not self.stream.compressed:
                    offset = start_pos = self.stream.pos  # in a plain file the record starts after them
                if not _warc_record(self.stream, cur):
                    return
            except _Damage as exc:
                self.records += int(self.stream.pos > start_pos)  # a damaged record still counts
                if not self._damaged(offset, aligned, first, cur, exc):
                    return
                continue
            self.records += 1
            self._report(offset, aligned, cur)
            lengths = self._lengths(offset, aligned, first, self._end(offset), cur.block_end)
            if aligned:
                f = cur.fields
                self._remember(offset, f.get("warc-type", ""), f.get("warc-target-uri", ""), f.get("warc-date", ""),
                               lengths, f.get("warc-payload-digest", ""))

    def _damaged(self, offset: int, aligned: bool, first: int, cur: _Current, exc: _Damage) -> bool:
        """Report a damaged record; whether reading can go on with the next one."""
        cur.problems.append((exc.kind, exc.detail))
        self._report(offset, aligned, cur)
        if self.stream.compressed and aligned:
            self._spans(offset, first)
        return isinstance(exc, _Resync) and _resync(self.stream)

    def _report(self, offset: int, aligned: bool, cur: _Current) -> None:
        where = ""
        if not aligned:  # several records share this offset: say which one
            where = (f" [{cur.fields.get('warc-type', '?')} record {cur.fields.get('warc-record-id', '?')}, "
                     f"inside the gzip member at {offset}]")
        for kind, detail in cur.problems:
            self.out.problem(self.name, offset, kind, detail + where)

    def _end(self, offset: int) -> int | None:
        """Where the record's member ends (None: inside it), after any blank lines it holds."""
        try:
            if self.stream.compressed:
                _skip_blank_lines(self.stream, within_member=True)
            return self.stream.end()
        except _Damage as exc:  # e.g. cut inside the gzip trailer, after the record's last byte
            self.out.problem(self.name, offset, exc.kind, f"{exc.detail}, after the record's last byte")
            raise _Stop from None

    def _lengths(self, offset: int, aligned: bool, first: int, end: int | None, block_end: int) -> tuple[int, ...]:
        """The lengths that delimit the record just read; in gzip, check that it is exactly one member."""
        if not self.stream.compressed:
            # warcio (so archiver's index and cdxj-indexer) counts an uncompressed record without
            # the CRLF CRLF (ARC: newline) after its block; others count it: accept both
            return () if end is None else (block_end - offset, end - offset)
        if not aligned:
            return ()  # the record shares a member with the one before: reported with that one
        spans = self._spans(offset, first)
        if spans == 1 and end is None:
            self._member_problem(offset, "whole_file_gzip",
                                 f"the gzip member at offset {offset} holds more than one record (the whole "
                                 "file gzipped at once?): they cannot be reached by offset; "
                                 "`warcio recompress` mends it")
        return (end - offset,) if spans == 1 and end is not None else ()

    def _spans(self, offset: int, first: int) -> int:
        spans = self.stream.last_serial() - first + 1
        if spans > 1:
            self._member_problem(offset, "misaligned_gzip_members",
                                 f"the record runs over {spans} gzip members; each record must be exactly one")
        return spans

    def _member_problem(self, offset: int, kind: str, detail: str) -> None:
        if offset not in self.reported_members:
            self.reported_members.add(offset)
            self.out.problem(self.name, offset, kind, detail)

    def _remember(self, offset: int, rtype: str, uri: str, date: str, lengths: tuple[int, ...],
                  digest: str) -> None:
        if self.out.records is not None:
            self.out.records[(self.name, offset)] = RecordSeen(rtype, target_uri(uri), date, lengths, digest)

    # --- ARC: "URL IP DATE MIME LENGTH\n", LENGTH bytes, "\n"; the first record is filedesc:// ---

    def arc(self) -> None:
        version = b"1"
        while True:
            offset, aligned, first = self.stream.start()
            try:
                found = self._arc_record(offset, aligned, first, version)
            except _Damage as exc:
                self.out.problem(self.name, offset, exc.kind, exc.detail)
                return
            if found is None:
                return
            self.records += 1
            version = found or version

    def _arc_record(self, offset: int, aligned: bool, first: int, version: bytes) -> bytes | None:
        """Read one ARC record; the ARC version if it is the filedesc record, else b""; None at the end."""
        line = self.stream.readline()
        if not line:
            return None
        parts = line.rstrip(b"\r\n").split(b" ")
        fixed = 9 if version == b"2" else 4  # fields after the URL, which may contain spaces
        if not line.endswith(b"\n") or len(parts) <= fixed or not parts[-1].isdigit():
            raise _Damage("bad_header", f"ARC record header {line[:80]!r} has no valid length")
        length = int(parts[-1])
        version_line = self.stream.peek(1)
        left = length
        while left and (data := self.stream.read(min(left, CHUNK))):
            left -= len(data)
        if left:
            raise _Damage("truncated", f"the file ends {length - left} bytes into the {length}-byte ARC block")
        block_end = self.stream.pos
        if not self._skip_newlines():  # every record ends with a newline (filedesc with two)
            raise _Damage("truncated", f"the {length}-byte ARC block is not followed by a newline: cut short "
                                       "or its length is wrong")
        lengths = self._lengths(offset, aligned, first, self._end(offset), block_end)
        url = b" ".join(parts[:-fixed]).decode("utf-8", "replace")
        rtype = "warcinfo" if url.startswith("filedesc:") else "response"
        if aligned:
            self._remember(offset, rtype, url, parts[-fixed + 1].decode("latin-1"), lengths, "")
        return version_line if rtype == "warcinfo" else b""

    def _skip_newlines(self) -> int:
        count = 0
        while not (self.stream.compressed and self.stream.aligned()):
            byte = self.stream.read(1)
            if byte != b"\n":
                self.stream.unread(byte)
                break
            count += 1
        return count


def check_file(path: Path, name: str, out: Findings) -> int:
    """Check one WARC/ARC file (`name`: how problems name it); returns the number of records read."""
    try:
        fh = path.open("rb")
    except OSError as exc:
        out.problem(name, None, "unreadable", str(exc))
        return 0
    with fh:
        stream: _Stream = _GzipStream(fh) if fh.read(2) == b"\x1f\x8b" else _PlainStream(fh)
        fh.seek(0)
        walker = _Walker(stream, name, out)
        try:
            head = stream.peek(16)
            if head.startswith(b"WARC/"):
                walker.warc()
            elif head.startswith(b"filedesc://"):
                walker.arc()
            else:
                hint = (": a WACZ (a ZIP) holds WARC files, which can be checked after unzipping its archive/ "
                        "folder; `wacz validate` checks the package" if head.startswith(b"PK\x03\x04") else "")
                out.problem(name, 0, "not_a_warc", (f"starts with {head!r}" if head else "empty file") + hint)
        except _Damage as exc:
            out.problem(name, 0, exc.kind, exc.detail)
        except _Stop:
            pass
        except OSError as exc:
            out.problem(name, None, "unreadable", str(exc))
        return walker.records


# Problems that leave the file's framing intact: the records before and after can still be found.
_CONTENT_KINDS = frozenset({"block_digest_mismatch", "payload_digest_mismatch", "unknown_digest", "bad_chunking"})


def complete_end(path: Path) -> int:
    """Where the last complete record before the first damage to the file's framing ends: a file cut
    by a crash keeps its records up to here (0: not even the first one is complete)."""
    cuts: list[int] = []

    def found(problem: Problem) -> None:
        if problem.offset is None:  # the file could not be read at all: nothing is known to be complete
            raise WarcError(str(problem))
        if problem.kind not in _CONTENT_KINDS:
            cuts.append(problem.offset)

    check_file(path, path.name, Findings(found))
    return min(cuts, default=path.stat().st_size)
