"""Seeds: the articles to capture, read from seed documents, URL lists, URLs and stdin.

A seed document is one exported RSS item::

    <!--1696553101000-->            epoch time (13 digits = ms, 10 = s), optional
    [title](https://example.org/a)   the first Markdown link: title and article URL
    ------                           a rule
    <div>06/10/2023 - 02:11</div><img src="..."> ...   the feed's article HTML

Files are recognised by content, never by extension. Reading is streamed: a URL list of
millions of lines is never held in memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO
from urllib.parse import urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser

from archiver.errors import SeedError

MAX_SEED_DOCUMENT = 4 * 1024 * 1024  # larger files are not feed items
_EPOCH = re.compile(r"^\s*<!--\s*(\d{10}|\d{13})\s*-->\s*$")
_RULE = re.compile(r"^\s*-{3,}\s*$")
_LINK = re.compile(r"^\s*\[(?P<title>.*)\]\((?P<url>\S+?)(?:\s+\"[^\"]*\")?\)\s*$")


@dataclass(frozen=True)
class Seed:
    """One article to capture."""

    url: str
    source: str
    title: str = ""
    timestamp_ms: int | None = None
    lead_image: str = ""
    published: str = ""
    document: bytes = b""  # the seed document as read, stored in the WARC; empty for URL seeds
    article_html: str = ""  # the feed's article HTML (after the rule)

    @property
    def seed_time(self) -> str:
        return iso_ms(self.timestamp_ms) if self.timestamp_ms is not None else ""


@dataclass(frozen=True)
class BadSeed:
    """Input that could not become a seed, kept so that it is reported, never dropped."""

    source: str
    reason: str
    detail: str


def iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_url(url: str, source: str) -> str:
    """Return `url` if it is an absolute http(s) URL with a host, else raise SeedError."""
    url = url.strip()
    if not url:
        raise SeedError(source, "invalid_seed", "no URL")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise SeedError(source, "invalid_seed", f"malformed URL {url!r}: {exc}") from exc
    if not parts.scheme:
        raise SeedError(source, "invalid_seed", f"not an absolute URL: {url!r}")
    if parts.scheme.lower() not in ("http", "https"):
        raise SeedError(source, "unsupported_scheme", f"only http and https are fetched, not {parts.scheme}: {url!r}")
    if not parts.hostname:
        raise SeedError(source, "invalid_seed", f"URL has no host: {url!r}")
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        raise SeedError(source, "invalid_seed", f"URL contains white space or control characters: {url!r}")
    return url


def _decode(data: bytes, source: str) -> str:
    if not data.strip():
        raise SeedError(source, "invalid_seed", "empty file")
    try:
        text = data.decode("utf-8")
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
    text = _decode(data, source)
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
    tree = LexborHTMLParser(html)
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


def parse_url_list(stream: IO[str], source: str) -> Iterator[Seed | BadSeed]:
    """One URL a line; '#' starts a comment; blank lines are ignored."""
    for number, raw in enumerate(stream, 1):
        # '#' opens a comment at the start of a line or after white space; elsewhere it is
        # part of the URL (a fragment).
        line = re.split(r"(?:^|\s)#", raw, maxsplit=1)[0].strip()
        if not line:
            continue
        where = f"{source}:{number}"
        try:
            yield Seed(url=check_url(line, where), source=where)
        except SeedError as exc:
            yield BadSeed(where, exc.reason, exc.detail)


def read_file(path: Path, label: str) -> Iterator[Seed | BadSeed]:
    """Seeds from one file, recognised by content: a seed document, a URL list or a feed."""
    from archiver.seeds.feeds import MAX_FEED, looks_like_feed, parse_feed  # feeds builds on this module

    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(4096)
            if looks_like_feed(head):
                if size > MAX_FEED:
                    yield BadSeed(label, "invalid_feed", f"feed larger than {MAX_FEED} bytes")
                    return
                yield from parse_feed(head + fh.read(), label)
                return
        if size <= MAX_SEED_DOCUMENT:
            head = path.read_bytes()
    except OSError as exc:
        yield BadSeed(label, "unreadable", exc.strerror or str(exc))
        return
    try:
        text = _decode(head, label)
    except SeedError as exc:
        yield BadSeed(label, exc.reason, exc.detail)
        return
    if looks_like_seed_document(text):
        if size > MAX_SEED_DOCUMENT:
            yield BadSeed(label, "invalid_seed", f"seed document larger than {MAX_SEED_DOCUMENT} bytes")
            return
        try:
            yield parse_seed_document(head, label)
        except SeedError as exc:
            yield BadSeed(label, exc.reason, exc.detail)
        return
    if _first_entry(text).startswith(("http://", "https://")):
        with path.open(encoding="utf-8", errors="replace") as fh:
            yield from parse_url_list(fh, label)
        return
    yield BadSeed(label, "invalid_seed", "neither a seed document ([title](url) line), a URL list nor a feed")


def _first_entry(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return line.lower()
    return ""


def iter_seeds(sources: Iterable[str], root: Path, stdin: IO[str] | None = None) -> Iterator[Seed | BadSeed]:
    """Every seed named by `sources` (files, directories, URLs, '-' for stdin), in order.

    `root` only shortens the names of seed files inside it, for reports and exports.
    """
    label = _Labels(root)
    for source in sources:
        if source == "-":
            if stdin is None:
                yield BadSeed("-", "invalid_seed", "no standard input")
            else:
                yield from parse_url_list(stdin, "<stdin>")
            continue
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", source):
            try:
                yield Seed(url=check_url(source, source), source="<argument>")
            except SeedError as exc:
                yield BadSeed(source, exc.reason, exc.detail)
            continue
        path = Path(source)  # relative to the working directory, as the shell meant it
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if any(part.startswith(".") for part in child.relative_to(path).parts):
                    continue  # hidden files and folders (.git, editor swap files)
                yield from read_file(child, label(child))
        elif path.is_file():
            yield from read_file(path, label(path))
        else:
            yield BadSeed(source, "not_found", "no such file or directory")


class _Labels:
    """How seed files are named in reports and exports: relative to the root when inside it.

    A folder's real path is worked out once, not once a file (each is a walk of lstat calls:
    a tenth of the capture process's CPU for a folder of 2,000 seed documents).
    """

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.folders: dict[Path, Path] = {}

    def __call__(self, path: Path) -> str:
        folder = self.folders.get(path.parent)
        if folder is None:
            folder = self.folders[path.parent] = path.parent.resolve()
        real = folder / path.name
        if real.is_symlink():
            real = real.resolve()
        try:
            return real.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)
