"""A Node.js client built from protos/ alone drives a live catalogue (the polyglot contract).

`client.mjs` loads protos/ with @grpc/proto-loader, health.proto from grpc-health-check and
google/rpc/*.proto from google-proto-files (both pinned in package.json). It runs as an
asyncio subprocess so the in-process grpc.aio server keeps serving while we wait for it.
Node.js (>= 18) is a prerequisite of this repository: without it these tests fail, not skip.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider

from scripts.nats_process import NatsProcess
from services.catalogue.config import CatalogueSettings
from services.catalogue.server import SERVICE_NAME, create_server
from services.runtime.health_client import wait_serving
from services.runtime.serving import GrpcService

ROOT = Path(__file__).resolve().parents[2]
CLIENT = Path(__file__).with_name("client.mjs")
CLIENT_TIMEOUT_SECONDS = 60
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"


@pytest.fixture
async def catalogue(
    tmp_path: Path, tracer_provider: TracerProvider, nats_server: NatsProcess
) -> AsyncIterator[GrpcService]:
    """Catalogue on port 0 with an empty SQLite file in a temp dir, SERVING."""
    service = await create_server(
        CatalogueSettings(port=0, data_dir=tmp_path, relay="task", nats_url=nats_server.url),
        tracer_provider,
    )
    try:
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel,
            asyncio.timeout(60),
        ):
            await wait_serving(channel)
        yield service
    finally:
        await service.stop(0)


async def run_client(port: int, *steps: str) -> tuple[int, list[dict[str, Any]], str]:
    """Run client.mjs against 127.0.0.1:`port`; its exit code, JSON results and stderr."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (Node.js >= 18) is not on PATH; it is a prerequisite of this repository")
    if not (ROOT / "node_modules" / "@grpc" / "grpc-js").is_dir():
        pytest.fail(f"node_modules missing in {ROOT}: run `npm ci` there first")
    process = await asyncio.create_subprocess_exec(
        node,
        str(CLIENT),
        f"127.0.0.1:{port}",
        *steps,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), CLIENT_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.communicate()
        raise
    assert process.returncode is not None
    results = [json.loads(line) for line in stdout.decode().splitlines()]
    return process.returncode, results, stderr.decode()


def details_of(result: dict[str, Any], type_url: str) -> list[dict[str, Any]]:
    """The decoded `grpc-status-details-bin` entries of one type."""
    status_details = result["status_details"]
    assert status_details is not None, f"no grpc-status-details-bin trailer: {result}"
    return [detail for detail in status_details["details"] if detail["@type"] == type_url]


async def test_node_client_drives_catalogue_from_protos(catalogue: GrpcService) -> None:
    exit_code, results, stderr = await run_client(
        catalogue.port,
        "--health",
        "",
        "--health",
        SERVICE_NAME,
        "--call",
        f"{SERVICE_NAME}/ListCategories",
        "{}",
        "--call",
        f"{SERVICE_NAME}/GetCategory",
        json.dumps({"category_id": "not-a-uuid"}),
        "--expect",
        "INVALID_ARGUMENT",
    )
    assert exit_code == 0, f"client.mjs exited {exit_code}: {stderr}\n{results}"
    server_health, service_health, listed, malformed = results

    for health in (server_health, service_health):
        assert health["code_name"] == "OK"
        assert health["response"] == {"status": "SERVING"}
    assert service_health["request"] == {"service": "superapp.catalogue.v1.CatalogueService"}

    assert listed["code_name"] == "OK", listed
    assert listed["response"] == {"categories": [], "next_page_token": ""}
    assert listed["status_details"] is None

    assert malformed["code_name"] == "INVALID_ARGUMENT"
    assert malformed["response"] is None
    assert malformed["status_details"]["code"] == 3
    [info] = details_of(malformed, ERROR_INFO)
    assert info["domain"] == "catalogue.superapp"
    assert info["reason"] == "INVALID_ARGUMENT"
    [bad_request] = details_of(malformed, BAD_REQUEST)
    assert [v["field"] for v in bad_request["field_violations"]] == ["category_id"]


async def test_node_client_fails_on_an_unexpected_status(catalogue: GrpcService) -> None:
    exit_code, results, _ = await run_client(
        catalogue.port,
        "--call",
        f"{SERVICE_NAME}/GetCategory",
        json.dumps({"category_id": "not-a-uuid"}),
    )
    assert exit_code == 1
    [result] = results
    assert result["expected"] == "OK"
    assert result["code_name"] == "INVALID_ARGUMENT"
    assert result["as_expected"] is False
