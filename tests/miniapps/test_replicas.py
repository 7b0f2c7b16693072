"""Two miniapps processes on one database share the checks: every submitted version is
checked and concluded exactly once, whichever replica took its event or its claim."""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlalchemy import func, select
from superapp.miniapps.v1 import events_pb2
from superapp.miniapps.v1 import miniapps_service_pb2 as pb

from services.database import Database
from services.miniapps.models import REVIEW_REPORTS
from services.runtime.ids import new_id
from tests.miniapps.conftest import Platform, good_bundle_files, zip_bundle
from tests.miniapps.test_lifecycle import _settled


async def test_replicas_conclude_each_version_once(platform: Platform) -> None:
    _, developer = await platform.developer()
    app = (await platform.registered(developer)).mini_app
    async with platform.replica() as replica:
        versions = [
            await platform.uploaded(
                developer, app.mini_app_id, zip_bundle(good_bundle_files(f"1.0.{n}"))
            )
            for n in range(6)
        ]
        # Submitted half through each replica.
        for index, version in enumerate(versions):
            stub = replica if index % 2 else platform.stub
            await stub.SubmitVersion(
                pb.SubmitVersionRequest(version_id=version.version_id, request_id=new_id()),
                metadata=developer,
            )
        settled = await asyncio.wait_for(
            asyncio.gather(*(_settled(platform, v.version_id, developer) for v in versions)), 90
        )
    assert {version.state for version in settled} == {pb.VERSION_STATE_IN_REVIEW}
    assert [v.manifest_version for v in settled] == [f"1.0.{n}" for n in range(6)]
    moves = Counter(
        (event.version.version_id, event.version.state)
        for event in map(
            events_pb2.VersionStateChanged.FromString,
            await platform.events("superapp.miniapps.version.state_changed"),
        )
    )
    for version in versions:
        for state in (pb.VERSION_STATE_CHECKING, pb.VERSION_STATE_IN_REVIEW):
            assert moves[version.version_id, state] == 1
    database = Database.connect(platform.settings.database_url)
    try:
        async with database.read() as session:
            reports = await session.scalar(select(func.count()).select_from(REVIEW_REPORTS))
    finally:
        await database.dispose()
    assert reports == len(versions)
