"""How much of a bundle the review is willing to read."""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["BundleLimits", "MiB"]

MiB = 1024 * 1024


@dataclass(frozen=True)
class BundleLimits:
    """Bounds a bundle must stay within; reading stops as soon as one is passed, so a
    hostile archive never costs more than these (sizes in bytes)."""

    max_bundle_bytes: int = 5 * MiB
    """The zip file itself, as uploaded."""
    max_uncompressed_bytes: int = 20 * MiB
    """All members together, once inflated."""
    max_files: int = 1000
    """Entries in the archive's directory (files and directories)."""
    max_file_bytes: int = 5 * MiB
    """One member, once inflated."""
    max_compression_ratio: float = 100.0
    """Inflated size over compressed size of one member. Real HTML/JS/CSS deflates 3-20x;
    a zip bomb reaches ~1000x. Applied once a member has inflated more than
    `ratio_grace_bytes`, because tiny files (a run of blank lines) legitimately
    compress far better than that."""
    ratio_grace_bytes: int = 64 * 1024
    """Inflated bytes of one member before `max_compression_ratio` applies."""

    def __post_init__(self) -> None:
        for limit in fields(self):
            if not getattr(self, limit.name) > 0:
                raise ValueError(f"BundleLimits.{limit.name} must be positive")
