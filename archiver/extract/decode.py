"""Undoing what a server did to a page's bytes: content coding (gzip, deflate) and the charset.

Decoding follows the WHATWG Encoding Standard where it matters for Chinese news: a BOM wins,
then the HTTP charset, then <meta charset>; gb2312 and gbk labels decode as gb18030 (their
superset), so GBK-only characters such as 镕 come out right. Everything decoded is capped, so
a gzip bomb costs at most MAX_DECODED bytes of memory.
"""

from __future__ import annotations

import codecs
import gzip
import io
import re
import zlib

import charset_normalizer
import webencodings

MAX_DECODED = 4 * 1024 * 1024
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.I)
# codec -> the codec that decodes it: gbk's decoder is gb18030's (WHATWG), so GBK-only characters survive
# (and ASCII and Latin-1, which charset_normalizer may guess, decode as windows-1252 by their labels)
_SUPERSETS = {"gbk": "gb18030", "ascii": "cp1252", "iso8859-1": "cp1252"}
# WHATWG encodings that decode no text: "replacement" (one U+FFFD for the whole body), x-user-defined
_NOT_DECODED = frozenset({"replacement", "x-user-defined"})
_WHATWG_CODECS = frozenset(str(e.codec_info.name) for e in map(webencodings.lookup, webencodings.LABELS)
                           if e is not None and e.name not in _NOT_DECODED)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_BOM_PREFIXES = tuple(bom for bom, _ in _BOMS)


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
            try:  # Python's own gzip reader takes headers zlib refuses (reserved flag bits); bounded too
                with gzip.GzipFile(fileobj=io.BytesIO(body)) as unpacked:
                    return unpacked.read(limit)
            except (OSError, EOFError, zlib.error):
                return b""
    return body[:limit]


def _normal(label: str) -> str:
    """The Python codec for a charset label, as the WHATWG Encoding Standard reads labels (through
    webencodings, which keeps its table); "" for anything else. Python knows codecs that are no
    text encodings (rot13, base64, bz2, zlib, punycode, utf-7, ...): a page naming one is a page
    with an unknown label, never a reason to run that codec on its bytes."""
    encoding = webencodings.lookup(label)
    if encoding is None or encoding.name in _NOT_DECODED:
        return ""
    name = str(encoding.codec_info.name)
    return _SUPERSETS.get(name, name)


def charset_codec(label: str) -> str:
    """The Python codec of a charset label ("" for an unknown one or a byte codec)."""
    return _normal(label)


def _guessed(name: str) -> str:
    """charset_normalizer's guess (a Python codec name), if it is one of the WHATWG encodings."""
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        return ""
    return _SUPERSETS.get(codec, codec) if codec in _WHATWG_CODECS else ""


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
    if guess is not None and (name := _guessed(guess.encoding)):
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
    text, charset, _ = decoded(body, content_type)
    return text, charset


def decoded(body: bytes, content_type: str) -> tuple[str, str, bool]:
    """As html_text, and whether the body decoded strictly as it is (no BOM, no replacement).

    The common case first: no BOM, and the whole body decodes strictly with the charset
    sniff_charset would try first (the page's label, else UTF-8): that is its answer too, and one
    strict decode of the body costs what sniffing alone did."""
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
