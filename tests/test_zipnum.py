"""The zipnum cluster index: its format byte for byte, pywb reading it, and replay served from it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tracemalloc
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from archiver.capture.run import capture
from archiver.cli import cli
from archiver.collection import Collection
from archiver.config import Config
from archiver.errors import ConfigError, ReplayIndexError
from archiver.index.pywbconfig import collection_index, set_collection_index
from archiver.index.zipnum import LOC_NAME, SUMMARY_NAME, build_zipnum, write_zipnum
from archiver.init import init

from .conftest import capture_pages
from .support.newsite import PAGES, NewsSite
from .support.replaying import replay_server


def read_zipnum(folder: Path) -> Iterator[tuple[bytes, str, int, int, int]]:
    """The summary's lines as (key, part, offset, length, block number), read as pywb reads them."""
    with (folder / SUMMARY_NAME).open("rb") as fh:
        for line in fh:
            key, part, offset, length, number = line.rstrip(b"\n").split(b"\t")
            yield key, part.decode(), int(offset), int(length), int(number)


def synthetic_cdxj(path: Path, count: int) -> list[bytes]:
    """A sorted CDXJ file of `count` captures over 500 hosts, some URLs captured twice; its lines."""
    lines = []
    for n in range(count):
        url = f"https://news{n % 500}.example.com/a/{n // 2}.html"
        key = f"com,example,news{n % 500})/a/{n // 2}.html"
        fields = {"url": url, "mime": "text/html", "status": "200", "length": str(1000 + n),
                  "offset": str(n * 2000), "filename": f"f-{n // 5000}.warc.gz"}
        lines.append(f"{key} 2024{1 + n % 12:02d}01{n % 24:02d}0000 {json.dumps(fields)}\n".encode())
    lines.sort()
    path.write_bytes(b"".join(lines))
    return lines


def test_blocks_decompress_to_exactly_the_cdxj_lines_and_the_summary_locates_them(tmp_path: Path) -> None:
    source = tmp_path / "index.cdxj"
    lines = synthetic_cdxj(source, 20_000)
    report = write_zipnum(source, tmp_path / "zipnum", lines_per_block=700)

    assert (report.lines, report.blocks) == (20_000, 29)  # 28 full blocks and one of 400 lines
    shard = report.shard.read_bytes()
    assert report.shard_bytes == len(shard) < len(source.read_bytes()) / 4
    summary = list(read_zipnum(tmp_path / "zipnum"))
    assert len(summary) == report.blocks
    part = report.shard.name.removesuffix(".cdxj.gz")
    assert (tmp_path / "zipnum" / LOC_NAME).read_text() == f"{part}\t{report.shard.name}\n"
    offset = 0
    for number, (key, entry_part, block_offset, length, lineno) in enumerate(summary, start=1):
        assert (entry_part, block_offset, lineno) == (part, offset, number)  # contiguous, numbered from 1
        inflater = zlib.decompressobj(31)
        block = inflater.decompress(shard[block_offset:block_offset + length])
        assert inflater.eof and not inflater.unused_data  # exactly one whole gzip member
        expected = lines[(number - 1) * 700:number * 700]
        assert block == b"".join(expected)
        assert key == b" ".join(expected[0].split(b" ", 2)[:2])  # SURT key and timestamp of its first line
        offset += length
    assert offset == len(shard)
    summary_lines = (tmp_path / "zipnum" / SUMMARY_NAME).read_bytes().splitlines()
    assert summary_lines == sorted(summary_lines)  # pywb binary-searches it


def test_the_cdxj_is_streamed_not_loaded(tmp_path: Path) -> None:
    def peak_memory(lines: int) -> tuple[int, int]:
        source = tmp_path / f"{lines}.cdxj"
        synthetic_cdxj(source, lines)
        write_zipnum(source, tmp_path / "warm-up", lines_per_block=100)  # first-use allocations are not the point
        tracemalloc.start()
        try:
            write_zipnum(source, tmp_path / f"{lines}", lines_per_block=100)
            return tracemalloc.get_traced_memory()[1], source.stat().st_size
        finally:
            tracemalloc.stop()

    small, _ = peak_memory(10_000)
    large, size = peak_memory(40_000)
    assert large < small * 1.5 and large < size / 10, (small, large, size)  # the deflater's buffers, one block


