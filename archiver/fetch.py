"""HTTP fetching for capture: bytes as received, a total deadline, an address guard.

Each exchange keeps what the WARC needs: the request as sent, the status line and headers as
received, and the entity body after transfer decoding with its content encoding kept, which is
exactly the WARC payload. Chunked framing is removed (the digest must not depend on it) and the
headers are made to agree: Transfer-Encoding becomes X-Archive-Orig-Transfer-Encoding and a
Content-Length is added, so that replay serves the body correctly.
"""

from __future__ import annotations

import email.utils
import hashlib
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO
from urllib.parse import urldefrag, urljoin, urlsplit

import certifi
import urllib3

from .config import Config
from .errors import FetchError
from .netguard import AddressPolicy, Deadline, pool_classes
from .politeness import HostGate
from .warc import sha1_label

REDIRECTS = (301, 302, 303, 307, 308)
RETRY_STATUSES = (429, 500, 502, 503, 504)
RETRY_ERRORS = ("connection_error", "timeout")
SPOOL_IN_MEMORY = 2 * 1024 * 1024
READ_SIZE = 64 * 1024


@dataclass
class Exchange:
    """One HTTP request and the response to it, ready to be written as WARC records."""

    url: str
    started: datetime
    request_head: bytes
    protocol: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: IO[bytes]
    body_length: int
    payload_digest: str
    peer_address: str
    truncated: str = ""  # "", "length", "time" or "disconnect" (WARC-Truncated)

    def header(self, name: str) -> str:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), "")

    @property
    def content_type(self) -> str:
        return self.header("content-type")

    def read_body(self, limit: int) -> bytes:
        self.body.seek(0)
        return self.body.read(limit)

    def close(self) -> None:
        self.body.close()


@dataclass
class Chain:
    """Every exchange made for one URL, redirects included, and how it ended."""

    exchanges: list[Exchange] = field(default_factory=list)
    error: str = ""
    detail: str = ""
    attempts: int = 0  # requests made for the last URL of the chain (1 = no retry)

    @property
    def final(self) -> Exchange | None:
        return self.exchanges[-1] if self.exchanges else None

    def close(self) -> None:
        for exchange in self.exchanges:
            exchange.close()


