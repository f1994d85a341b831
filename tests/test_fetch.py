"""The HTTP exchange as libcurl makes it: what the WARC says was sent is what the server received,
https is checked, and the environment cannot route capture around the address guard."""

from __future__ import annotations

import contextlib
import io
import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import trustme

from archiver.config import Config
from archiver.errors import ConfigError
from archiver.fetch.client import Exchange, Fetcher
from archiver.fetch.netguard import AddressPolicy

from .conftest import Closing
from .support.newsite import NewsSite

BODY = b"<html><head><title>raw</title></head><body>ok</body></html>"
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Folded: one\r\n two\r\n"
            b"Content-Length: %d\r\n\r\n" % len(BODY)) + BODY


class RawServer:
    """Answers each connection's first request with RESPONSE, keeping the request's bytes as
    received; optionally over TLS. Serves at most `limit` connections, then stops."""

    def __init__(self, tls: ssl.SSLContext | None = None, limit: int = 4, response: bytes = RESPONSE,
                 host: str = "127.0.0.1") -> None:
        self.response = response
        self.listener = socket.create_server((host, 0), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.listener.settimeout(10)
        self.tls = tls
        self.received: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, args=(limit,), daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    def _serve(self, limit: int) -> None:
        for _ in range(limit):
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # closed, or nobody came
            try:
                if self.tls is not None:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                if not data:
                    continue  # the client hung up without a request (TLS 1.3: after refusing the certificate)
                self.received.append(data)
                conn.sendall(self.response)
            except OSError:
                pass  # a client that refused the certificate hangs up during the handshake
            finally:
                conn.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() waiting in _serve
        self.listener.close()
        self.thread.join(5)


@pytest.fixture
def raw() -> Iterator[RawServer]:
    server = RawServer()
    yield server
    server.stop()


def fetcher(cfg: Config) -> Fetcher:
    return Fetcher(cfg, lambda: datetime.now(UTC))


def test_the_request_recorded_is_the_request_sent(cfg: Config, raw: RawServer, closing: Closing) -> None:
    exchange = closing(fetcher(cfg).get(f"http://127.0.0.1:{raw.port}/path/文章 1.html?q=新闻#top",
                                        referer="http://a.example/"))
    assert raw.received == [exchange.request_head]
    assert exchange.request_head.startswith(b"GET /path/%E6%96%87%E7%AB%A0%201.html?q=%E6%96%B0%E9%97%BB HTTP/1.1\r\n")
    assert b"\r\nReferer: http://a.example/\r\n" in exchange.request_head
    assert exchange.status == 200 and exchange.reason == "OK" and exchange.protocol == "HTTP/1.1"
    assert exchange.headers == [("Content-Type", "text/html"), ("X-Folded", "one two"),
                                ("Content-Length", str(len(BODY)))]
    assert exchange.read_body(1000) == BODY and exchange.peer_address == "127.0.0.1"


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(authority: trustme.CA) -> Iterator[RawServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    server = RawServer(tls=context)
    yield server
    server.stop()


def test_an_https_server_whose_authority_is_not_trusted_is_refused(cfg: Config, tls_server: RawServer,
                                                                   closing: Closing) -> None:
    chain = closing(fetcher(cfg).follow(f"https://127.0.0.1:{tls_server.port}/a.html"))
    assert chain.error == "tls_error" and not chain.exchanges
    assert tls_server.received == []  # no request went out over the unchecked connection


def test_ca_bundle_names_the_authorities_trusted(cfg: Config, tls_server: RawServer, authority: trustme.CA,
                                                 closing: Closing) -> None:
    authority.cert_pem.write_to_path(str(cfg.root / "ca.pem"))
    exchange = closing(fetcher(cfg.replace(ca_bundle="ca.pem")).get(f"https://127.0.0.1:{tls_server.port}/a.html"))
    assert exchange.status == 200 and exchange.read_body(1000) == BODY
    assert tls_server.received == [exchange.request_head]
    with pytest.raises(ConfigError, match="ca_bundle"):
        cfg.replace(ca_bundle="missing.pem")


def test_proxies_from_the_environment_are_not_used(cfg: Config, raw: RawServer, site: NewsSite,
                                                   monkeypatch: pytest.MonkeyPatch, closing: Closing) -> None:
    # a proxy would make the connection for archiver, out of the address guard's sight
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{raw.port}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    before = len(site.hits)
    exchange = closing(fetcher(cfg).get(site.url + "/plain.html"))
    assert exchange.status == 200 and site.hits[before:] == ["/plain.html"]
    assert raw.received == []


def test_a_chunked_body_over_max_size_is_cut_at_max_size(cfg: Config, site: NewsSite, closing: Closing) -> None:
    whole = closing(fetcher(cfg).get(site.url + "/chunked.html"))
    assert whole.truncated == "" and whole.body_length > 300
    exchange = closing(fetcher(cfg.replace(max_size=300)).get(site.url + "/chunked.html"))
    assert exchange.truncated == "length" and exchange.body_length == 300
    assert exchange.read_body(10_000) == whole.read_body(300)
    assert ("X-Archive-Orig-Transfer-Encoding", "chunked") in exchange.headers
    assert ("Content-Length", "300") in exchange.headers


def test_a_request_may_keep_less_than_max_size_and_the_fetcher_stays_as_set(cfg: Config, site: NewsSite,
                                                                            closing: Closing) -> None:
    # a page's requisites share its byte budget: each is fetched with what remains of it
    one = fetcher(cfg)
    chain = one.follow(site.url + "/chunked.html", max_size=120)
    try:
        assert chain.final is not None and chain.final.truncated == "length" and chain.final.body_length == 120
    finally:
        chain.close()
    whole = closing(one.get(site.url + "/chunked.html"))  # the next request on the same handle: the setting
    assert whole.truncated == "" and whole.body_length > 300


def test_connections_are_kept_alive(cfg: Config, site: NewsSite, closing: Closing) -> None:
    one, before = fetcher(cfg), len(site.httpd.clients)  # type: ignore[attr-defined]
    assert [closing(one.get(site.url + "/plain.html")).status for _ in range(3)] == [200, 200, 200]
    assert len(set(site.httpd.clients[before:])) == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", ["/plain.html", "/chunked.html"])
def test_the_block_digest_taken_while_reading_is_the_records(cfg: Config, site: NewsSite, path: str,
                                                             closing: Closing) -> None:
    import base64
    import hashlib

    from archiver.warc.write import response_spec

    exchange = closing(fetcher(cfg).get(site.url + path))
    spec = response_spec(exchange, "<urn:uuid:1>", "2024-01-01T00:00:00Z")
    block = hashlib.sha1(spec.http_head + exchange.read_body(1 << 20)).digest()
    if path == "/chunked.html":  # its stored headers are known only at the end: hashed when written
        assert exchange.block_digest == ""
    else:
        assert exchange.block_digest == "sha1:" + base64.b32encode(block).decode()


@pytest.mark.parametrize(("response", "reason"), [
    (b"", "connection_error"),  # hung up without a word
    (b"hello, this is not HTTP\r\n\r\n", "connection_error"),  # HTTP/0.9 or junk: no status line
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", "connection_error"),  # headers, then nothing
])
def test_answers_that_are_not_a_response_are_connection_errors(cfg: Config, response: bytes, reason: str,
                                                               closing: Closing) -> None:
    server = RawServer(response=response, limit=8)
    try:
        chain = closing(fetcher(cfg.replace(retries=0)).follow(f"http://127.0.0.1:{server.port}/x"))
    finally:
        server.stop()
    assert chain.error == reason and not chain.exchanges, chain.detail


def answered(cfg: Config, response: bytes) -> Exchange:
    """What the fetcher keeps of a server that answers `response`."""
    server = RawServer(response=response)
    try:
        return fetcher(cfg).get(f"http://127.0.0.1:{server.port}/x")
    finally:
        server.stop()


def test_an_interim_100_response_is_not_the_one_kept(cfg: Config, closing: Closing) -> None:
    exchange = closing(answered(cfg, b"HTTP/1.1 100 Continue\r\n\r\n" + RESPONSE))
    assert exchange.status == 200 and exchange.read_body(1000) == BODY
    assert exchange.headers[0] == ("Content-Type", "text/html")


def test_an_http_1_0_answer_without_length_is_read_to_the_close(cfg: Config, closing: Closing) -> None:
    exchange = closing(answered(cfg, b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n" + BODY))
    assert exchange.protocol == "HTTP/1.0" and exchange.truncated == ""
    assert exchange.read_body(1000) == BODY and exchange.block_digest


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 on this machine")
@pytest.mark.parametrize("name", ["[::1]", "v6.test"])
def test_ipv6_hosts_are_pinned_and_recorded_as_sent(cfg: Config, name: str, closing: Closing) -> None:
    try:
        server = RawServer(host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    policy = AddressPolicy(allow_private=True, resolver=lambda host, port: ["::1"])
    port = server.port
    try:
        exchange = closing(Fetcher(cfg, lambda: datetime.now(UTC), policy).get(f"http://{name}:{port}/x"))
    finally:
        server.stop()
    assert exchange.status == 200 and exchange.peer_address == "::1"
    assert server.received == [exchange.request_head]
    assert f"\r\nHost: {name}:{port}\r\n".encode() in exchange.request_head


def test_https_to_a_name_is_checked_against_the_name_while_connecting_to_the_pinned_address(
        cfg: Config, authority: trustme.CA, closing: Closing) -> None:
    # archiver resolves news.test itself and pins the address; libcurl must still send the name
    # (SNI) and check the certificate against it, not against the address
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("news.test").configure_cert(context)
    server = RawServer(tls=context)
    authority.cert_pem.write_to_path(str(cfg.root / "ca.pem"))
    port = server.port
    trusting = cfg.replace(ca_bundle="ca.pem")
    policy = AddressPolicy(allow_private=True, resolver=lambda host, p: ["127.0.0.1"])
    try:
        exchange = closing(Fetcher(trusting, lambda: datetime.now(UTC), policy).get(f"https://news.test:{port}/a"))
        wrong_name = closing(Fetcher(trusting, lambda: datetime.now(UTC), policy).follow(f"https://127.0.0.1:{port}/a"))
    finally:
        server.stop()
    assert exchange.status == 200 and exchange.peer_address == "127.0.0.1"
    assert f"\r\nHost: news.test:{port}\r\n".encode() in exchange.request_head
    assert wrong_name.error == "tls_error"  # the certificate names news.test, not the address


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_an_exception_inside_a_libcurl_callback_is_raised_and_the_handle_starts_clean(
        cfg: Config, site: NewsSite, monkeypatch: pytest.MonkeyPatch, error: type[BaseException],
        closing: Closing) -> None:
    # Ctrl-C can arrive while libcurl runs archiver's write callback (feeds are fetched in the main
    # thread); anything else raised there, pycurl would print and report as a write error (a cut body)
    import archiver.fetch.client as fetch_mod

    class Interrupted(io.BytesIO):
        def write(self, data: bytes) -> int:  # type: ignore[override]
            raise error

    one = fetcher(cfg)
    real_spool = fetch_mod._spool
    monkeypatch.setattr(fetch_mod, "_spool", Interrupted)
    with pytest.raises(error):
        one.get(site.url + "/plain.html")
    monkeypatch.setattr(fetch_mod, "_spool", real_spool)
    exchange = closing(one.get(site.url + "/plain.html"))  # the same handle, nothing left of the interrupted request
    assert exchange.status == 200 and exchange.truncated == "" and exchange.read_body(10_000).startswith(b"<")


def test_ctrl_c_ends_a_request_made_in_the_main_thread_while_the_server_is_silent(
        cfg: Config, site: NewsSite) -> None:
    import os
    import signal
    import time

    assert threading.current_thread() is threading.main_thread()
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    began = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            fetcher(cfg.replace(timeout=20, read_timeout=20)).get(site.url + "/silent.html?ctrl-c")
    finally:
        timer.cancel()
    assert time.monotonic() - began < 2.5  # the server says nothing for 3 s, the deadline is 20 s
