"""PageTokens: a token continues only the listing it was issued for, and nothing else does.

Beyond the RPC-level property tests (tests/<service>/test_page_tokens.py), these hold
the shared class to its word where no service can reach: keys signed with the right
secret (as if it had leaked) that do not fit their listing's shape are still refused.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.runtime.errors import InvalidArgument
from services.runtime.page_tokens import EpochMicros, Key, KeyPart, PageTokens

SECRET = bytes(range(32))
SCOPE = ["ListThings", "filter", None, ["A", "B"]]
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _refused(tokens: PageTokens, token: str, scope: Any, shape: tuple[KeyPart, ...]) -> bool:
    try:
        tokens.decode(token, scope, shape)
    except InvalidArgument as error:
        refusal = error
    else:
        return False
    assert refusal.reason == "INVALID_PAGE_TOKEN"
    assert [(v.field, v.reason) for v in refusal.violations] == [
        ("page_token", "INVALID_PAGE_TOKEN")
    ]
    return True


def test_a_token_returns_its_key_for_its_scope_only() -> None:
    tokens = PageTokens(SECRET)
    key: list[Key] = [2**63 - 1, "0x1.8p-1", -(2**63), "019a-ff"]
    token = tokens.encode(key, SCOPE)
    assert tokens.decode(token, SCOPE, (int, str, int, str)) == tuple(key)
    assert tokens.decode("", SCOPE, (int,)) is None
    for scope in [[*SCOPE[:-1], ["A"]], SCOPE[1:], [*SCOPE, "caller"], ["ListThings"]]:
        assert _refused(tokens, token, scope, (int, str, int, str)), scope
    assert _refused(PageTokens(SECRET[::-1]), token, SCOPE, (int, str, int, str))
    assert _refused(tokens, token, SCOPE, (int, str, int))
    assert _refused(tokens, token, SCOPE, (int, str, str, str))


def test_a_token_has_one_spelling() -> None:
    tokens = PageTokens(SECRET)
    token = tokens.encode([7], SCOPE)
    # The MAC's last character carries 2 bits of the MAC and 4 unused ones: the other
    # characters with the same 2 bits decode to the same bytes, yet are not the token.
    last = _ALPHABET.index(token[-1])
    for twin in [c for i, c in enumerate(_ALPHABET) if i >> 4 == last >> 4 and i != last]:
        assert _refused(tokens, token[:-1] + twin, SCOPE, (int,)), twin
    for padded in [token + "=", token + "==", " " + token, token + "\n"]:
        assert _refused(tokens, padded, SCOPE, (int,)), padded


def test_a_time_is_one_a_datetime_holds() -> None:
    tokens = PageTokens(SECRET)
    first, last = -62135596800000000, 253402300799999999  # 0001-01-01, 9999-12-31T23:59:59.999999
    for micros in [first, 0, last]:
        token = tokens.encode([micros], SCOPE)
        assert tokens.decode(token, SCOPE, (EpochMicros,)) == (micros,)
    for beyond in [first - 1, last + 1, -(2**63), 2**63 - 1]:
        token = tokens.encode([beyond], SCOPE)
        assert tokens.decode(token, SCOPE, (int,)) == (beyond,)
        assert _refused(tokens, token, SCOPE, (EpochMicros,)), beyond


def test_a_secret_is_long() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        PageTokens(b"x" * 31)


_parts = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=80),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _fits(key: list[Any], shape: tuple[KeyPart, ...]) -> bool:
    if len(key) != len(shape):
        return False
    for part, kind in zip(key, shape, strict=True):
        # Years 1 to 9999: what a datetime holds, in microseconds from 1970.
        if kind is EpochMicros and not (
            type(part) is int and -62135596800000000 <= part <= 253402300799999999
        ):
            return False
        if kind is int and not (type(part) is int and -(2**63) <= part < 2**63):
            return False
        if kind is str and not (
            type(part) is str and len(part) <= 64 and all(" " <= c <= "~" for c in part)
        ):
            return False
    return True


@given(
    key=st.lists(_parts, max_size=5),
    shape=st.lists(st.sampled_from([int, EpochMicros, str]), min_size=1, max_size=4).map(tuple),
)
def test_a_signed_key_that_does_not_fit_its_listing_is_refused(
    key: list[Any], shape: tuple[KeyPart, ...]
) -> None:
    tokens = PageTokens(SECRET)
    token = tokens.encode(key, SCOPE)
    if _fits(key, shape):
        assert tokens.decode(token, SCOPE, shape) == tuple(key)
    else:
        assert _refused(tokens, token, SCOPE, shape)


@given(token=st.text(max_size=200) | st.binary(max_size=200).map(lambda raw: raw.hex()))
def test_any_other_text_is_refused(token: str) -> None:
    tokens = PageTokens(SECRET)
    if token:
        assert _refused(tokens, token, SCOPE, (int,))
