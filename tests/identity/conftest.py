"""Identity started in-process on port 0, with helpers to act as its clients."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider
from superapp.identity.v1 import identity_service_pb2 as pb
from superapp.identity.v1 import identity_service_pb2_grpc

from scripts.nats_process import NatsProcess
from services.identity.config import IdentitySettings
from services.identity.server import create_server
from services.runtime.client_address import FORWARDED_FOR
from services.runtime.clock import Clock
from services.runtime.ids import new_id
from services.runtime.serving import GrpcService

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
