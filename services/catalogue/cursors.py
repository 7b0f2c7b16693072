"""Keyset cursors of product pages and their opaque page tokens.

A cursor is the sort key of the last product of a page; the next page starts strictly
after it. Tokens carry the key under the service's MAC (see `services.runtime.page_tokens`);
a key that does not make a cursor (a time beyond the calendar, a relevance that is no
fraction) is refused like any other unusable token, even if its MAC verifies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol, TypeVar

from services.runtime.page_tokens import Key, KeyPart, PageTokens, invalid_page_token

__all__ = [
    "Cursor",
    "NewestCursor",
    "PriceCursor",
    "RelevanceCursor",
    "decode_cursor",
    "encode_cursor",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _moment(micros: Key) -> datetime:
    if not isinstance(micros, int):
        raise TypeError("a time must be whole microseconds")
    return _EPOCH + timedelta(microseconds=micros)


def _text(value: Key) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _integer(value: Key) -> int:
    if not isinstance(value, int):
        raise TypeError("expected an integer")
    return value


class Cursor(Protocol):
    """The sort key a page resumes after."""

    SHAPE: ClassVar[tuple[KeyPart, ...]]

    def key(self) -> list[Key]:
        """The key as it travels in a page token."""
        ...

    def parameters(self) -> dict[str, Any]:
        """The bind parameters of the statement's "after the cursor" condition."""
        ...


@dataclass(frozen=True, slots=True)
class NewestCursor:
    """Newest first: `create_time` descending, then `product_id` descending."""

    SHAPE: ClassVar[tuple[KeyPart, ...]] = (int, str)
    create_time: datetime
    product_id: str

    def key(self) -> list[Key]:
        return [_micros(self.create_time), self.product_id]

    def parameters(self) -> dict[str, Any]:
        return {"after_create_time": self.create_time, "after_product_id": self.product_id}

    @classmethod
    def from_key(cls, key: Sequence[Key]) -> NewestCursor:
        return cls(_moment(key[0]), _text(key[1]))


@dataclass(frozen=True, slots=True)
class PriceCursor:
    """By currency, then amount (either way), then `product_id` in the amount's direction."""

    SHAPE: ClassVar[tuple[KeyPart, ...]] = (str, int, str)
    currency: str
    amount_minor: int
    product_id: str

    def key(self) -> list[Key]:
        return [self.currency, self.amount_minor, self.product_id]

    def parameters(self) -> dict[str, Any]:
        return {
            "after_currency": self.currency,
            "after_price": self.amount_minor,
            "after_product_id": self.product_id,
        }

    @classmethod
    def from_key(cls, key: Sequence[Key]) -> PriceCursor:
        return cls(_text(key[0]), _integer(key[1]), _text(key[2]))


@dataclass(frozen=True, slots=True)
class RelevanceCursor:
    """Best tier first, then most relevant within the tier, then newest first."""

    SHAPE: ClassVar[tuple[KeyPart, ...]] = (int, str, int, str)
    tier: int
    relevance: float
    create_time: datetime
    product_id: str

    def key(self) -> list[Key]:
        # The exact binary value, so the next page compares against the same double.
        return [self.tier, self.relevance.hex(), _micros(self.create_time), self.product_id]

    def parameters(self) -> dict[str, Any]:
        return {
            "after_relevance": self.relevance,
            "after_create_time": self.create_time,
            "after_product_id": self.product_id,
        }

    @classmethod
    def from_key(cls, key: Sequence[Key]) -> RelevanceCursor:
        tier, relevance = _integer(key[0]), float.fromhex(_text(key[1]))
        if tier not in range(4) or not 0.0 <= relevance < 1.0:
            raise ValueError("a tier is 0 to 3 and a relevance a fraction")
        return cls(tier, relevance, _moment(key[2]), _text(key[3]))


_C = TypeVar("_C", NewestCursor, PriceCursor, RelevanceCursor)


def encode_cursor(tokens: PageTokens, cursor: Cursor | None, scope: Sequence[object]) -> str:
    """The `next_page_token` resuming after `cursor`; empty when there is no next page."""
    return "" if cursor is None else tokens.encode(cursor.key(), scope)


def decode_cursor(
    tokens: PageTokens, token: str, scope: Sequence[object], kind: type[_C]
) -> _C | None:
    """The cursor in `token` (None for the first page); INVALID_PAGE_TOKEN if unusable."""
    key = tokens.decode(token, scope, kind.SHAPE)
    if key is None:
        return None
    try:
        return kind.from_key(key)
    except (TypeError, ValueError, OverflowError):
        raise invalid_page_token() from None
