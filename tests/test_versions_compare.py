"""Two readings of an article compared (archiver/extract/versions.py): what became of it, and the diff."""

from __future__ import annotations

import dataclasses
import unicodedata

import pytest

from archiver.extract.versions import (
    Reading,
    classify,
    diff,
    is_removal_redirect,
    is_stub,
    normal_text,
    split_units,
    text_digest,
)

URL = "https://news.example.com.cn/world/2024/05/01/a123456.html"
TITLE = "港口扩建工程今日开工"
TEXT = "\n".join([
    "港口扩建工程今日开工",
    "本报讯　昨日上午，港口扩建工程正式开工。工程预计投资十亿元，将于三年内完工。"
    "市长在仪式上说：“这是城市发展的关键一步。”项目负责人表示，施工期间将尽量减少对周边居民的影响！",
    "据介绍，扩建后的港口年吞吐量将提高一倍，可停靠更大的货轮；新码头还将配备自动化装卸设备。"
    "专家认为，这将带动周边物流、仓储和制造业的发展，为本地创造数千个就业岗位。",
    "相关部门表示，将持续关注工程进展，确保施工安全和环境保护措施落实到位。" * 4,
])
ENGLISH_TEXT = "\n".join(["Harbour expansion begins", "Work on the harbour expansion began on Monday. " * 12])

CAPTURED = Reading(status=200, error="", url=URL, final_url=URL, payload_digest="sha1:AAAA", title=TITLE,
                   text=TEXT, lead_digest="sha1:LEAD")


def check(**changes: object) -> Reading:
    """A new reading of the captured article: other bytes (a new ad, a new timestamp) unless told."""
    return dataclasses.replace(CAPTURED, **{"payload_digest": "sha1:BBBB", **changes})  # type: ignore[arg-type]


# --- classify: every outcome -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (check(payload_digest="sha1:AAAA"), "unchanged"),
        (check(), "same"),
        (check(text=TEXT.replace("　", " ").replace("\n", "\n\n")), "same"),  # white space only
        (check(title="港口扩建工程今日开工（更新）"), "edited"),
        (check(text=TEXT.replace("十亿元", "十二亿元")), "edited"),
        (check(lead_digest="sha1:OTHER"), "edited"),
        (check(lead_digest=""), "edited"),  # strings compared: the caller carries a failed fetch's digest over
        (check(status=404, text="页面不存在"), "removed"),
        (check(status=410, text=""), "removed"),
        (check(status=451, text="Unavailable for legal reasons"), "removed"),
        (check(status=None, error="http_404", text=""), "removed"),
        (check(final_url="https://news.example.com.cn/"), "removed"),  # the front page
        (check(final_url="https://www.example.com.cn/index.html"), "removed"),  # the site's front page
        (check(final_url="https://news.example.com.cn/world/"), "removed"),  # its section
        (check(final_url="https://news.example.com.cn/error/404.html"), "removed"),
        (check(text="抱歉，您访问的新闻不存在或已被删除。", title="页面不存在"), "removed"),  # a stub
        (check(text="抱歉，该内容已失效", title=TITLE), "removed"),
        (check(status=None, error="timeout", text=""), "failed"),
        (check(status=None, error="dns_error", text=""), "failed"),
        (check(status=503, error="http_503", text=""), "failed"),
        (check(status=503, text=""), "failed"),
        (check(status=500, text="Internal Server Error"), "failed"),
        (check(status=429, text="Too Many Requests"), "failed"),
        (check(status=408, text=""), "failed"),
        (check(status=None, text=""), "failed"),  # no response and no reason
        (check(status=403, text="Forbidden"), "failed"),  # access, not content
        (check(status=401, text=""), "failed"),
        (check(status=400, text=""), "failed"),
        (check(status=302, text=""), "failed"),  # a redirect not followed to its end
        (check(status=200, error="connection_error", text=TEXT[:100]), "failed"),  # cut off: not a stub
        # a slug change: the article moved, and is the same one
        (check(final_url="https://news.example.com.cn/world/2024/05/01/harbour-expansion-begins-today.html"), "same"),
        # another site: not this site's removal; its text decides
        (check(final_url="https://www.other.com/"), "same"),
        (check(final_url="https://sports.example.com.cn/"), "same"),  # a sibling subdomain is another site
        # a long article that mentions 404 is an article
        (check(text=TEXT + "\n网站曾因故障返回 404 错误，页面不存在的提示困扰了许多读者。"), "edited"),
    ],
)
def test_classify(now: Reading, expected: str) -> None:
    assert classify(CAPTURED, now) == expected


def test_an_english_stub_is_a_removal() -> None:
    captured = dataclasses.replace(CAPTURED, title="Harbour expansion begins", text=ENGLISH_TEXT)
    assert classify(captured, check(title="Page not found", text="Sorry, this page is no longer available.")) \
        == "removed"
    assert classify(captured, check(title="Harbour expansion begins", text=ENGLISH_TEXT + " Updated.")) == "edited"


