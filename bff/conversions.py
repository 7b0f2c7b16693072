"""Proto messages from the services → the JSON models of `bff.schemas`, and back."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp
from superapp.catalogue.v1 import catalogue_service_pb2 as catalogue_pb
from superapp.identity.v1 import identity_service_pb2 as identity_pb
from superapp.miniapps.v1 import miniapps_service_pb2 as miniapps_pb
from superapp.orders.v1 import orders_service_pb2 as orders_pb
from superapp.type.v1 import money_pb2
from superapp.wallet.v1 import wallet_service_pb2 as wallet_pb

from bff import schemas

__all__ = [
    "category",
    "consent",
    "grant",
    "mini_app",
    "mini_app_category",
    "money",
    "money_proto",
    "order",
    "product",
    "review_report",
    "stock",
    "tokens",
    "transaction",
    "user",
    "version",
    "wallet",
]


def _time(stamp: Timestamp, present: bool = True) -> datetime | None:
    if not present or (stamp.seconds == 0 and stamp.nanos == 0):
        return None
    return stamp.ToDatetime(tzinfo=UTC)


def _required_time(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def _enum_name(full: str, prefix: str) -> str:
    return full.removeprefix(prefix)


def money(value: money_pb2.Money) -> schemas.Money:
    """A Money value as JSON."""
    return schemas.Money(currency_code=value.currency_code, amount_minor=value.amount_minor)


def money_proto(value: schemas.Amount) -> money_pb2.Money:
    """A client's amount as the contracts' Money."""
    return money_pb2.Money(currency_code=value.currency_code, amount_minor=value.amount_minor)


def user(value: identity_pb.User) -> schemas.UserProfile:
    """A user's profile; role names as tokens spell them."""
    return schemas.UserProfile(
        user_id=value.user_id,
        email=value.email,
        display_name=value.display_name,
        roles=[
            _enum_name(identity_pb.Role.Name(role), "ROLE_").lower()
            for role in value.roles
            if role in identity_pb.Role.values()
        ],
        create_time=_required_time(value.create_time),
        update_time=_required_time(value.update_time),
    )


def tokens(value: identity_pb.TokenPair) -> schemas.Tokens:
    """A token pair."""
    return schemas.Tokens(
        access_token=value.access_token,
        access_token_expire_time=_required_time(value.access_token_expire_time),
        refresh_token=value.refresh_token,
        refresh_token_expire_time=_required_time(value.refresh_token_expire_time),
        token_type=value.token_type or "Bearer",
    )


def wallet(value: wallet_pb.Wallet) -> schemas.Wallet:
    """A wallet with its balances."""
    return schemas.Wallet(
        user_id=value.user_id,
        balances=[
            schemas.Balance(
                currency_code=balance.currency_code,
                available_minor=balance.available_minor,
                held_minor=balance.held_minor,
            )
            for balance in value.balances
        ],
        create_time=_time(value.create_time),
    )


def _system_account(value: wallet_pb.SystemAccount.ValueType) -> str:
    if value in wallet_pb.SystemAccount.values():
        return _enum_name(wallet_pb.SystemAccount.Name(value), "SYSTEM_ACCOUNT_")
    return "UNKNOWN"


def transaction(value: wallet_pb.Transaction) -> schemas.Transaction:
    """A transaction from its viewer's side."""
    kind = (
        _enum_name(wallet_pb.TransactionKind.Name(value.kind), "TRANSACTION_KIND_")
        if value.kind in wallet_pb.TransactionKind.values()
        else "UNKNOWN"
    )
    counterparty = value.WhichOneof("counterparty")
    return schemas.Transaction(
        transaction_id=value.transaction_id,
        kind=kind,
        description=value.description,
        create_time=_time(value.create_time),
        amount=money(value.amount),
        counterparty_user_id=value.counterparty_user_id
        if counterparty == "counterparty_user_id"
        else None,
        counterparty_system_account=_system_account(value.counterparty_system_account)
        if counterparty == "counterparty_system_account"
        else None,
        hold_id=value.hold_id or None,
    )


def stock(value: catalogue_pb.Stock) -> schemas.Stock:
    """A stock summary."""
    return schemas.Stock(
        stocked_quantity=value.stocked_quantity,
        reserved_quantity=value.reserved_quantity,
        available_quantity=value.available_quantity,
    )


def product(value: catalogue_pb.Product) -> schemas.Product:
    """A product."""
    status = (
        _enum_name(catalogue_pb.ProductStatus.Name(value.status), "PRODUCT_STATUS_")
        if value.status in catalogue_pb.ProductStatus.values()
        else "UNKNOWN"
    )
    return schemas.Product(
        product_id=value.product_id,
        merchant_id=value.merchant_id,
        title=value.title,
        description=value.description,
        price=money(value.price),
        category_id=value.category_id or None,
        attributes=dict(value.attributes),
        image_urls=list(value.image_urls),
        status=status,
        create_time=_time(value.create_time),
        update_time=_time(value.update_time),
        publish_time=_time(value.publish_time, value.HasField("publish_time")),
        stock=stock(value.stock),
    )


