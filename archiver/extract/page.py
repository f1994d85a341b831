"""What archiver reads out of a captured HTML page: charset, title, publish time, images.

Decoding follows the WHATWG Encoding Standard where it matters for Chinese news: a BOM wins,
then the HTTP charset, then <meta charset>; gb2312 and gbk labels decode as gb18030 (their
superset), so GBK-only characters such as 镕 come out right. Everything decoded is capped, so
a gzip bomb costs at most MAX_DECODED bytes of memory.
"""

from __future__ import annotations

import codecs
import gzip
import re
import zlib
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import charset_normalizer
from selectolax.lexbor import LexborHTMLParser

MAX_DECODED = 4 * 1024 * 1024
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.I)
_SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "gb_2312-80": "gb18030",
              "iso-8859-1": "cp1252", "latin1": "cp1252", "us-ascii": "cp1252", "ascii": "cp1252"}
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_BOM_PREFIXES = tuple(bom for bom, _ in _BOMS)


@dataclass(frozen=True)
class PageInfo:
    charset: str = ""
    title: str = ""
    published: str = ""
    lead_image: str = ""  # og:image / twitter:image, else the first article image; absolute
    text: str = ""  # the article's main text, for full-text search (at most MAX_TEXT characters)


# Characters of an article's main text kept for the full-text index: most Chinese news articles
# are shorter, and the trigram index costs about 0.65 us a character (see textindex.py).
MAX_TEXT = 4_000
# Not the article: navigation, page furniture, scripts. Removed before the text is taken.
_NOT_TEXT = "script, style, noscript, template, nav, header, footer, aside, form, iframe, svg, button"


def decode_body(body: bytes, content_encoding: str, limit: int = MAX_DECODED) -> bytes:
    """Undo gzip/deflate content coding, keeping at most `limit` bytes."""
    coding = content_encoding.strip().lower()
    if coding in ("gzip", "x-gzip", "deflate"):
        wbits = 47 if coding != "deflate" else zlib.MAX_WBITS  # 47: gzip or zlib header
        try:
            inflater = zlib.decompressobj(wbits)
            return inflater.decompress(body, limit)
        except zlib.error:
            if coding == "deflate":  # raw deflate, as some servers send
                try:
                    return zlib.decompressobj(-zlib.MAX_WBITS).decompress(body, limit)
                except zlib.error:
                    return b""
            try:
                return gzip.decompress(body)[:limit]
            except (OSError, EOFError, zlib.error):
                return b""
    return body[:limit]


def _normal(label: str) -> str:
    label = label.strip().lower()
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return ""
    return _SUPERSETS.get(label, _SUPERSETS.get(name, name))


def sniff_charset(html: bytes, content_type: str) -> str:
    """The charset to decode `html` with: BOM, then the labels (HTTP, then <meta>) that the
    bytes actually fit, then what the bytes look like (GBK pages labelled UTF-8 are common)."""
    for bom, name in _BOMS:
        if html.startswith(bom):
            return name
    labels = _labels(html, content_type)
    sample = html[:65536]
    for label in labels:
        if _fits(sample, label):
            return label
    if _fits(sample, "utf-8"):
        return "utf-8"
    guess = charset_normalizer.from_bytes(sample[:16384]).best()
    if guess is not None and (name := _normal(guess.encoding)):
        return name
    return labels[0] if labels else "cp1252"


def _labels(html: bytes, content_type: str) -> list[str]:
    """The charsets the page names, known ones only: HTTP's first, then its <meta>'s."""
    labels = []
    header = _HEADER_CHARSET.search(content_type or "")
    if header and (name := _normal(header.group(1))):
        labels.append(name)
    meta = _META_CHARSET.search(html[:4096])
    if meta and (name := _normal(meta.group(1).decode("ascii", "ignore"))):
        labels.append(name)
    return labels


def _fits(sample: bytes, charset: str) -> bool:
    """Does `sample` decode strictly (a character cut at the sample's end is forgiven)?"""
    try:
        codecs.getincrementaldecoder(charset)(errors="strict").decode(sample, final=False)
    except (UnicodeDecodeError, LookupError):
        return False
    return True


def html_text(body: bytes, content_type: str) -> tuple[str, str]:
    """Decoded text and the charset used (BOM removed)."""
    text, charset, _ = _decoded(body, content_type)
    return text, charset


def _decoded(body: bytes, content_type: str) -> tuple[str, str, bool]:
    """As html_text, and whether the body decoded strictly as it is (no BOM, no replacement).

    The common case first: no BOM, and the whole body decodes strictly with the charset
    sniff_charset would try first (the page's label, else UTF-8): that is its answer too, and one
    strict decode of the body costs what sniffing alone did (~70 us for 50 KB)."""
    if not body.startswith(_BOM_PREFIXES):
        first = (_labels(body, content_type) or ["utf-8"])[0]
        try:
            return body.decode(first).removeprefix("\ufeff"), first, True
        except (UnicodeDecodeError, LookupError):
            pass
    charset = sniff_charset(body, content_type)
    return body.decode(charset, errors="replace").removeprefix("\ufeff"), charset, False


def is_html(mime: str) -> bool:
    return mime.split(";")[0].strip().lower() in ("text/html", "application/xhtml+xml")


def page_info(body: bytes, content_type: str, base_url: str) -> PageInfo:
    """Title, publish time and lead image of an HTML page (body already content-decoded)."""
    text, charset, strict = _decoded(body, content_type)
    # lexbor (through selectolax) parses a news page in well under a millisecond, 20-50x faster
    # than BeautifulSoup's html.parser: it decides how fast capture and index can go. It reads
    # UTF-8: a body that is UTF-8 already is handed over as it is (a str is encoded to UTF-8
    # first, a third of the parse's cost)
    tree = LexborHTMLParser(body if strict and charset == "utf-8" else text)

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
    return PageInfo(charset=charset, title=title, published=published, lead_image=lead, text=main_text(tree))


def main_text(tree: LexborHTMLParser) -> str:
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
            if size >= MAX_TEXT:  # enough: the rest would be cut anyway
                break
    text = "\n".join(blocks) or " ".join(scope.text(separator=" ").split())
    return text[:MAX_TEXT]
