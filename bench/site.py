"""A fast loopback news site for the capture benchmark, run as a process of its own.

A hand-rolled asyncio HTTP/1.1 server (uvloop when installed): keep-alive, pipelining-safe,
responses built from cached bytes, and a per-response latency done with call_later so that it
never blocks. It listens on several ports of 127.0.0.1, because archiver's politeness limits
are per host:port. Paths:

    /news/<i>.html   article i (20-80 KB Chinese HTML, lead image /img/<i>.jpg)
    /img/<i>.jpg     JPEG number i % 50 of the pool (50-200 KB)
    /tiny/<i>.html   a 2 KB article whose og:image is /timg/<i>.jpg (memory benchmark)
    /timg/<i>.jpg    a 3 KB JPEG
    /rnews/<i>.html  article i with the host's shared script and three body images (requisites benchmark)
    /rimg/<name>.jpg a body image: a 3 KB JPEG
    /static/site.css the host's shared stylesheet: its url()s name a web font and a background
    /static/font.woff, /static/bg.jpg, /static/app.js   what it and the pages share

Prints "READY <port>,<port>,..." on stdout when listening; stops on SIGTERM/SIGINT, after
--max-seconds at the latest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections import OrderedDict
from pathlib import Path
from typing import cast

from content import article_html, jpeg_pool, tiny_html, tiny_jpeg

# the web font of the shared stylesheet (the one the tests' fixture site uses)
FONT = Path(__file__).resolve().parents[1] / "tests/data/fonts/dejavu-serif-bold-latin.woff"

MAX_HEAD = 64 * 1024


class Site:
    def __init__(self, latency: float, prebuild: int = 0) -> None:
        self.latency = latency
        self.images = jpeg_pool()
        self.tiny_image = tiny_jpeg()
        # an LRU of built articles: the benchmark's articles are built before it starts, and a long
        # run (100k articles) never holds them all
        self._articles: OrderedDict[tuple[int, bool], bytes] = OrderedDict()
        self._keep = max(512, 2 * prebuild)
        for i in range(prebuild):
            self.article(i)
            self.article(i, requisites=True)
        self.responses = 0
        self.static = {
            b"/static/site.css": (b"text/css", b'@font-face { font-family: "Bench"; src: url(/static/font.woff) '
                                               b'format("woff"); }\nbody { font-family: "Bench", serif; '
                                               b'background: url(bg.jpg); }\n'),
            b"/static/font.woff": (b"font/woff", FONT.read_bytes()),
            b"/static/bg.jpg": (b"image/jpeg", self.tiny_image),
            b"/static/app.js": (b"application/javascript", b"document.documentElement.className = 'js';\n" * 40),
        }

    def article(self, i: int, requisites: bool = False) -> bytes:
        body = self._articles.get((i, requisites))
        if body is None:
            body = article_html(i, f"/img/{i}.jpg", requisites)
            self._articles[(i, requisites)] = body
            if len(self._articles) > self._keep:
                self._articles.popitem(last=False)
        return body

    def respond(self, path: bytes, close: bool) -> bytes:
        self.responses += 1
        status, ctype, body = b"200 OK", b"text/html; charset=utf-8", b""
        try:
            if path.startswith(b"/news/") and path.endswith(b".html"):
                body = self.article(int(path[6:-5]))
            elif path.startswith(b"/img/") and path.endswith(b".jpg"):
                body = self.images[int(path[5:-4]) % len(self.images)]
                ctype = b"image/jpeg"
            elif path.startswith(b"/tiny/") and path.endswith(b".html"):
                i = int(path[6:-5])
                body = tiny_html(i, f"/timg/{i}.jpg")
            elif path.startswith(b"/timg/") and path.endswith(b".jpg"):
                body, ctype = self.tiny_image, b"image/jpeg"
            elif path.startswith(b"/rnews/") and path.endswith(b".html"):
                body = self.article(int(path[7:-5]), requisites=True)
            elif path.startswith(b"/rimg/") and path.endswith(b".jpg"):
                body, ctype = self.tiny_image, b"image/jpeg"
            elif path in self.static:
                ctype, body = self.static[path]
            else:
                raise ValueError
        except ValueError:
            status, ctype, body = b"404 Not Found", b"text/html", b"<html><body>not found</body></html>"
        head = (
            b"HTTP/1.1 " + status + b"\r\nServer: bench-site\r\nContent-Type: " + ctype
            + b"\r\nContent-Length: " + str(len(body)).encode()
            + (b"\r\nConnection: close" if close else b"") + b"\r\n\r\n"
        )
        return head + body


class Conn(asyncio.Protocol):
    def __init__(self, site: Site) -> None:
        self.site = site
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) > MAX_HEAD and b"\r\n\r\n" not in self.buf:
            self._abort()
            return
        loop = asyncio.get_running_loop()
        delay = self.site.latency
        while not self.closing:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buf = self.buf[:end], self.buf[end + 4:]
            lines = head.split(b"\r\n")
            parts = lines[0].split(b" ")
            if len(parts) != 3:
                self._abort()
                return
            close = parts[2] == b"HTTP/1.0" or any(
                line.lower().startswith(b"connection:") and b"close" in line.lower() for line in lines[1:])
            payload = self.site.respond(parts[1].split(b"?", 1)[0], close)
            if close:
                self.closing = True
            if delay > 0:
                loop.call_later(delay, self._send, payload, close)
            else:
                self._send(payload, close)

    def _send(self, payload: bytes, close: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(payload)
        if close:
            transport.close()

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(ports: int, latency: float, max_seconds: float, prebuild: int) -> None:
    site = Site(latency, prebuild)
    loop = asyncio.get_running_loop()
    servers = []
    bound = []
    for _ in range(ports):
        server = await loop.create_server(lambda: Conn(site), "127.0.0.1", 0, backlog=1024)
        bound.append(server.sockets[0].getsockname()[1])
        servers.append(server)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("READY " + ",".join(str(p) for p in bound), flush=True)
    started = time.monotonic()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max_seconds)
    for server in servers:
        server.close()
    print(f"served {site.responses} responses in {time.monotonic() - started:.0f} s", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ports", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every response")
    parser.add_argument("--max-seconds", type=float, default=3600, help="stop by itself after this long")
    parser.add_argument("--prebuild", type=int, default=0, help="build articles 0..N-1 before listening")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.ports, args.latency, args.max_seconds, args.prebuild))
    else:
        uvloop.run(serve(args.ports, args.latency, args.max_seconds, args.prebuild))


if __name__ == "__main__":
    main()
