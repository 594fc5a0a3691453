"""Callers for the fault suite: real-time tagged audio, and what reached the provider.

Every 20 ms frame a :class:`TaggedCaller` sends carries, in its first four samples, a marker,
its call's tag and its index; the rest is speech-like audio or silence (so the emulator's VAD
takes turns and the model answers). :func:`audio_at_provider` reads every frame the emulator
received back out of its recorded ``input_audio_buffer.append`` messages, so a test can assert
that each call's frames reached the provider exactly once, in order, whatever failed meanwhile.
The caller keeps what it sent until the service acknowledges it (``input_ack``) and, after a
reconnect, resends from the position ``stream_opened`` gives, as the stream protocol asks.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ..helpers import speech_like
from .stack import API_KEY, Call, EmulatorThread, open_call

RATE = 24000
FRAME_SAMPLES = RATE // 50
FRAME_BYTES = FRAME_SAMPLES * 2
MARK = 7
_TAGS = struct.Struct("<hhhh")


def tagged_frame(tag: int, index: int, body: bytes) -> bytes:
    return _TAGS.pack(MARK, tag, index % 1000, index // 1000) + body[_TAGS.size : FRAME_BYTES]


def frame_bodies(seconds: float) -> list[bytes]:
    """Turns of 1.2 s of speech and 0.8 s of silence, as 20 ms frame bodies."""
    turn = speech_like(1.2, RATE) + bytes(int(0.8 * RATE) * 2)
    pcm = turn * (int(seconds / 2.0) + 1)
    count = int(seconds * 50)
    return [pcm[i * FRAME_BYTES : (i + 1) * FRAME_BYTES] for i in range(count)]


def provider_segments(emulator: EmulatorThread) -> list[tuple[int, int, int, int]]:
    """Per emulator session and tag: (session number, tag, first index, last index)."""
    segments = []
    for number, session in enumerate(list(emulator.emulator.sessions)):
        one = _tagged(session)
        for tag, indices in one.items():
            segments.append((number, tag, indices[0], indices[-1]))
    return segments


def audio_at_provider(emulator: EmulatorThread) -> dict[int, list[int]]:
    """Per call tag, the indices of the tagged frames the emulator received, in arrival order
    (emulator sessions in the order they opened)."""
    found: dict[int, list[int]] = defaultdict(list)
    for session in list(emulator.emulator.sessions):
        for tag, indices in _tagged(session).items():
            found[tag].extend(indices)
    return found


#: The most a new provider connection may start before the end of the previous one's frames
#: (the turn in progress it carries over, up to the actor's saved state): 12 s of 20 ms frames.
MAX_CARRIED_FRAMES = 600


def conversation_audio(emulator: EmulatorThread) -> dict[int, list[int]]:
    """Per call tag, the frames in the model's final conversation, in order.

    When a call moves to a new provider connection (the provider dropped it, or an actor was
    replaced), the new connection starts from a saved or carried state: the committed turns as
    history, plus the audio of the turn in progress, replayed. From the first frame it replays
    on, the new connection's audio replaces the old one's (the old connection, and what it had
    not made history, is gone). So the conversation is the old frames before that point, then the
    new connection's. A replay that starts more than :data:`MAX_CARRIED_FRAMES` back fails.
    """
    found: dict[int, list[int]] = defaultdict(list)
    for session in list(emulator.emulator.sessions):
        for tag, indices in _tagged(session).items():
            earlier = found[tag]
            if earlier and indices and indices[0] <= earlier[-1]:
                carried = earlier[-1] - indices[0] + 1
                assert carried <= MAX_CARRIED_FRAMES, (
                    f"call {tag}: a new provider connection replayed {carried} frames"
                )
                cut = len(earlier) - carried
                assert earlier[cut:] == list(range(indices[0], earlier[-1] + 1)), (
                    f"call {tag}: the replay is not the tail of what came before"
                )
                del earlier[cut:]
            earlier.extend(indices)
    return found


def stranded_audio_ms(emulator: EmulatorThread) -> dict[int, int]:
    """Per call tag, caller audio (ms) left uncommitted on provider connections the call then
    left without carrying it over (an actor replaced mid-turn): it reached the provider but not
    the model's conversation."""
    stranded: dict[int, int] = defaultdict(int)
    sessions = list(emulator.emulator.sessions)
    for number, session in enumerate(sessions):
        frames = len(session._buffer) // (2 * session._buffer_rate // 50)
        for tag, indices in _tagged(session).items():
            later = [_tagged(s).get(tag, []) for s in sessions[number + 1 :]]
            following = next((x for x in later if x), None)
            if following is not None and frames and following[0] > indices[-1] - frames + 1:
                stranded[tag] += frames * 20
    return dict(stranded)


