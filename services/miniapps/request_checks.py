"""What MiniAppsService requests must satisfy beyond their contract rules, and the domain
values they become.

The limits of a mini-app's fields (lengths, counts, the icon's scheme, a domain's
syntax, the category) are the rules of `MiniApp` in the contract, checked for every RPC
before its handler runs. What a rule cannot say is checked here and reported with them
in one INVALID_ARGUMENT: that an URL has a host (and a redirect no fragment, no
credentials, plain http only to the loopback address), and that no URI or domain is
listed twice.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

from superapp.miniapps.v1 import miniapps_service_pb2 as pb

from services.miniapps.records import AppFields
from services.runtime.contract_rules import ContractRules, RequestChecks
from services.runtime.validation import RequestCheck

__all__ = ["REQUEST_CHECKS", "app_fields"]

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
    """The contract's rule says `https://`; that a host follows is urllib's to say."""
    if check.failed(field):
        return
    parts = _split(url)
    if parts is None or not parts.hostname:
        check.fail(field, "must be an absolute https URL", "INVALID_URL")


def _check_redirect(check: RequestCheck, field: str, url: str) -> None:
    parts = _split(url)
    if parts is None or not parts.hostname or parts.fragment or "#" in url:
        check.fail(field, "must be an absolute URL without a fragment", "INVALID_URL")
    elif parts.scheme == "http" and parts.hostname != _LOOPBACK:
        check.fail(
            field,
            f"must use https (http only for http://{_LOOPBACK}, in development)",
            "INSECURE_URL",
        )
    elif parts.scheme not in ("https", "http") or parts.username or parts.password:
        check.fail(field, "must be an https URL without credentials", "INVALID_URL")


def _check_registration(
    request: pb.RegisterMiniAppRequest, check: RequestCheck, _: ContractRules
) -> None:
    if not request.HasField("mini_app"):
        return  # the contract's `required` says so
    app, prefix = request.mini_app, "mini_app"
    _check_icon(check, f"{prefix}.icon_url", app.icon_url)
    uris = list(app.redirect_uris)
    for index, uri in enumerate(uris):
        field = f"{prefix}.redirect_uris[{index}]"
        if uri in uris[:index]:
            check.fail(field, "repeats an earlier URI", "DUPLICATE")
        elif not check.failed(field):
            _check_redirect(check, field, uri)
    domains = list(app.network_domains)
    for index, domain in enumerate(domains):
        if domain in domains[:index]:
            check.fail(
                f"{prefix}.network_domains[{index}]", "repeats an earlier domain", "DUPLICATE"
            )


REQUEST_CHECKS = RequestChecks(
    pb.DESCRIPTOR.services_by_name["MiniAppsService"],
    {"RegisterMiniApp": _check_registration},
)


def app_fields(app: pb.MiniApp) -> AppFields:
    """The developer-set fields of `app` (its rules and checks have passed)."""
    return AppFields(
        name=app.name,
        category=pb.Category.Name(app.category).removeprefix("CATEGORY_"),
        description=app.description,
        icon_url=app.icon_url,
        redirect_uris=tuple(app.redirect_uris),
        network_domains=tuple(app.network_domains),
    )
