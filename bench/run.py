#!/usr/bin/env python3
"""archiver's benchmarks: capture, index, memory, replay, CDXJ lookups and Dask cluster mode, each
against baselines measured in the same run, alternating (A, B, A, B, ...), several repetitions.

    .venv/bin/python bench/run.py [all|capture|requisites|recapture|schedule|index|...|profile] [--quick] [--reps N]

`make bench` runs `all`. Results (Markdown) are printed and written to
bench/.data/results/latest.md (and a dated copy). See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import benchlib as bl
from benchlib import ARCHIVER, BENCH, BIN, DATA, PY, RUNS, Run, fmt, log, median, ratio, run_timed, table, verdict
from content import article_title, jpeg_pool, seed_document

BENCHMARKS = ("capture", "requisites", "recapture", "schedule", "index", "memory", "replay", "cdxj", "cluster", "fetch")
MB = 1024 * 1024
WARM = 20  # articles of the capture warm-up run of each tool (not counted)
FETCH_THREADS = 64  # the fetch benchmark's threads (capture's default workers until 2026-11-26; now 96)
SNAPSHOT = DATA / "snapshots" / "none"  # this run's copy of archiver/ (snapshot_archiver)


@dataclass
class Settings:
    quick: bool
    reps: int
    articles: int
    workers: list[int]
    latency: float
    ports: int
    wget_articles: int
    baseline_threads: int
    corpus_articles: int
    corpus_files: int
    corpus_extra: int
    stream_seeds: int
    cluster_articles: int
    export_rows: int
    replay_pages: int
    ka_requests: int
    close_requests: int
    cdxj_small: int
    cdxj_large: int
    cdxj_lookups: int
    keep: bool
    time_limit: float


@dataclass
class Report:
    settings: Settings
    machine: dict[str, str]
    sections: list[tuple[str, list[str]]] = field(default_factory=list)
    targets: list[list[str]] = field(default_factory=list)
    rss: dict[str, float] = field(default_factory=dict)  # what -> peak memory MB (Run.rss_mb)

    def target(self, name: str, goal: str, measured: str, ok: bool | None) -> None:
        self.targets.append([name, goal, measured, verdict(ok)])

    def markdown(self, started: float, which: list[str]) -> str:
        s, m = self.settings, self.machine
        out = [
            "# archiver benchmark results", "",
            f"{m['date']} · {m['cores']} cores · {m['cpu']} · {m['memory']} RAM · Python {m['python']} · "
            f"Linux {m['kernel']} · archiver {m['archiver']}", "",
            f"Benchmarks: {', '.join(which)} · repetitions: {s.reps} (alternating) · "
            f"{'--quick (smoke sizes)' if s.quick else 'default sizes'} · total wall time "
            f"{(time.monotonic() - started) / 60:.1f} min · load average at start {m['load']}, at end "
            f"{bl.loadavg()} (other work on the machine shows here)", "",
            "Every figure is a median over the repetitions; ratios compare medians measured in this same run.",
            "",
        ]
        if self.targets:
            out += ["## Targets (from the performance issue)", ""]
            out += [*table(["target", "goal", "measured", "verdict"], self.targets), ""]
        for title, lines in self.sections:
            out += [f"## {title}", "", *lines, ""]
        return "\n".join(out)


# --- helpers ------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def warc_files(root: Path, collection: str = "bench") -> list[Path]:
    return sorted((root / "collections" / collection / "archive").glob("*.warc.gz"))


def count_records(paths: list[Path], rtype: str = "response") -> int:
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    wanted = getattr(WarcRecordType, rtype)
    n = 0
    for path in paths:
        with path.open("rb") as fh:
            n += sum(1 for _ in ArchiveIterator(fh, record_types=wanted))
    return n


def check_warcs(paths: list[Path], name: str) -> tuple[bool, bool]:
    """(warcio check passed, fastwarc check passed) over `paths` (one fastwarc process per file).

    fastwarc check runs as the project's tests run it (block digests). Its -p (payload digests)
    rejects every metadata record that carries a WARC-Payload-Digest, warcio-written ones included
    (bench/make_corpus.py's too), although the digest is the block's SHA-1 as it should be.
    """
    if not paths:
        return False, False
    warcio = run_timed([str(BIN / "warcio"), "check", *map(str, paths)], f"{name}-warcio-check").rc == 0
    fastwarc = [run_timed([str(BIN / "fastwarc"), "check", "-q", str(p)], f"{name}-fastwarc-check-{n}").rc == 0
                for n, p in enumerate(paths)]
    return warcio, all(fastwarc)


def captured_count(run: Run) -> int:
    m = re.search(r"(\d+) captured, (\d+) failed", run.stderr)
    return int(m.group(1)) if m else 0


def ms(seconds: float) -> str:
    return fmt(seconds * 1000, 1)


# --- 1. capture ---------------------------------------------------------------------------

def _seed_folders(work: Path, site: bl.Site, count: int) -> tuple[Path, Path, list[str]]:
    """A fresh `work` folder with seed documents for the site's first `count` articles in seeds/
    (the first WARM also in seeds-warm/); returns both folders and the URLs, page then image."""
    shutil.rmtree(work, ignore_errors=True)
    seeds, warm = work / "seeds", work / "seeds-warm"
    seeds.mkdir(parents=True)
    warm.mkdir()
    urls, epoch = [], 1_696_553_101_000
    for i in range(count):
        page, image = site.url(i), site.url(i, "img")
        doc = seed_document(page, article_title(i), epoch + i * 60_000, image)
        (seeds / f"{i:06d}.md").write_text(doc, encoding="utf-8")
        if i < WARM:
            (warm / f"{i:06d}.md").write_text(doc, encoding="utf-8")
        urls += [page, image]
    return seeds, warm, urls


def bench_capture(s: Settings, report: Report) -> None:
    jpeg_pool()
    work = DATA / "capture"
    log(f"capture: loopback site on {s.ports} ports, {s.latency * 1000:.0f} ms latency, {s.articles} articles")
    runs: dict[str, list[Run]] = {}
    checks: dict[str, list[tuple[bool, bool]]] = {}
    with bl.Site(s.ports, s.latency, prebuild=s.articles) as site:
        seeds, _, urls = _seed_folders(work, site, s.articles)
        (work / "urls.txt").write_text("\n".join(urls) + "\n")
        (work / "urls-wget.txt").write_text("\n".join(urls[:2 * s.wget_articles]) + "\n")
        (work / "urls-warm.txt").write_text("\n".join(urls[:2 * WARM]) + "\n")
        def archiver_tool(workers: int) -> Callable[[int], Run]:
            return lambda rep: _capture_archiver(s, site, seeds, workers, rep, checks)

        tools: list[tuple[str, Callable[[int], Run]]] = [(f"archiver (workers {w})", archiver_tool(w))
                                                         for w in s.workers]
        tools.append(("wget (sequential)", lambda rep: _capture_wget(s, site, work, rep)))
        tools.append((f"requests+warcio ({s.baseline_threads} threads)",
                      lambda rep: _capture_requests(s, site, work, rep)))
        log(f"capture warm-up (not counted): every tool once over {WARM} articles")
        for _, func in tools:
            func(-1)
        for rep in range(s.reps):
            for name, func in tools:
                log(f"capture rep {rep + 1}/{s.reps}: {name}")
                run = func(rep)
                runs.setdefault(name, []).append(run)
                log(f"  {run.wall:.1f} s, {run.extra['articles'] / run.wall:.1f} articles/s, "
                    f"CPU {run.cpu_pct:.0f}%, RSS {run.rss_mb:.0f} MB, rc {run.rc}")
    rates = {name: median([r.extra["articles"] / r.wall for r in rs]) for name, rs in runs.items()}
    wget_name = "wget (sequential)"
    base_name = next(n for n in runs if n.startswith("requests"))
    arch_names = [n for n in runs if n.startswith("archiver")]
    rows = []
    for name, rs in runs.items():
        ok = all(r.rc == 0 and r.extra["articles"] == r.extra["expected"] for r in rs)
        check = "n/a"
        if name in checks:
            w_ok = all(c[0] for c in checks[name])
            f_ok = all(c[1] for c in checks[name])
            check = f"warcio {'pass' if w_ok else 'FAIL'}, fastwarc {'pass' if f_ok else 'FAIL'}"
        rows.append([name, str(int(rs[0].extra["expected"])), fmt(median([r.wall for r in rs]), 1),
                     fmt(rates[name], 1), ratio(rates[name], rates[wget_name], 1),
                     ratio(rates[name], rates[base_name]), fmt(median([r.cpu_pct for r in rs]), 0),
                     fmt(median([r.rss_mb for r in rs]), 0), fmt(median([r.extra["site_cpu_pct"] for r in rs]), 0),
                     ("ok" if ok else "**errors**") + ("; " + check if check != "n/a" else "")])
        report.rss[f"capture, {name}"] = max(r.rss_mb for r in rs)
    best = max(arch_names, key=lambda n: rates[n])
    lines = [
        f"{s.articles} articles (20-80 KB Chinese HTML) each with a lead image (real JPEG, 50-200 KB), served by "
        f"bench/site.py (asyncio, {s.ports} ports on 127.0.0.1, {s.latency * 1000:.0f} ms per response). "
        f"archiver captures seed documents with host_concurrency = workers, host_delay 0, default processes "
        f"(one per core) and search index (built by the next search, not during capture). wget fetches the first "
        f"{s.wget_articles} articles and their images (sequential: its rate does not depend on the count); "
        "the other tools fetch all of them. Articles/s counts an article with its image. CPU % is (user+sys)/wall "
        "of the tool (200% = both cores); site CPU % is the server's share of the same wall time.", "",
        *table(["tool", "articles", "wall s", "articles/s", "vs wget", "vs requests", "CPU %", "peak memory MB",
                "site CPU %", "result, WARC checks"], rows), "",
        "Per repetition (wall s): " + "; ".join(f"{n}: " + ", ".join(f"{r.wall:.1f}" for r in rs)
                                                for n, rs in runs.items()),
    ]
    report.sections.append(("Capture throughput", lines))
    report.target("capture rate", ">= 450 articles/s", f"{rates[best]:.0f} articles/s ({best})", rates[best] >= 450)
    report.target("capture vs wget", ">= 45x", ratio(rates[best], rates[wget_name], 1),
                  rates[best] >= 45 * rates[wget_name])
    report.target("capture vs requests+warcio", ">= 3x", ratio(rates[best], rates[base_name]),
                  rates[best] >= 3 * rates[base_name])
    if not s.keep:
        shutil.rmtree(work, ignore_errors=True)


def _site_share(site: bl.Site, func: Callable[[], Run]) -> Run:
    before = site.cpu()
    run = func()
    run.extra["site_cpu_pct"] = 100 * (site.cpu() - before) / run.wall
    return run


def _capture_archiver(s: Settings, site: bl.Site, seeds: Path, workers: int, rep: int,
                      checks: dict[str, list[tuple[bool, bool]]]) -> Run:
    root = RUNS / f"capture-archiver-w{workers}"
    shutil.rmtree(root, ignore_errors=True)
    # pages and lead images only, as the other tools fetch them (the requisites benchmark measures the rest)
    bl.archiver_root(root, workers=workers, host_concurrency=workers, host_delay=0, allow_private=True,
                     requisites=False)
    name = f"capture-archiver-w{workers}-rep{rep}" if rep >= 0 else f"capture-archiver-w{workers}-warmup"
    source = seeds if rep >= 0 else seeds.with_name("seeds-warm")
    run = _site_share(site, lambda: run_timed(
        [ARCHIVER, "--root", str(root), "capture", str(source), "-c", "bench", "--allow-private", "-q"], name,
        cwd=root, timeout=s.time_limit))
    run.extra.update(articles=captured_count(run), expected=s.articles if rep >= 0 else WARM)
    if rep >= 0:
        log("  checking its WARC files with warcio check and fastwarc check")
        checks.setdefault(f"archiver (workers {workers})", []).append(check_warcs(warc_files(root), name))
    if not s.keep:
        shutil.rmtree(root, ignore_errors=True)
    return run


def _capture_wget(s: Settings, site: bl.Site, work: Path, rep: int) -> Run:
    out = RUNS / "capture-wget"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    run = _site_share(site, lambda: run_timed(
        ["wget", "-q", "--tries=1", f"--warc-file={out / 'wget'}", "-i",
         str(work / ("urls-wget.txt" if rep >= 0 else "urls-warm.txt")), "--delete-after", "-P", str(out / "files")],
        f"capture-wget-rep{rep}", cwd=out, timeout=s.time_limit))
    warc = out / "wget.warc.gz"
    responses = count_records([warc]) if warc.exists() else 0
    run.extra.update(articles=responses // 2, expected=s.wget_articles if rep >= 0 else WARM)
    if not s.keep:
        shutil.rmtree(out, ignore_errors=True)
    return run


def _capture_requests(s: Settings, site: bl.Site, work: Path, rep: int) -> Run:
    out = RUNS / "capture-requests"
    shutil.rmtree(out, ignore_errors=True)
    run = _site_share(site, lambda: run_timed(
        [PY, str(BENCH / "baseline_requests.py"), str(work / ("urls.txt" if rep >= 0 else "urls-warm.txt")), str(out),
         "--threads",
         str(s.baseline_threads), "--max-seconds", str(s.time_limit)], f"capture-requests-rep{rep}",
        timeout=s.time_limit + 30))
    try:
        fetched = json.loads(run.stdout.strip().splitlines()[-1])["fetched"]
    except (IndexError, ValueError, KeyError):
        fetched = 0
    run.extra.update(articles=fetched / 2, expected=s.articles if rep >= 0 else WARM)
    if not s.keep:
        shutil.rmtree(out, ignore_errors=True)
    return run


# --- 1b. requisites ---------------------------------------------------------------------------

REQUISITE_MODES = {
    "requisites off": {"requisites": False},
    "requisites on (shared while fresh)": {},
    "requisites on, max age 0 (every page its own)": {"requisites_max_age": 0},
}


def bench_requisites(s: Settings, report: Report) -> None:
    """Requests/s and articles/s with requisites on and off, on pages with a shared stylesheet (a web
    font and a background in its url()s) and script per host and three body images per article."""
    work = DATA / "requisites"
    shutil.rmtree(work, ignore_errors=True)
    seeds = work / "seeds"
    seeds.mkdir(parents=True)
    log(f"requisites: {s.articles} articles on {s.ports} ports, {s.latency * 1000:.0f} ms latency")
    runs: dict[str, list[Run]] = {}
    with bl.Site(s.ports, s.latency, prebuild=s.articles) as site:
        epoch = 1_696_553_101_000
        for i in range(s.articles):
            page = site.url(i, "rnews")
            doc = seed_document(page, article_title(i), epoch + i * 60_000, site.url(i, "img"))
            (seeds / f"{i:06d}.md").write_text(doc, encoding="utf-8")
        warm = work / "seeds-warm"
        warm.mkdir()
        for path in sorted(seeds.iterdir())[:WARM]:
            shutil.copy(path, warm / path.name)
        for name, extra in REQUISITE_MODES.items():
            _capture_requisites(s, site, warm, name, extra, -1)
        for rep in range(s.reps):
            for name, extra in REQUISITE_MODES.items():
                log(f"requisites rep {rep + 1}/{s.reps}: {name}")
                run = _capture_requisites(s, site, seeds, name, extra, rep)
                runs.setdefault(name, []).append(run)
                log(f"  {run.wall:.1f} s, {run.extra['requests'] / run.wall:.0f} requests/s, "
                    f"{run.extra['articles'] / run.wall:.1f} articles/s, RSS {run.rss_mb:.0f} MB, rc {run.rc}")
    off, on = list(REQUISITE_MODES)[:2]
    req = {n: median([r.extra["requests"] / r.wall for r in rs]) for n, rs in runs.items()}
    art = {n: median([r.extra["articles"] / r.wall for r in rs]) for n, rs in runs.items()}
    rows = []
    for name, rs in runs.items():
        ok = all(r.rc == 0 and r.extra["articles"] == s.articles for r in rs)
        last = rs[-1].extra
        rows.append([name, fmt(median([r.extra["requests"] for r in rs]), 0), fmt(median([r.wall for r in rs]), 1),
                     fmt(req[name], 0), ratio(req[name], req[off]), fmt(art[name], 1), ratio(art[name], art[off]),
                     fmt(median([r.rss_mb for r in rs]), 0), _mib(median([r.extra["warc"] for r in rs])),
                     fmt(last["revisits"], 0), _mib(last["stored"]), _mib(last["shared"]), _mib(last["revisit"]),
                     "ok" if ok else "**errors**"])
        report.rss[f"requisites, {name}"] = max(r.rss_mb for r in rs)
    lines = [
        f"{s.articles} articles as in the capture benchmark, each also with three body images (3 KB JPEGs: "
        "one plain, one lazy-loaded through data-src, one with a 3-candidate srcset, all captured) and its "
        f"host's shared stylesheet (whose url()s name a web font and a background) and script; {s.ports} hosts, "
        f"{s.latency * 1000:.0f} ms per response, workers 96, host_concurrency 96, host_delay 0. Requests are the "
        "WARC's response and revisit records; WARC MiB is the archive's size. From `archiver status`: the "
        "requisites' distinct payloads, the bytes pages did not fetch again because they shared a capture, and "
        "the payload bytes revisit records did not store again.", "",
        *table(["mode", "requests", "wall s", "requests/s", "vs off", "articles/s", "vs off", "peak memory MB",
                "WARC MiB", "revisits", "requisite payloads", "saved by sharing", "saved by revisits", "result"],
               rows), "",
        "Per repetition (wall s): " + "; ".join(f"{n}: " + ", ".join(f"{r.wall:.1f}" for r in rs)
                                                for n, rs in runs.items()),
    ]
    report.sections.append(("Requisites", lines))
    report.target("requests/s with requisites", ">= 0.9x without", ratio(req[on], req[off]), req[on] >= 0.9 * req[off])
    peak = max(r.rss_mb for r in runs[on])
    report.target("peak memory with requisites", "< 300 MB", f"{peak:.0f} MB", peak < 300)
    if not s.keep:
        shutil.rmtree(work, ignore_errors=True)


def _mib(size: float) -> str:
    return f"{size / 2**20:.1f} MiB"


def _capture_requisites(s: Settings, site: bl.Site, seeds: Path, mode: str, extra: dict[str, object],
                        rep: int) -> Run:
    root = RUNS / f"requisites-{_slug(mode)}"
    shutil.rmtree(root, ignore_errors=True)
    bl.archiver_root(root, workers=96, host_concurrency=96, host_delay=0, allow_private=True, **extra)
    name = f"requisites-{_slug(mode)}-rep{rep}" if rep >= 0 else f"requisites-{_slug(mode)}-warmup"
    run = _site_share(site, lambda: run_timed(
        [ARCHIVER, "--root", str(root), "capture", str(seeds), "-c", "bench", "--allow-private", "-q"], name,
        cwd=root, timeout=s.time_limit))
    files = warc_files(root)
    run.extra.update(articles=captured_count(run), warc=sum(p.stat().st_size for p in files),
                     requests=count_records(files, "response") + count_records(files, "revisit"),
                     revisits=count_records(files, "revisit"))
    shown = subprocess.run([ARCHIVER, "--root", str(root), "status", "-c", "bench", "--json"], capture_output=True,
                           text=True, timeout=120)
    try:
        totals = json.loads(shown.stdout)["collections"][0]["requisites"]
    except (ValueError, KeyError, IndexError):
        totals = {}
    run.extra.update(stored=totals.get("stored_bytes", 0), shared=totals.get("shared_bytes", 0),
                     revisit=totals.get("revisit_bytes", 0))
    if not s.keep:
        shutil.rmtree(root, ignore_errors=True)
    return run


# --- 1c. recapture ----------------------------------------------------------------------------

def bench_recapture(s: Settings, report: Report) -> None:
    """A recheck of unchanged articles against their first capture, in the same run: the
    requisites benchmark's pages (a shared stylesheet, font and script per host, three body
    images), captured, then all checked again with `recapture --older-than 0 --all`."""
    work = DATA / "recapture"
    shutil.rmtree(work, ignore_errors=True)
    seeds = work / "seeds"
    seeds.mkdir(parents=True)
    log(f"recapture: {s.articles} articles on {s.ports} ports, {s.latency * 1000:.0f} ms latency")
    firsts: list[Run] = []
    checks: list[Run] = []
    written: list[tuple[int, int]] = []
    with bl.Site(s.ports, s.latency, prebuild=s.articles) as site:
        epoch = 1_696_553_101_000
        for i in range(s.articles):
            doc = seed_document(site.url(i, "rnews"), article_title(i), epoch + i * 60_000, site.url(i, "img"))
            (seeds / f"{i:06d}.md").write_text(doc, encoding="utf-8")
        for rep in range(-1, s.reps):
            root = RUNS / "recapture"
            shutil.rmtree(root, ignore_errors=True)
            bl.archiver_root(root, workers=96, host_concurrency=96, host_delay=0, allow_private=True)
            source = seeds if rep >= 0 else _first(seeds, work / "seeds-warm")
            tag = f"rep{rep}" if rep >= 0 else "warmup"
            first = _timed_on(site, [ARCHIVER, "--root", str(root), "capture", str(source), "-c", "bench",
                                     "--allow-private", "-q"], f"recapture-first-{tag}", root, s.time_limit)
            size = sum(p.stat().st_size for p in warc_files(root))
            check = _timed_on(site, [ARCHIVER, "--root", str(root), "recapture", "-c", "bench", "--allow-private",
                                     "-q", "--older-than", "0", "--all"], f"recapture-check-{tag}", root, s.time_limit)
            check.extra["checked"] = _checked(check)
            check.extra["revisits"] = count_records(warc_files(root), "revisit")
            if rep >= 0:
                log(f"  first capture {first.wall:.1f} s, recheck {check.wall:.1f} s, rc {first.rc}/{check.rc}")
                firsts.append(first)
                checks.append(check)
                written.append((size, sum(p.stat().st_size for p in warc_files(root)) - size))
    first_wall, check_wall = median([r.wall for r in firsts]), median([r.wall for r in checks])
    first_bytes, check_bytes = median([w[0] for w in written]), median([w[1] for w in written])
    ok = all(r.rc == 0 for r in firsts + checks) and all(r.extra["checked"] == s.articles for r in checks)
    rows = [
        ["first capture", fmt(s.articles, 0), fmt(first_wall, 1), fmt(s.articles / first_wall, 1), "1.00x",
         _mib(first_bytes), "1.000x", fmt(median([r.rss_mb for r in firsts]), 0), "", "ok" if ok else "**errors**"],
        ["recapture, unchanged", fmt(median([r.extra["checked"] for r in checks]), 0), fmt(check_wall, 1),
         fmt(s.articles / check_wall, 1), ratio(check_wall, first_wall), _mib(check_bytes),
         f"{check_bytes / first_bytes:.3f}x", fmt(median([r.rss_mb for r in checks]), 0),
         fmt(median([r.extra["revisits"] for r in checks]), 0), "ok" if ok else "**errors**"],
    ]
    lines = [
        f"{s.articles} articles as in the requisites benchmark (a page, its lead image, three body images and its "
        f"host's shared stylesheet, font, background and script; {s.ports} hosts, {s.latency * 1000:.0f} ms per "
        "response, workers 96, host_concurrency 96, host_delay 0), captured, then all checked again at once "
        "(`recapture --older-than 0 --all`): every byte the same, so pages and images become revisit records and "
        "the shared files are still fresh. Bytes: what each run added to the WARC files.", "",
        *table(["run", "articles", "wall s", "articles/s", "time vs first", "bytes written", "bytes vs first",
                "peak memory MB", "revisit records", "result"], rows), "",
        "Per repetition (wall s): first " + ", ".join(f"{r.wall:.1f}" for r in firsts) + "; recapture "
        + ", ".join(f"{r.wall:.1f}" for r in checks),
    ]
    report.sections.append(("Recapture", lines))
    report.target("recapture of unchanged articles, time", "<= 0.5x the first capture", ratio(check_wall, first_wall),
                  check_wall <= 0.5 * first_wall)
    report.target("recapture of unchanged articles, bytes", "<= 0.05x the first capture",
                  f"{check_bytes / first_bytes:.3f}x", check_bytes <= 0.05 * first_bytes)
    if not s.keep:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(RUNS / "recapture", ignore_errors=True)


SCHEDULE_SIZES = (1_000_000, 10_000_000)  # --quick: 100,000 and 1,000,000
# "now" for each count due: the rows' next checks are spread evenly over 30 days (make_schedule.py)
DUE_COUNTS = (1_000, 100_000)


def bench_schedule(s: Settings, report: Report) -> None:
    """Finding what is due in a large collection, and `archiver status` on it."""
    sizes = tuple(n // 10 for n in SCHEDULE_SIZES) if s.quick else SCHEDULE_SIZES
    rows = []
    slowest_status = 0.0
    for size in sizes:
        root = DATA / f"schedule-{size}"
        if not (root / "collections/bench/indexes/metadata.sqlite").exists():
            log(f"schedule: making {size:,} rows (once; kept in {root})")
            shutil.rmtree(root, ignore_errors=True)
            subprocess.run([PY, str(BENCH / "make_schedule.py"), str(root), "bench", str(size)], check=True,
                           cwd=BENCH, env={**os.environ, "PYTHONPATH": str(BENCH)}, timeout=3600)
        moments = []
        for due in DUE_COUNTS:
            at = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=30) * (due / size)
            moments.append(at.strftime("%Y-%m-%dT%H:%M:%SZ"))
        timings: dict[int, list[float]] = {}
        found: dict[int, int] = {}
        for _ in range(s.reps):
            out = subprocess.run([PY, str(BENCH / "schedule_due.py"), str(root), "bench", *moments], check=True,
                                 capture_output=True, text=True, timeout=600).stdout
            for want, line in zip(DUE_COUNTS, out.splitlines(), strict=True):
                result = json.loads(line)
                timings.setdefault(want, []).append(result["seconds"])
                found[want] = result["due"]
        statuses = [run_timed([ARCHIVER, "--root", str(root), "status", "-c", "bench"], f"schedule-status-{size}",
                              timeout=s.time_limit) for _ in range(s.reps)]
        status_wall = median([r.wall for r in statuses])
        slowest_status = max(slowest_status, status_wall)
        for want in DUE_COUNTS:
            seconds = median(timings[want])
            rows.append([fmt(size, 0), fmt(found[want], 0), f"{seconds * 1000:.1f}",
                         f"{seconds / max(found[want], 1) * 1e6:.2f}", f"{status_wall:.2f}"])
    lines = [
        "Synthetic captured articles (bench/make_schedule.py: the real schema, next checks spread evenly over 30 "
        "days), and the selection `archiver recapture` makes with no options (capture/recheck.selected, every URL "
        "due read through the index on next_check, a page at a time), timed in-process (bench/schedule_due.py); "
        "`archiver status` timed as a whole command.", "",
        *table(["articles in the index", "due", "finding them ms", "µs per article due", "status s"], rows), "",
    ]
    report.sections.append(("Schedule", lines))
    report.target("status on the largest collection", "< 1 s", f"{slowest_status:.2f} s", slowest_status < 1.0)


def _timed_on(site: bl.Site, cmd: list[str], name: str, root: Path, limit: float) -> Run:
    return _site_share(site, lambda: run_timed(cmd, name, cwd=root, timeout=limit))


def _first(seeds: Path, warm: Path) -> Path:
    warm.mkdir(exist_ok=True)
    for path in sorted(seeds.iterdir())[:WARM]:
        shutil.copy(path, warm / path.name)
    return warm


def _checked(run: Run) -> int:
    m = re.search(r"(\d+) articles? checked", run.stderr)
    return int(m.group(1)) if m else 0


# --- 2. index -----------------------------------------------------------------------------

def corpus(s: Settings) -> Path:
    path = DATA / f"corpus-{s.corpus_articles}-{s.corpus_files}-{s.corpus_extra}"
    if not (path / "manifest.json").exists():
        log(f"generating the WARC corpus in {path} (once; about 2 min for the default 1 GB)")
        shutil.rmtree(path, ignore_errors=True)
        subprocess.run([PY, str(BENCH / "make_corpus.py"), str(path), "--articles", str(s.corpus_articles),
                        "--files", str(s.corpus_files), "--extra", str(s.corpus_extra)], check=True,
                       stdout=subprocess.DEVNULL)
    return path


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        dst.symlink_to(src)


UPDATE_SNIPPET = """
import json, sys, time
from pathlib import Path
from archiver.config import load
from archiver.index.build import update_index
cfg = load(Path(sys.argv[1]))
started = time.perf_counter()
report = update_index(cfg.replace(collection="bench"))
print(json.dumps({"seconds": time.perf_counter() - started, "files": report.files, "records": report.records}))
"""


def _corpus_root(s: Settings, name: str) -> tuple[Path, dict[str, Any], list[Path], float, Path, Path]:
    """The corpus (made once), and a fresh archive root whose collection `bench` links its files."""
    cdir = corpus(s)
    manifest = json.loads((cdir / "manifest.json").read_text())
    files = sorted(cdir.glob("bench-*.warc.gz"))
    root = RUNS / name
    shutil.rmtree(root, ignore_errors=True)
    bl.archiver_root(root)
    archive = root / "collections" / "bench" / "archive"
    archive.mkdir(parents=True)
    for f in files:
        _link(f, archive / f.name)
    return cdir, manifest, files, sum(f.stat().st_size for f in files) / MB, root, archive


def bench_index(s: Settings, report: Report) -> None:
    cdir, manifest, files, size_mb, root, archive = _corpus_root(s, "index-root")
    extra = cdir / "extra" / "bench-extra.warc.gz"
    out = RUNS / "index-cdxj-indexer.cdxj"
    file_args = [str(f) for f in files]
    runs: dict[str, list[Run]] = {}
    updates: list[Run] = []
    lines: dict[str, int] = {}
    log(f"index: {len(files)} files, {size_mb:.0f} MB, {manifest['records']} records")

    def archiver_with_search(rep: int) -> Run:
        # the same, and the full-text index built at once (plain `index` leaves it to the next search)
        shutil.rmtree(root / "collections" / "bench" / "indexes", ignore_errors=True)
        return run_timed([ARCHIVER, "--root", str(root), "index", "-c", "bench", "--search"],
                         f"index-archiver-search-rep{rep}", timeout=s.time_limit)

    def archiver_index(rep: int) -> Run:
        # from scratch each time, like cdxj-indexer writing a new file
        shutil.rmtree(root / "collections" / "bench" / "indexes", ignore_errors=True)
        run = run_timed([ARCHIVER, "--root", str(root), "index", "-c", "bench"], f"index-archiver-rep{rep}",
                        timeout=s.time_limit)
        cdxj = root / "collections" / "bench" / "indexes" / "index.cdxj"
        lines["archiver index"] = sum(1 for _ in cdxj.open("rb")) if cdxj.exists() else 0
        m = re.search(r"(\d+) articles", run.stdout)
        run.extra["articles"] = float(m.group(1)) if m else 0
        # incremental: add ~1% (one small WARC file) and bring the index up to date
        _link(extra, archive / extra.name)
        update = run_timed([PY, "-c", UPDATE_SNIPPET, str(root)], f"index-update-rep{rep}", timeout=s.time_limit)
        with contextlib.suppress(IndexError, ValueError):
            update.extra.update(json.loads(update.stdout.strip().splitlines()[-1]))
        updates.append(update)
        (archive / extra.name).unlink()
        return run

    def cdxj_indexer(rep: int) -> Run:
        run = run_timed([str(BIN / "cdxj-indexer"), "-s", "-o", str(out), *file_args], f"index-cdxj-indexer-rep{rep}",
                        timeout=s.time_limit)
        lines["cdxj-indexer -s"] = sum(1 for _ in out.open("rb")) if out.exists() else 0
        return run

    def floor(mode: str) -> Callable[[int], Run]:
        return lambda rep: run_timed([PY, str(BENCH / "read_floor.py"), mode, "--procs", "2", *file_args],
                                     f"index-{mode}-rep{rep}", timeout=s.time_limit)

    tools: list[tuple[str, Callable[[int], Run]]] = [
        ("archiver index", archiver_index), ("archiver index --search", archiver_with_search),
        ("cdxj-indexer -s", cdxj_indexer),
        ("fastwarc read loop, 2 processes", floor("fastwarc")), ("zlib inflate only, 2 processes", floor("zlib"))]
    for rep in range(s.reps):
        for name, func in tools:
            log(f"index rep {rep + 1}/{s.reps}: {name}")
            run = func(rep)
            runs.setdefault(name, []).append(run)
            log(f"  {run.wall:.1f} s, CPU {run.cpu_pct:.0f}%, RSS {run.rss_mb:.0f} MB, rc {run.rc}")
    walls = {name: median([r.wall for r in rs]) for name, rs in runs.items()}
    arch = walls["archiver index"]
    rows = []
    for name, rs in runs.items():
        rows.append([name, fmt(walls[name], 1), fmt(size_mb / walls[name], 0), ratio(arch, walls[name]),
                     fmt(median([r.cpu_pct for r in rs]), 0), fmt(median([r.rss_mb for r in rs]), 0),
                     str(lines.get(name, "")), "ok" if all(r.rc == 0 for r in rs) else "**errors**"])
    report.rss["index of the corpus (archiver index)"] = max(r.rss_mb for r in runs["archiver index"])
    inner = median([u.extra.get("seconds", float("nan")) for u in updates])
    upd_wall = median([u.wall for u in updates])
    fraction = inner / arch
    extra_records = manifest["extra"]["records"]
    rows.append([f"archiver update_index (+{extra_records} records, {extra.stat().st_size / MB:.1f} MB)",
                 fmt(inner, 2), "", "", fmt(median([u.cpu_pct for u in updates]), 0),
                 fmt(median([u.rss_mb for u in updates]), 0), "",
                 "ok" if all(u.rc == 0 for u in updates) else "**errors**"])
    articles = int(median([r.extra["articles"] for r in runs["archiver index"]]))
    text = [
        f"Corpus: {len(files)} gzip WARC files, {size_mb:.0f} MB, {manifest['records']} records "
        f"({manifest['html']} HTML responses 20-80 KB, {manifest['jpeg']} JPEG responses, their request records, "
        f"{manifest['metadata']} archiver seed metadata records), made by bench/make_corpus.py with warcio. "
        f"archiver index built {articles} metadata rows, from scratch each repetition (indexes/ removed first); "
        "it queues the article texts for the full-text index, which the next `archiver search` builds; "
        "`archiver index --search` builds it at once (FTS5 trigram, 4 shard threads). "
        "Page cache warm (every tool reads the same files in turn). The CDXJ line counts differ by design: "
        "cdxj-indexer also indexes metadata records.", "",
        *table(["tool", "wall s", "MB/s", "archiver ÷ tool", "CPU %", "peak memory MB", "CDXJ lines", "result"], rows),
        "",
        f"Incremental update: update_index() after adding one small file "
        f"(~{100 * extra_records / manifest['records']:.1f}% more records) took {inner:.2f} s inside Python "
        f"({upd_wall:.2f} s for the whole process with imports) = "
        f"{100 * fraction:.1f}% of the full rebuild.", "",
        "Per repetition (wall s): " + "; ".join(f"{n}: " + ", ".join(f"{r.wall:.1f}" for r in rs)
                                                for n, rs in runs.items()),
    ]
    report.sections.append(("Index throughput", text))
    cdxj_w, fast_w = walls["cdxj-indexer -s"], walls["fastwarc read loop, 2 processes"]
    report.target("index vs cdxj-indexer", "<= 0.5x its wall time", ratio(arch, cdxj_w), arch <= 0.5 * cdxj_w)
    search_w = walls["archiver index --search"]
    report.target("index with the full-text index vs cdxj-indexer", "<= 0.5x its wall time", ratio(search_w, cdxj_w),
                  search_w <= 0.5 * cdxj_w)
    report.target("index vs 2-process fastwarc read", "<= 2x its wall time", ratio(arch, fast_w), arch <= 2 * fast_w)
    report.target("incremental update (+~1%)", "~1% of a full rebuild (<= 2% counted as met)",
                  f"{100 * fraction:.1f}%", fraction <= 0.02)
    shutil.rmtree(root, ignore_errors=True)
    out.unlink(missing_ok=True)


# --- 3. memory ----------------------------------------------------------------------------

def bench_memory(s: Settings, report: Report) -> None:
    rows: list[list[str]] = []
    # capture of a long streamed URL list (small pages, no latency: the engine's memory, not the pages')
    root = RUNS / "memory-stream"
    shutil.rmtree(root, ignore_errors=True)
    bl.archiver_root(root, workers=max(s.workers), host_concurrency=max(s.workers), host_delay=0,
                     allow_private=True)
    log(f"memory: capture of a streamed list of {s.stream_seeds} URL seeds")
    with bl.Site(s.ports, 0.0) as site:
        url_list = root / "urls.txt"
        with url_list.open("w") as fh:
            for i in range(s.stream_seeds):
                fh.write(site.url(i, "tiny") + "\n")
        run = run_timed([ARCHIVER, "--root", str(root), "capture", "-", "-c", "bench", "--allow-private", "-q"],
                        "memory-stream", cwd=root, timeout=s.time_limit, stdin_path=url_list)
    done = captured_count(run)
    early = [kb for t, kb in run.tree_samples if t <= run.wall * 0.2]
    late = [kb for t, kb in run.tree_samples if t >= run.wall * 0.8]
    growth = (f"PSS of its processes {max(early) / 1024:.0f} MB in the first 20% of the run, "
              f"{max(late) / 1024:.0f} MB in the last 20%" if early and late else "")
    stopped = f" (stopped by the {s.time_limit:.0f} s time limit)" if run.timed_out else ""
    rows.append([f"archiver capture - (stdin, {s.stream_seeds} URL seeds, {max(s.workers)} workers)",
                 fmt(run.rss_mb, 0), fmt(run.wall, 1),
                 f"{done} captured{stopped}, {done / run.wall:.0f} seeds/s; {growth}"])
    report.rss["capture of a streamed seed list"] = run.rss_mb
    shutil.rmtree(root, ignore_errors=True)

    if "index of the corpus (archiver index)" not in report.rss:
        cdir = corpus(s)
        root = RUNS / "memory-index"
        shutil.rmtree(root, ignore_errors=True)
        bl.archiver_root(root)
        archive = root / "collections" / "bench" / "archive"
        archive.mkdir(parents=True)
        for f in sorted(cdir.glob("bench-*.warc.gz")):
            _link(f, archive / f.name)
        log("memory: archiver index of the corpus")
        run = run_timed([ARCHIVER, "--root", str(root), "index", "-c", "bench"], "memory-index", timeout=s.time_limit)
        report.rss["index of the corpus (archiver index)"] = run.rss_mb
        shutil.rmtree(root, ignore_errors=True)
    index_rss = report.rss["index of the corpus (archiver index)"]
    rows.append(["archiver index (the index benchmark's corpus)", fmt(index_rss, 0), "", "max over the index runs"])

    root = RUNS / "memory-export"
    shutil.rmtree(root, ignore_errors=True)
    bl.archiver_root(root)
    log(f"memory: archiver export of {s.export_rows} rows")
    subprocess.run([PY, str(BENCH / "make_rows.py"), str(root), "bench", str(s.export_rows)], check=True,
                   stdout=subprocess.DEVNULL)
    for fmt_name in ("csv", "jsonl"):
        out = root / f"export.{fmt_name}"
        run = run_timed([ARCHIVER, "--root", str(root), "export", "-c", "bench", "--format", fmt_name, "-o", str(out)],
                        f"memory-export-{fmt_name}", timeout=s.time_limit)
        written = sum(1 for _ in out.open("rb")) if out.exists() else 0
        rows.append([f"archiver export --format {fmt_name} ({s.export_rows} rows)", fmt(run.rss_mb, 0),
                     fmt(run.wall, 1), f"{written} lines written, rc {run.rc}"])
        report.rss[f"export of {s.export_rows} rows ({fmt_name})"] = run.rss_mb
    shutil.rmtree(root, ignore_errors=True)

    if "replay (pywb behind archiver replay)" not in report.rss:
        paths, root = replay_collection(s, min(s.replay_pages, 200))
        result = _replay_session(s, "archiver", root, paths, 0, min(200, s.ka_requests), 0)
        report.rss["replay (pywb behind archiver replay)"] = result["rss_mb"]
    rows.append(["archiver replay (its pywb, after the replay requests)",
                 fmt(report.rss["replay (pywb behind archiver replay)"], 0), "",
                 "GNU time of archiver replay, which waits for its pywb child"])
    worst = max(report.rss.items(), key=lambda kv: kv[1])
    text = [
        "Peak memory of each command: the larger of GNU time -v's `Maximum resident set size` (the largest "
        "single process) and the peak, sampled every 0.25 s, of the PSS summed over all the command's processes "
        "(capture runs worker processes: one per core by default; PSS counts the pages they share once).", "",
        *table(["command", "peak memory MB", "wall s", "notes"], rows), "",
        "All peak memory figures of this run: " + "; ".join(f"{k}: {v:.0f} MB" for k, v in report.rss.items()),
    ]
    report.sections.append(("Memory", text))
    report.target("peak memory everywhere (RSS, or PSS of all processes)", "< 300 MB",
                  f"worst {worst[1]:.0f} MB ({worst[0]})", worst[1] < 300)


# --- 4. replay ----------------------------------------------------------------------------

def replay_collection(s: Settings, pages: int) -> tuple[list[str], Path]:
    """Capture `pages` articles of the loopback site into a fresh root; their mp_ replay paths."""
    root = RUNS / "replay-root"
    shutil.rmtree(root, ignore_errors=True)
    bl.archiver_root(root, workers=max(s.workers), host_concurrency=max(s.workers), host_delay=0,
                     allow_private=True)
    log(f"replay: capturing {pages} articles for the replay collection")
    with bl.Site(s.ports, 0.0) as site:
        url_list = root / "urls.txt"
        url_list.write_text("".join(site.url(i) + "\n" for i in range(pages)))
        run = run_timed([ARCHIVER, "--root", str(root), "capture", str(url_list), "-c", "bench", "--allow-private",
                         "-q"], "replay-capture", cwd=root, timeout=s.time_limit)
    if run.rc != 0:
        raise RuntimeError(f"capture for replay failed (see {bl.LOGS / 'replay-capture.err'})")
    export = run_timed([ARCHIVER, "--root", str(root), "export", "-c", "bench", "--format", "jsonl"], "replay-export")
    paths = []
    for row in export.stdout.splitlines():
        replay_path = json.loads(row).get("replay_path", "")
        m = re.match(r"^/([^/]+)/(\d{14})/(.+)$", replay_path)
        if m:
            paths.append(f"/{m.group(1)}/{m.group(2)}mp_/{m.group(3)}")
    if not paths:
        raise RuntimeError("no replay paths in the export")
    return paths, root


def _wait_http(port: int, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"replay server exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/")
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"replay server on port {port} did not answer in {timeout:.0f} s")


def _loop(port: int, paths: list[str], count: int, limit: float, keep_alive: bool, offset: int) -> dict[str, float]:
    """GET `count` mp_ pages (bounded by `limit` seconds); per-request latency to the last body byte."""
    latencies: list[float] = []
    errors = reconnects = 0
    conn: http.client.HTTPConnection | None = None
    headers = {} if keep_alive else {"Connection": "close"}
    started = time.perf_counter()
    for i in range(count):
        if time.perf_counter() - started > limit:
            break
        path = paths[(offset + i) % len(paths)]
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            reconnects += 1
        t0 = time.perf_counter()
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            latencies.append(time.perf_counter() - t0)
            if response.status != 200:
                errors += 1
            if response.will_close or not keep_alive:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException):
            errors += 1
            if conn is not None:
                conn.close()
            conn = None
    if conn is not None:
        conn.close()
    elapsed = time.perf_counter() - started
    return {"n": len(latencies), "p50": bl.percentile(latencies, 50), "p99": bl.percentile(latencies, 99),
            "rps": len(latencies) / elapsed if elapsed else 0.0, "errors": errors,
            "connections": reconnects}


def _replay_session(s: Settings, kind: str, root: Path, paths: list[str], rep: int, ka: int,
                    close: int) -> dict[str, float]:
    port = free_port()
    time_file = bl.LOGS / f"replay-{kind}-rep{rep}.time"
    if kind == "archiver":
        cmd = [ARCHIVER, "--root", str(root), "replay", "-c", "bench", "--host", "127.0.0.1", "--port", str(port)]
    else:
        cmd = [str(BIN / "wayback"), "-p", str(port), "-b", "127.0.0.1"]
    bl.LOGS.mkdir(parents=True, exist_ok=True)
    with (bl.LOGS / f"replay-{kind}-rep{rep}.log").open("wb") as logf:
        proc = subprocess.Popen([bl.TIME, "-v", "-o", str(time_file), *cmd], cwd=root, stdout=logf, stderr=logf,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        result: dict[str, float] = {}
        try:
            _wait_http(port, proc)
            _loop(port, paths, 20, 60, True, 500)  # warm-up: templates, index, first requests
            for name, count, keep in (("ka", ka, True), ("close", close, False)):
                if count:
                    for key, value in _loop(port, paths, count, s.time_limit / 4, keep, 0).items():
                        result[f"{name}_{key}"] = value
            result["hwm_mb"] = max((bl.proc_status_kb(p, "VmHWM") for p in bl.tree(proc.pid)[1:]), default=0) / 1024
        finally:
            target = next(iter(bl.children(proc.pid)), None)
            if target is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(target, signal.SIGTERM)  # archiver stops its pywb, then exits
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    rss_kb = 0
    with contextlib.suppress(OSError):
        rss_kb = bl._parse_time(time_file.read_text())[2]
    result["rss_mb"] = max(rss_kb / 1024, result.get("hwm_mb", 0))
    return result


def bench_replay(s: Settings, report: Report) -> None:
    paths, root = replay_collection(s, s.replay_pages)
    results: dict[str, list[dict[str, float]]] = {}
    names = {"archiver": "archiver replay", "wayback": "pywb wayback (bare)"}
    for rep in range(s.reps):
        for kind in ("archiver", "wayback"):
            log(f"replay rep {rep + 1}/{s.reps}: {names[kind]}")
            r = _replay_session(s, kind, root, paths, rep, s.ka_requests, s.close_requests)
            results.setdefault(kind, []).append(r)
            log(f"  keep-alive p50 {r.get('ka_p50', 0) * 1000:.1f} ms p99 {r.get('ka_p99', 0) * 1000:.1f} ms "
                f"{r.get('ka_rps', 0):.0f} req/s; close p50 {r.get('close_p50', 0) * 1000:.1f} ms; "
                f"RSS {r['rss_mb']:.0f} MB")

    def med(kind: str, key: str) -> float:
        return median([r.get(key, float("nan")) for r in results[kind]])

    rows = []
    for kind in ("archiver", "wayback"):
        rows.append([names[kind], ms(med(kind, "ka_p50")), ms(med(kind, "ka_p99")), fmt(med(kind, "ka_rps"), 0),
                     fmt(med(kind, "ka_connections"), 0), ms(med(kind, "close_p50")), ms(med(kind, "close_p99")),
                     fmt(med(kind, "close_rps"), 0), fmt(max(r["rss_mb"] for r in results[kind]), 0),
                     str(int(sum(r.get("ka_errors", 0) + r.get("close_errors", 0) for r in results[kind])))])
    rows.append(["archiver ÷ wayback", ratio(med("archiver", "ka_p50"), med("wayback", "ka_p50")),
                 ratio(med("archiver", "ka_p99"), med("wayback", "ka_p99")),
                 ratio(med("archiver", "ka_rps"), med("wayback", "ka_rps")), "",
                 ratio(med("archiver", "close_p50"), med("wayback", "close_p50")),
                 ratio(med("archiver", "close_p99"), med("wayback", "close_p99")),
                 ratio(med("archiver", "close_rps"), med("wayback", "close_rps")), "", ""])
    report.rss["replay (pywb behind archiver replay)"] = max(r["rss_mb"] for r in results["archiver"])
    report.rss["replay (bare pywb wayback)"] = max(r["rss_mb"] for r in results["wayback"])
    text = [
        f"{len(paths)} archived article pages (captured from the loopback site), requested as unframed `mp_` pages "
        f"(pywb rewrites each). Keep-alive: {s.ka_requests} requests on one persistent http.client connection "
        f"(new one only if the server closes it); close: {s.close_requests} requests with `Connection: close`, "
        "a new connection each. 20 warm-up requests first, not counted. Latency = request sent to last body byte.",
        "",
        *table(["server", "keep-alive p50 ms", "p99 ms", "req/s", "connections used", "close p50 ms", "p99 ms",
                "req/s", "peak RSS MB", "errors"], rows),
    ]
    report.sections.append(("Replay latency", text))
    p50, p99, rps = med("archiver", "ka_p50"), med("archiver", "ka_p99"), med("archiver", "ka_rps")
    report.target("replay keep-alive p50", "<= 10 ms", f"{p50 * 1000:.1f} ms", p50 <= 0.010)
    report.target("replay keep-alive p99", "<= 25 ms", f"{p99 * 1000:.1f} ms", p99 <= 0.025)
    report.target("replay keep-alive throughput", ">= 150 req/s", f"{rps:.0f} req/s", rps >= 150)
    shutil.rmtree(root, ignore_errors=True)


# --- 5. CDXJ lookups ----------------------------------------------------------------------

def bench_fetch(s: Settings, report: Report) -> None:
    """CPU a request costs with archiver's fetcher and with other HTTP clients (bench/fetch_cost.py)."""
    jpeg_pool()
    work = DATA / "fetch"
    work.mkdir(parents=True, exist_ok=True)
    clients = ("archiver", "pycurl", "requests")
    runs: dict[str, list[dict[str, float]]] = {}
    log(f"fetch: {s.articles} articles and their images, {FETCH_THREADS} threads, clients alternating")
    with bl.Site(s.ports, s.latency, prebuild=s.articles) as site:
        urls = [u for i in range(s.articles) for u in (site.url(i), site.url(i, "img"))]
        url_file = work / "urls.txt"
        url_file.write_text("\n".join(urls) + "\n")
        for rep in range(s.reps):
            for client in clients:
                run = run_timed([PY, str(BENCH / "fetch_cost.py"), client, str(url_file), "--threads",
                                 str(FETCH_THREADS)], f"fetch-{client}-rep{rep}", timeout=s.time_limit)
                if run.rc != 0:
                    raise RuntimeError(f"fetch_cost.py {client} failed (see {bl.LOGS})")
                out = json.loads(run.stdout.strip().splitlines()[-1])
                runs.setdefault(client, []).append(out)
                log(f"fetch rep {rep + 1}/{s.reps}: {client}: {out['cpu_ms_per_request']:.2f} ms CPU a request, "
                    f"wall {out['wall']:.1f} s")
    cost = {c: median([r["cpu_ms_per_request"] for r in rs]) for c, rs in runs.items()}
    rows = [[c, str(int(runs[c][0]["requests"])), fmt(median([r["wall"] for r in runs[c]]), 2),
             fmt(cost[c], 2), ratio(cost[c], cost["archiver"])] for c in clients]
    text = [
        f"{len(urls)} GETs (articles and their JPEG lead images) over {FETCH_THREADS} threads from the loopback "
        f"site ({s.ports} ports, {s.latency * 1000:.0f} ms a response), each body read whole and SHA-1 hashed; "
        "CPU is the client process's user + system time. `archiver` is archiver.fetch.client.Fetcher (libcurl "
        "through pycurl, with its address guard, deadlines and digests), `pycurl` one bare libcurl easy "
        "handle a thread, "
        "`requests` one Session a thread. The wall time is the site's latency bound; the CPU is what capture "
        "pays for fetching.", "",
        *table(["client", "requests", "wall s", "CPU ms a request", "÷ archiver"], rows),
        "",
        "Per repetition (CPU ms a request): " + "; ".join(
            f"{c}: {', '.join(fmt(r['cpu_ms_per_request'], 2) for r in runs[c])}" for c in clients),
    ]
    report.sections.append(("Fetch cost by HTTP client", text))


