"""The indexes of a collection, built from its WARC files alone.

* `indexes/index.cdxj`: the replay index, sorted by SURT key and time, as pywb needs it.
* `indexes/metadata.sqlite`: one row per seed (see store.py).

`update_index` indexes only WARC files it has not seen (and mends files a killed run left
open); `build_index` starts from scratch. Both read each file once, then seek to the few
article responses whose pages need parsing.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import functools
import heapq
import io
import itertools
import json
import multiprocessing as mp
import os
import shutil
import tempfile
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from archiver._process import release_free_memory, worker_init
from archiver.collection import Collection, locked
from archiver.config import Config
from archiver.errors import SeedError, WarcError
from archiver.extract.page import MAX_DECODED, PageInfo, decode_body, is_html, page_info
from archiver.index.fragments import Entry, iter_entries, orphans, write_fragment
from archiver.index.fulltext import clear_search
from archiver.index.listing import write_listing
from archiver.index.metadata import Article, Store
from archiver.index.rows import SeedRecord, build_article
from archiver.seeds.document import Seed, parse_seed_document
from archiver.storage import LocalStorage, Storage, collection_storage, warc_names, warc_sizes
from archiver.warc.read import RecordRead, Unsure, fast_readable, read_fast, read_warcio
from archiver.warc.write import (
    ATTEMPTS,
    ERROR,
    INDEXED_TYPES,
    LEAD_IMAGE,
    LEAD_IMAGE_STATUS,
    OPEN_SUFFIX,
    SEED_DOCUMENT_TYPE,
    SOURCE,
    Written,
    mend,
    timestamp14_of,
)


@dataclass
class IndexReport:
    files: int = 0
    records: int = 0
    articles: int = 0
    mended: list[str] = field(default_factory=list)
    rebuilt: bool = False
    unreadable: list[str] = field(default_factory=list)  # files skipped, with the reason


@dataclass
class FileIndex:
    cdxj: list[str]
    articles: list[Article]
    texts: dict[str, str]  # url -> the article's main text, for full-text search
    records: int


def cdxj_line(w: Written) -> str:
    fields = {"url": w.uri}
    if w.mime:
        fields["mime"] = w.mime
    if w.status:
        fields["status"] = w.status
    if w.digest:
        fields["digest"] = w.digest
    fields.update(length=str(w.length), offset=str(w.offset), filename=w.filename)
    return f"{surt_key(w.uri)} {timestamp14_of(w.date)} {json.dumps(fields, ensure_ascii=False)}"


def surt_key(url: str) -> str:
    # imported here: surt imports tldextract and requests (~20 MB a process); the processes that
    # only merge CDXJ lines never need it
    import surt

    try:
        return str(surt.surt(url))
    except Exception:  # surt raises assorted errors on junk URLs; keep the record findable
        return url.lower()


def _target(uri: str) -> str:
    return uri.strip().removeprefix("<").removesuffix(">")


# HTML bodies of the latest responses kept while a file is read, so that a seed's metadata record
# (written just after its page) finds its page without reading the file a second time.
RECENT_PAGES = 64
_UNREAD = object()  # the page was not at hand: read it again from the file


def index_file(path: Path, collection: str, fast: bool = True) -> FileIndex:
    """CDXJ lines and metadata rows of one WARC/ARC file (`fast=False`: read with warcio only)."""
    reader = _FileReader(path, collection, fast)
    found = list(reader.articles())
    texts = {article.url: text for article, text in found if text}
    return FileIndex(reader.cdxj, [article for article, _ in found], texts, reader.count)


class _FileReader:
    """Reads one WARC/ARC file: `articles()` yields each seed's row and text as soon as its records
    have been read (archiver writes a seed's metadata record after its page), so that a file's rows
    need not all be held at once; `cdxj` and `count` are complete once it is exhausted.

    FastWARC reads the file when it can answer as warcio would (records.py); when it cannot, the
    file is read again with warcio, and the rows already handed out are not handed out again."""

    def __init__(self, path: Path, collection: str, fast: bool = True) -> None:
        self.path = path
        self.collection = collection
        self.fast = fast
        self.cdxj: list[str] = []
        self.count = 0
        self.records: dict[str, Written] = {}

    def articles(self) -> Iterator[tuple[Article, str]]:
        given = 0
        if self.fast and fast_readable(self.path):
            try:
                for found in self._articles(read_fast(self.path, _want)):
                    given += 1
                    yield found
                return
            except Unsure:
                self.cdxj, self.count, self.records = [], 0, {}
        for number, found in enumerate(self._articles(read_warcio(self.path, _want))):
            if number >= given:  # the same records give the same rows, in the same order
                yield found

    def _articles(self, reading: Iterator[RecordRead]) -> Iterator[tuple[Article, str]]:
        path, records = self.path, self.records
        waiting: list[tuple[Written, dict[str, str], bytes, object]] = []  # attempts whose records come later
        recent: OrderedDict[str, tuple[bytes, str, str]] = OrderedDict()  # record ID -> body, encoding, type
        next_offset = 0  # where the record being read starts, for error messages
        try:
            for record in reading:
                self.count += 1
                written = _written(record, path.name)
                next_offset = written.offset + written.length
                if written.record_id:
                    records[written.record_id] = written
                    if record.body is not None and record.rec_type == "response":
                        recent[written.record_id] = (record.body, record.http_content_encoding,
                                                     record.http_content_type)
                        if len(recent) > RECENT_PAGES:
                            recent.popitem(last=False)
                if written.record_type in INDEXED_TYPES and written.uri:
                    self.cdxj.append(cdxj_line(written))
                if record.rec_type != "metadata" or record.body is None:
                    continue
                fields = dict(record.headers)
                page_id, copy_id = fields.get("WARC-Concurrent-To", ""), fields.get("WARC-Refers-To", "")
                body = recent.pop(page_id, None)
                page = _UNREAD if body is None else page_info(decode_body(body[0], body[1]), body[2],
                                                                records[page_id].uri)
                attempt = (written, fields, record.body, page)
                if waiting or any(ref and ref not in records for ref in (page_id, copy_id)):
                    waiting.append(attempt)  # after the file is read (and the rows keep their order)
                elif (found := _article(path, self.collection, records, *attempt)) is not None:
                    yield found
        except (OSError, ValueError, EOFError, zlib.error) as exc:  # (records.py: warcio's as ValueError)
            raise WarcError(f"{path.name}: cannot be read (record at offset {next_offset}): {exc} "
                            f"(run 'archiver verify {path}' for details)") from exc
        for attempt in waiting:
            if (found := _article(path, self.collection, records, *attempt)) is not None:
                yield found


def _want(rtype: str, header: Callable[[str], str | None], http_content_type: str | None) -> int:
    """What the index reads of a record's body: a seed's metadata block, an HTML page's payload."""
    if rtype == "metadata":
        return 8 * 1024 * 1024 if header(SOURCE) is not None else 0
    if rtype == "response" and http_content_type is not None and is_html(http_content_type.split(";")[0].strip()):
        return MAX_DECODED
    return 0


def _written(record: RecordRead, filename: str) -> Written:
    rtype = record.rec_type
    mime = status = ""
    if rtype == "revisit":
        mime = "warc/revisit"
    elif record.http and rtype == "response":
        mime = record.http_content_type.split(";")[0].strip().lower() or "unk"
        status = record.http_status
    elif rtype == "resource":
        mime = (record.header("Content-Type") or "").split(";")[0].strip()
        status = "200"
    digest = record.header("WARC-Payload-Digest") or ""
    return Written(
        record_id=record.header("WARC-Record-ID") or "",
        record_type=rtype,
        uri=_target(record.header("WARC-Target-URI") or ""),
        date=record.header("WARC-Date") or "",
        filename=filename,
        offset=record.offset,
        length=record.length,
        mime=mime,
        status=status,
        digest=digest.split(":", 1)[-1],
    )


def _article(path: Path, collection: str, records: dict[str, Written], meta: Written,
             headers: dict[str, str], block: bytes, page_read: object = _UNREAD) -> tuple[Article, str] | None:
    source = headers.get(SOURCE, "")
    content_type = headers.get("Content-Type", "")
    try:
        if content_type.startswith(SEED_DOCUMENT_TYPE.split(";")[0]):
            seed = parse_seed_document(block, source)
        else:
            seed = Seed(url=meta.uri, source=source)
    except SeedError:
        return None
    response = records.get(headers.get("WARC-Concurrent-To", ""))
    feed_copy = records.get(headers.get("WARC-Refers-To", ""))
    attempt = SeedRecord(seed, meta.date, headers.get(ERROR, ""), headers.get(LEAD_IMAGE, ""),
                         headers.get(LEAD_IMAGE_STATUS, ""), meta, _int(headers.get(ATTEMPTS, "")))
    page: PageInfo | None = None
    if isinstance(page_read, PageInfo):
        page = page_read
    elif response is not None and is_html(response.mime):
        page = _read_page(path, response)
    text = page.text if page is not None and not attempt.error else ""
    return build_article(collection, attempt, response, page, feed_copy), text


def _int(text: str) -> int | None:
    return int(text) if text.strip().isdigit() else None


def _read_page(path: Path, response: Written) -> PageInfo | None:
    from warcio.archiveiterator import ArchiveIterator  # (see records.read_warcio)

    with path.open("rb") as fh:
        fh.seek(response.offset)
        for record in ArchiveIterator(fh):
            http = record.http_headers
            body = record.raw_stream.read(MAX_DECODED)
            encoding = http.get_header("Content-Encoding") or "" if http else ""
            content_type = http.get_header("Content-Type") or "" if http else ""
            return page_info(decode_body(body, encoding), content_type, response.uri)
    return None


def merge_cdxj(target: Path, new_lines: Iterable[str], replace: bool = False) -> None:
    """Merge sorted `new_lines` into the sorted CDXJ at `target` (atomically; duplicates dropped)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".index-", suffix=".cdxj.tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            existing: Iterator[str] = iter(())
            handle = None
            if target.exists() and not replace:
                handle = target.open(encoding="utf-8")
                existing = (line.rstrip("\n") for line in handle)
            previous = None
            try:
                for line in heapq.merge(existing, new_lines):
                    if line and line != previous:
                        out.write(line + "\n")
                        previous = line
            finally:
                if handle is not None:
                    handle.close()
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; pywb and readers need to read it
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
        return heapq.merge(iter(self._lines), _merged([_opener(run) for run in self._runs], Path(self._scratch.name)))

    def __enter__(self) -> PendingLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self._scratch.cleanup()


def add_files(collection: Collection, store: Store, files: list[tuple[str, int]], lines: PendingLines) -> None:
    """Merge the lines of a capture run into the replay index and mark its files indexed.

    If this never happens (a crash), the files are not marked, and the next run indexes them
    from scratch: nothing is lost, only redone.
    """
    if not files:
        return
    merge_cdxj(collection.cdxj_path, lines.sorted())
    store.mark_indexed(files)


def update_index(cfg: Config, collection_name: str | None = None) -> IndexReport:
    """Bring the indexes up to date with the WARC files (only new files are read)."""
    collection = Collection.at(cfg.root, cfg.collection if collection_name is None else collection_name)
    with locked(collection):
        return refresh(collection, rebuild=False, cfg=cfg)


def build_index(cfg: Config, collection_name: str | None = None,
                progress: Callable[[int, int, str], None] | None = None) -> IndexReport:
    """Rebuild both indexes from the WARC files alone."""
    collection = Collection.at(cfg.root, cfg.collection if collection_name is None else collection_name)
    if not collection.exists():
        from archiver.errors import UsageError

        raise UsageError(f"no collection {collection.name!r} under {cfg.root} (capture something first)")
    with locked(collection):
        return refresh(collection, rebuild=True, progress=progress, cfg=cfg)


PARALLEL_BYTES = 32 * 1024 * 1024  # below this, starting worker processes costs more than it saves
MERGE_FAN_IN = 256  # sorted parts merged at once (each holds a file open)
RUN_LINES = 20_000  # capture's pending replay-index lines held in memory (a few MB) before a sorted run


@dataclass(frozen=True)
class PartDone:
    """One WARC file indexed: its sorted replay-index part and its metadata fragment (store names)."""

    name: str  # the WARC file's name
    cdxj: str
    fragment: str  # "" when the rows came back in `entries` (the task ran in this process)
    records: int
    error: str = ""  # why the file could not be read
    entries: tuple[Entry, ...] = ()


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
    reader = _FileReader(local, collection.name)
    entries = (Entry(article, [], "", text) for article, text in reader.articles())
    try:
        if copy:
            with storage.open_read(f"archive/{name}") as src, local.open("wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        try:  # the rows stream into the fragment as the file is read: a file's rows are never all held
            inline = tuple(entries) if here else ()
            # (lz4, not zstd: a part is read once and removed; a 2,000-row part wrote in 0.12 s, not 0.22)
            fragment = "" if here else write_fragment(storage, name, [name], entries, folder=parts, compression="lz4")
        except WarcError as exc:  # other tools' damaged files: reported, the rest indexed
            return PartDone(name, "", "", 0, str(exc))
    finally:
        if copy:
            local.unlink(missing_ok=True)
        release_free_memory()  # a worker process indexes file after file: start each from a small heap
    cdxj = f"{parts}/{name}.cdxj"
    staged = storage.staging_path(cdxj)
    with staged.open("w", encoding="utf-8", newline="\n") as out:
        out.writelines(line + "\n" for line in sorted(reader.cdxj))
    storage.publish(staged, cdxj)
    return PartDone(name, cdxj, fragment, reader.count, entries=inline)


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


def _merged(opened: list[Callable[[], IO[bytes]]], scratch: Path) -> Iterator[str]:
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
    for stale_dir in collection.indexes_dir.glob("parts-*"):
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


def _index_into(cfg: Config, collection: Collection, storage: Storage, store: Store, report: IndexReport,
                names: list[str], sizes: dict[str, int], parts: str, rebuild: bool,
                progress: Callable[[int, int, str], None] | None) -> None:
    sorted_parts: list[str] = []
    readable: list[str] = []
    if rebuild:
        clear_search(collection)  # every text is queued again below
    found = _index_parts(cfg, names, collection, parts, sizes)
    # wait for the first part before clearing: the workers start (and read) meanwhile, where
    # clearing first kept them waiting ~0.5 s for a 20,000-article collection
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
                if store.put(entry.article, prefer_existing_capture=True) and entry.text:
                    store.queue_text(entry.article.url, entry.article.search_title, entry.text)
            if part.fragment:
                storage.remove(part.fragment)
            release_free_memory()  # what reading the part's rows took
            report.files += 1
            report.records += part.records
        with tempfile.TemporaryDirectory(dir=collection.indexes_dir, prefix=".merge-") as scratch:
            parts_opened: list[Callable[[], IO[bytes]]] = [functools.partial(storage.open_read, name)
                                                           for name in sorted_parts]
            merge_cdxj(collection.cdxj_path, _merged(parts_opened, Path(scratch)), replace=rebuild)
        store.mark_indexed((name, sizes[name]) for name in readable)


__all__ = ["OPEN_SUFFIX", "build_index", "cdxj_line", "index_file", "merge_cdxj", "refresh", "update_index"]
