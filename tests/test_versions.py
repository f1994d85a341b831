"""Captured articles checked again (`archiver recapture`): every kind of change found and recorded,
revisits for unchanged pages, versions rebuilt from the WARC files alone, the schedule, history."""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from archiver.capture.recheck import Selection
from archiver.capture.run import capture, recapture
from archiver.cli import cli
from archiver.collection import Collection
from archiver.config import Config
from archiver.history import history
from archiver.index.build import build_index
from archiver.index.metadata import Store
from archiver.warc.record import REVISIT_PROFILE

from .support.changingsite import REMOVED_PARAGRAPH, SOFTENED_HEADLINE, ChangingSite
from .support.looks import Watched, chromium
from .support.replaying import replay_server
from .support.warcs import check_with_third_party_tools

EVERYTHING = Selection(older_than=0, everything=True)
# what the first check after change() finds, article by article
CHANGED = {"unchanged": "unchanged", "noisy": "same", "headline": "edited", "paragraph": "edited", "lead": "edited",
           "gone404": "removed", "gone410": "removed", "front": "removed", "section": "removed", "stub": "removed",
           "flaky": "failed", "moved": "unchanged"}


@pytest.fixture
def site() -> Iterator[ChangingSite]:
    running = ChangingSite()
    running.stall = 10.0  # past read_timeout: the first load after change() fails
    yield running
    running.stop()


@pytest.fixture
def checking(cfg: Config) -> Config:
    return replace(cfg, retries=0)  # a stall is one failed check, not a retry that hides it


def _urls(cfg: Config, site: ChangingSite) -> list[str]:
    urls = [site.article(name) for name in site.NAMES]
    (cfg.root / "urls.txt").write_text("".join(url + "\n" for url in urls))
    return urls


def _found(report_checks: dict[str, int]) -> dict[str, int]:
    return {kind: count for kind, count in report_checks.items() if count}


def _tables(cfg: Config) -> tuple[list[tuple[object, ...]], ...]:
    with Store(Collection.of(cfg).db_path, readonly=True) as store:
        return tuple(store.db.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3").fetchall()
                     for table in ("checks", "versions"))


def _row(cfg: Config, url: str) -> dict[str, object]:
    with Store(Collection.of(cfg).db_path, readonly=True) as store:
        store.db.row_factory = sqlite3.Row
        return dict(store.db.execute("SELECT * FROM articles WHERE url = ?", (url,)).fetchone())


def test_every_kind_of_change_is_found_recorded_and_rebuilt(checking: Config, site: ChangingSite) -> None:
    cfg = checking
    urls = _urls(cfg, site)
    assert capture(cfg, [str(cfg.root / "urls.txt")]).captured == len(urls)
    first = recapture(cfg, EVERYTHING)  # nothing changed yet: the noisy page's bytes only
    assert _found(first.checks) == {"unchanged": 11, "same": 1} and first.ok
    site.change()
    changed = recapture(cfg, EVERYTHING)
    expected: dict[str, int] = {}
    for kind in CHANGED.values():
        expected[kind] = expected.get(kind, 0) + 1
    assert _found(changed.checks) == expected
    assert changed.failed == 1 and changed.failed_by_reason == {"failed": 1}  # the flaky one: not a removal
    for name, kind in CHANGED.items():
        found = history(cfg, site.article(name))
        assert found.checks[-1].kind == kind, name
        assert len(found.versions) == (2 if kind in ("edited", "removed") else 1), name
    again = recapture(cfg, EVERYTHING)  # the flaky article answers; the removed stay removed: no new version
    assert _found(again.checks) == {"unchanged": 6, "same": 1, "removed": 5} and again.ok
    assert history(cfg, site.article("flaky")).checks[-1].kind == "unchanged"
    site.revert()
    back = recapture(cfg, EVERYTHING)  # the removed come back; the edits are undone: an edit again
    assert _found(back.checks) == {"restored": 5, "edited": 3, "unchanged": 3, "same": 1}
    gone = _row(cfg, site.article("gone404"))
    assert gone["versions"] == 3 and gone["removed_at"] == "" and gone["checks"] == 4
    assert _row(cfg, site.article("unchanged"))["versions"] == 1
    # nothing of the first capture was replaced: the article row is still the capture's
    assert _row(cfg, site.article("headline"))["page_title"] != SOFTENED_HEADLINE
    check_with_third_party_tools(Collection.of(cfg).archive_dir)
    before = _tables(cfg)
    build_index(cfg)  # from the WARC files alone
    after = _tables(cfg)
    for table_before, table_after in zip(before, after, strict=True):
        assert len(table_before) == len(table_after)
        for a, b in zip(table_before, table_after, strict=True):
            assert a == b, [(x, y) for x, y in zip(a, b, strict=True) if x != y]
    for name in ("gone404", "headline", "flaky"):
        assert _row(cfg, site.article(name))["versions"] == len(history(cfg, site.article(name)).versions)


