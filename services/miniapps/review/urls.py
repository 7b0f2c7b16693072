"""Where a URL written in a mini-app's code points, read as a browser reads it.

The code checks know a URL's text, or only how it starts (a template's text before its
first substitution); these answer from that text alone, and say so when it does not
settle the question.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

__all__ = ["UrlTarget", "code_origin", "host_declared", "url_target"]

_NETWORK_SCHEMES = frozenset({"http", "https", "ws", "wss"})
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
# A start that already fixes a URL as relative to the bundle's origin: "./x", "../x",
# "/x" (not "//host"), or a first segment ended without a ':' ("api/", "data.json?").
_RELATIVE_START = re.compile(r"^(\.{1,2}/|/[^/]|[^/:?#]+[/?#])")
_C0_OR_SPACE = "".join(map(chr, range(0x21)))


@dataclass(frozen=True)
class UrlTarget:
    """What a network call's URL reaches."""

    kind: Literal["bundle", "device", "host", "unknown"]
    """`bundle`: relative, the bundle's own origin; `device`: data:, blob: and other
    schemes that never leave the device; `host`: the network host in `host`; `unknown`:
    the known text does not settle it."""
    url: str
    host: str = ""
    """Lowercase, without a trailing dot; "" when the URL names none (`https:x`)."""


def _as_browsers_read(text: str, complete: bool) -> str:
    """Without leading (and, when complete, trailing) control characters and spaces, and
    tabs and newlines, with '\\' as '/': so `"https://evil.test\\@api.example.com"` is a
    URL to evil.test, as browsers read it, where Python's urlsplit would find
    api.example.com, and `"\\\\evil.test"` is protocol-relative."""
    text = text.lstrip(_C0_OR_SPACE)
    if complete:
        text = text.rstrip(_C0_OR_SPACE)
    return re.sub(r"[\t\n\r]", "", text).replace("\\", "/")


def url_target(text: str, complete: bool) -> UrlTarget:
    """Where a URL whose text is `text` (all of it when `complete`, else its start) goes."""
    url = _as_browsers_read(text, complete)
    scheme = _SCHEME.match(url)
    if not (url.startswith("//") or scheme):
        relative = complete or _RELATIVE_START.match(url)
        return UrlTarget("bundle" if relative else "unknown", url)
    if scheme and scheme.group(1).lower() not in _NETWORK_SCHEMES:
        return UrlTarget("device", url)
    authority = url.split("//", 1)[1] if "//" in url else ""
    if not complete and not re.search(r"[/?#]", authority):
        return UrlTarget("unknown", url)  # the host may go on: "https://api.example.com" + x
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        host = ""
    return UrlTarget("host", url, host.rstrip("."))


def code_origin(text: str, complete: bool) -> Literal["bundle", "outside", "unknown"]:
    """Where an import specifier (or its start) loads code from: any scheme or `//` is
    outside the bundle (`data:` code escapes review as surely as `https:`)."""
    url = _as_browsers_read(text, complete)
    if url.startswith("//") or _SCHEME.match(url):
        return "outside"
    return "bundle" if complete or _RELATIVE_START.match(url) else "unknown"


def host_declared(host: str, domains: Collection[str]) -> bool:
    """Whether `host` is one of `domains`, or a subdomain (at any depth) of a `*.` one."""
    host = host.lower()
    if host in domains:
        return True
    return any(domain.startswith("*.") and host.endswith(domain[1:]) for domain in domains)
