"""The one place that knows WARC details: building records, writing files, finding records.

Files are gzip WARC 1.1, one record per gzip member, opened by a warcinfo record. A file is
written as `<name>.open` and renamed when complete, so a finished name always means a complete
file; a leftover `.open` file is mended by cutting it back to its last complete record.
"""

from __future__ import annotations

import io
import os
import types
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from warcio.statusandheaders import StatusAndHeaders
from warcio.timeutils import datetime_to_iso_date
from warcio.warcwriter import WARCWriter

from . import __version__
from .errors import WarcError

WARC_VERSION = "1.1"
OPEN_SUFFIX = ".open"

# archiver's own WARC header fields on the seed's metadata record (extension fields, WARC 1.1 §5)
SOURCE = "Archiver-Source"
ERROR = "Archiver-Error"
LEAD_IMAGE = "Archiver-Lead-Image"
LEAD_IMAGE_STATUS = "Archiver-Lead-Image-Status"
ATTEMPTS = "Archiver-Attempts"
SEED_DOCUMENT_TYPE = "text/markdown; charset=utf-8"
URL_SEED_TYPE = "text/uri-list; charset=utf-8"
FEED_COPY_HOST = "feed-copy.invalid"  # RFC 2606: can never be a real host


def new_record_id() -> str:
    return f"<urn:uuid:{uuid.uuid4()}>"


def utc_now() -> datetime:
    return datetime.now(UTC)


def warc_date(moment: datetime) -> str:
    return datetime_to_iso_date(moment.astimezone(UTC).replace(tzinfo=None), use_micros=True)


