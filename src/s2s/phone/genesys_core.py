"""The Genesys AudioHook client's session state machine (sans-I/O), Audio Connector flavour.

:class:`GenesysClientCore` holds what the Genesys side knows about one session: sequence numbers,
the stream position, pause state, the outstanding ping, the bot-audio playback queue and the rate
limiter. It never touches a socket or a clock: the driver passes ``now`` (``time.monotonic()``)
into every call, sends what it is told to, and reacts to the returned actions:

- :class:`Outgoing`: a text message to send now, in order (encode it with :meth:`encode`);
- :class:`Abort`: a fatal violation; send ``error{code}`` and ``close{reason:"error"}``;
- :class:`Opened`, :class:`DisconnectReceived`, :class:`ClosedReceived`, :class:`PingNow`.

Every server message is checked (§2.3/§2.5 of the protocol brief). Violations the reference
client aborts on return :class:`Abort`; the others (audio while paused or after ``disconnect``,
``retryAfter`` ignored, anything after ``closed``) are only recorded in :attr:`violations`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .genesys_audio import BotAudio, CallerAudio
from .genesys_config import CoreConfig
from .genesys_messages import (
    DisconnectParams,
    EventParams,
    MediaFormat,
    OpenedParams,
    ProtocolViolation,
    check_opened_media,
    check_sequence,
    encode_client_message,
    format_duration,
    parse_server_message,
    peek,
)
from .genesys_timeline import (
    BotFrame,
    EndedBy,
    GenesysOutcome,
    GenesysSessionError,
    GenesysTimeline,
    OpenedInfo,
    TextRecord,
)

__all__ = [
    "FIRST_PING_S",
    "Abort",
    "Action",
    "ClosedReceived",
    "DisconnectReceived",
    "GenesysClientCore",
    "Opened",
    "Outgoing",
    "PingNow",
]

#: The first ping goes out this long after ``opened``.
FIRST_PING_S = 1.0
#: Bot audio this soon after our own ``paused`` may have been in flight; later it is a violation.
HOLD_GRACE_S = 0.2


@dataclass(frozen=True, slots=True)
class Outgoing:
    type: str
    parameters: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Abort:
    code: int
    message: str


@dataclass(frozen=True, slots=True)
class Opened:
    info: OpenedInfo


@dataclass(frozen=True, slots=True)
class DisconnectReceived:
    params: DisconnectParams


@dataclass(frozen=True, slots=True)
class ClosedReceived:
    solicited: bool


@dataclass(frozen=True, slots=True)
class PingNow:
    pass


type Action = Outgoing | Abort | Opened | DisconnectReceived | ClosedReceived | PingNow


class GenesysClientCore:
    """One AudioHook session as the Genesys client runs it."""

    def __init__(self, config: CoreConfig) -> None:
        self.config = config
        self.timeline = GenesysTimeline()
        self.violations: list[str] = []
        self.opened: OpenedInfo | None = None
        self.media: MediaFormat | None = None
        self.disconnect: DisconnectParams | None = None
        #: We sent ``close`` (nothing but ``error`` may follow).
        self.closing = False
        self.closed_received = False
        self.ended_by: EndedBy | None = None
        self._seq = 0
        self._server_seq = 0
        self._stream_t0: float | None = None
        self._pause_reasons: set[str] = set()
        self._pause_start = 0.0
        self._hold_sent_at = 0.0
        self._discard_from: float | None = None
        self._ping: tuple[int, float] | None = None
        self._rtt: float | None = None
        self._pongs = 0
        self.next_ping_at: float | None = None
        self.caller = CallerAudio()
        self.bot = BotAudio(
            self.timeline,
            max_frames_per_s=config.max_frames_per_s,
            retry_after_s=config.retry_after_s,
            retry_grace_s=config.retry_grace_s,
            playback_completed_on_barge_in=config.playback_completed_on_barge_in,
        )

    # -- sending ---------------------------------------------------------------------------

    @property
    def paused(self) -> bool:
        return bool(self._pause_reasons)

    def position(self, now: float) -> float:
        """Stream time: seconds since ``opened`` (it keeps running through pauses)."""
        return 0.0 if self._stream_t0 is None else max(0.0, now - self._stream_t0)

    def open_message(self) -> Outgoing:
        return Outgoing("open", self.config.open_parameters())

    def encode(self, out: Outgoing, now: float, *, force: bool = False) -> str | None:
        """The wire text of ``out`` with the next ``seq``; ``None`` once closing (unless forced)."""
        if self.closing and not force:
            return None
        self._seq += 1
        text = encode_client_message(
            session_id=self.config.session_id,
            type=out.type,
            seq=self._seq,
            serverseq=self._server_seq,
            position_s=self.position(now),
            parameters=out.parameters,
        )
        if out.type == "ping":
            self._ping = (self._seq, now)
        elif out.type == "playback_started":
            self.timeline.playback_started.append(now)
        elif out.type == "playback_completed":
            self.timeline.playback_completed.append(now)
        self.timeline.messages.append(TextRecord(now, "out", out.type, self._seq, text))
        return text

    def start_close(
        self, reason: str, ended_by: EndedBy, error: tuple[int, str] | None = None
    ) -> list[Outgoing]:
        """Begin the end of the session: ``[error?, close{reason}]``; ``[]`` if already closing."""
        if self.closing:
            return []
        self.closing = True
        self.ended_by = ended_by
        close = Outgoing("close", {"reason": reason})
        if error is None:
            return [close]
        return [Outgoing("error", {"code": error[0], "message": error[1]}), close]

    def violate(self, message: str, code: int = 400, *, fatal: bool = True) -> list[Action]:
        """Record a violation; a fatal one aborts the session (unless it is already ending)."""
        if message not in self.violations:
            self.violations.append(message)
        return [Abort(code, message)] if fatal and not self.closing else []

    def socket_lost(self, *, expected: bool) -> None:
        """The WebSocket ended; a violation unless ``closed`` came first or we closed it."""
        self.closing = True
        if not self.closed_received and not expected:
            self.violate("the connection closed before the server sent 'closed'", fatal=False)
        if self.ended_by is None:
            self.ended_by = "error"

    def outcome(self, closed_in_time: bool) -> GenesysOutcome:
        d = self.disconnect
        return GenesysOutcome(
            ended_by=self.ended_by or "error",
            disconnect_reason=None if d is None else d.reason,
            output_variables={} if d is None else dict(d.output_variables),
            info=None if d is None else d.info,
            closed_in_time=closed_in_time,
            violations=tuple(self.violations),
        )

    # -- caller side -----------------------------------------------------------------------

    def caller_frame(self, now: float) -> bytes | None:
        """The next 200 ms caller frame, or ``None`` when no audio may be sent (it is dropped)."""
        if self.media is None or self.closing:
            return None
        blocked = self.paused or self._discard_from is not None
        frame = self.caller.take(None if blocked else self.media)
        if frame is not None:
            self.timeline.caller_frames_sent += 1
            self.timeline.caller_bytes_sent += len(frame)
        return frame

    def _resumed(self, now: float) -> Outgoing:
        gap = self.position(now) - self._pause_start
        params = {"start": format_duration(self._pause_start), "discarded": format_duration(gap)}
        return Outgoing("resumed", params)

    def _pause(self, reason: str, now: float) -> bool:
        """Add a pause reason; True when the stream was active until now."""
        was_active = not self._pause_reasons
        self._pause_reasons.add(reason)
        if was_active:
            self._pause_start = self.position(now)
        return was_active

    def hold_start(self, now: float) -> list[Action]:
        """The caller is put on hold: ``paused`` (unless the server already paused us)."""
        self._require_active("hold")
        if "hold" in self._pause_reasons:
            raise GenesysSessionError("the call is already on hold")
        self._hold_sent_at = now
        return [Outgoing("paused")] if self._pause("hold", now) else []

    def hold_end(self, now: float) -> list[Action]:
        """The hold ends: ``resumed{start, discarded}`` unless the server's pause is still on."""
        self._pause_reasons.discard("hold")
        if self.closing or self._pause_reasons:
            return []
        return [self._resumed(now)]

    def discard_start(self, now: float) -> None:
        self._require_active("discard")
        self._discard_from = self.position(now)

    def discard_end(self, now: float) -> list[Action]:
        start, self._discard_from = self._discard_from, None
        if start is None or self.closing:
            return []
        gap = format_duration(self.position(now) - start)
        return [Outgoing("discarded", {"start": format_duration(start), "discarded": gap})]

    def _require_active(self, what: str) -> None:
        if self.opened is None or self.closing:
            raise GenesysSessionError(f"cannot {what}: the session is not open")

    # -- pings -----------------------------------------------------------------------------

    def ping_due(self, now: float) -> list[Action]:
        """Send the scheduled ping, or abort (408) if the last one is still unanswered."""
        if self.closing or self.opened is None:
            self.next_ping_at = None
            return []
        if self._ping is not None:
            seq, sent = self._ping
            self.next_ping_at = None
            message = f"no pong for ping seq {seq} within {now - sent:.2f} s (before the next ping)"
            return self.violate(message, 408)
        self.next_ping_at = now + self.config.ping_interval_s
        return [Outgoing("ping", {} if self._rtt is None else {"rtt": format_duration(self._rtt)})]

    # -- bot audio -------------------------------------------------------------------------

    def playout_tick(self, now: float) -> list[Action]:
        """Advance playback; ``playback_completed`` when the queue has drained."""
        return [Outgoing(kind) for kind in self.bot.tick(now)]

    def receive_binary(self, data: bytes, now: float) -> list[Action]:
        """A binary frame from the server: bot audio for the playback queue."""
        self.timeline.bot_frames.append(BotFrame(now, len(data)))
        if self.closed_received:
            return self.violate("server sent audio after 'closed'", fatal=False)
        if self.opened is None:
            return self.violate("server sent audio before 'opened'")
        if self.disconnect is not None:
            return self.violate("server sent audio after its 'disconnect'", fatal=False)
        if self.closing:
            return []  # in flight when our close left
        if self.media is None:
            return self.violate("server sent audio in a session with no media (probe)")
        if len(data) % self.media.bytes_per_sample:
            return self.violate(f"bot audio frame of {len(data)} bytes splits a sample")
        late_for_hold = now - self._hold_sent_at > HOLD_GRACE_S
        if "server" in self._pause_reasons or ("hold" in self._pause_reasons and late_for_hold):
            return self.violate("server sent audio while the session was paused", fatal=False)
        result = self.bot.push(data, now)
        if result.retry_after_ignored:
            self.violate("server sent audio inside the retryAfter window of a 429", fatal=False)
        return [Outgoing(kind, params) for kind, params in result.messages]

    # -- server text -----------------------------------------------------------------------

    def receive_text(self, text: str, now: float) -> list[Action]:
        """A text message from the server: check it, update the state, say what to do."""
        kind_seen, seq_seen = peek(text)
        self.timeline.messages.append(TextRecord(now, "in", kind_seen, seq_seen, text))
        if self.closed_received:
            return self.violate(f"server sent a message after 'closed': {text[:200]}", fatal=False)
        try:
            message = parse_server_message(text, session_id=self.config.session_id)
        except ProtocolViolation as exc:
            if seq_seen is not None:
                self._server_seq = seq_seen  # judge later messages against this one
            return self.violate(str(exc), exc.code)
        try:
            check_sequence(message, last_server_seq=self._server_seq, last_client_seq=self._seq)
        except ProtocolViolation as exc:
            self._server_seq = message.seq  # judge later messages against this one
            return self.violate(str(exc), exc.code)
        self._server_seq = message.seq
        kind = message.type
        if self.opened is None and not self.closing and kind not in ("opened", "disconnect"):
            return self.violate(f"server sent {kind!r} before 'opened'")
        if kind == "opened":
            assert isinstance(message.params, OpenedParams)
            return self._on_opened(message.params, message.parameters, now)
        if kind == "pong":
            return self._on_pong(message.clientseq, now)
        if kind == "closed":
            self.closed_received = True
            if not self.closing:
                self.violate("server sent 'closed' without a 'close' from us", fatal=False)
            return [ClosedReceived(self.closing)]
        if kind == "disconnect":
            assert isinstance(message.params, DisconnectParams)
            if self.disconnect is not None:
                return self.violate("server sent a second 'disconnect'", fatal=False)
            self.disconnect = message.params
            return [] if self.closing else [DisconnectReceived(message.params)]
        if self.closing:
            return []
        if kind == "pause":  # idempotent; acknowledged even during our own hold
            if "server" in self._pause_reasons:
                return []
            self._pause("server", now)
            return [Outgoing("paused")]
        if kind == "resume":
            return self._on_resume(now)
        if kind == "event":
            assert isinstance(message.params, EventParams)
            if any(e.type == "barge_in" for e in message.params.entities):
                return [Outgoing(k) for k in self.bot.barge_in(now)]
        return []  # updated; events without barge_in

    def _on_opened(
        self, params: OpenedParams, raw: Mapping[str, object], now: float
    ) -> list[Action]:
        if self.opened is not None:
            return self.violate("server sent a second 'opened'")
        if self.closing:
            return []  # too late: the session is already being aborted
        try:
            media = check_opened_media(params, self.config.media_offer, probe=self.config.probe)
        except ProtocolViolation as exc:
            return self.violate(str(exc), exc.code)
        self.opened = OpenedInfo(now, media, params.start_paused, raw)
        self.media = media
        if media is not None:
            self.bot.set_format(media)
        self._stream_t0 = now
        self.next_ping_at = now + FIRST_PING_S
        actions: list[Action] = [Opened(self.opened)]
        if params.start_paused:
            self._pause("server", now)
            actions.append(Outgoing("paused"))
        return actions

    def _on_pong(self, clientseq: int, now: float) -> list[Action]:
        if self._ping is None:
            return self.violate("server sent 'pong' with no ping outstanding")
        seq, sent = self._ping
        if clientseq != seq:
            return self.violate(f"pong.clientseq {clientseq} does not match the ping's seq {seq}")
        self._ping = None
        self._rtt = now - sent
        self.timeline.rtts.append(self._rtt)
        self._pongs += 1
        if self._pongs == 1 and not self.closing:
            self.next_ping_at = now
            return [PingNow()]
        return []

    def _on_resume(self, now: float) -> list[Action]:
        if "server" not in self._pause_reasons:
            return self.violate("server sent 'resume' without a 'pause'", fatal=False)
        self._pause_reasons.discard("server")
        if self._pause_reasons:  # our own hold is still on
            return [Outgoing("paused")]
        return [self._resumed(now)]
