"""Miniapps' settings, from `MINIAPPS_*` environment variables."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr
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
    client_id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,63}$")] = "miniapps"
    """This service's client id at identity (an `IDENTITY_SERVICE_CLIENTS` entry)."""
    client_secret: Annotated[SecretStr | None, Field(min_length=16, max_length=256)] = None
    """The secret identity knows the SHA-256 of: gets the service's own token (role
    `system`), with which it introspects mini-app tokens and places payment orders.
    Optional, so a deployment without payments needs no secret; without it every
    mini-app token is refused (FAILED_PRECONDITION `MINI_APP_TOKENS_NOT_CONFIGURED`)
    and confirmations are refused before anything changes (`PAYMENTS_NOT_CONFIGURED`).
    The dev overlay and the local stack always set it."""
    orders_addr: str = "127.0.0.1:7104"
    """orders' gRPC address (host:port), where confirmed payments become orders."""
    payment_request_ttl_seconds: Annotated[float, Field(ge=60, le=24 * 3600)] = 900.0
    """How long a payment request waits for the user's confirmation (the contract says
    15 minutes; a setting for tests and for operators who must shorten it)."""
    payment_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 3.0
    """Deadline of one CreatePaymentOrder call (a hold and a capture) to orders. Below
    the BFF's 5 s upstream deadline, so a user's confirmation always gets its answer: a
    slower payment is answered CONFIRMED and finished by the settler."""
    settle_interval_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    """How often the settler looks for confirmed payments whose order is not final."""
    settle_lease_seconds: Annotated[float, Field(ge=5, le=3600)] = 60.0
    """How long a settler holds a payment it settles (well above the call's deadline)
    before another replica may take it over."""
    settle_backoff_max_seconds: Annotated[float, Field(gt=0, le=3600)] = 300.0
    """The longest wait between two tries of a payment whose order is not final (the
    wait doubles from `settle_interval_seconds` up to this)."""
    check_interval_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    """How often the checker looks for versions to check beside being woken by the
    submissions this process consumes (it picks up lapsed claims this way)."""
    check_workers: Annotated[int, Field(ge=0, le=16)] = 1
    """Processes that run the review library (0: a thread of the service's process,
    which then competes with its RPCs for the GIL)."""
    check_lease_seconds: Annotated[float, Field(ge=5, le=3600)] = 120.0
    """How long a checker holds a version it checks before another replica may take
    it over (longer than the slowest review of an 8 MiB bundle)."""
    webhook_max_attempts: Annotated[int, Field(ge=1, le=50)] = 12
    """Deliveries of one webhook event before it is FAILED (with the defaults below,
    about a day of retries)."""
    webhook_backoff_initial_seconds: Annotated[float, Field(gt=0, le=3600)] = 10.0
    """The first retry's delay; each later one doubles, plus jitter of as much again."""
    webhook_backoff_max_seconds: Annotated[float, Field(gt=0, le=86400)] = 6 * 3600.0
    """The longest delay between two deliveries of one event."""
    webhook_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 10.0
    """How long one POST to a mini-app's backend may take."""
    webhook_lease_seconds: Annotated[float, Field(ge=5, le=3600)] = 60.0
    """How long a deliverer holds a delivery it sends (well above the POST timeout)
    before another replica may take it over."""
    webhook_interval_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    """How often the deliverer looks for due deliveries (retries become due by time)."""
