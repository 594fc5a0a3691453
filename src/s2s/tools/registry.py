"""Finding tools: the ``@tool`` functions of the modules a pool lists."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, Mapping

from ..config import ToolDefinition
from ..errors import ConfigurationError
from .decorator import Tool, tool_of

__all__ = ["ToolRegistry", "pool_registries"]


class ToolRegistry:
    """Tools by name."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for item in tools:
            if item.name in self._tools:
                raise ConfigurationError(f"two tools are named {item.name!r}")
            self._tools[item.name] = item

    @classmethod
    def from_modules(cls, modules: Iterable[str]) -> ToolRegistry:
        found: list[Tool] = []
        for module_name in modules:
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                raise ConfigurationError(
                    f"tool module {module_name!r} cannot be imported: {exc}"
                ) from exc
            found.extend(t for value in vars(module).values() if (t := tool_of(value)) is not None)
        return cls(found)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            raise ConfigurationError(
                f"no tool named {name!r}; known: {', '.join(sorted(self._tools)) or 'none'}"
            ) from None

    @property
    def names(self) -> list[str]:
        return sorted(self._tools)

    def definitions(self, names: Iterable[str] | None = None) -> list[ToolDefinition]:
        chosen = self.names if names is None else list(names)
        return [self.get(name).definition for name in chosen]


def pool_registries(
    pool_modules: Mapping[str, Iterable[str]],
) -> tuple[dict[str, ToolRegistry], dict[str, str]]:
    """Each pool's registry, and the pool serving each tool name (one pool per tool)."""
    registries: dict[str, ToolRegistry] = {}
    owner: dict[str, str] = {}
    for pool, modules in pool_modules.items():
        registry = ToolRegistry.from_modules(modules)
        for name in registry.names:
            if name in owner:
                raise ConfigurationError(
                    f"tool {name!r} is in pool {owner[name]!r} and pool {pool!r}; give each "
                    "tool one pool"
                )
            owner[name] = pool
        registries[pool] = registry
    return registries, owner
