"""The CDXJ replay index, as pywb reads it: one line per response, revisit and resource record,
`<SURT key> <14-digit time> <JSON>`, the file sorted (pywb binary-searches it in place).

Lines are written here (`cdxj_line`), merged into `indexes/index.cdxj` (`merge_cdxj`, atomically,
never sorted again in memory: a k-way merge of sorted runs) and read back (`parse_line`).
"""

from __future__ import annotations

import contextlib
import heapq
import io
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from archiver._fs import atomic_write
from archiver.collection import Collection
from archiver.warc.record import Written, timestamp14_of


def cdxj_line(w: Written) -> str:
    fields = {"url": w.uri}
    if w.mime:
        fields["mime"] = w.mime
    if w.status and w.mime != "warc/revisit":  # (pywb's own indexer gives a revisit no status)
        fields["status"] = w.status
    if w.digest:
        fields["digest"] = w.digest
    fields.update(length=str(w.length), offset=str(w.offset), filename=w.filename)
    return f"{surt_key(w.uri)} {timestamp14_of(w.date)} {json.dumps(fields, ensure_ascii=False)}"


@dataclass(frozen=True)
class Line:
    """A CDXJ line split into its three parts; the JSON is parsed only when asked for."""

    key: str
    timestamp: str
    json: str

    def fields(self) -> dict[str, Any] | None:
        """The JSON block, or None when it is not a JSON object."""
        try:
            found = json.loads(self.json)
        except ValueError:
            return None
        return found if isinstance(found, dict) else None


def parse_line(line: str) -> Line | None:
    """`<key> <timestamp> <JSON>`, or None for a line that is not one (blank lines included)."""
    parts = line.rstrip("\r\n").split(" ", 2)
    if len(parts) < 3 or not line.strip():
        return None
    return Line(*parts)


def surt_key(url: str) -> str:
    # imported here: surt imports tldextract and requests (tens of MB a process); the processes that
    # only merge CDXJ lines never need it
    import surt

    try:
        return str(surt.surt(url))
    except Exception:  # surt raises assorted errors on junk URLs; keep the record findable
        return url.lower()


def merge_cdxj(target: Path, new_lines: Iterable[str], replace: bool = False) -> None:
    """Merge sorted `new_lines` into the sorted CDXJ at `target` (atomically; duplicates dropped)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(target, encoding="utf-8") as out, contextlib.ExitStack() as stack:
        existing: Iterator[str] = iter(())
        if target.exists() and not replace:
            handle = stack.enter_context(target.open(encoding="utf-8"))
            existing = (line.rstrip("\n") for line in handle)
        previous = None
        for line in heapq.merge(existing, new_lines):
            if line and line != previous:
                out.write(line + "\n")
                previous = line


class PendingLines:
    """Replay-index lines of records being captured, kept until their WARC files are complete
    (pywb must not see a line whose file is still `.open`): `RUN_LINES` in memory, the rest in
    sorted runs on disk, merged at the end (memory stays flat however long the capture)."""

    def __init__(self, collection: Collection) -> None:
        collection.indexes_dir.mkdir(parents=True, exist_ok=True)
        self._scratch = tempfile.TemporaryDirectory(dir=collection.indexes_dir, prefix=".pending-")
        self._lines: list[str] = []
        self._runs: list[Path] = []

    def add(self, lines: Iterable[str]) -> None:
        self._lines.extend(lines)
        if len(self._lines) >= RUN_LINES:
            run = Path(self._scratch.name) / f"run-{len(self._runs):06d}.cdxj"
            with run.open("w", encoding="utf-8", newline="\n") as out:
                out.writelines(line + "\n" for line in sorted(self._lines))
            self._runs.append(run)
            self._lines = []

    def sorted(self) -> Iterator[str]:
        """Every line added, sorted (read while the context is open)."""
        self._lines.sort()
        return heapq.merge(iter(self._lines), merged([_opener(run) for run in self._runs], Path(self._scratch.name)))

    def __enter__(self) -> PendingLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self._scratch.cleanup()
MERGE_FAN_IN = 256  # sorted parts merged at once (each holds a file open)
RUN_LINES = 20_000  # capture's pending replay-index lines held in memory (a few MB) before a sorted run


def merged(opened: list[Callable[[], IO[bytes]]], scratch: Path) -> Iterator[str]:
    """The lines of sorted files, merged (k-way, streaming); in rounds when there are many files."""
    round_ = 0
    while len(opened) > MERGE_FAN_IN:
        merged: list[Callable[[], IO[bytes]]] = []
        for start in range(0, len(opened), MERGE_FAN_IN):
            target = scratch / f".merge-{round_}-{start}.cdxj"
            with target.open("w", encoding="utf-8", newline="\n") as out:
                out.writelines(line + "\n" for line in _merge_files(opened[start:start + MERGE_FAN_IN]))
            merged.append(_opener(target))
        opened, round_ = merged, round_ + 1
    yield from _merge_files(opened)


def _opener(path: Path) -> Callable[[], IO[bytes]]:
    return lambda: path.open("rb")


def _merge_files(openers: list[Callable[[], IO[bytes]]]) -> Iterator[str]:
    with contextlib.ExitStack() as stack:
        files = [io.TextIOWrapper(stack.enter_context(open_()), encoding="utf-8") for open_ in openers]
        yield from heapq.merge(*((line.rstrip("\n") for line in f) for f in files))
