"""Hostile input costs bounded memory and time, and ends in a clear report: feeds that expand
entities, gzip bombs, byte codecs named as charsets, deeply nested markup, damaged and odd WARC
files. Each bomb runs in a child process whose peak memory is held to a bound (tests/support/bounded.py).
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import zlib
from pathlib import Path

import pytest

from archiver.capture.run import capture
from archiver.config import Config
from archiver.index.build import build_index
from archiver.index.metadata import Store
from archiver.seeds.feeds import looks_like_feed
from archiver.seeds.model import BadSeed, Seed
from archiver.seeds.sources import iter_seeds

from .conftest import capture_pages
from .support.bounded import run_bounded
from .support.newsite import NewsSite, bz2_of_zeros

ENTITY_BOMB = ('<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY big "' + "A" * 3800 + '">]>\n'
               '<rss version="2.0"><channel><title>t</title><item><title>x</title>'
               '<link>https://example.org/a</link><description>' + "&big;" * 20_000 +
               "</description></item></channel></rss>\n")
# the DOCTYPE between two comments, where a lazy comment pattern once let it through
HIDDEN_BOMB = ENTITY_BOMB.replace('<?xml version="1.0"?>\n', "<!-- one -->\n").replace("\n<rss", "\n<!-- two --><rss")


@pytest.mark.parametrize("feed", [ENTITY_BOMB, HIDDEN_BOMB], ids=["doctype", "between-comments"])
def test_a_feed_that_declares_entities_is_refused_in_bounded_memory(tmp_path: Path, feed: str) -> None:
    path = tmp_path / "feed.xml"
    path.write_text(feed)
    outcome = run_bounded("""
from pathlib import Path
from archiver.seeds.sources import iter_seeds
done([[type(s).__name__, getattr(s, "reason", ""), getattr(s, "detail", "")] for s in iter_seeds([ARGS], Path("/"))])
""", str(path))
    assert outcome.result == [["BadSeed", "invalid_feed", outcome.result[0][2]]], outcome.stderr
    assert "declares entities" in outcome.result[0][2]
    assert outcome.peak_mb < 200


def test_a_feed_item_larger_than_the_cap_is_reported_and_the_others_read(tmp_path: Path) -> None:
    items = "".join(f"<item><title>t{n}</title><link>https://example.org/{n}</link>"
                    f"<description>{'长' * (600_000 if n == 1 else 10)}</description></item>" for n in range(3))
    (tmp_path / "feed.xml").write_text(f'<?xml version="1.0"?><rss version="2.0"><channel>{items}</channel></rss>')
    found = list(iter_seeds([str(tmp_path / "feed.xml")], tmp_path))
    assert [type(s) for s in found] == [Seed, BadSeed, Seed]
    refused = found[1]
    assert isinstance(refused, BadSeed) and refused.reason == "invalid_feed_item"
    assert "feed_max_item_size" in refused.detail


def test_rss_0_91_with_the_netscape_doctype_is_a_feed() -> None:
    head = (b'<?xml version="1.0"?>\n<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"\n'
            b' "http://my.netscape.com/publish/formats/rss-0.91.dtd">\n<rss version="0.91">')
    assert looks_like_feed(head)


def _flagged_gzip(size: int) -> bytes:
    """`size` spaces gzipped, with the reserved FLG bit 0x20 set: zlib refuses the header, Python's gzip takes it."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = b" " * (1 << 20)
    body = b"".join(packer.compress(chunk) for _ in range(size >> 20)) + packer.flush()
    trailer = struct.pack("<II", _crc_of_spaces(size), size & 0xFFFFFFFF)
    return b"\x1f\x8b\x08\x20" + b"\0" * 6 + body + trailer


def _crc_of_spaces(size: int) -> int:
    crc, chunk = 0, b" " * (1 << 20)
    for _ in range(size >> 20):
        crc = zlib.crc32(chunk, crc)
    return crc


def test_a_gzip_bomb_zlib_refuses_is_still_decoded_only_up_to_the_cap(tmp_path: Path) -> None:
    bomb = _flagged_gzip(1 << 30)
    (tmp_path / "bomb.gz").write_bytes(bomb)
    assert len(bomb) < 2_000_000
    with pytest.raises(zlib.error):
        zlib.decompressobj(47).decompress(bomb[:1000])
    assert gzip.GzipFile(fileobj=io.BytesIO(bomb)).read(10) == b" " * 10  # Python's gzip reads it
    outcome = run_bounded("""
from pathlib import Path
from archiver.extract.decode import MAX_DECODED, decode_body
decoded = decode_body(Path(ARGS).read_bytes(), "gzip")
done([len(decoded), MAX_DECODED])
""", str(tmp_path / "bomb.gz"))
    assert outcome.result is not None and outcome.result[0] == outcome.result[1], outcome.stderr
    assert outcome.peak_mb < 250