def bench_cdxj(s: Settings, report: Report) -> None:
    folder = DATA / "cdxj"
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for lines in (s.cdxj_small, s.cdxj_large):
        path = folder / f"synthetic-{lines}.cdxj"
        if not path.exists():
            log(f"cdxj: writing a sorted {lines}-line CDXJ file (once)")
            subprocess.run([PY, str(BENCH / "cdxj_lookup.py"), "make", str(path), "--lines", str(lines)],
                           check=True)
        files[lines] = path
    results: dict[int, list[dict[str, float]]] = {}
    for path in files.values():  # into the page cache: the lookups must not measure the disk
        with path.open("rb") as fh:
            while fh.read(1 << 22):
                pass
    for rep in range(s.reps):
        log(f"cdxj rep {rep + 1}/{s.reps}: {' and '.join(map(str, files))} lines, lookups interleaved")
        run = run_timed([PY, str(BENCH / "cdxj_lookup.py"), "time", *(f"{p}:{n}" for n, p in files.items()),
                         "--lookups", str(s.cdxj_lookups)], f"cdxj-rep{rep}", timeout=s.time_limit)
        out = json.loads(run.stdout.strip().splitlines()[-1])
        for lines, path in files.items():
            results.setdefault(lines, []).append(out[str(path)])
    rows = []
    med = {n: median([r["median_us"] for r in rs]) for n, rs in results.items()}
    for lines, rs in results.items():
        rows.append([f"{lines:,}", f"{files[lines].stat().st_size / MB:.0f}", fmt(med[lines], 0),
                     fmt(median([r["p99_us"] for r in rs]), 0), ratio(med[lines], med[s.cdxj_small]),
                     f"{int(min(r['found'] for r in rs))}/{s.cdxj_lookups}"])
    text = [
        f"{s.cdxj_lookups} closest-capture lookups of random URLs present in each file, through pywb's own reader "
        "(CDXQuery, FileIndexSource.load_index: binary search of the sorted file, cdxops.process_cdx), in a "
        "subprocess per repetition that warms up and then alternates the two files lookup by lookup; both files "
        "are read once before, so the page cache is warm.", "",
        *table(["CDXJ lines", "file MB", "median µs/lookup", "p99 µs", "vs 10k", "found"], rows),
    ]
    report.sections.append(("CDXJ lookup scaling", text))
    r = med[s.cdxj_large] / med[s.cdxj_small]
    report.target(f"CDXJ lookup, {s.cdxj_large:,} vs {s.cdxj_small:,} lines", "within 2x", f"{r:.2f}x", r <= 2)


