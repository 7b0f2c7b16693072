"""The JSON the mobile app sends and receives: one pydantic model per shape.

Field names are the contracts' snake_case names, so a field violation an upstream service
reports names the same field the client sent. Amounts are integers in minor units with
an ISO 4217 code, as in the contracts; every amount is below 1e15, so it is exact in any
JSON parser (including JavaScript's doubles).

The document states every rule a valid request must follow. Rules a service owns and
reports with its own reason (a password's length, a known currency, an https image URL)
are documented here with `_checked_upstream` and checked there, once, so the client sees
the service's reason (`PASSWORD_TOO_SHORT`, `INVALID_CURRENCY`, ...).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema

from services.runtime.contract_rules import currency_codes

__all__ = [
    "Amount",
    "ApprovalRequest",
    "Balance",
    "Category",
    "CategoryPage",
    "CheckoutRequest",
    "Home",
    "Jwk",
    "Jwks",
    "Liveness",
    "LoginRequest",
    "LoginResult",
    "MiniApp",
    "MiniAppCategory",
    "MiniAppLaunch",
    "MiniAppPage",
    "MiniAppRegistration",
    "MiniAppUser",
    "MiniAppWithSecret",
    "Money",
    "Order",
    "OrderItem",
    "OrderPage",
    "OrderStep",
    "Product",
    "ProductChanges",
    "ProductDraft",
    "ProductPage",
    "ProfileChanges",
    "PublishedVersion",
    "Readiness",
    "RefreshRequest",
    "RegisterRequest",
    "ReinstatementRequest",
    "RejectionRequest",
    "ReviewFinding",
    "ReviewReport",
    "ReviewRule",
    "SearchHit",
    "SearchPage",
    "Stock",
    "StockAdjustment",
    "SuspensionRequest",
    "Tokens",
    "TopUpRequest",
    "Transaction",
    "TransactionPage",
    "TransferRequest",
    "UserProfile",
    "Version",
    "VersionPage",
    "VersionWithReport",
    "Wallet",
]

MONEY_LIMIT = 10**15
PRINTABLE_FORMAT = "printable"
"""A custom string format: only characters for which Python's `str.isprintable()` holds
(letters, marks, numbers, punctuation, symbols and the ASCII space; no control, format,
private-use, unassigned or other separator characters)."""

Uuid = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
]


def _checked_upstream(**keywords: Any) -> dict[str, Any]:
    """`json_schema_extra` for a rule the upstream service checks and names itself."""
    return keywords


CurrencyCode = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{3}$"),
    # Which codes are current is the services' rule (INVALID_CURRENCY).
    WithJsonSchema(
        {
            "type": "string",
            "enum": sorted(currency_codes()),
            "description": "A current ISO 4217 code.",
        }
    ),
]


class _Input(BaseModel):
    """Request bodies: unknown fields are refused rather than silently ignored."""

    model_config = ConfigDict(extra="forbid")


# ---- shared values -------------------------------------------------------------------


class Money(BaseModel):
    """An exact amount: integer minor units of an ISO 4217 currency; signed where stated."""

    currency_code: str = Field(examples=["EUR"])
    amount_minor: int = Field(examples=[1250], description="1250 EUR = 12.50 EUR")


class Amount(_Input):
    """A positive amount the client sends: 1 to 1e15 - 1 minor units."""

    currency_code: CurrencyCode = Field(examples=["EUR"])
    amount_minor: int = Field(ge=1, lt=MONEY_LIMIT, examples=[1250])


# ---- auth and profile ----------------------------------------------------------------


# Domains identity refuses (email-validator's list), in any letter case.
_SPECIAL_USE = "|".join(
    "".join(f"[{c}{c.upper()}]" if c.isalpha() else c for c in name)
    for name in SPECIAL_USE_DOMAIN_NAMES
)
_NOT_SPECIAL_USE_DOMAIN = f"^(?!.*[.@]({_SPECIAL_USE})[.]?$)"
_DisplayName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        json_schema_extra=_checked_upstream(format=PRINTABLE_FORMAT),  # INVALID_CHARACTERS
        examples=["Ann"],
    ),
]


class RegisterRequest(_Input):
    """A new account. The password rules (8 to 128 characters) are identity's."""

    email: str = Field(
        min_length=1,
        max_length=254,
        # MALFORMED_EMAIL: identity also refuses special-use domains (RFC 6761).
        json_schema_extra=_checked_upstream(format="email", pattern=_NOT_SPECIAL_USE_DOMAIN),
        examples=["ann@example.com"],
    )
    password: str = Field(
        min_length=1,
        max_length=1024,
        # PASSWORD_TOO_SHORT, PASSWORD_TOO_LONG; counted after NFKC normalisation.
        json_schema_extra=_checked_upstream(minLength=8, maxLength=128),
    )
    display_name: _DisplayName


