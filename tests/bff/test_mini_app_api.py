"""The mini-app API over HTTP: a mini-app's backend with a token a user granted it.

`/v1/mini-app-api/me` shows what a mini-app learns about its user (the pairwise subject
and the display name, never the real id); the caller dependency refuses what is not a
mini-app token in force, with reasons a developer can act on; limits and quotas are per
mini-app; a BFF without its own client secret answers 503 on this API only.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from bff.app import app_metrics, create_app
from bff.server import BffServer
from services.runtime.ids import new_id
from tests.bff.conftest import Platform, Session, assert_problem, serving_bff, sign_up
from tests.bff.test_mini_app_oauth import REDIRECT, Published, basic, consented, published
from tests.conftest import http_client

ME = "/v1/mini-app-api/me"


@dataclass
class Granted:
    """A mini-app's token for a user, as its backend holds it."""

    app: Published
    user: Session
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def subject(self) -> str:
        payload = self.token.split(".")[1]
        claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "==="))
        return str(claims["sub"])


async def granted(
    http: httpx.AsyncClient,
    app: Published,
    user: Session,
    scopes: list[str],
) -> Granted:
    """The user consents to `scopes`; the mini-app's backend redeems the code."""
    answer, verifier = await consented(http, user, app, scopes)
    reply = await http.post(
        "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": answer["code"],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        headers=basic(app.client_id, app.client_secret),
    )
    assert reply.status_code == 200, reply.text
    return Granted(app, user, reply.json()["access_token"])


