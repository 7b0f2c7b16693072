"""The webhook signature: what a mini-app's receiver checks."""

from __future__ import annotations

import pytest

from services.miniapps.webhook_signature import BadSignature, signature_header, verify

SECRET = "whsec_test"
BODY = b'{"event_id":"e1"}'


def test_a_signed_body_verifies_and_gives_its_timestamp() -> None:
    header = signature_header(SECRET, 1_800_000_000, BODY)
    assert header.startswith("t=1800000000,v1=")
    assert verify(header, SECRET, BODY, now=1_800_000_010) == 1_800_000_000


@pytest.mark.parametrize(
    ("header", "secret", "body", "now"),
    [
        (
            signature_header(SECRET, 1_800_000_000, BODY),
            SECRET,
            b'{"event_id":"e2"}',
            1_800_000_000,
        ),
        (signature_header(SECRET, 1_800_000_000, BODY), "whsec_other", BODY, 1_800_000_000),
        (signature_header(SECRET, 1_800_000_000, BODY), SECRET, BODY, 1_800_000_301),
        ("v1=" + "0" * 64, SECRET, BODY, 1_800_000_000),
        ("t=1800000000", SECRET, BODY, 1_800_000_000),
        ("", SECRET, BODY, 1_800_000_000),
    ],
    ids=["other-body", "other-secret", "too-old", "no-timestamp", "no-signature", "empty"],
)
def test_a_changed_body_secret_or_an_old_or_malformed_header_is_refused(
    header: str, secret: str, body: bytes, now: int
) -> None:
    with pytest.raises(BadSignature):
        verify(header, secret, body, now=now)


def test_a_redated_delivery_does_not_verify() -> None:
    header = signature_header(SECRET, 1_800_000_000, BODY)
    redated = header.replace("t=1800000000", "t=1800000100")
    with pytest.raises(BadSignature):
        verify(redated, SECRET, BODY, now=1_800_000_100)
