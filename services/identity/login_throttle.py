"""Sign-in throttling that slows guessing without letting a stranger lock the owner out.

Two bounds, after OWASP's authentication cheat sheet and Keycloak's brute-force detection:

- Per (email, client address): the first `free_failures` failures cost nothing; each
  one after that imposes a delay, `first_delay` doubling up to `max_delay`, during which
  sign-ins of that pair are refused. A success clears the pair, and its failures are
  forgotten `reset_after` after the last one.
- Per client address, across all emails: at most `address_max_failures` failures in an
  `address_window`; the next attempt is refused and the address stays refused for
  `address_block` (credential stuffing: one address, many accounts).

Neither bound lets failures from other addresses refuse the owner's right password
from the owner's own address. Unknown emails are counted exactly like known ones, so
the throttle reveals nothing about which accounts exist, and rows are keyed by digests,
so the tables list neither emails nor addresses.

An attempt counts as a failure from the moment it is admitted, before its password is
checked, until it succeeds: concurrent guesses cannot slip past a bound while the first
of them are still being hashed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from services.database import Database
from services.identity.models import LoginAddressFailures, LoginPairFailures
from services.runtime.errors import ResourceExhausted
from services.runtime.sweeper import Sweeper

__all__ = ["LoginAttempt", "LoginThrottling", "ThrottlePolicy"]

_PAIRS: Table = LoginPairFailures.__table__  # type: ignore[assignment]
_ADDRESSES: Table = LoginAddressFailures.__table__  # type: ignore[assignment]
_PRUNE_BATCH = 1000
# 2**40 seconds is far past any sensible cap; keeps the doubling from overflowing.
_MAX_DOUBLINGS = 40


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """The bounds; see the module's description."""

    free_failures: int
    first_delay: timedelta
    max_delay: timedelta
    reset_after: timedelta
    address_max_failures: int
    address_window: timedelta
    address_block: timedelta

    def delay_after(self, failures: int) -> timedelta:
        """How long a pair is refused after its `failures`-th consecutive failure."""
        beyond = failures - self.free_failures
        if beyond <= 0:
            return timedelta(0)
        return min(self.max_delay, self.first_delay * (1 << min(beyond - 1, _MAX_DOUBLINGS)))


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """An admitted sign-in, counted as a failure until `succeeded` says otherwise."""

    pair_key: str
    address_key: str
    failure_number: int
    """Which consecutive failure of its pair this attempt is if the password is wrong."""


@dataclass(frozen=True, slots=True)
class _Refusal:
    until: datetime
    per_address: bool


def _digest(kind: str, *parts: str) -> str:
    return hashlib.sha256("\0".join((f"superapp.login.{kind}", *parts)).encode()).hexdigest()


