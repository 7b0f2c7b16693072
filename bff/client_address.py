"""The end user's network address as the BFF sees it, and how it is passed upstream."""

from __future__ import annotations

from fastapi import Request

from services.runtime.client_address import FORWARDED_FOR

__all__ = ["client_address", "forwarded_for"]


def client_address(request: Request) -> str:
    """The client's address: the peer, or what a proxy in BFF_FORWARDED_ALLOW_IPS says
    (uvicorn resolves that before the app sees the request)."""
    return request.client.host if request.client is not None else "unknown"


def forwarded_for(request: Request) -> tuple[tuple[str, str]]:
    """gRPC metadata naming the client to a service that trusts the BFF as its proxy
    (identity's IDENTITY_FORWARDED_ALLOW_IPS), so per-address limits count the user,
    not the BFF."""
    return ((FORWARDED_FOR, client_address(request)),)
