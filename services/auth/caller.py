"""Who is calling the current RPC, as proven by a verified access token.

The auth guard binds the caller to a context variable for the duration of the
call; every grpc.aio RPC runs in its own task, so handlers (and the domain code they
call) read it with `current_caller()` or `require_caller()` without threading it
through arguments.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.auth.roles import Role
from services.runtime.errors import PermissionDenied, Unauthenticated

if TYPE_CHECKING:  # the verifier's modules import this one
    from services.auth.miniapp_verifier import MiniAppCaller

__all__ = [
    "Caller",
    "acting_as",
    "acting_as_mini_app",
    "current_caller",
    "current_mini_app",
    "require_caller",
    "require_mini_app",
]


@dataclass(frozen=True, slots=True)
class Caller:
    """The subject of a verified access token."""

    user_id: str
    """The token's `sub`: a canonical UUID string."""
    roles: frozenset[str]
    """Role names from the token's `roles` claim (compare with `Role` members)."""
    token_id: str
    """The token's `jti`, for audit logs."""

    def has_role(self, *roles: str) -> bool:
        """Whether the caller holds any of `roles`."""
        return not self.roles.isdisjoint(roles)

    def may_act_for(self, user_id: str, *, system: bool = False) -> bool:
        """Whether the caller may reach `user_id`'s resources: themself or an admin.

        `system=True` also admits the `system` role, for RPCs whose contract says so.
        """
        if user_id == self.user_id or Role.ADMIN in self.roles:
            return True
        return system and Role.SYSTEM in self.roles

    def check_may_act_for(self, user_id: str, *, system: bool = False) -> None:
        """Raise PERMISSION_DENIED unless `may_act_for(user_id, system=system)`."""
        if not self.may_act_for(user_id, system=system):
            raise PermissionDenied("PERMISSION_DENIED", "the caller may not act for this user")


_current: ContextVar[Caller | None] = ContextVar("superapp_caller", default=None)


def current_caller() -> Caller | None:
    """The caller of the RPC being handled, or None when it sent no token (public RPCs)."""
    return _current.get()


def require_caller() -> Caller:
    """The caller of the RPC being handled; UNAUTHENTICATED when it sent no token, and
    UNAUTHENTICATED `USER_TOKEN_REQUIRED` when it sent a mini-app's."""
    caller = _current.get()
    if caller is None:
        if _mini_app.get() is not None:
            raise Unauthenticated("USER_TOKEN_REQUIRED", "this RPC takes a user's own token")
        raise Unauthenticated("UNAUTHENTICATED", "a bearer token is required")
    return caller


_mini_app: ContextVar[MiniAppCaller | None] = ContextVar("superapp_mini_app", default=None)


def current_mini_app() -> MiniAppCaller | None:
    """The mini-app calling the RPC being handled (for one user, by a mini-app token),
    or None when the caller is a user or anonymous."""
    return _mini_app.get()


def require_mini_app() -> MiniAppCaller:
    """The mini-app calling; UNAUTHENTICATED `MINI_APP_TOKEN_REQUIRED` otherwise."""
    caller = _mini_app.get()
    if caller is None:
        raise Unauthenticated("MINI_APP_TOKEN_REQUIRED", "this RPC takes a mini-app's token")
    return caller


@contextlib.contextmanager
def acting_as(caller: Caller | None) -> Iterator[None]:
    """Make `caller` the current caller inside the block (the auth guard; handler tests)."""
    token = _current.set(caller)
    try:
        yield
    finally:
        _current.reset(token)


@contextlib.contextmanager
def acting_as_mini_app(caller: MiniAppCaller) -> Iterator[None]:
    """Make `caller` the mini-app calling inside the block (the auth guard; tests)."""
    token = _mini_app.set(caller)
    try:
        yield
    finally:
        _mini_app.reset(token)
