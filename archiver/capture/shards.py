"""Seeds grouped into shards by host, and shards cut into batches: the units of capture work.

A shard is a stable hash of the host (host:port), so a host's seeds always land in the same shard,
on this machine or a cluster, run after run. A batch is up to `batch_size` seeds (and requisites
of their pages, capture/requisites.py) of one shard; its key is a hash of its URLs and of when it
was formed: a task that runs it again (Dask re-runs a task whose worker died) writes the same
output names, and no other batch ever does. At most one batch per shard is in flight: a host is
never fetched from two workers at once, and the per-host politeness limits inside a batch hold for
the whole capture.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union
from urllib.parse import urlsplit

from archiver.seeds.model import Seed

if TYPE_CHECKING:
    from archiver.capture.recheck import Recheck
    from archiver.capture.requisites import Requisite

# what a batch captures: seeds, the requisites of their pages, and captured articles checked again
Work = Union["Seed", "Requisite", "Recheck"]


def host_of(url: str) -> str:
    """host:port, the unit of politeness."""
    return urlsplit(url).netloc.rsplit("@", 1)[-1].lower()


def shard_of(url: str, shards: int) -> int:
    """The shard of a URL's host; stable across runs, processes and machines (unlike hash())."""
    digest = hashlib.blake2b(host_of(url).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def batch_key(items: list[Work], salt: str = "") -> str:
    """A hash of the batch's URLs and `salt` (what tells apart two batches of the same URLs)."""
    digest = hashlib.blake2b(salt.encode("utf-8"), digest_size=6)
    for item in items:
        digest.update(item.url.encode("utf-8") + b"\n")
    return digest.hexdigest()


@dataclass(frozen=True)
class Batch:
    shard: int
    key: str
    items: list[Work]

    @property
    def name(self) -> str:
        """What the batch's outputs are called (WARC files and metadata fragment)."""
        return f"{self.shard:04d}-{self.key}"

    @property
    def hosts(self) -> int:
        return len({host_of(item.url) for item in self.items})


@dataclass
class _Buffer:
    items: list[Work] = field(default_factory=list)
    since: float = 0.0  # when its oldest seed arrived


class Batcher:
    """Seeds in, batches out.

    A shard's batch leaves when it is full, when its oldest seed has waited `max_wait` seconds
    (seeds that trickle in, from a feed or stdin, are not held back for long), or when the input
    has ended; never while the shard has a batch in flight.
    """

    def __init__(self, shards: int, batch_size: int, max_wait: float,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.shards = shards
        self.batch_size = batch_size
        self.max_wait = max_wait
        self.now = now
        self.buffers: dict[int, _Buffer] = {}
        self.buffered = 0
        # Two batches of the same URLs (a requisite fetched again, a seed retried) formed in the same
        # second would get the same names, and the second would replace the first's files: each
        # batch's key also hashes this Batcher's own nonce and the batch's number.
        self.nonce = uuid.uuid4().hex
        self.formed = 0

    def add(self, item: Work) -> None:
        shard = shard_of(item.url, self.shards)
        buffer = self.buffers.get(shard)
        if buffer is None:
            buffer = self.buffers[shard] = _Buffer(since=self.now())
        buffer.items.append(item)
        self.buffered += 1

    def take(self, busy: set[int], ended: bool, limit: int, crowded: bool = False) -> list[Batch]:
        """Up to `limit` batches ready to run, from shards not in `busy`.

        `crowded`: the buffers are full, so the biggest shards leave even before they are full.
        """
        now = self.now()
        ready = [
            shard for shard, buffer in self.buffers.items()
            if shard not in busy and (ended or crowded or len(buffer.items) >= self.batch_size
                                      or now - buffer.since >= self.max_wait)
        ]
        ready.sort(key=lambda shard: (-len(self.buffers[shard].items), shard))
        return [self._cut(shard) for shard in ready[:limit]]

    def _cut(self, shard: int) -> Batch:
        buffer = self.buffers[shard]
        items, rest = buffer.items[:self.batch_size], buffer.items[self.batch_size:]
        if rest:
            buffer.items, buffer.since = rest, self.now()
        else:
            del self.buffers[shard]
        self.buffered -= len(items)
        self.formed += 1
        return Batch(shard, batch_key(items, f"{self.nonce}-{self.formed}"), items)

    def drop(self) -> int:
        """Forget every buffered seed (Ctrl-C); returns how many."""
        dropped, self.buffers, self.buffered = self.buffered, {}, 0
        return dropped
