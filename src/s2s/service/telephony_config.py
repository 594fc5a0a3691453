"""Per-tenant telephony settings (``tenants.<name>.telephony`` in ``config.yaml``).

A phone call has no client to choose a provider, instructions or tools: they come from here.
Secrets (the Twilio auth token, the Genesys client secret) are read from environment variables
named here, never written in the file. Genesys authenticates with the tenant's own API keys
(``X-API-KEY``), so it has no key setting of its own.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["GenesysSettings", "TelephonyService", "TelephonySettings", "TwilioSettings"]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
#: Transfer targets: E.164 numbers, SIP URIs or queue names (what ``<Dial>`` and Architect take).
_TARGET = re.compile(r"^[A-Za-z0-9+@:._ -]{1,128}$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _env_name(value: str | None) -> str | None:
    if value is not None and not _ENV_NAME.match(value):
        raise ValueError(f"{value!r} is not an environment variable name")
    return value


def _secret(variable: str | None, environ: Mapping[str, str] | None) -> str | None:
    if variable is None:
        return None
    return (os.environ if environ is None else environ).get(variable) or None


class TwilioSettings(_Section):
    """Twilio Media Streams (``<Connect><Stream>``)."""

    auth_token_env: str
    """Variable holding the Twilio account's auth token: it checks ``X-Twilio-Signature`` on the
    voice webhook and the stream's upgrade. Calls are refused while it is unset."""

    @field_validator("auth_token_env")
    @classmethod
    def _variable(cls, value: str) -> str:
        _env_name(value)
        return value

    def auth_token(self, environ: Mapping[str, str] | None = None) -> str | None:
        return _secret(self.auth_token_env, environ)


class GenesysSettings(_Section):
    """Genesys Cloud AudioHook v2, Audio Connector flavour (``X-API-KEY`` = a tenant key)."""

    client_secret_env: str | None = None
    """Variable holding the integration's client secret (base64, as Genesys shows it). When set,
    every connection must carry a valid HTTP message signature; unsigned ones are refused."""
    organization_ids: list[str] | None = None
    """Genesys organizations allowed to connect (None: any with a valid key)."""

    @field_validator("client_secret_env")
    @classmethod
    def _variable(cls, value: str | None) -> str | None:
        return _env_name(value)

    def client_secret(self, environ: Mapping[str, str] | None = None) -> str | None:
        return _secret(self.client_secret_env, environ)


class TelephonySettings(_Section):
    """How a tenant's phone calls run: the session they get and what the model may do."""

    provider: str | None = None
    """Provider of phone calls (None: the service's ``default_provider``)."""
    model: str | None = None
    voice: str | None = None
    instructions: str | None = None
    tools: list[str] | None = None
    """Server tools the model may call (None: every tool the tenant may use)."""
    dtmf_to_model: bool = False
    """Tell the model about key presses ("the caller pressed 4"); subscribers always see them."""
    end_call: bool = True
    """Offer the model the ``end_call`` tool (say goodbye, then hang up)."""
    transfer_targets: dict[str, str] = Field(default_factory=dict)
    """``transfer_call`` destinations the model may choose: name -> number, SIP URI or queue.
    Empty: no ``transfer_call`` tool."""
    twilio: TwilioSettings | None = None
    genesys: GenesysSettings | None = None

    @field_validator("transfer_targets")
    @classmethod
    def _targets(cls, value: dict[str, str]) -> dict[str, str]:
        for name, target in value.items():
            if not re.match(r"^[A-Za-z0-9_-]{1,64}$", name):
                raise ValueError(f"transfer target name {name!r}: use letters, digits, - or _")
            if not _TARGET.match(target):
                raise ValueError(f"transfer target {name!r}: {target!r} is not a number or URI")
        return value


class TelephonyService(_Section):
    """Service-wide telephony settings (the ``telephony`` section)."""

    public_origin: str | None = None
    """The origin platforms dial, e.g. ``https://bot.example.com``: stream URLs in TwiML and the
    URLs signatures are checked against are built from it (behind TLS termination the request
    shows another scheme and host). None: taken from each request's ``Host``."""
    stream_token_ttl_s: float = Field(60.0, gt=0, le=600)
    """How long the token the voice webhook gives a Twilio stream stays valid (one use)."""
    twilio_frame_ms: int = Field(100, ge=20, le=1000)
    """Model audio per Twilio ``media`` message; a ``mark`` follows each (the barge-in grain)."""
    twilio_lead_ms: int = Field(200, ge=0, le=2000)
    """How far model audio is sent ahead of real time to Twilio (what a ``clear`` discards)."""
    genesys_frame_ms: int = Field(250, ge=200, le=2000)
    """Model audio per Genesys binary frame (>= 200 ms keeps under Genesys' rate limits)."""
    genesys_lead_ms: int = Field(500, ge=0, le=2000)
    """How far model audio is sent ahead of real time to Genesys."""

    @field_validator("public_origin")
    @classmethod
    def _origin(cls, value: str | None) -> str | None:
        if value is not None and not _ORIGIN.match(value):
            raise ValueError(f"{value!r} is not an origin like https://bot.example.com")
        return value
