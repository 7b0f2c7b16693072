"""Sign-in throttling as clients see it: growing delays per (email, client address), a
bound per client address, no lockout of the owner by a stranger, no enumeration.

Identity runs on a clock that moves only when a test says so; the client address is
what a trusted proxy (this test, from 127.0.0.1) reports in `x-forwarded-for`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import select

from scripts.nats_process import NatsProcess
from services.database import Database
from services.identity.config import IdentitySettings
from services.identity.login_throttle import LoginThrottling
from services.identity.models import LoginAddressFailures, LoginPairFailures
from services.identity.server import login_policy
from tests.auth.conftest import FakeClock
from tests.identity.conftest import KEY_ENCRYPTION_KEY, PASSWORD, Identity, running_identity
from tests.services.rich_errors import RichError, rich_error

pytestmark = pytest.mark.slow(seconds=20)

ANN = "ann@example.com"
STRANGER = "203.0.113.7"
OWNER = "198.51.100.20"
WRONG = "not the password"

Start = Callable[..., AbstractAsyncContextManager[Identity]]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def start(
    database_url: str,
    tmp_path: Path,
    tracer_provider: TracerProvider,
    nats_server: NatsProcess,
    clock: FakeClock,
) -> Start:
    """Starts identity on the test's database and clock with some settings changed."""

    def starting(**settings: Any) -> AbstractAsyncContextManager[Identity]:
        return running_identity(
            database_url, tmp_path, tracer_provider, nats_server.url, clock=clock, **settings
        )

    return starting


@pytest.fixture
async def identity(start: Start) -> AsyncIterator[Identity]:
    """Identity with the default bounds: 2 free failures, then 1 s doubling to 15 min."""
    async with start() as it:
        yield it


async def _sign_in(identity: Identity, email: str, password: str, client: str) -> RichError | str:
    """The error of a sign-in, or "OK"."""
    try:
        await identity.login(email, password, client=client)
    except grpc.aio.AioRpcError as error:
        return rich_error(error)
    return "OK"


def _reason(outcome: RichError | str) -> str:
    return outcome if isinstance(outcome, str) else outcome.info.reason


def _refusal(outcome: RichError | str) -> RichError:
    assert isinstance(outcome, RichError), outcome
    assert (outcome.code, outcome.info.reason) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "TOO_MANY_ATTEMPTS",
    )
    assert outcome.retry_delay is not None
    return outcome


async def _fail(identity: Identity, clock: FakeClock, email: str, client: str, times: int) -> None:
    """`times` wrong passwords that are really checked, waiting out each delay."""
    failed = 0
    while failed < times:
        outcome = await _sign_in(identity, email, WRONG, client)
        if _reason(outcome) == "TOO_MANY_ATTEMPTS":
            clock.advance(timedelta(seconds=_refusal(outcome).retry_delay or 0))
            continue
        assert _reason(outcome) == "INVALID_CREDENTIALS", outcome
        failed += 1


async def test_a_stranger_cannot_lock_the_owner_out(identity: Identity, clock: FakeClock) -> None:
    await identity.register(ANN)
    await _fail(identity, clock, ANN, STRANGER, 50)

    # From her own address Ann signs in at once.
    assert (await identity.login(ANN, client=OWNER)).user.email == ANN
    # From the stranger's address even the right password waits out the longest delay...
    refused = _refusal(await _sign_in(identity, ANN, PASSWORD, STRANGER))
    assert refused.retry_delay == 15 * 60
    assert refused.info.metadata["scope"] == "per email and client address"
    # ...and then works, and clears that pair: its failures start from nothing again.
    clock.advance(timedelta(minutes=15))
    assert (await identity.login(ANN, client=STRANGER)).user.email == ANN
    again = [_reason(await _sign_in(identity, ANN, WRONG, STRANGER)) for _ in range(4)]
    assert again == ["INVALID_CREDENTIALS"] * 3 + ["TOO_MANY_ATTEMPTS"]


async def test_delays_grow_from_the_third_failure_up_to_the_cap(
    start: Start, clock: FakeClock
) -> None:
    async with start(login_max_delay_seconds=8) as identity:
        await identity.register(ANN)
        free = [_reason(await _sign_in(identity, ANN, WRONG, STRANGER)) for _ in range(3)]
        delays = []
        for _ in range(5):
            refused = _refusal(await _sign_in(identity, ANN, PASSWORD, STRANGER))
            delays.append(refused.retry_delay)
            clock.advance(timedelta(seconds=refused.retry_delay or 0))
            assert _reason(await _sign_in(identity, ANN, WRONG, STRANGER)) == "INVALID_CREDENTIALS"
        clock.advance(timedelta(seconds=5))
        halfway = _refusal(await _sign_in(identity, ANN, PASSWORD, STRANGER))

    assert free == ["INVALID_CREDENTIALS"] * 3  # two free, the third starts the delays
    assert delays == [1, 2, 4, 8, 8]
    assert halfway.retry_delay == 3


