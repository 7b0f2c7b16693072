"""`python -m services.identity rotate-keys` acts on the running identity's keys, or refuses."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from services.identity.signing_keys import SigningKeys
from services.runtime.clock import SystemClock
from tests.conftest import ROOT


def _rotate(cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("IDENTITY_", "SUPERAPP_"))}
    environ["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "services.identity", "rotate-keys"],
        cwd=cwd,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _key_files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.glob("key-*.json"))


def test_it_rotates_the_keys_of_the_stacks_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "stack-data"
    # What identity made when the stack started it with SUPERAPP_DATA_DIR=data.
    SigningKeys(data / "identity-keys", clock=SystemClock(), retire_after=timedelta(minutes=16))
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()

    done = _rotate(elsewhere, SUPERAPP_DATA_DIR=str(data))

    assert done.returncode == 0, done.stderr
    assert str(data / "identity-keys") in done.stdout
    assert _key_files(data / "identity-keys") == ["key-00000001.json", "key-00000002.json"]
    assert list(elsewhere.iterdir()) == []  # no ./.data made on the side


def test_it_refuses_where_no_identity_keeps_keys(tmp_path: Path) -> None:
    empty = tmp_path / "not-the-stack"

    done = _rotate(tmp_path, SUPERAPP_DATA_DIR=str(empty))

    assert done.returncode == 1
    assert done.stderr.startswith("rotate-keys: IDENTITY_KEYS_DIR: no signing keys in ")
    assert not empty.exists()