class LoginRequest(_Input):
    """Credentials."""

    email: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=1024)


class RefreshRequest(_Input):
    """The newest refresh token of a session."""

    refresh_token: str = Field(min_length=1, max_length=256)


class ProfileChanges(_Input):
    """The profile fields to change; today only the display name."""

    display_name: _DisplayName


class UserProfile(BaseModel):
    """A user as identity knows them."""

    user_id: str
    email: str
    display_name: str
    roles: list[str] = Field(
        description="Lower-case role names: user, merchant, admin, system, developer, reviewer."
    )
    create_time: datetime
    update_time: datetime


class Tokens(BaseModel):
    """A fresh access token and refresh token; keep both secret."""

    access_token: str
    access_token_expire_time: datetime
    refresh_token: str
    refresh_token_expire_time: datetime
    token_type: str = Field(description="Always `Bearer`.")


class LoginResult(BaseModel):
    """A new session and its user."""

    tokens: Tokens
    user: UserProfile


# ---- wallet --------------------------------------------------------------------------


class Balance(BaseModel):
    """One currency account: what can be spent now and what pending holds reserve."""

    currency_code: str
    available_minor: int
    held_minor: int


class Wallet(BaseModel):
    """A user's wallet: one balance per currency, sorted by currency."""

    user_id: str
    balances: list[Balance]
    create_time: datetime | None


class Transaction(BaseModel):
    """One ledger transaction, seen from the signed-in user's side."""

    transaction_id: str
    kind: str = Field(description="CREDIT, TRANSFER, HOLD_CAPTURE; unknown kinds may appear.")
    description: str
    create_time: datetime | None
    amount: Money = Field(description="Signed: negative when the user paid.")
    counterparty_user_id: str | None = None
    counterparty_system_account: str | None = Field(
        default=None, description="FUNDING for a top-up; unknown accounts may appear."
    )
    hold_id: str | None = Field(default=None, description="The captured hold, for HOLD_CAPTURE.")


class TransactionPage(BaseModel):
    """A page of history, newest first; `next_page_token` is null on the last page."""

    transactions: list[Transaction]
    next_page_token: str | None


class TransferRequest(_Input):
    """Money from the signed-in user to another user, in one currency."""

    to_user_id: Uuid
    amount: Amount
    description: str = Field(default="", max_length=200)


class TopUpRequest(_Input):
    """Money credited to a user's wallet from the platform's funding account."""

    amount: Amount
    description: str = Field(default="", max_length=200)


# ---- catalogue -----------------------------------------------------------------------


class Stock(BaseModel):
    """Units on hand, held by pending reservations, and still available."""

    stocked_quantity: int
    reserved_quantity: int
    available_quantity: int


class Product(BaseModel):
    """A merchant's product with its stock."""

    product_id: str
    merchant_id: str
    title: str
    description: str
    price: Money
    category_id: str | None
    attributes: dict[str, str]
    image_urls: list[str]
    status: str = Field(description="DRAFT, PUBLISHED or ARCHIVED.")
    create_time: datetime | None
    update_time: datetime | None
    publish_time: datetime | None
    stock: Stock


class ProductPage(BaseModel):
    """A page of products; `next_page_token` is null on the last page."""

    products: list[Product]
    next_page_token: str | None


class SearchHit(BaseModel):
    """A search result; higher scores match better."""

    product: Product
    relevance_score: float


