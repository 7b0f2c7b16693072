"""The deliverer: sends the webhook outbox to mini-apps' backends, signed, with retries.

Each round claims one due PENDING delivery with a lease (`holder` until
`lease_expire_time`, taken with SKIP LOCKED like the review checker's claims, so
replicas share the work and a replica that died mid-POST loses its claim when the lease
lapses), POSTs it, and records the attempt: DELIVERED on a 2xx answer; otherwise PENDING
again, due after an exponential backoff with jitter (tenacity's wait strategy, from the
attempt count stored in the row, so the schedule survives restarts), or FAILED once
`max_attempts` were made. A FAILED delivery stays queryable with its last error.

A delivery can be received more than once (the receiver answered 2xx but the answer
was lost, or the lease lapsed mid-POST): its event id is in the body and in the
`Superapp-Event-Id` header, and receivers de-duplicate by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

import httpx
from sqlalchemy import or_, select
from tenacity import AsyncRetrying, RetryCallState, wait_exponential_jitter

from services.database.engine import Database
from services.miniapps.models import WEBHOOK_DELIVERIES, WEBHOOK_ENDPOINTS
from services.miniapps.webhook_signature import SIGNATURE_HEADER, signature_header
from services.miniapps.webhooks import DeliveryState
from services.runtime.clock import Clock
from services.runtime.ids import new_id
from services.runtime.tasks import stop_task

__all__ = ["EVENT_ID_HEADER", "WebhookDeliverer"]

_log = logging.getLogger(__name__)
_D, _E = WEBHOOK_DELIVERIES.c, WEBHOOK_ENDPOINTS.c
EVENT_ID_HEADER = "Superapp-Event-Id"
_ERROR_MAX = 500


async def _never_called() -> None:  # tenacity's state names the retried call
    return None


class WebhookDeliverer:
    """Delivers due webhooks, one claim at a time; see the module's docstring."""

    def __init__(
        self,
        database: Database,
        clock: Clock,
        client: httpx.AsyncClient,
        *,
        lease: timedelta,
        max_attempts: int,
        backoff_initial_seconds: float,
        backoff_max_seconds: float,
        interval_seconds: float,
    ) -> None:
        """`client`: its timeout bounds one POST and must stay well below `lease`."""
        self._database = database
        self._clock = clock
        self._client = client
        self._lease = lease
        self._max_attempts = max_attempts
        self._wait = wait_exponential_jitter(
            multiplier=backoff_initial_seconds,
            max=backoff_max_seconds,
            jitter=backoff_initial_seconds,
        )
        self._interval = interval_seconds
        self._holder = new_id()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Deliver now (an event was just committed) rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        """Start delivering on the running loop."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="webhook-deliverer")

    async def close(self) -> None:
        """Stop delivering; a claim cut short lapses and another deliverer takes it."""
        task, self._task = self._task, None
        if task is not None:
            await stop_task(task, within=2.0)

    async def _run(self) -> None:
        while True:
            try:
                while await self.deliver_one():
                    pass
            except Exception as error:  # the database may be away: next round
                _log.warning("webhook deliveries failed (%s: %s)", type(error).__name__, error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()

    def backoff(self, attempts: int) -> timedelta:
        """How long after its `attempts`-th failed attempt a delivery is tried again."""
        state = RetryCallState(AsyncRetrying(), _never_called, (), {})
        state.attempt_number = attempts
        return timedelta(seconds=self._wait(state))

    async def deliver_one(self) -> bool:
        """Claim, send and record one due delivery; whether there was one."""
        claimed = await self._claim()
        if claimed is None:
            return False
        event_id, body, url, secret, attempts = claimed
        payload = body.encode()
        timestamp = int(self._clock.now().timestamp())
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header(secret, timestamp, payload),
            EVENT_ID_HEADER: event_id,
        }
        error = ""
        try:
            response = await self._client.post(url, content=payload, headers=headers)
            if not response.is_success:
                error = f"HTTP {response.status_code}"
        except httpx.HTTPError as failure:  # refused, reset, timed out: try again later
            error = f"{type(failure).__name__}: {failure}"[:_ERROR_MAX]
        await self._record(event_id, attempts + 1, error)
        return True

    async def _claim(self) -> tuple[str, str, str, str, int] | None:
        now = self._clock.now()
        due = (
            select(_D.event_id, _D.body, _D.attempts, _E.url, _E.secret)
            .join(WEBHOOK_ENDPOINTS, _E.mini_app_id == _D.mini_app_id)
            .where(
                _D.state == DeliveryState.PENDING,
                _D.next_attempt_time <= now,
                or_(_D.lease_expire_time.is_(None), _D.lease_expire_time < now),
            )
            .order_by(_D.next_attempt_time, _D.event_id)
            .limit(1)
            .with_for_update(of=WEBHOOK_DELIVERIES, skip_locked=True)
        )
        async with self._database.write() as session:
            row = (await session.execute(due)).first()
            if row is None:
                return None
            await session.execute(
                WEBHOOK_DELIVERIES.update()
                .where(_D.event_id == row.event_id)
                .values(holder=self._holder, lease_expire_time=now + self._lease)
            )
        return row.event_id, row.body, row.url, row.secret, row.attempts

    async def _record(self, event_id: str, attempts: int, error: str) -> None:
        now = self._clock.now()
        if not error:
            state, next_time = DeliveryState.DELIVERED, now
        elif attempts >= self._max_attempts:
            state, next_time = DeliveryState.FAILED, now
        else:
            state, next_time = DeliveryState.PENDING, now + self.backoff(attempts)
        async with self._database.write() as session:
            # Only while the claim is still ours: a lapsed lease means another deliverer
            # took the delivery over and records its own attempt.
            await session.execute(
                WEBHOOK_DELIVERIES.update()
                .where(
                    _D.event_id == event_id,
                    _D.holder == self._holder,
                    _D.state == DeliveryState.PENDING,
                )
                .values(
                    state=state,
                    attempts=attempts,
                    next_attempt_time=next_time,
                    holder=None,
                    lease_expire_time=None,
                    last_error=error,
                    update_time=now,
                )
            )
