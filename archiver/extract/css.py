"""The URLs a stylesheet needs: its @imports, and every url() (fonts, backgrounds, cursors, masks),
found with tinycss2, a real CSS tokenizer (a regular expression misses url()s inside strings,
comments and escapes, and finds ones that are not there)."""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import tinycss2

from archiver.extract.decode import charset_codec

# What a stylesheet may hand to the tokenizer: a hostile one costs bounded time and memory
MAX_CSS = 2 * 1024 * 1024
# functions whose string arguments are URLs too (`image-set("a.png" 1x)`, CSS4's `src("f.woff")`)
_URL_FUNCTIONS = frozenset({"url", "src", "image-set", "-webkit-image-set"})


@dataclass(frozen=True)
class CssReference:
    url: str  # as written (relative to the stylesheet)
    imported: bool  # an @import: a stylesheet whose own references are requisites too


def stylesheet_references(css: str) -> list[CssReference]:
    """The @imports and url()s of a stylesheet, in order, each once."""
    rules = tinycss2.parse_stylesheet(css[:MAX_CSS], skip_comments=True, skip_whitespace=True)
    found: dict[str, CssReference] = {}
    for rule in rules:
        if rule.type == "at-rule" and rule.lower_at_keyword == "import":
            for url in _urls(rule.prelude or [], strings_are_urls=True):
                found.setdefault(url, CssReference(url, True))
                break  # the first is the stylesheet; the rest are media queries
            continue
        for url in _urls([*(getattr(rule, "prelude", None) or []), *(getattr(rule, "content", None) or [])]):
            found.setdefault(url, CssReference(url, False))
    return list(found.values())


def declaration_references(style: str) -> list[str]:
    """The url()s of a `style="..."` attribute's declarations, in order, each once."""
    return list(dict.fromkeys(_urls(tinycss2.parse_component_value_list(style[:MAX_CSS]))))


def decode_css(data: bytes, content_type: str) -> str:
    """A stylesheet's text: a BOM, else the HTTP charset, else @charset, else UTF-8 (CSS Syntax 3),
    the labels read as the WHATWG Encoding Standard reads them."""
    data = data[:MAX_CSS]
    for bom, name in _BOMS:
        if data.startswith(bom):
            return data[len(bom):].decode(name, "replace")
    label = _charset(content_type)
    if not label and data.startswith(b'@charset "'):
        end = data.find(b'";', 10, 60)
        label = data[10:end].decode("ascii", "replace") if end > 0 else None
    return data.decode(charset_codec(label or "") or "utf-8", "replace")


_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


def _charset(content_type: str) -> str | None:
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip("\"'") or None
    return None


def _urls(tokens: Iterable[Any], strings_are_urls: bool = False) -> Iterator[str]:
    """Every URL in a list of component values, nested blocks and functions included (walked with
    a stack of our own: a hostile stylesheet nests blocks far deeper than Python's recursion limit)."""
    stack: list[tuple[Iterator[Any], bool]] = [(iter(tokens), strings_are_urls)]
    while stack:
        values, strings = stack[-1]
        token = next(values, None)
        if token is None:
            stack.pop()
            continue
        kind = token.type
        if kind == "url" or (kind == "string" and strings):
            yield str(token.value)
        elif kind == "function":
            stack.append((iter(token.arguments), token.lower_name in _URL_FUNCTIONS))
        elif kind in ("() block", "[] block", "{} block"):
            stack.append((iter(token.content), False))
        elif kind == "declaration":
            stack.append((iter(token.value), False))
