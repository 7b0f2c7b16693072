"""The metric names a PromQL expression selects, and the expressions under
deploy/observability (rules and dashboard queries) to read them from.

A small lexer, not a parser: promtool parses every expression (scripts/check, and
tests/deploy/test_observability.py for the dashboards), so here the text is known to be
valid PromQL and only its selectors need finding. What is not a metric name is taken
out first: strings, label matchers `{...}`, ranges `[...]`, grouping clauses
(`by (...)`, `on (...)`, ...), then every name followed by `(` (a function or an
aggregation) and the language's keywords.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

OBSERVABILITY = Path(__file__).resolve().parents[2] / "deploy" / "observability"
RULE_FILES = sorted((OBSERVABILITY / "rules").glob("*.yml"))
DASHBOARDS = sorted((OBSERVABILITY / "dashboards").glob("*.json"))

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", re.IGNORECASE
)
_BARE_GROUPING = re.compile(r"\b(?:group_left|group_right)\b", re.IGNORECASE)
_OFFSET = re.compile(r"\boffset\s+-?[0-9a-z]+", re.IGNORECASE)
_NAME = re.compile(r"(?<![\w.:$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")
_KEYWORDS = {"and", "or", "unless", "bool", "inf", "nan", "offset", "atan2"}
_GRAFANA_RANGES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
_GRAFANA_VARIABLE = re.compile(r"\$\{?(\w+)\}?")


def metric_names(expression: str) -> set[str]:
    """Every metric name `expression` selects (`up`, `grpc_server_handled_total`, ...)."""
    text = _STRING.sub(" ", expression)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _BARE_GROUPING.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    return {
        match[1]
        for match in _NAME.finditer(text)
        if not match[2] and match[1].lower() not in _KEYWORDS
    }


def as_promql(query: str) -> str:
    """A dashboard query with Grafana's variables replaced, for promtool to parse:
    its ranges by durations, every other variable (used in regex matchers) by `.+`."""
    for variable, duration in _GRAFANA_RANGES.items():
        query = query.replace(variable, duration)
    return _GRAFANA_VARIABLE.sub(".+", query)


@dataclass(frozen=True)
class Expression:
    """An expression found under deploy/observability, and where."""

    where: str
    text: str


def rule_expressions() -> Iterator[Expression]:
    """Every alerting and recording rule's expression."""
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule["record"]
                yield Expression(f"{path.name}: {name}", rule["expr"])


def recorded_names() -> set[str]:
    """The series the recording rules make."""
    return {
        rule["record"]
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_queries() -> Iterator[Expression]:
    """Every query of every panel and templating variable of every dashboard, with
    Grafana's variables left in."""
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in _panels(board["panels"]):
            for target in panel.get("targets", []):
                yield Expression(f"{path.name}: {panel['title']}", target["expr"])
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                query = variable["query"]["query"]
                values = re.fullmatch(r"label_values\((?:(.+),\s*)?\w+\)", query)
                assert values is not None, f"{path.name}: ${variable['name']}: {query}"
                if values[1]:
                    yield Expression(f"{path.name}: ${variable['name']}", values[1])
