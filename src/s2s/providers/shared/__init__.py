"""What every provider protocol needs and none should write again.

* :class:`~.tool_ledger.ToolLedger`: the tool calls the model made on a connection, the
  application's answers, cancellations, and the checks on a result (unknown call, answered twice,
  cancelled) with the same error wording on every provider.
* :func:`~.results.result_text` / :func:`~.results.result_object`: a :class:`~s2s.config.ToolResult`
  as the text or the JSON object a provider takes.
* :class:`~.outbox.Outbox`: the application's input held in order until the provider is ready.
* :func:`~.open_check.check_open`: the error for input on a closed connection.

All of it is sans-I/O and provider-neutral: plain state, no sockets, no clock.
"""

from __future__ import annotations

from .open_check import check_open
from .outbox import Outbox
from .results import result_object, result_text
from .tool_ledger import OpenCall, ToolLedger

__all__ = ["OpenCall", "Outbox", "ToolLedger", "check_open", "result_object", "result_text"]
