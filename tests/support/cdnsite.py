"""A news site whose pages need requisites from a second host, as news sites use CDNs: shared
stylesheets (one `@import`s the other) with a web font and backgrounds in `url()`, a script that
loads lazy images, a favicon, and per-article images with plain `src`, a 3-candidate `srcset`,
`data-src` lazy loading and `<picture>`. Both servers bind 127.0.0.1 (port 0) and count hits.

The pages render the same every time (no clock, no randomness): a replay can be compared with
the live page pixel for pixel.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FONT = (Path(__file__).parents[1] / "data/fonts/dejavu-serif-bold-latin.woff").read_bytes()
BLANK_GIF = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"


def png(width: int, height: int, rgb: tuple[int, int, int], stripe: tuple[int, int, int] | None = None) -> bytes:
    """A PNG of one colour (with a darker band when `stripe` is given): small, and unmistakable on screen."""
    rows = b""
    for y in range(height):
        colour = stripe if stripe is not None and (y // 8) % 2 else rgb
        rows += b"\x00" + bytes(colour) * width

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def colour(n: int, k: int) -> tuple[int, int, int]:
    return ((40 + 53 * n + 17 * k) % 200 + 30, (90 + 31 * n + 71 * k) % 200 + 30, (150 + 19 * n + 37 * k) % 200 + 30)


SITE_CSS = """@import url("base.css");
@font-face { font-family: "Test Serif"; src: url("../fonts/serif.woff") format("woff"); }
h1 { font-family: "Test Serif", monospace; font-size: 34px; color: #222; margin: 10px 0; }
.masthead { background: #b00 url("../img/stripe.png") repeat-x; color: #fff; height: 48px; padding: 0 16px; }
.logo { display: inline-block; width: 32px; height: 32px; margin: 8px 8px 0 0;
        background: url(../img/logo.png) no-repeat; vertical-align: top; }
"""
BASE_CSS = """body { margin: 0; font: 16px/1.5 sans-serif; background: #f4f1e8; }
article { width: 640px; margin: 16px auto; padding: 16px; background: #fff; }
article img { display: block; margin: 8px 0; }
"""
LAZY_JS = """document.querySelectorAll("img[data-src]").forEach(function (img) {
  img.src = img.getAttribute("data-src");
});
document.documentElement.classList.add("js");
"""


def article_page(static: str, n: int) -> str:
    img = f"{static}/img"
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Article {n}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="{static}/css/site.css">
<link rel="icon" href="{static}/favicon.ico">
<script src="{static}/js/lazy.js" defer></script>
<style>.band {{ height: 12px; background: url("{img}/band-{n}.png") repeat-x; }}</style>
</head><body>
<header class="masthead"><span class="logo"></span><b>The Loopback Times</b></header>
<article>
<h1>Headline number {n}</h1>
<div class="band"></div>
<img src="{img}/lead-{n}.png" width="300" height="120" alt="lead">
<img src="{img}/body-{n}.png" srcset="{img}/body-{n}.png 1x, {img}/body-{n}@2x.png 2x, {img}/body-{n}@3x.png 3x"
     width="200" height="60" alt="srcset">
<img class="lazy" src="{BLANK_GIF}" data-src="{img}/lazy-{n}.png" width="200" height="60" alt="lazy">
<picture><source media="(min-width: 800px)" srcset="{img}/wide-{n}.png">
<img src="{img}/narrow-{n}.png" width="200" height="60" alt="picture"></picture>
<p>The body text of article {n}, plain and short.</p>
</article></body></html>
"""


# what each page asks of the static host: shared by every article, then its own
SHARED = ["/css/site.css", "/css/base.css", "/fonts/serif.woff", "/img/stripe.png", "/img/logo.png",
          "/js/lazy.js", "/favicon.ico"]


def own_requisites(n: int) -> list[str]:
    return [f"/img/band-{n}.png", f"/img/lead-{n}.png", f"/img/body-{n}.png", f"/img/body-{n}@2x.png",
            f"/img/body-{n}@3x.png", f"/img/lazy-{n}.png", f"/img/wide-{n}.png", f"/img/narrow-{n}.png"]


def static_file(path: str) -> tuple[str, bytes] | None:
    """(content type, body) of a path of the static host."""
    fixed: dict[str, tuple[str, Callable[[], bytes]]] = {
        "/css/site.css": ("text/css", SITE_CSS.encode),
        "/css/base.css": ("text/css", BASE_CSS.encode),
        "/js/lazy.js": ("application/javascript", LAZY_JS.encode),
        "/fonts/serif.woff": ("font/woff", lambda: FONT),
        "/img/stripe.png": ("image/png", lambda: png(16, 48, (170, 0, 0), (120, 0, 0))),
        "/img/logo.png": ("image/png", lambda: png(32, 32, (255, 220, 0))),
        "/favicon.ico": ("image/png", lambda: png(16, 16, (0, 0, 0))),
    }
    if path in fixed:
        kind, body = fixed[path]
        return kind, body()
    name = path.removeprefix("/img/").removesuffix(".png")
    kind_n, _, density = name.partition("@")
    kind, _, number = kind_n.rpartition("-")
    sizes = {"band": (16, 12), "lead": (300, 120), "body": (200, 60), "lazy": (200, 60), "wide": (200, 60),
             "narrow": (200, 60)}
    if not path.startswith("/img/") or kind not in sizes or not number.isdigit():
        return None
    scale = int(density.removesuffix("x")) if density else 1
    width, height = sizes[kind]
    index = list(sizes).index(kind) + 3 * scale
    return "image/png", png(width * scale, height * scale, colour(int(number), index))


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send(self, status: int, kind: str, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class CdnSite:
    """The news host (`url`) and its static host (`static`), each counting the paths asked of it."""

    def __init__(self, static_host_name: str = "") -> None:
        self.static_hits: Counter[str] = Counter()
        self.news_hits: Counter[str] = Counter()
        self.extra_pages: dict[str, str] = {}  # path -> HTML the news host serves too
        self.static_extra: dict[str, tuple[str, bytes]] = {}
        self.static_delay = 0.0  # seconds before each answer of the static host
        site = self

        class Static(_Handler):
            def do_GET(self) -> None:
                path = self.path.partition("?")[0]
                site.static_hits[path] += 1
                if site.static_delay:
                    time.sleep(site.static_delay)
                found = site.static_extra.get(path) or static_file(path)
                if found is None:
                    self.send(404, "text/plain", b"not found")
                else:  # web fonts from another origin need CORS
                    self.send(200, *found, {"Access-Control-Allow-Origin": "*", "Cache-Control": "max-age=3600"})

        class News(_Handler):
            def do_GET(self) -> None:
                path = self.path.partition("?")[0]
                site.news_hits[path] += 1
                number = path.removeprefix("/article/").removesuffix(".html")
                if path in site.extra_pages:
                    self.send(200, "text/html; charset=utf-8", site.extra_pages[path].encode())
                elif path.startswith("/article/") and number.isdigit():
                    self.send(200, "text/html; charset=utf-8", article_page(site.static, int(number)).encode())
                else:
                    self.send(404, "text/plain", b"")

        self._static = _Server(("127.0.0.1", 0), Static)
        self._news = _Server(("127.0.0.1", 0), News)
        self.static = f"http://{static_host_name or '127.0.0.1'}:{self._static.server_address[1]}"
        self.url = f"http://127.0.0.1:{self._news.server_address[1]}"
        self._threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (self._static, self._news)]
        for thread in self._threads:
            thread.start()

    def article(self, n: int) -> str:
        return f"{self.url}/article/{n}.html"

    def stop(self) -> None:
        for server in (self._static, self._news):
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(5)


class HangingServer:
    """Accepts connections on 127.0.0.1 and never answers (until stopped): a requisite host that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.held.append(conn)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        for conn in self.held:
            conn.close()
        self.sock.close()
