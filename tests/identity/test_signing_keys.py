"""Identity's signing keys in its database: one set for every replica, sealed at rest,
rotated and retired once, readable only with the configured key-encryption keys."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from services.database import Database, upgrade_to_head
from services.identity.key_encryption import KeyEncryptionKeys, kek_id
from services.identity.key_files import KeyFileError, KeyFiles
from services.identity.signing_keys import (
    NoSigningKeys,
    SigningKey,
    SigningKeyError,
    SigningKeys,
    jwk_thumbprint,
)
from tests.auth.conftest import ENCRYPTION, IDENTITY_MIGRATIONS, KEK, RETIRE_AFTER, FakeClock
from tests.identity.conftest import write_key_file

OTHER_KEK = secrets.token_bytes(32)


@pytest.fixture
def clock() -> FakeClock:
    """The time of the keys."""
    return FakeClock()


@pytest.fixture
async def url(database_url: str) -> str:
    """Identity's database, migrated and without keys, on each backend."""
    database = Database.connect(database_url)
    try:
        await upgrade_to_head(database, IDENTITY_MIGRATIONS)
    finally:
        await database.dispose()
    return database_url


@pytest.fixture
async def replica(url: str) -> AsyncIterator[Database]:
    """One process's connection to identity's database."""
    database = Database.connect(url)
    try:
        yield database
    finally:
        await database.dispose()


async def _open(
    database: Database,
    clock: FakeClock,
    encryption: KeyEncryptionKeys = ENCRYPTION,
    key_files: KeyFiles | None = None,
) -> SigningKeys:
    return await SigningKeys.open(
        database, encryption, clock=clock, retire_after=RETIRE_AFTER, key_files=key_files
    )


def _private(key: SigningKey) -> bytes:
    return key.private_bytes()


async def _rows(database: Database) -> list[Any]:
    async with database.read() as session:
        result = await session.execute(text("SELECT * FROM signing_keys ORDER BY generation"))
        return list(result.mappings())


async def test_the_first_start_makes_one_key_that_survives_a_restart(
    url: str, clock: FakeClock
) -> None:
    first = Database.connect(url)
    try:
        made = (await _open(first, clock)).active()
    finally:
        await first.dispose()
    again = Database.connect(url)
    try:
        reopened = (await _open(again, clock)).active()
        assert [row["generation"] for row in await _rows(again)] == [1]
    finally:
        await again.dispose()
    assert (reopened.kid, reopened.jwk, reopened.generation) == (made.kid, made.jwk, 1)
    assert _private(reopened) == _private(made)


async def test_replicas_starting_at_once_share_one_key(url: str, clock: FakeClock) -> None:
    databases = [Database.connect(url) for _ in range(6)]
    try:
        opened = await asyncio.gather(*(_open(database, clock) for database in databases))
        assert len({keys.active().kid for keys in opened}) == 1
        assert [row["generation"] for row in await _rows(databases[0])] == [1]
    finally:
        for database in databases:
            await database.dispose()


async def test_the_database_holds_no_private_key_in_clear(
    replica: Database, clock: FakeClock
) -> None:
    keys = await _open(replica, clock)
    old = keys.active()
    new = await keys.rotate()
    [row_1, row_2] = await _rows(replica)
    for key in (old, new):
        raw = _private(key)
        spellings = [raw, raw.hex().encode(), base64.b64encode(raw), base64.urlsafe_b64encode(raw)]
        for row in (row_1, row_2):
            stored = b"".join(
                value if isinstance(value, bytes) else str(value).encode() for value in row.values()
            )
            assert not any(spelling.rstrip(b"=") in stored for spelling in spellings)
    for row in (row_1, row_2):
        assert len(row["sealed_private_key"]) == 12 + 32 + 16  # nonce, key, GCM tag
        assert row["kek_id"] == ENCRYPTION.sealing_id
    assert row_1["sealed_private_key"][:12] != row_2["sealed_private_key"][:12]


def test_kid_is_the_rfc7638_thumbprint() -> None:
    # RFC 8037 appendix A.3: the thumbprint of the appendix A.2 public key.
    x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    assert jwk_thumbprint(x) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


