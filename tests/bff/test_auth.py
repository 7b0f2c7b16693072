"""Sign-up, sign-in, refresh and sign-out through the BFF; who may reach what."""

from __future__ import annotations

import httpx

from services.runtime.ids import new_id
from tests.bff.conftest import Platform, assert_problem, log_in, serving_bff, sign_up
from tests.conftest import http_client
from tests.identity.conftest import PASSWORD


async def test_register_login_profile_refresh_logout(client: httpx.AsyncClient) -> None:
    email = f"ann-{new_id()}@example.com"
    key = new_id()
    body = {"email": email, "password": PASSWORD, "display_name": "Ann"}

    first = await client.post("/v1/auth/register", json=body, headers={"Idempotency-Key": key})
    again = await client.post("/v1/auth/register", json=body, headers={"Idempotency-Key": key})

    assert first.status_code == 201, first.text
    assert again.status_code == 201
    assert again.json() == first.json()  # a retried sign-up returns the same user
    assert first.json()["roles"] == ["user"]
    session = await log_in(client, email)
    me = await client.get("/v1/me", headers=session.auth)
    assert me.status_code == 200
    assert me.json()["user_id"] == session.user_id == first.json()["user_id"]
    assert me.json()["email"] == email

    refreshed = await client.post("/v1/auth/refresh", json={"refresh_token": session.refresh_token})
    assert refreshed.status_code == 200, refreshed.text
    new_tokens = refreshed.json()
    assert new_tokens["token_type"] == "Bearer"
    assert new_tokens["refresh_token"] != session.refresh_token
    reused = await client.post("/v1/auth/refresh", json={"refresh_token": session.refresh_token})
    assert_problem(reused, 401, "REFRESH_TOKEN_REUSED")

    second = await log_in(client, email)
    out = await client.post("/v1/auth/logout", json={"refresh_token": second.refresh_token})
    assert out.status_code == 204
    after = await client.post("/v1/auth/refresh", json={"refresh_token": second.refresh_token})
    assert_problem(after, 401, "INVALID_REFRESH_TOKEN")


async def test_taken_email_and_bad_credentials(client: httpx.AsyncClient) -> None:
    session = await sign_up(client)
    taken = await client.post(
        "/v1/auth/register",
        json={"email": session.email, "password": PASSWORD, "display_name": "Other"},
        headers={"Idempotency-Key": new_id()},
    )
    body = assert_problem(taken, 409, "EMAIL_TAKEN")
    assert body["domain"] == "identity.superapp"

    wrong = await client.post(
        "/v1/auth/login", json={"email": session.email, "password": "not the password"}
    )
    assert_problem(wrong, 401, "INVALID_CREDENTIALS")


async def test_upstream_field_violations_name_the_fields_the_client_sent(
    client: httpx.AsyncClient,
) -> None:
    short = await client.post(
        "/v1/auth/register",
        json={"email": f"b-{new_id()}@example.com", "password": "short", "display_name": "B"},
        headers={"Idempotency-Key": new_id()},
    )
    body = assert_problem(short, 400, "INVALID_ARGUMENT")
    assert body["domain"] == "identity.superapp"
    assert {(v["field"], v["reason"]) for v in body["violations"]} == {
        ("password", "PASSWORD_TOO_SHORT")
    }


async def test_invalid_input_is_a_400_problem_naming_each_field(
    client: httpx.AsyncClient,
) -> None:
    reply = await client.post(
        "/v1/auth/register",
        json={"email": "", "display_name": "x", "surprise": 1},
        headers={"Idempotency-Key": new_id()},
    )
    body = assert_problem(reply, 400, "INVALID_ARGUMENT")
    assert body["domain"] == "bff.superapp"
    assert {v["field"] for v in body["violations"]} == {"email", "password", "surprise"}

    no_key = await client.post(
        "/v1/auth/register",
        json={"email": "c@example.com", "password": PASSWORD, "display_name": "C"},
    )
    body = assert_problem(no_key, 400, "INVALID_ARGUMENT")
    assert [v["field"] for v in body["violations"]] == ["Idempotency-Key"]


