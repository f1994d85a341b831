"""Which requisites to fetch: decided in the capture process alone, so that a requisite shared by
thousands of pages is fetched once per collection while it is fresh.

Workers only fetch what they are sent, wherever they run (threads, worker processes, a Dask
cluster). Every page's references come back to this process, which alone reads and writes the
metadata index; a requisite is sent out only if it is not already on its way (`queued`) and the
index has no fresh capture of it (`requisites_max_age`), and it goes to the batch of its own
host's shard, of which one is in flight at a time. So no two workers fetch the same URL at once,
and a URL fetched in one batch, process or run is found by the next.

A page's bounds (`requisites_max` references, `requisites_max_bytes`) travel with each of its
requisites as what remains of them when it is sent; the bytes of requisites still in flight are
not known yet, so a page can pass its byte budget by what was in flight when it was reached.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from archiver.capture.recheck import Recheck
from archiver.capture.requisites import Requisite, RequisiteDone
from archiver.capture.shards import Work
from archiver.config import Config
from archiver.extract.requisites import Reference
from archiver.index.fragments import Entry
from archiver.index.links import Previous, last_attempt, moment, previous, unattempted
from archiver.index.metadata import Store
from archiver.seeds.model import Seed
from archiver.warc.record import warc_date

# never-fetched references of an interrupted run taken up by the next, at most (the rest by the one after)
RESUME_MAX = 100_000


@dataclass
class _Owner:
    """What remains of one page's bounds while requisites of it are in flight."""

    bytes_left: int
    room: int
    pending: int = 0


@dataclass
class Tally:
    """Requisites of one run, for the capture report."""

    fetched: int = 0  # captured by this run
    failed: int = 0
    skipped: int = 0
    fresh: int = 0  # references to a requisite captured already and still fresh: not fetched again
    revisits: int = 0  # fetched again, the same payload: written as revisit records
    stored_bytes: int = 0
    revisit_bytes: int = 0  # payload bytes that revisit records did not store again


class Planner:
    def __init__(self, cfg: Config, store: Store, clock: Callable[[], datetime]) -> None:
        self.cfg = cfg
        self.store = store
        self.clock = clock
        self.started = moment(warc_date(clock()))
        self.queued: set[str] = set()  # sent, not back yet
        self.owners: dict[str, _Owner] = {}  # pages with requisites in flight
        self.tally = Tally()

    def known(self, items: Iterable[Work]) -> Mapping[str, Previous]:
        """The last payloads of a batch's seeds and lead images: a page captured again whose payload
        is the same is written as a revisit. (A requisite carries its own.)"""
        found: dict[str, Previous] = {}
        for item in items:
            seed = item.seed if isinstance(item, Recheck) else item
            if isinstance(seed, Seed):
                for url in (seed.url, seed.lead_image):
                    if url and (last := previous(self.store.db, url)) is not None:
                        found[url] = last
        return found

    def page(self, entry: Entry) -> list[Requisite]:
        """Record an article's links records (in the caller's transaction); its requisites to fetch."""
        for links in entry.links:
            self.store.put_links(links)
        page = entry.links[0] if entry.links else None
        if page is None or not page.references:
            return []
        owner = _Owner(self.cfg.requisites_max_bytes, self.cfg.requisites_max - len(page.references))
        referer = entry.article.final_url or entry.article.url
        fetched = {links.url for links in entry.links}  # with the page, just now: its lead image
        wanted = [ref for ref in page.references if ref.url not in fetched]
        return self._wanted(wanted, referer, entry.article.url, 0, owner)

    def done(self, result: RequisiteDone) -> list[Requisite]:
        """Record what became of a requisite (in the caller's transaction); what it needs in turn."""
        item = result.requisite
        self.queued.discard(item.url)
        owner = self.owners.get(item.owner)
        if owner is not None:
            owner.pending -= 1
            if owner.pending <= 0:
                del self.owners[item.owner]
        links = result.links
        if links is None:  # not fetched (its batch failed): the next run fetches it
            return []
        self.store.put_links(links)
        capture = links.capture
        if capture is not None:
            self._count(capture.outcome, capture.revisit, capture.size)
        if not links.references:
            return []
        if owner is None:
            owner = _Owner(self.cfg.requisites_max_bytes, self.cfg.requisites_max)
        if capture is not None and not capture.revisit:
            owner.bytes_left -= capture.size
        owner.room -= len(links.references)
        return self._wanted(links.references, item.url, item.owner, links.depth, owner)

    def resume(self) -> list[Requisite]:
        """References an earlier run recorded and never fetched (it was stopped before them)."""
        work = []
        owners: dict[str, _Owner] = {}
        for parent, url, stylesheet, depth in unattempted(self.store.db, RESUME_MAX):
            owner = owners.setdefault(parent, _Owner(self.cfg.requisites_max_bytes, self.cfg.requisites_max))
            work += self._wanted([Reference(url, "", bool(stylesheet))], parent, parent, depth, owner)
        return work

    def _count(self, outcome: str, revisit: bool, size: int) -> None:
        tally = self.tally
        if outcome == "ok":
            tally.fetched += 1
        elif outcome == "failed":
            tally.failed += 1
        else:
            tally.skipped += 1
        if revisit:
            tally.revisits += 1
            tally.revisit_bytes += size
        else:
            tally.stored_bytes += size

    def _wanted(self, references: Iterable[Reference], referer: str, owner_url: str, depth: int,
                owner: _Owner) -> list[Requisite]:
        work = []
        for ref in references:
            if not self._due(ref.url):
                continue
            self.queued.add(ref.url)
            owner.pending += 1
            self.owners[owner_url] = owner
            work.append(Requisite(ref.url, referer, owner_url, depth, ref.stylesheet, max(0, owner.bytes_left),
                                  max(0, owner.room), previous(self.store.db, ref.url)))
        return work

    def _due(self, url: str) -> bool:
        """Should `url` be fetched now: not on its way, no fresh capture, not failed in this run?
        (With requisites_max_age 0, always: every page fetches its own.)"""
        if self.cfg.requisites_max_age == 0:
            return True
        if url in self.queued:
            return False
        found = last_attempt(self.store.db, url)
        if found is None:
            return True
        _, attempted, fetched = found
        if fetched and (self.clock() - moment_time(fetched)).total_seconds() < self.cfg.requisites_max_age:
            self.tally.fresh += 1
            return False
        return attempted < self.started  # not tried in this run already (and failed, or stale again)


def moment_time(normal: str) -> datetime:
    return datetime.fromisoformat(normal.replace("Z", "+00:00"))
