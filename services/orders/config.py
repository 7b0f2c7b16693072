"""Orders' settings, from `ORDERS_*` environment variables."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from services.runtime.settings import Port, ServiceSettings

__all__ = ["OrdersSettings"]

Seconds = Annotated[float, Field(gt=0, le=3600)]


class OrdersSettings(ServiceSettings):
    """Settings of the orders service."""

    model_config = SettingsConfigDict(env_prefix="ORDERS_", frozen=True, extra="ignore")

    port: Port = 7104
    client_id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,63}$")] = "orders"
    """This service's client id at identity (an `IDENTITY_SERVICE_CLIENTS` entry)."""
    client_secret: Annotated[SecretStr, Field(min_length=16, max_length=256)]
    """Required. The secret identity knows the SHA-256 of; gets the service's own token."""
    wallet_addr: str = "127.0.0.1:7102"
    """wallet's gRPC address (host:port)."""
    catalogue_addr: str = "127.0.0.1:7103"
    """catalogue's gRPC address (host:port)."""
    step_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 5.0
    """Deadline of each call to the catalogue or the wallet."""
    reservation_ttl_seconds: Annotated[float, Field(ge=1, le=3600)] = 600
    """How long an order holds stock before the sale must be committed."""
    capture_grace_seconds: Annotated[float, Field(ge=1, le=6 * 24 * 3600)] = 1800
    """How long a funds hold outlives the reservation, so that a sold order's payment
    can be collected after an outage without placing a new hold."""
    lease_seconds: Annotated[float, Field(gt=0, le=600)] = 30.0
    """How long a replica owns an order it drives; renewed at every step, taken over by
    the reconciler of any replica once it lapses (a replica that died mid-order)."""
    reconcile_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    """How often the reconciler looks for orders to settle."""
    retry_backoff_max_seconds: Seconds = 60.0
    """Longest wait between two tries of an order whose dependency is away (the wait
    doubles from `reconcile_seconds` up to this)."""
    max_collections: Annotated[int, Field(ge=1, le=10)] = 3
    """Holds placed for one sold order before it is reversed: the first, then new ones
    while each expires before it could be captured."""
    metrics_merchant_labels: Annotated[int, Field(ge=0, le=10_000)] = 100
    """Merchants that keep their own `merchant` label in
    `superapp_payment_failures_total`: the first this many distinct merchant ids a
    process sees; the later ones are counted as `other`."""
