"""One exception tree for the whole library, each kind with the exit status cli.py turns it into.

| status | meaning |
|---|---|
| 0 | done: every seed captured, nothing wrong found |
| 1 | done, in part: some seeds failed (listed with reasons), or `verify`, `index` or `wacz` found damaged files |
| 2 | usage: the command line, config.yaml or the archive root is wrong; nothing was done |
| 3 | file or storage I/O: a file, the disk or the object store could not be read or written |
| 4 | network or cluster: the Dask scheduler, a worker process or a server archiver needs failed |
| 5 | replay: pywb, or the replay index it reads (zipnum, Redis), could not be started, built or reached |
| 6 | internal: a bug in archiver (a traceback is printed; please report it) |
| 130 | interrupted (Ctrl-C, SIGTERM): what was done is kept, and the same command resumes |

Failing seeds are not errors: capture reports them and goes on; only what stops a command is raised.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Sequence
from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    PARTIAL = 1
    USAGE = 2
    IO = 3
    NETWORK = 4
    REPLAY = 5
    INTERNAL = 6
    INTERRUPTED = 130


class ArchiverError(Exception):
    """Base of every error archiver raises on purpose. `exit_code` is what the CLI returns."""

    exit_code = ExitStatus.INTERNAL


class UsageError(ArchiverError):
    """The user asked for something that cannot be done as asked (bad name, bad flag)."""

    exit_code = ExitStatus.USAGE


class ConfigError(ArchiverError):
    """config.yaml or the archive root is missing, unreadable or wrong."""

    exit_code = ExitStatus.USAGE


class SeedError(ArchiverError):
    """A seed document or URL list could not be read. `reason` is machine-readable."""

    exit_code = ExitStatus.PARTIAL

    def __init__(self, source: str, reason: str, detail: str) -> None:
        super().__init__(f"{source}: {detail} ({reason})")
        self.source = source
        self.reason = reason
        self.detail = detail


class FetchError(ArchiverError):
    """A fetch failed before a complete HTTP response arrived. `reason` is machine-readable."""

    exit_code = ExitStatus.PARTIAL

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class WarcError(ArchiverError):
    """A WARC file is damaged or cannot be read."""

    exit_code = ExitStatus.IO


class StorageError(ArchiverError):
    """The archive store failed: unreachable, timed out, or answered with an error."""

    exit_code = ExitStatus.IO


class DiskError(StorageError):
    """The disk would not take what archiver writes: full, over a quota or a file size limit,
    read-only, or failing. What was committed before is kept; the same command resumes."""

    RESUME = ("Everything committed before it is kept: free space (or mend the disk), then run the same "
              "command again to resume")

    def __init__(self, what: str, cause: BaseException, then: str = RESUME) -> None:
        detail = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause)
        super().__init__(f"{what}: {detail}. {then}")


_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO})


def is_disk_error(exc: BaseException) -> bool:
    """A write the disk refused (or SQLite's word for one), rather than a bug or a missing file."""
    if isinstance(exc, OSError):
        return exc.errno in _DISK_ERRNOS
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return "disk is full" in text or "disk i/o error" in text or "readonly database" in text
    return False


class StorageConfigError(StorageError, ConfigError):
    """The store's URL, bucket, credentials or permissions are wrong: retrying will not help."""

    exit_code = ExitStatus.USAGE


class MissingObjectError(StorageError, FileNotFoundError):
    """No file of that name in the store (also a FileNotFoundError, as for a local path)."""


class WaczRefused(ArchiverError):
    """The collection cannot be packaged as it is (it fails verification, or holds a file a WACZ
    cannot carry). Exit status 1, like `archiver verify` finding problems: the command was right,
    the data is not; fix it (or `archiver index`) and run again."""

    exit_code = ExitStatus.PARTIAL

    def __init__(self, message: str, problems: Sequence[object] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)  # verify's Problem records, when verification failed


class ClusterError(ArchiverError):
    """The workers (local processes or a Dask cluster) could not be reached, or died."""

    exit_code = ExitStatus.NETWORK


class ReplayError(ArchiverError):
    """pywb could not be started or stopped."""

    exit_code = ExitStatus.REPLAY


class ReplayIndexError(ReplayError):
    """A replay index (zipnum cluster, Redis) could not be built, loaded or reached."""
