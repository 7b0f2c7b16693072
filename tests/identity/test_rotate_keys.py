"""`python -m services.identity rotate-keys` and `reencrypt-keys` act on the running
identity's keys through its database, or refuse.

The real command runs in its own process once, as an operator runs it beside the stack:
that is its wiring (`__main__` to `key_commands.run_command`). The other cases are about
the commands' logic, refusals included, and call `run_command` in this process
(`run_key_command_here`): a process each cost seconds of imports on a busy machine."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from services.database import Database, open_database
from services.identity.key_encryption import kek_id, parse_key_encryption_keys
from services.identity.signing_keys import SigningKeys
from tests.auth.conftest import ENCRYPTION, IDENTITY_MIGRATIONS, RETIRE_AFTER, FakeClock
from tests.identity.conftest import KEY_ENCRYPTION_KEY, run_key_command, run_key_command_here

OTHER_KEY = secrets.token_urlsafe(32)


async def _rows(url: str) -> list[Any]:
    database = Database.connect(url)
    try:
        async with database.read() as session:
            query = text("SELECT generation, kek_id FROM signing_keys ORDER BY generation")
            return [tuple(row) for row in await session.execute(query)]
    finally:
        await database.dispose()


@pytest.fixture
async def served_url(database_url: str) -> str:
    """The database of an identity that has run: migrated, with its first key."""
    database = await open_database(
        database_url, IDENTITY_MIGRATIONS, setting="IDENTITY_DATABASE_URL"
    )
    try:
        await SigningKeys.open(database, ENCRYPTION, clock=FakeClock(), retire_after=RETIRE_AFTER)
    finally:
        await database.dispose()
    return database_url


async def test_it_rotates_the_keys_of_the_stacks_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "stack-data"
    # What identity made when the stack started it with SUPERAPP_DATA_DIR=data.
    url = f"sqlite+aiosqlite:///{data / 'identity.db'}"
    database = await open_database(url, IDENTITY_MIGRATIONS, setting="IDENTITY_DATABASE_URL")
    try:
        await SigningKeys.open(database, ENCRYPTION, clock=FakeClock(), retire_after=RETIRE_AFTER)
    finally:
        await database.dispose()
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()

    done = run_key_command(
        "rotate-keys",
        elsewhere,
        SUPERAPP_DATA_DIR=str(data),
        IDENTITY_KEY_ENCRYPTION_KEYS=KEY_ENCRYPTION_KEY,
    )

    assert done.returncode == 0, done.stderr
    assert "(generation 2) published; it signs from " in done.stdout
    assert [generation for generation, _ in await _rows(url)] == [1, 2]
    assert list(elsewhere.iterdir()) == []  # no ./.data made on the side


async def test_it_rotates_through_the_database_url(served_url: str, tmp_path: Path) -> None:
    done = await run_key_command_here(
        "rotate-keys",
        tmp_path,
        IDENTITY_DATABASE_URL=served_url,
        IDENTITY_KEY_ENCRYPTION_KEYS=KEY_ENCRYPTION_KEY,
    )
    assert done.returncode == 0, done.stderr
    assert [generation for generation, _ in await _rows(served_url)] == [1, 2]


async def test_it_refuses_where_no_identity_keeps_keys(tmp_path: Path) -> None:
    empty = tmp_path / "not-the-stack"

    done = await run_key_command_here(
        "rotate-keys",
        tmp_path,
        SUPERAPP_DATA_DIR=str(empty),
        IDENTITY_KEY_ENCRYPTION_KEYS=KEY_ENCRYPTION_KEY,
    )

    assert done.returncode == 1
    assert done.stderr.startswith(
        f"rotate-keys: IDENTITY_DATABASE_URL: no signing keys: there is no database at {empty}"
    )
    assert not empty.exists()


async def test_it_refuses_a_database_without_keys(database_url: str, tmp_path: Path) -> None:
    database = await open_database(
        database_url, IDENTITY_MIGRATIONS, setting="IDENTITY_DATABASE_URL"
    )
    await database.dispose()

    done = await run_key_command_here(
        "rotate-keys",
        tmp_path,
        IDENTITY_DATABASE_URL=database_url,
        IDENTITY_KEY_ENCRYPTION_KEYS=KEY_ENCRYPTION_KEY,
    )

    assert done.returncode == 1
    assert done.stderr.startswith(
        "rotate-keys: IDENTITY_DATABASE_URL: no signing keys: "
        "not the database of a running identity"
    )
    assert await _rows(database_url) == []


async def test_it_refuses_keys_it_cannot_open(served_url: str, tmp_path: Path) -> None:
    done = await run_key_command_here(
        "rotate-keys",
        tmp_path,
        IDENTITY_DATABASE_URL=served_url,
        IDENTITY_KEY_ENCRYPTION_KEYS=OTHER_KEY,
    )

    assert done.returncode == 1
    assert done.stderr.startswith("rotate-keys: IDENTITY_KEY_ENCRYPTION_KEYS: signing key ")
    assert "which is not configured" in done.stderr
    assert OTHER_KEY not in done.stderr + done.stdout
    assert [generation for generation, _ in await _rows(served_url)] == [1]


async def test_it_needs_the_key_encryption_key(tmp_path: Path) -> None:
    done = await run_key_command_here("rotate-keys", tmp_path, SUPERAPP_DATA_DIR=str(tmp_path))
    assert done.returncode == 1
    assert done.stderr.startswith("rotate-keys: IDENTITY_KEY_ENCRYPTION_KEYS: Field required")


async def test_reencrypt_keys_seals_every_key_under_the_first_kek(
    served_url: str, tmp_path: Path
) -> None:
    [new] = parse_key_encryption_keys(OTHER_KEY)

    done = await run_key_command_here(
        "reencrypt-keys",
        tmp_path,
        IDENTITY_DATABASE_URL=served_url,
        IDENTITY_KEY_ENCRYPTION_KEYS=f"{OTHER_KEY},{KEY_ENCRYPTION_KEY}",
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"sealed 1 again; 1 signing keys, sealed with key-encryption key {kek_id(new)}"
    )
    assert await _rows(served_url) == [(1, kek_id(new))]
    again = await run_key_command_here(
        "rotate-keys",
        tmp_path,
        IDENTITY_DATABASE_URL=served_url,
        IDENTITY_KEY_ENCRYPTION_KEYS=OTHER_KEY,
    )
    assert again.returncode == 0, again.stderr
