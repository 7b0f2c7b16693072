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
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import grpc
import protovalidate
from buf.validate import validate_pb2
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from superapp.type.v1 import money_pb2

from services.runtime.errors import FieldViolation
from services.runtime.validation import RequestCheck

__all__ = [
    "NOT_BLANK_PATTERN",
    "PRINTABLE_PATTERN",
    "UUID_PATTERN",
    "ContractGuard",
    "ContractRules",
    "RequestChecks",
    "RuleViolation",
    "currency_codes",
    "id_violation",
]

if TYPE_CHECKING:  # RpcMethodHandler is generic only in the type stubs
    _Handler: TypeAlias = grpc.RpcMethodHandler[Any, Any]

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
_UUID = re.compile(UUID_PATTERN)

_PATTERNS: Mapping[str, tuple[str, str]] = {
    UUID_PATTERN: ("MALFORMED_ID", "must be a UUID in canonical lower-case form"),
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


class ContractRules:
    """The rules of every message, checked with protovalidate (CEL, via cel-python)."""

    def violations(self, message: Message) -> list[FieldViolation]:
        """What is wrong with `message` by its rules, as our field violations."""
        descriptor = _descriptor(message)
        return [
            field_violation(descriptor, message, violation)
            for violation in self.rule_violations(message)
        ]

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

    def has_rules(self, descriptor: Descriptor) -> bool:
        """Whether a message of this type can break any rule (its own or a field's)."""
        return _has_rules(descriptor, frozenset())


def _descriptor(message: Message) -> Descriptor:
    # The type stubs also allow upb's descriptor class, which is registered as one.
    return cast("Descriptor", message.DESCRIPTOR)


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
        if rules is None or rules.ignore == validate_pb2.IGNORE_ALWAYS:
            continue
        if field.is_repeated and field.enum_type is not None:
            if rules.repeated.items.enum.defined_only:
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
    reason, description = _describe(found, violation)
    return FieldViolation(found.path, description, reason)


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
    if rule_id == "repeated.min_items" and rules.repeated.min_items == 1:
        # `roles`: "must name at least one role".
        return "REQUIRED", f"must name at least one {name.removesuffix('s')}"
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
        residual = self._checks.get(method)
        ruled = request_type is not None and self._rules.has_rules(request_type)
        if not ruled and residual is None:
            return handler
        return grpc.unary_unary_rpc_method_handler(
            self._checked(handler.unary_unary, residual, ruled=ruled),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _checked(
        self, inner: Callable[[Any, Any], Any], residual: ResidualCheck | None, *, ruled: bool
    ) -> Callable[[Any, Any], Any]:
        rules = self._rules

        async def behavior(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            violations = rules.violations(request) if ruled else []
            if violations or residual is not None:
                check = RequestCheck(violations)
                if residual is not None:
                    residual(request, check, rules)
                check.done()
            result = inner(request, context)
            return await result if inspect.isawaitable(result) else result

        return behavior
