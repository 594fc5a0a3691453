"""What the latest session resumption handle covers, and what a new connection must be given again.

A Gemini Live server sends ``sessionResumptionUpdate{newHandle, resumable,
lastConsumedClientMessageIndex}`` at quiet moments. A new connection that sends the handle in its
``setup`` continues from the server state the handle represents. That state lags behind the
conversation: the client may have sent audio, text or tool responses the handle does not include,
and the model may have answered, or called a tool, after it was issued. Other frameworks lose
exactly those messages (tool results above all). The :class:`Ledger` keeps one connection's
account so that nothing is lost:

* Every client message gets the index the server counts it by: ``setup`` is 0, each later message
  one more. With ``transparent: true`` the server reports the last index a handle covers. Servers
  that leave the index out (the Gemini Developer API does; the official SDK refuses to even send
  ``transparent`` to it) get an estimate: text and tool responses sent before the handle arrived
  are covered (the server only issues handles at quiet moments, never while a tool call waits),
  and caller audio sent less than :attr:`Ledger.window_s` (the connection's setup round trip)
  before it is sent again, since it may still have been on its way: a few milliseconds heard
  twice rather than lost.
* Every server message gets an ordinal. Model output (answers, tool calls) received before the
  handle is covered; anything after it is not.
* Conversation items (:mod:`s2s.conversation`) are keyed by who produced them and when.
* Client input since the model last started answering (:attr:`Ledger.pending`) is kept raw:
  caller audio, typed text and tool responses the model has not answered yet.

:meth:`Ledger.carry` turns this into a :class:`~s2s.protocol.Continuation`:

* the handle, and which history items it covers;
* ``pending``: the raw inputs to send again, in order (covered ones are flagged and their
  audio kept apart in ``covered_audio``, so a new connection whose handle is refused can still
  send them); the audio to send again is the continuation's ``pending_audio``;
* a conversation without the answer that was cut mid-way (the model says it again) and without
  the transcript of a caller turn still open (its audio is sent again instead).

:func:`plan` is the other half: on the new connection, which history items go out as
``clientContent`` turns (everything not covered and not carried by a raw input, or everything when
there is no handle), which raw inputs are sent again, and which tool calls wait for their result
before they can be replayed together with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...conversation import Conversation, FunctionCall, FunctionOutput, HistoryItem, Message
from ...events import Role

__all__ = ["COVERED", "Ledger", "Plan", "Record", "item_key", "plan"]

#: Key of an item the connection's (inherited) resumption state already holds.
COVERED: tuple[str, int] = ("covered", -1)

#: Raw caller audio kept for a new connection, at most (16 kHz PCM16 bytes: 60 s).
MAX_PENDING_AUDIO = 60 * 16000 * 2


def item_key(item: HistoryItem) -> str:
    """A stable key for a history item (outputs share their call's id, so they get a prefix)."""
    if isinstance(item, FunctionOutput):
        return f"out:{item.call_id}"
    return item.item_id or ""


@dataclass(slots=True)
class Record:
    """One raw client input (``index`` None: sent on an earlier connection and still pending)."""

    kind: str  # "audio" | "text" | "tool_response" | "activity_start" | "activity_end"
    index: int | None
    audio: bytes = b""
    at: float = 0.0  # when it was sent (monotonic seconds)
    text: str = ""
    item: str | None = None  # key of the history item it carries (text, tool output)
    call_id: str | None = None


@dataclass(slots=True)
class Ledger:
    """One connection's account of what the server's resumption state includes."""

    handle: str | None = None
    #: Client index of the last message sent (``setup`` is 0).
    index: int = -1
    #: Server messages received so far.
    received: int = 0
    handle_ordinal: int = -1
    handle_index: int | None = None
    index_at_handle: int = -1
    handle_at: float = 0.0
    #: Without an index, audio sent this long before a handle arrived may not be in it.
    window_s: float = 0.0
    #: The client index when the model last started answering.
    answered_up_to: int = -1
    keys: dict[str, tuple[str, int]] = field(default_factory=dict)
    pending: list[Record] = field(default_factory=list)
    _pending_audio_bytes: int = 0

    # -- bookkeeping -------------------------------------------------------------------------

    def sent(self) -> int:
        """A client message went out; returns its index."""
        self.index += 1
        return self.index

    def got(self) -> None:
        """A server message came in."""
        self.received += 1

    def mark_sent(self, key: str, index: int | None = None) -> None:
        self.keys[key] = ("sent", self.index if index is None else index)

    def mark_received(self, key: str) -> None:
        self.keys[key] = ("recv", self.received)

    def record(self, record: Record) -> None:
        """Keep a raw input; the oldest audio goes once more than a minute is kept."""
        self.pending.append(record)
        self._pending_audio_bytes += len(record.audio)
        if self._pending_audio_bytes > MAX_PENDING_AUDIO:
            kept: list[Record] = []
            for old in self.pending:
                if old.audio and self._pending_audio_bytes > MAX_PENDING_AUDIO:
                    self._pending_audio_bytes -= len(old.audio)
                else:
                    kept.append(old)
            self.pending = kept

    def new_handle(self, handle: str, last_consumed: int | None, now: float) -> None:
        self.handle = handle
        self.handle_ordinal = self.received
        self.handle_index = last_consumed
        self.index_at_handle = self.index
        self.handle_at = now

    def answer_started(self) -> None:
        """The model began answering: input sent so far is part of the history now."""
        self.answered_up_to = self.index
        self.pending = [r for r in self.pending if r.index is not None and r.index > self.index]
        self._pending_audio_bytes = sum(len(r.audio) for r in self.pending)

    # -- coverage ------------------------------------------------------------------------------

    def _covers_index(self, index: int) -> bool:
        if self.handle is None:
            return False
        limit = self.handle_index if self.handle_index is not None else self.index_at_handle
        return index <= limit

    def covers(self, key: str) -> bool:
        """True when the latest handle's state includes the history item ``key``."""
        kind, value = self.keys.get(key, ("sent", self.index + 1))
        if kind == "covered":
            return self.handle is not None
        if self.handle is None:
            return False
        if kind == "recv":
            return value <= self.handle_ordinal
        return self._covers_index(value)

    def covers_record(self, record: Record) -> bool:
        if record.index is None:
            return self.handle is not None
        if (
            record.kind == "audio"
            and self.handle is not None
            and self.handle_index is None
            and record.at > self.handle_at - self.window_s
        ):
            return False  # may still have been on its way when the handle was made
        return self._covers_index(record.index)

    # -- continuation ----------------------------------------------------------------------------

    def carry(
        self, conversation: Conversation, drop: Sequence[str] = ()
    ) -> tuple[Conversation, bytes, dict[str, Any]]:
        """History, pending audio and state for a :class:`~s2s.protocol.Continuation`.

        ``drop`` names items a new connection must not be told about (a cut answer, an open
        caller turn whose audio is sent again).
        """
        dropped = set(drop)
        items = [item for item in conversation if item_key(item) not in dropped]
        positions = {item_key(item): n for n, item in enumerate(items)}
        covered = [self.covers(item_key(item)) for item in items]
        audio = bytearray()  # to send again
        covered_audio = bytearray()  # in the handle's state; sent again only if it is refused
        pending: list[dict[str, Any]] = []
        for record in self.pending:
            covered_record = self.covers_record(record)
            entry: dict[str, Any] = {"kind": record.kind, "covered": covered_record}
            if record.kind == "audio":
                buffer = covered_audio if covered_record else audio
                entry["start"] = len(buffer)
                buffer += record.audio
                entry["end"] = len(buffer)
            elif record.item is None:
                pass  # a manual activity start or end: its place in the order is all it has
            elif record.item in positions:
                entry["item"] = positions[record.item]
            else:
                continue  # its item was dropped (never happens for text or tool output)
            pending.append(entry)
        state = {
            "handle": self.handle,
            "covered": covered,
            "pending": pending,
            "covered_audio": bytes(covered_audio),
        }
        return Conversation(items), bytes(audio), state


@dataclass(slots=True)
class Plan:
    """What a new connection sends once set up, and what it must hold back."""

    #: History positions to send as ``clientContent`` turns now.
    replay: list[int]
    #: History positions (from the first unanswered tool call on) to send once answered.
    held: list[int]
    #: Pending raw inputs to send again, in order (entries of the carried ``pending`` list).
    resend: list[Mapping[str, Any]]
    #: Positions of history items the connection's resumption state already holds.
    covered: set[int]


def plan(conversation: Conversation, state: Mapping[str, Any]) -> Plan:
    """Split a carried history into replay, held and resend parts (see the module docstring)."""
    items = list(conversation)
    has_handle = bool(state.get("handle"))
    flags = list(state.get("covered") or [])
    covered = {n for n in range(len(items)) if has_handle and n < len(flags) and flags[n]}
    resend: list[Mapping[str, Any]] = []
    carried_by_input: set[int] = set()
    calls = {item.call_id: n for n, item in enumerate(items) if isinstance(item, FunctionCall)}
    for entry in state.get("pending") or []:
        if has_handle and entry.get("covered"):
            continue
        position = entry.get("item")
        if entry.get("kind") == "tool_response" and position is not None:
            output = items[position]
            call_at = calls.get(output.call_id) if isinstance(output, FunctionOutput) else None
            if call_at is None or call_at not in covered:
                continue  # its call is replayed: the output goes with it, as history
        if position is not None:
            carried_by_input.add(position)
        resend.append(entry)
    replay = [n for n in range(len(items)) if n not in covered and n not in carried_by_input]
    answered = {item.call_id for item in items if isinstance(item, FunctionOutput)}
    open_calls = {n for n, item in enumerate(items) if isinstance(item, FunctionCall)} - {
        calls[call_id] for call_id in answered if call_id in calls
    }
    first_open = next((i for i, n in enumerate(replay) if n in open_calls), len(replay))
    return Plan(replay[:first_open], replay[first_open:], resend, covered)


def owes_answer(items: Sequence[HistoryItem]) -> bool:
    """True when the last item is the caller's (or a tool's): the model should answer it."""
    for item in reversed(items):
        if isinstance(item, Message) and not item.text:
            continue  # nothing to replay
        if isinstance(item, FunctionOutput):
            return True
        return isinstance(item, Message) and item.role is Role.USER
    return False
