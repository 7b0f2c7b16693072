"""Secrets every replica of a service shares, kept in its database: one value, made once.

The page tokens of a service must verify on whichever replica a client reaches next,
and after any restart; so the key is made by the first process and read by the others.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider

from services.database import Database, upgrade_to_head
from services.database.service_secrets import service_secret
from services.foundation import Foundation
from services.runtime.clock import SystemClock
from services.runtime.page_tokens import PageTokens
from services.wallet.config import WalletSettings
from services.wallet.models import EVENT_TABLES, SERVICE_SECRETS
from tests.conftest import ROOT

_MIGRATIONS = ROOT / "services" / "wallet" / "migrations"


async def test_processes_starting_together_make_one_secret(database_url: str) -> None:
    first = Database.connect(database_url)
    await upgrade_to_head(first, _MIGRATIONS)
    databases = [first, *(Database.connect(database_url) for _ in range(3))]
    try:
        secrets = await asyncio.gather(
            *(service_secret(db, SERVICE_SECRETS, "page_tokens", SystemClock()) for db in databases)
        )
        assert len(set(secrets)) == 1
        assert len(secrets[0]) == 32
        assert (
            await service_secret(first, SERVICE_SECRETS, "page_tokens", SystemClock())
            == (secrets[0])
        )
        other = await service_secret(first, SERVICE_SECRETS, "another", SystemClock())
        assert other != secrets[0]
    finally:
        for database in databases:
            await database.dispose()


async def test_a_configured_secret_replaces_the_stored_one(
    database_url: str, tmp_path: Path, tracer_provider: TracerProvider
) -> None:
    configured = "correct horse battery staple, 32+"
    tokens: list[PageTokens] = []
    for secret in [None, configured]:
        settings = WalletSettings(
            data_dir=tmp_path,
            database_url=database_url,
            relay="task",
            page_token_secret=secret,  # type: ignore[arg-type]
        )
        foundation = await Foundation.open(
            "wallet",
            settings,
            migrations=_MIGRATIONS,
            event_tables=EVENT_TABLES,
            tracer_provider=tracer_provider,
            secrets=SERVICE_SECRETS,
        )
        try:
            tokens.append(foundation.page_tokens)
            stored = await service_secret(
                foundation.database, SERVICE_SECRETS, "page_tokens", foundation.clock
            )
        finally:
            await foundation.database.dispose()
    stored_tokens, configured_tokens = tokens
    by_stored = PageTokens(stored).encode([1], ["scope"])
    by_configured = PageTokens(configured.encode()).encode([1], ["scope"])
    assert stored_tokens.decode(by_stored, ["scope"], (int,)) == (1,)
    assert configured_tokens.decode(by_configured, ["scope"], (int,)) == (1,)
    assert by_stored != by_configured