# --- 6. cluster (issue 6) -----------------------------------------------------------------

# `dask worker --nthreads`: one task at a time per worker process. A capture task is a whole batch
# that fetches with its own `workers` threads, as a batch in a local process does; an index task is
# one file, as in a local worker process. So N workers run what N local processes run.
DASK_THREADS = 1
# `archiver index` as shipped, but with os.cpu_count() = 1: index/build.py's `_index_parts` then indexes
# the files one after another in the archiver process (the local equivalent of one worker)
ONE_PROCESS_INDEX = ("import os, sys; os.cpu_count = lambda: 1; sys.argv[0] = 'archiver'; "
                     "from archiver.cli import main; main()")


@dataclass(frozen=True)
class Mode:
    name: str
    processes: int = 1  # archiver's `processes:` (local capture)
    dask_workers: int = 0  # 0: local; else `--cluster` with this many `dask worker` processes
    one_process: bool = False  # index: the ONE_PROCESS_INDEX command


@dataclass
class ClusterRuns:
    runs: dict[str, list[Run]] = field(default_factory=dict)
    checks: dict[str, list[tuple[bool, bool]]] = field(default_factory=dict)
    startups: dict[int, list[dict[str, float]]] = field(default_factory=dict)  # dask workers -> start-ups

    def add(self, mode: Mode, run: Run) -> None:
        self.runs.setdefault(mode.name, []).append(run)


