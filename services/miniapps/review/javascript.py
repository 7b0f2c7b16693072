"""Checks of a mini-app's JavaScript, on the syntax tree tree-sitter-javascript builds.

The platform API convention the checks hold code to: mini-app code talks to the shell
only through the global `superapp` object's public namespaces (`superapp.auth`,
`superapp.pay`, `superapp.ui`, `superapp.storage`, ...). Anything under
`superapp.internal`, any `superapp._*` member, and any global whose name starts with
`__superapp` is the shell's private API and refused (`code/private-api`).

What is found, through the obfuscations a parser still sees through: a global reached as
`eval`, `window.eval`, `globalThis["eval"]`, `self["ev" + "al"]`, `(0, eval)`, an escaped
string (`"\\x65val"`), a `const` alias (`const w = window; w.eval`) or destructuring
(`const {eval: e} = window`):
- `code/eval`: any reference to `eval`;
- `code/new-function`: the Function constructor, called or referenced (`new Function`,
  `Function(...)`, `window.Function`, `x.constructor("code")`), except `Function.prototype`
  and `instanceof Function`;
- `code/string-timer`: `setTimeout`/`setInterval` given a string (or string-built) first
  argument, which the browser runs as code;
- `code/remote-import`: `import()`, `import ... from`, `export ... from` or
  `importScripts()` of a URL with a scheme (`https:`, `data:`, `//host`): code from
  outside the bundle escapes review; `code/dynamic-import`: an `import()` whose specifier
  is computed, so the review cannot tell where the code comes from;
- `code/document-cookie`: `document.cookie`, read or written (the shell owns sessions);
- `code/undeclared-domain`: a network call (`fetch`, `XMLHttpRequest.open`, `WebSocket`,
  `EventSource`, `navigator.sendBeacon`) to an absolute URL whose host the manifest's
  `network_domains` does not declare; `code/unverifiable-url`: such a call whose URL is
  computed so that its host cannot be read (`fetch(url)` with `url` a parameter). The
  latter is refused rather than let through: the review promises that the declared hosts
  are the only ones the code names, and a developer can keep that promise cheaply (a
  literal URL, a `const`, or a template whose host part is literal, as in
  `` `https://api.example.com/items/${id}` `` or `` `${API}/items` `` with `API` a
  `const`). Relative URLs stay in the bundle's origin and pass; URLs are read as
  browsers read them (see `services.miniapps.review.urls`);
- `code/private-api`: see above; `code/computed-global`: a global object (`window`,
  `globalThis`, `self`, `superapp`, ...) indexed by a computed key (`window[name]`), which
  can reach any of the above unseen;
- `code/parse-error`: code tree-sitter cannot parse, which the review cannot vouch for;
  `code/too-complex`: code nested deeper than the review follows.

In HTML files the same checks run on inline `<script>` elements, event-handler attributes
and `javascript:` URLs; `<script src>` and `<base href>` with an absolute URL are refused
(`code/remote-script`, `code/remote-base`).

Out of reach of these static checks, and left to the shell's run-time defences (a
Content-Security-Policy built from `network_domains` without `unsafe-eval`, the sandboxed
`superapp` bridge): values computed at run time (a key decoded from base64, a URL read
from a server), aliases through mutable variables, function parameters or object fields,
a local variable that shadows a global name (a local `fetch` is checked as if global),
network access through APIs not listed above (`<img src>`, `<iframe src>`, CSS `url()`,
`window.open`, `location =`, `Worker`), code written into the page at run time
(`document.write`, a script element whose `src` is set from code), and WebAssembly.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass

import tree_sitter_javascript
from tree_sitter import Language, Node, Parser, Query, QueryCursor

from services.miniapps.review.findings import FindingSink
from services.miniapps.review.urls import UrlTarget, code_origin, host_declared, url_target

__all__ = ["CodeChecker", "Script"]

_GLOBAL_OBJECTS = frozenset({"window", "globalThis", "self", "top", "parent", "frames"})
_PLATFORM = "superapp"
_HTTP_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"}
)
_MAX_DEPTH = 12
"""How far constant folding and alias resolution follow nested expressions; deeper ones
are treated as unknown (and a hostile file cannot exhaust the stack)."""
_SNIPPET = 60
_MAX_NESTING = 2000
"""Deeper syntax trees are refused (`code/too-complex`) before they are queried: real
code nests a few dozen levels (a few hundred in long method chains), while tree-sitter's
query cursor slows down sharply on trees tens of thousands of levels deep, and finding a
node's parent costs a walk from the root."""