def _tagged(session: Any) -> dict[int, list[int]]:
    found: dict[int, list[int]] = defaultdict(list)
    pcm = bytearray()
    for raw in list(session.frames_in):
        if not isinstance(raw, str) or '"input_audio_buffer.append"' not in raw:
            continue
        pcm.extend(base64.b64decode(json.loads(raw)["audio"]))
    for start in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES):
        mark, tag, low, high = _TAGS.unpack_from(pcm, start)
        if mark == MARK:
            found[tag].append(high * 1000 + low)
    return found


@dataclass
class TaggedCaller:
    """One caller: streams its frames in real time over the stream socket, reconnecting and
    resuming (``last_seq`` for events, ``input_position`` for input) when told to."""

    ws_base: str
    session_id: str
    tag: int
    frames: list[bytes]
    key: str = API_KEY
    call: Call | None = None
    sent: int = 0
    """Frames sent (positions 1..sent, this caller sends nothing else)."""
    seqs: list[int] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    reconnects: int = 0
    closed: list[tuple[int, str]] = field(default_factory=list)

    async def connect(self) -> None:
        last = self.seqs[-1] if self.seqs else 0
        call = await open_call(self.ws_base, self.session_id, last_seq=last, key=self.key)
        async with asyncio.timeout(10):
            opened = json.loads(await call.ws.recv())
        assert opened["type"] == "stream_opened", opened
        call.stream.append(opened)
        self.call = call
        self.sent = min(self.sent, int(opened["input_position"]))  # resume after the model's

    async def stream(self) -> None:
        """Send every frame at real-time pace (20 ms) while reading events; on a dropped socket
        reconnect and resume."""
        began = time.monotonic()
        while True:
            assert self.call is not None
            reader = asyncio.create_task(self._read(self.call))
            try:
                await self._send(began)
                return
            except Exception as exc:
                self.closed.append((_close_code(exc), repr(exc)[:160]))
            finally:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
            await self.reconnect()

    async def _send(self, began: float) -> None:
        assert self.call is not None
        while self.sent < len(self.frames):
            index = self.sent
            await self.call.ws.send(tagged_frame(self.tag, index, self.frames[index]))
            self.sent += 1
            delay = began + self.sent * 0.02 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)

    async def _read(self, call: Call) -> None:
        await call.until(lambda e: False, timeout=3600)

    async def reconnect(self) -> None:
        self.reconnects += 1
        if self.call is not None:
            self._collect()
            await self.call.ws.close()
        for attempt in range(50):
            try:
                await self.connect()
                return
            except Exception:
                await asyncio.sleep(0.1 * min(attempt + 1, 5))
        raise AssertionError(f"call {self.tag} could not reconnect")

    def _collect(self) -> None:
        assert self.call is not None
        self.seqs.extend(self.call.seqs)
        self.events.extend(self.call.events)
        self.call.seqs.clear()
        self.call.events.clear()

    async def finish(self, seconds: float) -> None:
        """Read events for ``seconds`` more (the model's last answer), then close."""
        assert self.call is not None
        try:
            await self.call.until(lambda e: False, timeout=seconds)
        except TimeoutError:
            pass
        except Exception as exc:  # the socket dropped at the very end
            self.closed.append((_close_code(exc), repr(exc)[:160]))
        self._collect()
        await self.call.ws.close()


def assert_exactly_once(frames: dict[int, list[int]], callers: list[TaggedCaller]) -> None:
    """Every caller's frames reached the provider once each, in order: no gap, no duplicate."""
    for caller in callers:
        got = frames.get(caller.tag, [])
        expected = list(range(len(caller.frames)))
        missing = sorted(set(expected) - set(got))
        duplicates = len(got) - len(set(got))
        assert not missing and not duplicates and got == expected, (
            f"call {caller.tag}: {len(missing)} frames missing (first {missing[:5]}), "
            f"{duplicates} duplicated, in order: {got == sorted(got)}; "
            f"first disorder: {_disorder(got)}"
        )


def assert_conversation_once(emulator: EmulatorThread, callers: list[TaggedCaller]) -> None:
    """Across every provider connection a call had, each caller frame reached the conversation
    once, in order (the provider connections are named on failure)."""
    try:
        assert_exactly_once(conversation_audio(emulator), callers)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; provider sessions {provider_segments(emulator)}") from None
    for caller in callers:
        assert_seqs_once(caller)


def _disorder(got: list[int]) -> str:
    for i in range(1, len(got)):
        if got[i] != got[i - 1] + 1:
            return f"at {i}: ...{got[max(0, i - 3) : i + 3]}..."
    return "none"


def assert_seqs_once(caller: TaggedCaller) -> None:
    """The events the caller saw, across its reconnects: 1..N, each once."""
    assert caller.seqs == list(range(1, len(caller.seqs) + 1)), (
        f"call {caller.tag}: seqs not 1..N once each: "
        f"{[s for i, s in enumerate(caller.seqs) if s != i + 1][:10]}"
    )


def _close_code(exc: BaseException) -> int:
    received = getattr(exc, "rcvd", None)
    return int(received.code) if received is not None else 0
