"""Clients generated from protos/ alone, in TypeScript, Go and C++, each do the polyglot
journey against one live stack (started the README's way, `--only` what the journey
calls), which they share as any clients would. The stack starts while the first client
builds. A missing toolchain fails a test with its script's own line naming what is
missing; it never skips.

- TypeScript: `clients/typescript/buf.gen.yaml` generates protobuf-es v2 messages and
  services (from protos/ and google/rpc/*.proto of the pinned google-proto-files) into a
  git-ignored cache; `tsc` type-checks the journey against them and `tsx` runs it with
  Connect-ES's gRPC transport, protovalidate (every request checked against the
  contract's rules before it is sent, one refused) and the nats package, all pinned in
  package.json. Node.js and `npm ci` are prerequisites of this repository.
- Go: `clients/go/install` brings Go and its gRPC, protobuf and NATS libraries from
  Debian's packages; `clients/go/build` generates the stubs with buf into the git-ignored
  cache and builds the journey binary there.
- C++: `clients/cpp/install` brings g++, make, protoc/libprotobuf, grpc++ with
  grpc_cpp_plugin and the NATS C client from Debian's packages; `clients/cpp/build`
  generates the messages and stubs with buf and builds the journey with make, as one
  translation unit, through a cache of objects keyed by their preprocessed content.
"""

from __future__ import annotations

import shutil

import pytest

from tests.polyglot.conftest import (
    ROOT,
    StartingStack,
    build_step,
    built_client,
    check_journey,
    check_local_validation,
    run_journey,
)

TYPESCRIPT = ROOT / "clients" / "typescript"
NODE_BIN = ROOT / "node_modules" / ".bin"
TOOL_TIMEOUT_SECONDS = 120.0
# A cold build of grpc-go and its dependencies, or of the generated grpc++ code, takes
# about a minute on a busy 2-core machine, a first install of the packages about as long
# again; pytest-timeout's global bound (120 s) would cover both.
BUILD_TIMEOUT_SECONDS = 900.0
pytestmark = [pytest.mark.slow(seconds=60), pytest.mark.timeout(BUILD_TIMEOUT_SECONDS + 180)]


def _node_tool(name: str) -> str:
    path = NODE_BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `npm ci` in {ROOT} (node and npm are prerequisites)")
    return str(path)


async def test_typescript_client_does_the_journey(starting_stack: StartingStack) -> None:
    if shutil.which("node") is None:
        pytest.fail("node (Node.js >= 20) is not on PATH; it is a prerequisite of this repository")
    buf, tsc, tsx = _node_tool("buf"), _node_tool("tsc"), _node_tool("tsx")

    await build_step(
        [buf, "generate", "--template", str(TYPESCRIPT / "buf.gen.yaml")],
        timeout_seconds=TOOL_TIMEOUT_SECONDS,
    )
    await build_step(
        [tsc, "--project", str(TYPESCRIPT / "tsconfig.json")],
        timeout_seconds=TOOL_TIMEOUT_SECONDS,
    )
    live = await starting_stack.ready()
    report = await run_journey([tsx, str(TYPESCRIPT / "journey.ts")], live, cwd=ROOT)

    await check_journey(report, live)
    assert report["validated"] is True
    check_local_validation(report)


@pytest.mark.parametrize("language", ["go", "cpp"])
async def test_compiled_client_does_the_journey(
    language: str, starting_stack: StartingStack
) -> None:
    journey = await built_client(language, timeout_seconds=BUILD_TIMEOUT_SECONDS)
    live = await starting_stack.ready()

    report = await run_journey([str(journey)], live, cwd=ROOT)

    await check_journey(report, live)