@pytest.mark.slow
def test_an_unchanged_page_is_a_revisit_and_replays_each_version_at_its_time(checking: Config, site: ChangingSite,
                                                                             tmp_path: Path) -> None:
    cfg = checking
    article = site.article("headline")
    day = [datetime(2025, 1, 1, tzinfo=UTC)]  # a day apart: pywb tells the versions apart by the second

    def clock() -> datetime:
        day[0] += timedelta(milliseconds=1)
        return day[0]

    capture(cfg, [article, site.article("unchanged")], clock=clock)
    day[0] += timedelta(days=1)
    recapture(cfg, EVERYTHING, clock=clock)
    revisits = _records(cfg, "revisit")
    assert {h["WARC-Target-URI"] for h in revisits} >= {article, site.article("unchanged")}
    assert all(h["WARC-Profile"] == REVISIT_PROFILE for h in revisits)
    site.change()
    day[0] += timedelta(days=1)
    recapture(cfg, Selection(urls=(article,), older_than=0), clock=clock)
    versions = history(cfg, article).versions
    assert [v.kind for v in versions] == ["captured", "edited"]
    assert versions[1].title.startswith(SOFTENED_HEADLINE)
    check_with_third_party_tools(Collection.of(cfg).archive_dir)
    with replay_server(cfg.root) as base:  # each version at its own time, as pywb finds it
        old, new = (_get(base + _unframed(v.replay_path)) for v in versions)
        assert SOFTENED_HEADLINE not in old and SOFTENED_HEADLINE in new
        # pywb's own timemap lists every capture and check of the article: the capture, the
        # unchanged check (a revisit) and the edit
        timemap = _get(f"{base}/news/timemap/link/{article}")
        assert timemap.count('rel="memento"') + timemap.count('rel="first memento"') + timemap.count(
            'rel="last memento"') + timemap.count('rel="first last memento"') == 3, timemap
        with chromium() as browser:  # and as a reader sees it, in pywb's frame
            shown = []
            for version in versions:
                with Watched(browser, "desktop", "() => document.readyState === 'complete'") as watched:
                    watched.page.goto(base + version.replay_path)
                    frame = watched.page.wait_for_selector("iframe").content_frame()
                    assert frame is not None
                    frame.wait_for_selector("h1")
                    shown.append(frame.inner_text("h1"))
                    assert not watched.failed, watched.failed
                    watched.page.screenshot(path=str(tmp_path / f"version-{version.version}.png"))
    assert shown[0] != SOFTENED_HEADLINE and shown[1] == SOFTENED_HEADLINE


def test_history_diff_shows_the_removed_paragraph_sentence_by_sentence(checking: Config, site: ChangingSite) -> None:
    cfg = checking
    article = site.article("paragraph")
    capture(cfg, [article])
    site.change()
    recapture(cfg, Selection(urls=(article,)))
    found = history(cfg, article, diff=True)
    assert len(found.changes) == 1
    removed = [line[1:] for line in found.changes[0].diff.splitlines() if line.startswith("-") and
               not line.startswith("---")]
    added = [line for line in found.changes[0].diff.splitlines() if line.startswith("+") and
             not line.startswith("+++")]
    # one unit a sentence: a Chinese paragraph is one line, and the diff names its sentences
    assert "".join(removed) == REMOVED_PARAGRAPH.replace(" ", "") and len(removed) > 1 and added == []


