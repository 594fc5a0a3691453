"""Signed requests Twilio makes to a voice webhook, and running the TwiML it gets back.

Twilio signs every request with ``X-Twilio-Signature``: base64 HMAC-SHA1, keyed with the Auth
Token, over the URL plus the sorted POST parameters. The signature comes from the official
``twilio`` package (:class:`twilio.request_validator.RequestValidator`), so a server that
validates with it agrees by construction. A GET carries its parameters in the query string and
is signed over that full URL with no parameters.

:func:`run_after_connect` runs the verbs after ``</Connect>`` (following ``<Redirect>``s) and
says how the call ended.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal
from urllib.parse import urlencode

import httpx
from twilio.request_validator import RequestValidator

from .twilio_errors import TwimlError, WebhookError
from .twilio_timeline import CallOutcome
from .twilio_twiml import Dial, Hangup, Pause, Play, Redirect, Say, Unsupported, Verb, parse_verbs

__all__ = [
    "API_VERSION",
    "SIGNATURE_HEADER",
    "call_params",
    "fetch_twiml",
    "run_after_connect",
    "sign",
]

API_VERSION = "2010-04-01"
SIGNATURE_HEADER = "X-Twilio-Signature"
#: The User-Agent of Twilio's webhook requests.
USER_AGENT = "TwilioProxy/1.1"
#: ``<Redirect>``s followed after the stream before giving up (a loop guard).
MAX_REDIRECTS = 10


def sign(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """The ``X-Twilio-Signature`` for a request to ``url`` with form ``params`` (``{}``: none)."""
    return str(RequestValidator(auth_token).compute_signature(url, dict(params)))


def call_params(
    *, account_sid: str, call_sid: str, from_: str, to: str, status: str
) -> dict[str, str]:
    """The form fields of a voice webhook request for an inbound call."""
    return {
        "AccountSid": account_sid,
        "ApiVersion": API_VERSION,
        "CallSid": call_sid,
        "CallStatus": status,
        "Direction": "inbound",
        "From": from_,
        "To": to,
        "Caller": from_,
        "Called": to,
    }


async def fetch_twiml(
    client: httpx.AsyncClient,
    url: str,
    *,
    method: Literal["GET", "POST"],
    params: Mapping[str, str],
    auth_token: str,
) -> str:
    """Request ``url`` like Twilio and return the TwiML; :class:`WebhookError` unless 2xx."""
    headers = {"User-Agent": USER_AGENT}
    try:
        if method == "POST":
            headers[SIGNATURE_HEADER] = sign(auth_token, url, params)
            response = await client.post(url, data=dict(params), headers=headers)
        else:
            full = f"{url}{'&' if '?' in url else '?'}{urlencode(dict(params))}"
            headers[SIGNATURE_HEADER] = sign(auth_token, full, {})
            response = await client.get(full, headers=headers)
    except httpx.HTTPError as exc:
        raise WebhookError(
            f"{method} {url} failed: {type(exc).__name__}: {exc}", url=url, status=None
        ) from exc
    if not response.is_success:
        raise WebhookError(
            f"{method} {url} answered HTTP {response.status_code}: {response.text[:200]!r}",
            url=url,
            status=response.status_code,
        )
    return response.text


async def run_after_connect(
    client: httpx.AsyncClient,
    verbs: tuple[Verb, ...],
    *,
    params: Mapping[str, str],
    auth_token: str,
    said: tuple[str, ...] = (),
    close_code: int | None = None,
) -> CallOutcome:
    """Run the TwiML after ``</Connect>`` once the server closed the stream.

    ``<Say>`` is recorded, ``<Play>``/``<Pause>`` pass, ``<Redirect>`` fetches and runs the
    next document (signed, with ``params``), ``<Dial>`` transfers and ``<Hangup/>`` or the end
    of the TwiML hangs up. Other verbs are listed in ``CallOutcome.skipped``.
    """
    spoken, redirects, skipped = list(said), list[str](), list[str]()
    queue = list(verbs)

    def outcome(transferred_to: str | None = None) -> CallOutcome:
        return CallOutcome(
            "server",
            transferred_to,
            transferred_to is None,
            tuple(spoken),
            close_code,
            tuple(redirects),
            tuple(skipped),
        )

    while queue:
        match queue.pop(0):
            case Say(text):
                spoken.append(text)
            case Play() | Pause():
                pass
            case Hangup():
                break
            case Dial(target):
                return outcome(target)
            case Redirect(url, method):
                if len(redirects) >= MAX_REDIRECTS:
                    raise TwimlError(f"more than {MAX_REDIRECTS} <Redirect>s in a row (last {url})")
                redirects.append(url)
                twiml = await fetch_twiml(
                    client,
                    url,
                    method="GET" if method == "GET" else "POST",
                    params=params,
                    auth_token=auth_token,
                )
                queue = list(parse_verbs(twiml, url))
            case Unsupported(verb):
                skipped.append(verb)
    return outcome()
