"""The work for one seed: fetch its page and lead image, write the records, build its row.

It runs in one of the threads of a batch (batch.py), wherever the batch runs: in capture's own
process, a worker process or a Dask worker. Everything it needs travels in a `SeedEnv`.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping

import nh3

from archiver.capture.outputs import Outputs, SeedEnv, SharedFile, write_chain
from archiver.errors import is_disk_error
from archiver.extract.decode import MAX_DECODED, decode_body, is_html
from archiver.extract.page import PageInfo, page_info
from archiver.extract.versions import Reading, classify, fingerprint
from archiver.fetch.client import Chain, Exchange
from archiver.index.cdxj import cdxj_line
from archiver.index.fragments import Entry
from archiver.index.links import LINKS_TYPE, Links, Previous, capture_of, dated, links_block
from archiver.index.metadata import Article
from archiver.index.rows import SeedRecord, build_article
from archiver.index.versions import Seen
from archiver.seeds.model import Seed
from archiver.warc.record import (
    ATTEMPTS,
    CHECK,
    ERROR,
    LEAD_IMAGE,
    LEAD_IMAGE_DIGEST,
    LEAD_IMAGE_STATUS,
    MAX_URL,
    SEED_DOCUMENT_TYPE,
    SOURCE,
    TEXT_DIGEST,
    TEXT_LENGTH,
    URL_SEED_TYPE,
    Written,
    feed_copy_url,
    record_uri,
    warc_date,
)
from archiver.warc.write import metadata_spec, resource_spec


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


def _page(exchange: Exchange, srcset_max: int) -> PageInfo | None:
    if not is_html(exchange.content_type):
        return None
    body = decode_body(exchange.read_body(MAX_DECODED), exchange.header("content-encoding"))
    return page_info(body, exchange.content_type, exchange.url, srcset_max)


def capture_seed(env: SeedEnv, outputs: Outputs, seed: Seed, known: Mapping[str, Previous],
                 previous: Reading | None = None) -> Entry:
    """Capture `seed`; `known`: the last payloads of URLs fetched before (a repeat is a revisit).
    `previous`: what a captured article was last seen as, when this is a check of it."""
    with outputs.session() as out:
        entry = _capture_seed(env, out, seed, known, previous)
        out.flush()  # a run killed later keeps this seed: mending keeps what reached the file
        return entry


def _lead_of(seed: Seed, page: PageInfo | None, checking: bool) -> str:
    """The lead image to fetch: the seed's, else the page's. A check keeps the one the article had
    while the page still names it (a feed's image and the page's og:image are often two sizes of
    one picture), and otherwise takes the page's: a lead image replaced is an edit."""
    if checking and page is not None:
        named = {page.lead_image, *(ref.url for ref in page.requisites)}
        return seed.lead_image if seed.lead_image and seed.lead_image in named else page.lead_image
    return seed.lead_image or (page.lead_image if page else "")


