"""Miniapps on the parametrised database, with a real identity service issuing its tokens.

Identity keeps its own SQLite file; miniapps verifies tokens with identity's keys over
gRPC, as in production. Developers and reviewers get their roles from the bootstrap
admin through SetUserRoles, then sign in again, as the issue's path says.
"""

from __future__ import annotations

import contextlib
import io
import json
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider
from superapp.identity.v1 import identity_service_pb2 as identity_pb
from superapp.identity.v1 import identity_service_pb2_grpc
from superapp.miniapps.v1 import miniapps_service_pb2 as pb
from superapp.miniapps.v1 import miniapps_service_pb2_grpc

from scripts.nats_process import NatsProcess
from services.identity.config import IdentitySettings
from services.identity.server import create_server as create_identity
from services.miniapps.config import MiniAppsSettings
from services.miniapps.server import create_server as create_miniapps
from services.runtime.ids import new_id
from services.runtime.serving import GrpcService
from tests.identity.conftest import ADMIN_EMAIL, KEY_ENCRYPTION_KEY, Identity
from tests.services.recorded_events import recorded_events

Metadata = tuple[tuple[str, str], ...]


def good_bundle_files(version: str = "1.0.0", script: str = "") -> dict[str, str]:
    """A small mini-app that passes the automated checks (or not, by its `script`)."""
    manifest = {
        "name": "Pay a bill",
        "version": version,
        "entry": "index.html",
        "permissions": [{"name": "wallet.pay", "justification": "To pay the bill you pick."}],
        "network_domains": ["api.bills.example.com"],
    }
    return {
        "manifest.json": json.dumps(manifest),
        "index.html": '<!doctype html><title>Bills</title><script src="app.js"></script>',
        "app.js": script
        or "fetch('https://api.bills.example.com/v1/bills').then((r) => r.json());\n",
    }


def zip_bundle(files: dict[str, str] | None = None) -> bytes:
    """A small zip archive (not necessarily a valid mini-app: upload does not check that)."""
    files = files or good_bundle_files()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def app_fields(**overrides: Any) -> pb.MiniApp:
    """A valid mini-app registration, with `overrides`."""
    fields: dict[str, Any] = {
        "name": "Pay a bill",
        "category": pb.CATEGORY_FINANCE,
        "description": "Pays electricity and water bills.",
        "icon_url": "https://cdn.example.com/bill.png",
        "redirect_uris": ["https://bills.example.com/callback", "http://127.0.0.1:8080/cb"],
        "network_domains": ["api.bills.example.com", "*.cdn.example.com"],
    }
    fields.update(overrides)
    return pb.MiniApp(**fields)


