"""The hostile-bundle corpus: each bundle is refused with exactly its finding."""

from __future__ import annotations

import random
import stat
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from services.miniapps.review import BundleLimits, ReviewReport, review_bundle
from services.miniapps.review.limits import MiB
from tests.miniapps.bundles import (
    APP_JS,
    Member,
    line_of,
    manifest_json,
    valid_bundle,
    valid_files,
    valid_manifest,
    zip_bundle,
)

MINIFIED = (
    "var a=function(t){return t*2},b=[1,2,3].map(a),c={k:b,n:'x'};"
    "function d(e,f){for(var g=0;g<e.length;g++)f(e[g])}d(b,function(h){c.n+=h});" * 80
)


def located(report: ReviewReport) -> list[tuple[str, int, str]]:
    return [(finding.file, finding.line, finding.rule) for finding in report.findings]


def test_a_valid_bundle_passes_with_its_manifest() -> None:
    report = review_bundle(valid_bundle())

    assert report.findings == ()
    assert report.passed
    assert report.manifest is not None
    assert report.manifest.version == "1.2.0"
    assert [permission.name for permission in report.manifest.permissions] == [
        "profile.basic",
        "wallet.pay",
    ]
    assert report.manifest.network_domains == ("api.example.com", "*.cdn.example.com")
    assert report.files == 4
    assert report.uncompressed_bytes == sum(
        len(data.encode() if isinstance(data, str) else data) for data in valid_files().values()
    )


@dataclass(frozen=True)
class Case:
    bundle: Callable[[], bytes]
    expected: tuple[str, Callable[[], int], str]
    """file, its line (computed lazily from the corpus), rule."""


def _manifest_with(**overrides: object) -> str:
    return manifest_json(valid_manifest(**overrides))


def _bad_permission_manifest() -> str:
    permissions = [*valid_manifest()["permissions"], {"name": "sms.read", "justification": "x"}]
    return _manifest_with(permissions=permissions)


def _unjustified_manifest() -> str:
    return _manifest_with(permissions=[{"name": "camera"}])


def _blank_justification_manifest() -> str:
    return _manifest_with(permissions=[{"name": "camera", "justification": "   "}])


_NEW_FUNCTION = APP_JS + '\nconst double = new Function("a", "return 2 * a");\n'
_FETCH_EVIL = APP_JS + '\nnavigator.onLine && fetch("https://tracker.evil.test/pixel");\n'
_NOT_JSON = '{\n  "name": "Coffee Corner",\n  "version": 1.0.0,\n  "entry": "index.html"\n}\n'

