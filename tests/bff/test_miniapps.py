"""Mini-apps over HTTP: a developer registers and uploads, a reviewer approves, the shell
discovers, launches and loads the bundle (checking its SRI), and a suspension takes it
away at once; a hostile bundle's report; and the refusals (role, size, input, unknown)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
from typing import Any

import httpx
from superapp.identity.v1 import identity_service_pb2 as identity_pb

from services.miniapps.bundles import BUNDLE_MAX_BYTES
from services.miniapps.review import RULES, manifest_schema
from services.runtime.ids import new_id
from tests.bff.conftest import Platform, Session, assert_problem, role_session, sign_up
from tests.miniapps.bundles import valid_bundle, valid_files, valid_manifest, zip_bundle
from tests.miniapps.test_review_corpus import CASES

ZIP = "application/zip"


def registration(**overrides: Any) -> dict[str, Any]:
    """A valid registration body with a name no other test uses."""
    body: dict[str, Any] = {
        "name": f"Coffee {new_id()[-8:]}",
        "category": "FOOD",
        "description": "Orders coffee to your table.",
        "icon_url": "https://cdn.example.com/coffee.png",
        "redirect_uris": ["https://coffee.example.com/callback"],
        "network_domains": ["api.example.com", "*.cdn.example.com"],
    }
    body.update(overrides)
    return body


async def developer(http: httpx.AsyncClient, platform: Platform) -> Session:
    return await role_session(http, platform, identity_pb.ROLE_DEVELOPER, name="dev")


async def reviewer(http: httpx.AsyncClient, platform: Platform) -> Session:
    return await role_session(http, platform, identity_pb.ROLE_REVIEWER, name="reviewer")


async def registered(http: httpx.AsyncClient, dev: Session, **fields: Any) -> dict[str, Any]:
    reply = await http.post(
        "/v1/developer/mini-apps", json=registration(**fields), headers=dev.writing()
    )
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def uploaded(
    http: httpx.AsyncClient, dev: Session, mini_app_id: str, bundle: bytes
) -> dict[str, Any]:
    reply = await http.post(
        f"/v1/developer/mini-apps/{mini_app_id}/versions",
        content=bundle,
        headers={**dev.writing(), "Content-Type": ZIP},
    )
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def checked(http: httpx.AsyncClient, dev: Session, version_id: str) -> dict[str, Any]:
    """Submit the version and wait for the checks' outcome (IN_REVIEW or REJECTED)."""
    submitted = await http.post(
        f"/v1/developer/versions/{version_id}/submit", headers=dev.writing()
    )
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["state"] == "SUBMITTED"
    deadline = asyncio.get_running_loop().time() + 60.0
    while True:
        reply = await http.get(f"/v1/developer/versions/{version_id}", headers=dev.auth)
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        if body["version"]["state"] in ("IN_REVIEW", "REJECTED"):
            return body
        # The BFF reads the version and its report in two calls: a check that concludes
        # between them shows a report beside the state before (a follow-up: one read).
        assert asyncio.get_running_loop().time() < deadline, "the checks never finished"
        await asyncio.sleep(0.1)


def sri(content: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(content).digest()).decode()


async def discovered(http: httpx.AsyncClient, user: Session, name: str) -> list[str]:
    reply = await http.get(
        "/v1/mini-apps", params={"category": "FOOD", "query": name}, headers=user.auth
    )
    assert reply.status_code == 200, reply.text
    return [app["mini_app_id"] for app in reply.json()["mini_apps"]]


