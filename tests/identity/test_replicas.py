"""Identity as N replicas on one database: one set of signing keys for all of them.

A token minted by one replica verifies on every other and on every service that fetched
the keys from any of them; a rotation made anywhere is published by every replica within
seconds and signs everywhere once its time comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import text
from superapp.identity.v1 import identity_service_pb2 as pb
from superapp.wallet.v1 import wallet_service_pb2 as wallet_pb
from superapp.wallet.v1 import wallet_service_pb2_grpc

from scripts.nats_process import NatsProcess
from services.auth.token_format import ALGORITHM, TOKEN_TYPE
from services.database import Database
from services.identity.key_encryption import kek_id, parse_key_encryption_keys
from services.runtime.ids import new_id
from services.runtime.serving import StartupError
from services.wallet.config import WalletSettings
from services.wallet.server import create_server as create_wallet
from tests.auth.conftest import FakeClock
from tests.identity.conftest import (
    KEY_ENCRYPTION_KEY,
    Identity,
    run_key_command,
    running_identity,
    write_key_file,
)
from tests.services.rich_errors import rich_error

Metadata = tuple[tuple[str, str], ...]
# Generous: the replicas read the table every second, the machine may be busy.
_SEEN_WITHIN_SECONDS = 30.0


@contextlib.asynccontextmanager
async def _replicas(
    database_url: str,
    tmp_path: Path,
    tracer_provider: TracerProvider,
    nats_url: str,
    count: int = 2,
    **overrides: Any,
) -> AsyncIterator[list[Identity]]:
    """`count` identity processes' worth of servers on one database, started at once."""
    async with contextlib.AsyncExitStack() as stack:
        started = await asyncio.gather(
            *(
                stack.enter_async_context(
                    running_identity(
                        database_url,
                        tmp_path / f"replica-{n}",
                        tracer_provider,
                        nats_url,
                        **overrides,
                    )
                )
                for n in range(count)
            )
        )
        yield list(started)


def _kid(auth: Metadata) -> str:
    token = auth[0][1].removeprefix("Bearer ")
    kid: str = jwt.get_unverified_header(token)["kid"]
    return kid


async def _published(identity: Identity) -> list[str]:
    return [key.kid for key in (await identity.stub.GetJwks(pb.GetJwksRequest())).keys]


async def _published_eventually(identity: Identity, kids: list[str]) -> None:
    deadline = asyncio.get_running_loop().time() + _SEEN_WITHIN_SECONDS
    while (seen := await _published(identity)) != kids:
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"still publishing {seen}, not {kids}")
        await asyncio.sleep(0.1)


async def _sign_in(identity: Identity, email: str) -> Metadata:
    tokens = (await identity.login(email)).tokens
    return (("authorization", f"Bearer {tokens.access_token}"),)


async def _kek_ids(database_url: str) -> set[str]:
    database = Database.connect(database_url)
    try:
        async with database.read() as session:
            return set((await session.execute(text("SELECT kek_id FROM signing_keys"))).scalars())
    finally:
        await database.dispose()


async def test_a_token_from_one_replica_verifies_on_the_other_and_on_its_peers(
    database_url: str, tmp_path: Path, tracer_provider: TracerProvider, own_nats: NatsProcess
) -> None:
    async with _replicas(database_url, tmp_path, tracer_provider, own_nats.url) as (one, two):
        user, from_one = await one.signed_up("ann@example.com")
        get_user = pb.GetUserRequest(user_id=user.user_id)
        assert (await two.stub.GetUser(get_user, metadata=from_one)).user.user_id == user.user_id
        # A wallet that knows only the second replica's keys.
        wallet = await create_wallet(
            WalletSettings(
                port=0,
                relay="task",
                data_dir=tmp_path / "wallet",
                nats_url=own_nats.url,
                identity_addr=f"127.0.0.1:{two.service.port}",
            ),
            tracer_provider,
        )
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{wallet.port}") as channel:
                stub = wallet_service_pb2_grpc.WalletServiceStub(channel)
                request = wallet_pb.GetWalletRequest(user_id=user.user_id)
                deadline = asyncio.get_running_loop().time() + _SEEN_WITHIN_SECONDS
                while True:  # until the sign-up event has opened the wallet
                    try:
                        reply = await stub.GetWallet(request, metadata=from_one)
                        break
                    except grpc.aio.AioRpcError as error:
                        reason = rich_error(error).info.reason
                        if reason != "WALLET_NOT_FOUND":
                            pytest.fail(f"GetWallet failed with {reason}")
                        if asyncio.get_running_loop().time() > deadline:
                            pytest.fail("the wallet never opened")
                        await asyncio.sleep(0.05)
                assert reply.wallet.user_id == user.user_id
        finally:
            await wallet.stop(0)


async def test_replicas_starting_together_make_one_key(
    database_url: str, tmp_path: Path, tracer_provider: TracerProvider, nats_server: NatsProcess
) -> None:
    async with _replicas(database_url, tmp_path, tracer_provider, nats_server.url, 3) as started:
        published = [await _published(replica) for replica in started]
    assert len(published[0]) == 1
    assert published == [published[0]] * 3


