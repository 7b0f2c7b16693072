"""Zip the sample mini-app's bundle/ into a bundle the miniapps service accepts.

    python examples/pay-a-bill/build_bundle.py [out.zip]

The archive is reproducible (sorted names, fixed timestamps and permissions), so the same
sources always make the same SHA-256 and so the same content-addressed bundle URL.
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

__all__ = ["BUNDLE_DIR", "build_bundle"]

BUNDLE_DIR = Path(__file__).resolve().parent / "bundle"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


def build_bundle(source: Path = BUNDLE_DIR) -> bytes:
    """The zip of every file under `source`, by its path relative to it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            entry = zipfile.ZipInfo(path.relative_to(source).as_posix(), _EPOCH)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o100644 << 16  # a regular file, rw-r--r--
            archive.writestr(entry, path.read_bytes())
    return buffer.getvalue()


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("pay-a-bill.zip")
    out.write_bytes(build_bundle())
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
