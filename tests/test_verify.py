"""archiver verify: real WARC/ARC files written by other tools, damage made on purpose, and a
captured collection whose indexes are then corrupted."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import shutil
import sqlite3
import subprocess
import tracemalloc
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from archiver.cli import cli
from archiver.collection import OPEN_SUFFIX, Collection
from archiver.config import Config
from archiver.errors import UsageError
from archiver.index.build import build_index
from archiver.verify import KINDS, VerifyReport, verify

from .conftest import DATA, capture_pages
from .support.newsite import NewsSite
from .support.warcs import BIN

WARCIO = DATA / "real-warcs" / "warcio"
PYWB = DATA / "real-warcs" / "pywb" / "warcs"


def found(report: VerifyReport) -> set[tuple[int | None, str]]:
    return {(p.offset, p.kind) for p in report.problems}


def check(path: Path) -> VerifyReport:
    return verify(Config(), [path])


GOOD = [
    WARCIO / "example.warc.gz",
    WARCIO / "example.warc",
    WARCIO / "example-iana.org-chunked.warc",  # payload digest over the chunk framing (warcio #74)
    WARCIO / "example-resource.warc.gz",
    WARCIO / "example-space-in-target-uri.warc.gz",
    WARCIO / "example-wget-bad-target-uri.warc.gz",
    WARCIO / "example.arc",
    WARCIO / "example.arc.gz",
    WARCIO / "post-test.warc.gz",
    PYWB / "iana.warc.gz",  # Transfer-Encoding: chunked kept on bodies stored de-chunked
    PYWB / "dupes.warc.gz",
    PYWB / "example.warc.gz",
    PYWB / "example2.warc.gz",
    PYWB / "example-wget-1-14.warc.gz",
    PYWB / "example-wpull.warc.gz",
    PYWB / "httpbin-resource.warc.gz",
]


@pytest.mark.parametrize("path", GOOD, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_good_files_from_other_tools_verify_clean(path: Path) -> None:
    report = check(path)
    assert report.problems == []
    assert report.files == 1 and report.records >= 1


# (file, {(offset, kind)}): what each damaged file of tests/data/real-warcs yields
BAD = [
    # Content-Length 973 on a 975-byte block
    (WARCIO / "example-trunc.warc", {(1197, "truncated"), (1197, "block_digest_mismatch"),
                                     (1197, "payload_digest_mismatch")}),
    (WARCIO / "example-bad.warc.gz.bad", {(0, "whole_file_gzip")}),
    # one gzip stream too, and the revisit's block digest was altered
    (WARCIO / "example-bad-non-chunked.warc.gz", {(0, "whole_file_gzip"), (0, "block_digest_mismatch")}),
    # "chunks" here are gzip members: the response's head and body sit in two members, and its
    # Content-Length is one byte short of its block
    (WARCIO / "example-wrong-chunks.warc.gz", {(0, "misaligned_gzip_members"), (0, "truncated"),
                                               (0, "block_digest_mismatch")}),
    (WARCIO / "example-digest.warc", {(0, "payload_digest_mismatch")}),
    (WARCIO / "bad.arc", {(0, "bad_header")}),
    # CRLF turned into LF, the ARC length left as it was
    (WARCIO / "example-space-in-url.arc", {(151, "truncated")}),
    # Content-Length 320 on a 323-byte request block
    (PYWB / "example.warc", {(4061, "truncated")}),
    (PYWB / "example-extra.warc", {(2701, "truncated"), (3207, "truncated"), (3207, "payload_digest_mismatch"),
                                   (5199, "truncated"), (5910, "truncated")}),
    # the warcinfo member ends without the record's closing CRLF CRLF
    (PYWB / "example-url-agnostic-orig.warc.gz", {(0, "truncated")}),
    (PYWB / "example-url-agnostic-revisit.warc.gz", {(0, "truncated")}),
    # CRLF turned into CR CR LF
    (PYWB / "missing-status-text.warc", {(0, "bad_header"), (0, "truncated")}),
    (DATA / "real-warcs" / "pywb" / "waczs" / "valid_example_1.wacz", {(0, "not_a_warc")}),
]


@pytest.mark.parametrize(("path", "expected"), BAD, ids=lambda p: p.name if isinstance(p, Path) else "")
def test_damaged_files_are_reported_with_file_offset_and_kind(path: Path, expected: set) -> None:
    report = check(path)
    assert found(report) == expected
    assert {p.file for p in report.problems} == {str(path)}
    assert all(p.kind in KINDS and p.detail for p in report.problems)


def test_whole_file_gzip_is_reported_once_and_its_records_still_read() -> None:
    report = check(WARCIO / "example-bad.warc.gz.bad")
    assert report.records == 6 and len(report.problems) == 1
    assert "warcio recompress" in report.problems[0].detail


def test_a_problem_inside_a_shared_member_names_its_record() -> None:
    report = check(WARCIO / "example-bad-non-chunked.warc.gz")
    digest = next(p for p in report.problems if p.kind == "block_digest_mismatch")
    assert "revisit record <urn:uuid:e6e395ca-0221-11e7-a18d-0242ac120005>" in digest.detail


def test_truncation_details_say_what_is_missing() -> None:
    [trunc] = [p for p in check(WARCIO / "example-trunc.warc").problems if p.kind == "truncated"]
    assert "973-byte block" in trunc.detail and "not CRLF CRLF" in trunc.detail
    [agnostic] = check(PYWB / "example-url-agnostic-orig.warc.gz").problems
    assert "gzip member ends right after the 243-byte block" in agnostic.detail


# --- damage made on purpose ---------------------------------------------------------------------

def members(data: bytes) -> list[int]:
    """Offsets of the gzip members of `data`."""
    offsets, offset = [], 0
    while offset < len(data):
        offsets.append(offset)
        inflater = zlib.decompressobj(wbits=31)
        inflater.decompress(data[offset:])
        offset = len(data) - len(inflater.unused_data)
    return offsets


@pytest.mark.parametrize("where", ["block", "gzip trailer"])
def test_a_warc_gz_cut_mid_record_is_caught_though_warcio_check_passes_it(tmp_path: Path, where: str) -> None:
    data = (WARCIO / "example.warc.gz").read_bytes()
    starts = members(data)
    response, after = starts[2], starts[3]  # the response record's member
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(data[:(response + after) // 2 if where == "block" else after - 4])
    warcio = subprocess.run([BIN / "warcio", "check", cut], capture_output=True, text=True)
    assert warcio.returncode == 0, warcio.stdout + warcio.stderr
    report = check(cut)
    assert found(report) == {(response, "truncated")}
    assert report.records == 3


def test_a_flipped_body_byte_gives_both_digest_mismatches_at_the_record(tmp_path: Path) -> None:
    data = bytearray((WARCIO / "example.warc").read_bytes())
    record = 1197  # the response; its HTTP head ends at the first empty line of the block
    body = data.index(b"\r\n\r\n", data.index(b"\r\n\r\n", record) + 4) + 4
    data[body + 100] ^= 0x01
    flipped = tmp_path / "flipped.warc"
    flipped.write_bytes(bytes(data))
    assert found(check(flipped)) == {(record, "block_digest_mismatch"), (record, "payload_digest_mismatch")}


def test_a_flipped_http_header_byte_changes_only_the_block(tmp_path: Path) -> None:
    data = (WARCIO / "example.warc").read_bytes().replace(b"Server: ECS (iad/182A)", b"Server: ECS (iad/182B)", 1)
    flipped = tmp_path / "flipped.warc"
    flipped.write_bytes(data)
    assert found(check(flipped)) == {(1197, "block_digest_mismatch")}


def test_only_the_damaged_gzip_member_is_reported(tmp_path: Path) -> None:
    data = bytearray((WARCIO / "example.warc.gz").read_bytes())
    starts = members(bytes(data))
    data[starts[2] + 100] ^= 0xFF  # inside the deflate data of the response
    damaged = tmp_path / "damaged.warc.gz"
    damaged.write_bytes(bytes(data))
    [problem] = check(damaged).problems
    assert problem.offset == starts[2] and problem.kind in ("bad_gzip", "block_digest_mismatch")


def test_garbage_after_the_last_member_is_reported_where_it_starts(tmp_path: Path) -> None:
    data = (WARCIO / "example.warc.gz").read_bytes()
    padded = tmp_path / "padded.warc.gz"
    padded.write_bytes(data + b"\0" * 16)
    assert found(check(padded)) == {(len(data), "bad_gzip")}


# --- chunked HTTP bodies and digest forms, on records made here ---------------------------------

BODY = b"hello, chunked world"
FRAMED = b"5\r\nhello\r\nf\r\n, chunked world\r\n0\r\n\r\n"
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"


def digest(data: bytes, algorithm: str = "sha1") -> str:
    return f"{algorithm}:{base64.b32encode(hashlib.new(algorithm, data).digest()).decode()}"


def response(body: bytes, payload_digest: str, head: bytes = HEAD, block_digest: str | None = None) -> bytes:
    block = head + body
    headers = [
        "WARC/1.1", "WARC-Type: response", "WARC-Record-ID: <urn:uuid:00000000-0000-4000-8000-000000000001>",
        "WARC-Date: 2024-01-02T03:04:05Z", "WARC-Target-URI: http://example.org/",
        "Content-Type: application/http; msgtype=response",
        f"WARC-Block-Digest: {block_digest or digest(block)}", f"WARC-Payload-Digest: {payload_digest}",
        f"Content-Length: {len(block)}",
    ]
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + block + b"\r\n\r\n"


def verify_records(tmp_path: Path, *records: bytes, gz: bool = False) -> VerifyReport:
    path = tmp_path / ("made.warc.gz" if gz else "made.warc")
    path.write_bytes(b"".join(gzip.compress(r, mtime=0) if gz else r for r in records))
    return check(path)


@pytest.mark.parametrize("payload", [BODY, FRAMED], ids=["de-chunked (WARC 1.1)", "chunk-framed (warcio #74)"])
def test_a_chunked_response_may_digest_either_body(tmp_path: Path, payload: bytes) -> None:
    assert verify_records(tmp_path, response(FRAMED, digest(payload))).problems == []


def test_a_chunked_payload_digest_of_neither_body_is_a_mismatch(tmp_path: Path) -> None:
    report = verify_records(tmp_path, response(FRAMED, digest(b"something else")))
    [problem] = report.problems
    assert problem.kind == "payload_digest_mismatch" and "chunk-framed body" in problem.detail


@pytest.mark.parametrize("body", [
    b"5\r\nhello\r\nzz\r\n, chunked world\r\n0\r\n\r\n",  # bad size line
    b"5\r\nhelloX\r\nf\r\n, chunked world\r\n0\r\n\r\n",  # data longer than its size
    b"5\r\nhello\r\nf\r\n, chunked world\r\n",  # no last chunk
    b"5\r\nhello\r\n14\r\n, chunked world\r\n0\r\n\r\n",  # ends inside a chunk
], ids=["size line", "overlong chunk", "no last chunk", "short chunk"])
def test_broken_chunk_framing_is_reported_at_its_record(tmp_path: Path, body: bytes) -> None:
    first = response(FRAMED, digest(BODY))
    report = verify_records(tmp_path, first, response(body, digest(body)), gz=True)
    offset = len(gzip.compress(first, mtime=0))
    assert found(report) == {(offset, "bad_chunking")}


def test_a_body_stored_de_chunked_under_its_chunked_header_is_read_as_it_is(tmp_path: Path) -> None:
    # what pywb's recorder wrote (iana.warc.gz); warcio and pywb read such bodies unchunked
    assert verify_records(tmp_path, response(b"<!doctype html>", digest(b"<!doctype html>"))).problems == []


def test_digests_in_other_algorithms_and_encodings(tmp_path: Path) -> None:
    plain = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
    sha256_hex = "sha256:" + hashlib.sha256(b"hello").hexdigest()
    records = [
        response(b"hello", sha256_hex, head=plain, block_digest=digest(plain + b"hello", "md5")),
        response(b"hello", "sha1:" + base64.urlsafe_b64encode(hashlib.sha1(b"hello").digest()).decode(), head=plain),
        response(b"hello", "whirl:ABC", head=plain),
    ]
    report = verify_records(tmp_path, *records)
    assert [p.kind for p in report.problems] == ["unknown_digest"]


def test_a_big_record_is_streamed_not_loaded(tmp_path: Path) -> None:
    body = b"x" * (32 << 20)
    plain = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    path = tmp_path / "big.warc"
    path.write_bytes(response(body, digest(body), head=plain))
    tracemalloc.start()
    try:
        report = check(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.problems == [] and report.records == 1
    assert peak < 8 << 20


# --- a collection and its indexes -------------------------------------------------------------

@pytest.fixture
def collection(cfg: Config, site: NewsSite) -> Collection:
    return capture_pages(cfg, site, ["/plain.html", "/chunked.html", "/redirect", "/gone.html"])


def edit_cdxj(collection: Collection, url_suffix: str, **changes: str) -> dict:
    """Change fields of the one CDXJ line whose URL ends with `url_suffix`; returns its old fields."""
    lines = collection.cdxj_path.read_text().splitlines()
    [number] = [n for n, line in enumerate(lines) if json.loads(line.split(" ", 2)[2])["url"].endswith(url_suffix)]
    key, stamp, data = lines[number].split(" ", 2)
    fields = json.loads(data)
    lines[number] = f"{key} {stamp} {json.dumps({**fields, **changes})}"
    collection.cdxj_path.write_text("\n".join(lines) + "\n")
    return fields


def test_a_captured_collection_verifies_clean(cfg: Config, collection: Collection) -> None:
    report = verify(cfg, [])
    assert report.problems == []
    assert report.files == len(collection.warc_files()) and report.records >= 4 * 3


def test_a_cdxj_line_with_a_wrong_offset_is_reported_and_its_record_unindexed(cfg: Config,
                                                                           collection: Collection) -> None:
    line = edit_cdxj(collection, "/plain.html")
    wrong = int(line["offset"]) + 10
    edit_cdxj(collection, "/plain.html", offset=str(wrong))
    report = verify(cfg, [])
    assert {(p.file, p.offset, p.kind) for p in report.problems} == {
        (line["filename"], wrong, "cdxj_points_nowhere"),
        (line["filename"], int(line["offset"]), "record_not_indexed"),
    }
    assert "index.cdxj line" in report.problems[0].detail


@pytest.mark.parametrize("field", ["url", "length"])
def test_a_cdxj_line_with_another_url_or_length_points_nowhere(cfg: Config, collection: Collection,
                                                               field: str) -> None:
    line = edit_cdxj(collection, "/plain.html")
    edit_cdxj(collection, "/plain.html", **{field: line[field] + "1"})
    report = verify(cfg, [])
    assert found(report) == {(int(line["offset"]), "cdxj_points_nowhere")}
    assert ("URL" if field == "url" else "length") in report.problems[0].detail


def test_an_unsorted_cdxj_is_reported(cfg: Config, collection: Collection) -> None:
    lines = collection.cdxj_path.read_text().splitlines()
    collection.cdxj_path.write_text("\n".join(reversed(lines)) + "\n")
    assert found(verify(cfg, [])) == {(None, "cdxj_unsorted")}


def test_a_metadata_row_pointing_elsewhere_is_reported(cfg: Config, collection: Collection) -> None:
    with sqlite3.connect(collection.db_path) as db:
        url, file, offset = db.execute(
            "SELECT url, warc_file, warc_offset FROM articles WHERE url LIKE '%/plain.html'").fetchone()
        db.execute("UPDATE articles SET warc_offset = warc_offset + 1 WHERE url = ?", (url,))
        db.execute("UPDATE articles SET warc_length = warc_length + 1 WHERE url LIKE '%/gone.html'")
    db.close()
    report = verify(cfg, [])
    rows = [p for p in report.problems if p.kind == "row_points_nowhere"]
    assert len(rows) == 2 == len(report.problems)
    assert (file, offset + 1) in {(p.file, p.offset) for p in rows}
    assert any(url in p.detail for p in rows)


def test_verify_changes_nothing_even_in_an_index_of_another_schema(cfg: Config, collection: Collection) -> None:
    files = sorted(p for p in collection.path.rglob("*") if p.is_file() and not p.name.endswith(("-wal", "-shm")))
    before = {p: p.read_bytes() for p in files}
    assert verify(cfg, []).problems == []
    assert all(p.read_bytes() == data for p, data in before.items())
    with sqlite3.connect(collection.db_path) as db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        db.execute(f"PRAGMA user_version = {version + 1}")
        rows = db.execute("SELECT count(*) FROM articles").fetchone()[0]
    db.close()
    assert found(verify(cfg, [])) == {(None, "bad_index")}
    with sqlite3.connect(collection.db_path) as db:
        assert db.execute("SELECT count(*) FROM articles").fetchone()[0] == rows  # not dropped
    db.close()


def test_a_damaged_warc_and_a_leftover_open_file_in_a_collection(cfg: Config, collection: Collection) -> None:
    victim = collection.warc_files()[0]
    data = victim.read_bytes()
    victim.write_bytes(data[:-20])  # the last record's member is cut
    (collection.archive_dir / ("killed.warc.gz" + OPEN_SUFFIX)).write_bytes(data[:100])
    report = verify(cfg, [])
    kinds = {(p.file, p.kind) for p in report.problems}
    assert (victim.name, "truncated") in kinds and ("killed.warc.gz.open", "open_file") in kinds


def test_other_tools_files_in_a_collection_agree_with_archivers_index(cfg: Config) -> None:
    # plain WARC and ARC records are indexed without their closing CRLF CRLF / newline, wget's
    # <URI> targets without brackets, spaces in target URIs as %20: all must still match
    collection = Collection.at(cfg.root, "mixed")
    collection.create()
    for path in (WARCIO / "example.warc", WARCIO / "example.arc", WARCIO / "example.arc.gz", PYWB / "dupes.warc.gz",
                 WARCIO / "example-wget-bad-target-uri.warc.gz", WARCIO / "example-space-in-target-uri.warc.gz"):
        shutil.copy(path, collection.archive_dir / path.name)
    build_index(cfg.replace(collection="mixed"))
    report = verify(cfg.replace(collection="mixed"), [])
    assert report.problems == [] and report.files == 6


def test_usage_errors(cfg: Config, collection: Collection, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no collection"):
        verify(cfg.replace(collection="other"), [])
    with pytest.raises(UsageError, match="no such file"):
        verify(cfg, [tmp_path / "missing.warc.gz"])
    both = run(cfg.root, "-c", "news", str(WARCIO / "example.warc"))  # the command line refuses it
    assert both.exit_code == 2 and "not both" in both.output


# --- the command --------------------------------------------------------------------------------

def run(root: Path, *args: str):
    return CliRunner().invoke(cli, ["--root", str(root), "verify", *args])


def test_command_prints_problems_and_a_summary_and_exits_by_outcome(root: Path, tmp_path: Path) -> None:
    shutil.copy(WARCIO / "example-trunc.warc", tmp_path / "trunc.warc")
    bad = run(root, str(tmp_path / "trunc.warc"), str(WARCIO / "example.warc"))
    assert bad.exit_code == 1
    lines = bad.output.splitlines()
    assert lines[-1] == "2 files, 10 records verified, 3 problems"
    assert f"{tmp_path / 'trunc.warc'} @1197: truncated: the 973-byte block" in bad.output
    assert all(" @1197: " in line for line in lines[:-1])
    good = run(root, str(WARCIO / "example.warc"))
    assert good.exit_code == 0 and good.output == "1 file, 6 records verified, 0 problems\n"
    assert run(root, str(tmp_path / "nothing.warc")).exit_code == 2
    assert run(root, "-c", "nothing").exit_code == 2


def test_command_checks_the_collection_by_default(cfg: Config, collection: Collection) -> None:
    result = run(cfg.root)  # the default collection is news
    assert result.exit_code == 0, result.output
    assert result.output.endswith(" problems\n") and " 0 problems" in result.output


def test_command_help_lists_every_kind(root: Path) -> None:
    result = run(root, "--help")
    assert result.exit_code == 0
    assert all(kind in result.output for kind in KINDS)
