"""Phone platform simulators: clients that behave like Twilio (and Genesys).

They call a deployment the way the platform would, check what it sends back as strictly as the
platform does, and record a timeline tests can assert on. :class:`Playout` is the platforms'
real-time playback queue, shared by the simulators. Submodules load on first use, so the
Twilio simulator's HTTP client and ``twilio`` package are imported only when it is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .playout import Cleared, Playout
    from .twilio import TwilioAccount, TwilioCall
    from .twilio_errors import (
        CallEndedError,
        SimulatorTaskError,
        StreamConnectError,
        StreamRefusedError,
        TwilioError,
        TwimlError,
        WebhookError,
    )
    from .twilio_timeline import (
        AudioReceived,
        CallOutcome,
        ClearReceived,
        DtmfSent,
        MarkEcho,
        MarkReceived,
        StopSent,
        StreamClosed,
        Timeline,
        Violation,
    )

_HOME = {
    "Cleared": "playout",
    "Playout": "playout",
    "TwilioAccount": "twilio",
    "TwilioCall": "twilio",
    "CallEndedError": "twilio_errors",
    "SimulatorTaskError": "twilio_errors",
    "StreamConnectError": "twilio_errors",
    "StreamRefusedError": "twilio_errors",
    "TwilioError": "twilio_errors",
    "TwimlError": "twilio_errors",
    "WebhookError": "twilio_errors",
    "AudioReceived": "twilio_timeline",
    "CallOutcome": "twilio_timeline",
    "ClearReceived": "twilio_timeline",
    "DtmfSent": "twilio_timeline",
    "MarkEcho": "twilio_timeline",
    "MarkReceived": "twilio_timeline",
    "StopSent": "twilio_timeline",
    "StreamClosed": "twilio_timeline",
    "Timeline": "twilio_timeline",
    "Violation": "twilio_timeline",
}

__all__ = [
    "AudioReceived",
    "CallEndedError",
    "CallOutcome",
    "ClearReceived",
    "Cleared",
    "DtmfSent",
    "MarkEcho",
    "MarkReceived",
    "Playout",
    "SimulatorTaskError",
    "StopSent",
    "StreamClosed",
    "StreamConnectError",
    "StreamRefusedError",
    "Timeline",
    "TwilioAccount",
    "TwilioCall",
    "TwilioError",
    "TwimlError",
    "Violation",
    "WebhookError",
]


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 's2s.phone' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


# The Genesys Audio Connector simulator, loaded on first use like the rest.
if TYPE_CHECKING:
    from .genesys import GenesysCall, GenesysCredentials
    from .genesys_signature import SignatureOptions
    from .genesys_timeline import (
        GenesysConnectError,
        GenesysError,
        GenesysOutcome,
        GenesysSessionError,
        GenesysTimeline,
        OpenedInfo,
    )

_HOME.update(
    {
        "GenesysCall": "genesys",
        "GenesysCredentials": "genesys",
        "SignatureOptions": "genesys_signature",
        "GenesysConnectError": "genesys_timeline",
        "GenesysError": "genesys_timeline",
        "GenesysOutcome": "genesys_timeline",
        "GenesysSessionError": "genesys_timeline",
        "GenesysTimeline": "genesys_timeline",
        "OpenedInfo": "genesys_timeline",
    }
)
__all__ += [
    "GenesysCall",
    "GenesysConnectError",
    "GenesysCredentials",
    "GenesysError",
    "GenesysOutcome",
    "GenesysSessionError",
    "GenesysTimeline",
    "OpenedInfo",
    "SignatureOptions",
]
