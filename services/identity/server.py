"""Wiring of the identity service: keys, tokens, accounts, servicer and the gRPC runtime."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.exc import SQLAlchemyError
from superapp.identity.v1 import identity_service_pb2, identity_service_pb2_grpc
from superapp.miniapps.v1 import events_pb2 as miniapps_events

from services.auth import DEFAULT_LEEWAY, AuthGuard, JwkDict, JwksCache, TokenVerifier
from services.auth.miniapp_tokens import MiniAppTokenReader
from services.database import Database, DatabaseUnavailable
from services.database.idempotency import IdempotentWrites
from services.database.service_secrets import service_secret
from services.foundation import Foundation
from services.identity.access_tokens import AccessTokenIssuer
from services.identity.account_metrics import AccountMetrics
from services.identity.accounts import Accounts
from services.identity.code_retention import CodeRetention
from services.identity.config import IdentitySettings
from services.identity.key_files import KeyFileError, KeyFiles
from services.identity.login_throttle import LoginThrottling, ThrottlePolicy
from services.identity.miniapp_clients import MiniAppClients
from services.identity.miniapp_consent import MiniAppConsent
from services.identity.miniapp_token_issuer import MiniAppTokenIssuer
from services.identity.models import EVENT_TABLES, IDEMPOTENCY_KEYS, SERVICE_SECRETS
from services.identity.pairwise_subjects import PairwiseSubjects
from services.identity.passwords import Passwords, meets_owasp, password_hasher
from services.identity.service_clients import ServiceClients
from services.identity.servicer import POLICIES, REQUEST_CHECKS, IdentityServicer
from services.identity.sessions import Sessions
from services.identity.signing_keys import NoSigningKeys, SigningKeyError, SigningKeys
from services.runtime.client_address import ClientAddresses
from services.runtime.clock import Clock
from services.runtime.serving import (
    GrpcService,
    ServiceSpec,
    StartupError,
    run_service,
    start_grpc_service,
)

__all__ = [
    "DATABASE_HINT",
    "SERVICE_NAME",
    "create_server",
    "login_policy",
    "main",
    "open_signing_keys",
]

_log = logging.getLogger(__name__)

SERVICE_NAME = identity_service_pb2.DESCRIPTOR.services_by_name["IdentityService"].full_name
_MIGRATIONS = Path(__file__).with_name("migrations")


async def create_server(
    settings: IdentitySettings, tracer_provider: TracerProvider, *, clock: Clock | None = None
) -> GrpcService:
    """Start identity on `settings.port` (0 picks one); the handle carries the bound port.

    `clock` (the system's by default) is the time of keys, tokens, sessions and throttles.
    """
    foundation = await Foundation.open(
        "identity",
        settings,
        migrations=_MIGRATIONS,
        event_tables=EVENT_TABLES,
        tracer_provider=tracer_provider,
        secrets=SERVICE_SECRETS,
        clock=clock,
    )
    database, clock = foundation.database, foundation.clock
    try:
        keys = await open_signing_keys(settings, database, clock)
        pairwise_secret = await service_secret(
            database, SERVICE_SECRETS, "pairwise_subjects", clock
        )
    except BaseException:
        await database.dispose()
        raise
    keys_refresher = keys.refresher()
    access_ttl = timedelta(seconds=settings.access_token_ttl_seconds)
    access_tokens = AccessTokenIssuer(
        keys, settings.token_issuer, settings.token_audience, access_ttl, clock
    )
    sessions = Sessions(
        database, access_tokens, timedelta(seconds=settings.refresh_token_ttl_seconds), clock
    )
    throttling = LoginThrottling(database, login_policy(settings))
    throttle_retention = throttling.retention(clock.now)
    memory_kib, iterations = settings.password_hash_memory_kib, settings.password_hash_iterations
    if not meets_owasp(memory_kib, iterations):
        _log.warning(
            "argon2id at %d KiB and %d iterations is below OWASP's minimum "
            "(IDENTITY_PASSWORD_HASH_MEMORY_KIB, IDENTITY_PASSWORD_HASH_ITERATIONS): "
            "fit for tests, not for real passwords",
            memory_kib,
            iterations,
        )
    accounts = Accounts(
        database=database,
        passwords=Passwords.calibrated(
            password_hasher(memory_kib, iterations), settings.password_hash_cores
        ),
        throttling=throttling,
        sessions=sessions,
        outbox=foundation.bus.outbox,
        clock=clock,
        bootstrap_admin_email=settings.bootstrap_admin_email,
        metrics=AccountMetrics(foundation.metrics),
    )
    await accounts.grant_bootstrap_admin()

    async def own_keys() -> Sequence[JwkDict]:
        return keys.jwks()

    # Its own keys are in memory (read from the database every second), so a
    # rotation made through another replica is picked up within a second or two.
    own_jwks = JwksCache(own_keys, clock=clock, refetch_interval=timedelta(seconds=1))
    verifier = TokenVerifier(
        own_jwks,
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        clock=clock,
    )
    clients = MiniAppClients(database, clock)
    # Identity's copy of the mini-apps' OAuth clients comes from miniapps' events.
    foundation.bus.subscribe(miniapps_events.MiniAppRegistered, clients.on_registered)
    foundation.bus.subscribe(miniapps_events.ClientSecretRotated, clients.on_secret_rotated)
    foundation.bus.subscribe(miniapps_events.MiniAppSuspended, clients.on_suspended)
    foundation.bus.subscribe(miniapps_events.MiniAppReinstated, clients.on_reinstated)
    foundation.bus.subscribe(miniapps_events.VersionStateChanged, clients.on_version_state_changed)
    consent = MiniAppConsent(
        database=database,
        clients=clients,
        issuer=MiniAppTokenIssuer(keys, settings.token_issuer, clock),
        reader=MiniAppTokenReader(own_jwks, issuer=settings.token_issuer, clock=clock),
        subjects=PairwiseSubjects(pairwise_secret),
        clock=clock,
    )
    code_retention = CodeRetention(database, clock).sweeper()
    writes = IdempotentWrites(database, IDEMPOTENCY_KEYS, clock)
    retention = writes.retention(settings.idempotency_retention)
    servicer = IdentityServicer(
        accounts=accounts,
        sessions=sessions,
        keys=keys,
        writes=writes,
        service_clients=ServiceClients(settings.service_clients, access_tokens),
        clients=ClientAddresses(settings.forwarded_allow_ips),
        consent=consent,
        page_tokens=foundation.page_tokens,
    )
    spec = ServiceSpec(
        metrics=foundation.metrics,
        domain="identity.superapp",
        service_names=[SERVICE_NAME],
        register=lambda server: identity_service_pb2_grpc.add_IdentityServiceServicer_to_server(
            servicer, server
        ),
        probe=database.ping,
        ready_when=foundation.bus.wait_ready,
        guards=[AuthGuard(verifier, [POLICIES], domain="identity.superapp")],
        request_checks=[REQUEST_CHECKS],
        closers=[
            *foundation.closers,
            retention.close,
            throttle_retention.close,
            code_retention.close,
            keys_refresher.close,
        ],
    )
    foundation.bus.start()
    keys_refresher.start()
    retention.start()
    throttle_retention.start()
    code_retention.start()
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


async def open_signing_keys(
    settings: IdentitySettings, database: Database, clock: Clock, *, existing: bool = False
) -> SigningKeys:
    """The signing keys in identity's `database`, or a start-up error naming the setting
    to fix.

    `existing`: only keys a running identity already made (operator commands).
    """
    retire_after = timedelta(seconds=settings.access_token_ttl_seconds) + DEFAULT_LEEWAY
    encryption = settings.key_encryption()
    try:
        if existing:
            return await SigningKeys.existing(
                database, encryption, clock=clock, retire_after=retire_after
            )
        return await SigningKeys.open(
            database,
            encryption,
            clock=clock,
            retire_after=retire_after,
            key_files=KeyFiles(settings.resolved_keys_dir()),
        )
    except NoSigningKeys as error:
        raise StartupError(f"IDENTITY_DATABASE_URL: {error} ({DATABASE_HINT})") from error
    except KeyFileError as error:
        raise StartupError(
            f"IDENTITY_KEYS_DIR: {error} (the key files of an older identity, to import)"
        ) from error
    except SigningKeyError as error:
        raise StartupError(
            f"IDENTITY_KEY_ENCRYPTION_KEYS: {error}; identity never replaces a key it "
            "cannot open: configure the key-encryption key that sealed it"
        ) from error
    except (SQLAlchemyError, OSError) as error:
        cause = getattr(error, "orig", None) or error
        raise DatabaseUnavailable(
            f"IDENTITY_DATABASE_URL: cannot read the signing keys: {cause} ({DATABASE_HINT})"
        ) from error


DATABASE_HINT = (
    "identity's database is IDENTITY_DATABASE_URL, else the SQLite file identity.db in "
    "IDENTITY_DATA_DIR or SUPERAPP_DATA_DIR"
)
"""Says which database identity uses, for errors about it."""


def main() -> None:
    """Run identity until SIGTERM/SIGINT."""
    run_service("identity", IdentitySettings, create_server)
