"""Two readings of one article compared: is it unchanged, the same article in other bytes, edited,
removed, restored, or could it not be read at all; and the diff between two versions.

`archiver recapture` reads captured articles again. A news page's bytes change on every load (ads,
timestamps, tracking tokens), so bytes alone say little: what a reader reads (the title, the main
text as extract/page.py's `main_text` gives it, the lead image) decides "same" or "edited". A page
that is gone says so in many ways (404, 410, a redirect to the front page, a 200 with a short
"no longer available" notice), and a check that failed (timeout, DNS, 5xx) must never read as a
removal. Pure decisions, no I/O: the caller fetches and records.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

UNCHANGED = "unchanged"
SAME = "same"
EDITED = "edited"
REMOVED = "removed"
RESTORED = "restored"
FAILED = "failed"
OUTCOMES = (UNCHANGED, SAME, EDITED, REMOVED, RESTORED, FAILED)

# Statuses that say the article itself is gone: 451 is a legal takedown, which is what an archive
# of news most needs to record. 401 and 403 are not among them: they are about access (a bot wall,
# a region block, a login), not the content, so they read as a failed check.
REMOVED_STATUSES = frozenset({404, 410, 451})


@dataclass(frozen=True)
class Reading:
    """What a reader reads at one check of an article."""

    status: int | None  # final HTTP status, None when no response
    error: str  # "" or the fetch failure reason ("timeout", "dns_error", "http_503", ...)
    url: str  # the article URL that was checked
    final_url: str  # after redirects ("" when none)
    payload_digest: str  # of the final page response ("" when none)
    title: str  # page title ("" when none)
    text: str  # main text as page.main_text gives it ("" when none)
    lead_digest: str  # payload digest of the lead image ("" when none)
    removed: bool = False  # set by the caller when this reading's check was classified removed
    # text_digest(text) and the length of normal_text(text), when the caller has them (a reading kept
    # in the index has no text, only these; one just fetched gives both, so that its text is
    # normalised once): they stand for `text` where given.
    text_digest: str = ""
    text_length: int = 0


def _digest_of(reading: Reading) -> str:
    return reading.text_digest or (text_digest(reading.text) if reading.text else "")


def _length_of(reading: Reading) -> int:
    return reading.text_length or (len(normal_text(reading.text)) if reading.text else 0)


# --- text as a reader reads it -------------------------------------------------------------------

# Invisible characters CMSes insert and drop between loads; they are not white space to str.split,
# and left in they would read as edits.
_INVISIBLE = ("\u200b", "\u2060", "\ufeff")


def _blocks(text: str) -> list[str]:
    """The non-empty blocks (lines) of `text`, each with every run of white space made one space."""
    for mark in _INVISIBLE:  # (str.replace, where str.translate costs a dict lookup a character)
        if mark in text:
            text = text.replace(mark, "")
    lines = (" ".join(line.split()) for line in text.splitlines())
    return [line for line in lines if line]


# Full-width letters and digits (what CMSes switch to and from), read as their ASCII forms
_WIDE = re.compile("[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]+")
_NARROW = {code: code - 0xFEE0 for code in (*range(0xFF10, 0xFF1A), *range(0xFF21, 0xFF3B), *range(0xFF41, 0xFF5B))}


def normal_text(text: str) -> str:
    """`text` as compared: NFC, full-width letters and digits as ASCII, every run of white space
    (the ideographic space too) in a block one space, blocks kept as lines, empty ones dropped.
    Not NFKC, which would also read Chinese "，" as "," but costs some 80 times NFC on a Chinese
    article, and every captured page is fingerprinted."""
    text = unicodedata.normalize("NFC", text)
    if _WIDE.search(text) is not None:
        text = _WIDE.sub(lambda wide: wide.group().translate(_NARROW), text)
    return "\n".join(_blocks(text))


def text_digest(text: str) -> str:
    """"sha256:" and the hex digest of normal_text(text) in UTF-8; "" when there is no text."""
    return fingerprint(text)[0]


def fingerprint(text: str) -> tuple[str, int]:
    """text_digest(text) and the length of normal_text(text), normalising it once."""
    normal = normal_text(text)
    return ("sha256:" + hashlib.sha256(normal.encode("utf-8")).hexdigest() if normal else "", len(normal))


# --- removal: redirects ------------------------------------------------------------------------

_INDEX_FILE = re.compile(r"(?:index|default|home|main)\.\w+", re.I)
_ARTICLE_FILE = re.compile(r".+\.(?:html?|shtml|php)", re.I)
_LONG_NUMBER = re.compile(r"\d{4,}")
# where sites send a reader of a page they no longer have: /404.html, /error/, /notfound.aspx
_ERROR_PAGE = re.compile(r"(?:404|410|error|not[-_]?found)(?:\.\w+)?", re.I)


def _site(host: str) -> str:
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def _same_site(a: str, b: str) -> bool:
    """One host is the other (ignoring "www."), or a subdomain of it: news.example.com and example.com."""
    a, b = _site(a), _site(b)
    return bool(a and b) and (a == b or a.endswith("." + b) or b.endswith("." + a))


def _segments(path: str) -> list[str]:
    """A path's segments, an index file at the end (index.html, default.aspx) not counted: it is its folder."""
    parts = [part for part in path.split("/") if part]
    if parts and _INDEX_FILE.fullmatch(parts[-1]):
        parts.pop()
    return parts


