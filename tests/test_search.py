from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from archiver.capture.run import capture
from archiver.cli import cli
from archiver.collection import Collection
from archiver.config import Config
from archiver.errors import ConfigError, UsageError
from archiver.index.build import build_index
from archiver.index.fulltext import pending, shard_paths, update_search
from archiver.index.metadata import Store
from archiver.search import search

from .support.newsite import NewsSite, seed_document


@pytest.fixture
def searchable(cfg: Config, site: NewsSite) -> Config:
    seeds = cfg.root / "seeds"
    seeds.mkdir()
    for n, page in enumerate(["/plain.html", "/gbk.html", "/gzip.html", "/chunked.html", "/gone.html"]):
        (seeds / f"{n}.txt").write_text(seed_document(site.url + page, f"标题{n}", 1696553101000 + n))
    capture(cfg, [str(seeds)])
    return cfg


def test_finds_a_chinese_phrase_from_a_gbk_page(searchable: Config, site: NewsSite) -> None:
    hits = search(searchable, "镕字只在")
    assert [h.url for h in hits] == [site.url + "/gbk.html"]
    assert hits[0].title == "朱镕基访问海港"
    assert "[镕字只在]" in hits[0].snippet
    assert hits[0].replay_path.endswith(site.url + "/gbk.html")


def test_two_character_words_are_found_too(searchable: Config, site: NewsSite) -> None:
    assert [h.url for h in search(searchable, "海港")] == [site.url + "/gbk.html"]
    assert {h.url for h in search(searchable, "文章")} >= {site.url + "/plain.html", site.url + "/gzip.html"}


def test_every_term_must_match_and_syntax_is_not_interpreted(searchable: Config) -> None:
    assert search(searchable, "普通的文章 gzip") == []
    assert search(searchable, '" OR * NEAR( ') == []  # FTS5 syntax is taken literally


def test_navigation_and_failed_pages_are_not_indexed(searchable: Config) -> None:
    assert search(searchable, "Home") == []  # the <nav> link
    assert search(searchable, "Not found") == []  # the 404 page


def test_rebuilt_index_searches_the_same(searchable: Config) -> None:
    before = search(searchable, "文章", limit=50)
    build_index(searchable)
    assert search(searchable, "文章", limit=50) == before


def test_empty_query_is_a_usage_error(searchable: Config) -> None:
    with pytest.raises(UsageError):
        search(searchable, "  ")


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

    from archiver.index.fulltext import SHARDS, shard_paths
    from archiver.index.metadata import Article

    cfg = Config(root=tmp_path)
    collection = Collection.at(tmp_path, "news")
    collection.create()
    blank = Article(url="", title="", seed_timestamp=None, seed_time="", page_title="", published="",
                    capture_time="", status=200, final_url="", lead_image_url="", lead_image_status=None,
                    lead_image_error="",
                    warc_file="", warc_offset=None, warc_length=None, payload_digest="", replay_path="",
                    source="s", error="", attempts=1)
    with Store(collection.db_path) as store:
        for n in range(40):
            url = f"http://example.org/{n}"
            store.put(replace(blank, url=url, title=f"t{n}", seed_timestamp=1_696_553_101_000 + n))
            # the phrase once, or n+1 times: bm25 ranks the articles that repeat it most first
            store.queue_text(url, f"t{n}", "开头。" + "共同短语出现。" * (1 + n % 5) + "结尾。" * 20)
    update_search(collection)
    counts = [sqlite3.connect(p).execute("SELECT count(*) FROM search").fetchone()[0] for p in shard_paths(
        collection.search_path)]
    assert len(counts) == SHARDS and sum(counts) == 40 and all(counts)  # every shard has some
    hits = search(cfg, "共同短语", limit=8)
    assert len(hits) == 8 and all(int(h.url.rsplit("/", 1)[1]) % 5 == 4 for h in hits)  # the 8 with 5 repeats
    newest = search(cfg, "短语", limit=3)  # a 2-character word: substring match, newest seed first
    assert [h.url for h in newest] == [f"http://example.org/{n}" for n in (39, 38, 37)]
    assert len(search(cfg, "共同短语", limit=100)) == 40


# --- the full-text index is built when needed: capture and index queue texts, search indexes them


def test_capture_queues_texts_and_the_first_search_indexes_them(searchable: Config, site: NewsSite) -> None:
    collection = Collection.at(searchable.root, "news")
    assert pending(collection) == 4  # the 404 page has no text to search
    assert not any(p.exists() for p in shard_paths(collection.search_path))  # capture wrote no full-text index
    seen: list[tuple[int, int]] = []
    assert [h.url for h in search(searchable, "镕字只在", progress=lambda *a: seen.append(a))] == [
        site.url + "/gbk.html"]
    assert seen == [(4, 4)] and pending(collection) == 0
    search(searchable, "镕字只在", progress=lambda *a: seen.append(a))
    assert seen == [(4, 4)]  # nothing left to index: the second search starts at once


