"""One WARC or ARC file read into what the indexes need: its CDXJ lines and one metadata row
(and text) per seed, rebuilt from the seed's metadata record and the records it names.

Each file is read once; a seed's page is parsed from the pass itself (the latest pages are kept
at hand), and read again from the file only when its metadata record came long after it.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from archiver.errors import SeedError, WarcError
from archiver.extract.decode import MAX_DECODED, decode_body, is_html
from archiver.extract.page import PageInfo, page_info
from archiver.extract.versions import fingerprint
from archiver.index.cdxj import cdxj_line
from archiver.index.links import LINKS_TYPE, MAX_BLOCK, Links, parse_links
from archiver.index.metadata import Article
from archiver.index.rows import SeedRecord, build_article
from archiver.index.versions import CHECK_KINDS, Seen
from archiver.seeds.document import parse_seed_document
from archiver.seeds.model import Seed
from archiver.warc.read import RecordRead, Unsure, fast_readable, read_fast, read_warcio, warcio_iterator
from archiver.warc.record import (
    ATTEMPTS,
    CHECK,
    ERROR,
    INDEXED_TYPES,
    LEAD_IMAGE,
    LEAD_IMAGE_DIGEST,
    LEAD_IMAGE_STATUS,
    SEED_DOCUMENT_TYPE,
    SOURCE,
    TEXT_DIGEST,
    TEXT_LENGTH,
    Written,
    target_uri,
)

# HTML bodies of the latest responses kept while a file is read, so that a seed's metadata record
# (written just after its page) finds its page without reading the file a second time.
RECENT_PAGES = 64
_UNREAD = object()  # the page was not at hand: read it again from the file


class FileReader:
    """Reads one WARC/ARC file: `articles()` yields each seed's row and text as soon as its records
    have been read (archiver writes a seed's metadata record after its page), so that a file's rows
    need not all be held at once; `cdxj` and `count` are complete once it is exhausted.

    FastWARC reads the file when it can answer as warcio would (warc/read.py); when it cannot, the
    file is read again with warcio, and the rows already handed out are not handed out again."""

    def __init__(self, path: Path, collection: str, fast: bool = True) -> None:
        self.path = path
        self.collection = collection
        self.fast = fast
        self.cdxj: list[str] = []
        self.count = 0
        self.records: dict[str, Written] = {}
        self.links: list[Links] = []  # the file's links records (links.py), complete once it is read
        self.page_fields: OrderedDict[str, tuple[str, str]] = OrderedDict()  # revisited pages' title, time

    def articles(self) -> Iterator[tuple[Article, str, Seen | None]]:
        given = 0
        if self.fast and fast_readable(self.path):
            try:
                for found in self._articles(read_fast(self.path, _want)):
                    given += 1
                    yield found
                return
            except Unsure:
                self.cdxj, self.count, self.records, self.links = [], 0, {}, []
        for number, found in enumerate(self._articles(read_warcio(self.path, _want))):
            if number >= given:  # the same records give the same rows, in the same order
                yield found

    def _articles(self, reading: Iterator[RecordRead]) -> Iterator[tuple[Article, str, Seen | None]]:
        path, records = self.path, self.records
        waiting: list[tuple[Written, dict[str, str], bytes, object]] = []  # attempts whose records come later
        recent: OrderedDict[str, tuple[bytes, str, str]] = OrderedDict()  # record ID -> body, encoding, type
        next_offset = 0  # where the record being read starts, for error messages
        try:
            for record in reading:
                self.count += 1
                written = _written(record, path.name)
                next_offset = written.offset + written.length
                if written.record_id:
                    records[written.record_id] = written
                    if record.body is not None and record.rec_type == "response":
                        recent[written.record_id] = (record.body, record.http_content_encoding,
                                                     record.http_content_type)
                        if len(recent) > RECENT_PAGES:
                            recent.popitem(last=False)
                if written.record_type in INDEXED_TYPES and written.uri:
                    self.cdxj.append(cdxj_line(written))
                if record.rec_type != "metadata" or record.body is None:
                    continue
                fields = dict(record.headers)
                if fields.get("Content-Type", "").startswith(LINKS_TYPE):
                    self._links(record.body)
                    continue
                page_id, copy_id = fields.get("WARC-Concurrent-To", ""), fields.get("WARC-Refers-To", "")
                body = recent.pop(page_id, None)
                page = _UNREAD if body is None else page_info(decode_body(body[0], body[1]), body[2],
                                                                records[page_id].uri)
                attempt = (written, fields, record.body, page)
                if waiting or any(ref and ref not in records for ref in (page_id, copy_id)):
                    waiting.append(attempt)  # after the file is read (and the rows keep their order)
                elif (found := _article(path, self.collection, records, *attempt, self.page_fields)) is not None:
                    yield found
        except (OSError, ValueError, EOFError, zlib.error) as exc:  # (warc/read.py: warcio's as ValueError)
            raise WarcError(f"{path.name}: cannot be read (record at offset {next_offset}): {exc} "
                            f"(run 'archiver verify {path}' for details)") from exc
        for attempt in waiting:
            if (found := _article(path, self.collection, records, *attempt, self.page_fields)) is not None:
                yield found

    def _links(self, block: bytes) -> None:
        found = parse_links(block)
        if found is None:
            return
        self.links.append(found)
        if found.page is not None:  # the page of a revisit: its seed's row takes its title from here
            self.page_fields[found.url] = found.page
            if len(self.page_fields) > RECENT_PAGES:
                self.page_fields.popitem(last=False)


def _want(rtype: str, header: Callable[[str], str | None], http_content_type: str | None) -> int:
    """What the index reads of a record's body: a seed's metadata block, a links record, an HTML
    page's payload."""
    if rtype == "metadata":
        if (header("Content-Type") or "").startswith(LINKS_TYPE):
            return MAX_BLOCK
        return 8 * 1024 * 1024 if header(SOURCE) is not None else 0
    if rtype == "response" and http_content_type is not None and is_html(http_content_type.split(";")[0].strip()):
        return MAX_DECODED
    return 0


def _written(record: RecordRead, filename: str) -> Written:
    rtype = record.rec_type
    mime = status = ""
    if rtype == "revisit":
        mime, status = "warc/revisit", record.http_status
    elif record.http and rtype == "response":
        mime = record.http_content_type.split(";")[0].strip().lower() or "unk"
        status = record.http_status
    elif rtype == "resource":
        mime = (record.header("Content-Type") or "").split(";")[0].strip()
        status = "200"
    digest = record.header("WARC-Payload-Digest") or ""
    return Written(
        record_id=record.header("WARC-Record-ID") or "",
        record_type=rtype,
        uri=target_uri(record.header("WARC-Target-URI") or ""),
        date=record.header("WARC-Date") or "",
        filename=filename,
        offset=record.offset,
        length=record.length,
        mime=mime,
        status=status,
        digest=digest.split(":", 1)[-1],
    )


def _article(path: Path, collection: str, records: dict[str, Written], meta: Written,
             headers: dict[str, str], block: bytes, page_read: object = _UNREAD,
             page_fields: Mapping[str, tuple[str, str]] | None = None) -> tuple[Article, str, Seen | None] | None:
    source = headers.get(SOURCE, "")
    content_type = headers.get("Content-Type", "")
    try:
        if content_type.startswith(SEED_DOCUMENT_TYPE.split(";")[0]):
            seed = parse_seed_document(block, source)
        else:
            seed = Seed(url=meta.uri, source=source)
    except SeedError:
        return None
    response = records.get(headers.get("WARC-Concurrent-To", ""))
    feed_copy = records.get(headers.get("WARC-Refers-To", ""))
    attempt = SeedRecord(seed, meta.date, headers.get(ERROR, ""), headers.get(LEAD_IMAGE, ""),
                         headers.get(LEAD_IMAGE_STATUS, ""), meta, _int(headers.get(ATTEMPTS, "")))
    page: PageInfo | None = None
    if isinstance(page_read, PageInfo):
        page = page_read
    elif response is not None and is_html(response.mime):
        page = _read_page(path, response)
    elif response is not None and response.record_type == "revisit" and page_fields and seed.url in page_fields:
        title, published = page_fields[seed.url]
        page = PageInfo(title=title, published=published)
    text = page.text if page is not None and not attempt.error else ""
    return build_article(collection, attempt, response, page, feed_copy), text, _seen(headers, meta, page, attempt)


def _seen(headers: dict[str, str], meta: Written, page: PageInfo | None, attempt: SeedRecord) -> Seen | None:
    """What the capture or check found, as its record says (records written before versions
    existed carry no fingerprint: it is taken from the page)."""
    kind = headers.get(CHECK, "")
    if kind and kind not in CHECK_KINDS:
        kind = "failed"  # a kind this archiver does not know: no version is made of it
    if not kind and attempt.error:
        return None  # a failed capture: no version
    digest, length = headers.get(TEXT_DIGEST, ""), _int(headers.get(TEXT_LENGTH, "")) or 0
    if not digest and page is not None and page.reading and not attempt.error:
        digest, length = fingerprint(page.reading)
    return Seen(kind or "captured", meta.date, digest, length, headers.get(LEAD_IMAGE_DIGEST, ""))


def _int(text: str) -> int | None:
    return int(text) if text.strip().isdigit() else None


def _read_page(path: Path, response: Written) -> PageInfo | None:
    return page_at(path, response.offset, response.uri)


def page_at(path: Path, offset: int, uri: str) -> PageInfo | None:
    """The page in the response record at `offset` of the WARC file at `path`."""
    with path.open("rb") as fh:
        fh.seek(offset)
        for record in warcio_iterator(fh):
            http = record.http_headers
            body = record.raw_stream.read(MAX_DECODED)
            encoding = http.get_header("Content-Encoding") or "" if http else ""
            content_type = http.get_header("Content-Type") or "" if http else ""
            return page_info(decode_body(body, encoding), content_type, uri)
    return None
