"""The command line: thin wrappers over the library. The only module that prints or exits."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

import click

from . import __version__
from .capture import CaptureReport, Event
from .capture import capture as capture_lib
from .config import Config
from .config import load as load_config
from .demo import DEMO_COLLECTION
from .demo import demo as demo_lib
from .errors import ArchiverError
from .export import FORMATS
from .export import export as export_lib
from .index import build_index
from .init import init as init_lib
from .replay import ReplayServer, replay_urls, start_replay

COLLECTION_HELP = "collection name (default: archiver.collection in config.yaml, else 'news')"


def _config(ctx: click.Context, **overrides: Any) -> Config:
    root: Path = ctx.obj["root"]
    return load_config(root, **overrides)


def _fail(exc: ArchiverError) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(exc.exit_code)


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ArchiverError as exc:
            _fail(exc)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="archiver")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=".",
              show_default=True, help="archive root (a pywb working directory)")
@click.pass_context
def cli(ctx: click.Context, root: Path) -> None:
    """Preserve news articles: capture them into WARC files, index, replay with pywb, export.

    Typical use: archiver init; archiver capture seeds/; archiver replay; archiver export.
    """
    ctx.obj = {"root": root}


@cli.command()
@click.option("-c", "--collection", help=COLLECTION_HELP)
@click.pass_context
def init(ctx: click.Context, collection: str | None) -> None:
    """Create config.yaml, collections/, seeds/ and templates/ in the root. Safe to run twice."""
    cfg = _config(ctx)
    report = init_lib(cfg, collection)
    for item in report.created:
        click.echo(f"created {item}")
    click.echo(f"archive root ready: {cfg.root}")


def _progress(quiet: bool) -> Any:
    def show(event: Event) -> None:
        if event.kind == "captured" and not quiet:
            click.echo(f"captured   {event.url}", err=True)
        elif event.kind == "skipped" and not quiet:
            click.echo(f"skipped    {event.url} (already captured)", err=True)
        elif event.kind in ("failed", "invalid"):
            what = event.url or event.detail
            click.echo(f"FAILED     {event.reason:<18} {what}  [{event.source}]", err=True)
    return show


def _summary(report: CaptureReport) -> None:
    total = report.captured + len(report.failures)
    click.echo(f"\n{report.captured} captured, {len(report.failures)} failed, "
               f"{report.skipped} already captured, {report.duplicates} duplicates "
               f"({total} attempted)", err=True)
    for reason, count in sorted(report.failed_by_reason.items()):
        click.echo(f"  {reason}: {count}", err=True)
    if report.failures:
        click.echo("failed seeds:", err=True)
        for event in report.failures:
            detail = f" - {event.detail}" if event.detail else ""
            click.echo(f"  {event.source}: {event.reason} {event.url}{detail}", err=True)
    if report.interrupted:
        click.echo("interrupted: run the same command again to resume", err=True)


@cli.command()
@click.argument("sources", nargs=-1)
@click.option("-c", "--collection", help=COLLECTION_HELP)
@click.option("--workers", type=click.IntRange(1, 512), help="seeds captured in parallel [default: 8]")
@click.option("--timeout", type=click.FloatRange(min=0.1), help="total seconds for one request [default: 60]")
@click.option("--max-size", type=click.IntRange(1), help="bytes kept of one response [default: 100 MiB]")
@click.option("--allow-private", is_flag=True, default=None,
              help="allow loopback/private/link-local targets (refused by default: SSRF guard)")
@click.option("-q", "--quiet", is_flag=True, help="print only failures and the summary")
@click.pass_context
def capture(ctx: click.Context, sources: tuple[str, ...], collection: str | None, workers: int | None,
            timeout: float | None, max_size: int | None, allow_private: bool | None, quiet: bool) -> None:
    """Capture article pages and lead images into WARC files.

    SOURCES are seed documents, URL-list files (one URL a line, '#' comments), directories of
    either (searched recursively), http(s) URLs, or '-' for a URL list on stdin.
    Default: seeds/ in the archive root. Seeds already captured are skipped; failed ones are retried.

    Exit status: 0 all captured, 1 some failed (listed), 2 usage or configuration error.
    """
    cfg = _config(ctx, workers=workers, timeout=timeout, max_size=max_size, allow_private=allow_private)
    started = time.monotonic()
    sources = sources or (str(cfg.root / "seeds"),)
    report = capture_lib(cfg, sources, collection, stdin=sys.stdin, on_event=_progress(quiet))
    _summary(report)
    click.echo(f"took {time.monotonic() - started:.1f} s", err=True)
    if report.interrupted:
        sys.exit(130)
    sys.exit(0 if report.ok else 1)


@cli.command()
@click.option("-c", "--collection", help=COLLECTION_HELP)
@click.pass_context
def index(ctx: click.Context, collection: str | None) -> None:
    """Rebuild the CDXJ replay index and the metadata index from the WARC files alone."""
    cfg = _config(ctx)
    report = build_index(cfg, collection)
    for line in report.mended:
        click.echo(f"mended {line}", err=True)
    click.echo(f"indexed {report.files} WARC files, {report.records} records, "
               f"{report.articles} articles")


def _serve(cfg: Config, host: str, port: int, collection: str | None) -> None:
    server: ReplayServer = start_replay(cfg, host, port)
    click.echo(f"replay running at {server.url}/ (Ctrl-C stops it)")
    for url, label in replay_urls(cfg, server.url, collection):
        click.echo(f"  {url}\n      {label}")
    try:
        server.process.wait()
    except KeyboardInterrupt:
        click.echo("stopping replay", err=True)
    finally:
        server.stop()


@cli.command()
@click.option("-c", "--collection", help=COLLECTION_HELP)
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.pass_context
def replay(ctx: click.Context, collection: str | None, host: str, port: int) -> None:
    """Serve the archive with pywb and print the replay URL of every archived article."""
    _serve(_config(ctx), host, port, collection)


@cli.command()
@click.option("-c", "--collection", help=COLLECTION_HELP)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="file to write (default: standard output)")
@click.pass_context
def export(ctx: click.Context, collection: str | None, fmt: str, output: Path | None) -> None:
    """Export the metadata index, one row per seed, as CSV or JSON Lines."""
    cfg = _config(ctx)
    if output is None:
        export_lib(cfg, sys.stdout, fmt, collection)
        return
    tmp = output.with_name(output.name + ".part")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        count = export_lib(cfg, fh, fmt, collection)
    tmp.replace(output)
    click.echo(f"wrote {count} rows to {output}", err=True)


@cli.command()
@click.option("--site-port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="loopback port for the bundled news site")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="replay port")
@click.option("--no-replay", is_flag=True, help="capture and index only; do not start pywb")
@click.pass_context
def demo(ctx: click.Context, site_port: int, port: int, no_replay: bool) -> None:
    """Offline demo: capture a bundled news site over loopback, then replay it."""
    cfg = _config(ctx)
    report = demo_lib(cfg, site_port, on_event=_progress(False))
    _summary(report.capture)
    if not report.capture.ok:
        sys.exit(1)
    if not no_replay:
        _serve(cfg, "127.0.0.1", port, DEMO_COLLECTION)


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM (systemd, kill) stops as cleanly as Ctrl-C


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    try:
        cli(prog_name="archiver", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
