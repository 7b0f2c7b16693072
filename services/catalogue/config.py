"""Catalogue's settings, from `CATALOGUE_*` environment variables."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.runtime.settings import Port, ServiceSettings

__all__ = ["CatalogueSettings"]


class CatalogueSettings(ServiceSettings):
    """Settings of the catalogue service."""

    model_config = SettingsConfigDict(env_prefix="CATALOGUE_", frozen=True, extra="ignore")

    port: Port = 7103
    reservation_sweep_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    """How often expired reservations are recorded and their StockReleased published.
    Their units stop counting as reserved at expire_time regardless."""
