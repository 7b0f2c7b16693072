"""Wallet's settings, from `WALLET_*` environment variables."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from services.runtime.settings import Port, ServiceSettings

__all__ = ["WalletSettings"]


class WalletSettings(ServiceSettings):
    """Settings of the wallet service."""

    model_config = SettingsConfigDict(env_prefix="WALLET_", frozen=True, extra="ignore")

    port: Port = 7102
