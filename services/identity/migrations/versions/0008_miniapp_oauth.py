"""Mini-app consent and single sign-on: identity's copy of the mini-apps' OAuth clients,
users' grants, authorization codes, and the shared secrets (pairwise subjects, page
tokens).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.database.schema import UtcDateTime
from services.database.secret_migrations import (
    create_service_secrets_v1,
    drop_service_secrets_v1,
)

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_service_secrets_v1()
    op.create_table(
        "oauth_clients",
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("mini_app_id", sa.String(36), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("redirect_uris", sa.JSON(), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("publish_time", UtcDateTime(), nullable=True),
        sa.Column("update_time", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_oauth_clients")),
        sa.UniqueConstraint("mini_app_id", name=op.f("uq_oauth_clients_mini_app_id")),
    )
    op.create_table(
        "oauth_grants",
        sa.Column("grant_id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("mini_app_id", sa.String(36), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.Column("update_time", UtcDateTime(), nullable=False),
        sa.Column("revoke_time", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.user_id"], name=op.f("fk_oauth_grants_user_id_users")
        ),
        sa.PrimaryKeyConstraint("grant_id", name=op.f("pk_oauth_grants")),
    )
    op.create_index("ix_oauth_grants_user_id_grant_id", "oauth_grants", ["user_id", "grant_id"])
    op.create_table(
        "oauth_codes",
        sa.Column("code_sha256", sa.String(64), nullable=False),
        sa.Column("grant_id", sa.String(36), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("redirect_uri", sa.String(2048), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("code_challenge", sa.String(128), nullable=False),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.Column("expire_time", UtcDateTime(), nullable=False),
        sa.Column("use_time", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["grant_id"],
            ["oauth_grants.grant_id"],
            name=op.f("fk_oauth_codes_grant_id_oauth_grants"),
        ),
        sa.PrimaryKeyConstraint("code_sha256", name=op.f("pk_oauth_codes")),
    )
    op.create_index(op.f("ix_oauth_codes_grant_id"), "oauth_codes", ["grant_id"])
    op.create_index(op.f("ix_oauth_codes_expire_time"), "oauth_codes", ["expire_time"])


def downgrade() -> None:
    op.drop_table("oauth_codes")
    op.drop_table("oauth_grants")
    op.drop_table("oauth_clients")
    drop_service_secrets_v1()
