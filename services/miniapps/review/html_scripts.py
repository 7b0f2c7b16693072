"""The JavaScript inside an HTML file: inline `<script>` elements, event-handler
attributes (`onclick="..."`) and `javascript:` URLs, each with its line in the file; and
what points the page outside the bundle: `<script src>` with an absolute URL, and
`<base href>` with one (which moves every relative URL of the page, scripts included)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from services.miniapps.review.javascript import Script

__all__ = ["HtmlScripts", "scripts_in_html"]

# <script type> values a browser runs as JavaScript (an absent or empty type included).
_JAVASCRIPT_TYPES = frozenset(
    {
        "",
        "module",
        "text/javascript",
        "application/javascript",
        "text/ecmascript",
        "application/ecmascript",
        "text/jscript",
        "text/livescript",
        "application/x-javascript",
        "application/x-ecmascript",
        "text/x-javascript",
        "text/x-ecmascript",
    }
)
_URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "data"})
_REMOTE = re.compile(r"^\s*([a-zA-Z][a-zA-Z0-9+.-]*:|[/\\]{2})")


@dataclass
class HtmlScripts:
    """What an HTML file holds: its scripts, and the remote `<script src>` (line, URL)."""

    scripts: list[Script] = field(default_factory=list)
    remote_sources: list[tuple[int, str]] = field(default_factory=list)
    remote_bases: list[tuple[int, str]] = field(default_factory=list)
    """`<base href>` with an absolute URL: (line, URL)."""
    unparsable_line: int | None = None
    """Where the HTML parser gave up, when it did."""


class _Collector(HTMLParser):
    def __init__(self, file: str) -> None:
        super().__init__(convert_charrefs=True)
        self.file = file
        self.found = HtmlScripts()
        self._script: tuple[int, int] | None = None
        self._parts: list[str] = []

    def _add(self, code: str, line: int, column: int) -> None:
        self.found.scripts.append(Script(self.file, code.encode("utf-8"), line, column))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        line, column = self.getpos()
        values = {name: value or "" for name, value in attrs}
        for name, value in values.items():
            if name.startswith("on") and value.strip():
                self._add(value, line, 0)
            elif name in _URL_ATTRIBUTES and value.strip().lower().startswith("javascript:"):
                self._add(value.strip()[len("javascript:") :], line, 0)
        if tag == "base" and _REMOTE.match(values.get("href", "")):
            self.found.remote_bases.append((line, values["href"]))
        if tag != "script":
            return
        source = values.get("src", "")
        if _REMOTE.match(source):
            self.found.remote_sources.append((line, source))
        if values.get("type", "").strip().lower() not in _JAVASCRIPT_TYPES:
            return  # a template or data block: the browser does not run it
        start_tag = self.get_starttag_text() or ""
        if "\n" in start_tag:
            line += start_tag.count("\n")
            column = len(start_tag.rsplit("\n", 1)[1])
        else:
            column += len(start_tag)
        self._script = (line, column)
        self._parts = []

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._parts.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self.flush()

    def flush(self) -> None:
        if self._script is not None:
            self._add("".join(self._parts), *self._script)
            self._script = None


def scripts_in_html(file: str, html: bytes) -> HtmlScripts:
    """The JavaScript in `html` (the content of `file`); never raises."""
    collector = _Collector(file)
    try:
        collector.feed(html.decode("utf-8", "replace"))
        collector.close()
    except (AssertionError, ValueError, IndexError):
        collector.found.unparsable_line = collector.getpos()[0]
    # A script left open at the end is not run by browsers; it is reviewed all the same
    # (the parser keeps its text unread).
    collector.handle_data(collector.rawdata)
    collector.flush()
    return collector.found