def _looks_like_article(segments: list[str], query: str) -> bool:
    return ((bool(segments) and _ARTICLE_FILE.fullmatch(segments[-1]) is not None)
            or any(_LONG_NUMBER.search(part) or part.count("-") >= 3 for part in segments)
            or _LONG_NUMBER.search(query) is not None)


def is_removal_redirect(url: str, final_url: str) -> bool:
    """Whether `url` redirected to a page that says the article is gone: the front page, a section
    page or an error page of the same site.

    Same site: the hosts are equal ignoring "www.", or one is a subdomain of the other (sibling
    subdomains and other sites are not: an article that moved to another site was not removed).
    The final URL is a removal when, besides a change of scheme or host alone,
    - its last segment is an error page (/404.html, /error/, /notfound.aspx), or
    - it does not look like an article, and its path is the front page ("/", "" or /index.html;
      for an article named only by its query, as /?p=123, the bare front page with no query), or
      has fewer segments than the article's (a section: /world/ for /world/2024/05/story.html).
    Looks like an article: it ends in a named .html/.htm/.shtml/.php file, or a segment holds 4 or
    more digits or is a slug with 3 or more hyphens, or its query holds 4 or more digits. A redirect
    to such a URL is a moved article (a slug change), not a removal: its text decides.
    """
    if not final_url or final_url == url:
        return False
    article, final = urlsplit(url), urlsplit(urljoin(url, final_url))
    if not _same_site(article.hostname or "", final.hostname or ""):
        return False
    before, after = _segments(article.path), _segments(final.path)
    if (before, article.query) == (after, final.query):
        return False
    if after and _ERROR_PAGE.fullmatch(after[-1]):
        return True
    if _looks_like_article(after, final.query):
        return False
    if not after:
        return bool(before) or not final.query
    return len(after) < len(before)


# --- removal: a notice in place of the article -------------------------------------------------------

# Notices of a page that is gone, matched in normal_text of the text and the title, case-folded
# (traditional Chinese forms too, for Hong Kong and Taiwan sites).
_NOTICE = re.compile("|".join([
    "no longer available", "page not found", "has been removed", "has been deleted", "could not be found",
    "does not exist", r"(?<!\d)404(?!\d)",
    "不存在", "已删除", "已被删除", "无法找到", "找不到", "已下线", "已撤下", "内容已失效", "页面没有找到",
    "已刪除", "已被刪除", "無法找到", "已下線", "內容已失效", "頁面沒有找到",
]))
STUB_SHRINK = 0.25  # a short text under this share of the previous length is a stub even without a notice
STUB_SHORT = 400  # characters of normal_text
NOTICE_SHRINK = 0.5  # a notice counts in a text under this share of the previous length


def _notice(text: str, title: str) -> bool:
    # (NFKC here: only a text that shrank gets this far)
    return _NOTICE.search(normal_text(unicodedata.normalize("NFKC", f"{title}\n{text}")).casefold()) is not None


def is_stub(text: str, title: str, previous_text: str) -> bool:
    """Whether a page that answered 200 holds a "no longer available" notice instead of the article.

    With n and p the lengths of normal_text of `text` and `previous_text`, a stub is
    - a text that shrank to a fragment: n < 25% of p and n < 400 characters, or
    - a notice phrase ("page not found", "404", "不存在", "已删除", ...) in the text or the title of
      a text that also shrank: n < 50% of p. A phrase alone is not enough: an article that mentions
      "404" or "不存在" is still an article.
    With no previous text to compare (p = 0), only a notice phrase in a text under 400 characters counts.
    """
    return _stub(text, title, len(normal_text(previous_text)))


def _stub(text: str, title: str, previous_length: int, length: int | None = None) -> bool:
    n, p = (len(normal_text(text)) if length is None else length), previous_length
    if not p:
        return n < STUB_SHORT and _notice(text, title)
    if n < STUB_SHRINK * p and n < STUB_SHORT:
        return True
    return n < NOTICE_SHRINK * p and _notice(text, title)


# --- the decision ----------------------------------------------------------------------------------

