"""A small news site for tests, on 127.0.0.1 (port 0), with pages that exercise capture:
plain, gzip, chunked, GBK, redirects, 404, og:image only, relative images, missing images."""

from __future__ import annotations

import bz2
import email.utils
import gzip
import socket
import struct
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

JPEG = (Path(__file__).parents[2] / "archiver/demo-site/images/library.jpg").read_bytes()
JPEG2 = (Path(__file__).parents[2] / "archiver/demo-site/images/train.jpg").read_bytes()
SAME_BODY = (
    "<!DOCTYPE html><html><head><meta charset=utf-8><title>同一正文</title></head><body><p>"
    + "正文" * 2000
    + "</p></body></html>"
)


def article(title: str, body: str, image: str = "", meta: str = "", charset: str = "utf-8") -> str:
    img = f'<img src="{image}" alt="lead">' if image else ""
    return (
        f'<!DOCTYPE html><html><head><meta charset="{charset}"><title>{title}</title>{meta}'
        '<meta property="article:published_time" content="2023-10-06T02:11:00+02:00"></head>'
        f'<body><nav><a href="/">Home</a></nav><article><h1>{title}</h1>{img}<p>{body}</p></article></body></html>'
    )


PAGES: dict[str, tuple[int, dict[str, str], bytes]] = {
    "/plain.html": (200, {"Content-Type": "text/html; charset=utf-8"},
                    article("普通文章", "这是一篇普通的文章。", "/img/lead.jpg").encode()),
    "/gzip.html": (200, {"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "gzip"},
                   gzip.compress(article("压缩文章", "这篇文章用 gzip 传输。", "/img/lead.jpg").encode(), mtime=0)),
    "/gbk.html": (200, {"Content-Type": "text/html; charset=gb2312"},
                  article("朱镕基访问海港", "镕字只在 GBK 中。", "/img/lead.jpg", charset="gb2312").encode("gbk")),
    "/og-only.html": (200, {"Content-Type": "text/html; charset=utf-8"},
                      article("只有社交图片", "正文没有图片。", "",
                              '<meta property="og:image" content="/img/og.jpg">').encode()),
    "/section/relative.html": (200, {"Content-Type": "text/html; charset=utf-8"},
                               article("相对图片", "图片地址是相对的。", "../img/lead.jpg").encode()),
    "/missing-image.html": (200, {"Content-Type": "text/html; charset=utf-8"},
                            article("图片不见了", "图片返回 404。", "/img/nope.jpg").encode()),
    "/same-plain.html": (200, {"Content-Type": "text/html; charset=utf-8"}, SAME_BODY.encode()),
    "/redirected.html": (200, {"Content-Type": "text/html; charset=utf-8"},
                         article("跳转后的文章", "经过两次跳转。", "/img/lead.jpg").encode()),
    "/img/lead.jpg": (200, {"Content-Type": "image/jpeg"}, JPEG),
    "/img/og.jpg": (200, {"Content-Type": "image/jpeg"}, JPEG2),
    "/formula.html": (200, {"Content-Type": "text/html; charset=utf-8"},
                      article("=HYPERLINK(\"http://x\")", "公式。").encode()),
    # hostile pages (with /charset-bz2.html below): a codec of Python's that is no charset, and
    # markup nested 100,000 deep
    "/meta-rot13.html": (200, {"Content-Type": "text/html"},
                         b"<html><head><meta charset='rot13'><title>rot13</title></head><body><p>x</p></body></html>"),
    "/escapes.html": (200, {"Content-Type": "text/html; charset=utf-8"},  # a title that would retitle a terminal
                      article("标题\x1b]0;pwned\x07\x1b[2J\u009b31m", "终端转义。").encode()),
    "/angle.html": (200, {"Content-Type": "text/html; charset=utf-8"}, article("尖括号", "网址以 > 结尾。").encode()),
    "/long-og-image.html": (200, {"Content-Type": "text/html; charset=utf-8"},
                            article("图片地址太长", "正文。", "", '<meta property="og:image" content="/img/'
                                    + "x" * 3_000_000 + '.jpg">').encode()),
    "/spaced-image.html": (200, {"Content-Type": "text/html; charset=utf-8"},
                           article("图片地址有空格", "正文。", "/img/lead image\x0b.jpg").encode()),
    "/deep.html": (200, {"Content-Type": "text/html; charset=utf-8"},
                   b"<html><head><title>deep</title></head><body>" + b"<div>" * 100_000 + b"x"
                   + b"</div>" * 100_000 + b"</body></html>"),
}
REDIRECTS = {"/redirect": "/redirect2", "/redirect2": "/redirected.html", "/loop": "/loop"}
CHUNKED = {"/chunked.html": article("分块文章", "这篇文章分块传输。", "/img/lead.jpg").encode(),
           "/same-chunked.html": SAME_BODY.encode()}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "TestNews/1.0"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        self.server.hits.append(path)  # type: ignore[attr-defined]
        self.server.clients.append(self.client_address)  # type: ignore[attr-defined]
        tries = self.server.tries  # type: ignore[attr-defined]
        tries[self.path] = tries.get(self.path, 0) + 1
        if path in FAULTS:
            FAULTS[path](self, tries[self.path])
        elif path == "/feed.xml":  # an RSS feed whose items the test sets: server.feed_items
            items = self.server.feed_items  # type: ignore[attr-defined]
            _send(self, 200, rss(f"http://{self.headers['Host']}", items), Content_Type="application/rss+xml")
        elif path.startswith("/slow/"):  # an article or image behind 50 ms of latency
            time.sleep(0.05)
            if path.endswith(".jpg"):
                _send(self, 200, JPEG, Content_Type="image/jpeg")
            else:
                name = path.rsplit("/", 1)[-1]
                page = article(f"慢速文章 {name}", "延迟五十毫秒。" * 200, f"/slow/{name}.jpg")
                _send(self, 200, page.encode(), Content_Type="text/html; charset=utf-8")
        elif path == "/redirect-to":  # /redirect-to?<absolute URL>
            self.send_response(302)
            self.send_header("Location", query)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path in REDIRECTS:
            self.send_response(301 if path == "/redirect" else 302)
            self.send_header("Location", REDIRECTS[path])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path in CHUNKED:
            body = CHUNKED[path]
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 1000):
                piece = body[i:i + 1000]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/drip.html":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(40):  # bounded: 40 bytes over 4 s at most
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.1)
            self.close_connection = True
        elif path in PAGES:
            status, headers, body = PAGES[path]
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            body = b"<html><body><h1>Not found</h1></body></html>"
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)