def _with_cluster(mode: Mode, cr: ClusterRuns | None, measure: Callable[[list[str]], Run]) -> Run:
    """`measure(extra_args)` locally, or on a fresh cluster of `mode.dask_workers` workers started before
    (not timed: its start-up is recorded in `cr.startups`) and stopped after; the cluster's CPU is
    taken over the run only."""
    if not mode.dask_workers:
        run = measure([])
        run.extra["cluster_cpu_pct"] = 0.0
        return run
    with bl.DaskCluster(RUNS / "dask", mode.dask_workers, DASK_THREADS) as cluster:
        snapshot = str(SNAPSHOT / "archiver")
        if cluster.archiver_files != {snapshot}:  # the workers must run the archiver the client runs
            raise RuntimeError(f"Dask workers import archiver from {cluster.archiver_files}, not {snapshot}")
        before = cluster.cpu()
        run = measure(["--cluster", str(cluster.scheduler_file)])
        run.extra["cluster_cpu_pct"] = 100 * (cluster.cpu() - before) / run.wall
    if cr is not None:
        cr.startups.setdefault(mode.dask_workers, []).append({**cluster.startup, "stop": cluster.stopped_in})
    return run


def bench_cluster(s: Settings, report: Report) -> None:
    try:
        lines = _cluster_capture(s)
        lines += ["", *_cluster_index(s)]
    finally:
        shutil.rmtree(RUNS / "dask", ignore_errors=True)
    report.sections.append(("Cluster (issue 6)", lines))


