"""Where each value of a JSON document starts, so a manifest finding can name its line.

The standard `json` module forgets positions; this walks a document that `json.loads`
already accepted and records the offset of every value by its path (keys and indexes),
leaving the decoding of strings and scalars to `json.JSONDecoder.raw_decode`.
"""

from __future__ import annotations

import bisect
import contextlib
import json

__all__ = ["JsonPath", "value_lines"]

JsonPath = tuple[str | int, ...]

_MAX_DEPTH = 64
"""Deeper values are not located (a manifest has three levels); they get their
nearest located ancestor's line."""
_WHITESPACE = " \t\n\r"


class _Walker:
    def __init__(self, text: str) -> None:
        self.text = text
        self.decoder = json.JSONDecoder()
        self.offsets: dict[JsonPath, int] = {}

    def skip(self, index: int) -> int:
        while index < len(self.text) and self.text[index] in _WHITESPACE:
            index += 1
        return index

    def value(self, index: int, path: JsonPath) -> int:
        """Records the value at `index` (and its children) and returns where it ends."""
        index = self.skip(index)
        self.offsets[path] = index
        opener = self.text[index]
        if opener not in "{[" or len(path) >= _MAX_DEPTH:
            _, end = self.decoder.raw_decode(self.text, index)
            return end
        closer = "}" if opener == "{" else "]"
        index = self.skip(index + 1)
        position = 0
        while self.text[index] != closer:
            if opener == "{":
                key, index = self.decoder.raw_decode(self.text, index)
                index = self.skip(index) + 1  # the ':'
                index = self.value(index, (*path, str(key)))
            else:
                index = self.value(index, (*path, position))
                position += 1
            index = self.skip(index)
            if self.text[index] == ",":
                index = self.skip(index + 1)
        return index + 1


def value_lines(text: str) -> dict[JsonPath, int]:
    """1-based line of each value in `text` (a document `json.loads` accepts), by path;
    a repeated key maps to its last value, as `json.loads` keeps the last."""
    walker = _Walker(text)
    # Not a document json.loads accepts: what was walked so far is located.
    with contextlib.suppress(ValueError, IndexError, RecursionError):
        walker.value(0, ())
    newlines = [index for index, char in enumerate(text) if char == "\n"]
    return {
        path: bisect.bisect_left(newlines, offset) + 1 for path, offset in walker.offsets.items()
    }
