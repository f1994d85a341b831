"""Page requisites: discovered in HTML and CSS, fetched once per collection while fresh (whatever
batch, process or run needs them), refreshed as revisit records, counted per article, rebuilt
from the WARC files alone, and bounded on hostile pages."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archiver.capture.run import capture
from archiver.collection import Collection
from archiver.config import Config, load
from archiver.export import export
from archiver.fetch.netguard import AddressPolicy, system_resolver
from archiver.index.build import build_index
from archiver.status import status
from archiver.verify import verify
from archiver.warc.record import REVISIT_PROFILE

from .conftest import FAST_YAML
from .support.cdnsite import SHARED, CdnSite, HangingServer, own_requisites, static_file
from .support.replaying import replay_server
from .support.warcs import check_with_third_party_tools


@pytest.fixture
def cdn() -> Iterator[CdnSite]:
    site = CdnSite()
    yield site
    site.stop()


def _urls(root: Path, urls: list[str]) -> Path:
    path = root / "urls.txt"
    path.write_text("".join(u + "\n" for u in urls))
    return path


def rows(cfg: Config) -> dict[str, dict[str, object]]:
    out = io.StringIO()
    export(cfg, out, "jsonl")
    return {row["url"]: row for row in map(json.loads, out.getvalue().splitlines())}


def records(collection: Collection) -> list[tuple[str, dict[str, str]]]:
    from warcio.archiveiterator import ArchiveIterator

    found = []
    for path in sorted(collection.archive_dir.glob("*.warc.gz")):
        with path.open("rb") as fh:
            for record in ArchiveIterator(fh):
                found.append((record.rec_type, dict(record.rec_headers.headers)))
    return found


def test_shared_requisites_are_fetched_once_for_many_articles(cfg: Config, cdn: CdnSite) -> None:
    articles = [cdn.article(n) for n in range(12)]
    # small batches: the articles and their requisites travel in many batches
    cfg = replace(cfg, batch_size=3, batch_wait=0.05)
    report = capture(cfg, [str(_urls(cfg.root, articles))])
    assert report.captured == 12 and report.ok
    for path in SHARED:
        assert cdn.static_hits[path] == 1, (path, cdn.static_hits)
    for n in range(12):
        for path in own_requisites(n):  # every srcset candidate, the lazy image, both <picture> sources
            assert cdn.static_hits[path] == 1, path
    assert sum(cdn.static_hits.values()) == len(SHARED) + 12 * len(own_requisites(0))
    expected = len(SHARED) + len(own_requisites(0))
    for url, row in rows(cfg).items():
        assert (row["requisites"], row["requisites_failed"], row["requisites_skipped"]) == (expected, 0, 0), url
    tally = report.requisites
    assert tally.fetched == sum(cdn.static_hits.values()) - 12  # (the lead images were fetched with their pages)
    assert tally.fresh > 0 and tally.failed == tally.skipped == 0

    # a second run: the requisites are fresh, nothing shared is fetched again
    more = [cdn.article(n) for n in range(12, 15)]
    again = capture(cfg, [str(_urls(cfg.root, articles + more))])
    assert again.captured == 3 and again.skipped == 12
    assert all(cdn.static_hits[path] == 1 for path in SHARED)
    assert rows(cfg)[more[0]]["requisites"] == expected

    # every count comes back from the WARC files alone
    before = rows(cfg)
    build_index(cfg)
    assert rows(cfg) == before
    totals = status(cfg).collections[0].requisites
    assert totals.ok == sum(cdn.static_hits.values()) and totals.shared_bytes > 0  # (lead images too)


def _clock(year: int) -> Callable[[], datetime]:
    ticks = itertools.count()
    return lambda: datetime(year, 1, 2, 3, 4, 5, tzinfo=UTC) + timedelta(seconds=next(ticks))


@pytest.mark.slow
def test_a_stale_requisite_fetched_again_is_a_revisit_that_replays_its_original(cfg: Config, cdn: CdnSite) -> None:
    capture(cfg, [str(_urls(cfg.root, [cdn.article(1)]))], clock=_clock(2024))
    a_year_later = replace(cfg, requisites_max_age=30 * 86400)  # a month: a year later, every one is stale
    report = capture(a_year_later, [str(_urls(cfg.root, [cdn.article(2)]))], clock=_clock(2025))
    assert report.ok and cdn.static_hits["/css/site.css"] == 2
    collection = Collection.of(cfg)
    revisits = [h for kind, h in records(collection) if kind == "revisit"]
    assert {h["WARC-Target-URI"] for h in revisits} == {cdn.static + p for p in SHARED}
    for headers in revisits:
        assert headers["WARC-Profile"] == REVISIT_PROFILE
        assert headers["WARC-Refers-To-Target-URI"] == headers["WARC-Target-URI"]
        assert headers["WARC-Refers-To-Date"] < headers["WARC-Date"]
        assert headers["WARC-Payload-Digest"].startswith("sha1:")
    assert report.requisites.revisits == len(SHARED) and report.requisites.revisit_bytes > 0
    check_with_third_party_tools(collection.archive_dir)
    cdxj = collection.cdxj_path.read_text()
    assert cdxj.count('"mime": "warc/revisit"') == len(SHARED)
    # archiver's own checker: every record whole, and both indexes agreeing with the files
    checked = verify(cfg)
    assert checked.problems == [] and checked.records > 0
    before = rows(cfg)
    build_index(cfg)
    assert rows(cfg) == before and collection.cdxj_path.read_text() == cdxj
    # pywb replays a revisit with its original's payload and the revisit's own headers
    with replay_server(cfg.root) as base:
        for path in ("/css/site.css", "/fonts/serif.woff"):
            original = static_file(path)
            assert original is not None
            with urllib.request.urlopen(f"{base}/news/20250102030600id_/{cdn.static}{path}", timeout=30) as answer:
                assert answer.status == 200 and answer.read() == original[1], path
                assert " 2025 " in answer.headers["Memento-Datetime"]  # the revisit's, not the original's


def test_requisites_off_captures_the_page_and_lead_image_only(cfg: Config, cdn: CdnSite) -> None:
    report = capture(replace(cfg, requisites=False), [str(_urls(cfg.root, [cdn.article(1)]))])
    assert report.ok and dict(cdn.static_hits) == {"/img/lead-1.png": 1}
    row = rows(cfg)[cdn.article(1)]
    assert (row["requisites"], row["requisites_failed"], row["requisites_skipped"]) == (None, None, None)


@pytest.mark.slow
def test_no_requisites_on_the_command_line_of_capture_and_watch(tmp_path: Path, cdn: CdnSite) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "config.yaml").write_text(FAST_YAML + "  processes: 1\n")
    base = [sys.executable, "-m", "archiver", "--root", str(root)]
    done = subprocess.run([*base, "capture", "--allow-private", "--no-requisites", cdn.article(1)],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert dict(cdn.static_hits) == {"/img/lead-1.png": 1}
    feed = root / "feed.xml"
    feed.write_text(f"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
        <item><title>two</title><link>{cdn.article(2)}</link></item></channel></rss>""")
    with subprocess.Popen([*base, "watch", "--allow-private", "--no-requisites", "--every", "1h", str(feed)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                          text=True) as watching:
        assert watching.stderr is not None
        seen = ""
        stop = threading.Timer(120, watching.send_signal, [signal.SIGINT])  # a silent hang ends too
        stop.start()
        try:
            while "round 1:" not in seen and (line := watching.stderr.readline()):
                seen += line
        finally:
            stop.cancel()
            watching.send_signal(signal.SIGINT)
            watching.wait(30)
        assert "round 1: 1 captured" in seen, seen
    assert dict(cdn.static_hits) == {"/img/lead-1.png": 1, "/img/lead-2.png": 1}
    found = rows(load(root))
    assert sorted(found) == [cdn.article(1), cdn.article(2)]
    assert {row["requisites"] for row in found.values()} == {None}


def test_a_hostile_page_is_bounded_reported_and_loses_nothing(cfg: Config, cdn: CdnSite) -> None:
    hanging = HangingServer()
    try:
        images = "".join(f'<img src="{cdn.static}/img/body-{n}.png">' for n in range(2000))
        cdn.static_extra["/css/self.css"] = ("text/css", b'@import "self.css"; @import url(loop-a.css);'
                                                         b' body { background: url(../img/logo.png) }')
        cdn.static_extra["/css/loop-a.css"] = ("text/css", b'@import "loop-b.css";')
        cdn.static_extra["/css/loop-b.css"] = ("text/css", b'@import "loop-a.css"; @import "deep.css";')
        cdn.static_extra["/css/deep.css"] = ("text/css", b'@import "deeper.css";')
        cdn.extra_pages["/many.html"] = f"<html><head><title>many</title></head><body>{images}</body></html>"
        cdn.extra_pages["/hostile.html"] = (
            f'<html><head><title>hostile</title><link rel=stylesheet href="{cdn.static}/css/self.css"></head><body>'
            '<img src="http://private.test/secret.png">'
            f'<img src="{hanging.url}/hangs.png"></body></html>')
        resolver = _mapped({"private.test": "10.0.0.7"})

        class LoopbackOnly(AddressPolicy):  # the test's servers stand in for public hosts; nothing else is
            def check(self, host: str, address: str) -> None:
                if not address.startswith("127."):
                    AddressPolicy.check(self, host, address)

        quick = replace(cfg, timeout=2, read_timeout=1, retries=0)
        report = capture(quick, [str(_urls(cfg.root, [cdn.url + "/many.html", cdn.url + "/hostile.html"]))],
                         policy=LoopbackOnly(resolver=resolver))
        assert report.captured == 2
        found = rows(cfg)
        many = found[cdn.url + "/many.html"]
        assert many["requisites"] == 150 and many["requisites_skipped"] == 2000 - 150
        assert sum(cdn.static_hits[f"/img/body-{n}.png"] for n in range(2000)) == 150
        hostile = found[cdn.url + "/hostile.html"]
        # self.css, loop-a, loop-b, deep and logo captured; deeper.css is four @imports down: not read;
        # the private address refused before any connection (skipped); the hanging host timed out (failed)
        assert cdn.static_hits["/css/self.css"] == 1 and cdn.static_hits["/css/loop-a.css"] == 1
        assert cdn.static_hits["/css/deeper.css"] == 0
        assert (hostile["requisites"], hostile["requisites_failed"], hostile["requisites_skipped"]) == (5, 1, 2)
        # (the refused image is the page's first: fetched, and refused, as its lead image)
        assert hostile["lead_image_error"] == "blocked_address" and report.requisites.failed == 1
        before = rows(cfg)
        build_index(cfg)
        assert rows(cfg) == before
    finally:
        hanging.stop()


def _mapped(mapping: dict[str, str]):  # type: ignore[no-untyped-def]
    def resolve(host: str, port: int) -> list[str]:
        return [mapping[host]] if host in mapping else system_resolver(host, port)
    return resolve


@pytest.mark.slow
def test_requisites_a_killed_run_left_are_fetched_by_the_next(tmp_path: Path, cdn: CdnSite) -> None:
    """Killed (SIGKILL) while pages it recorded still had requisites to fetch: the next run fetches
    them, and every article ends with all its requisites counted."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "config.yaml").write_text(FAST_YAML + "  batch_size: 4\n  batch_wait: 0.05\n  processes: 1\n")
    articles = [cdn.article(n) for n in range(24)]
    _urls(root, articles)
    cdn.static_delay = 0.05
    command = [sys.executable, "-m", "archiver", "--root", str(root), "capture", "--allow-private",
               str(root / "urls.txt")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    db = root / "collections/news/indexes/metadata.sqlite"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if db.exists() and _unfetched(db) > 10:
                break
            time.sleep(0.05)
        assert process.poll() is None, "the run ended before it could be killed mid-way"
        process.kill()
    finally:
        process.wait(30)
    cdn.static_delay = 0.0
    again = subprocess.run(command, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert again.returncode == 0, again.stderr
    assert _unfetched(db) == 0
    cfg = load(root)
    found = rows(cfg)
    assert sorted(found) == sorted(articles)
    expected = len(SHARED) + len(own_requisites(0))
    assert {(r["requisites"], r["requisites_failed"], r["requisites_skipped"]) for r in found.values()} == {
        (expected, 0, 0)}


def _unfetched(db: Path) -> int:
    """References recorded and not fetched yet."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
            return int(conn.execute("SELECT count(*) FROM refs r WHERE NOT EXISTS "
                                    "(SELECT 1 FROM captures c WHERE c.url = r.url)").fetchone()[0])
    except sqlite3.Error:
        return 0
