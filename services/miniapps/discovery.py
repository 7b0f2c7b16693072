"""Discovery: the mini-apps users can open, by category and a text query.

Listed means ACTIVE with a published version, read from the row's status at query
time, so a suspension leaves discovery with its commit, on every replica at once.
The text query is a case-insensitive substring of the name or description: cheap at
the registry's size (thousands of apps, not millions), on both backends alike.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select

from services.database import Database
from services.miniapps.models import MINI_APPS
from services.miniapps.records import AppStatus, MiniAppRecord
from services.miniapps.registry import AppPage, app_record

__all__ = ["Discovery"]

_A = MINI_APPS.c


def _like_pattern(query: str) -> str:
    escaped = query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class Discovery:
    """Reads of the listed mini-apps, newest publication first."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def page(
        self,
        *,
        category: str | None,
        query: str,
        after: tuple[datetime, str] | None,
        size: int,
    ) -> AppPage:
        """Listed mini-apps (of `category` if given, matching `query` if not empty)
        after the (publish time, id) `after`."""
        statement: Select[Any] = select(MINI_APPS).where(
            _A.status == AppStatus.ACTIVE.value, _A.published_version_id.is_not(None)
        )
        if category is not None:
            statement = statement.where(_A.category == category)
        if query:
            pattern = _like_pattern(query)
            statement = statement.where(
                or_(
                    func.lower(_A.name).like(pattern, escape="\\"),
                    func.lower(_A.description).like(pattern, escape="\\"),
                )
            )
        if after is not None:
            published, mini_app_id = after
            statement = statement.where(
                (_A.publish_time < published)
                | ((_A.publish_time == published) & (_A.mini_app_id < mini_app_id))
            )
        statement = statement.order_by(_A.publish_time.desc(), _A.mini_app_id.desc()).limit(
            size + 1
        )
        async with self._database.read() as session:
            rows = (await session.execute(statement)).all()
        apps: list[MiniAppRecord] = [app_record(row) for row in rows[:size]]
        return AppPage(apps, apps[-1].mini_app_id if len(rows) > size else None)
