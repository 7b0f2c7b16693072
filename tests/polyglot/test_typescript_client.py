"""A TypeScript client generated from protos/ does the polyglot journey against the live stack.

`clients/typescript/buf.gen.yaml` generates protobuf-es v2 messages and services (from
protos/ and google/rpc/*.proto of the pinned google-proto-files) into a git-ignored cache;
`tsc` type-checks the journey against them and `tsx` runs it with Connect-ES's gRPC
transport, protovalidate (every request checked against the contract's rules before it
is sent, one refused) and the nats package, all pinned in package.json. The stack starts
while buf and tsc run. Node.js and `npm ci` are prerequisites of this repository: without
them this test fails, not skips.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.polyglot.conftest import (
    LiveStack,
    build_step,
    check_journey,
    check_local_validation,
    run_journey,
)

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "typescript"
BIN = ROOT / "node_modules" / ".bin"
TOOL_TIMEOUT_SECONDS = 120.0


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `npm ci` in {ROOT} (node and npm are prerequisites)")
    return str(path)


# The stack's start (tests.e2e.conftest.READY_TIMEOUT at most) plus generation, tsc and
# the journey.
@pytest.mark.slow(seconds=15)
@pytest.mark.timeout(600)
async def test_typescript_client_does_the_journey(starting_stack: LiveStack) -> None:
    if shutil.which("node") is None:
        pytest.fail("node (Node.js >= 20) is not on PATH; it is a prerequisite of this repository")
    buf, tsc, tsx = _tool("buf"), _tool("tsc"), _tool("tsx")

    await build_step(
        [buf, "generate", "--template", str(CLIENT / "buf.gen.yaml")],
        timeout_seconds=TOOL_TIMEOUT_SECONDS,
    )
    await build_step(
        [tsc, "--project", str(CLIENT / "tsconfig.json")], timeout_seconds=TOOL_TIMEOUT_SECONDS
    )
    live = await starting_stack.ready()
    report = await run_journey([tsx, str(CLIENT / "journey.ts")], live, cwd=ROOT)

    await check_journey(report, live)
    assert report["validated"] is True
    check_local_validation(report)
