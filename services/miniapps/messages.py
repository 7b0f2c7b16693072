"""Domain records → contract messages."""

from __future__ import annotations

from superapp.miniapps.v1 import miniapps_service_pb2 as pb
from superapp.type.v1 import money_pb2

from services.miniapps.payment_requests import PaymentRequestRecord
from services.miniapps.records import MiniAppRecord, VersionRecord
from services.runtime.proto_time import to_timestamp

__all__ = ["mini_app_message", "payment_request_message", "version_message", "version_state"]


def version_state(name: str) -> pb.VersionState.ValueType:
    """The proto value of a stored state name."""
    return pb.VersionState.Value(f"VERSION_STATE_{name}")


def mini_app_message(app: MiniAppRecord) -> pb.MiniApp:
    """`app` as the contract's MiniApp."""
    fields = app.fields
    return pb.MiniApp(
        mini_app_id=app.mini_app_id,
        client_id=app.client_id,
        developer_id=app.developer_id,
        name=fields.name,
        category=pb.Category.Value(f"CATEGORY_{fields.category}"),
        description=fields.description,
        icon_url=fields.icon_url,
        redirect_uris=fields.redirect_uris,
        network_domains=fields.network_domains,
        status=pb.MiniAppStatus.Value(f"MINI_APP_STATUS_{app.status}"),
        published_version_id=app.published_version_id or "",
        suspend_reason=app.suspend_reason,
        create_time=to_timestamp(app.create_time),
        update_time=to_timestamp(app.update_time),
    )


def version_message(version: VersionRecord) -> pb.Version:
    """`version` as the contract's Version."""
    message = pb.Version(
        version_id=version.version_id,
        mini_app_id=version.mini_app_id,
        state=version_state(version.state),
        bundle_sha256=version.bundle_sha256,
        bundle_integrity=version.bundle_integrity,
        bundle_size_bytes=version.bundle_size_bytes,
        manifest_version=version.manifest_version,
        permissions=version.permissions,
        rejection_reasons=version.rejection_reasons,
        approval_note=version.approval_note,
        reviewer_id=version.reviewer_id,
        create_time=to_timestamp(version.create_time),
        update_time=to_timestamp(version.update_time),
    )
    if version.submit_time is not None:
        message.submit_time.CopyFrom(to_timestamp(version.submit_time))
    return message


def payment_request_message(record: PaymentRequestRecord) -> pb.PaymentRequest:
    """`record` as the contract's PaymentRequest: the user only by the pairwise subject
    (the user's real id is never part of the message, whoever reads it)."""
    message = pb.PaymentRequest(
        payment_request_id=record.payment_request_id,
        mini_app_id=record.mini_app_id,
        subject=record.subject,
        merchant_id=record.merchant_id,
        amount=money_pb2.Money(
            currency_code=record.currency_code, amount_minor=record.amount_minor
        ),
        description=record.description,
        idempotency_key=record.idempotency_key,
        state=pb.PaymentRequestState.Value(f"PAYMENT_REQUEST_STATE_{record.state.value}"),
        order_id=record.order_id or "",
        failure_reason=record.failure_reason,
        expire_time=to_timestamp(record.expire_time),
        create_time=to_timestamp(record.create_time),
        update_time=to_timestamp(record.update_time),
    )
    if record.confirm_time is not None:
        message.confirm_time.CopyFrom(to_timestamp(record.confirm_time))
    return message
