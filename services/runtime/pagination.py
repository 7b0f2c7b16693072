"""Opaque page tokens for AIP-158 cursor pagination.

A token carries the sort key of the last item served (keyset pagination, so pages stay
correct while rows are inserted) and a fingerprint of the request's filters, so a token
reused with other filters is refused instead of silently skipping rows.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence

from services.runtime.errors import FieldViolation, InvalidArgument

__all__ = ["decode_page_token", "encode_page_token"]

Key = str | int


def _fingerprint(scope: Sequence[object]) -> str:
    digest = hashlib.blake2s(json.dumps(list(scope), default=str).encode(), digest_size=6)
    return digest.hexdigest()


def encode_page_token(last_key: Sequence[Key], scope: Sequence[object]) -> str:
    """A token resuming after `last_key` for a request with the filters in `scope`."""
    body = json.dumps({"k": list(last_key), "f": _fingerprint(scope)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode_page_token(token: str, scope: Sequence[object], key_size: int) -> list[Key] | None:
    """The key to resume after, or None for the first page; INVALID_ARGUMENT if unusable."""
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        body = json.loads(base64.urlsafe_b64decode(padded.encode()))
        key = body["k"]
        matches = body["f"] == _fingerprint(scope)
        well_formed = (
            isinstance(key, list)
            and len(key) == key_size
            and all(isinstance(part, str | int) for part in key)
        )
    except (ValueError, TypeError, KeyError):
        matches = well_formed = False
    if not well_formed:
        reason = "is malformed"
    elif not matches:
        reason = "was issued for a request with different filters"
    else:
        return list(key)
    raise InvalidArgument(
        [FieldViolation("page_token", reason, "INVALID_PAGE_TOKEN")], reason="INVALID_PAGE_TOKEN"
    )