def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, **headers: str) -> None:
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


OK_BODY = article("终于成功", "重试之后成功了。").encode()


def _flaky(handler: BaseHTTPRequestHandler, attempt: int) -> None:
    """503 twice, then the page."""
    if attempt <= 2:
        _send(handler, 503, b"busy", Content_Type="text/plain")
    else:
        _send(handler, 200, OK_BODY, Content_Type="text/html; charset=utf-8")


def _retry_after_seconds(handler: BaseHTTPRequestHandler, attempt: int) -> None:
    if attempt == 1:
        _send(handler, 429, b"slow down", Content_Type="text/plain", Retry_After="7")
    else:
        _send(handler, 200, OK_BODY, Content_Type="text/html; charset=utf-8")


def _retry_after_date(handler: BaseHTTPRequestHandler, attempt: int) -> None:
    if attempt == 1:
        when = email.utils.formatdate(time.time() + 3600, usegmt=True)  # an hour: more than the cap
        _send(handler, 503, b"maintenance", Content_Type="text/plain", Retry_After=when)
    else:
        _send(handler, 200, OK_BODY, Content_Type="text/html; charset=utf-8")


def _always_503(handler: BaseHTTPRequestHandler, attempt: int) -> None:
    _send(handler, 503, b"down", Content_Type="text/plain")


def _cut(handler: BaseHTTPRequestHandler, attempt: int) -> None:
    """Promises 1000 bytes, sends 100 and closes; the second try is whole."""
    if attempt == 1:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        handler.wfile.write(b"<html>" + b"x" * 94)
        handler.wfile.flush()
        handler.close_connection = True
    else:
        _send(handler, 200, OK_BODY, Content_Type="text/html; charset=utf-8")


def _always_cut(handler: BaseHTTPRequestHandler, attempt: int) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "text/html")
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    handler.wfile.write(b"<html>" + b"y" * 94)
    handler.wfile.flush()
    # reset rather than close: SO_LINGER 0 sends RST
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.close_connection = True