def timestamp14(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S")


def feed_copy_url(url: str) -> str:
    """Where the feed's copy of an article is stored: a URL that no live page can have."""
    scheme, _, rest = url.partition("://")
    return f"https://{FEED_COPY_HOST}/{scheme}/{rest}"


class _ExactHeaders(StatusAndHeaders):
    """HTTP headers written byte for byte as given (warcio would %-encode non-ASCII values)."""

    def __init__(self, head: bytes, statusline: str, headers: list[tuple[str, str]], protocol: str):
        super().__init__(statusline, headers, protocol=protocol)
        self._head = head

    def compute_headers_buffer(self, header_filter: Any = None) -> None:
        self.headers_buff = self._head


def http_head(first_line: str, headers: list[tuple[str, str]]) -> bytes:
    """Status or request line and headers, encoded as http.client decoded them (latin-1)."""
    lines = [first_line] + [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")


@dataclass(frozen=True)
class Written:
    """Where a record landed, and what an index needs to know of it."""

    record_id: str
    record_type: str
    uri: str
    date: str
    filename: str
    offset: int
    length: int
    mime: str = ""
    status: str = ""
    digest: str = ""  # payload digest, 'sha1:' prefix removed, as in CDXJ


@dataclass
class RecordSpec:
    """A record to write: type, URI, headers, block. Built by the helpers below."""

    record_type: str
    uri: str
    warc_headers: dict[str, str]
    payload: IO[bytes]
    length: int
    content_type: str = ""
    http: _ExactHeaders | None = None
    mime: str = ""
    status: str = ""


def response_spec(exchange: Any, record_id: str, date: str) -> RecordSpec:
    statusline = f"{exchange.status} {exchange.reason}".rstrip()
    head = http_head(f"{exchange.protocol} {statusline}", exchange.headers)
    headers = {
        "WARC-Record-ID": record_id,
        "WARC-Date": date,
        "WARC-Payload-Digest": exchange.payload_digest,
    }
    if exchange.peer_address:
        headers["WARC-IP-Address"] = exchange.peer_address
    if exchange.truncated:
        headers["WARC-Truncated"] = exchange.truncated
    exchange.body.seek(0)
    return RecordSpec(
        "response",
        exchange.url,
        headers,
        exchange.body,
        exchange.body_length,
        "application/http; msgtype=response",
        _ExactHeaders(head, statusline, exchange.headers, exchange.protocol),
        mime=(exchange.content_type.split(";")[0].strip().lower() or "unk"),
        status=str(exchange.status),
    )


def request_spec(exchange: Any, record_id: str, date: str, response_id: str) -> RecordSpec:
    head = exchange.request_head
    first, _, rest = head.decode("latin-1").partition("\r\n")
    pairs = [(name, value) for name, _, value in (line.partition(": ") for line in rest.strip().split("\r\n"))]
    headers = {"WARC-Record-ID": record_id, "WARC-Date": date, "WARC-Concurrent-To": response_id}
    if exchange.peer_address:
        headers["WARC-IP-Address"] = exchange.peer_address
    target = first.partition(" ")[2]
    http = _ExactHeaders(head, target, pairs, "")
    return RecordSpec(
        "request",
        exchange.url,
        headers,
        io.BytesIO(b""),
        0,
        "application/http; msgtype=request",
        http,
    )


def metadata_spec(uri: str, record_id: str, date: str, block: bytes, content_type: str,
                  fields: dict[str, str]) -> RecordSpec:
    headers = {"WARC-Record-ID": record_id, "WARC-Date": date, **{k: v for k, v in fields.items() if v}}
    return RecordSpec("metadata", uri, headers, io.BytesIO(block), len(block), content_type)


def resource_spec(uri: str, record_id: str, date: str, block: bytes, content_type: str) -> RecordSpec:
    headers = {"WARC-Record-ID": record_id, "WARC-Date": date}
    return RecordSpec(
        "resource", uri, headers, io.BytesIO(block), len(block), content_type,
        mime=content_type.split(";")[0].strip(), status="200",
    )


class WarcFile:
    """One gzip WARC file being written; `<name>.open` on disk until `close()`."""

    def __init__(self, directory: Path, name: str, clock: Callable[[], datetime],
                 new_id: Callable[[], str], info: dict[str, str]) -> None:
        self.name = name
        self.final_path = directory / name
        self.open_path = directory / (name + OPEN_SUFFIX)
        self._fh = self.open_path.open("xb", buffering=1 << 20)
        # warcio builds and serialises records; archiver does the gzip members itself, so that
        # each record gets the compression level that suits it (see _GzipMember)
        self._writer = WARCWriter(self._fh, gzip=False, warc_version=WARC_VERSION)
        record = self._writer.create_warcinfo_record(name, {**info})
        record.rec_headers.replace_header("WARC-Record-ID", new_id())
        record.rec_headers.replace_header("WARC-Date", warc_date(clock()))
        self._write_member(record, compressible=True)

    @property
    def size(self) -> int:
        return self._fh.tell()

    def write(self, spec: RecordSpec) -> Written:
        offset = self._fh.tell()
        ordered = {  # the usual order, so that the records read well in a pager
            "WARC-Type": spec.record_type,
            "WARC-Record-ID": spec.warc_headers["WARC-Record-ID"],
            "WARC-Date": spec.warc_headers["WARC-Date"],
            "WARC-Target-URI": spec.uri,
            **spec.warc_headers,
        }
        record = self._writer.create_warc_record(
            spec.uri,
            spec.record_type,
            payload=spec.payload,
            length=spec.length,
            warc_content_type=spec.content_type,
            warc_headers_dict=ordered,
            http_headers=spec.http,
        )
        self._write_member(record, compressible=_compressible(spec))
        end = self._fh.tell()
        digest = record.rec_headers.get_header("WARC-Payload-Digest") or ""
        return Written(
            record_id=spec.warc_headers["WARC-Record-ID"],
            record_type=spec.record_type,
            uri=spec.uri,
            date=spec.warc_headers["WARC-Date"],
            filename=self.name,
            offset=offset,
            length=end - offset,
            mime=spec.mime,
            status=spec.status,
            digest=digest.removeprefix("sha1:"),
        )

    def _write_member(self, record: Any, compressible: bool) -> None:
        member = _GzipMember(self._fh, compressible)
        self._writer.out = member  # one gzip member per record
        self._writer.write_record(record)
        member.finish()

    def sync(self) -> None:
        """Make every record written so far durable."""
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> Path:
        self.sync()
        self._fh.close()
        os.replace(self.open_path, self.final_path)
        fsync_dir(self.final_path.parent)
        return self.final_path


# Already-compressed media gain nothing from effort: they get the fastest level. ISA-L's deflate
# (python-isal) writes the same gzip format several times faster than zlib; zlib is the fallback.
_deflate: types.ModuleType
try:
    from isal import isal_zlib as _deflate

    _TEXT_LEVEL, _MEDIA_LEVEL = 3, 1
except ImportError:  # pragma: no cover - isal is a dependency, but a plain zlib still works
    _deflate = zlib
    _TEXT_LEVEL, _MEDIA_LEVEL = 6, 1

_COMPRESSED_MEDIA = ("image/", "video/", "audio/", "font/woff", "application/zip", "application/gzip",
                     "application/x-gzip", "application/pdf", "application/octet-stream")


def _compressible(spec: RecordSpec) -> bool:
    if spec.http is not None and spec.http.get_header("Content-Encoding"):
        return False  # gzip/br bodies are compressed already
    return not spec.mime.startswith(_COMPRESSED_MEDIA)


class _GzipMember:
    """A file-like sink that writes what it is given as one gzip member of `fh`."""

    def __init__(self, fh: IO[bytes], compressible: bool) -> None:
        self._fh = fh
        level = _TEXT_LEVEL if compressible else _MEDIA_LEVEL
        self._packer = _deflate.compressobj(level, _deflate.DEFLATED, 31)

    def write(self, data: bytes) -> int:
        self._fh.write(self._packer.compress(data))
        return len(data)

    def flush(self) -> None:
        pass  # warcio flushes after each record; the member ends in finish()

    def finish(self) -> None:
        self._fh.write(self._packer.flush())


def warcinfo_fields(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        "software": f"archiver/{__version__} (warcio, urllib3)",
        "format": "WARC File Format 1.1",
        "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
        **(extra or {}),
    }


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable (where the filesystem can fsync a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- reading at the gzip-member level: finding complete records, mending cut files ---------

@dataclass(frozen=True)
class Member:
    offset: int
    length: int
    data: bytes  # the decompressed record


def iter_members(path: Path, max_record: int = 1 << 62) -> Iterator[Member]:
    """Complete gzip members of `path`, in order; stops (raises WarcError) at the first damage."""
    with path.open("rb") as fh:
        offset = 0
        pending = b""
        while True:
            if not pending:
                pending = fh.read(1 << 20)
                if not pending:
                    return
            inflater = zlib.decompressobj(wbits=31)
            out = bytearray()
            consumed = 0
            while not inflater.eof:
                try:
                    out += inflater.decompress(pending, max_record)
                except zlib.error as exc:
                    raise WarcError(f"{path.name}: damaged gzip data at offset {offset}: {exc}") from exc
                if inflater.eof:
                    consumed += len(pending) - len(inflater.unused_data)
                    pending = inflater.unused_data
                    break
                consumed += len(pending)
                pending = fh.read(1 << 20)
                if not pending:
                    raise WarcError(f"{path.name}: record at offset {offset} is cut short (truncated gzip member)")
            _check_record(path, offset, bytes(out))
            yield Member(offset, consumed, bytes(out))
            offset += consumed


def _check_record(path: Path, offset: int, data: bytes) -> None:
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep or not head.startswith(b"WARC/"):
        raise WarcError(f"{path.name}: no WARC record header at offset {offset}")
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip() or b"-1")
    if length is None or length < 0:
        raise WarcError(f"{path.name}: record at offset {offset} has no valid Content-Length")
    if len(rest) != length + 4 or not rest.endswith(b"\r\n\r\n"):
        raise WarcError(f"{path.name}: record at offset {offset} has {len(rest) - 4} of {length} block bytes")


def mend(open_path: Path) -> tuple[Path, int]:
    """Cut a leftover `.open` file back to its last complete record and close it.

    Returns the final path and the number of bytes cut away. A file with no complete record
    (not even its warcinfo) is removed and (path, size) is returned.
    """
    end = 0
    try:
        for member in iter_members(open_path):
            end = member.offset + member.length
    except WarcError:
        pass
    size = open_path.stat().st_size
    final = open_path.with_name(open_path.name.removesuffix(OPEN_SUFFIX))
    if end == 0:
        open_path.unlink()
        return final, size
    with open_path.open("r+b") as fh:
        fh.truncate(end)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(open_path, final)
    fsync_dir(final.parent)
    return final, size - end
