"""HTTP fetching for capture, through libcurl: bytes as received, a total deadline, an address guard.

Each exchange keeps what the WARC needs: the request as sent, the status line and headers as
received, and the entity body after transfer decoding with its content encoding kept, which is
exactly the WARC payload. Chunked framing is removed (the digest must not depend on it) and the
headers are made to agree: Transfer-Encoding becomes X-Archive-Orig-Transfer-Encoding and a
Content-Length is added, so that replay serves the body correctly.
"""

from __future__ import annotations

import email.utils
import hashlib
import io
import ipaddress
import math
import random
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any
from urllib.parse import urldefrag, urljoin, urlsplit

import certifi
import pycurl
import urllib3

from archiver.config import Config
from archiver.errors import FetchError
from archiver.fetch.netguard import AddressPolicy
from archiver.fetch.politeness import HostGate
from archiver.warc.record import MAX_URL, record_uri, response_head, sha1_label

REDIRECTS = (301, 302, 303, 307, 308)
RETRY_STATUSES = (429, 500, 502, 503, 504)
RETRY_ERRORS = ("connection_error", "timeout")
SPOOL_IN_MEMORY = 1024 * 1024  # a body's bytes held in memory; past this, a temporary file
READ_SIZE = 128 * 1024
KEEP_ALIVE = 16  # idle connections a handle keeps (libcurl's default of 5 thrashed over the bench's 8 hosts)
DNS_TTL = 60.0  # seconds a host's checked addresses are reused (libcurl's own DNS cache default)


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
    block_digest: str = ""  # of the response record's block (head as stored + body), when known as read

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
    """Fetches URLs for capture; thread-safe: each request takes a libcurl handle of its own.

    libcurl (pycurl), not requests or urllib3: a request through urllib3 and http.client costs more
    CPU under the GIL than one through libcurl (`bench/run.py fetch`). libcurl never resolves names
    itself: archiver resolves them, checks every address against the policy and pins them
    (CURLOPT_RESOLVE); every socket libcurl opens is checked again on the address it connects to
    (CURLOPT_OPENSOCKETFUNCTION).
    """

    def __init__(self, cfg: Config, clock: Callable[[], datetime], policy: AddressPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.cfg = cfg
        self.clock = clock
        self.policy = policy or AddressPolicy(allow_private=cfg.allow_private)
        self.sleep = sleep
        self.gate = HostGate(cfg.host_concurrency, cfg.host_delay, sleep)
        self.headers = {
            "User-Agent": cfg.user_agent,
            "Accept": "text/html,application/xhtml+xml,image/*,*/*;q=0.8",
            "Accept-Encoding": "gzip, deflate",
        }
        self._idle: list[_Transfer] = []  # list.append and pop are atomic: no lock needed
        self._resolved: dict[tuple[str, int], tuple[float, str]] = {}

    def close(self) -> None:
        """Close the handles (and their kept connections); every one is idle once requests have ended."""
        while self._idle:
            self._idle.pop().close()

    def follow(self, url: str, referer: str = "", max_size: int = 0) -> Chain:
        """GET `url`, following redirects up to the configured limit; never raises FetchError.
        `max_size`: bytes of a body kept (the rest cut: WARC-Truncated: length); 0: `max_size`'s setting."""
        chain = Chain()
        current = urldefrag(url)[0]
        for hop in range(self.cfg.max_redirects + 1):
            try:
                exchange = self._with_retries(current, referer, chain, max_size)
            except FetchError as exc:
                chain.error, chain.detail = exc.reason, exc.detail
                return chain
            chain.exchanges.append(exchange)
            location = exchange.header("location")
            if exchange.status not in REDIRECTS or not location:
                return chain
            if hop == self.cfg.max_redirects:
                break
            current = record_uri(urldefrag(urljoin(current, location.strip()))[0])
            if urlsplit(current).scheme not in ("http", "https"):
                chain.error, chain.detail = "unsupported_scheme", f"redirect to {current[:200]!r}"
                return chain
            if len(current) > MAX_URL:
                chain.error, chain.detail = "url_too_long", f"redirect to a URL of {len(current)} characters"
                return chain
        chain.error = "too_many_redirects"
        chain.detail = f"more than {self.cfg.max_redirects} redirects"
        return chain

    def _with_retries(self, url: str, referer: str, chain: Chain, max_size: int = 0) -> Exchange:
        """GET `url`, retrying transient failures with capped exponential backoff and jitter.

        Responses that are retried (a 503, a cut body) stay in the chain: the archive keeps what
        the server said. Retry-After (seconds or HTTP-date) is honoured up to retry_after_max.
        """
        retries = self.cfg.retries
        for attempt in range(1, retries + 2):
            chain.attempts = attempt
            try:
                exchange = self.get(url, referer, max_size)
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

    def get(self, url: str, referer: str = "", max_size: int = 0) -> Exchange:
        """One GET, no redirects, within the host's politeness limits."""
        with self.gate.slot(urlsplit(url).netloc.lower()):
            return self._get(url, referer, max_size)

    def _get(self, url: str, referer: str = "", max_size: int = 0) -> Exchange:
        """One GET, no redirects. Raises FetchError when no usable response arrived."""
        try:
            target = urllib3.util.parse_url(url)  # percent-encodes the path, IDNA-encodes the host
        except (urllib3.exceptions.LocationParseError, urllib3.exceptions.LocationValueError,
                UnicodeError, ValueError) as exc:
            raise FetchError("invalid_url", _short(exc)) from exc
        if target.scheme not in ("http", "https") or not target.host:
            raise FetchError("invalid_url", f"not an http(s) URL: {url!r}")
        headers = {**self.headers, "Referer": referer} if referer else self.headers
        pin = self._pin(target.host, target.port or (443 if target.scheme == "https" else 80))
        transfer = self._take()
        try:
            return transfer.run(url, target, headers, pin, self.clock(), max_size or self.cfg.max_size)
        finally:
            self._idle.append(transfer)

    def _take(self) -> _Transfer:
        """An idle handle, or a new one: as many handles as requests were ever in flight at once
        (not one a thread: a handle keeps a 128 KB buffer and its connections), the most recently
        used first, so that its kept connections serve again."""
        try:
            return self._idle.pop()
        except IndexError:
            return _Transfer(self.cfg, self.policy)

    def _pin(self, host: str, port: int) -> str:
        """The CURLOPT_RESOLVE entry for host:port, from addresses archiver resolved and checked
        itself (cached for DNS_TTL); "" for an IP literal, which curl does not resolve."""
        bare = host.strip("[]")
        try:
            ipaddress.ip_address(bare.split("%", 1)[0])
        except ValueError:
            pass
        else:
            self.policy.check(host, bare)
            return ""
        key = (host.lower(), port)
        now = time.monotonic()
        cached = self._resolved.get(key)
        if cached is None or cached[0] < now:
            addresses = self.policy.addresses(host, port)  # raises dns_error / blocked_address
            listed = ",".join(f"[{a}]" if ":" in a else a for a in addresses)
            cached = self._resolved[key] = (now + DNS_TTL, f"{host}:{port}:{listed}")
        return cached[1]


class _Transfer:
    """One libcurl handle, reused for request after request (libcurl keeps its connections alive),
    and the state of the request it is making (one at a time); its methods are the handle's
    callbacks, set once."""

    def __init__(self, cfg: Config, policy: AddressPolicy) -> None:
        self.cfg = cfg
        self.policy = policy
        self.pinned = ""
        curl = self.curl = pycurl.Curl()
        for option, value in (
            (pycurl.NOSIGNAL, 1),  # threads: no SIGALRM for timeouts
            (pycurl.PROXY, ""),  # proxies from the environment would bypass the address guard
            (pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS),
            (pycurl.FOLLOWLOCATION, 0),  # redirects are followed by Fetcher.follow, each hop recorded
            (pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1),  # the WARC records HTTP/1.x messages
            (pycurl.HTTP_CONTENT_DECODING, 0),  # the payload keeps its content encoding
            (pycurl.PATH_AS_IS, 1),  # send the path request_head records, unaltered
            (pycurl.CAINFO, str(cfg.root / cfg.ca_bundle) if cfg.ca_bundle else certifi.where()),
            (pycurl.CONNECTTIMEOUT_MS, max(1, int(cfg.connect_timeout * 1000))),
            (pycurl.TIMEOUT_MS, max(1, int(cfg.timeout * 1000))),
            # read_timeout: no byte at all for that long (libcurl counts whole seconds)
            (pycurl.LOW_SPEED_LIMIT, 1),
            (pycurl.LOW_SPEED_TIME, max(1, math.ceil(cfg.read_timeout))),
            (pycurl.OPENSOCKETFUNCTION, self._open_socket),
            (pycurl.HEADERFUNCTION, self._header),
            (pycurl.BUFFERSIZE, READ_SIZE),  # fewer write callbacks than libcurl's 16 KB
            (pycurl.MAXCONNECTS, KEEP_ALIVE),
            (pycurl.WRITEFUNCTION, self._write),
        ):
            curl.setopt(option, value)
        self.host = ""
        self.max_size = cfg.max_size  # of the request being made
        self.opened: list[socket.socket] = []  # sockets made for libcurl, which keeps duplicates of them
        self.watching = False  # the progress callback is on (requests made in the main thread)
        self.body: IO[bytes] = io.BytesIO()
        self._reset()

    def _reset(self) -> None:
        """Forget the last request (also one that ended in an exception)."""
        self.status_line = b""
        self.lines: list[bytes] = []
        self.complete = False  # the final response's header block has ended
        self.digest = hashlib.sha1()
        self.length = 0
        self.truncated = ""
        self.failure: FetchError | None = None  # a callback's refusal, raised after perform()
        self.raised: BaseException | None = None  # raised inside a callback (Ctrl-C too): raised again after
        self.head: _Head | None = None  # parsed when the body starts

    def close(self) -> None:
        self.curl.close()

    def run(self, url: str, target: urllib3.util.Url, headers: dict[str, str], pin: str,
            started: datetime, max_size: int) -> Exchange:
        curl = self.curl
        self.max_size = max_size
        if pin and pin != self.pinned:
            curl.setopt(pycurl.RESOLVE, [pin])  # curl connects only to addresses archiver checked
            self.pinned = pin
        main = threading.current_thread() is threading.main_thread()
        if main != self.watching:  # only the main thread gets Ctrl-C: see _progress
            curl.setopt(pycurl.NOPROGRESS, 0 if main else 1)
            if main:
                curl.setopt(pycurl.XFERINFOFUNCTION, self._progress)
            self.watching = main
        self._reset()
        self.body = body = _spool()
        self.host = target.host or ""
        curl.setopt(pycurl.URL, target.url)
        curl.setopt(pycurl.HTTPHEADER, [f"{k}: {v}" for k, v in headers.items()])
        began = time.monotonic()
        code, message = 0, ""
        try:
            try:
                curl.perform()  # a Ctrl-C in the main thread is raised from here (see _progress)
            except pycurl.error as exc:
                code, message = exc.args[0], str(exc.args[1])
            finally:
                while self.opened:
                    self.opened.pop().close()
            truncated = self._outcome(code, message, time.monotonic() - began)
            head = self.head or self._parse_head()
            return Exchange(
                url=url,
                started=started,
                request_head=_request_head(target, headers),
                protocol=head.protocol,
                status=head.status,
                reason=head.reason,
                headers=_stored_headers(head.received, head.chunked, self.length),
                body=body,
                body_length=self.length,
                payload_digest=sha1_label(self.digest),
                peer_address=str(curl.getinfo(pycurl.PRIMARY_IP) or ""),
                truncated=truncated,
                block_digest=sha1_label(head.block) if head.block is not None else "",
            )
        except BaseException:
            body.close()
            raise

    def _outcome(self, code: int, message: str, elapsed: float) -> str:
        """How the transfer ended: "" or a WARC-Truncated value; raises FetchError when there is
        no response to keep."""
        if self.raised is not None:
            raise self.raised
        if self.failure is not None:
            raise self.failure
        if code and not self.complete:
            raise _error(code, message)
        if not (self.head or self._parse_head()).status:
            raise FetchError("connection_error", "no HTTP response")
        if code == 0:
            return ""
        if code == pycurl.E_WRITE_ERROR and self.truncated == "length":
            return "length"
        out_of_time = code == pycurl.E_OPERATION_TIMEDOUT and elapsed >= self.cfg.timeout - 0.05
        if self.length == 0 and not out_of_time:
            raise _error(code, message)  # nothing of the body: no response worth keeping
        return "time" if out_of_time else "disconnect"

    # libcurl callbacks. An exception must not escape one: pycurl prints it to stderr and reports
    # a write error, which would read as a cut body. They keep it and end the transfer; run()
    # raises it once perform() has returned.

    def _open_socket(self, purpose: int, address: tuple[int, int, int, tuple[Any, ...]]) -> Any:
        family, socktype, protocol, sockaddr = address
        try:
            self.policy.check(self.host, str(sockaddr[0]))
            opened = socket.socket(family, socktype, protocol)
            # pycurl hands libcurl a dup() of its descriptor: this one is closed once perform() returns
            self.opened.append(opened)
            return opened
        except FetchError as exc:
            self.failure = exc
        except OSError as exc:
            self.failure = FetchError("connection_error", _short(exc))
        except BaseException as exc:
            self.raised = exc
        return pycurl.SOCKET_BAD

    def _progress(self, *_: int) -> int:
        """libcurl calls this about once a second even while nothing arrives, so that in the main
        thread (feeds are fetched there) Python can raise a Ctrl-C: libcurl itself cannot be
        interrupted, and a silent server would otherwise hold it until the deadline. Python raises
        it as the callback is entered; pycurl ends the transfer and perform() raises it."""
        return 0

    def _header(self, line: bytes) -> int | None:
        try:
            if line.startswith(b"HTTP/"):  # a status line: a new response (an interim 1xx is replaced)
                self.status_line, self.lines, self.complete = line, [], False
            elif line in (b"\r\n", b"\n"):
                self.complete = True
            else:
                self.lines.append(line)
        except BaseException as exc:
            self.raised = exc
            return 0  # not the line's length: libcurl ends the transfer
        return None

    def _parse_head(self) -> _Head:
        """The final response's status and headers; for a response whose headers are stored as
        received (not chunked), the record's block digest starts here and follows the body."""
        line = self.status_line
        code = int(line[9:12]) if line[:5] == b"HTTP/" and line[9:12].isdigit() else 0  # 0: not HTTP
        protocol, _, rest = line.decode("latin-1").rstrip("\r\n").partition(" ")
        reason = rest.partition(" ")[2]
        protocol = "HTTP/1.0" if protocol == "HTTP/1.0" else "HTTP/1.1"
        received = _parse_headers(self.lines)
        chunked = any(k.lower() == "transfer-encoding" and "chunked" in v.lower() for k, v in received)
        block = None if chunked else hashlib.sha1(response_head(protocol, code, reason, received))
        self.head = _Head(protocol, code, reason, received, chunked, block)
        return self.head

    def _write(self, data: bytes) -> int | None:
        try:
            head = self.head or self._parse_head()
            room = self.max_size - self.length
            if len(data) > room:
                data, self.truncated = data[:room], "length"
            self.body.write(data)
            self.digest.update(data)
            if head.block is not None:
                head.block.update(data)
            self.length += len(data)
        except OSError as exc:  # the temporary file: a full disk
            self.failure = FetchError("spool_error", _short(exc))
            return 0
        except BaseException as exc:
            self.raised = exc
            return 0
        return 0 if self.truncated else None  # 0 ends the transfer (CURLE_WRITE_ERROR)


@dataclass
class _Head:
    protocol: str
    status: int
    reason: str
    received: list[tuple[str, str]]
    chunked: bool  # then the stored headers change once the length is known: no digest as read
    block: Any  # hashlib sha1 of the record's block so far, or None


def _spool() -> IO[bytes]:
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # closed by the Exchange


TLS_ERRORS = frozenset({35, 53, 54, 58, 59, 60, 64, 66, 77, 80, 82, 83, 90, 91, 98})


def _error(code: int, message: str) -> FetchError:
    """A libcurl error code as archiver's failure reason."""
    if code == pycurl.E_OPERATION_TIMEDOUT:
        return FetchError("timeout", _short(message))
    if code in TLS_ERRORS:
        return FetchError("tls_error", _short(message))
    if code == pycurl.E_COULDNT_RESOLVE_HOST:
        return FetchError("dns_error", _short(message))
    if code == pycurl.E_URL_MALFORMAT or (code == pycurl.E_UNSUPPORTED_PROTOCOL and "0.9" not in message):
        return FetchError("invalid_url", _short(message))
    return FetchError("connection_error", _short(message))


def _parse_headers(lines: list[bytes]) -> list[tuple[str, str]]:
    """Header lines as received, in order; a folded line (obs-fold) continues the one before."""
    out: list[tuple[str, str]] = []
    for raw in lines:
        line = raw.decode("latin-1").rstrip("\r\n")
        if line[:1] in (" ", "\t") and out:
            name, value = out[-1]
            out[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if sep and name.strip():
            out.append((name.strip(), value.lstrip(" \t")))
    return out


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
    """The request as libcurl sends it: request line, Host, then our headers (tests/test_fetch.py
    holds the two to the same bytes)."""
    host = target.host or ""
    if ":" in host and not host.startswith("["):  # urllib3 keeps an IPv6 literal's brackets
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


def _short(exc: BaseException | str) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:197] + "..."
