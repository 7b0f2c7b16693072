"""Identity's business metrics count what users did, once: sign-ups that committed, and
every sign-in by how it ended."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider
from superapp.identity.v1 import identity_service_pb2 as pb

from scripts.nats_process import NatsProcess
from services.runtime.ids import new_id
from tests.identity.conftest import PASSWORD, Identity, running_identity
from tests.services.rich_errors import rich_error


def _signups(identity: Identity) -> tuple[float, float]:
    metrics = identity.service.metrics
    return (
        metrics.value("superapp_signups_total"),
        metrics.value("superapp_signup_funnel_total", {"stage": "registered"}),
    )


def _logins(identity: Identity, outcome: str) -> float:
    return identity.service.metrics.value("superapp_logins_total", {"outcome": outcome})


async def _login_reason(identity: Identity, email: str, password: str) -> str:
    try:
        await identity.login(email, password)
    except grpc.aio.AioRpcError as error:
        return rich_error(error).info.reason
    return "OK"


async def test_a_sign_up_counts_once_however_often_it_is_retried(identity: Identity) -> None:
    assert _signups(identity) == (0, 0)
    request = pb.RegisterUserRequest(
        email="ann@example.com", password=PASSWORD, display_name="Ann", request_id=new_id()
    )

    first = await identity.stub.RegisterUser(request)
    replayed = await identity.stub.RegisterUser(request)

    assert replayed.user.user_id == first.user.user_id
    assert _signups(identity) == (1, 1)


async def test_sign_ups_that_lose_the_race_for_an_email_count_nothing(identity: Identity) -> None:
    async def attempt() -> str:
        try:
            await identity.register("race@example.com")
        except grpc.aio.AioRpcError as error:
            return rich_error(error).info.reason
        return "CREATED"

    outcomes = await asyncio.gather(*(attempt() for _ in range(20)))

    assert outcomes.count("CREATED") == 1
    assert _signups(identity) == (1, 1)


async def test_sign_ins_count_by_outcome(identity: Identity) -> None:
    await identity.register("bob@example.com")

    assert await _login_reason(identity, "bob@example.com", PASSWORD) == "OK"
    assert await _login_reason(identity, "bob@example.com", "not the password") == (
        "INVALID_CREDENTIALS"
    )
    assert await _login_reason(identity, "nobody@example.com", PASSWORD) == "INVALID_CREDENTIALS"

    assert _logins(identity, "success") == 1
    assert _logins(identity, "wrong_password") == 1
    assert _logins(identity, "unknown_account") == 1
    assert _logins(identity, "throttled") == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_sign_in_the_throttle_refuses_counts_as_throttled(
    database_url: str, tmp_path: Path, tracer_provider: TracerProvider, nats_server: NatsProcess
) -> None:
    async with running_identity(
        database_url,
        tmp_path,
        tracer_provider,
        nats_server.url,
        login_free_failures=0,
        login_first_delay_seconds=600,
    ) as identity:
        await identity.register("cy@example.com")

        wrong = await _login_reason(identity, "cy@example.com", "not the password")
        refused = await _login_reason(identity, "cy@example.com", PASSWORD)

        assert (wrong, refused) == ("INVALID_CREDENTIALS", "TOO_MANY_ATTEMPTS")
        assert _logins(identity, "wrong_password") == 1
        assert _logins(identity, "throttled") == 1
        assert _logins(identity, "success") == 0
