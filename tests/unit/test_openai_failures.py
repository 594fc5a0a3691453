"""Classifying OpenAI failures: what retrying cannot fix ends the session, rate limits do not."""

from __future__ import annotations

import pytest

import s2s
from s2s import EventType

from .test_openai_protocol import feed, make, ready

TERMINAL = [
    ("insufficient_quota", s2s.QuotaExceededError),
    ("credit_balance_exhausted", s2s.QuotaExceededError),
    ("billing_hard_limit_reached", s2s.QuotaExceededError),
    ("invalid_api_key", s2s.AuthenticationError),
    ("account_deactivated", s2s.AuthenticationError),
    ("forbidden", s2s.AuthenticationError),
    ("model_not_found", s2s.ModelUnavailableError),
    ("invalid_model", s2s.ModelUnavailableError),
]


def failed_done(err: dict[str, str]) -> dict[str, object]:
    return {
        "type": "response.done",
        "response": {
            "id": "resp_1",
            "status": "failed",
            "status_details": {"type": "failed", "error": err},
        },
    }


@pytest.mark.parametrize(("code", "error_type"), TERMINAL)
def test_a_terminal_error_event_fails_the_session_and_the_close_keeps_it(code, error_type):
    proto = make()
    ready(proto)
    feed(proto, {"type": "error", "error": {"type": "x", "code": code, "message": "no way"}})
    failure = proto.failure
    assert isinstance(failure, error_type) and not failure.retryable
    assert failure.code == code and failure.provider == "openai_realtime"
    assert "no way" in str(failure)
    # the server's 1011 close is normally retryable; here it reports the failure instead
    assert proto.connection_lost(1011, "insufficient_quota.x", 0) is failure


@pytest.mark.parametrize(("code", "error_type"), TERMINAL)
def test_a_failed_response_with_a_terminal_type_fails_the_session(code, error_type):
    proto = make()
    ready(proto)
    feed(proto, {"type": "response.created", "response": {"id": "resp_1"}})
    feed(proto, failed_done({"type": code, "code": "something_new"}))  # matched on type
    assert isinstance(proto.failure, error_type) and proto.failure.code == code
    events = proto.events_received()
    assert [e.type for e in events][-2:] == [EventType.ERROR, EventType.TURN_END]
    assert events[-1].reason == "failed"


@pytest.mark.parametrize("code", ["rate_limit_exceeded", "inference_rate_limit_exceeded"])
def test_a_rate_limited_response_is_an_error_event_not_a_failure(code):
    proto = make()
    ready(proto)
    feed(proto, {"type": "response.created", "response": {"id": "resp_1"}})
    feed(proto, failed_done({"type": "invalid_request_error", "code": code}))
    assert proto.failure is None
    (error,) = [e.error for e in proto.events_received() if e.type is EventType.ERROR]
    assert isinstance(error, s2s.RateLimitError) and error.retryable and error.code == code
    assert proto.idle  # the failed response is over; the caller can go on


def test_an_ordinary_failed_response_stays_a_server_error_event():
    proto = make()
    ready(proto)
    feed(proto, {"type": "response.created", "response": {"id": "resp_1"}})
    feed(proto, failed_done({"type": "server_error", "code": "internal"}))
    assert proto.failure is None
    (error,) = [e.error for e in proto.events_received() if e.type is EventType.ERROR]
    assert isinstance(error, s2s.ProviderServerError) and error.code == "internal"
    assert "response failed" in str(error)


def test_a_refused_handshake_still_reports_with_its_close_code():
    proto = make()
    proto.connection_made(0)
    feed(
        proto,
        {
            "type": "error",
            "error": {"type": "invalid_request_error", "code": "missing_model", "message": "m"},
        },
    )
    assert proto.failure is None  # held: the close says what it means
    error = proto.connection_lost(4000, "invalid_request_error.missing_model", 0)
    assert isinstance(error, s2s.InvalidRequestError) and error.code == "missing_model"
    assert not isinstance(error, s2s.ModelUnavailableError)
