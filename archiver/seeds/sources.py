"""Where seeds come from: files (seed documents, URL lists, feeds, recognised by content, never by
extension), directories of them, URLs, and stdin. Reading is streamed: a URL list of millions of
lines is never held in memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from archiver.errors import SeedError
from archiver.seeds.document import MAX_SEED_DOCUMENT, decode_text, looks_like_seed_document, parse_seed_document
from archiver.seeds.feeds import DEFAULT_LIMITS, MAX_FEED, FeedLimits, looks_like_feed, parse_feed
from archiver.seeds.model import BadSeed, Seed, check_url, looks_like_url


def parse_url_list(stream: IO[str], source: str) -> Iterator[Seed | BadSeed]:
    """One URL a line; '#' starts a comment; blank lines are ignored."""
    for number, raw in enumerate(stream, 1):
        # '#' opens a comment at the start of a line or after white space; elsewhere it is
        # part of the URL (a fragment).
        line = re.split(r"(?:^|\s)#", raw, maxsplit=1)[0].strip()
        if not line:
            continue
        where = f"{source}:{number}"
        try:
            yield Seed(url=check_url(line, where), source=where)
        except SeedError as exc:
            yield BadSeed(where, exc.reason, exc.detail)


def read_file(path: Path, label: str, limits: FeedLimits = DEFAULT_LIMITS) -> Iterator[Seed | BadSeed]:
    """Seeds from one file, recognised by content: a seed document, a URL list or a feed."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(4096)
            if looks_like_feed(head):
                if size > MAX_FEED:
                    yield BadSeed(label, "invalid_feed", f"feed larger than {MAX_FEED} bytes")
                    return
                yield from parse_feed(head + fh.read(), label, limits)
                return
        if size <= MAX_SEED_DOCUMENT:
            head = path.read_bytes()
    except OSError as exc:
        yield BadSeed(label, "unreadable", exc.strerror or str(exc))
        return
    try:
        text = decode_text(head, label, whole=size <= MAX_SEED_DOCUMENT)
    except SeedError as exc:
        yield BadSeed(label, exc.reason, exc.detail)
        return
    if looks_like_seed_document(text):
        if size > MAX_SEED_DOCUMENT:
            yield BadSeed(label, "invalid_seed", f"seed document larger than {MAX_SEED_DOCUMENT} bytes")
            return
        try:
            yield parse_seed_document(head, label)
        except SeedError as exc:
            yield BadSeed(label, exc.reason, exc.detail)
        return
    if _first_entry(text).startswith(("http://", "https://")):
        with path.open(encoding="utf-8", errors="replace") as fh:
            yield from parse_url_list(fh, label)
        return
    yield BadSeed(label, "invalid_seed", "neither a seed document ([title](url) line), a URL list nor a feed")


def _first_entry(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return line.lower()
    return ""


def iter_seeds(sources: Iterable[str], root: Path, stdin: IO[str] | None = None,
               limits: FeedLimits = DEFAULT_LIMITS) -> Iterator[Seed | BadSeed]:
    """Every seed named by `sources` (files, directories, URLs, '-' for stdin), in order.

    `root` only shortens the names of seed files inside it, for reports and exports.
    """
    label = _Labels(root)
    for source in sources:
        if source == "-":
            if stdin is None:
                yield BadSeed("-", "invalid_seed", "no standard input")
            else:
                yield from parse_url_list(stdin, "<stdin>")
            continue
        if looks_like_url(source):
            try:
                yield Seed(url=check_url(source, source), source="<argument>")
            except SeedError as exc:
                yield BadSeed(source, exc.reason, exc.detail)
            continue
        path = Path(source)  # relative to the working directory, as the shell meant it
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if any(part.startswith(".") for part in child.relative_to(path).parts):
                    continue  # hidden files and folders (.git, editor swap files)
                yield from read_file(child, label(child), limits)
        elif path.is_file():
            yield from read_file(path, label(path), limits)
        else:
            yield BadSeed(source, "not_found", "no such file or directory")


class _Labels:
    """How seed files are named in reports and exports: relative to the root when inside it.

    A folder's real path is worked out once, not once a file (each is a walk of lstat calls:
    a tenth of the capture process's CPU for a folder of 2,000 seed documents).
    """

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.folders: dict[Path, Path] = {}

    def __call__(self, path: Path) -> str:
        folder = self.folders.get(path.parent)
        if folder is None:
            folder = self.folders[path.parent] = path.parent.resolve()
        real = folder / path.name
        if real.is_symlink():
            real = real.resolve()
        try:
            return real.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


def source_label(root: Path, path: Path) -> str:
    """How the seeds of the file at `path` name their source (relative to `root` when inside it)."""
    return _Labels(root)(path)
