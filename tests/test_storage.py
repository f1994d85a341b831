"""archiver.storage against a directory and against a real S3 server (moto, over HTTP on 127.0.0.1).

The same tests run on both: the commit protocol must not care where the collection lives.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import pickle
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from archiver.collection import Collection
from archiver.config import load
from archiver.errors import ArchiverError, ConfigError, MissingObjectError, StorageConfigError, StorageError
from archiver.storage import (
    FsspecStorage,
    LocalStorage,
    Storage,
    StorageOptions,
    check_name,
    collection_storage,
    open_storage,
)

from .support.s3server import (
    KEY,
    REGION,
    SECRET,
    S3Server,
    aws_environment,
    isolated_aws_environment,
    s3_with_bucket,
    unused_port,
)

BUCKET = "archive"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_with_bucket(BUCKET) as server:
        yield server


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return open_storage(tmp_path / "store")
    return in_bucket(request.getfixturevalue("s3"), tmp_path / "spool")


def in_bucket(s3: S3Server, spool: Path, **changes: Any) -> Storage:
    """A store under a prefix of its own in the bucket: no cleanup, and no test sees another's files."""
    return open_storage(f"s3://{BUCKET}/{uuid.uuid4().hex}", s3.options(spool_dir=spool, **changes))


def stage(storage: Storage, name: str, data: bytes) -> Path:
    path = storage.staging_path(name)
    path.write_bytes(data)
    return path


def put(storage: Storage, name: str, data: bytes) -> str:
    """`data` published as `name`, the way archiver commits every file: staged, then published."""
    return storage.publish(stage(storage, name, data), name)


def write_warc(path: Path, pages: list[tuple[str, bytes]]) -> list[tuple[int, int]]:
    """A gzip WARC: warcinfo, then a 200 text/html response per (uri, body). Each response's (offset, length)."""
    spans = []
    with path.open("wb") as out:
        writer = WARCWriter(out, gzip=True)
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "archiver tests"}))
        for uri, body in pages:
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            start = out.tell()
            # length given: warcio then spools nothing to a temporary file (which it would not close)
            writer.write_record(writer.create_warc_record(
                uri, "response", payload=io.BytesIO(body), length=len(body), http_headers=http,
                warc_headers_dict={"WARC-Date": "2024-01-02T03:04:05Z"}))
            spans.append((start, out.tell() - start))
    return spans


def test_open_storage_picks_the_backend(tmp_path: Path, s3: S3Server) -> None:
    assert isinstance(open_storage(tmp_path), LocalStorage)
    assert isinstance(open_storage(str(tmp_path)), LocalStorage)
    assert open_storage(f"file://{tmp_path}").url("a/b.txt") == str(tmp_path / "a/b.txt")
    remote = open_storage(f"s3://{BUCKET}/some/prefix/", s3.options())
    assert remote.url("archive/x.warc.gz") == f"s3://{BUCKET}/some/prefix/archive/x.warc.gz"
    with pytest.raises(StorageConfigError, match="give a bucket"):
        open_storage("s3://", s3.options())
    with pytest.raises(ConfigError, match="apply to s3:// only"):
        open_storage("memory://x", StorageOptions(endpoint_url="http://127.0.0.1:1"))
    with pytest.raises(ConfigError, match="unknown storage option"):
        open_storage(f"s3://{BUCKET}", {"endpoint": "http://127.0.0.1:1"})
    mapped = StorageOptions.from_mapping({"endpoint_url": s3.endpoint, "key": KEY, "secret": SECRET,
                                          "region": REGION, "spool_dir": str(tmp_path)})
    assert mapped.spool_dir == tmp_path and mapped.s3fs_options()["config_kwargs"]["s3"]["addressing_style"] == "path"


def test_publish_makes_the_file_visible_whole(storage: Storage) -> None:
    data = os.urandom(300_000)
    staged = stage(storage, "archive/a.warc.gz", data)
    assert staged.name == "a.warc.gz.open"
    assert not storage.exists("archive/a.warc.gz") and storage.list() == []

    url = storage.publish(staged, "archive/a.warc.gz")

    assert url == storage.url("archive/a.warc.gz")
    assert not staged.exists()  # consumed
    assert storage.exists("archive/a.warc.gz")
    assert storage.size("archive/a.warc.gz") == len(data)
    assert storage.read_bytes("archive/a.warc.gz") == data
    assert storage.list() == ["archive/a.warc.gz"]


