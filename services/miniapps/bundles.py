"""Content-addressed bundle storage in the service's own database.

A bundle is stored once per distinct content, under its SHA-256; versions refer to it,
so two versions with identical bytes share one row. Every replica reads the same
database, which is why it lives there rather than on a replica's disk: fine up to the
contract's 8 MiB per bundle (PostgreSQL's bytea holds up to 1 GiB, SQLite's blobs
1 GB by default); an object store would take over beyond that.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import zipfile
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.caller import Caller
from services.database import Database
from services.database.insert_if_absent import insert_if_absent
from services.miniapps.access import is_staff
from services.miniapps.models import BUNDLES, MINI_APPS, VERSIONS
from services.miniapps.records import AppStatus, VersionState
from services.runtime.clock import Clock
from services.runtime.errors import FieldViolation, InvalidArgument, NotFound

__all__ = [
    "BUNDLE_MAX_BYTES",
    "RECEIVE_MAX_BYTES",
    "Bundle",
    "BundleStore",
    "Digests",
    "bundle_not_found",
    "check_bundle",
    "digests_of",
    "sri_of",
]

BUNDLE_MAX_BYTES = 8 * 1024 * 1024
"""The largest bundle the contract accepts (8 MiB)."""
RECEIVE_MAX_BYTES = BUNDLE_MAX_BYTES + 64 * 1024
"""The server's receive limit: a bundle plus room for the request's other fields."""

_B, _V, _A = BUNDLES.c, VERSIONS.c, MINI_APPS.c


@dataclass(frozen=True, slots=True)
class Digests:
    """A bundle's address and integrity value."""

    sha256: str
    integrity: str
    size_bytes: int


@dataclass(frozen=True, slots=True)
class Bundle:
    """A stored bundle's bytes and how a browser checks them."""

    sha256: str
    integrity: str
    content: bytes


def sri_of(content: bytes) -> str:
    """The Subresource Integrity value of `content`: `sha384-` and its base64 digest."""
    return "sha384-" + base64.b64encode(hashlib.sha384(content).digest()).decode("ascii")


def digests_of(content: bytes) -> Digests:
    """The address and integrity value of `content`."""
    return Digests(hashlib.sha256(content).hexdigest(), sri_of(content), len(content))


def check_bundle(content: bytes, field: str = "bundle") -> None:
    """INVALID_ARGUMENT unless `content` is a zip archive within the size limit.

    Only that: what the archive holds is the automated checks' business, on submission.
    """
    if not content:
        raise InvalidArgument([FieldViolation(field, "is required", "REQUIRED")])
    if len(content) > BUNDLE_MAX_BYTES:
        error = InvalidArgument(
            [FieldViolation(field, f"must be at most {BUNDLE_MAX_BYTES} bytes", "TOO_LARGE")],
            reason="BUNDLE_TOO_LARGE",
        )
        error.metadata["limit_bytes"] = str(BUNDLE_MAX_BYTES)
        raise error
    if not zipfile.is_zipfile(io.BytesIO(content)):
        raise InvalidArgument([FieldViolation(field, "is not a zip archive", "NOT_A_ZIP")])


def bundle_not_found(sha256: str) -> NotFound:
    """The one answer for a missing bundle and one the caller may not read."""
    return NotFound("BUNDLE_NOT_FOUND", "no such bundle", metadata={"sha256": sha256})


_CONTENT = select(_B.integrity, _B.content).where(_B.sha256 == bindparam("sha256"))


class BundleStore:
    """Stores bundles by content and reads them back to whoever may see a version of them."""

    def __init__(self, database: Database, clock: Clock) -> None:
        self._database = database
        self._clock = clock

    @staticmethod
    async def digest(content: bytes) -> Digests:
        """`digests_of` off the event loop: hashing 8 MiB takes tens of milliseconds."""
        return await asyncio.to_thread(digests_of, content)

    async def put(self, session: AsyncSession, content: bytes, digests: Digests) -> None:
        """Store `content` under its digests unless an identical bundle is there already."""
        await session.execute(
            insert_if_absent(self._database, BUNDLES).values(
                sha256=digests.sha256,
                integrity=digests.integrity,
                size_bytes=digests.size_bytes,
                content=content,
                create_time=self._clock.now(),
            )
        )

    async def read(self, caller: Caller, sha256: str) -> Bundle:
        """The bundle if `caller` may see a version made of it; NOT_FOUND otherwise."""
        visible = exists().where(_V.bundle_sha256 == sha256, _V.mini_app_id == _A.mini_app_id)
        if not is_staff(caller):
            visible = visible.where(
                or_(
                    _A.developer_id == caller.user_id,
                    and_(
                        _V.state == VersionState.PUBLISHED.value,
                        _A.status == AppStatus.ACTIVE.value,
                    ),
                )
            )
        async with self._database.read() as session:
            allowed = await session.scalar(select(visible))
            row = (await session.execute(_CONTENT, {"sha256": sha256})).first() if allowed else None
        if row is None:
            raise bundle_not_found(sha256)
        return Bundle(sha256, row.integrity, bytes(row.content))
