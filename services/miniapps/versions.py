"""Versions of mini-apps and their moves through the review lifecycle.

DRAFT → SUBMITTED → CHECKING → IN_REVIEW / REJECTED → APPROVED → PUBLISHED →
SUPERSEDED or SUSPENDED (→ PUBLISHED again when its mini-app is reinstated). Each move
locks the version's row, checks the state it comes from (FAILED_PRECONDITION
`INVALID_VERSION_STATE` otherwise) and records a VersionStateChanged in the same
transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from superapp.miniapps.v1 import events_pb2

from services.auth.caller import Caller
from services.database import Database
from services.eventbus import Outbox
from services.miniapps.access import (
    is_staff,
    may_manage,
    may_see_app,
    mini_app_not_found,
    version_not_found,
)
from services.miniapps.bundles import BundleStore, Digests
from services.miniapps.messages import version_message, version_state
from services.miniapps.models import BUNDLES, MINI_APPS, VERSIONS
from services.miniapps.records import AppStatus, MiniAppRecord, VersionRecord, VersionState
from services.miniapps.registry import app_record, locked_app, managed_app
from services.runtime.clock import Clock
from services.runtime.errors import FailedPrecondition
from services.runtime.ids import new_id
from services.runtime.proto_time import to_timestamp

__all__ = ["VersionPage", "Versions", "from_micros", "to_micros", "version_record"]

_V, _B, _A = VERSIONS.c, BUNDLES.c, MINI_APPS.c
_WITH_BUNDLE = select(VERSIONS, _B.integrity, _B.size_bytes).join(
    BUNDLES, _B.sha256 == _V.bundle_sha256
)
_BY_ID = _WITH_BUNDLE.where(_V.version_id == bindparam("version_id"))
_LOCKED_BY_ID = _BY_ID.with_for_update(of=VERSIONS)
_APP_BY_ID = select(MINI_APPS).where(_A.mini_app_id == bindparam("mini_app_id"))


def version_record(row: Row[Any]) -> VersionRecord:
    """A `versions` row joined with its bundle's integrity and size."""
    return VersionRecord(
        version_id=row.version_id,
        mini_app_id=row.mini_app_id,
        state=VersionState(row.state),
        bundle_sha256=row.bundle_sha256,
        bundle_integrity=row.integrity,
        bundle_size_bytes=row.size_bytes,
        manifest_version=row.manifest_version,
        permissions=tuple(row.permissions),
        rejection_reasons=tuple(row.rejection_reasons),
        approval_note=row.approval_note,
        reviewer_id=row.reviewer_id,
        create_time=row.create_time,
        submit_time=row.submit_time,
        update_time=row.update_time,
    )


def invalid_state(version: VersionRecord, expected: Iterable[VersionState]) -> FailedPrecondition:
    """The refusal of a move the version's state does not allow."""
    allowed = ",".join(state.value for state in expected)
    return FailedPrecondition(
        "INVALID_VERSION_STATE",
        f"the version is {version.state.value}; this needs {allowed.replace(',', ' or ')}",
        metadata={
            "version_id": version.version_id,
            "state": f"VERSION_STATE_{version.state.value}",
            "expected": ",".join(f"VERSION_STATE_{state}" for state in expected),
        },
    )


def suspended(app: MiniAppRecord) -> FailedPrecondition:
    """The refusal of a developer's change to a suspended mini-app."""
    return FailedPrecondition(
        "MINI_APP_SUSPENDED",
        "the mini-app is suspended",
        metadata={"mini_app_id": app.mini_app_id},
    )


@dataclass(frozen=True, slots=True)
class VersionPage:
    """One page of versions and the key to continue after, if there is more."""

    versions: list[VersionRecord]
    next_after: str | None


