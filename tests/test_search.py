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