class SearchPage(BaseModel):
    """A page of search results, best first."""

    results: list[SearchHit]
    next_page_token: str | None


class Category(BaseModel):
    """A node of the category tree."""

    category_id: str
    name: str
    parent_category_id: str | None
    product_count: int
    create_time: datetime | None


class CategoryPage(BaseModel):
    """A page of categories in creation order."""

    categories: list[Category]
    next_page_token: str | None


_Title = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200),
    Field(json_schema_extra=_checked_upstream(pattern=r"\S")),  # not only whitespace
]
_Attributes = Annotated[
    dict[
        Annotated[str, StringConstraints(min_length=1, max_length=64)],
        Annotated[str, StringConstraints(max_length=256)],
    ],
    Field(max_length=50),
]
_ImageUrl = Annotated[
    str,
    # What catalogue accepts as an absolute https URL (INVALID_URL), in printable ASCII.
    StringConstraints(
        max_length=2048, pattern=r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?#][!-~]*)?$"
    ),
]
_ImageUrls = Annotated[list[_ImageUrl], Field(max_length=10)]


class ProductDraft(_Input):
    """A new product; it starts as a DRAFT with no stock. Limits are catalogue's."""

    title: _Title
    description: str = Field(default="", max_length=5000)
    price: Amount
    category_id: Uuid | None = None
    attributes: _Attributes = Field(default_factory=dict)
    image_urls: _ImageUrls = Field(default_factory=list)


class ProductChanges(_Input):
    """The fields to change: exactly those present in the body, at least one (null clears
    the description, category, attributes and images)."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    # Present or absent, never null: a product always has a title and a price.
    title: _Title | SkipJsonSchema[None] = None
    description: str | None = Field(default=None, max_length=5000)
    price: Amount | SkipJsonSchema[None] = None
    category_id: Uuid | None = None
    attributes: _Attributes | None = None
    image_urls: _ImageUrls | None = None


class StockAdjustment(_Input):
    """A change of the stocked quantity, with the reason kept for audit."""

    delta: int = Field(
        ge=-(10**9),
        le=10**9,
        description="Non-zero; negative removes units.",
        json_schema_extra=_checked_upstream(**{"not": {"const": 0}}),
    )
    reason: str = Field(min_length=1, max_length=500)


# ---- checkout ------------------------------------------------------------------------


class CheckoutRequest(_Input):
    """Buy `quantity` units of a product with the wallet at the price the user was shown."""

    product_id: Uuid
    quantity: int = Field(ge=1, le=1000)
    unit_price: Amount = Field(
        description="The price shown to the user; the checkout refuses a different one."
    )


class OrderItem(BaseModel):
    """One line of an order: a product at the price it was bought at."""

    product_id: str
    title: str = Field(description="The product's title when the order was made.")
    quantity: int
    unit_price: Money


class OrderStep(BaseModel):
    """One step of the order's checkout, as it happened."""

    name: str = Field(
        description="reserve, hold, commit, capture; release, void (undoing); "
        "rehold, restock (collecting a payment after the first hold expired)."
    )
    outcome: str = Field(description="SUCCEEDED, FAILED or INTERRUPTED (outcome unknown).")
    time: datetime
    reason: str = Field(description="Why it failed or was interrupted; empty on success.")
    attempt: int


class Order(BaseModel):
    """A purchase: what was bought from whom, for how much, and how far it got.

    PENDING (being checked out) → PAYMENT_PENDING (sold, payment being collected) →
    COMPLETED; or CANCELLED (undone before the sale: nothing held; the same
    Idempotency-Key may try again); or REVERSED (sold, but the payment could not be
    collected: the units went back to stock and no money moved).

    A payment order (a payment the user confirmed in a mini-app) has no items: its
    `description` says what it pays for, and `mini_app_id` and `payment_request_id`
    where it came from; those three are empty for a product order."""

    order_id: str
    status: str = Field(description="PENDING, PAYMENT_PENDING, COMPLETED, CANCELLED or REVERSED.")
    buyer_id: str
    merchant_id: str
    items: list[OrderItem] = Field(
        description="One item for a product order; none for a payment order."
    )
    product_id: str = Field(
        description="The first item's product (product orders have one item); "
        "empty for a payment order."
    )
    quantity: int = Field(description="The first item's quantity; 0 for a payment order.")
    amount: Money = Field(
        description="What the buyer pays: unit price times quantity, or the payment's amount."
    )
    description: str = Field(
        description="What a payment order pays for, as the mini-app put it; "
        "empty for a product order."
    )
    mini_app_id: str = Field(
        description="The mini-app a payment order was made in; empty for a product order."
    )
    payment_request_id: str = Field(
        description="The mini-app payment request a payment order pays; empty for a product order."
    )
    failure_reason: str = Field(description="Why it was CANCELLED or REVERSED; else empty.")
    timeline: list[OrderStep]
    attempt: int
    reservation_id: str
    hold_id: str
    transaction_id: str = Field(description="The wallet transaction that paid the merchant.")
    create_time: datetime | None
    update_time: datetime | None


