"""The review of one bundle: the archive, then the manifest, then the code."""

from __future__ import annotations

from pathlib import PurePosixPath

from services.miniapps.review.archive import read_archive
from services.miniapps.review.findings import FindingSink, ReviewReport
from services.miniapps.review.html_scripts import scripts_in_html
from services.miniapps.review.javascript import CodeChecker, Script
from services.miniapps.review.limits import BundleLimits
from services.miniapps.review.manifest import MANIFEST_FILE, check_manifest

__all__ = ["review_bundle"]

_JAVASCRIPT = frozenset({".js", ".mjs", ".cjs"})
_HTML = frozenset({".html", ".htm"})
_DEFAULT_LIMITS = BundleLimits()


def review_bundle(bundle: bytes, *, limits: BundleLimits = _DEFAULT_LIMITS) -> ReviewReport:
    """Reviews a mini-app bundle (the zip's bytes) within `limits`.

    Pure and synchronous (CPU-bound: run it off the request path, e.g. in a worker
    thread or process); never raises on hostile input, which becomes findings instead.
    """
    archive = read_archive(bundle, limits)
    sink = FindingSink()
    sink.extend(archive.findings)
    if not archive.examined:
        return ReviewReport(sink.collect(), None, archive.file_count, archive.uncompressed_bytes)

    raw_manifest = archive.files.get(MANIFEST_FILE)
    manifest = None
    domains: tuple[str, ...] | None = None
    # A manifest the archive rules refused is reported there already.
    if raw_manifest is not None or MANIFEST_FILE not in archive.listed:
        checked = check_manifest(raw_manifest, archive.listed)
        sink.extend(checked.findings)
        manifest, domains = checked.manifest, checked.network_domains

    checker = CodeChecker(domains)
    for name in sorted(archive.files):
        suffix = PurePosixPath(name).suffix.lower()
        if suffix in _JAVASCRIPT:
            checker.check(Script(name, archive.files[name]), sink)
        elif suffix in _HTML:
            for line, _, rule, message in sorted(
                _html_findings(name, archive.files[name], checker)
            ):
                sink.add(name, line, rule, message)
    return ReviewReport(sink.collect(), manifest, archive.file_count, archive.uncompressed_bytes)


def _html_findings(name: str, html: bytes, checker: CodeChecker) -> list[tuple[int, int, str, str]]:
    """An HTML file's findings as (line, column, rule, message): what points outside the
    bundle, and what its scripts do."""
    page = scripts_in_html(name, html)
    found = [
        (
            line,
            0,
            "code/remote-script",
            f"<script src={source!r}> loads code from outside the bundle, which escapes "
            "review: put the script in the bundle and load it by a relative path",
        )
        for line, source in page.remote_sources
    ]
    found += [
        (
            line,
            0,
            "code/remote-base",
            f"<base href={base!r}> moves every relative URL of the page (its scripts "
            "included) outside the bundle: remove it",
        )
        for line, base in page.remote_bases
    ]
    if page.unparsable_line is not None:
        found.append(
            (
                page.unparsable_line,
                0,
                "code/parse-error",
                "the HTML parser gave up here, so the review cannot vouch for the page's "
                "scripts: fix the markup",
            )
        )
    for script in page.scripts:
        found += checker.findings(script)
    return found
