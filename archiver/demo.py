"""The offline demo: a small bundled news site served over loopback, captured like the web.

Seed documents for its articles are written the way a feed exporter writes them, so the demo
runs the same path as real seeds: parse, fetch, WARC, index, replay, export.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

from archiver.capture.run import CaptureReport, Event, capture
from archiver.config import Config
from archiver.errors import UsageError
from archiver.extract.decode import html_text
from archiver.extract.page import parse_html

DEMO_COLLECTION = "demo"


def site_dir() -> Path:
    return Path(str(resources.files("archiver") / "demo-site"))


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class SiteServer:
    """Serves a directory on 127.0.0.1 from a background thread."""

    def __init__(self, directory: Path, port: int = 0, host: str = "127.0.0.1") -> None:
        handler = functools.partial(_QuietHandler, directory=str(directory))
        try:
            self.httpd = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise UsageError(f"cannot serve the demo site on {host} port {port}: {exc.strerror or exc} "
                             "(choose another with --site-port, or make demo SITE_PORT=...)") from exc
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="demo-site", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    def __enter__(self) -> SiteServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def write_seed_documents(site: Path, base_url: str, target: Path) -> list[Path]:
    """One seed document per article of the site, as an RSS exporter would write it."""
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for number, page in enumerate(sorted((site / "articles").glob("*.html"))):
        text, _ = html_text(page.read_bytes(), "")
        tree = parse_html(text)
        url = f"{base_url}/articles/{page.name}"
        og_title = tree.css_first('meta[property="og:title"]')
        title = str(og_title.attributes.get("content")) if og_title is not None else page.stem
        stamp = tree.css_first('meta[property="article:published_time"]')
        when = datetime(2023, 10, 6) if stamp is None else datetime.fromisoformat(str(stamp.attributes.get("content")))
        body = tree.css_first("article") or tree.body
        if body is None:
            continue  # not an article page
        img = body.css_first("img[src]")
        paragraphs = "".join(f"<p>{p.text(strip=True)}</p>" for p in body.css("p")[:3])
        image = f'<img src="{img.attributes["src"]}">' if img is not None else ""
        document = (
            f"<!--{int(when.timestamp() * 1000)}-->\n[{title}]({url})\n------\n\n"
            f"<div>{when:%d/%m/%Y - %H:%M}</div>{image}{paragraphs}\n"
        )
        path = target / f"{number:03d}_{page.stem}.txt"
        path.write_text(document, encoding="utf-8")
        written.append(path)
    return written


@dataclass
class DemoReport:
    site_url: str
    seeds: list[Path]
    capture: CaptureReport
    cfg: Config  # the settings the demo captured with (its collection: `demo`), to replay it with


def demo(cfg: Config, site_port: int = 8765, on_event: Callable[[Event], None] | None = None) -> DemoReport:
    """Serve the bundled site on loopback, write its seeds, capture them into the demo collection."""
    with SiteServer(site_dir(), site_port) as server:
        seeds = write_seed_documents(site_dir(), server.url, cfg.root / "demo-seeds")
        # the site is our own, on loopback: lift the address guard and the politeness delay
        own_site = cfg.replace(allow_private=True, host_delay=0.0, host_concurrency=cfg.workers,
                               collection=DEMO_COLLECTION)
        report = capture(own_site, [str(cfg.root / "demo-seeds")], on_event=on_event)
    return DemoReport(server.url, seeds, report, own_site)