async def test_jwks_publishes_public_keys_only(replica: Database, clock: FakeClock) -> None:
    [jwk] = (await _open(replica, clock)).jwks()
    assert set(jwk) == {"kty", "crv", "x", "kid", "alg", "use"}
    assert jwk | {"x": "", "kid": ""} == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": "",
        "kid": "",
        "alg": "EdDSA",
        "use": "sig",
    }
    assert jwk["kid"] == jwk_thumbprint(jwk["x"])
    assert len(jwk["x"]) == 43  # 32 bytes, base64url without padding


async def test_a_rotation_is_stored_once_and_seen_by_every_replica_at_its_refresh(
    url: str, clock: FakeClock
) -> None:
    one, two = Database.connect(url), Database.connect(url)
    try:
        first, second = await _open(one, clock), await _open(two, clock)
        old = first.active()
        new = await first.rotate()
        assert (new.generation, first.active().kid) == (2, new.kid)
        assert second.active().kid == old.kid  # its copy is as of its last read
        await second.refresh()
        assert second.active().kid == new.kid
        assert [jwk["kid"] for jwk in second.jwks()] == [old.kid, new.kid]
    finally:
        await one.dispose()
        await two.dispose()


async def test_concurrent_rotations_agree_on_the_winner(url: str, clock: FakeClock) -> None:
    databases = [Database.connect(url) for _ in range(3)]
    try:
        opened = [await _open(database, clock) for database in databases]
        rotated = await asyncio.gather(*(keys.rotate() for keys in opened))
        # Rotations that met at one generation stored one key for it, and each got that
        # key back; on a loaded machine some may run after another finished, and then
        # rightly make the next generation. Never two keys for one generation, no gaps.
        stored = {row["generation"]: row["kid"] for row in await _rows(databases[0])}
        assert sorted(stored) == list(range(1, len(stored) + 1))
        assert 2 <= len(stored) <= 4
        assert all(stored[key.generation] == key.kid for key in rotated)
        assert len({key.kid for key in rotated}) == len(stored) - 1
    finally:
        for database in databases:
            await database.dispose()


async def test_an_old_key_stays_published_until_its_tokens_expired_then_its_row_goes(
    replica: Database, clock: FakeClock
) -> None:
    keys = await _open(replica, clock)
    old = keys.active()
    new = await keys.rotate()
    assert {jwk["kid"] for jwk in keys.jwks()} == {old.kid, new.kid}
    clock.advance(RETIRE_AFTER - RETIRE_AFTER / 100)
    await keys.refresh()
    assert {jwk["kid"] for jwk in keys.jwks()} == {old.kid, new.kid}
    clock.advance(RETIRE_AFTER / 100)
    assert [jwk["kid"] for jwk in keys.jwks()] == [new.kid]
    await keys.refresh()
    assert [row["kid"] for row in await _rows(replica)] == [new.kid]


async def test_a_rotation_can_be_announced_before_the_key_signs(
    replica: Database, clock: FakeClock
) -> None:
    keys = await _open(replica, clock)
    old = keys.active()
    new = await keys.rotate(activate_in=timedelta(minutes=11))
    assert {jwk["kid"] for jwk in keys.jwks()} == {old.kid, new.kid}
    assert keys.active().kid == old.kid
    clock.advance(timedelta(minutes=11))
    assert keys.active().kid == new.kid
    clock.advance(RETIRE_AFTER)
    assert [jwk["kid"] for jwk in keys.jwks()] == [new.kid]


async def test_a_wrong_key_encryption_key_is_refused_and_no_key_replaces_the_old(
    replica: Database, clock: FakeClock
) -> None:
    made = (await _open(replica, clock)).active()
    wrong = KeyEncryptionKeys([OTHER_KEK])
    with pytest.raises(SigningKeyError) as caught:
        await _open(replica, clock, wrong)
    assert str(caught.value) == (
        f"signing key {made.kid} (generation 1): sealed with key-encryption key "
        f"{ENCRYPTION.sealing_id}, which is not configured (configured: {kek_id(OTHER_KEK)})"
    )
    [row] = await _rows(replica)
    assert row["kid"] == made.kid


async def test_an_altered_sealed_key_is_refused(replica: Database, clock: FakeClock) -> None:
    await _open(replica, clock)
    async with replica.write() as session:
        [sealed] = (
            await session.execute(text("SELECT sealed_private_key FROM signing_keys"))
        ).one()
        flipped = sealed[:-1] + bytes([sealed[-1] ^ 1])
        await session.execute(
            text("UPDATE signing_keys SET sealed_private_key = :value"), {"value": flipped}
        )
    with pytest.raises(SigningKeyError, match="the stored key was altered"):
        await _open(replica, clock)


