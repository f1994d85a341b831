"""archiver's pywb templates: installed by `init`, and closing pywb's reflected XSS (pywb #923).

pywb 2.10.0's frame_insert.html writes the requested URL between quotes inside <script> with
autoescaping off, so /<coll>/<ts>/https:?x=%22%7D);alert(86);... runs the attacker's code in the
archive's origin. archiver ships a frame_insert.html that prints no value inside a script: they travel in a JSON
data block written with `tojson`, read by the script with JSON.parse.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from jinja2.utils import htmlsafe_json_dumps

from archiver.cli import cli
from archiver.config import Config
from archiver.init import init
from archiver.replay.templates import shipped_templates

from .support.browser import browser_page
from .support.newsite import NewsSite, seed_document
from .support.replaying import replay_server

# `"});alert(86);String({"a":"` after the timestamp: closes pywb's "{{ url }}" string and the
# object literal around it, calls alert(86), and swallows the rest of the line.
PAYLOAD_PATH = "/news/2023/https:?x=%22%7D);alert(86);String(%7B%22a%22:%22"

NASTY_URLS = [
    'https:?x="});alert(86);String({"a":"',  # the payload as pywb decodes it
    "https:?x=</script><script>alert(87)</script>",
    'https:?x=\\"-alert(88)-\\"',
    "https:?x='-alert(89)-'",
]


def test_init_installs_templates_and_keeps_a_users_copy(tmp_path: Path) -> None:
    cfg = Config(root=tmp_path / "root")
    shipped = shipped_templates()
    assert "frame_insert.html" in shipped
    installed = cfg.root / "templates" / "frame_insert.html"

    assert "templates/frame_insert.html" in init(cfg).created
    assert installed.read_bytes() == shipped["frame_insert.html"]
    assert init(cfg).created == []  # safe to run twice

    custom = installed.read_text(encoding="utf-8").replace("overflow: hidden;", "overflow: auto;")
    installed.write_text(custom, encoding="utf-8")
    assert init(cfg).created == []  # the user's changes are theirs
    assert installed.read_text(encoding="utf-8") == custom

    installed.unlink()  # a deleted template comes back
    assert init(cfg).created == ["templates/frame_insert.html"]
    assert installed.read_bytes() == shipped["frame_insert.html"]
    assert sorted(p.name for p in installed.parent.iterdir()) == sorted(shipped)  # no partial files left


def test_cli_init_says_it_installed_the_template(tmp_path: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["--root", str(tmp_path), "init"])
    assert first.exit_code == 0 and "created templates/frame_insert.html" in first.output
    second = runner.invoke(cli, ["--root", str(tmp_path), "init"])
    assert second.exit_code == 0 and "created" not in second.output


def render_top_frame(template_dir: Path, url: str, client_side_replay: bool = False) -> str:
    """The top frame page as pywb renders it for /news/2023/<url>, with `template_dir` first."""
    from pywb.rewrite.templateview import BaseInsertView, JinjaEnv, TopFrameView
    from pywb.rewrite.wburl import WbUrl

    # as pywb's RewriterApp sets up its templates, with <root>/templates/ in front of pywb's own
    jenv = JinjaEnv(paths=[str(template_dir)], globals={"static_path": "static"}, extensions=["jinja2.ext.i18n"])
    jenv.jinja_env.install_null_translations()
    jenv.init_loc(None, None, {}, None)
    view = TopFrameView(jenv, "frame_insert.html", BaseInsertView(jenv, "banner.html"))
    env = {"SCRIPT_NAME": "/news", "PATH_INFO": "/2023/" + url, "pywb.static_prefix": "http://127.0.0.1:8080/static"}
    return str(view.get_top_frame(WbUrl("2023/" + url), "http://127.0.0.1:8080/news/", "http://127.0.0.1:8080",
                                  env, "", "mp_", client_side_replay, ["extra.js"], coll="news",
                                  extra_params={"ui": {}, "metadata": {}}))


@pytest.mark.parametrize("client_side_replay", [False, True])
@pytest.mark.parametrize("url", NASTY_URLS)
def test_the_requested_url_reaches_javascript_only_as_an_escaped_literal(
        tmp_path: Path, url: str, client_side_replay: bool) -> None:
    from pywb.rewrite.wburl import WbUrl

    init(Config(root=tmp_path))
    page = render_top_frame(tmp_path / "templates", url, client_side_replay)
    literal = str(htmlsafe_json_dumps(WbUrl("2023/" + url).get_url()))
    assert page.count(literal) == 1  # once, inside the JSON data block
    rest = page.replace(literal, "")
    assert "alert(" not in rest, rest  # nothing of the attacker's text outside the literal
    assert "pywb issue #923" not in page  # the header comment is not sent to browsers
    assert page.startswith("<!DOCTYPE html>")


@pytest.fixture
def replayed_root(tmp_path: Path, site: NewsSite) -> Iterator[tuple[str, dict[str, Any]]]:
    """An archive root made by the CLI with one captured article, replayed; (base URL, its export row)."""
    root = tmp_path / "root"
    runner = CliRunner()
    assert runner.invoke(cli, ["--root", str(root), "init"]).exit_code == 0
    assert (root / "templates" / "frame_insert.html").is_file()
    (root / "seeds" / "plain.txt").write_text(
        seed_document(site.url + "/plain.html", "普通文章", 1696553101000), "utf-8")
    result = runner.invoke(cli, ["--root", str(root), "capture", "--allow-private", "--timeout", "10"])
    assert result.exit_code == 0, result.output
    row = json.loads(runner.invoke(cli, ["--root", str(root), "export", "--format", "jsonl"]).output)
    with replay_server(root) as base:
        yield base, row


@contextmanager
def watched_page() -> Iterator[tuple[Any, list[str], list[str]]]:
    """A browser page that records (and dismisses) every dialog, and every uncaught script error."""
    with browser_page() as page:
        dialogs: list[str] = []
        errors: list[str] = []

        def on_dialog(dialog: Any) -> None:
            dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda error: errors.append(str(error)))
        yield page, dialogs, errors


BANNER = '[data-app="webrecorder-replay-app"] nav'


@pytest.mark.slow
def test_payload_url_runs_no_script_in_framed_replay(replayed_root: tuple[str, dict[str, Any]]) -> None:
    base, _ = replayed_root
    with watched_page() as (page, dialogs, errors):
        page.goto(base + PAYLOAD_PATH, wait_until="load")  # an inline script's alert would run before "load"
        frame = page.wait_for_selector("iframe#replay_iframe").content_frame()
        assert frame is not None
        frame.wait_for_load_state("load")
        page.wait_for_timeout(300)  # let anything the page scheduled run
        assert dialogs == []  # with pywb 2.10.0's own template: ["alert: 86"]
        assert errors == []
        # the top frame's scripts ran with the URL as data: the banner is drawn, and the iframe was
        # sent to the (unarchived) URL, the attacker's text and all
        page.wait_for_selector(BANNER)
        frame.wait_for_url(lambda url: "mp_/" in url)
        assert "alert(86)" in urllib.parse.unquote(frame.url)
        frame.wait_for_selector("text=could not be found")
        assert dialogs == [] and errors == []


@pytest.mark.slow
def test_framed_replay_still_works_with_the_template(replayed_root: tuple[str, dict[str, Any]]) -> None:
    base, row = replayed_root
    with watched_page() as (page, dialogs, errors):
        page.goto(base + row["replay_path"], wait_until="load")
        frame = page.wait_for_selector("iframe#replay_iframe").content_frame()
        assert frame is not None
        frame.wait_for_selector("text=这是一篇普通的文章。")
        assert frame.inner_text("h1") == "普通文章"
        banner = page.wait_for_selector(BANNER)
        assert banner is not None
        page.wait_for_selector(f'{BANNER} >> text="普通文章"')  # the banner names the capture shown
        assert dialogs == [] and errors == []
