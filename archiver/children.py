"""Child processes that never outlive archiver (pywb, capture and index workers)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int | None = None) -> None:
    """In a child: ask Linux to send SIGTERM when the parent dies.

    Linux sends it when the *thread* that started the child ends, so start children from a
    thread that lives as long as they should. With `parent` (the parent's pid, passed down), a
    parent that died before this call took effect is noticed too, and the child exits at once.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if parent is not None and os.getppid() != parent:
        os._exit(143)


def worker_init(parent: int) -> None:
    """Initializer for worker pools: gone with the parent; Ctrl-C is the parent's to handle."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent)
