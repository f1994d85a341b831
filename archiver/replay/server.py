"""archiver's replay server: pywb's replay app, served so that keep-alive requests are answered at once.

`archiver replay` runs this module as a program, in a process of its own:

    python -m archiver.replay.server --bind 127.0.0.1 --port 8080 --directory ROOT
    python -m archiver.replay.server --fd N --directory ROOT   (a listening socket handed down)

It is the only module of archiver that imports pywb, and it must not be imported: pywb monkey-patches
the whole process with gevent (`main` does it first, as pywb's own `wayback` does).

It serves what `wayback` serves, built the same way: pywb's FrontEndApp over the root's config.yaml,
templates/, static/ and collections/, on gevent's WSGI server. Two things differ:

- Every accepted connection gets TCP_NODELAY. gevent's server writes a response in several sends
  (the headers, each body chunk, then the 5-byte end of the chunked body). With Nagle's algorithm on,
  that last small send waits until the client acknowledges the data before it, and a client waiting
  for the end of the response delays its ACK by 40 ms: every request after the first on a keep-alive
  connection (which is what browsers use) waited for that ACK (bench/README.md, "Replay").
- The replay reads each record from pywb's warcserver app in this process, where pywb's RewriterApp
  sends the request over HTTP to its own warcserver on localhost (a name lookup, a new connection,
  the record chunk-encoded and parsed back, for every request). Same request, same warcserver, same
  bytes; this halves the time of a page. It is done only for the pywb it was written against
  (`IN_PROCESS_PYWB`); with any other pywb the records travel over HTTP as pywb does it.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
import sys
from collections.abc import Callable, Iterable, Iterator
from importlib.metadata import version
from io import BytesIO
from typing import Any
from urllib.parse import unquote, urlsplit

IN_PROCESS_PYWB = "2.10.0"  # the pywb whose RewriterApp._do_req the in-process `_do_req` below copies

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def main(argv: list[str] | None = None) -> int:
    from gevent import monkey

    monkey.patch_all()  # before pywb is imported, as `wayback` does; pywb expects gevent's sockets and threads
    args = _parser().parse_args(argv)
    logging.basicConfig(format="%(asctime)s: [%(levelname)s]: %(message)s", level=logging.INFO)  # as wayback
    os.chdir(args.directory)  # pywb reads ./config.yaml, ./templates, ./static and ./collections
    app = _make_app()
    listener: Any = (args.bind, args.port) if args.fd is None else socket.socket(fileno=args.fd)
    server = _make_server(app, listener)
    logging.info("archiver replay server (pywb %s) on %s", version("pywb"), server.address)
    try:
        server.serve_forever()
    except KeyboardInterrupt:  # Ctrl-C in the terminal reaches this process too
        pass
    finally:
        server.stop(timeout=1)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m archiver.replay.server",
                                     description="pywb's replay app on a keep-alive friendly server")
    parser.add_argument("-b", "--bind", default="127.0.0.1", help="address to listen on")
    parser.add_argument("-p", "--port", type=int, default=8080, help="port to listen on")
    parser.add_argument("--fd", type=int, help="serve on this listening socket (inherited) instead of --bind/--port")
    parser.add_argument("-d", "--directory", default=".", help="archive root (pywb working directory)")
    return parser


def _make_app() -> Any:
    """pywb's FrontEndApp as `wayback` makes it, reading records in-process when pywb is the known one."""
    from pywb.apps.frontendapp import FrontEndApp
    from pywb.apps.rewriterapp import RewriterApp

    custom_config = {"enable_auto_fetch": False}  # what `wayback` passes without options
    if version("pywb") != IN_PROCESS_PYWB:
        logging.warning("pywb %s is not %s: records are read over HTTP, as pywb does", version("pywb"),
                        IN_PROCESS_PYWB)
        return FrontEndApp(custom_config=custom_config)

    class InProcessRewriterApp(RewriterApp):
        """pywb's RewriterApp, handing its request for a record to the warcserver app in this process."""

        warcserver_app: WSGIApp | None = None

        def _do_req(self, inputreq: Any, wb_url: Any, kwargs: dict[str, Any], skip_record: bool) -> Any:
            if self.warcserver_app is None or kwargs.get("type") != "replay":  # recording: pywb's own way
                return super()._do_req(inputreq, wb_url, kwargs, skip_record)
            # the request pywb 2.10.0's RewriterApp._do_req POSTs with requests, built the same way
            req_data = inputreq.reconstruct_request(wb_url.url)
            headers = {"Content-Length": str(len(req_data)), "Content-Type": "application/request"}
            headers.update(inputreq.warcserver_headers)
            if skip_record:
                headers["Recorder-Skip"] = "1"
            closest = "now" if wb_url.is_latest_replay() else wb_url.timestamp
            params = {"url": wb_url.url, "closest": closest, "matchType": "exact"}
            if wb_url.mod == "vi_":
                params["content_type"] = self.VIDEO_INFO_CONTENT_TYPE
            upstream_url = self.get_upstream_url(wb_url, kwargs, params)
            return call_wsgi(self.warcserver_app, "POST", upstream_url, req_data, headers)

    class ArchiverFrontEndApp(FrontEndApp):
        REWRITER_APP_CLS = InProcessRewriterApp  # pywb's hook for its RewriterApp

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.rewriterapp.warcserver_app = self.warcserver

    return ArchiverFrontEndApp(custom_config=custom_config)


