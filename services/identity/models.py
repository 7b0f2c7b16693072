"""Identity's tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.database.schema import UtcDateTime, new_metadata
from services.eventbus.schema import EventTables, event_tables

__all__ = ["EVENT_TABLES", "Base", "User"]


class Base(DeclarativeBase):
    """Declarative base of identity's own tables."""

    metadata = new_metadata()


EVENT_TABLES: EventTables = event_tables(Base.metadata)
"""The event bus's outbox and inbox, in this service's own database."""


class User(Base):
    """An account: the single source of truth for who a user is."""

    __tablename__ = "users"

    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    roles: Mapped[str] = mapped_column(String(100))
    create_time: Mapped[datetime] = mapped_column(UtcDateTime())
    update_time: Mapped[datetime] = mapped_column(UtcDateTime())
