"""The Ray layer's session actors: one named, detached actor per live call."""

from .handles import SessionHandle, get_or_create, lookup
from .spec import SessionSpec

__all__ = ["SessionHandle", "SessionSpec", "get_or_create", "lookup"]
