from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archiver.errors import SeedError
from archiver.seeds.document import parse_date_line, parse_seed_document
from archiver.seeds.model import BadSeed, Seed
from archiver.seeds.sources import iter_seeds, parse_url_list

from .conftest import DATA

REAL_SEED = DATA / "seeds" / "000_0399b5d59150e21b.txt"
RFI_URL = (
    "https://www.rfi.fr/cn/%E6%94%BF%E6%B2%BB/20231006-%E6%8B%9C%E7%99%BB%E6%8B%9F11%E6%9C%88%E5%9C%A8"
    "%E5%8A%A0%E5%B7%9E%E4%B8%8E%E4%B9%A0%E8%BF%91%E5%B9%B3%E4%B8%BE%E8%A1%8C%E9%9D%A2%E5%AF%B9%E9%9D%A2"
    "%E4%BC%9A%E8%B0%88"
)


def test_real_seed_document_parses_to_its_known_values() -> None:
    seed = parse_seed_document(REAL_SEED.read_bytes(), "000.txt")
    assert seed.url == RFI_URL
    assert seed.title == "拜登拟11月在加州与习近平举行面对面会谈"
    assert seed.timestamp_ms == 1696553101000
    assert seed.seed_time == "2023-10-06T00:45:01Z"
    assert seed.lead_image == (
        "https://s.rfi.fr/media/display/9d01f668-646d-11ed-8e65-005056a90284/w:1280/p:16x9/AP22318371709579.jpg"
    )
    assert seed.published == "2023-10-06T02:11"
    assert seed.document == REAL_SEED.read_bytes()
    assert seed.article_html.startswith("<div>06/10/2023 - 02:11</div><img")


def test_seed_documents_are_recognised_by_content_not_extension(tmp_path: Path) -> None:
    data = REAL_SEED.read_bytes()
    for name in ("a.txt", "b.md", "c.html", "d"):
        (tmp_path / name).write_bytes(data)
    (tmp_path / "list.md").write_text("# my list\nhttps://example.org/a\n\nhttp://example.org/b # note\n")
    items = list(iter_seeds([str(tmp_path)], tmp_path))
    assert [type(i) for i in items] == [Seed] * 6
    assert {i.url for i in items if isinstance(i, Seed)} == {RFI_URL, "https://example.org/a", "http://example.org/b"}
    assert [i.source for i in items][-3:] == ["d", "list.md:2", "list.md:4"]


def test_ten_digit_epoch_is_seconds() -> None:
    seed = parse_seed_document(b"<!--1696553101-->\n[t](https://example.org/x)\n------\n<p>x</p>", "s")
    assert seed.timestamp_ms == 1696553101000


def test_epoch_comment_is_optional() -> None:
    seed = parse_seed_document(b"[t](https://example.org/x)\n------\n", "s")
    assert seed.timestamp_ms is None and seed.seed_time == ""


def test_relative_lead_image_is_resolved_against_the_article() -> None:
    doc = b'[t](https://example.org/news/a.html)\n------\n<div>x</div><img src="../img/1.jpg"><img src="2.jpg">'
    assert parse_seed_document(doc, "s").lead_image == "https://example.org/img/1.jpg"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "invalid_seed"),
        (b"   \n\n", "invalid_seed"),
        (b"<!--1696553101000-->\n------\n<p>no link</p>", "invalid_seed"),
        (b"[t](ftp://example.org/x)\n------\n", "unsupported_scheme"),
        (b"[t](javascript:alert(1))\n------\n", "unsupported_scheme"),
        (b"[t](https://)\n------\n", "invalid_seed"),
        (b"[\xff\xfe bad](https://example.org/)\n", "bad_encoding"),
    ],
)
def test_unreadable_seed_documents_say_why(data: bytes, reason: str) -> None:
    with pytest.raises(SeedError) as info:
        parse_seed_document(data, "bad.txt")
    assert info.value.reason == reason
    assert "bad.txt" in str(info.value)


def test_broken_files_are_reported_and_the_run_goes_on(tmp_path: Path) -> None:
    (tmp_path / "0-good.txt").write_bytes(REAL_SEED.read_bytes())
    (tmp_path / "1-empty.txt").write_bytes(b"")
    (tmp_path / "2-binary.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (tmp_path / "3-prose.txt").write_text("just some notes\n")
    (tmp_path / "4-ftp.txt").write_text("[t](ftp://x.org/)\n------\n")
    items = list(iter_seeds([str(tmp_path), str(tmp_path / "missing.txt")], tmp_path))
    assert isinstance(items[0], Seed)
    bad = [(i.source, i.reason) for i in items if isinstance(i, BadSeed)]
    assert bad == [
        ("1-empty.txt", "invalid_seed"),
        ("2-binary.bin", "bad_encoding"),
        ("3-prose.txt", "invalid_seed"),
        ("4-ftp.txt", "unsupported_scheme"),
        (str(tmp_path / "missing.txt"), "not_found"),
    ]


def test_url_lists_skip_comments_and_blanks_and_keep_fragments_out_of_comments() -> None:
    text = "# header\n\nhttps://a.example/x#top\n  # indented comment\nhttp://b.example/y  # trailing\nftp://c/\n"
    items = list(parse_url_list(io.StringIO(text), "list.txt"))
    assert [(type(i).__name__, i.source) for i in items] == [
        ("Seed", "list.txt:3"), ("Seed", "list.txt:5"), ("BadSeed", "list.txt:6")]
    assert isinstance(items[0], Seed) and items[0].url == "https://a.example/x#top"


def test_stdin_and_url_arguments(tmp_path: Path) -> None:
    items = list(iter_seeds(["-", "https://example.org/z", "mailto:x@y"], tmp_path,
                            stdin=io.StringIO("https://example.org/a\n")))
    assert [getattr(i, "url", None) for i in items[:2]] == ["https://example.org/a", "https://example.org/z"]
    assert isinstance(items[2], BadSeed) and items[2].reason == "not_found"


@pytest.mark.parametrize(
    ("line", "iso"),
    [("06/10/2023 - 02:11", "2023-10-06T02:11"), ("2023-10-06 02:11", "2023-10-06T02:11"),
     ("2023年10月6日 02:11", "2023-10-06T02:11"), ("10/25/2023 - 08:00", "2023-10-25T08:00"),
     ("31/02/2023 - 02:11", ""), ("hello", "")],
)
def test_date_lines(line: str, iso: str) -> None:
    assert parse_date_line(line) == iso


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600) | st.text(max_size=400).map(lambda s: s.encode("utf-8")))
def test_parser_raises_only_its_own_error(data: bytes) -> None:
    try:
        seed = parse_seed_document(data, "fuzz")
    except SeedError:
        return
    assert seed.url.startswith(("http://", "https://"))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["<!--1696553101000-->", "[标题](https://example.org/a)", "------", "",
                                 "<img src='x.jpg'>", "[x](", "]](http://)", "<!--12-->", "\ufeff", "<p>文</p>"]),
                max_size=8))
def test_mutated_seed_documents_never_crash_the_parser(lines: list[str]) -> None:
    with contextlib.suppress(SeedError):
        parse_seed_document("\n".join(lines).encode("utf-8"), "mutant")