def _cluster_capture(s: Settings) -> list[str]:
    jpeg_pool()
    work = DATA / "cluster-capture"
    w, n = min(s.workers), s.cluster_articles
    modes = [Mode("local, threads (processes: 1)"), Mode("local, processes: 2", processes=2),
             Mode("cluster, 1 worker", dask_workers=1), Mode("cluster, 2 workers", dask_workers=2)]
    cr = ClusterRuns()
    log(f"cluster capture: {n} articles, workers {w}, modes: {', '.join(m.name for m in modes)}")
    with bl.Site(s.ports, s.latency, prebuild=n) as site:
        seeds, warm, _ = _seed_folders(work, site, n)

        def one(mode: Mode, rep: int) -> Run:
            root = RUNS / "cluster-capture-root"
            shutil.rmtree(root, ignore_errors=True)
            bl.archiver_root(root, workers=w, host_concurrency=w, host_delay=0, allow_private=True,
                             processes=mode.processes)
            name = f"cluster-capture-{_slug(mode.name)}-{f'rep{rep}' if rep >= 0 else 'warmup'}"
            run = _with_cluster(mode, cr if rep >= 0 else None, lambda extra: _site_share(site, lambda: run_timed(
                [ARCHIVER, "--root", str(root), "capture", str(seeds if rep >= 0 else warm), "-c", "bench",
                 "--allow-private", "-q", *extra], name, cwd=root, timeout=s.time_limit)))
            run.extra.update(articles=captured_count(run), expected=n if rep >= 0 else WARM)
            if rep >= 0:  # after the cluster has stopped: the checks are not timed
                cr.checks.setdefault(mode.name, []).append(check_warcs(warc_files(root), name))
            if not s.keep:
                shutil.rmtree(root, ignore_errors=True)
            return run

        log(f"cluster capture warm-up (not counted): every mode once over {WARM} articles")
        for mode in modes:
            one(mode, -1)
        for rep in range(s.reps):
            for mode in modes:
                log(f"cluster capture rep {rep + 1}/{s.reps}: {mode.name}")
                run = one(mode, rep)
                cr.add(mode, run)
                log(f"  {run.wall:.1f} s, {run.extra['articles'] / run.wall:.1f} articles/s, CPU {run.cpu_pct:.0f}% "
                    f"+ cluster {run.extra['cluster_cpu_pct']:.0f}%, rc {run.rc}")
    if not s.keep:
        shutil.rmtree(work, ignore_errors=True)
    rate = {name: median([r.extra["articles"] / r.wall for r in rs]) for name, rs in cr.runs.items()}
    base = modes[0].name
    rows = []
    for name, rs in cr.runs.items():
        ok = all(r.rc == 0 and r.extra["articles"] == r.extra["expected"] for r in rs)
        w_ok, f_ok = (all(c[i] for c in cr.checks.get(name, [])) for i in (0, 1))
        rows.append([name, str(n), fmt(median([r.wall for r in rs]), 1), fmt(rate[name], 1),
                     ratio(rate[name], rate[base]), *_cpu_cells(rs),
                     fmt(median([r.extra["site_cpu_pct"] for r in rs]), 0), fmt(median([r.rss_mb for r in rs]), 0),
                     f"{'ok' if ok else '**errors**'}; warcio {'pass' if w_ok else 'FAIL'}, "
                     f"fastwarc {'pass' if f_ok else 'FAIL'}"])
    r1, r2 = rate["cluster, 1 worker"], rate["cluster, 2 workers"]
    p1, p2 = rate[base], rate["local, processes: 2"]
    return [
        "### Capture on a Dask cluster", "",
        f"{n} articles (article + lead image) from bench/site.py ({s.ports} ports on 127.0.0.1, "
        f"{s.latency * 1000:.0f} ms a response); archiver `workers: {w}`, `host_concurrency: {w}`, `host_delay: 0`, "
        f"default `batch_size` (100). Cluster: `dask scheduler` and N x `dask worker --nthreads {DASK_THREADS}` on "
        "127.0.0.1, started afresh before each cluster run and stopped after it (start-up not timed, listed below); "
        f"`archiver capture --cluster SCHEDULER_FILE`. With `--nthreads {DASK_THREADS}` a worker runs one batch at a "
        f"time, each batch fetching with up to {w} threads, as a local process does (processes: 1 runs one batch of "
        f"{w} threads, processes: 2 one in each process): 1 worker is matched with processes: 1, 2 workers with "
        "processes: 2. Modes alternate within each repetition; each ran once over "
        f"{WARM} articles first (not counted). archiver CPU % is GNU time's (user+sys)/wall of the archiver command "
        "with its worker processes; cluster CPU % that of the scheduler, nannies and workers over the same run.", "",
        *table(["mode", "articles", "wall s", "articles/s", "vs processes: 1", "archiver CPU %", "cluster CPU %",
                "total CPU %", "site CPU %", "archiver peak RSS MB", "result, WARC checks"], rows), "",
        f"- cluster speed-up, 2 workers vs 1: **{ratio(r2, r1)}** (local processes: 2 vs 1: {ratio(p2, p1)})",
        f"- cluster overhead, 1 worker vs local processes: 1 (same threads): **{_overhead(p1 / r1)}** "
        f"(2 workers vs processes: 2: {_overhead(p2 / r2)})",
        "", "Per repetition (wall s): " + _per_rep(cr.runs), "",
        *_startup_lines(cr.startups, "capture"),
    ]


