"""The sign-up funnel: one family, each stage counted by the service that sees it.

`superapp_signup_funnel_total{stage}` is declared in identity (registered), wallet
(wallet_opened, first_top_up) and orders (first_purchase), each in its own registry;
Prometheus sums a stage over the replicas of its service. Every stage counts a user
once: the deciding service decides it in the transaction that makes the change, from
its database, so no replica or retry can count a user twice.
"""

from __future__ import annotations

import enum

from prometheus_client import Counter

from services.runtime.metrics import Metrics

__all__ = ["SIGNUP_FUNNEL", "SignupStage", "signup_funnel"]

SIGNUP_FUNNEL = "superapp_signup_funnel_total"


class SignupStage(enum.StrEnum):
    """A stage of the sign-up funnel, in the order a user goes through them."""

    REGISTERED = "registered"
    """identity: the account was created."""
    WALLET_OPENED = "wallet_opened"
    """wallet: the user's wallet was opened (from identity's event)."""
    FIRST_TOP_UP = "first_top_up"
    """wallet: the user's first top-up."""
    FIRST_PURCHASE = "first_purchase"
    """orders: the buyer's first COMPLETED order."""


def signup_funnel(metrics: Metrics, *stages: SignupStage) -> Counter:
    """Declare the family in `metrics`, its `stages` (the ones this service counts)
    exported at zero from the start so that rates over them are defined at once."""
    family = metrics.counter(
        SIGNUP_FUNNEL, "Users reaching each stage of the sign-up funnel, once each.", ["stage"]
    )
    for stage in stages:
        family.labels(stage.value)
    return family
