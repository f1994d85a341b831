from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from archiver.capture.run import CaptureReport, capture
from archiver.cli import cli
from archiver.collection import Collection
from archiver.config import Config, parse_duration
from archiver.index.metadata import Store
from archiver.seeds.feeds import looks_like_feed, parse_feed
from archiver.seeds.model import BadSeed, Seed
from archiver.seeds.sources import iter_seeds
from archiver.watch import watch

from .conftest import FAST_YAML
from .support.newsite import NewsSite, rss

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:media="http://search.yahoo.com/mrss/">
  <title>Atom 新闻</title>
  <entry>
    <title>原子条目 &amp; 标题</title>
    <link href="https://example.org/atom/1.html"/>
    <id>tag:example.org,2023:1</id>
    <updated>2023-10-06T00:45:01Z</updated>
    <media:content url="https://img.example.org/1.jpg" medium="image"/>
    <content type="html">&lt;p&gt;正文&lt;/p&gt;</content>
  </entry>
  <entry>
    <title>内联图片</title>
    <link href="https://example.org/atom/2.html"/>
    <published>2023-10-07T01:00:00+02:00</published>
    <content type="html">&lt;p&gt;看图&lt;img src="/pics/2.jpg"&gt;&lt;/p&gt;</content>
  </entry>
  <entry><title>没有链接</title><content type="html">x</content></entry>
  <entry><title>坏链接</title><link href="javascript:alert(1)"/></entry>
</feed>
"""


def test_feeds_are_recognised_by_content() -> None:
    assert looks_like_feed(b'<?xml version="1.0"?>\n<!-- hi -->\n<rss version="2.0">')
    assert looks_like_feed(b"\xef\xbb\xbf<feed xmlns='http://www.w3.org/2005/Atom'>")
    assert not looks_like_feed(b"<!DOCTYPE html><html>")
    assert not looks_like_feed(b"[title](https://example.org/)\n------\n")


def test_atom_items_become_seeds_with_title_link_time_and_image() -> None:
    items = list(parse_feed(ATOM.encode(), "atom.xml"))
    first, second, no_link, bad_link = items
    assert isinstance(first, Seed) and isinstance(second, Seed)
    assert (first.url, first.title, first.timestamp_ms) == ("https://example.org/atom/1.html", "原子条目 & 标题",
                                                            1696553101000)
    assert first.lead_image == "https://img.example.org/1.jpg"  # media:content
    assert first.source == "atom.xml#1" and first.document.startswith(b"<!--1696553101000-->\n[")
    assert second.timestamp_ms == 1696633200000  # the offset is honoured
    assert second.lead_image == "https://example.org/pics/2.jpg"  # the first <img>, made absolute
    assert isinstance(no_link, BadSeed) and no_link.source == "atom.xml#3"
    assert isinstance(bad_link, BadSeed) and bad_link.reason == "unsupported_scheme"


def test_rss_enclosure_is_the_lead_image(tmp_path: Path) -> None:
    (tmp_path / "news.rss").write_bytes(rss("https://example.org", [("/a.html", "甲"), ("/b.html", "乙")]))
    seeds = list(iter_seeds([str(tmp_path)], tmp_path))
    assert [s.url for s in seeds if isinstance(s, Seed)] == ["https://example.org/a.html", "https://example.org/b.html"]
    assert all(isinstance(s, Seed) and s.lead_image == "https://example.org/img/og.jpg" for s in seeds)


def test_a_broken_feed_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "broken.xml").write_bytes(b'<?xml version="1.0"?><rss><channel><item><title>x')
    items = list(iter_seeds([str(tmp_path)], tmp_path))
    assert all(isinstance(i, BadSeed) for i in items)


def test_capture_from_a_feed_url_keeps_the_feed_copy_and_the_enclosure(cfg: Config, site: NewsSite) -> None:
    site.httpd.feed_items[:] = [("/plain.html", "普通"), ("/gone.html", "已删除")]  # type: ignore[attr-defined]
    report = capture(cfg, [], feeds=[site.url + "/feed.xml"])
    assert report.captured == 1 and [e.reason for e in report.failures] == ["http_404"]
    with Store(Collection.at(cfg.root, "news").db_path) as store:
        plain = store.get(site.url + "/plain.html")
        gone = store.get(site.url + "/gone.html")
    assert plain is not None and plain.title == "普通" and plain.seed_time == "2023-10-06T00:45:00Z"
    assert plain.lead_image_url == site.url + "/img/og.jpg" and plain.lead_image_status == 200
    assert plain.source == site.url + "/feed.xml#1"
    assert gone is not None and "feed-copy.invalid" in gone.replay_path


def test_feed_urls_go_through_the_address_guard(cfg: Config, site: NewsSite) -> None:
    report = capture(cfg.replace(allow_private=False), [], feeds=[site.url + "/feed.xml"])
    assert [e.reason for e in report.failures] == ["blocked_address"]


def test_watch_captures_new_items_and_never_the_same_twice(cfg: Config, site: NewsSite) -> None:
    items = site.httpd.feed_items  # type: ignore[attr-defined]
    items[:] = [("/plain.html", "一")]
    rounds: list[int] = []

    def next_round(seconds: float) -> None:  # between rounds the feed gains an item
        items.append(("/gbk.html", "二"))

    def after(number: int, report: CaptureReport) -> None:
        rounds.append(report.captured)

    start = len(site.hits)
    done = watch(cfg, [site.url + "/feed.xml"], 60, on_round=after, rounds=3, sleep=next_round)
    assert done == 3 and rounds == [1, 1, 0]
    fetched = [h for h in site.hits[start:] if h.endswith(".html")]
    assert fetched.count("/plain.html") == 1 and fetched.count("/gbk.html") == 1


def test_parse_duration() -> None:
    assert [parse_duration(t) for t in ("30s", "15m", "1h", "2d", "90")] == [30, 900, 3600, 172800, 90]


def test_cli_capture_feed_and_watch_help(tmp_path: Path, site: NewsSite) -> None:
    (tmp_path / "config.yaml").write_text(FAST_YAML)
    site.httpd.feed_items[:] = [("/plain.html", "普通")]  # type: ignore[attr-defined]
    result = CliRunner().invoke(cli, ["--root", str(tmp_path), "capture", "--allow-private",
                                      "--feed", site.url + "/feed.xml"])
    assert result.exit_code == 0, result.output
    assert "1 captured" in result.output
    bad = CliRunner().invoke(cli, ["--root", str(tmp_path), "watch", "--every", "soon", "x.xml"])
    assert bad.exit_code == 2 and "cannot read the interval" in bad.output
