"""The registry over gRPC: registration, credentials, ownership, roles and bad input."""

from __future__ import annotations

import hashlib
import re

import grpc
from sqlalchemy import select
from superapp.miniapps.v1 import events_pb2
from superapp.miniapps.v1 import miniapps_service_pb2 as pb

from services.database import Database
from services.miniapps.client_credentials import secret_matches
from services.miniapps.models import IDEMPOTENCY_KEYS, MINI_APPS
from services.runtime.ids import new_id
from tests.miniapps.conftest import Platform, app_fields
from tests.services.rich_errors import failure


async def _stored(platform: Platform, mini_app_id: str) -> tuple[str, list[bytes]]:
    database = Database.connect(platform.settings.database_url)
    try:
        async with database.read() as session:
            digest = await session.scalar(
                select(MINI_APPS.c.secret_sha256).where(MINI_APPS.c.mini_app_id == mini_app_id)
            )
            responses = list(await session.scalars(select(IDEMPOTENCY_KEYS.c.response)))
    finally:
        await database.dispose()
    assert digest is not None
    return digest, responses


async def test_a_developer_registers_and_gets_credentials_shown_once(platform: Platform) -> None:
    developer_id, developer = await platform.developer()
    request = pb.RegisterMiniAppRequest(mini_app=app_fields(), request_id=new_id())
    reply = await platform.stub.RegisterMiniApp(request, metadata=developer)
    app = reply.mini_app
    assert (app.developer_id, app.status, app.category) == (
        developer_id,
        pb.MINI_APP_STATUS_ACTIVE,
        pb.CATEGORY_FINANCE,
    )
    assert re.fullmatch(r"ma_[0-9a-f]{32}", app.client_id)
    assert re.fullmatch(r"mas_[A-Za-z0-9_-]{43}", reply.client_secret)
    digest, responses = await _stored(platform, app.mini_app_id)
    # Stored hashed only: neither the table nor the replay record holds the secret.
    assert digest == hashlib.sha256(reply.client_secret.encode()).hexdigest()
    assert secret_matches(reply.client_secret, digest)
    assert all(reply.client_secret.encode() not in response for response in responses)
    # A retry replays the registration, without the secret, and registers nothing new.
    again = await platform.stub.RegisterMiniApp(request, metadata=developer)
    assert (again.mini_app, again.client_secret) == (app, "")
    mine = await platform.stub.ListMyMiniApps(pb.ListMyMiniAppsRequest(), metadata=developer)
    assert [a.mini_app_id for a in mine.mini_apps] == [app.mini_app_id]
    [payload] = await platform.events("superapp.miniapps.mini_app.registered")
    assert events_pb2.MiniAppRegistered.FromString(payload).mini_app == app
    changed = pb.RegisterMiniAppRequest(
        mini_app=app_fields(name="Other"), request_id=request.request_id
    )
    reused = await failure(platform.stub.RegisterMiniApp(changed, metadata=developer))
    assert (reused.code, reused.info.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "IDEMPOTENCY_KEY_REUSED",
    )


async def test_rotation_replaces_the_secret(platform: Platform) -> None:
    _, developer = await platform.developer()
    first = await platform.registered(developer)
    app_id = first.mini_app.mini_app_id
    request = pb.RotateClientSecretRequest(mini_app_id=app_id, request_id=new_id())
    rotated = await platform.stub.RotateClientSecret(request, metadata=developer)
    assert rotated.client_secret not in ("", first.client_secret)
    digest, _ = await _stored(platform, app_id)
    assert secret_matches(rotated.client_secret, digest)
    assert not secret_matches(first.client_secret, digest)
    replay = await platform.stub.RotateClientSecret(request, metadata=developer)
    assert replay.client_secret == ""
    assert await _stored(platform, app_id) == (digest, _)


