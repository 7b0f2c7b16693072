"""Identity's signing keys on disk: private, persistent, shared between processes, rotated."""

from __future__ import annotations

import json
import os
import stat
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from services.identity.signing_keys import SigningKeyError, SigningKeys, jwk_thumbprint
from tests.auth.conftest import RETIRE_AFTER, FakeClock


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _open(directory: Path, clock: FakeClock) -> SigningKeys:
    return SigningKeys(directory, clock=clock, retire_after=RETIRE_AFTER)


def test_first_start_makes_a_private_directory_and_key_file(
    tmp_path: Path, clock: FakeClock
) -> None:
    old_umask = os.umask(0o022)
    try:
        keys = _open(tmp_path / "data" / "identity-keys", clock)
    finally:
        os.umask(old_umask)
    files = list(keys.directory.iterdir())
    assert [file.name for file in files] == ["key-00000001.json"]
    assert _mode(keys.directory) == 0o700
    assert _mode(files[0]) == 0o600


def test_a_too_open_directory_and_key_file_are_tightened(tmp_path: Path, clock: FakeClock) -> None:
    directory = tmp_path / "keys"
    _open(directory, clock)
    directory.chmod(0o755)
    (directory / "key-00000001.json").chmod(0o644)
    _open(directory, clock)
    assert _mode(directory) == 0o700
    assert _mode(directory / "key-00000001.json") == 0o600


def test_the_key_survives_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    first = _open(tmp_path / "keys", clock).active()
    again = _open(tmp_path / "keys", clock).active()
    assert again.kid == first.kid
    assert again.jwk == first.jwk


def test_kid_is_the_rfc7638_thumbprint() -> None:
    # RFC 8037 appendix A.3: the thumbprint of the appendix A.2 public key.
    x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    assert jwk_thumbprint(x) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_jwks_publishes_public_keys_only(keys: SigningKeys) -> None:
    [jwk] = keys.jwks()
    assert set(jwk) == {"kty", "crv", "x", "kid", "alg", "use"}
    assert jwk | {"x": "", "kid": ""} == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": "",
        "kid": "",
        "alg": "EdDSA",
        "use": "sig",
    }
    assert jwk["kid"] == jwk_thumbprint(jwk["x"])
    assert len(jwk["x"]) == 43  # 32 bytes, base64url without padding


def test_rotation_keeps_the_old_key_published_until_its_tokens_expired(
    keys: SigningKeys, clock: FakeClock
) -> None:
    old = keys.active()
    new = keys.rotate()
    assert new.kid != old.kid
    assert keys.active().kid == new.kid
    assert {jwk["kid"] for jwk in keys.jwks()} == {old.kid, new.kid}
    clock.advance(RETIRE_AFTER - RETIRE_AFTER / 100)
    assert {jwk["kid"] for jwk in keys.jwks()} == {old.kid, new.kid}
    clock.advance(RETIRE_AFTER / 100)
    assert [jwk["kid"] for jwk in keys.jwks()] == [new.kid]
    assert [file.name for file in keys.directory.iterdir()] == ["key-00000002.json"]


def test_another_process_sees_a_rotation_at_once(tmp_path: Path, clock: FakeClock) -> None:
    one, two = _open(tmp_path / "keys", clock), _open(tmp_path / "keys", clock)
    rotated = one.rotate()
    assert two.active().kid == rotated.kid
    assert len(two.jwks()) == 2


@pytest.mark.parametrize("attempt", range(20))
def test_two_processes_starting_at_once_share_one_key(
    tmp_path: Path, clock: FakeClock, attempt: int
) -> None:
    directory = tmp_path / "keys"
    start = threading.Barrier(2)
    opened: list[SigningKeys] = []

    def open_keys() -> None:
        start.wait()
        opened.append(_open(directory, clock))

    threads = [threading.Thread(target=open_keys) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(opened) == 2
    assert opened[0].active().kid == opened[1].active().kid
    assert [file.name for file in directory.iterdir()] == ["key-00000001.json"]


def test_concurrent_rotations_agree_on_the_winner(tmp_path: Path, clock: FakeClock) -> None:
    one, two = _open(tmp_path / "keys", clock), _open(tmp_path / "keys", clock)
    start = threading.Barrier(2)
    rotated: list[str] = []

    def rotate(keys: SigningKeys) -> None:
        start.wait()
        rotated.append(keys.rotate().kid)

    threads = [threading.Thread(target=rotate, args=(keys,)) for keys in (one, two)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert rotated[0] == rotated[1] == one.active().kid == two.active().kid
    assert len(one.jwks()) == 2


def test_a_corrupt_key_file_stops_the_start(tmp_path: Path, clock: FakeClock) -> None:
    directory = tmp_path / "keys"
    _open(directory, clock)
    path = directory / "key-00000001.json"
    document = json.loads(path.read_text())
    document["kid"] = "someone-elses-kid"
    path.write_text(json.dumps(document))
    with pytest.raises(SigningKeyError, match=r"key-00000001\.json: malformed key file"):
        _open(directory, clock)
    path.write_text("{not json")
    with pytest.raises(SigningKeyError, match="cannot read key file"):
        _open(directory, clock)


def test_a_rotation_can_be_announced_before_the_key_signs(
    keys: SigningKeys, clock: FakeClock
) -> None:
    old = keys.active()
    new = keys.rotate(activate_in=timedelta(minutes=11))
    assert {jwk["kid"] for jwk in keys.jwks()} == {old.kid, new.kid}
    assert keys.active().kid == old.kid
    clock.advance(timedelta(minutes=11))
    assert keys.active().kid == new.kid
    clock.advance(RETIRE_AFTER)
    assert [jwk["kid"] for jwk in keys.jwks()] == [new.kid]