def _cluster_index(s: Settings) -> list[str]:
    _, manifest, files, size_mb, root, _ = _corpus_root(s, "cluster-index-root")
    indexes = root / "collections" / "bench" / "indexes"
    local_procs = min(os.cpu_count() or 1, len(files))  # what index/build.py's `_index_parts` uses locally
    modes = [Mode(f"local ({local_procs} processes)"), Mode("local, 1 process", one_process=True),
             Mode("cluster, 1 worker", dask_workers=1), Mode("cluster, 2 workers", dask_workers=2)]
    cr = ClusterRuns()
    digests: dict[str, set[str]] = {}
    log(f"cluster index: {len(files)} files, {size_mb:.0f} MB; modes: {', '.join(m.name for m in modes)}")
    for rep in range(s.reps):
        for mode in modes:
            log(f"cluster index rep {rep + 1}/{s.reps}: {mode.name}")
            shutil.rmtree(indexes, ignore_errors=True)  # from scratch, as the index benchmark
            run = _index_once(s, root, mode, rep, cr)
            m = re.search(r"(\d+) articles", run.stdout)
            run.extra["articles"] = float(m.group(1)) if m else 0
            cdxj = indexes / "index.cdxj"
            data = cdxj.read_bytes() if cdxj.exists() else b""
            run.extra["cdxj_lines"] = data.count(b"\n")
            digests.setdefault(mode.name, set()).add(hashlib.sha256(data).hexdigest())
            cr.add(mode, run)
            log(f"  {run.wall:.1f} s, CPU {run.cpu_pct:.0f}% + cluster {run.extra['cluster_cpu_pct']:.0f}%, "
                f"{run.extra['articles']:.0f} articles, rc {run.rc}")
    shutil.rmtree(root, ignore_errors=True)
    walls = {name: median([r.wall for r in rs]) for name, rs in cr.runs.items()}
    base = modes[0].name
    reference = digests[base]
    rows = []
    for name, rs in cr.runs.items():
        ok = all(r.rc == 0 and r.extra["articles"] == manifest["metadata"] for r in rs)
        same = "yes" if digests[name] == reference and len(reference) == 1 else "**no**"
        rows.append([name, fmt(walls[name], 1), fmt(size_mb / walls[name], 1), ratio(walls[name], walls[base]),
                     *_cpu_cells(rs), fmt(median([r.rss_mb for r in rs]), 0),
                     str(int(min(r.extra["articles"] for r in rs))), str(int(rs[0].extra["cdxj_lines"])), same,
                     "ok" if ok else "**errors**"])
    w1, w2 = walls["cluster, 1 worker"], walls["cluster, 2 workers"]
    one, local = walls["local, 1 process"], walls[base]
    return [
        "### Index on a Dask cluster", "",
        f"The index benchmark's corpus: {len(files)} gzip WARC files, {size_mb:.0f} MB, {manifest['records']} records, "
        f"{manifest['metadata']} articles (bench/make_corpus.py); indexes/ removed before every run. Local: "
        f"`archiver index` as shipped, which indexes the files in {local_procs} worker processes here (one per core); "
        "\"local, 1 process\": the same command with os.cpu_count() made to return 1, which indexes the files one "
        "after another in the archiver process. Cluster: `archiver index --cluster SCHEDULER_FILE`, one task per "
        f"file, on a fresh cluster of N x `dask worker --nthreads {DASK_THREADS}` (one file at a time per worker); "
        "the client merges the parts and fills the metadata and full-text indexes itself in every mode. "
        "\"same CDXJ\": index.cdxj byte-identical to the local one in every repetition.", "",
        *table(["mode", "wall s", "MB/s", "wall vs local", "archiver CPU %", "cluster CPU %", "total CPU %",
                "archiver peak RSS MB", "articles", "CDXJ lines", "same CDXJ", "result"], rows), "",
        f"- cluster speed-up, 2 workers vs 1: **{ratio(w1, w2)}** (local {local_procs} processes vs 1: "
        f"{ratio(one, local)})",
        f"- cluster overhead, 1 worker vs local 1 process: **{_overhead(w1 / one)}**; 2 workers vs local "
        f"{local_procs} processes: **{_overhead(w2 / local)}**",
        "", "Per repetition (wall s): " + _per_rep(cr.runs), "",
        *_startup_lines(cr.startups, "index"),
    ]