_NAME_TRIGGERS = (b"eval", b"Function", b"__superapp", b"\\")
# Each pattern of the query, with byte strings of which the source must hold one for the
# pattern to be able to match (none: always needed); leaving out the patterns that cannot
# match saves their cost, paid per candidate node. Every pattern is a single node and the
# checks read its fields in Python: a pattern that also matches fields (a member and its
# property) keeps a match in progress per enclosing node while the cursor walks, which a
# chain like `a.b.b.b...` (20,000 deep) turns into minutes.
_PATTERNS: tuple[tuple[str, tuple[bytes, ...]], ...] = (
    ("(variable_declarator) @declarator", (b"const",)),
    (
        r"""((identifier) @name (#match? @name "^(eval|Function|__superapp.*)$|\\\\"))""",
        _NAME_TRIGGERS,
    ),
    (
        r"""((shorthand_property_identifier) @name
  (#match? @name "^(eval|Function|__superapp.*)$|\\\\"))""",
        _NAME_TRIGGERS,
    ),
    (
        r"""((property_identifier) @property
  (#match? @property "^(eval|Function|cookie|internal|constructor|_.*)$|\\\\"))""",
        (b"eval", b"Function", b"cookie", b"internal", b"constructor", b"_", b"\\"),
    ),
    ("(subscript_expression) @subscript", ()),
    ("(call_expression) @call", ()),
    ("(new_expression) @new", (b"new",)),
    ("(object_pattern) @pattern", (b"{",)),
    ("(import_statement) @static_import", (b"import",)),
    ("(export_statement) @static_import", (b"export",)),
)


@dataclass(frozen=True)
class Script:
    """JavaScript to check and where it sits: a whole .js file, or a script inside an
    .html file starting at `line` (1-based) and `column` (0-based) of that file."""

    file: str
    code: bytes
    line: int = 1
    column: int = 0


class CodeChecker:
    """Checks scripts against the rules above, with the hosts a manifest declared (None
    when they are unknown: the network rules are then left out)."""

    def __init__(self, network_domains: Collection[str] | None) -> None:
        language = Language(tree_sitter_javascript.language())
        self._language = language
        self._parser = Parser(language)
        self._queries: dict[tuple[bool, ...], Query] = {}
        self._domains = None if network_domains is None else frozenset(network_domains)

    def check(self, script: Script, sink: FindingSink) -> None:
        """Adds the script's findings to `sink`, in order of position."""
        for line, _, rule, message in sorted(self.findings(script)):
            sink.add(script.file, line, rule, message)

    def findings(self, script: Script) -> list[tuple[int, int, str, str]]:
        """The script's findings as (line, column, rule, message), in no order."""
        tree = self._parser.parse(script.code)
        found = _ScriptCheck(script, self._domains)
        if tree.root_node.has_error:
            found.parse_error(tree.root_node)
        if (deep := _deeper_than(tree.root_node, _MAX_NESTING)) is not None:
            found.too_complex(deep)
            return found.findings
        cursor = QueryCursor(self._query_for(script.code))
        captures = cursor.captures(tree.root_node)
        if cursor.did_exceed_match_limit:
            found.too_complex(tree.root_node)
        found.consts = _consts(captures.get("declarator", []))
        found.apply(captures)
        return found.findings

    def _query_for(self, code: bytes) -> Query:
        """The query of the patterns that can match in `code`."""
        needed = tuple(
            not triggers or any(trigger in code for trigger in triggers)
            for _, triggers in _PATTERNS
        )
        if needed not in self._queries:
            source = "\n".join(
                pattern for (pattern, _), wanted in zip(_PATTERNS, needed, strict=True) if wanted
            )
            self._queries[needed] = Query(self._language, source)
        return self._queries[needed]


