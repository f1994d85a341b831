"""Where things live in an archive root (a pywb working directory), and the rules for names."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from archiver._fs import file_lock
from archiver.errors import UsageError

WARC_SUFFIXES = (".warc.gz", ".warc", ".arc.gz", ".arc")
OPEN_SUFFIX = ".open"  # a file still being written (or left by a killed run) ends in it

# pywb's own rule for collection names; anything else could escape the root or break URLs.
COLLECTION_NAME = re.compile(r"^[A-Za-z0-9_][-A-Za-z0-9_]*$")


def check_collection_name(name: str) -> str:
    if not COLLECTION_NAME.fullmatch(name):
        raise UsageError(
            f"invalid collection name {name!r}: use letters, digits, '_' and '-' "
            "(not starting with '-'), as pywb requires"
        )
    return name


class _Settings(Protocol):  # config.Config (which imports this module)
    @property
    def root(self) -> Path: ...

    @property
    def collection(self) -> str: ...


@dataclass(frozen=True)
class Collection:
    root: Path
    name: str

    @classmethod
    def at(cls, root: Path, name: str) -> Collection:
        return cls(root=root, name=check_collection_name(name))

    @classmethod
    def of(cls, cfg: _Settings) -> Collection:
        """The collection a command acts on: config.yaml's `collection`, or -c NAME."""
        return cls.at(cfg.root, cfg.collection)

    @property
    def path(self) -> Path:
        return self.root / "collections" / self.name

    @property
    def archive_dir(self) -> Path:
        return self.path / "archive"

    @property
    def indexes_dir(self) -> Path:
        return self.path / "indexes"

    @property
    def cdxj_path(self) -> Path:
        return self.indexes_dir / "index.cdxj"

    @property
    def db_path(self) -> Path:
        return self.indexes_dir / "metadata.sqlite"

    @property
    def search_path(self) -> Path:
        return self.indexes_dir / "search.sqlite"

    def exists(self) -> bool:
        return self.archive_dir.is_dir()

    def create(self) -> None:
        self.archive_dir.mkdir(parents=True, exist_ok=True)
        self.indexes_dir.mkdir(parents=True, exist_ok=True)

    def warc_files(self) -> list[Path]:
        """Complete WARC/ARC files, sorted by name (files still being written end in .open)."""
        if not self.archive_dir.is_dir():
            return []
        return sorted(
            p
            for p in self.archive_dir.iterdir()
            if p.is_file() and p.name.endswith(WARC_SUFFIXES)
        )

    def irregular_files(self) -> list[str]:
        """Names in archive/ that end like WARC files but are no regular files (a FIFO, a device,
        a broken link): reading one could block or never end, so they are reported, never read."""
        if not self.archive_dir.is_dir():
            return []
        return sorted(p.name for p in self.archive_dir.iterdir()
                      if p.name.endswith((*WARC_SUFFIXES, OPEN_SUFFIX)) and not p.is_file())

    def open_files(self) -> list[Path]:
        if not self.archive_dir.is_dir():
            return []
        return sorted(p for p in self.archive_dir.glob("*" + OPEN_SUFFIX) if p.is_file())


def collection_names(root: Path) -> list[str]:
    base = root / "collections"
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if p.is_dir() and COLLECTION_NAME.fullmatch(p.name))


@contextmanager
def locked(collection: Collection) -> Iterator[None]:
    """Hold the collection's lock: one capture or index run at a time may write to it."""
    collection.create()

    def busy() -> UsageError:
        return UsageError(f"another archiver process is writing to collection {collection.name!r}; "
                          "wait for it to finish")

    with file_lock(collection.path / ".lock", busy):
        yield
