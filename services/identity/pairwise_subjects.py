"""Pairwise subjects: the id a mini-app knows a user by (OpenID Connect Core §8.1).

HMAC-SHA256 under a secret of identity's (kept in its database, shared by every
replica) of the client id and the user id, base64url without padding. One user has one
subject per mini-app, stable across grants and tokens; two mini-apps get unrelated
subjects for one user, so they cannot correlate them, and without the secret nobody can
compute a subject from a user id or recover the user id from one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

__all__ = ["PairwiseSubjects"]


class PairwiseSubjects:
    """Derives pairwise subjects under one secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("a pairwise-subject secret has at least 32 bytes")
        self._secret = secret

    def subject(self, client_id: str, user_id: str) -> str:
        """The subject of `user_id` at `client_id`: 43 base64url characters."""
        # A client id never holds a NUL, so the pair cannot be shifted into another.
        message = f"{client_id}\0{user_id}".encode()
        digest = hmac.digest(self._secret, message, hashlib.sha256)
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
