"""Read what a service recorded in its outbox: the events it announced, in commit order."""

from __future__ import annotations

from sqlalchemy import MetaData, select

from services.database import Database
from services.eventbus.schema import EventTables

__all__ = ["recorded_events"]


async def recorded_events(database_url: str, subject: str) -> list[bytes]:
    """Payloads recorded under `subject` in the outbox of the database at `database_url`."""
    # Every service's outbox has these columns (see services.eventbus.schema).
    outbox = EventTables(MetaData()).outbox
    database = Database.connect(database_url)
    try:
        async with database.read() as session:
            rows = await session.execute(
                select(outbox.c.payload).where(outbox.c.subject == subject).order_by(outbox.c.seq)
            )
            return [row.payload for row in rows]
    finally:
        await database.dispose()
