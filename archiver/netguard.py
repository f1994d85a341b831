"""Which addresses capture may connect to, and connections that connect only there.

Untrusted seeds must not make archiver reach loopback, private or link-local services (cloud
metadata at 169.254.169.254). The check happens at connect time, on the address actually used,
so redirects, DNS answers and odd IP spellings (2130706433, 0x7f.1) are all covered.
"""

from __future__ import annotations

import contextlib
import heapq
import ipaddress
import itertools
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .errors import FetchError

Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError("dns_error", f"cannot resolve {host}: {exc}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_public(address: str) -> bool:
    """True for globally routable unicast addresses only."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d connects to a.b.c.d
            return is_public(str(ip.ipv4_mapped))
        embedded = ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and not is_public(str(embedded)):
            return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


@dataclass
class AddressPolicy:
    allow_private: bool = False
    resolver: Resolver = system_resolver

    def check(self, host: str, address: str) -> None:
        if not self.allow_private and not is_public(address):
            raise FetchError(
                "blocked_address",
                f"{host} resolves to {address}, a private/loopback/link-local address "
                "(use --allow-private to capture such hosts)",
            )

    def connect(self, host: str, port: int, timeout: float | None, options: Any) -> tuple[socket.socket, str]:
        addresses = self.resolver(host, port)
        if not addresses:
            raise FetchError("dns_error", f"no address for {host}")
        for address in addresses:
            self.check(host, address)
        error: OSError | None = None
        for address in addresses:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                for option in options or ():
                    sock.setsockopt(*option)
                sock.settimeout(timeout)
                sock.connect((address, port))
                return sock, address
            except OSError as exc:
                sock.close()
                error = exc
        assert error is not None
        raise error


class Deadline:
    """A total time limit for one request: when it passes, the request's socket is shut down,
    which wakes any read blocked on it (a server dripping one byte a second included)."""

    _current = threading.local()

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self.peer_address = ""  # the address the request went to, set by the connection
        self.done = False
        self._lock = threading.Lock()
        self._targets: list[Callable[[], None]] = []

    def __enter__(self) -> Deadline:
        Deadline._current.value = self
        _WATCHDOG.add(time.monotonic() + self.seconds, self)
        return self

    def __exit__(self, *exc: object) -> None:
        Deadline._current.value = None
        with self._lock:
            self.done = True  # the watchdog drops it when its time comes
            self._targets.clear()

    @classmethod
    def current(cls) -> Deadline | None:
        return getattr(cls._current, "value", None)

    def watch(self, stop: Callable[[], None]) -> None:
        with self._lock:
            if not self.expired:
                self._targets.append(stop)
                return
        stop()

    def _fire(self) -> None:
        with self._lock:
            if self.done:
                return
            self.expired = True
            targets, self._targets = self._targets, []
        for stop in targets:
            stop()


class _Watchdog:
    """One thread for every deadline (a timer thread per request would cost more than the
    request): a heap of expiry times, woken when an earlier one arrives."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._wake = threading.Condition()
        self._count = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, when: float, deadline: Deadline) -> None:
        with self._wake:
            heapq.heappush(self._heap, (when, next(self._count), deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="deadlines", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is deadline:
                self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._heap and self._heap[0][2].done:  # finished in time: forget it
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wake.wait(30)
                    if not self._heap:
                        self._thread = None
                        return  # idle: the next add() starts a new thread
                    continue
                when, _, deadline = self._heap[0]
                wait = when - time.monotonic()
                if wait > 0:
                    self._wake.wait(min(wait, 1.0))  # wake at least each second to drop done ones
                    continue
                heapq.heappop(self._heap)
            deadline._fire()


_WATCHDOG = _Watchdog()


def _shutdown(sock: socket.socket | None) -> None:
    if sock is None:
        return
    with contextlib.suppress(OSError):  # already closed: nothing to wake
        sock.shutdown(socket.SHUT_RDWR)


class _Guarded:
    """Mixin for urllib3 connections: connect through the policy, obey the current deadline."""

    policy: AddressPolicy
    peer_address: str = ""

    def _new_conn(self) -> socket.socket:
        conn: Any = self
        sock, self.peer_address = self.policy.connect(
            conn._dns_host, conn.port, conn.timeout, conn.socket_options
        )
        deadline = Deadline.current()
        if deadline is not None:  # http.client connects lazily, inside request()
            deadline.peer_address = self.peer_address
        return sock

    def request(self, *args: Any, **kwargs: Any) -> Any:
        deadline = Deadline.current()
        if deadline is not None:
            deadline.peer_address = self.peer_address
            deadline.watch(lambda: _shutdown(getattr(self, "sock", None)))
        return super().request(*args, **kwargs)  # type: ignore[misc]


def pool_classes(policy: AddressPolicy) -> dict[str, type]:
    """urllib3 pool classes whose connections are bound to `policy`."""
    http_conn = type("GuardedHTTPConnection", (_Guarded, HTTPConnection), {"policy": policy})
    https_conn = type("GuardedHTTPSConnection", (_Guarded, HTTPSConnection), {"policy": policy})
    return {
        "http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
        "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
    }

