"""Wiring of the identity service: keys, tokens, accounts, servicer and the gRPC runtime."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from superapp.identity.v1 import identity_service_pb2, identity_service_pb2_grpc

from services.auth import DEFAULT_LEEWAY, AuthGuard, JwkDict, JwksCache, TokenVerifier
from services.database.idempotency import IdempotentWrites
from services.foundation import Foundation
from services.identity.access_tokens import AccessTokenIssuer
from services.identity.accounts import Accounts
from services.identity.config import IdentitySettings
from services.identity.login_throttle import LoginThrottling, ThrottlePolicy
from services.identity.models import EVENT_TABLES, IDEMPOTENCY_KEYS
from services.identity.passwords import Passwords, owasp_hasher
from services.identity.service_clients import ServiceClients
from services.identity.servicer import POLICIES, IdentityServicer
from services.identity.sessions import Sessions
from services.identity.signing_keys import SigningKeyError, SigningKeys
from services.runtime.client_address import ClientAddresses
from services.runtime.clock import Clock, SystemClock
from services.runtime.serving import (
    GrpcService,
    ServiceSpec,
    StartupError,
    run_service,
    start_grpc_service,
)

__all__ = ["SERVICE_NAME", "create_server", "login_policy", "main", "open_signing_keys"]

SERVICE_NAME = identity_service_pb2.DESCRIPTOR.services_by_name["IdentityService"].full_name
_MIGRATIONS = Path(__file__).with_name("migrations")


async def create_server(
    settings: IdentitySettings, tracer_provider: TracerProvider, *, clock: Clock | None = None
) -> GrpcService:
    """Start identity on `settings.port` (0 picks one); the handle carries the bound port.

    `clock` (the system's by default) is the time of tokens, sessions and throttles.
    """
    keys = open_signing_keys(settings, SystemClock())
    foundation = await Foundation.open(
        "identity",
        settings,
        migrations=_MIGRATIONS,
        event_tables=EVENT_TABLES,
        tracer_provider=tracer_provider,
        clock=clock,
    )
    database, clock = foundation.database, foundation.clock
    access_ttl = timedelta(seconds=settings.access_token_ttl_seconds)
    access_tokens = AccessTokenIssuer(
        keys, settings.token_issuer, settings.token_audience, access_ttl, clock
    )
    sessions = Sessions(
        database, access_tokens, timedelta(seconds=settings.refresh_token_ttl_seconds), clock
    )
    throttling = LoginThrottling(database, login_policy(settings))
    throttle_retention = throttling.retention(clock.now)
    accounts = Accounts(
        database=database,
        passwords=Passwords.calibrated(owasp_hasher(), settings.password_hash_cores),
        throttling=throttling,
        sessions=sessions,
        outbox=foundation.bus.outbox,
        clock=clock,
        bootstrap_admin_email=settings.bootstrap_admin_email,
    )
    await accounts.grant_bootstrap_admin()

    async def own_keys() -> Sequence[JwkDict]:
        return keys.jwks()

    verifier = TokenVerifier(
        # Reading its own key files is cheap, so a rotation by another identity process
        # is picked up within a second.
        JwksCache(own_keys, clock=clock, refetch_interval=timedelta(seconds=1)),
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        clock=clock,
    )
    writes = IdempotentWrites(database, IDEMPOTENCY_KEYS, clock)
    retention = writes.retention(settings.idempotency_retention)
    servicer = IdentityServicer(
        accounts=accounts,
        sessions=sessions,
        keys=keys,
        writes=writes,
        service_clients=ServiceClients(settings.service_clients, access_tokens),
        clients=ClientAddresses(settings.forwarded_allow_ips),
    )
    spec = ServiceSpec(
        domain="identity.superapp",
        service_names=[SERVICE_NAME],
        register=lambda server: identity_service_pb2_grpc.add_IdentityServiceServicer_to_server(
            servicer, server
        ),
        probe=database.ping,
        ready_when=foundation.bus.wait_ready,
        guards=[AuthGuard(verifier, [POLICIES], domain="identity.superapp")],
        closers=[*foundation.closers, retention.close, throttle_retention.close],
    )
    foundation.bus.start()
    retention.start()
    throttle_retention.start()
    return await start_grpc_service(
        spec, settings, env_prefix="IDENTITY_", tracer_provider=tracer_provider
    )


def login_policy(settings: IdentitySettings) -> ThrottlePolicy:
    """The sign-in throttle's bounds, from the `IDENTITY_LOGIN_*` settings."""
    return ThrottlePolicy(
        free_failures=settings.login_free_failures,
        first_delay=timedelta(seconds=settings.login_first_delay_seconds),
        max_delay=timedelta(seconds=settings.login_max_delay_seconds),
        reset_after=timedelta(seconds=settings.login_failure_reset_seconds),
        address_max_failures=settings.login_address_max_failures,
        address_window=timedelta(seconds=settings.login_address_window_seconds),
        address_block=timedelta(seconds=settings.login_address_block_seconds),
    )


def open_signing_keys(
    settings: IdentitySettings, clock: Clock, *, existing: bool = False
) -> SigningKeys:
    """The signing keys, or a start-up error naming the directory setting.

    `existing`: only keys a running identity already made (operator commands).
    """
    access_ttl = timedelta(seconds=settings.access_token_ttl_seconds)
    opener = SigningKeys.existing if existing else SigningKeys
    try:
        return opener(
            settings.resolved_keys_dir(), clock=clock, retire_after=access_ttl + DEFAULT_LEEWAY
        )
    except SigningKeyError as error:
        raise StartupError(
            f"IDENTITY_KEYS_DIR: {error} (identity keeps them in IDENTITY_KEYS_DIR, "
            "default <IDENTITY_DATA_DIR or SUPERAPP_DATA_DIR>/identity-keys)"
        ) from error


def main() -> None:
    """Run identity until SIGTERM/SIGINT."""
    run_service("identity", IdentitySettings, create_server)
