"""Stopping the processes tests start: politely first, then for good."""

from __future__ import annotations

import signal
import subprocess
from typing import Any


def stop(process: subprocess.Popen[Any], sig: int | None = signal.SIGTERM, grace: float = 10.0) -> None:
    """Send `sig` (None: it was asked to stop another way), wait up to `grace` seconds, then kill."""
    if sig is not None and process.poll() is None:
        process.send_signal(sig)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
