"""Capture killed with SIGKILL at random moments, interrupted with Ctrl-C, then resumed."""

from __future__ import annotations

import contextlib
import gzip
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from archiver.collection import OPEN_SUFFIX, Collection
from archiver.index.metadata import Store

from .conftest import FAST_YAML
from .support.newsite import NewsSite, seed_document
from .support.warcs import all_records, check_with_third_party_tools

pytestmark = pytest.mark.slow


def start_capture(root: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "archiver", "--root", str(root), "capture", "--allow-private", "--workers", "4"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
    )


def make_root(tmp_path: Path, site: NewsSite, count: int, processes: int = 1) -> tuple[Path, list[str]]:
    root = tmp_path / "root"
    (root / "seeds").mkdir(parents=True)
    (root / "config.yaml").write_text(FAST_YAML + f"  processes: {processes}\n")
    hosts = (site.url, site.url.replace("127.0.0.1", "localhost"))  # two hosts, for two processes
    urls = [f"{hosts[n % 2]}/slow/{n:03d}" for n in range(count)]
    for n, url in enumerate(urls):
        (root / "seeds" / f"{n:03d}.txt").write_text(seed_document(url, f"第{n}篇", 1696553101000 + n))
    return root, urls


def complete_seed_records(archive: Path) -> set[str]:
    """IDs of the seed metadata records that lie complete in `.open` files."""
    ids = set()
    for path in archive.glob("*" + OPEN_SUFFIX):
        # warcio, not archiver's reader; it reads a record cut short as far as the bytes go (and may
        # then fail on the cut gzip member): a record is complete when its block is all there
        with path.open("rb") as fh, contextlib.suppress(Exception):
            for record in ArchiveIterator(fh):
                block = record.content_stream().read()
                if record.rec_type == "metadata" and len(block) == int(record.rec_headers.get_header("Content-Length")):
                    ids.add(record.rec_headers.get_header("WARC-Record-ID"))
    return ids


@pytest.mark.parametrize("processes", [1, 2])
def test_sigkill_at_random_moments_then_resume(tmp_path: Path, site: NewsSite, processes: int) -> None:
    root, urls = make_root(tmp_path, site, 60, processes)
    archive = root / "collections" / "news" / "archive"
    rng = random.Random(20231006)
    survivors: set[str] = set()
    kills = 0
    for _ in range(4):
        process = start_capture(root)
        time.sleep(rng.uniform(0.4, 1.2))
        if process.poll() is not None:
            break
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=10)  # reaps it and closes its pipe
        kills += 1
        survivors |= complete_seed_records(archive)
    assert kills >= 2, "capture finished before it could be killed; make the site slower"
    final = start_capture(root)
    output, _ = final.communicate(timeout=120)
    assert final.returncode == 0, output

    check_with_third_party_tools(archive)
    records = all_records(archive)
    ids = {r["headers"]["WARC-Record-ID"] for r in records}
    assert survivors <= ids, "a complete capture was thrown away"
    collection = Collection.at(root, "news")
    with Store(collection.db_path) as store:
        rows = list(store.articles())
    assert sorted(r.url for r in rows) == sorted(urls)  # every seed exactly once
    assert all(not r.error and r.status == 200 for r in rows)
    for row in rows:  # every row points at its record
        path = archive / row.warc_file
        with path.open("rb") as fh:
            fh.seek(row.warc_offset or 0)
            head = fh.read(row.warc_length or 0)
        assert f"WARC-Target-URI: {row.url}\r\n".encode() in gzip.decompress(head)


@pytest.mark.parametrize("processes", [1, 2])
def test_ctrl_c_stops_cleanly_and_the_next_run_resumes(tmp_path: Path, site: NewsSite, processes: int) -> None:
    root, urls = make_root(tmp_path, site, 60, processes)
    process = start_capture(root)
    archive = root / "collections" / "news" / "archive"
    deadline = time.monotonic() + 60  # worker processes start slowly on a busy machine: wait for a first file
    while time.monotonic() < deadline and not list(archive.glob("*" + OPEN_SUFFIX)) and process.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output
    assert "interrupted: run the same command again to resume" in output
    assert "Traceback" not in output
    assert not list(archive.glob("*" + OPEN_SUFFIX)), "files were left open"
    check_with_third_party_tools(archive)
    with Store(Collection.at(root, "news").db_path) as store:
        done_first = store.count()
    assert 0 < done_first < len(urls)
    again = start_capture(root)
    output, _ = again.communicate(timeout=120)
    assert again.returncode == 0, output
    assert f"{len(urls) - done_first} captured, 0 failed, {done_first} already captured" in output


def test_sigterm_stops_like_ctrl_c(tmp_path: Path, site: NewsSite) -> None:
    root, _ = make_root(tmp_path, site, 40)
    process = start_capture(root)
    time.sleep(0.8)
    os.kill(process.pid, signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output
    assert not list((root / "collections" / "news" / "archive").glob("*" + OPEN_SUFFIX))


def test_no_worker_process_outlives_a_killed_capture(tmp_path: Path, site: NewsSite) -> None:
    root, _ = make_root(tmp_path, site, 40, processes=2)
    before = _spawned()
    for delay in (0.05, 0.3, 0.8):  # while the workers start, and while they work
        process = start_capture(root)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=10)  # reaps it and closes its pipe
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _spawned() - before:
            time.sleep(0.1)
        assert not _spawned() - before, f"worker processes outlived the capture killed after {delay} s"


def _spawned() -> set[str]:
    """Live processes started by multiprocessing's spawn (capture's worker processes among them)."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"spawn_main" in (entry / "cmdline").read_bytes():
                found.add(entry.name)
        except OSError:
            continue
    return found


def test_a_killed_capture_leaves_every_finished_seed_on_disk(tmp_path: Path, site: NewsSite) -> None:
    """Each seed's records reach the file when the seed is done (not when a 1 MiB buffer fills):
    a capture killed mid-batch keeps the seeds it had finished, and the next run keeps them."""
    root, _urls = make_root(tmp_path, site, 60)
    archive = root / "collections" / "news" / "archive"
    served = len(site.hits)
    process = start_capture(root)
    deadline = time.monotonic() + 60  # a dozen seeds done: far less than a write buffer, far from the batch's end
    while time.monotonic() < deadline and len(site.hits) - served < 12 and process.poll() is None:
        time.sleep(0.02)
    time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=10)
    kept = complete_seed_records(archive)
    assert kept, "no finished seed reached the file before the kill"
    final = start_capture(root)
    output, _ = final.communicate(timeout=120)
    assert final.returncode == 0, output
    assert kept <= {r["headers"]["WARC-Record-ID"] for r in all_records(archive)}
    assert not list((root / "collections" / "news" / "indexes").glob(".pending-*"))