def test_the_schedule_doubles_while_unchanged_and_only_what_is_due_is_checked(checking: Config,
                                                                              site: ChangingSite) -> None:
    cfg = checking
    start = datetime(2025, 3, 1, 8, 0, 0, tzinfo=UTC)
    at = [start]

    def clock() -> datetime:
        at[0] += timedelta(milliseconds=1)
        return at[0]

    urls = [site.article("unchanged"), site.article("headline")]
    capture(cfg, urls, clock=clock)
    assert _row(cfg, urls[0])["next_check"] == "2025-03-01T09:00:00Z"  # recheck_min, 1 hour
    at[0] = start + timedelta(minutes=30)
    assert sum(recapture(cfg, clock=clock).checks.values()) == 0  # nothing due yet
    at[0] = start + timedelta(hours=1, minutes=1)
    assert _found(recapture(cfg, clock=clock).checks) == {"unchanged": 2}
    assert _row(cfg, urls[0])["next_check"] == "2025-03-01T11:01:00Z"  # 2 hours on
    site.change()
    at[0] = start + timedelta(hours=3, minutes=2)
    assert _found(recapture(cfg, clock=clock).checks) == {"unchanged": 1, "edited": 1}
    assert _row(cfg, urls[0])["next_check"] == "2025-03-01T15:02:00Z"  # unchanged again: 4 hours on
    assert _row(cfg, urls[1])["next_check"] == "2025-03-01T12:02:00Z"  # edited: back to 1 hour
    assert _row(cfg, urls[1])["last_changed"] == "2025-03-01T11:02:00Z"


def _one_of_each(cfg: Config, site: ChangingSite, gone: str) -> tuple[str, str, str]:
    """An article edited, one removed (`gone`) and one unchanged, captured and checked after the change."""
    urls = site.article("headline"), site.article(gone), site.article("unchanged")
    capture(cfg, list(urls))
    site.change()
    recapture(cfg, EVERYTHING)
    return urls


def _records(cfg: Config, kind: str) -> list[dict[str, str]]:
    from warcio.archiveiterator import ArchiveIterator

    found = []
    for path in sorted(Collection.of(cfg).archive_dir.glob("*.warc.gz")):
        with path.open("rb") as fh:
            for record in ArchiveIterator(fh):
                if record.rec_type == kind:
                    found.append(dict(record.rec_headers.headers))
    return found


def _unframed(replay_path: str) -> str:
    """/news/<ts>/<url> -> /news/<ts>id_/<url>: the archived bytes themselves."""
    collection, stamp, url = replay_path.lstrip("/").split("/", 2)
    return f"/{collection}/{stamp}id_/{url}"


def _get(url: str) -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=30) as answer:
        return str(answer.read().decode("utf-8"))


def test_the_commands_show_checks_and_history(tmp_path: Path, site: ChangingSite) -> None:
    root = tmp_path / "root"
    runner = CliRunner()
    assert runner.invoke(cli, ["--root", str(root), "init"]).exit_code == 0
    article = site.article("paragraph")
    base = ["--root", str(root)]
    assert runner.invoke(cli, [*base, "capture", "--allow-private", article]).exit_code == 0
    site.change()
    checked = runner.invoke(cli, [*base, "recapture", "--allow-private", "--url", article])
    assert checked.exit_code == 0, checked.output
    assert "EDITED" in checked.output and "1 article checked: 1 edited" in checked.output
    shown = runner.invoke(cli, [*base, "history", article, "--diff"])
    assert shown.exit_code == 0 and "2 versions, 1 check after the capture" in shown.output
    assert "-" + REMOVED_PARAGRAPH.split("。")[0] in shown.output.replace(" ", "")
    lines = [json.loads(line) for line in runner.invoke(cli, [*base, "history", article, "--format", "jsonl"])
             .output.splitlines()]
    assert [line["kind"] for line in lines if line["type"] == "version"] == ["captured", "edited"]
    unknown = runner.invoke(cli, [*base, "recapture", "--allow-private", "--url", site.article("nope")])
    assert unknown.exit_code == 1 and "not_captured" in unknown.output
    assert runner.invoke(cli, [*base, "history", site.article("nope")]).exit_code == 2



