"""Generate Python messages, gRPC stubs and type stubs from `protos/` into `generated/`.

`python -m scripts.codegen` rewrites `generated/`; `python -m scripts.codegen --check`
generates into a temporary directory and fails when the committed tree differs (drift).

Our protos import `buf/validate/validate.proto` (protovalidate's rules), vendored under
`third_party/protovalidate/`. Its Python module is generated here too, as
`buf.validate.validate_pb2`: the protovalidate wheel imports that module but does not ship
it, and generating it with our protoc keeps it on the protobuf runtime we run.
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
THIRD_PARTY = ROOT / "third_party" / "protovalidate"
GENERATED = ROOT / "generated"

__all__ = ["generate", "main"]


def _compile(out: Path, root: Path, *, grpc: bool) -> None:
    """Compile every proto under `root` into `out`; imports resolve across both roots."""
    well_known = resources.files("grpc_tools") / "_proto"
    files = [str(p.relative_to(root)) for p in sorted(root.rglob("*.proto"))]
    # mypy-protobuf's plugins are installed beside this interpreter, which need not be on PATH.
    bin_dir = Path(sys.executable).parent
    args = [
        "grpc_tools.protoc",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--proto_path={PROTOS}",
        f"--proto_path={THIRD_PARTY}",
        f"--proto_path={well_known}",
        f"--python_out={out}",
        f"--mypy_out={out}",
    ]
    if grpc:
        args += [
            f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
            f"--grpc_python_out={out}",
            f"--mypy_grpc_out={out}",
        ]
    if protoc.main([*args, *files]) != 0:
        raise SystemExit("protoc failed; see the messages above")


def generate(out: Path) -> None:
    """Compile every proto under `protos/` and the vendored `buf/validate` into `out`,
    replacing what was there."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    _compile(out, PROTOS, grpc=True)
    # validate.proto declares options and messages only: no services, so no stubs.
    _compile(out, THIRD_PARTY, grpc=False)
    # protoc writes modules, not packages: mark every directory as a regular, typed
    # package so imports and mypy resolve `superapp.<svc>.v1` without namespace tricks.
    for directory in _package_dirs(out):
        (directory / "__init__.py").touch()
    (out / "superapp" / "py.typed").touch()
    (out / "buf" / "py.typed").touch()


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
