"""What Schemathesis needs to know about the BFF's document beyond JSON Schema.

Importing this module registers, for the pytest integration (tests/bff/test_fuzzing.py)
and the command line (`SCHEMATHESIS_HOOKS=tests.bff.schemathesis_hooks`):

- the `printable` string format of display names, a rule of identity's: Python's
  `str.isprintable()`;
- `valid_requests_are_accepted`, Schemathesis's `positive_data_acceptance` except for
  refusals no schema can express (run it instead of that one);
- `application/zip` bodies (mini-app bundle uploads) sent as raw bytes, as
  `application/octet-stream` ones are.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import CheckContext
from schemathesis.core.failures import Failure
from schemathesis.core.transport import Response
from schemathesis.generation.case import Case
from schemathesis.specs.openapi.checks import positive_data_acceptance

from bff.schemas import PRINTABLE_FORMAT

__all__ = ["NOT_IN_ANY_SCHEMA", "valid_requests_are_accepted"]

# Every category but control, format, surrogate, private-use, unassigned, line and
# paragraph separators; of the space separators only the ASCII space.
_PRINTABLE = st.characters(
    exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"), include_characters=" "
)
schemathesis.openapi.format(PRINTABLE_FORMAT, st.text(_PRINTABLE, min_size=1, max_size=100))
schemathesis.serializer.alias("application/zip", "application/octet-stream")

# A valid request refused for one of these reasons is not a gap in the document: the
# answer depends on what the server holds, minted or was configured with, or on a rule
# across parameters that OpenAPI cannot state. Any other refusal of a valid request is.
NOT_IN_ANY_SCHEMA = {
    # state
    "IDEMPOTENCY_KEY_REUSED",  # the generator reuses keys with other bodies
    "INSUFFICIENT_FUNDS",
    "INVALID_STATUS_TRANSITION",  # e.g. publishing a product twice
    "INVALID_VERSION_STATE",  # e.g. approving a mini-app version twice
    "MINI_APP_NOT_PUBLISHED",
    "MINI_APP_SUSPENDED",
    "OUT_OF_STOCK",
    "PRICE_CHANGED",
    "SELF_PURCHASE",  # the admin is also the merchant of what it buys
    "SELF_TRANSFER",
    "STOCK_BELOW_RESERVED",
    # minted by the server
    "INVALID_PAGE_TOKEN",
    # content no schema describes: a bundle's bytes must be a zip archive
    "NOT_A_ZIP",
    # configured in the wallet (per-currency transfer limits)
    "LIMIT_EXCEEDED",
}
_ACROSS_PARAMETERS = {
    ("currency_code", "REQUIRED"),  # with a price bound
    ("max_price_minor", "OUT_OF_RANGE"),  # below min_price_minor
    ("quantity", "OUT_OF_RANGE"),  # quantity times unit_price must stay below 1e15
}


def _not_in_any_schema(response: Response) -> bool:
    if response.status_code not in (400, 422):
        return False
    try:
        problem: dict[str, Any] = response.json()
    except ValueError:
        return False
    violations = problem.get("violations") or []
    if not violations:
        return problem.get("reason") in NOT_IN_ANY_SCHEMA
    return all(
        v["reason"] in NOT_IN_ANY_SCHEMA or (v["field"], v["reason"]) in _ACROSS_PARAMETERS
        for v in violations
    )


@schemathesis.check
def valid_requests_are_accepted(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Schemathesis's `positive_data_acceptance`, but for `NOT_IN_ANY_SCHEMA` refusals."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except Failure:
        if _not_in_any_schema(response):
            return None
        raise
