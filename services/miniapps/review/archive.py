"""Reading a bundle's zip archive without trusting it.

Every entry's name and type is checked before anything is inflated; members are then
inflated in bounded reads, counting the bytes that actually come out (never the sizes
the headers claim), and reading stops as soon as a limit is passed. A member that breaks
a rule is reported and not read, so its content never reaches the later checks.
"""

from __future__ import annotations

import io
import itertools
import re
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass, field

from services.miniapps.review.findings import Finding
from services.miniapps.review.limits import BundleLimits

__all__ = ["ArchiveContents", "read_archive"]

_CHUNK = 64 * 1024
_LOCAL_HEADER_BYTES = 30
_ALLOWED_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
_MAX_NAME_LENGTH = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")
_SPECIAL_TYPES = {
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a named pipe",
    stat.S_IFSOCK: "a socket",
}
# What zipfile raises on a damaged or hostile archive: a bad signature or CRC
# (BadZipFile), a truncated or garbled stream (zlib.error, EOFError), a name that is not
# the UTF-8 its flag promises (UnicodeDecodeError, a ValueError), a header field out of
# range (struct.error, OverflowError), an encrypted or unsupported member.
_UNREADABLE = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    OverflowError,
    struct.error,
    NotImplementedError,
    RuntimeError,
    IndexError,
    KeyError,
)


@dataclass
class ArchiveContents:
    """What reading the archive produced."""

    files: dict[str, bytes] = field(default_factory=dict)
    """Regular files that broke no rule and were read in full, by path."""
    file_count: int = 0
    """Regular files (not directories) the archive lists."""
    uncompressed_bytes: int = 0
    """Bytes actually inflated."""
    findings: list[Finding] = field(default_factory=list)
    listed: set[str] = field(default_factory=set)
    """Paths of the regular files the archive lists, read or not."""
    examined: bool = False
    """Whether the entries were examined one by one (False when the archive as a whole
    was refused: too large, not a zip, too many entries, overlapping entries)."""

    def refuse(self, file: str, rule: str, message: str) -> None:
        self.findings.append(Finding(file, 0, rule, message))


def _quoted(name: str) -> str:
    """An entry's name as a message quotes it: its repr, cut short (the finding's `file`
    holds all of it)."""
    text = repr(name)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_dir(info: zipfile.ZipInfo) -> bool:
    # ZipInfo.is_dir() raises IndexError on an empty name, which a hostile archive has.
    return info.filename.endswith("/")


def _name_problem(name: str) -> tuple[str, str] | None:
    """The rule a member's name breaks and a message, or None."""
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        return (
            "archive/absolute-path",
            f"{_quoted(name)} is an absolute path: store it relative to the bundle's root",
        )
    parts = re.split(r"[/\\]", name.removesuffix("/"))
    if ".." in parts:
        return (
            "archive/path-traversal",
            f"{_quoted(name)} climbs out of the bundle with '..': store it under the bundle's root",
        )
    if "\\" in name or _CONTROL.search(name) or any(part in {"", "."} for part in parts):
        return (
            "archive/invalid-name",
            f"{_quoted(name)} has a backslash, a control character or an empty or '.' segment: "
            "use plain '/'-separated names",
        )
    if len(name) > _MAX_NAME_LENGTH:
        return (
            "archive/invalid-name",
            f"{_quoted(name)} is longer than {_MAX_NAME_LENGTH} characters: shorten it",
        )
    return None


def _entry_problem(info: zipfile.ZipInfo) -> tuple[str, str] | None:
    """The rule an entry's type, encryption or compression breaks, or None."""
    name = info.filename
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        return (
            "archive/symlink",
            f"{_quoted(name)} is a symbolic link: put the file itself in the bundle",
        )
    if kind in _SPECIAL_TYPES:
        return (
            "archive/device-file",
            f"{_quoted(name)} is {_SPECIAL_TYPES[kind]}, not a file: remove it from the bundle",
        )
    if kind not in {0, stat.S_IFREG, stat.S_IFDIR}:
        return (
            "archive/device-file",
            f"{_quoted(name)} has an unknown file type ({kind:#o}): store regular files only",
        )
    if info.flag_bits & 0x1:
        return ("archive/encrypted", f"{_quoted(name)} is encrypted: store it unencrypted")
    if info.compress_type not in _ALLOWED_METHODS:
        return (
            "archive/unsupported-compression",
            f"{_quoted(name)} uses compression method {info.compress_type}: use deflate or none",
        )
    return None


def _overlap(infos: list[zipfile.ZipInfo]) -> zipfile.ZipInfo | None:
    """An entry whose data starts inside the previous entry's (the construction of
    non-recursive zip bombs: many entries inflating one shared stream), or None."""
    ordered = sorted(infos, key=lambda info: info.header_offset)
    for before, after in itertools.pairwise(ordered):
        if before.header_offset + _LOCAL_HEADER_BYTES + before.compress_size > after.header_offset:
            return after
    return None