def _deeper_than(root: Node, limit: int) -> Node | None:
    """A node nested more than `limit` levels below `root`, or None. Only subtrees with
    more nodes than the depth left are entered, so real code costs a few hundred steps."""
    pending = [(root, 0)]
    while pending:
        node, depth = pending.pop()
        if depth > limit:
            return node
        if depth + node.descendant_count > limit:
            pending.extend((child, depth + 1) for child in node.children)
    return None


def _consts(declarators: list[Node]) -> dict[str, Node]:
    """`const` names declared once in the file, and their values."""
    values: dict[str, Node] = {}
    repeated: set[str] = set()
    for declarator in declarators:
        declaration = declarator.parent
        kind = None if declaration is None else declaration.child_by_field_name("kind")
        name = declarator.child_by_field_name("name")
        value = declarator.child_by_field_name("value")
        if kind is None or kind.type != "const" or name is None or value is None:
            continue
        if name.type == "identifier":
            if _name(name) in values:
                repeated.add(_name(name))
            values[_name(name)] = value
    return {name: value for name, value in values.items() if name not in repeated}


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", "replace")


_UNICODE_ESCAPE = re.compile(r"\\u\{([0-9a-fA-F]{1,6})\}|\\u([0-9a-fA-F]{4})")


def _name(node: Node) -> str:
    """An identifier's name, with its unicode escapes decoded (`\\u0065val` is `eval`)."""
    text = _text(node)
    if "\\" not in text:
        return text
    return _UNICODE_ESCAPE.sub(lambda escape: _unescape(escape.group(0)), text)


def _operator(node: Node) -> str:
    operator = node.child_by_field_name("operator")
    return "" if operator is None else operator.type


def _arguments(node: Node | None) -> list[Node]:
    if node is None:
        return []
    return [child for child in node.named_children if child.type != "comment"]


_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


def _unescape(escape: str) -> str:
    """The character a JavaScript escape sequence (`\\x65`, `\\u0065`, `\\u{65}`) stands for."""
    body = escape[1:]
    try:
        if body.startswith("u{"):
            return chr(int(body[2:-1], 16))
        if body[:1] in {"x", "u"}:
            return chr(int(body[1:], 16))
        if body[:1].isdigit() and body != "0":
            return chr(int(body, 8))
    except ValueError:
        return ""
    if body.startswith(("\n", "\r", "\u2028", "\u2029")):
        return ""  # a line continuation
    return _SIMPLE_ESCAPES.get(body, body)


