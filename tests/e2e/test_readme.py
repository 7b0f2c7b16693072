"""The README's recipes follow the list of components.

That every command of the banner and of the README's walkthroughs works as written is
proven on a running stack, in test_stack_serving.py (which shares that file's stack).
"""

from __future__ import annotations

import re

from scripts.localstack import COMPONENTS
from tests.e2e.readme_snippets import bash_block_after


def test_the_readmes_postgresql_and_scale_recipes_put_every_service_on_postgresql() -> None:
    # A service left out of either recipe stays on SQLite, and with --replicas above 1
    # the stack refuses to start: both blocks must follow the list of components.
    services = [component for component in COMPONENTS if component.readiness.name == "GRPC_HEALTH"]
    single = bash_block_after("_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/identity")
    scaled = bash_block_after("--replicas 2")
    for component in services:
        assert f"{component.env_prefix}DATABASE_URL=" in single, component.name
        assert re.search(rf"for service in [^;]*\b{component.name}\b", scaled), component.name
