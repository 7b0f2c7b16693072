"""The contract's request rules (buf.validate options in protos/) as the services enforce them.

- Every RPC of every service has a valid request that passes its rules and an invalid
  one whose violations read as our clients know them (field, reason); the list of RPCs
  comes from the service descriptors, so a new RPC without examples fails here.
- The compiled engine agrees with the protovalidate package (CEL), on requests of every
  RPC generated from the rules themselves: the same rules broken, at the same paths.
- The patterns mean what their names say, over every code point.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pycountry
import pytest
import re2
from buf.validate import validate_pb2
from google.protobuf import duration_pb2, field_mask_pb2, message_factory, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from superapp.catalogue.v1 import catalogue_service_pb2 as catalogue
from superapp.identity.v1 import identity_service_pb2 as identity
from superapp.miniapps.v1 import miniapps_service_pb2 as miniapps
from superapp.orders.v1 import orders_service_pb2 as orders
from superapp.type.v1.money_pb2 import Money
from superapp.wallet.v1 import wallet_service_pb2 as wallet

from services.runtime.contract_rules import (
    HTTPS_PATTERN,
    NOT_BLANK_PATTERN,
    PRINTABLE_PATTERN,
    UUID_PATTERN,
    ContractRules,
    RuleViolation,
    currency_codes,
    field_violation,
    pattern_matcher,
)
from services.runtime.errors import FieldViolation

SERVICES = [
    identity.DESCRIPTOR.services_by_name["IdentityService"],
    wallet.DESCRIPTOR.services_by_name["WalletService"],
    catalogue.DESCRIPTOR.services_by_name["CatalogueService"],
    orders.DESCRIPTOR.services_by_name["OrdersService"],
    miniapps.DESCRIPTOR.services_by_name["MiniAppsService"],
]
METHODS: dict[str, MethodDescriptor] = {
    f"{service.name}/{method.name}": method for service in SERVICES for method in service.methods
}

ID = "0190e0b4-7c1e-7000-8000-000000000001"
OTHER_ID = "0190e0b4-7c1e-7000-8000-000000000002"
KEY = "6b1c0d0e-request"
EUR = Money(currency_code="EUR", amount_minor=1250)


def _product(**fields: Any) -> catalogue.Product:
    return catalogue.Product(**{"title": "Lamp", "price": EUR, **fields})


def _mini_app(**fields: Any) -> miniapps.MiniApp:
    return miniapps.MiniApp(
        **{
            "name": "Bills",
            "category": miniapps.CATEGORY_FINANCE,
            "icon_url": "https://cdn.example.com/icon.png",
            "redirect_uris": ["https://bills.example.com/cb"],
            "network_domains": ["api.example.com", "*.example.com"],
            **fields,
        }
    )


# Per RPC: a request its rules accept, and one they refuse with these (field: reason).
# UpdateUser and UpdateProduct hold a resource whose rules count by the mask: the
# contract skips it (IGNORE_ALWAYS) and the RPC's own checks apply it, so their
# invalid examples break only the request's own fields here.
EXAMPLES: dict[str, tuple[Message, Message | None, dict[str, str]]] = {
    "IdentityService/RegisterUser": (
        identity.RegisterUserRequest(
            email="ann@example.com", password="x", display_name="Ann Lee", request_id=KEY
        ),
        identity.RegisterUserRequest(email="a" * 255, display_name="bell\a", request_id="k" * 129),
        {"email": "TOO_LONG", "display_name": "INVALID_CHARACTERS", "request_id": "MALFORMED_ID"},
    ),
    "IdentityService/Login": (
        identity.LoginRequest(email="ann@example.com", password="secret"),
        identity.LoginRequest(password="p" * 1025),
        {"email": "REQUIRED", "password": "TOO_LONG"},
    ),
    "IdentityService/RefreshToken": (
        identity.RefreshTokenRequest(refresh_token="rt"),
        identity.RefreshTokenRequest(refresh_token="t" * 257),
        {"refresh_token": "TOO_LONG"},
    ),
    "IdentityService/Logout": (
        identity.LogoutRequest(refresh_token="rt"),
        identity.LogoutRequest(),
        {"refresh_token": "REQUIRED"},
    ),
    "IdentityService/GetUser": (
        identity.GetUserRequest(user_id=ID),
        identity.GetUserRequest(user_id=ID.upper()),
        {"user_id": "MALFORMED_ID"},
    ),
    "IdentityService/UpdateUser": (
        identity.UpdateUserRequest(
            user=identity.User(user_id=ID, display_name="Ann"),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
            request_id=KEY,
        ),
        identity.UpdateUserRequest(user=identity.User(display_name="\a")),
        {"request_id": "REQUIRED"},
    ),
    "IdentityService/SetUserRoles": (
        identity.SetUserRolesRequest(user_id=ID, roles=[identity.ROLE_MERCHANT], request_id=KEY),
        identity.SetUserRolesRequest(user_id="x", roles=[0, 42], request_id=KEY),
        {"user_id": "MALFORMED_ID", "roles[0]": "REQUIRED", "roles[1]": "UNKNOWN_ENUM_VALUE"},
    ),
    "IdentityService/GetJwks": (identity.GetJwksRequest(), None, {}),
    "IdentityService/IssueServiceToken": (
        identity.IssueServiceTokenRequest(client_id="orders", client_secret="s"),
        identity.IssueServiceTokenRequest(client_id="c" * 65),
        {"client_id": "TOO_LONG", "client_secret": "REQUIRED"},
    ),
    "IdentityService/AuthorizeMiniApp": (
        identity.AuthorizeMiniAppRequest(
            client_id="ma_" + "0" * 32,
            redirect_uri="https://bills.example.com/cb",
            requested_scopes=["profile.basic", "wallet.pay"],
            granted_scopes=["profile.basic"],
            code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            code_challenge_method="S256",
        ),
        identity.AuthorizeMiniAppRequest(
            granted_scopes=["profile basic", "x", "x"],
            code_challenge="short",
            code_challenge_method="plain",
        ),
        {
            "client_id": "REQUIRED",
            "redirect_uri": "REQUIRED",
            "requested_scopes": "REQUIRED",
            "granted_scopes": "DUPLICATE_SCOPE",
            "granted_scopes[0]": "INVALID_SCOPE_TOKEN",
            "code_challenge": "INVALID_CODE_CHALLENGE",
            "code_challenge_method": "UNSUPPORTED_CHALLENGE_METHOD",
        },
    ),
    "IdentityService/ExchangeAuthorizationCode": (
        identity.ExchangeAuthorizationCodeRequest(
            client_id="ma_" + "0" * 32,
            client_secret="s",
            code="c",
            redirect_uri="https://bills.example.com/cb",
            code_verifier="v" * 43,
        ),
        identity.ExchangeAuthorizationCodeRequest(
            code="c" * 129, code_verifier="~" * 129, scopes=["a", "a"]
        ),
        {
            "client_id": "REQUIRED",
            "client_secret": "REQUIRED",
            "code": "TOO_LONG",
            "redirect_uri": "REQUIRED",
            "code_verifier": "INVALID_CODE_VERIFIER",
            "scopes": "DUPLICATE_SCOPE",
        },
    ),
    "IdentityService/ListMyGrants": (
        identity.ListMyGrantsRequest(page_size=100),
        identity.ListMyGrantsRequest(page_size=-1),
        {"page_size": "OUT_OF_RANGE"},
    ),
    "IdentityService/RevokeGrant": (
        identity.RevokeGrantRequest(grant_id=ID),
        identity.RevokeGrantRequest(grant_id="g"),
        {"grant_id": "MALFORMED_ID"},
    ),
    "IdentityService/IntrospectMiniAppToken": (
        identity.IntrospectMiniAppTokenRequest(token="t"),
        identity.IntrospectMiniAppTokenRequest(token="t" * 4097),
        {"token": "TOO_LONG"},
    ),
    "WalletService/GetWallet": (
        wallet.GetWalletRequest(user_id=ID),
        wallet.GetWalletRequest(),
        {"user_id": "REQUIRED"},
    ),
    "WalletService/CreditWallet": (
        wallet.CreditWalletRequest(user_id=ID, amount=EUR, request_id=KEY),
        wallet.CreditWalletRequest(
            user_id=ID, amount=Money(currency_code="EUR", amount_minor=10**15), request_id=KEY
        ),
        {"amount.amount_minor": "OUT_OF_RANGE"},
    ),
    "WalletService/CreateTransfer": (
        wallet.CreateTransferRequest(
            from_user_id=ID, to_user_id=OTHER_ID, amount=EUR, description="lunch", request_id=KEY
        ),
        wallet.CreateTransferRequest(
            from_user_id=ID,
            to_user_id="bob",
            amount=Money(currency_code="eur", amount_minor=0),
            description="d" * 201,
            request_id="a\tb",
        ),
        {
            "to_user_id": "MALFORMED_ID",
            "amount.amount_minor": "OUT_OF_RANGE",
            "amount.currency_code": "INVALID_CURRENCY",
            "description": "TOO_LONG",
            "request_id": "MALFORMED_ID",
        },
    ),
    "WalletService/CreateHold": (
        wallet.CreateHoldRequest(
            user_id=ID, amount=EUR, ttl=duration_pb2.Duration(seconds=60), request_id=KEY
        ),
        wallet.CreateHoldRequest(
            user_id=ID, amount=EUR, ttl=duration_pb2.Duration(seconds=0), request_id=KEY
        ),
        {"ttl": "OUT_OF_RANGE"},
    ),
    "WalletService/GetHold": (
        wallet.GetHoldRequest(hold_id=ID),
        wallet.GetHoldRequest(hold_id=ID + "0"),
        {"hold_id": "MALFORMED_ID"},
    ),
    "WalletService/CaptureHold": (
        wallet.CaptureHoldRequest(hold_id=ID, to_user_id=OTHER_ID, request_id=KEY),
        wallet.CaptureHoldRequest(
            hold_id=ID, to_user_id=OTHER_ID, amount=Money(currency_code="EUR"), request_id=KEY
        ),
        {"amount.amount_minor": "OUT_OF_RANGE"},
    ),
    "WalletService/VoidHold": (
        wallet.VoidHoldRequest(hold_id=ID, request_id=KEY),
        wallet.VoidHoldRequest(hold_id=ID),
        {"request_id": "REQUIRED"},
    ),
    "WalletService/ListTransactions": (
        wallet.ListTransactionsRequest(user_id=ID, currency_code="EUR", page_size=500),
        wallet.ListTransactionsRequest(user_id=ID, currency_code="EURO", page_size=-1),
        {"currency_code": "INVALID_CURRENCY", "page_size": "OUT_OF_RANGE"},
    ),
    "CatalogueService/CreateProduct": (
        catalogue.CreateProductRequest(
            product=_product(
                category_id=ID,
                attributes={"colour": "red"},
                image_urls=["https://img.example.com/lamp.jpg"],
            ),
            request_id=KEY,
        ),
        catalogue.CreateProductRequest(
            product=_product(
                title=" \u00a0\u3000",
                attributes={"k" * 65: "v"},
                image_urls=["http://img.example.com/lamp.jpg"],
            ),
            request_id=KEY,
        ),
        {
            "product.title": "REQUIRED",
            "product.attributes": "KEY",
            "product.image_urls[0]": "INVALID_URL",
        },
    ),
    "CatalogueService/GetProduct": (
        catalogue.GetProductRequest(product_id=ID),
        catalogue.GetProductRequest(product_id="lamp"),
        {"product_id": "MALFORMED_ID"},
    ),
    "CatalogueService/UpdateProduct": (
        catalogue.UpdateProductRequest(
            product=catalogue.Product(product_id=ID, description="new"),
            update_mask=field_mask_pb2.FieldMask(paths=["description"]),
            request_id=KEY,
        ),
        catalogue.UpdateProductRequest(product=catalogue.Product(title="")),
        {"request_id": "REQUIRED"},
    ),
    "CatalogueService/PublishProduct": (
        catalogue.PublishProductRequest(product_id=ID, request_id=KEY),
        catalogue.PublishProductRequest(product_id=ID, request_id="\u200b"),
        {"request_id": "MALFORMED_ID"},
    ),
    "CatalogueService/ArchiveProduct": (
        catalogue.ArchiveProductRequest(product_id=ID, request_id=KEY),
        catalogue.ArchiveProductRequest(request_id=KEY),
        {"product_id": "REQUIRED"},
    ),
    "CatalogueService/ListProducts": (
        catalogue.ListProductsRequest(
            min_price=Money(currency_code="EUR"),
            statuses=[catalogue.PRODUCT_STATUS_DRAFT],
            order_by=catalogue.PRODUCT_ORDER_BY_PRICE_ASCENDING,
        ),
        catalogue.ListProductsRequest(
            merchant_id="m",
            max_price=Money(currency_code="EUR", amount_minor=-1),
            statuses=[0, 9],
            order_by=9,
        ),
        {
            "merchant_id": "MALFORMED_ID",
            "max_price.amount_minor": "OUT_OF_RANGE",
            "statuses[0]": "REQUIRED",
            "statuses[1]": "UNKNOWN_ENUM_VALUE",
            "order_by": "UNKNOWN_ENUM_VALUE",
        },
    ),
    "CatalogueService/SearchProducts": (
        catalogue.SearchProductsRequest(query="lamp", page_size=10),
        catalogue.SearchProductsRequest(query="q" * 201, category_id="c"),
        {"query": "TOO_LONG", "category_id": "MALFORMED_ID"},
    ),
    "CatalogueService/CreateCategory": (
        catalogue.CreateCategoryRequest(
            category=catalogue.Category(name="Lamps", parent_category_id=ID), request_id=KEY
        ),
        catalogue.CreateCategoryRequest(category=catalogue.Category(name="n" * 101)),
        {"category.name": "TOO_LONG", "request_id": "REQUIRED"},
    ),
    "CatalogueService/GetCategory": (
        catalogue.GetCategoryRequest(category_id=ID),
        catalogue.GetCategoryRequest(category_id=" " + ID),
        {"category_id": "MALFORMED_ID"},
    ),
    "CatalogueService/ListCategories": (
        catalogue.ListCategoriesRequest(),
        catalogue.ListCategoriesRequest(parent_category_id="x", page_size=-5),
        {"parent_category_id": "MALFORMED_ID", "page_size": "OUT_OF_RANGE"},
    ),
    "CatalogueService/ReserveStock": (
        catalogue.ReserveStockRequest(
            product_id=ID, quantity=1000, ttl=duration_pb2.Duration(seconds=3600), request_id=KEY
        ),
        catalogue.ReserveStockRequest(
            product_id=ID,
            quantity=1001,
            ttl=duration_pb2.Duration(seconds=3600, nanos=1000),
            request_id=KEY,
            user_id="u",
        ),
        {"quantity": "OUT_OF_RANGE", "ttl": "OUT_OF_RANGE", "user_id": "MALFORMED_ID"},
    ),
    "CatalogueService/CommitReservation": (
        catalogue.CommitReservationRequest(reservation_id=ID, request_id=KEY),
        catalogue.CommitReservationRequest(reservation_id="r", request_id=KEY),
        {"reservation_id": "MALFORMED_ID"},
    ),
    "CatalogueService/ReleaseReservation": (
        catalogue.ReleaseReservationRequest(reservation_id=ID, request_id=KEY),
        catalogue.ReleaseReservationRequest(request_id=KEY),
        {"reservation_id": "REQUIRED"},
    ),
    "CatalogueService/GetReservation": (
        catalogue.GetReservationRequest(reservation_id=ID),
        catalogue.GetReservationRequest(),
        {"reservation_id": "REQUIRED"},
    ),
    "CatalogueService/AdjustStock": (
        catalogue.AdjustStockRequest(
            product_id=ID, delta=-1_000_000_000, reason="stock count", request_id=KEY
        ),
        catalogue.AdjustStockRequest(product_id=ID, delta=0, reason="r" * 501, request_id=KEY),
        {"delta": "OUT_OF_RANGE", "reason": "TOO_LONG"},
    ),
    "OrdersService/CreateOrder": (
        orders.CreateOrderRequest(product_id=ID, quantity=2, unit_price=EUR, request_id=KEY),
        orders.CreateOrderRequest(product_id="nope", quantity=0),
        {
            "product_id": "MALFORMED_ID",
            "quantity": "OUT_OF_RANGE",
            "unit_price": "REQUIRED",
            "request_id": "REQUIRED",
        },
    ),
    "OrdersService/CreatePaymentOrder": (
        orders.CreatePaymentOrderRequest(
            buyer_id=ID,
            merchant_id=OTHER_ID,
            amount=EUR,
            description="Coffee at Bean There",
            request_id=KEY,
            mini_app_id=ID,
            payment_request_id=OTHER_ID,
        ),
        orders.CreatePaymentOrderRequest(
            buyer_id=ID.upper(),
            amount=Money(currency_code="EUR", amount_minor=0),
            description="tab\there",
            request_id=KEY,
            mini_app_id="x",
        ),
        {
            "buyer_id": "MALFORMED_ID",
            "merchant_id": "REQUIRED",
            "amount.amount_minor": "OUT_OF_RANGE",
            "description": "INVALID_CHARACTERS",
            "mini_app_id": "MALFORMED_ID",
            "payment_request_id": "REQUIRED",
        },
    ),
    "OrdersService/GetOrder": (
        orders.GetOrderRequest(order_id=ID),
        orders.GetOrderRequest(order_id="x"),
        {"order_id": "MALFORMED_ID"},
    ),
    "OrdersService/ListOrders": (
        orders.ListOrdersRequest(buyer_id=ID, page_size=100),
        orders.ListOrdersRequest(page_size=-1),
        {"buyer_id": "REQUIRED", "page_size": "OUT_OF_RANGE"},
    ),
    "OrdersService/ListMerchantOrders": (
        orders.ListMerchantOrdersRequest(merchant_id=ID),
        orders.ListMerchantOrdersRequest(merchant_id=ID.replace("-", "")),
        {"merchant_id": "MALFORMED_ID"},
    ),
    "MiniAppsService/RegisterMiniApp": (
        miniapps.RegisterMiniAppRequest(mini_app=_mini_app(), request_id=KEY),
        miniapps.RegisterMiniAppRequest(
            mini_app=_mini_app(
                name="  ",
                category=0,
                icon_url="http://cdn.example.com/icon.png",
                redirect_uris=["https://bills.example.com/" + "c" * 2048],
                network_domains=["API.example.com", "x" * 250 + ".com"],
            ),
            request_id=KEY,
        ),
        {
            "mini_app.name": "REQUIRED",
            "mini_app.category": "REQUIRED",
            "mini_app.icon_url": "INVALID_URL",
            "mini_app.redirect_uris[0]": "TOO_LONG",
            "mini_app.network_domains[0]": "INVALID_DOMAIN",
            "mini_app.network_domains[1]": "INVALID_DOMAIN",
        },
    ),
    "MiniAppsService/GetMiniApp": (
        miniapps.GetMiniAppRequest(mini_app_id=ID),
        miniapps.GetMiniAppRequest(mini_app_id="app"),
        {"mini_app_id": "MALFORMED_ID"},
    ),
    "MiniAppsService/ListMyMiniApps": (
        miniapps.ListMyMiniAppsRequest(page_size=5),
        miniapps.ListMyMiniAppsRequest(page_size=-1),
        {"page_size": "OUT_OF_RANGE"},
    ),
    "MiniAppsService/RotateClientSecret": (
        miniapps.RotateClientSecretRequest(mini_app_id=ID, request_id=KEY),
        miniapps.RotateClientSecretRequest(mini_app_id=ID),
        {"request_id": "REQUIRED"},
    ),
    "MiniAppsService/UploadVersion": (
        miniapps.UploadVersionRequest(mini_app_id=ID, bundle=b"PK", request_id=KEY),
        miniapps.UploadVersionRequest(bundle=b"PK", request_id=KEY),
        {"mini_app_id": "REQUIRED"},
    ),
    "MiniAppsService/GetVersion": (
        miniapps.GetVersionRequest(version_id=ID),
        miniapps.GetVersionRequest(version_id=ID.upper()),
        {"version_id": "MALFORMED_ID"},
    ),
    "MiniAppsService/ListVersions": (
        miniapps.ListVersionsRequest(mini_app_id=ID),
        miniapps.ListVersionsRequest(mini_app_id=ID, page_size=-3),
        {"page_size": "OUT_OF_RANGE"},
    ),
    "MiniAppsService/GetBundle": (
        miniapps.GetBundleRequest(sha256="ab" * 32),
        miniapps.GetBundleRequest(sha256="AB" * 32),
        {"sha256": "MALFORMED_SHA256"},
    ),
    "MiniAppsService/SubmitVersion": (
        miniapps.SubmitVersionRequest(version_id=ID, request_id=KEY),
        miniapps.SubmitVersionRequest(version_id=ID, request_id="k" * 129),
        {"request_id": "MALFORMED_ID"},
    ),
    "MiniAppsService/GetReviewReport": (
        miniapps.GetReviewReportRequest(version_id=ID),
        miniapps.GetReviewReportRequest(),
        {"version_id": "REQUIRED"},
    ),
    "MiniAppsService/ListReviewQueue": (
        miniapps.ListReviewQueueRequest(),
        miniapps.ListReviewQueueRequest(page_size=-1),
        {"page_size": "OUT_OF_RANGE"},
    ),
    "MiniAppsService/ApproveVersion": (
        miniapps.ApproveVersionRequest(version_id=ID, note="fine", request_id=KEY),
        miniapps.ApproveVersionRequest(version_id=ID, note="n" * 2001, request_id=KEY),
        {"note": "TOO_LONG"},
    ),
    "MiniAppsService/RejectVersion": (
        miniapps.RejectVersionRequest(version_id=ID, reasons=["calls eval"], request_id=KEY),
        miniapps.RejectVersionRequest(
            version_id=ID, reasons=["", "r" * 2001, *["x"] * 19], request_id=KEY
        ),
        {"reasons": "TOO_MANY", "reasons[0]": "REQUIRED", "reasons[1]": "TOO_LONG"},
    ),
    "MiniAppsService/PublishVersion": (
        miniapps.PublishVersionRequest(version_id=ID, request_id=KEY),
        miniapps.PublishVersionRequest(version_id="v", request_id=KEY),
        {"version_id": "MALFORMED_ID"},
    ),
    "MiniAppsService/SuspendMiniApp": (
        miniapps.SuspendMiniAppRequest(mini_app_id=ID, reason="phishing", request_id=KEY),
        miniapps.SuspendMiniAppRequest(mini_app_id=ID, reason=" \t", request_id=KEY),
        {"reason": "REQUIRED"},
    ),
    "MiniAppsService/ReinstateMiniApp": (
        miniapps.ReinstateMiniAppRequest(mini_app_id=ID, request_id=KEY),
        miniapps.ReinstateMiniAppRequest(mini_app_id="m", note="n" * 2001, request_id=KEY),
        {"mini_app_id": "MALFORMED_ID", "note": "TOO_LONG"},
    ),
    "MiniAppsService/ListPublishedMiniApps": (
        miniapps.ListPublishedMiniAppsRequest(category=miniapps.CATEGORY_FOOD, query="bills"),
        miniapps.ListPublishedMiniAppsRequest(category=42, query="x" * 101, page_size=-1),
        {"category": "UNKNOWN_ENUM_VALUE", "query": "TOO_LONG", "page_size": "OUT_OF_RANGE"},
    ),
    "MiniAppsService/SetWebhookEndpoint": (
        miniapps.SetWebhookEndpointRequest(
            mini_app_id=ID, url="https://bills.example.com/hook", request_id=KEY
        ),
        miniapps.SetWebhookEndpointRequest(mini_app_id=ID, url="u" * 2049, request_id=KEY),
        {"url": "TOO_LONG"},
    ),
    "MiniAppsService/CreatePaymentRequest": (
        miniapps.CreatePaymentRequestRequest(
            merchant_id=ID,
            amount=Money(currency_code="EUR", amount_minor=1250),
            description="Electricity",
            idempotency_key="bill-1",
        ),
        miniapps.CreatePaymentRequestRequest(
            merchant_id="m",
            amount=Money(currency_code="EUR", amount_minor=0),
            description=" ",
            idempotency_key="",
        ),
        {
            "merchant_id": "MALFORMED_ID",
            "amount.amount_minor": "OUT_OF_RANGE",
            "description": "REQUIRED",
            "idempotency_key": "REQUIRED",
        },
    ),
    "MiniAppsService/GetPaymentRequest": (
        miniapps.GetPaymentRequestRequest(payment_request_id=ID),
        miniapps.GetPaymentRequestRequest(),
        {"payment_request_id": "REQUIRED"},
    ),
    "MiniAppsService/ConfirmPaymentRequest": (
        miniapps.ConfirmPaymentRequestRequest(payment_request_id=ID),
        miniapps.ConfirmPaymentRequestRequest(payment_request_id="p"),
        {"payment_request_id": "MALFORMED_ID"},
    ),
    "MiniAppsService/DeclinePaymentRequest": (
        miniapps.DeclinePaymentRequestRequest(payment_request_id=ID),
        miniapps.DeclinePaymentRequestRequest(payment_request_id=ID.upper()),
        {"payment_request_id": "MALFORMED_ID"},
    ),
}

RULES = ContractRules()
REFERENCE = ContractRules("protovalidate")


def test_every_rpc_has_examples() -> None:
    assert sorted(EXAMPLES) == sorted(METHODS)
    for name, (valid, invalid, _) in EXAMPLES.items():
        request_type = METHODS[name].input_type.full_name
        assert valid.DESCRIPTOR.full_name == request_type, name
        assert invalid is None or invalid.DESCRIPTOR.full_name == request_type, name


@pytest.mark.parametrize("rules", [RULES, REFERENCE], ids=["compiled", "protovalidate"])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_a_valid_request_passes_and_an_invalid_one_names_its_fields(
    method: str, rules: ContractRules
) -> None:
    valid, invalid, expected = EXAMPLES[method]
    assert rules.violations(valid) == []
    if invalid is None:
        # A request with no field can break no rule.
        assert not METHODS[method].input_type.fields
        assert rules.checker(METHODS[method].input_type) is None
        return
    assert {v.field: v.reason for v in rules.violations(invalid)} == expected


def test_descriptions_read_as_they_always_have() -> None:
    said = {
        (v.field, v.description)
        for _, invalid, _ in EXAMPLES.values()
        if invalid is not None
        for v in RULES.violations(invalid)
    }
    assert {
        ("request_id", "is required on every mutation"),
        ("request_id", "must be 1 to 128 printable characters"),
        ("user_id", "must be a UUID in canonical lower-case form"),
        ("email", "must be at most 254 characters"),
        ("display_name", "must not contain control characters"),
        ("roles[0]", "is required"),
        ("roles[1]", "42 is not a known value"),
        ("amount.amount_minor", "must be positive"),
        ("amount.amount_minor", "must be below 1000000000000000"),
        ("amount.currency_code", "must be a current ISO 4217 code such as USD"),
        ("max_price.amount_minor", "may not be negative"),
        ("ttl", "must be positive and at most 7 days"),
        ("ttl", "must be positive and at most 1 hour"),
        ("quantity", "must be from 1 to 1000"),
        ("delta", "must be non-zero and within +/-1,000,000,000"),
        ("page_size", "must not be negative"),
        ("product.title", "is required and may not be only whitespace"),
        ("product.attributes", f"key {'k' * 65!r} must be 1 to 64 characters"),
        ("product.image_urls[0]", "must be an absolute https:// URL"),
        ("unit_price", "is required"),
        ("sha256", "must be 64 lower-case hexadecimal digits"),
        (
            "mini_app.network_domains[0]",
            "must be a lower-case DNS name such as api.example.com or *.example.com",
        ),
        ("reasons", "at most 20"),
        ("granted_scopes", "must not repeat a scope"),
        ("code_challenge", "must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636)"),
    } <= said


def test_a_resource_in_an_update_is_checked_on_the_fields_its_mask_names() -> None:
    product = catalogue.Product(title="", description="d" * 5001, price=Money())
    assert RULES.violations_of(product, at="product", fields=["description"]) == [
        FieldViolation("product.description", "must be at most 5000 characters", "TOO_LONG")
    ]
    named = RULES.violations_of(product, at="product", fields=["title", "price"])
    assert {v.field: v.reason for v in named} == {
        "product.title": "REQUIRED",
        "product.price.amount_minor": "OUT_OF_RANGE",
        "product.price.currency_code": "INVALID_CURRENCY",
    }


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_request_is_checked_without_cel(method: str) -> None:
    # A rule the compiler does not translate would put protovalidate's milliseconds of
    # CEL on every call of the RPC.
    assert RULES.compiles(METHODS[method].input_type)


def test_the_currencies_are_iso_4217_and_the_same_wherever_a_code_is_accepted() -> None:
    listed = wallet.ListTransactionsRequest.DESCRIPTOR.fields_by_name["currency_code"]
    rules: validate_pb2.FieldRules = listed.GetOptions().Extensions[validate_pb2.field]
    assert frozenset(getattr(rules.string, "in")) == currency_codes()
    # Current ISO 4217 codes, minus "no currency" (XXX) and the code reserved for tests (XTS).
    iso_4217 = frozenset(c.alpha_3 for c in pycountry.currencies) - {"XXX", "XTS"}
    assert currency_codes() == iso_4217


@pytest.fixture(scope="module")
def every() -> list[str]:
    """Every code point a string can hold, made once for the module's tests."""
    # Surrogates cannot be in a protobuf string (it is UTF-8).
    return [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]


