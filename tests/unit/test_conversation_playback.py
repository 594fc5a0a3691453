from s2s.conversation import Conversation, FunctionCall, FunctionOutput, Message
from s2s.events import Role
from s2s.playback import MAX_TIMELINES, PlaybackTracker
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


def test_items_of_one_group_play_one_after_another_from_its_first_audio():
    tracker = PlaybackTracker()
    tracker.on_audio("a", 1000, now=10.0, group="r")
    tracker.on_audio("b", 2000, now=10.2, group="r")  # arrives early, plays after a
    assert tracker.played_ms("a", now=10.5) == 500 and tracker.played_ms("b", now=10.5) == 0
    assert tracker.played_ms("a", now=11.3) == 1000 and tracker.played_ms("b", now=11.3) == 300
    head = tracker.playhead("b", now=11.3)
    assert head is not None and (head.item_id, head.played_ms) == ("b", 300)
    assert head.before == ("a",) and head.after == () and not head.finished
    assert tracker.playhead("a", now=20.0).finished  # all 3000 ms heard


def test_a_report_of_a_later_item_means_the_earlier_ones_were_played():
    tracker = PlaybackTracker()
    tracker.on_audio("a", 1000, now=0.0, group="r")
    tracker.on_audio("b", 2000, now=0.0, group="r")
    assert tracker.report("b", 300)
    assert tracker.played_ms("a", now=0.0) == 1000 and tracker.played_ms("b", now=0.0) == 300
    assert tracker.report("a", 400)
    head = tracker.playhead("a", now=9.0)
    assert (head.item_id, head.played_ms, head.after) == ("a", 400, ("b",))
    assert tracker.report("a", 1000)  # the end of a is the start of b: b plays, 0 ms heard
    head = tracker.playhead("a", now=9.0)
    assert (head.item_id, head.played_ms, head.before) == ("b", 0, ("a",))


def test_groups_are_separate_timelines_and_forgotten_whole():
    tracker = PlaybackTracker()
    tracker.on_audio("a", 1000, now=0.0, group="r1")
    tracker.on_audio("b", 1000, now=5.0, group="r2")
    assert tracker.played_ms("b", now=5.25) == 250 and tracker.latest == "b"
    tracker.on_audio("c", 500, now=5.3, group="r2")
    tracker.forget("c")
    assert tracker.latest is None and tracker.played_ms("b", now=9.0) == 0
    assert tracker.played_ms("a", now=0.5) == 500


def test_only_recent_timelines_are_kept():
    tracker = PlaybackTracker()
    for n in range(MAX_TIMELINES + 1):
        tracker.on_audio(f"item_{n}", 100, now=float(n), group=f"resp_{n}")
    assert not tracker.report("item_0", 10)  # the oldest was forgotten
    assert tracker.report("item_1", 10) and tracker.latest == f"item_{MAX_TIMELINES}"
