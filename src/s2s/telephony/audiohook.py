"""The server side of Genesys AudioHook v2, Audio Connector flavour, as a sans-I/O engine.

h11-style: the bridge feeds each client text frame to :meth:`AudioHookServer.receive_text`
(typed events out, :mod:`.audiohook_messages`) and each binary frame to
:meth:`~AudioHookServer.receive_audio`; it calls the server actions (:meth:`open`,
:meth:`pause`, :meth:`event`, :meth:`disconnect`, :meth:`closed`, ...) and sends whatever
:meth:`~AudioHookServer.data_to_send` returns, in order. No sockets, no clocks: the only time
input is ``now`` for the 429 bookkeeping.

Protocol rules kept here:

* Every server text carries ``version`` "2", the session ``id``, ``type``, ``seq`` (1, 2, ...
  one per text), ``clientseq`` (the last client ``seq`` processed, fixed when queued),
  ``parameters`` (always an object), and never ``position``.
* A client text must have ``seq == last + 1`` and ``serverseq ≤`` our last ``seq`` (409), be
  allowed in the current state (405) and carry valid parameters (400, :mod:`.audiohook_messages`);
  ``open.organizationId`` must equal the ``Audiohook-Organization-Id`` header (401).
* ``ping`` is answered with ``pong`` inside :meth:`receive_text`, before the bridge sees any later
  message, so ``pong.clientseq`` is the ping's ``seq``. ``close`` is not auto-answered: the bridge
  stops the bot, then calls :meth:`closed`, the last message of the session.
* After :meth:`disconnect` only ``pong`` and ``closed`` go out. The server never sends ``error``,
  ``paused`` or ``resumed`` (client-only types).

States: ``awaiting_open`` (until we send ``opened``), ``active``, ``paused`` (the client said
``paused``), ``closing`` (the client sent ``close``), ``closed`` (we sent ``closed``). Caller audio
is accepted only while ``active``; audio still in flight after our ``pause`` or ``disconnect``
is accepted until the client reports ``paused``/``close``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Literal

from .audiohook_messages import (
    MAX_MESSAGE_BYTES,
    AudioHookProtocolError,
    ClientEvent,
    CloseRequested,
    OpenRequested,
    Paused,
    Ping,
    Resumed,
    UpdateRequested,
    parse_client_message,
)

__all__ = ["AudioHookServer", "AudioHookStateError", "State"]

type State = Literal["awaiting_open", "active", "paused", "closing", "closed"]
DisconnectReason = Literal["completed", "unauthorized", "error"]
_DISCONNECT_REASONS = ("completed", "unauthorized", "error")
_BYTES_PER_SAMPLE = {"PCMU": 1, "L16": 2}
#: Before ``open`` arrives the client may only ping, report an error or give up.
_BEFORE_OPEN = frozenset({"open", "ping", "error", "close"})
#: Between ``open`` and our ``opened``.
_BEFORE_OPENED = frozenset({"ping", "error", "close", "update"})
#: 429 back-off without ``retryAfter``: 3 s, 9 s, 27 s for consecutive 429s, then 27 s.
_BACKOFF_BASE_S = 3.0
_BACKOFF_MAX_S = 27.0


class AudioHookStateError(RuntimeError):
    """A server action the session's state forbids (e.g. ``resume`` with no pause asked)."""


