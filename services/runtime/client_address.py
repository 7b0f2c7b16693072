"""Which network address a gRPC call really comes from, for per-address limits.

A service behind the BFF sees the BFF as its peer. The BFF passes the end user's address
in the metadata entry `x-forwarded-for`, and a service believes that entry only from
peers it trusts (as uvicorn does with `--forwarded-allow-ips`); from anyone else, the
peer's own address counts. Addresses come out normalised: IPv4-mapped IPv6 addresses as
IPv4, and other IPv6 addresses as their /64 network, the block one subscriber is given
(so walking through one's own /64 does not make one a new client).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from urllib.parse import unquote

__all__ = ["FORWARDED_FOR", "ClientAddresses", "parse_trusted"]

FORWARDED_FOR = "x-forwarded-for"
"""The metadata key, lower-case as gRPC requires."""

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_IPV6_GROUP = 64
# A value that is no address is kept as text (bounded): a proxy's "unknown", say.
_TEXT_MAX = 64


def parse_trusted(value: str) -> tuple[_Network, ...] | None:
    """Comma-separated addresses and networks (CIDR); `*` trusts every peer (None).

    Raises ValueError naming the entry that is neither.
    """
    entries = [entry.strip() for entry in value.split(",") if entry.strip()]
    if "*" in entries:
        return None
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network") from None
    return tuple(networks)


def _address(text: str) -> _Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6] or [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _normalised(text: str) -> str:
    address = _address(text)
    if address is None:
        return "".join(c for c in text.strip() if c.isprintable())[:_TEXT_MAX] or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, _IPV6_GROUP), strict=False))
    return str(address)


def _peer_host(peer: str) -> str:
    """The host part of a gRPC peer (`ipv4:10.0.0.1:5000`, `ipv6:[::1]:5000`, `unix:…`)."""
    scheme, _, rest = unquote(peer).partition(":")
    if scheme in ("ipv4", "ipv6"):
        if rest.startswith("["):
            return rest[1 : rest.find("]")]
        return rest.rsplit(":", 1)[0]
    return peer


class ClientAddresses:
    """Finds a call's client address, believing `x-forwarded-for` only from `trusted`."""

    def __init__(self, trusted: str) -> None:
        self._trusted = parse_trusted(trusted)

    def _is_trusted(self, address: _Address | None) -> bool:
        if self._trusted is None:
            return True
        return address is not None and any(address in network for network in self._trusted)

    def of(self, peer: str, metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
        """The normalised client address of a call from `peer` with `metadata`."""
        host = _peer_host(peer)
        if not self._is_trusted(_address(host)):
            return _normalised(host)
        forwarded = _forwarded(metadata or ())
        if not forwarded:
            return _normalised(host)
        # Rightmost first: each trusted proxy appended the address it saw, so the first
        # untrusted entry from the right is the client; anything left of it is hearsay.
        for entry in reversed(forwarded):
            if not self._is_trusted(_address(entry)):
                return _normalised(entry)
        return _normalised(forwarded[0])


def _forwarded(metadata: Iterable[tuple[str, str | bytes]]) -> Sequence[str]:
    entries: list[str] = []
    for key, value in metadata:
        if key.lower() == FORWARDED_FOR:
            text = value.decode("latin-1") if isinstance(value, bytes) else value
            entries.extend(part.strip() for part in text.split(",") if part.strip())
    return entries
