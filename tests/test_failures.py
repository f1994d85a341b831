"""Failures say what happened and exit with their own status: a busy port, a full disk, an output
path that is no regular file, a URL too long for a record, a source that does not exist."""

from __future__ import annotations

import os
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

from archiver.capture.run import capture
from archiver.cli import cli
from archiver.collection import Collection
from archiver.config import Config
from archiver.errors import ExitStatus
from archiver.fetch.client import Fetcher
from archiver.index.metadata import Store

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
                                              (100_000, "writing the WARC files")])
def test_a_full_disk_stops_capture_with_the_io_status_and_the_next_run_resumes(tmp_path: Path, site: NewsSite,
                                                                               limit: int, where: str) -> None:
    root = tmp_path / "root"
    (root / "seeds").mkdir(parents=True)
    (root / "config.yaml").write_text(FAST_YAML)
    pages = ["/plain.html", "/gzip.html", "/gbk.html", "/og-only.html", "/chunked.html", "/same-plain.html"]
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
    assert long_page is not None and (long_page.lead_image_url, long_page.lead_image_status) == ("", "url_too_long")
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
