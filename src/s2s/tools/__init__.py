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
"""

from .decorator import Tool, tool
from .registry import ToolRegistry

__all__ = ["Tool", "ToolRegistry", "tool"]
