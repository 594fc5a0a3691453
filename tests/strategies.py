"""Hypothesis strategies for the API's inputs: JSON of any shape, control messages and session
bodies close enough to valid ones to reach deep into validation."""

from __future__ import annotations

from hypothesis import strategies as st

__all__ = ["control_like", "json_values", "session_like"]

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=24,
)
control_like = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            ["text", "interrupt", "end_turn", "playback", "tool_result", "ping", "close", "x"]
        )
    },
    optional={
        "text": json_values,
        "item_id": json_values,
        "played_ms": st.floats() | st.integers() | st.text(max_size=5),
        "call_id": json_values,
        "content": json_values,
        "is_error": json_values,
    },
)
session_like = st.fixed_dictionaries(
    {},
    optional={
        "session_id": st.text(max_size=70) | json_values,
        "provider": st.sampled_from(["openai_realtime", "gemini_live", "nova", "acme"])
        | json_values,
        "model": st.sampled_from(["gpt-realtime", "gemini-2.5-flash-native-audio", "a?b"])
        | st.text(max_size=20),
        "voice": st.sampled_from(["marin", "Puck", "x" * 200]) | st.text(max_size=20),
        "instructions": st.text(max_size=50) | json_values,
        "tools": st.lists(st.sampled_from(["lookup_order", "check_balance", "rocket"]), max_size=3)
        | json_values,
        "client_tools": st.lists(
            st.fixed_dictionaries(
                {"name": st.text(max_size=12)},
                optional={"description": json_values, "parameters": json_values},
            ),
            max_size=3,
        ),
        "sample_rate": st.integers() | json_values,
        "metadata": json_values,
        "extra": st.dictionaries(
            st.sampled_from(
                ["turn_detection", "vad_threshold", "speed", "api_key", "base_url", "temperature"]
            )
            | st.text(max_size=8),
            json_values,
            max_size=4,
        ),
    },
)
