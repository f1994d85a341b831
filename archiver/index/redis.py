"""The replay index in Redis, where any number of pywb front-ends can share it.

pywb 2.10.0 reads an index source `redis://HOST:PORT/DB/KEY` (RedisIndexSource,
pywb/warcserver/index/indexsource.py): KEY is a sorted set whose members are the CDXJ lines, every
score 0, so that Redis keeps them in byte order and a lookup is one
`ZRANGEBYLEX KEY [<start key> (<end key>`. pywb opens the connection with the redis client it pins
(redis-py 2.10.6), from `redis://HOST:PORT/DB`; the fifth '/'-separated part of the URL is the key,
so a key can hold no '/'.

`load_redis` loads the collection's `indexes/index.cdxj` into a new temporary key, in pipelined
chunks, then renames it over KEY in one MULTI/EXEC: front-ends see the old index or the new one,
never a mix or an empty set. The temporary key expires by itself if the load dies half-way.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from archiver.collection import Collection, locked
from archiver.errors import ReplayIndexError, UsageError
from archiver.index.pywbconfig import set_collection_index

DEFAULT_KEY = "archiver:{coll}:cdxj"  # {coll}: the collection's name
DEFAULT_PORT = 6379
MEMBERS_PER_ZADD = 5000
ZADDS_PER_ROUND_TRIP = 4  # about 5 MB of CDXJ in flight at a time
LOADING_TTL = 3600  # seconds a temporary key outlives a load that died
CONNECT_TIMEOUT = 5.0
COMMAND_TIMEOUT = 120.0  # RENAME over a large old set frees it, which takes a while


@dataclass(frozen=True)
class RedisTarget:
    """Where a collection's index goes in Redis: the parts of a `redis://` URL, as pywb reads it."""

    netloc: str  # [:password@]host[:port], kept as written: pywb passes it on as it is
    host: str
    port: int
    db: int
    key: str

    @property
    def base_url(self) -> str:
        """The URL both archiver and pywb connect with (redis-py's from_url)."""
        return f"redis://{self.netloc}/{self.db}"

    @property
    def pywb_url(self) -> str:
        """The `index:` value for pywb's config.yaml."""
        return f"{self.base_url}/{self.key}"

    @property
    def display(self) -> str:
        """The URL without its password, for messages."""
        return f"redis://{self.host}:{self.port}/{self.db}/{self.key}"


@dataclass(frozen=True)
class RedisReport:
    lines: int  # CDXJ lines read
    members: int  # members of the key after the load (identical lines count once)
    target: RedisTarget
    index: str = ""  # the `index:` value in config.yaml ("" when not configured)
    config_changed: bool = False  # config.yaml was changed: a running replay must restart to read it


def parse_redis_url(url: str, collection: str) -> RedisTarget:
    """Read `redis://[:PASSWORD@]HOST[:PORT][/DB[/KEY]]` (DB 0 and key archiver:<collection>:cdxj by
    default; `{coll}` in KEY becomes the collection's name)."""
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORT
    except ValueError as exc:
        raise UsageError(f"malformed Redis URL {url!r}: {exc}") from exc
    if parts.scheme != "redis":
        raise UsageError(f"unsupported Redis URL {url!r}: pywb 2.10.0 reads Redis indexes from redis:// URLs only "
                         "(no rediss:// or unix://), as in redis://127.0.0.1:6379/0")
    if not parts.hostname:
        raise UsageError(f"malformed Redis URL {url!r}: no host (write it as redis://HOST:PORT/DB)")
    if parts.query or parts.fragment:
        raise UsageError(f"malformed Redis URL {url!r}: pywb cannot read a ?query or #fragment here; "
                         "give the database and key as the path: redis://HOST:PORT/DB/KEY")
    if parts.username:
        raise UsageError(f"Redis URL {url!r} names a user: pywb 2.10.0's client sends a password only "
                         "(redis://:PASSWORD@HOST:PORT/DB)")
    path = parts.path.strip("/")
    db_text, _, key = path.partition("/")
    if db_text and not db_text.isdigit():
        raise UsageError(f"malformed Redis URL {url!r}: the database after the host must be a number, "
                         f"not {db_text!r}")
    key = (key or DEFAULT_KEY).replace("{coll}", collection)
    if "/" in key or "{" in key or "}" in key or any(c.isspace() for c in key):
        raise UsageError(f"Redis key {key!r} cannot be read by pywb: no '/', braces or spaces")
    return RedisTarget(netloc=parts.netloc, host=parts.hostname, port=port, db=int(db_text or 0), key=key)


