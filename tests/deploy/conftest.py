"""The overlays under deploy/, rendered once per session by `kubectl kustomize`."""

from __future__ import annotations

import copy

import pytest

from scripts.kubernetes_manifests import Manifest, overlays, render

OVERLAYS = overlays()


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[Manifest]]:
    """Every overlay's objects, by overlay name (read-only: copy before changing)."""
    return {overlay: render(overlay) for overlay in OVERLAYS}


@pytest.fixture(params=OVERLAYS)
def manifests(
    request: pytest.FixtureRequest, rendered: dict[str, list[Manifest]]
) -> list[Manifest]:
    """One overlay's objects, a copy the test may change."""
    return copy.deepcopy(rendered[request.param])


@pytest.fixture
def dev(rendered: dict[str, list[Manifest]]) -> list[Manifest]:
    """The dev overlay's objects (a copy)."""
    return copy.deepcopy(rendered["dev"])


@pytest.fixture
def production(rendered: dict[str, list[Manifest]]) -> list[Manifest]:
    """The production overlay's objects (a copy)."""
    return copy.deepcopy(rendered["production"])