class Fetcher:
    """Fetches URLs for capture; thread-safe (urllib3's pool manager is shared by all threads).

    urllib3 directly, not requests on top of it: requests' per-request work (preparing,
    hooks, cookies, adapters) cost more CPU than the rest of a capture, and capture needs none of
    it. The connection classes are archiver's own (netguard), bound to the address policy.
    """

    def __init__(self, cfg: Config, clock: Callable[[], datetime], policy: AddressPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.cfg = cfg
        self.clock = clock
        self.policy = policy or AddressPolicy(allow_private=cfg.allow_private)
        self.sleep = sleep
        self.gate = HostGate(cfg.host_concurrency, cfg.host_delay, sleep)
        # proxies from the environment are not consulted: they would bypass the address guard
        self.http = urllib3.PoolManager(num_pools=256, maxsize=max(cfg.host_concurrency, 4),
                                        ca_certs=certifi.where())
        self.http.pool_classes_by_scheme = pool_classes(self.policy)
        self.headers = {
            "User-Agent": cfg.user_agent,
            "Accept": "text/html,application/xhtml+xml,image/*,*/*;q=0.8",
            "Accept-Encoding": "gzip, deflate",
        }
        self.timeout = urllib3.Timeout(connect=cfg.connect_timeout, read=cfg.read_timeout)

    def close(self) -> None:
        self.http.clear()

    def follow(self, url: str, referer: str = "") -> Chain:
        """GET `url`, following redirects up to the configured limit; never raises FetchError."""
        chain = Chain()
        current = urldefrag(url)[0]
        for hop in range(self.cfg.max_redirects + 1):
            try:
                exchange = self._with_retries(current, referer, chain)
            except FetchError as exc:
                chain.error, chain.detail = exc.reason, exc.detail
                return chain
            chain.exchanges.append(exchange)
            location = exchange.header("location")
            if exchange.status not in REDIRECTS or not location:
                return chain
            if hop == self.cfg.max_redirects:
                break
            current = urldefrag(urljoin(current, location.strip()))[0]
            if urlsplit(current).scheme not in ("http", "https"):
                chain.error, chain.detail = "unsupported_scheme", f"redirect to {current!r}"
                return chain
        chain.error = "too_many_redirects"
        chain.detail = f"more than {self.cfg.max_redirects} redirects"
        return chain

    def _with_retries(self, url: str, referer: str, chain: Chain) -> Exchange:
        """GET `url`, retrying transient failures with capped exponential backoff and jitter.

        Responses that are retried (a 503, a cut body) stay in the chain: the archive keeps what
        the server said. Retry-After (seconds or HTTP-date) is honoured up to retry_after_max.
        """
        retries = self.cfg.retries
        for attempt in range(1, retries + 2):
            chain.attempts = attempt
            try:
                exchange = self.get(url, referer)
            except FetchError as exc:
                if exc.reason not in RETRY_ERRORS or attempt > retries:
                    raise
                self.sleep(self._backoff(attempt))
                continue
            if attempt <= retries and (exchange.status in RETRY_STATUSES or exchange.truncated == "disconnect"):
                chain.exchanges.append(exchange)
                self.sleep(self._backoff(attempt, exchange.header("retry-after")))
                continue
            return exchange
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int, retry_after: str = "") -> float:
        cfg = self.cfg
        asked = retry_after_seconds(retry_after, self.clock())
        if asked is not None:
            return min(asked, cfg.retry_after_max)
        return min(cfg.backoff_max, cfg.backoff_base * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)

    def get(self, url: str, referer: str = "") -> Exchange:
        """One GET, no redirects, within the host's politeness limits."""
        with self.gate.slot(urlsplit(url).netloc.lower()):
            return self._get(url, referer)

    def _get(self, url: str, referer: str = "") -> Exchange:
        """One GET, no redirects. Raises FetchError when no usable response arrived."""
        cfg = self.cfg
        started = self.clock()
        headers = {**self.headers, "Referer": referer} if referer else self.headers
        with Deadline(cfg.timeout) as deadline:
            try:
                target = urllib3.util.parse_url(url)
                response = self.http.request("GET", url, headers=headers, preload_content=False,
                                             decode_content=False, redirect=False, retries=False,
                                             timeout=self.timeout)
            except FetchError:
                raise
            except urllib3.exceptions.SSLError as exc:
                raise FetchError("tls_error", _short(exc)) from exc
            except (urllib3.exceptions.TimeoutError, TimeoutError) as exc:
                raise FetchError("timeout", _short(exc)) from exc
            except (urllib3.exceptions.LocationParseError, urllib3.exceptions.LocationValueError,
                    UnicodeError, ValueError) as exc:
                raise FetchError("invalid_url", _short(exc)) from exc
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                if deadline.expired:
                    raise FetchError("timeout", f"no response within {cfg.timeout:g} s") from exc
                raise FetchError("connection_error", _short(exc)) from exc
            try:
                deadline.watch(response.shutdown)
                request_head = _request_head(target, headers)
                exchange = self._read(url, started, request_head, response, deadline)
            except BaseException:
                response.close()
                raise
            if exchange.truncated:
                response.close()  # the connection is in an unknown state
            else:
                response.release_conn()  # read to the end: keep the connection alive
            return exchange

    def _read(self, url: str, started: datetime, request_head: bytes, response: urllib3.BaseHTTPResponse,
              deadline: Deadline) -> Exchange:
        raw = response
        original = getattr(raw, "_original_response", None)  # http.client's response: headers in received order
        if original is None:
            raise FetchError("connection_error", "no HTTP response")
        body: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - closed by Exchange
        digest = hashlib.sha1()
        length = 0
        truncated = ""
        try:
            while True:
                chunk = raw.read1(READ_SIZE, decode_content=False)
                if not chunk:
                    break
                room = self.cfg.max_size - length
                if len(chunk) > room:
                    chunk, truncated = chunk[:room], "length"
                body.write(chunk)
                digest.update(chunk)
                length += len(chunk)
                if truncated:
                    break
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if length == 0 and not deadline.expired:
                body.close()
                raise FetchError("connection_error", _short(exc)) from exc
            truncated = "time" if deadline.expired else "disconnect"
        if deadline.expired and not truncated:
            truncated = "time"
        received = [(str(k), str(v)) for k, v in original.msg.items()]
        stored = _stored_headers(received, bool(original.chunked), length)
        protocol = "HTTP/1.0" if original.version == 10 else "HTTP/1.1"
        return Exchange(
            url=url,
            started=started,
            request_head=request_head,
            protocol=protocol,
            status=response.status,
            reason=original.reason or "",
            headers=stored,
            body=body,
            body_length=length,
            payload_digest=sha1_label(digest),
            peer_address=deadline.peer_address,
            truncated=truncated,
        )


def _stored_headers(received: list[tuple[str, str]], chunked: bool, length: int) -> list[tuple[str, str]]:
    if not chunked:
        return received
    out = []
    for name, value in received:
        lowered = name.lower()
        if lowered == "transfer-encoding":
            out.append(("X-Archive-Orig-Transfer-Encoding", value))
        elif lowered == "content-length":
            out.append(("X-Archive-Orig-Content-Length", value))
        else:
            out.append((name, value))
    out.append(("Content-Length", str(length)))
    return out


def _request_head(target: urllib3.util.Url, headers: dict[str, str]) -> bytes:
    """The request as http.client sends it: request line, Host, then our headers."""
    host = target.host or ""
    if ":" in host:
        host = f"[{host}]"
    if target.port is not None and target.port != {"http": 80, "https": 443}.get(target.scheme or ""):
        host = f"{host}:{target.port}"
    lines = [f"GET {target.request_uri} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")


def retry_after_seconds(value: str, now: datetime) -> float | None:
    """Retry-After as seconds from `now`: delta-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:197] + "..."