async def test_a_rotation_by_the_command_reaches_every_replica(
    database_url: str, tmp_path: Path, tracer_provider: TracerProvider, nats_server: NatsProcess
) -> None:
    clock = FakeClock()
    async with _replicas(
        database_url, tmp_path, tracer_provider, nats_server.url, clock=clock
    ) as replicas:
        one, two = replicas
        user = await one.register("bo@example.com")
        [old] = await _published(one)

        done = await asyncio.to_thread(
            run_key_command,
            "rotate-keys",
            tmp_path,
            IDENTITY_DATABASE_URL=database_url,
            IDENTITY_KEY_ENCRYPTION_KEYS=KEY_ENCRYPTION_KEY,
        )

        assert done.returncode == 0, done.stderr
        new = done.stdout.split()[3]
        signs_from = datetime.fromisoformat(done.stdout.split()[-1])
        for replica in replicas:
            await _published_eventually(replica, [old, new])
            assert _kid(await _sign_in(replica, "bo@example.com")) == old  # announced only
        clock.advance(signs_from - clock.now())
        for replica in replicas:
            assert _kid(await _sign_in(replica, "bo@example.com")) == new
        # A token the new key signed on one replica verifies on the other.
        auth = await _sign_in(one, "bo@example.com")
        reply = await two.stub.GetUser(pb.GetUserRequest(user_id=user.user_id), metadata=auth)
        assert reply.user.email == "bo@example.com"


async def test_a_wrong_key_encryption_key_stops_the_start(
    database_url: str, tmp_path: Path, tracer_provider: TracerProvider, nats_server: NatsProcess
) -> None:
    async with running_identity(database_url, tmp_path, tracer_provider, nats_server.url) as it:
        [kid] = await _published(it)
    wrong = secrets.token_urlsafe(32)
    with pytest.raises(StartupError) as caught:
        async with running_identity(
            database_url, tmp_path, tracer_provider, nats_server.url, key_encryption_keys=wrong
        ):
            pass
    assert str(caught.value).startswith(
        f"IDENTITY_KEY_ENCRYPTION_KEYS: signing key {kid} (generation 1): sealed with "
        "key-encryption key "
    )
    assert wrong not in str(caught.value)
    async with running_identity(database_url, tmp_path, tracer_provider, nats_server.url) as it:
        assert await _published(it) == [kid]  # nothing was made in its place


async def test_a_new_key_encryption_key_goes_first_then_the_old_one_can_go(
    database_url: str, tmp_path: Path, tracer_provider: TracerProvider, nats_server: NatsProcess
) -> None:
    new = secrets.token_urlsafe(32)
    [new_bytes] = parse_key_encryption_keys(new)
    async with running_identity(database_url, tmp_path, tracer_provider, nats_server.url) as it:
        user, auth = await it.signed_up("cy@example.com")
    get_user = pb.GetUserRequest(user_id=user.user_id)
    both = f"{new},{KEY_ENCRYPTION_KEY}"

    async with running_identity(
        database_url, tmp_path, tracer_provider, nats_server.url, key_encryption_keys=both
    ) as it:
        assert (await it.stub.GetUser(get_user, metadata=auth)).user.user_id == user.user_id
        assert _kid(await _sign_in(it, "cy@example.com")) == _kid(auth)
    assert await _kek_ids(database_url) == {kek_id(new_bytes)}

    async with running_identity(
        database_url, tmp_path, tracer_provider, nats_server.url, key_encryption_keys=new
    ) as it:
        assert (await it.stub.GetUser(get_user, metadata=auth)).user.user_id == user.user_id
        assert _kid(await _sign_in(it, "cy@example.com")) == _kid(auth)


async def test_an_identity_that_kept_key_files_keeps_its_tokens_valid(
    database_url: str,
    tmp_path: Path,
    tracer_provider: TracerProvider,
    nats_server: NatsProcess,
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = FakeClock().now()
    directory = tmp_path / "identity-keys"  # the default IDENTITY_KEYS_DIR of tmp_path
    retiring = write_key_file(directory, 7, now - timedelta(days=1))
    signing = write_key_file(directory, 8, now - timedelta(minutes=5))

    with caplog.at_level(logging.INFO, logger="services.identity.signing_keys"):
        async with running_identity(database_url, tmp_path, tracer_provider, nats_server.url) as it:
            assert await _published(it) == [retiring.kid, signing.kid]
            user = await it.register("di@example.com")
            assert _kid(await _sign_in(it, "di@example.com")) == signing.kid
            # A token the old identity signed before the upgrade.
            issued = int(now.timestamp())
            before = jwt.encode(
                {
                    "iss": "superapp-identity",
                    "aud": "superapp",
                    "sub": user.user_id,
                    "exp": issued + 600,
                    "iat": issued,
                    "jti": new_id(),
                    "roles": ["user"],
                },
                signing.private_key,
                algorithm=ALGORITHM,
                headers={"typ": TOKEN_TYPE, "kid": signing.kid},
            )
            reply = await it.stub.GetUser(
                pb.GetUserRequest(user_id=user.user_id),
                metadata=(("authorization", f"Bearer {before}"),),
            )
            assert reply.user.user_id == user.user_id
    [imported] = [r.getMessage() for r in caplog.records if "imported" in r.getMessage()]
    assert imported.startswith(f"imported 2 token signing keys (generations 7, 8) from {directory}")
