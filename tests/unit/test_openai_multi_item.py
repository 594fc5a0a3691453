"""Multi-item answers (gpt-realtime-2) in the OpenAI protocol, with scripted server events.

The items of a response play one after another on one timeline: barge-in truncates the item the
caller was hearing to what was heard of it, deletes the items after it, leaves earlier ones alone.
"""

from __future__ import annotations

from typing import Any

import pytest

from s2s import EventType, Role
from s2s.conversation import Message

from .test_openai_protocol import audio_delta, feed, make, ready, sent, types


def item_added(item: str, index: int, response: str = "resp_1", **extra: Any) -> dict[str, Any]:
    return {
        "type": "response.output_item.added",
        "response_id": response,
        "output_index": index,
        "item": {"type": "message", "id": item, "role": "assistant", **extra},
    }


def transcript(item: str, text: str, done: bool = False) -> dict[str, Any]:
    if done:
        return {
            "type": "response.output_audio_transcript.done",
            "response_id": "resp_1",
            "item_id": item,
            "transcript": text,
        }
    return {
        "type": "response.output_audio_transcript.delta",
        "response_id": "resp_1",
        "item_id": item,
        "delta": text,
    }


def two_items(proto: Any, now: float, a_ms: int = 1000, b_ms: int = 2000) -> None:
    """A preamble ``item_a`` (``a_ms``, "0123456789") then ``item_b`` (``b_ms``, 20 chars),
    all arrived at ``now``; the response is still running."""
    feed(proto, {"type": "response.created", "response": {"id": "resp_1"}}, now)
    feed(proto, item_added("item_a", 0, phase="commentary"), now)
    feed(proto, transcript("item_a", "0123456789"), now)
    feed(proto, audio_delta("item_a", a_ms), now)
    feed(proto, item_added("item_b", 1, phase="final_answer"), now)
    feed(proto, transcript("item_b", "abcdefghijklmnopqrst"), now)
    feed(proto, audio_delta("item_b", b_ms), now)


def speech(proto: Any, now: float) -> None:
    feed(proto, {"type": "input_audio_buffer.speech_started", "item_id": "u1"}, now)


def test_every_item_plays_and_history_holds_each_text():
    proto = make()
    ready(proto)
    proto.send_text("hi", 0)
    sent(proto)
    two_items(proto, now=0.0)
    feed(proto, transcript("item_a", "0123456789", done=True))
    feed(proto, transcript("item_b", "abcdefghijklmnopqrst", done=True))
    feed(proto, {"type": "response.done", "response": {"id": "resp_1", "status": "completed"}})
    audio = [e.item_id for e in proto.events_received() if e.type is EventType.AUDIO_OUTPUT]
    assert audio == ["item_a", "item_b"]
    assert proto.conversation.messages() == [
        Message(Role.USER, "hi"),
        Message(Role.ASSISTANT, "0123456789", "item_a"),
        Message(Role.ASSISTANT, "abcdefghijklmnopqrst", "item_b"),
    ]


def test_barge_in_during_the_first_item_truncates_it_and_deletes_the_second():
    proto = make()
    ready(proto)
    two_items(proto, now=100.0)
    speech(proto, now=100.5)  # wall clock: 500 ms of the 1000 ms preamble
    assert sent(proto) == [
        {
            "type": "conversation.item.truncate",
            "item_id": "item_a",
            "content_index": 0,
            "audio_end_ms": 500,
        },
        {"type": "conversation.item.delete", "item_id": "item_b"},
    ]
    interrupted = proto.events_received()[-1]
    assert interrupted.type is EventType.INTERRUPTED and interrupted.item_id == "item_a"
    assert [m.item_id for m in proto.conversation.messages()] == ["item_a"]
    assert proto.conversation.messages()[0].text == "01234"
    # late output of either item is not played, and the done events do not undo the cut
    feed(proto, audio_delta("item_b", 100), now=100.6)
    feed(proto, transcript("item_a", "0123456789", done=True), now=100.6)
    assert proto.events_received() == [] and proto.conversation.messages()[0].text == "01234"


def test_barge_in_during_the_second_item_leaves_the_first_alone():
    proto = make()
    ready(proto)
    two_items(proto, now=0.0)
    proto.report_playback("item_b", 500)  # so item_a was played in full
    speech(proto, now=0.2)
    assert sent(proto) == [
        {
            "type": "conversation.item.truncate",
            "item_id": "item_b",
            "content_index": 0,
            "audio_end_ms": 500,  # from item_b's own first sample, not the response's
        }
    ]
    texts = {m.item_id: m.text for m in proto.conversation.messages()}
    assert texts == {"item_a": "0123456789", "item_b": "abcde"}
    feed(proto, transcript("item_a", "0123456789", done=True))  # the burst after the cut
    assert proto.conversation.messages()[0].text == "0123456789"


def test_at_the_boundary_the_unheard_second_item_is_deleted_not_truncated():
    proto = make()
    ready(proto)
    two_items(proto, now=0.0)
    proto.report_playback("item_a", 1000)
    speech(proto, now=0.1)
    assert sent(proto) == [{"type": "conversation.item.delete", "item_id": "item_b"}]
    assert [m.item_id for m in proto.conversation.messages()] == ["item_a"]


def test_items_without_audio_yet_and_later_items_of_the_cut_response_are_deleted():
    proto = make()
    ready(proto)
    feed(proto, {"type": "response.created", "response": {"id": "resp_1"}})
    feed(proto, item_added("item_a", 0))
    feed(proto, audio_delta("item_a", 1000))
    feed(proto, item_added("item_b", 1))  # no audio yet
    speech(proto, now=0.3)
    assert types(sent(proto)) == ["conversation.item.truncate", "conversation.item.delete"]
    feed(proto, item_added("item_c", 2))  # was in flight when the server cancelled
    assert sent(proto) == [{"type": "conversation.item.delete", "item_id": "item_c"}]
    assert [m.item_id for m in proto.conversation.messages()] == ["item_a"]


def test_interrupt_during_the_second_item_cancels_and_truncates_it():
    proto = make()
    ready(proto)
    two_items(proto, now=0.0)
    proto.interrupt(now=1.25)  # 1000 ms of item_a, then 250 ms of item_b
    frames = sent(proto)
    assert types(frames) == ["response.cancel", "conversation.item.truncate"]
    assert frames[1]["item_id"] == "item_b" and frames[1]["audio_end_ms"] == 250


@pytest.mark.parametrize("reported", [None, 5000])
def test_a_fully_played_two_item_answer_is_left_alone(reported):
    proto = make()
    ready(proto)
    two_items(proto, now=0.0)
    feed(proto, {"type": "response.done", "response": {"id": "resp_1", "status": "completed"}})
    if reported is not None:
        proto.report_playback("item_b", reported)
    speech(proto, now=3.5)
    assert sent(proto) == []
    assert proto.events_received()[-1].type is EventType.SPEECH_STARTED
