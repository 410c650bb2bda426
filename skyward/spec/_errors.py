"""Turn pydantic's validation errors into Skyward's own, worded for people."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from skyward.errors import ConfigurationError

M = TypeVar("M", bound=BaseModel)


def describe(error: ValidationError, what: str) -> str:
    """One sentence per problem, naming the field, the value and the rule."""
    lines = []
    for item in error.errors(include_url=False):
        field = ".".join(str(part) for part in item["loc"]) or what
        message = item["msg"]
        # Custom validators raise ValueError("...") which pydantic prefixes.
        message = message.removeprefix("Value error, ")
        got = item.get("input")
        shown = "" if isinstance(got, dict) or got is None else f" (got {got!r})"
        lines.append(f"`{field}`: {message}{shown}")
    joined = "\n  ".join(lines)
    return f"Invalid {what} argument{'s' if len(lines) > 1 else ''}:\n  {joined}"


def build(
    model: type[M], what: str, factory: Callable[[], M] | None = None, **values: Any
) -> M:
    """Validate ``values`` into ``model`` or raise :class:`ConfigurationError`."""
    try:
        return factory() if factory is not None else model(**values)
    except ValidationError as exc:
        raise ConfigurationError(describe(exc, what)) from None
