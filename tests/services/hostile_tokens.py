"""Page tokens no service issued, and the one answer every list RPC must give them.

Shared by the property tests of every service's list RPCs: random text and bytes,
JSON bodies with hostile values, and genuine tokens altered by a character, cut short,
stripped of their MAC or given another's. Hypothesis settings suit RPCs against one
real server per module: a modest number of examples, no deadline (the machine is
shared), and no health check that counts slow calls against the test.

`Listing` and the `assert_*` checks hold the tests of one service's listings: each
listing continues with its own token and refuses every other listing's, its own with
the key edited by hand, and any hostile token, always with INVALID_PAGE_TOKEN.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Awaitable, Sequence
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.services.rich_errors import rich_error

__all__ = [
    "FORGED_POSITIONS",
    "FUZZ",
    "FUZZ_FEW",
    "Listing",
    "assert_each_refuses_the_others",
    "assert_forged_positions_refused",
    "assert_refused",
    "assert_refuses_a_drawn_token",
    "hostile_tokens",
    "with_key",
    "with_tokens",
]

FUZZ = settings(
    max_examples=80,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
"""Settings of a property test that calls a real server per example."""

FUZZ_FEW = settings(FUZZ, max_examples=40)
"""`FUZZ` for a module whose listings took minutes to build: fewer examples, each still
drawn from every listing and every kind of hostile token."""

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def with_key(token: str, key: str) -> str:
    """`token` edited by hand: its key's parts replaced by the JSON text `key`, the rest
    (a MAC, if it has one) kept."""
    body, dot, mac = token.partition(".")
    raw = _unb64(body)
    start = raw.index(b"[") + 1
    end = raw.index(b"]", start)
    return _b64(raw[:start] + key.encode() + raw[end:]) + dot + mac


async def assert_refused(call: Awaitable[Any], token: str = "") -> None:
    """The call fails with INVALID_ARGUMENT, reason and violation INVALID_PAGE_TOKEN."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    refusal = rich_error(caught.value)
    assert (refusal.code, refusal.info.reason, refusal.violations) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_PAGE_TOKEN",
        {"page_token": "INVALID_PAGE_TOKEN"},
    ), token


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63 - 2, max_value=2**300),
    st.integers(min_value=-(2**300), max_value=-(2**63) + 1),
    st.floats(),
    st.text(max_size=40),
    st.text(min_size=300, max_size=2000),
    st.sampled_from(["\x00", "\ud800", "0x1.8p-1", "inf", "nan", "9" * 30, "'; DROP TABLE x;--"]),
)
_json_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_bodies = st.one_of(
    _json_values,
    st.lists(_scalars, min_size=1, max_size=5),
    st.fixed_dictionaries({"k": st.lists(_scalars, max_size=5), "f": st.text(max_size=16)}),
).map(lambda value: json.dumps(value).encode("utf-8", "surrogatepass"))


def _altered(token: str, index: int, replacement: str) -> str:
    position = index % len(token)
    return token[:position] + replacement + token[position + 1 :]


def _mutations(genuine: Sequence[str]) -> st.SearchStrategy[str]:
    """Genuine tokens, each changed somehow (never into itself)."""
    tokens = st.sampled_from(list(genuine))
    return st.one_of(
        st.tuples(tokens, st.integers(min_value=0), st.sampled_from(list(_ALPHABET + ".="))).map(
            lambda t: _altered(*t)
        ),
        st.tuples(tokens, st.integers(min_value=1)).map(lambda t: t[0][: t[1] % len(t[0])]),
        st.tuples(tokens, st.text(min_size=1, max_size=8)).map(lambda t: t[0] + t[1]),
        tokens.map(lambda token: token.partition(".")[0]),
        tokens.map(lambda token: token.swapcase()),
        tokens.map(lambda token: token + "=" * (-len(token) % 4 or 4)),
        st.tuples(tokens, tokens).map(
            lambda t: t[0].partition(".")[0] + "." + t[1].partition(".")[2]
        ),
    ).filter(lambda token: token not in genuine)


