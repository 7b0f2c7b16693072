"""Who may see and change mini-apps and versions (object-level authorization).

Unpublished things do not exist for those who may not see them: the answer is the
same NOT_FOUND as for a missing id, so ids of other developers' apps leak nothing.
"""

from __future__ import annotations

from services.auth.caller import Caller
from services.auth.roles import Role
from services.miniapps.records import AppStatus, MiniAppRecord
from services.runtime.errors import NotFound

__all__ = [
    "is_listed",
    "is_staff",
    "may_manage",
    "may_see_app",
    "mini_app_not_found",
    "version_not_found",
]


def is_staff(caller: Caller) -> bool:
    """Reviewers and admins see every mini-app and version."""
    return caller.has_role(Role.REVIEWER, Role.ADMIN)


def is_listed(app: MiniAppRecord) -> bool:
    """Whether users may discover and launch `app`: active, with a published version."""
    return app.status is AppStatus.ACTIVE and app.published_version_id is not None


def may_manage(caller: Caller, app: MiniAppRecord) -> bool:
    """Only the developer who registered a mini-app manages it."""
    return caller.user_id == app.developer_id


def may_see_app(caller: Caller, app: MiniAppRecord) -> bool:
    """Its developer and staff see it always; everyone else only while it is listed."""
    return may_manage(caller, app) or is_staff(caller) or is_listed(app)


def mini_app_not_found(mini_app_id: str) -> NotFound:
    """The one answer for a missing mini-app and one the caller may not see."""
    return NotFound("MINI_APP_NOT_FOUND", "no such mini-app", metadata={"mini_app_id": mini_app_id})


def version_not_found(version_id: str) -> NotFound:
    """The one answer for a missing version and one the caller may not see."""
    return NotFound("VERSION_NOT_FOUND", "no such version", metadata={"version_id": version_id})
