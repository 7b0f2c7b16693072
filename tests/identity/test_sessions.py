"""Refresh tokens rotate on every use; a replayed one revokes its whole session."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import select
from superapp.identity.v1 import identity_service_pb2 as pb
from superapp.identity.v1 import identity_service_pb2_grpc

from services.database import Database
from services.identity.config import IdentitySettings
from services.identity.models import EVENT_TABLES
from services.identity.server import create_server
from services.runtime.ids import new_id
from services.runtime.ports import free_port
from tests.identity.conftest import KEY_ENCRYPTION_KEY, PASSWORD, Identity
from tests.services.rich_errors import rich_error


async def _refresh(identity: Identity, token: str) -> pb.TokenPair:
    reply = await identity.stub.RefreshToken(pb.RefreshTokenRequest(refresh_token=token))
    return reply.tokens


async def _reason(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    error = rich_error(caught.value)
    return error.code, error.info.reason


async def test_each_refresh_rotates_and_the_new_access_token_works(identity: Identity) -> None:
    user = await identity.register("kim@example.com")
    first = (await identity.login("kim@example.com")).tokens
    second = await _refresh(identity, first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    third = await _refresh(identity, second.refresh_token)
    me = await identity.stub.GetUser(
        pb.GetUserRequest(user_id=user.user_id),
        metadata=(("authorization", f"Bearer {third.access_token}"),),
    )
    assert me.user.user_id == user.user_id


async def test_replaying_a_rotated_token_revokes_the_whole_family(identity: Identity) -> None:
    await identity.register("lee@example.com")
    stolen = (await identity.login("lee@example.com")).tokens.refresh_token
    legitimate = await _refresh(identity, stolen)
    assert await _reason(_refresh(identity, stolen)) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "REFRESH_TOKEN_REUSED",
    )
    # The family is gone: the token the legitimate client holds no longer works either.
    assert await _reason(_refresh(identity, legitimate.refresh_token)) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "INVALID_REFRESH_TOKEN",
    )
    # Other sessions of the same user are untouched.
    other = (await identity.login("lee@example.com")).tokens
    assert (await _refresh(identity, other.refresh_token)).refresh_token


async def test_logout_ends_the_session_and_ignores_unknown_tokens(identity: Identity) -> None:
    await identity.register("max@example.com")
    tokens = (await identity.login("max@example.com")).tokens
    await identity.stub.Logout(pb.LogoutRequest(refresh_token=tokens.refresh_token))
    await identity.stub.Logout(pb.LogoutRequest(refresh_token=tokens.refresh_token))
    await identity.stub.Logout(pb.LogoutRequest(refresh_token="never-issued"))
    assert await _reason(_refresh(identity, tokens.refresh_token)) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "INVALID_REFRESH_TOKEN",
    )
    assert await _reason(_refresh(identity, "garbage")) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "INVALID_REFRESH_TOKEN",
    )
    assert (await _reason(identity.stub.Logout(pb.LogoutRequest())))[0] == (
        grpc.StatusCode.INVALID_ARGUMENT
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_identity_serves_while_nats_is_down_and_keeps_the_events(
    database_url: str, tmp_path: Path
) -> None:
    """No NATS at all: sign-up works and its event waits in the outbox.

    The request's trace context is carried into the event, ready for the relay.
    """
    dead_nats = f"nats://127.0.0.1:{free_port()}"
    settings = IdentitySettings(
        port=0,
        data_dir=tmp_path,
        database_url=database_url,
        nats_url=dead_nats,
        relay="task",
        key_encryption_keys=KEY_ENCRYPTION_KEY,
    )
    service = await create_server(settings, TracerProvider())
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            stub = identity_service_pb2_grpc.IdentityServiceStub(channel)
            reply = await stub.RegisterUser(
                pb.RegisterUserRequest(
                    email="offline@example.com",
                    password=PASSWORD,
                    display_name="Off",
                    request_id=new_id(),
                ),
                metadata=(("traceparent", f"00-{trace_id}-00f067aa0ba902b7-01"),),
            )
    finally:
        await service.stop(0)
    database = Database.connect(database_url)
    outbox = EVENT_TABLES.outbox
    try:
        async with database.read() as session:
            rows = (
                await session.execute(
                    select(outbox.c.aggregate_id, outbox.c.trace, outbox.c.published_time)
                )
            ).all()
    finally:
        await database.dispose()
    assert [(row.aggregate_id, row.published_time) for row in rows] == [(reply.user.user_id, None)]
    assert trace_id in rows[0].trace["traceparent"]