# pywb's own readers, in a process of their own (pywb is imported by archiver's replay server only)
PYWB_LOOKUPS = textwrap.dedent("""
    import json, sys
    from pywb.warcserver.index.cdxops import process_cdx
    from pywb.warcserver.index.indexsource import FileIndexSource
    from pywb.warcserver.index.query import CDXQuery
    from pywb.warcserver.index.zipnum import ZipNumIndexSource

    flat, summary, queries = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    sources = {"flat": FileIndexSource(flat), "zipnum": ZipNumIndexSource(summary, None)}
    out = []
    for params in queries:
        out.append({name: [c.to_cdxj() for c in process_cdx(s.load_index(CDXQuery(dict(params)).params),
                                                             CDXQuery(dict(params)))]
                    for name, s in sources.items()})
    print(json.dumps(out))
""")


def test_pywb_finds_through_the_cluster_what_it_finds_in_the_flat_file(tmp_path: Path) -> None:
    source = tmp_path / "index.cdxj"
    synthetic_cdxj(source, 20_000)
    report = write_zipnum(source, tmp_path / "zipnum", lines_per_block=300)
    assert report.blocks == 67
    queries: list[dict[str, str]] = [{"url": f"https://news{n % 500}.example.com/a/{n // 2}.html"}
                                     for n in (0, 1, 299, 300, 301, 7777, 12_345, 19_999)]
    queries += [{"url": "https://news7.example.com/a/", "matchType": "prefix"},
                {"url": "news42.example.com", "matchType": "domain"},
                {"url": "https://news3.example.com/a/3.html", "closest": "20240601000000", "limit": "1"},
                {"url": "https://nothing.example.org/"}, {"url": "https://aaa.example.com/"}]
    result = subprocess.run([sys.executable, "-c", PYWB_LOOKUPS, str(source), str(report.summary),
                             json.dumps(queries)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout)
    for params, answer in zip(queries, answers, strict=True):
        assert answer["zipnum"] == answer["flat"], params
    assert all(answers[i]["flat"] for i in range(10))  # the lookups that should find something did
    assert not answers[-1]["flat"] and not answers[-2]["flat"]


def test_a_rebuild_keeps_the_previous_shard_for_readers_of_the_old_summary(tmp_path: Path) -> None:
    source = tmp_path / "index.cdxj"
    synthetic_cdxj(source, 1000)
    folder = tmp_path / "zipnum"
    first = write_zipnum(source, folder, 100)
    old_summary = (folder / SUMMARY_NAME).read_bytes()
    second = write_zipnum(source, folder, 100)
    assert first.shard != second.shard and first.shard.exists()
    loc = dict(line.split("\t") for line in (folder / LOC_NAME).read_text().splitlines())
    assert loc == {second.shard.name.removesuffix(".cdxj.gz"): second.shard.name,
                   first.shard.name.removesuffix(".cdxj.gz"): first.shard.name}
    assert old_summary.split(b"\t")[1].decode() in loc  # a request that read the old summary still resolves
    third = write_zipnum(source, folder, 100)
    assert not first.shard.exists() and second.shard.exists() and third.shard.exists()
    assert sorted(p.name for p in folder.iterdir()) == sorted([LOC_NAME, SUMMARY_NAME, second.shard.name,
                                                               third.shard.name])


def test_an_unsorted_or_empty_cdxj_is_refused_and_the_cluster_left_alone(tmp_path: Path) -> None:
    source = tmp_path / "index.cdxj"
    lines = synthetic_cdxj(source, 100)
    folder = tmp_path / "zipnum"
    write_zipnum(source, folder, 10)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    source.write_bytes(b"".join(lines[50:] + lines[:50]))
    with pytest.raises(ReplayIndexError, match="line 51 is out of order"):
        write_zipnum(source, folder, 10)
    source.write_bytes(b"")
    with pytest.raises(ReplayIndexError, match="no lines"):
        write_zipnum(source, folder, 10)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # no temporary files left either


def test_build_zipnum_points_pywb_at_the_cluster_and_keeps_the_users_config(tmp_path: Path) -> None:
    cfg = Config(root=tmp_path)
    init(cfg, with_collection=True)
    config = tmp_path / "config.yaml"
    original = config.read_text()
    collection = Collection.at(tmp_path, "news")
    synthetic_cdxj(collection.cdxj_path, 50)
    report = build_zipnum(collection, 20)
    assert report.index == "zipnum+collections/news/indexes/zipnum/index.idx" and report.config_changed
    text = config.read_text()
    assert text.startswith(original)  # every comment and setting kept, byte for byte
    doc = yaml.safe_load(text)
    assert doc["collections"] == {"news": {"index": report.index, "archive_paths": "collections/news/archive/"}}
    assert doc["archiver"] == yaml.safe_load(original)["archiver"]
    assert not build_zipnum(collection, 20).config_changed  # a rebuild needs no restart of replay
    assert config.read_text() == text
    assert collection_index(tmp_path, "news") == report.index


def test_a_collection_entry_is_added_or_replaced_in_the_users_own_collections_block(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(textwrap.dedent("""\
        collections_root: collections
        archive_paths: archive
        # my collections
        collections:
            live: $live   # the live web
            news:
                index: old.cdxj
                # a comment of mine inside the entry
                acl_paths: acl/
            other:
                index: other.cdxj
        # the end
        framed_replay: true
        """))
    set_collection_index(tmp_path, "news", "redis://127.0.0.1:6379/0/archiver:news:cdxj")
    text = config.read_text()
    doc = yaml.safe_load(text)
    assert doc["collections"] == {"live": "$live", "other": {"index": "other.cdxj"},
                                  "news": {"index": "redis://127.0.0.1:6379/0/archiver:news:cdxj",
                                           "archive_paths": "collections/news/archive/"}}
    assert doc["framed_replay"] is True
    kept = ("# my collections", "live: $live   # the live web", "# the end", "    other:\n        index: other.cdxj")
    assert all(part in text for part in kept)
    set_collection_index(tmp_path, "2024", "zipnum+x.idx")  # a name YAML would read as a number
    assert yaml.safe_load(config.read_text())["collections"]["2024"]["index"] == "zipnum+x.idx"


def test_a_config_that_cannot_be_edited_safely_is_refused_with_the_lines_to_add(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("collections: {live: $live}\n")
    with pytest.raises(ConfigError, match="by hand") as raised:
        set_collection_index(tmp_path, "news", "zipnum+x.idx")
    assert "news:" in str(raised.value) and '"zipnum+x.idx"' in str(raised.value)
    assert config.read_text() == "collections: {live: $live}\n"
    (tmp_path / "config.yaml").unlink()
    with pytest.raises(ConfigError, match="archiver init"):
        set_collection_index(tmp_path, "news", "zipnum+x.idx")


def test_index_without_the_option_says_that_replay_reads_another_index(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["--root", str(tmp_path), "init", "-c", "news"]).exit_code == 0
    result = runner.invoke(cli, ["--root", str(tmp_path), "index"])
    assert result.exit_code == 0 and "note:" not in result.output
    set_collection_index(tmp_path, "news", "zipnum+collections/news/indexes/zipnum/index.idx")
    result = runner.invoke(cli, ["--root", str(tmp_path), "index"])
    assert result.exit_code == 0 and "not rebuilt now: run again with --zipnum" in result.output
    result = runner.invoke(cli, ["--root", str(tmp_path), "index", "--zipnum"])  # nothing captured yet
    assert result.exit_code == 5 and "nothing to build a zipnum index from" in result.output  # replay


def test_index_zipnum_without_a_flat_index_says_what_to_run(tmp_path: Path) -> None:
    collection = Collection.at(tmp_path, "news")
    collection.create()
    with pytest.raises(ReplayIndexError, match="archiver index -c news"):
        build_zipnum(collection)


@pytest.mark.slow
def test_archiver_index_zipnum_then_replay_serves_the_collection_from_the_cluster(cfg: Config, site: NewsSite) -> None:
    init(cfg)
    collection = capture_pages(cfg, site, ["/plain.html", "/gbk.html"])
    result = CliRunner().invoke(cli, ["--root", str(cfg.root), "index", "--zipnum"])
    assert result.exit_code == 0, result.output
    assert "zipnum index: " in result.output and "collections/news/indexes/zipnum/index.idx" in result.output
    assert "restart a running replay" in result.output  # config.yaml changed: pywb reads it on start
    # without the flat file, only the cluster can answer
    collection.cdxj_path.rename(collection.indexes_dir / "flat.cdxj.away")

    with replay_server(cfg.root) as base:
        url = site.url + "/plain.html"
        with urllib.request.urlopen(f"{base}/news/cdx?url={url}&output=json", timeout=30) as response:
            rows = [json.loads(line) for line in response.read().decode().splitlines()]
        assert [row["url"] for row in rows] == [url]
        assert rows[0]["source"] == "news"  # the collection's own index (a directory source names its file)
        assert rows[0]["status"] == "200"
        with urllib.request.urlopen(f"{base}/news/{rows[0]['timestamp']}id_/{url}", timeout=30) as response:
            assert response.read() == PAGES["/plain.html"][2]
        with urllib.request.urlopen(f"{base}/news/cdx?url={site.url}/&matchType=prefix&output=json",
                                    timeout=30) as response:
            found = {json.loads(line)["url"] for line in response.read().decode().splitlines()}
        assert {site.url + "/plain.html", site.url + "/gbk.html", site.url + "/img/lead.jpg"} <= found
        # the collection page and its static list of articles, as for a collection pywb finds by its folder
        with urllib.request.urlopen(f"{base}/news/", timeout=30) as response:
            assert "COLL_PREFIX" in response.read().decode()
        with urllib.request.urlopen(f"{base}/static/_/news/articles/manifest.json", timeout=30) as response:
            assert json.loads(response.read())["count"] == 2

        # capture more and rebuild: the running replay reads the new cluster without a restart
        (collection.indexes_dir / "flat.cdxj.away").rename(collection.cdxj_path)
        capture_pages(cfg, site, ["/gzip.html"])
        result = CliRunner().invoke(cli, ["--root", str(cfg.root), "index", "--zipnum"])
        assert result.exit_code == 0 and "restart" not in result.output, result.output
        with urllib.request.urlopen(f"{base}/news/cdx?url={site.url}/gzip.html&output=json", timeout=30) as response:
            assert [json.loads(line)["url"] for line in response.read().decode().splitlines()] == [
                site.url + "/gzip.html"]


def test_capture_keeps_the_cluster_in_step_with_the_flat_index(cfg: Config, site: NewsSite) -> None:
    init(cfg)  # config.yaml, which names the replay index
    collection = capture_pages(cfg, site, ["/plain.html"])
    build_zipnum(collection)
    report = capture(cfg, [site.url + "/gbk.html"])
    assert report.captured == 1 and report.replay_index.startswith("zipnum index:"), report
    flat = collection.cdxj_path.read_bytes().splitlines()
    inflated = b"".join(zlib.decompress(block, 31) for block in _blocks_of(collection))
    assert inflated.splitlines() == flat and any(b"/gbk.html" in line for line in flat)


def _blocks_of(collection: Collection) -> list[bytes]:
    folder = collection.indexes_dir / "zipnum"
    entries = list(read_zipnum(folder))
    part = entries[0][1]
    loc = dict(line.split("\t") for line in (folder / LOC_NAME).read_text().splitlines())
    shard = (folder / loc[part]).read_bytes()
    return [shard[offset:offset + length] for _, _, offset, length, _ in entries]
