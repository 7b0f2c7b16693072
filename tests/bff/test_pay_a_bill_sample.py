"""The sample mini-app of examples/pay-a-bill, as the README walks a developer through
it: its bundle passes review and zips reproducibly, and with it a mini-app goes from
registration to a token its backend script redeems at the BFF."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import httpx

from services.miniapps.review import review_bundle
from services.runtime.ids import new_id
from tests.bff.conftest import Platform, sign_up
from tests.bff.test_mini_app_oauth import in_review
from tests.bff.test_miniapps import developer, reviewer, uploaded
from tests.conftest import ROOT

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


async def test_registration_to_token_with_the_sample(
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
