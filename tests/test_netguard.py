"""The address guard. No test here sends a packet outside 127.0.0.0/8: blocked addresses are
refused before any connect (and the conftest guard would fail the test if one were tried)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from archiver.config import Config
from archiver.errors import FetchError
from archiver.fetch.client import Fetcher
from archiver.fetch.netguard import AddressPolicy, is_public, system_resolver

from .conftest import Closing
from .support.newsite import NewsSite


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1",
    "::ffff:127.0.0.1", "::ffff:169.254.169.254", "2002:7f00:1::1", "64:ff9b::10.0.0.1", "fe80::1%eth0",
])
def test_non_global_addresses_are_not_public(address: str) -> None:
    assert not is_public(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_global_addresses_are_public(address: str) -> None:
    assert is_public(address)


@pytest.mark.parametrize("host", ["2130706433", "0x7f000001", "0x7f.1", "017700000001", "127.1", "[::1]"])
def test_odd_spellings_of_loopback_are_refused(host: str, site: NewsSite) -> None:
    port = site.url.rsplit(":", 1)[1]
    fetcher = Fetcher(Config(timeout=5), lambda: datetime.now(UTC))
    hits = len(site.hits)
    with pytest.raises(FetchError) as info:
        fetcher.get(f"http://{host}:{port}/plain.html")
    assert info.value.reason == "blocked_address"
    assert len(site.hits) == hits


def mapped_resolver(mapping: dict[str, str]):
    def resolve(host: str, port: int) -> list[str]:
        if host in mapping:
            return [mapping[host]]
        return system_resolver(host, port)
    return resolve


def test_a_redirect_to_a_name_that_resolves_privately_is_refused(site: NewsSite, closing: Closing) -> None:
    # the seed's own host is allowed (a stand-in for a public site); the redirect target is not
    policy = AddressPolicy(resolver=mapped_resolver({"metadata.test": "169.254.169.254"}))
    allow_site = AddressPolicy(allow_private=True, resolver=policy.resolver)

    class SitePolicy(AddressPolicy):
        def check(self, host: str, address: str) -> None:
            (allow_site if host == "127.0.0.1" else policy).check(host, address)

    fetcher = Fetcher(Config(timeout=5), lambda: datetime.now(UTC), SitePolicy(resolver=policy.resolver))
    chain = closing(fetcher.follow(site.url + "/redirect-to?http://metadata.test/latest/meta-data/"))
    assert chain.error == "blocked_address"
    assert [e.status for e in chain.exchanges] == [302]  # the hop that led there is kept


def test_dns_answers_are_checked_too(site: NewsSite) -> None:
    policy = AddressPolicy(resolver=mapped_resolver({"rebind.test": "10.0.0.7"}))
    fetcher = Fetcher(Config(timeout=5), lambda: datetime.now(UTC), policy)
    with pytest.raises(FetchError) as info:
        fetcher.get("http://rebind.test/")
    assert info.value.reason == "blocked_address" and "10.0.0.7" in info.value.detail


def test_allow_private_lets_loopback_through(site: NewsSite, closing: Closing) -> None:
    fetcher = Fetcher(Config(allow_private=True, timeout=5), lambda: datetime.now(UTC))
    assert closing(fetcher.get(site.url + "/plain.html")).status == 200


def test_only_http_and_https_are_followed(site: NewsSite, closing: Closing) -> None:
    fetcher = Fetcher(Config(allow_private=True, timeout=5), lambda: datetime.now(UTC))
    chain = closing(fetcher.follow(site.url + "/redirect-to?file:///etc/passwd"))
    assert chain.error == "unsupported_scheme"
