"""Miniapps' tables: the registry, the versions, their content-addressed bundles and the
automated checks' reports, beside the shared event, idempotency and secret tables."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase

from services.database.idempotency import idempotency_table
from services.database.schema import UtcDateTime, new_metadata
from services.database.service_secrets import service_secrets_table
from services.eventbus.schema import EventTables, event_tables

__all__ = [
    "BUNDLES",
    "EVENT_TABLES",
    "IDEMPOTENCY_KEYS",
    "MINI_APPS",
    "PAYMENT_REQUESTS",
    "REVIEW_REPORTS",
    "SERVICE_SECRETS",
    "VERSIONS",
    "WEBHOOK_DELIVERIES",
    "WEBHOOK_ENDPOINTS",
    "Base",
]


class Base(DeclarativeBase):
    """Declarative base of miniapps' own tables."""

    metadata = new_metadata()


EVENT_TABLES: EventTables = event_tables(Base.metadata)
"""The event bus's outbox, inbox and relay lease, in this service's own database."""

IDEMPOTENCY_KEYS = idempotency_table(Base.metadata)
"""Responses of mutations by (caller and RPC, request_id), for AIP-155 replays; never
a client secret (see `registry`)."""

SERVICE_SECRETS = service_secrets_table(Base.metadata)
"""Secrets every replica shares: the key of the page tokens."""

MINI_APPS = Table(
    "mini_apps",
    Base.metadata,
    Column("mini_app_id", String(36), primary_key=True),
    Column("client_id", String(40), nullable=False, unique=True),
    Column("developer_id", String(36), nullable=False),
    Column("name", String(60), nullable=False),
    Column("category", String(24), nullable=False),
    Column("description", Text(), nullable=False),
    Column("icon_url", String(2048), nullable=False),
    Column("redirect_uris", JSON(), nullable=False),
    Column("network_domains", JSON(), nullable=False),
    # ACTIVE or SUSPENDED.
    Column("status", String(16), nullable=False),
    Column("published_version_id", String(36), nullable=True),
    # When the published version was published: discovery's order.
    Column("publish_time", UtcDateTime(), nullable=True),
    Column("suspend_reason", Text(), nullable=False),
    # SHA-256 of the client secret, hex; the secret itself is never stored.
    Column("secret_sha256", String(64), nullable=False),
    Column("create_time", UtcDateTime(), nullable=False),
    Column("update_time", UtcDateTime(), nullable=False),
    # A developer's own apps, newest first (ids are UUIDv7).
    Index("ix_mini_apps_developer_id_mini_app_id", "developer_id", "mini_app_id"),
    # Discovery: listed apps, newest publication first, within or across categories.
    Index("ix_mini_apps_discovery", "status", "category", "publish_time", "mini_app_id"),
    Index("ix_mini_apps_listed", "status", "publish_time", "mini_app_id"),
)

BUNDLES = Table(
    "bundles",
    Base.metadata,
    # One row per distinct content: versions with identical bytes share it.
    Column("sha256", String(64), primary_key=True),
    Column("integrity", String(80), nullable=False),
    Column("size_bytes", BigInteger(), nullable=False),
    Column("content", LargeBinary(), nullable=False),
    Column("create_time", UtcDateTime(), nullable=False),
)

VERSIONS = Table(
    "versions",
    Base.metadata,
    Column("version_id", String(36), primary_key=True),
    Column("mini_app_id", ForeignKey("mini_apps.mini_app_id"), nullable=False),
    Column("state", String(16), nullable=False),
    Column("bundle_sha256", ForeignKey("bundles.sha256"), nullable=False, index=True),
    Column("manifest_version", String(64), nullable=False),
    # Permission names the manifest requests, set by the checks (migration 0002).
    Column("permissions", JSON(), nullable=False, server_default="[]"),
    Column("rejection_reasons", JSON(), nullable=False),
    Column("approval_note", Text(), nullable=False),
    Column("reviewer_id", String(36), nullable=False),
    Column("create_time", UtcDateTime(), nullable=False),
    Column("submit_time", UtcDateTime(), nullable=True),
    Column("update_time", UtcDateTime(), nullable=False),
    # Which checker process holds a CHECKING version, until when: a checker that died
    # mid-check loses it when the time passes, and another takes it over.
    Column("check_holder", String(36), nullable=True),
    Column("check_expire_time", UtcDateTime(), nullable=True),
    # An app's versions, newest first.
    Index("ix_versions_mini_app_id_version_id", "mini_app_id", "version_id"),
    # The review queue (IN_REVIEW, oldest submission first) and the checker's claims.
    Index("ix_versions_state_submit_time", "state", "submit_time", "version_id"),
)

