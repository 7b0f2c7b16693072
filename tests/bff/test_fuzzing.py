"""Schemathesis against the served OpenAPI document: no 5xx, no schema violations.

Every operation gets a bounded number of generated requests, valid ones and invalid
ones, sent over real HTTP as the signed-in admin (who is also a merchant, so the
merchant and admin routes are reached too). The checks are schemathesis's: no server
error, documented status codes, content types and headers, responses that match their
schemas, and invalid input refused with a 4xx. The fuzzer is synchronous, so it runs in
a worker thread while this loop serves the BFF and the services.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from superapp.identity.v1 import identity_service_pb2 as identity_pb

from bff.openapi import OPENAPI_PATH
from services.runtime.ids import new_id
from tests.bff.conftest import Platform, admin_session, log_in

EXAMPLES_PER_OPERATION = 30
_RESPONSE_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


# Invalid input may also be refused for its size: a string over its maxLength can make
# the body cross the body-size limit, and 413 is as much a refusal as 400.
_CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": ["400", "401", "403", "404", "409", "413", "429"]
            }
        }
    }
)


def _exercise(
    operation: Any,
    mode: GenerationMode,
    base_url: str,
    session: requests.Session,
    auth: dict[str, str],
) -> None:
    """Generated requests for one operation in one mode; raises on the first failed check."""
    checks = [*_RESPONSE_CHECKS]
    if mode is GenerationMode.NEGATIVE:
        checks.append(negative_data_rejection)

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, headers=auth))
    def exercise(case: Any) -> None:
        case.call_and_validate(
            base_url=base_url, session=session, headers=auth, checks=checks, timeout=10
        )

    exercise()


def _describe(failure: Failure | FailureGroup) -> str:
    found = failure.exceptions if isinstance(failure, FailureGroup) else (failure,)
    return "\n".join(f"{f.title}: {f.message}"[:1500] for f in found)


def _fuzz(base_url: str, token: str) -> dict[str, str]:
    """Failures by operation; empty when every check held."""
    schema = schemathesis.openapi.from_url(base_url + OPENAPI_PATH, config=_CONFIG)
    session = requests.Session()
    auth = {"Authorization": f"Bearer {token}"}
    failures: dict[str, str] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _exercise(operation, mode, base_url, session, auth)
            except (Failure, FailureGroup) as failure:  # report it with the others
                failures[f"{operation.label} ({mode.value})"] = _describe(failure)
            except Unsatisfiable:
                # Nothing to make invalid: the operation takes no input at all.
                assert mode is GenerationMode.NEGATIVE, operation.label
    return failures


# The services under test run in this process, on the event loop thread, while the
# fuzzer draws cases on another: OpenTelemetry's trace ids and nats-py's inbox ids come
# from the global `random`, and Hypothesis reports any change to it during a draw as a
# strategy using `random` (a warning, made an error here), at random moments.
@pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)
async def test_the_openapi_document_holds_under_fuzzing(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    admin = await admin_session(client)
    await platform.identity.stub.SetUserRoles(
        identity_pb.SetUserRolesRequest(
            user_id=admin.user_id,
            roles=[identity_pb.ROLE_USER, identity_pb.ROLE_MERCHANT, identity_pb.ROLE_ADMIN],
            request_id=new_id(),
        ),
        metadata=(("authorization", f"Bearer {admin.access_token}"),),
    )
    admin = await log_in(client, admin.email)

    failures = await asyncio.to_thread(_fuzz, platform.base_url, admin.access_token)

    assert failures == {}, "\n\n".join(f"{op}:\n{text}" for op, text in failures.items())


async def test_every_operation_documents_its_problems(client: httpx.AsyncClient) -> None:
    document = (await client.get(OPENAPI_PATH)).json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
            # A reused Idempotency-Key is 422; invalid input is 400, never FastAPI's 422.
            assert ("422" in responses) == ("Idempotency-Key" in headers), (method, path)
            for status, response in responses.items():
                if int(status) >= 400 and path != "/readyz":
                    assert list(response["content"]) == ["application/problem+json"], (
                        method,
                        path,
                        status,
                    )
            if method in {"post", "patch"} and path.startswith("/v1/") and "/auth/" not in path:
                assert "Idempotency-Key" in headers, (method, path)
                assert "429" in responses, (method, path)


_BROWSING = {
    "/v1/products",
    "/v1/products/{product_id}",
    "/v1/search/products",
    "/v1/categories",
    "/v1/categories/{category_id}",
}
_SIGNED_IN = ("/v1/me", "/v1/home", "/v1/merchant/", "/v1/admin/", "/v1/checkout")


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
            else:  # sign-up and sign-in, health, keys
                assert security is None, (method, path)
    for path in _BROWSING:
        url = path.format(product_id=new_id(), category_id=new_id())
        anonymous = await client.get(url, params={"query": "mug"} if "search" in url else {})
        if anonymous.status_code != 200:
            assert anonymous.json()["reason"] in {"PRODUCT_NOT_FOUND", "CATEGORY_NOT_FOUND"}