REMOVED = check(status=200, payload_digest="sha1:STUB", title="页面不存在", text="抱歉，您访问的新闻不存在或已被删除。",
                removed=True)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (check(), "restored"),
        (check(title="港口扩建工程今日开工（更新）"), "restored"),
        (check(payload_digest="sha1:STUB", title="页面不存在", text=REMOVED.text), "removed"),  # the same stub
        (check(payload_digest="sha1:STUB2", title="页面不存在", text=REMOVED.text), "removed"),  # other bytes
        (check(title="新闻中心", text="您访问的页面已下线"), "removed"),  # another notice
        (check(text=""), "removed"),  # no article
        (check(status=404, text=""), "removed"),
        (check(final_url="https://news.example.com.cn/"), "removed"),
        (check(status=None, error="timeout", text=""), "failed"),
    ],
)
def test_after_a_removal(now: Reading, expected: str) -> None:
    assert classify(REMOVED, now) == expected
    gone = dataclasses.replace(REMOVED, status=404, payload_digest="sha1:404", text="")
    assert classify(gone, now) == expected


def test_a_reading_from_the_index_goes_by_its_text_digest_and_length() -> None:
    kept = dataclasses.replace(CAPTURED, text="", text_digest=text_digest(TEXT), text_length=len(normal_text(TEXT)))
    assert classify(kept, check()) == "same"
    assert classify(kept, check(text=TEXT + "更正：工程投资为十二亿元。")) == "edited"
    assert classify(kept, check(text="抱歉，该新闻已删除")) == "removed"


# --- the rules one by one ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "final_url", "expected"),
    [
        ("https://example.com/news/2024/story.html", "", False),
        ("https://example.com/news/2024/story.html", "https://example.com/news/2024/story.html", False),
        ("http://example.com/news/2024/story.html", "https://www.example.com/news/2024/story.html", False),
        ("https://example.com/news/2024/story.html", "https://example.com/", True),
        ("https://example.com/news/2024/story.html", "https://example.com", True),
        ("https://example.com/news/2024/story.html", "https://www.example.com/?from=gone", True),
        ("https://example.com/news/2024/story.html", "/", True),  # relative to the article
        ("https://www.example.com/news/2024/story.html", "https://example.com/index.shtml", True),
        ("https://example.com/news/2024/story.html", "https://example.com/news/", True),
        ("https://example.com/news/2024/story.html", "https://example.com/news/index.html", True),
        ("https://news.example.com/a/b/story.html", "https://example.com/", True),  # the site of a subdomain
        ("https://example.com/news/story.html", "https://m.example.com/", True),  # its mobile subdomain
        ("https://example.com/news/story.html", "https://example.com/404.html", True),
        ("https://example.com/news/story.html", "https://example.com/notfound.aspx", True),
        ("https://example.com/?p=123", "https://example.com/", True),
        ("https://example.com/?p=123", "https://example.com/?p=456", False),
        ("https://example.com/news/2024/story.html", "https://example.com/news/2024/new-story.html", False),
        ("https://example.com/news/2024/05/a1.html", "https://example.com/a/20240501", False),  # 4+ digits
        ("https://example.com/news/world/story", "https://example.com/news/harbour-expansion-begins-today", False),
        ("https://example.com/news/2024/story.html", "https://example.com/index.php?id=12345", False),
        ("https://example.com/news/world/story", "https://example.com/news/world/other", False),  # as deep
        ("https://example.com/news/2024/story.html", "https://other.com/", False),
        ("https://news.example.com/a/b/story.html", "https://sports.example.com/", False),
        ("https://example.com/news/2024/story.html", "https://example.com.evil.org/", False),
    ],
)
def test_is_removal_redirect(url: str, final_url: str, expected: bool) -> None:
    assert is_removal_redirect(url, final_url) is expected


ARTICLE = "港口扩建工程正式开工，预计三年内完工。" * 50  # 950 characters


@pytest.mark.parametrize(
    ("text", "title", "previous", "expected"),
    [
        ("抱歉，该新闻已撤下", "", ARTICLE, True),
        ("港口扩建工程正式开工。", "港口扩建", ARTICLE, True),  # shrank to a fragment: < 25% and short
        ("港" * 230, "", ARTICLE, True),  # 24%
        ("港" * 240, "", ARTICLE, False),  # 25%
        ("港" * 400, "页面没有找到", ARTICLE, True),  # 42% with a notice (in the title)
        ("港" * 400, "", ARTICLE, False),  # 42% without
        ("港" * 480 + "404", "", ARTICLE, False),  # 51%, with a notice
        ("Error 404", "", "x" * 1000 * 2, True),
        ("Error 404", "", "x" * 1000, True),
        ("x" * 500, "", "x" * 2400, False),  # < 25% but not short
        ("x" * 500 + " has been removed", "", "x" * 2400, True),
        ("FILE ＨＡＳ ＢＥＥＮ ＤＥＬＥＴＥＤ", "", ARTICLE, True),  # full width, any case
        ("访问量超过14040次", "", "", False),  # no notice (not 404 within a number) and no text before
        ("该页面不存在", "", "", True),  # no text before: a short notice
        ("该页面不存在" + "港" * 400, "", "", False),
        (ARTICLE + "服务器返回 404 错误，页面不存在。", "", ARTICLE, False),  # an article that mentions 404
    ],
)
def test_is_stub(text: str, title: str, previous: str, expected: bool) -> None:
    assert is_stub(text, title, previous) is expected


