"""The served OpenAPI document: problems, idempotency and who needs a token, as documented."""

from __future__ import annotations

import httpx

from bff.openapi import OPENAPI_PATH
from services.runtime.ids import new_id

_NOT_REPLAYABLE = {
    # A consent's code is kept only hashed: a retry is a new code, not a replay.
    "/v1/me/mini-app-consents",
    # A measurement: a retried report is one more sample.
    "/v1/mini-apps/{mini_app_id}/load-times",
}


async def test_every_operation_documents_its_problems(client: httpx.AsyncClient) -> None:
    document = (await client.get(OPENAPI_PATH)).json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
            # A reused Idempotency-Key is 422; invalid input is 400, never FastAPI's 422.
            assert ("422" in responses) == ("Idempotency-Key" in headers), (method, path)
            for status, response in responses.items():
                if path == "/oauth2/token" and status in ("400", "401"):
                    # The token endpoint speaks OAuth (RFC 6749 §5.2), not problem+json.
                    assert list(response["content"]) == ["application/json"], status
                    assert response["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/OAuthError"
                    }
                elif int(status) >= 400 and path != "/readyz":
                    assert list(response["content"]) == ["application/problem+json"], (
                        method,
                        path,
                        status,
                    )
            if (
                method in {"post", "patch"}
                and path.startswith("/v1/")
                and "/auth/" not in path
                and path not in _NOT_REPLAYABLE
            ):
                assert "Idempotency-Key" in headers, (method, path)
                assert "429" in responses, (method, path)


_BROWSING = {
    "/v1/products",
    "/v1/products/{product_id}",
    "/v1/search/products",
    "/v1/categories",
    "/v1/categories/{category_id}",
}
_SIGNED_IN = (
    "/v1/me",
    "/v1/home",
    "/v1/merchant/",
    "/v1/admin/",
    "/v1/checkout",
    "/v1/developer/",
    "/v1/review/",
    "/v1/mini-apps",
    "/v1/miniapp-bundles/",
)

_MINI_APP_API = "/v1/mini-app-api/"


async def test_the_document_says_which_operations_need_a_token(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get(OPENAPI_PATH)).json()
    token = {"accessToken": []}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            security = operation.get("security")
            if path in _BROWSING:
                # A token is optional: sent, it is verified (merchants see their drafts).
                assert security == [token, {}], (method, path)
            elif path.startswith(_SIGNED_IN):
                assert security == [token], (method, path)
            elif path.startswith(_MINI_APP_API):
                # A mini-app's backend, with the token a user granted it; never a user's.
                assert security == [{"miniAppToken": []}], (method, path)
            else:  # sign-up and sign-in, health, keys, the manifest schema and review rules
                assert security is None, (method, path)
    for path in _BROWSING:
        url = path.format(product_id=new_id(), category_id=new_id())
        anonymous = await client.get(url, params={"query": "mug"} if "search" in url else {})
        if anonymous.status_code != 200:
            assert anonymous.json()["reason"] in {"PRODUCT_NOT_FOUND", "CATEGORY_NOT_FOUND"}


async def test_bundles_are_documented_as_zip(client: httpx.AsyncClient) -> None:
    paths = (await client.get(OPENAPI_PATH)).json()["paths"]
    upload = paths["/v1/developer/mini-apps/{mini_app_id}/versions"]["post"]
    assert list(upload["requestBody"]["content"]) == ["application/zip"]
    assert {"413", "415"} <= set(upload["responses"])
    bundle = paths["/v1/miniapp-bundles/{sha256}"]["get"]["responses"]
    assert list(bundle["200"]["content"]) == ["application/zip"]
    assert {"ETag", "Cache-Control"} <= set(bundle["200"]["headers"])
    assert "304" in bundle


async def test_the_token_endpoint_takes_a_form(client: httpx.AsyncClient) -> None:
    token = (await client.get(OPENAPI_PATH)).json()["paths"]["/oauth2/token"]["post"]
    assert list(token["requestBody"]["content"]) == ["application/x-www-form-urlencoded"]
    assert "WWW-Authenticate" in token["responses"]["401"]["headers"]
