"""Operator commands on identity's signing keys: `python -m services.identity <command>`.

They read the settings the service reads (`IDENTITY_*`, and `SUPERAPP_DATA_DIR` as the
stack sets it) and act through identity's database, so they work from any machine that
has those settings, on every replica at once. They act only on keys a running identity
made: pointed anywhere else, they refuse instead of making keys nobody serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from services.database import Database
from services.identity.config import IdentitySettings
from services.identity.server import DATABASE_HINT, open_signing_keys
from services.identity.signing_keys import SigningKeys
from services.runtime.clock import SystemClock
from services.runtime.serving import StartupError
from services.runtime.settings import ConfigurationError, load_settings

__all__ = ["COMMANDS", "reencrypt_keys", "rotate_keys", "run_command"]

# Longer than verifiers keep a key set (JwksCache's 10-minute maximum age).
_ANNOUNCED_FOR = timedelta(minutes=11)


@contextlib.asynccontextmanager
async def _existing_keys(settings: IdentitySettings) -> AsyncIterator[SigningKeys]:
    url = settings.resolved_database_url("identity")
    if url.startswith("sqlite"):
        # Connecting would create the file: a mistyped directory must not get one.
        path = make_url(url).database or ""
        if not await asyncio.to_thread(Path(path).is_file):
            raise StartupError(
                f"IDENTITY_DATABASE_URL: no signing keys: there is no database at {path} "
                f"({DATABASE_HINT})"
            )
    database = Database.connect(url)
    try:
        yield await open_signing_keys(settings, database, SystemClock(), existing=True)
    finally:
        await database.dispose()


async def rotate_keys(settings: IdentitySettings) -> str:
    """Add the next signing key: published by every replica within seconds, and signing
    only after every verifier's key cache has refreshed, so no valid token is refused."""
    async with _existing_keys(settings) as keys:
        new = await keys.rotate(activate_in=_ANNOUNCED_FOR)
    return (
        f"new signing key {new.kid} (generation {new.generation}) published; "
        f"it signs from {new.activate_time.isoformat()}"
    )


async def reencrypt_keys(settings: IdentitySettings) -> str:
    """Seal every signing key under the first of IDENTITY_KEY_ENCRYPTION_KEYS (which
    identity also does when it starts); then the others may be dropped."""
    async with _existing_keys(settings) as keys:
        count = await keys.reseal()
        return f"sealed {count} again; {keys.sealing_report()}"


COMMANDS: dict[str, Callable[[IdentitySettings], Coroutine[Any, Any, str]]] = {
    "rotate-keys": rotate_keys,
    "reencrypt-keys": reencrypt_keys,
}
"""The commands by name."""


def run_command(command: str) -> None:
    """Run `command` (one of `COMMANDS`) on the settings in the environment and print
    its report; a refusal exits with status 1 and one line on stderr, naming the command.

    What `python -m services.identity <command>` does, here rather than in `__main__`
    so that it can be called without starting an interpreter (the tests of the
    commands' logic do; one test per outcome still runs the real process).
    """
    try:
        print(asyncio.run(COMMANDS[command](load_settings(IdentitySettings))))
    except (ConfigurationError, StartupError) as error:
        sys.exit(f"{command}: {error}")