def test_a_half_written_open_file_is_never_visible(storage: Storage, s3: S3Server) -> None:
    staged = stage(storage, "archive/b.warc.gz", b"WARC/1.1\r\nhalf a rec")
    assert staged.exists()
    assert storage.list() == [] and storage.list(suffix=".warc.gz") == []
    assert not storage.exists("archive/b.warc.gz")
    with pytest.raises(MissingObjectError):
        storage.read_bytes("archive/b.warc.gz")
    if not isinstance(storage, LocalStorage):  # nothing of it left the machine
        prefix = storage.url_root.split("/", 3)[3]
        assert s3.client().list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("KeyCount") == 0


def test_republishing_a_name_replaces_it(storage: Storage) -> None:
    storage.publish(stage(storage, "archive/c.warc.gz", b"first run"), "archive/c.warc.gz")
    storage.publish(stage(storage, "archive/c.warc.gz", b"the re-run, longer"), "archive/c.warc.gz")
    assert storage.read_bytes("archive/c.warc.gz") == b"the re-run, longer"
    put(storage, "fragments/1.parquet", b"one")
    put(storage, "fragments/1.parquet", b"two")
    assert storage.read_bytes("fragments/1.parquet") == b"two"
    assert storage.list() == ["archive/c.warc.gz", "fragments/1.parquet"]


def test_publishing_leaves_no_temporary_file(storage: Storage) -> None:
    put(storage, "fragments/0001.parquet", b"PAR1...PAR1")
    assert storage.read_bytes("fragments/0001.parquet") == b"PAR1...PAR1"
    if isinstance(storage, LocalStorage):
        assert [p.name for p in (storage.root / "fragments").iterdir()] == ["0001.parquet"]


def test_list_by_prefix_and_suffix(storage: Storage) -> None:
    for name in ["archive/a.warc.gz", "archive/b.warc.gz", "fragments/0001.parquet", "fragments/0002.parquet",
                 "fragments/notes.txt", "top.txt", "archive/old/z.warc.gz"]:
        put(storage, name, name.encode())
    stage(storage, "archive/c.warc.gz", b"in flight")

    assert storage.list() == ["archive/a.warc.gz", "archive/b.warc.gz", "archive/old/z.warc.gz",
                              "fragments/0001.parquet", "fragments/0002.parquet", "fragments/notes.txt", "top.txt"]
    assert storage.list("archive/", ".warc.gz") == ["archive/a.warc.gz", "archive/b.warc.gz",
                                                    "archive/old/z.warc.gz"]
    assert storage.list(suffix=".parquet") == ["fragments/0001.parquet", "fragments/0002.parquet"]
    assert storage.list("fragments/000") == ["fragments/0001.parquet", "fragments/0002.parquet"]
    assert storage.list("archive/b") == ["archive/b.warc.gz"]
    assert storage.list("t") == ["top.txt"]
    assert storage.list("nothing/") == [] and storage.list("fragments/", ".warc.gz") == []


def test_ranged_reads_at_any_offset(storage: Storage) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    storage.publish(stage(storage, "archive/r.warc.gz", data), "archive/r.warc.gz")
    with storage.open_read("archive/r.warc.gz") as fh:
        assert fh.seekable()
        for offset, length in [(2_500_000, 1000), (10, 100), (len(data) - 5, 100), (1_048_570, 20)]:
            assert fh.seek(offset) == offset
            assert fh.read(length) == data[offset : offset + length]
            assert fh.tell() == min(offset + length, len(data))
        fh.seek(-3, io.SEEK_END)
        assert fh.read() == data[-3:]


def test_remove(storage: Storage) -> None:
    put(storage, "fragments/x.parquet", b"x")
    storage.remove("fragments/x.parquet")
    assert not storage.exists("fragments/x.parquet") and storage.list() == []
    storage.remove("fragments/x.parquet")  # already gone: fine
    storage.remove("never/was.parquet")


