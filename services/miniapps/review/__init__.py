"""Automated review of mini-app bundles: the archive, the manifest and the code.

`review_bundle` takes a bundle (a zip with manifest.json plus HTML/JS/CSS assets) and
returns a `ReviewReport` whose findings each name a file, a line, a stable rule id and
a message the developer can act on. It runs off the request path: it is pure,
synchronous and CPU-bound, reads no more of an archive than `BundleLimits` allows, and
turns hostile input into findings rather than exceptions. The manifest's JSON Schema is
published (`manifest_schema()`, manifest.schema.json); the permission catalogue is
`PERMISSIONS`; every rule id with its meaning is in `RULES`; the platform API convention
the code is held to is described in `services.miniapps.review.javascript`.
"""

from __future__ import annotations

from services.miniapps.review.findings import Finding, ReviewReport
from services.miniapps.review.limits import BundleLimits
from services.miniapps.review.manifest import Manifest, Permission, manifest_schema
from services.miniapps.review.permissions import PERMISSIONS
from services.miniapps.review.pipeline import review_bundle
from services.miniapps.review.rules import RULES

__all__ = [
    "PERMISSIONS",
    "RULES",
    "BundleLimits",
    "Finding",
    "Manifest",
    "Permission",
    "ReviewReport",
    "manifest_schema",
    "review_bundle",
]
