"""Leases: one holder at a time, taken over when it lapses or is given up."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import MetaData, select

from services.database import Database
from services.database.leases import Lease, lease_holder_name, leases_table
from tests.conftest import database_with

METADATA = MetaData()
LEASES = leases_table(METADATA)


class _Clock:
    """A clock the test moves by hand (replicas' clocks agree, as the module assumes)."""

    def __init__(self) -> None:
        self.time = datetime(2026, 12, 7, tzinfo=UTC)

    def now(self) -> datetime:
        return self.time


def _lease(database: Database, holder: str, clock: _Clock) -> Lease:
    return Lease(
        database, LEASES, "outbox-relay", holder=holder, ttl=timedelta(seconds=10), clock=clock
    )


async def _holder(database: Database) -> str | None:
    async with database.read() as session:
        found: str | None = (
            await session.execute(select(LEASES.c.holder).where(LEASES.c.name == "outbox-relay"))
        ).scalar_one_or_none()
    return found


async def test_one_holder_until_its_lease_lapses_then_the_next_takes_over(
    database_url: str,
) -> None:
    clock = _Clock()
    async with database_with(database_url, METADATA) as database:
        first, second = _lease(database, "first", clock), _lease(database, "second", clock)
        assert await first.hold()
        assert not await second.hold()
        clock.time += timedelta(seconds=8)
        assert await first.hold()  # renewed: ten more seconds from now
        clock.time += timedelta(seconds=8)
        assert not await second.hold()
        assert first.held(timedelta(seconds=1))
        clock.time += timedelta(seconds=3)  # lapsed: `first` stopped renewing (it died)
        assert not first.held(timedelta(0))
        assert await second.hold()
        assert not await first.hold()  # back from a stall, it finds the job taken
        assert not first.held(timedelta(0))
        assert await _holder(database) == "second"


async def test_a_lease_given_up_is_taken_at_once(database_url: str) -> None:
    clock = _Clock()
    async with database_with(database_url, METADATA) as database:
        first, second = _lease(database, "first", clock), _lease(database, "second", clock)
        assert await first.hold()
        await second.release()  # not its lease: changes nothing
        assert not await second.hold()
        await first.release()
        assert not first.held(timedelta(0))
        assert await second.hold()


async def test_of_replicas_asking_together_exactly_one_wins(database_url: str) -> None:
    clock = _Clock()
    async with database_with(database_url, METADATA) as database:
        replicas = [Database.connect(database_url) for _ in range(4)]
        try:
            leases = [_lease(each, lease_holder_name(), clock) for each in replicas]
            for _ in range(5):
                won = await asyncio.gather(*(lease.hold() for lease in leases))
                assert won.count(True) == 1
                winner = leases[won.index(True)]
                assert await _holder(database) == winner.holder
                clock.time += timedelta(seconds=11)  # the winner dies; the next round
        finally:
            for each in replicas:
                await each.dispose()


def test_holder_names_differ_between_processes_and_calls() -> None:
    assert lease_holder_name() != lease_holder_name()
