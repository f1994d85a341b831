"""Building a collection's indexes from its WARC files alone, and keeping them up to date.

* `indexes/index.cdxj`: the replay index (cdxj.py);
* `indexes/metadata.sqlite`: one row per seed (metadata.py), and the texts queued for search.

`update_index` indexes only WARC files it has not seen (and mends files a killed run left
open); `build_index` starts from scratch. One task per file (`index_part`: here, in worker
processes, or on a Dask cluster) reads it (reader.py) into a sorted CDXJ part and a metadata
fragment; this process merges the rows as they come and the parts at the end.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import io
import itertools
import multiprocessing as mp
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from archiver._process import release_free_memory, worker_init
from archiver.collection import Collection, locked
from archiver.config import Config
from archiver.errors import ArchiverError, UsageError, WarcError
from archiver.index.cdxj import PendingLines, merge_cdxj, merged
from archiver.index.fragments import Entry, iter_entries, orphans, write_fragment
from archiver.index.fulltext import clear_search, update_search
from archiver.index.links import Links, iter_lines, read_lines
from archiver.index.listing import write_listing
from archiver.index.metadata import Store, check_of
from archiver.index.pywbconfig import collection_index
from archiver.index.reader import FileReader
from archiver.index.redis import RedisReport, load_redis, parse_redis_url
from archiver.index.versions import Schedule
from archiver.index.zipnum import ZipnumReport, build_zipnum
from archiver.storage import LocalStorage, Storage, collection_storage, warc_names, warc_sizes
from archiver.warc.write import mend


@dataclass
class IndexReport:
    files: int = 0
    records: int = 0
    articles: int = 0
    mended: list[str] = field(default_factory=list)
    rebuilt: bool = False
    unreadable: list[str] = field(default_factory=list)  # files skipped, with the reason
    search_added: int | None = None  # texts moved into the full-text index (None: left to the next search)
    zipnum: ZipnumReport | None = None  # the zipnum cluster built for replay
    redis: RedisReport | None = None  # ... or the Redis index loaded
    # replay of this collection reads another index (config.yaml), which this run did not rebuild
    other_replay_index: str = ""


def add_files(collection: Collection, store: Store, files: list[tuple[str, int]], lines: PendingLines) -> None:
    """Merge the lines of a capture run into the replay index and mark its files indexed.

    If this never happens (a crash), the files are not marked, and the next run indexes them
    from scratch: nothing is lost, only redone.
    """
    if not files:
        return
    merge_cdxj(collection.cdxj_path, lines.sorted())
    store.mark_indexed(files)


def update_index(cfg: Config) -> IndexReport:
    """Bring the indexes up to date with the WARC files (only new files are read)."""
    collection = Collection.of(cfg)
    with locked(collection):
        return refresh(collection, rebuild=False, cfg=cfg)


def build_index(cfg: Config, progress: Callable[[int, int, str], None] | None = None) -> IndexReport:
    """Rebuild both indexes from the WARC files alone."""
    collection = Collection.of(cfg)
    if not collection.exists():
        raise UsageError(f"no collection {collection.name!r} under {cfg.root} (capture something first)")
    with locked(collection):
        return refresh(collection, rebuild=True, progress=progress, cfg=cfg)


def index(cfg: Config, *, zipnum: bool = False, redis_url: str = "", search: bool = False,
          progress: Callable[[int, int, str], None] | None = None,
          searching: Callable[[int, int], None] | None = None) -> IndexReport:
    """`archiver index`: rebuild the indexes (`build_index`), and with `search` the full-text index
    now; with `zipnum` or `redis_url`, also build replay's own copy of the CDXJ there and point
    replay at it in config.yaml. Options that cannot work are refused before the rebuild starts."""
    collection = Collection.of(cfg)
    if zipnum and redis_url:
        raise UsageError("--zipnum and --redis each give replay its index: choose one")
    if redis_url:
        parse_redis_url(redis_url, collection.name)  # a malformed URL fails now, not after the whole rebuild
    report = build_index(cfg, progress)
    if search:
        report.search_added = update_search(collection, searching)
    if zipnum:
        report.zipnum = build_zipnum(collection)
    elif redis_url:
        report.redis = load_redis(collection, redis_url)
    else:
        report.other_replay_index = collection_index(cfg.root, collection.name) or ""
    return report


PARALLEL_BYTES = 32 * 1024 * 1024  # below this, starting worker processes costs more than it saves


@dataclass(frozen=True)
class PartDone:
    """One WARC file indexed: its sorted replay-index part and its metadata fragment (store names)."""

    name: str  # the WARC file's name
    cdxj: str
    fragment: str  # "" when the rows came back in `entries` (the task ran in this process)
    records: int
    error: str = ""  # why the file could not be read
    entries: tuple[Entry, ...] = ()
    links: str = ""  # the file's links records, as JSON lines (store name; "" when handed back in `inline_links`)
    inline_links: tuple[Links, ...] = ()


def index_part(name: str, cfg: Config, collection: Collection, parts: str, here: bool = False) -> PartDone:
    """The index task of one file, run here, in a worker process or on a Dask worker: its lines,
    sorted, to `<parts>/<file>.cdxj`, and its rows to a fragment beside it, both published whole,
    so that a task that runs twice leaves them once (`here`: run in the caller's process, the rows
    are handed back as they are; a fragment would only be written to be read back). A file on an
    object store is read from a local copy (indexing reads it whole, then seeks back to the pages)."""
    storage = collection_storage(cfg, collection)
    copy = not isinstance(storage, LocalStorage)
    # a copy keeps the file's name: it is the records' filename in the index
    local = storage.staging_path(f"archive/{name}").with_name(name) if copy else collection.archive_dir / name
    reader = FileReader(local, collection.name)
    entries = (Entry(article, [], "", text, seen=seen) for article, text, seen in reader.articles())
    try:
        if copy:
            with storage.open_read(f"archive/{name}") as src, local.open("wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        try:  # the rows stream into the fragment as the file is read: a file's rows are never all held
            inline = tuple(entries) if here else ()
            # (lz4, not zstd: a part is read once and removed, and lz4 writes it in about half the time)
            fragment = "" if here else write_fragment(storage, name, [name], entries, folder=parts, compression="lz4")
        except WarcError as exc:  # other tools' damaged files: reported, the rest indexed
            return PartDone(name, "", "", 0, str(exc))
        except ArchiverError:
            raise  # the store or the disk: not this file's fault
        except Exception as exc:  # a hostile file that met a bug: reported like a damaged one, the rest indexed
            return PartDone(name, "", "", 0, f"{name}: cannot be indexed ({type(exc).__name__}: {exc}); "
                                             "this is a bug in archiver: please report it")
    finally:
        if copy:
            local.unlink(missing_ok=True)
        release_free_memory()  # a worker process indexes file after file: start each from a small heap
    cdxj = f"{parts}/{name}.cdxj"
    staged = storage.staging_path(cdxj)
    with staged.open("w", encoding="utf-8", newline="\n") as out:
        out.writelines(line + "\n" for line in sorted(reader.cdxj))
    storage.publish(staged, cdxj)
    if here:
        return PartDone(name, cdxj, fragment, reader.count, entries=inline, inline_links=tuple(reader.links))
    links = f"{parts}/{name}.links"
    staged = storage.staging_path(links)
    with staged.open("w", encoding="utf-8", newline="\n") as out:
        out.writelines(iter_lines(reader.links))
    storage.publish(staged, links)
    return PartDone(name, cdxj, fragment, reader.count, links=links)


def _index_parts(cfg: Config, names: list[str], collection: Collection, parts: str,
                 sizes: dict[str, int]) -> Iterator[PartDone]:
    """Each file's part, in file order; the files are indexed in parallel when that pays: on the
    cluster (`cfg.cluster`), or in worker processes when there is enough work for every core
    (reading and parsing is CPU-bound; the GIL allows one core a process)."""
    if cfg.cluster:
        from archiver._dask import connect, map_tasks

        client = connect(cfg.cluster)
        try:
            waiting: dict[str, PartDone] = {}
            order = iter(names)
            upcoming = next(order, None)
            for name, outcome in map_tasks(client, index_part, names, cfg, collection, parts,
                                           key=lambda n: f"archiver-index-{parts.rsplit('/', 1)[-1]}-{n}"):
                if isinstance(outcome, BaseException):
                    outcome = PartDone(name, "", "", 0, f"{name}: {type(outcome).__name__}: {outcome}")
                waiting[name] = outcome
                while upcoming is not None and upcoming in waiting:  # handed on in file order
                    yield waiting.pop(upcoming)
                    upcoming = next(order, None)
        finally:
            client.close()
        return
    workers = min(os.cpu_count() or 1, len(names))
    if workers < 2 or sum(sizes[n] for n in names) < PARALLEL_BYTES:
        for name in names:
            yield index_part(name, cfg, collection, parts, here=True)
        return
    count = len(names)
    with cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=worker_init,
                                initargs=(os.getpid(),)) as pool:
        yield from pool.map(index_part, names, [cfg] * count, [collection] * count, [parts] * count)


def refresh(collection: Collection, rebuild: bool, progress: Callable[[int, int, str], None] | None = None,
            cfg: Config | None = None) -> IndexReport:
    """Index what is new (or everything); the caller holds the collection's lock.

    One task per file writes a sorted part and a metadata fragment (`index_part`); this process
    merges the fragments' rows into the metadata index as they come, then the parts into the replay
    index with a k-way merge. No file's results are held in memory past its turn."""
    cfg = cfg or Config(root=collection.root)
    storage = collection_storage(cfg, collection)
    report = IndexReport(rebuilt=rebuild)
    for stale in storage.list("indexes/parts-"):
        storage.remove(stale)  # parts of an index run that was killed
    for pattern in ("parts-*", ".pending-*", ".merge-*"):  # scratch of a run that was killed (we hold the lock)
        for stale_dir in collection.indexes_dir.glob(pattern):
            shutil.rmtree(stale_dir, ignore_errors=True)
    with Store(collection.db_path) as store:
        known = store.indexed_files()
        local = isinstance(storage, LocalStorage)
        open_names = [p.name for p in collection.open_files()] if local else []
        # files of a capture batch whose attempt died, the batch committed since by another attempt
        for orphan in orphans(storage, [n for n in open_names + warc_names(storage) if n not in known]):
            if orphan in open_names:
                (collection.archive_dir / orphan).unlink()
            else:
                storage.remove(f"archive/{orphan}")
            report.mended.append(f"{orphan}: removed (its batch was committed by another attempt)")
        for leftover in collection.open_files() if local else []:
            final, cut = mend(leftover)
            report.mended.append(f"{leftover.name}: {cut} bytes cut" if final.exists()
                                 else f"{leftover.name}: removed")
        report.unreadable += [f"{name}: not a regular file (a FIFO, a device or a broken link): never read"
                              for name in (collection.irregular_files() if local else [])]
        sizes = warc_sizes(storage)
        if not rebuild and (set(known) - set(sizes) or any(
                sizes[name] != size for name, size in known.items() if name in sizes)):
            rebuild = report.rebuilt = True  # a file vanished or changed: start again
        todo = sorted(sizes) if rebuild else sorted(set(sizes) - set(known))
        if not todo and not rebuild:
            return report
        parts = f"indexes/parts-{uuid.uuid4().hex[:12]}"
        try:
            _index_into(cfg, collection, storage, store, report, todo, sizes, parts, rebuild, progress)
        finally:
            for name in storage.list(parts + "/"):
                storage.remove(name)
            shutil.rmtree(collection.path / parts, ignore_errors=True)
        report.articles = store.count()
        write_listing(collection, store)  # the collection page's JSON (listing.py)
    return report


