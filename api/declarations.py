"""What an endpoint declares of its parameters and replies: plain data, importing nothing
of the API, so that parsing, the routes and the OpenAPI document can all share it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ROUTE_KEY = "ms8.route"  # the scope key holding a request's route template (metrics)


@dataclass(frozen=True)
class Param:
    name: str
    where: Literal["path", "query", "header"]
    schema: dict[str, Any]
    description: str = ""
    required: bool = False
    error_code: str = "invalid_parameter"


@dataclass(frozen=True)
class Reply:
    description: str
    schema: str | None = None  # component name
    media_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)  # name → description
