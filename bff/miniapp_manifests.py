"""The published manifest of a mini-app's bundle, for the shell's launch.

miniapps keeps a version's bundle, not its manifest as a field: the manifest is the
bundle's `manifest.json`, which the review read and accepted before the version could
be published. A bundle never changes (it is addressed by its SHA-256), so its manifest
is read once per BFF process and kept, a bounded number of them, by that address.
"""

from __future__ import annotations

import copy
import io
import json
import zipfile
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from services.miniapps.review.manifest import MANIFEST_FILE, MAX_MANIFEST_BYTES
from services.runtime.errors import ServiceError

__all__ = ["ManifestUnreadable", "Manifests", "read_manifest"]


class ManifestUnreadable(ServiceError):
    """A published bundle without a readable manifest: the review let through what it
    must not have; INTERNAL, never a default manifest."""


def read_manifest(bundle: bytes) -> dict[str, Any]:
    """The manifest.json object of a zip bundle (at most the review's manifest size)."""
    try:
        with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
            info = archive.getinfo(MANIFEST_FILE)
            if info.file_size > MAX_MANIFEST_BYTES:
                raise ManifestUnreadable("MANIFEST_UNREADABLE", "the manifest is too large")
            with archive.open(info) as member:
                manifest = json.loads(member.read(MAX_MANIFEST_BYTES + 1))
    except (KeyError, ValueError, zipfile.BadZipFile, OSError) as error:
        raise ManifestUnreadable(
            "MANIFEST_UNREADABLE", f"the bundle's manifest cannot be read ({type(error).__name__})"
        ) from error
    if not isinstance(manifest, dict):
        raise ManifestUnreadable("MANIFEST_UNREADABLE", "the manifest is not a JSON object")
    return manifest


class Manifests:
    """Manifests by bundle SHA-256, the most recently used `capacity` of them."""

    def __init__(self, capacity: int = 1024) -> None:
        self._capacity = capacity
        self._by_sha256: OrderedDict[str, dict[str, Any]] = OrderedDict()

    async def get(self, sha256: str, fetch: Callable[[], Awaitable[bytes]]) -> dict[str, Any]:
        """The manifest of bundle `sha256`, fetching the bundle with `fetch` if not kept.

        A copy: callers may change what they get without changing what is kept.
        """
        manifest = self._by_sha256.get(sha256)
        if manifest is None:
            manifest = read_manifest(await fetch())
            self._by_sha256[sha256] = manifest
            while len(self._by_sha256) > self._capacity:
                self._by_sha256.popitem(last=False)
        else:
            self._by_sha256.move_to_end(sha256)
        return copy.deepcopy(manifest)
