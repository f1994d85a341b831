"""`archiver wacz`, checked the hard way: `wacz validate` looks at little, so the WACZ is unzipped
and every hash, size, index line and page is checked against the collection it came from, and a
copy is unpacked into pywb and replayed in headless Chromium."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath

import pytest
from click.testing import CliRunner

import archiver.wacz as wacz_module
from archiver.capture.run import capture
from archiver.cli import cli
from archiver.collection import Collection
from archiver.config import Config
from archiver.errors import ArchiverError, UsageError, WaczRefused
from archiver.index.build import build_index
from archiver.index.metadata import Article, Store
from archiver.wacz import WaczReport, member_name, wacz

from .support.browser import browser_page
from .support.newsite import NewsSite, seed_document
from .support.processes import stop
from .support.replaying import free_port
from .test_roundtrip import LEAD_IMAGE_LOADED

PAGES = ["/plain.html", "/gbk.html", "/redirect", "/gone.html", "/gzip.html"]  # gone.html is a 404
FIXED = {"datapackage.json", "datapackage-digest.json", "indexes/index.cdx", "pages/pages.jsonl"}
BIN = Path(sys.executable).parent  # the venv's scripts: wb-manager, wayback, wacz


@dataclass
class Packed:
    cfg: Config
    collection: Collection
    report: WaczReport
    path: Path  # the .wacz
    unzipped: Path


def capture_collection(cfg: Config, site: NewsSite) -> Collection:
    seeds = cfg.root / "seeds"
    seeds.mkdir()
    for n, page in enumerate(PAGES):
        (seeds / f"{n}.txt").write_text(seed_document(site.url + page, f"种子标题{n}", 1696553101000 + n))
    capture(cfg, [str(seeds)])
    return Collection.at(cfg.root, "news")


def pack(cfg: Config, collection: Collection, output: Path) -> Packed:
    output.parent.mkdir(parents=True, exist_ok=True)
    report = wacz(cfg, output)
    unzipped = output.parent / (output.stem + "-unzipped")
    with zipfile.ZipFile(output) as zf:
        zf.extractall(unzipped)
    return Packed(cfg, collection, report, output, unzipped)


@pytest.fixture
def small_cfg(cfg: Config) -> Config:
    # several WARC files (several batches, and batches past the size), some with records of more than one seed
    return cfg.replace(warc_max_size=20_000, batch_size=3, workers=1)


@pytest.fixture
def packed(small_cfg: Config, site: NewsSite, tmp_path: Path) -> Packed:
    collection = capture_collection(small_cfg, site)
    assert len(collection.warc_files()) >= 3
    return pack(small_cfg, collection, tmp_path / "out" / "news.wacz")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def data_offset(wacz_path: Path, info: zipfile.ZipInfo) -> int:
    """Where a member's data starts in the .wacz: what ReplayWeb.page computes for its range requests."""
    with wacz_path.open("rb") as fh:
        fh.seek(info.header_offset)
        header = fh.read(30)
    assert header[:4] == b"PK\x03\x04"
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_length + extra_length


def cdxj(line: str) -> tuple[str, str, dict[str, str]]:
    key, stamp, data = line.split(" ", 2)
    return key, stamp, json.loads(data)


def articles(collection: Collection) -> list[Article]:
    with Store(collection.db_path, readonly=True) as store:
        return list(store.articles())


# --- the package: manifest, WARCs, index, pages --------------------------------------------------

