"""The access-token format identity issues and every verifier checks (RFC 9068 profile).

The contract itself is documented on `superapp.identity.v1.IdentityService`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TypeAlias, TypeGuard

__all__ = ["ALGORITHM", "MINIAPP_TOKEN_TYPE", "TOKEN_TYPE", "JwkDict", "is_canonical_uuid"]

ALGORITHM = "EdDSA"
"""The only JOSE `alg` issued and accepted."""

TOKEN_TYPE = "at+jwt"  # noqa: S105  (a media type, not a secret)
"""The JOSE `typ` of an access token (RFC 9068 section 2.1)."""

MINIAPP_TOKEN_TYPE = "miniapp+jwt"  # noqa: S105  (a media type, not a secret)
"""The JOSE `typ` of a mini-app's access token: never "at+jwt", so no user API's verifier
(which accepts only that type) can take one for a user's token."""

JwkDict: TypeAlias = Mapping[str, str]
"""One public key as an RFC 7517 JSON object: kty, crv, x, kid, alg, use."""


def is_canonical_uuid(value: object) -> TypeGuard[str]:
    """Whether `value` is a UUID string in canonical lower-case hyphenated form."""
    if not isinstance(value, str) or len(value) != 36:
        return False
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False
