"""The signature of a webhook delivery, Stripe-style, so a mini-app's backend can tell
the platform's POSTs from anyone else's and refuse replays of old ones.

Header: ``Superapp-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>``.
The timestamp is inside the signed text, so a captured delivery cannot be re-dated; a
receiver refuses one older than its tolerance (5 minutes by default) and de-duplicates
the rest by the event id in the body. `v1` names the scheme: a later scheme is added
beside it, and receivers ignore schemes they do not know.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "SIGNATURE_HEADER",
    "BadSignature",
    "sign",
    "signature_header",
    "verify",
]

SIGNATURE_HEADER = "Superapp-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


class BadSignature(ValueError):
    """The header is malformed, too old, or matches no signature of the body."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``f"{timestamp}." + body`` under `secret`."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """The value of `SIGNATURE_HEADER` for `body` sent at `timestamp`."""
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"


def verify(
    header: str,
    secret: str,
    body: bytes,
    *,
    now: int,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> int:
    """The delivery's timestamp when `header` signs `body` under `secret` and is no older
    than `tolerance_seconds` at `now`; otherwise `BadSignature`. What a receiver does."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise BadSignature("the header has no timestamp or no v1 signature")
    if abs(now - timestamp) > tolerance_seconds:
        raise BadSignature("the delivery's timestamp is outside the tolerance")
    expected = sign(secret, timestamp, body)
    # compare_digest: a receiver that compares byte by byte leaks the signature by timing.
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise BadSignature("no v1 signature matches the body")
    return timestamp
