"""Access tokens: what identity issues, and every way a forged or stale one is refused."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.auth import DEFAULT_LEEWAY, Caller, TokenVerifier
from services.identity.access_tokens import AccessTokenIssuer
from services.identity.signing_keys import SigningKeys
from services.runtime.errors import Unauthenticated
from services.runtime.ids import new_id
from tests.auth.conftest import (
    AUDIENCE,
    ISSUER,
    TTL,
    FakeClock,
    b64url,
    forge,
    segments,
    unb64url,
)


def test_issued_token_carries_the_documented_header_and_claims(
    issuer: AccessTokenIssuer, keys: SigningKeys, clock: FakeClock
) -> None:
    user_id = new_id()
    issued = issuer.issue(user_id, ["admin", "user", "user"])
    header, claims = segments(issued.token)
    assert header == {"alg": "EdDSA", "typ": "at+jwt", "kid": keys.active().kid}
    now = int(clock.now().timestamp())
    assert claims == {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": user_id,
        "exp": now + int(TTL.total_seconds()),
        "iat": now,
        "jti": issued.token_id,
        "roles": ["user", "admin"],
    }
    assert uuid.UUID(issued.token_id).version == 7
    assert issued.expire_time == datetime.fromtimestamp(claims["exp"], UTC)
    # An independent implementation agrees on the signature and the registered claims.
    decoded = jwt.decode(
        issued.token,
        key=jwt.PyJWK(keys.jwks()[0]),
        algorithms=["EdDSA"],
        audience=AUDIENCE,
        issuer=ISSUER,
    )
    assert decoded["sub"] == user_id


def test_issue_refuses_unknown_roles_and_malformed_user_ids(issuer: AccessTokenIssuer) -> None:
    with pytest.raises(ValueError, match="roles"):
        issuer.issue(new_id(), ["root"])
    with pytest.raises(ValueError, match="roles"):
        issuer.issue(new_id(), [])
    with pytest.raises(ValueError, match="user_id"):
        issuer.issue(new_id().upper(), ["user"])


async def test_a_valid_token_proves_its_caller(
    issuer: AccessTokenIssuer, verifier: TokenVerifier
) -> None:
    user_id = new_id()
    issued = issuer.issue(user_id, ["user", "merchant"])
    caller = await verifier.verify(issued.token)
    assert caller == Caller(user_id, frozenset({"user", "merchant"}), issued.token_id)
    assert await verifier.verify(issued.token) == caller  # the remembered path agrees


def _claims(clock: FakeClock, **overrides: Any) -> dict[str, Any]:
    now = int(clock.now().timestamp())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": new_id(),
        "exp": now + 600,
        "iat": now,
        "jti": new_id(),
        "roles": ["user"],
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def _header(keys: SigningKeys, **overrides: Any) -> dict[str, Any]:
    header: dict[str, Any] = {"alg": "EdDSA", "typ": "at+jwt", "kid": keys.active().kid}
    header.update(overrides)
    return {name: value for name, value in header.items() if value is not None}


def _ours(keys: SigningKeys) -> Callable[[bytes], bytes]:
    return keys.active().private_key.sign


def _public_key_bytes(keys: SigningKeys) -> bytes:
    public = keys.active().private_key.public_key()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _alg_none(issuer: AccessTokenIssuer, keys: SigningKeys, clock: FakeClock) -> str:
    return forge(_header(keys, alg="none"), _claims(clock), lambda _: b"")


def _hs256_with_public_key(issuer: AccessTokenIssuer, keys: SigningKeys, clock: FakeClock) -> str:
    secret = _public_key_bytes(keys)
    return forge(
        _header(keys, alg="HS256"),
        _claims(clock, roles=["admin"]),
        lambda data: hmac.new(secret, data, hashlib.sha256).digest(),
    )


def _hs256_with_jwk_x(issuer: AccessTokenIssuer, keys: SigningKeys, clock: FakeClock) -> str:
    secret = keys.jwks()[0]["x"].encode()
    return forge(
        _header(keys, alg="HS256"),
        _claims(clock),
        lambda data: hmac.new(secret, data, hashlib.sha256).digest(),
    )


def _rs256(issuer: AccessTokenIssuer, keys: SigningKeys, clock: FakeClock) -> str:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(
        _claims(clock), private, algorithm="RS256", headers={"typ": "at+jwt", "kid": "k"}
    )


def _eddsa_by_a_stranger(issuer: AccessTokenIssuer, keys: SigningKeys, clock: FakeClock) -> str:
    return forge(_header(keys), _claims(clock), Ed25519PrivateKey.generate().sign)


def _expired(issuer: AccessTokenIssuer, keys: SigningKeys, clock: FakeClock) -> str:
    token = issuer.issue(new_id(), ["user"]).token
    clock.advance(TTL + DEFAULT_LEEWAY)
    return token


def _issued_in_the_future(issuer: AccessTokenIssuer, keys: SigningKeys, clock: FakeClock) -> str:
    later = int(clock.now().timestamp()) + 120
    return forge(_header(keys), _claims(clock, iat=later, exp=later + 600), _ours(keys))


def _wrong_audience(issuer: AccessTokenIssuer, keys: SigningKeys, clock: FakeClock) -> str:
    other = AccessTokenIssuer(keys, ISSUER, "someone-else", TTL, clock)
    return other.issue(new_id(), ["user"]).token


def _wrong_issuer(issuer: AccessTokenIssuer, keys: SigningKeys, clock: FakeClock) -> str:
    other = AccessTokenIssuer(keys, "https://evil.test", AUDIENCE, TTL, clock)
    return other.issue(new_id(), ["user"]).token


def _unknown_kid(issuer: AccessTokenIssuer, keys: SigningKeys, clock: FakeClock) -> str:
    return forge(_header(keys, kid="not-a-key-we-know"), _claims(clock), _ours(keys))


def _tampered_payload(issuer: AccessTokenIssuer, keys: SigningKeys, clock: FakeClock) -> str:
    token = issuer.issue(new_id(), ["user"]).token
    header, _, signature = token.split(".")
    claims = segments(token)[1]
    claims["roles"] = ["admin"]
    return f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"


def _tampered_signature(issuer: AccessTokenIssuer, keys: SigningKeys, clock: FakeClock) -> str:
    header, payload, signature = issuer.issue(new_id(), ["user"]).token.split(".")
    raw = bytearray(unb64url(signature))
    raw[10] ^= 0x01
    return f"{header}.{payload}.{b64url(bytes(raw))}"


def _padded_signature(issuer: AccessTokenIssuer, keys: SigningKeys, clock: FakeClock) -> str:
    return issuer.issue(new_id(), ["user"]).token + "=="


def _missing_typ(issuer: AccessTokenIssuer, keys: SigningKeys, clock: FakeClock) -> str:
    return forge(_header(keys, typ=None), _claims(clock), _ours(keys))


def _wrong_typ(issuer: AccessTokenIssuer, keys: SigningKeys, clock: FakeClock) -> str:
    return forge(_header(keys, typ="JWT"), _claims(clock), _ours(keys))


def _missing_kid(issuer: AccessTokenIssuer, keys: SigningKeys, clock: FakeClock) -> str:
    return forge(_header(keys, kid=None), _claims(clock), _ours(keys))


def _crit_header(issuer: AccessTokenIssuer, keys: SigningKeys, clock: FakeClock) -> str:
    return forge(_header(keys, crit=["exp"]), _claims(clock), _ours(keys))


def _sub_not_a_uuid(issuer: AccessTokenIssuer, keys: SigningKeys, clock: FakeClock) -> str:
    return forge(_header(keys), _claims(clock, sub="alice"), _ours(keys))


def _sub_upper_case(issuer: AccessTokenIssuer, keys: SigningKeys, clock: FakeClock) -> str:
    return forge(_header(keys), _claims(clock, sub=new_id().upper()), _ours(keys))


def _unknown_role(issuer: AccessTokenIssuer, keys: SigningKeys, clock: FakeClock) -> str:
    return forge(_header(keys), _claims(clock, roles=["user", "root"]), _ours(keys))


def _roles_not_a_list(issuer: AccessTokenIssuer, keys: SigningKeys, clock: FakeClock) -> str:
    return forge(_header(keys), _claims(clock, roles="admin"), _ours(keys))


def _no_exp(issuer: AccessTokenIssuer, keys: SigningKeys, clock: FakeClock) -> str:
    return forge(_header(keys), _claims(clock, exp=None), _ours(keys))


def _not_a_jwt(issuer: AccessTokenIssuer, keys: SigningKeys, clock: FakeClock) -> str:
    return "definitely-not-a-token"


def _too_long(issuer: AccessTokenIssuer, keys: SigningKeys, clock: FakeClock) -> str:
    return forge(_header(keys), _claims(clock, pad="x" * 5000), _ours(keys))


# Each forgery, and the check that must be the one to refuse it.
REJECTED: dict[Callable[[AccessTokenIssuer, SigningKeys, FakeClock], str], str] = {
    _alg_none: "algorithm not allowed",
    _hs256_with_public_key: "algorithm not allowed",
    _hs256_with_jwk_x: "algorithm not allowed",
    _rs256: "algorithm not allowed",
    _eddsa_by_a_stranger: "invalid token signature",
    _expired: "expired",
    _issued_in_the_future: "not valid yet",
    _wrong_audience: "audience",
    _wrong_issuer: "issuer",
    _unknown_kid: "unknown token signing key",
    _tampered_payload: "invalid token signature",
    _tampered_signature: "invalid token signature",
    _padded_signature: "malformed",
    _missing_typ: "not an access token",
    _wrong_typ: "not an access token",
    _missing_kid: "key id missing",
    _crit_header: "extensions",
    _sub_not_a_uuid: "subject",
    _sub_upper_case: "subject",
    _unknown_role: "roles",
    _roles_not_a_list: "roles",
    _no_exp: "times",
    _not_a_jwt: "malformed",
    _too_long: "malformed",
}


@pytest.mark.parametrize(
    ("make", "check"), REJECTED.items(), ids=[make.__name__.strip("_") for make in REJECTED]
)
async def test_bad_tokens_are_unauthenticated_without_echoing_them(
    make: Callable[[AccessTokenIssuer, SigningKeys, FakeClock], str],
    check: str,
    issuer: AccessTokenIssuer,
    keys: SigningKeys,
    clock: FakeClock,
    verifier: TokenVerifier,
) -> None:
    token = make(issuer, keys, clock)
    with pytest.raises(Unauthenticated) as caught:
        await verifier.verify(token)
    assert caught.value.reason == "UNAUTHENTICATED"
    assert check in caught.value.message
    assert len(caught.value.message) < 60
    for part in token.split("."):
        assert not part or part not in caught.value.message


async def test_expiry_allows_the_leeway_and_no_more(
    issuer: AccessTokenIssuer, verifier: TokenVerifier, clock: FakeClock
) -> None:
    issued = issuer.issue(new_id(), ["user"])
    await verifier.verify(issued.token)
    clock.advance(TTL + DEFAULT_LEEWAY - timedelta(seconds=1))
    await verifier.verify(issued.token)  # remembered, still inside the leeway
    clock.advance(timedelta(seconds=1))
    with pytest.raises(Unauthenticated, match="expired"):
        await verifier.verify(issued.token)


async def test_accepts_the_media_type_spelling_and_an_audience_list(
    keys: SigningKeys, clock: FakeClock, verifier: TokenVerifier
) -> None:
    token = forge(
        _header(keys, typ="application/AT+JWT"),
        _claims(clock, aud=["another", AUDIENCE]),
        _ours(keys),
    )
    assert (await verifier.verify(token)).roles == {"user"}
