"""UtcDateTime on SQLite: the stored text is SQLAlchemy's own, and times come back aware."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import DATETIME

from services.database.schema import UtcDateTime

_MOMENTS = [
    datetime(2026, 11, 21, 22, 40, 0, tzinfo=UTC),  # no microseconds: still written out
    datetime(2026, 11, 21, 22, 40, 0, 1, tzinfo=UTC),
    datetime(2026, 11, 21, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
]


@pytest.mark.parametrize("moment", _MOMENTS)
def test_rows_round_trip_and_match_sqlalchemys_stored_text(
    tmp_path: Path, moment: datetime
) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'times.db'}")
    metadata = sa.MetaData()
    table = sa.Table("times", metadata, sa.Column("at", UtcDateTime()))
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(table.insert().values(at=moment))
        stored = connection.exec_driver_sql("SELECT at FROM times").scalar_one()
        read = connection.execute(sa.select(table.c.at)).scalar_one()
    # Rows written before the fast path (by SQLAlchemy's DATETIME) compare as equals.
    legacy = DATETIME().bind_processor(engine.dialect)
    assert legacy is not None
    assert stored == legacy(moment.astimezone(UTC).replace(tzinfo=None))
    assert read == moment
    assert read.tzinfo is UTC
    engine.dispose()


def test_a_naive_time_is_refused() -> None:
    engine = sa.create_engine("sqlite://")
    metadata = sa.MetaData()
    table = sa.Table("times", metadata, sa.Column("at", UtcDateTime()))
    metadata.create_all(engine)
    with engine.begin() as connection, pytest.raises(sa.exc.StatementError, match="naive"):
        connection.execute(table.insert().values(at=datetime(2026, 1, 1)))
    engine.dispose()
