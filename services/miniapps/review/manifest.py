"""The bundle's manifest.json: its published JSON Schema, and checking one against it.

The schema (manifest.schema.json beside this module, JSON Schema 2020-12) is the single
source of the manifest's shape; each schema violation becomes a finding whose rule says
which requirement failed (an unknown permission, a missing justification, a bad version),
on the line of the offending value. What a schema cannot say is checked here: a
permission requested twice, a key repeated (parsers disagree on which value wins), the
entry page missing from the bundle.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from services.miniapps.review.findings import Finding
from services.miniapps.review.json_positions import JsonPath, value_lines
from services.miniapps.review.permissions import PERMISSIONS

__all__ = [
    "MANIFEST_FILE",
    "MAX_MANIFEST_BYTES",
    "Manifest",
    "ManifestCheck",
    "Permission",
    "check_manifest",
    "manifest_schema",
]

MANIFEST_FILE = "manifest.json"
MAX_MANIFEST_BYTES = 64 * 1024
"""A manifest is a few hundred bytes; this keeps parsing and locating it cheap."""

# (path with indexes as "*", failed keyword or "" for any) -> rule.
_RULES: dict[tuple[tuple[str, ...], str], str] = {
    (("name",), ""): "manifest/invalid-name",
    (("version",), ""): "manifest/invalid-version",
    (("entry",), ""): "manifest/invalid-entry",
    (("permissions", "*", "name"), "enum"): "manifest/unknown-permission",
    (("permissions", "*", "justification"), ""): "manifest/missing-justification",
    (("network_domains", "*"), "pattern"): "manifest/invalid-domain",
    (("network_domains", "*"), "maxLength"): "manifest/invalid-domain",
    (("network_domains",), "uniqueItems"): "manifest/duplicate-domain",
}


@dataclass(frozen=True)
class Permission:
    """A permission the mini-app asks the user for, and why."""

    name: str
    """A key of `PERMISSIONS`."""
    justification: str


@dataclass(frozen=True)
class Manifest:
    """A manifest that is present and valid."""

    name: str
    version: str
    """Semantic Versioning 2.0.0."""
    entry: str
    """Path inside the bundle of the HTML page the shell opens; the bundle has it."""
    permissions: tuple[Permission, ...]
    network_domains: tuple[str, ...]
    """Hosts the code may reach: exact names, or `*.example.com` for any subdomain."""


@dataclass(frozen=True)
class ManifestCheck:
    """What checking manifest.json produced."""

    manifest: Manifest | None
    findings: list[Finding]
    network_domains: tuple[str, ...] | None
    """The declared hosts that are well-formed, even when the manifest as a whole is not:
    the code checks compare against them either way. None when the manifest is missing
    or not JSON: the hosts are unknown, so the code's network calls are not judged."""


