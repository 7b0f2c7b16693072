"""A C++ client generated from protos/ alone does the polyglot journey against the live stack.

`clients/cpp/install` brings g++, make, protoc/libprotobuf, grpc++ with grpc_cpp_plugin and
the NATS C client from Debian's packages; `clients/cpp/build` generates the messages and
stubs with buf into the git-ignored cache and builds the journey there with make, one object
per generated file, so a rebuild compiles only what changed. A missing toolchain fails this
test with the script's own line naming what is missing; it never skips.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.polyglot.conftest import ROOT, LiveStack, check_journey, run_journey

CLIENT = ROOT / "clients" / "cpp"
BINARY = ROOT / ".cache" / "clients" / "cpp" / "bin" / "journey"
# A cold build compiles the generated grpc++ code: about 2 minutes on a busy 2-core
# machine; a first install of the packages well under one.
SCRIPT_TIMEOUT_SECONDS = 900.0


def run_script(script: Path) -> None:
    """Run an install/build script; fail the test with its output if it fails."""
    name = script.relative_to(ROOT)
    try:
        done = subprocess.run(
            ["bash", str(script)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=SCRIPT_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{name} did not finish in {SCRIPT_TIMEOUT_SECONDS:.0f} s")
    if done.returncode != 0:
        pytest.fail(f"{name} failed:\n{done.stdout.decode()}")


@pytest.fixture(scope="module")
def journey_binary() -> Path:
    """The C++ journey client, installed and built by its own scripts (once per module).

    Synchronous: nothing of the stack runs in this process while it builds.
    """
    run_script(CLIENT / "install")
    run_script(CLIENT / "build")
    return BINARY


async def test_cpp_client_does_the_journey(journey_binary: Path, live_stack: LiveStack) -> None:
    report = await run_journey([str(journey_binary)], live_stack, cwd=ROOT)
    await check_journey(report, live_stack)
