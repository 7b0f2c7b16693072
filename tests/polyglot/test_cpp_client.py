"""A C++ client generated from protos/ alone does the polyglot journey against the live stack.

`clients/cpp/install` brings g++, make, protoc/libprotobuf, grpc++ with grpc_cpp_plugin and
the NATS C client from Debian's packages; `clients/cpp/build` generates the messages and
stubs with buf into the git-ignored cache and builds the journey there with make, as one
translation unit (a rebuild with no change compiles nothing). The stack starts while the
client builds. A missing toolchain fails this test with the script's own line naming what
is missing; it never skips.
"""

from __future__ import annotations

import pytest

from tests.polyglot.conftest import ROOT, LiveStack, built_client, check_journey, run_journey

# A cold build compiles the generated grpc++ code: under a minute on a busy 2-core machine
# (~20 CPU-seconds); a first install of the packages well under one.
SCRIPT_TIMEOUT_SECONDS = 900.0
# pytest-timeout's global bound (120 s) covers fixture set-up too: on a fresh machine the
# first install and build alone outlast it.
pytestmark = [pytest.mark.slow(seconds=40), pytest.mark.timeout(SCRIPT_TIMEOUT_SECONDS + 180)]


async def test_cpp_client_does_the_journey(starting_stack: LiveStack) -> None:
    journey = await built_client("cpp", timeout_seconds=SCRIPT_TIMEOUT_SECONDS)
    live = await starting_stack.ready()

    report = await run_journey([str(journey)], live, cwd=ROOT)

    await check_journey(report, live)
