"""``Config.audio_format``: validation, round trips, event durations and the converters."""

from __future__ import annotations

import audioop

import pytest

import s2s
from s2s import EventType, SessionEvent
from s2s.audio import pcm16_to_ulaw, ulaw_to_pcm16
from s2s.audio.convert import AudioIn, AudioOut, check_audio
from s2s.audio.formats import LinkAudio, bytes_per_sample, duration_ms, link_audio, native_formats
from s2s.audio.synth import speech_like
from s2s.errors import ConfigurationError, InvalidInputError
from s2s.providers.gemini_live import GeminiLiveProvider
from s2s.providers.nova import NovaProvider
from s2s.providers.openai_realtime import OpenAIRealtimeProvider

# -- Config ---------------------------------------------------------------------------------------


def test_pcm16_is_the_default_and_pcmu_needs_8_khz() -> None:
    assert s2s.Config().audio_format == "pcm16"
    assert s2s.Config(sample_rate=8000, audio_format="pcmu").audio_format == "pcmu"
    with pytest.raises(ConfigurationError) as caught:
        s2s.Config(sample_rate=16000, audio_format="pcmu")
    message = str(caught.value)
    assert "audio_format" in message and "sample_rate" in message and "16000" in message


def test_an_unknown_audio_format_is_refused_by_name() -> None:
    with pytest.raises(ConfigurationError, match="'opus'.*'pcm16', 'pcmu'"):
        s2s.Config(audio_format="opus")  # type: ignore[arg-type]


def test_audio_format_round_trips_and_old_dicts_mean_pcm16() -> None:
    config = s2s.Config(sample_rate=8000, audio_format="pcmu", voice="marin")
    data = config.to_dict()
    assert data["audio_format"] == "pcmu"
    assert s2s.Config.from_dict(data) == config
    del data["audio_format"]  # a session saved before the field existed
    assert s2s.Config.from_dict(data).audio_format == "pcm16"
    assert s2s.Config().replace(sample_rate=8000, audio_format="pcmu").audio_format == "pcmu"
    with pytest.raises(ConfigurationError, match="sample_rate"):
        config.replace(sample_rate=16000)


# -- formats and events ---------------------------------------------------------------------------


def test_byte_accounting_per_format() -> None:
    assert (bytes_per_sample("pcm16"), bytes_per_sample("pcmu")) == (2, 1)
    assert duration_ms(160, 8000, "pcmu") == 20.0
    assert duration_ms(320, 8000, "pcm16") == 20.0
    with pytest.raises(ValueError, match="unknown audio format 'opus'"):
        bytes_per_sample("opus")


def test_mu_law_events_last_one_millisecond_per_8_bytes_and_round_trip() -> None:
    event = SessionEvent(
        EventType.AUDIO_OUTPUT, audio=bytes(800), sample_rate=8000, encoding="pcmu", item_id="i"
    )
    assert event.duration_ms == 100.0
    data = event.to_dict()
    assert data["encoding"] == "pcmu"
    assert SessionEvent.from_dict(data) == event
    pcm = SessionEvent(EventType.AUDIO_OUTPUT, audio=bytes(800), sample_rate=8000)
    assert pcm.duration_ms == 50.0
    assert "encoding" not in pcm.to_dict()  # absent means PCM16, as before the field existed
    assert SessionEvent.from_dict(pcm.to_dict()).encoding == "pcm16"


def test_only_openai_takes_mu_law_itself() -> None:
    assert "pcmu" in native_formats(OpenAIRealtimeProvider)
    assert native_formats(GeminiLiveProvider) == frozenset({"pcm16"})
    assert native_formats(NovaProvider) == frozenset({"pcm16"})
    assert native_formats(object()) == frozenset({"pcm16"})  # declares nothing
    assert link_audio("pcmu", OpenAIRealtimeProvider, 24000, 24000) == LinkAudio("pcmu", 8000, 8000)
    assert link_audio("pcmu", GeminiLiveProvider, 16000, 24000) == LinkAudio("pcm16", 16000, 24000)
    assert link_audio("pcm16", OpenAIRealtimeProvider, 24000, 24000).encoding == "pcm16"


# -- converters -----------------------------------------------------------------------------------


def test_check_audio_takes_any_length_of_mu_law_but_only_whole_pcm16_samples() -> None:
    assert check_audio(bytearray(b"\xff\x7f\x00"), "pcmu") == b"\xff\x7f\x00"
    with pytest.raises(InvalidInputError, match="odd number of bytes"):
        check_audio(b"\x00\x01\x02", "pcm16")
    with pytest.raises(InvalidInputError, match="pcmu bytes, got str"):
        check_audio("audio", "pcmu")


def test_native_mu_law_passes_through_without_a_resampler() -> None:
    link = LinkAudio("pcmu", 8000, 8000)
    audio_in, audio_out = AudioIn("pcmu", link), AudioOut("pcmu", 8000, link)
    mulaw = bytes(range(256))
    assert audio_in.process(mulaw, 8000) is mulaw
    assert audio_out.passthrough and audio_out.process(mulaw) is mulaw
    assert audio_in.resampler is None and audio_out.resampler is None
    with pytest.raises(InvalidInputError, match="8000 Hz; sample_rate=16000"):
        audio_in.process(mulaw, 16000)


def test_mu_law_is_decoded_and_resampled_for_a_pcm16_provider_and_back() -> None:
    link = LinkAudio("pcm16", 16000, 24000)
    audio_in, audio_out = AudioIn("pcmu", link), AudioOut("pcmu", 8000, link)
    speech = speech_like(1.0, 8000)
    mulaw = pcm16_to_ulaw(speech)
    native = b"".join(audio_in.process(mulaw[i : i + 160], 8000) for i in range(0, 8000, 160))
    assert audio_in.resampler is not None
    native += audio_in.resampler.flush()
    assert len(native) % 2 == 0 and abs(len(native) / 2 - 16000) <= 16  # 1 s of 16 kHz PCM16
    reply = speech_like(1.0, 24000)
    out = b"".join(audio_out.process(reply[i : i + 960]) for i in range(0, len(reply), 960))
    out += audio_out.flush()
    assert not audio_out.passthrough
    assert abs(len(out) - 8000) <= 8  # 1 s of 8 kHz mu-law: one byte a sample
    # What comes out is real mu-law of the resampled speech, not PCM16 bytes.
    assert audioop.rms(ulaw_to_pcm16(out), 2) == pytest.approx(audioop.rms(reply, 2), rel=0.1)
