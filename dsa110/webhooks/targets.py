"""Where a webhook may point: URL rules and the server-side request forgery guard.

A webhook makes this server send requests to an address someone typed, so by default it
only reaches the public internet: an address that resolves to a loopback, private,
link-local (including the cloud metadata address 169.254.169.254), multicast, reserved
or unspecified address is refused, at creation for literal addresses and at every
delivery after resolving the name. ``DSA110_WEBHOOK_ALLOW_HOSTS`` lists host names and
networks (``chat.observatory.lan``, ``10.20.0.0/16``) that may be internal, for a chat
server or broker on the observatory network. Deliveries connect to the address that was
checked (the name is kept for ``Host`` and TLS SNI), so a name that re-resolves
elsewhere between the check and the connection (DNS rebinding) cannot slip through.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from dsa110.errors import PublicError

MAX_URL_CHARS: Final = 2048
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class BadWebhookUrl(PublicError):
    code = "BAD_URL"


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str
    port: int


def parse_target(url: str) -> Target:
    """The URL's parts if it is a plain http(s) URL to a host; ``BadWebhookUrl`` otherwise."""
    if not isinstance(url, str) or not 0 < len(url) <= MAX_URL_CHARS:
        raise BadWebhookUrl(f"the URL must be 1 to {MAX_URL_CHARS} characters")
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
        raise BadWebhookUrl("the URL must not contain spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise BadWebhookUrl("the URL must start with http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise BadWebhookUrl("the URL must not carry credentials (user:password@)")
    if parts.fragment:
        raise BadWebhookUrl("the URL must not have a #fragment")
    host = (parts.hostname or "").lower()
    if not host:
        raise BadWebhookUrl("the URL must name a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise BadWebhookUrl("the URL's port is not a number in 1-65535") from None
    return Target(url, parts.scheme, host, port)


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def is_public(address: Address) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


class Allowlist:
    """Host names and networks that may be internal (``DSA110_WEBHOOK_ALLOW_HOSTS``)."""

    def __init__(self, entries: Sequence[str]) -> None:
        self.names: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in entries:
            text = entry.strip().lower()
            if not text:
                continue
            try:
                self.networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                self.names.add(text)

    def permits(self, host: str, address: Address) -> bool:
        if is_public(address) or host in self.names:
            return True
        return any(address in network for network in self.networks)


def check_literal(target: Target, allow: Allowlist) -> None:
    """At creation: a literal address must be allowed (names are checked at each delivery)."""
    address = _literal(target.host)
    if address is not None and not allow.permits(target.host, address):
        raise BadWebhookUrl(
            f"{target.host} is an internal address; list it in DSA110_WEBHOOK_ALLOW_HOSTS to allow it"
        )
    local_name = target.host == "localhost" or target.host.endswith(".localhost")
    if address is None and local_name and target.host not in allow.names:
        raise BadWebhookUrl("localhost is internal; list it in DSA110_WEBHOOK_ALLOW_HOSTS to allow it")


async def resolve_allowed(target: Target, allow: Allowlist) -> Address:
    """The address to connect to: the first the name resolves to, if every one is allowed."""
    literal = _literal(target.host)
    if literal is not None:
        addresses: list[Address] = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                target.host, target.port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise BadWebhookUrl(f"{target.host} does not resolve: {exc.strerror or exc}") from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    refused = [a for a in addresses if not allow.permits(target.host, a)]
    if refused or not addresses:
        raise BadWebhookUrl(
            f"{target.host} resolves to an internal address ({refused[0] if refused else '?'})"
        )
    return addresses[0]
