"""The work for one seed: fetch its page and lead image, write the records, build its row.

It runs in one of the threads of a batch (batch.py), wherever the batch runs: in capture's own
process, a worker process or a Dask worker. Everything it needs travels in a `SeedEnv`.
"""

from __future__ import annotations

import html
import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import nh3

from archiver.collection import Collection
from archiver.config import Config
from archiver.errors import is_disk_error
from archiver.extract.decode import MAX_DECODED, decode_body, is_html
from archiver.extract.page import PageInfo, page_info
from archiver.fetch.client import Chain, Exchange, Fetcher
from archiver.index.cdxj import cdxj_line
from archiver.index.fragments import Entry
from archiver.index.metadata import Article
from archiver.index.rows import SeedRecord, build_article
from archiver.seeds.model import Seed
from archiver.warc.record import (
    ATTEMPTS,
    ERROR,
    LEAD_IMAGE,
    LEAD_IMAGE_STATUS,
    MAX_URL,
    SEED_DOCUMENT_TYPE,
    SOURCE,
    URL_SEED_TYPE,
    Written,
    feed_copy_url,
    record_uri,
    warc_date,
)
from archiver.warc.write import (
    RecordSpec,
    WarcFile,
    encode_record,
    metadata_spec,
    request_spec,
    resource_spec,
    response_spec,
    warcinfo_fields,
)


@dataclass
class SeedEnv:
    """What the threads capturing one batch share: settings, the fetcher, the clock and ID source."""

    cfg: Config
    collection: Collection
    fetcher: Fetcher
    clock: Callable[[], datetime]
    new_id: Callable[[], str]


class _Shared:
    """A WARC file written by several threads: one record at a time."""

    def __init__(self, file: WarcFile) -> None:
        self.file = file
        self.lock = threading.Lock()
        self.users = 0
        self.retiring = False

    def write(self, spec: RecordSpec) -> Written:
        encoded = encode_record(spec)  # outside the lock: compressing is most of the work
        with self.lock:
            return self.file.append(encoded)

    def flush(self) -> None:
        with self.lock:
            self.file.flush()


class Outputs:
    """The WARC files of one batch: `<base>-000.warc.gz`, `-001`, ... (a new one past warc_max_size).

    The threads of a batch share the current file, so a batch makes one file, not one per thread;
    a file is closed once it is full and no seed is still writing to it.
    """

    def __init__(self, env: SeedEnv, base: str, directory: Path) -> None:
        self.env = env
        self.base = base
        self.directory = directory  # where files are written (the archive itself, or a spool to upload from)
        self._lock = threading.Lock()
        self._current: _Shared | None = None
        self._serial = itertools.count()
        self.finished: list[Path] = []  # complete files, in order

    @contextmanager
    def session(self) -> Iterator[_Shared]:
        """The file one seed writes its records to."""
        with self._lock:
            out = self._current
            if out is None or out.file.size >= self.env.cfg.warc_max_size:
                if out is not None:
                    out.retiring = True
                    if out.users == 0:
                        self.finished.append(out.file.close())
                out = self._current = self._new_file()
            out.users += 1
        try:
            yield out
        finally:
            with self._lock:
                out.users -= 1
                if out.retiring and out.users == 0:
                    self.finished.append(out.file.close())

    def _new_file(self) -> _Shared:
        env = self.env
        name = f"{self.base}-{next(self._serial):03d}.warc.gz"
        return _Shared(WarcFile(self.directory, name, env.clock, env.new_id,
                                warcinfo_fields({"isPartOf": env.collection.name})))

    def close(self) -> list[Path]:
        with self._lock:
            out, self._current = self._current, None
            if out is not None and not out.retiring:
                self.finished.append(out.file.close())
        return self.finished


def render_feed_copy(seed: Seed, error: str, body_html: str) -> bytes:
    """The feed's copy of an article as a page of its own, saying plainly what it is. The item's HTML
    is the feed's, not the site's: it is cleaned with nh3 (ammonia's allow-list: no script, no event
    handler, no javascript: URL) before it is replayed in the archive's origin, as feed readers do."""
    title = html.escape(seed.title or seed.url)
    note = (
        "Feed copy: this is the article as the news feed delivered it; the live page "
        f"<a href=\"{html.escape(seed.url)}\">{html.escape(seed.url)}</a> could not be captured "
        f"({html.escape(error)})."
    )
    when = f"<p>Feed time: {html.escape(seed.seed_time)}</p>" if seed.seed_time else ""
    page = (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
        f"<title>{title}</title></head><body>\n"
        f"<p class=\"archiver-feed-copy\" style=\"background:#fff3cd;padding:.5em\">{note}</p>\n"
        f"<h1>{title}</h1>{when}\n{nh3.clean(body_html)}\n</body></html>\n"
    )
    return page.encode("utf-8")


