"""The one error a protocol raises for input after its connection closed."""

from __future__ import annotations

from ...errors import SessionClosedError

__all__ = ["check_open"]


def check_open(closed: bool, provider: str, what: str) -> None:
    """Raise :class:`SessionClosedError` naming ``what`` when ``closed``.

    The session runtime holds input during a connection switch, so this only fires for input
    that reached a connection after it ended (a bug above, or the application racing a close).
    """
    if closed:
        raise SessionClosedError(f"{what}: the {provider} connection is closed")
