"""The WARC files of one capture batch, written by its threads, and how a fetch becomes records.

SeedEnv is what the threads of a batch share; it travels with the batch to wherever it runs.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from archiver.collection import Collection
from archiver.config import Config
from archiver.fetch.client import Chain, Exchange, Fetcher
from archiver.index.links import Previous
from archiver.warc.record import Written, warc_date
from archiver.warc.write import (
    RecordSpec,
    WarcFile,
    encode_record,
    request_spec,
    response_spec,
    revisit_spec,
    warcinfo_fields,
)


@dataclass
class SeedEnv:
    """What the threads capturing one batch share: settings, the fetcher, the clock and ID source."""

    cfg: Config
    collection: Collection
    fetcher: Fetcher
    clock: Callable[[], datetime]
    new_id: Callable[[], str]


class SharedFile:
    """A WARC file written by several threads: one record at a time."""

    def __init__(self, file: WarcFile) -> None:
        self.file = file
        self.lock = threading.Lock()
        self.users = 0
        self.retiring = False

    def write(self, spec: RecordSpec) -> Written:
        encoded = encode_record(spec)  # outside the lock: compressing is most of the work
        with self.lock:
            return self.file.append(encoded)

    def flush(self) -> None:
        with self.lock:
            self.file.flush()


class Outputs:
    """The WARC files of one batch: `<base>-000.warc.gz`, `-001`, ... (a new one past warc_max_size).

    The threads of a batch share the current file, so a batch makes one file, not one per thread;
    a file is closed once it is full and no seed is still writing to it.
    """

    def __init__(self, env: SeedEnv, base: str, directory: Path) -> None:
        self.env = env
        self.base = base
        self.directory = directory  # where files are written (the archive itself, or a spool to upload from)
        self._lock = threading.Lock()
        self._current: SharedFile | None = None
        self._serial = itertools.count()
        self.finished: list[Path] = []  # complete files, in order

    @contextmanager
    def session(self) -> Iterator[SharedFile]:
        """The file one seed writes its records to."""
        with self._lock:
            out = self._current
            if out is None or out.file.size >= self.env.cfg.warc_max_size:
                if out is not None:
                    out.retiring = True
                    if out.users == 0:
                        self.finished.append(out.file.close())
                out = self._current = self._new_file()
            out.users += 1
        try:
            yield out
        finally:
            with self._lock:
                out.users -= 1
                if out.retiring and out.users == 0:
                    self.finished.append(out.file.close())

    def _new_file(self) -> SharedFile:
        env = self.env
        name = f"{self.base}-{next(self._serial):03d}.warc.gz"
        return SharedFile(WarcFile(self.directory, name, env.clock, env.new_id,
                                warcinfo_fields({"isPartOf": env.collection.name})))

    def close(self) -> list[Path]:
        with self._lock:
            out, self._current = self._current, None
            if out is not None and not out.retiring:
                self.finished.append(out.file.close())
        return self.finished


def repeats(exchange: Exchange | None, previous: Previous | None) -> bool:
    """Is `exchange`'s payload byte for byte the one `previous` stored (so a revisit record will do)?"""
    return (previous is not None and exchange is not None and not exchange.truncated
            and exchange.body_length > 0 and exchange.payload_digest == previous.digest)


def write_chain(out: SharedFile, chain: Chain, new_id: Callable[[], str],
                previous: Previous | None = None) -> tuple[list[Written], bool]:
    """Response and request records of every exchange; the final one as a revisit of `previous`
    when its payload is the same. Returns the responses (and revisit), and whether it was one."""
    written = []
    final = chain.final
    revisit = repeats(final, previous)
    for exchange in chain.exchanges:
        date = warc_date(exchange.started)
        if exchange is final and revisit and previous is not None:
            record = out.write(revisit_spec(exchange, new_id(), date, previous.uri, previous.date))
        else:
            record = out.write(response_spec(exchange, new_id(), date))
        out.write(request_spec(exchange, new_id(), date, record.record_id))
        written.append(record)
    return written, revisit