def test_the_export_filters_edited_and_removed_articles_and_lists_versions(checking: Config, site: ChangingSite,
                                                                           tmp_path: Path) -> None:
    import io
    import zipfile

    import pyarrow.parquet as pq

    from archiver.export import Filters, export
    from archiver.index.versions import VERSION_COLUMNS
    from archiver.wacz import wacz

    cfg = checking
    edited, removed, kept = _one_of_each(cfg, site, "gone404")

    def urls(status: str) -> list[str]:
        out = io.StringIO()
        export(cfg, out, "jsonl", Filters.parse(None, None, None, (status,), ()))
        return [json.loads(line)["url"] for line in out.getvalue().splitlines()]

    assert urls("edited") == [edited] and urls("removed") == [removed]
    out = io.StringIO()
    assert export(cfg, out, "jsonl", versions=True) == 5
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(row["url"], row["version"], row["kind"]) for row in rows] == sorted(
        [(edited, 1, "captured"), (edited, 2, "edited"), (removed, 1, "captured"), (removed, 2, "removed"),
         (kept, 1, "captured")])
    out = io.StringIO()
    export(cfg, out, "csv", Filters.parse(None, None, None, ("removed",), ()), versions=True)
    assert out.getvalue().splitlines()[0] == ",".join(VERSION_COLUMNS) and len(out.getvalue().splitlines()) == 3
    target = tmp_path / "versions.parquet"
    assert export(cfg, target, "parquet", versions=True) == 5
    package = tmp_path / "versions.wacz"
    wacz(cfg, package)  # one page per version, each at its own time
    with zipfile.ZipFile(package) as zf:
        pages = [json.loads(line) for line in zf.read("pages/pages.jsonl").decode().splitlines()[1:]]
    assert sorted((p["url"], p.get("version", 1)) for p in pages) == sorted((r["url"], r["version"]) for r in rows)
    later = {p["url"]: p for p in pages if p.get("version") == 2}
    stamp = next(r["replay_path"] for r in rows if r["url"] == edited and r["version"] == 2).split("/")[2]
    assert later[edited]["kind"] == "edited" and re.sub(r"\D", "", later[edited]["ts"]) == stamp
    table = pq.read_table(target)
    assert table.column_names == list(VERSION_COLUMNS) and str(table.schema.field("first_seen").type).startswith(
        "timestamp")


