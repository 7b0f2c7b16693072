"""The registry, versions, bundles, review reports, and the shared tables: events and
relay lease, idempotency keys, service secrets.

Revision ID: 0001
Revises:
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.database.idempotency_migrations import (
    create_retention_index_v1,
    drop_retention_index_v1,
)
from services.database.lease_migrations import create_leases_v1, drop_leases_v1
from services.database.schema import UtcDateTime
from services.database.secret_migrations import (
    create_service_secrets_v1,
    drop_service_secrets_v1,
)
from services.eventbus.migrations import create_event_tables_v1, drop_event_tables_v1

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mini_apps",
        sa.Column("mini_app_id", sa.String(36), nullable=False),
        sa.Column("client_id", sa.String(40), nullable=False),
        sa.Column("developer_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column("category", sa.String(24), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("icon_url", sa.String(2048), nullable=False),
        sa.Column("redirect_uris", sa.JSON(), nullable=False),
        sa.Column("network_domains", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("published_version_id", sa.String(36), nullable=True),
        sa.Column("publish_time", UtcDateTime(), nullable=True),
        sa.Column("suspend_reason", sa.Text(), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.Column("update_time", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("mini_app_id", name=op.f("pk_mini_apps")),
        sa.UniqueConstraint("client_id", name=op.f("uq_mini_apps_client_id")),
    )
    op.create_index(
        "ix_mini_apps_developer_id_mini_app_id", "mini_apps", ["developer_id", "mini_app_id"]
    )
    op.create_index(
        "ix_mini_apps_discovery",
        "mini_apps",
        ["status", "category", "publish_time", "mini_app_id"],
    )
    op.create_index("ix_mini_apps_listed", "mini_apps", ["status", "publish_time", "mini_app_id"])
    op.create_table(
        "bundles",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("integrity", sa.String(80), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_bundles")),
    )
    op.create_table(
        "versions",
        sa.Column("version_id", sa.String(36), nullable=False),
        sa.Column("mini_app_id", sa.String(36), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("bundle_sha256", sa.String(64), nullable=False),
        sa.Column("manifest_version", sa.String(64), nullable=False),
        sa.Column("rejection_reasons", sa.JSON(), nullable=False),
        sa.Column("approval_note", sa.Text(), nullable=False),
        sa.Column("reviewer_id", sa.String(36), nullable=False),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.Column("submit_time", UtcDateTime(), nullable=True),
        sa.Column("update_time", UtcDateTime(), nullable=False),
        sa.Column("check_holder", sa.String(36), nullable=True),
        sa.Column("check_expire_time", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["mini_app_id"],
            ["mini_apps.mini_app_id"],
            name=op.f("fk_versions_mini_app_id_mini_apps"),
        ),
        sa.ForeignKeyConstraint(
            ["bundle_sha256"], ["bundles.sha256"], name=op.f("fk_versions_bundle_sha256_bundles")
        ),
        sa.PrimaryKeyConstraint("version_id", name=op.f("pk_versions")),
    )
    op.create_index(op.f("ix_versions_bundle_sha256"), "versions", ["bundle_sha256"])
    op.create_index("ix_versions_mini_app_id_version_id", "versions", ["mini_app_id", "version_id"])
    op.create_index(
        "ix_versions_state_submit_time", "versions", ["state", "submit_time", "version_id"]
    )
    op.create_table(
        "review_reports",
        sa.Column("version_id", sa.String(36), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["versions.version_id"],
            name=op.f("fk_review_reports_version_id_versions"),
        ),
        sa.PrimaryKeyConstraint("version_id", name=op.f("pk_review_reports")),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("method", sa.String(100), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("response", sa.LargeBinary(), nullable=False),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "request_id", name=op.f("pk_idempotency_keys")),
    )
    create_retention_index_v1()
    create_event_tables_v1()
    create_service_secrets_v1()
    create_leases_v1()


def downgrade() -> None:
    drop_leases_v1()
    drop_service_secrets_v1()
    drop_event_tables_v1()
    drop_retention_index_v1()
    op.drop_table("idempotency_keys")
    op.drop_table("review_reports")
    op.drop_index("ix_versions_state_submit_time", table_name="versions")
    op.drop_index("ix_versions_mini_app_id_version_id", table_name="versions")
    op.drop_index(op.f("ix_versions_bundle_sha256"), table_name="versions")
    op.drop_table("versions")
    op.drop_table("bundles")
    op.drop_index("ix_mini_apps_listed", table_name="mini_apps")
    op.drop_index("ix_mini_apps_discovery", table_name="mini_apps")
    op.drop_index("ix_mini_apps_developer_id_mini_app_id", table_name="mini_apps")
    op.drop_table("mini_apps")
