from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from archiver.capture import capture
from archiver.cli import cli
from archiver.config import Config
from archiver.errors import UsageError
from archiver.index import build_index
from archiver.search import search

from .newsite import NewsSite, seed_document


@pytest.fixture
def searchable(cfg: Config, site: NewsSite) -> Config:
    seeds = cfg.root / "seeds"
    seeds.mkdir()
    for n, page in enumerate(["/plain.html", "/gbk.html", "/gzip.html", "/chunked.html", "/gone.html"]):
        (seeds / f"{n}.txt").write_text(seed_document(site.url + page, f"标题{n}", 1696553101000 + n))
    capture(cfg, [str(seeds)], "news")
    return cfg


def test_finds_a_chinese_phrase_from_a_gbk_page(searchable: Config, site: NewsSite) -> None:
    hits = search(searchable, "镕字只在", "news")
    assert [h.url for h in hits] == [site.url + "/gbk.html"]
    assert hits[0].title == "朱镕基访问海港"
    assert "[镕字只在]" in hits[0].snippet
    assert hits[0].replay_path.endswith(site.url + "/gbk.html")


def test_two_character_words_are_found_too(searchable: Config, site: NewsSite) -> None:
    assert [h.url for h in search(searchable, "海港", "news")] == [site.url + "/gbk.html"]
    assert {h.url for h in search(searchable, "文章", "news")} >= {site.url + "/plain.html", site.url + "/gzip.html"}


def test_every_term_must_match_and_syntax_is_not_interpreted(searchable: Config) -> None:
    assert search(searchable, "普通的文章 gzip", "news") == []
    assert search(searchable, '" OR * NEAR( ', "news") == []  # FTS5 syntax is taken literally


def test_navigation_and_failed_pages_are_not_indexed(searchable: Config) -> None:
    assert search(searchable, "Home", "news") == []  # the <nav> link
    assert search(searchable, "Not found", "news") == []  # the 404 page


def test_rebuilt_index_searches_the_same(searchable: Config) -> None:
    before = search(searchable, "文章", "news", limit=50)
    build_index(searchable, "news")
    assert search(searchable, "文章", "news", limit=50) == before


def test_empty_query_is_a_usage_error(searchable: Config) -> None:
    with pytest.raises(UsageError):
        search(searchable, "  ", "news")


def test_cli_jsonl_and_table(searchable: Config, site: NewsSite) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["--root", str(searchable.root), "search", "镕字", "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["url"] for r in rows] == [site.url + "/gbk.html"]
    table = runner.invoke(cli, ["--root", str(searchable.root), "search", "海港", "--limit", "1"])
    assert table.exit_code == 0 and "朱镕基访问海港" in table.output and "1 result" in table.output


def test_search_of_a_missing_collection(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--root", str(tmp_path), "search", "x", "-c", "nothing"])
    assert result.exit_code == 2


def test_results_from_every_shard_are_merged_in_rank_order(tmp_path: Path) -> None:
    import sqlite3
    from dataclasses import replace

    from archiver.layout import Collection
    from archiver.store import Article, Store
    from archiver.textindex import SHARDS, TextIndexWriter, shard_paths

    cfg = Config(root=tmp_path)
    collection = Collection.at(tmp_path, "news")
    collection.create()
    blank = Article(url="", title="", seed_timestamp=None, seed_time="", page_title="", published="",
                    capture_time="", status=200, final_url="", lead_image_url="", lead_image_status="",
                    warc_file="", warc_offset=None, warc_length=None, payload_digest="", replay_path="",
                    source="s", error="", attempts=1)
    with Store(collection.db_path) as store, TextIndexWriter(collection.search_path) as texts:
        for n in range(40):
            url = f"http://example.org/{n}"
            store.put(replace(blank, url=url, title=f"t{n}", seed_timestamp=1_696_553_101_000 + n))
            # the phrase once, or n+1 times: bm25 ranks the articles that repeat it most first
            texts.add(url, f"t{n}", "开头。" + "共同短语出现。" * (1 + n % 5) + "结尾。" * 20)
    counts = [sqlite3.connect(p).execute("SELECT count(*) FROM search").fetchone()[0] for p in shard_paths(
        collection.search_path)]
    assert len(counts) == SHARDS and sum(counts) == 40 and all(counts)  # every shard has some
    hits = search(cfg, "共同短语", "news", limit=8)
    assert len(hits) == 8 and all(int(h.url.rsplit("/", 1)[1]) % 5 == 4 for h in hits)  # the 8 with 5 repeats
    newest = search(cfg, "短语", "news", limit=3)  # a 2-character word: substring match, newest seed first
    assert [h.url for h in newest] == [f"http://example.org/{n}" for n in (39, 38, 37)]
    assert len(search(cfg, "共同短语", "news", limit=100)) == 40
