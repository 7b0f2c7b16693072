"""Signing-key files of identity versions that kept their keys in `IDENTITY_KEYS_DIR`.

Read once, by the first start that finds identity's `signing_keys` table empty, so the
tokens of a running deployment stay valid across the upgrade. One JSON file per key,
`key-<generation, 8 digits>.json`: the private key (PKCS#8 PEM), its `kid` and when it
became the signing key. Nothing here writes or deletes files.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.identity.signing_keys import SigningKey, SigningKeyError

__all__ = ["KeyFileError", "KeyFiles"]

_FILE_NAME = re.compile(r"key-(\d{8})\.json")


class KeyFileError(SigningKeyError):
    """A key file that cannot be read or is malformed; the message names it."""


@dataclass(frozen=True)
class KeyFiles:
    """The key files in `directory`, if it exists."""

    directory: Path

    def read(self) -> list[SigningKey]:
        """Every key in the directory by generation; none if there is no directory.

        KeyFileError names the file that cannot be read or is malformed: importing
        some keys of a deployment and not others would refuse some of its tokens.
        """
        try:
            paths = sorted(p for p in self.directory.iterdir() if _FILE_NAME.fullmatch(p.name))
        except FileNotFoundError:
            return []
        except OSError as error:
            raise KeyFileError(f"{self.directory}: cannot list key files: {error}") from None
        return [_load(path) for path in paths]


def _load(path: Path) -> SigningKey:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise KeyFileError(f"{path}: cannot read key file: {error}") from None
    try:
        private_key = serialization.load_pem_private_key(
            document["private_key"].encode("ascii"), password=None
        )
        activate_time = datetime.fromisoformat(document["activate_time"])
        if not isinstance(private_key, Ed25519PrivateKey) or activate_time.tzinfo is None:
            raise ValueError("not an Ed25519 key with a time-zone-aware activation time")
        generation = int(path.name.removeprefix("key-").removesuffix(".json"))
        key = SigningKey.from_private_key(generation, private_key, activate_time)
        if key.kid != document["kid"]:
            raise ValueError("kid does not match the key")
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise KeyFileError(f"{path}: malformed key file: {error}") from None
    return key
