"""What a WARC record is to archiver: the version, archiver's own header fields, the record types
a replay index lists, record IDs and dates, where a feed copy is stored, and `Written` (where a
record landed, and what an index needs of it). Shared by the writer, the readers and the indexes.
"""

from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

WARC_VERSION = "1.1"
# The longest header line a record may have (`archiver verify` holds every file to it), and the
# longest URL archiver puts into one: servers refuse far shorter request lines (8-16 KB is usual).
MAX_HEADER_LINE = 1 << 16
# WARC 1.1's profile of a revisit whose payload is byte for byte an earlier record's
REVISIT_PROFILE = "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"
MAX_URL = 16 * 1024

# archiver's own WARC header fields on the seed's metadata record (extension fields, WARC 1.1 §5)
SOURCE = "Archiver-Source"
ERROR = "Archiver-Error"
LEAD_IMAGE = "Archiver-Lead-Image"
LEAD_IMAGE_STATUS = "Archiver-Lead-Image-Status"
ATTEMPTS = "Archiver-Attempts"
# what a reader reads, on a seed's metadata record (index/versions.py), and what a check found
TEXT_DIGEST = "Archiver-Text-Digest"
TEXT_LENGTH = "Archiver-Text-Length"
LEAD_IMAGE_DIGEST = "Archiver-Lead-Image-Digest"
CHECK = "Archiver-Check"
SEED_DOCUMENT_TYPE = "text/markdown; charset=utf-8"
URL_SEED_TYPE = "text/uri-list; charset=utf-8"
FEED_COPY_HOST = "feed-copy.invalid"  # RFC 2606: can never be a real host
INDEXED_TYPES = ("response", "revisit", "resource")  # the record types a replay index lists


def new_record_id() -> str:
    return f"<urn:uuid:{uuid.uuid4()}>"


def utc_now() -> datetime:
    return datetime.now(UTC)


def warc_date(moment: datetime) -> str:
    """WARC-Date as warcio writes it for WARC 1.1: microseconds only when there are any."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def timestamp14(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S")


def timestamp14_of(warc_date: str) -> str:
    """A WARC-Date as the 14-digit timestamp of CDXJ lines and replay URLs."""
    digits = "".join(c for c in warc_date if c.isdigit())
    return digits[:14].ljust(14, "0")


def feed_copy_url(url: str) -> str:
    """Where the feed's copy of an article is stored: a URL that no live page can have."""
    scheme, _, rest = url.partition("://")
    return f"https://{FEED_COPY_HOST}/{scheme}/{rest}"


def article_url(uri: str) -> str:
    """The article URL a record stands for: a feed copy's (`feed_copy_url` undone), else `uri` itself."""
    prefix = f"https://{FEED_COPY_HOST}/"
    if uri.startswith(prefix):
        scheme, _, rest = uri[len(prefix):].partition("/")
        return f"{scheme}://{rest}"
    return uri


def record_uri(url: str) -> str:
    """`url` as a WARC-Target-URI may hold it: white space and control characters %-encoded, as
    browsers send them (a page's image may be written `src="a b.jpg"`)."""
    url = url.strip()
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), url) if _UNSAFE.search(url) else url


_UNSAFE = re.compile(r"[\x00-\x20\x7f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")


def target_uri(value: str) -> str:
    """A WARC-Target-URI as indexes list it (wget writes it as <URI>: only such brackets go)."""
    value = value.strip()
    return value[1:-1] if value.startswith("<") and value.endswith(">") else value


def http_head(first_line: str, headers: list[tuple[str, str]]) -> bytes:
    """Status or request line and headers, encoded as http.client decoded them (latin-1)."""
    lines = [first_line] + [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")


def response_head(protocol: str, status: int, reason: str, headers: list[tuple[str, str]]) -> bytes:
    """The HTTP head of a response record: status line and headers as stored."""
    return http_head(f"{protocol} {status} {reason}".rstrip(), headers)


@dataclass(frozen=True)
class Written:
    """Where a record landed, and what an index needs to know of it."""

    record_id: str
    record_type: str
    uri: str
    date: str
    filename: str
    offset: int
    length: int
    mime: str = ""
    status: str = ""
    digest: str = ""  # payload digest, 'sha1:' prefix removed, as in CDXJ


def sha1_label(digest: Any) -> str:
    """A hashlib sha1 as WARC writes it: 'sha1:' + base32."""
    return "sha1:" + base64.b32encode(digest.digest()).decode("ascii")