class OrderPage(BaseModel):
    """A page of orders, newest first."""

    orders: list[Order]
    next_page_token: str | None


# ---- home, health, keys --------------------------------------------------------------


class Home(BaseModel):
    """The home screen in one call. A part whose upstream failed or was too slow is null
    and its problem is listed under `unavailable` by part name."""

    profile: UserProfile | None
    wallet: Wallet | None
    featured_products: list[Product] | None
    unavailable: dict[str, ProblemSummary]


class ProblemSummary(BaseModel):
    """Why a part of a composite answer is missing."""

    status: int
    reason: str
    detail: str


class Liveness(BaseModel):
    """The process is up."""

    status: Literal["ok"]


class Readiness(BaseModel):
    """Whether every upstream reports SERVING (`ready`) or not (`degraded`), and what each
    said; the BFF itself serves either way."""

    status: Literal["ready", "degraded"]
    upstreams: dict[str, str]


class Jwk(BaseModel):
    """A public Ed25519 key that verifies access tokens (RFC 7517 / RFC 8037)."""

    kty: str
    crv: str
    x: str
    kid: str
    alg: str
    use: str


class Jwks(BaseModel):
    """An RFC 7517 key set."""

    keys: list[Jwk]


# ---- mini-apps -------------------------------------------------------------------------


class MiniAppCategory(StrEnum):
    """What a mini-app is for; the fixed list users browse by (miniapps' `Category`)."""

    FOOD = "FOOD"
    TRANSPORT = "TRANSPORT"
    SHOPPING = "SHOPPING"
    FINANCE = "FINANCE"
    TRAVEL = "TRAVEL"
    ENTERTAINMENT = "ENTERTAINMENT"
    HEALTH = "HEALTH"
    EDUCATION = "EDUCATION"
    SERVICES = "SERVICES"


_PORT = r"(:[0-9]{1,4})?"
_URL_REST = r"([/?][!-\"$-~]*)?"  # printable ASCII without '#': no fragment
_HTTPS_URL = rf"^https://[A-Za-z0-9.-]+{_PORT}{_URL_REST}$"
_RedirectUri = Annotated[
    str,
    # What miniapps accepts (INVALID_URL, INSECURE_URL): https, or http to the loopback
    # address literal for development; no fragment, no credentials.
    StringConstraints(
        max_length=2048, pattern=rf"{_HTTPS_URL}|^http://127\.0\.0\.1{_PORT}{_URL_REST}$"
    ),
]
_NetworkDomain = Annotated[
    str,
    StringConstraints(
        max_length=253,
        pattern=r"^(\*\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
        r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$",
    ),
]
# Not only whitespace (as Python's str.strip() counts it: Unicode's White_Space and the
# four ASCII separators \x1c-\x1f); miniapps answers REQUIRED to a blank one.
_NOT_BLANK = r"[^\s\x1c-\x1f]"
_AppName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=60,
        # Printable like every name users read.
        json_schema_extra=_checked_upstream(pattern=_NOT_BLANK, format=PRINTABLE_FORMAT),
        examples=["Pay a bill"],
    ),
]
_Reason = Annotated[
    str,
    Field(min_length=1, max_length=2000, json_schema_extra=_checked_upstream(pattern=_NOT_BLANK)),
]


