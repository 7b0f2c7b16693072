"""The sample mini-app of examples/pay-a-bill, as the README walks a developer through
it: its bundle passes review and zips reproducibly, and with it a mini-app goes from
registration to a token its backend script redeems at the BFF, then to a payment the
user confirms, which the backend learns of by its signed webhook and by asking."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.miniapps.review import review_bundle
from services.miniapps.webhook_signature import signature_header
from services.runtime.ids import new_id
from tests.bff.conftest import (
    Platform,
    Session,
    admin_session,
    available,
    sign_up,
    top_up,
    wallet_of,
)
from tests.bff.test_mini_app_oauth import in_review
from tests.bff.test_miniapps import developer, reviewer, uploaded
from tests.conftest import ROOT
from tests.miniapps.payment_stack import eventually, funded_user

SAMPLE = ROOT / "examples" / "pay-a-bill"
REDIRECT = "https://bills.example.com/callback"


def _load(path: Path) -> ModuleType:
    """A script of the sample by path (its directory name is no package name)."""
    spec = importlib.util.spec_from_file_location(f"pay_a_bill_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_sample_bundle_passes_review_and_zips_reproducibly() -> None:
    build = _load(SAMPLE / "build_bundle.py")
    bundle: bytes = build.build_bundle()
    assert bundle == build.build_bundle()
    report = review_bundle(bundle)
    assert report.passed, report.findings
    assert report.findings == ()


class SampleReceiver:
    """The sample backend's webhook endpoint: `receive_webhook` decides, as the README
    tells a developer to use it."""

    def __init__(self, backend: ModuleType) -> None:
        self.backend = backend
        self.secret = ""
        self.seen: set[str] = set()
        self.events: list[dict[str, Any]] = []
        self.refused = 0
        self.redelivered = 0

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        try:
            event = self.backend.receive_webhook(self.secret, request.headers, body, self.seen)
        except self.backend.BadWebhook:
            self.refused += 1
            return Response(status_code=401)
        if event is None:
            self.redelivered += 1
        else:
            self.events.append(event)
        return Response(status_code=204)


@contextlib.asynccontextmanager
async def serving(receiver: SampleReceiver) -> AsyncIterator[str]:
    app = Starlette(routes=[Route("/hook", receiver.hook, methods=["POST"])])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/hook"
    finally:
        server.should_exit = True
        await task


def test_the_sample_receiver_refuses_forgeries_and_takes_an_event_once() -> None:
    backend = _load(SAMPLE / "backend.py")
    body = json.dumps({"event_id": "e1", "type": "payment_request.succeeded"}).encode()
    headers = {"superapp-signature": signature_header("whsec_k", 1000, body)}
    seen: set[str] = set()
    assert backend.receive_webhook("whsec_k", headers, body, seen, now=1010)["event_id"] == "e1"
    assert backend.receive_webhook("whsec_k", headers, body, seen, now=1010) is None
    for secret, now, sent in (
        ("whsec_other", 1010, body),  # not signed with this endpoint's secret
        ("whsec_k", 1000 + 301, body),  # too old: a captured delivery replayed later
        ("whsec_k", 1010, body + b" "),  # the body was changed
    ):
        with pytest.raises(backend.BadWebhook):
            backend.receive_webhook(secret, headers, sent, set(), now=now)


async def test_registration_to_a_confirmed_payment_with_the_sample(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    bundle: bytes = _load(SAMPLE / "build_bundle.py").build_bundle()
    backend = _load(SAMPLE / "backend.py")
    manifest = json.loads((SAMPLE / "bundle" / "manifest.json").read_text())
    dev = await developer(client, platform)
    staff = await reviewer(client, platform)

    created = await client.post(
        "/v1/developer/mini-apps",
        json={
            "name": f"Pay a bill {new_id()[-8:]}",  # names are unique in the registry
            "category": "FINANCE",
            "description": "Pay your utility bills from your wallet.",
            "icon_url": "https://bills.example.com/icon.png",
            "redirect_uris": [REDIRECT],
            "network_domains": manifest["network_domains"],
        },
        headers=dev.writing(),
    )
    assert created.status_code == 201, created.text
    app = created.json()["mini_app"]
    secret = created.json()["client_secret"]
    version = await uploaded(client, dev, app["mini_app_id"], bundle)
    await in_review(client, dev, version["version_id"])
    approved = await client.post(
        f"/v1/review/versions/{version['version_id']}/approve", json={}, headers=staff.writing()
    )
    assert approved.status_code == 200, approved.text
    published = await client.post(
        f"/v1/developer/versions/{version['version_id']}/publish", headers=dev.writing()
    )
    assert published.status_code == 200, published.text
    assert published.json()["version"]["permissions"] == ["profile.basic", "wallet.pay"]

    user = await sign_up(client, "payer")
    launch = await client.get(f"/v1/mini-apps/{app['mini_app_id']}/launch", headers=user.auth)
    assert launch.status_code == 200, launch.text
    assert launch.json()["manifest"] == manifest
    verifier, challenge = backend.pkce_pair()
    consent = {
        "client_id": app["client_id"],
        "redirect_uri": REDIRECT,
        "requested_scopes": ["profile.basic", "wallet.pay"],
        "granted_scopes": ["profile.basic", "wallet.pay"],
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "bill-42",
    }
    deadline = asyncio.get_running_loop().time() + 30.0
    while True:  # identity learns of the publication from miniapps' events
        reply = await client.post("/v1/me/mini-app-consents", json=consent, headers=user.auth)
        if reply.status_code != 404 or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.1)
    assert reply.status_code == 201, reply.text

    def redeem() -> dict[str, object]:
        # The backend script is synchronous, as a small backend may be: off the loop
        # that serves the BFF it calls.
        with httpx.Client(base_url=platform.base_url, timeout=10.0) as http:
            token: dict[str, object] = backend.exchange_code(
                http,
                client_id=app["client_id"],
                client_secret=secret,
                code=reply.json()["code"],
                redirect_uri=REDIRECT,
                code_verifier=verifier,
            )
            return token

    token = await asyncio.to_thread(redeem)
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "profile.basic wallet.pay"

    # 7. The developer sets the webhook endpoint; 8. the backend asks, the user confirms.
    receiver = SampleReceiver(backend)
    async with serving(receiver) as url:
        endpoint = await client.post(
            f"/v1/developer/mini-apps/{app['mini_app_id']}/webhook-endpoint",
            json={"url": url},
            headers=dev.writing(),
        )
        assert endpoint.status_code == 200, endpoint.text
        receiver.secret = endpoint.json()["signing_secret"]
        merchant = await funded_user(client, "utility", 0)
        await top_up_for(client, user, 5000)

        def ask() -> dict[str, Any]:
            with httpx.Client(base_url=platform.base_url, timeout=10.0) as http:
                asked: dict[str, Any] = backend.create_payment_request(
                    http,
                    str(token["access_token"]),
                    merchant_id=merchant.user_id,
                    amount_minor=1250,
                    currency_code="EUR",
                    description="Electricity, November",
                    idempotency_key="bill-2026-11",
                )
                return asked

        asked = await asyncio.to_thread(ask)
        assert asked["state"] == "AWAITING_CONFIRMATION"
        assert await asyncio.to_thread(ask) == asked  # a retry is the same request
        mine = f"/v1/me/payment-requests/{asked['payment_request_id']}"
        shown = await client.get(mine, headers=user.auth)
        assert shown.json()["amount"] == {"currency_code": "EUR", "amount_minor": 1250}
        confirmed = await client.post(f"{mine}/confirm", headers=user.auth)
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["state"] == "SUCCEEDED"
        assert available(await wallet_of(client, user))[0] == 5000 - 1250

        async def told() -> list[str] | None:
            types = [event["type"] for event in receiver.events]
            return types if len(types) >= 2 else None

        assert sorted(await eventually(told, "the backend's webhook events")) == [
            "payment_request.confirmed",
            "payment_request.succeeded",
        ]
        assert receiver.refused == 0

        def status() -> dict[str, Any]:
            with httpx.Client(base_url=platform.base_url, timeout=10.0) as http:
                found: dict[str, Any] = backend.get_payment_request(
                    http, str(token["access_token"]), asked["payment_request_id"]
                )
                return found

        polled = await asyncio.to_thread(status)
        assert (polled["state"], polled["order_id"]) == ("SUCCEEDED", confirmed.json()["order_id"])


async def top_up_for(client: httpx.AsyncClient, user: Session, amount_minor: int) -> None:
    """The admin tops the user's wallet up (the README's user has money already)."""
    await wallet_of(client, user)
    await top_up(client, await admin_session(client), user, amount_minor)
