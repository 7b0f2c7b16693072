"""The automated checks' reports, as stored and as the developer and reviewers read them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.caller import Caller
from services.database import Database
from services.miniapps.access import is_staff, version_not_found
from services.miniapps.models import MINI_APPS, REVIEW_REPORTS, VERSIONS
from services.runtime.errors import FailedPrecondition

__all__ = ["FindingRecord", "ReportRecord", "Reports"]

_R, _V, _A = REVIEW_REPORTS.c, VERSIONS.c, MINI_APPS.c
_OWNER = (
    select(_A.developer_id)
    .join(VERSIONS, _V.mini_app_id == _A.mini_app_id)
    .where(_V.version_id == bindparam("version_id"))
)
_REPORT = select(REVIEW_REPORTS).where(_R.version_id == bindparam("version_id"))


@dataclass(frozen=True, slots=True)
class FindingRecord:
    """One finding: where (file, 1-based line or 0), which rule, and what to do."""

    file: str
    line: int
    rule: str
    message: str


@dataclass(frozen=True, slots=True)
class ReportRecord:
    """A version's report."""

    version_id: str
    passed: bool
    findings: tuple[FindingRecord, ...]
    create_time: datetime


class Reports:
    """Stores and reads reports."""

    def __init__(self, database: Database) -> None:
        self._database = database

    @staticmethod
    async def store(session: AsyncSession, report: ReportRecord) -> None:
        """Record `report` in the caller's transaction (the checker's)."""
        await session.execute(
            REVIEW_REPORTS.insert().values(
                version_id=report.version_id,
                passed=report.passed,
                findings=[
                    {"file": f.file, "line": f.line, "rule": f.rule, "message": f.message}
                    for f in report.findings
                ],
                create_time=report.create_time,
            )
        )

    async def read(self, caller: Caller, version_id: str) -> ReportRecord:
        """The version's report to its developer and staff; NOT_FOUND for others,
        FAILED_PRECONDITION `REPORT_NOT_READY` before the checks finished."""
        parameters = {"version_id": version_id}
        async with self._database.read() as session:
            owner = await session.scalar(_OWNER, parameters)
            row = (await session.execute(_REPORT, parameters)).first()
        if owner is None or not (owner == caller.user_id or is_staff(caller)):
            raise version_not_found(version_id)
        if row is None:
            raise FailedPrecondition(
                "REPORT_NOT_READY",
                "the automated checks have not finished",
                metadata={"version_id": version_id},
            )
        findings = tuple(FindingRecord(**finding) for finding in row.findings)
        return ReportRecord(row.version_id, row.passed, findings, row.create_time)
