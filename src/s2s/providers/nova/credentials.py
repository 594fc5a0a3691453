"""AWS credentials for each new Nova stream.

Explicit keys from the settings win; otherwise the standard AWS chain runs through ``aioboto3``
(environment, shared config/credentials files with ``profile``, SSO, assume-role, container and
instance metadata). Refreshable credentials (SSO, assume-role) are refreshed by botocore before
they expire, and :meth:`CredentialSource.identity` is asked again for every stream, so a rotation
always signs with current credentials. One stream keeps one frozen identity: its chained event
signatures must all come from the key that signed the request.
"""

from __future__ import annotations

import datetime
from typing import Any

import aioboto3  # type: ignore[import-untyped]
from botocore import exceptions as boto  # type: ignore[import-untyped]
from smithy_aws_core.identity import AWSCredentialsIdentity, AWSIdentityProperties

from ...errors import (
    AuthenticationError,
    ConfigurationError,
    MissingCredentialsError,
    ProviderConnectionError,
)
from .settings import PROVIDER, NovaSettings

__all__ = ["CredentialSource", "FrozenIdentity"]


class FrozenIdentity:
    """An SDK identity resolver that always answers with one identity (one stream's)."""

    def __init__(self, identity: AWSCredentialsIdentity) -> None:
        self._identity = identity

    async def get_identity(self, *, properties: AWSIdentityProperties) -> AWSCredentialsIdentity:
        return self._identity

    async def invalidate(self) -> None:
        return None


class CredentialSource:
    """Where a provider's streams get their credentials (see the module docstring)."""

    def __init__(self, settings: NovaSettings) -> None:
        self._settings = settings
        self._chain: Any = None  # botocore credentials object, once resolved

    async def identity(self) -> AWSCredentialsIdentity:
        """Current credentials. Raises s2s errors naming what is missing or wrong."""
        static = self._settings.credentials
        if static is not None:
            return AWSCredentialsIdentity(
                access_key_id=static.access_key_id,
                secret_access_key=static.secret_access_key,
                session_token=static.session_token,
            )
        profile = self._settings.profile
        try:
            if self._chain is None:
                session = aioboto3.Session(profile_name=profile)
                self._chain = await session.get_credentials()
            if self._chain is None:
                raise MissingCredentialsError(
                    f"{PROVIDER}: no AWS credentials found: set AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY, AWS_PROFILE (or extra['profile']), configure SSO or "
                    "a role, or pass extra['aws_access_key_id'] and extra['aws_secret_access_key']",
                    provider=PROVIDER,
                )
            frozen = await self._chain.get_frozen_credentials()
        except boto.ProfileNotFound as exc:
            raise ConfigurationError(
                f"{PROVIDER}: AWS profile {profile!r} is not in the shared config files",
                provider=PROVIDER,
            ) from exc
        except (boto.NoCredentialsError, boto.PartialCredentialsError) as exc:
            raise MissingCredentialsError(
                f"{PROVIDER}: AWS credentials are incomplete: {exc}", provider=PROVIDER
            ) from exc
        except boto.ConnectionError as exc:
            raise ProviderConnectionError(
                f"{PROVIDER}: could not reach the credential provider: {exc}", provider=PROVIDER
            ) from exc
        except (boto.ClientError, boto.BotoCoreError) as exc:
            raise AuthenticationError(
                f"{PROVIDER}: could not obtain AWS credentials: {exc}", provider=PROVIDER
            ) from exc
        # Refreshable credentials (SSO, assume-role) know when they expire; the stream is then
        # moved to fresh ones before that (see NovaProtocol).
        expiry = getattr(self._chain, "_expiry_time", None)
        return AWSCredentialsIdentity(
            access_key_id=frozen.access_key,
            secret_access_key=frozen.secret_key,
            session_token=frozen.token,
            expiration=expiry if isinstance(expiry, datetime.datetime) else None,
        )
