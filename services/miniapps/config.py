"""Miniapps' settings, from `MINIAPPS_*` environment variables."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
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
    check_interval_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    """How often the checker looks for versions to check beside being woken by the
    submissions this process consumes (it picks up lapsed claims this way)."""
    check_workers: Annotated[int, Field(ge=0, le=16)] = 1
    """Processes that run the review library (0: a thread of the service's process,
    which then competes with its RPCs for the GIL)."""
    check_lease_seconds: Annotated[float, Field(ge=5, le=3600)] = 120.0
    """How long a checker holds a version it checks before another replica may take
    it over (longer than the slowest review of an 8 MiB bundle)."""