async def test_concurrent_guesses_cannot_slip_past_the_delay(
    identity: Identity, clock: FakeClock
) -> None:
    await identity.register(ANN)
    outcomes = await asyncio.gather(*(_sign_in(identity, ANN, WRONG, STRANGER) for _ in range(20)))
    reasons = sorted(_reason(outcome) for outcome in outcomes)
    # Every attempt counts from the moment it is let in, before its hash is checked.
    assert reasons == ["INVALID_CREDENTIALS"] * 3 + ["TOO_MANY_ATTEMPTS"] * 17


async def test_one_address_trying_many_accounts_is_refused_after_its_bound(
    start: Start, clock: FakeClock
) -> None:
    async with start(login_address_max_failures=5, login_address_block_seconds=600) as identity:
        await identity.register(ANN)
        stuffing = [
            _reason(await _sign_in(identity, f"user{i}@example.com", WRONG, STRANGER))
            for i in range(5)
        ]
        refused = _refusal(await _sign_in(identity, ANN, PASSWORD, STRANGER))
        elsewhere = await _sign_in(identity, ANN, PASSWORD, OWNER)
        clock.advance(timedelta(seconds=599))
        still = _refusal(await _sign_in(identity, "user9@example.com", WRONG, STRANGER))
        clock.advance(timedelta(seconds=1))
        after = await _sign_in(identity, ANN, PASSWORD, STRANGER)

    assert stuffing == ["INVALID_CREDENTIALS"] * 5
    assert refused.retry_delay == 600
    assert refused.info.metadata["scope"] == "per client address"
    assert elsewhere == "OK"  # another address is unaffected
    assert still.retry_delay == 1
    assert after == "OK"


async def test_unknown_and_known_emails_answer_and_throttle_alike(identity: Identity) -> None:
    await identity.register(ANN)

    async def story(email: str) -> list[tuple[Any, ...]]:
        outcomes = []
        for _ in range(4):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await identity.login(email, WRONG, client=STRANGER)
            details = rich_error(caught.value)
            info = details.info
            outcomes.append(
                (
                    details.code,
                    caught.value.details(),
                    info.reason,
                    info.domain,
                    dict(info.metadata),
                    details.retry_delay,
                )
            )
        return outcomes

    known, unknown = await story(ANN), await story("nobody@example.com")
    assert known == unknown
    assert [outcome[2] for outcome in known] == ["INVALID_CREDENTIALS"] * 3 + ["TOO_MANY_ATTEMPTS"]


async def test_the_forwarded_address_counts_only_from_a_trusted_peer(start: Start) -> None:
    # This test's calls come from 127.0.0.1, which is not trusted here.
    async with start(forwarded_allow_ips="192.0.2.1") as identity:
        await identity.register(ANN)
        for _ in range(3):
            await _sign_in(identity, ANN, WRONG, STRANGER)
        claimed_elsewhere = await _sign_in(identity, ANN, PASSWORD, OWNER)

    _refusal(claimed_elsewhere)


async def test_rows_are_digests_and_are_pruned_once_forgotten(
    identity: Identity, clock: FakeClock
) -> None:
    await identity.register(ANN)
    await _fail(identity, clock, ANN, STRANGER, 3)
    await _fail(identity, clock, "nobody@example.com", STRANGER, 1)
    database = Database.connect(identity.database_url)
    try:

        async def rows() -> list[Any]:
            async with database.read() as session:
                pairs = (await session.scalars(select(LoginPairFailures))).all()
                addresses = (await session.scalars(select(LoginAddressFailures))).all()
            return [*pairs, *addresses]

        stored = await rows()
        assert len(stored) == 3  # two pairs, one address
        for row in stored:
            text = repr(vars(row))
            assert "@" not in text
            assert STRANGER not in text
        throttling = LoginThrottling(
            database, login_policy(IdentitySettings(key_encryption_keys=KEY_ENCRYPTION_KEY))
        )
        assert await throttling.prune(clock.now(), limit=100) == 0
        forgotten = clock.now() + timedelta(hours=12, seconds=2)
        assert await throttling.prune(forgotten, limit=1) == 1
        assert await throttling.prune(forgotten, limit=100) == 1
        assert await rows() == []
    finally:
        await database.dispose()
