"""What an OpenAI Realtime ``error`` (or a failed ``response.done``) means for the session.

Production accepts the WebSocket and ``session.update`` even for an account that cannot generate
anything, then fails every response: an ``error{error:{type,code,message}}`` event and/or
``response.done{status:"failed", status_details:{error:{type,code}}}``, and the server closes.
Reconnecting only repeats that, so these codes are *terminal* (``retryable=False``): quota and
billing (:class:`QuotaExceededError`), the key or account (:class:`AuthenticationError`), the
model (:class:`ModelUnavailableError`). Rate limits are *transient*: the response failed, the
session lives (:class:`RateLimitError`, retryable). Codes are matched on ``code`` or ``type``.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    SessionExpiredError,
)
from .settings import PROVIDER

__all__ = [
    "AUTH_CODES",
    "HELD_CODES",
    "MODEL_CODES",
    "QUOTA_CODES",
    "RATE_LIMIT_CODES",
    "close_error",
    "event_error",
    "terminal_error",
]

QUOTA_CODES = frozenset(
    {"insufficient_quota", "credit_balance_exhausted", "billing_hard_limit_reached"}
)
AUTH_CODES = frozenset({"invalid_api_key", "account_deactivated", "forbidden"})
MODEL_CODES = frozenset({"model_not_found", "invalid_model"})
RATE_LIMIT_CODES = frozenset({"rate_limit_exceeded", "inference_rate_limit_exceeded"})
#: Codes whose close follows in the same millisecond: reported with the close, not as an event.
HELD_CODES = frozenset({"missing_model", "beta_api_shape_disabled", "session_expired"})
#: Close codes the official SDK treats as recoverable.
RECOVERABLE_CLOSE_CODES = frozenset({1001, 1005, 1006, 1011, 1012, 1013, 1015})

_TERMINAL: tuple[tuple[frozenset[str], type[ProviderError]], ...] = (
    (QUOTA_CODES, QuotaExceededError),
    (AUTH_CODES, AuthenticationError),
    (MODEL_CODES, ModelUnavailableError),
)


def _matches(err: Mapping[str, Any], codes: frozenset[str]) -> str | None:
    """The provider code of ``err`` if its ``code`` or ``type`` is in ``codes``."""
    code, kind = err.get("code"), err.get("type")
    if code in codes:
        return str(code)
    if kind in codes:
        return str(kind)
    return None


def _message(err: Mapping[str, Any], default: str) -> str:
    return str(err.get("message") or default)


def terminal_error(err: Mapping[str, Any], context: str = "") -> ProviderError | None:
    """The not-retryable error ``err`` reports (quota, auth, model), else ``None``."""
    for codes, cls in _TERMINAL:
        code = _matches(err, codes)
        if code is not None:
            what = f"{context}: " if context else ""
            return cls(
                f"{PROVIDER}: {what}{_message(err, code)}",
                code=code,
                provider=PROVIDER,
                retryable=False,
            )
    return None


def event_error(err: Mapping[str, Any], context: str = "") -> ProviderError:
    """A non-terminal ``error`` (or failed-response) payload as the error event to report."""
    what = f"{context}: " if context else ""
    param = f" (param {err['param']})" if err.get("param") else ""
    message = f"{PROVIDER}: {what}{_message(err, 'no details')}{param}"
    rate = _matches(err, RATE_LIMIT_CODES)
    if rate is not None:
        return RateLimitError(message, code=rate, provider=PROVIDER, retryable=True)
    code = err.get("code")
    cls: type[ProviderError] = ProviderError
    if err.get("type") == "server_error" or context:
        cls = ProviderServerError
    return cls(message, code=code, provider=PROVIDER, retryable=False)


def close_error(
    code: int | None, reason: str, held: Mapping[str, Any] | None, was_closing: bool
) -> S2SError | None:
    """The error a close means, given the ``error`` payload held before it (if any)."""
    held = held or {}
    held_code = held.get("code")
    message = _message(held, reason or "connection closed")
    if code == 3000:
        return AuthenticationError(
            f"{PROVIDER}: {message}", code=held_code or reason or "3000", provider=PROVIDER
        )
    if code == 4000:
        cls = ModelUnavailableError if held_code in MODEL_CODES else InvalidRequestError
        return cls(f"{PROVIDER}: {message}", code=held_code or reason or "4000", provider=PROVIDER)
    terminal = terminal_error(held) if held else None
    if terminal is not None:
        return terminal
    if held_code == "session_expired":
        return SessionExpiredError(f"{PROVIDER}: {message}", code=held_code, provider=PROVIDER)
    if was_closing and code in (1000, None):
        return None
    if code is None or code == 1000 or code in RECOVERABLE_CLOSE_CODES:
        return ProviderConnectionError(
            f"{PROVIDER}: connection closed (code={code}, reason={reason!r})",
            code=str(code) if code is not None else None,
            provider=PROVIDER,
        )
    return ProviderError(
        f"{PROVIDER}: connection closed with code {code}: {reason}",
        code=str(code),
        provider=PROVIDER,
    )
