"""The command line: thin wrappers over the library. The only module that prints or exits.

Each command loads the configuration once (config.yaml, then its flags: -c NAME is the setting
`collection`), calls the library function of its own name, and prints what it returns. Errors
are ArchiverError subclasses, turned into the exit statuses of errors.py; anything else is a bug.
"""

from __future__ import annotations

import dataclasses
import json
import re
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from archiver import __version__
from archiver._process import fewer_malloc_arenas
from archiver.config import Config
from archiver.config import load as load_config
from archiver.errors import ArchiverError, DiskError, ExitStatus, ReplayError, is_disk_error
from archiver.export import FORMATS, TIME_FIELDS
from archiver.verify import KINDS

# Each command imports the library it wraps when it runs (the `from archiver.x import` lines inside
# them): a command pays only for what it uses, and `capture` starts its worker processes before its
# own imports (capture/processes.py). The modules above are light.
if TYPE_CHECKING:
    from archiver.capture.run import CaptureReport, Event
    from archiver.index.build import IndexReport
    from archiver.status import StatusReport
    from archiver.verify import Problem

COLLECTION_HELP = "collection name (default: archiver.collection in config.yaml, else 'news')"
CLUSTER_HELP = ("run on a Dask cluster: scheduler address (tcp://HOST:8786) or scheduler file; the workers must "
                "see the archive root at the same path [default: archiver.cluster in config.yaml, else this machine]")


# C0 and C1 control characters but tab, newline and CR LF: titles, URLs and file names come from pages,
# feeds and other tools' files, and a terminal would run an escape sequence among them
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]|\r(?!\n)")


def safe(text: str) -> str:
    """`text` with control characters shown as \\xNN instead of sent to the terminal."""
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text) if _CONTROLS.search(text) else text


def _echo(text: str = "", err: bool = False, nl: bool = True) -> None:
    click.echo(safe(text), err=err, nl=nl)


