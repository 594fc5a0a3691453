"""Example contact-centre tools (the default pool serves these).

Deterministic answers derived from the arguments, so demos and tests can check them.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Literal

from .decorator import tool

__all__ = ["check_balance", "lookup_order", "schedule_callback", "transfer_to_agent", "wait"]

_STATUSES = ("processing", "packed", "shipped", "out for delivery", "delivered")


def _pick(key: str, n: int) -> int:
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % n


@tool
def lookup_order(order_id: str) -> dict[str, str]:
    """Look up the delivery status of a customer's order.

    Args:
        order_id: The order number, for example A1234.
    """
    status = _STATUSES[_pick(order_id.upper(), len(_STATUSES))]
    return {"order_id": order_id.upper(), "status": status}


@tool
def check_balance(
    account_id: str, currency: Literal["EUR", "USD", "GBP"] = "EUR"
) -> dict[str, object]:
    """Tell the caller the balance of one of their accounts.

    Args:
        account_id: The account number the caller gave.
        currency: The currency to report the balance in.
    """
    cents = _pick(account_id, 500_000)
    return {"account_id": account_id, "balance": round(cents / 100, 2), "currency": currency}


@tool
def schedule_callback(phone: str, when: str, reason: str = "") -> dict[str, str]:
    """Book a call back to the customer.

    Args:
        phone: The number to call, in international format.
        when: When to call, as the caller said it (for example "tomorrow 9am").
        reason: What the call is about.
    """
    ticket = f"CB-{_pick(phone + when, 100000):05d}"
    return {"ticket": ticket, "phone": phone, "when": when, "reason": reason}


@tool
def transfer_to_agent(
    department: Literal["billing", "support", "sales"], summary: str
) -> dict[str, str]:
    """Hand the call over to a human agent.

    Args:
        department: Which team should take the call.
        summary: One sentence about what the caller needs.
    """
    return {"status": "queued", "department": department, "position": str(1 + _pick(summary, 5))}


@tool
async def wait(seconds: float) -> dict[str, float]:
    """Wait a while and report it (a slow tool, for demonstrations of long calls).

    Args:
        seconds: How long to wait, at most 60.
    """
    await asyncio.sleep(max(0.0, min(seconds, 60.0)))
    return {"waited_s": seconds}
