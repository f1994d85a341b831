"""`archiver replay` run as a user runs it, in a subprocess on a free port of 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .processes import stop


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def replay_process(root: Path, enough: Callable[[list[str]], bool]) -> Iterator[tuple[str, list[str]]]:
    """Start `archiver replay`, read what it prints until `enough(lines)`; yield its base URL and those
    lines; stop it with Ctrl-C (as a user does) and check that pywb stopped with it."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "archiver", "--root", str(root), "replay", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (lines and enough(lines)):
            line = process.stdout.readline()  # the first is printed once pywb answers, or the error
            if not line:
                break
            lines.append(line.rstrip("\n"))
        assert lines and lines[0].startswith("replay running at"), lines
        yield f"http://127.0.0.1:{port}", lines
    finally:
        stop(process, signal.SIGINT, grace=15)
        if process.stdout is not None:
            process.stdout.close()
    with pytest.raises(OSError):  # pywb stopped with it
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


@contextmanager
def replay_server(root: Path) -> Iterator[str]:
    """Replay running; yields its base URL."""
    with replay_process(root, lambda lines: True) as (base, _):
        yield base


@contextmanager
def replay_cli(root: Path) -> Iterator[tuple[str, list[str]]]:
    """Replay running, with the lines it printed up to the first feed-copy article (so the collection
    must have one)."""
    with replay_process(root, lambda lines: any("feed copy" in line for line in lines)) as running:
        yield running
