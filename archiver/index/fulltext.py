"""The full-text index of a collection: SQLite FTS5 with the trigram tokenizer (it finds any
substring of 3+ characters, so Chinese needs no word segmentation), in `SHARDS` files,
`indexes/search.sqlite` and `indexes/search-1.sqlite`... (an article's shard is fixed by its URL).

Indexing costs CPU for every character: as much as the rest of an article's capture, and most of
what `archiver index` would cost (bench/README.md). So it is built when it is needed, not on the
way: capture and index only queue each article's text in the metadata index (`Store.queue_text`, in
the same transaction as its row), and `update_search` moves the queued texts into the full-text
index; `archiver search` runs it first, `archiver index --search` runs it at once. SQLite lets go of
the GIL while it works, and one file takes one writer at a time: so each shard has a file and a
writer thread of its own, and the shards are written on every free core. Like every index here it is
derived data: `archiver index` rebuilds it from the WARC files.
"""

from __future__ import annotations

import hashlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from archiver._fs import file_lock
from archiver.collection import Collection
from archiver.errors import ConfigError
from archiver.extract.page import MAX_TEXT
from archiver.index import metadata
from archiver.index.metadata import Store

SCHEMA_VERSION = 2  # 2: sharded
SHARDS = 4  # fixed: a URL's shard must not change while the index exists; 4 keeps up to 4 cores busy
SEARCH_CHARS = MAX_TEXT  # characters of each article's main text that are indexed
BATCH = 200  # texts written per transaction
DRAIN_PAGE = 1_000  # queued texts read at a time (memory stays flat however many wait)

_SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS search USING fts5(
    url UNINDEXED, title, text,
    tokenize = 'trigram'
);
"""


def pending(collection: Collection) -> int:
    """How many articles' texts wait for the full-text index."""
    if not collection.db_path.exists():
        return 0
    with Store(collection.db_path, readonly=True) as store:
        return store.pending_span()[0]


def update_search(collection: Collection, progress: Callable[[int, int], None] | None = None) -> int:
    """Move the texts queued by capture and index into the full-text index; returns how many.

    Safe beside a running capture (it only adds to the queue; texts it queues meanwhile wait for
    the next update) and against itself (one update at a time, the others wait for it). A killed
    update loses nothing: texts leave the queue only once the shards have committed them, and
    writing one again replaces it.
    """
    if pending(collection) == 0:
        return 0
    done = 0
    with _exclusive(collection):
        try:
            with Store(collection.db_path) as store:
                total, last = store.pending_span()
                seq = 0
                with TextIndexWriter(collection.search_path) as texts:
                    while page := store.pending_texts(seq, last, DRAIN_PAGE):
                        for _, url, title, text in page:
                            texts.add(url, title, text)
                        seq = page[-1][0]
                        done += len(page)
                        if progress is not None:
                            progress(done, total)
                store.drop_pending(last)  # after close(): every shard has committed them
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot update the search index of {collection.name!r}: {exc} (the queued texts "
                              "are kept: try again once no other archiver process writes the collection, or "
                              "run 'archiver index --search' where the archive is writable)") from exc
    return done


def clear_search(collection: Collection) -> None:
    """Remove the full-text index (a rebuild queues every text again)."""
    with _exclusive(collection):
        for path in shard_paths(collection.search_path):
            for suffix in ("", "-wal", "-shm"):  # a new file: emptying an FTS5 table costs as much as filling it
                Path(f"{path}{suffix}").unlink(missing_ok=True)


@contextmanager
def _exclusive(collection: Collection) -> Iterator[None]:
    """One writer of the full-text index at a time; the others wait."""
    collection.indexes_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(collection.indexes_dir / "search.lock"):
        yield


def _text_id(url: str) -> int:
    """A stable 63-bit row id for an article's text, so that it can be replaced without a scan."""
    return int.from_bytes(hashlib.sha1(url.encode("utf-8", "surrogatepass")).digest()[:8], "big") >> 1


def shard_paths(path: Path) -> list[Path]:
    """The shard files of the index whose first shard is `path`."""
    return [path] + [path.with_name(f"{path.stem}-{n}{path.suffix}") for n in range(1, SHARDS)]


def open_readonly(path: Path) -> sqlite3.Connection:
    """A shard of the search index, read-only."""
    return metadata.open_readonly(path, SCHEMA_VERSION, "search index")


class TextIndexWriter:
    """Adds article texts to the search index, each shard from a background thread of its own.

    `add()` queues (bounded: a slow disk slows the producer rather than filling memory);
    `close()` waits until everything queued is written. Errors in the threads are raised by
    `close()`.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._shards = [_ShardWriter(p) for p in shard_paths(path)]

    def add(self, url: str, title: str, text: str) -> None:
        rowid = _text_id(url)
        self._shards[rowid % SHARDS].add(rowid, url, title, text[:SEARCH_CHARS])

    def close(self) -> None:
        for shard in self._shards:
            shard.finish()
        errors = [shard.error for shard in self._shards if shard.error is not None]
        if errors:
            raise ConfigError(f"the search index {self.path} could not be written: {errors[0]} "
                              "(run 'archiver index' to rebuild it)") from errors[0]

    def __enter__(self) -> TextIndexWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _ShardWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._queue: queue.Queue[tuple[int, str, str, str] | None] = queue.Queue(maxsize=2 * BATCH)
        self.error: BaseException | None = None
        self._connect().close()
        self._thread = threading.Thread(target=self._run, name=f"search-index-{path.stem}", daemon=True)
        self._thread.start()

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                db.execute("DROP TABLE IF EXISTS search")
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"cannot open the search index {self.path}: {exc} "
                              "(move it aside and run 'archiver index')") from exc
        return db

    def add(self, rowid: int, url: str, title: str, text: str) -> None:
        if self.error is None:
            self._queue.put((rowid, url, title, text))

    def _run(self) -> None:
        db = self._connect()
        try:
            done = False
            while not done:
                batch = [self._queue.get()]
                while len(batch) < BATCH:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                done = batch[-1] is None
                items = [item for item in batch if item is not None]
                db.execute("BEGIN")
                for rowid, url, title, text in items:
                    db.execute("DELETE FROM search WHERE rowid = ?", (rowid,))
                    db.execute("INSERT INTO search (rowid, url, title, text) VALUES (?, ?, ?, ?)",
                               (rowid, url, title, text))
                db.execute("COMMIT")
        except BaseException as exc:
            self.error = exc
            while True:  # keep draining, so that add() never blocks forever
                if self._queue.get() is None:
                    break
        finally:
            db.close()

    def finish(self) -> None:
        self._queue.put(None)
        self._thread.join()
