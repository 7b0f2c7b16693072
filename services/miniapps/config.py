"""Miniapps' settings, from `MINIAPPS_*` environment variables."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from services.runtime.settings import Port, ServiceSettings

__all__ = ["MiniAppsSettings"]


class MiniAppsSettings(ServiceSettings):
    """Settings of the miniapps service.

    The bundle limit is part of the contract (8 MiB, see `bundles.BUNDLE_MAX_BYTES`),
    not a setting: a client must be able to rely on it whichever deployment it meets.
    """

    model_config = SettingsConfigDict(env_prefix="MINIAPPS_", frozen=True, extra="ignore")

    port: Port = 7105
