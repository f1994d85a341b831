"""Seed documents: one exported RSS item per file::

    <!--1696553101000-->            epoch time (13 digits = ms, 10 = s), optional
    [title](https://example.org/a)   the first Markdown link: title and article URL
    ------                           a rule
    <div>06/10/2023 - 02:11</div><img src="..."> ...   the feed's article HTML
"""

from __future__ import annotations

import codecs
import re
from datetime import datetime
from urllib.parse import urljoin, urlsplit

from archiver.errors import SeedError
from archiver.extract.page import parse_html
from archiver.seeds.model import Seed, check_url

MAX_SEED_DOCUMENT = 4 * 1024 * 1024  # larger files are not feed items
_EPOCH = re.compile(r"^\s*<!--\s*(\d{10}|\d{13})\s*-->\s*$")
_RULE = re.compile(r"^\s*-{3,}\s*$")
_LINK = re.compile(r"^\s*\[(?P<title>.*)\]\((?P<url>\S+?)(?:\s+\"[^\"]*\")?\)\s*$")


def decode_text(data: bytes, source: str, whole: bool = True) -> str:
    """`data` as UTF-8 text; with `whole=False` it is the start of a longer file, and a character
    cut at its end is no encoding error."""
    if not data.strip():
        raise SeedError(source, "invalid_seed", "empty file")
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(data, final=whole)
    except UnicodeDecodeError as exc:
        raise SeedError(source, "bad_encoding", f"not UTF-8 text (byte {exc.start})") from exc
    if "\x00" in text:
        raise SeedError(source, "bad_encoding", "binary data (NUL bytes)")
    return text.removeprefix("\ufeff")


def looks_like_seed_document(text: str) -> bool:
    """A seed document starts (after blank lines) with the epoch comment or the title link."""
    for line in text.splitlines()[:5]:
        if not line.strip():
            continue
        return bool(_EPOCH.match(line) or _LINK.match(line))
    return False


def parse_seed_document(data: bytes, source: str) -> Seed:
    """Parse one seed document; raise SeedError saying what is wrong."""
    text = decode_text(data, source)
    lines = text.splitlines()
    timestamp_ms: int | None = None
    title = url = ""
    body_start = None
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        if timestamp_ms is None and not url and (m := _EPOCH.match(line)):
            digits = m.group(1)
            timestamp_ms = int(digits) * (1000 if len(digits) == 10 else 1)
            continue
        if not url and (m := _LINK.match(line)):
            title, url = m.group("title").strip(), m.group("url")
            continue
        if url and _RULE.match(line):
            body_start = i + 1
            break
        if url:  # article HTML without a rule: accept it, the rule is a convention
            body_start = i
            break
        raise SeedError(source, "invalid_seed", f"line {i + 1}: expected [title](url), found {line[:60]!r}")
    if not url:
        raise SeedError(source, "invalid_seed", "no [title](url) line with the article URL")
    url = check_url(url, source)
    html = "\n".join(lines[body_start:]).strip() if body_start is not None else ""
    lead_image, published = _from_feed_html(html, url)
    return Seed(
        url=url,
        source=source,
        title=title,
        timestamp_ms=timestamp_ms,
        lead_image=lead_image,
        published=published,
        document=data,
        article_html=html,
    )


_DATE_LINES = [
    # 06/10/2023 - 02:11 (day first, as RFI and most European feeds write it)
    (re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})\s*-?\s*(\d{1,2}):(\d{2})$"), "dmy"),
    (re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})[ T](\d{1,2}):(\d{2})"), "ymd"),
    (re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日\s*(\d{1,2}):(\d{2})"), "ymd"),
]


def parse_date_line(text: str) -> str:
    """A feed date line as local ISO 8601 without offset (the feed does not say which zone)."""
    text = " ".join(text.split())
    for pattern, order in _DATE_LINES:
        m = pattern.match(text)
        if not m:
            continue
        a, b, c, hour, minute = (int(x) for x in m.groups())
        if order == "dmy":
            day, month, year = a, b, c
            if month > 12 and day <= 12:  # clearly month first
                day, month = month, day
        else:
            year, month, day = a, b, c
        try:
            return datetime(year, month, day, hour, minute).strftime("%Y-%m-%dT%H:%M")
        except ValueError:
            return ""
    return ""


def _from_feed_html(html: str, base_url: str) -> tuple[str, str]:
    """The lead image (first <img>, absolute) and the date line of the feed's article HTML."""
    if not html.strip():
        return "", ""
    # lexbor, as for captured pages: BeautifulSoup's html.parser was a fifth of capture's
    # main-thread time on long feed items
    tree = parse_html(html)
    lead = ""
    img = tree.css_first("img[src]")
    if img is not None:
        src = (img.attributes.get("src") or "").strip()
        if src and not src.startswith("data:"):
            candidate = urljoin(base_url, src)
            if urlsplit(candidate).scheme in ("http", "https"):
                lead = candidate
    published = ""
    body = tree.body
    first = next((node for node in (body.traverse(include_text=True) if body is not None else ())
                  if node.tag == "-text" and (node.text_content or "").strip()), None)
    if first is not None:
        published = parse_date_line(first.text_content or "")
    return lead, published
