"""A mini-app's single sign-on over HTTP: the shell's consent returns a code, the
mini-app's backend redeems it at `POST /oauth2/token` (OAuth's form and errors, not
problem+json), the user lists and revokes grants; a version shows its permissions."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import httpx

from services.runtime.ids import new_id
from tests.bff.conftest import Platform, Session, assert_problem, sign_up
from tests.bff.test_miniapps import developer, registered, reviewer, uploaded
from tests.miniapps.bundles import valid_bundle

REDIRECT = "https://coffee.example.com/callback"
FORM = "application/x-www-form-urlencoded"


@dataclass
class Published:
    mini_app_id: str
    client_id: str
    client_secret: str
    version: dict[str, Any]


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def in_review(http: httpx.AsyncClient, dev: Session, version_id: str) -> None:
    """Submit the version and wait until its checks pass. (test_miniapps' `checked`
    also asserts no report before the state moves, which the checks' two writes can
    briefly show.)"""
    submitted = await http.post(
        f"/v1/developer/versions/{version_id}/submit", headers=dev.writing()
    )
    assert submitted.status_code == 200, submitted.text
    deadline = asyncio.get_running_loop().time() + 60.0
    while True:
        reply = await http.get(f"/v1/developer/versions/{version_id}", headers=dev.auth)
        assert reply.status_code == 200, reply.text
        state = reply.json()["version"]["state"]
        if state == "IN_REVIEW":
            return
        assert state in ("SUBMITTED", "CHECKING"), reply.text
        assert asyncio.get_running_loop().time() < deadline, "the checks never finished"
        await asyncio.sleep(0.1)


async def published(http: httpx.AsyncClient, platform: Platform) -> Published:
    """A registered, reviewed and published mini-app, its client known to identity."""
    dev = await developer(http, platform)
    staff = await reviewer(http, platform)
    created = await registered(http, dev, redirect_uris=[REDIRECT])
    app = created["mini_app"]
    version = await uploaded(http, dev, app["mini_app_id"], valid_bundle())
    await in_review(http, dev, version["version_id"])
    approved = await http.post(
        f"/v1/review/versions/{version['version_id']}/approve", json={}, headers=staff.writing()
    )
    assert approved.status_code == 200, approved.text
    done = await http.post(
        f"/v1/developer/versions/{version['version_id']}/publish", headers=dev.writing()
    )
    assert done.status_code == 200, done.text
    return Published(
        app["mini_app_id"], app["client_id"], created["client_secret"], done.json()["version"]
    )


async def consented(
    http: httpx.AsyncClient, user: Session, app: Published, granted: list[str]
) -> tuple[dict[str, Any], str]:
    """The user's consent (waiting for identity to learn of the publication); the
    answer and the PKCE verifier."""
    verifier, challenge = pkce()
    body = {
        "client_id": app.client_id,
        "redirect_uri": REDIRECT,
        "requested_scopes": ["profile.basic", "wallet.pay"],
        "granted_scopes": granted,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "xyz",
    }
    deadline = asyncio.get_running_loop().time() + 30.0
    while True:
        reply = await http.post("/v1/me/mini-app-consents", json=body, headers=user.auth)
        if reply.status_code != 404 or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.1)  # identity's client copy is fed by miniapps' events
    assert reply.status_code == 201, reply.text
    answer: dict[str, Any] = reply.json()
    return answer, verifier


def basic(client_id: str, secret: str) -> dict[str, str]:
    pair = f"{client_id}:{secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


async def test_consent_exchange_grants_and_revocation(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    app = await published(client, platform)
    assert app.version["permissions"] == ["profile.basic", "wallet.pay"]
    user = await sign_up(client, "sso")
    answer, verifier = await consented(client, user, app, ["profile.basic"])
    assert answer["state"] == "xyz"
    assert answer["redirect_uri"] == REDIRECT
    assert answer["grant"]["scopes"] == ["profile.basic"]
    assert answer["grant"]["mini_app_id"] == app.mini_app_id

    form = {
        "grant_type": "authorization_code",
        "code": answer["code"],
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    token = await client.post(
        "/oauth2/token", data=form, headers=basic(app.client_id, app.client_secret)
    )
    assert token.status_code == 200, token.text
    assert token.headers["cache-control"] == "no-store"
    body = token.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "profile.basic"
    assert 0 < body["expires_in"] <= 300
    # The signature is identity's tests' concern; here, what reaches the mini-app.
    payload = body["access_token"].split(".")[1]
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
    assert app.client_id in decoded
    assert user.user_id not in decoded  # a pairwise subject, never the user's id

    again = await client.post(
        "/oauth2/token", data=form, headers=basic(app.client_id, app.client_secret)
    )
    assert again.status_code == 400
    assert again.headers["content-type"] == "application/json"
    assert again.json()["error"] == "invalid_grant"

    # client_secret_post, after a fresh consent (the reuse revoked the first grant).
    answer, verifier = await consented(client, user, app, ["profile.basic", "wallet.pay"])
    posted = await client.post(
        "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": answer["code"],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
            "client_id": app.client_id,
            "client_secret": app.client_secret,
        },
    )
    assert posted.status_code == 200, posted.text
    assert posted.json()["scope"] == "profile.basic wallet.pay"

    grants = await client.get("/v1/me/mini-app-grants", headers=user.auth)
    assert grants.status_code == 200, grants.text
    listed = grants.json()["grants"]
    assert [g["grant_id"] for g in listed] == [answer["grant"]["grant_id"]]
    assert listed[0]["client_id"] == app.client_id
    other = await sign_up(client, "other")
    assert_problem(
        await client.delete(
            f"/v1/me/mini-app-grants/{answer['grant']['grant_id']}", headers=other.auth
        ),
        404,
        "GRANT_NOT_FOUND",
    )
    for _ in range(2):  # revoking is idempotent
        revoked = await client.delete(
            f"/v1/me/mini-app-grants/{answer['grant']['grant_id']}", headers=user.auth
        )
        assert revoked.status_code == 204, revoked.text
    after = await client.get("/v1/me/mini-app-grants", headers=user.auth)
    assert after.json() == {"grants": [], "next_page_token": None}


async def test_token_endpoint_errors_are_oauths(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    app = await published(client, platform)
    user = await sign_up(client, "oauth-errors")
    answer, verifier = await consented(client, user, app, ["profile.basic"])
    form = {
        "grant_type": "authorization_code",
        "code": answer["code"],
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    good = basic(app.client_id, app.client_secret)

    async def error(
        data: Any, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> tuple[int, str, httpx.Response]:
        reply = await client.post("/oauth2/token", data=data, headers=headers, **kwargs)
        assert reply.headers["content-type"] == "application/json", reply.text
        assert reply.headers["cache-control"] == "no-store"
        return reply.status_code, reply.json()["error"], reply

    status, name, reply = await error(form, basic(app.client_id, "mas_wrong"))
    assert (status, name) == (401, "invalid_client")
    assert reply.headers["www-authenticate"].startswith("Basic")
    assert (await error(form))[:2] == (401, "invalid_client")  # no credentials at all
    status, name, _ = await error({**form, "grant_type": "password"}, good)
    assert (status, name) == (400, "unsupported_grant_type")
    for missing in ("grant_type", "code", "redirect_uri", "code_verifier"):
        partial = {k: v for k, v in form.items() if k != missing}
        assert (await error(partial, good))[:2] == (400, "invalid_request"), missing
    both = {**form, "client_id": app.client_id, "client_secret": app.client_secret}
    assert (await error(both, good))[:2] == (400, "invalid_request")
    status, name, _ = await error(
        None, {**good, "Content-Type": "application/json"}, content=b'{"code": "x"}'
    )
    assert (status, name) == (400, "invalid_request")
    repeated = f"grant_type=authorization_code&code={answer['code']}&code=again"
    status, name, _ = await error(None, {**good, "Content-Type": FORM}, content=repeated)
    assert (status, name) == (400, "invalid_request")
    assert (await error({**form, "scope": "wallet.pay"}, good))[:2] == (400, "invalid_scope")
    assert (await error({**form, "redirect_uri": REDIRECT + "x"}, good))[:2] == (
        400,
        "invalid_grant",
    )
    wrong_verifier = {**form, "code_verifier": pkce()[0]}
    assert (await error(wrong_verifier, good))[:2] == (400, "invalid_grant")
    assert (await error({**form, "code": new_id()}, good))[:2] == (400, "invalid_grant")


async def test_consent_refusals_are_problems(client: httpx.AsyncClient, platform: Platform) -> None:
    user = await sign_up(client, "consent-refusals")
    _, challenge = pkce()
    body = {
        "client_id": "mac_" + new_id(),
        "redirect_uri": REDIRECT,
        "requested_scopes": ["profile.basic"],
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    assert (await client.post("/v1/me/mini-app-consents", json=body)).status_code == 401
    assert_problem(
        await client.post("/v1/me/mini-app-consents", json=body, headers=user.auth),
        404,
        "CLIENT_NOT_FOUND",
    )
    plain = {**body, "code_challenge_method": "plain"}
    reply = await client.post("/v1/me/mini-app-consents", json=plain, headers=user.auth)
    assert reply.status_code == 400, reply.text
    assert_problem(
        await client.delete(f"/v1/me/mini-app-grants/{new_id()}", headers=user.auth),
        404,
        "GRANT_NOT_FOUND",
    )