def _slow_headers(handler: BaseHTTPRequestHandler, attempt: int) -> None:
    """Drips the status line and headers, one byte every 0.1 s (bounded: 4 s at most)."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Padding: " + b"p" * 40
    for byte in head:
        try:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
        except OSError:
            return
        time.sleep(0.1)
    handler.close_connection = True


def make_bomb(megabytes: int = 300) -> bytes:
    """A gzip body that inflates to `megabytes` MB of HTML, made without holding it whole."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b" " * (1024 * 1024)
    parts = [packer.compress(b"<html><head><title>bomb</title></head><body>")]
    parts += [packer.compress(chunk) for _ in range(megabytes)]
    return b"".join(parts) + packer.flush()


BOMB: list[bytes] = []


def _bomb(handler: BaseHTTPRequestHandler, attempt: int) -> None:
    if not BOMB:
        BOMB.append(make_bomb())
    _send(handler, 200, BOMB[0], Content_Type="text/html", Content_Encoding="gzip")


def bz2_of_zeros(size: int = 2**30) -> bytes:
    """bz2 of `size` zero bytes (a multiple of 64 MiB): one stream of 64 MiB, repeated (bz2 decoders
    read concatenated streams as one), a few KB in all."""
    packer = bz2.BZ2Compressor(9)
    chunk = b"\0" * (1 << 20)
    stream = b"".join(packer.compress(chunk) for _ in range(64)) + packer.flush()
    return stream * (size >> 26)


def _charset_bz2(handler: BaseHTTPRequestHandler, attempt: int) -> None:
    """A byte codec named as the charset: a decoder that ran it would inflate 1 GiB."""
    if not BZ2_BOMB:
        BZ2_BOMB.append(bz2_of_zeros())
    _send(handler, 200, BZ2_BOMB[0], Content_Type="text/html; charset=bz2")


BZ2_BOMB: list[bytes] = []


def _silent(handler: BaseHTTPRequestHandler, attempt: int) -> None:
    """Accepts the request and says nothing for 3 s, then hangs up."""
    time.sleep(3)
    handler.close_connection = True


def _chain(handler: BaseHTTPRequestHandler, attempt: int) -> None:
    """/chain?n redirects to /chain?n+1, forever."""
    n = int(handler.path.partition("?")[2] or 0)
    _send(handler, 302, b"", Location=f"/chain?{n + 1}")


FAULTS = {
    "/silent.html": _silent,
    "/chain": _chain,
    "/bomb.html": _bomb,
    "/charset-bz2.html": _charset_bz2,
    "/flaky.html": _flaky,
    "/retry-after-seconds.html": _retry_after_seconds,
    "/retry-after-date.html": _retry_after_date,
    "/always-503.html": _always_503,
    "/cut.html": _cut,
    "/always-cut.html": _always_cut,
    "/slow-headers.html": _slow_headers,
}


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up (a killed capture, a deadline) are part of the tests


class NewsSite:
    def __init__(self) -> None:
        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.hits = []  # type: ignore[attr-defined]
        self.httpd.clients = []  # type: ignore[attr-defined]  # (address, port) of each request's connection
        self.httpd.tries = {}  # type: ignore[attr-defined]
        self.httpd.feed_items = []  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def hits(self) -> list[str]:
        return self.httpd.hits  # type: ignore[attr-defined,no-any-return]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def rss(base: str, items: list[tuple[str, str]]) -> bytes:
    """An RSS 2.0 feed of (path, title) items on `base`, each with an image enclosure."""
    body = "".join(
        f"<item><title>{title}</title><link>{base}{path}</link>"
        f"<pubDate>Fri, 06 Oct 2023 00:45:0{n} GMT</pubDate>"
        f'<enclosure url="{base}/img/og.jpg" type="image/jpeg" length="1"/>'
        f"<description><![CDATA[<p>{title}的摘要</p>]]></description></item>"
        for n, (path, title) in enumerate(items)
    )
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>测试新闻</title>'
            f"<link>{base}/</link>{body}</channel></rss>").encode()


def seed_document(url: str, title: str, epoch_ms: int, image: str = "", body: str = "<p>正文</p>") -> str:
    img = f'<img src="{image}">' if image else ""
    return f"<!--{epoch_ms}-->\n[{title}]({url})\n------\n\n<div>06/10/2023 - 02:11</div>{img}{body}\n"