def _unmatched(pattern: str, characters: list[str]) -> set[str]:
    """The characters `pattern` (one character's worth) does not match, found in one RE2
    pass over all of them, as runs: a call per character would take half a minute."""
    runs = re2.compile(f"(?:{pattern})+").findall("".join(characters))
    return set(characters) - set("".join(runs))


def test_not_blank_is_what_strip_leaves_something_of(every: list[str]) -> None:
    assert _unmatched(NOT_BLANK_PATTERN, every) == {c for c in every if not c.strip()}


def test_printable_is_python_printable_but_for_unassigned_code_points(every: list[str]) -> None:
    # RE2 has no class for unassigned code points (Cn), which isprintable() refuses:
    # the contract lets them through rather than hold a list of every assigned range.
    one = PRINTABLE_PATTERN.removeprefix("^").removesuffix("*$")  # `(?:[^...]| )`
    differ = _unmatched(one, every) ^ {c for c in every if not c.isprintable()}
    assert {unicodedata.category(c) for c in differ} <= {"Cn"}


def _patterns(descriptor: Descriptor, seen: set[str]) -> set[str]:
    """Every `string.pattern` of `descriptor`'s fields and of the messages they hold."""
    if descriptor.full_name in seen:
        return set()
    seen.add(descriptor.full_name)
    found: set[str] = set()
    for field in descriptor.fields:
        options = field.GetOptions()
        if options.HasExtension(validate_pb2.field):
            rules = options.Extensions[validate_pb2.field]
            for strings in (rules.string, rules.repeated.items.string, rules.map.keys.string):
                if strings.pattern:
                    found.add(strings.pattern)
        if field.message_type is not None:
            found |= _patterns(field.message_type, seen)
    return found


