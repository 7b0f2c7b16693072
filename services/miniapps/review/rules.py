"""Every rule the review reports, by its stable id: what a developer reads to learn what a
finding means (ids are kept; a rule that goes away leaves its id unused)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["RULES"]

RULES: Mapping[str, str] = MappingProxyType(
    {
        # The archive as a whole, or one entry ("file" is the entry's name).
        "archive/too-large": "The zip is over the size limit for a bundle.",
        "archive/not-a-zip": "The bundle is not a readable zip archive.",
        "archive/too-many-files": "The archive lists more entries than allowed.",
        "archive/overlapping-entries": "Entries share compressed data (a zip bomb construction).",
        "archive/absolute-path": "An entry's name is an absolute path or starts with a drive.",
        "archive/path-traversal": "An entry's name climbs out of the bundle with '..'.",
        "archive/invalid-name": "An entry's name has a backslash, a control character, an "
        "empty or '.' segment, or is too long.",
        "archive/duplicate-entry": "Two entries have the same name.",
        "archive/symlink": "An entry is a symbolic link.",
        "archive/device-file": "An entry is a device, pipe, socket or unknown file type.",
        "archive/encrypted": "An entry is encrypted.",
        "archive/unsupported-compression": "An entry uses a method other than deflate or none.",
        "archive/file-too-large": "An entry inflates past the limit for one file.",
        "archive/total-too-large": "The entries inflate past the limit for the whole bundle.",
        "archive/compression-ratio": "An entry inflates far more than real assets do (a zip bomb).",
        "archive/corrupt": "An entry cannot be read: a bad header, stream or checksum.",
        # manifest.json (lines are the offending value's).
        "manifest/missing": "The bundle has no manifest.json at its root.",
        "manifest/too-large": "manifest.json is over 64 KiB.",
        "manifest/invalid-json": "manifest.json is not UTF-8 JSON.",
        "manifest/duplicate-key": "An object of manifest.json repeats a key.",
        "manifest/schema": "manifest.json breaks the published schema in another way.",
        "manifest/invalid-name": "name is missing, blank or too long.",
        "manifest/invalid-version": "version is missing or not Semantic Versioning 2.0.0.",
        "manifest/invalid-entry": "entry is missing or not a relative path to an .html file.",
        "manifest/missing-entry": "entry names a file the bundle does not have.",
        "manifest/unknown-permission": "A permission is not in the platform's catalogue.",
        "manifest/missing-justification": "A permission has no justification, or a blank one.",
        "manifest/duplicate-permission": "A permission is requested twice.",
        "manifest/invalid-domain": "A network domain is not a lowercase host name or '*.' one.",
        "manifest/duplicate-domain": "A network domain is listed twice.",
        # The code (.js, .mjs, .cjs files; scripts, handlers and javascript: URLs in .html).
        "code/parse-error": "The code does not parse, so it cannot be reviewed.",
        "code/too-complex": "The code nests too deeply to be reviewed.",
        "code/eval": "eval is referenced, however reached.",
        "code/new-function": "The Function constructor is called or referenced.",
        "code/string-timer": "setTimeout or setInterval is given a string to run.",
        "code/remote-import": "Code is imported from a URL outside the bundle.",
        "code/remote-script": "A <script src> loads code from outside the bundle.",
        "code/remote-base": "A <base href> points the page's relative URLs outside the bundle.",
        "code/dynamic-import": "import() gets a computed specifier.",
        "code/document-cookie": "document.cookie is read or written.",
        "code/undeclared-domain": "A network call reaches a host network_domains does not list.",
        "code/unverifiable-url": "A network call's URL is computed, so its host is unknown.",
        "code/private-api": "The shell's private API is used (superapp.internal, "
        "superapp._*, __superapp*).",
        "code/computed-global": "A global object or superapp is indexed by a computed key.",
    }
)
