"""The s2s exception tree.

Every error s2s raises or reports derives from :class:`S2SError`::

    S2SError
    ├── ConfigurationError           a Config, registry or environment problem; nothing was sent
    │   ├── UnknownProviderError     s2s.new() with a name nobody registered
    │   ├── DuplicateProviderError   s2s.register() with a name already taken
    │   └── MissingCredentialsError  no API key / credentials for a provider
    ├── InvalidInputError            bad argument to a Session method (a ValueError and TypeError)
    ├── SessionClosedError           the session is closed; nothing more can be sent
    └── ProviderError                the provider (or the way to it) failed; has .code, .provider
        ├── AuthenticationError      key refused (OpenAI close 3000, Gemini 1007, SigV4)
        ├── InvalidRequestError      the provider refused what we sent (OpenAI 4000, Gemini 1007)
        │   └── ModelUnavailableError  unknown, retired or not-enabled model (Gemini 1008)
        ├── RateLimitError           throttled (retry later)
        │   └── QuotaExceededError   quota, credits or billing exhausted (not retryable)
        ├── SessionExpiredError      the provider ended the session at its time limit
        ├── ProviderConnectionError  could not connect, or the connection dropped
        ├── ProviderProtocolError    the provider sent something we cannot understand
        └── ProviderServerError      the provider reported an internal error

``retryable`` says whether doing the same thing again (on a new connection) can succeed. The
session runtime reads it to decide between continuing the call on a new connection, moving it to
the next provider of a failover list, and ending it; nothing above the provider client looks at
vendor exceptions or message strings. Quota, billing, authentication and unknown-model failures
are never retryable: providers report them *after* a successful handshake, and retrying them
reconnects forever into dead air.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "DuplicateProviderError",
    "InvalidInputError",
    "InvalidRequestError",
    "MissingCredentialsError",
    "ModelUnavailableError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderProtocolError",
    "ProviderServerError",
    "QuotaExceededError",
    "RateLimitError",
    "S2SError",
    "SessionClosedError",
    "SessionExpiredError",
    "UnknownProviderError",
]


class S2SError(Exception):
    """Root of every s2s error.

    Attributes:
        retryable: True when the same operation on a new connection may succeed.
        code: the provider's error code (``"invalid_api_key"``, ``"1007"``, ...), if any.
        provider: the provider name the error came from, if any.
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        provider: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.provider = provider
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        parts = [self.message]
        if self.code:
            parts.append(f"(code={self.code})")
        text = " ".join(parts)
        cause = self.__cause__
        if cause is not None and str(cause) and str(cause) not in text:
            text += f": {cause}"
        return text

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only attributes survive pickling (Ray ships errors between processes).
        return (_rebuild, (type(self), self.message, self.code, self.provider, self.retryable))

    def to_dict(self) -> dict[str, object]:
        """A JSON/msgpack-friendly description of the error."""
        return {
            "type": type(self).__name__,
            "message": self.message,
            "code": self.code,
            "provider": self.provider,
            "retryable": self.retryable,
        }


def _rebuild(
    cls: type[S2SError], message: str, code: str | None, provider: str | None, retryable: bool
) -> S2SError:
    return cls(message, code=code, provider=provider, retryable=retryable)


class ConfigurationError(S2SError):
    """The configuration, the registry or the environment is wrong; nothing was sent."""


class UnknownProviderError(ConfigurationError, LookupError):
    """No provider is registered under the requested name."""


class DuplicateProviderError(ConfigurationError):
    """A provider with this name is already registered."""


class MissingCredentialsError(ConfigurationError):
    """The provider needs an API key or credentials and none were found."""


class InvalidInputError(S2SError, ValueError, TypeError):
    """An argument to a session method is wrong (type, size or value); the session is unchanged."""


class SessionClosedError(S2SError):
    """The session is closed (by the application, the provider or an error)."""


class ProviderError(S2SError):
    """The provider, or the network path to it, reported an error."""


class AuthenticationError(ProviderError):
    """The provider refused the credentials."""


class InvalidRequestError(ProviderError):
    """The provider refused a request as malformed or not allowed."""


class RateLimitError(ProviderError):
    """The provider throttled the request or the quota is exhausted."""

    retryable = True


class QuotaExceededError(RateLimitError):
    """The account's quota, credits or billing limit is exhausted; retrying cannot help."""

    retryable = False


class ModelUnavailableError(InvalidRequestError):
    """The model does not exist, was retired or is not enabled for this account."""


class SessionExpiredError(ProviderError):
    """The provider ended the session at its maximum duration."""

    retryable = True


class ProviderConnectionError(ProviderError):
    """Connecting failed or an open connection dropped."""

    retryable = True


class ProviderProtocolError(ProviderError):
    """The provider sent a message that does not follow its protocol."""


class ProviderServerError(ProviderError):
    """The provider reported an internal error."""

    retryable = True
