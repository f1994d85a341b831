"""Replay: serve the archive root with pywb, in a process of its own.

The process runs `archiver.replay.server` (pywb's replay app, served so that keep-alive requests
are answered without pywb's 40 ms stall; see that module). pywb monkey-patches sockets and threads
with gevent when it is imported; keeping it in its own process keeps that away from archiver's
capture code, and no other module of archiver imports pywb.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from archiver._process import die_with_parent
from archiver.collection import Collection
from archiver.config import Config
from archiver.errors import ReplayError, UsageError
from archiver.index.metadata import Article, Store
from archiver.replay.templates import install_templates

SERVER_MODULE = "archiver.replay.server"


@dataclass
class ReplayServer:
    """A running replay server (pywb); stop it with `stop()` or use it as a context manager."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    log_path: Path | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)

    def __enter__(self) -> ReplayServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def replay(cfg: Config, host: str = "127.0.0.1", port: int = 8080, startup_timeout: float = 60.0,
                 log_path: Path | None = None) -> ReplayServer:
    """`archiver replay`: start pywb over `cfg.root` and wait until it answers; the caller stops it."""
    if not (cfg.root / "collections").is_dir():
        raise UsageError(f"{cfg.root} is not an archive root (run 'archiver init' there)")
    install_templates(cfg.root)  # roots made before a template fix get it too
    # this process binds the port and hands the listening socket to the server: a port in use is
    # said here, and whatever answers below is the server, not another program holding the port
    listener = _listen(host, port)
    port = listener.getsockname()[1]
    # -P: the root is the child's working directory, and nothing in it may shadow a module
    args = [sys.executable, "-P", "-m", SERVER_MODULE, "--fd", str(listener.fileno()), "--directory", str(cfg.root)]
    with listener, log_path.open("ab") if log_path else open(os.devnull, "wb") as log:  # the child keeps copies
        process = subprocess.Popen(args, cwd=cfg.root, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   pass_fds=(listener.fileno(),), preexec_fn=die_with_parent)
    server = ReplayServer(process, host, port, log_path)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ReplayError(f"pywb exited with status {process.returncode} on start"
                              + (f" (see {log_path})" if log_path else ""))
        try:
            with urllib.request.urlopen(server.url + "/", timeout=2):
                return server
        except urllib.error.HTTPError:
            return server  # it answered
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise ReplayError(f"pywb did not answer on {server.url} within {startup_timeout:g} s")


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: any free one); ReplayError when it cannot be had."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                              flags=socket.AI_PASSIVE)[0]
        listener = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ReplayError(f"cannot listen on {host}: {exc}") from exc
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(128)
    except OSError as exc:
        listener.close()
        busy = " (another program listens there: choose another with --port)" if exc.errno == errno.EADDRINUSE else ""
        raise ReplayError(f"cannot listen on {host} port {port}: {exc.strerror or exc}{busy}") from exc
    listener.set_inheritable(True)
    return listener


def replay_urls(cfg: Config, base_url: str) -> list[tuple[str, str]]:
    """(replay URL, label) of every archived article of the collection."""
    collection = Collection.of(cfg)
    if not collection.db_path.exists():
        return []
    with Store(collection.db_path, readonly=True) as store:
        return [(base_url + a.replay_path, _label(a)) for a in store.articles() if a.replay_path]


def _label(article: Article) -> str:
    title = article.title or article.page_title or article.url
    return f"{title} (feed copy; live page: {article.error})" if article.error else title
