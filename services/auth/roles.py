"""The roles an access token can carry, by their token names."""

from __future__ import annotations

import enum

__all__ = ["KNOWN_ROLES", "Role"]


class Role(enum.StrEnum):
    """A role's name in the `roles` claim: the proto enum name, lower-case, no `ROLE_` prefix.

    Members are strings, so `Role.ADMIN in caller.roles` works on a set of plain names.
    Declaration order is the proto enum order, which is how tokens list them.
    """

    USER = "user"
    MERCHANT = "merchant"
    ADMIN = "admin"
    SYSTEM = "system"
    DEVELOPER = "developer"
    """Registers mini-apps and manages their versions (granted by an admin)."""
    REVIEWER = "reviewer"
    """Reviews mini-app versions and may suspend mini-apps (granted by an admin)."""


KNOWN_ROLES: frozenset[str] = frozenset(Role)