async def test_me_is_the_pairwise_subject_and_display_name(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    app = await published(client, platform)
    user = await sign_up(client, "pairwise")
    token = await granted(client, app, user, ["profile.basic"])

    reply = await client.get(ME, headers=token.auth)

    assert reply.status_code == 200, reply.text
    assert reply.json() == {"subject": token.subject, "display_name": "Pairwise"}
    assert user.user_id not in reply.text  # the real id never reaches a mini-app
    assert token.subject != user.user_id
    assert reply.headers["cache-control"] == "no-store"


async def test_a_token_without_the_scope_is_refused(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    app = await published(client, platform)
    user = await sign_up(client, "payer")
    token = await granted(client, app, user, ["wallet.pay"])

    problem = assert_problem(await client.get(ME, headers=token.auth), 403, "SCOPE_NOT_GRANTED")

    assert problem["metadata"] == {"scope": "profile.basic", "client_id": app.client_id}


async def test_what_is_not_a_mini_app_token_in_force_is_401(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    app = await published(client, platform)
    user = await sign_up(client, "revoker")
    token = await granted(client, app, user, ["profile.basic"])

    # A user's own access token: the most likely mistake, named as such.
    problem = assert_problem(
        await client.get(ME, headers=user.auth), 401, "MINI_APP_TOKEN_REQUIRED"
    )
    assert "mini-app" in problem["detail"]
    missing = await client.get(ME)
    assert_problem(missing, 401, "UNAUTHENTICATED")
    assert missing.headers["www-authenticate"] == "Bearer"
    basic_auth = basic(app.client_id, app.client_secret)
    assert_problem(await client.get(ME, headers=basic_auth), 401, "UNAUTHENTICATED")
    garbage = {"Authorization": "Bearer not.a.token"}
    assert_problem(await client.get(ME, headers=garbage), 401, "UNAUTHENTICATED")
    forged = token.token[:-4] + ("AAAA" if not token.token.endswith("AAAA") else "BBBB")
    assert_problem(
        await client.get(ME, headers={"Authorization": f"Bearer {forged}"}), 401, "UNAUTHENTICATED"
    )

    # The user revokes the grant: its token stops working (identity's answer is
    # remembered 2 s at most; generous deadline for a loaded machine).
    assert (await client.get(ME, headers=token.auth)).status_code == 200
    grants = (await client.get("/v1/me/mini-app-grants", headers=user.auth)).json()["grants"]
    revoked = await client.delete(
        f"/v1/me/mini-app-grants/{grants[0]['grant_id']}", headers=user.auth
    )
    assert revoked.status_code == 204, revoked.text
    deadline = asyncio.get_running_loop().time() + 30.0
    while (reply := await client.get(ME, headers=token.auth)).status_code == 200:
        assert asyncio.get_running_loop().time() < deadline, "the revoked token still works"
        await asyncio.sleep(0.1)
    assert_problem(reply, 401, "UNAUTHENTICATED")


async def test_without_its_client_secret_the_bff_serves_all_but_the_mini_app_api(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    app = await published(client, platform)
    user = await sign_up(client, "unconfigured")
    token = await granted(client, app, user, ["profile.basic"])
    async with (
        serving_bff(platform.bff(client_secret=None)) as url,
        http_client(url) as http,
    ):
        assert_problem(await http.get(ME, headers=token.auth), 503, "MINI_APP_API_NOT_CONFIGURED")
        assert (await http.get("/v1/me", headers=user.auth)).status_code == 200


async def test_a_wrong_client_secret_is_the_platforms_failure_not_the_mini_apps(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    """identity refuses the BFF's own token: the mini-app is told to retry (503), never
    that its valid token is bad (401)."""
    app = await published(client, platform)
    user = await sign_up(client, "misconfigured")
    token = await granted(client, app, user, ["profile.basic"])
    async with (
        serving_bff(platform.bff(client_secret=SecretStr("not-the-bff-secret-at-all"))) as url,
        http_client(url) as http,
    ):
        assert_problem(await http.get(ME, headers=token.auth), 503, "MINI_APP_API_UNAVAILABLE")


async def test_rate_limit_and_daily_quota_are_per_mini_app(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    first = await published(client, platform)
    second = await published(client, platform)
    user = await sign_up(client, "limited")
    one = await granted(client, first, user, ["profile.basic"])
    other = await granted(client, second, user, ["profile.basic"])
    # Per hour rather than per minute: a minute boundary under load would weigh the
    # sliding window down and let a call through (see test_limits).
    settings = platform.bff(mini_app_rate_limit="2/hour", mini_app_daily_quota="100/day")
    async with serving_bff(settings) as url, http_client(url) as http:
        answers = [await http.get(ME, headers=one.auth) for _ in range(3)]
        assert [a.status_code for a in answers[:2]] == [200, 200]
        problem = assert_problem(answers[2], 429, "RATE_LIMITED")
        assert problem["metadata"]["client_id"] == first.client_id
        assert problem["metadata"]["limit_name"] == "BFF_MINI_APP_RATE_LIMIT"
        assert problem["metadata"]["scope"] == "per mini-app"
        assert 1 <= int(answers[2].headers["retry-after"]) <= 3600
        # Another mini-app, for the same user, has a budget of its own.
        assert (await http.get(ME, headers=other.auth)).status_code == 200

    settings = platform.bff(mini_app_daily_quota="1/day")
    async with serving_bff(settings) as url, http_client(url) as http:
        assert (await http.get(ME, headers=one.auth)).status_code == 200
        refused = await http.get(ME, headers=one.auth)
        problem = assert_problem(refused, 429, "QUOTA_EXCEEDED")
        assert problem["metadata"]["client_id"] == first.client_id
        assert problem["metadata"]["limit_name"] == "BFF_MINI_APP_DAILY_QUOTA"
        assert problem["metadata"]["window"] == "day"
        assert int(refused.headers["retry-after"]) >= 1


async def test_calls_and_errors_are_counted_by_client_id(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    app = await published(client, platform)
    user = await sign_up(client, "counted")
    allowed = await granted(client, app, user, ["profile.basic"])
    denied = await granted(client, app, await sign_up(client, "denied"), ["wallet.pay"])
    settings = platform.bff(metrics_port=0)
    bff = create_app(settings)
    server = BffServer(bff, settings)
    port = await server.start()
    try:
        async with http_client(f"http://127.0.0.1:{port}") as http:
            for _ in range(2):
                assert (await http.get(ME, headers=allowed.auth)).status_code == 200
            assert (await http.get(ME, headers=denied.auth)).status_code == 403
            # Not authenticated: no client id is vouched for, so nothing is counted.
            assert (await http.get(ME, headers=user.auth)).status_code == 401
            metrics = app_metrics(bff)
            labels = {"client_id": app.client_id, "route": ME}
            assert metrics.value("superapp_mini_app_calls_total", labels) == 3
            errors = {**labels, "error": "SCOPE_NOT_GRANTED"}
            assert metrics.value("superapp_mini_app_errors_total", errors) == 1
            assert metrics.value("superapp_mini_app_errors_total", {**labels, "error": "x"}) == 0
            # And Prometheus sees them where it scrapes.
            scraped = await http.get(f"http://127.0.0.1:{server.metrics.port}/metrics")
            series = (
                f'superapp_mini_app_calls_total{{client_id="{app.client_id}",route="{ME}"}} 3.0'
            )
            assert series in scraped.text
    finally:
        await server.stop()


async def test_the_unauthenticated_are_not_given_an_idea_of_other_clients(
    client: httpx.AsyncClient,
) -> None:
    """A refused token's problem names nothing of another mini-app or user."""
    reply = await client.get(ME, headers={"Authorization": f"Bearer {new_id()}"})
    problem = assert_problem(reply, 401, "UNAUTHENTICATED")
    assert "metadata" not in problem or not problem["metadata"]
