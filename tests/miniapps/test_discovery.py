"""Discovery and the review queue page with the shared page tokens; the checker takes over
a version whose checker died mid-check."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import delete, update
from superapp.miniapps.v1 import miniapps_service_pb2 as pb

from services.database import Database
from services.miniapps.models import REVIEW_REPORTS, VERSIONS
from services.runtime.ids import new_id
from tests.miniapps.conftest import Metadata, Platform, good_bundle_files, zip_bundle
from tests.miniapps.test_lifecycle import _published, _settled, _submitted
from tests.services.rich_errors import failure


async def test_discovery_pages_newest_publication_first(platform: Platform) -> None:
    _, developer = await platform.developer()
    _, reviewer = await platform.reviewer()
    _, user = await platform.person()
    ids = []
    for n, category in enumerate([pb.CATEGORY_FOOD, pb.CATEGORY_FOOD, pb.CATEGORY_TRAVEL]):
        app = (await platform.registered(developer, name=f"App {n}", category=category)).mini_app
        await _published(platform, developer, reviewer, app.mini_app_id, "1.0.0")
        ids.append(app.mini_app_id)

    async def pages(**filters: object) -> list[str]:
        seen: list[str] = []
        token = ""
        while True:
            reply = await platform.stub.ListPublishedMiniApps(
                pb.ListPublishedMiniAppsRequest(page_size=1, page_token=token, **filters),  # type: ignore[arg-type]
                metadata=user,
            )
            seen += [app.mini_app_id for app in reply.mini_apps]
            token = reply.next_page_token
            if not token:
                return seen

    assert await pages() == ids[::-1]
    assert await pages(category=pb.CATEGORY_FOOD) == ids[1::-1]
    assert await pages(query="app 2") == [ids[2]]
    first = await platform.stub.ListPublishedMiniApps(
        pb.ListPublishedMiniAppsRequest(page_size=1), metadata=user
    )
    # A token continues only the listing it came from.
    other = await failure(
        platform.stub.ListPublishedMiniApps(
            pb.ListPublishedMiniAppsRequest(
                page_size=1, page_token=first.next_page_token, category=pb.CATEGORY_FOOD
            ),
            metadata=user,
        )
    )
    assert other.info.reason == "INVALID_PAGE_TOKEN"
    bad = await failure(
        platform.stub.ListPublishedMiniApps(
            pb.ListPublishedMiniAppsRequest(category=42, query="x" * 101, page_size=-1),
            metadata=user,
        )
    )
    assert bad.violations == {
        "category": "UNKNOWN_ENUM_VALUE",
        "query": "TOO_LONG",
        "page_size": "OUT_OF_RANGE",
    }


async def _in_review(platform: Platform, developer: Metadata, app_id: str) -> str:
    version = await platform.uploaded(developer, app_id, zip_bundle(good_bundle_files()))
    checked = await _submitted(platform, developer, version.version_id)
    assert checked.state == pb.VERSION_STATE_IN_REVIEW
    return version.version_id


async def test_the_review_queue_pages_oldest_submission_first(platform: Platform) -> None:
    _, developer = await platform.developer()
    _, reviewer = await platform.reviewer()
    app = (await platform.registered(developer)).mini_app
    queued = [await _in_review(platform, developer, app.mini_app_id) for _ in range(3)]
    seen: list[str] = []
    token = ""
    while True:
        reply = await platform.stub.ListReviewQueue(
            pb.ListReviewQueueRequest(page_size=2, page_token=token), metadata=reviewer
        )
        seen += [version.version_id for version in reply.versions]
        token = reply.next_page_token
        if not token:
            break
    assert seen == queued
    await platform.stub.RejectVersion(
        pb.RejectVersionRequest(
            version_id=queued[0], reasons=["The icon is misleading."], request_id=new_id()
        ),
        metadata=reviewer,
    )
    reply = await platform.stub.ListReviewQueue(pb.ListReviewQueueRequest(), metadata=reviewer)
    assert [version.version_id for version in reply.versions] == queued[1:]
    rejected = await platform.stub.GetVersion(
        pb.GetVersionRequest(version_id=queued[0]), metadata=developer
    )
    assert list(rejected.version.rejection_reasons) == ["The icon is misleading."]


async def test_a_version_left_checking_by_a_dead_checker_is_taken_over(
    platform: Platform,
) -> None:
    _, developer = await platform.developer()
    app = (await platform.registered(developer)).mini_app
    version_id = await _in_review(platform, developer, app.mini_app_id)
    # As a checker that claimed it and died would leave it: CHECKING, its lease lapsed,
    # no report (the report and the move out of CHECKING commit together).
    database = Database.connect(platform.settings.database_url)
    try:
        async with database.write() as session:
            await session.execute(
                delete(REVIEW_REPORTS).where(REVIEW_REPORTS.c.version_id == version_id)
            )
            await session.execute(
                update(VERSIONS)
                .where(VERSIONS.c.version_id == version_id)
                .values(
                    state="CHECKING",
                    check_holder=new_id(),
                    check_expire_time=platform.clock_now() - timedelta(seconds=1),
                )
            )
    finally:
        await database.dispose()
    # The next round of the live checker (every second) takes it over and concludes it.
    settled = await asyncio.wait_for(_settled(platform, version_id, developer), 60)
    assert settled.state == pb.VERSION_STATE_IN_REVIEW
