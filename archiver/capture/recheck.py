"""A captured article checked again (`archiver recapture`): the work item, and which articles are
due. The check itself is a capture of the seed (capture/seed.py) that compares what it finds with
the article's current version and says what it found in the seed metadata record."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from archiver.extract.versions import Reading
from archiver.index.metadata import Store
from archiver.index.versions import latest
from archiver.seeds.model import Seed


@dataclass(frozen=True)
class Recheck:
    """A captured article to check: its seed, and what it was last seen as."""

    seed: Seed
    previous: Reading

    @property
    def url(self) -> str:
        return self.seed.url


def recheck_of(store: Store, url: str) -> Recheck | None:
    """The check of a captured article, or None when it has no captured version."""
    article = store.get(url)
    found = latest(store.db, url)
    if article is None or found is None:
        return None
    version, check = found
    previous = Reading(status=version.status, error="", url=url, final_url=check.final_url,
                       payload_digest=check.payload_digest, title=version.title, text="",
                       lead_digest=version.lead_digest, removed=version.kind == "removed",
                       text_digest=version.text_digest, text_length=version.text_length)
    # the lead image the article had: checked again while the page still names it
    seed = Seed(url=url, source=article.source, title=article.title, timestamp_ms=article.seed_timestamp,
                lead_image=article.lead_image_url, published=article.published)
    return Recheck(seed, previous)


@dataclass(frozen=True)
class Selection:
    """Which captured articles `recapture` checks: those due by their schedule, unless `everything`;
    narrowed to `urls` and `hosts` when given; with `older_than`, those last checked (or captured)
    that many seconds ago or more, whatever their schedule."""

    urls: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    older_than: float | None = None
    everything: bool = False
    sources: tuple[str, ...] = ()  # only articles whose seed source starts with one of these (watch: its feeds)


PAGE = 10_000  # URLs read at a time: the selection is streamed, never held whole


def selected(store: Store, selection: Selection, now: str, older_than_cut: str) -> Iterator[str]:
    """The URLs `selection` names, each once, as a stream (`now`: ISO 8601 UTC to the second;
    `older_than_cut`: now less `older_than`, the same format). Rows are read a page at a time,
    after the last one read, so checks recorded meanwhile neither repeat nor hide an article."""
    hosts = {h.lower() for h in selection.hosts}
    for url, error, last, _, source in _candidates(store, selection, now):
        if error:
            continue
        if selection.sources and not source.startswith(selection.sources):
            continue
        if hosts and (urlsplit(url).hostname or "").lower() not in hosts:
            continue
        if selection.older_than is not None and last > older_than_cut:
            continue
        yield url


def _candidates(store: Store, selection: Selection, now: str) -> Iterator[tuple[str, str, str, str, str]]:
    columns = "url, error, CASE WHEN last_checked != '' THEN last_checked ELSE capture_time END, next_check, source"
    if selection.urls:
        for url in dict.fromkeys(selection.urls):
            row = store.db.execute(f"SELECT {columns} FROM articles WHERE url = ?", (url,)).fetchone()
            if row is not None:
                yield row
        return
    if selection.everything or selection.older_than is not None:
        after = ""
        while rows := store.db.execute(f"SELECT {columns} FROM articles WHERE url > ? ORDER BY url LIMIT ?",
                                       (after, PAGE)).fetchall():
            yield from rows
            after = rows[-1][0]
        return
    # what is due, through the index on (next_check, url): its cost follows what is due
    at, after = "", ""
    while rows := store.db.execute(
            f"SELECT {columns} FROM articles WHERE next_check != '' AND next_check <= ? "
            "AND (next_check, url) > (?, ?) ORDER BY next_check, url LIMIT ?", (now, at, after, PAGE)).fetchall():
        yield from rows
        at, after = rows[-1][3], rows[-1][0]
