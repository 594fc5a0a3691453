"""What ``response.done`` tells the application: usage, a failure, the end of the turn."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import ProviderError
from ...events import EventType, SessionEvent
from .failures import event_error, terminal_error
from .history import usage_from

__all__ = ["turn_end_events"]


def turn_end_events(
    response: Mapping[str, Any], made_calls: bool, now: float
) -> tuple[list[SessionEvent], ProviderError | None]:
    """The events ``response.done`` means, in order (USAGE, ERROR for a failed response,
    TURN_END), and the terminal error a failed response reports (quota, account, model), if
    any. TURN_END's reason is the status, ``"tool_calls"`` for a completed response that made
    calls."""
    status = response.get("status", "completed")
    details = response.get("status_details") or {}
    response_id = response.get("id")
    events: list[SessionEvent] = []
    terminal: ProviderError | None = None
    if (usage := response.get("usage")) is not None:
        events.append(
            SessionEvent(EventType.USAGE, response_id=response_id, at=now, usage=usage_from(usage))
        )
    if status == "failed":
        err = details.get("error") or {}
        terminal = terminal_error(err, "response failed")
        error = terminal or event_error(err, "response failed")
        events.append(SessionEvent(EventType.ERROR, response_id=response_id, at=now, error=error))
    reason = "tool_calls" if status == "completed" and made_calls else status
    events.append(
        SessionEvent(
            EventType.TURN_END,
            reason=reason,
            response_id=response_id,
            at=now,
            data={"status_reason": details.get("reason")} if details.get("reason") else {},
        )
    )
    return events, terminal
