"""Generate Python messages, gRPC stubs and type stubs from `protos/` into `generated/`.

`python -m scripts.codegen` rewrites `generated/`; `python -m scripts.codegen --check`
generates into a temporary directory and fails when the committed tree differs (drift).
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
GENERATED = ROOT / "generated"

__all__ = ["generate", "main"]


def _proto_files() -> list[Path]:
    return sorted(PROTOS.rglob("*.proto"))


def generate(out: Path) -> None:
    """Compile every proto under `protos/` into `out`, replacing what was there."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    well_known = resources.files("grpc_tools") / "_proto"
    files = [str(p.relative_to(PROTOS)) for p in _proto_files()]
    # mypy-protobuf's plugins are installed beside this interpreter, which need not be on PATH.
    bin_dir = Path(sys.executable).parent
    args = [
        "grpc_tools.protoc",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--proto_path={PROTOS}",
        f"--proto_path={well_known}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *files,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed; see the messages above")
    # protoc writes modules, not packages: mark every directory as a regular, typed
    # package so imports and mypy resolve `superapp.<svc>.v1` without namespace tricks.
    for directory in _package_dirs(out):
        (directory / "__init__.py").touch()
    (out / "superapp" / "py.typed").touch()


def _package_dirs(out: Path) -> Iterator[Path]:
    for path in out.rglob("*"):
        if path.is_dir():
            yield path


def _differences(left: Path, right: Path) -> list[str]:
    cmp = filecmp.dircmp(left, right)
    found = [f"only in the committed tree: {name}" for name in cmp.left_only]
    found += [f"missing from the committed tree: {name}" for name in cmp.right_only]
    found += [f"differs: {name}" for name in cmp.diff_files]
    for name, sub in cmp.subdirs.items():
        found += [f"{name}/{line}" for line in _differences(Path(sub.left), Path(sub.right))]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if generated/ is stale")
    options = parser.parse_args(argv)
    if not options.check:
        generate(GENERATED)
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        fresh = Path(scratch) / "generated"
        generate(fresh)
        drift = _differences(GENERATED, fresh)
    if drift:
        print("generated/ is stale; run scripts/generate and commit:", file=sys.stderr)
        for line in drift:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
