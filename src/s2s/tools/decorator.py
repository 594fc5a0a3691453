"""``@tool``: a plain function becomes a tool with a JSON Schema for its arguments.

The schema comes from the type hints (through a pydantic model of the signature, so ``Literal``,
``list[int]``, ``X | None``, defaults and nested models all work) and the descriptions from the
docstring: its first paragraph describes the tool, and a Google-style ``Args:`` section describes
each argument. At call time the model's arguments are validated against the same model, so a bad
argument becomes a clear error result for the model instead of an exception in the worker.

A tool that needs to know whose call it is declares one parameter annotated
:class:`~s2s.tools.context.ToolContext` (any name). That parameter is left out of the schema and
of validation (the model sending it is refused like any unknown argument); the worker passes the
context to :meth:`Tool.run`, which injects it. A tool answers with an error result the model can
relay (a refusal, say) by raising :class:`ToolError`.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_args, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from ..config import ToolDefinition
from ..errors import ConfigurationError
from .context import ToolContext

__all__ = ["Tool", "ToolArgumentError", "ToolError", "tool"]

_ATTRIBUTE = "__s2s_tool__"


class ToolArgumentError(ValueError):
    """The model's arguments do not fit the tool's signature."""


class ToolError(Exception):
    """Raised by a tool to answer with an error result: its message, for the model to relay.

    For expected refusals ("that account does not belong to this caller"); the worker reports it
    without a traceback. Any other exception is reported as the tool having failed.
    """


@dataclass(frozen=True, slots=True)
class Tool:
    """A callable tool: its definition for the model, and how to run it."""

    name: str
    description: str
    parameters: dict[str, Any]
    function: Callable[..., Any]
    arguments: type[BaseModel]
    context_parameter: str | None = None  # the parameter that takes a ToolContext, if any

    @property
    def definition(self) -> ToolDefinition:
        return ToolDefinition(self.name, self.description, self.parameters)

    def parse(self, arguments: str) -> dict[str, Any]:
        """Validate the model's JSON arguments; raise ToolArgumentError naming the problem."""
        try:
            raw = json.loads(arguments or "{}")
        except json.JSONDecodeError as exc:
            raise ToolArgumentError(f"arguments are not valid JSON: {exc}") from exc
        if not isinstance(raw, dict):
            raise ToolArgumentError("arguments must be a JSON object")
        try:
            model = self.arguments.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                for e in exc.errors()
            )
            raise ToolArgumentError(problems) from exc
        return {name: getattr(model, name) for name in type(model).model_fields}

    @property
    def wants_context(self) -> bool:
        return self.context_parameter is not None

    async def run(self, arguments: str, context: ToolContext | None = None) -> str:
        """Run with the model's JSON arguments; the result as text (JSON unless a str).

        ``context`` is injected into a tool that takes one (ConfigurationError if it is
        missing) and ignored by a tool that does not.
        """
        if self.context_parameter is not None and context is None:
            raise ConfigurationError(
                f"tool {self.name!r} takes a ToolContext ({self.context_parameter!r}); "
                "run it with one"
            )
        kwargs = self.parse(arguments)
        if self.context_parameter is not None:
            kwargs[self.context_parameter] = context
        if inspect.iscoroutinefunction(self.function):
            result = await self.function(**kwargs)
        else:  # a blocking function must not stall the worker's other calls
            result = await asyncio.to_thread(self.function, **kwargs)
        if isinstance(result, str):
            return result
        if isinstance(result, BaseModel):
            return result.model_dump_json()
        return json.dumps(result, default=str)


def _docstring(fn: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    doc = inspect.getdoc(fn) or ""
    summary, _, rest = doc.partition("\n\n")
    params: dict[str, str] = {}
    in_args = False
    current: str | None = None
    for line in rest.splitlines():
        if re.match(r"^(Args|Arguments|Parameters):\s*$", line):
            in_args, current = True, None
            continue
        if in_args and re.match(r"^\S", line):
            in_args = False  # the next section
        if not in_args:
            continue
        match = re.match(r"^\s{2,}(\w+)\s*(?:\([^)]*\))?:\s*(.*)$", line)
        if match and (current is None or len(line) - len(line.lstrip()) <= 4):
            current = match.group(1)
            params[current] = match.group(2).strip()
        elif current and line.strip():
            params[current] = f"{params[current]} {line.strip()}".strip()
    return " ".join(summary.split()), params


def _mentions_context(hint: Any) -> bool:
    return hint is ToolContext or any(_mentions_context(arg) for arg in get_args(hint))


def _clean(schema: Any) -> Any:
    """Drop pydantic's generated titles; keep the rest of the JSON Schema as is."""
    if isinstance(schema, dict):
        return {k: _clean(v) for k, v in schema.items() if k != "title"}
    if isinstance(schema, list):
        return [_clean(v) for v in schema]
    return schema


def make_tool(
    fn: Callable[..., Any], *, name: str | None = None, description: str | None = None
) -> Tool:
    tool_name = name or fn.__name__
    summary, param_docs = _docstring(fn)
    hints = get_type_hints(fn)
    fields: dict[str, Any] = {}
    context_parameter: str | None = None
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ConfigurationError(f"tool {tool_name!r}: *args/**kwargs cannot be described")
        if param.name not in hints:
            raise ConfigurationError(
                f"tool {tool_name!r}: argument {param.name!r} needs a type hint"
            )
        if hints[param.name] is ToolContext:  # injected by the worker, never from the model
            if context_parameter is not None:
                raise ConfigurationError(
                    f"tool {tool_name!r}: one ToolContext parameter at most "
                    f"({context_parameter!r} and {param.name!r})"
                )
            if param.kind is param.POSITIONAL_ONLY:
                raise ConfigurationError(
                    f"tool {tool_name!r}: the ToolContext parameter cannot be positional-only"
                )
            context_parameter = param.name
            continue
        if _mentions_context(hints[param.name]):  # would put the context in the model's schema
            raise ConfigurationError(
                f"tool {tool_name!r}: annotate {param.name!r} exactly ToolContext "
                "(not optional or nested) for the worker to inject it"
            )
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (hints[param.name], default)
    model = create_model(f"{tool_name}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
    schema = _clean(model.model_json_schema())
    for pname, text in param_docs.items():
        prop = schema.get("properties", {}).get(pname)
        if isinstance(prop, dict) and text:
            prop["description"] = text
    schema.setdefault("properties", {})
    definition_text = description or summary
    if not definition_text:
        raise ConfigurationError(f"tool {tool_name!r} needs a docstring (what it does)")
    ToolDefinition(tool_name, definition_text, schema)  # validates the name and the schema
    return Tool(tool_name, definition_text, schema, fn, model, context_parameter)


def tool(
    fn: Callable[..., Any] | None = None, *, name: str | None = None, description: str | None = None
) -> Any:
    """Mark ``fn`` as a tool (``@tool`` or ``@tool(name=..., description=...)``).

    The function is returned unchanged (still callable directly), with its :class:`Tool`
    attached for :class:`~s2s.tools.registry.ToolRegistry` to find.
    """

    def mark(function: Callable[..., Any]) -> Callable[..., Any]:
        setattr(function, _ATTRIBUTE, make_tool(function, name=name, description=description))
        return function

    return mark(fn) if fn is not None else mark


def tool_of(obj: Any) -> Tool | None:
    value = getattr(obj, _ATTRIBUTE, None)
    return value if isinstance(value, Tool) else None
