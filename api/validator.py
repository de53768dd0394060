"""Validation of request bodies and parameters against the very JSON Schemas that the
OpenAPI document publishes, so that what is documented and what is enforced cannot drift.

Only the subset of JSON Schema 2020-12 that ``api/schemas.py`` uses is understood; a schema
using anything else fails loudly at import (``check_supported``), not at request time.
Patterns have ECMA-262 meaning, as in the document: ``$`` is the end of the string (Python's
``$`` would also match before a final newline), so they are matched with ``fullmatch``.

Errors name the field by its path (``jobs[2].priority``) and say what is allowed; an unknown
field is ``unknown_field``, anything else ``invalid_body``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from api import rfc3339

_KNOWN = {
    "$ref", "type", "enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minLength", "maxLength", "pattern", "format", "items", "minItems", "maxItems",
    "properties", "required", "additionalProperties", "propertyNames", "not",
    "dependentRequired", "anyOf",
    # annotations, no effect on validation
    "description", "title", "default", "examples", "example", "deprecated", "readOnly",
}
_REF_PREFIX = "#/components/schemas/"


class SchemaViolation(Exception):
    """A value does not match its schema; ``field`` is the path of the offending value."""

    def __init__(self, field: str, message: str, *, unknown: bool = False) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.unknown = unknown


@cache
def compiled_pattern(pattern: str) -> re.Pattern[str]:
    """The pattern for ``fullmatch``: its anchors dropped, so ``$`` means end of string."""
    body = pattern[1:] if pattern.startswith("^") else pattern
    body = body[:-1] if body.endswith("$") and not body.endswith("\\$") else body
    return re.compile(body)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return _type_name(value) == name


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Validator:
    """Validates values against schemas that may ``$ref`` the given components.

    ``special`` maps a component name to a function that replaces the generic walk (used for
    the recursive any-JSON component, walked iteratively).
    """

    def __init__(self, components: Mapping[str, Any],
                 special: Mapping[str, Callable[[Any, str], Any]] | None = None) -> None:
        self.components = components
        self.special = dict(special or {})
        for name, schema in components.items():
            if name not in self.special:
                check_supported(schema, f"components.{name}")

    def validate(self, schema: Mapping[str, Any], value: Any, field: str) -> Any:
        """Return the value (integers given as 1.0 become 1) or raise ``SchemaViolation``."""
        ref = schema.get("$ref")
        if ref is not None:
            name = ref.removeprefix(_REF_PREFIX)
            if name in self.special:
                return self.special[name](value, field)
            return self.validate(self.components[name], value, field)
        if "anyOf" in schema:
            for option in schema["anyOf"]:
                try:
                    return self.validate(option, value, field)
                except SchemaViolation:
                    continue
            raise SchemaViolation(field, f"{_shown(value)} matches none of the allowed forms")
        value = self._check_type(schema, value, field)
        if "enum" in schema and value not in schema["enum"]:
            allowed = ", ".join(repr(v) for v in schema["enum"])
            raise SchemaViolation(field, f"must be one of {allowed}, got {_shown(value)}")
        if isinstance(value, int | float) and not isinstance(value, bool):
            self._check_number(schema, value, field)
        elif isinstance(value, str):
            self._check_string(schema, value, field)
        elif isinstance(value, list):
            value = self._check_array(schema, value, field)
        elif isinstance(value, dict):
            value = self._check_object(schema, value, field)
        return value

    def _check_type(self, schema: Mapping[str, Any], value: Any, field: str) -> Any:
        wanted = schema.get("type")
        if wanted is None:
            return value
        names = [wanted] if isinstance(wanted, str) else list(wanted)
        if not any(_is_type(value, name) for name in names):
            raise SchemaViolation(
                field, f"must be {' or '.join(names)}, got {_type_name(value)} {_shown(value)}")
        if isinstance(value, float) and "integer" in names and "number" not in names:
            return int(value)
        return value

    def _check_number(self, schema: Mapping[str, Any], value: float, field: str) -> None:
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and value < low:
            raise SchemaViolation(field, f"must be at least {low}, got {value}")
        if high is not None and value > high:
            raise SchemaViolation(field, f"must be at most {high}, got {value}")
        above = schema.get("exclusiveMinimum")
        if above is not None and value <= above:
            raise SchemaViolation(field, f"must be above {above}, got {value}")
        below = schema.get("exclusiveMaximum")
        if below is not None and value >= below:
            raise SchemaViolation(field, f"must be below {below}, got {value}")

    def _check_string(self, schema: Mapping[str, Any], value: str, field: str) -> None:
        shortest, longest = schema.get("minLength"), schema.get("maxLength")
        if shortest is not None and len(value) < shortest:
            raise SchemaViolation(field, f"must be at least {shortest} characters long")
        if longest is not None and len(value) > longest:
            raise SchemaViolation(field, f"must be at most {longest} characters long")
        pattern = schema.get("pattern")
        if pattern is not None and not compiled_pattern(pattern).fullmatch(value):
            description = schema.get("description", f"match {pattern}")
            raise SchemaViolation(field, f"{_shown(value)} is not allowed: {description}")
        if schema.get("format") == "date-time" and rfc3339.parse(value) is None:
            raise SchemaViolation(
                field, f"{_shown(value)} is not an RFC 3339 date-time "
                "(like 2030-01-02T03:04:05Z)")

    def _check_array(self, schema: Mapping[str, Any], value: list[Any], field: str) -> list[Any]:
        fewest, most = schema.get("minItems"), schema.get("maxItems")
        if fewest is not None and len(value) < fewest:
            raise SchemaViolation(field, f"must have at least {fewest} item(s)")
        if most is not None and len(value) > most:
            raise SchemaViolation(field, f"must have at most {most} items, got {len(value)}")
        items = schema.get("items")
        if items is None:
            return value
        return [self.validate(items, item, f"{field}[{i}]") for i, item in enumerate(value)]

    def _check_object(self, schema: Mapping[str, Any], value: dict[str, Any], field: str
                      ) -> dict[str, Any]:
        def at(name: str) -> str:
            return name if field == "body" else f"{field}.{name}"

        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        names = schema.get("propertyNames")
        result: dict[str, Any] = {}
        for name, item in value.items():
            if names is not None:
                self.validate(names, name, f"{at(name)} (name)")
            if name in properties:
                result[name] = self.validate(properties[name], item, at(name))
            elif extra is False:
                known = ", ".join(sorted(properties)) or "none"
                raise SchemaViolation(
                    at(name), f"is not a known field (known fields: {known})", unknown=True)
            elif isinstance(extra, Mapping):
                result[name] = self.validate(extra, item, at(name))
            else:
                result[name] = item
        for name in schema.get("required", ()):
            if name not in value:
                raise SchemaViolation(at(name), "is required")
        for name, needed in schema.get("dependentRequired", {}).items():
            if name in value:
                for other in needed:
                    if other not in value:
                        raise SchemaViolation(at(other), f"is required when {name} is given")
        forbidden = schema.get("not")
        if forbidden is not None:
            together = forbidden.get("required", [])
            if together and all(name in value for name in together):
                raise SchemaViolation(
                    at(together[-1]), f"give at most one of {', '.join(together)}, not both")
        return result


def check_supported(schema: Any, where: str) -> None:
    """Fail at import when a schema uses a keyword this validator does not enforce."""
    if not isinstance(schema, Mapping):
        return
    unknown = set(schema) - _KNOWN
    if unknown:
        raise ValueError(f"{where}: unsupported schema keyword(s) {sorted(unknown)}")
    if "not" in schema and set(schema["not"]) != {"required"}:
        raise ValueError(f"{where}: only 'not: {{required: [...]}}' is supported")
    for key in ("items", "propertyNames"):
        if key in schema:
            check_supported(schema[key], f"{where}.{key}")
    if isinstance(schema.get("additionalProperties"), Mapping):
        check_supported(schema["additionalProperties"], f"{where}.additionalProperties")
    for name, sub in schema.get("properties", {}).items():
        check_supported(sub, f"{where}.{name}")
    for i, sub in enumerate(schema.get("anyOf", ())):
        check_supported(sub, f"{where}.anyOf[{i}]")