def hostile_tokens(genuine: Sequence[str]) -> st.SearchStrategy[str]:
    """Non-empty tokens that none of `genuine` is, nor any service issued."""
    macs = st.one_of(
        st.just(""),
        st.binary(min_size=16, max_size=16).map(lambda raw: "." + _b64(raw)),
        st.sampled_from(list(genuine)).map(lambda token: "." + token.partition(".")[2]),
    )
    return st.one_of(
        st.text(min_size=1, max_size=300),
        st.binary(min_size=1, max_size=300).map(_b64),
        st.tuples(_bodies, macs).map(lambda t: _b64(t[0]) + t[1]),
        _mutations(genuine),
    ).filter(bool)


Metadata = tuple[tuple[str, str], ...]

_NO_ID = "00000000-0000-7000-8000-000000000000"
FORGED_POSITIONS = [
    f'"{_NO_ID}"',
    '"' + "f" * 36 + '"',
    '""',
    "0",
    "-1",
    "9223372036854775808",
    "1" + "0" * 30,
    "2.5",
    "1e400",
    "null",
    f'0,"{_NO_ID}"',
    f'9223372036854775807,"{_NO_ID}"',
    f'-9223372036854775809,"{_NO_ID}"',
    f'"0","{_NO_ID}"',
    f'"{_NO_ID}",0',
]
"""Keys edited into a genuine token by hand (its MAC kept): ids that exist nowhere or
sort after everything, positions beyond int64, of the wrong type or the wrong length,
for listings keyed by an id and by (time, id) alike. Each was, in one service or
another, INTERNAL or read as another place before tokens carried a MAC."""


@dataclasses.dataclass(frozen=True)
class Listing:
    """One list RPC with fixed parameters and caller, and a genuine second-page token.

    `stub` is any service's stub: `method` names the RPC on it; `request` holds the
    listing's filters and gets the page token and size of each call.
    """

    name: str
    method: str
    request: Message
    metadata: Metadata
    token: str = ""

    async def page(self, stub: Any, token: str, page_size: int = 1) -> Any:
        request = type(self.request)()
        request.CopyFrom(self.request)
        request.page_token = token  # type: ignore[attr-defined]
        request.page_size = page_size  # type: ignore[attr-defined]
        return await getattr(stub, self.method)(request, metadata=self.metadata)


async def with_tokens(stub: Any, listings: Sequence[Listing]) -> list[Listing]:
    """`listings`, each with the token of its second page (each must have one)."""
    found = []
    for listing in listings:
        token = (await listing.page(stub, "")).next_page_token
        assert token, f"{listing.name} fits on one page: the test needs a second"
        found.append(dataclasses.replace(listing, token=token))
    assert len({listing.token for listing in found}) == len(found), "two listings, one token"
    return found


async def assert_each_refuses_the_others(stub: Any, listings: Sequence[Listing]) -> None:
    """Each listing goes on with its own token and refuses every other listing's: another
    RPC's, other filters', another caller's."""
    for listing in listings:
        assert await listing.page(stub, listing.token), listing.name
        for other in listings:
            if other.token != listing.token:
                await assert_refused(
                    listing.page(stub, other.token), f"{other.name} sent to {listing.name}"
                )


async def assert_forged_positions_refused(stub: Any, listings: Sequence[Listing]) -> None:
    """Every listing refuses its own token with each of `FORGED_POSITIONS` for a key."""
    for listing in listings:
        for position in FORGED_POSITIONS:
            forged = with_key(listing.token, position)
            await assert_refused(listing.page(stub, forged), f"{listing.name}: {position}")


async def assert_refuses_a_drawn_token(
    stub: Any, listings: Sequence[Listing], data: st.DataObject
) -> None:
    """One property example: a listing drawn, sent a token that is not its own (another
    listing's, or one no service issued), refuses it."""
    target = data.draw(st.sampled_from(list(listings)), label="listing")
    genuine = [listing.token for listing in listings]
    others = [token for token in genuine if token != target.token]
    token = data.draw(st.sampled_from(others) | hostile_tokens(genuine), label="token")
    await assert_refused(target.page(stub, token), f"{target.name}: {token!r}")