def test_a_missing_name_is_a_missing_object_error(storage: Storage) -> None:
    for call in (storage.read_bytes, storage.open_read, storage.size):
        with pytest.raises(MissingObjectError) as caught:
            call("archive/none.warc.gz")  # type: ignore[operator]
        assert isinstance(caught.value, FileNotFoundError) and isinstance(caught.value, ArchiverError)
        assert "none.warc.gz" in str(caught.value)
    assert not storage.exists("archive/none.warc.gz")


def _list_in_another_process(storage: Storage) -> list[str]:
    return storage.list()


def test_a_storage_goes_to_worker_processes(storage: Storage) -> None:
    """Pickled (Dask, spawned workers) and used after a fork: the filesystem is made again there."""
    put(storage, "fragments/1.parquet", b"x")
    assert pickle.loads(pickle.dumps(storage)).list() == ["fragments/1.parquet"]
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        assert pool.submit(_list_in_another_process, storage).result(timeout=60) == ["fragments/1.parquet"]


@pytest.mark.parametrize("name", ["", "/abs", "../up", "a/../../up", "a//b", "a/.hidden", "x.warc.gz.open", "./a"])
def test_names_that_could_escape_or_collide_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="invalid storage name"):
        check_name(name)
    with pytest.raises(StorageError):
        put(open_storage(tmp_path), name, b"x")


def test_a_backslash_is_a_plain_character_on_disk_and_refused_in_object_names(s3: S3Server, tmp_path: Path) -> None:
    put(open_storage(tmp_path), "archive/a\\..\\b.warc.gz", b"x")  # other tools' odd names, on POSIX
    assert (tmp_path / "archive" / "a\\..\\b.warc.gz").read_bytes() == b"x"
    with pytest.raises(StorageError, match="no backslash"):
        put(in_bucket(s3, tmp_path / "spool"), "archive/a\\b", b"x")


def test_a_warc_published_to_the_store_reads_back_record_by_record(storage: Storage) -> None:
    name = "archive/news-20240102030405-0001.warc.gz"
    staged = storage.staging_path(name)
    uris = [f"https://example.org/news/{n}.html" for n in range(5)]
    spans = write_warc(staged, [(uri, f"<html><title>article {n}</title>{'x' * 5000 * n}</html>".encode())
                                for n, uri in enumerate(uris)])
    storage.publish(staged, name)

    offsets: list[tuple[str, int, int]] = []
    with storage.open_read(name) as fh:
        records = ArchiveIterator(fh)
        for record in records:
            if record.rec_type == "response":
                offsets.append((record.rec_headers.get_header("WARC-Target-URI"), records.get_record_offset(),
                                records.get_record_length()))
    assert [uri for uri, _, _ in offsets] == uris
    assert [(offset, length) for _, offset, length in offsets] == spans

    uri, offset, _length = offsets[3]  # one record by its CDXJ offset, as replay reads it
    with storage.open_read(name) as fh:
        fh.seek(offset)
        record = next(iter(ArchiveIterator(fh)))
        assert record.rec_headers.get_header("WARC-Target-URI") == uri
        assert record.content_stream().read().startswith(b"<html><title>article 3</title>")


def test_an_object_replaced_while_being_read_fails_rather_than_mixing(s3: S3Server, tmp_path: Path) -> None:
    storage = in_bucket(s3, tmp_path, read_block_size=64 * 1024)
    put(storage, "archive/m.warc.gz", b"a" * 1_000_000)
    with storage.open_read("archive/m.warc.gz") as fh:
        assert fh.read(10) == b"a" * 10
        put(storage, "archive/m.warc.gz", b"b" * 1_000_000)  # a re-run's publish
        fh.seek(500_000)
        with pytest.raises(StorageError, match="replaced while it was being read"):
            fh.read(10)


