"""Who may call which RPC: each service declares a policy for every RPC it serves.

A declaration that misses an RPC of the service, or names one it does not have, fails
when the server is wired, not when the RPC is first called.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from google.protobuf.descriptor import ServiceDescriptor

from services.auth.roles import KNOWN_ROLES

__all__ = [
    "AUTHENTICATED",
    "PUBLIC",
    "TOKEN_IGNORED",
    "Access",
    "Policy",
    "PolicyError",
    "ServicePolicies",
    "authenticated",
    "mini_app",
    "user_or_mini_app",
]


class PolicyError(Exception):
    """An RPC policy declaration is incomplete or inconsistent."""


class Access(enum.Enum):
    """How an RPC treats the `authorization` header."""

    TOKEN_IGNORED = "token_ignored"  # noqa: S105  (a policy name, not a secret)
    """No token needed and any header is ignored, so a stale token cannot get in the way
    (identity's sign-up and sign-in RPCs, whose contract says so)."""
    PUBLIC = "public"
    """No token needed, but a token that is sent must be valid; the handler then sees
    the caller."""
    AUTHENTICATED = "authenticated"
    """A valid user token is required, and one of `Policy.roles` if any are given; a
    mini-app token too when `Policy.mini_app_scope` is set."""
    MINI_APP = "mini_app"
    """A mini-app token (`miniapp+jwt`) holding `Policy.mini_app_scope` is required:
    the mini-app's backend acting for one user, within what the user granted. A user's
    own token is refused, so a user API and a mini-app API never stand in for each
    other."""


@dataclass(frozen=True, slots=True)
class Policy:
    """The access rule of one RPC."""

    access: Access
    roles: frozenset[str] = field(default_factory=frozenset)
    """Any one of these roles is required (AUTHENTICATED only); empty means any caller."""
    mini_app_scope: str = ""
    """The scope a mini-app token must hold to be admitted; empty: no mini-app token is."""

    def __post_init__(self) -> None:
        if self.roles and self.access is not Access.AUTHENTICATED:
            raise PolicyError("roles can only be required of authenticated RPCs")
        if self.access is Access.MINI_APP and not self.mini_app_scope:
            raise PolicyError("a mini-app policy names the scope its tokens must hold")
        if self.mini_app_scope and self.access not in (Access.MINI_APP, Access.AUTHENTICATED):
            raise PolicyError("mini-app tokens are admitted only by authenticated RPCs")
        if self.mini_app_scope and self.roles:
            # A mini-app token carries no roles: one policy cannot ask both.
            raise PolicyError("roles and a mini-app scope cannot be required together")
        unknown = self.roles - KNOWN_ROLES
        if unknown:
            raise PolicyError(f"unknown roles {sorted(unknown)}")


TOKEN_IGNORED = Policy(Access.TOKEN_IGNORED)
PUBLIC = Policy(Access.PUBLIC)
AUTHENTICATED = Policy(Access.AUTHENTICATED)


def authenticated(*roles: str) -> Policy:
    """A valid token holding any one of `roles` is required."""
    if not roles:
        raise PolicyError("authenticated() needs at least one role; use AUTHENTICATED")
    return Policy(Access.AUTHENTICATED, frozenset(roles))


@dataclass(frozen=True)
class ServicePolicies:
    """The policy of every RPC of one gRPC service, by the RPC's short name."""

    service: ServiceDescriptor
    methods: Mapping[str, Policy]

    def __post_init__(self) -> None:
        served = {method.name for method in self.service.methods}
        problems = []
        if missing := served - self.methods.keys():
            problems.append(f"no policy for {sorted(missing)}")
        if unknown := self.methods.keys() - served:
            problems.append(f"no such RPCs {sorted(unknown)}")
        if problems:
            raise PolicyError(f"{self.service.full_name}: {'; '.join(problems)}")

    def by_path(self) -> dict[str, Policy]:
        """The policies by gRPC method path (`/package.Service/Method`)."""
        name = self.service.full_name
        return {f"/{name}/{method}": policy for method, policy in self.methods.items()}


def mini_app(scope: str) -> Policy:
    """Only a mini-app token holding `scope` is admitted (`Access.MINI_APP`)."""
    return Policy(Access.MINI_APP, mini_app_scope=scope)


def user_or_mini_app(scope: str) -> Policy:
    """A user's token, or a mini-app token holding `scope`; the handler sees which
    (`current_caller()` or `current_mini_app()`) and decides what each may reach."""
    return Policy(Access.AUTHENTICATED, mini_app_scope=scope)
