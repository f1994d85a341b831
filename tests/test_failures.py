"""Failures say what happened and exit with their own status: a busy port, a full disk, an output
path that is no regular file, a URL too long for a record, a source that does not exist."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import resource
import signal
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from archiver.capture.run import FAILURE_SAMPLE, capture
from archiver.cli import cli
from archiver.collection import Collection
from archiver.config import Config
from archiver.errors import ExitStatus
from archiver.fetch.client import Fetcher
from archiver.index.build import build_index
from archiver.index.metadata import Store
from archiver.seeds.sources import iter_seeds

from .conftest import FAST_YAML, Closing, capture_pages
from .support.newsite import NewsSite, seed_document
from .support.processes import stop
from .support.warcs import all_records


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port of 127.0.0.1 that another program listens on (and answers nothing)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        yield holder.getsockname()[1]


@pytest.mark.slow
def test_replay_on_a_port_in_use_fails_and_says_so(tmp_path: Path, busy_port: int) -> None:
    assert CliRunner().invoke(cli, ["--root", str(tmp_path), "init"]).exit_code == 0
    process = subprocess.Popen([sys.executable, "-m", "archiver", "--root", str(tmp_path), "replay",
                                "--port", str(busy_port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(timeout=60)
    finally:
        stop(process)
    assert process.returncode == ExitStatus.REPLAY, (out, err)
    assert "replay running" not in out
    assert f"port {busy_port}" in err and "choose another with --port" in err


def test_the_demo_on_a_busy_site_port_is_a_usage_error(tmp_path: Path, busy_port: int) -> None:
    result = CliRunner().invoke(cli, ["--root", str(tmp_path), "demo", "--site-port", str(busy_port), "--no-replay"])
    assert result.exit_code == ExitStatus.USAGE and "--site-port" in result.output
    assert "Traceback" not in result.output


def _capture_process(root: Path, file_size_limit: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        if file_size_limit is not None:  # no file may grow past it: writes fail as on a full disk (EFBIG)
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    return subprocess.run([sys.executable, "-m", "archiver", "--root", str(root), "capture", "--allow-private"],
                          capture_output=True, text=True, timeout=120, preexec_fn=limit)


@pytest.mark.slow
@pytest.mark.parametrize(("limit", "where"), [(40_000, "opening the metadata index"),
                                              (250_000, "writing the WARC files")])
def test_a_full_disk_stops_capture_with_the_io_status_and_the_next_run_resumes(tmp_path: Path, site: NewsSite,
                                                                               limit: int, where: str) -> None:
    root = tmp_path / "root"
    (root / "seeds").mkdir(parents=True)
    (root / "config.yaml").write_text(FAST_YAML)
    pages = ["/plain.html", "/gzip.html", "/gbk.html", "/og-only.html", "/chunked.html", "/same-plain.html"]
    pages += [page + "?again" for page in pages]  # WARC files that outgrow the metadata index and its log
    for n, page in enumerate(pages):
        (root / "seeds" / f"{n}.txt").write_text(seed_document(site.url + page, f"t{n}", 1696553101000 + n))
    full = _capture_process(root, file_size_limit=limit)
    assert full.returncode == ExitStatus.IO, full.stderr
    assert f"error: {where}" in full.stderr
    assert "Everything committed before it is kept" in full.stderr and "Traceback" not in full.stderr
    again = _capture_process(root)
    assert again.returncode == 0, again.stderr
    # every seed: captured now, or kept from the mended leftover of the run the disk stopped
    counts = re.search(r"(\d+) captured, 0 failed, (\d+) already captured", again.stderr)
    assert counts is not None and int(counts[1]) + int(counts[2]) == len(pages), again.stderr
    verified = CliRunner().invoke(cli, ["--root", str(root), "verify"])
    assert verified.exit_code == 0, verified.output


@pytest.fixture
def exported_root(cfg: Config, site: NewsSite) -> Path:
    capture_pages(cfg, site, ["/plain.html", "/gbk.html"])
    return cfg.root


def _export(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--root", str(root), "export", "--format", "jsonl", *args])


def test_export_onto_a_symlink_replaces_its_target_and_keeps_the_link(exported_root: Path, tmp_path: Path) -> None:
    target = tmp_path / "real.jsonl"
    target.write_text("old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    assert _export(exported_root, "-o", str(link)).exit_code == 0
    assert link.is_symlink() and len(target.read_text().splitlines()) == 2


def test_export_onto_a_fifo_writes_through_it(exported_root: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    result = _export(exported_root, "-o", str(fifo))
    reader.join(30)
    assert result.exit_code == 0 and stat.S_ISFIFO(fifo.stat().st_mode)
    assert len(received[0].splitlines()) == 2


@pytest.mark.skipif(not Path("/dev/full").exists() or os.geteuid() != 0, reason="needs /dev/full, as root")
def test_export_onto_devices_writes_into_them_and_never_replaces_them(exported_root: Path) -> None:
    assert _export(exported_root, "-o", "/dev/null").exit_code == 0
    full = _export(exported_root, "-o", "/dev/full")
    assert full.exit_code == ExitStatus.IO and "No space left on device" in full.output
    for device in ("/dev/null", "/dev/full"):
        assert stat.S_ISCHR(Path(device).stat().st_mode), f"{device} is no longer a device"


def test_a_url_too_long_for_a_record_is_never_written_and_the_seed_says_so(cfg: Config, site: NewsSite,
                                                                          tmp_path: Path) -> None:
    long_seed = "https://example.org/" + "a" * 20_000
    (cfg.root / "seeds").mkdir()
    (cfg.root / "seeds" / "urls.txt").write_text(long_seed + "\n")
    report = capture(cfg, [site.url + "/long-og-image.html", site.url + "/spaced-image.html",
                           str(cfg.root / "seeds" / "urls.txt")])
    assert [f.reason for f in report.failures] == ["url_too_long"]
    with Store(Collection.of(cfg).db_path) as store:
        long_page = store.get(site.url + "/long-og-image.html")
        spaced = store.get(site.url + "/spaced-image.html")
    assert long_page is not None and (long_page.lead_image_url, long_page.lead_image_error) == ("", "url_too_long")
    assert long_page.lead_image_status is None
    assert spaced is not None and spaced.lead_image_url == site.url + "/img/lead%20image%0B.jpg"
    archive = Collection.of(cfg).archive_dir
    targets = [r["headers"].get("WARC-Target-URI", "") for r in all_records(archive)]
    assert site.url + "/img/lead%20image%0B.jpg" in targets and not any(" " in t or len(t) > 16384 for t in targets)
    verified = CliRunner().invoke(cli, ["--root", str(cfg.root), "verify"])
    assert verified.exit_code == 0, verified.output
    assert CliRunner().invoke(cli, ["--root", str(cfg.root), "wacz", "-o", str(tmp_path / "x.wacz")]).exit_code == 0


def test_a_redirect_to_a_url_too_long_ends_the_chain(cfg: Config, site: NewsSite, closing: Closing) -> None:
    fetcher = Fetcher(cfg, lambda: datetime.now(UTC))
    chain = closing(fetcher.follow(site.url + "/redirect-to?" + site.url + "/" + "b" * 20_000))
    assert chain.error == "url_too_long" and len(chain.exchanges) == 1


def test_a_missing_source_is_a_usage_error_before_anything_is_created(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--root", str(tmp_path), "capture", str(tmp_path / "nope.txt")])
    assert result.exit_code == ExitStatus.USAGE and "no such file or directory" in result.output
    assert not (tmp_path / "collections").exists()


def test_a_read_only_copy_of_a_collection_can_be_read(cfg: Config, site: NewsSite) -> None:
    """status and export read a collection on a read-only disk (or one this user may not write)."""
    capture_pages(cfg, site, ["/plain.html", "/gbk.html"])
    assert not list(cfg.root.rglob("*-shm")) and not list(cfg.root.rglob("*-wal"))  # closed cleanly
    root = str(cfg.root)
    if os.geteuid() == 0:  # root writes through permissions: mount the root read-only, in a namespace of its own
        wrap = ["unshare", "-m", "sh", "-c", 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && '
                'exec "$@"', root]
    else:
        wrap = []
        for path in sorted(cfg.root.rglob("*"), reverse=True):
            path.chmod(0o555 if path.is_dir() else 0o444)
    for command in (["status"], ["export", "--format", "jsonl"]):
        result = subprocess.run([*wrap, sys.executable, "-m", "archiver", "--root", root, *command],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2


ESCAPES = ("\x1b", "\x07", "\x9b")


def test_what_archiver_prints_to_a_terminal_carries_no_escape_sequence(cfg: Config, site: NewsSite,
                                                                       tmp_path: Path) -> None:
    capture_pages(cfg, site, ["/escapes.html"])
    (cfg.root / "seeds" / "bad\x1b[2J.txt").write_text("not a seed at all\n")  # reported, with its name
    runner = CliRunner()
    captured = runner.invoke(cli, ["--root", str(cfg.root), "capture", str(cfg.root / "seeds")])
    searched = runner.invoke(cli, ["--root", str(cfg.root), "search", "终端转义"])
    assert "标题" in searched.output and "bad" in captured.output
    for output in (captured.output, searched.output):
        assert not any(c in output for c in ESCAPES), output
    # export to a terminal (a pty) escapes them too; to a file or a pipe it stays exact
    leader, follower = pty.openpty()
    with os.fdopen(leader, "rb", buffering=0) as terminal:
        process = subprocess.Popen([sys.executable, "-m", "archiver", "--root", str(cfg.root), "export",
                                    "--format", "jsonl"], stdout=follower, stderr=subprocess.DEVNULL)
        os.close(follower)
        shown = b""
        with contextlib.suppress(OSError):  # EIO once the process has closed the terminal
            while chunk := terminal.read(65536):
                shown += chunk
        process.wait(30)
    assert "标题".encode() in shown and not any(c.encode() in shown for c in ESCAPES)
    piped = runner.invoke(cli, ["--root", str(cfg.root), "export", "--format", "csv"])
    assert "\x1b]0;pwned\x07" in piped.output  # the data itself is kept as it is


def test_an_index_rebuild_keeps_a_url_that_ends_with_an_angle_bracket(cfg: Config, site: NewsSite) -> None:
    url = site.url + "/angle.html?to=>"
    capture(cfg, [url])
    with Store(Collection.of(cfg).db_path) as store:
        before = store.get(url)
    cdxj = Collection.of(cfg).cdxj_path.read_text()
    build_index(cfg)
    with Store(Collection.of(cfg).db_path) as store:
        after = store.get(url)
    assert before is not None and before.final_url == url and after == before
    assert Collection.of(cfg).cdxj_path.read_text() == cdxj


def test_a_long_url_list_whose_start_ends_inside_a_character_is_read(tmp_path: Path) -> None:
    first = "https://example.org/" + "新" * 1360  # the 4,096th byte falls inside a character
    lines = [first] + [f"https://example.org/{n}" for n in range(200_000)]
    path = tmp_path / "urls.txt"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size > 4 * 1024 * 1024 and len(first.encode()) > 4096 - 20
    seeds = iter_seeds([str(path)], tmp_path)
    assert [next(seeds).url for _ in range(2)] == [first, "https://example.org/0"]


def test_failed_seeds_are_counted_and_listed_once(cfg: Config, site: NewsSite) -> None:
    urls = [f"{site.url}/missing-{n}.html" for n in range(FAILURE_SAMPLE + 20)]
    report = capture(cfg, urls)
    assert report.failed == len(urls) and report.failed_by_reason == {"http_404": len(urls)}
    assert len(report.failures) == FAILURE_SAMPLE  # a sample: memory stays flat
    result = CliRunner().invoke(cli, ["--root", str(cfg.root), "capture", *urls[:3]])
    assert result.exit_code == ExitStatus.PARTIAL
    assert sum(line.startswith("FAILED") for line in result.output.splitlines()) == 3  # as they fail, not again
    assert "archiver export --status failed" in result.output
    exported = CliRunner().invoke(cli, ["--root", str(cfg.root), "export", "--status", "failed", "--format", "jsonl"])
    assert len(exported.output.splitlines()) == len(urls)


def test_verify_says_how_to_check_a_wacz(tmp_path: Path) -> None:
    wacz = Path(__file__).parent / "data" / "real-warcs" / "pywb" / "waczs" / "valid_example_1.wacz"
    result = CliRunner().invoke(cli, ["--root", str(tmp_path), "verify", str(wacz)])
    assert result.exit_code == ExitStatus.PARTIAL and "wacz validate" in result.output


def test_a_feed_copy_carries_no_script_of_the_feed(cfg: Config, site: NewsSite) -> None:
    seeds = cfg.root / "seeds"
    seeds.mkdir()
    (seeds / "1.txt").write_text(seed_document(site.url + "/gone.html", "已删除", 1696553101000,
                                               body='<p>正文</p><script>alert(1)</script>'
                                                    '<img src="https://example.org/a.jpg" onerror="alert(2)">'
                                                    '<a href="javascript:alert(3)">链接</a>'))
    capture(cfg, [str(seeds)])
    (copy,) = [r for r in all_records(Collection.of(cfg).archive_dir) if r["type"] == "resource"]
    html = copy["payload"].decode()
    assert "正文" in html and 'src="https://example.org/a.jpg"' in html
    assert "<script" not in html and "onerror" not in html and "javascript:" not in html
