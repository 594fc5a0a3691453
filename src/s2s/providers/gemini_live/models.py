"""What our client sends to each Gemini Live model (provider-drift §3), by model id.

The server refuses a setup it does not accept with a 1007 close *after* the handshake, and a
retired id with a 1008 "Publisher Model ... was not found"; both are found here at construction
instead, as a :class:`~s2s.errors.ConfigurationError` that names the model.

Tool behaviour is always declared explicitly, so our state matches the server's whatever the
model's default is:

* ``gemini-3.8-live`` (default NON_BLOCKING): ordinary tools are declared ``BLOCKING`` (the turn
  waits for the result, as on every other model); tools named in ``non_blocking_tools`` are
  ``NON_BLOCKING`` and their results carry ``scheduling``.
* ``gemini-3.8-live-extended-thinking`` (asynchronous only: BLOCKING and ``scheduling`` are
  refused): every tool is declared ``NON_BLOCKING`` and no result carries ``scheduling`` (the
  server speaks it when idle); a ``non_blocking_tools`` scheduling other than ``when_idle`` is a
  configuration error. A level is required: LOW unless the user gives one; MINIMAL is refused.
* ``gemini-3.1-flash-live-preview`` accepts NON_BLOCKING but still waits for the result, so
  ``non_blocking_tools`` is refused there rather than promising what the model does not do.
* Unknown ids (a model newer than this table) get the ordinary rules: tools declared, no thinking
  setting unless the user gives one.

Every ``clientContent`` turn carries an explicit ``user``/``model`` role (3.1 and 3.8 close 1007
without one); see :mod:`.replay`.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "LEVELS",
    "MODELS",
    "RETIRED",
    "ClientRules",
    "rules_for",
]

#: ``thinkingLevel`` values, in order.
LEVELS = ("MINIMAL", "LOW", "MEDIUM", "HIGH")


@dataclass(frozen=True, slots=True)
class ClientRules:
    """What we may send to one model."""

    #: ``thinkingLevel`` values the model accepts (empty: none is sent).
    thinking_levels: tuple[str, ...] = ()
    #: The level sent when the user gives none (None: no level).
    default_level: str | None = None
    #: ``thinkingBudget`` accepted.
    thinking_budget: bool = False
    #: ``behavior: BLOCKING`` accepted (False: every tool is declared NON_BLOCKING).
    blocking: bool = True
    #: NON_BLOCKING honoured (False: the model waits for every result).
    non_blocking: bool = True
    #: ``FunctionResponse.scheduling`` accepted.
    scheduling: bool = True
    #: Turns report ``interactionStatus``.
    interaction_status: bool = False
    #: Proactive audio is always on (``proactive_audio=False`` is refused).
    always_proactive: bool = False


#: Rules for a model this table does not know.
UNKNOWN = ClientRules(thinking_levels=LEVELS, thinking_budget=True)

MODELS: MappingProxyType[str, ClientRules] = MappingProxyType(
    {
        "gemini-3.8-live": ClientRules(always_proactive=True),
        "gemini-3.8-live-extended-thinking": ClientRules(
            thinking_levels=("LOW", "MEDIUM", "HIGH"),
            default_level="LOW",
            blocking=False,
            scheduling=False,
            interaction_status=True,
            always_proactive=True,
        ),
        "gemini-3.1-flash-live-preview": ClientRules(
            thinking_levels=LEVELS, thinking_budget=True, non_blocking=False
        ),
        "gemini-2.5-flash-native-audio-preview-12-2025": ClientRules(thinking_budget=True),
        "gemini-2.5-flash-native-audio-preview-09-2025": ClientRules(thinking_budget=True),
    }
)

#: Shut-down ids and what replaced them (§3.5).
RETIRED: MappingProxyType[str, str] = MappingProxyType(
    {
        "gemini-2.0-flash-live-001": "gemini-2.5-flash-native-audio-preview-12-2025",
        "gemini-live-2.5-flash-preview": "gemini-2.5-flash-native-audio-preview-12-2025",
        "gemini-2.0-flash-exp": "gemini-3.8-live",
    }
)


def rules_for(model: str) -> ClientRules:
    """The rules of ``model`` (an id without ``models/``); unknown ids get :data:`UNKNOWN`."""
    return MODELS.get(model, UNKNOWN)
