"""Watch feeds: capture their new items, again and again, until stopped.

An item is never captured twice, across rounds and restarts: the metadata index says which
articles are captured (failed ones are tried again next round).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable

from archiver.capture.run import CaptureReport, Event, capture
from archiver.config import Config
from archiver.errors import UsageError
from archiver.seeds.model import looks_like_url

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.I)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_every(text: str) -> float:
    """'15m', '1h', '30s', '2d' or plain seconds."""
    m = _DURATION.match(text)
    if not m:
        raise UsageError(f"cannot read the interval {text!r}: use e.g. 30s, 15m, 1h")
    seconds = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if seconds < 1:
        raise UsageError("the interval must be at least one second")
    return seconds


def watch(cfg: Config, feeds: Iterable[str], every: float, collection_name: str | None = None,
          on_round: Callable[[int, CaptureReport], None] | None = None,
          on_event: Callable[[Event], None] | None = None, rounds: int | None = None,
          sleep: Callable[[float], None] = time.sleep) -> int:
    """Capture the items of `feeds` (URLs or files) every `every` seconds; returns rounds done."""
    feeds = list(feeds)
    if not feeds:
        raise UsageError("name at least one feed (a URL or a file)")
    urls = [f for f in feeds if looks_like_url(f)]
    files = [f for f in feeds if f not in urls]
    done = 0
    while rounds is None or done < rounds:
        report = capture(cfg, files, collection_name, on_event=on_event, feeds=urls)
        done += 1
        if on_round is not None:
            on_round(done, report)
        if report.interrupted or (rounds is not None and done >= rounds):
            break
        sleep(every)
    return done
