"""A Go client generated from protos/ alone does the polyglot journey against the live stack.

`clients/go/install` brings Go and its gRPC, protobuf and NATS libraries from Debian's
packages; `clients/go/build` generates the stubs with buf into the git-ignored cache and
builds the journey binary there. A missing toolchain fails this test with the script's
own line naming what is missing; it never skips.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.polyglot.conftest import ROOT, LiveStack, built_client, check_journey, run_journey

# A cold build of grpc-go and its dependencies takes about a minute on a busy 2-core machine,
# a first install of the packages about as long again.
SCRIPT_TIMEOUT_SECONDS = 600.0
# pytest-timeout's global bound (120 s) covers fixture set-up too: on a fresh machine the
# first install and build alone outlast it.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(SCRIPT_TIMEOUT_SECONDS + 180)]


@pytest.fixture(scope="module")
def journey_binary() -> Path:
    """The Go journey client, installed and built by its own scripts (once per module)."""
    return built_client("go", timeout_seconds=SCRIPT_TIMEOUT_SECONDS)


async def test_go_client_does_the_journey(journey_binary: Path, live_stack: LiveStack) -> None:
    report = await run_journey([str(journey_binary)], live_stack, cwd=ROOT)
    await check_journey(report, live_stack)