def plural(count: int, word: str) -> str:
    """`1 file`, `2 files`."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _config(ctx: click.Context, **overrides: Any) -> Config:
    root: Path = ctx.obj["root"]
    return load_config(root, **overrides)


def _quiet(ctx: click.Context) -> bool:
    return bool(ctx.obj.get("quiet"))


def _verbose(ctx: click.Context) -> bool:
    return bool(ctx.obj.get("verbose")) and not _quiet(ctx)


def _flag(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and param.name:
        ctx.ensure_object(dict)[param.name] = True  # one dict, shared by the group and its command


def output_options(command: Any) -> Any:
    """-q and -v, given to the group and to every command: `archiver -q capture` = `archiver capture -q`."""
    command = click.option("-v", "--verbose", is_flag=True, expose_value=False, callback=_flag,
                           help="report every step (every seed, every file)")(command)
    return click.option("-q", "--quiet", is_flag=True, expose_value=False, callback=_flag,
                        help="no progress; print only problems and results")(command)


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ArchiverError as exc:
            _echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        decorate = super().command(*args, **kwargs)
        return lambda function: decorate(output_options(function))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="archiver")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=".",
              show_default=True, help="archive root (a pywb working directory)")
@output_options
@click.pass_context
def cli(ctx: click.Context, root: Path) -> None:
    """Preserve news articles: capture them into WARC files, index, replay with pywb, export.

    Typical use: archiver init; archiver capture seeds/; archiver replay; archiver export.
    Progress is shown on a terminal only; --quiet and --verbose work with every command.
    Exit status: 0 done, 1 some seeds failed or damaged files were found, 2 usage or
    configuration error, 3 file or storage I/O error, 4 network or cluster error, 5 replay
    error, 6 a bug in archiver, 130 interrupted.
    """
    ctx.ensure_object(dict)["root"] = root


class _Live:
    """A status line rewritten in place on a terminal (never written to files or pipes)."""

    def __init__(self, quiet: bool) -> None:
        self.on = not quiet and sys.stderr.isatty()
        self.last = 0.0
        self.shown = False

    def show(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if self.on and (force or now - self.last >= 0.1):
            self.last = now
            click.echo("\r\x1b[2K" + safe(text), err=True, nl=False)
            self.shown = True

    def echo(self, line: str) -> None:
        self.clear()
        _echo(line, err=True)

    def clear(self) -> None:
        if self.shown:
            click.echo("\r\x1b[2K", err=True, nl=False)
            self.shown = False


@cli.command()
@click.option("-c", "--collection", help="also create this collection's folder")
@click.pass_context
def init(ctx: click.Context, collection: str | None) -> None:
    """Create config.yaml, collections/, seeds/ and templates/ in the root. Safe to run twice."""
    from archiver.init import init as init_lib

    cfg = _config(ctx, collection=collection)
    report = init_lib(cfg, with_collection=collection is not None)
    for item in report.created:
        _echo(f"created {item}")
    _echo(f"archive root ready: {cfg.root}")


class _CaptureProgress:
    """Capture progress: failures as they happen, every seed with --verbose, and a live count on
    a terminal."""

    def __init__(self, ctx: click.Context) -> None:
        self.verbose = _verbose(ctx)
        self.live = _Live(_quiet(ctx))
        self.counts = {"captured": 0, "failed": 0, "skipped": 0}
        self.started = time.monotonic()

    def __call__(self, event: Event) -> None:
        counts = self.counts
        if event.kind in ("failed", "invalid"):
            counts["failed"] += 1
            self.live.echo(f"FAILED     {event.reason:<18} {event.url or event.detail}  [{event.source}]")
        elif event.kind in ("captured", "skipped"):
            counts[event.kind] += 1
            if self.verbose:
                self.live.echo(f"{event.kind:<10} {event.url}")
        rate = counts["captured"] / max(time.monotonic() - self.started, 1e-6)
        self.live.show(f"{counts['captured']} captured, {counts['failed']} failed, "
                       f"{counts['skipped']} already captured ({rate:.0f}/s)")

    def clear(self) -> None:
        self.live.clear()


def _summary(report: CaptureReport) -> None:
    for line in report.mended:
        _echo(f"mended {line}", err=True)
    for line in report.skipped_files:
        _echo(f"skipped {line} ('archiver verify' says more)", err=True)
    total = report.captured + report.failed
    _echo(f"\n{report.captured} captured, {report.failed} failed, "
          f"{report.skipped} already captured, {plural(report.duplicates, 'duplicate')} "
          f"({total} attempted)", err=True)
    for reason, count in sorted(report.failed_by_reason.items()):
        _echo(f"  {reason}: {count}", err=True)
    r = report.requisites
    if r.fetched or r.failed or r.skipped or r.fresh:
        _echo(f"requisites: {r.fetched} captured, {r.failed} failed, {r.skipped} skipped, "
              f"{r.fresh} shared with pages captured before; {_human_size(r.stored_bytes)} stored"
              + (f", {plural(r.revisits, 'revisit')} ({_human_size(r.revisit_bytes)} not stored again)"
                 if r.revisits else ""), err=True)
    if report.failed:  # each was printed as it failed (FAILED ...)
        _echo("the failed seeds are listed above (FAILED); 'archiver export --status failed' lists them all, "
              "and the same command retries them", err=True)
    if report.replay_index:
        _echo(f"updated the {report.replay_index}", err=True)
    if report.replay_index_error:
        _echo(f"warning: replay's index was not updated: {report.replay_index_error}; "
                   "run 'archiver index' with --zipnum or --redis to update it", err=True)
    if report.interrupted:
        _echo("interrupted: run the same command again to resume", err=True)


def _check_sources(sources: tuple[str, ...]) -> None:
    """A SOURCE that names no file is a mistyped command: said before anything is created."""
    from archiver.seeds.model import looks_like_url

    missing = [s for s in sources if s != "-" and not looks_like_url(s) and not Path(s).exists()]
    if missing:
        raise click.UsageError(f"no such file or directory: {', '.join(missing)}")


def _capture_status(report: CaptureReport) -> ExitStatus:
    if report.interrupted:
        return ExitStatus.INTERRUPTED
    return ExitStatus.OK if report.ok else ExitStatus.PARTIAL


@cli.command()
@click.argument("sources", nargs=-1)
@click.option("-c", "--collection", help=COLLECTION_HELP)
@click.option("--workers", type=click.IntRange(1, 512),
              help=f"seeds captured in parallel [default: workers in config.yaml, else {Config.workers}]")
@click.option("--timeout", type=click.FloatRange(min=0.1), help="total seconds for one request [default: 60]")
@click.option("--max-size", type=click.IntRange(1), help="bytes kept of one response [default: 100 MiB]")
@click.option("--allow-private", is_flag=True, default=None,
              help="allow loopback/private/link-local targets (refused by default: SSRF guard)")
@click.option("--feed", "feeds", multiple=True, metavar="URL",
              help="also capture every item of the RSS/Atom feed at URL (repeatable)")
@click.option("--cluster", metavar="ADDRESS", help=CLUSTER_HELP)
@click.option("--no-requisites", "no_requisites", is_flag=True,
              help="capture pages and lead images only, not their stylesheets, scripts, fonts and images")
@click.pass_context
def capture(ctx: click.Context, sources: tuple[str, ...], collection: str | None, workers: int | None,
            timeout: float | None, max_size: int | None, allow_private: bool | None, feeds: tuple[str, ...],
            cluster: str | None, no_requisites: bool) -> None:
    """Capture article pages, lead images and what the pages need to look as they did into WARC files.

    SOURCES are seed documents, URL-list files (one URL a line, '#' comments), RSS/Atom feed
    files, directories of these (searched recursively), http(s) article URLs, or '-' for a URL
    list on stdin. Default: seeds/ in the archive root (unless only --feed is given).
    Seeds already captured are skipped; failed ones are retried.

    Exit status: 0 all captured, 1 some failed (listed), 2 usage or configuration error,
    3 I/O, 4 cluster or worker failure, 130 interrupted.
    """
    cfg = _config(ctx, collection=collection, workers=workers, timeout=timeout, max_size=max_size,
                  allow_private=allow_private, cluster=cluster, requisites=False if no_requisites else None)
    _check_sources(sources)
    started = time.monotonic()
    from archiver.capture.processes import start_processes

    runner = start_processes(cfg)  # first: they start while this process imports the capture code
    from archiver.capture.run import capture as capture_lib

    sources = sources or (() if feeds else (str(cfg.root / "seeds"),))
    progress = _CaptureProgress(ctx)
    report = capture_lib(cfg, sources, stdin=sys.stdin, on_event=progress, feeds=feeds, runner=runner)
    progress.clear()
    _summary(report)
    _echo(f"took {time.monotonic() - started:.1f} s", err=True)
    sys.exit(_capture_status(report))


class _CheckProgress(_CaptureProgress):
    """Recapture progress: failed and changed articles as they are found, every check with --verbose."""

    def __call__(self, event: Event) -> None:
        if event.kind != "checked":
            super().__call__(event)
            return
        counts = self.counts
        counts["checked"] = counts.get("checked", 0) + 1
        if event.reason in ("edited", "removed", "restored", "failed") or self.verbose:
            label = event.reason.upper() if event.reason != "unchanged" else event.reason
            self.live.echo(f"{label:<10} {event.url}" + (f"  ({event.detail})" if event.detail else ""))
        self.live.show(f"{counts['checked']} checked")


@cli.command()
@click.option("-c", "--collection", help=COLLECTION_HELP)
@click.option("--url", "urls", multiple=True, metavar="URL", help="check this captured article (repeatable)")
@click.option("--host", "hosts", multiple=True, metavar="HOST", help="only articles of this host (repeatable)")
@click.option("--older-than", metavar="DURATION",
              help="articles last checked (or captured) at least this long ago, whatever their schedule: 0, 30m, 7d")
@click.option("--all", "everything", is_flag=True, help="every captured article, not only those due")
@click.option("--allow-private", is_flag=True, default=None, help="allow loopback/private/link-local targets")
@click.option("--no-requisites", "no_requisites", is_flag=True,
              help="check pages and lead images only, not their stylesheets, scripts, fonts and images")
@click.option("--cluster", metavar="ADDRESS", help=CLUSTER_HELP)
@click.pass_context
def recapture(ctx: click.Context, collection: str | None, urls: tuple[str, ...], hosts: tuple[str, ...],
              older_than: str | None, everything: bool, allow_private: bool | None, no_requisites: bool,
              cluster: str | None) -> None:
    """Check captured articles again and record what changed.

    By default each article is checked on its own schedule: recheck_min after it was captured or
    last changed, the wait doubling while it stays unchanged, up to recheck_max. Each check is
    written as a capture is (a small revisit record when the page is byte for byte the same) and
    found unchanged, same (other bytes, the same title, text and lead image), edited, removed
    (404, 410, 451, a redirect to the front or a section page, a "no longer available" page),
    restored, or failed (tried again later). 'archiver history URL' shows the versions.

    Exit status: 0 every check done, 1 some failed, 2 usage error, 3 I/O, 4 cluster failure, 130 interrupted.
    """
    from archiver.config import parse_duration

    cfg = _config(ctx, collection=collection, allow_private=allow_private, cluster=cluster,
                  requisites=False if no_requisites else None)
    age = parse_duration(older_than, "--older-than", minimum=0) if older_than is not None else None
    started = time.monotonic()
    from archiver.capture.processes import start_processes

    runner = start_processes(cfg)
    from archiver.capture.recheck import Selection
    from archiver.capture.run import recapture as recapture_lib

    progress = _CheckProgress(ctx)
    report = recapture_lib(cfg, Selection(urls, hosts, age, everything), on_event=progress, runner=runner)
    progress.clear()
    checked = sum(report.checks.values())
    found = ", ".join(f"{report.checks[kind]} {kind}" for kind in
                      ("unchanged", "same", "edited", "removed", "restored", "failed") if report.checks[kind])
    _echo(f"\n{plural(checked, 'article')} checked" + (f": {found}" if found else ""), err=True)
    others = report.failed - report.checks["failed"]
    if others:
        _echo(f"{others} could not be checked:", err=True)
        for reason, count in sorted(report.failed_by_reason.items()):
            _echo(f"  {reason}: {count}", err=True)
    if report.interrupted:
        _echo("interrupted: run the same command again to resume", err=True)
    _echo(f"took {time.monotonic() - started:.1f} s", err=True)
    sys.exit(_capture_status(report))


@cli.command()
@click.argument("url")
@click.option("-c", "--collection", help=COLLECTION_HELP)
@click.option("--diff", "show_diff", is_flag=True, help="also what changed in title and text between versions")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table", show_default=True)
@click.pass_context
def history(ctx: click.Context, url: str, collection: str | None, show_diff: bool, fmt: str) -> None:
    """Every version and check of one captured article: when, what was found, and its replay path."""
    from archiver.history import history as history_lib

    cfg = _config(ctx, collection=collection)
    found = history_lib(cfg, url, diff=show_diff)
    if fmt == "jsonl":
        for version in found.versions:
            _echo(json.dumps({"type": "version", **dataclasses.asdict(version)}, ensure_ascii=False))
        for check in found.checks:
            _echo(json.dumps({"type": "check", **dataclasses.asdict(check)}, ensure_ascii=False))
        for change in found.changes:
            _echo(json.dumps({"type": "diff", **dataclasses.asdict(change)}, ensure_ascii=False))
        return
    _echo(found.url)
    _echo(f"{plural(len(found.versions), 'version')}, {plural(len(found.checks) - 1, 'check')} after the capture")
    for v in found.versions:
        _echo(f"  {v.version:>3}  {v.kind:<9} {v.first_seen} .. {v.last_seen}  {v.status or '-':>3}  {v.title}")
        _echo(f"       {v.replay_path}")
    _echo("checks:")
    for c in found.checks:
        when = c.date[:19] + "Z"
        _echo(f"  {when}  {c.kind:<9} {c.status or '-':>3}  {c.error or c.replay_path}")
    for change in found.changes:
        _echo(change.diff or f"version {change.before} -> {change.after}: title and text the same")


def _show_index(report: IndexReport, cfg: Config) -> None:
    for line in report.mended:
        _echo(f"mended {line}", err=True)
    for line in report.unreadable:
        _echo(f"skipped {line}", err=True)
    _echo(f"indexed {plural(report.files, 'WARC file')}, {plural(report.records, 'record')}, "
          f"{plural(report.articles, 'article')}")
    if report.search_added is not None:
        _echo(f"search index: {report.search_added} articles added")
    restart = "; replay reads it (restart a running replay: config.yaml changed)"
    if report.zipnum is not None:
        built = report.zipnum
        _echo(f"zipnum index: {built.lines} lines in {built.blocks} blocks, "
                   f"{built.summary.relative_to(cfg.root)}{restart if built.config_changed else '; replay reads it'}")
    if report.redis is not None:
        loaded = report.redis
        _echo(f"loaded {loaded.members} lines into {loaded.target.display}"
                   f"{restart if loaded.config_changed else '; replay reads it'}")
    if report.other_replay_index:
        _echo(f"note: config.yaml gives replay of {cfg.collection!r} an index of its own "
                   f"(collections: {cfg.collection}: index:), "
                   "not rebuilt now: run again with --zipnum or --redis URL to update it", err=True)


@cli.command()
@click.option("-c", "--collection", help=COLLECTION_HELP)
@click.option("--zipnum", is_flag=True,
              help="also build a zipnum cluster index (indexes/zipnum/) and have replay read it (config.yaml)")
@click.option("--redis", "redis_url", metavar="URL",
              help="also load the index into Redis, redis://HOST:PORT/DB[/KEY], and have replay read it "
                   "from there (config.yaml); several replay front-ends can share it")
@click.option("--search", "with_search", is_flag=True,
              help="also build the full-text search index now (otherwise the next 'archiver search' does)")
@click.option("--cluster", metavar="ADDRESS", help=CLUSTER_HELP)
@click.pass_context
def index(ctx: click.Context, collection: str | None, zipnum: bool, redis_url: str | None, with_search: bool,
          cluster: str | None) -> None:
    """Rebuild the CDXJ replay index and the metadata index from the WARC files alone.

    Reads WARC and ARC files from any tool. Files that cannot be read are listed and skipped
    (exit status 1); `archiver verify` says what is wrong with them, record by record.
    With --zipnum or --redis, replay then reads that index instead of indexes/index.cdxj;
    run the same command again after capturing more. The full-text search index is brought up
    to date by the next 'archiver search', or at once with --search.
    """
    from archiver.index.build import index as index_lib

    cfg = _config(ctx, collection=collection, cluster=cluster)
    live = _Live(_quiet(ctx))

    def progress(done: int, total: int, name: str) -> None:
        if _verbose(ctx):
            live.echo(f"indexing {name}")
        live.show(f"indexing {done + 1}/{total}: {name}", force=True)

    def searching(done: int, total: int) -> None:
        live.show(f"search index: {done}/{total} articles", force=done == total)

    try:
        report = index_lib(cfg, zipnum=zipnum, redis_url=redis_url or "", search=with_search, progress=progress,
                           searching=searching)
    finally:
        live.clear()
    _show_index(report, cfg)
    sys.exit(ExitStatus.PARTIAL if report.unreadable else ExitStatus.OK)


def _serve(cfg: Config, host: str, port: int) -> None:
    from archiver.replay.launch import replay, replay_urls

    server = replay(cfg, host, port)
    _echo(f"replay running at {server.url}/ (Ctrl-C stops it)")
    for url, label in replay_urls(cfg, server.url):
        _echo(f"  {url}\n      {label}")
    try:
        status = server.process.wait()
    except KeyboardInterrupt:
        _echo("stopping replay", err=True)
        return
    finally:
        server.stop()
    if status:  # it stopped by itself
        raise ReplayError(f"pywb stopped with status {status}")


@cli.command()
@click.option("-c", "--collection", help=COLLECTION_HELP)
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.pass_context
def replay(ctx: click.Context, collection: str | None, host: str, port: int) -> None:
    """Serve the archive with pywb and print the replay URL of every archived article."""
    _serve(_config(ctx, collection=collection), host, port)


@cli.command()
@click.option("-c", "--collection", help=COLLECTION_HELP)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True,
              help="csv and jsonl: text; parquet: typed columns (needs -o); cdxj: the replay index")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="file to write, replaced only when complete (default: standard output)")
@click.option("--since", metavar="TIME", help="keep rows at or after TIME (ISO 8601 date or date-time; UTC "
              "unless it has an offset)")
@click.option("--until", metavar="TIME", help="keep rows before TIME (exclusive; same format as --since)")
@click.option("--time-field", type=click.Choice(TIME_FIELDS),
              help="time that --since/--until compare: the seed's (feed) time or the capture time "
                   "[default: seed; capture for cdxj]")
@click.option("--status", "statuses", multiple=True, metavar="VALUE",
              help="keep rows whose HTTP status is VALUE (200, or a class: 4xx), or 'captured', 'failed', "
                   "'edited' (a recapture found an edit), 'removed' (and still removed), or an error reason "
                   "(http_404, timeout, ...); repeat for any of several")
@click.option("--host", "hosts", multiple=True, metavar="HOST",
              help="keep articles on HOST or its subdomains (example.org matches www.example.org); repeatable")
@click.option("--versions", is_flag=True, help="one row per version of each article kept (archiver recapture)")
@click.pass_context
def export(ctx: click.Context, collection: str | None, fmt: str, output: Path | None, since: str | None,
           until: str | None, time_field: str | None, statuses: tuple[str, ...], hosts: tuple[str, ...],
           versions: bool) -> None:
    """Export the metadata index, one row per seed, as CSV, JSON Lines or Parquet; or the CDXJ index.

    Filters combine: a row must pass every one given, and any of the values of a repeated one.
    With --versions, the rows are the versions of the articles the filters keep.
    """
    from archiver.export import Filters
    from archiver.export import export as export_lib

    cfg = _config(ctx, collection=collection)
    filters = Filters.parse(since, until, time_field, statuses, hosts)
    live = _Live(_quiet(ctx) or output is None)  # stdout may be the terminal

    def progress(rows: int) -> None:
        live.show(f"exported {rows} rows")

    stream: Any = sys.stdout
    if output is None and sys.stdout.isatty():  # a terminal: no escape sequence of a title reaches it
        stream = _SafeText(sys.stdout)
    count = export_lib(cfg, output or stream, fmt, filters, progress, versions=versions)
    live.clear()
    if output is not None:
        _echo(f"wrote {count} {'lines' if fmt == 'cdxj' else 'rows'} to {output}", err=True)


class _SafeText:
    """A text stream whose writes have their control characters escaped (export to a terminal)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        return int(self.stream.write(safe(text)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def _human_size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    scaled = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        scaled /= 1024
        if scaled < 1024 or unit == "TiB":
            break
    return f"{scaled:.1f} {unit} ({size} bytes)"


def _show_status(report: StatusReport) -> None:
    if not report.collections:
        _echo(f"no collections under {report.root}")
    for c in report.collections:
        _echo(c.name)
        _echo(f"  seeds          {c.seeds} ({c.captured} captured, {c.failed} failed)"
                   + ("" if c.has_index else " - no metadata index: run 'archiver index'"))
        for reason, count in c.failed_by_reason.items():
            _echo(f"    {reason:<20} {count}")
        unindexed = f", {c.unindexed_files} not indexed yet" if c.unindexed_files else ""
        _echo(f"  WARC files     {c.warc_files}, {_human_size(c.warc_bytes)}{unindexed}")
        _echo(f"  last capture   {c.last_capture_time or '-'}")
        r = c.requisites
        if r.urls:
            _echo(f"  requisites     {r.urls} URLs ({r.ok} captured, {r.failed} failed, {r.skipped} skipped), "
                  f"{_human_size(r.stored_bytes)} stored")
            _echo(f"    saved        {_human_size(r.shared_bytes)} by sharing between pages, "
                  f"{_human_size(r.revisit_bytes)} by revisit records")
        if c.search_pending:
            _echo(f"  search         {c.search_pending} articles not indexed for search yet "
                       "(the next 'archiver search' indexes them)")
        if c.open_files:
            _echo(f"  open files     {len(c.open_files)} (being written, or left by a killed run: "
                       "the next capture or index mends them)")
            for name in c.open_files:
                _echo(f"    {name}")


@cli.command()
@click.option("-c", "--collection", help="collection to report on (default: every collection)")
@click.option("--json", "as_json", is_flag=True, help="print one JSON document, for scripts")
@click.pass_context
def status(ctx: click.Context, collection: str | None, as_json: bool) -> None:
    """Show each collection's seeds captured and failed, WARC files, last capture, leftovers."""
    from archiver.status import status as status_lib

    report = status_lib(_config(ctx, collection=collection), every=collection is None)
    if as_json:
        _echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        _show_status(report)


# \b keeps click from rewrapping the list into one paragraph
_KINDS_HELP = "\b\nProblem kinds:\n" + "\n".join(f"  {kind}: {meaning}" for kind, meaning in KINDS.items())


@cli.command(epilog=_KINDS_HELP)
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-c", "--collection", help="collection to check when no FILES are given "
              "(default: archiver.collection in config.yaml, else 'news')")
@click.pass_context
def verify(ctx: click.Context, files: tuple[Path, ...], collection: str | None) -> None:
    """Check WARC/ARC files record by record, and a collection's indexes against them.

    With FILES, checks just those files: any WARC or ARC, from any tool (gzip per record,
    whole-file gzip, uncompressed, ARC, ARC.gz). Without, checks every file in the
    collection's archive/, and that its indexes agree with them: each index.cdxj line points
    at exactly one record with its URL and time, every response, revisit and resource record
    has a CDXJ line, and every metadata row points at a real record. Leftover *.open files
    are reported. Nothing is changed.

    Each record must have its Content-Length bytes followed by CRLF CRLF, each gzip member
    must be complete (a cut .warc.gz that `warcio check` passes is caught), and
    WARC-Block-Digest and WARC-Payload-Digest must match where present.

    Prints one line per problem, "FILE @OFFSET: kind: detail", then a summary line.

    Exit status: 0 no problems, 1 problems found, 2 usage error (no such collection or file).
    """
    from archiver.verify import verify as verify_lib

    if files and collection is not None:
        raise click.UsageError("give either FILES or -c NAME, not both (FILES are checked on their own)")
    cfg = _config(ctx, collection=collection)
    live = _Live(_quiet(ctx))

    def show(problem: Problem) -> None:  # as found: a 1 GB collection takes a while
        if live.shown:
            live.clear()
        _echo(str(problem))

    def progress(done: int, total: int, name: str) -> None:
        if _verbose(ctx):
            live.echo(f"verifying {name}")
        live.show(f"verifying {done + 1}/{total}: {name}", force=True)

    report = verify_lib(cfg, files, on_problem=show, progress=progress)
    live.clear()
    _echo(f"{plural(report.files, 'file')}, {plural(report.records, 'record')} verified, "
          f"{plural(len(report.problems), 'problem')}")
    sys.exit(ExitStatus.PARTIAL if report.problems else ExitStatus.OK)


@cli.command()
@click.argument("query", nargs=-1, required=True)
@click.option("-c", "--collection", help=COLLECTION_HELP)
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True, help="most results shown")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table", show_default=True)
@click.pass_context
def search(ctx: click.Context, query: tuple[str, ...], collection: str | None, limit: int, fmt: str) -> None:
    """Full-text search of the captured articles' titles and text, Chinese included.

    Every word of QUERY must occur (as a substring: Chinese needs no spaces). Results are ranked,
    with a snippet around the match [marked] and the article's replay path.
    """
    from archiver.search import search as search_lib

    live = _Live(_quiet(ctx))

    def progress(done: int, total: int) -> None:
        live.show(f"indexing new articles for search: {done}/{total}", force=done == total)

    hits = search_lib(_config(ctx, collection=collection), " ".join(query), limit, progress)
    live.clear()
    for hit in hits:
        if fmt == "jsonl":
            _echo(json.dumps(dataclasses.asdict(hit), ensure_ascii=False))
        else:
            _echo(f"{hit.title or hit.url}\n  {hit.replay_path or hit.url}\n  {hit.snippet}\n")
    if fmt == "table":
        _echo(f"{len(hits)} result{'s' if len(hits) != 1 else ''}", err=True)


