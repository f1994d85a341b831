"""Writing WARC records and files: records built from exchanges, encoded as gzip members, appended.

Files are gzip WARC 1.1, one record per gzip member, opened by a warcinfo record. A file is
written as `<name>.open` and renamed when complete, so a finished name always means a complete
file; a leftover `.open` file is mended by cutting it back to its last complete record (`mend`).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from isal import isal_zlib

from archiver import __version__
from archiver._fs import fsync_dir
from archiver.collection import OPEN_SUFFIX
from archiver.errors import WarcError
from archiver.warc.check import complete_end
from archiver.warc.record import (
    MAX_HEADER_LINE,
    REVISIT_PROFILE,
    WARC_VERSION,
    Written,
    response_head,
    sha1_label,
    warc_date,
)


@dataclass
class RecordSpec:
    """A record to write: type, URI, WARC headers, block (HTTP head + payload). Built by the helpers below."""

    record_type: str
    uri: str
    warc_headers: dict[str, str]
    payload: IO[bytes]
    length: int  # of the payload
    content_type: str = ""
    http_head: bytes = b""  # HTTP status or request line and headers, byte for byte
    mime: str = ""
    status: str = ""
    packing: str = "text"  # how hard its gzip member is compressed: "text", "media" or "stored"


def response_spec(exchange: Any, record_id: str, date: str) -> RecordSpec:
    headers = {
        "WARC-Record-ID": record_id,
        "WARC-Date": date,
        "WARC-Payload-Digest": exchange.payload_digest,
    }
    if exchange.block_digest:  # hashed as the body arrived: not hashed again
        headers["WARC-Block-Digest"] = exchange.block_digest
    if exchange.peer_address:
        headers["WARC-IP-Address"] = exchange.peer_address
    if exchange.truncated:
        headers["WARC-Truncated"] = exchange.truncated
    exchange.body.seek(0)
    mime = exchange.content_type.split(";")[0].strip().lower() or "unk"
    return RecordSpec(
        "response",
        exchange.url,
        headers,
        exchange.body,
        exchange.body_length,
        "application/http; msgtype=response",
        response_head(exchange.protocol, exchange.status, exchange.reason, exchange.headers),
        mime=mime,
        status=str(exchange.status),
        packing=_packing(mime, exchange.header("content-encoding")),
    )


def revisit_spec(exchange: Any, record_id: str, date: str, original_uri: str, original_date: str) -> RecordSpec:
    """A revisit of `exchange`, whose payload is identical to the record of `original_uri` at
    `original_date` (WARC 1.1 identical-payload-digest profile): the HTTP head as received, no body;
    replay serves the original's payload under it."""
    headers = {
        "WARC-Record-ID": record_id,
        "WARC-Date": date,
        "WARC-Profile": REVISIT_PROFILE,
        "WARC-Refers-To-Target-URI": original_uri,
        "WARC-Refers-To-Date": original_date,
        "WARC-Payload-Digest": exchange.payload_digest,
    }
    if exchange.peer_address:
        headers["WARC-IP-Address"] = exchange.peer_address
    return RecordSpec(
        "revisit",
        exchange.url,
        headers,
        io.BytesIO(b""),
        0,
        "application/http; msgtype=response",
        response_head(exchange.protocol, exchange.status, exchange.reason, exchange.headers),
        mime="warc/revisit",
        status=str(exchange.status),
    )


def _packing(mime: str, encoding: str) -> str:
    """gzip/br bodies and the usual compressed media are stored: deflate cannot shrink them, and
    even ISA-L's fastest level costs more than twice a stored member; other media get the fastest
    level, as some are plain bytes (BMP, TIFF, SVG, octet-stream)."""
    if encoding.strip().lower() in _COMPRESSED_ENCODINGS or mime.startswith(_STORED_MEDIA):
        return "stored"
    return "media" if mime.startswith(_COMPRESSED_MEDIA) else "text"


