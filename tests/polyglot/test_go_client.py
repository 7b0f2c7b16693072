"""A Go client generated from protos/ alone does the polyglot journey against the live stack.

`clients/go/install` brings Go and its gRPC, protobuf and NATS libraries from Debian's
packages; `clients/go/build` generates the stubs with buf into the git-ignored cache and
builds the journey binary there. The stack starts while the client builds. A missing
toolchain fails this test with the script's own line naming what is missing; it never
skips.
"""

from __future__ import annotations

import pytest

from tests.polyglot.conftest import ROOT, LiveStack, built_client, check_journey, run_journey

# A cold build of grpc-go and its dependencies takes about a minute on a busy 2-core machine,
# a first install of the packages about as long again.
SCRIPT_TIMEOUT_SECONDS = 600.0
# pytest-timeout's global bound (120 s) covers fixture set-up too: on a fresh machine the
# first install and build alone outlast it.
pytestmark = [pytest.mark.slow(seconds=40), pytest.mark.timeout(SCRIPT_TIMEOUT_SECONDS + 180)]


async def test_go_client_does_the_journey(starting_stack: LiveStack) -> None:
    journey = await built_client("go", timeout_seconds=SCRIPT_TIMEOUT_SECONDS)
    live = await starting_stack.ready()

    report = await run_journey([str(journey)], live, cwd=ROOT)

    await check_journey(report, live)
