"""Wallet's tables: wallets, the ledger (accounts, transactions, postings) and holds.

The ledger is append-only. `accounts.posted` and `accounts.held` are maintained in the
same transaction as the postings and holds that change them, so balances are read from
one row and never recomputed from history; the CHECK constraint makes an overdrawn user
account impossible even if a code path forgot to look.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.database.idempotency import idempotency_table
from services.database.schema import UtcDateTime, new_metadata
from services.database.service_secrets import service_secrets_table
from services.eventbus.schema import EventTables, event_tables

__all__ = [
    "ACCOUNTS",
    "EVENT_TABLES",
    "HOLDS",
    "IDEMPOTENCY_KEYS",
    "POSTINGS",
    "SERVICE_SECRETS",
    "TRANSACTIONS",
    "WALLETS",
    "Base",
    "Wallet",
]

# SQLite only auto-increments an INTEGER PRIMARY KEY (its rowid).
_Sequence = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base of wallet's own tables."""

    metadata = new_metadata()


EVENT_TABLES: EventTables = event_tables(Base.metadata)
"""The event bus's outbox and inbox, in this service's own database."""

IDEMPOTENCY_KEYS = idempotency_table(Base.metadata)
"""Stored responses of mutations, by (caller, request_id)."""

SERVICE_SECRETS = service_secrets_table(Base.metadata)
"""Secrets every replica shares: the key of the page tokens."""


class Wallet(Base):
    """A user's wallet, opened when identity announces the user."""

    __tablename__ = "wallets"

    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime())
    # Set by the user's first top-up, in its transaction (see `Transfers.credit`).
    first_top_up_time: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


WALLETS: Table = Wallet.__table__  # type: ignore[assignment]

ACCOUNTS = Table(
    "accounts",
    Base.metadata,
    # A user id, or a system account's name (`SYSTEM_ACCOUNT_FUNDING`).
    Column("owner", String(36), nullable=False),
    Column("currency_code", String(3), nullable=False),
    # System accounts are the platform's side of every top-up and may go negative.
    Column("system", Boolean(), nullable=False),
    # The sum of all postings on the account.
    Column("posted_minor", BigInteger(), nullable=False),
    # The amount reserved by pending holds; available = posted - held.
    Column("held_minor", BigInteger(), nullable=False),
    Column("create_time", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("owner", "currency_code"),
    CheckConstraint("held_minor >= 0", name="held_not_negative"),
    CheckConstraint("system OR posted_minor >= held_minor", name="never_overdrawn"),
)

TRANSACTIONS = Table(
    "ledger_transactions",
    Base.metadata,
    # Commit order: history pages by it, newest first.
    Column("seq", _Sequence, primary_key=True, autoincrement=True),
    Column("transaction_id", String(36), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("currency_code", String(3), nullable=False),
    Column("description", String(200), nullable=False),
    Column("request_id", String(128), nullable=False),
    Column("hold_id", String(36), nullable=True),
    Column("create_time", UtcDateTime(), nullable=False),
)

POSTINGS = Table(
    "postings",
    Base.metadata,
    Column("seq", ForeignKey("ledger_transactions.seq"), nullable=False),
    # Position within the transaction: debits first, then credits.
    Column("leg", SmallInteger(), nullable=False),
    Column("owner", String(36), nullable=False),
    Column("currency_code", String(3), nullable=False),
    # Signed: negative leaves the account, positive enters it; never zero.
    Column("amount_minor", BigInteger(), nullable=False),
    PrimaryKeyConstraint("seq", "leg"),
    ForeignKeyConstraint(["owner", "currency_code"], ["accounts.owner", "accounts.currency_code"]),
    CheckConstraint("amount_minor <> 0", name="amount_not_zero"),
    # A user's history, newest first, in all currencies or in one.
    Index("ix_postings_owner_seq", "owner", "seq"),
    Index("ix_postings_owner_currency_seq", "owner", "currency_code", "seq"),
)

HOLDS = Table(
    "holds",
    Base.metadata,
    Column("hold_id", String(36), primary_key=True),
    Column("user_id", String(36), nullable=False),
    Column("currency_code", String(3), nullable=False),
    Column("amount_minor", BigInteger(), nullable=False),
    # pending, captured, voided or expired.
    Column("status", String(16), nullable=False),
    Column("description", String(200), nullable=False),
    Column("create_time", UtcDateTime(), nullable=False),
    Column("expire_time", UtcDateTime(), nullable=False),
    Column("resolve_time", UtcDateTime(), nullable=True),
    Column("to_user_id", String(36), nullable=True),
    Column("captured_minor", BigInteger(), nullable=True),
    Column("capture_transaction_id", String(36), nullable=True),
    ForeignKeyConstraint(
        ["user_id", "currency_code"], ["accounts.owner", "accounts.currency_code"]
    ),
    CheckConstraint("amount_minor > 0", name="amount_positive"),
    # The expiry sweep: pending holds by due time.
    Index("ix_holds_status_expire_time", "status", "expire_time"),
    # Balances subtract a user's due-but-unswept holds.
    Index("ix_holds_user_id_status_expire_time", "user_id", "status", "expire_time"),
)
