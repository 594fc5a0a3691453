"""Tools the model can call, and the worker pools that run them.

Declare tools as plain functions::

    from s2s.tools import tool

    @tool
    def lookup_order(order_id: str) -> dict:
        \"\"\"Look up an order's delivery status.

        Args:
            order_id: The order number, for example A1234.
        \"\"\"
        return {"order_id": order_id, "status": "shipped"}

List the module in a pool in ``config.yaml`` (``tool_pools.<name>.modules``) and run workers with
``s2s tool-worker --pool <name>``. Calls travel through a Redis Stream per pool with a consumer
group, so a call survives a worker that dies mid-call (another worker reclaims it).

A tool that must know whose call it is (tenant, session, caller metadata) or needs an
idempotency key for a side effect (a call may run more than once) takes a :class:`ToolContext`::

    @tool
    def check_balance(context: ToolContext, account_id: str) -> dict:
        \"\"\"Tell the caller the balance of one of their accounts.

        Args:
            account_id: The account number the caller gave.
        \"\"\"
        if account_id not in context.metadata.get("account_ids", ()):
            raise ToolError("that account does not belong to this caller")
        ...

The worker injects the context; the model neither sees nor can send it.
"""

from .context import ToolContext
from .decorator import Tool, ToolError, tool
from .registry import ToolRegistry

__all__ = ["Tool", "ToolContext", "ToolError", "ToolRegistry", "tool"]