def _part_links(storage: Storage, part: PartDone) -> Iterator[Links]:
    if not part.links:
        yield from part.inline_links
        return
    with storage.open_read(part.links) as fh:
        yield from read_lines(io.TextIOWrapper(fh, encoding="utf-8", newline="\n"))
    storage.remove(part.links)


def _index_into(cfg: Config, collection: Collection, storage: Storage, store: Store, report: IndexReport,
                names: list[str], sizes: dict[str, int], parts: str, rebuild: bool,
                progress: Callable[[int, int, str], None] | None) -> None:
    sorted_parts: list[str] = []
    readable: list[str] = []
    if rebuild:
        clear_search(collection)  # every text is queued again below
    found = _index_parts(cfg, names, collection, parts, sizes)
    # wait for the first part before clearing: the workers start (and read) meanwhile, where
    # clearing first kept them waiting
    first = next(found, None)
    with store.transaction():
        if rebuild:
            store.clear()
        for done, part in enumerate(itertools.chain([first] if first is not None else [], found)):
            if progress is not None:
                progress(done, len(names), part.name)
            if part.error:
                report.unreadable.append(part.error)
                continue
            readable.append(part.name)
            sorted_parts.append(part.cdxj)
            for entry in iter_entries(storage, part.fragment) if part.fragment else part.entries:
                seen = entry.seen
                if seen is not None and seen.kind != "captured":  # a check: the row stays the capture's
                    store.put_check(check_of(entry.article, seen))
                    continue
                if store.put(entry.article, prefer_existing_capture=True) and entry.text:
                    store.queue_text(entry.article.url, entry.article.search_title, entry.text)
                if seen is not None:
                    store.put_check(check_of(entry.article, seen))
            for links in _part_links(storage, part):
                store.put_links(links)
            if part.fragment:
                storage.remove(part.fragment)
            release_free_memory()  # what reading the part's rows took
            report.files += 1
            report.records += part.records
        with tempfile.TemporaryDirectory(dir=collection.indexes_dir, prefix=".merge-") as scratch:
            parts_opened: list[Callable[[], IO[bytes]]] = [functools.partial(storage.open_read, name)
                                                           for name in sorted_parts]
            merge_cdxj(collection.cdxj_path, merged(parts_opened, Path(scratch)), replace=rebuild)
        store.mark_indexed((name, sizes[name]) for name in readable)
        store.recount(everything=rebuild)  # the articles' requisite counts, from the links records
        # their versions and next checks, from the checks
        store.revise(Schedule(cfg.recheck_min, cfg.recheck_max), everything=rebuild)