@cli.command()
@click.argument("feeds", nargs=-1, required=True)
@click.option("-c", "--collection", help=COLLECTION_HELP)
@click.option("--every", default="15m", show_default=True, help="time between rounds: 30s, 15m, 1h, ...")
@click.option("--allow-private", is_flag=True, default=None, help="allow loopback/private/link-local targets")
@click.option("--no-requisites", "no_requisites", is_flag=True,
              help="capture pages and lead images only, not their stylesheets, scripts, fonts and images")
@click.pass_context
def watch(ctx: click.Context, feeds: tuple[str, ...], collection: str | None, every: str,
          allow_private: bool | None, no_requisites: bool) -> None:
    """Keep capturing the new items of RSS/Atom feeds (URLs or files) until stopped.

    Each round captures the items not captured yet (never the same item twice, across restarts)
    and retries failed ones. Ctrl-C stops.
    """
    from archiver.config import parse_duration
    from archiver.watch import watch as watch_lib

    cfg = _config(ctx, collection=collection, allow_private=allow_private,
                  requisites=False if no_requisites else None)
    interval = parse_duration(every)
    progress = _CaptureProgress(ctx)

    def after_round(number: int, report: CaptureReport) -> None:
        progress.clear()
        checked = ", ".join(f"{count} {kind}" for kind, count in sorted(report.checks.items()) if count)
        _echo(f"round {number}: {report.captured} captured, {report.failed} failed, "
              f"{report.skipped} already captured" + (f"; checked again: {checked}" if checked else "")
              + f"; next in {every}", err=True)

    watch_lib(cfg, feeds, interval, on_round=after_round, on_event=progress)


