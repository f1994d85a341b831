"""A seed: one article to capture (`Seed`), or input that could not become one (`BadSeed`).

Every source of seeds (seed documents, URL lists, feeds, URLs given on the command line) ends in
these two types; capture and the index rebuild read nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from archiver.errors import SeedError
from archiver.warc.record import MAX_URL

_HAS_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


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
    if len(url) > MAX_URL:
        raise SeedError(source, "url_too_long", f"the URL has {len(url)} characters, more than {MAX_URL}")
    if not parts.hostname:
        raise SeedError(source, "invalid_seed", f"URL has no host: {url!r}")
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        raise SeedError(source, "invalid_seed", f"URL contains white space or control characters: {url!r}")
    return url


def looks_like_url(text: str) -> bool:
    """Whether a command-line argument names a URL (`scheme://...`) rather than a file."""
    return bool(_HAS_SCHEME.match(text))