class LoginThrottling:
    """The sign-in bounds, kept in identity's database so every replica shares them."""

    def __init__(self, database: Database, policy: ThrottlePolicy) -> None:
        self._database = database
        self._policy = policy
        dialect = postgresql if database.dialect == "postgresql" else sqlite
        # Each row is read through an upsert that changes nothing on a conflict: one
        # statement that makes the row exist, locks it (PostgreSQL; SQLite's write
        # transactions are serial already) and returns it, with no gap in which a
        # concurrent prune could delete it.
        address = dialect.insert(_ADDRESSES).values(
            address_key=bindparam("address"),
            failures=0,
            window_start=bindparam("now"),
            blocked_until=None,
            expire_time=bindparam("now"),
        )
        self._address = address.on_conflict_do_update(
            index_elements=[_ADDRESSES.c.address_key],
            set_={"failures": _ADDRESSES.c.failures},
        ).returning(*_ADDRESSES.c)
        pair = dialect.insert(_PAIRS).values(
            pair_key=bindparam("pair"),
            failures=0,
            blocked_until=bindparam("now"),
            expire_time=bindparam("now"),
        )
        self._pair = pair.on_conflict_do_update(
            index_elements=[_PAIRS.c.pair_key], set_={"failures": _PAIRS.c.failures}
        ).returning(*_PAIRS.c)
        self._set_address = (
            update(_ADDRESSES)
            .where(_ADDRESSES.c.address_key == bindparam("address"))
            .values(
                failures=bindparam("new_failures"),
                window_start=bindparam("new_window_start"),
                blocked_until=bindparam("new_blocked_until"),
                expire_time=bindparam("new_expire_time"),
            )
        )
        self._set_pair = (
            update(_PAIRS)
            .where(_PAIRS.c.pair_key == bindparam("pair"))
            .values(
                failures=bindparam("new_failures"),
                blocked_until=bindparam("new_blocked_until"),
                expire_time=bindparam("new_expire_time"),
            )
        )
        # A failure's delay runs from when it was reported, not from when its attempt
        # was admitted (hashing may have waited for its turn in between).
        self._delay_pair = (
            update(_PAIRS)
            .where(
                _PAIRS.c.pair_key == bindparam("pair"),
                _PAIRS.c.blocked_until < bindparam("new_blocked_until"),
            )
            .values(
                blocked_until=bindparam("new_blocked_until"),
                expire_time=bindparam("new_expire_time"),
            )
        )
        self._clear_pair = delete(_PAIRS).where(_PAIRS.c.pair_key == bindparam("pair"))
        self._uncount_address = (
            update(_ADDRESSES)
            .where(_ADDRESSES.c.address_key == bindparam("address"))
            .values(failures=case((_ADDRESSES.c.failures > 0, _ADDRESSES.c.failures - 1), else_=0))
        )
        self._forget = [
            table.delete().where(
                key.in_(
                    select(key)
                    .where(table.c.expire_time < bindparam("now"))
                    .order_by(table.c.expire_time)
                    .limit(bindparam("limit"))
                    # Replicas prune side by side, and a row a sign-in holds is left
                    # for next time rather than waited for.
                    .with_for_update(skip_locked=True)
                )
            )
            for table, key in ((_PAIRS, _PAIRS.c.pair_key), (_ADDRESSES, _ADDRESSES.c.address_key))
        ]

    async def admit(self, email: str, client: str, now: datetime) -> LoginAttempt:
        """Count a sign-in of `email` from `client` as a failure for now; RESOURCE_EXHAUSTED
        `TOO_MANY_ATTEMPTS` (with the time to wait) if a bound refuses it."""
        pair_key, address_key = _digest("pair", email, client), _digest("address", client)
        outcome = await self._database.sync_write(
            lambda connection: self._admit(connection, pair_key, address_key, now)
        )
        if isinstance(outcome, _Refusal):  # raised after the commit, which keeps a new block
            where, scope = (
                ("from this client address", "per client address")
                if outcome.per_address
                else ("for this email from this client address", "per email and client address")
            )
            raise ResourceExhausted(
                "TOO_MANY_ATTEMPTS",
                f"too many failed sign-ins {where}; try again later",
                retry_after_seconds=(outcome.until - now).total_seconds(),
                metadata={"scope": scope},
            )
        return outcome

    def _admit(
        self, connection: Connection, pair_key: str, address_key: str, now: datetime
    ) -> LoginAttempt | _Refusal:
        policy = self._policy
        keys: dict[str, Any] = {"address": address_key, "pair": pair_key, "now": now}
        address = connection.execute(self._address, keys).one()
        if address.blocked_until is not None and address.blocked_until > now:
            return _Refusal(address.blocked_until, per_address=True)
        address_failures, window_start = address.failures, address.window_start
        if window_start + policy.address_window <= now:
            address_failures, window_start = 0, now
        if address_failures >= policy.address_max_failures:
            blocked_until = now + policy.address_block
            connection.execute(
                self._set_address,
                {
                    **keys,
                    "new_failures": 0,
                    "new_window_start": blocked_until,
                    "new_blocked_until": blocked_until,
                    "new_expire_time": blocked_until + policy.address_window,
                },
            )
            return _Refusal(blocked_until, per_address=True)
        pair = connection.execute(self._pair, keys).one()
        forgotten = pair.expire_time <= now
        if not forgotten and pair.blocked_until > now:
            return _Refusal(pair.blocked_until, per_address=False)
        failure_number = (0 if forgotten else pair.failures) + 1
        connection.execute(
            self._set_address,
            {
                **keys,
                "new_failures": address_failures + 1,
                "new_window_start": window_start,
                "new_blocked_until": None,
                "new_expire_time": window_start + policy.address_window,
            },
        )
        blocked_until = now + policy.delay_after(failure_number)
        connection.execute(
            self._set_pair,
            {
                **keys,
                "new_failures": failure_number,
                "new_blocked_until": blocked_until,
                "new_expire_time": max(now + policy.reset_after, blocked_until),
            },
        )
        return LoginAttempt(pair_key, address_key, failure_number)

    async def failed(self, attempt: LoginAttempt, now: datetime) -> None:
        """The attempt's password was wrong: it stays counted, and its delay runs from now."""
        delay = self._policy.delay_after(attempt.failure_number)
        if delay:
            parameters = {
                "pair": attempt.pair_key,
                "new_blocked_until": now + delay,
                "new_expire_time": now + max(self._policy.reset_after, delay),
            }
            await self._database.sync_write(
                lambda connection: connection.execute(self._delay_pair, parameters)
            )

    async def succeeded(self, session: AsyncSession, attempt: LoginAttempt) -> None:
        """The attempt signed in: clear its pair and stop counting it against its address."""
        await session.execute(self._clear_pair, {"pair": attempt.pair_key})
        await session.execute(self._uncount_address, {"address": attempt.address_key})

    async def prune(self, now: datetime, *, limit: int) -> int:
        """Forget up to `limit` expired rows of each table; the larger count."""

        def forget(connection: Connection) -> int:
            parameters = {"now": now, "limit": limit}
            return max(connection.execute(each, parameters).rowcount for each in self._forget)

        return await self._database.sync_write(forget)

    def retention(self, now: Callable[[], datetime], *, interval_seconds: float = 600.0) -> Sweeper:
        """A sweeper that prunes expired rows, a thousand at a time."""
        return Sweeper(
            "login-throttle-retention",
            lambda: self.prune(now(), limit=_PRUNE_BATCH),
            batch=_PRUNE_BATCH,
            interval_seconds=interval_seconds,
        )
