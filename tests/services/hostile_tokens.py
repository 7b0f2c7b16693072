"""Page tokens no service issued, and the one answer every list RPC must give them.

Shared by the property tests of every service's list RPCs: random text and bytes,
JSON bodies with hostile values, and genuine tokens altered by a character, cut short,
stripped of their MAC or given another's. Hypothesis settings suit RPCs against one
real server per module: a modest number of examples, no deadline (the machine is
shared), and no health check that counts slow calls against the test.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Sequence
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.services.rich_errors import rich_error

__all__ = ["FUZZ", "assert_refused", "hostile_tokens", "with_key"]

FUZZ = settings(
    max_examples=80,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
"""Settings of a property test that calls a real server per example."""

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