class Versions:
    """Business rules of versions; every move announces itself through the outbox."""

    def __init__(
        self, database: Database, outbox: Outbox, clock: Clock, bundles: BundleStore
    ) -> None:
        self._database = database
        self._outbox = outbox
        self._clock = clock
        self._bundles = bundles

    async def upload(
        self,
        session: AsyncSession,
        caller: Caller,
        mini_app_id: str,
        content: bytes,
        digests: Digests,
    ) -> VersionRecord:
        """A new DRAFT version of the caller's active mini-app, its bundle stored once."""
        app = await managed_app(session, caller, mini_app_id)
        if app.status is AppStatus.SUSPENDED:
            raise suspended(app)
        await self._bundles.put(session, content, digests)
        now = self._clock.now()
        version = VersionRecord(
            version_id=new_id(),
            mini_app_id=mini_app_id,
            state=VersionState.DRAFT,
            bundle_sha256=digests.sha256,
            bundle_integrity=digests.integrity,
            bundle_size_bytes=digests.size_bytes,
            manifest_version="",
            permissions=(),
            rejection_reasons=(),
            approval_note="",
            reviewer_id="",
            create_time=now,
            submit_time=None,
            update_time=now,
        )
        await session.execute(
            VERSIONS.insert().values(
                version_id=version.version_id,
                mini_app_id=mini_app_id,
                state=version.state.value,
                bundle_sha256=digests.sha256,
                manifest_version="",
                permissions=[],
                rejection_reasons=[],
                approval_note="",
                reviewer_id="",
                create_time=now,
                submit_time=None,
                update_time=now,
            )
        )
        event = events_pb2.VersionUploaded(
            mini_app_id=mini_app_id,
            version=version_message(version),
            occur_time=to_timestamp(now),
        )
        await self._outbox.record(session, event, mini_app_id)
        return version

    async def get(self, caller: Caller, version_id: str) -> VersionRecord:
        """The version if `caller` may see it: its developer and staff always, anyone
        the published version of a listed mini-app; NOT_FOUND otherwise."""
        async with self._database.read() as session:
            row = (await session.execute(_BY_ID, {"version_id": version_id})).first()
            if row is None:
                raise version_not_found(version_id)
            version = version_record(row)
            app_row = (
                await session.execute(_APP_BY_ID, {"mini_app_id": version.mini_app_id})
            ).one()
        app = app_record(app_row)
        published = version.state is VersionState.PUBLISHED and app.status is AppStatus.ACTIVE
        if not (may_manage(caller, app) or is_staff(caller) or published):
            raise version_not_found(version_id)
        return version

    async def page_of_app(
        self, caller: Caller, mini_app_id: str, *, after: str | None, size: int
    ) -> VersionPage:
        """The mini-app's versions, newest first, to its developer and staff."""
        query: Select[Any] = _WITH_BUNDLE.where(_V.mini_app_id == mini_app_id)
        if after is not None:
            query = query.where(_V.version_id < after)
        query = query.order_by(_V.version_id.desc()).limit(size + 1)
        async with self._database.read() as session:
            app_row = (await session.execute(_APP_BY_ID, {"mini_app_id": mini_app_id})).first()
            app = None if app_row is None else app_record(app_row)
            if app is None or not (may_manage(caller, app) or is_staff(caller)):
                raise mini_app_not_found(mini_app_id)
            rows = (await session.execute(query)).all()
        versions = [version_record(row) for row in rows[:size]]
        return VersionPage(versions, versions[-1].version_id if len(rows) > size else None)

    async def review_queue(self, *, after: tuple[int, str] | None, size: int) -> VersionPage:
        """IN_REVIEW versions, oldest submission first, after (submit time in
        microseconds since the epoch, version id); staff only: the caller checks."""
        query: Select[Any] = _WITH_BUNDLE.where(_V.state == VersionState.IN_REVIEW.value)
        if after is not None:
            submitted, version_id = from_micros(after[0]), after[1]
            query = query.where(
                (_V.submit_time > submitted)
                | ((_V.submit_time == submitted) & (_V.version_id > version_id))
            )
        query = query.order_by(_V.submit_time, _V.version_id).limit(size + 1)
        async with self._database.read() as session:
            rows = (await session.execute(query)).all()
        versions = [version_record(row) for row in rows[:size]]
        return VersionPage(versions, versions[-1].version_id if len(rows) > size else None)

    async def suspend(
        self, session: AsyncSession, caller: Caller, mini_app_id: str, reason: str
    ) -> MiniAppRecord:
        """ACTIVE → SUSPENDED, with the published version; a suspended one is returned
        as it is. It leaves discovery with this commit (discovery reads the status)."""
        app = await locked_app(session, mini_app_id)
        if app is None:
            raise mini_app_not_found(mini_app_id)
        if app.status is AppStatus.SUSPENDED:
            return app
        if app.published_version_id is not None:
            published = await self.locked(session, app.published_version_id)
            if published is not None and published.state is VersionState.PUBLISHED:
                await self.move(session, published, VersionState.SUSPENDED, actor_id=caller.user_id)
        now = self._clock.now()
        await session.execute(
            MINI_APPS.update()
            .where(_A.mini_app_id == mini_app_id)
            .values(status=AppStatus.SUSPENDED.value, suspend_reason=reason, update_time=now)
        )
        event = events_pb2.MiniAppSuspended(
            mini_app_id=mini_app_id,
            client_id=app.client_id,
            reason=reason,
            suspended_by=caller.user_id,
            occur_time=to_timestamp(now),
        )
        await self._outbox.record(session, event, mini_app_id)
        updated = await locked_app(session, mini_app_id)
        assert updated is not None  # locked above, in this transaction
        return updated

    async def reinstate(
        self, session: AsyncSession, caller: Caller, mini_app_id: str, note: str
    ) -> MiniAppRecord:
        """SUSPENDED → ACTIVE, and the version suspended with it PUBLISHED again; an
        active one is returned as it is. It is back in discovery with this commit."""
        app = await locked_app(session, mini_app_id)
        if app is None:
            raise mini_app_not_found(mini_app_id)
        if app.status is AppStatus.ACTIVE:
            return app
        if app.published_version_id is not None:
            # Nothing can be published while suspended: the app's published version is
            # still the one its suspension suspended.
            version = await self.locked(session, app.published_version_id)
            if version is not None and version.state is VersionState.SUSPENDED:
                await self.move(session, version, VersionState.PUBLISHED, actor_id=caller.user_id)
        now = self._clock.now()
        await session.execute(
            MINI_APPS.update()
            .where(_A.mini_app_id == mini_app_id)
            .values(status=AppStatus.ACTIVE.value, suspend_reason="", update_time=now)
        )
        event = events_pb2.MiniAppReinstated(
            mini_app_id=mini_app_id,
            client_id=app.client_id,
            note=note,
            reinstated_by=caller.user_id,
            occur_time=to_timestamp(now),
        )
        await self._outbox.record(session, event, mini_app_id)
        updated = await locked_app(session, mini_app_id)
        assert updated is not None  # locked above, in this transaction
        return updated

    async def locked(self, session: AsyncSession, version_id: str) -> VersionRecord | None:
        """The version, its row locked for the rest of the transaction (PostgreSQL)."""
        row = (await session.execute(_LOCKED_BY_ID, {"version_id": version_id})).first()
        return None if row is None else version_record(row)

    async def _owned(
        self, session: AsyncSession, caller: Caller, version_id: str
    ) -> tuple[VersionRecord, MiniAppRecord]:
        version = await self.locked(session, version_id)
        app = None if version is None else await locked_app(session, version.mini_app_id)
        if version is None or app is None or not may_manage(caller, app):
            raise version_not_found(version_id)
        return version, app

    async def _reviewed(
        self, session: AsyncSession, caller: Caller, version_id: str
    ) -> tuple[VersionRecord, MiniAppRecord]:
        version = await self.locked(session, version_id)
        app = None if version is None else await locked_app(session, version.mini_app_id)
        if version is None or app is None or not may_see_app(caller, app):
            raise version_not_found(version_id)
        return version, app

    async def move(
        self,
        session: AsyncSession,
        version: VersionRecord,
        to: VersionState,
        *,
        actor_id: str,
        **changes: Any,
    ) -> VersionRecord:
        """Record `version`'s move to `to` (with column `changes`) and its event."""
        now = self._clock.now()
        await session.execute(
            VERSIONS.update()
            .where(_V.version_id == version.version_id)
            .values(state=to.value, update_time=now, **changes)
        )
        row = (await session.execute(_BY_ID, {"version_id": version.version_id})).one()
        moved = version_record(row)
        event = events_pb2.VersionStateChanged(
            mini_app_id=version.mini_app_id,
            version=version_message(moved),
            previous_state=version_state(version.state),
            actor_id=actor_id,
            occur_time=to_timestamp(now),
        )
        await self._outbox.record(session, event, version.mini_app_id)
        return moved

    async def submit(self, session: AsyncSession, caller: Caller, version_id: str) -> VersionRecord:
        """DRAFT → SUBMITTED; the checker takes it from there, off the request path."""
        version, app = await self._owned(session, caller, version_id)
        if app.status is AppStatus.SUSPENDED:
            raise suspended(app)
        if version.state is not VersionState.DRAFT:
            raise invalid_state(version, [VersionState.DRAFT])
        return await self.move(
            session,
            version,
            VersionState.SUBMITTED,
            actor_id=caller.user_id,
            submit_time=self._clock.now(),
        )

    async def approve(
        self, session: AsyncSession, caller: Caller, version_id: str, note: str
    ) -> VersionRecord:
        """IN_REVIEW → APPROVED, by a reviewer (the policy checks the role)."""
        return await self._conclude_review(
            session, caller, version_id, VersionState.APPROVED, approval_note=note
        )

    async def reject(
        self, session: AsyncSession, caller: Caller, version_id: str, reasons: list[str]
    ) -> VersionRecord:
        """IN_REVIEW → REJECTED with the reviewer's reasons."""
        return await self._conclude_review(
            session, caller, version_id, VersionState.REJECTED, rejection_reasons=reasons
        )

    async def _conclude_review(
        self,
        session: AsyncSession,
        caller: Caller,
        version_id: str,
        outcome: VersionState,
        **decision: Any,
    ) -> VersionRecord:
        """A reviewer's decision on a version IN_REVIEW, recorded with its `decision`."""
        version, _ = await self._reviewed(session, caller, version_id)
        if version.state is not VersionState.IN_REVIEW:
            raise invalid_state(version, [VersionState.IN_REVIEW])
        return await self.move(
            session,
            version,
            outcome,
            actor_id=caller.user_id,
            reviewer_id=caller.user_id,
            **decision,
        )

    async def publish(
        self, session: AsyncSession, caller: Caller, version_id: str
    ) -> tuple[VersionRecord, MiniAppRecord]:
        """APPROVED → PUBLISHED by its developer; the previously published version, if
        any, becomes SUPERSEDED in the same transaction."""
        version, app = await self._owned(session, caller, version_id)
        if app.status is AppStatus.SUSPENDED:
            raise suspended(app)
        if version.state is not VersionState.APPROVED:
            raise invalid_state(version, [VersionState.APPROVED])
        if app.published_version_id is not None:
            previous = await self.locked(session, app.published_version_id)
            if previous is not None:
                await self.move(session, previous, VersionState.SUPERSEDED, actor_id=caller.user_id)
        published = await self.move(
            session, version, VersionState.PUBLISHED, actor_id=caller.user_id
        )
        now = self._clock.now()
        await session.execute(
            MINI_APPS.update()
            .where(_A.mini_app_id == app.mini_app_id)
            .values(published_version_id=version_id, publish_time=now, update_time=now)
        )
        updated = await locked_app(session, app.mini_app_id)
        assert updated is not None  # locked above, in this transaction
        return published, updated


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(moment: datetime) -> int:
    """`moment` as whole microseconds since the epoch, exactly (page-token keys)."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


def from_micros(micros: int) -> datetime:
    """The inverse of `to_micros`."""
    return _EPOCH + timedelta(microseconds=micros)
