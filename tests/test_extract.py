"""Charsets, titles, dates and images read out of pages; stored bytes are never touched."""

from __future__ import annotations

import codecs
import gzip
import zlib

import pytest

from archiver.extract.decode import MAX_DECODED, decode_body, html_text
from archiver.extract.page import page_info

TITLE = "朱镕基视察港口：镕字不在 GB2312 里"
BODY = f"<html><head><title>{TITLE}</title></head><body><p>{'新闻正文。' * 50}</p></body></html>"


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (BODY.replace("<head>", '<head><meta charset="gb2312">').encode("gbk"), "text/html"),  # 镕 is GBK-only
        (BODY.encode("gbk"), "text/html; charset=gb2312"),
        (BODY.encode("gbk"), "text/html; charset=utf-8"),  # GBK labelled UTF-8
        (BODY.replace("<head>", '<head><meta charset="utf-8">').encode("gbk"), "text/html"),
        (BODY.encode("gbk"), "text/html"),  # no label at all
        (BODY.encode("gb18030"), "text/html; charset=GBK"),
        (codecs.BOM_UTF8 + BODY.encode("utf-8"), "text/html; charset=gbk"),  # the BOM wins
        (codecs.BOM_UTF16_LE + BODY.encode("utf-16-le"), "text/html"),
        (BODY.encode("utf-8"), "text/html"),
        (BODY.encode("big5", errors="ignore").replace(b"?", b""), "text/html; charset=big5"),
    ],
)
def test_titles_come_out_right_whatever_the_labels_say(data: bytes, content_type: str) -> None:
    expected = TITLE if "big5" not in content_type else TITLE.encode("big5", "ignore").decode("big5")
    assert page_info(data, content_type, "http://example.org/").title == expected


def test_decoding_does_not_change_the_bytes() -> None:
    data = BODY.encode("gbk")
    before = bytes(data)
    html_text(data, "text/html; charset=utf-8")
    assert data == before


def test_gzip_bombs_decode_only_up_to_the_cap() -> None:
    bomb = gzip.compress(b"<html>" + b" " * (300 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 400_000
    assert len(decode_body(bomb, "gzip")) == MAX_DECODED
    assert len(decode_body(zlib.compress(b"x" * (50 * 1024 * 1024)), "deflate", limit=1000)) == 1000


def test_broken_content_encoding_gives_nothing_rather_than_an_error() -> None:
    assert decode_body(b"not gzip at all", "gzip") == b""


def test_lead_image_order_og_then_twitter_then_article() -> None:
    base = "http://example.org/news/a.html"
    og = '<meta property="og:image" content="/og.jpg"><meta name="twitter:image" content="/tw.jpg">'
    tw = '<meta name="twitter:image" content="tw.jpg">'
    body = '<body><nav><img src="/logo.png"></nav><article><img src="lead.jpg"></article></body>'
    assert page_info(f"<head>{og}</head>{body}".encode(), "text/html", base).lead_image == "http://example.org/og.jpg"
    assert page_info(f"<head>{tw}</head>{body}".encode(), "text/html", base).lead_image == (
        "http://example.org/news/tw.jpg")
    assert page_info(body.encode(), "text/html", base).lead_image == "http://example.org/news/lead.jpg"
    assert page_info(b"<body><p>none</p></body>", "text/html", base).lead_image == ""


def test_published_time_sources() -> None:
    meta = b'<meta property="article:published_time" content="2023-10-06T02:11:00+02:00">'
    assert page_info(meta, "text/html", "http://x/").published == "2023-10-06T02:11:00+02:00"
    ld = b'<article><time datetime="2023-10-07T01:00:00Z">7 Oct</time></article>'
    assert page_info(ld, "text/html", "http://x/").published == "2023-10-07T01:00:00Z"