PATTERNS = sorted(set().union(*(_patterns(m.input_type, set()) for m in METHODS.values())))


def test_the_patterns_are_those_the_descriptions_know() -> None:
    assert {UUID_PATTERN, PRINTABLE_PATTERN, NOT_BLANK_PATTERN, HTTPS_PATTERN} <= set(PATTERNS)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_patterns_are_matched_as_re2_matches_them(pattern: str) -> None:
    # The compiled checks match with Python's re where it reads the pattern as RE2 does
    # (much faster than google-re2 from Python); RE2 is the reference.
    broken, search = pattern_matcher(pattern), re2.compile(pattern).search
    short = [a + b for a in ["", *_ASCII_CHARS] for b in ["", *_ASCII_CHARS]]
    assert [s for s in short if broken(s) != (search(s) is None)] == []

    @settings(max_examples=300, deadline=None, database=None)
    @given(
        st.one_of(
            st.text(st.characters(exclude_categories=["Cs"])),
            st.text(st.characters(max_codepoint=127)),
            st.uuids().map(lambda u: str(u) + "\n"),
        )
    )
    def agree(value: str) -> None:
        assert broken(value) == (search(value) is None)

    agree()


_ASCII_CHARS = [chr(code) for code in range(128)]


# ---- The compiled rules agree with protovalidate --------------------------------------

