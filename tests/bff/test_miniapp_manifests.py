"""Reading a published bundle's manifest for launch, and keeping it by the bundle's address."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from bff.miniapp_manifests import Manifests, ManifestUnreadable, read_manifest
from tests.miniapps.bundles import valid_bundle, valid_files, valid_manifest, zip_bundle


def test_the_manifest_is_the_bundles_manifest_json() -> None:
    assert read_manifest(valid_bundle()) == valid_manifest()


@pytest.mark.parametrize(
    "bundle",
    [
        b"not a zip",
        zip_bundle({k: v for k, v in valid_files().items() if k != "manifest.json"}),
        zip_bundle({**valid_files(), "manifest.json": "[1, 2]"}),
        zip_bundle({**valid_files(), "manifest.json": "{not json"}),
        zip_bundle({**valid_files(), "manifest.json": " " * (64 * 1024 + 1)}),
    ],
    ids=["not a zip", "no manifest", "not an object", "not JSON", "too large"],
)
def test_an_unreadable_manifest_is_an_error_not_a_default(bundle: bytes) -> None:
    with pytest.raises(ManifestUnreadable):
        read_manifest(bundle)


async def test_a_bundle_is_fetched_once_and_the_least_recent_ones_are_let_go() -> None:
    fetched: list[str] = []

    def fetcher(name: str) -> Callable[[], Awaitable[bytes]]:
        async def fetch() -> bytes:
            fetched.append(name)
            return valid_bundle()

        return fetch

    manifests = Manifests(capacity=2)
    first = await manifests.get("a", fetcher("a"))
    first["name"] = "changed by a caller"
    assert (await manifests.get("a", fetcher("a"))) == valid_manifest()
    await manifests.get("b", fetcher("b"))
    await manifests.get("a", fetcher("a"))  # a is now the most recent
    await manifests.get("c", fetcher("c"))  # b goes
    await manifests.get("a", fetcher("a"))
    await manifests.get("b", fetcher("b"))
    assert fetched == ["a", "b", "c", "b"]