def request_spec(exchange: Any, record_id: str, date: str, response_id: str) -> RecordSpec:
    headers = {"WARC-Record-ID": record_id, "WARC-Date": date, "WARC-Concurrent-To": response_id}
    if exchange.peer_address:
        headers["WARC-IP-Address"] = exchange.peer_address
    return RecordSpec("request", exchange.url, headers, io.BytesIO(b""), 0, "application/http; msgtype=request",
                      exchange.request_head)


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


# Already-compressed media gain nothing from effort: they are stored (see _packing). ISA-L's deflate
# (python-isal, levels 0-3) writes the same gzip format as zlib, several times faster.
_TEXT_LEVEL, _MEDIA_LEVEL = 3, 1

_COMPRESSED_MEDIA = ("image/", "video/", "audio/", "application/pdf", "application/octet-stream")
_STORED_MEDIA = ("image/jpeg", "image/png", "image/gif", "image/webp", "image/avif", "image/heic", "video/mp4",
                 "video/webm", "audio/mpeg", "audio/mp4", "audio/ogg", "font/woff", "application/zip",
                 "application/gzip", "application/x-gzip")
_COMPRESSED_ENCODINGS = ("gzip", "x-gzip", "br", "deflate", "zstd")
_NO_PAYLOAD_DIGEST = ("warcinfo", "revisit")  # as warcio: other records get one, even with an empty payload
_READ = 1 << 20  # payloads up to this size are read once; longer ones twice
SPOOL_MEMBER = 1024 * 1024  # an encoded record larger than this waits in a temporary file


@dataclass
class Encoded:
    """A record as one complete gzip member, not yet in any file."""

    spec: RecordSpec
    member: IO[bytes]  # the gzip member, from position 0
    size: int
    payload_digest: str


def encode_record(spec: RecordSpec) -> Encoded:
    """The record as one gzip member: WARC headers (digests and Content-Length filled in), block, CRLF CRLF.

    The bytes are those warcio's WARCWriter writes for the same record (a test holds them to it);
    written here because warcio's general record machinery (header objects, a second pass over
    the payload for its digests, small reads) cost more CPU than the fetch that produced the record.
    The member is built before any file is touched, so threads sharing a file wait for each other
    only while it is appended.
    """
    given_block = spec.warc_headers.get("WARC-Block-Digest")
    block = None if given_block else hashlib.sha1(spec.http_head)
    given = spec.warc_headers.get("WARC-Payload-Digest")
    payload = None if given or spec.record_type in _NO_PAYLOAD_DIGEST else hashlib.sha1()
    start = spec.payload.tell()
    read, first = 0, b""
    while chunk := spec.payload.read(_READ):  # one pass for both digests (they go in the header)
        first = first or chunk
        read += len(chunk)
        if block is not None:
            block.update(chunk)
        if payload is not None:
            payload.update(chunk)
    if read != spec.length:
        raise WarcError(f"record {spec.warc_headers.get('WARC-Record-ID')}: payload has {read} bytes, "
                        f"{spec.length} were announced")
    headers = {"WARC-Type": spec.record_type}
    for name, value in spec.warc_headers.items():  # the usual order, so that records read well in a pager
        if name == "WARC-Block-Digest":
            continue  # last, below
        headers[name] = value
        if name == "WARC-Date" and spec.uri:
            headers["WARC-Target-URI"] = spec.uri
    payload_digest = given or (sha1_label(payload) if payload is not None else "")
    if payload is not None:
        headers["WARC-Payload-Digest"] = payload_digest
    headers["WARC-Block-Digest"] = given_block or sha1_label(block)
    _replace(headers, "Content-Type", spec.content_type or "application/warc-record")
    _replace(headers, "Content-Length", str(len(spec.http_head) + spec.length))
    lines = [f"{k}: {_one_line(v)}\r\n" for k, v in headers.items()]
    if any(len(line) > MAX_HEADER_LINE for line in lines):  # never write a record verify would refuse
        raise WarcError(f"record {spec.warc_headers.get('WARC-Record-ID')}: a header line is longer than "
                        f"{MAX_HEADER_LINE} bytes")
    head = "".join([f"WARC/{WARC_VERSION}\r\n", *lines, "\r\n"])

    if spec.packing == "stored":
        packer: Any = zlib.compressobj(0, zlib.DEFLATED, 31)
    else:
        packer = isal_zlib.compressobj(_TEXT_LEVEL if spec.packing == "text" else _MEDIA_LEVEL, isal_zlib.DEFLATED, 31)
    out: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMBER)  # noqa: SIM115 - closed by append
    out.write(packer.compress(head.encode("utf-8") + spec.http_head))
    if read == len(first):  # it came in one read: compressed from memory, not read again
        out.write(packer.compress(first))
    else:
        spec.payload.seek(start)
        while chunk := spec.payload.read(_READ):
            out.write(packer.compress(chunk))
    out.write(packer.compress(b"\r\n\r\n"))
    out.write(packer.flush())
    size = out.tell()
    out.seek(0)
    return Encoded(spec, out, size, payload_digest)