def _index_once(s: Settings, root: Path, mode: Mode, rep: int, cr: ClusterRuns) -> Run:
    head = [PY, "-c", ONE_PROCESS_INDEX] if mode.one_process else [ARCHIVER]

    def measure(extra: list[str]) -> Run:
        return run_timed([*head, "--root", str(root), "index", "-c", "bench", *extra],
                         f"cluster-index-{_slug(mode.name)}-rep{rep}", timeout=s.time_limit)

    return _with_cluster(mode, cr, measure)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _cpu_cells(rs: list[Run]) -> list[str]:
    """archiver CPU %, cluster CPU %, total CPU % (medians)."""
    return [fmt(median([r.cpu_pct for r in rs]), 0), fmt(median([r.extra["cluster_cpu_pct"] for r in rs]), 0),
            fmt(median([r.cpu_pct + r.extra["cluster_cpu_pct"] for r in rs]), 0)]


def _overhead(factor: float) -> str:
    """`factor`: cluster wall time / local wall time for the same work."""
    return f"{100 * (factor - 1):+.0f}% wall time"


def _per_rep(runs: dict[str, list[Run]]) -> str:
    return "; ".join(f"{n}: " + ", ".join(f"{r.wall:.1f}" for r in rs) for n, rs in runs.items())


def _startup_lines(startups: dict[int, list[dict[str, float]]], what: str) -> list[str]:
    rows = [[f"{w} worker{'s' if w > 1 else ''}", str(len(ss)),
             *(fmt(median([x[k] for x in ss]), 2) for k in ("scheduler", "workers", "imports", "total", "stop"))]
            for w, ss in sorted(startups.items())]
    return [f"Cluster start-up before each {what} run (not in the times above; medians, seconds): scheduler file "
            "written; then every worker joined; then archiver's task modules imported on every worker "
            "(`client.run`); and stopping it after the run.", "",
            *table(["cluster", "starts", "scheduler s", "workers s", "imports s", "total s", "stop s"], rows)]


# --- profile ------------------------------------------------------------------------------

