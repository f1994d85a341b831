"""Capture: fetch each seed's article page and lead image into WARC files.

Seeds stream in (a list of millions is never held in memory) and go to the engine (engine.py),
which cuts them into batches by host and runs each batch as a task (batch.py): in threads here,
in worker processes, or on a Dask cluster. A batch commits its WARC files and then its metadata
fragment; this process merges the fragments' rows into the metadata index (which doubles as the
capture journal) and keeps their replay-index lines until the end of the run. An interrupted run
loses nothing it reported, and the next run resumes.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO

from archiver.capture.engine import BatchEngine, Runner, ThreadRunner
from archiver.capture.planner import Planner, Tally
from archiver.capture.processes import start_processes
from archiver.capture.recheck import Selection, recheck_of, selected
from archiver.capture.requisites import Requisite, RequisiteDone
from archiver.capture.shards import Work
from archiver.collection import Collection, locked
from archiver.config import Config
from archiver.errors import ArchiverError, SeedError, UsageError
from archiver.fetch.client import Fetcher
from archiver.fetch.netguard import AddressPolicy
from archiver.index.build import add_files, refresh
from archiver.index.cdxj import PendingLines
from archiver.index.follow import follow_cdxj
from archiver.index.fragments import Entry
from archiver.index.listing import write_listing
from archiver.index.metadata import Store, check_of
from archiver.index.rows import iso_seconds
from archiver.index.versions import Schedule
from archiver.seeds.feeds import FeedLimits, fetch_feed
from archiver.seeds.model import BadSeed, Seed, check_url
from archiver.seeds.sources import iter_seeds
from archiver.warc.record import new_record_id, utc_now, warc_date


@dataclass(frozen=True)
class Event:
    """Progress, as the capture goes: kind is captured, failed, invalid, skipped or duplicate; for a
    check of a captured article, checked (reason: what it found, index/versions.py)."""

    kind: str
    source: str
    url: str = ""
    reason: str = ""
    detail: str = ""


# Failed seeds a report keeps (each was passed to on_event as it failed; every failed URL is in the
# metadata index, where `archiver export --status failed` lists them): memory stays flat however many fail.
FAILURE_SAMPLE = 100


@dataclass
class CaptureReport:
    captured: int = 0
    skipped: int = 0
    duplicates: int = 0
    failed: int = 0
    failed_by_reason: Counter[str] = field(default_factory=Counter)
    failures: list[Event] = field(default_factory=list)  # the first FAILURE_SAMPLE of them
    interrupted: bool = False
    files: int = 0  # complete WARC files the run added
    replay_index: str = ""  # the collection's own replay index (zipnum, Redis), brought up to date
    replay_index_error: str = ""  # ...or why it could not be
    mended: list[str] = field(default_factory=list)  # leftovers of a killed run, mended before it started
    skipped_files: list[str] = field(default_factory=list)  # files in archive/ that cannot be indexed, and why
    requisites: Tally = field(default_factory=Tally)  # what the pages needed to look as they did
    checks: Counter[str] = field(default_factory=Counter)  # recapture: what the checks found, by kind

    def fail(self, event: Event) -> None:
        self.failed += 1
        self.failed_by_reason[event.reason] += 1
        if len(self.failures) < FAILURE_SAMPLE:
            self.failures.append(event)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.interrupted and not self.skipped_files


def capture(
    cfg: Config,
    sources: Iterable[str],
    stdin: IO[str] | None = None,
    on_event: Callable[[Event], None] | None = None,
    clock: Callable[[], datetime] = utc_now,
    new_id: Callable[[], str] = new_record_id,
    policy: AddressPolicy | None = None,
    feeds: Iterable[str] = (),
    runner: Runner | None = None,
) -> CaptureReport:
    """Capture every seed named by `sources` and every item of the `feeds` (RSS/Atom URLs)
    into the collection; never raises for one bad seed.

    `runner`: the worker processes from `processes.start_processes(cfg)`, started before the
    caller imported this module; capture uses them and closes them (also when it fails).
    `clock`, `new_id` and `policy` are for tests; when any is given, capture runs in this
    process (they cannot travel to worker processes or a cluster).
    """
    try:
        return _capture(cfg, sources, stdin, on_event, clock, new_id, policy, feeds, runner)
    finally:
        if runner is not None:
            runner.close()  # (the engine closed it already when it ran)


def _capture(cfg: Config, sources: Iterable[str], stdin: IO[str] | None,
             on_event: Callable[[Event], None] | None, clock: Callable[[], datetime], new_id: Callable[[], str],
             policy: AddressPolicy | None, feeds: Iterable[str], runner: Runner | None) -> CaptureReport:
    def work(store: Store, report: CaptureReport, notify: Callable[[Event], None]) -> Iterator[Work]:
        seeds = itertools.chain(_feed_items(cfg, feeds, clock, policy),
                                iter_seeds(sources, cfg.root, stdin, FeedLimits.of(cfg)))
        return _todo(seeds, store, set(), report, notify)

    return _running(cfg, work, on_event, clock, new_id, policy, runner)


def recapture(
    cfg: Config,
    selection: Selection | None = None,
    on_event: Callable[[Event], None] | None = None,
    clock: Callable[[], datetime] = utc_now,
    new_id: Callable[[], str] = new_record_id,
    policy: AddressPolicy | None = None,
    runner: Runner | None = None,
) -> CaptureReport:
    """Check captured articles again (those `selection` names): each check is written as a
    capture is, a revisit when the page is unchanged, and says what it found (index/versions.py).
    Nothing of an earlier capture is replaced. Arguments as for capture(); no selection: those due."""
    chosen = selection or Selection()

    def work(store: Store, report: CaptureReport, notify: Callable[[Event], None]) -> Iterator[Work]:
        now = clock()
        cut = iso_seconds(warc_date(now - timedelta(seconds=chosen.older_than or 0)))
        for url in selected(store, chosen, iso_seconds(warc_date(now)), cut):
            item = recheck_of(store, url)
            if item is not None:
                yield item
        for url in dict.fromkeys(chosen.urls):
            if not store.is_captured(url):
                event = Event("failed", url, url, "not_captured", "no captured version to check")
                report.fail(event)
                notify(event)

    try:
        return _running(cfg, work, on_event, clock, new_id, policy, runner)
    finally:
        if runner is not None:
            runner.close()


def _running(cfg: Config, work: Callable[[Store, CaptureReport, Callable[[Event], None]], Iterator[Work]],
             on_event: Callable[[Event], None] | None, clock: Callable[[], datetime], new_id: Callable[[], str],
             policy: AddressPolicy | None, runner: Runner | None) -> CaptureReport:
    collection = Collection.of(cfg)
    injected = clock is not utc_now or new_id is not new_record_id or policy is not None
    if injected and (cfg.cluster or runner is not None):
        raise UsageError("an injected clock, ID source or address policy cannot travel to other processes")
    with locked(collection):
        leftovers = refresh(collection, rebuild=False, cfg=cfg)  # mends and indexes leftovers of a killed run
        if runner is None and cfg.cluster:
            from archiver._dask import connect
            from archiver.capture.dask import DaskRunner

            runner = DaskRunner(connect(cfg.cluster))
        elif runner is None:
            runner = (start_processes(cfg) if not injected else None) or ThreadRunner(cfg, clock, new_id, policy)
        engine = BatchEngine(cfg, collection, runner, clock)
        report = _run(cfg, collection, work, on_event or (lambda event: None), engine, clock)
        report.mended, report.skipped_files = leftovers.mended, leftovers.unreadable
        if report.files:
            try:  # replay reads a zipnum or Redis copy of index.cdxj: it must see the new captures too
                report.replay_index = follow_cdxj(collection)
            except ArchiverError as exc:  # the capture itself is complete and indexed
                report.replay_index_error = str(exc)
        return report


def _feed_items(cfg: Config, feeds: Iterable[str], clock: Callable[[], datetime],
                policy: AddressPolicy | None) -> Iterator[Seed | BadSeed]:
    feeds = list(feeds)
    if not feeds:
        return
    fetcher = Fetcher(cfg, clock, policy)
    try:
        for url in feeds:
            try:
                check_url(url, url)
            except SeedError as exc:
                yield BadSeed(url, exc.reason, exc.detail)
                continue
            yield from fetch_feed(url, fetcher, FeedLimits.of(cfg))
    finally:
        fetcher.close()


def _run(cfg: Config, collection: Collection,
         work: Callable[[Store, CaptureReport, Callable[[Event], None]], Iterator[Work]],
         notify: Callable[[Event], None], engine: BatchEngine, clock: Callable[[], datetime]) -> CaptureReport:
    report = CaptureReport()
    # the replay-index lines of this run's records, kept in sorted runs (memory stays flat)
    with Store(collection.db_path) as store, PendingLines(collection) as lines:
        planner = Planner(cfg, store, clock)
        report.requisites = planner.tally
        engine.known = planner.known

        def record(results: list[Entry | RequisiteDone]) -> None:
            more = _record(results, store, lines, report, notify, planner)
            if not report.interrupted:  # (else left for the next run, which finds them in the index)
                for item in more:
                    engine.submit(item)

        files = []
        try:
            try:
                for item in planner.resume():  # what a run stopped before fetching
                    while not engine.room():
                        record(engine.results(1.0))
                    engine.submit(item)
                for one in work(store, report, notify):
                    while not engine.room():
                        record(engine.results(1.0))
                    engine.submit(one)
                engine.end_of_input()
                while engine.pending():
                    record(engine.results(1.0))
            except KeyboardInterrupt:
                report.interrupted = True
                engine.cancel()  # seeds not started are dropped; batches in flight finish
                while engine.pending():
                    record(engine.results(1.0))
        finally:
            files = engine.close()
        with store.transaction():  # (left to the next run if this one fails: the changes stay noted)
            store.recount()  # the requisite counts of the articles whose requisites changed
            store.revise(Schedule(cfg.recheck_min, cfg.recheck_max))  # their versions and next checks
        # every file of the run is complete: its records join the replay index
        add_files(collection, store, files, lines)
        report.files = len(files)
        # the collection page's JSON (index/listing.py): rewritten when the run added files, or missing
        write_listing(collection, store, changed=bool(files))
    return report


def _todo(items: Iterator[Seed | BadSeed], store: Store, seen: set[str], report: CaptureReport,
          notify: Callable[[Event], None]) -> Iterator[Seed]:
    for item in items:
        if isinstance(item, BadSeed):
            event = Event("invalid", item.source, reason=item.reason, detail=item.detail)
            report.fail(event)
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


def _record(results: list[Entry | RequisiteDone], store: Store, lines: PendingLines, report: CaptureReport,
            notify: Callable[[Event], None], planner: Planner) -> list[Requisite]:
    """Record what came back; returns the requisites it needs fetched."""
    if not results:
        return []
    more: list[Requisite] = []
    entries: list[Entry] = []
    with store.transaction():  # one commit for the lot; their batches are committed already
        for result in results:
            lines.add(result.cdxj)
            if isinstance(result, RequisiteDone):
                more += planner.done(result)
                continue
            entries.append(result)
            seen = result.seen
            if seen is not None and seen.kind != "captured":  # a check: the article's row stays as captured
                store.put_check(check_of(result.article, seen))
                if seen.kind in ("edited", "restored") and result.text:  # search finds what it says now
                    store.queue_text(result.article.url, result.article.search_title, result.text)
            else:
                # (a failed attempt never replaces a captured row: a check whose batch failed)
                if store.put(result.article, prefer_existing_capture=True) and result.text:
                    # searchable once `archiver search` has indexed it (index/fulltext.py)
                    store.queue_text(result.article.url, result.article.search_title, result.text)
                if seen is not None:
                    store.put_check(check_of(result.article, seen))
            more += planner.page(result)
    for result in entries:
        article = result.article
        if result.seen is not None and result.seen.kind != "captured":
            report.checks[result.seen.kind] += 1
            event = Event("checked", article.source, article.url, result.seen.kind, article.error)
            if result.seen.kind == "failed":
                report.fail(event)
        elif article.error:
            event = Event("failed", article.source, article.url, article.error, result.detail)
            report.fail(event)
        else:
            event = Event("captured", article.source, article.url)
            report.captured += 1
        notify(event)
    return more
