"""A page's requisites: what a browser loads to show it (stylesheets, scripts, fonts, icons, every
image and every srcset candidate, posters, media), found in its HTML and inline CSS without a
browser. Links (`<a href>`) and frames (`<iframe>`) are not requisites: archiver is no crawler,
and a frame is a page of its own."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urldefrag, urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser

from archiver.extract.css import declaration_references, stylesheet_references

# <link rel=...> values that load something the page shows
_LINK_RELS = frozenset({"stylesheet", "icon", "shortcut", "apple-touch-icon", "apple-touch-icon-precomposed",
                        "mask-icon", "preload", "modulepreload"})
_PRELOAD_AS = frozenset({"style", "script", "font", "image", ""})
# lazy-loading attributes that real news sites use for the real image, beside src
_LAZY_SRC = ("data-src", "data-original", "data-lazy-src", "data-lazyload", "data-echo")
_LAZY_SRCSET = ("data-srcset", "data-lazy-srcset")
_META_IMAGES = frozenset({"og:image", "og:image:url", "og:image:secure_url", "twitter:image", "twitter:image:src"})


@dataclass(frozen=True)
class Reference:
    url: str  # absolute, http(s), no fragment
    via: str  # where the page names it: "link stylesheet", "img src", "srcset", "style url()", ...
    stylesheet: bool = False  # its own references are requisites too


def page_requisites(tree: LexborHTMLParser, page_url: str, srcset_max: int = 8) -> list[Reference]:
    """Every requisite `tree` names, resolved against its <base> or `page_url`, in document order,
    each URL once (`srcset_max` candidates of a srcset at most)."""
    base = page_url
    node = tree.css_first("base[href]")
    if node is not None:
        base = urljoin(page_url, (node.attributes.get("href") or "").strip())
    found: dict[str, Reference] = {}
    for url, via, stylesheet in _references(tree, srcset_max):
        absolute = _absolute(base, url)
        if absolute and absolute not in found:
            found[absolute] = Reference(absolute, via, stylesheet)
    return list(found.values())


def css_requisites(css: str, css_url: str) -> list[Reference]:
    """The @imports (stylesheets themselves) and url()s of a stylesheet at `css_url`."""
    found: dict[str, Reference] = {}
    for ref in stylesheet_references(css):
        absolute = _absolute(css_url, ref.url)
        if absolute and absolute not in found:
            found[absolute] = Reference(absolute, "css @import" if ref.imported else "css url()", ref.imported)
    return list(found.values())


def _absolute(base: str, url: str) -> str:
    url = url.strip()
    if not url or url.startswith(("data:", "blob:", "javascript:", "about:", "#")):
        return ""
    try:
        absolute = urldefrag(urljoin(base, url))[0]
        scheme = urlsplit(absolute).scheme
    except ValueError:
        return ""
    return absolute if scheme in ("http", "https") else ""


def _references(tree: LexborHTMLParser, srcset_max: int) -> Iterator[tuple[str, str, bool]]:
    """(url as written, via, is a stylesheet) in document order."""
    root = tree.root
    if root is None:
        return
    for node in root.traverse():
        tag = node.tag
        attributes = node.attributes
        if tag == "link":
            yield from _link(attributes)
        elif tag == "script" and attributes.get("src"):
            yield str(attributes["src"]), "script src", False
        elif tag in ("img", "source", "video", "audio", "input", "image"):
            yield from _media(tag, attributes, srcset_max)
        elif tag == "meta":
            if (attributes.get("property") or attributes.get("name") or "").strip().lower() in _META_IMAGES:
                yield str(attributes.get("content") or ""), "meta image", False
        elif tag == "style":
            for ref in stylesheet_references(node.text(deep=True)):
                yield ref.url, "style @import" if ref.imported else "style url()", ref.imported
        style = attributes.get("style")
        if style and "url" in style.lower():
            for url in declaration_references(style):
                yield url, "style attribute url()", False


def _link(attributes: dict[str, str | None]) -> Iterator[tuple[str, str, bool]]:
    href = attributes.get("href")
    rels = {r.lower() for r in (attributes.get("rel") or "").split()}
    if not href or not rels & _LINK_RELS:
        return
    kind = (attributes.get("as") or "").strip().lower()
    if rels & {"preload", "modulepreload"} and not rels & {"stylesheet", "icon"}:
        if "modulepreload" in rels or kind in _PRELOAD_AS:
            yield str(href), f"link {'modulepreload' if 'modulepreload' in rels else 'preload'}", kind == "style"
        return
    if "stylesheet" in rels:
        yield str(href), "link stylesheet", True
    else:
        yield str(href), "link icon", False


def _media(tag: str, attributes: dict[str, str | None], srcset_max: int) -> Iterator[tuple[str, str, bool]]:
    if tag == "input" and (attributes.get("type") or "").lower() != "image":
        return
    for name in ("src", *_LAZY_SRC):
        if attributes.get(name):
            yield str(attributes[name]), f"{tag} {name}", False
    if tag == "image" and attributes.get("href"):  # <svg><image href>
        yield str(attributes["href"]), "svg image", False
    if tag == "video" and attributes.get("poster"):
        yield str(attributes["poster"]), "video poster", False
    for name in ("srcset", *_LAZY_SRCSET):
        value = attributes.get(name)
        if value:
            for url in srcset_urls(value)[:srcset_max]:
                yield url, f"{tag} {name}", False


def srcset_urls(value: str) -> list[str]:
    """The candidate URLs of a srcset attribute, as the HTML standard's parser splits it (a URL
    may hold commas; a candidate ends at a comma after its descriptors)."""
    urls: list[str] = []
    at, end = 0, len(value)
    while at < end:
        while at < end and (value[at].isspace() or value[at] == ","):
            at += 1
        if at >= end:
            break
        start = at
        while at < end and not value[at].isspace():
            at += 1
        url = value[start:at]
        if url.endswith(","):
            url = url.rstrip(",")
        else:  # descriptors, up to the comma that ends the candidate (outside parentheses)
            depth = 0
            while at < end and (depth or value[at] != ","):
                depth += {"(": 1, ")": -1}.get(value[at], 0)
                at += 1
        if url:
            urls.append(url)
    return urls

