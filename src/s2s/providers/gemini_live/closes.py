"""Gemini Live close frames as s2s errors.

Gemini reports every error as a WebSocket close with a reason, never in-band (protocols.md §2.7).
The code alone is not enough (1008 is both "model gone" and routine expiry, 1011 both quota and
an internal error), so the reason is read too, from its start: a close frame holds at most 123
bytes of reason, so the end of a long one is cut off (provider-drift §3.4, §5).

* a refused key (1007/1008 whose reason is about the API key or caller identity):
  :class:`~s2s.errors.AuthenticationError`, not retryable;
* 1008 "Publisher Model `models/…` was not found or is not supported" (a retired, unknown or
  not-enabled model; the handshake was accepted first): :class:`~s2s.errors.ModelUnavailableError`,
  not retryable: switch model instead;
* 1008 after a ``goAway``: the routine end of the connection's lifetime,
  :class:`~s2s.errors.SessionExpiredError`, retryable on a new connection;
* any other 1007 (invalid argument, including a context that is full) and 1008 (policy):
  :class:`~s2s.errors.InvalidRequestError`, not retryable: a replay fails the same way;
* 1011 starting "You exceeded your current quota" or "RESOURCE_EXHAUSTED" (sent right after
  ``setupComplete``, or mid-session): :class:`~s2s.errors.QuotaExceededError`, not retryable:
  reconnecting only repeats it; 1011 "Deadline expired" (the connection's time is up):
  :class:`~s2s.errors.SessionExpiredError`; another rate reason:
  :class:`~s2s.errors.RateLimitError`; any other 1011 (internal error):
  :class:`~s2s.errors.ProviderServerError`; all three retryable on a new connection;
* a close without a frame (1006), 1000/1001 from the server, 1012-1014: a dropped connection,
  retryable;
* anything else: :class:`~s2s.errors.ProviderError`, not retryable.
"""

from __future__ import annotations

import re

from ...errors import (
    AuthenticationError,
    InvalidRequestError,
    ModelUnavailableError,
    ProviderConnectionError,
    ProviderError,
    ProviderServerError,
    QuotaExceededError,
    RateLimitError,
    SessionExpiredError,
)
from .settings import PROVIDER

__all__ = ["close_error"]

_AUTH_HINTS = ("api key", "api_key", "unregistered callers", "permission denied", "unauthenticated")
_RATE_HINTS = ("quota", "resource_exhausted", "resource exhausted", "rate limit")
_DROPPED = frozenset({1000, 1001, 1005, 1006, 1012, 1013, 1014})
#: Quota, credits or billing: matched from the start of the reason.
_QUOTA = re.compile(r"\s*(you exceeded your current quota|resource_exhausted)", re.IGNORECASE)
#: The model is not served: "Publisher Model `models/x` was not found or is not supported …",
#: or the older "models/x is not found for API version …".
_MODEL_GONE = re.compile(r"\s*(publisher model\b|models/\S+ is not found)", re.IGNORECASE)


def close_error(code: int | None, reason: str, *, after_go_away: bool = False) -> ProviderError:
    """The error a server close means (``code`` None: the connection dropped without a close;
    ``after_go_away``: the server announced the end of the connection before)."""
    text = reason or "no reason given"
    lowered = text.lower()
    shown = f"{PROVIDER}: the server closed the connection ({code}: {text})"
    code_str = str(code) if code is not None else None
    if code in (1007, 1008) and any(hint in lowered for hint in _AUTH_HINTS):
        return AuthenticationError(shown, code=code_str, provider=PROVIDER, retryable=False)
    if code == 1008 and _MODEL_GONE.match(text):
        return ModelUnavailableError(
            f"{shown}; the model is retired, unknown or not enabled for this key: use another",
            code=code_str,
            provider=PROVIDER,
            retryable=False,
        )
    if code == 1008 and after_go_away:
        return SessionExpiredError(shown, code=code_str, provider=PROVIDER)
    if code in (1007, 1008):
        return InvalidRequestError(shown, code=code_str, provider=PROVIDER, retryable=False)
    if code == 1011:
        if _QUOTA.match(text):
            return QuotaExceededError(
                f"{shown}; the provider quota is exhausted (retrying cannot help)",
                code=code_str,
                provider=PROVIDER,
                retryable=False,
            )
        if "deadline" in lowered:
            return SessionExpiredError(shown, code=code_str, provider=PROVIDER)
        if any(hint in lowered for hint in _RATE_HINTS):
            return RateLimitError(shown, code=code_str, provider=PROVIDER)
        return ProviderServerError(shown, code=code_str, provider=PROVIDER)
    if code is None or code in _DROPPED:
        return ProviderConnectionError(shown, code=code_str, provider=PROVIDER)
    return ProviderError(shown, code=code_str, provider=PROVIDER, retryable=False)
