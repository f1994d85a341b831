"""How one seed's capture becomes its metadata row; shared by capture and by the index rebuild,
so that both always produce the same row from the same records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archiver.extract.page import PageInfo
from archiver.index.metadata import Article
from archiver.seeds.model import Seed
from archiver.warc.record import Written, timestamp14_of


@dataclass(frozen=True)
class SeedRecord:
    """What the seed's metadata record says about the capture attempt."""

    seed: Seed
    date: str  # WARC-Date of the attempt
    error: str
    lead_image: str
    lead_image_status: str
    record: Written
    attempts: int | None = None


def lead_image_columns(recorded: str) -> dict[str, Any]:
    """The metadata record's Archiver-Lead-Image-Status (the final HTTP status, or why there was no
    response: "timeout", "blocked_address", ...) as the row's lead_image_status and lead_image_error."""
    if not recorded:
        return {"lead_image_status": None, "lead_image_error": ""}
    if recorded.isdigit():
        status = int(recorded)
        return {"lead_image_status": status, "lead_image_error": f"http_{status}" if status >= 400 else ""}
    return {"lead_image_status": None, "lead_image_error": recorded}


def iso_seconds(warc_date: str) -> str:
    """WARC-Date as ISO 8601 UTC to the second, e.g. 2023-10-06T00:45:01Z."""
    t = timestamp14_of(warc_date)
    return f"{t[0:4]}-{t[4:6]}-{t[6:8]}T{t[8:10]}:{t[10:12]}:{t[12:14]}Z"


def build_article(
    collection: str,
    attempt: SeedRecord,
    response: Written | None,
    page: PageInfo | None,
    feed_copy: Written | None,
) -> Article:
    seed = attempt.seed
    # the row points at the live page's record; failing that the feed copy; failing that the seed
    where = response if (response is not None and not attempt.error) else (feed_copy or response or attempt.record)
    if response is not None and not attempt.error:
        replay = f"/{collection}/{timestamp14_of(response.date)}/{seed.url}"
    elif feed_copy is not None:
        replay = f"/{collection}/{timestamp14_of(feed_copy.date)}/{feed_copy.uri}"
    elif response is not None:
        replay = f"/{collection}/{timestamp14_of(response.date)}/{seed.url}"
    else:
        replay = ""
    return Article(
        url=seed.url,
        title=seed.title,
        seed_timestamp=seed.timestamp_ms,
        seed_time=seed.seed_time,
        page_title=page.title if page else "",
        published=(page.published if page and page.published else seed.published),
        capture_time=iso_seconds(response.date if response is not None else attempt.date),
        status=int(response.status) if response is not None and response.status.isdigit() else None,
        final_url=response.uri if response is not None else "",
        lead_image_url=attempt.lead_image,
        **lead_image_columns(attempt.lead_image_status),
        warc_file=where.filename,
        warc_offset=where.offset,
        warc_length=where.length,
        payload_digest=("sha1:" + where.digest) if where.digest else "",
        replay_path=replay,
        source=seed.source,
        error=attempt.error,
        attempts=attempt.attempts,
    )