def load_redis(collection: Collection, url: str, *, configure: bool = True) -> RedisReport:
    """Load the collection's CDXJ into Redis at `url`, replacing what the key held, and with
    `configure` point pywb's replay of the collection at it in the root's config.yaml."""
    target = parse_redis_url(url, collection.name)
    if not collection.cdxj_path.exists():
        raise ReplayIndexError(f"collection {collection.name!r} has no {collection.cdxj_path.name} to load "
                               f"into Redis (run 'archiver index -c {collection.name}')")
    with locked(collection):
        lines, members = load_into(target, collection.cdxj_path)
        report = RedisReport(lines=lines, members=members, target=target)
        if not configure:
            return report
        changed = set_collection_index(collection.root, collection.name, target.pywb_url)
        return RedisReport(lines=lines, members=members, target=target, index=target.pywb_url,
                           config_changed=changed)


def _redis() -> Any:
    """redis-py, imported when a Redis index is used (it takes ~0.1 s, and most runs never need it)."""
    import redis

    return redis


def load_into(target: RedisTarget, path: Path) -> tuple[int, int]:
    """Connect to `target` and replace its key with the CDXJ lines of `path`; (lines read, members)."""
    client = connect(target)
    try:
        return load_lines(client, target.key, path)
    except _redis().exceptions.RedisError as exc:
        raise redis_error(target, exc) from exc


def connect(target: RedisTarget) -> Any:
    """A client for `target`, checked with PING: a clear error now rather than half-way through."""
    redis = _redis()
    client = redis.StrictRedis.from_url(target.base_url, socket_connect_timeout=CONNECT_TIMEOUT,
                                        socket_timeout=COMMAND_TIMEOUT)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        raise redis_error(target, exc) from exc
    return client


def redis_error(target: RedisTarget, exc: Exception) -> ReplayIndexError:
    where = f"Redis at {target.host}:{target.port}"
    errors = _redis().exceptions
    if isinstance(exc, errors.ConnectionError | errors.TimeoutError):
        return ReplayIndexError(f"cannot reach {where}: {exc} (is redis-server running there, "
                                "and is the URL right?)")
    return ReplayIndexError(f"{where} answered with an error (key {target.key!r}): {exc}")


def load_lines(client: Any, key: str, path: Path) -> tuple[int, int]:
    """Fill a temporary key from `path`, then rename it over `key`; (lines read, members)."""
    kind = client.type(key)
    kind = kind.decode() if isinstance(kind, bytes) else kind
    if kind not in ("none", "zset"):
        raise ReplayIndexError(f"Redis key {key!r} holds a {kind}, not a CDXJ index: choose another key "
                               "(redis://HOST:PORT/DB/KEY)")
    loading = f"{key}:loading:{secrets.token_hex(6)}"
    lines = 0
    try:
        with path.open("rb") as src:
            for chunks in _batched(_members(src), MEMBERS_PER_ZADD, ZADDS_PER_ROUND_TRIP):
                pipe = client.pipeline(transaction=False)
                for chunk in chunks:
                    pieces: list[Any] = []
                    for member in chunk:
                        pieces += (0, member)  # score 0: Redis orders equal scores by the member's bytes
                    pipe.execute_command("ZADD", loading, *pieces)  # ZADD key score member ..., any redis-py
                    lines += len(chunk)
                pipe.expire(loading, LOADING_TTL)
                pipe.execute()
        if lines == 0:
            client.delete(key)
            return 0, 0
        swap = client.pipeline(transaction=True)  # MULTI/EXEC: no moment with the key missing or expiring
        swap.rename(loading, key)
        swap.persist(key)
        swap.execute()
    except BaseException:
        with contextlib.suppress(_redis().exceptions.RedisError):  # else it expires by itself
            client.delete(loading)
        raise
    return lines, int(client.zcard(key))


def _members(src: Any) -> Iterator[bytes]:
    for raw in src:
        line = raw.rstrip(b"\r\n")
        if line:
            yield line


def _batched(members: Iterator[bytes], size: int, per_trip: int) -> Iterator[list[list[bytes]]]:
    trip: list[list[bytes]] = []
    chunk: list[bytes] = []
    for member in members:
        chunk.append(member)
        if len(chunk) == size:
            trip.append(chunk)
            chunk = []
            if len(trip) == per_trip:
                yield trip
                trip = []
    if chunk:
        trip.append(chunk)
    if trip:
        yield trip
