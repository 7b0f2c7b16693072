"""Rate limits, the body size limit, the page size cap and gzip."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from services.runtime.ids import new_id
from tests.bff.conftest import (
    Platform,
    admin_session,
    assert_problem,
    serving_bff,
    sign_up,
    top_up,
    wallet_of,
)
from tests.conftest import http_client
from tests.identity.conftest import PASSWORD

# Limits here are per hour, not per minute: the sliding-window counter weighs the last
# window down as the next one begins, so a test that crossed a minute boundary under load
# saw its fourth sign-in let through (to identity's own TOO_MANY_ATTEMPTS).


def _retry_after(reply: httpx.Response) -> int:
    seconds = int(reply.headers["retry-after"])
    assert 1 <= seconds <= 3600
    return seconds


async def test_sign_in_is_limited_per_client_address(platform: Platform) -> None:
    async with (
        serving_bff(platform.bff(auth_rate_limit="3/hour")) as url,
        http_client(url) as http,
    ):
        body = {"email": f"x-{new_id()}@example.com", "password": PASSWORD}
        answers = [await http.post("/v1/auth/login", json=body) for _ in range(4)]

        assert [a.status_code for a in answers[:3]] == [401, 401, 401]
        problem = assert_problem(answers[3], 429, "RATE_LIMITED")
        assert problem["metadata"]["scope"] == "per client address"
        _retry_after(answers[3])
        # Other routes are not counted against the sign-in budget.
        assert (await http.get("/v1/categories")).status_code == 200


async def test_replicas_counting_in_memory_each_enforce_their_share(platform: Platform) -> None:
    """Two BFF replicas with counters in memory: 6/minute between them is 3 each, so
    round-robin clients get about the configured limit in all, not twice it."""
    settings = platform.bff(auth_rate_limit="6/hour", replicas=2)
    async with (
        serving_bff(settings) as first,
        serving_bff(settings) as second,
        http_client() as http,
    ):
        answers = [
            await http.post(
                f"{url}/v1/auth/login",
                # Another email each time: identity's own throttle is not what is tested.
                json={"email": f"x-{new_id()}@example.com", "password": PASSWORD},
            )
            for _ in range(4)
            for url in (first, second)
        ]

    assert [a.status_code for a in answers] == [401] * 6 + [429, 429]
    assert {a.json()["domain"] for a in answers[6:]} == {"bff.superapp"}


async def test_writes_are_limited_per_user(platform: Platform, client: httpx.AsyncClient) -> None:
    ann = await sign_up(client, "ann")
    bob = await sign_up(client, "bob")
    async with (
        serving_bff(platform.bff(write_rate_limit_per_user="2/hour")) as url,
        http_client(url) as http,
    ):

        async def rename(who: str, headers: dict[str, str]) -> httpx.Response:
            return await http.patch("/v1/me", json={"display_name": who}, headers=headers)

        ann_answers = [await rename("Ann", ann.writing()) for _ in range(3)]
        bob_answer = await rename("Bob", bob.writing())
        reads = await http.get("/v1/me", headers=ann.auth)

    assert [a.status_code for a in ann_answers[:2]] == [200, 200]
    problem = assert_problem(ann_answers[2], 429, "RATE_LIMITED")
    assert problem["metadata"]["scope"] == "per user"
    _retry_after(ann_answers[2])
    assert bob_answer.status_code == 200  # another user on the same address is unaffected
    assert reads.status_code == 200  # reads are not limited


async def test_writes_are_limited_per_client_address(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    ann = await sign_up(client, "ann")
    bob = await sign_up(client, "bob")
    async with (
        serving_bff(platform.bff(write_rate_limit_per_ip="2/hour")) as url,
        http_client(url) as http,
    ):
        first = await http.patch("/v1/me", json={"display_name": "A"}, headers=ann.writing())
        second = await http.patch("/v1/me", json={"display_name": "B"}, headers=bob.writing())
        third = await http.patch("/v1/me", json={"display_name": "B"}, headers=bob.writing())

    assert (first.status_code, second.status_code) == (200, 200)
    assert_problem(third, 429, "RATE_LIMITED")


async def test_bodies_over_the_limit_are_refused_with_413(platform: Platform) -> None:
    async with (
        serving_bff(platform.bff(max_body_bytes=1024)) as url,
        http_client(url) as http,
    ):
        big = {"email": "a@example.com", "password": "p" * 2000}
        declared = await http.post("/v1/auth/login", json=big)

        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"email": "a@example.com", "password": "'
            for _ in range(40):
                yield b"p" * 100
            yield b'"}'

        streamed = await http.post(
            "/v1/auth/login", content=chunks(), headers={"content-type": "application/json"}
        )
        fits = await http.post("/v1/auth/login", json={"email": "a@example.com", "password": "p"})

    for reply in (declared, streamed):
        problem = assert_problem(reply, 413, "REQUEST_TOO_LARGE")
        assert problem["metadata"]["max_bytes"] == "1024"
    assert_problem(fits, 401, "INVALID_CREDENTIALS")


async def test_page_size_is_capped(client: httpx.AsyncClient) -> None:
    for path in ("/v1/categories", "/v1/products"):
        reply = await client.get(path, params={"page_size": 1000})
        body = assert_problem(reply, 400, "INVALID_ARGUMENT")
        assert [v["field"] for v in body["violations"]] == ["page_size"]


async def test_large_responses_are_gzipped(client: httpx.AsyncClient) -> None:
    ann = await sign_up(client)
    admin = await admin_session(client)
    await wallet_of(client, ann)
    for _ in range(20):
        await top_up(client, admin, ann, 100)
    history = {"page_size": 100}

    large = await client.get(
        "/v1/me/wallet/transactions",
        params=history,
        headers={**ann.auth, "accept-encoding": "gzip"},
    )
    plain = await client.get(
        "/v1/me/wallet/transactions",
        params=history,
        headers={**ann.auth, "accept-encoding": "identity"},
    )
    small = await client.get("/livez", headers={"accept-encoding": "gzip"})

    assert large.headers["content-encoding"] == "gzip"
    assert int(large.headers["content-length"]) < len(plain.content) / 3
    assert len(large.json()["transactions"]) == 20  # httpx decompressed it
    assert plain.json() == large.json()
    assert "content-encoding" not in plain.headers
    assert "content-encoding" not in small.headers
