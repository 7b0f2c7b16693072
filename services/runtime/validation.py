"""Collect every bad field of a request, then fail once with all of them.

check = RequestCheck()
check.required_text("email", request.email, max_length=254)
check.uuid("category_id", request.category_id, required=False)
check.done()  # raises InvalidArgument listing each violation
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

import pycountry

from services.runtime.errors import FieldViolation, InvalidArgument

__all__ = ["CURRENCY_CODES", "PAGE_SIZE_DEFAULT", "PAGE_SIZE_MAX", "RequestCheck"]

PAGE_SIZE_DEFAULT = 50
PAGE_SIZE_MAX = 100
REQUEST_ID_MAX = 128
_CURRENCY = re.compile(r"^[A-Z]{3}$")
# Exactly what str(uuid.UUID(...)) prints, so no other spelling of an id is accepted.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Current ISO 4217 codes, minus "no currency" (XXX) and the code reserved for tests (XTS).
CURRENCY_CODES = frozenset(c.alpha_3 for c in pycountry.currencies) - {"XXX", "XTS"}
_MONEY_LIMIT = 10**15


class _Money(Protocol):
    @property
    def currency_code(self) -> str: ...
    @property
    def amount_minor(self) -> int: ...


class _EnumType(Protocol):
    def values(self) -> Iterable[int]: ...


class RequestCheck:
    """Accumulates field violations; `done()` raises them as one INVALID_ARGUMENT."""

    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def fail(self, field: str, description: str, reason: str = "INVALID_FIELD") -> None:
        """Record one violation by hand, for rules the helpers below do not cover."""
        self.violations.append(FieldViolation(field, description, reason))

    def required_text(
        self, field: str, value: str, *, max_length: int, min_length: int = 1
    ) -> None:
        """A string that must be present and, stripped of nothing, within its length bounds."""
        if not value:
            self.fail(field, "is required", "REQUIRED")
        else:
            self.text(field, value, max_length=max_length, min_length=min_length)

    def text(self, field: str, value: str, *, max_length: int, min_length: int = 0) -> None:
        """A string within its length bounds, counted in characters; empty allowed if min is 0."""
        if len(value) > max_length:
            self.fail(field, f"must be at most {max_length} characters", "TOO_LONG")
        elif value and len(value) < min_length:
            self.fail(field, f"must be at least {min_length} characters", "TOO_SHORT")

    def uuid(self, field: str, value: str, *, required: bool = True) -> None:
        """A canonical lower-case hyphenated UUID, as every resource id is."""
        if not value:
            if required:
                self.fail(field, "is required", "REQUIRED")
            return
        if _CANONICAL_UUID.fullmatch(value) is None:
            self.fail(field, "must be a UUID in canonical lower-case form", "MALFORMED_ID")

    def request_id(self, value: str, field: str = "request_id") -> None:
        """The client's idempotency key: required, 1 to 128 printable characters."""
        if not value:
            self.fail(field, "is required on every mutation", "REQUIRED")
        elif len(value) > REQUEST_ID_MAX or not value.isprintable():
            self.fail(field, f"must be 1 to {REQUEST_ID_MAX} printable characters", "MALFORMED_ID")

    def enum(self, field: str, value: int, enum_type: _EnumType, *, required: bool) -> None:
        """A known value of `enum_type`; 0 (UNSPECIFIED) counts as absent."""
        if value == 0:
            if required:
                self.fail(field, "is required", "REQUIRED")
        elif value not in set(enum_type.values()):
            self.fail(field, f"{value} is not a known value", "UNKNOWN_ENUM_VALUE")

    def currency(self, field: str, code: str) -> None:
        """A current ISO 4217 alphabetic code, such as EUR."""
        if not _CURRENCY.match(code) or code not in CURRENCY_CODES:
            self.fail(field, "must be a current ISO 4217 code such as USD", "INVALID_CURRENCY")

    def money(self, field: str, money: _Money | None) -> None:
        """A required amount: an ISO 4217 currency and a positive amount below 1e15."""
        if money is None:
            self.fail(field, "is required", "REQUIRED")
            return
        self.currency(f"{field}.currency_code", money.currency_code)
        self.positive_amount(f"{field}.amount_minor", money.amount_minor)

    def positive_amount(self, field: str, amount_minor: int) -> None:
        """A positive amount of minor units below the platform-wide bound."""
        if amount_minor <= 0:
            self.fail(field, "must be positive", "OUT_OF_RANGE")
        elif amount_minor >= _MONEY_LIMIT:
            self.fail(field, f"must be below {_MONEY_LIMIT}", "OUT_OF_RANGE")

    def page_size(self, value: int, field: str = "page_size") -> int:
        """The effective page size: default when 0, clamped to the maximum, never negative."""
        if value < 0:
            self.fail(field, "must not be negative", "OUT_OF_RANGE")
            return PAGE_SIZE_DEFAULT
        return min(value or PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX)

    def done(self) -> None:
        """Raise INVALID_ARGUMENT naming every violation found so far, if any."""
        if self.violations:
            # A request whose only fault is its currency says so in its reason.
            only_currency = all(v.reason == "INVALID_CURRENCY" for v in self.violations)
            reason = "INVALID_CURRENCY" if only_currency else "INVALID_ARGUMENT"
            raise InvalidArgument(self.violations, reason=reason)
