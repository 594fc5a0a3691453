"""A phone call's session request, its built-in tools and its outcome (no I/O)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from deployments.telephony.calls import (
    END_CALL,
    TRANSFER_CALL,
    CallOutcome,
    builtin_tools,
    call_request,
    decide,
)
from s2s.service.config import ServiceConfig
from s2s.service.telephony_config import TelephonySettings

SETTINGS = TelephonySettings(
    provider="openai_realtime",
    instructions="You answer acme's line.",
    transfer_targets={"billing": "+18005550123", "support": "sip:support@pbx.example"},
)


def test_the_session_of_a_call_is_8khz_mulaw_with_the_tenant_defaults_and_the_call_identity():
    request = call_request(
        ServiceConfig(),
        SETTINGS,
        platform="twilio",
        call_id="CA1",
        caller="+15555550100",
        called="+18005550199",
    )
    assert (request.sample_rate, request.audio_format) == (8000, "pcmu")
    assert request.instructions == "You answer acme's line."
    assert request.metadata["telephony"] == {
        "platform": "twilio",
        "call_id": "CA1",
        "from": "+15555550100",
        "to": "+18005550199",
    }
    assert [t.name for t in request.client_tools] == [END_CALL, TRANSFER_CALL]


def test_the_builtin_tools_follow_the_settings():
    assert builtin_tools(TelephonySettings(end_call=False)) == []
    (transfer,) = builtin_tools(SETTINGS.model_copy(update={"end_call": False}))
    assert transfer.parameters["properties"]["target"]["enum"] == ["billing", "support"]


def test_a_transfer_to_a_configured_target_decides_the_outcome():
    outcome, result = decide(SETTINGS, TRANSFER_CALL, {"target": "billing", "summary": "bill"})
    assert outcome == CallOutcome("transfer", "transferred", "billing", "+18005550123", "bill")
    assert "Transferring to billing" in result
    variables = outcome.output_variables("sid-1")
    assert variables["nextAction"] == "transfer" and variables["queue"] == "+18005550123"
    assert all(isinstance(value, str) for value in variables.values())  # Architect: strings


def test_an_unknown_target_is_refused_with_the_valid_ones():
    outcome, result = decide(SETTINGS, TRANSFER_CALL, {"target": "the-moon"})
    assert outcome is None and "billing, support" in result


def test_end_call_hangs_up_with_a_bounded_summary():
    outcome, result = decide(SETTINGS, END_CALL, {"summary": "x" * 5000})
    assert outcome is not None and outcome.action == "hangup" and outcome.reason == "end_call"
    assert len(outcome.summary) == 500 and "goodbye" in result
    assert CallOutcome.from_json(outcome.to_json()) == outcome


@pytest.mark.parametrize(
    "targets",
    [{"bad name!": "+1800"}, {"billing": "<Dial>+1800</Dial>"}],
)
def test_transfer_targets_that_could_inject_twiml_are_refused(targets):
    with pytest.raises(ValidationError, match="transfer target"):
        TelephonySettings(transfer_targets=targets)
