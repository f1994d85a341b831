"""The replayed article looks like the live one: in headless Chromium, at a desktop and a phone
viewport, framed and unframed (`mp_`), the replay loads every resource the live page loaded
(no failed request) and its screenshot matches the live page's pixel for pixel, within a
tolerance for antialiasing. The screenshots are kept in the test's temporary folder."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from archiver.capture.run import capture
from archiver.cli import cli
from archiver.config import load
from archiver.demo import SiteServer, demo, site_dir
from archiver.export import export

from .support.cdnsite import CdnSite
from .support.looks import VIEWPORTS, Watched, chromium, differing, mp_url
from .support.replaying import replay_server

pytestmark = pytest.mark.slow

SHARE = 0.002  # of the pixels may differ (antialiasing); a missing image or font changes far more
# the fixture site's pages are ready once its lazy-loading script has run too
CDN_READY = """() => document.documentElement.classList.contains("js") && document.fonts.status === "loaded"
    && [...document.images].every(i => i.complete && i.naturalWidth > 0 && !i.src.startsWith("data:"))"""


@pytest.fixture
def cdn() -> Iterator[CdnSite]:
    site = CdnSite()
    yield site
    site.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as running:
        yield running


def _replay_paths(root: Path, collection: str = "news") -> dict[str, str]:
    out = io.StringIO()
    export(load(root, collection=collection), out, "jsonl")
    return {row["url"]: row["replay_path"] for row in map(json.loads, out.getvalue().splitlines())}


@pytest.mark.parametrize("kind", list(VIEWPORTS))
def test_the_replayed_article_looks_like_the_live_one(tmp_path: Path, cdn: CdnSite, browser: Any, kind: str) -> None:
    root = tmp_path / "root"
    assert CliRunner().invoke(cli, ["--root", str(root), "init"]).exit_code == 0
    assert capture(load(root, allow_private=True, timeout=10, host_delay=0.0, processes=1),
                   [cdn.article(1), cdn.article(2)]).ok
    article = cdn.article(1)
    path = _replay_paths(root)[article]
    viewport = VIEWPORTS[kind]["viewport"]
    with replay_server(root) as base:
        with Watched(browser, kind, CDN_READY) as framed:
            framed_shot, size = framed.framed(base + path)
            assert not framed.failed, framed.failed
        with Watched(browser, kind, CDN_READY) as unframed:  # at the whole viewport, as a reader of mp_ sees it
            unframed_shot = unframed.unframed(base, mp_url(base, path), viewport)
            assert not unframed.failed, unframed.failed
            replayed = unframed.answered
        # nothing of the replay came from the live site (which still runs): all of it from the archive
        leaked = [url for w in (framed, unframed) for url in w.answered if url.startswith((cdn.url, cdn.static))]
        assert not leaked, leaked
    # The live page at each replay's size: pywb's frame is the viewport less its banner (on a phone, 980
    # CSS pixels wide less the banner: its frame page has no <meta name=viewport>, as pywb's own has not)
    shots = {}
    for name, shot, at in (("framed", framed_shot, size), ("mp_", unframed_shot, viewport)):
        with Watched(browser, kind, CDN_READY) as live:
            shots[name] = (live.live(article, at), shot)
            assert not live.failed, live.failed
            if name == "mp_":
                loaded = [url for url in live.answered if url.startswith(cdn.static)]
    # stylesheets, the font, the script, and every image (of a srcset, the candidate this screen takes)
    assert len(loaded) >= 11, loaded
    for url in loaded:  # every resource the live page loaded, the replay served from the archive
        served = [status for replay_url, status in replayed.items() if replay_url.endswith("_/" + url)]
        assert served and all(status == 200 for status in served), (url, served)
    for name, (live_shot, shot) in shots.items():
        (tmp_path / f"{kind}-{name}-live.png").write_bytes(live_shot)
        (tmp_path / f"{kind}-{name}-replay.png").write_bytes(shot)
    for name, (live_shot, shot) in shots.items():
        share = differing(live_shot, shot)
        assert share <= SHARE, f"{kind} {name}: {share:.2%} of the pixels differ; see {tmp_path}"


def test_the_demo_replays_like_the_live_demo_site(tmp_path: Path, browser: Any) -> None:
    root = tmp_path / "root"
    assert CliRunner().invoke(cli, ["--root", str(root), "init"]).exit_code == 0
    cfg = load(root, processes=1)
    report = demo(cfg, site_port=0)
    assert report.capture.ok
    paths = _replay_paths(root, "demo")
    size = VIEWPORTS["desktop"]["viewport"]
    live_shots: dict[str, tuple[bytes, int]] = {}
    with SiteServer(site_dir(), 0) as server:  # the live site again (its port differs: the paths do not)
        for url in paths:
            with Watched(browser, "desktop") as live:
                live_shots[url] = live.live(server.url + urlsplit(url).path, size, full_page=True), live.height()
                assert not live.failed, live.failed
    with replay_server(root) as base:
        for url, path in paths.items():
            live_shot, height = live_shots[url]
            with Watched(browser, "desktop") as unframed:  # the whole page, down to its footer
                shot = unframed.unframed(base, mp_url(base, path), {**size, "height": height})
                assert not unframed.failed, (url, unframed.failed)
            name = url.rsplit("/", 1)[-1].removesuffix(".html")
            (tmp_path / f"demo-{name}-live.png").write_bytes(live_shot)
            (tmp_path / f"demo-{name}-replay.png").write_bytes(shot)
            share = differing(live_shot, shot)
            assert share <= SHARE, f"{name}: {share:.2%} of the pixels differ; see {tmp_path}"
