"""A mini-app's webhook endpoint and the outbox of deliveries to it.

The mini-app's backend registers one URL (https; plain http only to 127.0.0.1, for a
developer's machine) and gets a signing secret (see `webhook_signature`). An event
for the mini-app is written with `enqueue` in the same transaction as the change it
reports, so a delivery exists exactly when the change committed; the deliverer
(`webhook_delivery`) sends it later, from any replica, surviving restarts.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.database.engine import Database
from services.database.insert_if_absent import insert_if_absent
from services.miniapps.models import WEBHOOK_DELIVERIES, WEBHOOK_ENDPOINTS
from services.runtime.clock import Clock
from services.runtime.errors import FieldViolation, InvalidArgument
from services.runtime.ids import new_id

__all__ = ["DeliveryRecord", "DeliveryState", "Webhooks", "checked_webhook_url"]

_E, _D = WEBHOOK_ENDPOINTS.c, WEBHOOK_DELIVERIES.c
_URL_MAX = 2048
_SECRET_PREFIX = "whsec_"  # noqa: S105 - a label that says what the value is, not a secret


class DeliveryState:
    """A delivery's `state` column."""

    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One event for a mini-app and how its delivery stands."""

    event_id: str
    mini_app_id: str
    event_type: str
    body: bytes
    state: str
    attempts: int
    next_attempt_time: datetime
    last_error: str


def checked_webhook_url(url: str, field: str = "url") -> str:
    """`url` if it may receive deliveries: https with a host, or http to 127.0.0.1 (a
    developer's machine); anything else is INVALID_ARGUMENT, so deliveries never go in
    clear text across a network."""
    parts = urlsplit(url)
    local = parts.scheme == "http" and parts.hostname == "127.0.0.1"
    if (
        len(url) > _URL_MAX
        or not (parts.scheme == "https" or local)
        or not parts.hostname
        or parts.username is not None
        or parts.fragment
    ):
        raise InvalidArgument(
            [
                FieldViolation(
                    field,
                    "must be an https URL with a host (or http://127.0.0.1 in development), "
                    f"no credentials or fragment, at most {_URL_MAX} characters",
                )
            ]
        )
    return url


def _record(row: Any) -> DeliveryRecord:
    return DeliveryRecord(
        event_id=row.event_id,
        mini_app_id=row.mini_app_id,
        event_type=row.event_type,
        body=row.body.encode(),
        state=row.state,
        attempts=row.attempts,
        next_attempt_time=row.next_attempt_time,
        last_error=row.last_error,
    )


class Webhooks:
    """Endpoints and the outbox of deliveries, in miniapps' database."""

    def __init__(self, database: Database, clock: Clock) -> None:
        self._database = database
        self._clock = clock

    async def register(self, session: AsyncSession, mini_app_id: str, url: str) -> str:
        """Set the mini-app's endpoint to `url` with a new signing secret, returned once
        (registering again rotates the secret: the old one stops signing at once)."""
        checked_webhook_url(url)
        secret = _SECRET_PREFIX + secrets.token_urlsafe(32)
        now = self._clock.now()
        values = {"url": url, "secret": secret, "update_time": now}
        changed = await session.execute(
            WEBHOOK_ENDPOINTS.update().where(_E.mini_app_id == mini_app_id).values(**values)
        )
        if changed.rowcount == 0:  # type: ignore[attr-defined]
            await session.execute(
                WEBHOOK_ENDPOINTS.insert().values(
                    mini_app_id=mini_app_id, create_time=now, **values
                )
            )
        return secret

    async def enqueue(
        self,
        session: AsyncSession,
        mini_app_id: str,
        event_type: str,
        data: Mapping[str, Any],
        *,
        event_id: str | None = None,
    ) -> str | None:
        """Write an event for the mini-app in `session`'s transaction; its id, or None
        when the mini-app has no endpoint (it learns the outcome by querying). The same
        `event_id` twice is one delivery: a replayed change announces itself once."""
        endpoint = await session.scalar(select(_E.mini_app_id).where(_E.mini_app_id == mini_app_id))
        if endpoint is None:
            return None
        event_id = event_id or new_id()
        now = self._clock.now()
        body = json.dumps(
            {
                "event_id": event_id,
                "type": event_type,
                "create_time": now.isoformat(),
                "data": dict(data),
            },
            separators=(",", ":"),
            sort_keys=True,
        )
        await session.execute(
            insert_if_absent(self._database, WEBHOOK_DELIVERIES).values(
                {
                    "event_id": event_id,
                    "mini_app_id": mini_app_id,
                    "event_type": event_type,
                    "body": body,
                    "state": DeliveryState.PENDING,
                    "attempts": 0,
                    "next_attempt_time": now,
                    "holder": None,
                    "lease_expire_time": None,
                    "last_error": "",
                    "create_time": now,
                    "update_time": now,
                }
            )
        )
        return event_id

    async def delivery(self, session: AsyncSession, event_id: str) -> DeliveryRecord | None:
        """One delivery as it stands."""
        row = (
            await session.execute(select(WEBHOOK_DELIVERIES).where(_D.event_id == event_id))
        ).first()
        return None if row is None else _record(row)
