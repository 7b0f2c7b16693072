"""Leases in a service's database: which replica does a job that only one may do at a time.

A job whose order matters, like publishing the outbox, cannot be split between replicas
row by row (SKIP LOCKED), so one replica holds it: whoever holds the lease named after the
job does it, and renews the lease well before it lapses. A replica that dies stops
renewing, its lease lapses after `ttl`, and the next replica to ask takes it over; one that
stops cleanly gives it up at once. Taking and renewing are one statement (an upsert that
only succeeds for the current holder or over a lapsed lease), so two replicas asking
together cannot both win.

Expiry times come from each replica's clock: replicas are expected to keep their clocks
in sync (NTP) to well within the lease's length, which is seconds.
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, bindparam, or_
from sqlalchemy.dialects import postgresql, sqlite

from services.database.engine import Database
from services.database.schema import UtcDateTime
from services.runtime.clock import Clock

__all__ = ["Lease", "lease_holder_name", "leases_table"]


def leases_table(metadata: MetaData) -> Table:
    """Declare the `leases` table on a service's metadata (its migration:
    `services.database.lease_migrations.create_leases_v1`)."""
    return Table(
        "leases",
        metadata,
        Column("name", String(64), nullable=False),
        Column("holder", String(128), nullable=False),
        Column("expire_time", UtcDateTime(), nullable=False),
        PrimaryKeyConstraint("name"),
    )


def lease_holder_name() -> str:
    """A name for this process that no other process, here or on another host, shares:
    the operator reads it in the table to find who holds a job."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(4)}"


class Lease:
    """The lease called `name`, asked for by `holder`; see the module's docstring."""

    def __init__(
        self,
        database: Database,
        table: Table,
        name: str,
        *,
        holder: str,
        ttl: timedelta,
        clock: Clock,
    ) -> None:
        self.name = name
        self.holder = holder
        self.ttl = ttl
        self._database = database
        self._clock = clock
        dialect = sqlite if database.dialect == "sqlite" else postgresql
        values: dict[str, Any] = {
            "name": bindparam("name"),
            "holder": bindparam("holder"),
            "expire_time": bindparam("expire_time"),
        }
        insert = dialect.insert(table).values(values)
        self._take = insert.on_conflict_do_update(
            index_elements=[table.c.name],
            set_={"holder": insert.excluded.holder, "expire_time": insert.excluded.expire_time},
            where=or_(
                table.c.holder == bindparam("holder"), table.c.expire_time <= bindparam("now")
            ),
        )
        self._give_up = table.delete().where(
            table.c.name == bindparam("name"), table.c.holder == bindparam("holder")
        )
        self._held_until: datetime | None = None

    async def hold(self) -> bool:
        """Take the lease or renew it for another `ttl`; whether this holder has it now.

        A failure to reach the database counts as not holding it: the lease may lapse
        meanwhile, and the job must stop rather than risk running beside a new holder.
        """
        now = self._clock.now()
        parameters = {
            "name": self.name,
            "holder": self.holder,
            "expire_time": now + self.ttl,
            "now": now,
        }
        self._held_until = None
        taken = await self._database.sync_write(
            lambda connection: connection.execute(self._take, parameters).rowcount
        )
        if taken == 1:
            self._held_until = now + self.ttl
        return self._held_until is not None

    def held(self, margin: timedelta) -> bool:
        """Whether the last `hold()` won the lease and it has more than `margin` left:
        the job may do one more step that ends before the lease could lapse."""
        return self._held_until is not None and self._clock.now() + margin < self._held_until

    async def release(self) -> None:
        """Give the lease up at once (if held), so another replica takes the job over
        without waiting for it to lapse."""
        self._held_until = None
        parameters = {"name": self.name, "holder": self.holder}
        await self._database.sync_write(
            lambda connection: connection.execute(self._give_up, parameters)
        )
