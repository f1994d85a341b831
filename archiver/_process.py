"""Child processes that never outlive archiver (pywb, capture and index workers)."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
M_ARENA_MAX = -8  # glibc mallopt parameter
MALLOC_ARENAS = 2


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library's functions, looked up once (memory is given back after every file indexed);
    None off Linux. Through the running program's own symbols, which include the C library's:
    ctypes.util.find_library("c") runs ldconfig in a subprocess, in every worker process."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def die_with_parent(parent: int | None = None) -> None:
    """In a child: ask Linux to send SIGTERM when the parent dies.

    Linux sends it when the *thread* that started the child ends, so start children from a
    thread that lives as long as they should. With `parent` (the parent's pid, passed down), a
    parent that died before this call took effect is noticed too, and the child exits at once.
    """
    libc = _libc()
    if libc is not None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if parent is not None and os.getppid() != parent:
        os._exit(143)


def fewer_malloc_arenas() -> None:
    """Cap glibc's malloc at `MALLOC_ARENAS` arenas in this process.

    glibc gives busy threads arenas of their own (up to 8 a core), and each keeps the memory its
    threads freed: capture's many fetch threads left a process holding tens of MB it no longer
    used (bench/README.md, "Measurements behind the code").
    Call it early, before the threads start; elsewhere than glibc it does nothing.
    """
    libc = _libc()
    with contextlib.suppress(AttributeError):  # not glibc (musl has no mallopt)
        if libc is not None:
            libc.mallopt(M_ARENA_MAX, MALLOC_ARENAS)


def release_free_memory() -> None:
    """Give the heap's free memory back to the system (glibc keeps what a big task freed)."""
    libc = _libc()
    with contextlib.suppress(AttributeError):  # not glibc (musl has no malloc_trim)
        if libc is not None:
            libc.malloc_trim(0)


def worker_init(parent: int) -> None:
    """Initializer for worker pools: gone with the parent; Ctrl-C is the parent's to handle."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fewer_malloc_arenas()
    die_with_parent(parent)