def _make_server(app: Any, listener: Any) -> Any:
    """gevent's WSGI server as `wayback` configures it, with TCP_NODELAY on every accepted connection."""
    from gevent.pywsgi import WSGIServer
    from pywb.utils.geventserver import RequestURIWSGIHandler

    class NoDelayWSGIServer(WSGIServer):
        def handle(self, sock: socket.socket, address: Any) -> None:
            set_nodelay(sock)
            super().handle(sock, address)

    server = NoDelayWSGIServer(listener, app, handler_class=RequestURIWSGIHandler)
    server.init_socket()
    return server


def set_nodelay(sock: socket.socket) -> None:
    """Send each write at once: no waiting for the peer's (delayed) ACK of the previous one."""
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):  # the client has gone already; the handler will find out
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


# ---- calling a WSGI app in-process, answered as requests answers pywb ----


class Body:
    """A WSGI response body as the file-like `raw` of a streamed requests.Response, which pywb reads."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self._iter: Iterator[bytes] = iter(chunks)
        self._buffer = bytearray()
        self.closed = False

    def read(self, size: int | None = -1) -> bytes:
        """Up to `size` bytes (all that is left when `size` is None or negative); b"" at the end."""
        if size is None or size < 0:
            data = bytes(self._buffer) + b"".join(self._iter)
            self._buffer.clear()
            return data
        while len(self._buffer) < size:
            chunk = next(self._iter, None)
            if chunk is None:
                break
            if not self._buffer and len(chunk) == size:
                return chunk
            self._buffer += chunk
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()  # PEP 3333: the server calls close(); pywb's record streams close their WARC file


class UpstreamResponse:
    """What pywb uses of the requests.Response its RewriterApp gets: status_code, reason, headers, raw."""

    def __init__(self, status: str, headers: list[tuple[str, str]], body: Iterable[bytes]) -> None:
        from requests.structures import CaseInsensitiveDict

        code, _, self.reason = status.partition(" ")
        self.status_code = int(code)
        self.headers: CaseInsensitiveDict[str] = CaseInsensitiveDict()
        for name, value in headers:  # repeated fields joined as urllib3 joins them
            self.headers[name] = f"{self.headers[name]}, {value}" if name in self.headers else value
        self.raw = Body(body)


def call_wsgi(app: WSGIApp, method: str, url: str, body: bytes, headers: dict[str, str]) -> UpstreamResponse:
    """Call `app` with the environ gevent's server would give it for this request, without a socket."""
    parts = urlsplit(url)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote(parts.path or "/", "latin-1"),
        "QUERY_STRING": parts.query,
        "SERVER_NAME": parts.hostname or "localhost",
        "SERVER_PORT": str(parts.port or 80),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": parts.netloc,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": parts.scheme or "http",
        "wsgi.input": BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = value
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started[:] = [(status, response_headers)]

    result = app(environ, start_response)
    chunks = iter(result)
    first = b""
    if not started:  # an app may call start_response on its first chunk only
        first = next(chunks, b"")
    if not started:
        _close(result)
        raise RuntimeError(f"WSGI app did not start a response for {url}")
    status, response_headers = started[0]
    return UpstreamResponse(status, response_headers, _Chained(first, chunks, result))


class _Chained:
    """`first` then the rest of `chunks`; close() closes the app's result."""

    def __init__(self, first: bytes, chunks: Iterator[bytes], result: Iterable[bytes]) -> None:
        self._first, self._chunks, self._result = first, chunks, result

    def __iter__(self) -> Iterator[bytes]:
        if self._first:
            yield self._first
        yield from self._chunks

    def close(self) -> None:
        _close(self._result)


def _close(result: object) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()


if __name__ == "__main__":
    sys.exit(main())
