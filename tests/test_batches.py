"""Shards, batches and their commit protocol, with the real capture code against the test site."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from archiver.capture.batch import BatchJob, SeedPool, bounded_map, collect, run_batch
from archiver.capture.shards import Batcher, batch_key, shard_of
from archiver.collection import Collection
from archiver.config import Config
from archiver.index.build import update_index
from archiver.index.fragments import Entry, files_named, fragment_name, iter_entries, write_fragment
from archiver.index.metadata import Article, Store
from archiver.seeds.model import Seed
from archiver.storage import LocalStorage

from .support.newsite import NewsSite
from .support.warcs import check_with_third_party_tools


def seeds(*urls: str) -> list[Seed]:
    return [Seed(url=url, source=f"s{n}") for n, url in enumerate(urls)]


def test_a_hosts_seeds_share_a_shard_whatever_the_path_or_process() -> None:
    assert shard_of("http://a.example/1", 1024) == shard_of("http://A.example/2?x", 1024)
    # stable across runs and machines: a fixed value, not Python's salted hash()
    assert shard_of("http://a.example/1", 1024) == shard_of("http://a.example/9", 1024) == 526
    assert len({shard_of(f"http://host{n}.example/", 64) for n in range(200)}) > 50
    assert batch_key(seeds("http://a/1", "http://a/2")) == batch_key(seeds("http://a/1", "http://a/2"))
    assert batch_key(seeds("http://a/1", "http://a/2")) != batch_key(seeds("http://a/1", "http://a/3"))


def test_batches_leave_full_or_after_waiting_and_never_two_per_shard() -> None:
    now = [0.0]
    batcher = Batcher(shards=16, batch_size=3, max_wait=5.0, now=lambda: now[0])
    for n in range(7):
        batcher.add(Seed(url=f"http://a.example/{n}", source="s"))
    batcher.add(Seed(url="http://b.example/0", source="s"))
    first = batcher.take(busy=set(), ended=False, limit=10)
    assert [len(b.items) for b in first] == [3]  # a.example's first full batch; b.example waits
    shard = first[0].shard
    assert batcher.take(busy={shard}, ended=False, limit=10) == []  # one batch per shard in flight
    assert [len(b.items) for b in batcher.take(busy=set(), ended=False, limit=10)] == [3]
    now[0] = 5.0  # the leftovers have waited long enough
    rest = batcher.take(busy=set(), ended=False, limit=10)
    assert sorted(len(b.items) for b in rest) == [1, 1] and batcher.buffered == 0
    assert [s.url for b in first for s in b.items] == [f"http://a.example/{n}" for n in range(3)]


def test_two_batches_of_the_same_urls_never_share_a_name() -> None:
    # The same URLs batched twice in one second (a seed retried, a requisite fetched again) once got
    # one name, and the second batch's WARC files and fragment replaced the first's.
    now = [0.0]
    batcher = Batcher(shards=16, batch_size=2, max_wait=5.0, now=lambda: now[0])
    names = []
    for _ in range(3):
        for url in ("http://a.example/1", "http://a.example/2"):
            batcher.add(Seed(url=url, source="s"))
        names += [b.name for b in batcher.take(busy=set(), ended=False, limit=10)]
    other = Batcher(shards=16, batch_size=2, max_wait=5.0, now=lambda: now[0])  # another run, same second
    for url in ("http://a.example/1", "http://a.example/2"):
        other.add(Seed(url=url, source="s"))
    names += [b.name for b in other.take(busy=set(), ended=False, limit=10)]
    assert len(names) == 4 and len(set(names)) == 4


def test_fragments_keep_rows_exactly(tmp_path: Path) -> None:
    article = Article(url="http://a/1", title="标题 \"x\"\n", seed_timestamp=1696553101000, seed_time="t",
                      page_title="", published="", capture_time="c", status=None, final_url="", lead_image_url="",
                      lead_image_status=None, lead_image_error="", warc_file="f.warc.gz", warc_offset=0,
                      warc_length=None,
                      payload_digest="", replay_path="", source="s", error="", attempts=2)
    entries = [Entry(article, ["a 1 {}", "b 2 {}"], "", "正文"), Entry(article, [], "why", "")]
    storage = LocalStorage(tmp_path)
    name = write_fragment(storage, "x", ["f.warc.gz"], entries)
    assert name == fragment_name("x")
    assert list(iter_entries(storage, name)) == entries and files_named(storage, name) == ["f.warc.gz"]
    assert [p.name for p in (tmp_path / "indexes" / "fragments").iterdir()] == ["x.parquet"]  # nothing else left


def _job(cfg: Config, site: NewsSite, pages: list[str]) -> BatchJob:
    batch_seeds = seeds(*(site.url + page for page in pages))
    from archiver.capture.shards import Batch

    collection = Collection.at(cfg.root, "news")
    collection.create()
    return BatchJob(cfg, collection, Batch(shard_of(site.url, cfg.shards), batch_key(batch_seeds), batch_seeds),
                    "20240102030405")


def test_a_batch_run_twice_leaves_its_outputs_once(cfg: Config, site: NewsSite, clock: Callable[[], datetime],
                                                   new_id: Callable[[], str]) -> None:
    job = _job(cfg.replace(warc_max_size=30_000, workers=1), site, ["/plain.html", "/gbk.html", "/chunked.html"])
    first = run_batch(job, clock, new_id)
    archive = job.collection.archive_dir
    names = sorted(p.name for p in archive.iterdir())
    assert len(names) >= 2 and all(n.startswith(job.warc_base + "-") for n in names)
    # an attempt that died after its files were renamed: the next attempt writes the same names
    extra = archive / f"{job.warc_base}-009.warc.gz"
    shutil.copy(archive / names[0], extra)
    (archive / f"{job.warc_base}-000.warc.gz.open").write_bytes(b"half a record")
    second = run_batch(job, clock, new_id)
    assert second.fragment == first.fragment == fragment_name(job.name)
    assert not list(archive.glob("*.open"))  # the dead attempt's .open was removed when this one started
    entries, files = collect(job, second)
    assert sorted(p.name for p in archive.iterdir()) == names == sorted(name for name, _ in files)
    assert not extra.exists()  # not named by the committed fragment: removed
    assert sorted(e.article.url for e in entries) == sorted(s.url for s in job.batch.items)
    assert all(e.article.warc_file in names for e in entries)
    check_with_third_party_tools(archive)


def test_refresh_removes_files_the_committed_fragment_does_not_name(cfg: Config, site: NewsSite) -> None:
    job = _job(cfg, site, ["/plain.html"])
    run_batch(job)
    archive = job.collection.archive_dir
    (committed,) = archive.glob("*.warc.gz")
    orphan = archive / f"{job.warc_base}-001.warc.gz"
    shutil.copy(committed, orphan)
    unrelated = archive / "other-tool.warc.gz"
    shutil.copy(committed, unrelated)  # not a batch file: indexed like any WARC
    report = update_index(cfg)
    assert not orphan.exists() and any("removed (its batch was committed" in m for m in report.mended)
    assert report.files == 2
    with Store(job.collection.db_path) as store:
        assert set(store.indexed_files()) == {committed.name, unrelated.name}


def test_a_stopped_batch_commits_only_what_it_did(cfg: Config, site: NewsSite) -> None:
    job = _job(cfg, site, ["/plain.html", "/gbk.html"])
    stop = threading.Event()
    stop.set()
    done = run_batch(job, stop=stop)
    storage = LocalStorage(job.collection.path)
    assert done.seeds == 0 and list(iter_entries(storage, done.fragment)) == []
    assert files_named(storage, done.fragment) == []
    assert not list(job.collection.archive_dir.iterdir())  # a file is opened only for a seed to write


def test_batches_sharing_a_seed_pool_each_keep_to_their_own_limit() -> None:
    # what a worker process does: its batches' seeds run on one pool of threads, and each batch
    # keeps no more of its seeds in it than its hosts' politeness lets work (job.threads)
    pool = SeedPool(4)
    lock = threading.Lock()
    running: dict[str, int] = {"a": 0, "b": 0, "all": 0}
    most: dict[str, int] = {"a": 0, "b": 0, "all": 0}

    def work(batch: str) -> Callable[[Seed], str]:
        def one(seed: Seed) -> str:
            with lock:
                for key in (batch, "all"):
                    running[key] += 1
                    most[key] = max(most[key], running[key])
            time.sleep(0.01)
            with lock:
                for key in (batch, "all"):
                    running[key] -= 1
            return seed.url
        return one

    batch_a = seeds(*(f"http://a.example/{n}" for n in range(12)))
    batch_b = seeds(*(f"http://b.example/{n}" for n in range(12)))
    results: dict[str, list[str]] = {}
    threads = [threading.Thread(target=lambda k=k, s=s, limit=limit: results.__setitem__(
        k, bounded_map(pool.executor, work(k), s, limit))) for k, s, limit in (("a", batch_a, 1), ("b", batch_b, 3))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    pool.close()
    assert most["a"] == 1 and most["b"] == 3 and most["all"] == 4
    assert results["a"] == [s.url for s in batch_a] and results["b"] == [s.url for s in batch_b]  # in order


def test_a_seed_that_raises_stops_its_batch_once_the_others_end() -> None:
    pool = SeedPool(3)
    started: list[str] = []
    ended: list[str] = []

    def one(seed: Seed) -> None:
        started.append(seed.url)
        if seed.url.endswith("/1"):
            raise RuntimeError("disk full")
        time.sleep(0.05)
        ended.append(seed.url)

    batch = seeds(*(f"http://a.example/{n}" for n in range(10)))
    try:
        with pytest.raises(RuntimeError, match="disk full"):
            bounded_map(pool.executor, one, batch, 3)
        # the seeds running when it failed ended before it was raised; none started after
        assert sorted(started) == sorted(s.url for s in batch[:3]) and len(ended) == 2
    finally:
        pool.close()