BYTE_CODECS = ["bz2", "zlib", "base64", "hex", "rot13", "uu_codec", "punycode", "utf-7", "undefined"]


@pytest.fixture(scope="module")
def bz2_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bomb") / "zeros.bz2"
    path.write_bytes(bz2_of_zeros())
    return path


@pytest.mark.parametrize("label", BYTE_CODECS)
def test_byte_codecs_are_not_charsets(label: str, bz2_bomb: Path) -> None:
    outcome = run_bounded("""
from pathlib import Path
from archiver.extract.page import page_info
body = Path(ARGS[1]).read_bytes()
info = page_info(body, "text/html; charset=" + ARGS[0], "http://example.org/")
meta = page_info(b"<meta charset='" + ARGS[0].encode() + b"'><title>t</title>", "text/html", "http://example.org/")
done([info.charset, meta.charset, meta.title])
""", [label, str(bz2_bomb)])
    assert outcome.result is not None, outcome.stderr
    assert outcome.result[0] != label and outcome.result[1] != label and outcome.result[2] == "t"
    assert outcome.peak_mb < 250


def test_deeply_nested_markup_is_parsed_in_bounded_time() -> None:
    """10 MB of nested <div> once took over ten minutes of CPU; the child has 60 s."""
    outcome = run_bounded("""
from archiver.extract.page import page_info
n = 1_000_000
body = b"<html><head><title>deep</title></head><body>" + b"<div>" * n + b"<p>x</p>" + b"</div>" * n + b"</body></html>"
done(page_info(body, "text/html; charset=utf-8", "http://example.org/").title)
""", cpu_seconds=60)
    assert outcome.result == "deep", outcome.stderr


def test_hostile_pages_are_captured_as_received(cfg: Config, site: NewsSite) -> None:
    report = capture(cfg, [site.url + path for path in ("/charset-bz2.html", "/meta-rot13.html", "/deep.html")])
    assert report.captured == 3 and not report.failures, report.failures
    rebuilt = build_index(cfg)
    assert rebuilt.articles == 3 and not rebuilt.unreadable
    with Store(cfg.root / "collections" / "news" / "indexes" / "metadata.sqlite") as store:
        titles = {a.url.removeprefix(site.url): a.page_title for a in store.articles()}
    assert titles["/meta-rot13.html"] == "rot13" and titles["/deep.html"] == "deep"


def _write_zeros_gzip(path: Path, size: int) -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\0" * (1 << 20)
    with path.open("wb") as out:
        for _ in range(size >> 20):
            out.write(packer.compress(chunk))
        out.write(packer.flush())


def test_hostile_files_in_the_archive_are_reported_and_the_rest_indexed(cfg: Config, site: NewsSite) -> None:
    collection = capture_pages(cfg, site, ["/plain.html", "/gbk.html"])
    archive = collection.archive_dir
    _write_zeros_gzip(archive / "zeros.warc.gz", 1 << 30)  # 1 GiB of zeros, 1 MB on disk
    os.mkfifo(archive / "fifo.warc.gz")
    (archive / "zero-device.warc.gz").symlink_to("/dev/zero")
    outcome = run_bounded("""
from pathlib import Path
from archiver.config import Config
from archiver.index.build import build_index
report = build_index(Config(root=Path(ARGS), processes=1))
done([report.files, report.articles, sorted(report.unreadable)])
""", str(cfg.root), cpu_seconds=120)
    assert outcome.result is not None, outcome.stderr
    files, articles, unreadable = outcome.result
    assert (files, articles) == (1, 2)
    assert [line.split(":")[0] for line in unreadable] == ["fifo.warc.gz", "zero-device.warc.gz", "zeros.warc.gz"]
    assert "not a regular file" in unreadable[0] and "not a regular file" in unreadable[1]
    assert outcome.peak_mb < 300


def test_a_capture_goes_on_past_a_hostile_file_left_in_the_archive(cfg: Config, site: NewsSite) -> None:
    collection = capture_pages(cfg, site, ["/plain.html"])
    _write_zeros_gzip(collection.archive_dir / "zeros.warc.gz", 64 << 20)
    report = capture(cfg, [site.url + "/gbk.html"])
    assert report.captured == 1 and report.skipped_files and report.skipped_files[0].startswith("zeros.warc.gz:")