async def test_the_key_encryption_key_rotates_old_one_second(
    replica: Database, clock: FakeClock
) -> None:
    old_kek = ENCRYPTION
    made = (await _open(replica, clock, old_kek)).active()
    [before] = await _rows(replica)
    both = KeyEncryptionKeys([OTHER_KEK, KEK])

    reopened = await _open(replica, clock, both)

    assert reopened.active().kid == made.kid
    [after] = await _rows(replica)
    assert after["kek_id"] == kek_id(OTHER_KEK) != before["kek_id"]
    assert after["sealed_private_key"] != before["sealed_private_key"]
    new_only = await _open(replica, clock, KeyEncryptionKeys([OTHER_KEK]))
    assert _private(new_only.active()) == _private(made)
    with pytest.raises(SigningKeyError, match="which is not configured"):
        await _open(replica, clock, old_kek)
    # A key made while both are configured is sealed with the first.
    await new_only.rotate()
    assert {row["kek_id"] for row in await _rows(replica)} == {kek_id(OTHER_KEK)}


async def test_a_replica_without_the_new_key_encryption_key_publishes_but_does_not_sign_it(
    url: str, clock: FakeClock
) -> None:
    one, two = Database.connect(url), Database.connect(url)
    try:
        lagging = await _open(one, clock)
        old = lagging.active()
        ahead = await _open(two, clock, KeyEncryptionKeys([OTHER_KEK, KEK]))
        new = await ahead.rotate()
        await lagging.refresh()
        assert [jwk["kid"] for jwk in lagging.jwks()] == [old.kid, new.kid]
        assert lagging.active().kid == old.kid
    finally:
        await one.dispose()
        await two.dispose()


async def test_key_files_of_an_older_identity_are_imported_once(
    replica: Database, clock: FakeClock, tmp_path: Path
) -> None:
    directory = tmp_path / "identity-keys"
    first = write_key_file(directory, 4, clock.now() - timedelta(days=2))
    second = write_key_file(directory, 5, clock.now() - timedelta(minutes=5))
    files_before = {path.name: path.read_bytes() for path in directory.iterdir()}

    keys = await _open(replica, clock, key_files=KeyFiles(directory))

    assert keys.active().kid == second.kid
    assert _private(keys.active()) == _private(second)
    assert [jwk["kid"] for jwk in keys.jwks()] == [first.kid, second.kid]
    assert [(row["generation"], row["kid"]) for row in await _rows(replica)] == [
        (4, first.kid),
        (5, second.kid),
    ]
    assert {path.name: path.read_bytes() for path in directory.iterdir()} == files_before
    # From now on the directory is not read: not even a broken file there matters.
    (directory / "key-00000006.json").write_text("{not json")
    again = await _open(replica, clock, key_files=KeyFiles(directory))
    assert again.active().kid == second.kid
    rotated = await again.rotate()
    assert rotated.generation == 6


async def test_a_broken_key_file_stops_the_import(
    replica: Database, clock: FakeClock, tmp_path: Path
) -> None:
    directory = tmp_path / "identity-keys"
    write_key_file(directory, 1, clock.now())
    path = directory / "key-00000001.json"
    document = json.loads(path.read_text())
    document["kid"] = "someone-elses-kid"
    path.write_text(json.dumps(document))
    with pytest.raises(KeyFileError, match=r"key-00000001\.json: malformed key file"):
        await _open(replica, clock, key_files=KeyFiles(directory))
    path.write_text("{not json")
    with pytest.raises(KeyFileError, match="cannot read key file"):
        await _open(replica, clock, key_files=KeyFiles(directory))
    assert await _rows(replica) == []


async def test_no_key_files_means_a_new_key(
    replica: Database, clock: FakeClock, tmp_path: Path
) -> None:
    keys = await _open(replica, clock, key_files=KeyFiles(tmp_path / "never-made"))
    assert keys.active().generation == 1
    assert not (tmp_path / "never-made").exists()


async def test_an_operator_command_finds_no_keys_where_identity_never_ran(
    replica: Database, clock: FakeClock
) -> None:
    with pytest.raises(NoSigningKeys):
        await SigningKeys.existing(replica, ENCRYPTION, clock=clock, retire_after=RETIRE_AFTER)
    assert await _rows(replica) == []
