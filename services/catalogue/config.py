"""Catalogue's settings, from `CATALOGUE_*` environment variables."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from services.runtime.settings import Port, ServiceSettings

__all__ = ["CatalogueSettings"]


class CatalogueSettings(ServiceSettings):
    """Settings of the catalogue service."""

    model_config = SettingsConfigDict(env_prefix="CATALOGUE_", frozen=True, extra="ignore")

    port: Port = 7103