_WHITESPACE = " \t\n\x0b\x1c\x85\xa0\u1680\u2000\u2028\u2029\u3000"


def _strings(rules: validate_pb2.StringRules) -> st.SearchStrategy[str]:
    """Strings that keep the rules (half the time), near each of their limits, and any
    text."""
    longest = rules.max_len if rules.HasField("max_len") else 8
    special: list[str] = ["", "x", "a" * longest, "a" * (longest + 1), "é" * (longest + 1)]
    if rules.HasField("min_len"):
        special += ["a" * max(0, rules.min_len - 1), "a" * rules.min_len]
    if rules.pattern:
        special += ["https://img.example.com/a.jpg", "http://x", "https://", "bell\a", "\u200b"]
        special += [ID.upper(), ID + "0", ID.replace("-", ""), " " + ID, " \u00a0\u3000"]
    kept: st.SearchStrategy[str] = st.sampled_from(["x", "Lamp", "a b", "é"])
    allowed = list(getattr(rules, "in"))
    if allowed:
        kept = st.sampled_from(allowed)
        special += ["eur", "EURO", "XXX", "ABC"]
    elif rules.pattern == UUID_PATTERN:
        kept = st.uuids().map(str)
    elif rules.pattern == HTTPS_PATTERN:
        kept = st.sampled_from(["https://img.example.com/a.jpg", "https://x"])
    anything = st.one_of(
        st.sampled_from(special),
        st.text(st.characters(exclude_categories=["Cs"]), max_size=min(longest + 2, 40)),
        st.text(st.sampled_from(_WHITESPACE), max_size=4),
    )
    return st.one_of(kept, anything)


