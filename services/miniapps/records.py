"""Mini-apps and versions as the domain sees them, and the names their states have."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

__all__ = ["AppFields", "AppStatus", "MiniAppRecord", "VersionRecord", "VersionState"]


class AppStatus(enum.StrEnum):
    """A mini-app's standing; stored by name."""

    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"


class VersionState(enum.StrEnum):
    """Where a version is in the review lifecycle; stored by name (the proto enum's
    name without its `VERSION_STATE_` prefix)."""

    DRAFT = "DRAFT"
    SUBMITTED = "SUBMITTED"
    CHECKING = "CHECKING"
    IN_REVIEW = "IN_REVIEW"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    PUBLISHED = "PUBLISHED"
    SUPERSEDED = "SUPERSEDED"
    SUSPENDED = "SUSPENDED"


@dataclass(frozen=True, slots=True)
class AppFields:
    """What a developer says about a mini-app, validated."""

    name: str
    category: str
    """The category's name without its `CATEGORY_` prefix, such as `FOOD`."""
    description: str
    icon_url: str
    redirect_uris: tuple[str, ...]
    network_domains: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MiniAppRecord:
    """A row of `mini_apps`, without the secret's digest."""

    mini_app_id: str
    client_id: str
    developer_id: str
    fields: AppFields
    status: AppStatus
    published_version_id: str | None
    publish_time: datetime | None
    suspend_reason: str
    create_time: datetime
    update_time: datetime


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """A row of `versions` with its bundle's integrity and size."""

    version_id: str
    mini_app_id: str
    state: VersionState
    bundle_sha256: str
    bundle_integrity: str
    bundle_size_bytes: int
    manifest_version: str
    permissions: tuple[str, ...]
    """Permission names the manifest requests; empty until the checks read it."""
    rejection_reasons: tuple[str, ...]
    approval_note: str
    reviewer_id: str
    create_time: datetime
    submit_time: datetime | None
    update_time: datetime
