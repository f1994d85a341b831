"""Politeness: at most N requests in flight per host, and a minimum delay between the starts of
two requests to the same host. Many hosts still proceed in parallel."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class HostGate:
    def __init__(self, per_host: int, delay: float, sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.per_host = per_host
        self.delay = delay
        self._sleep = sleep
        self._now = monotonic
        self._lock = threading.Condition()
        self._in_flight: dict[str, int] = {}
        self._next_start: dict[str, float] = {}

    @contextmanager
    def slot(self, host: str) -> Iterator[None]:
        """Hold one of `host`'s request slots, starting no sooner than the delay allows."""
        with self._lock:
            while self._in_flight.get(host, 0) >= self.per_host:
                self._lock.wait()
            self._in_flight[host] = self._in_flight.get(host, 0) + 1
            start = max(self._now(), self._next_start.get(host, 0.0))
            self._next_start[host] = start + self.delay
        try:
            wait = start - self._now()
            if wait > 0:
                self._sleep(wait)
            yield
        finally:
            with self._lock:
                remaining = self._in_flight[host] - 1
                if remaining:
                    self._in_flight[host] = remaining
                else:  # forget idle hosts, so that memory stays flat over millions of hosts
                    del self._in_flight[host]
                    if self._next_start.get(host, 0.0) <= self._now():
                        self._next_start.pop(host, None)
                self._lock.notify_all()