CASES = {
    "zip-slip": Case(
        lambda: zip_bundle(
            [*map(Member, valid_files(), valid_files().values()), Member("../../evil.js", b"x")]
        ),
        ("../../evil.js", lambda: 0, "archive/path-traversal"),
    ),
    "absolute path": Case(
        lambda: zip_bundle(
            [*map(Member, valid_files(), valid_files().values()), Member("/etc/cron.d/evil", b"x")]
        ),
        ("/etc/cron.d/evil", lambda: 0, "archive/absolute-path"),
    ),
    "symlink": Case(
        lambda: zip_bundle(
            [
                *map(Member, valid_files(), valid_files().values()),
                Member("secrets.js", b"/etc/passwd", file_type=stat.S_IFLNK),
            ]
        ),
        ("secrets.js", lambda: 0, "archive/symlink"),
    ),
    "device file": Case(
        lambda: zip_bundle(
            [
                *map(Member, valid_files(), valid_files().values()),
                Member("null.js", b"", file_type=stat.S_IFCHR),
            ]
        ),
        ("null.js", lambda: 0, "archive/device-file"),
    ),
    "zip bomb": Case(
        lambda: valid_bundle(**{"data.js": b"\0" * (4 * MiB)}),
        ("data.js", lambda: 0, "archive/compression-ratio"),
    ),
    "oversize bundle": Case(
        lambda: valid_bundle(**{"video.bin": random.Random(7).randbytes(5 * MiB)}),
        ("", lambda: 0, "archive/too-large"),
    ),
    "too many files": Case(
        lambda: valid_bundle(**{f"icons/{index}.svg": "<svg/>" for index in range(1000)}),
        ("", lambda: 0, "archive/too-many-files"),
    ),
    "not a zip": Case(
        lambda: b"%PDF-1.7\n% this is not a zip archive\n",
        ("", lambda: 0, "archive/not-a-zip"),
    ),
    "eval hidden in minified code": Case(
        lambda: valid_bundle(**{"vendor.min.js": MINIFIED + 'window["ev"+"al"](c.n);' + MINIFIED}),
        ("vendor.min.js", lambda: 1, "code/eval"),
    ),
    "new Function": Case(
        lambda: valid_bundle(**{"app.js": _NEW_FUNCTION}),
        ("app.js", lambda: line_of(_NEW_FUNCTION, "new Function"), "code/new-function"),
    ),
    "fetch to an undeclared domain": Case(
        lambda: valid_bundle(**{"app.js": _FETCH_EVIL}),
        ("app.js", lambda: line_of(_FETCH_EVIL, "tracker.evil.test"), "code/undeclared-domain"),
    ),
    "permission outside the catalogue": Case(
        lambda: valid_bundle(**{"manifest.json": _bad_permission_manifest()}),
        (
            "manifest.json",
            lambda: line_of(_bad_permission_manifest(), '"sms.read"'),
            "manifest/unknown-permission",
        ),
    ),
    "missing justification": Case(
        lambda: valid_bundle(**{"manifest.json": _unjustified_manifest()}),
        (
            "manifest.json",
            lambda: line_of(_unjustified_manifest(), '"camera"') - 1,  # the object's "{"
            "manifest/missing-justification",
        ),
    ),
    "blank justification": Case(
        lambda: valid_bundle(**{"manifest.json": _blank_justification_manifest()}),
        (
            "manifest.json",
            lambda: line_of(_blank_justification_manifest(), '"justification"'),
            "manifest/missing-justification",
        ),
    ),
    "bad semver": Case(
        lambda: valid_bundle(**{"manifest.json": _manifest_with(version="1.0")}),
        (
            "manifest.json",
            lambda: line_of(_manifest_with(version="1.0"), '"version"'),
            "manifest/invalid-version",
        ),
    ),
    "missing entry file": Case(
        lambda: valid_bundle(**{"manifest.json": _manifest_with(entry="main.html")}),
        (
            "manifest.json",
            lambda: line_of(_manifest_with(entry="main.html"), '"entry"'),
            "manifest/missing-entry",
        ),
    ),
    "manifest not JSON": Case(
        lambda: valid_bundle(**{"manifest.json": _NOT_JSON}),
        ("manifest.json", lambda: 3, "manifest/invalid-json"),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_hostile_bundle_is_refused_with_its_finding(case: Case) -> None:
    report = review_bundle(case.bundle())

    file, line, rule = case.expected
    assert located(report) == [(file, line(), rule)]
    assert not report.passed
    [finding] = report.findings
    assert finding.message


def test_the_minified_eval_names_its_column() -> None:
    code = MINIFIED + 'window["ev"+"al"](c.n);'
    report = review_bundle(valid_bundle(**{"vendor.min.js": code}))

    [finding] = report.findings
    assert f"column {len(MINIFIED) + 1}" in finding.message
    assert 'window["ev"+"al"](c.n)' in finding.message


def test_a_zip_bomb_is_never_inflated_past_its_ratio() -> None:
    report = review_bundle(valid_bundle(**{"data.js": b"\0" * (4 * MiB)}))

    assert report.uncompressed_bytes < 1 * MiB


def test_a_header_that_understates_a_size_is_not_trusted() -> None:
    bundle = bytearray(valid_bundle(**{"data.js": b"\0" * (4 * MiB)}))
    # Claim 100 bytes in the data.js entry of the central directory (its size field).
    entry = bundle.index(b"PK\x01\x02", bundle.index(b"data.js", bundle.index(b"PK\x01\x02")) - 46)
    struct.pack_into("<I", bundle, entry + 24, 100)

    report = review_bundle(bytes(bundle))

    assert ("data.js", 0, "archive/corrupt") in located(report)
    assert report.uncompressed_bytes < 1 * MiB


def test_the_total_uncompressed_size_is_bounded() -> None:
    limits = BundleLimits(max_uncompressed_bytes=4096)
    bundle = valid_bundle(**{f"part{index}.js": "x = 1;\n" * 300 for index in range(5)})

    report = review_bundle(bundle, limits=limits)

    assert ("", 0, "archive/total-too-large") in located(report)
    assert report.uncompressed_bytes <= limits.max_uncompressed_bytes + 1


def test_a_member_over_the_per_file_limit_is_refused() -> None:
    limits = BundleLimits(max_file_bytes=1000, ratio_grace_bytes=10_000)
    report = review_bundle(valid_bundle(**{"big.js": "x = 1;\n" * 200}), limits=limits)

    assert located(report) == [("big.js", 0, "archive/file-too-large")]


def test_a_duplicate_entry_is_refused() -> None:
    members = [*map(Member, valid_files(), valid_files().values()), Member("app.js", "eval(1)")]
    with pytest.warns(UserWarning, match="Duplicate name"):
        bundle = zip_bundle(members)

    assert located(review_bundle(bundle)) == [("app.js", 0, "archive/duplicate-entry")]


def test_encrypted_and_exotically_compressed_members_are_refused() -> None:
    bundle = bytearray(
        zip_bundle(
            [
                *map(Member, valid_files(), valid_files().values()),
                Member("packed.js", "x = 1;", compress_type=zipfile.ZIP_BZIP2),
                Member("secret.js", "x = 2;"),
            ]
        )
    )
    # Set the "encrypted" flag of secret.js in the central directory.
    name = bundle.rindex(b"secret.js")
    struct.pack_into("<H", bundle, name - 46 + 8, 1)

    assert located(review_bundle(bytes(bundle))) == [
        ("packed.js", 0, "archive/unsupported-compression"),
        ("secret.js", 0, "archive/encrypted"),
    ]


def test_entries_sharing_their_data_are_refused() -> None:
    bundle = bytearray(valid_bundle(**{"copy.js": "x = 1;"}))
    # Point copy.js's central directory entry at the first entry's local header.
    name = bundle.rindex(b"copy.js")
    struct.pack_into("<I", bundle, name - 46 + 42, 0)

    assert located(review_bundle(bytes(bundle))) == [("copy.js", 0, "archive/overlapping-entries")]


def test_bad_names_are_refused() -> None:
    members = [
        *map(Member, valid_files(), valid_files().values()),
        Member("C:/windows/evil.js", "1"),
        Member("a\\..\\..\\evil.js", "1"),
        Member("lib/./x.js", "1"),
    ]
    assert located(review_bundle(zip_bundle(members))) == [
        ("C:/windows/evil.js", 0, "archive/absolute-path"),
        ("a\\..\\..\\evil.js", 0, "archive/path-traversal"),
        ("lib/./x.js", 0, "archive/invalid-name"),
    ]


def test_a_bundle_without_a_manifest_is_refused() -> None:
    files = valid_files()
    del files["manifest.json"]

    assert located(review_bundle(zip_bundle(files))) == [("manifest.json", 0, "manifest/missing")]
