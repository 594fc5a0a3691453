"""``ToolContext``: who a tool call is for, handed by the worker to tools that ask for it.

A ``@tool`` function opts in by declaring one parameter annotated :class:`ToolContext` (any
name). That parameter is not shown to the model nor accepted from it; the worker fills it in
from the call's :class:`~s2s.tools.queue.ToolRequest` on every delivery.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["ToolContext"]


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ToolContext:
    """One delivery of one tool call.

    Attributes:
        tenant: the tenant the session belongs to ("" when the service has no tenants).
        session_id: the session that made the call.
        call_id: the model's id for this call, the same on every delivery of it: the idempotency
            key for side effects (delivery is at-least-once, so a call may run again after a
            worker dies). It is unique within a session only; see :attr:`idempotency_key`.
        attempt: which delivery this is, 1 for the first (more means an earlier worker may have
            run part or all of the call already).
        metadata: the session's caller metadata (JSON-like), read-only; a private copy, so
            nothing a tool does to it reaches the request or another call.
        deadline: unix seconds after which the session has answered the model with a timeout.
    """

    tenant: str
    session_id: str
    call_id: str
    attempt: int = 1
    metadata: Mapping[str, Any] = field(default_factory=_empty, hash=False)
    deadline: float = float("inf")

    def __post_init__(self) -> None:
        # a deep copy behind a read-only view: tools can't change shared state through it
        frozen = MappingProxyType(copy.deepcopy(dict(self.metadata)))
        object.__setattr__(self, "metadata", frozen)

    @property
    def idempotency_key(self) -> str:
        """``tenant/session_id/call_id``: the same on every delivery, unique across sessions."""
        return f"{self.tenant}/{self.session_id}/{self.call_id}"
