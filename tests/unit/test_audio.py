import audioop
import math
import wave

import numpy as np
import pytest

import s2s
from s2s.audio import (
    StreamResampler,
    alaw_to_pcm16,
    check_pcm16,
    pcm16_to_alaw,
    pcm16_to_ulaw,
    read_wav,
    rms_dbfs,
    ulaw_to_pcm16,
    write_wav,
)
from s2s.audio.synth import speech_like

ALL_PCM = np.arange(-32768, 32768, dtype="<i2").tobytes()
ALL_BYTES = bytes(range(256))


def test_g711_matches_the_reference_codec_bit_for_bit():
    assert pcm16_to_ulaw(ALL_PCM) == audioop.lin2ulaw(ALL_PCM, 2)
    assert pcm16_to_alaw(ALL_PCM) == audioop.lin2alaw(ALL_PCM, 2)
    assert ulaw_to_pcm16(ALL_BYTES) == audioop.ulaw2lin(ALL_BYTES, 2)
    assert alaw_to_pcm16(ALL_BYTES) == audioop.alaw2lin(ALL_BYTES, 2)


def test_g711_round_trip_keeps_speech_level():
    speech = speech_like(1.0, 8000)
    for encode, decode in ((pcm16_to_ulaw, ulaw_to_pcm16), (pcm16_to_alaw, alaw_to_pcm16)):
        back = decode(encode(speech))
        assert len(back) == len(speech)
        assert rms_dbfs(back) == pytest.approx(rms_dbfs(speech), abs=0.5)


def _tone(freq: float, rate: int, seconds: float) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * freq * t) * 10000).astype("<i2")


@pytest.mark.parametrize(
    ("src", "dst"),
    [(8000, 24000), (16000, 24000), (48000, 24000), (24000, 8000), (24000, 16000), (24000, 48000)],
)
def test_streaming_resampler_is_steady_and_clean(src, dst):
    tone = _tone(440, src, 2.0)
    resampler = StreamResampler(src, dst)
    step = src // 50  # 20 ms chunks, as a phone call sends them
    sizes = []
    out = []
    for i in range(0, len(tone), step):
        chunk = resampler.process(tone[i : i + step].tobytes())
        sizes.append(len(chunk) // 2)
        out.append(chunk)
    out.append(resampler.flush())
    y = np.frombuffer(b"".join(out), dtype="<i2").astype(float)
    assert len(y) == pytest.approx(len(tone) * dst / src, abs=2)
    # Output keeps pace with input: after the first two chunks every 20 ms chunk yields 20 ms.
    assert all(size == dst // 50 for size in sizes[2:]), sizes[:10]
    ideal = np.sin(2 * np.pi * 440 * np.arange(len(y)) / dst) * 10000
    middle = slice(len(y) // 4, 3 * len(y) // 4)
    power = np.sum(ideal[middle] ** 2)
    best = max(
        10 * math.log10(power / np.sum((y[middle] - np.roll(ideal, lag)[middle]) ** 2))
        for lag in range(-dst // 200, dst // 200)  # alignment within +-5 ms
    )
    assert best > 40, best


@pytest.mark.parametrize(("src", "dst"), [(8000, 24000), (24000, 16000), (48000, 24000)])
def test_resampler_adds_under_a_millisecond_of_delay(src, dst):
    impulse = np.zeros(src, dtype="<i2")
    impulse[src // 2] = 20000
    resampler = StreamResampler(src, dst)
    step = src // 50
    out = (
        b"".join(
            resampler.process(impulse[i : i + step].tobytes()) for i in range(0, len(impulse), step)
        )
        + resampler.flush()
    )
    peak = int(np.argmax(np.abs(np.frombuffer(out, dtype="<i2"))))
    assert abs(peak - dst // 2) / dst * 1000 < 1.0


def test_resampler_passthrough_and_reset():
    same = StreamResampler(24000, 24000)
    assert same.passthrough and same.process(b"\x01\x02") == b"\x01\x02" and same.flush() == b""
    r = StreamResampler(16000, 24000)
    r.process(_tone(440, 16000, 0.1).tobytes())
    r.reset()
    assert r.flush() == b""


def test_check_pcm16_names_the_problem():
    assert check_pcm16(bytearray(b"\x00\x00")) == b"\x00\x00"
    with pytest.raises(s2s.InvalidInputError, match="odd number of bytes \\(3\\)"):
        check_pcm16(b"\x00\x00\x00")
    with pytest.raises(s2s.InvalidInputError, match="PCM16 bytes, got str"):
        check_pcm16("audio")


def test_wav_round_trip_and_stereo_mixdown(tmp_path):
    pcm = speech_like(0.5, 16000)
    path = tmp_path / "a.wav"
    write_wav(path, pcm, 16000)
    assert read_wav(path) == (pcm, 16000)
    stereo = tmp_path / "stereo.wav"
    with wave.open(str(stereo), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.array([[100, 300]] * 80, dtype="<i2").tobytes())
    mono, rate = read_wav(stereo)
    assert rate == 8000 and np.all(np.frombuffer(mono, "<i2") == 200)
    eight_bit = tmp_path / "8bit.wav"
    with wave.open(str(eight_bit), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(bytes(80))
    with pytest.raises(s2s.InvalidInputError, match="8-bit"):
        read_wav(eight_bit)


def test_levels_and_synthesis_are_deterministic():
    assert rms_dbfs(bytes(320)) == -120.0
    a = speech_like(1.0, 24000, seed=3)
    assert a == speech_like(1.0, 24000, seed=3) and a != speech_like(1.0, 24000, seed=4)
    assert rms_dbfs(a) == pytest.approx(-21, abs=3)
