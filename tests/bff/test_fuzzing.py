"""Schemathesis's pytest integration against the served OpenAPI document, every check on.

Each operation is one test: Schemathesis's explicit examples, its coverage cases (edge
values, missing required headers, methods the path does not serve) and a bounded number
of generated requests, valid and invalid, sent over real HTTP as the signed-in admin (who
is also a merchant, so every route is reached). Every built-in check runs: no server
error; documented statuses, content types, headers and schemas; invalid input refused;
auth enforced where it is required; `Allow` on a 405. One is refined: a valid request may
still be refused for what no schema can say (`schemathesis_hooks.NOT_IN_ANY_SCHEMA`).

The services and the BFF run on an event loop of their own in another thread: the tests
are synchronous and would block the loop that serves them.

The same document can be checked from the command line against a running stack:

    SCHEMATHESIS_HOOKS=tests.bff.schemathesis_hooks schemathesis run --checks all \\
        --exclude-checks positive_data_acceptance -H "Authorization: Bearer $TOKEN" \\
        $BFF/openapi.json

where the hook module registers the `printable` string format and the refined check.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from opentelemetry.sdk.trace import TracerProvider
from schemathesis.generation.case import Case
from superapp.identity.v1 import identity_service_pb2 as identity_pb

from bff.app import create_app
from bff.config import BffSettings
from scripts.nats_process import NatsProcess
from services.runtime.ids import new_id
from tests.bff import schemathesis_hooks  # noqa: F401  # registers the format and the check
from tests.bff.conftest import admin_session, log_in, running_platform, serving_bff

# Each operation is a pytest subtest, whose failures xdist's workers do not pass on. The
# whole module is `serial`: `scripts/test` leaves it out of its other runs' collection
# (`--ignore`), where building its 60 tests cost ~7 CPU-seconds per pytest process.
pytestmark = pytest.mark.serial

EXAMPLES_PER_OPERATION = 20

# `scripts/test` runs this module beside the parallel part, at a load of 5-10. The
# BFF's deadlines (one second on `/readyz`'s health checks and on the home screen's
# parts, five on other upstream calls) then ran out now and then, and Schemathesis
# rightly counted the 503 as a server error: the fuzzing judges conformance, not the
# machine's speed.
PATIENT_DEADLINES = {
    "readiness_timeout_seconds": 30.0,
    "home_part_timeout_seconds": 30.0,
    "upstream_timeout_seconds": 30.0,
}


@dataclass(frozen=True)
class Served:
    """The BFF in front of the services, and an admin's token for it."""

    base_url: str
    token: str


async def _admin_token(platform: Any, base_url: str) -> str:
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as http:
        admin = await admin_session(http)
        await platform.identity.stub.SetUserRoles(
            identity_pb.SetUserRolesRequest(
                user_id=admin.user_id,
                roles=[identity_pb.ROLE_USER, identity_pb.ROLE_MERCHANT, identity_pb.ROLE_ADMIN],
                request_id=new_id(),
            ),
            metadata=(("authorization", f"Bearer {admin.access_token}"),),
        )
        return (await log_in(http, admin.email)).access_token


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The platform and the BFF on their own event loop, in a thread, for this module."""
    data_dir = tmp_path_factory.mktemp("fuzzed")
    started: Future[tuple[Served, asyncio.AbstractEventLoop, asyncio.Event]] = Future()

    async def serve() -> None:
        stopping = asyncio.Event()
        try:
            with NatsProcess(data_dir / "nats") as nats_server:
                async with (
                    running_platform(data_dir, TracerProvider(), nats_server.url) as platform,
                    serving_bff(platform.bff(**PATIENT_DEADLINES)) as base_url,
                ):
                    token = await _admin_token(platform, base_url)
                    started.set_result(
                        (Served(base_url, token), asyncio.get_running_loop(), stopping)
                    )
                    await stopping.wait()
        except BaseException as error:
            if not started.done():
                started.set_exception(error)
            raise

    thread = threading.Thread(target=lambda: asyncio.run(serve()), name="fuzzed-platform")
    thread.start()
    it, loop, stopping = started.result(timeout=120)
    try:
        yield it
    finally:
        loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout=60)


# The document is the app's own, built without serving it, so that each operation is a
# test of its own from collection on; requests go to the BFF `served` starts.
document = schemathesis.openapi.from_dict(
    create_app(BffSettings()).openapi(),
    config=schemathesis.Config.from_dict(
        {
            "checks": {
                # Refined by `valid_requests_are_accepted` (schemathesis_hooks).
                "positive_data_acceptance": {"enabled": False},
                # Invalid input may be refused for its size too (a string over its
                # maxLength can push the body over the limit): 413 is a refusal.
                "negative_data_rejection": {
                    "expected-statuses": [
                        "400",
                        "401",
                        "403",
                        "404",
                        "409",
                        "413",
                        "415",
                        "422",
                        "429",
                    ]
                },
            }
        }
    ),
)


# The services under test run in this process, on the other thread's loop, while the
# fuzzer draws cases on this one: OpenTelemetry's trace ids and nats-py's inbox ids come
# from the global `random`, and Hypothesis reports any change to it during a draw as a
# strategy using `random` (a warning, made an error here), at random moments.
@pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)
@document.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_passes_every_check(case: Case, served: Served) -> None:
    case.call_and_validate(
        base_url=served.base_url, headers={"Authorization": f"Bearer {served.token}"}, timeout=10
    )
