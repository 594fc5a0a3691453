"""What a Bedrock error means for the call: the typed s2s error, retryable or not.

Bedrock reports failures in two places, with the same type names in two spellings: an HTTP error
before the stream starts (``ThrottlingException``, status 429) and an exception message inside it
(``:exception-type throttlingException``). :func:`error_for` maps both:

* retrying cannot help (not retryable): refused credentials, an exhausted service quota
  (``ServiceQuotaExceededException``, :class:`~s2s.errors.QuotaExceededError`), an unknown,
  retired or not-enabled model (:class:`~s2s.errors.ModelUnavailableError`), a refused request;
* transient (retryable, bounded by the provider's reconnect policy): throttling
  (:class:`~s2s.errors.RateLimitError`), a model not ready or timed out, service unavailable,
  internal and stream errors, the stream's silence limit, expired temporary credentials.
"""

from __future__ import annotations

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

__all__ = ["error_for"]

_AUTH_ERRORS = frozenset(
    {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "IncompleteSignatureException",
        "MissingAuthenticationTokenException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
    }
)
_SERVER_ERRORS = frozenset(
    {
        "InternalServerException",
        "ServiceUnavailableException",
        "ModelStreamErrorException",
        "ModelNotReadyException",
        "ModelErrorException",
    }
)
#: Texts that say the model itself is unavailable (unknown id, end of life, Legacy without
#: recent use, access not granted), whatever the error type.
_MODEL_UNAVAILABLE = (
    "model identifier is invalid",
    "end of its life",
    "marked by provider as Legacy",
    "access to the model",
)


def _canonical_type(name: str) -> str:
    """``validationException`` (event-stream) and ``ValidationException`` (HTTP) -> the latter."""
    return name[:1].upper() + name[1:]


def error_for(
    kind: str, message: str, status: int | None = None, *, retryable: bool | None = None
) -> S2SError:
    """The s2s error a Bedrock error type means (pre-stream HTTP error or in-stream exception).

    ``ConnectionError`` is the transport's name for a stream that could not be opened at all.
    ``code`` is always the Bedrock type in its HTTP spelling (``ThrottlingException``).
    """
    kind = _canonical_type(kind or "UnknownError")
    text = f"{PROVIDER}: {kind}: {message}" if message else f"{PROVIDER}: {kind}"
    if kind == "ResourceNotFoundException" or (
        kind in ("ValidationException", "AccessDeniedException")
        and any(phrase in message for phrase in _MODEL_UNAVAILABLE)
    ):
        return ModelUnavailableError(
            f"{text}. Choose a model Bedrock serves to this account in this region",
            code=kind,
            provider=PROVIDER,
            retryable=False,
        )
    if kind in _AUTH_ERRORS:
        return AuthenticationError(
            f"{text}. AWS refused the credentials: check the access key id, secret access key, "
            "session token and region",
            code=kind,
            provider=PROVIDER,
            retryable=False,
        )
    if kind == "ExpiredTokenException":  # fresh credentials are fetched for the next stream
        return AuthenticationError(text, code=kind, provider=PROVIDER, retryable=True)
    if kind == "ValidationException":
        if "InternalErrorCode=531" in message:  # the stream's silence / time limit
            return SessionExpiredError(text, code=kind, provider=PROVIDER)
        if "System instability" in message:
            return ProviderServerError(text, code=kind, provider=PROVIDER, retryable=True)
        return InvalidRequestError(text, code=kind, provider=PROVIDER)
    if kind == "ModelTimeoutException":
        return SessionExpiredError(text, code=kind, provider=PROVIDER)
    if kind == "ServiceQuotaExceededException":
        return QuotaExceededError(
            f"{text}. The account's Bedrock quota is exhausted; retrying cannot help until it is "
            "raised or usage drops",
            code=kind,
            provider=PROVIDER,
            retryable=False,
        )
    if kind == "ThrottlingException":
        return RateLimitError(text, code=kind, provider=PROVIDER, retryable=True)
    if kind in _SERVER_ERRORS:
        return ProviderServerError(text, code=kind, provider=PROVIDER, retryable=True)
    if kind == "ConnectionError":
        return ProviderConnectionError(text, provider=PROVIDER, retryable=retryable)
    retryable = status is not None and (status >= 500 or status == 429)
    if status in (401, 403):
        return AuthenticationError(text, code=kind, provider=PROVIDER, retryable=False)
    return ProviderError(text, code=kind, provider=PROVIDER, retryable=retryable)
