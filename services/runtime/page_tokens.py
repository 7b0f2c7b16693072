"""Opaque, tamper-evident page tokens for AIP-158 cursor pagination.

A token carries the sort key of the last item served (keyset pagination, so pages stay
correct while rows are inserted) and a MAC under the service's secret over that key and
the request's scope: the list, its filters and, where the listing depends on who asks,
the caller. So a token continues only the listing it came from, and anything else,
whether garbage, a key edited by hand, or a token of another list, other filters or
another user, is refused with INVALID_PAGE_TOKEN instead of being read as another place.

Format: `base64url(JSON key) "." base64url(HMAC-SHA256(secret, scope, key)[:16])`. The
key stays readable (it is a position, not a secret); the MAC makes it unforgeable.
Even a key whose MAC verifies is checked against the shape its listing expects (ints
within int64, times a datetime can hold, short printable ASCII strings), so a leaked
secret still cannot produce an INTERNAL error downstream.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from services.runtime.errors import FieldViolation, InvalidArgument

__all__ = [
    "SECRET_MIN_BYTES",
    "EpochMicros",
    "Key",
    "KeyPart",
    "PageTokens",
    "invalid_page_token",
]


class EpochMicros(int):
    """A sort-key part that is a time: whole microseconds since 1970-01-01 UTC.

    Only a shape marker (decode returns a plain int): a part of this kind must be an int
    that `datetime` can hold (years 1 to 9999), so turning it back into a time never
    overflows. Any int64 would not do: most are beyond the calendar (OverflowError).
    """


Key = str | int
"""One part of a sort key as a token carries it."""
KeyPart = type[int] | type[str]
"""What one part of a listing's sort key must be: `int`, `EpochMicros` or `str`."""

SECRET_MIN_BYTES = 32
"""The least length of a page-token secret."""

_MAC_BYTES = 16
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,400}\.[A-Za-z0-9_-]{22}")
_TEXT_MAX = 64
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROS_MIN = (datetime.min.replace(tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)
_MICROS_MAX = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)


def invalid_page_token() -> InvalidArgument:
    """The one answer to any token that does not continue the listing it was sent to."""
    return InvalidArgument(
        [
            FieldViolation(
                "page_token",
                "is not a next_page_token this service issued for this list, these "
                "filters and this caller",
                "INVALID_PAGE_TOKEN",
            )
        ],
        reason="INVALID_PAGE_TOKEN",
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes | None:
    """The bytes `text` encodes; None unless it is exactly how `_b64` writes them, so
    that no token has a second spelling."""
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except binascii.Error:
        return None
    return raw if _b64(raw) == text else None


def _fits(part: object, kind: KeyPart) -> bool:
    if kind is EpochMicros:
        return type(part) is int and _MICROS_MIN <= part <= _MICROS_MAX
    if kind is int:
        return type(part) is int and _INT64_MIN <= part <= _INT64_MAX
    return type(part) is str and len(part) <= _TEXT_MAX and part.isascii() and part.isprintable()


class PageTokens:
    """Issues and checks one service's page tokens under its secret (see module doc)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < SECRET_MIN_BYTES:
            raise ValueError(f"a page-token secret has at least {SECRET_MIN_BYTES} bytes")
        self._secret = secret

    def encode(self, key: Sequence[Key], scope: Sequence[object]) -> str:
        """The token resuming after `key` in the listing described by `scope`."""
        body = json.dumps(list(key), separators=(",", ":")).encode()
        return f"{_b64(body)}.{_b64(self._mac(body, scope))}"

    def decode(
        self, token: str, scope: Sequence[object], shape: Sequence[KeyPart]
    ) -> tuple[Key, ...] | None:
        """The key to resume after, or None for the first page (an empty token).

        INVALID_ARGUMENT `INVALID_PAGE_TOKEN` unless `token` is one `encode` made for
        `scope` with a key of `shape`: one part per entry, ints within int64,
        `EpochMicros` within years 1 to 9999, strings of at most 64 printable ASCII
        characters.
        """
        if not token:
            return None
        key = self._verified(token, scope)
        if (
            not isinstance(key, list)
            or len(key) != len(shape)
            or not all(_fits(part, kind) for part, kind in zip(key, shape, strict=True))
        ):
            raise invalid_page_token()
        return tuple(key)

    def _verified(self, token: str, scope: Sequence[object]) -> object:
        """The key of a token with a valid MAC for `scope`; None for any other token."""
        if not _TOKEN.fullmatch(token):
            return None
        body_text, mac_text = token.split(".")
        body, mac = _unb64(body_text), _unb64(mac_text)
        if body is None or mac is None or not hmac.compare_digest(mac, self._mac(body, scope)):
            return None
        try:
            key: object = json.loads(body)
        except (ValueError, RecursionError):
            return None
        return key

    def _mac(self, body: bytes, scope: Sequence[object]) -> bytes:
        # Compact ASCII JSON never holds a raw newline, so scope and body cannot be
        # shifted into each other.
        scoped = json.dumps(list(scope), separators=(",", ":"), default=str).encode()
        return hmac.digest(self._secret, scoped + b"\n" + body, "sha256")[:_MAC_BYTES]
