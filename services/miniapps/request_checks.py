"""The limits of a mini-app's fields (see `MiniApp` in the contract), checked all at once."""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit

from superapp.miniapps.v1 import miniapps_service_pb2 as pb

from services.miniapps.records import AppFields
from services.runtime.validation import RequestCheck

__all__ = ["SHA256_HEX", "app_fields", "check_sha256"]

NAME_MAX = 60
DESCRIPTION_MAX = 2000
URL_MAX = 2048
REDIRECT_URIS_MAX = 10
DOMAINS_MAX = 20
DOMAIN_MAX = 253
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# A lower-case DNS name of at least two labels, or `*.` and such a name (its subdomains).
_DOMAIN = re.compile(
    r"(\*\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?"
)
# Loopback redirects are how native and development clients receive codes (RFC 8252 §7.3);
# the address literal, not `localhost`, which a hostile resolver could point elsewhere.
_LOOPBACK = "127.0.0.1"


def _split(url: str) -> SplitResult | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a malformed port)
    except ValueError:
        return None
    return parts


def _check_icon(check: RequestCheck, field: str, url: str) -> None:
    if not url:
        check.fail(field, "is required", "REQUIRED")
        return
    parts = _split(url)
    if len(url) > URL_MAX:
        check.fail(field, f"must be at most {URL_MAX} characters", "TOO_LONG")
    elif parts is None or parts.scheme != "https" or not parts.hostname:
        check.fail(field, "must be an absolute https URL", "INVALID_URL")


def _check_redirect(check: RequestCheck, field: str, url: str) -> None:
    parts = _split(url)
    if len(url) > URL_MAX:
        check.fail(field, f"must be at most {URL_MAX} characters", "TOO_LONG")
    elif parts is None or not parts.hostname or parts.fragment or "#" in url:
        check.fail(field, "must be an absolute URL without a fragment", "INVALID_URL")
    elif parts.scheme == "http" and parts.hostname != _LOOPBACK:
        check.fail(
            field,
            f"must use https (http only for http://{_LOOPBACK}, in development)",
            "INSECURE_URL",
        )
    elif parts.scheme not in ("https", "http") or parts.username or parts.password:
        check.fail(field, "must be an https URL without credentials", "INVALID_URL")


def app_fields(check: RequestCheck, app: pb.MiniApp, prefix: str = "mini_app") -> AppFields:
    """The developer-set fields of `app`, each violation recorded in `check` under
    `prefix.<field>` (call `check.done()` afterwards)."""
    if not app.name.strip():
        check.fail(f"{prefix}.name", "is required", "REQUIRED")
    else:
        check.text(f"{prefix}.name", app.name, max_length=NAME_MAX)
    check.enum(f"{prefix}.category", app.category, pb.Category, required=True)
    check.text(f"{prefix}.description", app.description, max_length=DESCRIPTION_MAX)
    _check_icon(check, f"{prefix}.icon_url", app.icon_url)
    uris = list(app.redirect_uris)
    if not uris:
        check.fail(f"{prefix}.redirect_uris", "needs at least one URI", "REQUIRED")
    elif len(uris) > REDIRECT_URIS_MAX:
        check.fail(f"{prefix}.redirect_uris", f"at most {REDIRECT_URIS_MAX}", "TOO_MANY")
    for index, uri in enumerate(uris):
        field = f"{prefix}.redirect_uris[{index}]"
        if uri in uris[:index]:
            check.fail(field, "repeats an earlier URI", "DUPLICATE")
        else:
            _check_redirect(check, field, uri)
    domains = list(app.network_domains)
    if len(domains) > DOMAINS_MAX:
        check.fail(f"{prefix}.network_domains", f"at most {DOMAINS_MAX}", "TOO_MANY")
    for index, domain in enumerate(domains):
        field = f"{prefix}.network_domains[{index}]"
        if domain in domains[:index]:
            check.fail(field, "repeats an earlier domain", "DUPLICATE")
        elif len(domain) > DOMAIN_MAX or _DOMAIN.fullmatch(domain) is None:
            check.fail(
                field,
                "must be a lower-case DNS name such as api.example.com or *.example.com",
                "INVALID_DOMAIN",
            )
    category = pb.Category.Name(app.category) if app.category in pb.Category.values() else ""
    return AppFields(
        name=app.name,
        category=category.removeprefix("CATEGORY_"),
        description=app.description,
        icon_url=app.icon_url,
        redirect_uris=tuple(uris),
        network_domains=tuple(domains),
    )


def check_sha256(check: RequestCheck, field: str, value: str) -> None:
    """A bundle address: 64 lower-case hexadecimal digits."""
    if not value:
        check.fail(field, "is required", "REQUIRED")
    elif SHA256_HEX.fullmatch(value) is None:
        check.fail(field, "must be 64 lower-case hexadecimal digits", "MALFORMED_SHA256")
