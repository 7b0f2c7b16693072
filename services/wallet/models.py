"""Wallet's tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.database.schema import UtcDateTime, new_metadata
from services.eventbus.schema import EventTables, event_tables

__all__ = ["EVENT_TABLES", "Base", "Wallet"]


class Base(DeclarativeBase):
    """Declarative base of wallet's own tables."""

    metadata = new_metadata()


EVENT_TABLES: EventTables = event_tables(Base.metadata)
"""The event bus's outbox and inbox, in this service's own database."""


class Wallet(Base):
    """A user's wallet, opened when identity announces the user."""

    __tablename__ = "wallets"

    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime())
