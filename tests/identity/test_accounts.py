"""Sign-up and sign-in as a client sees them: tokens, errors, no enumeration.

Throttling has its own tests (test_login_throttle), as has the hashing budget.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import jwt
import pytest
from argon2 import Parameters, PasswordHasher, extract_parameters
from google.protobuf.field_mask_pb2 import FieldMask
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import select
from superapp.identity.v1 import events_pb2
from superapp.identity.v1 import identity_service_pb2 as pb

from scripts.nats_process import NatsProcess
from services.database import Database
from services.identity.config import IdentitySettings
from services.identity.models import User
from services.identity.passwords import OWASP_ARGON2ID, meets_owasp, owasp_hasher
from services.runtime.ids import new_id
from tests.identity.conftest import (
    ADMIN_EMAIL,
    DEPLOYED_HASHING,
    PASSWORD,
    Identity,
    running_identity,
)
from tests.services.recorded_events import recorded_events
from tests.services.rich_errors import rich_error

pytestmark = pytest.mark.slow(seconds=30)


async def _error(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def _events(identity: Identity, subject: str) -> list[bytes]:
    return await recorded_events(identity.database_url, subject)


async def test_sign_up_normalizes_email_and_announces_the_user(identity: Identity) -> None:
    user = await identity.register("  Ann.Lee@Example.COM ")
    assert (user.email, list(user.roles)) == ("ann.lee@example.com", [pb.ROLE_USER])
    [payload] = await _events(identity, "superapp.identity.user.registered")
    event = events_pb2.UserRegistered.FromString(payload)
    assert (event.user_id, event.email, list(event.roles)) == (
        user.user_id,
        "ann.lee@example.com",
        [pb.ROLE_USER],
    )


async def test_an_existing_email_is_taken_but_a_retry_replays(identity: Identity) -> None:
    request = pb.RegisterUserRequest(
        email="bo@example.com", password=PASSWORD, display_name="Bo", request_id=new_id()
    )
    first = await identity.stub.RegisterUser(request)
    assert (await identity.stub.RegisterUser(request)).user == first.user
    request.request_id = new_id()
    error = rich_error(await _error(identity.stub.RegisterUser(request)))
    assert (error.code, error.info.reason) == (grpc.StatusCode.ALREADY_EXISTS, "EMAIL_TAKEN")


async def test_same_request_id_with_other_parameters_is_refused(identity: Identity) -> None:
    request_id = new_id()
    await identity.stub.RegisterUser(
        pb.RegisterUserRequest(
            email="cy@example.com", password=PASSWORD, display_name="Cy", request_id=request_id
        )
    )
    error = rich_error(
        await _error(
            identity.stub.RegisterUser(
                pb.RegisterUserRequest(
                    email="cy@example.com",
                    password=PASSWORD,
                    display_name="Cyrus",
                    request_id=request_id,
                )
            )
        )
    )
    assert (error.code, error.info.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "IDEMPOTENCY_KEY_REUSED",
    )


async def test_fifty_concurrent_sign_ups_of_one_email_make_one_user(identity: Identity) -> None:
    async def attempt() -> str:
        try:
            await identity.register("race@example.com")
        except grpc.aio.AioRpcError as error:
            return rich_error(error).info.reason
        return "CREATED"

    outcomes = await asyncio.gather(*(attempt() for _ in range(50)))
    assert sorted(set(outcomes)) == ["CREATED", "EMAIL_TAKEN"]
    assert outcomes.count("CREATED") == 1
    database = Database.connect(identity.database_url)
    try:
        async with database.read() as session:
            users = (
                await session.scalars(select(User).where(User.email == "race@example.com"))
            ).all()
    finally:
        await database.dispose()
    assert len(users) == 1


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"email": ""}, "email", "REQUIRED"),
        ({"email": "not-an-address"}, "email", "MALFORMED_EMAIL"),
        ({"email": "a" * 250 + "@x.io"}, "email", "TOO_LONG"),
        ({"password": "short"}, "password", "PASSWORD_TOO_SHORT"),
        ({"password": "p" * 129}, "password", "PASSWORD_TOO_LONG"),
        ({"display_name": ""}, "display_name", "REQUIRED"),
        ({"display_name": "bell\a"}, "display_name", "INVALID_CHARACTERS"),
        ({"display_name": "n" * 101}, "display_name", "TOO_LONG"),
        ({"request_id": ""}, "request_id", "REQUIRED"),
    ],
)
async def test_bad_sign_ups_name_the_field(
    identity: Identity, fields: dict[str, str], field: str, reason: str
) -> None:
    values = {
        "email": "ok@example.com",
        "password": PASSWORD,
        "display_name": "Ok",
        "request_id": new_id(),
        **fields,
    }
    error = rich_error(await _error(identity.stub.RegisterUser(pb.RegisterUserRequest(**values))))
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.violations == {field: reason}


async def test_login_issues_an_eddsa_access_token_verifiable_with_the_jwks(
    identity: Identity,
) -> None:
    user = await identity.register("dee@example.com")
    reply = await identity.login("DEE@example.com")
    assert reply.user == user
    assert reply.tokens.token_type == "Bearer"
    jwks = await identity.stub.GetJwks(pb.GetJwksRequest())
    header = jwt.get_unverified_header(reply.tokens.access_token)
    assert (header["alg"], header["typ"]) == ("EdDSA", "at+jwt")
    [key] = [k for k in jwks.keys if k.kid == header["kid"]]
    public = jwt.PyJWK({"kty": key.kty, "crv": key.crv, "x": key.x, "kid": key.kid, "alg": key.alg})
    claims = jwt.decode(
        reply.tokens.access_token,
        public.key,
        algorithms=["EdDSA"],
        audience="superapp",
        issuer="superapp-identity",
    )
    assert (claims["sub"], claims["roles"]) == (user.user_id, ["user"])
    assert claims["exp"] - claims["iat"] == 900
    assert claims["jti"]


@pytest.fixture
async def owasp_identity(
    database_url: str, tmp_path: Path, tracer_provider: TracerProvider, nats_server: NatsProcess
) -> AsyncIterator[Identity]:
    """Identity hashing as deployed: OWASP's parameters (the suite's default is cheap)."""
    async with running_identity(
        database_url,
        tmp_path,
        tracer_provider,
        nats_server.url,
        **DEPLOYED_HASHING,
    ) as it:
        yield it


def test_the_default_hash_parameters_are_owasps_minimum() -> None:
    fields = IdentitySettings.model_fields
    defaults = (
        fields["password_hash_memory_kib"].default,
        fields["password_hash_iterations"].default,
    )
    assert defaults == (19 * 1024, 2)
    assert defaults in OWASP_ARGON2ID
    assert meets_owasp(*defaults)
    assert meets_owasp(47104, 1)
    assert not meets_owasp(19 * 1024, 1)
    assert not meets_owasp(1024, 1)


async def test_unknown_email_and_wrong_password_look_the_same(
    owasp_identity: Identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same answer, and the same work: one argon2id verification with the parameters of
    a real account's hash, so an unknown email takes as long as a wrong password. How
    close the two timings are is the bench's to measure (`scripts/bench --only Login`);
    here every verification argon2 runs is recorded."""
    verified: list[Parameters] = []
    verify = PasswordHasher.verify

    def recorded(hasher: PasswordHasher, encoded: str | bytes, password: str | bytes) -> bool:
        text = encoded if isinstance(encoded, str) else encoded.decode()
        verified.append(extract_parameters(text))
        return verify(hasher, encoded, password)

    monkeypatch.setattr(PasswordHasher, "verify", recorded)
    await owasp_identity.register("eve@example.com")

    async def failure(email: str) -> tuple[grpc.StatusCode, str, str, list[Parameters]]:
        verified.clear()
        error = await _error(owasp_identity.login(email, "wrong password!"))
        details = rich_error(error)
        return details.code, details.info.reason, error.details() or "", list(verified)

    wrong = await failure("eve@example.com")
    unknown = await failure("nobody@example.com")
    owasp = extract_parameters(owasp_hasher().hash("any password"))
    assert (
        wrong
        == unknown
        == (
            grpc.StatusCode.UNAUTHENTICATED,
            "INVALID_CREDENTIALS",
            "email or password is wrong",
            [owasp],
        )
    )


