"""Capture: fetch each seed's article page and lead image into WARC files.

Work flows seeds -> worker threads (fetch, write records, fsync) -> main thread (metadata row,
progress) -> at the end the replay index is brought up to date. Each worker writes its own WARC
files, so no lock is held while writing. A seed's row is written only after its records are
durable, so an interrupted run loses nothing it reported, and the next run resumes.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

from . import index as index_mod
from . import init as init_mod
from .articles import SeedRecord, build_article, render_feed_copy
from .config import Config
from .extract import MAX_DECODED, PageInfo, decode_body, is_html, page_info
from .fetch import Chain, Exchange, Fetcher
from .layout import Collection, locked
from .netguard import AddressPolicy
from .seeds import BadSeed, Seed, iter_seeds
from .store import Article, Store
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
    new_record_id,
    request_spec,
    resource_spec,
    response_spec,
    timestamp14,
    utc_now,
    warc_date,
    warcinfo_fields,
)


@dataclass(frozen=True)
class Event:
    """Progress, as the capture goes: kind is captured, failed, invalid, skipped or duplicate."""

    kind: str
    source: str
    url: str = ""
    reason: str = ""
    detail: str = ""


@dataclass
class CaptureReport:
    captured: int = 0
    skipped: int = 0
    duplicates: int = 0
    failures: list[Event] = field(default_factory=list)
    interrupted: bool = False

    @property
    def failed_by_reason(self) -> Counter[str]:
        return Counter(e.reason for e in self.failures)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.interrupted


@dataclass
class _Env:
    """What the workers share: settings, the fetcher, the clock and ID source."""

    cfg: Config
    collection: Collection
    fetcher: Fetcher
    clock: Callable[[], datetime]
    new_id: Callable[[], str]
    run_id: str


class _Outputs:
    """One rolling WARC file per worker thread."""

    def __init__(self, env: _Env) -> None:
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


def capture(
    cfg: Config,
    sources: Iterable[str],
    collection_name: str | None = None,
    stdin: IO[str] | None = None,
    on_event: Callable[[Event], None] | None = None,
    clock: Callable[[], datetime] = utc_now,
    new_id: Callable[[], str] = new_record_id,
    policy: AddressPolicy | None = None,
) -> CaptureReport:
    """Capture every seed named by `sources` into the collection; never raises for one bad seed."""
    collection = Collection.at(cfg.root, cfg.collection if collection_name is None else collection_name)
    init_mod.init(cfg, collection.name)
    with locked(collection):
        index_mod.refresh(collection, rebuild=False)  # mends and indexes leftovers of a killed run
        report = _run(cfg, collection, sources, stdin, on_event or (lambda event: None), clock, new_id, policy)
    return report


def _run(cfg: Config, collection: Collection, sources: Iterable[str], stdin: IO[str] | None,
         notify: Callable[[Event], None], clock: Callable[[], datetime], new_id: Callable[[], str],
         policy: AddressPolicy | None) -> CaptureReport:
    report = CaptureReport()
    env = _Env(cfg, collection, Fetcher(cfg, clock, policy), clock, new_id, new_id()[-13:-1])
    outputs = _Outputs(env)
    seen: set[str] = set()
    # the replay-index lines of this run's records, unsorted, kept on disk (memory stays flat)
    with Store(collection.db_path) as store, index_mod.PendingLines(collection) as lines:
        pool = cf.ThreadPoolExecutor(max_workers=cfg.workers, thread_name_prefix="capture")
        pending: set[cf.Future[Captured]] = set()
        todo = _todo(iter_seeds(sources, cfg.root, stdin), store, seen, report, notify)

        def record(done: Iterable[cf.Future[Captured]]) -> None:
            _record(done, store, lines, report, notify)

        try:
            for seed in todo:
                pending.add(pool.submit(_capture_seed, env, outputs, seed))
                if len(pending) >= cfg.workers * 2:
                    done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                    record(done)
            while pending:
                done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                record(done)
        except KeyboardInterrupt:
            report.interrupted = True
            for future in pending:
                future.cancel()
            done, _ = cf.wait(pending)
            record({f for f in done if not f.cancelled()})
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            outputs.close_all()
            env.fetcher.close()
        # every file of the run is complete: its records join the replay index
        index_mod.add_files(collection, store, outputs.finished, lines)
    return report


def _todo(items: Iterator[Seed | BadSeed], store: Store, seen: set[str], report: CaptureReport,
          notify: Callable[[Event], None]) -> Iterator[Seed]:
    for item in items:
        if isinstance(item, BadSeed):
            event = Event("invalid", item.source, reason=item.reason, detail=item.detail)
            report.failures.append(event)
            notify(event)
        elif item.url in seen:
            report.duplicates += 1
            notify(Event("duplicate", item.source, item.url))
        elif store.is_captured(item.url):
            seen.add(item.url)
            report.skipped += 1
            notify(Event("skipped", item.source, item.url))
        else:
            seen.add(item.url)
            yield item


@dataclass(frozen=True)
class Captured:
    """What a worker hands back for one seed: its row, and the replay-index lines of its records."""

    article: Article
    cdxj: list[str]


def _record(done: Iterable[cf.Future[Captured]], store: Store, lines: index_mod.PendingLines,
            report: CaptureReport, notify: Callable[[Event], None]) -> None:
    results = [future.result() for future in done]
    with store.transaction():  # one commit for the batch; the records are durable already
        for result in results:
            store.put(result.article)
            lines.add(result.cdxj)
    for result in results:
        article = result.article
        if article.error:
            event = Event("failed", article.source, article.url, article.error)
            report.failures.append(event)
        else:
            event = Event("captured", article.source, article.url)
            report.captured += 1
        notify(event)


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


def _capture_seed(env: _Env, outputs: _Outputs, seed: Seed) -> Captured:
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
    return Captured(article, [index_mod.cdxj_line(w) for w in indexed])