def test_a_large_file_goes_up_in_parts(s3: S3Server, tmp_path: Path) -> None:
    part = 5 * 1024 * 1024
    storage = in_bucket(s3, tmp_path, part_size=part, max_concurrency=2)
    data = os.urandom(2 * part + 123)
    storage.publish(stage(storage, "archive/big.warc.gz", data), "archive/big.warc.gz")
    key = storage.url("archive/big.warc.gz").split("/", 3)[3]
    head = s3.client().head_object(Bucket=BUCKET, Key=key)
    assert head["ETag"].strip('"').endswith("-3")  # a multipart upload's ETag counts its parts: 5, 5, 123 B
    assert head["ContentLength"] == len(data) and head.get("ContentEncoding") is None
    assert storage.read_bytes("archive/big.warc.gz") == data
    assert s3.client().list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_a_missing_bucket_is_a_configuration_error(s3: S3Server, tmp_path: Path) -> None:
    storage = open_storage("s3://no-such-bucket/prefix", s3.options(spool_dir=tmp_path))
    staged = stage(storage, "archive/a.warc.gz", b"data")
    message = re.escape(f"no bucket 'no-such-bucket' at {s3.endpoint}")
    for call in (lambda: storage.publish(staged, "archive/a.warc.gz"), lambda: storage.list(),
                 lambda: storage.exists("archive/a.warc.gz"), lambda: storage.read_bytes("archive/a.warc.gz"),
                 lambda: put(storage, "f/1.parquet", b"x"), lambda: storage.remove("f/1.parquet")):
        with pytest.raises(StorageConfigError, match=message) as caught:
            call()
        assert caught.value.exit_code == 2 and isinstance(caught.value, ConfigError)
    assert staged.read_bytes() == b"data"  # left for the retry


