"""The sample mini-app's backend, reduced to what OAuth asks of it: redeem the one-time
code the shell sent to its redirect URI for a mini-app access token (RFC 6749 §4.1.3 with
PKCE), authenticating with its client id and secret (HTTP Basic: client_secret_basic).

    python examples/pay-a-bill/backend.py --bff http://127.0.0.1:8080 \\
        --client-id mac_... --client-secret mas_... \\
        --redirect-uri https://bills.example.com/callback \\
        --code CODE --code-verifier VERIFIER

`pkce_pair()` makes the verifier and the S256 challenge the consent is asked with. Only
the standard library and httpx: a real backend would use its OAuth client library.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import sys
from typing import Any

import httpx

__all__ = ["exchange_code", "pkce_pair"]


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bff", required=True, help="the BFF's base URL")
    for name in ("client-id", "client-secret", "redirect-uri", "code", "code-verifier"):
        parser.add_argument(f"--{name}", required=True)
    args = parser.parse_args()
    with httpx.Client(base_url=args.bff, timeout=10.0) as http:
        try:
            token = exchange_code(
                http,
                client_id=args.client_id,
                client_secret=args.client_secret,
                code=args.code,
                redirect_uri=args.redirect_uri,
                code_verifier=args.code_verifier,
            )
        except httpx.HTTPStatusError as error:
            sys.exit(f"token endpoint refused: {error.response.status_code} {error.response.text}")
    json.dump(token, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
