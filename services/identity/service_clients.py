"""Service clients: other superapp services that get access tokens of their own.

OAuth 2.0 client credentials (RFC 6749 §4.4), minimal: identity knows each client from
its configuration (`IDENTITY_SERVICE_CLIENTS`, client id → SHA-256 of the secret, so no
secret is ever stored here), checks a presented secret in constant time and issues a
short-lived access token with role `system`. The token's subject is a UUID derived from
the client id, the same for every token of that client, so upstream idempotency keys
(scoped per caller) stay valid across token renewals and replicas.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Mapping

from services.auth.roles import Role
from services.identity.access_tokens import AccessTokenIssuer, IssuedToken
from services.runtime.errors import Unauthenticated

__all__ = ["ServiceClients", "secret_digest", "service_subject"]

# The namespace of service subjects: a fixed, arbitrary UUID, so every identity process
# derives the same subject for a client.
_NAMESPACE = uuid.UUID("9a4f3c2e-5b1d-4e8a-9c7f-2d6b8e1a0f53")
# Compared against when the client id is unknown, so that case costs what a wrong secret
# costs.
_NO_DIGEST = "0" * 64


def secret_digest(secret: str) -> str:
    """The lower-case hex SHA-256 of `secret`, as `IDENTITY_SERVICE_CLIENTS` holds it."""
    return hashlib.sha256(secret.encode()).hexdigest()


def service_subject(client_id: str) -> str:
    """The `sub` of every token issued to `client_id`: a UUIDv5 of the id."""
    return str(uuid.uuid5(_NAMESPACE, f"superapp-service:{client_id}"))


def _invalid_client() -> Unauthenticated:
    return Unauthenticated("INVALID_CLIENT", "unknown service client or wrong secret")


class ServiceClients:
    """Authenticates service clients and issues their system tokens."""

    def __init__(self, digests: Mapping[str, str], issuer: AccessTokenIssuer) -> None:
        self._digests = dict(digests)
        self._issuer = issuer

    def issue(self, client_id: str, client_secret: str) -> IssuedToken:
        """A system token for `client_id`; UNAUTHENTICATED `INVALID_CLIENT` on any mismatch."""
        expected = self._digests.get(client_id, _NO_DIGEST)
        matches = hmac.compare_digest(secret_digest(client_secret), expected)
        if not matches or client_id not in self._digests:
            raise _invalid_client()
        return self._issuer.issue(service_subject(client_id), [Role.SYSTEM])
