"""Every command the stack's banner and the README's walkthroughs print works as written.

The README addresses the default ports; the test's stack runs on free ones, so each
`127.0.0.1:<default port>` in a snippet is pointed at the test's component first.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from scripts.localstack import COMPONENTS, READY_LINE
from tests.e2e.conftest import ROOT, Stack, StackFactory

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

README = ROOT / "README.md"


def _bash_block_after(marker: str) -> str:
    """The fenced bash block of the README whose text contains `marker`."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), re.S)
    found = [block for block in blocks if marker in block]
    assert len(found) == 1, f"README has {len(found)} bash blocks with {marker!r}"
    return found[0]


def _on_test_ports(script: str, stack: Stack) -> str:
    for component in COMPONENTS:
        default = f"127.0.0.1:{component.default_port}"
        script = script.replace(default, stack.address(component.port_variable))
    return script


async def _bash(script: str, stack: Stack) -> tuple[int, str, str]:
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


def _banner_commands(stdout: str) -> list[str]:
    banner = stdout[: stdout.index(READY_LINE)]
    listing = banner[banner.index("list the methods of each") :]
    return [line.strip() for line in listing.splitlines()[1:] if line.startswith("  ")]


async def test_the_banner_and_the_readme_commands_work_as_written(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(IDENTITY_BOOTSTRAP_ADMIN_EMAIL="ops@example.com").start()
    await stack.wait_ready()

    commands = _banner_commands(stack.stdout)
    assert len(commands) == len(COMPONENTS) + 1  # a listing per service, readyz and OpenAPI
    for command in commands:
        code, out, err = await _bash(command, stack)
        assert code == 0, (command, err)
        assert out.strip(), command

    code, out, err = await _bash(
        _on_test_ports(_bash_block_after("--list-methods http://127.0.0.1:7103"), stack), stack
    )
    assert code == 0, err
    assert "superapp.catalogue.v1.CatalogueService/ListCategories" in out
    assert '"status": "SERVING"' in out

    code, out, err = await _bash(
        _on_test_ports(_bash_block_after("# the operator's first steps"), stack), stack
    )
    assert code == 0, err
    roles, category_id, kind = out.split("\n")[:3]
    assert roles == "['ROLE_USER', 'ROLE_MERCHANT']"
    assert re.fullmatch(r"[0-9a-f-]{36}", category_id)
    assert kind == "CREDIT"


def test_the_readmes_postgresql_and_scale_recipes_put_every_service_on_postgresql() -> None:
    # A service left out of either recipe stays on SQLite, and with --replicas above 1
    # the stack refuses to start: both blocks must follow the list of components.
    services = [component for component in COMPONENTS if component.readiness.name == "GRPC_HEALTH"]
    single = _bash_block_after(
        "_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/identity"
    )
    scaled = _bash_block_after("--replicas 2")
    for component in services:
        assert f"{component.env_prefix}DATABASE_URL=" in single, component.name
        assert re.search(rf"for service in [^;]*\b{component.name}\b", scaled), component.name
