"""The automated checks of submitted versions, off the request path.

Two steps, so that no transaction is held open while a bundle is parsed:

1. The service consumes its own VersionStateChanged events. For a version that became
   SUBMITTED, the handler moves it to CHECKING in the consumer's inbox transaction (so
   a redelivered event changes nothing) and wakes the checker after the commit.
2. The checker claims one CHECKING version at a time with a lease (`check_holder`
   until `check_expire_time`, taken with SKIP LOCKED, so replicas share the work and a
   replica that died mid-check loses its claim when the lease lapses), runs the review
   library on a worker thread, then, if it still holds the claim, stores the report and
   moves the version to IN_REVIEW when every check passed or REJECTED when one failed.

Rejection by the checks is final and needs no reviewer: a finding is something the
developer must fix (the report says where and how), so a reviewer's time goes only to
versions the machine could not fault. The checker also polls every `interval_seconds`,
which picks up claims whose lease lapsed and events handled while it was busy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import timedelta

from sqlalchemy import bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from superapp.miniapps.v1 import events_pb2
from superapp.miniapps.v1 import miniapps_service_pb2 as pb

from services.database import Database
from services.database.after_commit import after_commit
from services.eventbus.envelope import Envelope
from services.miniapps.models import BUNDLES, VERSIONS
from services.miniapps.records import VersionState
from services.miniapps.reports import FindingRecord, ReportRecord, Reports
from services.miniapps.review import ReviewReport
from services.miniapps.review_metrics import ReviewMetrics
from services.miniapps.versions import Versions
from services.runtime.clock import Clock
from services.runtime.ids import new_id
from services.runtime.tasks import stop_task

__all__ = ["Checker", "Review"]

_log = logging.getLogger(__name__)
_V, _B = VERSIONS.c, BUNDLES.c
Review = Callable[[bytes], ReviewReport]
"""The review library's entry point, with the service's limits bound."""
_MANIFEST_VERSION_MAX = 64
_CONTENT = select(_B.content).where(_B.sha256 == bindparam("sha256"))


class Checker:
    """Moves submitted versions through CHECKING to IN_REVIEW or REJECTED."""

    def __init__(
        self,
        database: Database,
        versions: Versions,
        clock: Clock,
        review: Review,
        metrics: ReviewMetrics,
        *,
        lease: timedelta,
        interval_seconds: float,
        workers: int = 1,
    ) -> None:
        """`workers`: processes the review runs in (0: a thread of this process). A
        review is CPU-bound Python over a syntax tree (~0.8 s for 1.7 MB of JavaScript
        here), which in a thread would hold the GIL against this process's RPCs."""
        self._database = database
        self._versions = versions
        self._clock = clock
        self._review = review
        self._metrics = metrics
        self._lease = lease
        self._interval = interval_seconds
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._holder = new_id()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def on_version_state_changed(
        self, session: AsyncSession, event: events_pb2.VersionStateChanged, _: Envelope
    ) -> None:
        """SUBMITTED → CHECKING, in the consumer's inbox transaction."""
        if event.version.state != pb.VERSION_STATE_SUBMITTED:
            return
        version = await self._versions.locked(session, event.version.version_id)
        if version is None or version.state is not VersionState.SUBMITTED:
            return
        await self._versions.move(session, version, VersionState.CHECKING, actor_id="")
        after_commit(session).add(self._wake.set)

    def start(self) -> None:
        """Start checking on the running loop."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="version-checker")

    async def close(self) -> None:
        """Stop checking; a claim cut short lapses and another checker takes it."""
        task, self._task = self._task, None
        if task is not None:
            await stop_task(task, within=2.0)
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _executor(self) -> Executor | None:
        if self._workers == 0:
            return None  # the event loop's default thread pool
        if self._pool is None:
            # spawn, not fork: a forked child would inherit gRPC's and NATS's threads'
            # locks in whatever state they were.
            self._pool = ProcessPoolExecutor(
                max_workers=self._workers, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    async def _run(self) -> None:
        while True:
            try:
                while await self.check_one():
                    pass
            except Exception as error:  # the database may be away: next round
                _log.warning("version checks failed (%s: %s)", type(error).__name__, error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()

    async def check_one(self) -> bool:
        """Claim, check and conclude one CHECKING version; whether there was one."""
        claimed = await self._claim()
        if claimed is None:
            return False
        version_id, sha256 = claimed
        rows = await self._database.lookup(_CONTENT, {"sha256": sha256})
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            report = await loop.run_in_executor(
                self._executor(), self._review, bytes(rows[0].content)
            )
        except BrokenProcessPool:
            # A worker died (killed, out of memory): a new pool for the next try; this
            # version's claim lapses and it is checked again.
            self._pool = None
            raise
        self._metrics.reviewed(time.perf_counter() - started)
        await self._conclude(version_id, report)
        return True

    async def _claim(self) -> tuple[str, str] | None:
        now = self._clock.now()
        due = (
            select(_V.version_id, _V.bundle_sha256)
            .where(
                _V.state == VersionState.CHECKING.value,
                or_(_V.check_expire_time.is_(None), _V.check_expire_time < now),
            )
            .order_by(_V.submit_time, _V.version_id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        async with self._database.write() as session:
            row = (await session.execute(due)).first()
            if row is None:
                return None
            await session.execute(
                VERSIONS.update()
                .where(_V.version_id == row.version_id)
                .values(check_holder=self._holder, check_expire_time=now + self._lease)
            )
        return row.version_id, row.bundle_sha256

    async def _conclude(self, version_id: str, report: ReviewReport) -> None:
        async with self._database.write() as session:
            version = await self._versions.locked(session, version_id)
            holder = await session.scalar(
                select(_V.check_holder).where(_V.version_id == version_id)
            )
            if version is None or version.state is not VersionState.CHECKING:
                return
            if holder != self._holder:
                return  # our lease lapsed and another checker took the version over
            now = self._clock.now()
            findings = tuple(
                FindingRecord(f.file, f.line, f.rule, f.message) for f in report.findings
            )
            await Reports.store(session, ReportRecord(version_id, report.passed, findings, now))
            manifest = report.manifest
            self._metrics.concluded(session, passed=report.passed)
            await self._versions.move(
                session,
                version,
                VersionState.IN_REVIEW if report.passed else VersionState.REJECTED,
                actor_id="",
                manifest_version=(manifest.version if manifest else "")[:_MANIFEST_VERSION_MAX],
                permissions=[p.name for p in manifest.permissions] if manifest else [],
                check_holder=None,
                check_expire_time=None,
            )
