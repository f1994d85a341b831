"""Files as the archive needs them: written whole or not at all, renames that survive power loss,
and one writer at a time."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from archiver.errors import DiskError, is_disk_error


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable (where the filesystem can fsync a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(target: Path, *, encoding: str | None = None, durable: bool = True,
                 mode: int = 0o644) -> Iterator[IO[Any]]:
    """A file to write `target` through: a temporary file beside it (`.<name>.<random>.tmp`),
    renamed over `target` when the block ends without an exception, removed when it raises.

    A reader sees the old file or the new one, never a part. `encoding`: a text file (newlines
    written as given), else binary. `durable`: the data is fsynced before the rename and the
    rename after it (derived files that are cheap to write again may skip both). `mode`: the
    new file's permissions (the temporary file is private until then).
    """
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w" if encoding else "wb", encoding=encoding, newline="" if encoding else None) as out:
            yield out
            out.flush()
            if durable:
                os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(target.parent)


@contextlib.contextmanager
def output_file(path: Path, *, encoding: str | None = None) -> Iterator[IO[Any]]:
    """A file a user named (`-o PATH`), written whole: a regular file (or none yet) is written
    through a temporary file renamed over it (`atomic_write`); a symbolic link keeps being one,
    its target replaced; anything else (a FIFO, /dev/stdout, /dev/null, a terminal) is written
    straight into, as `>` would: a rename would replace the device or pipe with a regular file."""
    target = path.resolve() if path.is_symlink() else path
    try:
        if target.exists() and not target.is_file():
            with target.open("w" if encoding else "wb", encoding=encoding, newline="" if encoding else None) as out:
                yield out
            return
        with atomic_write(target, encoding=encoding) as out:
            yield out
    except OSError as exc:
        if is_disk_error(exc):
            raise DiskError(f"writing {path}", exc, "A regular file is left as it was before; free space "
                                                   "and run the command again") from exc
        raise


@contextlib.contextmanager
def file_lock(path: Path, busy: Callable[[], Exception] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing) for the block: one holder at a time
    across processes. Waits for another holder; with `busy`, raises busy() instead."""
    with path.open("a+b") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (fcntl.LOCK_NB if busy else 0))
        except BlockingIOError:
            if busy is None:
                raise
            raise busy() from None
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