def test_watch_checks_the_items_of_its_feeds_when_they_are_due(checking: Config, site: ChangingSite) -> None:
    from archiver.capture.run import CaptureReport
    from archiver.watch import watch

    cfg = checking
    feed = cfg.root / "feed.xml"
    feed.write_text(f"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
        <item><title>h</title><link>{site.article("headline")}</link></item></channel></rss>""")
    other = site.article("paragraph")  # captured from elsewhere: not this watch's to check
    capture(cfg, [other])
    rounds: list[CaptureReport] = []

    def an_hour_later(seconds: float) -> None:
        site.change()
        with sqlite3.connect(Collection.of(cfg).db_path) as db:  # every article due now
            db.execute("UPDATE articles SET next_check = '2000-01-01T00:00:00Z'")
        db.close()

    assert watch(cfg, [str(feed)], 60, on_round=lambda n, report: rounds.append(report), rounds=2,
                 sleep=an_hour_later) == 2
    assert rounds[0].captured == 1 and _found(rounds[0].checks) == {}  # captured now, due in an hour
    assert rounds[1].captured == 0 and _found(rounds[1].checks) == {"edited": 1}
    assert [v.kind for v in history(cfg, site.article("headline")).versions] == ["captured", "edited"]
    assert _row(cfg, other)["checks"] == 0


@pytest.mark.slow
def test_the_collection_page_marks_edited_and_removed_articles(checking: Config, site: ChangingSite,
                                                               tmp_path: Path) -> None:
    from .test_templates import watched_page

    cfg = checking
    edited, removed, kept = _one_of_each(cfg, site, "gone410")
    with replay_server(cfg.root) as base, watched_page() as (page, dialogs, errors):
        page.goto(base + "/news/", wait_until="load")
        page.wait_for_selector("#articles tbody tr")
        marks = page.evaluate("""() => [...document.querySelectorAll('#articles tbody tr')].map(tr => ({
            url: tr.querySelector('.url').textContent,
            marks: [...tr.querySelectorAll('.versions span')].map(s => s.textContent),
            links: [...tr.querySelectorAll('.versions a')].map(a => [a.textContent, a.href])}))""")
        page.screenshot(path=str(tmp_path / "collection-page.png"), full_page=True)
        assert not dialogs and not errors, (dialogs, errors)
    by_url = {row["url"]: row for row in marks}
    assert by_url[edited]["marks"] == ["edited ×1"]
    assert [text for text, _ in by_url[edited]["links"]] == ["v1 captured", "v2 edited"]
    assert by_url[removed]["marks"][0].startswith("removed since 20")
    assert by_url[kept]["marks"] == [] and by_url[kept]["links"] == []
    versions = history(cfg, edited).versions
    for (_, href), version in zip(by_url[edited]["links"], versions, strict=True):
        assert href == base + version.replay_path  # each version's own replay


@pytest.mark.slow
def test_a_recapture_killed_midway_leaves_a_valid_collection_and_the_next_run_checks_the_rest(
        tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from .conftest import FAST_YAML
    from .support.newsite import NewsSite, seed_document

    site = NewsSite()
    try:
        root = tmp_path / "root"
        (root / "seeds").mkdir(parents=True)
        # one page at a time per host, batches of 4: the run takes a few seconds, killed inside them
        (root / "config.yaml").write_text(FAST_YAML + "  host_concurrency: 1\n  batch_size: 4\n  processes: 1\n"
                                          "  requisites: false\n")
        urls = [f"{site.url}/slow/{n:03d}" for n in range(24)]
        for n, url in enumerate(urls):
            (root / "seeds" / f"{n:03d}.txt").write_text(seed_document(url, f"第{n}篇", 1696553101000 + n))
        command = [sys.executable, "-m", "archiver", "--root", str(root)]
        done = subprocess.run([*command, "capture", "--allow-private"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        db = root / "collections/news/indexes/metadata.sqlite"
        with sqlite3.connect(db) as conn:  # every article due
            conn.execute("UPDATE articles SET next_check = '2000-01-01T00:00:00Z'")
        conn.close()

        def checks() -> int:
            with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as ro:
                return int(ro.execute("SELECT count(*) FROM checks WHERE kind != 'captured'").fetchone()[0])

        process = subprocess.Popen([*command, "recapture", "--allow-private"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and process.poll() is None and checks() < 4:
                time.sleep(0.02)
            assert process.poll() is None, "the recapture ended before it could be killed"
            os.kill(process.pid, signal.SIGKILL)
        finally:
            process.wait(30)
        killed_at = checks()
        assert 4 <= killed_at < len(urls)
        again = subprocess.run(  # (it mends the file the kill cut first, as capture does)
            [*command, "recapture", "--allow-private"], capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        verified = CliRunner().invoke(cli, ["--root", str(root), "verify"])
        assert verified.exit_code == 0, verified.output
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            counts = dict(conn.execute("SELECT url, checks FROM articles").fetchall())
        conn.close()
        # each article checked once: those the killed run committed are not due again, the rest were
        assert counts == dict.fromkeys(urls, 1)
    finally:
        site.stop()
