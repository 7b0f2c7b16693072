"""The image, as far as it can be checked without building it (no container engine
here): its stages, what the final one holds and runs as, and that it agrees with the
lock, the packaging and the manifests."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from dataclasses import dataclass, field

from scripts.kubernetes_manifests import DEPLOY, Manifest
from tests.conftest import ROOT
from tests.deploy.manifest_checks import workloads

DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = DEPLOY / "Dockerfile.dockerignore"  # BuildKit's per-Dockerfile ignore file


@dataclass
class Stage:
    """One FROM and the instructions after it."""

    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, instruction: str) -> list[str]:
        """The arguments of every `instruction` (upper case) in this stage."""
        return [rest for name, rest in self.instructions if name == instruction]


def stages() -> list[Stage]:
    """The Dockerfile's stages, global ARG defaults substituted into each FROM."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    arguments: dict[str, str] = {}
    found: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction, rest = instruction.upper(), rest.strip()
        if instruction == "ARG" and not found:
            name, _, default = rest.partition("=")
            arguments[name] = default
        elif instruction == "FROM":
            base, _, name = rest.partition(" AS ")
            for key, value in arguments.items():
                base = base.replace(f"${{{key}}}", value)
            found.append(Stage(base.strip(), name.strip()))
        else:
            found[-1].instructions.append((instruction, rest))
    return found


def test_the_build_has_a_separate_final_stage_on_the_same_python() -> None:
    *earlier, final = stages()
    build = next(stage for stage in earlier if stage.all("RUN"))
    assert final.base == build.base
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    minimum = re.fullmatch(r">=(\d+\.\d+)", project["requires-python"])
    assert minimum is not None
    assert re.fullmatch(rf"python:{re.escape(minimum[1])}-slim(-\w+)?", final.base)


def test_the_dependencies_are_the_locked_ones_without_the_dev_group() -> None:
    build = next(stage for stage in stages() if stage.all("RUN"))
    syncs = [run for run in build.all("RUN") if "uv sync" in run]
    assert syncs
    for sync in syncs:
        assert "--frozen" in sync.split()
        assert "--no-dev" in sync.split()
    # The uv of the image is the one pyproject pins for everyone else.
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]["dev"]
    [pin] = [d.removeprefix("uv==") for d in dev if d.startswith("uv==")]
    assert any(stage.base == f"ghcr.io/astral-sh/uv:{pin}" for stage in stages())


def test_the_final_stage_builds_nothing_and_runs_as_the_pods_non_root_user(
    rendered: dict[str, list[Manifest]],
) -> None:
    final = stages()[-1]
    assert final.all("RUN") == []  # no package manager, no compiler: copies only
    copied = " ".join(final.all("COPY"))
    assert "/uv" not in copied
    [user] = final.all("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit()
    assert int(uid) != 0
    for overlay, manifests in rendered.items():
        for workload in workloads(manifests):
            security = workload.pod["securityContext"]
            assert (security["runAsUser"], security["runAsGroup"]) == (int(uid), int(gid)), (
                overlay,
                workload.component.name,
            )


def test_the_command_names_the_module_to_run() -> None:
    [entrypoint] = stages()[-1].all("ENTRYPOINT")
    assert json.loads(entrypoint) == ["python", "-m"]
    assert stages()[-1].all("CMD") == []  # no default component: the pod says which


def test_the_image_holds_the_code_the_generated_stubs_and_the_protos() -> None:
    sources = {
        part.rstrip("/")
        for stage in stages()
        for copy in stage.all("COPY")
        if not copy.startswith("--from")
        for part in copy.split()[:-1]
    }
    assert {"generated", "services", "bff", "protos", "pyproject.toml", "uv.lock"} <= sources
    # ... and the build context lets each of them through.
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for source in sources:
        excluded = False
        for pattern in patterns:
            negated = pattern.startswith("!")
            if fnmatch.fnmatch(source, pattern.removeprefix("!").rstrip("/")):
                excluded = not negated
        assert not excluded, source