class AudioHookServer:
    """One AudioHook session, server side: client frames in, events and server texts out."""

    def __init__(self, session_id: str, organization_id: str) -> None:
        """``session_id``/``organization_id`` come from the ``Audiohook-*`` upgrade headers."""
        self.session_id = session_id
        self.organization_id = organization_id
        self.open_request: OpenRequested | None = None
        self.media: Mapping[str, object] | None = None
        self.position_s = 0.0
        self.client_seq = 0
        self.server_seq = 0
        self.disconnect_sent = False
        self._opened = False
        self._client_paused = False
        self._pause_requested = False
        self._update_pending = False
        self._close_requested = False
        self._closed = False
        self._frame_bytes = 0
        self._outbox: list[str] = []
        self._hold_until = float("-inf")
        self._last_backoff_s = 0.0
        self._streak = 0

    # --- state ----------------------------------------------------------------------------

    @property
    def state(self) -> State:
        if self._closed:
            return "closed"
        if self._close_requested:
            return "closing"
        if not self._opened:
            return "awaiting_open"
        return "paused" if self._client_paused else "active"

    @property
    def probe(self) -> bool:
        """The session is Genesys's connection probe (nil conversation and participant ids)."""
        return self.open_request is not None and self.open_request.probe

    @property
    def pause_requested(self) -> bool:
        """We sent ``pause`` and have not sent ``resume`` yet."""
        return self._pause_requested

    @property
    def can_send_audio(self) -> bool:
        """Bot audio may go out: opened with media, not paused either way, not ending."""
        return (
            self.state == "active"
            and self.media is not None
            and not self._pause_requested
            and not self.disconnect_sent
        )

    # --- client input ---------------------------------------------------------------------

    def receive_text(self, text: str) -> list[ClientEvent]:
        """Validate and apply one client text frame; AudioHookProtocolError on a violation."""
        message = parse_client_message(text, self.session_id)
        if message.seq != self.client_seq + 1:
            raise AudioHookProtocolError(
                409, f"{message.type}: seq {message.seq}, expected {self.client_seq + 1}"
            )
        if message.server_seq > self.server_seq:
            raise AudioHookProtocolError(
                409,
                f"{message.type}: serverseq {message.server_seq} is ahead of our last seq "
                f"{self.server_seq}",
            )
        self._check_allowed(message.type)
        event = message.event
        if isinstance(event, OpenRequested) and (
            event.organization_id.lower() != self.organization_id.lower()
        ):
            raise AudioHookProtocolError(
                401,
                f"organization mismatch: open.organizationId {event.organization_id} is not "
                f"the Audiohook-Organization-Id header {self.organization_id}",
            )
        self.client_seq = message.seq
        self.position_s = message.position_s
        self._apply(event)
        return [event]

    def receive_audio(self, data: bytes) -> bytes:
        """Caller audio of one binary frame; AudioHookProtocolError unless it may arrive now."""
        state = self.state
        if state != "active":
            where = {"awaiting_open": "before opened", "paused": "while paused"}
            raise AudioHookProtocolError(
                405, f"audio frame {where.get(state, 'after close')} (state {state})"
            )
        if self._frame_bytes == 0:
            raise AudioHookProtocolError(415, "audio frame but no media was negotiated")
        if len(data) % self._frame_bytes:
            raise AudioHookProtocolError(
                415,
                f"audio frame of {len(data)} bytes is not a multiple of the "
                f"{self._frame_bytes}-byte sample frame",
            )
        return bytes(data)

    def data_to_send(self) -> list[str]:
        """The server texts queued since the last call, in order (the queue is emptied)."""
        out, self._outbox = self._outbox, []
        return out

    # --- server actions -------------------------------------------------------------------

    @staticmethod
    def choose_media(offers: Sequence[Mapping[str, object]]) -> Mapping[str, object] | None:
        """The first offered PCMU 8 kHz mono ``external`` entry, unchanged, or None."""
        for offer in offers:
            if (
                offer.get("type") == "audio"
                and offer.get("format") == "PCMU"
                and offer.get("rate") == 8000
                and offer.get("channels") == ["external"]
            ):
                return offer
        return None

    def open(self, media: Mapping[str, object] | None) -> None:
        """Send ``opened`` with one offered ``media`` entry unchanged (None: ``[]``, probe only)."""
        request = self.open_request
        if request is None or self._opened:
            what = "before the client's open" if request is None else "twice"
            raise AudioHookStateError(f"cannot send opened {what}")
        self._require_not_ending("opened")
        entries: list[object] = []
        if media is None:
            if not request.probe:
                raise ValueError(
                    "opened without media is only for the connection probe; "
                    "disconnect('error') when no offer fits"
                )
        else:
            entry = dict(media)
            if all(entry != dict(offer) for offer in request.media):
                raise ValueError(f"media {entry!r} is not one of the offered entries")
            self._frame_bytes = _frame_bytes(entry)
            entries = [entry]
        self._queue("opened", {"startPaused": False, "media": entries})
        self._opened = True
        self.media = media

    def pause(self) -> None:
        """Ask the client to stop streaming (``pause``); a no-op while our pause stands."""
        self._require_opened("pause")
        if not self._pause_requested:
            self._queue("pause", {})
            self._pause_requested = True

    def resume(self) -> None:
        """End the pause we asked for (``resume``); the client answers ``resumed``."""
        self._require_opened("resume")
        if not self._pause_requested:
            raise AudioHookStateError("cannot resume: we did not ask for a pause")
        self._queue("resume", {})
        self._pause_requested = False

    def updated(self) -> None:
        """Acknowledge the client's ``update`` (optional)."""
        self._require_opened("updated")
        if not self._update_pending:
            raise AudioHookStateError("cannot send updated: no update to acknowledge")
        self._queue("updated", {})
        self._update_pending = False

    def event(self, entities: Sequence[Mapping[str, object]]) -> None:
        """Send one ``event`` with ``entities`` (``{"type": str, "data": object}`` each)."""
        if not self._opened or self._closed or self.disconnect_sent:
            when = "after disconnect" if self.disconnect_sent else f"in state {self.state}"
            raise AudioHookStateError(f"cannot send event {when}")
        if isinstance(entities, Mapping | str) or not entities:
            raise ValueError("event entities must be a non-empty sequence of mappings")
        for entity in entities:
            if not isinstance(entity, Mapping) or not isinstance(entity.get("type"), str):
                raise ValueError(f"event entity without a string type: {entity!r}")
            if not isinstance(entity.get("data"), Mapping):
                raise ValueError(f"event entity {entity.get('type')!r} without a data object")
        self._queue("event", {"entities": [dict(entity) for entity in entities]})

    def barge_in(self) -> None:
        """Tell Genesys the caller barged in, so it drops the bot audio it has queued."""
        self.event([{"type": "barge_in", "data": {}}])

    def disconnect(
        self,
        reason: DisconnectReason,
        *,
        info: str | None = None,
        output_variables: Mapping[str, str] | None = None,
    ) -> None:
        """End the session from our side (once); the client answers ``close``, we ``closed``."""
        if self.disconnect_sent:
            raise AudioHookStateError("disconnect was already sent")
        self._require_not_ending("disconnect")
        if reason not in _DISCONNECT_REASONS:
            raise ValueError(f"disconnect reason must be one of {_DISCONNECT_REASONS}: {reason!r}")
        params: dict[str, object] = {"reason": reason}
        if info is not None:
            if not isinstance(info, str):
                raise TypeError(f"disconnect info must be a string, not {type(info).__name__}")
            params["info"] = info
        if output_variables is not None:
            for name, value in output_variables.items():
                if not isinstance(name, str) or not isinstance(value, str):
                    raise TypeError(
                        f"output variable {name!r} must map a string to a string, not "
                        f"{type(value).__name__} (JSON-encode other values)"
                    )
            params["outputVariables"] = dict(output_variables)
        self._queue("disconnect", params)
        self.disconnect_sent = True

    def closed(self) -> None:
        """Answer the client's ``close``: the last message of the session."""
        if not self._close_requested or self._closed:
            raise AudioHookStateError(
                "closed already sent" if self._closed else "closed only answers the client's close"
            )
        self._queue("closed", {})
        self._closed = True

    # --- 429 bookkeeping ------------------------------------------------------------------

    def record_rate_limit(self, retry_after_s: float | None, now: float) -> float:
        """Record a client 429; the time until which to hold non-essential sends.

        Without ``retryAfter`` the hold is 3, 9, 27 s for consecutive 429s (one arriving during
        the hold or within the last back-off after it), capped at 27 s.
        """
        if now >= self._hold_until + self._last_backoff_s:
            self._streak = 0
        self._streak += 1
        if retry_after_s is None:
            backoff = min(_BACKOFF_BASE_S**self._streak, _BACKOFF_MAX_S)
        else:
            backoff = max(0.0, retry_after_s)
        self._last_backoff_s = backoff
        self._hold_until = max(self._hold_until, now + backoff)
        return self._hold_until

    def retry_after_until(self, now: float) -> float | None:
        """The end of the current 429 hold, or None when sends may go out at ``now``."""
        return self._hold_until if now < self._hold_until else None

    # --- internals ------------------------------------------------------------------------

    def _check_allowed(self, kind: str) -> None:
        if self._closed:
            raise AudioHookProtocolError(405, f"{kind} after the session was closed")
        if kind == "open" and self.open_request is not None:
            raise AudioHookProtocolError(405, "second open in the session")
        if self._close_requested and kind in ("open", "close"):
            raise AudioHookProtocolError(405, f"{kind} after close")
        if self.open_request is None and kind not in _BEFORE_OPEN:
            raise AudioHookProtocolError(405, f"{kind} before open")
        if not self._opened and self.open_request is not None and kind not in _BEFORE_OPENED:
            raise AudioHookProtocolError(405, f"{kind} before opened")

    def _apply(self, event: ClientEvent) -> None:
        match event:
            case OpenRequested():
                self.open_request = event
            case Ping():
                self._queue("pong", {})
            case Paused():
                self._client_paused = True
            case Resumed():
                self._client_paused = False
            case UpdateRequested():
                self._update_pending = True
            case CloseRequested():
                self._close_requested = True
            case _:  # error, dtmf, discarded, playback_*: information for the bridge only
                pass

    def _queue(self, kind: str, parameters: Mapping[str, object]) -> None:
        message = {
            "version": "2",
            "id": self.session_id,
            "type": kind,
            "seq": self.server_seq + 1,
            "clientseq": self.client_seq,
            "parameters": parameters,
        }
        text = json.dumps(
            message, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_plain
        )
        if len(text.encode()) > MAX_MESSAGE_BYTES:
            raise ValueError(f"{kind} message larger than {MAX_MESSAGE_BYTES} bytes")
        self.server_seq += 1
        self._outbox.append(text)

    def _require_opened(self, action: str) -> None:
        if not self._opened:
            raise AudioHookStateError(f"cannot send {action} before opened")
        self._require_not_ending(action)
        if self.disconnect_sent:
            raise AudioHookStateError(f"cannot send {action} after disconnect")

    def _require_not_ending(self, action: str) -> None:
        if self._closed or self._close_requested:
            raise AudioHookStateError(f"cannot send {action} in state {self.state}")
        if self.disconnect_sent and action == "opened":
            raise AudioHookStateError("cannot send opened after disconnect")


def _frame_bytes(media: Mapping[str, object]) -> int:
    """Bytes per sample frame of a negotiated media entry (sample bytes × channels)."""
    size = _BYTES_PER_SAMPLE.get(str(media.get("format")))
    channels = media.get("channels")
    if size is None or not isinstance(channels, list) or not 1 <= len(channels) <= 2:
        raise ValueError(f"cannot frame audio of media {media!r}")
    return size * len(channels)


def _plain(value: object) -> object:
    """JSON fallback: mappings (e.g. read-only views) as objects."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")
