"""Capture, index, replay and export through the CLI, checked in a real browser."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from archiver.cli import cli

from .support.browser import browser_page
from .support.newsite import NewsSite, seed_document
from .support.replaying import replay_cli
from .support.warcs import check_with_third_party_tools

pytestmark = pytest.mark.slow


def test_capture_index_replay_export_round_trip(tmp_path: Path, site: NewsSite) -> None:
    root = tmp_path / "root"
    runner = CliRunner()
    assert runner.invoke(cli, ["--root", str(root), "init"]).exit_code == 0
    config = root / "config.yaml"
    config.write_text(config.read_text().replace("host_delay: 1", "host_delay: 0"))  # our own loopback site
    seeds = root / "seeds"
    (seeds / "plain.txt").write_text(seed_document(site.url + "/plain.html", "普通文章", 1696553101000), "utf-8")
    (seeds / "gbk.md").write_text(seed_document(site.url + "/gbk.html", "GBK 文章", 1696553102000), "utf-8")
    (seeds / "gzip").write_text(seed_document(site.url + "/gzip.html", "压缩文章", 1696553103000), "utf-8")
    gone = seed_document(site.url + "/gone.html", "已删除的文章", 1696553104000, body="<p>只在订阅源里的正文</p>")
    (seeds / "gone.txt").write_text(gone, "utf-8")

    result = runner.invoke(cli, ["--root", str(root), "capture", "--allow-private", "--timeout", "10"])
    assert result.exit_code == 1, result.output  # one seed is a 404
    assert "3 captured, 1 failed" in result.output
    assert re.search(r"http_404 .*gone\.html", result.output)

    archive = root / "collections" / "news" / "archive"
    check_with_third_party_tools(archive)
    cdxj_before = (root / "collections/news/indexes/index.cdxj").read_text()
    export_before = runner.invoke(cli, ["--root", str(root), "export", "--format", "jsonl"]).output

    result = runner.invoke(cli, ["--root", str(root), "index"])
    assert result.exit_code == 0, result.output
    assert (root / "collections/news/indexes/index.cdxj").read_text() == cdxj_before
    assert runner.invoke(cli, ["--root", str(root), "export", "--format", "jsonl"]).output == export_before

    rows = {r["url"].removeprefix(site.url): r for r in map(json.loads, export_before.splitlines())}
    assert rows["/gbk.html"]["page_title"] == "朱镕基访问海港"
    csv_out = runner.invoke(cli, ["--root", str(root), "export"]).output
    assert len(list(csv.DictReader(io.StringIO(csv_out)))) == 4

    texts = {
        "/plain.html": "这是一篇普通的文章。",
        "/gzip.html": "这篇文章用 gzip 传输。",
        "/gbk.html": "镕字只在 GBK 中。",
    }
    with browser_page() as page:
        # framed (pywb's default): a banner page around an iframe holding the archived page
        with replay_cli(root) as (base, printed):
            assert base + rows["/plain.html"]["replay_path"] in [line.strip() for line in printed], printed
            for path, text in texts.items():
                page.goto(base + rows[path]["replay_path"])
                frame = page.wait_for_selector("iframe").content_frame()
                assert frame is not None
                frame.wait_for_function(LEAD_IMAGE_LOADED)
                assert text in frame.inner_text("article")
            page.screenshot(path=str(tmp_path / "framed.png"))
            # the 404 article survives as the feed's copy
            page.goto(base + rows["/gone.html"]["replay_path"])
            frame = page.wait_for_selector("iframe").content_frame()
            assert frame is not None
            frame.wait_for_selector("text=只在订阅源里的正文")
            assert "Feed copy" in frame.inner_text("body")
        # unframed: the user turns framing off in config.yaml
        config.write_text(config.read_text().replace("framed_replay: true", "framed_replay: false"))
        with replay_cli(root) as (base, _):
            for path, text in texts.items():
                page.goto(base + rows[path]["replay_path"])
                page.wait_for_function(LEAD_IMAGE_LOADED)
                assert text in page.inner_text("article")
                assert page.locator("iframe").count() == 0


LEAD_IMAGE_LOADED = (
    "() => { const i = document.querySelector('article img'); return i && i.complete && i.naturalWidth > 0; }"
)
