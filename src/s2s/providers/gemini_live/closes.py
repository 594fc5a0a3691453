"""Gemini Live close frames as s2s errors.

Gemini reports every error as a WebSocket close with a reason, never in-band (protocols.md §2.7).
``retryable`` is decided per code:

* a refused key (1007/1008 whose reason is about the API key or caller identity):
  :class:`~s2s.errors.AuthenticationError`, not retryable;
* 1007 (invalid argument) and 1008 (policy, entity not found):
  :class:`~s2s.errors.InvalidRequestError`, not retryable: sending the same again fails again;
* 1011 "Deadline expired" (the connection's time is up): :class:`~s2s.errors.SessionExpiredError`;
  a quota or rate reason: :class:`~s2s.errors.RateLimitError`; any other 1011 (internal error):
  :class:`~s2s.errors.ProviderServerError`; all retryable on a new connection;
* a close without a frame (1006), 1000/1001 from the server, 1012-1014: a dropped connection,
  retryable;
* anything else: :class:`~s2s.errors.ProviderError`, not retryable.
"""

from __future__ import annotations

from ...errors import (
    AuthenticationError,
    InvalidRequestError,
    ProviderConnectionError,
    ProviderError,
    ProviderServerError,
    RateLimitError,
    SessionExpiredError,
)
from .settings import PROVIDER

__all__ = ["close_error"]

_AUTH_HINTS = ("api key", "api_key", "unregistered callers", "permission denied", "unauthenticated")
_RATE_HINTS = ("quota", "resource_exhausted", "resource exhausted", "rate limit")
_DROPPED = frozenset({1000, 1001, 1005, 1006, 1012, 1013, 1014})


def close_error(code: int | None, reason: str) -> ProviderError:
    """The error a server close means (``code`` None: the connection dropped without a close)."""
    text = reason or "no reason given"
    lowered = text.lower()
    shown = f"{PROVIDER}: the server closed the connection ({code}: {text})"
    code_str = str(code) if code is not None else None
    if code in (1007, 1008) and any(hint in lowered for hint in _AUTH_HINTS):
        return AuthenticationError(shown, code=code_str, provider=PROVIDER, retryable=False)
    if code in (1007, 1008):
        return InvalidRequestError(shown, code=code_str, provider=PROVIDER, retryable=False)
    if code == 1011:
        if "deadline" in lowered:
            return SessionExpiredError(shown, code=code_str, provider=PROVIDER)
        if any(hint in lowered for hint in _RATE_HINTS):
            return RateLimitError(shown, code=code_str, provider=PROVIDER)
        return ProviderServerError(shown, code=code_str, provider=PROVIDER)
    if code is None or code in _DROPPED:
        return ProviderConnectionError(shown, code=code_str, provider=PROVIDER)
    return ProviderError(shown, code=code_str, provider=PROVIDER, retryable=False)
