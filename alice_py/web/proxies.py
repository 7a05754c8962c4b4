"""Who the client is behind reverse proxies: its address and whether it came over https.

Only proxies listed in ``[server] trusted_proxies`` are believed, and only about the hop
they saw: the client address is the rightmost ``X-Forwarded-For`` entry that is not a
trusted proxy (entries to its left were written by the client and can be anything), and
the scheme is the rightmost ``X-Forwarded-Proto`` value (the one the nearest proxy set).
A request whose peer is not a trusted proxy is taken at its word: its peer address, and
https only when it reached us over TLS.

Used for failed-login throttling and the admin cookie's ``Secure`` flag; any per-client
identity (a rate limit's) should come from ``client_address`` too.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """``[server] trusted_proxies`` (checked by ``config.validate``), asked about one request at a time."""

    def __init__(self, entries: Sequence[str]) -> None:
        self._networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(entry.strip(), strict=False) for entry in entries
        )

    def trusts(self, text: str | None) -> bool:
        if not self._networks or text is None:
            return False
        address = _address(text)
        return address is not None and any(address in network for network in self._networks)

    def client_address(self, request: web.Request) -> str:
        """The client's address as the nearest untrusted hop saw it ("unknown" if there is none)."""
        peer = request.remote
        if not self._networks or not self.trusts(peer):
            return _normal(peer) if peer else "unknown"
        listed = ",".join(request.headers.getall("X-Forwarded-For", ()))
        hops = [hop.strip() for hop in listed.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return _normal(hop)
        # Every hop is one of ours (or none was named): the farthest one is the client.
        return _normal(hops[0]) if hops else _normal(peer or "unknown")

    def is_https(self, request: web.Request) -> bool:
        if request.secure:
            return True
        if not self.trusts(request.remote):
            return False
        values = ",".join(request.headers.getall("X-Forwarded-Proto", ())).split(",")
        return values[-1].strip().lower() == "https"


# Parsed once per address: the same few peers ask again and again, and ipaddress's parse was
# ~4 µs of every request (the rate limit's and the usage book's client identity).
@functools.lru_cache(maxsize=4096)
def _normal(text: str) -> str:
    address = _address(text)
    return str(address) if address is not None else text[:64]
