"""The contract's request rules, enforced once for every RPC of every service.

The limits of a request (required fields, lengths, id syntax, ranges, known enum values,
ISO 4217 currencies, ...) are `buf.validate` (protovalidate) options on the fields of
the request messages in `protos/`: the contract states them, clients in any language can
check them before sending, and the services enforce them from the same options. Nothing
here restates a limit: each `FieldViolation` is derived from the broken rule and the
rule's own values.

`ContractGuard` (a `HandlerGuard`, innermost: after authentication, inside error
mapping) checks each request against its message's rules before the handler runs, adds
what the RPC's own `RequestChecks` find (what a rule cannot say), and answers
INVALID_ARGUMENT naming every violation at once, as one `RequestCheck` always did.

Violations read as they always have: the rule id (`required`, `string.max_len`,
`string.pattern`, `enum.defined_only`, ...) and the field it broke map to our
`BadRequest` reason (`REQUIRED`, `TOO_LONG`, `MALFORMED_ID`, `UNKNOWN_ENUM_VALUE`, ...)
and a description such as "must be at most 200 characters".

Two engines read the rules. The protovalidate package is the reference: it evaluates
every rule as CEL with cel-python, which costs milliseconds per request. The compiled
engine reads each message's rules from its descriptor once, at start-up, and checks
them with plain Python, reporting exactly what protovalidate would (the same rule ids,
field paths and map keys: tests/runtime/test_contract_rules.py holds the two to that on
generated requests of every RPC). A message with a rule the compiler does not translate
is checked by protovalidate, whole, and says so in the log.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, cast

import grpc
import protovalidate
import re2
from buf.validate import validate_pb2
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from superapp.type.v1 import money_pb2

from services.runtime.errors import FieldViolation
from services.runtime.validation import RequestCheck

__all__ = [
    "HTTPS_PATTERN",
    "NOT_BLANK_PATTERN",
    "PRINTABLE_PATTERN",
    "SCOPE_TOKEN_PATTERN",
    "SHA256_PATTERN",
    "UUID_PATTERN",
    "ContractGuard",
    "ContractRules",
    "RequestChecks",
    "RuleViolation",
    "currency_codes",
    "id_violation",
    "pattern_matcher",
]

if TYPE_CHECKING:  # RpcMethodHandler is generic only in the type stubs
    _Handler: TypeAlias = grpc.RpcMethodHandler[Any, Any]

_log = logging.getLogger(__name__)

# The patterns the protos use, by what they mean to a client. A `string.pattern` rule's
# violation is described by its pattern: these must be the protos' strings exactly.
UUID_PATTERN = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
"""Every resource id: a UUID as `str(uuid.UUID(...))` prints it, lower-case only."""
PRINTABLE_PATTERN = r"^(?:[^\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Zl}\p{Zp}\p{Zs}]| )*$"
"""No control, format, private-use or separator character; the space is allowed."""
NOT_BLANK_PATTERN = r"[^\p{Z}\t-\r\x1c-\x1f\x85]"
"""At least one character that is not whitespace: exactly what Python's `str.strip()`
removes, so a value that matches is never empty once stripped."""
HTTPS_PATTERN = "^https://"
SHA256_PATTERN = "^[0-9a-f]{64}$"
"""A bundle's address: its SHA-256 in lower-case hexadecimal."""
SCOPE_TOKEN_PATTERN = r"^[\x21\x23-\x5b\x5d-\x7e]{1,64}$"  # noqa: S105 - a pattern, not a secret
"""An OAuth scope (RFC 6749 §3.3 scope-token)."""
# RE2 as the rules are evaluated: its `$` is the end of the text, never before a newline.
_UUID = re2.compile(UUID_PATTERN)