def bench_profile(s: Settings, report: Report) -> None:
    """py-spy (--gil: only samples that hold the GIL, i.e. what serialises archiver) of capture and index."""
    py_spy = shutil.which("py-spy", path=str(BIN)) or shutil.which("py-spy")
    if not py_spy:
        raise RuntimeError("py-spy is not installed (pip install -r bench/requirements.txt)")
    text: list[str] = []
    jpeg_pool()
    with bl.Site(s.ports, s.latency) as site:
        seeds = DATA / "profile-seeds"
        shutil.rmtree(seeds, ignore_errors=True)
        seeds.mkdir(parents=True)
        for i in range(s.articles):
            (seeds / f"{i:06d}.md").write_text(seed_document(site.url(i), article_title(i), 1_696_553_101_000,
                                                             site.url(i, "img")), encoding="utf-8")
        root = RUNS / "profile-capture"
        shutil.rmtree(root, ignore_errors=True)
        w = max(s.workers)
        bl.archiver_root(root, workers=w, host_concurrency=w, host_delay=0, allow_private=True)
        log(f"profile: archiver capture of {s.articles} articles under py-spy --gil")
        raw = DATA / "profile-capture.txt"
        subprocess.run([py_spy, "record", "--gil", "--subprocesses", "-r", "250", "-f", "raw", "-o", str(raw), "--",
                        ARCHIVER,
                        "--root", str(root), "capture", str(seeds), "-c", "bench", "--allow-private", "-q"],
                       check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=s.time_limit)
        text += [f"### archiver capture ({s.articles} articles, {w} workers), GIL-holding samples", "",
                 *_profile_table(raw), ""]
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(seeds, ignore_errors=True)
    cdir = corpus(s)
    root = RUNS / "profile-index"
    shutil.rmtree(root, ignore_errors=True)
    bl.archiver_root(root)
    archive = root / "collections" / "bench" / "archive"
    archive.mkdir(parents=True)
    for f in sorted(cdir.glob("bench-*.warc.gz")):
        _link(f, archive / f.name)
    raw = DATA / "profile-index.txt"
    log("profile: archiver index under py-spy")
    subprocess.run([py_spy, "record", "--subprocesses", "-r", "250", "-f", "raw", "-o", str(raw), "--",
                    ARCHIVER, "--root",
                    str(root), "index", "-c", "bench"], check=False, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=s.time_limit)
    text += ["### archiver index (the corpus)", "", *_profile_table(raw)]
    shutil.rmtree(root, ignore_errors=True)
    report.sections.append(("Profile (py-spy)", text))


def _profile_table(raw: Path, top: int = 25) -> list[str]:
    """Inclusive and self share of samples per function, from py-spy's raw (collapsed) output."""
    if not raw.exists():
        return ["(no profile: py-spy failed; see bench/.data/logs)"]
    inclusive: dict[str, int] = {}
    self_: dict[str, int] = {}
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [re.sub(r":\d+\)$", ")", re.sub(r"\(/\S*?(site-packages|lib/python3\.\d+)/", "(", f))
                  for f in stack.split(";")[1:]]  # the first frame names the process
        for f in set(frames):
            inclusive[f] = inclusive.get(f, 0) + n
        if frames:
            self_[frames[-1]] = self_.get(frames[-1], 0) + n
    if not total:
        return ["(empty profile)"]
    skip = ("threading.py", "concurrent/futures", "click/", "<module>", "(archiver)", "cli.py", "runpy")
    inc = [(f, n) for f, n in sorted(inclusive.items(), key=lambda kv: -kv[1]) if not any(k in f for k in skip)]
    rows = [[f"`{f}`", f"{100 * n / total:.1f}%", f"{100 * self_.get(f, 0) / total:.1f}%"] for f, n in inc[:top]]
    hot = sorted(self_.items(), key=lambda kv: -kv[1])[:15]
    return [f"{total} samples. Inclusive share (the function and what it calls; wrappers such as threading, "
            "click and the module level left out):", "",
            *table(["function", "inclusive", "self"], rows), "", "Where the samples land (self share):", "",
            *table(["function", "self"], [[f"`{f}`", f"{100 * n / total:.1f}%"] for f, n in hot])]


# --- main ---------------------------------------------------------------------------------

def snapshot_archiver(code: str) -> str:
    """Copy archiver/ aside and make every archiver command of this run use the copy.

    `code` is "worktree" (archiver/ as it is on disk now) or a git revision (its committed
    archiver/, via git archive). Others may edit archiver/ while a long run goes on; without a
    snapshot, repetitions would measure different code. PYTHONPATH comes before the editable
    install's finder, so the `archiver` console script, `python -c "import archiver..."` snippets
    and py-spy all load the snapshot. Returns what was measured, for the report.

    The snapshot is this run's own (bench/.data/snapshots/<pid>/, removed at exit): benchmark runs
    started by others on the same machine at the same time would otherwise replace it mid-run.
    """
    import atexit
    import io
    import tarfile

    global SNAPSHOT
    folder = DATA / "snapshots"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():  # left by runs that were killed
        if old.name.isdigit() and not Path(f"/proc/{old.name}").exists():
            shutil.rmtree(old, ignore_errors=True)
    target = SNAPSHOT = folder / str(os.getpid())
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    atexit.register(shutil.rmtree, target, True)
    if code == "worktree":
        shutil.copytree(bl.REPO / "archiver", target / "archiver", ignore=shutil.ignore_patterns("__pycache__"))
        label = "working tree"
    else:
        rev = subprocess.run(["git", "-C", str(bl.REPO), "rev-parse", "--short", code], capture_output=True,
                             text=True, check=True).stdout.strip()
        tar = subprocess.run(["git", "-C", str(bl.REPO), "archive", "--format=tar", rev, "archiver"],
                             capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
            archive.extractall(target, filter="data")
        label = f"commit {rev}"
    digest = hashlib.sha256()
    for path in sorted((target / "archiver").rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(target)).encode() + b"\0" + path.read_bytes())
    # bytecode, as an installed archiver has: with PYTHONDONTWRITEBYTECODE set (as on this machine)
    # every process started (worker processes, Dask workers) would compile the sources again
    subprocess.run([PY, "-m", "compileall", "-q", str(target / "archiver")], check=True, stdout=subprocess.DEVNULL)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(target), os.environ.get("PYTHONPATH", "")]))
    return f"{label}, sources sha256 {digest.hexdigest()[:12]}"


def settings(args: argparse.Namespace) -> Settings:
    q = args.quick
    return Settings(
        quick=q,
        reps=args.reps if args.reps else (1 if q else 3),
        articles=args.articles or (200 if q else 2000),
        workers=[int(w) for w in args.workers.split(",")],
        latency=args.latency,
        ports=args.ports,
        wget_articles=args.wget_articles or (30 if q else 200),
        baseline_threads=32,
        corpus_articles=1000 if q else 20_000,
        corpus_files=4 if q else 10,
        corpus_extra=10 if q else 200,
        stream_seeds=args.stream_seeds or (5000 if q else 100_000),
        # quick: 400, not 200, so that batches hold >= 32 seeds (50 a host) and use all their threads
        cluster_articles=args.articles or (400 if q else 2000),
        export_rows=5000 if q else 100_000,
        replay_pages=100 if q else 1000,
        ka_requests=100 if q else 500,
        close_requests=50 if q else 200,
        cdxj_small=10_000,
        cdxj_large=1_000_000,
        cdxj_lookups=300 if q else 2000,
        keep=args.keep,
        time_limit=args.time_limit,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benchmarks", nargs="*", default=["all"],
                        help=f"all (default), or any of: {', '.join(BENCHMARKS)}, profile")
    parser.add_argument("--quick", action="store_true", help="small sizes and 1 repetition: a smoke run (< 2 min)")
    parser.add_argument("--reps", type=int, default=0, help="repetitions (default 3; 1 with --quick)")
    parser.add_argument("--articles", type=int, default=0, help="capture: articles (default 2000; 200 quick)")
    parser.add_argument("--workers", default="96,128", help="capture: archiver worker counts (96: default)")
    parser.add_argument("--latency", type=float, default=0.05, help="capture: seconds per response (default 0.05)")
    parser.add_argument("--ports", type=int, default=8, help="capture: loopback ports of the site (default 8)")
    parser.add_argument("--wget-articles", type=int, default=0, help="capture: articles wget fetches (default 200)")
    parser.add_argument("--stream-seeds", type=int, default=0, help="memory: streamed URL seeds (default 100000)")
    parser.add_argument("--time-limit", type=float, default=900, help="seconds before any one command is killed")
    parser.add_argument("--code", default="worktree",
                        help="archiver code to measure: worktree (default: archiver/ as on disk when the run "
                             "starts) or a git revision such as HEAD (its committed archiver/)")
    parser.add_argument("--keep", action="store_true", help="keep the capture outputs under bench/.data/runs")
    parser.add_argument("--no-setup", action="store_true", help="skip apt-get/pip (tools already installed)")
    args = parser.parse_args()
    which = list(BENCHMARKS) if "all" in args.benchmarks else args.benchmarks
    unknown = set(which) - set(BENCHMARKS) - {"profile"}
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    started = time.monotonic()
    if not args.no_setup:
        bl.ensure_tools()
    s = settings(args)
    report = Report(s, bl.machine())
    measured = snapshot_archiver(args.code)
    report.machine["archiver"] = measured if args.code != "worktree" else f"{report.machine['archiver']} ({measured})"
    RUNS.mkdir(parents=True, exist_ok=True)
    funcs: dict[str, Callable[[Settings, Report], None]] = {
        "capture": bench_capture, "requisites": bench_requisites, "recapture": bench_recapture,
        "schedule": bench_schedule,
        "index": bench_index, "replay": bench_replay,
        "memory": bench_memory, "cdxj": bench_cdxj, "cluster": bench_cluster, "fetch": bench_fetch,
        "profile": bench_profile}
    order = [b for b in ("capture", "requisites", "recapture", "schedule", "index", "replay", "memory", "cdxj",
                         "fetch", "cluster", "profile") if b in which]
    failed = []
    for name in order:
        t0 = time.monotonic()
        try:
            funcs[name](s, report)
        except Exception as exc:  # one broken benchmark must not lose the others' results
            failed.append(name)
            log(f"{name} FAILED: {exc!r}")
            report.sections.append((f"{name}: FAILED", [f"`{exc!r}` (logs in bench/.data/logs/)"]))
        log(f"{name} took {time.monotonic() - t0:.0f} s")
    text = report.markdown(started, order)
    print(text)
    results = DATA / "results"
    results.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    suffix = "-quick" if s.quick else ""
    (results / f"results-{stamp}{suffix}.md").write_text(text + "\n")
    (results / "latest.md").write_text(text + "\n")
    log(f"results written to {results / 'latest.md'}; total {(time.monotonic() - started) / 60:.1f} min")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
