"""Collect every bad field of a request, then fail once with all of them.

The limits of a request's fields are the contract's `buf.validate` rules, checked for every
RPC by `services.runtime.contract_rules` before the handler runs; its violations seed a
`RequestCheck`, to which an RPC's own checks (what a rule cannot say: a field mask's
paths, an email address's syntax, ...) add theirs:

check = RequestCheck(rule_violations)
if not check.failed("email") and normalize_email(request.email) is None:
    check.fail("email", "is not a valid email address", "MALFORMED_EMAIL")
check.done()  # raises InvalidArgument listing each violation
"""

from __future__ import annotations

from collections.abc import Iterable

from services.runtime.errors import FieldViolation, InvalidArgument

__all__ = ["PAGE_SIZE_DEFAULT", "PAGE_SIZE_MAX", "RequestCheck", "page_size"]

PAGE_SIZE_DEFAULT = 50
PAGE_SIZE_MAX = 100


class RequestCheck:
    """Accumulates field violations; `done()` raises them as one INVALID_ARGUMENT."""

    def __init__(self, violations: Iterable[FieldViolation] = ()) -> None:
        self.violations: list[FieldViolation] = list(violations)

    def fail(self, field: str, description: str, reason: str = "INVALID_FIELD") -> None:
        """Record one violation."""
        self.violations.append(FieldViolation(field, description, reason))

    def extend(self, violations: Iterable[FieldViolation]) -> None:
        """Record several violations, such as a nested message's rule violations."""
        self.violations.extend(violations)

    def failed(self, field: str) -> bool:
        """Whether `field` (or anything inside it) has a violation already: a check that
        would only repeat what is wrong with it in other words is then skipped."""
        return any(
            v.field == field or v.field.startswith((f"{field}.", f"{field}["))
            for v in self.violations
        )

    def done(self) -> None:
        """Raise INVALID_ARGUMENT naming every violation found so far, if any."""
        if self.violations:
            # One violation per (field, reason, description): two rules that say the same
            # thing (a request_id too long and unprintable) are reported once.
            unique = list(dict.fromkeys(self.violations))
            # A request whose only fault is its currency says so in its reason.
            only_currency = all(v.reason == "INVALID_CURRENCY" for v in unique)
            reason = "INVALID_CURRENCY" if only_currency else "INVALID_ARGUMENT"
            raise InvalidArgument(unique, reason=reason)


def page_size(value: int) -> int:
    """The effective page size: the default when 0, clamped to the maximum. A negative
    size never gets here: the contract's `int32.gte = 0` rule refuses it."""
    return min(value or PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX)
