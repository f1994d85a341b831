"""RSS and Atom feeds, the source of seed documents: each item becomes a seed.

An item's seed is written as the seed document a feed exporter would write (epoch comment,
[title](link), rule, the item's HTML), so it is parsed, stored in the WARC and kept as a feed
copy exactly like a seed document from a file. feedparser parses; it is never allowed to fetch
anything itself (archiver fetches feed URLs through its address guard).
"""

from __future__ import annotations

import calendar
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import feedparser

from archiver.config import Config
from archiver.errors import SeedError
from archiver.seeds.document import parse_seed_document
from archiver.seeds.model import BadSeed, Seed, check_url

MAX_FEED = 64 * 1024 * 1024
# What may come before a feed's root element: an XML declaration, comments (each ending at its own
# first "-->"), stylesheet instructions, and a DOCTYPE without an internal subset (RSS 0.91's
# Netscape DTD); a DOCTYPE with one ("[...]") is matched too, to be refused by parse_feed.
_PROLOG = rb"""(?:\s+|<\?xml[^>]*>|<!--(?:(?!-->).)*-->|<\?xml-stylesheet[^>]*>|<!DOCTYPE\s[^\[>]*(?:\[.*?\]\s*)?>)*"""
_FEED_START = re.compile(rb"^" + _PROLOG + rb"<(rss|feed|rdf:RDF)\b", re.S | re.I)
_INTERNAL_SUBSET = re.compile(rb"<!DOCTYPE\s[^\[>]*\[|<!ENTITY", re.I)


@dataclass(frozen=True)
class FeedLimits:
    """What one feed may produce (config.yaml: feed_max_items, feed_max_item_size)."""

    max_items: int = 10_000
    max_item_size: int = 1024 * 1024  # bytes of one item's seed document

    @classmethod
    def of(cls, cfg: Config) -> FeedLimits:
        return cls(cfg.feed_max_items, cfg.feed_max_item_size)


DEFAULT_LIMITS = FeedLimits()


def looks_like_feed(head: bytes) -> bool:
    """RSS, Atom or RSS 1.0 (RDF), by the first element of the document."""
    head = head.removeprefix(b"\xef\xbb\xbf")
    return bool(_FEED_START.match(head[:4096]))


def parse_feed(data: bytes, source: str, limits: FeedLimits = DEFAULT_LIMITS) -> Iterator[Seed | BadSeed]:
    """One seed per item, in feed order, within `limits`; items without a usable link, or too large,
    are reported. A feed that declares entities is refused whole: XML parsers expand them, and
    feedparser's fallback parser expands them without any limit (a 100 KB feed became gigabytes)."""
    root = _FEED_START.match(data.removeprefix(b"\xef\xbb\xbf"))
    prolog = data[:root.end()] if root is not None else data[:4096]
    if _INTERNAL_SUBSET.search(prolog):
        yield BadSeed(source, "invalid_feed", "the feed declares entities in a DOCTYPE, which archiver refuses "
                                              "(entity expansion could make it arbitrarily large)")
        return
    parsed = feedparser.parse(data, resolve_relative_uris=False, sanitize_html=False)
    if not parsed.entries and parsed.get("bozo"):
        yield BadSeed(source, "invalid_feed", f"not a readable RSS/Atom feed: {parsed.get('bozo_exception')}")
        return
    for number, entry in enumerate(parsed.entries, 1):
        where = f"{source}#{number}"
        if number > limits.max_items:
            yield BadSeed(where, "invalid_feed", f"the feed has {len(parsed.entries)} items; only the first "
                                                 f"{limits.max_items} are read (feed_max_items)")
            return
        link = str(entry.get("link") or entry.get("id") or "").strip()
        try:
            check_url(link, where)
            document = seed_document(entry, link)
            if len(document) > limits.max_item_size:
                raise SeedError(where, "invalid_feed_item", f"the item is {len(document)} bytes, more than "
                                                            f"{limits.max_item_size} (feed_max_item_size)")
            yield parse_seed_document(document, where)
        except SeedError as exc:
            yield BadSeed(where, exc.reason, exc.detail)


def seed_document(entry: Any, link: str) -> bytes:
    title = " ".join(html.unescape(str(entry.get("title") or "")).split())
    when = entry.get("published_parsed") or entry.get("updated_parsed")
    stamp = f"<!--{calendar.timegm(when) * 1000}-->\n" if when else ""
    body = ""
    if entry.get("content"):
        body = str(entry.content[0].get("value") or "")
    body = body or str(entry.get("summary") or "")
    image = _item_image(entry)
    if image and image not in body:  # the seed's lead image is its first <img>
        body = f'<img src="{html.escape(image, quote=True)}">{body}'
    return f"{stamp}[{title}]({link})\n------\n\n{body}\n".encode()


def _item_image(entry: Any) -> str:
    """The item's image from an enclosure, media:content or media:thumbnail."""
    for enclosure in entry.get("enclosures") or []:
        if str(enclosure.get("type", "")).startswith("image/") and enclosure.get("href"):
            return str(enclosure["href"])
    for media in entry.get("media_content") or []:
        kind = str(media.get("medium") or media.get("type") or "")
        if media.get("url") and (kind.startswith("image") or not kind):
            return str(media["url"])
    for thumbnail in entry.get("media_thumbnail") or []:
        if thumbnail.get("url"):
            return str(thumbnail["url"])
    return ""


def fetch_feed(url: str, fetcher: Any, limits: FeedLimits = DEFAULT_LIMITS) -> Iterator[Seed | BadSeed]:
    """The items of the feed at `url`, fetched through archiver's guarded fetcher."""
    from archiver.extract.decode import decode_body  # a feed may come gzip-encoded

    chain = fetcher.follow(url)
    try:
        final = chain.final
        if chain.error or final is None:
            yield BadSeed(url, chain.error or "no_response", chain.detail or "the feed could not be fetched")
            return
        if final.status >= 400:
            yield BadSeed(url, f"http_{final.status}", "the feed could not be fetched")
            return
        data = decode_body(final.read_body(MAX_FEED), final.header("content-encoding"), MAX_FEED)
    finally:
        chain.close()
    if not looks_like_feed(data):
        yield BadSeed(url, "invalid_feed", "the URL did not return an RSS or Atom feed")
        return
    yield from parse_feed(data, url, limits)