class MiniAppRegistration(_Input):
    """A new mini-app. Limits are miniapps' (see `MiniApp` in its contract)."""

    name: _AppName
    category: MiniAppCategory
    description: str = Field(default="", max_length=2000)
    icon_url: str = Field(
        max_length=2048, pattern=_HTTPS_URL, examples=["https://cdn.example.com/bill.png"]
    )
    redirect_uris: list[_RedirectUri] = Field(
        min_length=1,
        max_length=10,
        json_schema_extra={"uniqueItems": True},  # DUPLICATE
        description="Where identity may send users back with an authorization code.",
    )
    network_domains: list[_NetworkDomain] = Field(
        default_factory=list,
        max_length=20,
        json_schema_extra={"uniqueItems": True},  # DUPLICATE
        description="Hosts the mini-app's code may call, e.g. `api.example.com` or "
        "`*.example.com`; the review refuses calls to any other.",
    )


class MiniApp(BaseModel):
    """A mini-app in the registry."""

    mini_app_id: str
    client_id: str = Field(description="The OAuth 2.0 client id of the mini-app's backend.")
    developer_id: str
    name: str
    category: str = Field(description="A `MiniAppCategory`.")
    description: str
    icon_url: str
    redirect_uris: list[str]
    network_domains: list[str]
    status: str = Field(description="ACTIVE or SUSPENDED.")
    published_version_id: str | None
    suspend_reason: str | None
    create_time: datetime | None
    update_time: datetime | None


class MiniAppWithSecret(BaseModel):
    """A mini-app with its backend's client secret: shown in this response only (a
    replay of the same Idempotency-Key answers without it; rotate to get a new one)."""

    mini_app: MiniApp
    client_secret: str | None


class MiniAppPage(BaseModel):
    """A page of mini-apps; `next_page_token` is null on the last page."""

    mini_apps: list[MiniApp]
    next_page_token: str | None


class Version(BaseModel):
    """One uploaded version of a mini-app and its bundle."""

    version_id: str
    mini_app_id: str
    state: str = Field(
        description="DRAFT, SUBMITTED, CHECKING, IN_REVIEW, APPROVED, REJECTED, PUBLISHED, "
        "SUPERSEDED or SUSPENDED."
    )
    bundle_sha256: str
    bundle_integrity: str = Field(description="Subresource Integrity value (`sha384-...`).")
    bundle_size_bytes: int
    manifest_version: str | None
    permissions: list[str] = Field(
        description="The permissions its manifest requests, in the manifest's order (empty "
        "until the checks have read a valid manifest); once published, the OAuth scopes a "
        "user may grant it."
    )
    rejection_reasons: list[str]
    approval_note: str | None
    reviewer_id: str | None
    create_time: datetime | None
    submit_time: datetime | None
    update_time: datetime | None


class VersionPage(BaseModel):
    """A page of versions; `next_page_token` is null on the last page."""

    versions: list[Version]
    next_page_token: str | None


class ReviewFinding(BaseModel):
    """One problem the automated checks found."""

    file: str = Field(description="The path inside the bundle; empty for the archive.")
    line: int = Field(description="1-based line in `file`; 0 when it has none.")
    rule: str = Field(description="The rule's stable id (see /v1/mini-app-review/rules).")
    message: str = Field(description="What is wrong and what to do about it.")


class ReviewReport(BaseModel):
    """The automated checks' report of a version."""

    passed: bool
    findings: list[ReviewFinding]
    create_time: datetime | None


class VersionWithReport(BaseModel):
    """A version and its checks' report (null until the checks have finished)."""

    version: Version
    report: ReviewReport | None


class PublishedVersion(BaseModel):
    """A version just published, and its mini-app."""

    version: Version
    mini_app: MiniApp


class ApprovalRequest(_Input):
    """A reviewer's approval, with an optional note to the developer."""

    note: str = Field(default="", max_length=2000)


class RejectionRequest(_Input):
    """A reviewer's rejection: reasons the developer can act on."""

    reasons: list[_Reason] = Field(min_length=1, max_length=20)


class SuspensionRequest(_Input):
    """Why a mini-app is suspended; shown to its developer."""

    reason: _Reason


