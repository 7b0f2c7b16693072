"""Identity's settings, from `IDENTITY_*` environment variables."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from services.runtime.settings import Port, ServiceSettings

__all__ = ["IdentitySettings"]


class IdentitySettings(ServiceSettings):
    """Settings of the identity service."""

    model_config = SettingsConfigDict(env_prefix="IDENTITY_", frozen=True, extra="ignore")

    port: Port = 7101
