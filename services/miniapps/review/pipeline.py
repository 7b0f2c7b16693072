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
            html = scripts_in_html(name, archive.files[name])
            for line, source in html.remote_sources:
                sink.add(
                    name,
                    line,
                    "code/remote-script",
                    f"<script src={source!r}> loads code from outside the bundle, which "
                    "escapes review: put the script in the bundle and load it by a relative "
                    "path",
                )
            if html.unparsable_line is not None:
                sink.add(
                    name,
                    html.unparsable_line,
                    "code/parse-error",
                    "the HTML parser gave up here, so the review cannot vouch for the page's "
                    "scripts: fix the markup",
                )
            for script in html.scripts:
                checker.check(script, sink)
    return ReviewReport(sink.collect(), manifest, archive.file_count, archive.uncompressed_bytes)
