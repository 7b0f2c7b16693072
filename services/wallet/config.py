"""Wallet's settings, from `WALLET_*` environment variables."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from services.runtime.settings import Port, ServiceSettings

__all__ = ["WalletSettings"]

_MONEY_BOUND = 10**15
MinorUnits = Annotated[int, Field(gt=0, lt=_MONEY_BOUND)]


class WalletSettings(ServiceSettings):
    """Settings of the wallet service."""

    model_config = SettingsConfigDict(env_prefix="WALLET_", frozen=True, extra="ignore")

    port: Port = 7102
    transfer_limit_minor: MinorUnits = 1_000_000
    """Largest single transfer or hold, in minor units, for currencies not in `transfer_limits`."""
    transfer_limits: dict[str, MinorUnits] = {}
    """Per-currency overrides of `transfer_limit_minor`, as JSON: `{"JPY": 1500000}`."""
    hold_sweep_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    """How often expired holds are released (reads and debits account for them at once)."""
    write_batch_max: Annotated[int, Field(ge=1, le=10_000)] = 256
    """Most ledger commands committed in one database transaction."""

    @field_validator("transfer_limits")
    @classmethod
    def _iso_codes(cls, limits: dict[str, int]) -> dict[str, int]:
        for code in limits:
            if len(code) != 3 or not code.isascii() or not code.isupper():
                raise ValueError(f"{code!r} is not an ISO 4217 currency code")
        return limits

    def transfer_limit(self, currency_code: str) -> int:
        """The per-transfer limit in force for `currency_code`."""
        return self.transfer_limits.get(currency_code, self.transfer_limit_minor)
