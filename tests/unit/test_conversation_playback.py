from s2s.conversation import Conversation, FunctionCall, FunctionOutput, Message
from s2s.events import Role
from s2s.playback import PlaybackTracker
from s2s.protocol import Continuation


def test_conversation_tracks_pending_calls_and_round_trips():
    conv = Conversation()
    conv.append(Message(Role.USER, "", "item_1"))
    assert conv.set_text("item_1", "hello")
    conv.append(FunctionCall("call_a", "lookup", '{"id": 1}', "item_2"))
    conv.append(FunctionCall("call_b", "weather", "{}", "item_3"))
    conv.append(FunctionOutput("call_a", '"ok"'))
    assert [c.id for c in conv.pending_calls()] == ["call_b"]
    assert Conversation.from_list(conv.to_list()) == conv
    assert conv.remove("item_3") and not conv.has_item("item_3")
    assert conv.messages() == [Message(Role.USER, "hello", "item_1")]
    cont = Continuation(conversation=conv, pending_audio=b"\x01\x02", state={"h": 1}, reason="x")
    back = Continuation.from_dict(cont.to_dict())
    assert back.conversation == conv and back.pending_audio == b"\x01\x02"
    assert back.state == {"h": 1} and back.reason == "x"


def test_playback_is_wall_clock_without_reports_and_clamped_to_received():
    tracker = PlaybackTracker()
    tracker.on_audio("a", 500, now=10.0)
    tracker.on_audio("a", 500, now=10.1)
    assert tracker.played_ms("a", now=10.3) == 300
    assert tracker.played_ms("a", now=20.0) == 1000  # never beyond what arrived
    assert tracker.is_playing("a", now=10.9) and not tracker.is_playing("a", now=11.5)


def test_playback_reports_win_over_the_estimate():
    tracker = PlaybackTracker()
    tracker.on_audio("a", 1000, now=0.0)
    assert tracker.report("a", 120)
    assert tracker.played_ms("a", now=5.0) == 120
    assert tracker.report("a", 5000) and tracker.played_ms("a", now=5.0) == 1000
    assert not tracker.report("unknown", 10)
    tracker.forget("a")
    assert tracker.latest is None and tracker.played_ms("a", 0) == 0
