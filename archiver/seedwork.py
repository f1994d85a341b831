"""The work for one seed: fetch its page and lead image, write the records, build its row.

It runs in a worker thread, in capture's own process or in a worker process (see engines.py);
everything it needs travels in a `SeedEnv`. Each worker thread writes its own WARC files, so no
lock is held while writing.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from . import index as index_mod
from .articles import SeedRecord, build_article, render_feed_copy
from .config import Config
from .extract import MAX_DECODED, PageInfo, decode_body, is_html, page_info
from .fetch import Chain, Exchange, Fetcher
from .layout import Collection
from .seeds import Seed
from .store import Article
from .warc import (
    ATTEMPTS,
    ERROR,
    LEAD_IMAGE,
    LEAD_IMAGE_STATUS,
    SEED_DOCUMENT_TYPE,
    SOURCE,
    URL_SEED_TYPE,
    WarcFile,
    Written,
    feed_copy_url,
    metadata_spec,
    request_spec,
    resource_spec,
    response_spec,
    timestamp14,
    warc_date,
    warcinfo_fields,
)


@dataclass
class SeedEnv:
    """What the workers of one process share: settings, the fetcher, the clock and ID source."""

    cfg: Config
    collection: Collection
    fetcher: Fetcher
    clock: Callable[[], datetime]
    new_id: Callable[[], str]
    run_id: str


class Outputs:
    """One rolling WARC file per worker thread."""

    def __init__(self, env: SeedEnv) -> None:
        self.env = env
        self._local = threading.local()
        self._lock = threading.Lock()
        self._files: list[WarcFile] = []
        self.finished: list[Path] = []  # complete files of this run
        self._workers = itertools.count()
        self._serials: dict[int, itertools.count[int]] = {}

    def current(self) -> WarcFile:
        out: WarcFile | None = getattr(self._local, "out", None)
        if out is not None and out.size >= self.env.cfg.warc_max_size:
            self._close(out)
            out = None
        if out is None:
            worker = getattr(self._local, "worker", None)
            if worker is None:
                with self._lock:
                    worker = self._local.worker = next(self._workers)
                    self._serials[worker] = itertools.count()
            env = self.env
            stamp = timestamp14(env.clock())
            name = f"{env.cfg.warc_prefix}-{stamp}-{env.run_id}-{worker:02d}-{next(self._serials[worker]):05d}.warc.gz"
            out = WarcFile(env.collection.archive_dir, name, env.clock, env.new_id,
                           warcinfo_fields({"isPartOf": env.collection.name}))
            with self._lock:
                self._files.append(out)
            self._local.out = out
        return out

    def _close(self, out: WarcFile) -> None:
        path = out.close()
        with self._lock:
            self._files.remove(out)
            self.finished.append(path)

    def close_all(self) -> None:
        with self._lock:
            files, self._files = self._files, []
        for out in files:
            path = out.close()
            with self._lock:
                self.finished.append(path)


@dataclass(frozen=True)
class Captured:
    """What a worker hands back for one seed: its row, and the replay-index lines of its records."""

    article: Article
    cdxj: list[str]
    detail: str = ""  # why it failed, when the reason alone does not say
    text: str = ""  # the article's main text, for full-text search


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


def _write_chain(out: WarcFile, chain: Chain, new_id: Callable[[], str]) -> list[Written]:
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


def capture_seed(env: SeedEnv, outputs: Outputs, seed: Seed) -> Captured:
    fetcher, new_id = env.fetcher, env.new_id
    page_chain = fetcher.follow(seed.url)
    try:
        out = outputs.current()
        responses = _write_chain(out, page_chain, new_id)
        final = page_chain.final
        page = _page(final) if final is not None else None
    finally:
        page_chain.close()
    error = seed_error(page_chain)
    lead = seed.lead_image or (page.lead_image if page else "")
    lead_status = ""
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
    out.sync()  # durable before the row says so
    attempt = SeedRecord(seed, now, error, lead, lead_status, record, page_chain.attempts or None)
    response = responses[-1] if responses else None
    article = build_article(env.collection.name, attempt, response, page, feed_copy)
    text = page.text if page is not None and not error else ""
    return Captured(article, [index_mod.cdxj_line(w) for w in indexed], text=text)


def capture_seed_safely(env: SeedEnv, outputs: Outputs, seed: Seed) -> Captured:
    """capture_seed, but a bug in archiver fails the seed (reported) rather than the run."""
    try:
        return capture_seed(env, outputs, seed)
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}"[:200]
        article = Article(
            url=seed.url, title=seed.title, seed_timestamp=seed.timestamp_ms, seed_time=seed.seed_time,
            page_title="", published=seed.published, capture_time="", status=None, final_url="",
            lead_image_url=seed.lead_image, lead_image_status="", warc_file="", warc_offset=None,
            warc_length=None, payload_digest="", replay_path="", source=seed.source,
            error="internal_error", attempts=None,
        )
        return Captured(article, [], detail)
