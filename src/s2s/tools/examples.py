"""Example contact-centre tools (the default pool serves these).

Deterministic answers derived from the arguments (and, for the tools that take a
:class:`~s2s.tools.context.ToolContext`, the tenant and call), so demos and tests can check them.
``check_balance`` shows a per-caller ownership check; ``schedule_callback`` shows an idempotent
side effect under at-least-once delivery.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from typing import Literal

from .context import ToolContext
from .decorator import ToolError, tool

__all__ = ["check_balance", "lookup_order", "schedule_callback", "transfer_to_agent", "wait"]

_STATUSES = ("processing", "packed", "shipped", "out for delivery", "delivered")


def _pick(key: str, n: int) -> int:
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % n


def _key(*parts: str) -> str:
    return "\x00".join(parts)  # unambiguous: ("a", "bc") and ("ab", "c") differ


@tool
def lookup_order(order_id: str) -> dict[str, str]:
    """Look up the delivery status of a customer's order.

    Args:
        order_id: The order number, for example A1234.
    """
    status = _STATUSES[_pick(order_id.upper(), len(_STATUSES))]
    return {"order_id": order_id.upper(), "status": status}


def _owned_accounts(metadata: object) -> set[str] | None:
    """The caller's accounts from ``metadata["account_ids"]``; None when it does not say.

    A value that is not a string or a list of them owns nothing (fail closed).
    """
    if not isinstance(metadata, Mapping) or metadata.get("account_ids") is None:
        return None
    owned = metadata["account_ids"]
    if isinstance(owned, str):
        return {owned}
    if isinstance(owned, list | tuple):
        return {a for a in owned if isinstance(a, str)}
    return set()


@tool
def check_balance(
    context: ToolContext, account_id: str, currency: Literal["EUR", "USD", "GBP"] = "EUR"
) -> dict[str, object]:
    """Tell the caller the balance of one of their accounts.

    When the session's caller metadata lists the caller's accounts (``account_ids``), any other
    account is refused with an error result, never its balance. The balance depends on the
    tenant, so the same account number at two tenants is two accounts.

    Args:
        account_id: The account number the caller gave.
        currency: The currency to report the balance in.
    """
    owned = _owned_accounts(context.metadata)
    if owned is not None and account_id not in owned:
        raise ToolError(
            f"that account does not belong to this caller (account {account_id}); "
            "its balance cannot be given"
        )
    cents = _pick(_key(context.tenant, account_id), 500_000)
    return {"account_id": account_id, "balance": round(cents / 100, 2), "currency": currency}


@tool
def schedule_callback(
    context: ToolContext, phone: str, when: str, reason: str = ""
) -> dict[str, str]:
    """Book a call back to the customer.

    Idempotent under redelivery: the ticket is derived from the call's idempotency key (tenant,
    session and call id), so a call run twice books the same ticket, never a second one. A real
    booking system would be given ``context.idempotency_key`` for the same effect.

    Args:
        phone: The number to call, in international format.
        when: When to call, as the caller said it (for example "tomorrow 9am").
        reason: What the call is about.
    """
    digest = hashlib.sha256(context.idempotency_key.encode()).hexdigest()
    ticket = f"CB-{digest[:10].upper()}"
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
