"""API errors: one JSON shape, and how failures from actors and providers map onto it."""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

from s2s.errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidInputError,
    MissingCredentialsError,
    S2SError,
)
from s2s.log import logger

__all__ = ["ApiError", "describe", "error_for"]

log = logger.getChild("ingress")


class ApiError(Exception):
    """An HTTP error with a stable ``code`` and a message for the client."""

    def __init__(
        self, status: int, code: str, message: str, *, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if self.retry_after is not None:
            headers["Retry-After"] = str(max(1, round(self.retry_after + 0.49)))
        return headers


def describe(exc: ValidationError | RequestValidationError) -> str:
    """A validation error as one line naming each wrong field (never echoing the input)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
    )


def error_for(exc: BaseException) -> ApiError:
    """A failure while starting or reaching a session as an HTTP error (no internal detail)."""
    cause = exc
    if isinstance(exc, RayTaskError) and exc.cause is not None:
        cause = exc.cause
    if isinstance(cause, MissingCredentialsError):
        return ApiError(503, "provider_unavailable", "the provider is not configured here")
    if isinstance(cause, AuthenticationError):
        return ApiError(502, "provider_auth", "the provider refused the service's credentials")
    if isinstance(cause, ConfigurationError | InvalidInputError):
        return ApiError(400, "invalid_session", str(cause))
    if isinstance(cause, S2SError) and cause.code and "invalid" in cause.code:
        return ApiError(400, "invalid_session", str(cause))  # the provider refused the request
    if isinstance(cause, S2SError):
        retry = 5.0 if cause.retryable else None
        return ApiError(502, "provider_error", str(cause), retry_after=retry)
    if isinstance(cause, RayActorError):
        return ApiError(503, "session_unavailable", "the session's actor stopped", retry_after=1)
    if isinstance(cause, TimeoutError | GetTimeoutError):
        return ApiError(
            503, "session_unavailable", "the session did not answer in time", retry_after=2
        )
    log.error("unexpected failure on a request path: %r", cause)
    return ApiError(500, "internal", "internal error")