_PATTERNS: Mapping[str, tuple[str, str]] = {
    UUID_PATTERN: ("MALFORMED_ID", "must be a UUID in canonical lower-case form"),
    SHA256_PATTERN: ("MALFORMED_SHA256", "must be 64 lower-case hexadecimal digits"),
    SCOPE_TOKEN_PATTERN: (
        "INVALID_SCOPE_TOKEN",
        "must be 1 to 64 printable ASCII characters without spaces, quotes or backslashes "
        "(RFC 6749 scope-token)",
    ),
    PRINTABLE_PATTERN: ("INVALID_CHARACTERS", "must not contain control characters"),
    NOT_BLANK_PATTERN: ("REQUIRED", "is required and may not be only whitespace"),
    HTTPS_PATTERN: ("INVALID_URL", "must be an absolute https:// URL"),
}
# The reasons of the contract's own CEL rules (`(buf.validate.field).cel`), by rule id.
# Their descriptions are the rules' messages. An id `<field>.<name>` on a message-typed
# field concerns that field of the message: `amount_minor.positive` on `amount` is
# reported on `amount.amount_minor`.
_CUSTOM_REASONS: Mapping[str, str] = {
    "amount_minor.positive": "OUT_OF_RANGE",
    "amount_minor.below_limit": "OUT_OF_RANGE",
    "amount_minor.non_negative": "OUT_OF_RANGE",
}
# Fields whose violations read otherwise than the rule's usual wording, by the field's
# full name and the rule id: (reason, description), the description's `{name}`s filled
# in from the field's rules (its list rules, or its or its items' string rules).
_PKCE = "must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636)"
_DOMAIN = "must be a lower-case DNS name such as api.example.com or *.example.com"
_WORDING: Mapping[tuple[str, str], tuple[str, str]] = {
    ("superapp.identity.v1.SetUserRolesRequest.roles", "repeated.min_items"): (
        "REQUIRED",
        "must name at least one role",
    ),
    ("superapp.identity.v1.AuthorizeMiniAppRequest.requested_scopes", "repeated.min_items"): (
        "REQUIRED",
        "must name at least one scope",
    ),
    **{
        (f"superapp.identity.v1.{field}", "repeated.unique"): (
            "DUPLICATE_SCOPE",
            "must not repeat a scope",
        )
        for field in (
            "AuthorizeMiniAppRequest.requested_scopes",
            "AuthorizeMiniAppRequest.granted_scopes",
            "ExchangeAuthorizationCodeRequest.scopes",
        )
    },
    ("superapp.identity.v1.AuthorizeMiniAppRequest.code_challenge", "string.pattern"): (
        "INVALID_CODE_CHALLENGE",
        _PKCE,
    ),
    ("superapp.identity.v1.AuthorizeMiniAppRequest.code_challenge_method", "string.in"): (
        "UNSUPPORTED_CHALLENGE_METHOD",
        'must be "S256"; "plain" and others are not accepted',
    ),
    ("superapp.identity.v1.ExchangeAuthorizationCodeRequest.code_verifier", "string.pattern"): (
        "INVALID_CODE_VERIFIER",
        _PKCE,
    ),
    ("superapp.miniapps.v1.MiniApp.name", "string.pattern"): ("REQUIRED", "is required"),
    ("superapp.miniapps.v1.MiniApp.icon_url", "string.pattern"): (
        "INVALID_URL",
        "must be an absolute https URL",
    ),
    ("superapp.miniapps.v1.MiniApp.redirect_uris", "repeated.min_items"): (
        "REQUIRED",
        "needs at least one URI",
    ),
    ("superapp.miniapps.v1.MiniApp.redirect_uris", "repeated.max_items"): (
        "TOO_MANY",
        "at most {max_items}",
    ),
    ("superapp.miniapps.v1.MiniApp.network_domains", "repeated.max_items"): (
        "TOO_MANY",
        "at most {max_items}",
    ),
    ("superapp.miniapps.v1.MiniApp.network_domains", "string.max_len"): (
        "INVALID_DOMAIN",
        _DOMAIN,
    ),
    ("superapp.miniapps.v1.MiniApp.network_domains", "string.pattern"): (
        "INVALID_DOMAIN",
        _DOMAIN,
    ),
    ("superapp.miniapps.v1.RejectVersionRequest.reasons", "repeated.min_items"): (
        "REQUIRED",
        "at least one reason is required",
    ),
    ("superapp.miniapps.v1.RejectVersionRequest.reasons", "repeated.max_items"): (
        "TOO_MANY",
        "at most {max_items}",
    ),
    ("superapp.miniapps.v1.RejectVersionRequest.reasons", "string.pattern"): (
        "REQUIRED",
        "is required",
    ),
    ("superapp.miniapps.v1.SuspendMiniAppRequest.reason", "string.pattern"): (
        "REQUIRED",
        "is required",
    ),
}
_IDEMPOTENCY_KEY = "request_id"
_CURRENCY = "currency_code"
_SECONDS_PER_DAY = 86_400
_SECONDS_PER_HOUR = 3_600


@functools.cache
def currency_codes() -> frozenset[str]:
    """The currencies the contract accepts: the `in` list of `Money.currency_code`."""
    rules = _field_rules(money_pb2.Money.DESCRIPTOR.fields_by_name["currency_code"])
    if rules is None:
        raise LookupError("superapp.type.v1.Money.currency_code carries no rules")
    return frozenset(getattr(rules.string, "in"))


def id_violation(field: str, value: str) -> FieldViolation | None:
    """What is wrong with `value` as a required resource id, as the contract's id rules
    say it: for an id field that carries no rule because it is output only everywhere
    else (`product.product_id` of an update)."""
    if not value:
        return FieldViolation(field, "is required", "REQUIRED")
    if _UUID.search(value) is None:
        reason, description = _PATTERNS[UUID_PATTERN]
        return FieldViolation(field, description, reason)
    return None


@dataclass(frozen=True, slots=True)
class PathElement:
    """One step of a violation's field path: a field, and which item of it if any."""

    name: str
    subscript: int | str | None = None


@dataclass(frozen=True, slots=True)
class RuleViolation:
    """One broken rule, as protovalidate reports it: where, which rule, and its message."""

    path: tuple[PathElement, ...]
    rule_id: str
    message: str
    for_key: bool = False


Engine = Literal["compiled", "protovalidate"]
_Find = Callable[[Message], list["RuleViolation"]]


class ContractRules:
    """The rules of every message: `compiled` (the default) or checked by `protovalidate`
    (the reference, for tests and comparison)."""

    def __init__(self, engine: Engine = "compiled") -> None:
        self._engine = engine

    def checker(self, descriptor: Descriptor) -> Callable[[Message], list[FieldViolation]] | None:
        """What is wrong with a message of this type, as a function; None when no rule
        can be broken by one (its own or a field's), so that nothing need be called."""
        find = self._finder(descriptor)
        if find is None:
            return None

        def violations(message: Message) -> list[FieldViolation]:
            found = find(message)
            if not found:
                return []
            return [field_violation(descriptor, message, violation) for violation in found]

        return violations

    def violations(self, message: Message) -> list[FieldViolation]:
        """What is wrong with `message` by its rules, as our field violations."""
        check = self.checker(_descriptor(message))
        return [] if check is None else check(message)

    def violations_of(
        self, message: Message, *, at: str, fields: Sequence[str]
    ) -> list[FieldViolation]:
        """The violations of `message`'s rules on `fields` only, its path prefixed with
        `at`: for a resource in an update, whose mask names the fields that count."""
        wanted = set(fields)
        descriptor = _descriptor(message)
        return [
            _prefixed(at, field_violation(descriptor, message, violation))
            for violation in self.rule_violations(message)
            if violation.path and violation.path[0].name in wanted
        ]

    def rule_violations(self, message: Message) -> list[RuleViolation]:
        """Every rule `message` breaks, in protovalidate's terms."""
        find = self._finder(_descriptor(message))
        return [] if find is None else find(message)

    def compiles(self, descriptor: Descriptor) -> bool:
        """Whether the compiled engine checks messages of this type without protovalidate."""
        return _compiled(descriptor) is not _protovalidate_violations

    def _finder(self, descriptor: Descriptor) -> _Find | None:
        if self._engine == "protovalidate":
            return _protovalidate_violations if _has_rules(descriptor, frozenset()) else None
        return _compiled(descriptor)


