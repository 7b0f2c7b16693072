"""The BFF's settings, from `BFF_*` environment variables.

The BFF shares the services' settings class for what they have in common (host, port,
token issuer and audience, identity's address, shutdown grace, log level); it has no
database and no event bus, so `data_dir`, `database_url` and `nats_url` are unused.
"""

from __future__ import annotations

from typing import Annotated

from limits import parse_many
from limits.errors import ConfigurationError
from limits.storage import storage_from_string
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from services.runtime.settings import Port, ServiceSettings

__all__ = ["BffSettings"]

Seconds = Annotated[float, Field(gt=0, le=3600)]


def _rate(value: str) -> str:
    try:
        parse_many(value)
    except ValueError as error:
        raise ValueError(f"must be a rate limit such as '10/minute' ({error})") from None
    return value


class BffSettings(ServiceSettings):
    """Settings of the backend-for-frontend."""

    model_config = SettingsConfigDict(env_prefix="BFF_", frozen=True, extra="ignore")

    port: Port = 7100
    """HTTP port; 0 picks a free one (tests)."""
    metrics_port: Port | None = None
    """Where this BFF process serves `/metrics` (Prometheus text and OpenMetrics), on
    `host`, apart from the API; 0 picks a free port; unset, nowhere. Each process counts
    its own requests, so each has its own port (Prometheus sums them)."""
    wallet_addr: str = "127.0.0.1:7102"
    """wallet's gRPC address (host:port)."""
    catalogue_addr: str = "127.0.0.1:7103"
    """catalogue's gRPC address (host:port)."""
    orders_addr: str = "127.0.0.1:7104"
    """orders' gRPC address (host:port)."""
    miniapps_addr: str = "127.0.0.1:7105"
    """miniapps' gRPC address (host:port)."""
    upstream_timeout_seconds: Seconds = 5.0
    """Deadline of every upstream call that sets no shorter one."""
    home_part_timeout_seconds: Seconds = 1.0
    """Deadline of each upstream call of the home screen; a slower part is left out."""
    readiness_timeout_seconds: Seconds = 1.0
    """Deadline of each upstream health check behind `/readyz`."""
    auth_rate_limit: str = "20/minute"
    """Per client IP, on sign-up, sign-in, refresh and sign-out (limits syntax; `;` joins)."""
    write_rate_limit_per_user: str = "60/minute"
    """Per signed-in user, on every endpoint that changes something."""
    write_rate_limit_per_ip: str = "300/minute"
    """Per client IP, on every endpoint that changes something."""
    client_id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,63}$")] = "bff"
    """The BFF's own client id at identity (an `IDENTITY_SERVICE_CLIENTS` entry)."""
    client_secret: Annotated[SecretStr, Field(min_length=16, max_length=256)] | None = None
    """The secret identity knows the SHA-256 of. The mini-app API (`/v1/mini-app-api`)
    needs it: the BFF asks identity, as a service, whether a mini-app's token is in
    force. Unset, that API answers 503 `MINI_APP_API_NOT_CONFIGURED` and the rest of
    the BFF works without it."""
    mini_app_token_cache_seconds: Annotated[float, Field(ge=0, le=5)] = 2.0
    """How long identity's answer about a mini-app token is remembered: the longest a
    revoked grant or a suspended mini-app keeps working here (at most 5 s, the bound
    the kill switch promises; 0 asks identity on every call)."""
    mini_app_rate_limit: str = "600/minute"
    """Per mini-app (by client id), on every call of its backend to the mini-app API."""
    mini_app_daily_quota: str = "100000/day"
    """Per mini-app (by client id): calls of its backend to the mini-app API per day."""
    replicas: Annotated[int, Field(ge=1, le=1000)] = 1
    """How many BFF processes share the clients' traffic. With counters in process memory
    (`async+memory://`), each process enforces its share of every limit (the limit divided
    by `replicas`, at least 1), so the replicas together allow about the limit; with a
    shared storage (Redis) every process counts against the whole limit and this is not
    used. Where the replica count changes (an autoscaler), share a storage instead."""
    rate_limit_storage: str = "async+memory://"
    """Where rate-limit counters live (limits storage URI): per process by default,
    `async+redis://host:6379` to share them between processes."""
    mini_app_metric_labels: Annotated[int, Field(ge=0, le=10000)] = 500
    """How many distinct mini-app client ids one process labels its per-mini-app metrics
    with; the rest are counted as `other` (every id is a time series per family)."""
    max_body_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 256 * 1024
    """Larger request bodies are refused with 413 before they are read. The largest valid
    body (a product at every limit, 42k characters) takes up to 167 KiB in UTF-8. A
    mini-app bundle upload is bounded by the miniapps contract's 8 MiB instead."""
    gzip_minimum_bytes: Annotated[int, Field(ge=0)] = 1024
    """Responses at least this large are gzip-compressed for clients that accept it."""
    forwarded_allow_ips: str = ""
    """Proxies whose X-Forwarded-For is believed (comma-separated); empty: none."""

    @field_validator(
        "auth_rate_limit",
        "write_rate_limit_per_user",
        "write_rate_limit_per_ip",
        "mini_app_rate_limit",
        "mini_app_daily_quota",
    )
    @classmethod
    def _valid_rate(cls, value: str) -> str:
        return _rate(value)

    @field_validator("rate_limit_storage")
    @classmethod
    def _usable_storage(cls, value: str) -> str:
        if not value.startswith("async+"):
            raise ValueError(
                "must be an async limits storage URI such as async+memory:// or "
                "async+redis://host:6379"
            )
        try:  # an unknown scheme, or one whose client library is not installed
            storage_from_string(value)
        except ConfigurationError as error:
            raise ValueError(f"cannot be used: {error}") from None
        return value
