"""What archiver reads out of a captured HTML page: title, publish time, lead image, main text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser

from archiver.extract.decode import decoded
from archiver.extract.requisites import Reference, page_requisites

# Markup the parser sees: lexbor's work grows with the square of how deep elements nest (a page
# of 40,000 nested <div> held a worker for seconds, 10 MB of them for minutes), so a page is cut
# before its MAX_TAGS-th tag, which keeps the worst case near a second and a real page whole: the
# head, and the article, which comes early. A constant, not a setting: the index rebuild must read
# the same rows out of the same records as capture did.
MAX_TAGS = 20_000


def parse_html(html: bytes | str) -> LexborHTMLParser:
    """A page parsed by lexbor (UTF-8 bytes, or text), at most its first MAX_TAGS tags of it. The
    parse lets go of the GIL, so other threads, and signals, go on meanwhile."""
    return LexborHTMLParser(_bounded(html))


def _bounded(html: bytes | str) -> bytes | str:
    """`html` up to just before its (MAX_TAGS + 1)-th "<" (a cut there never splits a character)."""
    lt: Any = "<" if isinstance(html, str) else b"<"
    if html.count(lt) <= MAX_TAGS:
        return html
    at = -1
    for _ in range(MAX_TAGS + 1):
        at = html.find(lt, at + 1)
    return html[:at]


@dataclass(frozen=True)
class PageInfo:
    charset: str = ""
    title: str = ""
    published: str = ""
    lead_image: str = ""  # og:image / twitter:image, else the first article image; absolute
    text: str = ""  # the article's main text, for full-text search (at most MAX_TEXT characters)
    # all of it (up to MAX_READING), what a check of the article compares and `history --diff` shows
    reading: str = ""
    requisites: tuple[Reference, ...] = ()  # what a browser loads to show it (when asked for)


# Characters of an article's main text kept for the full-text index: most Chinese news articles
# are shorter, and the trigram index costs CPU for every character (see index/fulltext.py).
MAX_TEXT = 4_000
# Characters of the main text a check compares: a paragraph removed near the end of a long article
# is an edit too
MAX_READING = 200_000
# Not the article: navigation, page furniture, scripts. Removed before the text is taken.
_NOT_TEXT = "script, style, noscript, template, nav, header, footer, aside, form, iframe, svg, button"


def page_info(body: bytes, content_type: str, base_url: str, srcset_max: int = 0) -> PageInfo:
    """Title, publish time and lead image of an HTML page (body already content-decoded); with
    `srcset_max`, also its requisites (that many candidates of each srcset)."""
    text, charset, strict = decoded(body, content_type)
    # lexbor (through selectolax) parses a news page many times faster than the pure-Python parsers,
    # and parsing decides how fast capture and index can go. It reads UTF-8: a body that is UTF-8
    # already is handed over as it is (a str is encoded to UTF-8 first, a large part of the cost)
    tree = parse_html(body if strict and charset == "utf-8" else text)

    # every <meta> in one walk of the tree (a selector query per name walked it a dozen times):
    # (attribute, value) -> the content of the first such tag, as a `meta[attribute="value"]` query finds it
    metas: dict[tuple[str, str], str] = {}
    for tag in tree.css("meta"):
        attributes = tag.attributes
        for attribute in ("property", "name", "itemprop"):
            value = attributes.get(attribute)
            if value is not None:
                metas.setdefault((attribute, value), (attributes.get("content") or "").strip())

    def meta(*names: str) -> str:
        for name in names:
            for attribute in ("property", "name", "itemprop"):
                if content := metas.get((attribute, name), ""):
                    return content
        return ""

    title_node = tree.css_first("title")
    title = " ".join((title_node.text() if title_node is not None else "").split())
    title = title or meta("og:title", "twitter:title")
    published = meta("article:published_time", "og:published_time", "datePublished", "pubdate")
    if not published:
        node = tree.css_first('[itemprop="datePublished"]') or tree.css_first("time[datetime]")
        if node is not None:
            published = (node.attributes.get("content") or node.attributes.get("datetime") or "").strip()
    image = meta("og:image", "og:image:url", "og:image:secure_url", "twitter:image", "twitter:image:src")
    if not image:
        for scope in ("article img[src]", "main img[src]", "body img[src]"):
            node = tree.css_first(scope)
            if node is not None:
                image = (node.attributes.get("src") or "").strip()
                break
    lead = urljoin(base_url, image) if image and not image.startswith("data:") else ""
    if lead and urlsplit(lead).scheme not in ("http", "https"):
        lead = ""
    # (before main_text, which takes the page's furniture out of the tree)
    requisites = tuple(page_requisites(tree, base_url, srcset_max)) if srcset_max else ()
    reading = main_text(tree, MAX_READING)
    return PageInfo(charset=charset, title=title, published=published, lead_image=lead, text=reading[:MAX_TEXT],
                    requisites=requisites, reading=reading)


def main_text(tree: LexborHTMLParser, limit: int = MAX_TEXT) -> str:
    """The article's text: <article> (or <main>, or the body) without navigation and furniture.

    A structural rule, not a statistical extractor such as trafilatura: news pages mark their
    article up, and this costs well under a millisecond a page where trafilatura costs tens,
    which capture and index throughput cannot afford.
    """
    scope = tree.css_first("article") or tree.css_first("main") or tree.body
    if scope is None:
        return ""
    for node in scope.css(_NOT_TEXT):
        node.decompose()
    blocks: list[str] = []
    size = 0
    for node in scope.css("h1, h2, h3, p, li"):
        block = " ".join(node.text(deep=True, separator=" ").split())
        if block:
            blocks.append(block)
            size += len(block) + 1
            if size >= limit:  # enough: the rest would be cut anyway
                break
    text = "\n".join(blocks) or " ".join(scope.text(separator=" ").split())
    return text[:limit]
