"""The kill switch on two BFF replicas: a reviewer suspends a mini-app through one, and
on both its token stops working, it leaves discovery and it cannot be launched; once
reinstated, all of it works again.

Discovery and launch read miniapps' own state, so they change with the suspension's
commit. A token's refusal needs identity to learn of the suspension (an event) and each
replica's remembered introspection to lapse: that bound is the replica's configured
cache (2 s, asserted on the running verifiers), and the test polls for the refusal with a
generous deadline rather than timing it on a shared, noisy machine.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import httpx

from bff.app import create_app
from bff.config import BffSettings
from bff.server import BffServer
from bff.service_identity import ServiceIdentity
from tests.bff.conftest import Platform, assert_problem, sign_up
from tests.bff.test_mini_app_api import ME, Granted, granted
from tests.bff.test_mini_app_oauth import published
from tests.bff.test_miniapps import reviewer
from tests.conftest import http_client

DEADLINE_SECONDS = 60.0


@contextlib.asynccontextmanager
async def replica(settings: BffSettings) -> AsyncIterator[tuple[str, timedelta]]:
    """One BFF process's app over real HTTP: its URL, and how long its mini-app token
    verifier remembers identity's answer."""
    app = create_app(settings)
    server = BffServer(app, settings)
    port = await server.start()
    try:
        identity: ServiceIdentity = app.state.service_identity
        yield f"http://127.0.0.1:{port}", identity.verifier.cache_for
    finally:
        await server.stop()


async def eventually(what: str, holds: Callable[[], Awaitable[bool]]) -> None:
    """Poll `holds` until it is true; fail after a generous deadline."""
    deadline = asyncio.get_running_loop().time() + DEADLINE_SECONDS
    while not await holds():
        assert asyncio.get_running_loop().time() < deadline, f"never: {what}"
        await asyncio.sleep(0.1)


async def test_suspension_stops_a_mini_app_on_every_replica_and_reinstating_restores_it(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    app = await published(client, platform)
    user = await sign_up(client, "shell-user")
    token: Granted = await granted(client, app, user, ["profile.basic"])
    staff = await reviewer(client, platform)
    settings = platform.bff(replicas=2)
    async with (
        replica(settings) as (first, first_cache),
        replica(settings) as (second, second_cache),
        http_client() as http,
    ):
        replicas = (first, second)
        # The bound on a token outliving its mini-app's suspension, on each replica.
        assert first_cache == second_cache == timedelta(seconds=2)

        async def statuses() -> list[int]:
            return [
                (await http.get(f"{url}{ME}", headers=token.auth)).status_code for url in replicas
            ]

        async def discovered(url: str) -> bool:
            reply = await http.get(f"{url}/v1/mini-apps", headers=user.auth)
            assert reply.status_code == 200, reply.text
            return app.mini_app_id in {m["mini_app_id"] for m in reply.json()["mini_apps"]}

        async def launch(url: str) -> httpx.Response:
            return await http.get(f"{url}/v1/mini-apps/{app.mini_app_id}/launch", headers=user.auth)

        assert await statuses() == [200, 200]  # each replica now remembers "active"
        for url in replicas:
            assert await discovered(url)
            assert (await launch(url)).status_code == 200

        suspended = await http.post(
            f"{first}/v1/review/mini-apps/{app.mini_app_id}/suspend",
            json={"reason": "Phishing reports."},
            headers=staff.writing(),
        )
        assert suspended.status_code == 200, suspended.text
        assert suspended.json()["status"] == "SUSPENDED"

        # Discovery and launch: from the suspension's commit, on either replica.
        for url in replicas:
            assert not await discovered(url)
            assert_problem(await launch(url), 404, "MINI_APP_NOT_FOUND")

        async def refused_everywhere() -> bool:
            return await statuses() == [401, 401]

        await eventually("both replicas refuse the suspended mini-app's token", refused_everywhere)
        for url in replicas:
            refusal = await http.get(f"{url}{ME}", headers=token.auth)
            problem = assert_problem(refusal, 401, "UNAUTHENTICATED")
            assert "suspended" in problem["detail"]

        reinstated = await http.post(
            f"{second}/v1/review/mini-apps/{app.mini_app_id}/reinstate",
            json={"note": "The reports were false."},
            headers=staff.writing(),
        )
        assert reinstated.status_code == 200, reinstated.text
        assert reinstated.json()["status"] == "ACTIVE"
        for url in replicas:
            assert await discovered(url)
            assert (await launch(url)).status_code == 200

        async def honoured_everywhere() -> bool:
            return await statuses() == [200, 200]

        await eventually(
            "both replicas honour the reinstated mini-app's token", honoured_everywhere
        )


async def test_only_reviewers_reinstate_and_unknown_mini_apps_are_404(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    app = await published(client, platform)
    user = await sign_up(client, "not-staff")
    denied = await client.post(
        f"/v1/review/mini-apps/{app.mini_app_id}/reinstate", json={}, headers=user.writing()
    )
    assert_problem(denied, 403, "PERMISSION_DENIED")
    staff = await reviewer(client, platform)
    unknown = await client.post(
        "/v1/review/mini-apps/01890000-0000-7000-8000-000000000000/reinstate",
        json={},
        headers=staff.writing(),
    )
    assert_problem(unknown, 404, "MINI_APP_NOT_FOUND")
    too_long = await client.post(
        f"/v1/review/mini-apps/{app.mini_app_id}/reinstate",
        json={"note": "n" * 2001},
        headers=staff.writing(),
    )
    assert_problem(too_long, 400, "INVALID_ARGUMENT")
    # An active mini-app: reinstating changes nothing.
    active = await client.post(
        f"/v1/review/mini-apps/{app.mini_app_id}/reinstate", json={}, headers=staff.writing()
    )
    assert active.status_code == 200, active.text
    assert active.json()["status"] == "ACTIVE"