def _inflate(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: BundleLimits, contents: ArchiveContents
) -> bytes | None:
    """The member's bytes, or None after recording the limit it passed."""
    name = info.filename
    ratio_cap = max(
        limits.ratio_grace_bytes, int(limits.max_compression_ratio * info.compress_size)
    )
    room = limits.max_uncompressed_bytes - contents.uncompressed_bytes
    allowed = min(limits.max_file_bytes, ratio_cap, room)
    chunks: list[bytes] = []
    size = 0
    with archive.open(info) as member:
        # One byte past `allowed` is enough to know a limit was passed.
        while chunk := member.read(min(_CHUNK, allowed + 1 - size)):
            size += len(chunk)
            contents.uncompressed_bytes += len(chunk)
            if size <= allowed:
                chunks.append(chunk)
            elif size > ratio_cap:
                contents.refuse(
                    name,
                    "archive/compression-ratio",
                    f"{_quoted(name)} inflates more than {limits.max_compression_ratio:g} "
                    f"times its compressed size of {info.compress_size} bytes (a zip bomb): "
                    "remove it",
                )
                return None
            elif size > limits.max_file_bytes:
                contents.refuse(
                    name,
                    "archive/file-too-large",
                    f"{_quoted(name)} inflates to more than {limits.max_file_bytes} bytes: "
                    "split or shrink it",
                )
                return None
            else:
                return None  # past the total: the caller reports it
    return b"".join(chunks)


def read_archive(bundle: bytes, limits: BundleLimits) -> ArchiveContents:
    """Reads `bundle` within `limits`; never raises on a hostile archive."""
    contents = ArchiveContents()
    if len(bundle) > limits.max_bundle_bytes:
        contents.refuse(
            "",
            "archive/too-large",
            f"the bundle is {len(bundle)} bytes, over the {limits.max_bundle_bytes}-byte limit: "
            "minify the code, compress images, drop what the mini-app does not use",
        )
        return contents
    try:
        archive = zipfile.ZipFile(io.BytesIO(bundle))
    except _UNREADABLE as error:
        contents.refuse(
            "",
            "archive/not-a-zip",
            f"the bundle is not a readable zip archive ({str(error)[:120]}): "
            "upload a zip file with manifest.json at its root",
        )
        return contents
    with archive:
        _read_members(archive, limits, contents)
    return contents


def _read_members(
    archive: zipfile.ZipFile, limits: BundleLimits, contents: ArchiveContents
) -> None:
    infos = archive.infolist()
    contents.file_count = sum(not _is_dir(info) for info in infos)
    if len(infos) > limits.max_files:
        contents.refuse(
            "",
            "archive/too-many-files",
            f"the archive has {len(infos)} entries, over the limit of {limits.max_files}: "
            "bundle the code into fewer files",
        )
        return
    if (overlapping := _overlap(infos)) is not None:
        contents.refuse(
            overlapping.filename,
            "archive/overlapping-entries",
            f"{_quoted(overlapping.filename)} shares its data with another entry (a zip bomb "
            "construction): build the archive with a standard zip tool",
        )
        return
    contents.examined = True
    contents.listed = {info.filename for info in infos if not _is_dir(info)}
    seen: set[str] = set()
    for info in infos:
        name = info.filename
        problem = _name_problem(name) or _entry_problem(info)
        if problem is None and name in seen:
            problem = (
                "archive/duplicate-entry",
                f"{_quoted(name)} is in the archive more than once: keep one copy",
            )
        seen.add(name)
        if problem is not None:
            contents.refuse(name, *problem)
            continue
        if _is_dir(info):
            continue
        if info.file_size > limits.max_file_bytes:
            # A header is trusted to refuse early, never to bound a read.
            contents.refuse(
                name,
                "archive/file-too-large",
                f"{_quoted(name)} declares {info.file_size} bytes, over the {limits.max_file_bytes}"
                "-byte limit per file: split or shrink it",
            )
            continue
        try:
            data = _inflate(archive, info, limits, contents)
        except _UNREADABLE as error:
            contents.refuse(
                name,
                "archive/corrupt",
                f"{_quoted(name)} cannot be read ({str(error)[:120]}): rebuild the archive",
            )
            continue
        if contents.uncompressed_bytes > limits.max_uncompressed_bytes:
            contents.refuse(
                "",
                "archive/total-too-large",
                f"the files inflate to more than {limits.max_uncompressed_bytes} bytes in all "
                f"(stopped at {_quoted(name)}): drop what the mini-app does not use",
            )
            return
        if data is not None:
            contents.files[name] = data
