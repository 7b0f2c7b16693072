"""A corpus builder for mini-app bundles: a valid bundle, and the pieces to make hostile
ones (any member name, a Unix file type, a compression method, raw bytes).

Reusable outside the review's tests: `valid_bundle()` is a bundle that passes review.
"""

from __future__ import annotations

import io
import json
import stat
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "APP_JS",
    "INDEX_HTML",
    "Member",
    "line_of",
    "manifest_json",
    "valid_bundle",
    "valid_files",
    "valid_manifest",
    "zip_bundle",
]

INDEX_HTML = """<!doctype html>
<html>
  <head>
    <meta charset="utf-8">
    <link rel="stylesheet" href="style.css">
    <script type="module" src="app.js"></script>
  </head>
  <body>
    <button id="pay">Pay</button>
    <script>
      document.getElementById("pay").addEventListener("click", () => superapp.pay.request({}));
    </script>
  </body>
</html>
"""

APP_JS = """const API = "https://api.example.com";

export async function loadMenu(shopId) {
  const response = await fetch(`${API}/shops/${encodeURIComponent(shopId)}/menu`);
  return response.json();
}

export async function order(items) {
  const user = await superapp.auth.getProfile();
  const response = await fetch("https://api.example.com/orders", {
    method: "POST",
    body: JSON.stringify({ user: user.id, items }),
  });
  setTimeout(() => superapp.ui.toast("Ordered"), 100);
  return response.json();
}

export function images(name) {
  return fetch(`https://img.cdn.example.com/${name}.png`);
}
"""

STYLE_CSS = "body { font-family: sans-serif; }\n"


def valid_manifest(**overrides: Any) -> dict[str, Any]:
    """A manifest that passes review, with fields replaced by `overrides`."""
    manifest: dict[str, Any] = {
        "name": "Coffee Corner",
        "version": "1.2.0",
        "entry": "index.html",
        "permissions": [
            {"name": "profile.basic", "justification": "Show your name on your order."},
            {"name": "wallet.pay", "justification": "Pay for your coffee from your wallet."},
        ],
        "network_domains": ["api.example.com", "*.cdn.example.com"],
    }
    manifest.update(overrides)
    return manifest


def manifest_json(manifest: Mapping[str, Any]) -> str:
    """The manifest as a bundle holds it: indented, one value per line."""
    return json.dumps(manifest, indent=2) + "\n"


def valid_files(**overrides: str | bytes) -> dict[str, str | bytes]:
    """The files of a valid bundle, by path, with some replaced or added."""
    files: dict[str, str | bytes] = {
        "manifest.json": manifest_json(valid_manifest()),
        "index.html": INDEX_HTML,
        "app.js": APP_JS,
        "style.css": STYLE_CSS,
    }
    files.update(overrides)
    return files


@dataclass(frozen=True)
class Member:
    """One archive entry, with control over what a hostile archive sets."""

    name: str
    data: str | bytes = b""
    file_type: int = stat.S_IFREG
    """Unix file type bits (`stat.S_IFLNK`, `stat.S_IFCHR`, ...), stored in external_attr."""
    compress_type: int = zipfile.ZIP_DEFLATED


def zip_bundle(members: Iterable[Member] | Mapping[str, str | bytes]) -> bytes:
    """A zip of `members` (or of a path → content mapping)."""
    if isinstance(members, Mapping):
        members = [Member(name, data) for name, data in members.items()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member in members:
            info = zipfile.ZipInfo(member.name, date_time=(2026, 1, 1, 0, 0, 0))
            info.create_system = 3  # Unix, so that the mode bits mean what they say
            info.external_attr = (member.file_type | 0o644) << 16
            info.compress_type = member.compress_type
            archive.writestr(info, member.data)
    return buffer.getvalue()


def valid_bundle(**overrides: str | bytes) -> bytes:
    """A bundle that passes review (files replaced or added by `overrides`)."""
    return zip_bundle(valid_files(**overrides))


def line_of(text: str | bytes, needle: str, occurrence: int = 1) -> int:
    """The 1-based line of the `occurrence`-th `needle` in `text`."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    index = -1
    for _ in range(occurrence):
        index = text.index(needle, index + 1)
    return text.count("\n", 0, index) + 1