def seed_error(chain: Chain) -> str:
    """The machine-readable reason a page capture did not succeed, or ''."""
    if chain.error:
        return chain.error
    final = chain.final
    assert final is not None
    if final.status >= 400:
        return f"http_{final.status}"
    if final.truncated in ("time", "disconnect"):
        return f"truncated_{final.truncated}"
    return ""


def lead_image_status(chain: Chain) -> str:
    final = chain.final
    if chain.error or final is None:
        return chain.error or "no_response"
    return str(final.status)


def _write_chain(out: _Shared, chain: Chain, new_id: Callable[[], str]) -> list[Written]:
    """Response and request records of every exchange; returns the responses."""
    responses = []
    for exchange in chain.exchanges:
        date = warc_date(exchange.started)
        response = out.write(response_spec(exchange, new_id(), date))
        out.write(request_spec(exchange, new_id(), date, response.record_id))
        responses.append(response)
    return responses


def _page(exchange: Exchange) -> PageInfo | None:
    if not is_html(exchange.content_type):
        return None
    body = decode_body(exchange.read_body(MAX_DECODED), exchange.header("content-encoding"))
    return page_info(body, exchange.content_type, exchange.url)


def capture_seed(env: SeedEnv, outputs: Outputs, seed: Seed) -> Entry:
    with outputs.session() as out:
        entry = _capture_seed(env, out, seed)
        out.flush()  # a run killed later keeps this seed: mending keeps what reached the file
        return entry


def _capture_seed(env: SeedEnv, out: _Shared, seed: Seed) -> Entry:
    fetcher, new_id = env.fetcher, env.new_id
    page_chain = fetcher.follow(seed.url)
    try:
        responses = _write_chain(out, page_chain, new_id)
        final = page_chain.final
        page = _page(final) if final is not None else None
    finally:
        page_chain.close()
    error = seed_error(page_chain)
    lead = record_uri(seed.lead_image or (page.lead_image if page else ""))
    lead_status = ""
    if len(lead) > MAX_URL:  # not fetched, and not written into the metadata record's header
        lead, lead_status = "", "url_too_long"
    indexed: list[Written]
    if lead and env.cfg.lead_images:
        referer = final.url if final is not None else seed.url
        image_chain = fetcher.follow(lead, referer=referer)
        try:
            image_responses = _write_chain(out, image_chain, new_id)
        finally:
            image_chain.close()
        indexed = responses + image_responses
        lead_status = lead_image_status(image_chain)
    else:
        indexed = list(responses)
    now = warc_date(env.clock())
    feed_copy = None
    if error and seed.document:
        block = render_feed_copy(seed, error, seed.article_html)
        feed_copy = out.write(resource_spec(feed_copy_url(seed.url), new_id(), now, block, "text/html; charset=utf-8"))
        indexed.append(feed_copy)
    fields = {
        SOURCE: seed.source,
        ERROR: error,
        LEAD_IMAGE: lead,
        LEAD_IMAGE_STATUS: lead_status,
        ATTEMPTS: str(page_chain.attempts) if page_chain.attempts else "",
        "WARC-Concurrent-To": responses[-1].record_id if responses else "",
        "WARC-Refers-To": feed_copy.record_id if feed_copy else "",
    }
    if seed.document:
        block, content_type = seed.document, SEED_DOCUMENT_TYPE
    else:
        block, content_type = (seed.url + "\r\n").encode("utf-8"), URL_SEED_TYPE
    record = out.write(metadata_spec(seed.url, new_id(), now, block, content_type, fields))
    # not synced here: the batch's files are synced when closed, before its fragment commits them
    attempt = SeedRecord(seed, now, error, lead, lead_status, record, page_chain.attempts or None)
    response = responses[-1] if responses else None
    article = build_article(env.collection.name, attempt, response, page, feed_copy)
    text = page.text if page is not None and not error else ""
    return Entry(article, [cdxj_line(w) for w in indexed], text=text)


def capture_seed_safely(env: SeedEnv, outputs: Outputs, seed: Seed) -> Entry:
    """capture_seed, but a bug in archiver fails the seed (reported) rather than the run."""
    try:
        return capture_seed(env, outputs, seed)
    except Exception as exc:
        if is_disk_error(exc):
            raise  # no seed can be written: the batch fails, and the capture stops (engine.py)
        return failed_entry(seed, "internal_error", f"{type(exc).__name__}: {exc}")


def failed_entry(seed: Seed, reason: str, detail: str) -> Entry:
    """The row of a seed that was not captured: reported now, and tried again by the next run."""
    article = Article(
        url=seed.url, title=seed.title, seed_timestamp=seed.timestamp_ms, seed_time=seed.seed_time,
        page_title="", published=seed.published, capture_time="", status=None, final_url="",
        lead_image_url=seed.lead_image, lead_image_status=None, lead_image_error="", warc_file="", warc_offset=None,
        warc_length=None, payload_digest="", replay_path="", source=seed.source,
        error=reason, attempts=None,
    )
    return Entry(article, [], detail[:200])
