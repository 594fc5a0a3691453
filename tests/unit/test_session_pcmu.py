"""A mu-law (``audio_format="pcmu"``) Session over the scripted provider (see ``session_fakes``):
transcoded for a provider that takes PCM16 only, passed through for one that takes mu-law."""

from __future__ import annotations

import pytest

from s2s import S2S, Config, EventType, Session, SessionEvent
from s2s.audio import pcm16_to_ulaw, ulaw_to_pcm16
from s2s.audio.synth import speech_like
from s2s.errors import InvalidInputError
from s2s.session import MAX_SWITCH_BUFFER_MS

from .session_fakes import (
    NAME,
    RATE,
    Events,
    ScriptedProvider,
    audio_event,
    event_frame,
    ready_frame,
    start,
    turn_end_event,
)

pytestmark = pytest.mark.timeout(10)

PCMU = Config(sample_rate=8000, audio_format="pcmu")


class MuLawProvider(ScriptedProvider):
    """The scripted provider, declaring that it takes and emits mu-law itself."""

    audio_formats = frozenset({"pcm16", "pcmu"})


async def start_native() -> tuple[Session, MuLawProvider]:
    """A started mu-law session on a :class:`MuLawProvider` (as ``session_fakes.start``)."""
    provider = MuLawProvider(PCMU)
    session = await S2S(NAME, lambda _config: provider, PCMU).start()
    while not provider.connect_started.empty():  # the connects of start() are not news
        provider.connect_started.get_nowait()
    return session, provider


def sent_audio(provider: ScriptedProvider) -> bytes:
    return b"".join(m["pcm"] for m in provider.transport.sent if m["op"] == "audio")


async def test_mu_law_is_transcoded_for_a_provider_that_takes_pcm16_only() -> None:
    session, provider = await start(PCMU)
    async with session:
        events = Events(session)
        caller = pcm16_to_ulaw(speech_like(1.0, 8000))
        for i in range(0, len(caller), 161):  # odd-sized chunks: one byte a sample is fine
            await session.send_audio(caller[i : i + 161])
        to_provider = sent_audio(provider)
        assert len(to_provider) % 2 == 0
        assert abs(len(to_provider) / 2 - RATE) <= RATE * 0.05  # ~1 s of 16 kHz PCM16
        assert session.stats.audio_in_ms == pytest.approx(1000.0)

        reply = speech_like(0.5, RATE)
        for i in range(0, len(reply), 640):
            provider.transport.feed(event_frame(audio_event(reply[i : i + 640])))
        provider.transport.feed(event_frame(turn_end_event()))
        received = await events.until(EventType.TURN_END)
    audio = [e for e in received if e.type is EventType.AUDIO_OUTPUT]
    assert audio and all(e.encoding == "pcmu" and e.sample_rate == 8000 for e in audio)
    assert audio[-1].item_id == "item-1"  # the resampler's tail, at the turn's end
    mulaw = b"".join(e.audio or b"" for e in audio)
    assert abs(len(mulaw) - 4000) <= 8  # 0.5 s of 8 kHz mu-law: one byte a sample
    assert sum(e.duration_ms for e in audio) == pytest.approx(500.0, abs=1.0)
    assert len(ulaw_to_pcm16(mulaw)) == 2 * len(mulaw)


async def test_mu_law_is_8_khz_only() -> None:
    session, provider = await start(PCMU)
    async with session:
        with pytest.raises(InvalidInputError, match="8000 Hz"):
            await session.send_audio(b"\xff" * 160, sample_rate=16000)
        with pytest.raises(InvalidInputError, match="pcmu bytes"):
            await session.send_audio("not audio")  # type: ignore[arg-type]
        assert provider.protocol.app_calls() == []


async def test_a_provider_that_takes_mu_law_gets_it_untouched() -> None:
    session, provider = await start_native()
    async with session:
        events = Events(session)
        caller = bytes(range(256)) + b"\x7f"
        await session.send_audio(caller)
        assert sent_audio(provider) == caller
        assert session._audio_in.resampler is None and session._audio_out.resampler is None
        answer = SessionEvent(
            EventType.AUDIO_OUTPUT, audio=b"\xfe" * 801, sample_rate=8000, encoding="pcmu"
        )
        provider.transport.feed(event_frame(answer), event_frame(turn_end_event()))
        received = await events.until(EventType.TURN_END)
        assert [e.audio for e in received if e.type is EventType.AUDIO_OUTPUT] == [b"\xfe" * 801]
        assert session.stats.audio_out_ms == pytest.approx(801 / 8)
        assert session.stats.audio_in_ms == pytest.approx(257 / 8)


async def test_the_switch_buffer_holds_its_limit_in_seconds_of_mu_law() -> None:
    limit_s = MAX_SWITCH_BUFFER_MS // 1000
    session, provider = await start_native()
    async with session:
        events = Events(session)
        provider.auto_ready = False
        provider.transport.drop()
        await provider.next_connect()
        second = b"\x55" * 8000
        for _ in range(limit_s):
            await session.send_audio(second)  # exactly at the limit: accepted
        with pytest.raises(InvalidInputError, match=f"more than {limit_s} s of audio"):
            await session.send_audio(b"\x55")
        provider.transport.feed(ready_frame())
        resumed = (await events.until(EventType.SESSION_RESUMED))[-1]
        assert resumed.data["buffered_audio_ms"] == pytest.approx(limit_s * 1000)
