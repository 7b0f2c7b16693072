"""The sample mini-app's backend, reduced to what the platform asks of it:

- redeem the one-time code the shell sent to its redirect URI for a mini-app access token
  (RFC 6749 §4.1.3 with PKCE), authenticating with its client id and secret (HTTP Basic:
  client_secret_basic);
- with that token (scope `wallet.pay`), ask the user to pay a bill, and look the payment
  request up later;
- take in the platform's signed webhook events: check the signature (HMAC-SHA256 over
  the timestamp and the body, refusing old ones) and act on each event id once.

    python examples/pay-a-bill/backend.py token --bff http://127.0.0.1:8080 \\
        --client-id ma_... --client-secret mas_... \\
        --redirect-uri https://bills.example.com/callback \\
        --code CODE --code-verifier VERIFIER
    python examples/pay-a-bill/backend.py ask --bff ... --token TOKEN \\
        --merchant-id MERCHANT --amount-minor 1250 --currency EUR \\
        --description "Electricity, November" --key bill-2026-11
    python examples/pay-a-bill/backend.py status --bff ... --token TOKEN --id PAYMENT_REQUEST

`pkce_pair()` makes the verifier and the S256 challenge the consent is asked with. Only
the standard library and httpx: a real backend would use its OAuth client library.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import secrets
import sys
import time
from collections.abc import Mapping, MutableSet
from typing import Any

import httpx

__all__ = [
    "BadWebhook",
    "create_payment_request",
    "exchange_code",
    "get_payment_request",
    "pkce_pair",
    "receive_webhook",
]

PAYMENT_REQUESTS = "/v1/mini-app-api/payment-requests"
SIGNATURE_HEADER = "Superapp-Signature"
TOLERANCE_SECONDS = 300


def pkce_pair() -> tuple[str, str]:
    """A fresh PKCE code verifier and its S256 challenge (RFC 7636 §4.1-4.2)."""
    verifier = secrets.token_urlsafe(48)  # 64 characters of [A-Za-z0-9_-]
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def exchange_code(
    http: httpx.Client,
    *,
    client_id: str,
    client_secret: str,
    code: str,
    redirect_uri: str,
    code_verifier: str,
) -> dict[str, Any]:
    """The token response (`access_token`, `token_type`, `expires_in`, `scope`); raises
    `httpx.HTTPStatusError` on an OAuth error (its body says which: `{"error": ...}`)."""
    reply = http.post(
        "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        },
        auth=(client_id, client_secret),
    )
    reply.raise_for_status()
    token: dict[str, Any] = reply.json()
    return token


def create_payment_request(
    http: httpx.Client,
    token: str,
    *,
    merchant_id: str,
    amount_minor: int,
    currency_code: str,
    description: str,
    idempotency_key: str,
) -> dict[str, Any]:
    """Ask the user `token` stands for to pay a bill; the payment request (state
    AWAITING_CONFIRMATION until the user confirms it in the app). Retrying with the same
    `idempotency_key` (say, the bill's own id) answers the same request, so a timeout
    is safe to retry. Raises `httpx.HTTPStatusError` (a problem+json body with `reason`)."""
    reply = http.post(
        PAYMENT_REQUESTS,
        json={
            "merchant_id": merchant_id,
            "amount": {"currency_code": currency_code, "amount_minor": amount_minor},
            "description": description,
        },
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": idempotency_key},
    )
    reply.raise_for_status()
    request: dict[str, Any] = reply.json()
    return request


def get_payment_request(http: httpx.Client, token: str, payment_request_id: str) -> dict[str, Any]:
    """The payment request as it stands (poll it if a webhook is late)."""
    reply = http.get(
        f"{PAYMENT_REQUESTS}/{payment_request_id}", headers={"Authorization": f"Bearer {token}"}
    )
    reply.raise_for_status()
    request: dict[str, Any] = reply.json()
    return request


class BadWebhook(ValueError):
    """Not a delivery of the platform's, or one too old: answer it 401 and ignore it."""


def receive_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    seen: MutableSet[str],
    *,
    now: float | None = None,
) -> dict[str, Any] | None:
    """The event a webhook POST carries, once: None when its id is in `seen` already
    (a redelivery: answer 2xx and do nothing), `BadWebhook` when the signature does not
    hold. `secret` is the endpoint's signing secret (`whsec_...`); `headers` are matched
    case-insensitively. Keep `seen` where the effect is recorded, in the same transaction."""
    header = next(
        (value for name, value in headers.items() if name.lower() == SIGNATURE_HEADER.lower()),
        "",
    )
    stamp, candidates = "", []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            stamp = value
        elif key == "v1":
            candidates.append(value)
    if not stamp.isdigit() or not candidates:
        raise BadWebhook("no timestamp or no v1 signature")
    if abs((time.time() if now is None else now) - int(stamp)) > TOLERANCE_SECONDS:
        raise BadWebhook("the delivery is too old (or the clocks disagree)")
    expected = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
    if not any(hmac.compare_digest(expected.hexdigest(), given) for given in candidates):
        raise BadWebhook("the signature does not match")
    event: dict[str, Any] = json.loads(body)
    if event["event_id"] in seen:
        return None
    seen.add(event["event_id"])
    return event


def _token(args: argparse.Namespace, http: httpx.Client) -> dict[str, Any]:
    return exchange_code(
        http,
        client_id=args.client_id,
        client_secret=args.client_secret,
        code=args.code,
        redirect_uri=args.redirect_uri,
        code_verifier=args.code_verifier,
    )


def _ask(args: argparse.Namespace, http: httpx.Client) -> dict[str, Any]:
    return create_payment_request(
        http,
        args.token,
        merchant_id=args.merchant_id,
        amount_minor=args.amount_minor,
        currency_code=args.currency,
        description=args.description,
        idempotency_key=args.key,
    )


def _status(args: argparse.Namespace, http: httpx.Client) -> dict[str, Any]:
    return get_payment_request(http, args.token, args.id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    token = commands.add_parser("token", help="redeem a code for a mini-app token")
    for name in ("client-id", "client-secret", "redirect-uri", "code", "code-verifier"):
        token.add_argument(f"--{name}", required=True)
    token.set_defaults(run=_token)
    ask = commands.add_parser("ask", help="ask the user to pay (scope wallet.pay)")
    for name in ("token", "merchant-id", "description", "key"):
        ask.add_argument(f"--{name}", required=True)
    ask.add_argument("--amount-minor", type=int, required=True)
    ask.add_argument("--currency", default="EUR")
    ask.set_defaults(run=_ask)
    status = commands.add_parser("status", help="a payment request as it stands")
    status.add_argument("--token", required=True)
    status.add_argument("--id", required=True)
    status.set_defaults(run=_status)
    for command in (token, ask, status):
        command.add_argument("--bff", required=True, help="the BFF's base URL")
    args = parser.parse_args()
    with httpx.Client(base_url=args.bff, timeout=10.0) as http:
        try:
            answer = args.run(args, http)
        except httpx.HTTPStatusError as error:
            sys.exit(f"refused: {error.response.status_code} {error.response.text}")
    json.dump(answer, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
