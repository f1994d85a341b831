"""Watch feeds: capture their new items, again and again, until stopped, and check the items
captured before when they are due (capture/recheck.py), so that edits and removals are found too.

An item is never captured twice, across rounds and restarts: the metadata index says which
articles are captured (failed ones are tried again next round) and when each is checked next.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

from archiver.capture.recheck import Selection
from archiver.capture.run import CaptureReport, Event, capture, recapture
from archiver.config import Config
from archiver.errors import UsageError
from archiver.seeds.model import looks_like_url
from archiver.seeds.sources import source_label


def watch(cfg: Config, feeds: Iterable[str], every: float,
          on_round: Callable[[int, CaptureReport], None] | None = None,
          on_event: Callable[[Event], None] | None = None, rounds: int | None = None,
          sleep: Callable[[float], None] = time.sleep) -> int:
    """Capture the items of `feeds` (URLs or files) every `every` seconds, and check those of their
    items captured before that are due (`report.checks` of each round); returns rounds done."""
    feeds = list(feeds)
    if not feeds:
        raise UsageError("name at least one feed (a URL or a file)")
    urls = [f for f in feeds if looks_like_url(f)]
    files = [f for f in feeds if f not in urls]
    done = 0
    while rounds is None or done < rounds:
        report = capture(cfg, files, on_event=on_event, feeds=urls)
        if not report.interrupted:
            # the feed's items: their seeds' source is the feed, "#", the item's number
            sources = (*urls, *(source_label(cfg.root, Path(f)) for f in files))
            checked = recapture(cfg, Selection(sources=tuple(f"{s}#" for s in sources)), on_event=on_event)
            report.checks.update(checked.checks)
            report.interrupted = checked.interrupted
        done += 1
        if on_round is not None:
            on_round(done, report)
        if report.interrupted or (rounds is not None and done >= rounds):
            break
        sleep(every)
    return done
