"""archiver writes WARC records itself (warc.encode_record); warcio's WARCWriter is the reference.

For each kind of record archiver writes, the uncompressed bytes must be exactly those warcio
writes for the same record, and each record must be one gzip member that warcio reads back.
"""

from __future__ import annotations

import gzip
import io
import zlib
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from archiver.errors import WarcError
from archiver.warc.record import http_head
from archiver.warc.write import (
    RecordSpec,
    WarcFile,
    encode_record,
    metadata_spec,
    request_spec,
    resource_spec,
    response_spec,
)

DATE = "2023-10-06T00:45:01.000000Z"
HEAD_LINES = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", "0"), ("X-Note", "a  b")]


class _PinnedHead(StatusAndHeaders):
    """HTTP headers warcio writes byte for byte (its own would be rebuilt from the parsed fields)."""

    def __init__(self, head: bytes) -> None:
        super().__init__("pinned", [])  # not empty: an empty one would make warcio parse the payload
        self._head = head

    def compute_headers_buffer(self, header_filter: object = None) -> None:
        self.headers_buff = self._head


def _exchange(body: bytes, headers: list[tuple[str, str]] = HEAD_LINES, digest: str = "") -> SimpleNamespace:
    import base64
    import hashlib

    headers = [(k, str(len(body)) if k == "Content-Length" else v) for k, v in headers]
    label = digest or "sha1:" + base64.b32encode(hashlib.sha1(body).digest()).decode()
    return SimpleNamespace(
        url="http://news.example/a b/文章.html?x=1", status=200, reason="OK", protocol="HTTP/1.1",
        headers=headers, body=io.BytesIO(body), body_length=len(body), payload_digest=label,
        peer_address="127.0.0.1", truncated="", block_digest="", content_type=dict(headers).get("Content-Type", ""),
        request_head=b"GET /a%20b/x HTTP/1.1\r\nHost: news.example\r\nUser-Agent: t\r\n\r\n",
        header=lambda name: dict((k.lower(), v) for k, v in headers).get(name.lower(), ""),
    )


def _by_warcio(spec: RecordSpec) -> bytes:
    """What warcio's WARCWriter writes for the spec (uncompressed)."""
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=False, warc_version="1.1")
    ordered = {"WARC-Type": spec.record_type, "WARC-Record-ID": spec.warc_headers["WARC-Record-ID"],
               "WARC-Date": spec.warc_headers["WARC-Date"], "WARC-Target-URI": spec.uri, **spec.warc_headers}
    spec.payload.seek(0)
    record = writer.create_warc_record(
        spec.uri, spec.record_type, payload=spec.payload, length=spec.length,
        warc_content_type=spec.content_type, warc_headers_dict=ordered,
        http_headers=_PinnedHead(spec.http_head) if spec.http_head else None,
    )
    writer.write_record(record)
    spec.payload.seek(0)
    return out.getvalue()


def _ours(spec: RecordSpec) -> bytes:
    encoded = encode_record(spec)
    with encoded.member:
        member = encoded.member.read()
    assert len(member) == encoded.size
    inflater = zlib.decompressobj(wbits=31)
    data = inflater.decompress(member)
    assert inflater.eof and not inflater.unused_data  # exactly one gzip member
    return data


def _specs() -> list[RecordSpec]:
    html = "<html><title>标题</title><p>正文</p></html>".encode() * 50
    jpeg = bytes(range(256)) * 700  # past no size limit, but several reads' worth of warcio's 16 KB
    page = _exchange(html)
    image = _exchange(jpeg, [("Content-Type", "image/jpeg"), ("Content-Length", "0")])
    latin = _exchange(b"x", [("Content-Type", "text/plain"), ("Content-Length", "1"), ("X-Name", "caf\xe9")])
    return [
        response_spec(page, "<urn:uuid:1>", DATE),
        response_spec(image, "<urn:uuid:2>", DATE),
        response_spec(latin, "<urn:uuid:3>", DATE),
        request_spec(page, "<urn:uuid:4>", DATE, "<urn:uuid:1>"),
        metadata_spec("http://news.example/a", "<urn:uuid:5>", DATE, "# 标题\n".encode(),
                      "text/markdown; charset=utf-8", {"Archiver-Source": "seeds/1.txt", "Archiver-Error": ""}),
        resource_spec("https://feed-copy.invalid/http/news.example/a", "<urn:uuid:6>", DATE, html,
                      "text/html; charset=utf-8"),
        metadata_spec("http://news.example/empty", "<urn:uuid:7>", DATE, b"", "text/plain", {}),
    ]


@pytest.mark.parametrize("index", range(7))
def test_records_are_byte_for_byte_what_warcio_writes(index: int) -> None:
    spec = _specs()[index]
    assert _ours(spec) == _by_warcio(spec)


def test_a_payload_larger_than_one_read_is_streamed_with_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    import archiver.warc.write as warc

    monkeypatch.setattr(warc, "_READ", 1000)
    monkeypatch.setattr(warc, "SPOOL_MEMBER", 2000)  # and the member spills to a temporary file
    spec = response_spec(_exchange(bytes(range(256)) * 40), "<urn:uuid:8>", DATE)
    assert _ours(spec) == _by_warcio(spec)