async def test_developer_reviewer_shell_journey(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    dev = await developer(client, platform)
    staff = await reviewer(client, platform)
    user = await sign_up(client, "shell")

    key = new_id()
    body = registration()
    first = await client.post("/v1/developer/mini-apps", json=body, headers=dev.writing(key))
    assert first.status_code == 201, first.text
    app = first.json()["mini_app"]
    assert first.json()["client_secret"].startswith("mas_")
    assert app["status"] == "ACTIVE"
    assert app["category"] == "FOOD"
    assert app["developer_id"] == dev.user_id
    assert app["published_version_id"] is None
    replay = await client.post("/v1/developer/mini-apps", json=body, headers=dev.writing(key))
    assert replay.status_code == 201, replay.text
    assert replay.json()["client_secret"] is None  # shown once
    assert replay.json()["mini_app"]["mini_app_id"] == app["mini_app_id"]
    mine = await client.get("/v1/developer/mini-apps", headers=dev.auth)
    assert [a["mini_app_id"] for a in mine.json()["mini_apps"]] == [app["mini_app_id"]]
    rotated = await client.post(
        f"/v1/developer/mini-apps/{app['mini_app_id']}/client-secret", headers=dev.writing()
    )
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["client_secret"] not in (None, first.json()["client_secret"])

    bundle = valid_bundle()
    upload_key = new_id()
    uploads = [
        await client.post(
            f"/v1/developer/mini-apps/{app['mini_app_id']}/versions",
            content=bundle,
            headers={**dev.writing(upload_key), "Content-Type": ZIP},
        )
        for _ in range(2)
    ]
    assert [u.status_code for u in uploads] == [201, 201], uploads[0].text
    version = uploads[0].json()
    assert uploads[1].json()["version_id"] == version["version_id"]  # a retry, one version
    assert version["state"] == "DRAFT"
    assert version["bundle_sha256"] == hashlib.sha256(bundle).hexdigest()
    assert version["bundle_integrity"] == sri(bundle)
    assert version["bundle_size_bytes"] == len(bundle)
    outcome = await checked(client, dev, version["version_id"])
    assert outcome["version"]["state"] == "IN_REVIEW"
    assert outcome["report"]["passed"] is True
    assert outcome["report"]["findings"] == []
    assert outcome["version"]["manifest_version"] == valid_manifest()["version"]

    queue = await client.get("/v1/review/queue", params={"page_size": 100}, headers=staff.auth)
    assert queue.status_code == 200, queue.text
    assert version["version_id"] in [v["version_id"] for v in queue.json()["versions"]]
    seen = await client.get(f"/v1/review/versions/{version['version_id']}", headers=staff.auth)
    assert seen.json()["report"]["passed"] is True
    approved = await client.post(
        f"/v1/review/versions/{version['version_id']}/approve",
        json={"note": "Clear justifications."},
        headers=staff.writing(),
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "APPROVED"
    assert approved.json()["reviewer_id"] == staff.user_id
    assert await discovered(client, user, body["name"]) == []  # not before publication
    published = await client.post(
        f"/v1/developer/versions/{version['version_id']}/publish", headers=dev.writing()
    )
    assert published.status_code == 200, published.text
    assert published.json()["version"]["state"] == "PUBLISHED"
    assert published.json()["mini_app"]["published_version_id"] == version["version_id"]

    assert await discovered(client, user, body["name"]) == [app["mini_app_id"]]
    launch = await client.get(f"/v1/mini-apps/{app['mini_app_id']}/launch", headers=user.auth)
    assert launch.status_code == 200, launch.text
    launched = launch.json()
    assert launched["manifest"] == valid_manifest()
    assert launched["version_id"] == version["version_id"]
    assert launched["bundle_url"] == f"/v1/miniapp-bundles/{version['bundle_sha256']}"

    fetched = await client.get(launched["bundle_url"], headers=user.auth)
    assert fetched.status_code == 200, fetched.text
    assert fetched.headers["content-type"] == ZIP
    assert fetched.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert fetched.headers["etag"] == f'"{version["bundle_sha256"]}"'
    assert fetched.content == bundle
    assert sri(fetched.content) == launched["integrity"]  # what a browser's SRI check does
    revalidated = await client.get(
        launched["bundle_url"], headers={**user.auth, "If-None-Match": fetched.headers["etag"]}
    )
    assert revalidated.status_code == 304
    assert revalidated.content == b""
    assert revalidated.headers["etag"] == fetched.headers["etag"]
    other = await client.get(
        launched["bundle_url"], headers={**user.auth, "If-None-Match": '"' + "0" * 64 + '"'}
    )
    assert other.status_code == 200

    suspended = await client.post(
        f"/v1/review/mini-apps/{app['mini_app_id']}/suspend",
        json={"reason": "Sends data to an undeclared host."},
        headers=staff.writing(),
    )
    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["status"] == "SUSPENDED"
    # At once: no waiting for anything to propagate.
    assert await discovered(client, user, body["name"]) == []
    refused = await client.get(f"/v1/mini-apps/{app['mini_app_id']}/launch", headers=user.auth)
    assert_problem(refused, 404, "MINI_APP_NOT_FOUND")
    assert_problem(
        await client.get(launched["bundle_url"], headers=user.auth), 404, "BUNDLE_NOT_FOUND"
    )
    own = await client.get(f"/v1/mini-apps/{app['mini_app_id']}/launch", headers=dev.auth)
    assert_problem(own, 400, "MINI_APP_SUSPENDED")


async def test_a_hostile_bundles_report_names_file_line_and_rule(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    dev = await developer(client, platform)
    app = (await registered(client, dev))["mini_app"]
    for name in ("eval hidden in minified code", "zip-slip"):
        case = CASES[name]
        version = await uploaded(client, dev, app["mini_app_id"], case.bundle())
        outcome = await checked(client, dev, version["version_id"])
        assert outcome["version"]["state"] == "REJECTED", name
        report = outcome["report"]
        assert report["passed"] is False
        file, line, rule = case.expected
        found = {(f["file"], f["line"], f["rule"]) for f in report["findings"]}
        assert (file, line(), rule) in found, (name, found)
        assert all(f["message"] and f["rule"] in RULES for f in report["findings"])


async def test_roles_are_enforced(client: httpx.AsyncClient, platform: Platform) -> None:
    user = await sign_up(client, "plain")
    dev = await developer(client, platform)
    assert_problem(
        await client.post("/v1/developer/mini-apps", json=registration(), headers=user.writing()),
        403,
        "PERMISSION_DENIED",
    )
    assert_problem(
        await client.get("/v1/developer/mini-apps", headers=user.auth), 403, "PERMISSION_DENIED"
    )
    assert_problem(await client.get("/v1/review/queue", headers=dev.auth), 403, "PERMISSION_DENIED")
    app = (await registered(client, dev))["mini_app"]
    assert_problem(
        await client.post(
            f"/v1/review/mini-apps/{app['mini_app_id']}/suspend",
            json={"reason": "I am not a reviewer."},
            headers=dev.writing(),
        ),
        403,
        "PERMISSION_DENIED",
    )
    # Another developer's unpublished app does not exist for them.
    rival = await developer(client, platform)
    assert_problem(
        await client.get(f"/v1/developer/mini-apps/{app['mini_app_id']}", headers=rival.auth),
        404,
        "MINI_APP_NOT_FOUND",
    )
    assert_problem(await client.get("/v1/mini-apps"), 401, "UNAUTHENTICATED")


async def test_a_bundle_above_grpcs_default_message_size_travels_both_ways(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    # Incompressible, so the zip stays above gRPC's 4 MiB default both ways.
    noise = random.Random(24).randbytes(5 * 1024 * 1024)
    bundle = zip_bundle({**valid_files(), "assets/noise.bin": noise})
    assert 4 * 1024 * 1024 < len(bundle) <= BUNDLE_MAX_BYTES
    dev = await developer(client, platform)
    app = (await registered(client, dev))["mini_app"]
    version = await uploaded(client, dev, app["mini_app_id"], bundle)
    assert version["bundle_size_bytes"] == len(bundle)
    # Its developer may read an unpublished version's bundle.
    fetched = await client.get(f"/v1/miniapp-bundles/{version['bundle_sha256']}", headers=dev.auth)
    assert fetched.status_code == 200, fetched.text
    assert fetched.content == bundle


async def test_an_oversize_upload_is_refused_before_it_is_read(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    dev = await developer(client, platform)
    app = (await registered(client, dev))["mini_app"]
    url = f"/v1/developer/mini-apps/{app['mini_app_id']}/versions"
    too_large = await client.post(
        url, content=b"\0" * (BUNDLE_MAX_BYTES + 1), headers={**dev.writing(), "Content-Type": ZIP}
    )
    body = assert_problem(too_large, 413, "REQUEST_TOO_LARGE")
    assert body["metadata"] == {"max_bytes": str(BUNDLE_MAX_BYTES)}

    async def chunks() -> Any:  # no Content-Length: counted as it streams in
        for _ in range(9):
            yield b"\0" * (1024 * 1024)

    streamed = await client.post(
        url, content=chunks(), headers={**dev.writing(), "Content-Type": ZIP}
    )
    assert_problem(streamed, 413, "REQUEST_TOO_LARGE")
    # Other routes keep the small limit.
    big_json = await client.post(
        "/v1/developer/mini-apps",
        content=json.dumps(registration(description="x" * 300_000)),
        headers={**dev.writing(), "Content-Type": "application/json"},
    )
    assert_problem(big_json, 413, "REQUEST_TOO_LARGE")


async def test_bad_input_is_400_with_field_errors(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    dev = await developer(client, platform)
    refused = await client.post(
        "/v1/developer/mini-apps",
        json=registration(name="", category="PETS", icon_url="http://x.example.com/i.png"),
        headers=dev.writing(),
    )
    body = assert_problem(refused, 400, "INVALID_ARGUMENT")
    assert {v["field"] for v in body["violations"]} == {"name", "category", "icon_url"}
    upstream = await client.post(
        "/v1/developer/mini-apps",
        json=registration(name="   "),  # only spaces: miniapps' rule
        headers=dev.writing(),
    )
    body = assert_problem(upstream, 400, "INVALID_ARGUMENT")
    assert [(v["field"], v["reason"]) for v in body["violations"]] == [("name", "REQUIRED")]

    app = (await registered(client, dev))["mini_app"]
    url = f"/v1/developer/mini-apps/{app['mini_app_id']}/versions"
    not_zip = await client.post(
        url, content=b"not a zip at all", headers={**dev.writing(), "Content-Type": ZIP}
    )
    body = assert_problem(not_zip, 400, "INVALID_ARGUMENT")
    assert [(v["field"], v["reason"]) for v in body["violations"]] == [("body", "NOT_A_ZIP")]
    wrong_type = await client.post(
        url, content=valid_bundle(), headers={**dev.writing(), "Content-Type": "text/plain"}
    )
    assert_problem(wrong_type, 415, "UNSUPPORTED_MEDIA_TYPE")
    no_key = await client.post(
        url, content=valid_bundle(), headers={**dev.auth, "Content-Type": ZIP}
    )
    body = assert_problem(no_key, 400, "INVALID_ARGUMENT")
    assert [v["field"] for v in body["violations"]] == ["Idempotency-Key"]
    rejection = await client.post(
        f"/v1/review/versions/{new_id()}/reject",
        json={"reasons": []},
        headers=(await reviewer(client, platform)).writing(),
    )
    body = assert_problem(rejection, 400, "INVALID_ARGUMENT")
    assert [v["field"] for v in body["violations"]] == ["reasons"]
    bad_hash = await client.get("/v1/miniapp-bundles/NOT-A-HASH", headers=dev.auth)
    body = assert_problem(bad_hash, 400, "INVALID_ARGUMENT")
    assert [v["field"] for v in body["violations"]] == ["sha256"]
    bad_category = await client.get("/v1/mini-apps", params={"category": "PETS"}, headers=dev.auth)
    assert_problem(bad_category, 400, "INVALID_ARGUMENT")


async def test_unknown_ids_are_404(client: httpx.AsyncClient, platform: Platform) -> None:
    dev = await developer(client, platform)
    staff = await reviewer(client, platform)
    unknown = new_id()
    for reply, reason in [
        (
            await client.get(f"/v1/developer/mini-apps/{unknown}", headers=dev.auth),
            "MINI_APP_NOT_FOUND",
        ),
        (
            await client.post(
                f"/v1/developer/mini-apps/{unknown}/versions",
                content=valid_bundle(),
                headers={**dev.writing(), "Content-Type": ZIP},
            ),
            "MINI_APP_NOT_FOUND",
        ),
        (
            await client.get(f"/v1/developer/versions/{unknown}", headers=dev.auth),
            "VERSION_NOT_FOUND",
        ),
        (
            await client.post(
                f"/v1/review/versions/{unknown}/approve", json={}, headers=staff.writing()
            ),
            "VERSION_NOT_FOUND",
        ),
        (
            await client.get(f"/v1/mini-apps/{unknown}/launch", headers=dev.auth),
            "MINI_APP_NOT_FOUND",
        ),
        (
            await client.get(f"/v1/miniapp-bundles/{'0' * 64}", headers=dev.auth),
            "BUNDLE_NOT_FOUND",
        ),
    ]:
        assert_problem(reply, 404, reason)


async def test_the_manifest_schema_and_the_rules_are_published(
    client: httpx.AsyncClient,
) -> None:
    schema = await client.get("/v1/mini-app-manifest/schema")
    assert schema.status_code == 200, schema.text
    assert schema.json() == manifest_schema()
    rules = await client.get("/v1/mini-app-review/rules")
    assert rules.status_code == 200, rules.text
    assert {r["rule"]: r["description"] for r in rules.json()} == dict(RULES)