def _one_line(value: str) -> str:
    """A header value that cannot end its line early: CR and LF %-encoded (a seed file's name may hold
    them, and a record whose header broke there would be unreadable; warcio writes them as they are)."""
    if "\r" in value or "\n" in value:
        return value.replace("\r", "%0D").replace("\n", "%0A")
    return value


def _replace(headers: dict[str, str], name: str, value: str) -> None:
    """Set a header in place whatever the case of its name (as warcio's replace_header), else add it last."""
    lowered = name.lower()
    for key in headers:
        if key.lower() == lowered:
            headers[key] = value
            return
    headers[name] = value


class WarcFile:
    """One gzip WARC file being written; `<name>.open` on disk until `close()`."""

    def __init__(self, directory: Path, name: str, clock: Callable[[], datetime],
                 new_id: Callable[[], str], info: dict[str, str]) -> None:
        self.name = name
        self.final_path = directory / name
        self.open_path = directory / (name + OPEN_SUFFIX)
        self._fh = self.open_path.open("xb", buffering=1 << 20)
        block = "".join(f"{k}: {v}\r\n" for k, v in info.items()).encode("utf-8")
        warcinfo = RecordSpec("warcinfo", "", {"WARC-Record-ID": new_id(), "WARC-Filename": name,
                                               "WARC-Date": warc_date(clock())},
                              io.BytesIO(block), len(block), "application/warc-fields")
        self.append(encode_record(warcinfo))

    @property
    def size(self) -> int:
        return self._fh.tell()

    def write(self, spec: RecordSpec) -> Written:
        return self.append(encode_record(spec))

    def append(self, encoded: Encoded) -> Written:
        """Append an encoded record; the caller makes sure one thread appends at a time."""
        spec = encoded.spec
        offset = self._fh.tell()
        with encoded.member:
            shutil.copyfileobj(encoded.member, self._fh, _READ)
        return Written(
            record_id=spec.warc_headers["WARC-Record-ID"],
            record_type=spec.record_type,
            uri=spec.uri,
            date=spec.warc_headers["WARC-Date"],
            filename=self.name,
            offset=offset,
            length=encoded.size,
            mime=spec.mime,
            status=spec.status,
            digest=encoded.payload_digest.removeprefix("sha1:"),
        )

    def flush(self) -> None:
        """Hand the records written so far to the operating system (they survive the process, not
        a power loss: `sync` does that)."""
        self._fh.flush()

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


def warcinfo_fields(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        "software": f"archiver/{__version__} (libcurl)",
        "format": "WARC File Format 1.1",
        "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
        **(extra or {}),
    }


def mend(open_path: Path) -> tuple[Path, int]:
    """Cut a leftover `.open` file back to its last complete record and close it.

    Returns the final path and the number of bytes cut away. A file with no complete record
    (not even its warcinfo) is removed and (path, size) is returned.
    """
    end = complete_end(open_path)
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
