from __future__ import annotations

import itertools
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pycurl
import pytest

from archiver.capture.run import capture
from archiver.collection import Collection
from archiver.config import Config
from archiver.fetch.client import _Transfer

from .support.newsite import NewsSite, seed_document

T = TypeVar("T")
DATA = Path(__file__).resolve().parent / "data"  # test files from other tools and real feeds (data/README.md)


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail any test that tries to connect outside 127.0.0.0/8 (or ::1), and resolve no names."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        if isinstance(address, tuple) and self.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0])
            if not (host.startswith("127.") or host in ("::1", "localhost")):
                raise AssertionError(f"test tried to connect outside loopback: {address}")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)
    real_getaddrinfo = socket.getaddrinfo

    def local_names_only(host: object, *args: object, **kwargs: object) -> object:
        # a DNS query for a real name would leave the machine: answer it here, as "unknown"
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in ("localhost", "::1") and not name.startswith("127.") and not _numeric(name):
            raise socket.gaierror(socket.EAI_NONAME, f"tests resolve no names outside loopback: {name}")
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", local_names_only)
    # libcurl connects in C, out of reach of the patch above: its sockets are checked where they
    # are opened (an exception cannot cross libcurl, so the socket is refused and the test failed after)
    real_open = _Transfer._open_socket
    outside: list[object] = []

    def loopback_sockets(self: _Transfer, purpose: int, address: tuple) -> object:  # type: ignore[type-arg]
        host = str(address[3][0])
        if not (host.startswith("127.") or host == "::1"):
            outside.append(address)
            return pycurl.SOCKET_BAD
        return real_open(self, purpose, address)

    monkeypatch.setattr(_Transfer, "_open_socket", loopback_sockets)
    yield
    assert not outside, f"test tried to connect outside loopback: {outside}"


def _numeric(name: str) -> bool:
    """IP literals in any spelling (2130706433, 0x7f.1) resolve without a DNS query."""
    try:
        socket.inet_aton(name)
    except OSError:
        try:
            socket.inet_pton(socket.AF_INET6, name)
        except OSError:
            return False
    return True


@pytest.fixture(scope="session")
def site() -> Iterator[NewsSite]:
    server = NewsSite()
    yield server
    server.stop()


class Closing(Protocol):
    def __call__(self, thing: T) -> T: ...


@pytest.fixture
def closing() -> Iterator[Closing]:
    """`closing(x)` is x, closed when the test ends (fetched exchanges and chains hold temporary files)."""
    opened: list[Any] = []

    def keep(thing: T) -> T:
        opened.append(thing)
        return thing

    yield keep
    for thing in opened:
        thing.close()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    return path


@pytest.fixture
def cfg(root: Path) -> Config:
    # one process: library tests start no worker processes (the CLI tests run the default, one per core)
    return Config(root=root, allow_private=True, timeout=5, connect_timeout=2, read_timeout=2, workers=4,
                  processes=1, **FAST)


# No politeness delay and short backoffs, for loopback test sites.
FAST = {"host_delay": 0.0, "host_concurrency": 8, "backoff_base": 0.01, "backoff_max": 0.05, "retry_after_max": 0.2}
FAST_YAML = "archiver:\n" + "".join(f"  {k}: {v}\n" for k, v in FAST.items())


@pytest.fixture
def clock() -> Callable[[], datetime]:
    """A clock that ticks one second per call, from 2024-01-02T03:04:05Z."""
    ticks = itertools.count()
    start = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    return lambda: start + timedelta(seconds=next(ticks))


@pytest.fixture
def new_id() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"<urn:uuid:00000000-0000-4000-8000-{next(counter):012d}>"


def capture_pages(cfg: Config, site: NewsSite, pages: list[str], name: str = "news") -> Collection:
    """A collection made by capturing a seed document for each of the site's `pages`."""
    seeds = cfg.root / "seeds"
    seeds.mkdir(exist_ok=True)
    for n, page in enumerate(pages):
        (seeds / f"{n}.txt").write_text(seed_document(site.url + page, f"t{n}", 1696553101000 + n))
    capture(cfg.replace(collection=name), [str(seeds)])
    return Collection.at(cfg.root, name)
