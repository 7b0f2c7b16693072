"""Per-mini-app metrics at the BFF: the shell's load-time reports of published, active
mini-apps only, by client id, and the token endpoint's calls and errors of
authenticated clients; the client id label stays bounded."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from bff.app import app_metrics, create_app
from bff.server import BffServer
from services.runtime.bounded_labels import OTHER
from services.runtime.ids import new_id
from tests.bff.conftest import Platform, assert_problem, sign_up
from tests.bff.test_mini_app_oauth import REDIRECT, basic, consented, published
from tests.bff.test_miniapps import reviewer
from tests.conftest import http_client

LOAD = "superapp_mini_app_load_time_seconds"


@pytest.fixture(scope="module")
async def bff(platform: Platform) -> AsyncIterator[tuple[FastAPI, str]]:
    """A BFF of this module's own, whose app (and so its metrics) the tests can read;
    it labels one mini-app at most."""
    settings = platform.bff(mini_app_metric_labels=1)
    app = create_app(settings)
    server = BffServer(app, settings)
    port = await server.start()
    try:
        yield app, f"http://127.0.0.1:{port}"
    finally:
        await server.stop()


async def test_load_times_and_calls_by_client_id(
    platform: Platform, bff: tuple[FastAPI, str]
) -> None:
    app, base_url = bff
    metrics = app_metrics(app)
    async with http_client(base_url) as http:
        first = await published(http, platform)
        second = await published(http, platform)
        user = await sign_up(http, "loader")
        for mini_app, seconds in ((first, 0.8), (first, 2.5), (second, 1.0)):
            reply = await http.post(
                f"/v1/mini-apps/{mini_app.mini_app_id}/load-times",
                json={"seconds": seconds},
                headers=user.auth,
            )
            assert reply.status_code == 204, reply.text
        # The first id seen keeps its label; the bound puts the second in `other`.
        assert metrics.value(f"{LOAD}_count", {"client_id": first.client_id}) == 2
        assert metrics.value(f"{LOAD}_sum", {"client_id": first.client_id}) == pytest.approx(3.3)
        assert metrics.value(f"{LOAD}_bucket", {"client_id": first.client_id, "le": "1.0"}) == 1
        assert metrics.value(f"{LOAD}_count", {"client_id": OTHER}) == 1
        assert metrics.value(f"{LOAD}_count", {"client_id": second.client_id}) == 0

        # Unknown, invalid or suspended: refused, and no series is made for it.
        unknown = await http.post(
            f"/v1/mini-apps/{new_id()}/load-times", json={"seconds": 1.0}, headers=user.auth
        )
        assert_problem(unknown, 404, "MINI_APP_NOT_FOUND")
        for bad in (0, -1, 601, "fast"):
            reply = await http.post(
                f"/v1/mini-apps/{first.mini_app_id}/load-times",
                json={"seconds": bad},
                headers=user.auth,
            )
            assert reply.status_code == 400, (bad, reply.text)
        staff = await reviewer(http, platform)
        suspended = await http.post(
            f"/v1/review/mini-apps/{first.mini_app_id}/suspend",
            json={"reason": "Too slow to be usable."},
            headers=staff.writing(),
        )
        assert suspended.status_code == 200, suspended.text
        gone = await http.post(
            f"/v1/mini-apps/{first.mini_app_id}/load-times",
            json={"seconds": 1.0},
            headers=user.auth,
        )
        assert_problem(gone, 404, "MINI_APP_NOT_FOUND")
        assert metrics.value(f"{LOAD}_count", {"client_id": first.client_id}) == 2

        # The token endpoint: an authenticated client's calls and errors are counted by
        # its client id; an unauthenticated one's are not (its id is whatever was typed).
        answer, verifier = await consented(http, user, second, ["profile.basic"])
        form = {
            "grant_type": "authorization_code",
            "code": answer["code"],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        }
        good = basic(second.client_id, second.client_secret)
        assert (await http.post("/oauth2/token", data=form, headers=good)).status_code == 200
        assert (await http.post("/oauth2/token", data=form, headers=good)).status_code == 400
        wrong = basic(second.client_id, "mas_wrong")
        assert (await http.post("/oauth2/token", data=form, headers=wrong)).status_code == 401
        calls = {"client_id": OTHER, "route": "/oauth2/token"}
        assert metrics.value("superapp_mini_app_calls_total", calls) == 2
        errors = {**calls, "error": "invalid_grant"}
        assert metrics.value("superapp_mini_app_errors_total", errors) == 1
        assert (
            metrics.value("superapp_mini_app_errors_total", {**calls, "error": "invalid_client"})
            == 0
        )