@cli.command("wacz")
@click.option("-c", "--collection", help=COLLECTION_HELP)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="the .wacz file to write (written to a temporary file and renamed when complete)")
@click.pass_context
def wacz_command(ctx: click.Context, collection: str | None, output: Path) -> None:
    """Package a collection as one WACZ 1.1.1 file, for ReplayWeb.page or pywb.

    The WACZ holds the WARC files as they are (stored, not recompressed), the CDXJ index, a page
    list (one page per captured article, with its metadata) and a manifest of sha256 hashes.
    The collection must pass `archiver verify` first; otherwise nothing is written.

    Exit status: 0 written, 1 the collection fails verification (the first problems are listed)
    or cannot be packaged, 2 usage error.
    """
    from archiver.wacz import wacz as wacz_lib

    live = _Live(_quiet(ctx))

    def progress(done: int, total: int, name: str) -> None:
        live.show(f"{done + 1}/{total}: {name}", force=True)

    try:
        report = wacz_lib(_config(ctx, collection=collection), output, progress)
    finally:
        live.clear()
    _echo(f"wrote {report.output}: {plural(report.warc_files, 'WARC file')}, "
          f"{plural(report.index_lines, 'index line')}, {plural(report.pages, 'page')}, {_human_size(report.bytes)}")