def test_an_unreachable_endpoint_is_a_storage_error(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{unused_port()}"
    with isolated_aws_environment():
        options = StorageOptions(endpoint_url=endpoint, key=KEY, secret=SECRET, region=REGION, max_attempts=1,
                                 connect_timeout=2, spool_dir=tmp_path)
        storage = open_storage(f"s3://{BUCKET}/p", options)
        staged = stage(storage, "archive/a.warc.gz", b"data")
        started = time.monotonic()
        for call in (lambda: storage.publish(staged, "archive/a.warc.gz"), lambda: storage.list(),
                     lambda: storage.exists("x"), lambda: storage.read_bytes("x")):
            with pytest.raises(StorageError, match=re.escape(f"cannot reach {endpoint}")) as caught:
                call()
            assert not isinstance(caught.value, StorageConfigError)
        assert time.monotonic() - started < 10
        assert staged.read_bytes() == b"data"


def test_unknown_credentials_are_a_configuration_error(tmp_path: Path) -> None:
    with isolated_aws_environment():
        server = S3Server(enforce_auth=True)  # refuses keys it has not issued, as AWS and MinIO do
        try:
            storage = open_storage(f"s3://{BUCKET}/p", server.options(spool_dir=tmp_path))
            with pytest.raises(StorageConfigError, match="access denied") as caught:
                put(storage, "f/1.parquet", b"x")
            assert "InvalidAccessKeyId" in str(caught.value)
            with pytest.raises(StorageConfigError, match="access denied"):
                storage.list()
        finally:
            server.stop()


def test_local_errors_name_the_path(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"not a directory")
    with pytest.raises(StorageError, match=re.escape(str(tmp_path / "file"))) as caught:
        put(open_storage(tmp_path / "file"), "f/1.parquet", b"x")
    assert not isinstance(caught.value, StorageConfigError)


_PYWB_LOAD = r"""
import json, socket, sys
real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo
def loopback_only(sock, address):  # this process must not reach AWS if the endpoint setting were ignored
    if isinstance(address, tuple) and not str(address[0]).startswith("127."):
        raise OSError(f"refused to connect outside loopback: {address}")
    return real_connect(sock, address)
def no_dns(host, *args, **kwargs):
    if not str(host).startswith("127."):
        raise socket.gaierror(socket.EAI_NONAME, f"refused to resolve {host}")
    return real_getaddrinfo(host, *args, **kwargs)
socket.socket.connect, socket.getaddrinfo = loopback_only, no_dns

from pywb.utils.loaders import BlockLoader
from warcio.archiveiterator import ArchiveIterator

out = {}
for label, url in json.loads(sys.argv[1]).items():
    stream = BlockLoader().load(url, int(sys.argv[2]), int(sys.argv[3]))
    record = next(iter(ArchiveIterator(stream)))
    out[label] = [record.rec_headers.get_header("WARC-Target-URI"), record.content_stream().read().decode()]
print(json.dumps(out))
"""


def test_pywb_loads_a_record_from_the_bucket_by_offset(s3: S3Server, tmp_path: Path) -> None:
    """pywb's own loader (as archive_paths uses it) reads one record by offset and length:
    over http(s) from a public-read bucket, and over s3:// with boto3 and AWS_ENDPOINT_URL_S3."""
    storage = in_bucket(s3, tmp_path)
    name = "archive/replay.warc.gz"
    staged = storage.staging_path(name)
    spans = write_warc(staged, [("https://example.org/a", b"hello from the bucket"),
                                ("https://example.org/b", b"not this one")])
    start, length = spans[0]
    storage.publish(staged, name)
    key = storage.url(name).removeprefix("s3://")
    urls = {"http": f"{s3.endpoint}/{key}", "s3": f"s3://{key}"}

    env = dict(os.environ)
    aws_environment(env)
    env.update(AWS_ENDPOINT_URL_S3=s3.endpoint, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET,
               AWS_DEFAULT_REGION=REGION)
    done = subprocess.run([sys.executable, "-c", _PYWB_LOAD, json.dumps(urls), str(start), str(length)],
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    expected = ["https://example.org/a", "hello from the bucket"]
    assert loaded == {"http": expected, "s3": expected}


@pytest.mark.slow
def test_pywb_replays_a_collection_whose_warcs_are_in_the_bucket(s3: S3Server, tmp_path: Path) -> None:
    """The whole of replay: pywb's `wayback` with archive_paths in the bucket, over http and s3://."""
    storage = in_bucket(s3, tmp_path / "spool")
    name = "archive/news-1.warc.gz"
    staged = storage.staging_path(name)
    write_warc(staged, [(f"https://example.org/news/{n}.html", f"<p>article {n} 新闻</p>".encode()) for n in range(3)])
    storage.publish(staged, name)
    from pywb.indexer.cdxindexer import write_cdx_index

    index = tmp_path / "index.cdxj"
    with index.open("wb") as out, storage.open_read(name) as warc:  # indexed from the bucket, too
        write_cdx_index(out, warc, "news-1.warc.gz", cdxj=True)
    archive = f"{storage.url_root}/archive/".removeprefix("s3://")
    (tmp_path / "config.yaml").write_text(
        "collections:\n"
        f"  over-http:\n    index_paths: {index}\n    archive_paths: {s3.endpoint}/{archive}\n"
        f"  over-s3:\n    index_paths: {index}\n    archive_paths: s3://{archive}\n")

    port = unused_port()
    env = dict(os.environ)
    aws_environment(env)
    env.update(AWS_ENDPOINT_URL_S3=s3.endpoint, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET,
               AWS_DEFAULT_REGION=REGION)
    wayback = subprocess.Popen([str(Path(sys.executable).with_name("wayback")), "-b", "127.0.0.1", "-p", str(port)],
                               cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for collection in ("over-http", "over-s3"):
            url = f"http://127.0.0.1:{port}/{collection}/20240102030405id_/https://example.org/news/1.html"
            assert _get(url, wayback) == "<p>article 1 新闻</p>"
    finally:
        wayback.terminate()
        _, err = wayback.communicate(timeout=10)
    assert b"Traceback" not in err, err.decode(errors="replace")


def _get(url: str, server: subprocess.Popen[bytes]) -> str:
    import urllib.request

    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return str(response.read().decode())
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_config_yaml_storage_options_reach_the_store(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("archiver:\n  storage: s3://bucket/prefix\n  storage_endpoint: http://127.0.0.1:9\n"
                      f"  storage_options:\n    part_size: 8388608\n    region: eu-west-1\n    spool_dir: {tmp_path}\n"
                      "    extra: {use_ssl: false}\n")
    cfg = load(tmp_path)
    store = collection_storage(cfg, Collection.of(cfg))  # makes no request
    assert isinstance(store, FsspecStorage) and store.url_root == "s3://bucket/prefix/news"
    options = store.options
    assert (options.part_size, options.region, options.spool_dir, options.endpoint_url, dict(options.extra)) == (
        8 * 1024 * 1024, "eu-west-1", tmp_path, "http://127.0.0.1:9", {"use_ssl": False})
    config.write_text("archiver:\n  storage: s3://bucket/prefix\n  storage_options:\n    part_sise: 8388608\n")
    with pytest.raises(ConfigError, match=r"unknown storage option.*part_sise"):
        collection_storage(load(tmp_path), Collection.of(cfg))
    config.write_text("archiver:\n  storage_options: 5\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load(tmp_path)
