"""What the review reports: findings as file:line:rule with a message, and the report."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.miniapps.review.manifest import Manifest

__all__ = ["Finding", "FindingSink", "ReviewReport"]

MAX_FINDINGS_PER_RULE_AND_FILE = 20
"""A hostile or generated file can repeat one construct a million times; past this many
findings of one rule in one file, the rest are counted in one closing finding."""


@dataclass(frozen=True)
class Finding:
    """One problem the review found, addressed to the mini-app's developer."""

    file: str
    """Path inside the bundle; "" for the archive as a whole."""
    line: int
    """1-based line in `file`; 0 when the finding is not about a line."""
    rule: str
    """Stable id of the check, `<area>/<name>` (e.g. `archive/path-traversal`, `code/eval`)."""
    message: str
    """What was found and what to do about it."""

    def __str__(self) -> str:
        return f"{self.file or '<bundle>'}:{self.line}: {self.rule}: {self.message}"


@dataclass(frozen=True)
class ReviewReport:
    """The outcome of reviewing one bundle."""

    findings: tuple[Finding, ...]
    manifest: Manifest | None
    """The parsed manifest when it is present and valid; None otherwise."""
    files: int
    """Regular files (not directories) the archive lists."""
    uncompressed_bytes: int
    """Bytes actually inflated while reading the archive (never more than the limits)."""

    @property
    def passed(self) -> bool:
        """Whether the bundle may be published: the review found nothing."""
        return not self.findings


@dataclass
class FindingSink:
    """Collects findings, keeping at most `MAX_FINDINGS_PER_RULE_AND_FILE` of each rule per
    file and counting the rest."""

    _findings: list[Finding] = field(default_factory=list)
    _counts: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, file: str, line: int, rule: str, message: str) -> None:
        """Records a finding (or only counts it, past the cap)."""
        self._counts[file, rule] += 1
        if self._counts[file, rule] <= MAX_FINDINGS_PER_RULE_AND_FILE:
            self._findings.append(Finding(file, line, rule, message))

    def extend(self, findings: list[Finding]) -> None:
        """Records findings made elsewhere."""
        for finding in findings:
            self.add(finding.file, finding.line, finding.rule, finding.message)

    def collect(self) -> tuple[Finding, ...]:
        """Every recorded finding, plus one per capped (file, rule) saying how many more."""
        extra = [
            Finding(
                file,
                0,
                rule,
                f"{count - MAX_FINDINGS_PER_RULE_AND_FILE} more findings of this rule in "
                "this file are not listed; fix the ones above and review again",
            )
            for (file, rule), count in self._counts.items()
            if count > MAX_FINDINGS_PER_RULE_AND_FILE
        ]
        return (*self._findings, *extra)