def _descriptor(message: Message) -> Descriptor:
    # The type stubs also allow upb's descriptor class, which is registered as one.
    return cast("Descriptor", message.DESCRIPTOR)


def _protovalidate_violations(message: Message) -> list[RuleViolation]:
    """Every rule `message` breaks, as protovalidate (CEL) finds them."""
    found = [
        RuleViolation(
            path=tuple(_path_element(e) for e in violation.proto.field.elements),
            rule_id=violation.proto.rule_id,
            message=violation.proto.message,
            for_key=violation.proto.for_key,
        )
        for violation in _validator().collect_violations(message)
    ]
    found.extend(_undefined_enum_items(message, ()))
    return found


@functools.cache
def _validator() -> protovalidate.Validator:
    """One validator for the process: it compiles each message's rules once."""
    # protovalidate's constructor carries no annotations.
    return protovalidate.Validator()  # type: ignore[no-untyped-call]


def _undefined_enum_items(message: Message, path: tuple[PathElement, ...]) -> list[RuleViolation]:
    """`enum.defined_only` of repeated enum fields' items, which protovalidate-python
    1.2 does not check (the Go and ECMAScript implementations do, and the contract
    says it): without this, an unknown role would reach the handler."""
    found: list[RuleViolation] = []
    for field in _descriptor(message).fields:
        rules = _field_rules(field)
        if rules is not None and rules.ignore == validate_pb2.IGNORE_ALWAYS:
            continue
        if field.is_repeated and field.enum_type is not None:
            if rules is not None and rules.repeated.items.enum.defined_only:
                known = field.enum_type.values_by_number
                for index, value in enumerate(getattr(message, field.name)):
                    if value not in known:
                        where = (*path, PathElement(field.name, index))
                        message_ = "value must be one of the defined enum values"
                        found.append(RuleViolation(where, "enum.defined_only", message_))
        elif field.message_type is not None and not field.is_repeated:
            nested = getattr(message, field.name) if message.HasField(field.name) else None
            if nested is not None:
                found += _undefined_enum_items(nested, (*path, PathElement(field.name)))
    return found


def _has_rules(descriptor: Descriptor, seen: frozenset[str]) -> bool:
    if descriptor.full_name in seen:
        return False
    if descriptor.GetOptions().HasExtension(validate_pb2.message):
        return True
    for field in descriptor.fields:
        if _field_rules(field) is not None:
            return True
        if field.message_type is not None and _has_rules(
            field.message_type, seen | {descriptor.full_name}
        ):
            return True
    return False


def _field_rules(field: FieldDescriptor) -> validate_pb2.FieldRules | None:
    options = field.GetOptions()
    if not options.HasExtension(validate_pb2.field):
        return None
    rules: validate_pb2.FieldRules = options.Extensions[validate_pb2.field]
    return rules


def _path_element(element: validate_pb2.FieldPathElement) -> PathElement:
    which = element.WhichOneof("subscript")
    subscript: int | str | None = None
    if which is not None:
        subscript = getattr(element, which)
    return PathElement(element.field_name, subscript)


def _prefixed(at: str, violation: FieldViolation) -> FieldViolation:
    return FieldViolation(f"{at}.{violation.field}", violation.description, violation.reason)


@dataclass(frozen=True, slots=True)
class _Resolved:
    """A violation's field, found by walking its path through the descriptors."""

    field: FieldDescriptor
    rules: validate_pb2.FieldRules
    """The rules of the whole field (for a map or list, not only its items')."""
    path: str
    """Our field path: `amount.currency_code`, `image_urls[1]`; a map's key is left out
    (`attributes`) and named in the description instead."""
    key: Any
    """The map key the violation is about, if any."""
    value: Any
    """The value that broke the rule."""


def _resolve(descriptor: Descriptor, message: Message, path: Sequence[PathElement]) -> _Resolved:
    names: list[str] = []
    value: Any = message
    field: FieldDescriptor | None = None
    key: Any = None
    for element in path:
        field = descriptor.fields_by_name[element.name]
        value = getattr(value, element.name)
        nested = field.message_type
        if nested is not None and nested.GetOptions().map_entry:
            names.append(element.name)
            if element.subscript is not None:
                key = element.subscript
                value = value[key]
            nested = nested.fields_by_name["value"].message_type
        elif element.subscript is not None:
            names.append(f"{element.name}[{element.subscript}]")
            value = value[element.subscript]
        else:
            names.append(element.name)
        if nested is not None:
            descriptor = nested
    if field is None:
        raise ValueError("a violation of a message-level rule has no field")
    rules = _field_rules(field) or validate_pb2.FieldRules()
    return _Resolved(field, rules, ".".join(names), key, value)


def field_violation(
    descriptor: Descriptor, message: Message, violation: RuleViolation
) -> FieldViolation:
    """`violation` of `message` (of type `descriptor`) as our `BadRequest` field violation."""
    found = _resolve(descriptor, message, violation.path)
    rule_id = violation.rule_id
    if rule_id in _CUSTOM_REASONS:
        target = found.field.message_type
        sub_field = rule_id.partition(".")[0]
        path = found.path
        if target is not None and sub_field in target.fields_by_name:
            path = f"{path}.{sub_field}"
        return FieldViolation(path, violation.message, _CUSTOM_REASONS[rule_id])
    worded = _WORDING.get((found.field.full_name, rule_id))
    if worded is not None:
        reason, template = worded
        return FieldViolation(found.path, template.format(**_rule_values(found)), reason)
    reason, description = _describe(found, violation)
    return FieldViolation(found.path, description, reason)


