"""Identity started in-process on port 0, with helpers to act as its clients, run its
operator commands and write the key files of its older versions."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from opentelemetry.sdk.trace import TracerProvider
from superapp.identity.v1 import identity_service_pb2 as pb
from superapp.identity.v1 import identity_service_pb2_grpc

from scripts.nats_process import NatsProcess
from services.identity.config import IdentitySettings
from services.identity.key_commands import run_command
from services.identity.server import create_server
from services.identity.signing_keys import SigningKey
from services.runtime.client_address import FORWARDED_FOR
from services.runtime.clock import Clock
from services.runtime.ids import new_id
from services.runtime.serving import GrpcService
from tests.conftest import ROOT

ADMIN_EMAIL = "root@example.com"
PASSWORD = "correct horse battery staple"
KEY_ENCRYPTION_KEY = "i_OpHbsYtgyqDcL82073z1A6-4fUgVGJlq6XO5Fq77c"
"""The tests' IDENTITY_KEY_ENCRYPTION_KEYS: one key, the same for every identity started."""


@dataclass
class Identity:
    """A running identity service and a stub to it."""

    service: GrpcService
    stub: identity_service_pb2_grpc.IdentityServiceStub
    database_url: str

    async def register(self, email: str, password: str = PASSWORD, name: str = "Ann") -> pb.User:
        reply = await self.stub.RegisterUser(
            pb.RegisterUserRequest(
                email=email, password=password, display_name=name, request_id=new_id()
            )
        )
        return reply.user

    async def login(
        self, email: str, password: str = PASSWORD, *, client: str | None = None
    ) -> pb.LoginResponse:
        """Sign in; from `client` as the BFF reports it, or else from this test's peer."""
        metadata = None if client is None else ((FORWARDED_FOR, client),)
        reply: pb.LoginResponse = await self.stub.Login(
            pb.LoginRequest(email=email, password=password), metadata=metadata
        )
        return reply

    async def signed_up(self, email: str) -> tuple[pb.User, tuple[tuple[str, str]]]:
        """A new user and the metadata that authenticates as them."""
        user = await self.register(email)
        tokens = (await self.login(email)).tokens
        return user, (("authorization", f"Bearer {tokens.access_token}"),)


def run_key_command(command: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m services.identity <command>` in `cwd`, with `env` as its only identity
    and stack settings."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("IDENTITY_", "SUPERAPP_"))}
    environ["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "services.identity", command],
        cwd=cwd,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def run_key_command_here(
    command: str, cwd: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    """What `run_key_command` does, in this process: `key_commands.run_command` (all that
    `__main__` calls) in `cwd`, with `env` as its only identity and stack settings, its
    output and exit status captured as the process's would be. For the commands' logic;
    the real process has tests of its own (test_rotate_keys)."""
    returncode, stdout, stderr = 0, io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        for name in os.environ:
            if name.startswith(("IDENTITY_", "SUPERAPP_")):
                patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        patch.chdir(cwd)
        # Its own thread: run_command runs its own event loop, as in the process.
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                await asyncio.to_thread(run_command, command)
            except SystemExit as exit:
                # As the interpreter reports sys.exit(message): the line, status 1.
                if isinstance(exit.code, str):
                    returncode = 1
                    print(exit.code, file=sys.stderr)
                else:
                    returncode = exit.code or 0
    return subprocess.CompletedProcess(
        [sys.executable, "-m", "services.identity", command],
        returncode,
        stdout.getvalue(),
        stderr.getvalue(),
    )


def write_key_file(directory: Path, generation: int, activate_time: datetime) -> SigningKey:
    """A new key, written as identity wrote them before its keys moved to the database."""
    private_key = Ed25519PrivateKey.generate()
    key = SigningKey.from_private_key(generation, private_key, activate_time)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / f"key-{generation:08d}.json"
    document = {"kid": key.kid, "activate_time": activate_time.isoformat()}
    path.write_text(json.dumps(document | {"private_key": pem.decode()}))
    path.chmod(0o600)
    return key


DEPLOYED_HASHING = {
    name: IdentitySettings.model_fields[name].default
    for name in ("password_hash_memory_kib", "password_hash_iterations")
}
"""Overrides for an identity that hashes as deployed (OWASP's parameters), where the
test is about hashing: the suite's environment makes it cheap (tests/conftest.py)."""


@contextlib.asynccontextmanager
async def running_identity(
    database_url: str,
    data_dir: Path,
    tracer_provider: TracerProvider,
    nats_url: str,
    *,
    clock: Clock | None = None,
    **overrides: Any,
) -> AsyncIterator[Identity]:
    """Identity with a known first admin; `overrides` change its other settings."""
    settings = IdentitySettings(
        **{
            "port": 0,
            "relay": "task",
            "data_dir": data_dir,
            "database_url": database_url,
            "nats_url": nats_url,
            "bootstrap_admin_email": ADMIN_EMAIL,
            "key_encryption_keys": KEY_ENCRYPTION_KEY,
            # Tests sign up many users; the budget is tested on its own.
            "password_hash_cores": 4,
            **overrides,
        }
    )
    service = await create_server(settings, tracer_provider, clock=clock)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{service.port}")
    try:
        yield Identity(
            service, identity_service_pb2_grpc.IdentityServiceStub(channel), database_url
        )
    finally:
        await channel.close()
        await service.stop(0)


@pytest.fixture
async def identity(
    database_url: str, tmp_path: Path, tracer_provider: TracerProvider, nats_server: NatsProcess
) -> AsyncIterator[Identity]:
    """Identity on the parametrised database."""
    async with running_identity(database_url, tmp_path, tracer_provider, nats_server.url) as it:
        yield it
