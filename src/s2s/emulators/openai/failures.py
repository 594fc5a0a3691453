"""Injected response failures, worded as production words them (``options.fail_responses``).

An account out of quota (or deactivated, or without the model) connects fine: the handshake,
``session.created`` and ``session.updated`` all succeed. Then every ``response.create`` gets an
``error`` event and a failed ``response.done`` carrying the same ``{type, code, message}``, and
the server closes the connection (the close code is unverified; 1011 with ``"<type>.<code>"``,
the one a naive client would retry). Rate limits fail one response and the session goes on.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RESPONSE_FAILURES", "ResponseFailure", "failure_for"]


@dataclass(frozen=True, slots=True)
class ResponseFailure:
    type: str
    code: str
    message: str
    #: The server closes after it (quota, billing, account, model); else one response fails.
    terminal: bool = True
    close_code: int = 1011


_QUOTA_DOCS = (
    "For more information on this error, read the docs: "
    "https://platform.openai.com/docs/guides/error-codes/api-errors."
)

RESPONSE_FAILURES: dict[str, ResponseFailure] = {
    f.code: f
    for f in (
        ResponseFailure(
            "insufficient_quota",
            "insufficient_quota",
            "You exceeded your current quota, please check your plan and billing details. "
            + _QUOTA_DOCS,
        ),
        ResponseFailure(
            "insufficient_quota",
            "credit_balance_exhausted",
            "Your credit balance is too low to access the API. Please go to Plans & Billing "
            "to upgrade or purchase credits.",
        ),
        ResponseFailure(
            "insufficient_quota",
            "billing_hard_limit_reached",
            "Billing hard limit has been reached. " + _QUOTA_DOCS,
        ),
        ResponseFailure(
            "invalid_request_error",
            "invalid_api_key",
            "Incorrect API key provided. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
        ),
        ResponseFailure(
            "invalid_request_error",
            "account_deactivated",
            "This key is associated with a deactivated account. If you feel this is an error, "
            "contact us through our help center at help.openai.com.",
        ),
        ResponseFailure(
            "invalid_request_error",
            "forbidden",
            "You are not allowed to use this model with this project.",
        ),
        ResponseFailure(
            "invalid_request_error",
            "model_not_found",
            "The model does not exist or you do not have access to it.",
        ),
        ResponseFailure(
            "requests",
            "rate_limit_exceeded",
            "Rate limit reached for requests per min (RPM): Limit 100, Used 100, Requested 1. "
            "Please try again in 600ms.",
            terminal=False,
        ),
        ResponseFailure(
            "invalid_request_error",
            "inference_rate_limit_exceeded",
            "Too many concurrent inference requests. Please try again later.",
            terminal=False,
        ),
    )
}


def failure_for(code: str) -> ResponseFailure:
    """The failure injected for ``code``; a clear error naming the known codes otherwise."""
    failure = RESPONSE_FAILURES.get(code)
    if failure is None:
        known = ", ".join(sorted(RESPONSE_FAILURES))
        raise ValueError(f"fail_responses: unknown code {code!r} (known: {known})")
    return failure