class _ScriptCheck:
    """The checks of one script; findings are (line, column, rule, message)."""

    def __init__(self, script: Script, domains: frozenset[str] | None) -> None:
        self.script = script
        self.domains = domains
        self.consts: dict[str, Node] = {}
        self.findings: list[tuple[int, int, str, str]] = []

    def snippet(self, node: Node) -> str:
        """The start of a node's source, for a message (never the whole of a huge node)."""
        start = node.start_byte
        raw = self.script.code[start : min(node.end_byte, start + 4 * _SNIPPET)]
        text = " ".join(raw.decode("utf-8", "replace").split())
        return text if len(text) <= _SNIPPET else text[: _SNIPPET - 3] + "..."

    def add(self, node: Node, rule: str, message: str) -> None:
        row, column = node.start_point
        line = self.script.line + row
        column += 1 + (self.script.column if row == 0 else 0)
        self.findings.append((line, column, rule, f"{message} (column {column})"))

    # -- what an expression stands for -------------------------------------------------

    def static_text(self, node: Node | None, depth: int = 0) -> tuple[str, bool] | None:
        """The leading text a string expression is known to have, and whether that is all
        of it: a literal, a template up to its first substitution, a `+` of those, a
        single-declaration `const`. None when not even a prefix is known."""
        if node is None or depth > _MAX_DEPTH:
            return None
        kind = node.type
        if kind in {"string", "template_string"}:
            text = ""
            for value in self.string_parts(node, depth):
                if value is None:
                    return text, False
                text += value
            return text, True
        if kind == "parenthesized_expression" and node.named_child_count == 1:
            return self.static_text(node.named_children[0], depth + 1)
        if kind == "identifier" and (bound := self.consts.get(_name(node))) is not None:
            return self.static_text(bound, depth + 1)
        if kind == "binary_expression":
            if _operator(node) != "+":
                return None
            left = self.static_text(node.child_by_field_name("left"), depth + 1)
            if left is None or not left[1]:
                return left
            right = self.static_text(node.child_by_field_name("right"), depth + 1)
            if right is None:
                return left[0], False
            return left[0] + right[0], right[1]
        return None

    def string_parts(self, node: Node, depth: int) -> Iterator[str | None]:
        """A string or template's pieces and their text; None for a substitution whose
        value is not a known constant (`${API}` with `const API = "..."` is known)."""
        for child in node.named_children:
            if child.type == "string_fragment":
                yield _text(child)
            elif child.type == "escape_sequence":
                yield _unescape(_text(child))
            elif child.type == "template_substitution":
                inner = _arguments(child)
                known = self.static_text(inner[0], depth + 1) if len(inner) == 1 else None
                yield known[0] if known is not None and known[1] else None

    def constant(self, node: Node | None) -> str | None:
        """The string an expression always evaluates to, if it is known."""
        known = self.static_text(node)
        return known[0] if known is not None and known[1] else None

    def global_name(self, node: Node | None, depth: int = 0) -> str | None:
        """The global an expression refers to: `eval`, `window.eval`, `self["eval"]`,
        `(0, eval)`, or a `const` alias of one of those; None when it is not one."""
        if node is None or depth > _MAX_DEPTH:
            return None
        kind = node.type
        if kind == "identifier":
            name = _name(node)
            value = self.consts.get(name)
            if value is not None and value.type in {
                "identifier",
                "member_expression",
                "subscript_expression",
                "parenthesized_expression",
            }:
                return self.global_name(value, depth + 1)
            return name
        if kind in {"parenthesized_expression", "sequence_expression"} and node.named_children:
            return self.global_name(node.named_children[-1], depth + 1)
        if kind in {"member_expression", "subscript_expression"}:
            owner = node.child_by_field_name("object")
            if self.global_name(owner, depth + 1) not in _GLOBAL_OBJECTS:
                return None
            key = node.child_by_field_name("property" if kind == "member_expression" else "index")
            if key is None:
                return None
            return _name(key) if key.type == "property_identifier" else self.constant(key)
        return None

    # -- the rules -----------------------------------------------------------------------

    def apply(self, captures: dict[str, list[Node]]) -> None:
        """Applies the rules to the query's captures."""
        for node in captures.get("name", []):
            self.global_reference(node, _name(node))
        for node in captures.get("property", []):
            member = node.parent
            if member is not None and member.type == "member_expression":
                self.property_access(member, member.child_by_field_name("object"), _name(node))
        for node in captures.get("subscript", []):
            self.subscript(
                node, node.child_by_field_name("object"), node.child_by_field_name("index")
            )
        for node in captures.get("call", []):
            if (function := node.child_by_field_name("function")) is not None:
                self.call(node, function, _arguments(node.child_by_field_name("arguments")))
        for node in captures.get("new", []):
            if (constructor := node.child_by_field_name("constructor")) is not None:
                self.construction(
                    node, constructor, _arguments(node.child_by_field_name("arguments"))
                )
        for node in captures.get("pattern", []):
            declarator = node.parent
            if declarator is not None and declarator.type == "variable_declarator":
                value = declarator.child_by_field_name("value")
                if value is not None and declarator.child_by_field_name("name") == node:
                    self.destructuring(node, value)
        for node in captures.get("static_import", []):
            if (source := node.child_by_field_name("source")) is not None:
                self.code_source(source, "import")

    def global_reference(self, node: Node, name: str) -> None:
        """A global named directly (or through a global object, as `where`)."""
        parent = node.parent
        if name == "eval":
            self.add(
                node,
                "code/eval",
                f"eval runs a string as code ({self.snippet(parent or node)}): parse data with "
                "JSON.parse and call functions directly instead",
            )
        elif name == "Function":
            if parent is not None and (
                (
                    parent.type == "member_expression"
                    and parent.child_by_field_name("object") == node
                )
                or (parent.type == "binary_expression" and _operator(parent) == "instanceof")
            ):
                return  # Function.prototype, x instanceof Function: no code is made
            self.add(
                node,
                "code/new-function",
                "the Function constructor turns a string into code "
                f"({self.snippet(parent or node)}): write the function in the source instead",
            )
        elif name.startswith("__superapp"):
            self.private_api(node, name)

    def private_api(self, node: Node, name: str) -> None:
        self.add(
            node,
            "code/private-api",
            f"{name} is the shell's private API: use only the public namespaces of the "
            "global superapp object (superapp.auth, superapp.pay, superapp.ui, ...)",
        )

    def property_access(self, node: Node, owner: Node | None, key: str) -> None:
        """`owner.key` or `owner["key"]`, and what it reaches."""
        owner_name = self.global_name(owner)
        if owner_name in _GLOBAL_OBJECTS and (
            key in {"eval", "Function"} or key.startswith("__superapp")
        ):
            self.global_reference(node, key)
        elif owner_name == "document" and key == "cookie":
            self.add(
                node,
                "code/document-cookie",
                f"document.cookie is off limits to mini-apps ({self.snippet(node)}): keep state "
                "with superapp.storage and let the shell handle sessions",
            )
        elif owner_name == _PLATFORM and (key == "internal" or key.startswith("_")):
            self.private_api(node, f"superapp.{key}")
        elif key == "constructor" and node.parent is not None:
            call = node.parent
            if call.type == "call_expression" and _arguments(call.child_by_field_name("arguments")):
                self.add(
                    call,
                    "code/new-function",
                    f"calling .constructor(...) reaches the Function constructor "
                    f"({self.snippet(call)}): write the function in the source instead",
                )

    def subscript(self, node: Node, owner: Node | None, index: Node | None) -> None:
        if owner is None or index is None:
            return
        key = self.constant(index)
        if key is not None:
            self.property_access(node, owner, key)
            return
        owner_name = self.global_name(owner)
        if index.type != "number" and (owner_name in _GLOBAL_OBJECTS or owner_name == _PLATFORM):
            self.add(
                node,
                "code/computed-global",
                f"{owner_name}[...] with a computed key ({self.snippet(node)}) can reach eval or "
                "private APIs unseen: name the property directly",
            )

    def destructuring(self, pattern: Node, value: Node) -> None:
        """`const {eval: e} = window`, `const {internal} = superapp`: property accesses."""
        for child in pattern.named_children:
            key: str | None = None
            if child.type == "shorthand_property_identifier_pattern":
                key = _name(child)
            elif child.type == "pair_pattern":
                name = child.child_by_field_name("key")
                if name is not None:
                    key = _name(name) if name.type == "property_identifier" else self.constant(name)
            if key is not None:
                self.property_access(child, value, key)

    def call(self, node: Node, function: Node, arguments: list[Node]) -> None:
        if function.type == "import":
            self.code_source(arguments[0] if arguments else None, "import()", node)
            return
        if function.type == "member_expression" and (
            (key := function.child_by_field_name("property")) is not None
            and key.type == "property_identifier"
        ):
            method = _name(key)
            if method == "constructor":
                return  # the member rule reports it
            owner_name = self.global_name(function.child_by_field_name("object"))
            if method == "sendBeacon" and owner_name == "navigator" and arguments:
                self.network(node, "navigator.sendBeacon", arguments[0])
                return
            if method == "open" and len(arguments) >= 2:
                verb = self.constant(arguments[0])
                if verb is not None and verb.upper() in _HTTP_METHODS:
                    self.network(node, "XMLHttpRequest.open", arguments[1])
                    return
        name = self.global_name(function)
        if name == "fetch" and arguments:
            self.network(node, "fetch", arguments[0])
        elif name in {"setTimeout", "setInterval"} and arguments:
            if self.is_string(arguments[0]):
                self.add(
                    node,
                    "code/string-timer",
                    f"{name} with a string runs it as code ({self.snippet(node)}): pass a "
                    "function instead",
                )
        elif name == "importScripts":
            for argument in arguments:
                self.code_source(argument, "importScripts()", node)

    def construction(self, node: Node, constructor: Node, arguments: list[Node]) -> None:
        name = self.global_name(constructor)
        if name in {"WebSocket", "EventSource"} and arguments:
            self.network(node, f"new {name}", arguments[0])

    def is_string(self, node: Node) -> bool:
        """Whether an expression evaluates to a string (not a function)."""
        if self.static_text(node) is not None:
            return True
        return node.type == "binary_expression" and any(
            self.static_text(side) is not None
            for side in (node.child_by_field_name("left"), node.child_by_field_name("right"))
        )

    def code_source(self, specifier: Node | None, how: str, where: Node | None = None) -> None:
        """Where `import`, `import()` or `importScripts()` loads code from."""
        at = where or specifier
        if at is None:
            return
        known = self.static_text(specifier)
        origin = "unknown" if known is None else code_origin(*known)
        if origin == "outside":
            self.add(
                at,
                "code/remote-import",
                f"{how} loads code from outside the bundle ({self.snippet(at)}), which escapes "
                "review: put the module in the bundle and import it by a relative path",
            )
        elif origin == "unknown":
            self.add(
                at,
                "code/dynamic-import",
                f"{how} of a computed specifier ({self.snippet(at)}) cannot be reviewed: import "
                "a relative path written as a literal",
            )

    def network(self, node: Node, api: str, url: Node) -> None:
        """A network call to `url`: its host must be one the manifest declares."""
        if self.domains is None:
            return
        known = self.static_text(url)
        target = UrlTarget("unknown", "") if known is None else url_target(*known)
        if target.kind == "unknown":
            self.add(
                node,
                "code/unverifiable-url",
                f"{api} gets a URL computed at run time ({self.snippet(node)}), so the review "
                "cannot check its host against network_domains: use a literal URL, a const, "
                "or a template whose scheme and host are literal",
            )
        elif target.kind == "host" and not host_declared(target.host, self.domains):
            self.add(
                node,
                "code/undeclared-domain",
                f"{api} reaches {target.host or target.url!r}, which the manifest's "
                f"network_domains does not declare ({self.snippet(node)}): add the host to "
                "network_domains or remove the call",
            )

    def too_complex(self, root: Node) -> None:
        self.add(
            root,
            "code/too-complex",
            f"the code nests more than {_MAX_NESTING} levels deep here, too deep to review: "
            "break long chains of calls, concatenations or nested functions apart",
        )

    def parse_error(self, root: Node) -> None:
        """Reports the first place tree-sitter could not parse."""
        node = root
        while not (node.is_error or node.is_missing):
            broken = [child for child in node.children if child.has_error or child.is_missing]
            if not broken:
                break
            node = broken[0]
        self.add(
            node,
            "code/parse-error",
            f"this is not valid JavaScript ({self.snippet(node) or 'something missing'}), so the "
            "review cannot vouch for the file: fix the syntax (or ship the unminified source "
            "that produced it)",
        )