async def test_login_upgrades_a_hash_made_with_old_parameters(owasp_identity: Identity) -> None:
    identity = owasp_identity
    user = await identity.register("gus@example.com")
    database = Database.connect(identity.database_url)
    try:
        async with database.write() as session:
            row = await session.get(User, user.user_id)
            assert row is not None
            row.password_hash = PasswordHasher(time_cost=1, memory_cost=8 * 1024).hash(PASSWORD)
        await identity.login("gus@example.com")
        async with database.read() as session:
            upgraded = await session.get(User, user.user_id)
    finally:
        await database.dispose()
    assert upgraded is not None
    assert not owasp_hasher().check_needs_rehash(upgraded.password_hash)


async def test_users_reach_only_themselves_and_admins_reach_everyone(identity: Identity) -> None:
    ann, as_ann = await identity.signed_up("ann@example.com")
    bob, _ = await identity.signed_up("bob@example.com")
    _, as_admin = await identity.signed_up(ADMIN_EMAIL)
    mine = await identity.stub.GetUser(pb.GetUserRequest(user_id=ann.user_id), metadata=as_ann)
    assert mine.user == ann
    for target in (bob.user_id, new_id()):
        denied = rich_error(
            await _error(identity.stub.GetUser(pb.GetUserRequest(user_id=target), metadata=as_ann))
        )
        assert denied.code == grpc.StatusCode.PERMISSION_DENIED
    seen = await identity.stub.GetUser(pb.GetUserRequest(user_id=bob.user_id), metadata=as_admin)
    assert seen.user.email == "bob@example.com"
    missing = rich_error(
        await _error(identity.stub.GetUser(pb.GetUserRequest(user_id=new_id()), metadata=as_admin))
    )
    assert (missing.code, missing.info.reason) == (grpc.StatusCode.NOT_FOUND, "USER_NOT_FOUND")
    anonymous = rich_error(
        await _error(identity.stub.GetUser(pb.GetUserRequest(user_id=ann.user_id)))
    )
    assert anonymous.code == grpc.StatusCode.UNAUTHENTICATED