@cli.command()
@click.option("--site-port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="loopback port for the bundled news site")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="replay port")
@click.option("--no-replay", is_flag=True, help="capture and index only; do not start pywb")
@click.pass_context
def demo(ctx: click.Context, site_port: int, port: int, no_replay: bool) -> None:
    """Offline demo: capture a bundled news site over loopback, then replay it."""
    from archiver.demo import demo as demo_lib

    progress = _CaptureProgress(ctx)
    report = demo_lib(_config(ctx), site_port, on_event=progress)
    progress.clear()
    _summary(report.capture)
    if not report.capture.ok:
        sys.exit(_capture_status(report.capture))
    if not no_replay:
        _serve(report.cfg, "127.0.0.1", port)


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM (systemd, kill) stops as cleanly as Ctrl-C


def main() -> None:
    fewer_malloc_arenas()  # capture, index and replay run many threads: see _process.py
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `archiver export | head` ends quietly, like any Unix tool
    try:
        cli(prog_name="archiver", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _echo("interrupted", err=True)
        sys.exit(ExitStatus.INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except Exception as exc:
        if is_disk_error(exc):  # a write the disk refused, somewhere that does not say what it wrote
            _echo(f"error: {DiskError('writing', exc)}", err=True)
            sys.exit(ExitStatus.IO)
        # not one of archiver's errors (those exit in _Group.invoke), nor the disk's: a bug
        traceback.print_exc()
        _echo(f"error: an internal error in archiver {__version__} (above); please report it. "
                   "What was committed before it is kept: the same command resumes.", err=True)
        sys.exit(ExitStatus.INTERNAL)
