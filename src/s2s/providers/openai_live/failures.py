"""What GPT-Live's ``error`` events and ``session.closed`` reasons mean for a session.

``error`` events are mostly recoverable (drift reference §1.10): they become ERROR events.
Quota, credits and billing (QuotaExceededError), key and account (AuthenticationError) and model
(ModelUnavailableError) codes end the session and are never retried; they are matched on the
error's ``code`` **or** ``type`` (OpenAI once changed a code and kept the type). Any error before
``session.started`` fails the start.
"""

from __future__ import annotations

from typing import Any

from ...errors import (
    AuthenticationError,
    InvalidRequestError,
    ModelUnavailableError,
    ProviderConnectionError,
    ProviderError,
    ProviderServerError,
    QuotaExceededError,
    RateLimitError,
    S2SError,
    SessionClosedError,
    SessionExpiredError,
)
from ..openai_realtime import failures as realtime
from .settings import PROVIDER

__all__ = ["AUTH_CODES", "MODEL_CODES", "QUOTA_CODES", "classify", "closed_error", "lost_error"]

#: The account's codes are Realtime's (one OpenAI account, one billing system), plus GPT-Live's.
AUTH_CODES = realtime.AUTH_CODES | {"missing_api_key"}
MODEL_CODES = realtime.MODEL_CODES | {"invalid_delegated_model", "unsupported_delegated_model"}
QUOTA_CODES = realtime.QUOTA_CODES


def classify(err: dict[str, Any], *, starting: bool) -> tuple[ProviderError, bool]:
    """The error an ``error`` event's body means, and whether it ends the session."""
    code, kind = err.get("code"), err.get("type")
    keys = {code, kind}
    message = f"{PROVIDER}: {err.get('message', '')}" + (
        f" (param {err['param']})" if err.get("param") else ""
    )
    shown = str(code or kind or "") or None
    fatal: type[ProviderError] | None = None
    if keys & QUOTA_CODES:
        fatal = QuotaExceededError
    elif keys & AUTH_CODES:
        fatal = AuthenticationError
    elif keys & MODEL_CODES:
        fatal = ModelUnavailableError
    elif starting:
        fatal = InvalidRequestError
    if fatal is not None:
        return fatal(message, code=shown, provider=PROVIDER, retryable=False), True
    if "rate_limit" in str(code) or "rate_limit" in str(kind):
        return RateLimitError(message, code=shown, provider=PROVIDER, retryable=True), False
    if kind == "server_error":
        return ProviderServerError(message, code=shown, provider=PROVIDER, retryable=False), False
    return ProviderError(message, code=shown, provider=PROVIDER, retryable=False), False


def closed_error(reason: str) -> S2SError | None:
    """The failure a ``session.closed`` reason is at once (``content``, ``remote_hangup``);
    ``None`` for the reasons decided when the socket closes."""
    if reason == "content":
        return ProviderError(
            f"{PROVIDER}: OpenAI's safety filter ended the session",
            code="content",
            provider=PROVIDER,
            retryable=False,
        )
    if reason == "remote_hangup":
        return SessionClosedError(
            f"{PROVIDER}: the remote side hung up", code="remote_hangup", provider=PROVIDER
        )
    return None


def lost_error(
    closed_reason: str | None, code: int | None, reason: str, *, closing: bool
) -> S2SError | None:
    """What the end of the socket means, given the ``session.closed`` reason seen before it:
    ``expired`` and ``connection_lost`` continue the call on a new session; our own close is
    expected; a socket that ends without ``session.closed`` is a retryable connection loss."""
    if closed_reason == "expired":
        return SessionExpiredError(
            f"{PROVIDER}: the session reached its duration limit",
            code="expired",
            provider=PROVIDER,
        )
    if closed_reason == "connection_lost":
        return ProviderConnectionError(
            f"{PROVIDER}: OpenAI lost the session's connection",
            code="connection_lost",
            provider=PROVIDER,
        )
    if closed_reason == "close_requested" or (closing and code in (1000, None)):
        return None
    return ProviderConnectionError(
        f"{PROVIDER}: connection closed without session.closed (code={code}, reason={reason!r})",
        code=str(code) if code is not None else None,
        provider=PROVIDER,
    )