def _integers(rules: Any, bits: int) -> st.SearchStrategy[int]:
    """Integers at and beside each bound of `rules`, and any of the type."""
    bounds = [0]
    for name in ("gt", "gte", "lt", "lte"):
        if rules.HasField(name):
            bounds.append(getattr(rules, name))
    near = sorted({b + d for b in bounds for d in (-1, 0, 1)})
    top = 2 ** (bits - 1)
    return st.one_of(st.sampled_from(near), st.integers(-top, top - 1))


def _durations(rules: validate_pb2.DurationRules) -> st.SearchStrategy[duration_pb2.Duration]:
    seconds = [0, 1, -1, 3600, 3601, 604800, 604801]
    if rules.HasField("lte"):
        seconds += [rules.lte.seconds - 1, rules.lte.seconds, rules.lte.seconds + 1]
    return st.builds(
        duration_pb2.Duration,
        seconds=st.one_of(st.sampled_from(seconds), st.integers(-(10**7), 10**7)),
        nanos=st.sampled_from([0, 0, 1, 999_999_999]),
    )


def _scalars(field: FieldDescriptor, rules: validate_pb2.FieldRules) -> st.SearchStrategy[Any]:
    """Values of one (non-repeated) field, or of one item of a list."""
    if field.message_type is not None:
        if field.message_type.full_name == "google.protobuf.Duration":
            return _durations(rules.duration)
        if field.message_type.full_name == "google.protobuf.Timestamp":
            # Valid ones only: cel-python cannot represent a time outside years 1-9999 and
            # protovalidate then raises, on an output-only field it has no rule for.
            return st.builds(
                timestamp_pb2.Timestamp,
                seconds=st.integers(-62_135_596_800, 253_402_300_799),
                nanos=st.integers(0, 999_999_999),
            )
        return _messages(field.message_type)
    if field.type == FieldDescriptor.TYPE_STRING:
        return _strings(rules.string)
    if field.enum_type is not None:
        known = sorted(field.enum_type.values_by_number)
        return st.one_of(st.sampled_from(known), st.integers(-3, max(known) + 3))
    if field.type == FieldDescriptor.TYPE_INT32:
        return _integers(rules.int32, 32)
    if field.type == FieldDescriptor.TYPE_INT64:
        return _integers(rules.int64, 64)
    if field.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if field.type == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=16)
    if field.type == FieldDescriptor.TYPE_DOUBLE:
        return st.floats(allow_nan=False)
    raise AssertionError(f"no strategy for {field.full_name}")