def test_a_text_queued_again_during_an_update_stays_queued(searchable: Config, site: NewsSite) -> None:
    collection = Collection.at(searchable.root, "news")
    url = site.url + "/plain.html"

    def capture_meanwhile(done: int, total: int) -> None:  # a capture re-queues a text mid-update
        with Store(collection.db_path) as other:
            other.queue_text(url, "改版", "改版后的独特新内容")

    assert update_search(collection, capture_meanwhile) == 4
    assert pending(collection) == 1  # the newer text was not dropped with the batch it replaced
    assert [h.url for h in search(searchable, "独特新内容")] == [url]
    assert pending(collection) == 0


def test_a_failed_update_keeps_every_text_queued(searchable: Config, site: NewsSite) -> None:
    collection = Collection.at(searchable.root, "news")
    collection.search_path.mkdir()  # the first shard cannot be opened as a file
    with pytest.raises(ConfigError, match="search index"):
        search(searchable, "镕字只在")
    assert pending(collection) == 4  # nothing lost: the next update indexes them all
    collection.search_path.rmdir()
    assert [h.url for h in search(searchable, "镕字只在")] == [site.url + "/gbk.html"]


def test_rebuild_replaces_the_full_text_index(searchable: Config, site: NewsSite) -> None:
    collection = Collection.at(searchable.root, "news")
    search(searchable, "文章")  # indexed
    with Store(collection.db_path) as store:
        store.queue_text(site.url + "/gone.html", "x", "只在旧索引里的短语")  # a text no WARC record has
    update_search(collection)
    assert search(searchable, "只在旧索引里的短语") != []
    build_index(searchable)
    assert not any(p.exists() for p in shard_paths(collection.search_path)) and pending(collection) == 4
    assert search(searchable, "只在旧索引里的短语") == []  # the rebuild came from the WARC files alone
    assert [h.url for h in search(searchable, "镕字只在")] == [site.url + "/gbk.html"]


def test_cli_index_search_and_status(searchable: Config) -> None:
    runner = CliRunner()
    root = ["--root", str(searchable.root)]
    status = runner.invoke(cli, [*root, "status", "-c", "news"])
    assert status.exit_code == 0 and "4 articles not indexed for search yet" in status.output
    built = runner.invoke(cli, [*root, "index", "-c", "news", "--search"])
    assert built.exit_code == 0, built.output
    assert "search index: 4 articles added" in built.output
    status = runner.invoke(cli, [*root, "status", "-c", "news", "--json"])
    assert json.loads(status.output)["collections"][0]["search_pending"] == 0


def test_searches_while_a_capture_commits_fail_nothing_and_lose_nothing(cfg: Config, site: NewsSite) -> None:
    """`archiver search` drains the text queue while capture keeps adding to it (small batches,
    one commit each): every search answers, and every text ends up searchable exactly once."""
    import contextlib
    import dataclasses
    import threading
    import time

    cfg = dataclasses.replace(cfg, batch_size=4, batch_wait=0.05, workers=4, host_concurrency=4)
    urls = [f"{site.url}/slow/during-{n}.html" for n in range(48)]
    (cfg.root / "list.txt").write_text("\n".join(urls) + "\n")
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["report"] = capture(cfg, [str(cfg.root / "list.txt")])
        except BaseException as exc:  # handed to the test's thread
            outcome["error"] = exc

    collection = Collection.at(cfg.root, "news")
    worker = threading.Thread(target=run)
    worker.start()
    seen: list[int] = []
    ready = False  # the metadata index exists with its tables (capture creates it as it starts)
    deadline = time.monotonic() + 60
    try:
        while worker.is_alive() and time.monotonic() < deadline:
            if not ready:
                with contextlib.suppress(ConfigError):
                    ready = collection.db_path.exists() and pending(collection) >= 0
            else:
                seen.append(len(search(cfg, "延迟五十毫秒", limit=100)))  # raises on any lock error
            time.sleep(0.02)
    finally:
        worker.join(60)
    assert "error" not in outcome and not worker.is_alive()
    report = outcome["report"]
    assert report.captured == len(urls) and not report.failures  # type: ignore[attr-defined]
    assert len(seen) >= 3 and any(0 < n < len(urls) for n in seen)  # searched while it ran, found part of it
    assert seen == sorted(seen)  # what was found stays found
    assert sorted(h.url for h in search(cfg, "延迟五十毫秒", limit=100)) == sorted(urls)
    assert pending(collection) == 0
