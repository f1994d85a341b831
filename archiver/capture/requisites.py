"""The work for one page requisite (a stylesheet, script, font, image...): fetch it, write its
records and its links record, and hand back what became of it and, for a stylesheet, what it
references in turn.

A requisite is a work item of its own: the capture process (planner.py) decides which to fetch
and sends each to the batch of its own host's shard, like a seed; it runs in a batch's thread
wherever that batch runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from archiver.capture.outputs import Outputs, SeedEnv, write_chain
from archiver.capture.seed import fetch_error, page_links, write_links
from archiver.errors import is_disk_error
from archiver.extract.css import MAX_CSS, decode_css
from archiver.extract.decode import decode_body
from archiver.extract.requisites import Reference, css_requisites
from archiver.index.cdxj import cdxj_line
from archiver.index.links import Capture, Links, Previous, dated
from archiver.warc.record import warc_date

# @imports followed: a stylesheet imported this many levels below a page's own is not read
MAX_DEPTH = 3


@dataclass(frozen=True)
class Requisite:
    """A requisite to fetch, with the bounds of the page it counts against."""

    url: str
    referer: str  # the page or stylesheet that references it
    owner: str  # the article whose bounds it counts against
    depth: int  # 0: a page references it; n: a stylesheet n @imports below the page's own
    stylesheet: bool
    max_bytes: int  # what remains of the owner's requisites_max_bytes (0: none, not fetched)
    room: int  # references it may add, for a stylesheet (what remains of the owner's requisites_max)
    previous: Previous | None = None  # its last payload: the same again is written as a revisit


@dataclass(frozen=True)
class RequisiteDone:
    """What became of a requisite: its links record (None when its batch failed: it was not
    fetched, and the next run fetches it) and its records' replay-index lines."""

    requisite: Requisite
    links: Links | None
    cdxj: tuple[str, ...] = ()
    detail: str = ""


def capture_requisite(env: SeedEnv, outputs: Outputs, item: Requisite) -> RequisiteDone:
    with outputs.session() as out:
        if item.max_bytes <= 0:  # the page's byte budget is spent: recorded, not fetched
            now = warc_date(env.clock())
            links = Links(item.url, Capture(item.url, now, None, "over_requisites_max_bytes"))
            write_links(out, links, None, env.new_id, now)
            out.flush()
            return RequisiteDone(item, links)
        chain = env.fetcher.follow(item.url, referer=item.referer, max_size=item.max_bytes)
        try:
            written, revisit = write_chain(out, chain, env.new_id, item.previous)
            error = fetch_error(chain)
            references: list[Reference] | None = None
            final = chain.final
            if item.stylesheet and final is not None and not error:
                data = decode_body(final.read_body(MAX_CSS), final.header("content-encoding"), MAX_CSS)
                references = css_requisites(decode_css(data, final.content_type), final.url)
        finally:
            chain.close()
        now = warc_date(env.clock())
        links = dated(page_links(item.url, chain, written, error, item.previous if revisit else None), now)
        if references is not None:
            links = _bounded(links, references, item)
        write_links(out, links, written[-1] if written else None, env.new_id, now)
        out.flush()
        return RequisiteDone(item, links, tuple(cdxj_line(w) for w in written))


def _bounded(links: Links, references: list[Reference], item: Requisite) -> Links:
    """A stylesheet's references within the page's bounds: @imports no deeper than MAX_DEPTH, no
    more than `item.room` of them; those left out are counted as cut."""
    depth = item.depth + 1
    kept = [r for r in references if not (r.stylesheet and depth > MAX_DEPTH)]
    room = max(0, item.room)
    cut = len(references) - len(kept) + max(0, len(kept) - room)
    return Links(links.url, links.capture, tuple(kept[:room]), depth, cut)


def capture_requisite_safely(env: SeedEnv, outputs: Outputs, item: Requisite) -> RequisiteDone:
    """capture_requisite, but a bug in archiver leaves the requisite to the next run (reported)."""
    try:
        return capture_requisite(env, outputs, item)
    except Exception as exc:
        if is_disk_error(exc):
            raise
        return RequisiteDone(item, None, detail=f"{type(exc).__name__}: {exc}")