def _rule_values(found: _Resolved) -> dict[str, Any]:
    """The values of `found`'s field's rules by name (`max_items`, `max_len`), for a
    wording's template."""
    rules = found.rules
    values: dict[str, Any] = {}
    for typed in (rules.repeated, rules.repeated.items.string, rules.string):
        values.update((field.name, value) for field, value in typed.ListFields())
    return values


def _describe(found: _Resolved, violation: RuleViolation) -> tuple[str, str]:
    """Our reason and description for a standard rule's violation."""
    rule_id, rules, name = violation.rule_id, found.rules, found.field.name
    kind, _, rule = rule_id.partition(".")
    if found.key is not None or rule_id.startswith("map."):
        return _describe_map(found, violation)
    if rule_id == "required":
        if name == _IDEMPOTENCY_KEY:
            return "REQUIRED", "is required on every mutation"
        return "REQUIRED", "is required"
    if kind == "string":
        strings = rules.repeated.items.string if found.field.is_repeated else rules.string
        return _describe_string(found, violation, strings)
    if kind in ("int32", "int64"):
        return "OUT_OF_RANGE", _describe_range(getattr(rules, kind), rule)
    if kind == "duration":
        return "OUT_OF_RANGE", _describe_duration(rules.duration, rule)
    if rule_id == "enum.defined_only":
        return "UNKNOWN_ENUM_VALUE", f"{found.value} is not a known value"
    if rule_id == "enum.not_in" and list(_enum_rules(rules).not_in) == [0]:
        # The UNSPECIFIED value is the field left unset.
        return "REQUIRED", "is required"
    if rule_id == "repeated.min_items":
        return "REQUIRED", f"must have at least {rules.repeated.min_items} entries"
    if rule_id == "repeated.unique":
        return "DUPLICATE", "must not repeat an entry"
    if rule_id == "repeated.max_items":
        return "TOO_MANY", f"may have at most {rules.repeated.max_items} entries"
    return "INVALID_FIELD", violation.message


def _enum_rules(rules: validate_pb2.FieldRules) -> validate_pb2.EnumRules:
    return rules.repeated.items.enum if rules.HasField("repeated") else rules.enum


def _describe_string(
    found: _Resolved, violation: RuleViolation, rules: validate_pb2.StringRules
) -> tuple[str, str]:
    rule = violation.rule_id.removeprefix("string.")
    if found.field.name == _IDEMPOTENCY_KEY and rule in ("max_len", "pattern"):
        # One description for every way an idempotency key can be malformed.
        return "MALFORMED_ID", f"must be 1 to {rules.max_len} printable characters"
    if rule == "max_len":
        return "TOO_LONG", f"must be at most {rules.max_len} characters"
    if rule == "min_len":
        return "TOO_SHORT", f"must be at least {rules.min_len} characters"
    if rule == "pattern" and rules.pattern in _PATTERNS:
        return _PATTERNS[rules.pattern]
    if rule == "in" and found.field.name == _CURRENCY:
        return "INVALID_CURRENCY", "must be a current ISO 4217 code such as USD"
    return "INVALID_FIELD", violation.message


def _describe_map(found: _Resolved, violation: RuleViolation) -> tuple[str, str]:
    rules = found.rules.map
    if violation.rule_id == "map.max_pairs":
        return "TOO_MANY", f"may have at most {rules.max_pairs} entries"
    if violation.for_key:
        return "KEY", f"key {found.key!r} must be {_length(rules.keys.string)}"
    return "VALUE", f"value of {found.key!r} must be {_length(rules.values.string)}"


def _length(rules: validate_pb2.StringRules) -> str:
    if rules.HasField("min_len") and rules.HasField("max_len"):
        return f"{rules.min_len} to {rules.max_len} characters"
    if rules.HasField("max_len"):
        return f"at most {rules.max_len} characters"
    return f"at least {rules.min_len} characters"


def _describe_range(rules: validate_pb2.Int32Rules | validate_pb2.Int64Rules, rule: str) -> str:
    lower = rules.gte if rules.HasField("gte") else None
    upper = rules.lte if rules.HasField("lte") else None
    if list(rules.not_in) == [0] and lower is not None and upper is not None and lower == -upper:
        # A change that must be non-zero and bounded either way (a stock delta).
        return f"must be non-zero and within +/-{upper:,}"
    if rule == "gte_lte":
        return f"must be from {lower} to {upper}"
    if rule == "gte":
        return "must not be negative" if lower == 0 else f"must be at least {lower}"
    if rule == "lte":
        return f"must be at most {upper}"
    if rule == "not_in":
        return f"must not be {', '.join(str(v) for v in rules.not_in)}"
    return "is out of range"


def _describe_duration(rules: validate_pb2.DurationRules, rule: str) -> str:
    upper = _spoken_duration(rules.lte.seconds) if rules.HasField("lte") else None
    if rule == "gt_lte" and rules.gt.seconds == 0 and rules.gt.nanos == 0:
        return f"must be positive and at most {upper}"
    if rule == "lte":
        return f"must be at most {upper}"
    return "is out of range"


