"""The replay index in a real Redis (redis-server on 127.0.0.1): its layout, reloads, errors, and
two replay front-ends sharing it."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from click.testing import CliRunner

from archiver.capture.run import capture
from archiver.cli import cli
from archiver.collection import Collection
from archiver.config import Config
from archiver.errors import ReplayIndexError, UsageError
from archiver.index.pywbconfig import set_collection_index
from archiver.index.redis import load_redis, parse_redis_url
from archiver.init import init

from .conftest import capture_pages
from .support.newsite import PAGES, NewsSite
from .support.replaying import free_port, replay_server
from .test_zipnum import synthetic_cdxj


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of our own on 127.0.0.1, nothing saved to disk; its URL (database 0)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (make test / .ci/run installs it: apt-get install redis-server)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly",
                                "no", "--dir", str(workdir), "--protected-mode", "yes"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        client = redis.StrictRedis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


def client_of(url: str) -> Any:
    return redis.StrictRedis.from_url(url)


@pytest.fixture
def empty_redis(redis_url: str) -> str:
    client_of(redis_url).flushdb()
    return redis_url


def test_the_sorted_set_holds_exactly_the_cdxj_lines_in_pywbs_layout(tmp_path: Path, empty_redis: str) -> None:
    collection = Collection.at(tmp_path, "news")
    collection.create()
    lines = synthetic_cdxj(collection.cdxj_path, 12_000)
    report = load_redis(collection, empty_redis, configure=False)
    assert (report.lines, report.members) == (12_000, 12_000)
    assert report.target.pywb_url == empty_redis + "/archiver:news:cdxj"
    client = client_of(empty_redis)
    assert client.keys("*") == [b"archiver:news:cdxj"]  # no temporary key left behind
    assert client.ttl("archiver:news:cdxj") == -1  # and the loading key's expiry is gone
    assert client.zrangebylex("archiver:news:cdxj", "-", "+") == [line.rstrip(b"\n") for line in lines]
    assert set(client.zrange("archiver:news:cdxj", 0, -1, withscores=True, score_cast_func=float)) == {
        (line.rstrip(b"\n"), 0.0) for line in lines}
    # the lookup pywb makes: ZRANGEBYLEX key [<SURT key> (<end key>
    found = client.zrangebylex("archiver:news:cdxj", b"[com,example,news7)/a/3.html ",
                               b"(com,example,news7)/a/3.html!")
    assert found == [line.rstrip(b"\n") for line in lines if line.startswith(b"com,example,news7)/a/3.html ")]
    assert len(found) == 1


def test_reloading_replaces_the_index_and_never_duplicates_it(tmp_path: Path, empty_redis: str) -> None:
    collection = Collection.at(tmp_path, "news")
    collection.create()
    lines = synthetic_cdxj(collection.cdxj_path, 3000)
    load_redis(collection, empty_redis, configure=False)
    load_redis(collection, empty_redis, configure=False)
    client = client_of(empty_redis)
    assert client.zcard("archiver:news:cdxj") == 3000
    kept = lines[::3]
    collection.cdxj_path.write_bytes(b"".join(kept))  # captures gone since: they must go from Redis too
    report = load_redis(collection, empty_redis, configure=False)
    assert report.members == len(kept) == client.zcard("archiver:news:cdxj")
    assert client.zrangebylex("archiver:news:cdxj", "-", "+") == [line.rstrip(b"\n") for line in kept]
    other = Collection.at(tmp_path, "other")
    other.create()
    synthetic_cdxj(other.cdxj_path, 10)
    load_redis(other, empty_redis + "/idx:{coll}", configure=False)  # a key of one's own, per collection
    assert client.zcard("idx:other") == 10 and client.zcard("archiver:news:cdxj") == len(kept)
    collection.cdxj_path.write_bytes(b"")
    assert load_redis(collection, empty_redis, configure=False).members == 0
    assert not client.exists("archiver:news:cdxj")


def test_a_key_that_is_not_an_index_is_left_alone(tmp_path: Path, empty_redis: str) -> None:
    collection = Collection.at(tmp_path, "news")
    collection.create()
    synthetic_cdxj(collection.cdxj_path, 10)
    client_of(empty_redis).set("archiver:news:cdxj", "someone else's")
    with pytest.raises(ReplayIndexError, match="holds a string"):
        load_redis(collection, empty_redis, configure=False)
    assert client_of(empty_redis).get("archiver:news:cdxj") == b"someone else's"


def test_an_unreachable_redis_is_a_clear_error(tmp_path: Path) -> None:
    collection = Collection.at(tmp_path, "news")
    collection.create()
    synthetic_cdxj(collection.cdxj_path, 10)
    port = free_port()  # bound a moment ago and released: nobody listens there
    with pytest.raises(ReplayIndexError, match=rf"cannot reach Redis at 127\.0\.0\.1:{port}.*redis-server running"):
        load_redis(collection, f"redis://127.0.0.1:{port}/0", configure=False)


@pytest.mark.parametrize(("url", "message"), [
    ("http://127.0.0.1:6379/0", "redis:// URLs only"),
    ("rediss://127.0.0.1:6379/0", "redis:// URLs only"),
    ("redis://127.0.0.1:port/0", "malformed Redis URL"),
    ("redis:///0", "no host"),
    ("redis://127.0.0.1:6379/zero", "must be a number"),
    ("redis://127.0.0.1:6379/0/a/b", "no '/'"),
    ("redis://127.0.0.1:6379/0?db=1", "query"),
    ("redis://user:pw@127.0.0.1:6379/0", "names a user"),
])
def test_a_malformed_redis_url_is_a_usage_error(url: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_redis_url(url, "news")


def test_redis_urls_as_pywb_reads_them() -> None:
    target = parse_redis_url("redis://:secret@127.0.0.1:7000/3/pywb:{coll}:cdxj", "news")
    assert target.pywb_url == "redis://:secret@127.0.0.1:7000/3/pywb:news:cdxj"
    assert "secret" not in target.display
    assert parse_redis_url("redis://127.0.0.1", "news").pywb_url == "redis://127.0.0.1/0/archiver:news:cdxj"


def test_the_cli_reports_an_unreachable_redis_and_a_bad_url(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["--root", str(tmp_path), "init", "-c", "news"]).exit_code == 0
    port = free_port()
    result = runner.invoke(cli, ["--root", str(tmp_path), "index", "--redis", f"redis://127.0.0.1:{port}/0"])
    assert result.exit_code == 5 and f"error: cannot reach Redis at 127.0.0.1:{port}" in result.output  # replay
    result = runner.invoke(cli, ["--root", str(tmp_path), "index", "--redis", "rediss://127.0.0.1/0"])
    assert result.exit_code == 2 and "redis:// URLs only" in result.output
    result = runner.invoke(cli, ["--root", str(tmp_path), "index", "--zipnum", "--redis", "redis://127.0.0.1/0"])
    assert result.exit_code == 2 and "choose one" in result.output
    assert "collections:" not in (tmp_path / "config.yaml").read_text()  # nothing configured on failure


@pytest.mark.slow
def test_two_replay_front_ends_serve_the_same_capture_from_one_redis(tmp_path: Path, cfg: Config, site: NewsSite,
                                                                     empty_redis: str) -> None:
    init(cfg)
    collection = capture_pages(cfg, site, ["/plain.html", "/gbk.html"])
    result = CliRunner().invoke(cli, ["--root", str(cfg.root), "index", "--redis", empty_redis])
    assert result.exit_code == 0, result.output
    assert f"into {empty_redis}/archiver:news:cdxj; replay reads it" in result.output
    entry = yaml.safe_load((cfg.root / "config.yaml").read_text())["collections"]["news"]
    assert entry == {"index": empty_redis + "/archiver:news:cdxj", "archive_paths": "collections/news/archive/"}
    collection.cdxj_path.unlink()  # only Redis can answer now

    # a second front-end: a root of its own with no index at all, reading the first one's WARC files
    other = tmp_path / "front-end-2"
    init(Config(root=other))
    set_collection_index(other, "news", entry["index"], archive_paths=f"{collection.archive_dir}/")

    url = site.url + "/plain.html"
    with ExitStack() as stack:
        bases = [stack.enter_context(replay_server(root)) for root in (cfg.root, other)]
        answers = []
        for base in bases:
            with urllib.request.urlopen(f"{base}/news/cdx?url={url}&output=json", timeout=30) as response:
                rows = [json.loads(line) for line in response.read().decode().splitlines()]
            assert [row["url"] for row in rows] == [url]
            with urllib.request.urlopen(f"{base}/news/{rows[0]['timestamp']}id_/{url}", timeout=30) as response:
                answers.append(response.read())
        assert answers == [PAGES["/plain.html"][2]] * 2


def test_capture_keeps_the_redis_index_in_step(cfg: Config, site: NewsSite, empty_redis: str) -> None:
    init(cfg)  # config.yaml, which names the replay index
    collection = capture_pages(cfg, site, ["/plain.html"])
    load_redis(collection, empty_redis)
    report = capture(cfg, [site.url + "/gbk.html"])
    assert report.captured == 1 and report.replay_index.startswith("Redis index"), report
    target = parse_redis_url(empty_redis, "news")
    members = client_of(empty_redis).zrange(target.key, 0, -1)
    assert members == collection.cdxj_path.read_bytes().splitlines()
