"""The settings every service shares, read from the environment under a service prefix.

Each service subclasses `ServiceSettings` with its own `env_prefix` (`WALLET_PORT`, …) and
loads it with `load_settings`, which turns pydantic's report into one line per bad setting.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal, TypeVar, get_args

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.runtime.page_tokens import SECRET_MIN_BYTES

__all__ = ["ConfigurationError", "RelayMode", "ServiceSettings", "load_settings"]

SHARED_VARIABLES = {
    "data_dir": "SUPERAPP_DATA_DIR",
    "nats_stream_replicas": "SUPERAPP_NATS_STREAM_REPLICAS",
}
"""Settings every process of a deployment shares, read from one variable when the
process's own `<PREFIX>_…` is unset: the local stack, a Kubernetes overlay or an
operator's shell sets them once for all."""


def _shared(field: str, default: str) -> Callable[[], str]:
    return lambda: os.environ.get(SHARED_VARIABLES[field], default)


Port = Annotated[int, Field(ge=0, le=65535)]
RelayMode = Literal["process", "task"]
"""Where a service's outbox relay runs: a child process, or a task on its event loop."""


class ConfigurationError(Exception):
    """A setting is missing or malformed; the message names the environment variable."""


class ServiceSettings(BaseSettings):
    """Settings of one gRPC service. Subclasses set `env_prefix` and the default port."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    host: str = "127.0.0.1"
    """Interface the gRPC server binds; loopback unless deliberately exposed."""
    port: Port = 0
    """gRPC port; 0 picks a free one (tests)."""
    metrics_port: Port | None = None
    """Where `/metrics` (Prometheus text and OpenMetrics) is served, on `host`; 0 picks a
    free port; unset, nowhere (the local stack and the Kubernetes overlays set it)."""
    metrics_enabled: bool = True
    """false: record no metrics at all (build and process metrics still show where they
    are served); for pricing the metrics in the bench, or an operator's way out."""
    data_dir: Path = Field(default_factory=_shared("data_dir", ".data"), validate_default=True)
    """Where the embedded default database lives; unset, `SUPERAPP_DATA_DIR` (what the
    local stack sets for all of its processes, so an operator command run beside it
    finds the same data), else `.data`."""
    database_url: str = ""
    """SQLAlchemy async URL; empty means a SQLite file `<data_dir>/<service>.db`."""
    nats_url: str = "nats://127.0.0.1:7222"
    """The NATS server with JetStream, or a cluster's nodes comma-separated; the service
    starts and answers without it (its health says NOT_SERVING until events flow)."""
    nats_stream_replicas: Annotated[
        int,
        Field(
            ge=1, le=5, default_factory=_shared("nats_stream_replicas", "1"), validate_default=True
        ),
    ]
    """Copies JetStream keeps of each stream the service declares (3 on a 3-node
    cluster, so a node may die without loss); unset, `SUPERAPP_NATS_STREAM_REPLICAS`,
    else 1. Every service must say the same: each declares the streams it reads too."""
    event_ack_wait_seconds: Annotated[float, Field(ge=1, le=3600)] = 30.0
    """How long an event handed to one replica's consumer waits for its acknowledgement
    before JetStream hands it to another replica: the delay an event sees when the
    replica handling it dies. Longer than the slowest handler, or events run twice
    (harmlessly: the inbox makes a second run a no-op, but it costs)."""
    relay_lease_seconds: Annotated[float, Field(ge=2, le=300)] = 10.0
    """Of a service's replicas, the one holding this lease publishes its outbox; when
    that replica dies without giving it up, publishing pauses this long before another
    takes over (a clean stop hands over at once)."""
    relay: RelayMode = "process"
    """Where the outbox relay publishes from: `process`, a child process of the service,
    so publishing never takes CPU from RPCs; `task`, the service's own event loop
    (fewer processes: tests, small machines)."""
    idempotency_retention_hours: Annotated[float, Field(ge=24, le=24 * 366)] = 24.0
    """How long a mutation's `request_id` is honoured (a retry replays its response).
    At least a day: the orders service replays its checkout steps' request ids."""
    token_issuer: str = "superapp-identity"  # noqa: S105 - a name, not a secret
    """The `iss` of access tokens: identity signs with it, every service requires it."""
    token_audience: str = "superapp"  # noqa: S105 - a name, not a secret
    """The `aud` of access tokens: identity signs with it, every service requires it."""
    identity_addr: str = "127.0.0.1:7101"
    """identity's gRPC address (host:port), whose JWKS verify access tokens."""
    shutdown_grace_seconds: Annotated[float, Field(gt=0, le=300)] = 10.0
    """How long in-flight RPCs may finish after SIGTERM before they are cancelled."""
    health_probe_seconds: Annotated[float, Field(gt=0, le=300)] = 5.0
    """How often the database is probed to keep the health status honest."""
    log_level: str = "INFO"
    """Root log level name."""
    page_token_secret: SecretStr | None = None
    """The key of the service's page tokens, the same for every replica. Unset (the
    default), the first process makes one and keeps it in the service's database."""

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if value and not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("nats_url")
    @classmethod
    def _nats_scheme(cls, value: str) -> str:
        if not all(url.strip().startswith(("nats://", "tls://")) for url in value.split(",")):
            raise ValueError("must be nats:// or tls:// URLs, comma-separated")
        return value

    @field_validator("page_token_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < SECRET_MIN_BYTES:
            raise ValueError(f"must be at least {SECRET_MIN_BYTES} bytes")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @property
    def idempotency_retention(self) -> timedelta:
        """`idempotency_retention_hours` as a duration."""
        return timedelta(hours=self.idempotency_retention_hours)

    def resolved_database_url(self, service: str) -> str:
        """The database URL in force: the configured one, or the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / f'{service}.db').resolve()}"


_Settings = TypeVar("_Settings", bound=BaseSettings)


def _sensitive(cls: type[BaseSettings], location: tuple[int | str, ...]) -> bool:
    """Whether a setting's value must not be echoed: a secret, or a field hidden from
    its repr (which may hold one by mistake)."""
    field = cls.model_fields.get(str(location[0])) if location else None
    if field is None:
        return False
    secret = field.annotation is SecretStr or SecretStr in get_args(field.annotation)
    return secret or not field.repr


_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^\s/]*@")


def _masked(value: object) -> object:
    """`value` with the password of any URL in it replaced, so a bad database or Redis
    URL can be named without printing its credentials."""
    return _URL_PASSWORD.sub(r"\1***@", value) if isinstance(value, str) else value


def load_settings(cls: type[_Settings]) -> _Settings:
    """Read `cls` from the environment, or fail with one line per offending variable."""
    try:
        return cls()
    except ValidationError as error:
        prefix = str(cls.model_config.get("env_prefix", ""))
        lines = []
        for problem in error.errors():
            name = (prefix + "_".join(str(part) for part in problem["loc"])).upper()
            line = f"{name}: {problem['msg']}"
            if not _sensitive(cls, problem["loc"]):
                line += f" (got {_masked(problem.get('input'))!r})"
            lines.append(line)
        raise ConfigurationError("; ".join(lines)) from None
