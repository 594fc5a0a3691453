"""What single events add to the session actor's metrics (``call_reporting.count_event``)."""

from __future__ import annotations

from actors.call_reporting import count_event
from s2s.errors import ProviderError, QuotaExceededError
from s2s.events import EventType, SessionEvent
from s2s.service.metrics import Metrics


def counted(*events: SessionEvent, provider: str = "openai_realtime") -> dict[str, float]:
    metrics = Metrics()
    for event in events:
        count_event(metrics, event, provider)
    return dict(metrics._fields())


def test_model_audio_counts_its_seconds_for_the_current_provider() -> None:
    tenth = SessionEvent(EventType.AUDIO_OUTPUT, audio=b"\0\0" * 2400, sample_rate=24000)
    fields = counted(tenth, tenth, provider="gemini_live")
    assert fields == {"c|s2s_audio_out_seconds|provider=gemini_live": 0.2}


def test_provider_errors_count_by_the_providers_code_or_else_the_error_class() -> None:
    quota = QuotaExceededError("out of credit", code="insufficient_quota")
    fields = counted(
        SessionEvent(EventType.ERROR, error=quota),
        SessionEvent(EventType.ERROR, error=quota),
        SessionEvent(EventType.ERROR, error=ProviderError("went away")),
    )
    assert fields == {
        "c|s2s_provider_errors|code=insufficient_quota,provider=openai_realtime": 2.0,
        "c|s2s_provider_errors|code=ProviderError,provider=openai_realtime": 1.0,
    }


def test_resumptions_and_failovers_count_with_their_reason() -> None:
    fields = counted(
        SessionEvent(EventType.SESSION_RESUMED, reason="go_away"),
        SessionEvent(
            EventType.PROVIDER_SWITCHED, reason="quota_exceeded", data={"from": "openai_realtime"}
        ),
        provider="nova",
    )
    assert fields == {
        "c|s2s_session_resumptions|provider=nova,reason=go_away": 1.0,
        "c|s2s_provider_failovers|from_provider=openai_realtime,reason=quota_exceeded,"
        "to_provider=nova": 1.0,
    }


def test_other_events_count_nothing() -> None:
    assert counted(SessionEvent(EventType.TURN_END), SessionEvent(EventType.SPEECH_STARTED)) == {}
