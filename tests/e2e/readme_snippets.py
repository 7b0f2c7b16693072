"""The README's bash blocks and the stack banner's commands, run as an operator would."""

from __future__ import annotations

import asyncio
import re

from scripts.localstack import COMPONENTS, READY_LINE
from tests.e2e.conftest import ROOT, Stack

README = ROOT / "README.md"


def bash_block_after(marker: str) -> str:
    """The fenced bash block of the README whose text contains `marker`."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), re.S)
    found = [block for block in blocks if marker in block]
    assert len(found) == 1, f"README has {len(found)} bash blocks with {marker!r}"
    return found[0]


def on_test_ports(script: str, stack: Stack) -> str:
    """The README addresses the default ports; a test's stack runs on free ones."""
    for component in COMPONENTS:
        default = f"127.0.0.1:{component.default_port}"
        script = script.replace(default, stack.address(component.port_variable))
    return script


async def run_bash(script: str, stack: Stack) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `script` in bash -euo pipefail, in the stack's env."""
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-euo",
        "pipefail",
        "-c",
        script,
        cwd=ROOT,
        env=stack.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=180)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def banner_commands(stdout: str) -> list[str]:
    """The commands the stack's banner lists under "list the methods of each"."""
    banner = stdout[: stdout.index(READY_LINE)]
    listing = banner[banner.index("list the methods of each") :]
    return [line.strip() for line in listing.splitlines()[1:] if line.startswith("  ")]
