"""The platform's permission catalogue: what a mini-app may ask the user for."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["PERMISSIONS"]

PERMISSIONS: Mapping[str, str] = MappingProxyType(
    {
        "profile.basic": "The user's display name and avatar, under a per-mini-app user id.",
        "wallet.pay": "Ask the user to confirm a payment in the shell (never silently).",
        "location": "The device's location while the mini-app is in the foreground.",
        "contacts": "Contacts the user picks in the shell's picker (never the whole book).",
        "camera": "The camera, for photos and QR codes, while the mini-app is visible.",
        "notifications": "Push notifications to the user, within the platform's rate limits.",
    }
)
"""Permission name → what it grants. manifest.schema.json lists the same names (a test
keeps them equal): a manifest may request only these, each with a justification."""