def _capture_seed(env: SeedEnv, out: SharedFile, seed: Seed, known: Mapping[str, Previous],
                  previous: Reading | None) -> Entry:
    fetcher, new_id, cfg = env.fetcher, env.new_id, env.cfg
    page_chain = fetcher.follow(seed.url)
    try:
        responses, revisit = write_chain(out, page_chain, new_id, known.get(seed.url))
        final = page_chain.final
        page = _page(final, cfg.srcset_max if cfg.requisites else 0) if final is not None else None
    finally:
        page_chain.close()
    error = seed_error(page_chain)
    lead = record_uri(_lead_of(seed, page, previous is not None))
    lead_status = ""
    if len(lead) > MAX_URL:  # not fetched, and not written into the metadata record's header
        lead, lead_status = "", "url_too_long"
    indexed = list(responses)
    finals = [responses[-1] if responses else None]  # the record each links record stands beside
    links = [page_links(seed.url, page_chain, responses, error, known.get(seed.url) if revisit else None,
                        page if not error else None, cfg.requisites_max if cfg.requisites else -1, shown=page)]
    lead_digest = ""
    if lead and cfg.lead_images:
        referer = final.url if final is not None else seed.url
        image_chain = fetcher.follow(lead, referer=referer)
        try:
            image_responses, image_revisit = write_chain(out, image_chain, new_id, known.get(lead))
        finally:
            image_chain.close()
        indexed += image_responses
        finals.append(image_responses[-1] if image_responses else None)
        lead_status = lead_image_status(image_chain)
        if image_responses and not fetch_error(image_chain) and image_responses[-1].digest:
            lead_digest = "sha1:" + image_responses[-1].digest
        links.append(page_links(lead, image_chain, image_responses, fetch_error(image_chain),
                                known.get(lead) if image_revisit else None))
    now = warc_date(env.clock())
    feed_copy = None
    if error and seed.document:
        block = render_feed_copy(seed, error, seed.article_html)
        feed_copy = out.write(resource_spec(feed_copy_url(seed.url), new_id(), now, block, "text/html; charset=utf-8"))
        indexed.append(feed_copy)
    links = [dated(item, now) for item in links]
    for item, beside in zip(links, finals, strict=True):
        write_links(out, item, beside, new_id, now)
    seen = _seen(previous, page_chain, responses, error, page, lead_digest, now)
    fields = {
        SOURCE: seed.source,
        ERROR: error,
        LEAD_IMAGE: lead,
        LEAD_IMAGE_STATUS: lead_status,
        ATTEMPTS: str(page_chain.attempts) if page_chain.attempts else "",
        "WARC-Concurrent-To": responses[-1].record_id if responses else "",
        "WARC-Refers-To": feed_copy.record_id if feed_copy else "",
        CHECK: seen.kind if seen is not None and previous is not None else "",
        TEXT_DIGEST: seen.text_digest if seen is not None else "",
        TEXT_LENGTH: str(seen.text_length) if seen is not None and seen.text_digest else "",
        LEAD_IMAGE_DIGEST: lead_digest,
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
    return Entry(article, [cdxj_line(w) for w in indexed], text=text, links=tuple(links), seen=seen)


def _seen(previous: Reading | None, chain: Chain, responses: list[Written], error: str, page: PageInfo | None,
          lead_digest: str, date: str) -> Seen | None:
    """What this capture or check found (None: a capture that failed, which is no version)."""
    reading = page.reading if page is not None and not error else ""
    digest, length = fingerprint(reading)
    if previous is None:
        return Seen("captured", date, digest, length, lead_digest) if not error else None
    final = chain.final
    response = responses[-1] if responses else None
    now = Reading(status=final.status if final is not None else None, error=chain.error, url=previous.url,
                  final_url=response.uri if response is not None else "",
                  payload_digest=("sha1:" + response.digest) if response is not None and response.digest else "",
                  title=page.title if page is not None else "", text=reading, text_digest=digest, text_length=length,
                  # a lead image not fetched now (it failed, or lead_images is off), or not known
                  # before (a capture older than versions): no change of image can be told
                  lead_digest=lead_digest if lead_digest and previous.lead_digest else previous.lead_digest)
    return Seen(classify(previous, now), date, digest, length, lead_digest)


def fetch_error(chain: Chain) -> str:
    """Why a fetch (of a lead image, a requisite) did not capture its URL, or ''."""
    final = chain.final
    if chain.error or final is None:
        return chain.error or "no_response"
    if final.status >= 400:
        return f"http_{final.status}"
    if final.truncated:
        return "too_large" if final.truncated == "length" else f"truncated_{final.truncated}"
    return ""


def page_links(url: str, chain: Chain, written: list[Written], error: str, revisit_of: Previous | None,
               page: PageInfo | None = None, most: int = -1, shown: PageInfo | None = None) -> Links:
    """The links record of a fetch: its outcome, and (`most` >= 0) at most `most` of the page's
    requisites, the others counted as cut. `shown`: the page as parsed, even an error page."""
    date = written[-1].date if written else ""
    capture = capture_of(url, date, chain.final, error, revisit_of)
    # a revisit's page is not in its record: the index reads its title and time from here
    titled = shown or page
    fields = (titled.title, titled.published) if titled is not None and revisit_of is not None else None
    if page is None or most < 0:
        return Links(url, capture, None, page=fields)
    found = page.requisites
    return Links(url, capture, found[:most], 0, max(0, len(found) - most), page=fields)


def write_links(out: SharedFile, links: Links, response: Written | None, new_id: Callable[[], str],
                date: str) -> Written:
    """The links record of a fetch, beside its final response (or alone, when there was none)."""
    fields = {"WARC-Concurrent-To": response.record_id} if response is not None else {}
    return out.write(metadata_spec(links.url, new_id(), date, links_block(links), LINKS_TYPE, fields))


def capture_seed_safely(env: SeedEnv, outputs: Outputs, seed: Seed, known: Mapping[str, Previous],
                        previous: Reading | None = None) -> Entry:
    """capture_seed, but a bug in archiver fails the seed (reported) rather than the run."""
    try:
        return capture_seed(env, outputs, seed, known, previous)
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