def _spoken_duration(seconds: int) -> str:
    """`604800` as "7 days", `3600` as "1 hour": how the contract's comments say them."""
    for unit, size in (("day", _SECONDS_PER_DAY), ("hour", _SECONDS_PER_HOUR), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


ResidualCheck = Callable[[Any, RequestCheck, ContractRules], None]
"""An RPC's own checks of a request, for what a rule cannot say; they add to `check`
(whose violations so far are the rules') and may apply `rules` to part of the request."""


@dataclass(frozen=True)
class RequestChecks:
    """The RPCs of one service that check more than their rules, by short name."""

    service: ServiceDescriptor
    methods: Mapping[str, ResidualCheck]

    def __post_init__(self) -> None:
        served = {method.name for method in self.service.methods}
        if unknown := self.methods.keys() - served:
            raise ValueError(f"{self.service.full_name}: no such RPCs {sorted(unknown)}")

    def by_path(self) -> dict[str, ResidualCheck]:
        """The checks by gRPC method path (`/package.Service/Method`)."""
        name = self.service.full_name
        return {f"/{name}/{method}": check for method, check in self.methods.items()}


def _request_type(method: str) -> Descriptor | None:
    """The request message of `method` (`/package.Service/Method`), if the default pool
    knows the service (every generated module registers its file there)."""
    service, _, name = method.strip("/").rpartition("/")
    try:
        found = descriptor_pool.Default().FindServiceByName(service)
    except KeyError:
        return None
    rpc = found.methods_by_name.get(name)
    return None if rpc is None else rpc.input_type


class ContractGuard:
    """Refuses a request that breaks its rules, or its RPC's own checks, with one
    INVALID_ARGUMENT naming every violation; the handler runs only on a valid request.

    A `HandlerGuard`: it wraps each unary handler once, at registration (see
    `GuardedServer`), and leaves alone the handlers of messages without rules (health).
    """

    def __init__(self, rules: ContractRules, checks: Sequence[RequestChecks] = ()) -> None:
        self._rules = rules
        self._checks: dict[str, ResidualCheck] = {}
        for service in checks:
            self._checks.update(service.by_path())

    def guard(self, method: str, handler: _Handler) -> _Handler:
        """`handler`, behind the request checks of `method`."""
        if handler.unary_unary is None:
            return handler
        request_type = _request_type(method)
        # Compiled here, at registration, once per method.
        check = None if request_type is None else self._rules.checker(request_type)
        residual = self._checks.get(method)
        if check is None and residual is None:
            return handler
        return grpc.unary_unary_rpc_method_handler(
            self._checked(handler.unary_unary, check, residual),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _checked(
        self,
        inner: Callable[[Any, Any], Any],
        check: Callable[[Message], list[FieldViolation]] | None,
        residual: ResidualCheck | None,
    ) -> Callable[[Any, Any], Any]:
        rules = self._rules

        async def behavior(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            violations = [] if check is None else check(request)
            if violations or residual is not None:
                found = RequestCheck(violations)
                if residual is not None:
                    residual(request, found, rules)
                found.done()
            result = inner(request, context)
            return await result if inspect.isawaitable(result) else result

        return behavior


# ---- The compiled engine ---------------------------------------------------------------
#
# protovalidate evaluates every rule as CEL, interpreted by cel-python: measured here,
# 1.9 ms for a GetProductRequest and 7 ms for a CreateTransferRequest (its currency's
# `in` list of 176 codes is a CEL list), several times the whole call's CPU. The
# standard rules are plain comparisons, so each message's rules are read from its
# descriptor once and turned into Python closures that report exactly what protovalidate
# would (the same rule ids, field paths and map keys; tests/runtime/test_contract_rules.py
# holds the two to that on generated requests of every RPC). A rule this does not
# translate makes its request message fall back to protovalidate, whole.

_Out = list[RuleViolation]
_Path = tuple[PathElement, ...]
_ValueCheck = Callable[[Any, _Path, _Out, bool], None]
"""Checks one value (a field's, a list item's, a map key's or value's) found at `path`;
the flag says the value is a map key."""
_MessageCheck = Callable[[Message, _Path, _Out], None]


class _Untranslated(Exception):
    """A rule the compiler does not translate; its message is checked by protovalidate."""


def _broken(rule_id: str, message: str, test: Callable[[Any], bool]) -> _ValueCheck:
    """A check that reports `rule_id` when `test(value)` is true."""

    def check(value: Any, path: _Path, out: _Out, for_key: bool) -> None:
        if test(value):
            out.append(RuleViolation(path, rule_id, message, for_key))

    return check


def _outside(allowed: frozenset[Any]) -> Callable[[Any], bool]:
    return lambda value: value not in allowed


def _among(refused: frozenset[Any]) -> Callable[[Any], bool]:
    return lambda value: value in refused


def _shorter(length: int) -> Callable[[Any], bool]:
    return lambda value: len(value) < length


def _longer(length: int) -> Callable[[Any], bool]:
    return lambda value: len(value) > length


def _repeats(values: Sequence[Any]) -> bool:
    return len(set(values)) != len(values)


def _membership(kind: str, rule: str, values: Sequence[Any]) -> _ValueCheck | None:
    """`in` and `not_in`, of strings, numbers and enums alike."""
    if rule == "in":
        return _broken(f"{kind}.in", "value must be in list", _outside(frozenset(values)))
    if rule == "not_in":
        return _broken(f"{kind}.not_in", "value must not be in list", _among(frozenset(values)))
    return None


def _string_checks(rules: validate_pb2.StringRules) -> list[_ValueCheck]:
    checks: list[_ValueCheck] = []
    # In the order of the rules' field numbers, as protovalidate evaluates them.
    for rule, limit in rules.ListFields():
        name = rule.name
        if name == "min_len":
            message = f"value length must be at least {limit} characters"
            checks.append(_broken("string.min_len", message, _shorter(limit)))
        elif name == "max_len":
            message = f"value length must be at most {limit} characters"
            checks.append(_broken("string.max_len", message, _longer(limit)))
        elif name == "pattern":
            checks.append(_pattern_check(limit))
        elif membership := _membership("string", name, limit):
            checks.append(membership)
        elif name != "example":
            raise _Untranslated(f"string.{name}")
    return checks


def _pattern_check(pattern: str) -> _ValueCheck:
    message = f"value does not match regex pattern `{pattern}`"
    return _broken("string.pattern", message, pattern_matcher(pattern))


# Escapes that mean the same to RE2 and to Python's re; any other (\d, \w, \s and \b are
# Unicode-aware in one and not the other, \P{..} and \x{..} are RE2's own) keeps RE2.
_SAME_ESCAPES = frozenset("tnrfv\\.*+?()[]{}|^$/-")
_ASCII = [chr(code) for code in range(128)]
# `(?i)`, `(?P<name>...)`: everything after `(?` but a plain group's `:`.
_FLAGS_OR_NAMES = re.compile(r"\(\?[^:]")


def pattern_matcher(pattern: str) -> Callable[[str], bool]:
    """Whether a value breaks `pattern`, as protovalidate's `matches` says it: RE2's syntax
    and semantics, and a search (the pattern anchors itself with ^ and $).

    google-re2 costs ~4 µs a call from Python (most of it crossing into C++), Python's
    own `re` ~0.2 µs; the RE2 pattern is rewritten for `re` where they then agree: `$`
    as `\\Z` (re's `$` also matches before a final newline), and each `\\p{..}` class as
    its ASCII members (as RE2 itself lists them), used for ASCII values only."""
    search = re2.compile(pattern).search
    rewritten = _python_pattern(pattern)
    if rewritten is None:
        return lambda value: search(value) is None
    python, ascii_only = re.compile(rewritten[0]).search, rewritten[1]
    if not ascii_only:
        return lambda value: python(value) is None
    return lambda value: (python(value) if value.isascii() else search(value)) is None


def _python_pattern(pattern: str) -> tuple[str, bool] | None:
    """`pattern` for Python's re, and whether it holds for ASCII values only; None when
    it uses what the two engines read differently."""
    if "{," in pattern:
        return None  # a literal to RE2, a repetition from 0 to re
    out: list[str] = []
    in_class = ascii_only = False
    class_start = 0
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            escaped = pattern[index + 1 : index + 2]
            hex_byte = re.match(r"x[0-9a-fA-F]{2}", pattern[index + 1 : index + 4])
            unicode_class = re.match(r"p\{([A-Za-z]+)\}", pattern[index + 1 :])
            if escaped and escaped in _SAME_ESCAPES:
                out.append(pattern[index : index + 2])
                index += 2
            elif hex_byte is not None:
                out.append("\\" + hex_byte.group(0))
                index += 1 + len(hex_byte.group(0))
            elif unicode_class is not None:
                members = _ascii_members(unicode_class.group(1))
                out.append(members if in_class else f"[{members}]" if members else "(?!)")
                ascii_only = True
                index += 1 + len(unicode_class.group(0))
            else:
                return None
            continue
        if in_class:
            # A `]` first in a class (`[]a]`, `[^]a]`) is one of its members.
            in_class = char != "]" or index == class_start
        elif char == "[":
            in_class = True
            class_start = index + (2 if pattern[index + 1 : index + 2] == "^" else 1)
        elif char == "$":
            char = r"\Z"
        elif char == "(" and _FLAGS_OR_NAMES.match(pattern, index):
            return None
        out.append(char)
        index += 1
    try:
        re.compile("".join(out))
    except re.error:
        return None  # a class left empty of ASCII members, say
    return "".join(out), ascii_only


@functools.cache
def _ascii_members(name: str) -> str:
    """The ASCII characters of RE2's Unicode class `name`, escaped for a class of re."""
    search = re2.compile(f"\\p{{{name}}}").search
    return "".join(f"\\x{ord(c):02x}" for c in _ASCII if search(c) is not None)


_Bound = tuple[str, Any]
_HOLDS: Mapping[str, Callable[[Any, Any], bool]] = {
    "gt": lambda value, bound: value > bound,
    "gte": lambda value, bound: value >= bound,
    "lt": lambda value, bound: value < bound,
    "lte": lambda value, bound: value <= bound,
}


def _range_checks(
    kind: str, rules: Any, measure: Callable[[Any], Any] = lambda value: value
) -> list[_ValueCheck]:
    """`gt`/`gte`/`lt`/`lte` of numbers or durations (`measure` makes them comparable),
    with protovalidate's rule ids: `int32.gte_lte` for a range, `int32.gte` for a lower
    bound alone, `int32.lte` for an upper one."""
    lower: _Bound | None = None
    upper: _Bound | None = None
    for name in ("gt", "gte"):
        if rules.HasField(name):
            lower = (name, measure(getattr(rules, name)))
    for name in ("lt", "lte"):
        if rules.HasField(name):
            upper = (name, measure(getattr(rules, name)))
    if lower is not None and upper is not None:
        if upper[1] < lower[1]:
            # A range that excludes the middle (`*_exclusive`): not used by the contract.
            raise _Untranslated(f"{kind}.{lower[0]}_{upper[0]}_exclusive")
        return [_range_check(f"{kind}.{lower[0]}_{upper[0]}", measure, lower, upper)]
    if lower is not None:
        return [_range_check(f"{kind}.{lower[0]}", measure, lower, None)]
    if upper is not None:
        return [_range_check(f"{kind}.{upper[0]}", measure, None, upper)]
    return []


def _range_check(
    rule_id: str, measure: Callable[[Any], Any], lower: _Bound | None, upper: _Bound | None
) -> _ValueCheck:
    def outside(value: Any) -> bool:
        measured = measure(value)
        if lower is not None and not _HOLDS[lower[0]](measured, lower[1]):
            return True
        return upper is not None and not _HOLDS[upper[0]](measured, upper[1])

    return _broken(rule_id, "value is out of range", outside)


def _number_checks(kind: str, rules: Any) -> list[_ValueCheck]:
    checks = _range_checks(kind, rules)
    for rule, values in rules.ListFields():
        if membership := _membership(kind, rule.name, values):
            checks.append(membership)
        elif rule.name not in ("gt", "gte", "lt", "lte", "example"):
            raise _Untranslated(f"{kind}.{rule.name}")
    return checks


def _micros(duration: Any) -> int:
    """A Duration in whole microseconds, as protovalidate-python's CEL measures it (a
    `timedelta`) and as the handlers use it: 1 h + 1 ns is within "at most 1 hour"."""
    return int(duration.seconds) * 1_000_000 + int(duration.nanos) // 1_000


def _duration_checks(rules: validate_pb2.DurationRules) -> list[_ValueCheck]:
    for rule, _ in rules.ListFields():
        if rule.name not in ("gt", "gte", "lt", "lte", "example"):
            raise _Untranslated(f"duration.{rule.name}")
    return _range_checks("duration", rules, _micros)


def _enum_checks(rules: validate_pb2.EnumRules) -> list[_ValueCheck]:
    checks: list[_ValueCheck] = []
    for rule, values in rules.ListFields():
        if membership := _membership("enum", rule.name, values):
            checks.append(membership)
        elif rule.name not in ("defined_only", "example"):
            raise _Untranslated(f"enum.{rule.name}")
    return checks


def _defined_only(field: FieldDescriptor) -> _ValueCheck:
    enum = field.enum_type
    if enum is None:
        raise _Untranslated("enum rules of a field that is no enum")
    message = "value must be one of the defined enum values"
    return _broken("enum.defined_only", message, _outside(frozenset(enum.values_by_number)))


# `this.<field> <op> <integer>`: the one shape of the contract's own CEL rules.
_COMPARISON = re.compile(r"this\.([a-z_][a-z0-9_]*) (<|<=|>|>=|==|!=) (-?[0-9]+)")
_COMPARE: Mapping[str, Callable[[int, int], bool]] = {
    "<": lambda left, right: left < right,
    "<=": lambda left, right: left <= right,
    ">": lambda left, right: left > right,
    ">=": lambda left, right: left >= right,
    "==": lambda left, right: left == right,
    "!=": lambda left, right: left != right,
}
_INTEGERS = frozenset(
    {
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_SFIXED32,
        FieldDescriptor.TYPE_SFIXED64,
    }
)


def _custom_check(field: FieldDescriptor, rule: validate_pb2.Rule) -> _ValueCheck:
    """A field's own CEL rule, when it compares an integer field of the message it holds
    with a constant; any other expression is protovalidate's to evaluate."""
    found = _COMPARISON.fullmatch(rule.expression.strip())
    held = field.message_type
    if found is None or held is None or field.is_repeated:
        raise _Untranslated(rule.expression)
    name, operator, constant = found.group(1), found.group(2), int(found.group(3))
    operand = held.fields_by_name.get(name)
    if operand is None or operand.type not in _INTEGERS or operand.is_repeated:
        raise _Untranslated(rule.expression)
    compare = _COMPARE[operator]
    message = rule.message or f'"{rule.expression}" returned false'
    return _broken(rule.id, message, lambda value: not compare(getattr(value, name), constant))


def _value_checks(field: FieldDescriptor, rules: validate_pb2.FieldRules) -> list[_ValueCheck]:
    """The checks of one value of `field` (of one item, for a list's `items` rules), in
    protovalidate's order: the standard rules, the field's own CEL rules, then
    `enum.defined_only`. protovalidate-python skips the last for a list's items; the
    contract (and the Go and ES implementations) check it, and so does this."""
    kind = rules.WhichOneof("type")
    checks: list[_ValueCheck] = []
    if kind == "string":
        checks = _string_checks(rules.string)
    elif kind in ("int32", "int64"):
        checks = _number_checks(kind, getattr(rules, kind))
    elif kind == "enum":
        checks = _enum_checks(rules.enum)
    elif kind == "duration":
        checks = _duration_checks(rules.duration)
    elif kind is not None:
        raise _Untranslated(kind)
    if rules.cel_expression:
        raise _Untranslated("cel_expression")
    checks += [_custom_check(field, rule) for rule in rules.cel]
    if kind == "enum" and rules.enum.defined_only:
        checks.append(_defined_only(field))
    return checks


def _is_empty(field: FieldDescriptor) -> Callable[[Message], bool]:
    name = field.name
    if field.is_repeated:
        return lambda message: not getattr(message, name)
    if field.has_presence:
        return lambda message: not message.HasField(name)
    default = field.default_value
    return lambda message: getattr(message, name) == default


def _field_check(field: FieldDescriptor, rules: validate_pb2.FieldRules) -> _MessageCheck:
    """protovalidate's evaluation of one field's rules (not of its message's own)."""
    name = field.name
    empty = _is_empty(field)
    required = rules.required
    ignore_empty = rules.ignore == validate_pb2.IGNORE_IF_ZERO_VALUE or field.has_presence
    entry = field.message_type
    is_map = entry is not None and entry.GetOptions().map_entry
    own: list[_ValueCheck]
    each: Callable[[Any, _Path, _Out], None] | None = None
    if is_map:
        own, each = _map_checks(field, rules)
    elif field.is_repeated:
        own, each = _list_checks(field, rules)
    else:
        own = _value_checks(field, rules)

    element = PathElement(name)

    def check(message: Message, path: _Path, out: _Out) -> None:
        here = (*path, element)
        if empty(message):
            if required:
                out.append(RuleViolation(here, "required", "value is required"))
                return
            if ignore_empty:
                return
        value = getattr(message, name)
        for rule in own:
            rule(value, here, out, False)
        if each is not None:
            each(value, path, out)

    return check


def _list_checks(
    field: FieldDescriptor, rules: validate_pb2.FieldRules
) -> tuple[list[_ValueCheck], Callable[[Any, _Path, _Out], None] | None]:
    repeated = rules.repeated
    own: list[_ValueCheck] = []
    for rule, limit in repeated.ListFields():
        if rule.name == "min_items":
            message = f"value must contain at least {limit} item(s)"
            own.append(_broken("repeated.min_items", message, _shorter(limit)))
        elif rule.name == "max_items":
            message = f"value must contain no more than {limit} item(s)"
            own.append(_broken("repeated.max_items", message, _longer(limit)))
        elif rule.name == "unique" and limit:
            message = "repeated value must contain unique items"
            own.append(_broken("repeated.unique", message, _repeats))
        elif rule.name not in ("items", "unique"):
            raise _Untranslated(f"repeated.{rule.name}")
    if rules.WhichOneof("type") not in (None, "repeated") or rules.cel or rules.cel_expression:
        raise _Untranslated("rules of a whole list")
    items = repeated.items
    if not repeated.HasField("items") or items.ignore == validate_pb2.IGNORE_ALWAYS:
        return own, None
    item_checks = _value_checks(field, items)
    skip_empty = items.ignore == validate_pb2.IGNORE_IF_ZERO_VALUE
    name = field.name

    def each(values: Any, path: _Path, out: _Out) -> None:
        for index, item in enumerate(values):
            if skip_empty and not item:
                continue
            here = (*path, PathElement(name, index))
            for rule in item_checks:
                rule(item, here, out, False)

    return own, each


def _map_checks(
    field: FieldDescriptor, rules: validate_pb2.FieldRules
) -> tuple[list[_ValueCheck], Callable[[Any, _Path, _Out], None] | None]:
    pairs = rules.map
    own: list[_ValueCheck] = []
    for rule, limit in pairs.ListFields():
        if rule.name == "min_pairs":
            message = f"map must be at least {limit} entries"
            own.append(_broken("map.min_pairs", message, _shorter(limit)))
        elif rule.name == "max_pairs":
            message = f"map must be at most {limit} entries"
            own.append(_broken("map.max_pairs", message, _longer(limit)))
        elif rule.name not in ("keys", "values"):
            raise _Untranslated(f"map.{rule.name}")
    if rules.WhichOneof("type") not in (None, "map") or rules.cel or rules.cel_expression:
        raise _Untranslated("rules of a whole map")
    entry = field.message_type
    if entry is None:
        raise _Untranslated("map rules of a field that is no map")
    key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
    keys = _item_rules(key_field, pairs.keys) if pairs.HasField("keys") else None
    values = _item_rules(value_field, pairs.values) if pairs.HasField("values") else None
    if keys is None and values is None:
        return own, None
    name = field.name

    def each(mapping: Any, path: _Path, out: _Out) -> None:
        for key, value in mapping.items():
            here = (*path, PathElement(name, key))
            # Value violations before key violations, as protovalidate lists them.
            if values is not None and (value or not values[1]):
                for rule in values[0]:
                    rule(value, here, out, False)
            if keys is not None and (key or not keys[1]):
                for rule in keys[0]:
                    rule(key, here, out, True)

    return own, each


def _item_rules(
    field: FieldDescriptor, rules: validate_pb2.FieldRules
) -> tuple[list[_ValueCheck], bool] | None:
    """A map's key or value checks, and whether an empty one is skipped."""
    if rules.ignore == validate_pb2.IGNORE_ALWAYS:
        return None
    return _value_checks(field, rules), rules.ignore == validate_pb2.IGNORE_IF_ZERO_VALUE


def _nested_check(field: FieldDescriptor, inner: _MessageCheck) -> _MessageCheck:
    """The rules of the messages `field` holds: one, each of a list's, each of a map's
    values; their paths go through the field (and the item's index or key)."""
    name = field.name
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:

        def values(message: Message, path: _Path, out: _Out) -> None:
            for key, value in getattr(message, name).items():
                inner(value, (*path, PathElement(name, key)), out)

        return values
    if field.is_repeated:

        def items(message: Message, path: _Path, out: _Out) -> None:
            for index, item in enumerate(getattr(message, name)):
                inner(item, (*path, PathElement(name, index)), out)

        return items

    def one(message: Message, path: _Path, out: _Out) -> None:
        if message.HasField(name):
            inner(getattr(message, name), (*path, PathElement(name)), out)

    return one


def _message_check(descriptor: Descriptor, within: frozenset[str]) -> _MessageCheck | None:
    """The checks of a message's fields' rules and of the messages its fields hold, in
    protovalidate's order; None when there are none. `within`: the messages being
    compiled around this one (a message that holds itself is left to protovalidate)."""
    if descriptor.full_name in within:
        raise _Untranslated(f"{descriptor.full_name} holds itself")
    if descriptor.GetOptions().HasExtension(validate_pb2.message):
        raise _Untranslated("(buf.validate.message)")
    if any(oneof.GetOptions().HasExtension(validate_pb2.oneof) for oneof in descriptor.oneofs):
        raise _Untranslated("(buf.validate.oneof)")
    inside = within | {descriptor.full_name}
    checks: list[_MessageCheck] = []
    for field in descriptor.fields:
        rules = _field_rules(field)
        if rules is not None:
            if rules.ignore == validate_pb2.IGNORE_ALWAYS:
                continue
            checks.append(_field_check(field, rules))
            if rules.repeated.items.ignore == validate_pb2.IGNORE_ALWAYS:
                continue
        held = field.message_type
        if held is not None and held.GetOptions().map_entry:
            held = held.fields_by_name["value"].message_type
        if held is None:
            continue
        inner = _message_check(held, inside)
        if inner is not None:
            checks.append(_nested_check(field, inner))
    if not checks:
        return None

    def check(message: Message, path: _Path, out: _Out) -> None:
        for one in checks:
            one(message, path, out)

    return check


@functools.cache
def _compiled(descriptor: Descriptor) -> _Find | None:
    """The finder of a message type's broken rules: compiled, or protovalidate's for a
    message with a rule the compiler does not translate; None when it has no rules."""
    try:
        check = _message_check(descriptor, frozenset())
    except _Untranslated as rule:
        _log.warning(
            "%s: rule %s is not compiled; protovalidate (CEL) checks this message",
            descriptor.full_name,
            rule,
        )
        return _protovalidate_violations
    if check is None:
        return None

    def find(message: Message) -> list[RuleViolation]:
        out: _Out = []
        check(message, (), out)
        return out

    return find