def test_a_payload_shorter_than_announced_is_refused() -> None:
    spec = metadata_spec("http://news.example/a", "<urn:uuid:9>", DATE, b"12345", "text/plain", {})
    spec.length = 6
    with pytest.raises(WarcError, match="5 bytes, 6 were announced"):
        encode_record(spec)
    spec = metadata_spec("http://news.example/a", "<urn:uuid:9>", DATE, b"12345", "text/plain", {})
    spec.length = 4
    with pytest.raises(WarcError, match="5 bytes, 4 were announced"):
        encode_record(spec)


def test_a_file_reads_back_with_warcio_at_the_offsets_it_reported(tmp_path: Path) -> None:
    ids = iter(f"<urn:uuid:{n}>" for n in range(100, 200))
    file = WarcFile(tmp_path, "t.warc.gz", lambda: datetime(2023, 10, 6, tzinfo=UTC), lambda: next(ids),
                    {"software": "archiver tests", "isPartOf": "news"})
    written = [file.write(spec) for spec in _specs()]
    path = file.close()
    with path.open("rb") as fh:
        records = [(r.rec_headers.get_header("WARC-Type"), r.rec_headers.get_header("WARC-Record-ID"),
                    it.get_record_offset(), it.get_record_length())
                   for it in [ArchiveIterator(fh)] for r in it]
    assert records[0][:2] == ("warcinfo", "<urn:uuid:100>")
    assert [(w.record_type, w.record_id, w.offset, w.length) for w in written] == records[1:]
    info = gzip.decompress(path.read_bytes()[: records[1][2]]).decode()
    assert info.startswith("WARC/1.1\r\nWARC-Type: warcinfo\r\nWARC-Record-ID: <urn:uuid:100>\r\n"
                           "WARC-Filename: t.warc.gz\r\nWARC-Date: 2023-10-06T00:00:00")
    assert info.endswith("software: archiver tests\r\nisPartOf: news\r\n\r\n\r\n")
    assert written[0].digest and written[0].mime == "text/html" and written[0].status == "200"
    assert http_head("HTTP/1.1 200 OK", HEAD_LINES[:1]) == (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n")


def test_a_line_break_in_a_header_value_cannot_break_the_record(tmp_path: Path) -> None:
    ids = iter(f"<urn:uuid:{n}>" for n in range(300, 310))
    file = WarcFile(tmp_path, "t.warc.gz", lambda: datetime(2023, 10, 6, tzinfo=UTC), lambda: next(ids), {})
    file.write(metadata_spec("http://news.example/a", "<urn:uuid:20>", DATE, b"doc", "text/plain",
                             {"Archiver-Source": "seeds/a\r\nWARC-Type: resource\n.txt"}))
    with file.close().open("rb") as fh:
        records = list(ArchiveIterator(fh))
    assert [r.rec_type for r in records] == ["warcinfo", "metadata"]
    assert records[1].rec_headers.get_header("Archiver-Source") == "seeds/a%0D%0AWARC-Type: resource%0A.txt"


def _first_block_type(member: bytes) -> int:
    """BTYPE of the member's first deflate block (0 stored, 1 fixed, 2 dynamic Huffman)."""
    assert member[:3] == b"\x1f\x8b\x08" and member[3] == 0  # gzip, deflate, no optional fields
    return (member[10] >> 1) & 3


@pytest.mark.parametrize(("content_type", "encoding", "stored"), [
    ("image/jpeg", "", True), ("image/png", "", True), ("video/mp4", "", True),
    ("text/html; charset=utf-8", "gzip", True), ("text/html; charset=utf-8", "br", True),
    ("text/html; charset=utf-8", "", False), ("image/svg+xml", "", False), ("image/bmp", "", False),
    ("application/octet-stream", "", False),
])
def test_compressed_payloads_are_stored_and_the_rest_deflated(content_type: str, encoding: str, stored: bool) -> None:
    headers = [("Content-Type", content_type), ("Content-Length", "0")]
    if encoding:
        headers.append(("Content-Encoding", encoding))
    body = b"<svg><text>hello</text></svg>" * 400  # compressible: only the type decides
    spec = response_spec(_exchange(body, headers), "<urn:uuid:1>", DATE)
    with encode_record(spec).member as encoded:
        member = encoded.read()
    assert (_first_block_type(member) == 0) is stored
    assert (len(member) > len(body)) is stored
    assert gzip.decompress(member).endswith(body + b"\r\n\r\n")


def test_a_block_digest_taken_as_the_body_arrived_gives_the_same_record() -> None:
    import base64
    import hashlib

    body = b"<p>body</p>" * 100
    computed = response_spec(_exchange(body), "<urn:uuid:1>", DATE)
    expected = _ours(computed)
    assert expected == _by_warcio(computed)
    exchange = _exchange(body)
    exchange.block_digest = "sha1:" + base64.b32encode(hashlib.sha1(computed.http_head + body).digest()).decode()
    given = response_spec(exchange, "<urn:uuid:1>", DATE)
    assert given.warc_headers["WARC-Block-Digest"] == exchange.block_digest
    assert _ours(given) == expected
