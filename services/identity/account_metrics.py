"""Identity's business metrics: sign-ups, sign-ins by outcome, the funnel's first stage."""

from __future__ import annotations

import enum

from sqlalchemy.ext.asyncio import AsyncSession

from services.database.after_commit import after_commit
from services.runtime.metrics import Metrics
from services.runtime.signup_funnel import SignupStage, signup_funnel

__all__ = ["AccountMetrics", "LoginOutcome"]


class LoginOutcome(enum.StrEnum):
    """How a sign-in ended; the `outcome` label's whole set."""

    SUCCESS = "success"
    WRONG_PASSWORD = "wrong_password"  # noqa: S105 - an outcome's name, not a secret
    UNKNOWN_ACCOUNT = "unknown_account"
    THROTTLED = "throttled"
    """Refused before its password was checked: the (email, address) or the address
    throttle, or the service's password-hashing budget."""
    DISABLED = "disabled"
    """Reserved: identity has no disabled accounts yet, so this stays at zero."""


class AccountMetrics:
    """`superapp_signups_total`, `superapp_logins_total{outcome}` and the `registered`
    stage of `superapp_signup_funnel_total`, in one process's registry."""

    def __init__(self, metrics: Metrics) -> None:
        self._signups = metrics.counter("superapp_signups_total", "New accounts registered.")
        self._registered = signup_funnel(metrics, SignupStage.REGISTERED).labels(
            SignupStage.REGISTERED.value
        )
        logins = metrics.counter(
            "superapp_logins_total", "Sign-in attempts, by how they ended.", ["outcome"]
        )
        self._logins = {outcome: logins.labels(outcome.value) for outcome in LoginOutcome}

    def registered(self, session: AsyncSession) -> None:
        """An account was created in `session`'s transaction: counted once it commits
        (a concurrent sign-up of the same email that wins leaves no count behind)."""
        counts = after_commit(session)
        counts.count(self._signups)
        counts.count(self._registered)

    def login(self, outcome: LoginOutcome) -> None:
        """A sign-in ended with `outcome`."""
        self._logins[outcome].inc()