async def test_profile_update_is_idempotent_by_key(client: httpx.AsyncClient) -> None:
    session = await sign_up(client)
    key = new_id()

    first = await client.patch(
        "/v1/me", json={"display_name": "Ann B."}, headers=session.writing(key)
    )
    again = await client.patch(
        "/v1/me", json={"display_name": "Ann B."}, headers=session.writing(key)
    )
    other = await client.patch(
        "/v1/me", json={"display_name": "Someone else"}, headers=session.writing(key)
    )

    assert first.status_code == 200, first.text
    assert first.json()["display_name"] == "Ann B."
    assert again.json() == first.json()
    assert_problem(other, 422, "IDEMPOTENCY_KEY_REUSED")
    assert (await client.get("/v1/me", headers=session.auth)).json()["display_name"] == "Ann B."


async def test_no_token_or_a_bad_token_is_401(client: httpx.AsyncClient) -> None:
    session = await sign_up(client)
    forged = session.access_token[:-4] + ("AAAA" if session.access_token[-4:] != "AAAA" else "BBBB")
    for headers in (
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": f"Basic {session.access_token}"},
        {"Authorization": f"Bearer {forged}"},
    ):
        for path in ("/v1/me", "/v1/me/wallet", "/v1/home"):
            reply = await client.get(path, headers=headers)
            assert_problem(reply, 401, "UNAUTHENTICATED")
            assert reply.headers["www-authenticate"].startswith("Bearer")
    # A public route refuses a bad token rather than answering anonymously.
    reply = await client.get("/v1/categories", headers={"Authorization": "Bearer nope"})
    assert_problem(reply, 401, "UNAUTHENTICATED")


async def test_the_user_id_comes_only_from_the_token(client: httpx.AsyncClient) -> None:
    ann = await sign_up(client, "ann")
    bob = await sign_up(client, "bob")
    # No route takes a user id for "my" resources; a body field naming another user is refused.
    reply = await client.patch(
        "/v1/me",
        json={"display_name": "Mallory", "user_id": bob.user_id},
        headers=ann.writing(),
    )
    body = assert_problem(reply, 400, "INVALID_ARGUMENT")
    assert [v["field"] for v in body["violations"]] == ["user_id"]
    bob_profile = (await client.get("/v1/me", headers=bob.auth)).json()
    assert bob_profile["display_name"] == "Bob"


async def test_admin_routes_refuse_other_users(client: httpx.AsyncClient) -> None:
    ann = await sign_up(client, "ann")
    bob = await sign_up(client, "bob")
    reply = await client.post(
        f"/v1/admin/wallets/{bob.user_id}/top-ups",
        json={"amount": {"currency_code": "EUR", "amount_minor": 100}},
        headers=ann.writing(),
    )
    assert_problem(reply, 403, "PERMISSION_DENIED")


async def test_jwks_is_identitys_key_set(client: httpx.AsyncClient, platform: Platform) -> None:
    from superapp.identity.v1 import identity_service_pb2 as pb

    reply = await client.get("/.well-known/jwks.json")
    assert reply.status_code == 200
    upstream = await platform.identity.stub.GetJwks(pb.GetJwksRequest())
    assert {key["kid"] for key in reply.json()["keys"]} == {key.kid for key in upstream.keys}
    assert all(key["kty"] == "OKP" and key["crv"] == "Ed25519" for key in reply.json()["keys"])


async def test_identity_throttles_the_address_the_bff_saw(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    ann = await sign_up(client, "ann")
    # This test's client stands for a proxy in front of the BFF that it trusts.
    async with (
        serving_bff(platform.bff(forwarded_allow_ips="127.0.0.1")) as url,
        http_client(url) as http,
    ):

        async def log_in_from(address: str, password: str) -> httpx.Response:
            return await http.post(
                "/v1/auth/login",
                json={"email": ann.email, "password": password},
                headers={"X-Forwarded-For": address},
            )

        # Failures stay free for two, then delays grow: a refusal comes within a few.
        stranger = [await log_in_from("203.0.113.7", "not the password") for _ in range(3)]
        while stranger[-1].status_code == 401 and len(stranger) < 8:
            stranger.append(await log_in_from("203.0.113.7", "not the password"))
        owner = await log_in_from("198.51.100.20", PASSWORD)

    assert [reply.status_code for reply in stranger[:3]] == [401, 401, 401]
    assert_problem(stranger[-1], 429, "TOO_MANY_ATTEMPTS")
    assert int(stranger[-1].headers["retry-after"]) >= 1
    # Identity counted the stranger's address, not the BFF's: Ann is not locked out.
    assert owner.status_code == 200, owner.text
