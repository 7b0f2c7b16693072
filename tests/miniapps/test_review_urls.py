"""Reading URLs as browsers do, and matching hosts against network_domains."""

from __future__ import annotations

import pytest

from services.miniapps.review.urls import code_origin, host_declared, url_target

DOMAINS = ("api.example.com", "*.cdn.example.com")


@pytest.mark.parametrize(
    ("host", "declared"),
    [
        ("api.example.com", True),
        ("API.Example.com", True),
        ("img.cdn.example.com", True),
        ("a.b.cdn.example.com", True),
        ("cdn.example.com", False),
        ("evilcdn.example.com", False),
        ("api.example.com.evil.test", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_a_host_is_declared_exactly_or_under_a_wildcard(host: str, declared: bool) -> None:
    assert host_declared(host, DOMAINS) is declared


@pytest.mark.parametrize(
    ("text", "complete", "kind", "host"),
    [
        ("/api/menu", True, "bundle", ""),
        ("menu.json", True, "bundle", ""),
        ("./items/", False, "bundle", ""),
        ("api/", False, "bundle", ""),
        ("/", False, "unknown", ""),
        ("", False, "unknown", ""),
        ("ht", False, "unknown", ""),
        ("data:text/plain,hi", True, "device", ""),
        ("blob:https://x.test/1", True, "device", ""),
        ("https://Api.Example.com./x", True, "host", "api.example.com"),
        ("wss://ws.example.com", True, "host", "ws.example.com"),
        ("//evil.test/x", True, "host", "evil.test"),
        ("\\\\evil.test/x", True, "host", "evil.test"),
        ("/\\evil.test/x", True, "host", "evil.test"),
        ("  https://evil.test", True, "host", "evil.test"),
        ("https://ev\til.test/", True, "host", "evil.test"),
        ("https://evil.test\\@api.example.com/", True, "host", "evil.test"),
        ("https://user@evil.test/", True, "host", "evil.test"),
        ("https://api.example.com/items/", False, "host", "api.example.com"),
        ("https://api.example.com", False, "unknown", ""),
        ("https:evil.test", True, "host", ""),
    ],
)
def test_a_url_is_read_as_a_browser_reads_it(
    text: str, complete: bool, kind: str, host: str
) -> None:
    target = url_target(text, complete)

    assert (target.kind, target.host) == (kind, host)


@pytest.mark.parametrize(
    ("text", "complete", "origin"),
    [
        ("./chunk.js", True, "bundle"),
        ("./chunks/", False, "bundle"),
        ("chunk.js", True, "bundle"),
        ("https://evil.test/m.js", True, "outside"),
        ("data:text/javascript,1", True, "outside"),
        ("\\\\evil.test/m.js", True, "outside"),
        ("", False, "unknown"),
        ("h", False, "unknown"),
    ],
)
def test_where_an_import_loads_code_from(text: str, complete: bool, origin: str) -> None:
    assert code_origin(text, complete) == origin