_HTTP_ERROR = re.compile(r"http_(\d{3})")


def _status(reading: Reading) -> int | None:
    """The final status, or the one an "http_NNN" failure reason names when there was none."""
    if reading.status is not None:
        return reading.status
    match = _HTTP_ERROR.fullmatch(reading.error)
    return int(match.group(1)) if match else None


def _still_removed(previous: Reading, now: Reading) -> bool:
    """Whether a 200 after a removal is the removal page again (the stub, or no article at all)."""
    if now.payload_digest and now.payload_digest == previous.payload_digest:
        return True
    if not normal_text(now.text) or text_digest(now.text) == _digest_of(previous):
        return True
    return _stub(now.text, now.title, 0, _length_of(now))  # the previous text was the notice: none to compare


def classify(previous: Reading, now: Reading) -> str:
    """What became of the article between `previous` (the last check that did not fail, or the
    capture) and `now`: one of OUTCOMES. The first rule that holds decides:

    1. "removed": status 404, 410 or 451 (also when the fetch reports only "http_404" and the like);
    2. "failed": no response, any fetch failure, or a status that is not 2xx: 5xx, 429 and 408
       (the server, not the article), 401 and 403 (access, not content), any other 4xx (it is about
       the request), a final 3xx (a redirect not followed to its end). A failed check says nothing
       about the article, and removal is a claim the archive should make only on clear evidence;
    3. "removed": a redirect to the front page, a section or an error page (is_removal_redirect);
    4. after a removal (previous.removed): "removed" while the page is still the removal page or a
       notice, else "restored";
    5. "unchanged": the same payload digest (not empty);
    6. "removed": a 200 whose text is a notice (is_stub);
    7. "edited": the title or the main text differ as normal_text, or the lead image's digest
       differs. The digests are compared as strings: a caller whose lead image fetch failed passes
       the previous digest on, so that the failure does not read as a change of image;
    8. "same": other bytes, but the same article.
    """
    status = _status(now)
    if status in REMOVED_STATUSES:
        return REMOVED
    if now.error or status is None or not 200 <= status < 300:
        return FAILED
    if is_removal_redirect(now.url, now.final_url):
        return REMOVED
    if previous.removed:
        return REMOVED if _still_removed(previous, now) else RESTORED
    if now.payload_digest and now.payload_digest == previous.payload_digest:
        return UNCHANGED
    if _stub(now.text, now.title, _length_of(previous), _length_of(now)):
        return REMOVED
    if (normal_text(now.title) != normal_text(previous.title) or _digest_of(now) != _digest_of(previous)
            or now.lead_digest != previous.lead_digest):
        return EDITED
    return SAME


# --- the diff ----------------------------------------------------------------------------------------

_CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f]")
# a sentence: up to its end mark(s) and a closing quote right after them
_SENTENCE = re.compile("[^。！？；!?]+(?:[。！？；!?]+[”」』]*)?|[。！？；!?]+[”」』]*")
# what a terminal would act on rather than show: C0 and C1 controls, and the bidirectional
# overrides and isolates, which reorder what is shown
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def split_units(text: str) -> list[str]:
    """The units the diff compares: the blocks (lines) of `text`, white space collapsed; a block with
    CJK characters split further into sentences after 。！？；!? (the marks, and a closing quote
    ”」』 right after them, kept with their sentence). A Chinese paragraph is one block, and a
    one-sentence edit should show as that sentence, not the whole paragraph; text in languages that
    separate words stays in whole blocks, where a "." is too often not a sentence's end."""
    units: list[str] = []
    for block in _blocks(text):
        if _CJK.search(block) is None:
            units.append(block)
            continue
        units.extend(unit for sentence in _SENTENCE.findall(block) if (unit := sentence.strip()))
    return units


def diff(old_title: str, old_text: str, new_title: str, new_text: str, old_label: str, new_label: str) -> str:
    """A unified diff of the title (its own first line, "title: ...") and the main text (split_units)
    of two versions; "" when they are equal as normal_text, as classify() sees them.

    The units keep the characters the page has (NFKC would show Chinese "，" and "？" as ASCII), so a
    change of width alone shows as a change beside a real edit. Safe to print: control characters,
    but the newlines between lines, are replaced with U+FFFD, in the labels too.
    """
    if normal_text(old_title) == normal_text(new_title) and normal_text(old_text) == normal_text(new_text):
        return ""
    old = [f"title: {' '.join(_blocks(old_title))}", *split_units(old_text)]
    new = [f"title: {' '.join(_blocks(new_title))}", *split_units(new_text)]
    lines = difflib.unified_diff(old, new, fromfile=old_label, tofile=new_label, lineterm="")
    return "\n".join(_UNSAFE.sub("\ufffd", line) for line in lines)