REVIEW_REPORTS = Table(
    "review_reports",
    Base.metadata,
    Column("version_id", ForeignKey("versions.version_id"), primary_key=True),
    Column("passed", Boolean(), nullable=False),
    # [{"file", "line", "rule", "message"}, ...] in the checks' order.
    Column("findings", JSON(), nullable=False),
    Column("create_time", UtcDateTime(), nullable=False),
)

WEBHOOK_ENDPOINTS = Table(
    "webhook_endpoints",
    Base.metadata,
    # One endpoint per mini-app: its backend's URL for payment outcomes (migration 0003).
    Column("mini_app_id", ForeignKey("mini_apps.mini_app_id"), primary_key=True),
    Column("url", String(2048), nullable=False),
    # The signing secret itself, not a digest: every delivery is signed with it.
    Column("secret", String(80), nullable=False),
    Column("create_time", UtcDateTime(), nullable=False),
    Column("update_time", UtcDateTime(), nullable=False),
)

WEBHOOK_DELIVERIES = Table(
    "webhook_deliveries",
    Base.metadata,
    # The event id, in the body and the Superapp-Event-Id header: the receiver's key
    # for de-duplicating retries.
    Column("event_id", String(36), primary_key=True),
    Column("mini_app_id", ForeignKey("mini_apps.mini_app_id"), nullable=False),
    Column("event_type", String(64), nullable=False),
    # The exact JSON body, signed and sent byte for byte the same on every attempt.
    Column("body", Text(), nullable=False),
    # PENDING, DELIVERED or FAILED (attempts exhausted).
    Column("state", String(16), nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("next_attempt_time", UtcDateTime(), nullable=False),
    # Which deliverer holds a PENDING delivery, until when (like the checker's claims).
    Column("holder", String(36), nullable=True),
    Column("lease_expire_time", UtcDateTime(), nullable=True),
    Column("last_error", Text(), nullable=False),
    Column("create_time", UtcDateTime(), nullable=False),
    Column("update_time", UtcDateTime(), nullable=False),
    # The deliverer's claims: due PENDING deliveries, oldest due first.
    Index("ix_webhook_deliveries_state_next_attempt_time", "state", "next_attempt_time"),
    # A mini-app's deliveries, for querying.
    Index("ix_webhook_deliveries_mini_app_id_event_id", "mini_app_id", "event_id"),
)

PAYMENT_REQUESTS = Table(
    "payment_requests",
    Base.metadata,
    Column("payment_request_id", String(36), primary_key=True),
    Column("mini_app_id", ForeignKey("mini_apps.mini_app_id"), nullable=False),
    # The user who must confirm, resolved from the mini-app token by identity; never
    # shown to the mini-app, which knows the user only by `subject`.
    Column("user_id", String(36), nullable=False),
    Column("subject", String(128), nullable=False),
    # Who is paid: the mini-app's developer-declared merchant account.
    Column("merchant_id", String(36), nullable=False),
    Column("currency_code", String(3), nullable=False),
    Column("amount_minor", BigInteger(), nullable=False),
    Column("description", String(200), nullable=False),
    # The mini-app's own idempotency key, and a digest of what it asked under it.
    Column("idempotency_key", String(128), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    # AWAITING_CONFIRMATION, CONFIRMED, SUCCEEDED, FAILED, EXPIRED or DECLINED.
    Column("state", String(24), nullable=False),
    Column("order_id", String(36), nullable=True),
    Column("failure_reason", String(64), nullable=False),
    Column("expire_time", UtcDateTime(), nullable=False),
    Column("confirm_time", UtcDateTime(), nullable=True),
    Column("create_time", UtcDateTime(), nullable=False),
    Column("update_time", UtcDateTime(), nullable=False),
    # The settler's work on a CONFIRMED request whose order is not final: when it is
    # due again, how often it was tried, and which replica holds it until when.
    Column("next_settle_time", UtcDateTime(), nullable=True),
    Column("settle_attempts", Integer(), nullable=False, server_default="0"),
    Column("settle_holder", String(36), nullable=True),
    Column("settle_lease_expire_time", UtcDateTime(), nullable=True),
    UniqueConstraint("mini_app_id", "idempotency_key"),
    Index("ix_payment_requests_state_next_settle_time", "state", "next_settle_time"),
    Index("ix_payment_requests_state_expire_time", "state", "expire_time"),
)
