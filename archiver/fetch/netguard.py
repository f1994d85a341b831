"""Which addresses capture may connect to.

Untrusted seeds must not make archiver reach loopback, private or link-local services (cloud
metadata at 169.254.169.254). The fetcher checks every address a name resolves to before it
connects, and again the address of every socket it opens, so redirects, DNS answers and odd IP
spellings (2130706433, 0x7f.1) are all covered.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass

from archiver.errors import FetchError

Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError("dns_error", f"cannot resolve {host}: {exc}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_public(address: str) -> bool:
    """True for globally routable unicast addresses only."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d connects to a.b.c.d
            return is_public(str(ip.ipv4_mapped))
        embedded = ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and not is_public(str(embedded)):
            return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


@dataclass
class AddressPolicy:
    allow_private: bool = False
    resolver: Resolver = system_resolver

    def check(self, host: str, address: str) -> None:
        if not self.allow_private and not is_public(address):
            raise FetchError(
                "blocked_address",
                f"{host} resolves to {address}, a private/loopback/link-local address "
                "(use --allow-private to capture such hosts)",
            )

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses `host` resolves to, every one of them allowed; FetchError otherwise."""
        addresses = self.resolver(host, port)
        if not addresses:
            raise FetchError("dns_error", f"no address for {host}")
        for address in addresses:
            self.check(host, address)
        return addresses