def manifest_schema() -> dict[str, Any]:
    """The published JSON Schema of manifest.json (a fresh copy on every call)."""
    text = resources.files(__package__).joinpath("manifest.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _described(error: ValidationError) -> tuple[JsonPath, str]:
    """The path of the value an error is about, and the keyword that failed. A missing
    property is about the property (reported on its object's line)."""
    path: JsonPath = tuple(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        required = error.validator_value if isinstance(error.validator_value, list) else []
        missing = next((name for name in required if name not in error.instance), "")
        return (*path, missing), "required"
    return path, str(error.validator)


def _rule(path: JsonPath, keyword: str) -> str:
    shape = tuple("*" if isinstance(part, int) else part for part in path)
    return _RULES.get((shape, keyword)) or _RULES.get((shape, ""), "manifest/schema")


def _shown(value: object) -> str:
    """A value as a message quotes it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _message(rule: str, path: JsonPath, keyword: str, error: ValidationError) -> str:
    where = ".".join(str(part) for part in path) or "the manifest"
    if rule == "manifest/unknown-permission":
        return (
            f"permission {_shown(error.instance)} is not in the platform's catalogue; request one "
            f"of {', '.join(PERMISSIONS)} or remove it"
        )
    if rule == "manifest/missing-justification":
        return (
            f"{where} is missing or blank: say in a sentence (up to 500 characters) why "
            "the mini-app needs this permission; users read it before they grant it"
        )
    if rule == "manifest/invalid-version":
        return (
            f"version {_shown(error.instance)} is not a Semantic Versioning 2.0.0 string; use "
            'MAJOR.MINOR.PATCH such as "1.0.0" or "1.0.0-beta.1"'
            if keyword != "required"
            else 'version is missing: add a Semantic Versioning 2.0.0 string such as "1.0.0"'
        )
    if rule == "manifest/invalid-entry":
        return (
            f"entry {_shown(error.instance)} is not a relative path to an .html file inside the "
            'bundle; use e.g. "index.html" (no leading "/", no "." or ".." segments)'
            if keyword != "required"
            else 'entry is missing: name the HTML page the shell opens, e.g. "index.html"'
        )
    if rule == "manifest/invalid-domain":
        return (
            f"network domain {_shown(error.instance)} is not a lowercase host name; write "
            '"api.example.com" or "*.example.com", without scheme, port or path'
        )
    detail = error.message if len(error.message) <= 200 else error.message[:197] + "..."
    return f"{where}: {detail}; see the published manifest schema"


def _line(lines: Mapping[JsonPath, int], path: JsonPath) -> int:
    """The line of the value at `path`, or of its nearest located ancestor."""
    for length in range(len(path), -1, -1):
        if (line := lines.get(path[:length])) is not None:
            return line
    return 1


def _without_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKeyError(key)
            seen.add(key)
    return document


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _declared_domains(document: object) -> tuple[str, ...] | None:
    """The well-formed hosts a document declares; None when it does not say."""
    if not isinstance(document, dict):
        return None
    domains = document.get("network_domains", [])
    if not isinstance(domains, list):
        return None
    pattern = manifest_schema()["properties"]["network_domains"]["items"]["pattern"]
    validator = Draft202012Validator({"type": "string", "pattern": pattern})
    return tuple(domain for domain in domains if validator.is_valid(domain))


def check_manifest(raw: bytes | None, bundle_files: Collection[str]) -> ManifestCheck:
    """Checks manifest.json (`raw`, None when the bundle has none) against the schema and
    against the bundle's files (`bundle_files`, paths of the regular files read)."""
    file = MANIFEST_FILE

    def refused(line: int, rule: str, message: str) -> ManifestCheck:
        return ManifestCheck(None, [Finding(file, line, rule, message)], None)

    if raw is None:
        return refused(
            0,
            "manifest/missing",
            f"the bundle has no {MANIFEST_FILE} at its root: add one that follows the "
            "published manifest schema",
        )
    if len(raw) > MAX_MANIFEST_BYTES:
        return refused(
            0,
            "manifest/too-large",
            f"{MANIFEST_FILE} is {len(raw)} bytes, over the {MAX_MANIFEST_BYTES}-byte limit: "
            "keep only the fields the schema defines",
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        return refused(
            raw.count(b"\n", 0, error.start) + 1,
            "manifest/invalid-json",
            f"{MANIFEST_FILE} is not UTF-8 (byte {error.start}): save it as UTF-8",
        )
    try:
        document = json.loads(text, object_pairs_hook=_without_duplicate_keys)
    except _DuplicateKeyError as error:
        return refused(
            0,
            "manifest/duplicate-key",
            f"key {error.key!r} appears more than once in an object of {MANIFEST_FILE}: "
            "keep one (parsers disagree on which one wins)",
        )
    except json.JSONDecodeError as error:
        return refused(
            error.lineno,
            "manifest/invalid-json",
            f"{MANIFEST_FILE} is not valid JSON: {error.msg} at line {error.lineno} column "
            f"{error.colno}",
        )
    except RecursionError:
        return refused(
            0, "manifest/invalid-json", f"{MANIFEST_FILE} nests too deeply to be a manifest"
        )

    lines = value_lines(text)
    findings: list[Finding] = []
    validator = Draft202012Validator(manifest_schema())
    reported: set[tuple[JsonPath, str]] = set()
    for violation in validator.iter_errors(document):
        path, keyword = _described(violation)
        rule = _rule(path, keyword)
        if (path, rule) in reported:
            continue  # one value failing two keywords (minLength, pattern) is one finding
        reported.add((path, rule))
        findings.append(
            Finding(file, _line(lines, path), rule, _message(rule, path, keyword, violation))
        )
    domains = _declared_domains(document)
    if findings:
        findings.sort(key=lambda finding: finding.line)
        return ManifestCheck(None, findings, domains)

    permissions = tuple(
        Permission(item["name"], item["justification"]) for item in document.get("permissions", [])
    )
    seen: set[str] = set()
    for index, permission in enumerate(permissions):
        if permission.name in seen:
            findings.append(
                Finding(
                    file,
                    _line(lines, ("permissions", index)),
                    "manifest/duplicate-permission",
                    f"permission {permission.name!r} is requested more than once: keep one "
                    "entry with one justification",
                )
            )
        seen.add(permission.name)
    if document["entry"] not in bundle_files:
        findings.append(
            Finding(
                file,
                _line(lines, ("entry",)),
                "manifest/missing-entry",
                f"entry {document['entry']!r} is not in the bundle: add the page or point "
                "entry at the HTML file the shell should open",
            )
        )
    if findings:
        return ManifestCheck(None, findings, domains)
    manifest = Manifest(
        name=document["name"],
        version=document["version"],
        entry=document["entry"],
        permissions=permissions,
        network_domains=tuple(document.get("network_domains", [])),
    )
    return ManifestCheck(manifest, [], domains)