async def test_update_profile_through_a_mask(identity: Identity) -> None:
    ann, as_ann = await identity.signed_up("hal@example.com")
    bob, _ = await identity.signed_up("ida@example.com")

    def update(user_id: str, paths: list[str], name: str = "Hal 2") -> object:
        return identity.stub.UpdateUser(
            pb.UpdateUserRequest(
                user=pb.User(user_id=user_id, display_name=name, email="x@example.com"),
                update_mask=FieldMask(paths=paths),
                request_id=new_id(),
            ),
            metadata=as_ann,
        )

    updated = await update(ann.user_id, ["display_name"])  # type: ignore[misc]
    assert (updated.user.display_name, updated.user.email) == ("Hal 2", "hal@example.com")
    [payload] = await _events(identity, "superapp.identity.user.updated")
    assert list(events_pb2.UserUpdated.FromString(payload).changed_paths) == ["display_name"]
    for paths, reason in (
        ([], "REQUIRED"),
        (["email"], "OUTPUT_ONLY_FIELD"),
        (["*"], "UNKNOWN_FIELD"),
    ):
        error = rich_error(await _error(update(ann.user_id, paths)))
        assert (error.code, error.violations) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            {"update_mask": reason},
        )
    denied = rich_error(await _error(update(bob.user_id, ["display_name"])))
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED


async def test_only_admins_set_roles_and_new_tokens_carry_them(identity: Identity) -> None:
    merchant, as_merchant = await identity.signed_up("jo@example.com")
    _, as_admin = await identity.signed_up(ADMIN_EMAIL)

    def set_roles(metadata: object) -> object:
        return identity.stub.SetUserRoles(
            pb.SetUserRolesRequest(
                user_id=merchant.user_id,
                roles=[pb.ROLE_USER, pb.ROLE_MERCHANT],
                request_id=new_id(),
            ),
            metadata=metadata,
        )

    denied = rich_error(await _error(set_roles(as_merchant)))
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED
    reply = await set_roles(as_admin)  # type: ignore[misc]
    assert list(reply.user.roles) == [pb.ROLE_USER, pb.ROLE_MERCHANT]
    token = (await identity.login("jo@example.com")).tokens.access_token
    assert jwt.decode(token, options={"verify_signature": False})["roles"] == ["user", "merchant"]
    bad = rich_error(
        await _error(
            identity.stub.SetUserRoles(
                pb.SetUserRolesRequest(
                    user_id=merchant.user_id, roles=[0, 42], request_id=new_id()
                ),
                metadata=as_admin,
            )
        )
    )
    assert bad.violations == {"roles[0]": "REQUIRED", "roles[1]": "UNKNOWN_ENUM_VALUE"}


async def test_admins_grant_the_mini_app_roles_and_tokens_carry_them(identity: Identity) -> None:
    dev, _ = await identity.signed_up("dev@example.com")
    _, as_admin = await identity.signed_up(ADMIN_EMAIL)
    reply = await identity.stub.SetUserRoles(
        pb.SetUserRolesRequest(
            user_id=dev.user_id,
            roles=[pb.ROLE_REVIEWER, pb.ROLE_USER, pb.ROLE_DEVELOPER],
            request_id=new_id(),
        ),
        metadata=as_admin,
    )
    assert list(reply.user.roles) == [pb.ROLE_USER, pb.ROLE_DEVELOPER, pb.ROLE_REVIEWER]
    token = (await identity.login("dev@example.com")).tokens.access_token
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["roles"] == ["user", "developer", "reviewer"]
