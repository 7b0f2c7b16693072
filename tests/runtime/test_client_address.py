"""Which address a call comes from: the peer, or what a trusted proxy reports."""

from __future__ import annotations

import re

import pytest

from services.runtime.client_address import FORWARDED_FOR, ClientAddresses, parse_trusted

BFF = "ipv4:127.0.0.1:50123"


def _of(addresses: ClientAddresses, peer: str, forwarded: str | None = None) -> str:
    return addresses.of(peer, None if forwarded is None else ((FORWARDED_FOR, forwarded),))


def test_a_trusted_peer_names_the_client() -> None:
    addresses = ClientAddresses("127.0.0.1")
    assert _of(addresses, BFF, "203.0.113.7") == "203.0.113.7"
    assert _of(addresses, BFF) == "127.0.0.1"  # nothing forwarded: the peer itself


def test_anyone_else_is_their_own_client() -> None:
    addresses = ClientAddresses("10.0.0.0/8")
    assert _of(addresses, "ipv4:192.0.2.5:4000", "203.0.113.7") == "192.0.2.5"
    assert _of(addresses, "ipv4:10.1.2.3:4000", "203.0.113.7") == "203.0.113.7"
    assert _of(ClientAddresses(""), BFF, "203.0.113.7") == "127.0.0.1"
    assert _of(ClientAddresses("*"), "ipv4:192.0.2.5:4000", "203.0.113.7") == "203.0.113.7"


def test_the_first_untrusted_entry_from_the_right_is_the_client() -> None:
    addresses = ClientAddresses("127.0.0.1, 10.0.0.0/8")
    # The client forged the first entry; our own proxies appended the rest.
    forwarded = "1.1.1.1, 203.0.113.7, 10.0.0.2"
    assert _of(addresses, BFF, forwarded) == "203.0.113.7"
    assert _of(addresses, BFF, "10.0.0.3, 10.0.0.2") == "10.0.0.3"
    two_entries = addresses.of(BFF, ((FORWARDED_FOR, "1.1.1.1"), ("X-Forwarded-For", "192.0.2.9")))
    assert two_entries == "192.0.2.9"


@pytest.mark.parametrize(
    ("reported", "client"),
    [
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2:bbbb::9", "2001:db8:1:2::/64"),  # the same /64: the same client
        ("[2001:db8:1:3::1]:443", "2001:db8:1:3::/64"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("192.0.2.1:5555", "192.0.2.1"),
        ("unknown", "unknown"),
        ("bad\x00value", "badvalue"),
    ],
)
def test_addresses_are_normalised(reported: str, client: str) -> None:
    assert _of(ClientAddresses("127.0.0.1"), BFF, reported) == client


def test_ipv6_peers_are_read_from_grpc_notation() -> None:
    addresses = ClientAddresses("::1")
    assert _of(addresses, "ipv6:%5B::1%5D:49866", "203.0.113.7") == "203.0.113.7"
    assert _of(addresses, "ipv6:[2001:db8::5]:49866", "203.0.113.7") == "2001:db8::/64"


def test_a_trusted_list_that_is_not_addresses_is_refused() -> None:
    with pytest.raises(ValueError, match=re.escape("'bff.internal' is not an IP address")):
        parse_trusted("127.0.0.1, bff.internal")