def test_every_file_is_listed_with_its_real_hash_and_size(packed: Packed) -> None:
    warcs = packed.collection.warc_files()
    with zipfile.ZipFile(packed.path) as zf:
        names = zf.namelist()
        assert zf.testzip() is None  # every member's CRC
    assert len(names) == len(set(names))
    assert set(names) == FIXED | {f"archive/{w.name}" for w in warcs}
    for name in names:
        assert not name.startswith("/") and ".." not in PurePosixPath(name).parts and "\\" not in name

    manifest_bytes = (packed.unzipped / "datapackage.json").read_bytes()
    manifest = json.loads(manifest_bytes)
    assert manifest["profile"] == "data-package"
    assert manifest["wacz_version"] == "1.1.1"
    assert manifest["software"].startswith("archiver ")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", manifest["created"])
    created = datetime.fromisoformat(manifest["created"].replace("Z", "+00:00"))
    assert abs(datetime.now(UTC) - created) < timedelta(minutes=10)

    resources = manifest["resources"]
    assert sorted(r["path"] for r in resources) == sorted(set(names) - {"datapackage.json", "datapackage-digest.json"})
    for resource in resources:
        file = packed.unzipped / resource["path"]
        assert resource["name"] == file.name
        assert resource["bytes"] == file.stat().st_size
        assert resource["hash"] == sha256_of(file), resource["path"]

    digest = json.loads((packed.unzipped / "datapackage-digest.json").read_bytes())
    assert digest == {"path": "datapackage.json", "hash": "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()}

    report = packed.report
    assert report.warc_files == len(warcs)
    assert report.warc_bytes == sum(w.stat().st_size for w in warcs)
    assert report.bytes == packed.path.stat().st_size
    assert [r.to_json() for r in report.resources] == resources
    assert sorted(os.listdir(packed.path.parent)) == ["news-unzipped", "news.wacz"]  # no temporary file left
    assert packed.path.stat().st_mode & 0o777 == 0o644


def test_warcs_are_stored_uncompressed_and_byte_identical(packed: Packed) -> None:
    with zipfile.ZipFile(packed.path) as zf:
        for warc in packed.collection.warc_files():
            info = zf.getinfo(f"archive/{warc.name}")
            assert info.compress_type == zipfile.ZIP_STORED
            assert info.compress_size == info.file_size == warc.stat().st_size
            original = warc.read_bytes()
            assert (packed.unzipped / "archive" / warc.name).read_bytes() == original
            with packed.path.open("rb") as fh:  # the raw bytes in the .wacz, as a range request reads them
                fh.seek(data_offset(packed.path, info))
                assert fh.read(info.file_size) == original
        for name in FIXED:
            assert zf.getinfo(name).compress_type == zipfile.ZIP_DEFLATED  # text: compressing it is allowed


def test_every_index_line_points_at_a_real_record(packed: Packed) -> None:
    index = packed.unzipped / "indexes" / "index.cdx"
    assert index.read_bytes() == packed.collection.cdxj_path.read_bytes()  # the collection's CDXJ, as is
    lines = index.read_text(encoding="utf-8").splitlines()
    assert lines == sorted(lines) and len(lines) == packed.report.index_lines
    urls = set()
    with zipfile.ZipFile(packed.path) as zf:
        for line in lines:
            _key, stamp, fields = cdxj(line)
            name = fields["filename"]
            assert "/" not in name  # a name in archive/, as ReplayWeb.page and pywb resolve it
            offset, length = int(fields["offset"]), int(fields["length"])
            with (packed.unzipped / "archive" / name).open("rb") as fh:  # in the unzipped archive/
                fh.seek(offset)
                member = fh.read(length)
            record = gzip.decompress(member)  # exactly one whole gzip member
            head = record.split(b"\r\n\r\n", 1)[0].decode("utf-8")
            assert f"\r\nWARC-Target-URI: {fields['url']}\r\n" in head, head
            date = re.search(r"\r\nWARC-Date: (\S+)", head)
            assert date and re.sub(r"\D", "", date.group(1))[:14] == stamp
            with packed.path.open("rb") as fh:  # and inside the .wacz itself, at the same offset
                fh.seek(data_offset(packed.path, zf.getinfo(f"archive/{name}")) + offset)
                assert fh.read(length) == member
            urls.add(fields["url"])
    for article in articles(packed.collection):
        if article.captured:
            assert article.final_url in urls and article.lead_image_url in urls


def test_pages_list_one_page_per_captured_article(packed: Packed) -> None:
    lines = (packed.unzipped / "pages" / "pages.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines[0] == '{"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}'
    pages = [json.loads(line) for line in lines[1:]]
    rows = articles(packed.collection)
    captured = [a for a in rows if a.captured]
    assert len(captured) == 4 and len(rows) == 5  # gone.html failed (404): no page
    assert [p["url"] for p in pages] == [a.url for a in captured]
    assert packed.report.pages == len(pages)
    assert len({p["id"] for p in pages}) == len(pages)
    index = [cdxj(line) for line in packed.collection.cdxj_path.read_text(encoding="utf-8").splitlines()]
    for page, article in zip(pages, captured, strict=True):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", page["ts"])
        assert page["ts"] == article.capture_time
        assert page["title"] == article.page_title and page["title"]  # the page's own title
        assert page["seed_title"] == article.title and page["seed_title"].startswith("种子标题")
        assert page["seed_time"] == article.seed_time and page["seed_time"].startswith("2023-10-06T00:45:0")
        assert page["published"] == article.published
        assert page["lead_image_url"] == article.lead_image_url and page["lead_image_url"].endswith("/img/lead.jpg")
        assert page["lead_image_status"] == 200 and page["lead_image_error"] == ""
        assert page["status"] == 200
        assert page["final_url"] == article.final_url
        stamp = re.sub(r"\D", "", page["ts"])
        # replayable: the page's URL is in the index, and the response it ends at has the page's time
        assert any(fields["url"] == page["url"] for _, _, fields in index)
        assert any(fields["url"] == page["final_url"] and s == stamp for _, s, fields in index)
    redirected = next(p for p in pages if p["url"].endswith("/redirect"))
    assert redirected["final_url"].endswith("/redirected.html") and redirected["title"] == "跳转后的文章"


def test_page_title_falls_back_to_the_seed_title() -> None:
    row = Article(url="https://example.org/a", title="种子标题", seed_timestamp=None, seed_time="", page_title="",
                  published="", capture_time="2024-01-02T03:04:05Z", status=200, final_url="https://example.org/a",
                  lead_image_url="", lead_image_status=None, lead_image_error="", warc_file="x.warc.gz", warc_offset=0,
                  warc_length=1,
                  payload_digest="", replay_path="", source="", error="", attempts=1)
    page = wacz_module.page_of(row)
    assert page["title"] == "种子标题" and page["ts"] == "2024-01-02T03:04:05Z"


def test_wacz_validate_accepts_it_and_catches_a_tampered_copy(packed: Packed, tmp_path: Path) -> None:
    tool = BIN / "wacz"
    if not tool.exists():
        pytest.fail("the `wacz` package is not installed (pip install -e '.[test]')")
    result = subprocess.run([str(tool), "validate", "-f", str(packed.path)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation succeeded" in result.stdout
    tampered = tmp_path / "tampered.wacz"
    with zipfile.ZipFile(packed.path) as src, zipfile.ZipFile(tampered, "w") as out:
        for info in src.infolist():
            data = src.read(info)
            out.writestr(info, data.replace(b"All Pages", b"All Pagez") if info.filename == "pages/pages.jsonl"
                         else data)
    result = subprocess.run([str(tool), "validate", "-f", str(tampered)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "hash" in result.stdout.lower()


# --- refusals and safety -----------------------------------------------------------------------

def corrupt_copy(cfg: Config, tmp_path: Path) -> tuple[Config, str]:
    """A copy of the root with one byte flipped inside the plain.html response's gzip member."""
    copy = cfg.replace(root=tmp_path / "copy")
    shutil.copytree(cfg.root, copy.root)
    collection = Collection.at(copy.root, "news")
    line = next(line for line in collection.cdxj_path.read_text(encoding="utf-8").splitlines()
                if "/plain.html" in line and '"text/html"' in line)
    fields = cdxj(line)[2]
    warc = collection.archive_dir / fields["filename"]
    data = bytearray(warc.read_bytes())
    data[int(fields["offset"]) + int(fields["length"]) // 2] ^= 0xFF
    warc.write_bytes(bytes(data))
    return copy, fields["filename"]


def test_refuses_a_collection_that_fails_verification(packed: Packed, tmp_path: Path) -> None:
    damaged, warc_name = corrupt_copy(packed.cfg, tmp_path)
    output = tmp_path / "out2" / "news.wacz"
    output.parent.mkdir()
    output.write_bytes(b"the previous version")
    with pytest.raises(WaczRefused) as refused:
        wacz(damaged, output)
    assert refused.value.exit_code == 1 and isinstance(refused.value, ArchiverError)
    assert refused.value.problems and all(p.file == warc_name for p in refused.value.problems[:1])
    message = str(refused.value)
    assert "fails verification" in message and warc_name in message and "no WACZ was written" in message
    assert output.read_bytes() == b"the previous version"  # untouched
    assert os.listdir(output.parent) == ["news.wacz"]  # and no temporary file left

    result = CliRunner().invoke(cli, ["--root", str(damaged.root), "wacz", "-c", "news", "-o", str(output)])
    assert result.exit_code == 1
    assert "error: collection 'news' fails verification" in result.output and warc_name in result.output
    assert output.read_bytes() == b"the previous version"
    wacz(packed.cfg, output)  # the undamaged original still packs, over the old file
    assert zipfile.is_zipfile(output)


def test_an_unindexed_open_file_is_refused_too(packed: Packed, tmp_path: Path) -> None:
    leftover = packed.collection.archive_dir / "archiver-killed.warc.gz.open"
    leftover.write_bytes(b"")
    with pytest.raises(WaczRefused) as refused:
        wacz(packed.cfg, tmp_path / "x.wacz")
    assert "archiver-killed.warc.gz.open: open_file" in str(refused.value)
    assert "`archiver index` mends leftover .open files" in str(refused.value)
    assert not (tmp_path / "x.wacz").exists()


@pytest.mark.parametrize("name", [
    "../escape.warc.gz", "/etc/absolute.warc.gz", "a/b.warc.gz", "a\\..\\..\\evil.warc.gz", "C:evil.warc.gz",
    "..warc.gz", ".hidden.warc.gz", "nul\x00.warc.gz", "new\nline.warc.gz", "bad\udcff.warc.gz",
    "old.arc.gz", "old.arc", "open.warc.gz.open", "notes.txt", "x" * 250 + ".warc.gz", 'a"b.warc.gz', "a|b.warc",
])
def test_unsafe_warc_names_are_refused(name: str) -> None:
    with pytest.raises(WaczRefused):
        member_name(name)


@pytest.mark.parametrize("name", [
    "archiver-20240102030405-abc123def456-00-00000.warc.gz", "新闻 2024 (1).warc.gz", "rec-x-0.warc",
    "a..b.warc.gz", "crawl~2024=01,part+1@x.warc.gz",
])
def test_odd_but_safe_warc_names_stay_as_they_are(name: str) -> None:
    path = member_name(name)
    assert path == f"archive/{name}"
    assert PurePosixPath(path).parts == ("archive", name)


def test_a_renamed_warc_keeps_its_name_in_archive_and_in_the_index(packed: Packed, tmp_path: Path) -> None:
    cfg, collection = packed.cfg, packed.collection
    first = collection.warc_files()[0]
    odd = "新闻 2024 (1).warc.gz"
    first.rename(first.with_name(odd))
    build_index(cfg)  # the indexes now name the new file
    result = pack(cfg, collection, tmp_path / "renamed" / "news.wacz")
    assert (result.unzipped / "archive" / odd).read_bytes() == (collection.archive_dir / odd).read_bytes()
    filenames = {cdxj(line)[2]["filename"] for line in
                 (result.unzipped / "indexes" / "index.cdx").read_text(encoding="utf-8").splitlines()}
    assert odd in filenames and filenames <= {p.name for p in (result.unzipped / "archive").iterdir()}


def test_a_warc_name_that_could_escape_is_refused(packed: Packed, tmp_path: Path) -> None:
    cfg, collection = packed.cfg, packed.collection
    first = collection.warc_files()[0]
    first.rename(first.with_name("a\\..\\..\\evil.warc.gz"))  # a plain (if odd) file name on Linux
    build_index(cfg)
    output = tmp_path / "evil" / "news.wacz"
    output.parent.mkdir()
    with pytest.raises(WaczRefused, match="path separator"):
        wacz(cfg, output)
    assert os.listdir(output.parent) == []


def test_output_and_collection_errors_are_usage_errors(packed: Packed, tmp_path: Path) -> None:
    cfg = packed.cfg
    for output, message in [(tmp_path / "news.zip", "must end in .wacz"),
                            (tmp_path / "missing" / "news.wacz", "no directory"),
                            (packed.unzipped.parent / "dir.wacz", "is a directory")]:
        if message == "is a directory":
            output.mkdir()
        with pytest.raises(UsageError, match=message):
            wacz(cfg, output)
    with pytest.raises(UsageError, match="no collection"):
        wacz(cfg.replace(collection="nothere"), tmp_path / "x.wacz")
    Collection.at(cfg.root, "empty").create()
    with pytest.raises(UsageError, match="no WARC files"):
        wacz(cfg.replace(collection="empty"), tmp_path / "x.wacz")
    result = CliRunner().invoke(cli, ["--root", str(cfg.root), "wacz", "-c", "news", "-o", str(tmp_path / "a.zip")])
    assert result.exit_code == 2 and "must end in .wacz" in result.output


def test_an_interrupted_write_leaves_no_half_written_wacz(packed: Packed, monkeypatch: pytest.MonkeyPatch) -> None:
    before = packed.path.read_bytes()
    real = wacz_module._copy_file
    calls = []

    def interrupted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 2:  # Ctrl-C in the middle of the second WARC file
            raise KeyboardInterrupt
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(wacz_module, "_copy_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        wacz(packed.cfg, packed.path)
    assert packed.path.read_bytes() == before  # the previous WACZ, whole
    assert sorted(os.listdir(packed.path.parent)) == ["news-unzipped", "news.wacz"]


def test_cli_prints_a_one_line_summary(packed: Packed, tmp_path: Path) -> None:
    output = tmp_path / "cli.wacz"
    result = CliRunner().invoke(cli, ["--root", str(packed.cfg.root), "wacz", "-c", "news", "-o", str(output)])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    report = packed.report
    assert lines[0].startswith(f"wrote {output}: {report.warc_files} WARC files, {report.index_lines} index lines, "
                               f"{report.pages} pages, ")
    assert zipfile.ZipFile(output).namelist() == zipfile.ZipFile(packed.path).namelist()


def test_a_capture_running_on_the_collection_blocks_packaging(packed: Packed, tmp_path: Path) -> None:
    from archiver.collection import locked

    with locked(packed.collection), pytest.raises(UsageError, match="another archiver process"):
        wacz(packed.cfg, tmp_path / "x.wacz")


# --- replay: unpacked into pywb, opened in Chromium -----------------------------------------------

def wait_until_answering(base: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "pywb exited on start"
        try:
            with urllib.request.urlopen(base + "/", timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"pywb did not answer on {base}")


@pytest.mark.slow
def test_pywb_unpacks_the_wacz_and_replays_its_articles_in_a_browser(packed: Packed, site: NewsSite,
                                                                     tmp_path: Path) -> None:
    scratch = tmp_path / "pywb-root"
    scratch.mkdir()

    def wb_manager(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(BIN / "wb-manager"), *args], cwd=scratch, capture_output=True, text=True,
                                timeout=120, stdin=subprocess.DEVNULL)
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    wb_manager("init", "fromwacz")
    added = wb_manager("add", "--unpack-wacz", "fromwacz", str(packed.path))
    assert "does not contain any" not in added.stdout + added.stderr  # what pywb says of an index.cdxj
    coll = scratch / "collections" / "fromwacz"
    # pywb renames the WARC files after the WACZ (news-0.warc.gz, ...) and rewrites `filename` to match
    unpacked = {p.name: p.read_bytes() for p in (coll / "archive").iterdir()}
    assert sorted(unpacked.values()) == sorted(w.read_bytes() for w in packed.collection.warc_files())
    lines = (coll / "indexes" / "index.cdxj").read_text(encoding="utf-8").splitlines()
    assert len(lines) == packed.report.index_lines
    assert {cdxj(line)[2]["filename"] for line in lines} <= set(unpacked)

    pages = [json.loads(line) for line in
             (packed.unzipped / "pages" / "pages.jsonl").read_text(encoding="utf-8").splitlines()[1:]]
    texts = {"/plain.html": "这是一篇普通的文章。", "/gbk.html": "镕字只在 GBK 中。", "/redirect": "经过两次跳转。"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with (tmp_path / "wayback.log").open("wb") as log:
        process = subprocess.Popen([str(BIN / "wayback"), "-b", "127.0.0.1", "-p", str(port)], cwd=scratch,
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until_answering(base, process)
            hits_before = len(site.hits)
            with browser_page() as page:
                for path, text in texts.items():
                    entry = next(p for p in pages if p["url"] == site.url + path)
                    stamp = re.sub(r"\D", "", entry["ts"])
                    page.goto(f"{base}/fromwacz/{stamp}/{entry['url']}")
                    frame = page.wait_for_selector("iframe").content_frame()
                    assert frame is not None
                    frame.wait_for_function(LEAD_IMAGE_LOADED)  # the lead image loaded: naturalWidth > 0
                    assert text in frame.inner_text("article")
                    assert frame.evaluate("document.querySelector('article img').naturalWidth") > 0
                page.screenshot(path=str(tmp_path / "wacz-replay.png"))
            assert site.hits[hits_before:] == []  # all of it came from the WACZ, none from the live site
        finally:
            stop(process, grace=15)
    with pytest.raises(OSError):  # pywb is gone
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
