"""The HTTP routes, one module per screen or resource of the mobile app."""

from __future__ import annotations

from fastapi import APIRouter

from bff.routes import (
    auth,
    catalogue,
    checkout,
    consent,
    developer,
    home,
    merchant,
    mini_app_api,
    miniapps,
    oauth,
    orders,
    profile,
    review,
    system,
    wallet,
)

__all__ = ["ROUTERS"]

ROUTERS: tuple[APIRouter, ...] = (
    system.router,
    auth.router,
    profile.router,
    home.router,
    wallet.router,
    catalogue.router,
    checkout.router,
    orders.router,
    merchant.router,
    developer.router,
    review.router,
    miniapps.router,
    consent.router,
    oauth.router,
    mini_app_api.router,
)