def _field_values(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    options = field.GetOptions()
    rules = (
        options.Extensions[validate_pb2.field]
        if options.HasExtension(validate_pb2.field)
        else validate_pb2.FieldRules()
    )
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        most = rules.map.max_pairs if rules.map.HasField("max_pairs") else 3
        keys = _strings(rules.map.keys.string)
        values = _scalars(entry.fields_by_name["value"], rules.map.values)
        return st.one_of(
            st.dictionaries(keys, values, max_size=3),
            st.dictionaries(st.text(max_size=6), values, min_size=most, max_size=most + 1),
        )
    if field.is_repeated:
        most = rules.repeated.max_items if rules.repeated.HasField("max_items") else 3
        items = _scalars(field, rules.repeated.items)
        return st.one_of(
            st.lists(items, max_size=3), st.lists(items, min_size=most, max_size=most + 1)
        )
    return _scalars(field, rules)


_BUILDING: set[str] = set()


def _messages(descriptor: Descriptor) -> st.SearchStrategy[Message]:
    """Messages of `descriptor` whose fields each keep their rules, are near a limit of
    them, or are unset."""
    make = message_factory.GetMessageClass(descriptor)
    if descriptor.full_name in _BUILDING:  # a message that holds itself: leave it unset
        return st.just(make())
    _BUILDING.add(descriptor.full_name)
    try:
        optional = {field.name: _field_values(field) for field in descriptor.fields}
    finally:
        _BUILDING.discard(descriptor.full_name)

    def build(values: Mapping[str, Any]) -> Message:
        message = make()
        for name, value in values.items():
            field = descriptor.fields_by_name[name]
            target = getattr(message, name) if field.is_repeated else None
            if isinstance(value, dict):
                for key, item in value.items():
                    if isinstance(item, Message):
                        target[key].CopyFrom(item)  # type: ignore[index]
                    else:
                        target[key] = item  # type: ignore[index]
            elif isinstance(value, list):
                target.extend(value)  # type: ignore[union-attr]
            elif isinstance(value, Message):
                getattr(message, name).CopyFrom(value)
            else:
                setattr(message, name, value)
        return message

    # Every field set (most requests that keep their rules are), or any of them.
    return st.one_of(
        st.fixed_dictionaries(optional), st.fixed_dictionaries({}, optional=optional)
    ).map(build)


def _found(violations: list[RuleViolation]) -> Counter[tuple[object, ...]]:
    # Which rules, where: the messages of standard rules are each engine's own wording
    # (ours are never shown: the field violations' descriptions are compared below).
    return Counter(
        (tuple((e.name, e.subscript) for e in v.path), v.rule_id, v.for_key) for v in violations
    )


@pytest.mark.parametrize("method", sorted(METHODS))
def test_compiled_rules_agree_with_protovalidate(method: str) -> None:
    input_type = METHODS[method].input_type

    @settings(
        max_examples=50,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(_messages(input_type))
    def agree(request: Message) -> None:
        # protovalidate's CEL is most of this module's time: it runs once per request,
        # and its rule violations are described as `REFERENCE.violations` describes them.
        reference = REFERENCE.rule_violations(request)
        assert _found(RULES.rule_violations(request)) == _found(reference), request
        violations = RULES.violations(request)
        described = [field_violation(input_type, request, v) for v in reference]
        assert Counter(violations) == Counter(described)
        # Every rule of the contract reads as one of our reasons, never the fallback.
        assert "INVALID_FIELD" not in {v.reason for v in violations}

    agree()