class ReinstatementRequest(_Input):
    """Why a suspended mini-app is reinstated (optional); recorded with the event."""

    note: str = Field(default="", max_length=2000)


class MiniAppLoadTime(_Input):
    """How long the shell took to open a mini-app: from the user's tap to its entry page
    being usable (bundle fetched and checked against its integrity value)."""

    seconds: float = Field(gt=0, le=600, examples=[1.4])


class MiniAppLaunch(BaseModel):
    """What the shell needs to open a mini-app: its published manifest, and where to
    load the bundle from with the integrity value to check it against."""

    mini_app: MiniApp
    version_id: str
    manifest: dict[str, Any] = Field(
        description="The published bundle's manifest.json (see /v1/mini-app-manifest/schema)."
    )
    bundle_url: str = Field(description="The bundle's content-addressed URL on this API.")
    bundle_sha256: str
    integrity: str = Field(description="Subresource Integrity value (`sha384-...`).")


# RFC 6749 §3.3 scope-token: printable ASCII but space, '"' and '\\'; identity's limit.
_ScopeToken = Annotated[str, StringConstraints(pattern=r"^[\x21\x23-\x5b\x5d-\x7e]{1,64}$")]


class ConsentRequest(_Input):
    """The user's answer to the consent prompt of a mini-app (OAuth 2.0 authorization
    code with PKCE, RFC 7636). Limits are identity's (AuthorizeMiniApp)."""

    client_id: str = Field(min_length=1, max_length=64, description="The mini-app's client id.")
    redirect_uri: str = Field(
        min_length=1,
        max_length=2048,
        description="One of the redirect URIs the mini-app registered (exact match).",
    )
    requested_scopes: list[_ScopeToken] = Field(
        min_length=1,
        max_length=20,
        json_schema_extra={"uniqueItems": True},
        description="The scopes the prompt showed: among those the published manifest requests.",
    )
    granted_scopes: list[_ScopeToken] = Field(
        default_factory=list,
        max_length=20,
        json_schema_extra={"uniqueItems": True},
        description="The scopes the user granted: a subset of `requested_scopes`.",
    )
    code_challenge: str = Field(
        pattern=r"^[A-Za-z0-9._~-]{43,128}$",
        description="BASE64URL(SHA256(code_verifier)) without padding.",
    )
    code_challenge_method: Literal["S256"] = Field(description="Only S256.")
    state: str = Field(default="", max_length=512, description="Returned unchanged.")


class Grant(BaseModel):
    """A user's consent for one mini-app."""

    grant_id: str
    client_id: str
    mini_app_id: str
    scopes: list[str]
    create_time: datetime | None
    update_time: datetime | None


class Consent(BaseModel):
    """What the shell hands to the mini-app's redirect URI: a one-time code (60 s)."""

    code: str
    state: str
    redirect_uri: str
    expire_time: datetime | None
    grant: Grant


class GrantPage(BaseModel):
    """A page of grants, newest first; `next_page_token` is null on the last page."""

    grants: list[Grant]
    next_page_token: str | None


class TokenResponse(BaseModel):
    """RFC 6749 section 5.1: a mini-app access token for the mini-app's backend."""

    access_token: str = Field(description="A JWT (`typ` miniapp+jwt) verifiable with the JWKS.")
    token_type: Literal["Bearer"]
    expires_in: int = Field(description="Seconds until the token expires.")
    scope: str = Field(description="The granted scopes, separated by spaces.")


class MiniAppUser(BaseModel):
    """The user a mini-app acts for, as that mini-app may know them."""

    subject: str = Field(
        description="The pairwise subject: this user's id for this mini-app only (another "
        "mini-app knows the same user by another one); the token's `sub`."
    )
    display_name: str = Field(description="The name the user shows in the app.")


class OAuthError(BaseModel):
    """RFC 6749 section 5.2: the token endpoint's error (OAuth's, not problem+json)."""

    error: Literal[
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
    ]
    error_description: str | None = None


class ReviewRule(BaseModel):
    """A rule of the automated checks."""

    rule: str
    description: str


Home.model_rebuild()