def test_normal_text() -> None:
    assert normal_text("　本报讯　　记者　张三 \n\n  ＡＢＣ　ｎｅｗｓ　２０２４\u200b年 \r\nlast\tline\u00a0 ") == \
        "本报讯 记者 张三\nABC news 2024年\nlast line"
    assert normal_text("") == normal_text(" \n　\n") == ""


def test_text_digest() -> None:
    assert text_digest("abc") == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert text_digest("本报讯　记者\n\n正文") == text_digest(" 本报讯 记者 \n正文\n") \
        == text_digest("本报讯  记者\r\n正文")
    assert text_digest("本报讯 记者\n正文") != text_digest("本报讯 记者 正文")  # blocks are part of the text
    assert text_digest("") == text_digest(" \n ") == ""


def test_split_units() -> None:
    assert split_units(TEXT.split("\n")[1]) == [
        "本报讯 昨日上午，港口扩建工程正式开工。",
        "工程预计投资十亿元，将于三年内完工。",
        "市长在仪式上说：“这是城市发展的关键一步。”",
        "项目负责人表示，施工期间将尽量减少对周边居民的影响！",
    ]
    assert split_units("他问：「真的吗？」她答：『是的！』然后呢；好吧?!结尾没有句号") == [
        "他问：「真的吗？」", "她答：『是的！』", "然后呢；", "好吧?!", "结尾没有句号",
    ]
    assert split_units("First sentence. Second one! Third?\n\n  Another   line  ") == [
        "First sentence. Second one! Third?", "Another line",
    ]
    assert split_units("") == []


OLD_TEXT = "\n".join([
    "港口扩建工程今日开工",
    "昨日上午，工程正式开工。工程预计投资十亿元。市长说：“这是关键一步。”项目将于三年内完工。",
    "English summary: work began.",
])


def test_diff_of_a_removed_sentence_shows_that_sentence() -> None:
    new_text = OLD_TEXT.replace("工程预计投资十亿元。", "")
    assert diff(TITLE, OLD_TEXT, TITLE, new_text, "2024-05-01", "2024-05-02") == "\n".join([
        "--- 2024-05-01",
        "+++ 2024-05-02",
        "@@ -1,7 +1,6 @@",
        f" title: {TITLE}",
        " 港口扩建工程今日开工",
        " 昨日上午，工程正式开工。",
        "-工程预计投资十亿元。",
        " 市长说：“这是关键一步。”",
        " 项目将于三年内完工。",
        " English summary: work began.",
    ])


def test_diff_of_a_title_and_a_changed_sentence() -> None:
    new_text = OLD_TEXT.replace("十亿元", "十二亿元")
    assert diff(TITLE, OLD_TEXT, TITLE + "（更新）", new_text, "old", "new") == "\n".join([
        "--- old",
        "+++ new",
        "@@ -1,7 +1,7 @@",
        f"-title: {TITLE}",
        f"+title: {TITLE}（更新）",
        " 港口扩建工程今日开工",
        " 昨日上午，工程正式开工。",
        "-工程预计投资十亿元。",
        "+工程预计投资十二亿元。",
        " 市长说：“这是关键一步。”",
        " 项目将于三年内完工。",
        " English summary: work began.",
    ])


def test_equal_versions_have_no_diff() -> None:
    assert diff(TITLE, OLD_TEXT, TITLE, OLD_TEXT, "old", "new") == ""
    assert diff(TITLE, OLD_TEXT, f"  {TITLE}　", OLD_TEXT.replace("\n", "\n\n "), "old", "new") == ""
    assert diff("", "", "", "", "old", "new") == ""


def test_diff_is_safe_to_print() -> None:
    out = diff("Harbour", "Work began.", "Harbour\x1b[2J", "Work began.\x07\nNew\u202eline\x00.", "old\r\nlabel",
               "new\x1b]0;x\x07")
    assert out == "\n".join([
        "--- old\ufffd\ufffdlabel",
        "+++ new\ufffd]0;x\ufffd",
        "@@ -1,2 +1,3 @@",
        "-title: Harbour",
        "-Work began.",
        "+title: Harbour\ufffd[2J",
        "+Work began.\ufffd",
        "+New\ufffdline\ufffd.",
    ])
    assert not [c for c in out if c != "\n" and unicodedata.category(c) == "Cc"]
