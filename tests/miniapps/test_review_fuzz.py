"""Whatever the bytes, member names or code, the review answers with a report."""

from __future__ import annotations

import warnings

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.miniapps.review import Finding, ReviewReport, review_bundle
from tests.miniapps.bundles import Member, valid_bundle, zip_bundle

_SETTINGS = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
_VALID = valid_bundle()


def assert_well_formed(report: ReviewReport) -> None:
    assert isinstance(report, ReviewReport)
    for finding in report.findings:
        assert isinstance(finding, Finding)
        assert finding.rule.count("/") == 1
        assert finding.line >= 0
        assert finding.message
    assert report.passed == (not report.findings)


@_SETTINGS
@given(st.binary(max_size=4096))
def test_random_bytes_never_raise(bundle: bytes) -> None:
    assert_well_formed(review_bundle(bundle))


@_SETTINGS
@given(st.data())
def test_a_damaged_valid_bundle_never_raises(data: st.DataObject) -> None:
    damaged = bytearray(_VALID)
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(damaged) - 1))
        damaged[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(damaged)))

    assert_well_formed(review_bundle(bytes(damaged[:cut] if data.draw(st.booleans()) else damaged)))


# Lone surrogates cannot be written into a zip's UTF-8 names: no bundle has them.
_NAMES = st.text(
    st.sampled_from("ab/\\.:~\x00\n é") | st.characters(exclude_categories=["Cs"]),
    min_size=0,
    max_size=24,
) | st.sampled_from(["manifest.json", "index.html", "../x", "/x", "a/../../b", "C:\\x", ""])


@_SETTINGS
@given(
    st.lists(
        st.tuples(
            _NAMES,
            st.binary(max_size=64) | st.text(max_size=200),
            st.sampled_from([0o100000, 0o120000, 0o020000, 0o040000, 0o010000, 0, 0o170000]),
        ),
        max_size=6,
    )
)
def test_random_member_names_types_and_contents_never_raise(
    members: list[tuple[str, bytes | str, int]],
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of duplicate names: so be it
        bundle = zip_bundle(Member(name, data, file_type) for name, data, file_type in members)

    assert_well_formed(review_bundle(bundle))


_TOKENS = st.sampled_from(
    [*"()[]{}`'\"\\/.;,=+ \n<>!$", "eval", "Function", "fetch", "import", "window", "${", "new"]
)


@_SETTINGS
@given(
    st.lists(_TOKENS | st.text(max_size=3), max_size=120).map("".join),
    st.sampled_from(["app.js", "index.html"]),
)
def test_random_code_never_raises(code: str, file: str) -> None:
    assert_well_formed(review_bundle(valid_bundle(**{file: code})))
