"""A C++ client generated from protos/ alone does the polyglot journey against the live stack.

`clients/cpp/install` brings g++, make, protoc/libprotobuf, grpc++ with grpc_cpp_plugin and
the NATS C client from Debian's packages; `clients/cpp/build` generates the messages and
stubs with buf into the git-ignored cache and builds the journey there with make, one object
per generated file, so a rebuild compiles only what changed. A missing toolchain fails this
test with the script's own line naming what is missing; it never skips.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.polyglot.conftest import ROOT, LiveStack, built_client, check_journey, run_journey

# A cold build compiles the generated grpc++ code: about 2 minutes on a busy 2-core
# machine; a first install of the packages well under one.
SCRIPT_TIMEOUT_SECONDS = 900.0
# pytest-timeout's global bound (120 s) covers fixture set-up too: on a fresh machine the
# first install and build alone outlast it.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(SCRIPT_TIMEOUT_SECONDS + 180)]


@pytest.fixture(scope="module")
def journey_binary() -> Path:
    """The C++ journey client, installed and built by its own scripts (once per module)."""
    return built_client("cpp", timeout_seconds=SCRIPT_TIMEOUT_SECONDS)


async def test_cpp_client_does_the_journey(journey_binary: Path, live_stack: LiveStack) -> None:
    report = await run_journey([str(journey_binary)], live_stack, cwd=ROOT)
    await check_journey(report, live_stack)