def category(value: catalogue_pb.Category) -> schemas.Category:
    """A category."""
    return schemas.Category(
        category_id=value.category_id,
        name=value.name,
        parent_category_id=value.parent_category_id or None,
        product_count=value.product_count,
        create_time=_time(value.create_time),
    )


def order(value: orders_pb.Order) -> schemas.Order:
    """An order with its items and timeline."""
    first = value.items[0] if value.items else orders_pb.OrderItem()
    return schemas.Order(
        order_id=value.order_id,
        status=_enum_name(orders_pb.OrderStatus.Name(value.status), "ORDER_STATUS_"),
        buyer_id=value.buyer_id,
        merchant_id=value.merchant_id,
        items=[
            schemas.OrderItem(
                product_id=item.product_id,
                title=item.title,
                quantity=item.quantity,
                unit_price=money(item.unit_price),
            )
            for item in value.items
        ],
        product_id=first.product_id,
        quantity=first.quantity,
        amount=money(value.total),
        description=value.description,
        mini_app_id=value.mini_app_id,
        payment_request_id=value.payment_request_id,
        failure_reason=value.failure_reason,
        timeline=[
            schemas.OrderStep(
                name=step.name,
                outcome=_enum_name(orders_pb.StepOutcome.Name(step.outcome), "STEP_OUTCOME_"),
                time=_required_time(step.time),
                reason=step.reason,
                attempt=step.attempt,
            )
            for step in value.timeline
        ],
        attempt=value.attempt,
        reservation_id=value.reservation_id,
        hold_id=value.hold_id,
        transaction_id=value.transaction_id,
        create_time=_time(value.create_time),
        update_time=_time(value.update_time),
    )


def mini_app(value: miniapps_pb.MiniApp) -> schemas.MiniApp:
    """A mini-app of the registry; enums by their names without prefix."""
    return schemas.MiniApp(
        mini_app_id=value.mini_app_id,
        client_id=value.client_id,
        developer_id=value.developer_id,
        name=value.name,
        category=_enum_name(miniapps_pb.Category.Name(value.category), "CATEGORY_"),
        description=value.description,
        icon_url=value.icon_url,
        redirect_uris=list(value.redirect_uris),
        network_domains=list(value.network_domains),
        status=_enum_name(miniapps_pb.MiniAppStatus.Name(value.status), "MINI_APP_STATUS_"),
        published_version_id=value.published_version_id or None,
        suspend_reason=value.suspend_reason or None,
        create_time=_time(value.create_time),
        update_time=_time(value.update_time),
    )


def mini_app_category(value: schemas.MiniAppCategory) -> miniapps_pb.Category.ValueType:
    """A category name as miniapps' enum."""
    return miniapps_pb.Category.Value(f"CATEGORY_{value.value}")


def version(value: miniapps_pb.Version) -> schemas.Version:
    """A version of a mini-app (its bundle by address, not bytes)."""
    return schemas.Version(
        version_id=value.version_id,
        mini_app_id=value.mini_app_id,
        state=_enum_name(miniapps_pb.VersionState.Name(value.state), "VERSION_STATE_"),
        bundle_sha256=value.bundle_sha256,
        bundle_integrity=value.bundle_integrity,
        bundle_size_bytes=value.bundle_size_bytes,
        manifest_version=value.manifest_version or None,
        permissions=list(value.permissions),
        rejection_reasons=list(value.rejection_reasons),
        approval_note=value.approval_note or None,
        reviewer_id=value.reviewer_id or None,
        create_time=_time(value.create_time),
        submit_time=_time(value.submit_time, value.HasField("submit_time")),
        update_time=_time(value.update_time),
    )


def consent(value: identity_pb.AuthorizeMiniAppResponse) -> schemas.Consent:
    """A consent's one-time code, where it goes, and the grant as it now is."""
    return schemas.Consent(
        code=value.code,
        state=value.state,
        redirect_uri=value.redirect_uri,
        expire_time=_time(value.expire_time),
        grant=grant(value.grant),
    )


def grant(value: identity_pb.Grant) -> schemas.Grant:
    """A user's grant to a mini-app."""
    return schemas.Grant(
        grant_id=value.grant_id,
        client_id=value.client_id,
        mini_app_id=value.mini_app_id,
        scopes=list(value.scopes),
        create_time=_time(value.create_time),
        update_time=_time(value.update_time),
    )


def review_report(value: miniapps_pb.ReviewReport) -> schemas.ReviewReport:
    """The automated checks' report, every finding located."""
    return schemas.ReviewReport(
        passed=value.passed,
        findings=[
            schemas.ReviewFinding(file=f.file, line=f.line, rule=f.rule, message=f.message)
            for f in value.findings
        ],
        create_time=_time(value.create_time),
    )
