"""The manifest: its published schema, and the findings a manifest earns, on its lines."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

import services.miniapps.review as review
from services.miniapps.review import PERMISSIONS, manifest_schema, review_bundle
from tests.miniapps.bundles import line_of, manifest_json, valid_bundle, valid_manifest


def _properties(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    for name, subschema in schema.get("properties", {}).items():
        yield f"{path}{name}", subschema
        yield from _properties(subschema, f"{path}{name}.")
        if "items" in subschema:
            yield f"{path}{name}[]", subschema["items"]
            yield from _properties(subschema["items"], f"{path}{name}[].")


def test_the_schema_is_published_beside_the_module_as_valid_2020_12() -> None:
    schema = manifest_schema()
    on_disk = json.loads((Path(review.__file__).parent / "manifest.schema.json").read_text())

    assert schema == on_disk
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].startswith("https://")
    undescribed = [
        path for path, subschema in _properties(schema) if not subschema.get("description")
    ]
    assert undescribed == []


def test_the_schema_lists_exactly_the_permission_catalogue() -> None:
    names = manifest_schema()["properties"]["permissions"]["items"]["properties"]["name"]["enum"]

    assert names == list(PERMISSIONS)
    assert all(PERMISSIONS.values())


def test_the_valid_manifest_validates_against_the_published_schema() -> None:
    Draft202012Validator(manifest_schema()).validate(valid_manifest())


DOMAINS = valid_manifest()["network_domains"]


def findings_of(manifest_text: str) -> list[tuple[int, str]]:
    report = review_bundle(valid_bundle(**{"manifest.json": manifest_text}))
    assert report.manifest is None
    assert all(finding.file == "manifest.json" for finding in report.findings)
    return [(finding.line, finding.rule) for finding in report.findings]


@pytest.mark.parametrize(
    ("overrides", "needle", "rule"),
    [
        ({"version": "v1.0.0"}, '"version"', "manifest/invalid-version"),
        ({"version": "1.0.0-"}, '"version"', "manifest/invalid-version"),
        ({"version": "01.0.0"}, '"version"', "manifest/invalid-version"),
        ({"version": 1}, '"version"', "manifest/invalid-version"),
        ({"entry": "../index.html"}, '"entry"', "manifest/invalid-entry"),
        ({"entry": "/index.html"}, '"entry"', "manifest/invalid-entry"),
        ({"entry": "app.js"}, '"entry"', "manifest/invalid-entry"),
        ({"name": "   "}, '"name"', "manifest/invalid-name"),
        (
            {"network_domains": [*DOMAINS, "https://x.example.com"]},
            '"https:',
            "manifest/invalid-domain",
        ),
        ({"network_domains": [*DOMAINS, "*.com"]}, '"*.com"', "manifest/invalid-domain"),
        (
            {"network_domains": [*DOMAINS, DOMAINS[0]]},
            '"network_domains"',
            "manifest/duplicate-domain",
        ),
        ({"permisions": []}, "{", "manifest/schema"),
    ],
)
def test_a_bad_field_is_reported_on_its_line(
    overrides: dict[str, Any], needle: str, rule: str
) -> None:
    text = manifest_json(valid_manifest(**overrides))

    assert findings_of(text) == [(line_of(text, needle), rule)]


def test_a_missing_field_is_reported_on_its_object() -> None:
    manifest = valid_manifest()
    del manifest["version"]

    assert findings_of(manifest_json(manifest)) == [(1, "manifest/invalid-version")]


def test_every_schema_problem_is_reported_at_once() -> None:
    text = manifest_json(
        valid_manifest(
            version="one",
            permissions=[{"name": "microphone", "justification": ""}, {"name": "camera"}],
        )
    )

    assert findings_of(text) == [
        (line_of(text, '"version"'), "manifest/invalid-version"),
        (line_of(text, '"microphone"'), "manifest/unknown-permission"),
        (line_of(text, '"justification"'), "manifest/missing-justification"),
        (line_of(text, '"camera"') - 1, "manifest/missing-justification"),
    ]


def test_a_permission_asked_twice_is_reported() -> None:
    permission = {"name": "camera", "justification": "Scan the table's QR code."}
    text = manifest_json(valid_manifest(permissions=[permission, permission]))

    assert findings_of(text) == [(line_of(text, "{", 3), "manifest/duplicate-permission")]


def test_a_repeated_key_is_reported() -> None:
    text = (
        '{\n  "name": "A",\n  "version": "1.0.0",\n  "entry": "index.html",\n  "entry": "x.html"\n}'
    )

    assert findings_of(text) == [(0, "manifest/duplicate-key")]


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        (b"\xff\xfe{}", "manifest/invalid-json"),
        ('{"name": "' + random.Random(3).randbytes(40_000).hex() + '"}', "manifest/too-large"),
        ("[" * 20_000 + "]" * 20_000, "manifest/invalid-json"),
        ("[1, 2]", "manifest/schema"),
        ("", "manifest/invalid-json"),
    ],
)
def test_a_manifest_that_is_not_a_manifest_is_refused(text: str | bytes, rule: str) -> None:
    report = review_bundle(valid_bundle(**{"manifest.json": text}))

    assert [finding.rule for finding in report.findings] == [rule]


def test_a_manifest_with_a_byte_order_mark_is_read() -> None:
    text = "\ufeff" + manifest_json(valid_manifest())

    assert review_bundle(valid_bundle(**{"manifest.json": text.encode("utf-8")})).passed


def test_every_rule_the_review_reports_is_listed_and_described() -> None:
    sources = (Path(review.__file__).parent).glob("*.py")
    reported = {
        rule
        for source in sources
        if source.name != "rules.py"
        for rule in re.findall(r'"((?:archive|manifest|code)/[a-z-]+)"', source.read_text())
    }

    assert reported == set(review.RULES)
    assert all(description.endswith(".") for description in review.RULES.values())


def test_a_huge_bad_value_is_quoted_short() -> None:
    text = manifest_json(valid_manifest(version="9" * 5000, name=["x" * 5000]))

    report = review_bundle(valid_bundle(**{"manifest.json": text}))

    assert [finding.rule for finding in report.findings] == [
        "manifest/invalid-name",
        "manifest/invalid-version",
    ]
    assert all(len(finding.message) < 400 for finding in report.findings)