async def test_only_the_owner_manages_and_only_developers_register(platform: Platform) -> None:
    _, owner = await platform.developer()
    _, other = await platform.developer()
    _, user = await platform.person()
    app = (await platform.registered(owner)).mini_app
    for caller in (other, user):
        hidden = await failure(
            platform.stub.GetMiniApp(
                pb.GetMiniAppRequest(mini_app_id=app.mini_app_id), metadata=caller
            )
        )
        assert (hidden.code, hidden.info.reason) == (
            grpc.StatusCode.NOT_FOUND,
            "MINI_APP_NOT_FOUND",
        )
    stolen = await failure(
        platform.stub.RotateClientSecret(
            pb.RotateClientSecretRequest(mini_app_id=app.mini_app_id, request_id=new_id()),
            metadata=other,
        )
    )
    assert stolen.info.reason == "MINI_APP_NOT_FOUND"
    denied = await failure(
        platform.stub.RegisterMiniApp(
            pb.RegisterMiniAppRequest(mini_app=app_fields(), request_id=new_id()), metadata=user
        )
    )
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED
    _, reviewer = await platform.reviewer()
    seen = await platform.stub.GetMiniApp(
        pb.GetMiniAppRequest(mini_app_id=app.mini_app_id), metadata=reviewer
    )
    assert seen.mini_app == app
    others = await platform.stub.ListMyMiniApps(pb.ListMyMiniAppsRequest(), metadata=other)
    assert list(others.mini_apps) == []


async def test_bad_registrations_name_every_field(platform: Platform) -> None:
    _, developer = await platform.developer()
    bad = app_fields(
        name="   ",
        category=0,
        description="x" * 2001,
        icon_url="http://cdn.example.com/icon.png",
        redirect_uris=[
            "http://bills.example.com/cb",
            "https://bills.example.com/cb#frag",
            "not a url",
            "http://127.0.0.1:9000/cb",
            "http://127.0.0.1:9000/cb",
        ],
        network_domains=["API.example.com", "ok.example.com", "ok.example.com"],
    )
    error = await failure(
        platform.stub.RegisterMiniApp(
            pb.RegisterMiniAppRequest(mini_app=bad, request_id=""), metadata=developer
        )
    )
    assert (error.code, error.info.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert error.violations == {
        "mini_app.name": "REQUIRED",
        "mini_app.category": "REQUIRED",
        "mini_app.description": "TOO_LONG",
        "mini_app.icon_url": "INVALID_URL",
        "mini_app.redirect_uris[0]": "INSECURE_URL",
        "mini_app.redirect_uris[1]": "INVALID_URL",
        "mini_app.redirect_uris[2]": "INVALID_URL",
        "mini_app.redirect_uris[4]": "DUPLICATE",
        "mini_app.network_domains[0]": "INVALID_DOMAIN",
        "mini_app.network_domains[2]": "DUPLICATE",
        "request_id": "REQUIRED",
    }
    unknown = await failure(
        platform.stub.RegisterMiniApp(
            pb.RegisterMiniAppRequest(mini_app=app_fields(category=99), request_id=new_id()),
            metadata=developer,
        )
    )
    assert unknown.violations == {"mini_app.category": "UNKNOWN_ENUM_VALUE"}


async def test_own_apps_page_with_tokens(platform: Platform) -> None:
    _, developer = await platform.developer()
    ids = [
        (await platform.registered(developer, name=f"App {n}")).mini_app.mini_app_id
        for n in range(3)
    ]
    first = await platform.stub.ListMyMiniApps(
        pb.ListMyMiniAppsRequest(page_size=2), metadata=developer
    )
    second = await platform.stub.ListMyMiniApps(
        pb.ListMyMiniAppsRequest(page_size=2, page_token=first.next_page_token),
        metadata=developer,
    )
    listed = [a.mini_app_id for a in [*first.mini_apps, *second.mini_apps]]
    assert (listed, second.next_page_token) == (ids[::-1], "")
    _, other = await platform.developer()
    foreign = await failure(
        platform.stub.ListMyMiniApps(
            pb.ListMyMiniAppsRequest(page_token=first.next_page_token), metadata=other
        )
    )
    assert foreign.info.reason == "INVALID_PAGE_TOKEN"
