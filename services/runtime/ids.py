"""Server-generated identifiers: time-ordered UUIDv7 in canonical lower-case form.

Time order makes ids usable as the keyset of "creation order" listings.
"""

from __future__ import annotations

from uuid6 import uuid7

__all__ = ["new_id"]


def new_id() -> str:
    """A fresh UUIDv7 string."""
    return str(uuid7())