@dataclass
class Platform:
    """A running miniapps service, the identity behind its tokens, and its people."""

    service: GrpcService
    channel: grpc.aio.Channel
    identity: Identity
    settings: MiniAppsSettings
    tracer_provider: TracerProvider
    admin: Metadata = ()
    _emails: int = field(default=0)

    @staticmethod
    def clock_now() -> datetime:
        """The service's time (the system's: these tests fix no clock)."""
        return datetime.now(UTC)

    @property
    def stub(self) -> miniapps_service_pb2_grpc.MiniAppsServiceStub:
        return miniapps_service_pb2_grpc.MiniAppsServiceStub(self.channel)

    async def person(self, *roles: identity_pb.Role.ValueType) -> tuple[str, Metadata]:
        """A new user holding `roles` besides `user`, and the metadata to act as them."""
        self._emails += 1
        email = f"person{self._emails}-{new_id()[-8:]}@example.com"
        user, metadata = await self.identity.signed_up(email)
        if roles:
            await self.identity.stub.SetUserRoles(
                identity_pb.SetUserRolesRequest(
                    user_id=user.user_id,
                    roles=[identity_pb.ROLE_USER, *roles],
                    request_id=new_id(),
                ),
                metadata=self.admin,
            )
            tokens = (await self.identity.login(email)).tokens
            metadata = (("authorization", f"Bearer {tokens.access_token}"),)
        return user.user_id, metadata

    async def developer(self) -> tuple[str, Metadata]:
        return await self.person(identity_pb.ROLE_DEVELOPER)

    async def reviewer(self) -> tuple[str, Metadata]:
        return await self.person(identity_pb.ROLE_REVIEWER)

    async def registered(self, developer: Metadata, **fields: Any) -> pb.RegisterMiniAppResponse:
        """A mini-app registered by `developer`."""
        return await self.stub.RegisterMiniApp(
            pb.RegisterMiniAppRequest(mini_app=app_fields(**fields), request_id=new_id()),
            metadata=developer,
        )

    async def uploaded(
        self, developer: Metadata, mini_app_id: str, bundle: bytes | None = None
    ) -> pb.Version:
        reply = await self.stub.UploadVersion(
            pb.UploadVersionRequest(
                mini_app_id=mini_app_id, bundle=bundle or zip_bundle(), request_id=new_id()
            ),
            metadata=developer,
        )
        return reply.version

    @contextlib.asynccontextmanager
    async def replica(self) -> AsyncIterator[miniapps_service_pb2_grpc.MiniAppsServiceStub]:
        """A second miniapps process on the same database, as a scaled-out deployment
        runs; its stub."""
        replica = await create_miniapps(self.settings, self.tracer_provider)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{replica.port}")
        try:
            yield miniapps_service_pb2_grpc.MiniAppsServiceStub(channel)
        finally:
            await channel.close()
            await replica.stop(0)

    async def events(self, subject: str) -> list[bytes]:
        """Payloads recorded in miniapps' outbox under `subject`, in commit order."""
        return await recorded_events(self.settings.database_url, subject)


@contextlib.asynccontextmanager
async def running_platform(
    database_url: str, data_dir: Path, tracer_provider: TracerProvider, nats_url: str
) -> AsyncIterator[Platform]:
    """Identity (on SQLite) and miniapps (on `database_url`) on port 0; the admin signed in."""
    identity = await create_identity(
        IdentitySettings(
            port=0,
            relay="task",
            data_dir=data_dir / "identity",
            nats_url=nats_url,
            bootstrap_admin_email=ADMIN_EMAIL,
            key_encryption_keys=KEY_ENCRYPTION_KEY,
            password_hash_cores=4,
        ),
        tracer_provider,
    )
    identity_channel = grpc.aio.insecure_channel(f"127.0.0.1:{identity.port}")
    try:
        settings = MiniAppsSettings(
            port=0,
            relay="task",
            data_dir=data_dir / "miniapps",
            database_url=database_url,
            nats_url=nats_url,
            identity_addr=f"127.0.0.1:{identity.port}",
        )
        miniapps = await create_miniapps(settings, tracer_provider)
        people = Identity(
            identity,
            identity_service_pb2_grpc.IdentityServiceStub(identity_channel),
            f"sqlite+aiosqlite:///{data_dir / 'identity' / 'identity.db'}",
        )
        # Bundles up to the contract's 8 MiB need a client that accepts them back.
        channel = grpc.aio.insecure_channel(
            f"127.0.0.1:{miniapps.port}",
            options=[
                ("grpc.max_receive_message_length", 16 * 1024 * 1024),
                ("grpc.max_send_message_length", 16 * 1024 * 1024),
            ],
        )
        platform = Platform(miniapps, channel, people, settings, tracer_provider)
        try:
            _, platform.admin = await people.signed_up(ADMIN_EMAIL)
            yield platform
        finally:
            await channel.close()
            await miniapps.stop(0)
    finally:
        await identity_channel.close()
        await identity.stop(0)


@pytest.fixture
async def platform(
    database_url: str, tmp_path: Path, tracer_provider: TracerProvider, nats_server: NatsProcess
) -> AsyncIterator[Platform]:
    """Miniapps on the parametrised database; the bootstrap admin signed in."""
    async with running_platform(database_url, tmp_path, tracer_provider, nats_server.url) as it:
        yield it
