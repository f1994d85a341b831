"""A collection whose WARC files and fragments live on an object store: a real S3 server (moto's,
on 127.0.0.1) holds them; capture, index and replay (pywb reading over HTTP) work from there."""

from __future__ import annotations

import gzip
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from archiver.capture.run import capture
from archiver.collection import Collection
from archiver.config import Config
from archiver.index.build import build_index
from archiver.index.metadata import Store
from archiver.index.pywbconfig import set_collection_index
from archiver.init import init
from archiver.storage import collection_storage

from .support.newsite import NewsSite, seed_document
from .support.replaying import replay_server
from .support.s3server import KEY, REGION, SECRET, S3Server, s3_with_bucket

BUCKET = "news-archive"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_with_bucket(BUCKET) as server:
        yield server


@pytest.fixture
def s3_cfg(cfg: Config, s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> Config:
    # credentials as a user gives them: in the environment, which s3fs reads itself
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_REGION", REGION)
    return cfg.replace(storage=f"s3://{BUCKET}/{uuid.uuid4().hex}", storage_endpoint=s3.endpoint, batch_size=2)


def _capture(cfg: Config, site: NewsSite, pages: list[str]) -> Collection:
    seeds = cfg.root / "seeds"
    seeds.mkdir(exist_ok=True)
    for n, page in enumerate(pages):
        (seeds / f"{n}.txt").write_text(seed_document(site.url + page, f"t{n}", 1696553101000 + n))
    report = capture(cfg, [str(seeds)])
    assert report.captured == len(pages) and report.ok, report
    return Collection.at(cfg.root, "news")


def test_capture_and_index_with_the_archive_on_s3(s3_cfg: Config, site: NewsSite, s3: S3Server) -> None:
    pages = ["/plain.html", "/gbk.html", "/chunked.html", "/og-only.html"]
    collection = _capture(s3_cfg, site, pages)
    storage = collection_storage(s3_cfg, collection)
    assert not list(collection.archive_dir.iterdir())  # nothing on the local disk
    names = storage.list("archive/", ".warc.gz")
    assert len(names) >= 2 and len(storage.list("indexes/fragments/", ".parquet")) == len(names)
    with Store(collection.db_path) as store:
        rows = list(store.articles())
    assert sorted(r.url for r in rows) == sorted(site.url + p for p in pages)
    for row in rows:  # every row points at its record, read from the bucket by range
        with storage.open_read(f"archive/{row.warc_file}") as fh:
            fh.seek(row.warc_offset or 0)
            record = gzip.decompress(fh.read(row.warc_length or 0))
        assert f"WARC-Target-URI: {row.url}\r\n".encode() in record and b"WARC-Type: response" in record
    # the indexes rebuilt from the bucket alone are the ones capture made
    cdxj = collection.cdxj_path.read_bytes()
    report = build_index(s3_cfg)
    assert report.files == len(names) and not report.unreadable
    assert collection.cdxj_path.read_bytes() == cdxj
    assert not storage.list("indexes/parts-")  # the index run's parts were removed
    with Store(collection.db_path) as store:
        assert list(store.articles()) == rows
    # status counts the files in the bucket (there are none in the local archive/ folder)
    from archiver.status import status

    (shown,) = status(s3_cfg).collections
    assert (shown.warc_files, shown.unindexed_files, shown.captured) == (len(names), 0, len(pages))
    assert shown.warc_bytes == sum(storage.size(name) for name in names) > 0
    # a batch that is captured again does not repeat: the second run skips every seed
    again = capture(s3_cfg, [str(s3_cfg.root / "seeds")])
    assert again.skipped == len(pages) and again.captured == 0


def test_a_dead_attempts_object_is_removed_and_never_indexed(s3_cfg: Config, site: NewsSite) -> None:
    collection = _capture(s3_cfg, site, ["/plain.html"])
    storage = collection_storage(s3_cfg, collection)
    (name,) = storage.list("archive/", ".warc.gz")
    orphan = name.replace("-000.warc.gz", "-001.warc.gz")  # as if an attempt that died had left it
    staged = storage.staging_path(orphan)
    with storage.open_read(name) as fh:
        staged.write_bytes(fh.read())
    storage.publish(staged, orphan)
    report = build_index(s3_cfg)
    assert not storage.exists(orphan) and report.files == 1


@pytest.mark.slow
def test_replay_reads_the_warc_files_from_the_bucket_over_http(s3_cfg: Config, site: NewsSite,
                                                                s3: S3Server) -> None:
    collection = _capture(s3_cfg, site, ["/plain.html"])
    assert not list(collection.archive_dir.iterdir())
    prefix = s3_cfg.storage.removeprefix("s3://")
    init(s3_cfg)  # config.yaml, where the collection's entry goes
    # pywb reads archive_paths over http(s) with range requests (the bucket is public-read here)
    set_collection_index(s3_cfg.root, "news", "collections/news/indexes/index.cdxj",
                         archive_paths=f"{s3.endpoint}/{prefix}/news/archive/")
    with replay_server(s3_cfg.root) as base, urllib.request.urlopen(
            f"{base}/news/2030id_/{site.url}/plain.html", timeout=30) as response:
        body = response.read()
    with urllib.request.urlopen(f"{site.url}/plain.html", timeout=10) as live:
        assert body == live.read()
    assert collection.cdxj_path.exists()


@pytest.mark.slow
def test_cluster_workers_write_to_the_bucket(s3_cfg: Config, site: NewsSite, tmp_path: Path) -> None:
    """Workers that share no filesystem with the client: WARC files and fragments go through S3."""
    from .support.daskcluster import dask_cluster

    credentials = {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": REGION,
                   "AWS_EC2_METADATA_DISABLED": "true", "TMPDIR": str(tmp_path / "worker-spool")}
    (tmp_path / "worker-spool").mkdir()
    hosts = [site.url, site.url.replace("127.0.0.1", "localhost")]
    pages = [f"{host}/slow/{n:02d}" for n in range(6) for host in hosts]
    with dask_cluster(tmp_path / "dask", env=credentials) as scheduler_file:
        report = capture(s3_cfg.replace(cluster=str(scheduler_file)), pages)
    assert report.captured == len(pages) and report.ok, report
    collection = Collection.at(s3_cfg.root, "news")
    storage = collection_storage(s3_cfg, collection)
    assert not list(collection.archive_dir.iterdir()) and not list((tmp_path / "worker-spool").rglob("*.open"))
    names = storage.list("archive/", ".warc.gz")
    assert len({name.split("-")[2] for name in names}) == 2  # a shard per host
    with Store(collection.db_path) as store:
        rows = list(store.articles())
    assert sorted(r.url for r in rows) == sorted(pages) and all(f"archive/{r.warc_file}" in names for r in rows)


def test_commands_that_read_local_files_say_so(s3_cfg: Config) -> None:
    from archiver.errors import UsageError
    from archiver.verify import verify
    from archiver.wacz import wacz

    for call in (lambda: verify(s3_cfg, []), lambda: wacz(s3_cfg, s3_cfg.root / "x.wacz")):
        with pytest.raises(UsageError, match="copy them to a local root first"):
            call()
