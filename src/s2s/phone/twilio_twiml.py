"""The TwiML a voice webhook answers, read the way Twilio reads it (sans-I/O).

:func:`parse_connect` reads the first answer of a call: a ``<Response>`` that reaches a
``<Connect><Stream url=…>`` (``<Parameter name value>`` children become the stream's custom
parameters). Verbs before ``<Connect>`` (``<Say>``, ``<Play>``, ``<Pause>``) run first; the
verbs after ``</Connect>`` run only once the server has closed the stream.
:func:`parse_verbs` reads a later document (the answer to a ``<Redirect>``).

The stream URL is resolved like Twilio: a relative URL against the document's URL (http→ws,
https→wss), and the query string and fragment are dropped. Anything Twilio would not accept
raises :class:`TwimlError` naming what was wrong.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit, urlunsplit

from .twilio_errors import TwimlError

__all__ = [
    "ConnectStream",
    "Dial",
    "Hangup",
    "Pause",
    "Play",
    "Redirect",
    "Say",
    "TwimlError",
    "Unsupported",
    "Verb",
    "parse_connect",
    "parse_verbs",
]


@dataclass(frozen=True, slots=True)
class Say:
    text: str


@dataclass(frozen=True, slots=True)
class Play:
    url: str


@dataclass(frozen=True, slots=True)
class Pause:
    seconds: float


@dataclass(frozen=True, slots=True)
class Redirect:
    """Fetch ``url`` (absolute) with ``method`` and run its TwiML."""

    url: str
    method: str = "POST"


@dataclass(frozen=True, slots=True)
class Hangup:
    pass


@dataclass(frozen=True, slots=True)
class Dial:
    """Transfer to ``target``: a number, ``sip:`` URI, queue, client or conference name."""

    target: str
    kind: str = "Number"


@dataclass(frozen=True, slots=True)
class Unsupported:
    """A verb the simulator does not run (``<Gather>``, ``<Record>``, a second ``<Connect>``)."""

    verb: str


Verb = Say | Play | Pause | Redirect | Hangup | Dial | Unsupported


@dataclass(frozen=True, slots=True)
class ConnectStream:
    """A ``<Connect><Stream>`` answer.

    Attributes:
        url: the URL Twilio dials: absolute, ``ws``/``wss``, no query string or fragment.
        written_url: the ``url`` attribute as written in the TwiML.
        parameters: the ``<Parameter>`` children, in document order.
        before: verbs before ``<Connect>``; after: verbs after ``</Connect>``.
    """

    url: str
    written_url: str
    parameters: dict[str, str] = field(default_factory=dict)
    before: tuple[Verb, ...] = ()
    after: tuple[Verb, ...] = ()
    name: str | None = None


_DIAL_NOUNS = ("Number", "Sip", "Queue", "Client", "Conference")
_STREAM_SCHEMES = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}


def _tag(element: ET.Element) -> str:
    return element.tag.rsplit("}", 1)[-1]


def _text(element: ET.Element) -> str:
    return " ".join("".join(element.itertext()).split())


def _root(twiml: str) -> ET.Element:
    try:
        root = ET.fromstring(twiml)
    except ET.ParseError as exc:
        raise TwimlError(f"TwiML is not well-formed XML ({exc}): {twiml[:120]!r}") from None
    if _tag(root) != "Response":
        raise TwimlError(f"TwiML root element must be <Response>, got <{_tag(root)}>")
    return root


def _verb(element: ET.Element, base_url: str) -> Verb:
    tag = _tag(element)
    if tag == "Say":
        return Say(_text(element))
    if tag == "Play":
        return Play(urljoin(base_url, _text(element)))
    if tag == "Pause":
        length = element.get("length", "1")
        try:
            return Pause(float(length))
        except ValueError:
            raise TwimlError(f"<Pause length={length!r}> is not a number") from None
    if tag == "Hangup":
        return Hangup()
    if tag == "Redirect":
        target = _text(element)
        if not target:
            raise TwimlError("<Redirect> has no URL")
        method = element.get("method", "POST").upper()
        if method not in ("GET", "POST"):
            raise TwimlError(f"<Redirect method={method!r}> must be GET or POST")
        return Redirect(urljoin(base_url, target), method)
    if tag == "Dial":
        for child in element:
            if _tag(child) in _DIAL_NOUNS and _text(child):
                return Dial(_text(child), _tag(child))
        if _text(element):
            return Dial(_text(element))
        raise TwimlError("<Dial> names no number, <Sip>, <Queue>, <Client> or <Conference>")
    return Unsupported(tag)


def _stream_url(written: str, base_url: str) -> str:
    written = written.strip()
    if not written:
        raise TwimlError("<Stream> has no url attribute")
    if urlsplit(written).scheme:
        # Absolute: dialled exactly as written, less the query string (and fragment).
        url = written.split("#", 1)[0].split("?", 1)[0]
        if urlsplit(url).scheme not in ("ws", "wss"):
            raise TwimlError(f"<Stream url={written!r}> must be a ws:// or wss:// URL")
    else:
        # Relative: resolved against the webhook URL, http(s) becoming ws(s).
        parts = urlsplit(urljoin(base_url, written))
        scheme = _STREAM_SCHEMES.get(parts.scheme)
        if scheme is None:
            raise TwimlError(f"<Stream url={written!r}> resolves to {parts.scheme}:, not ws(s)")
        url = urlunsplit((scheme, parts.netloc, parts.path, "", ""))
    if not urlsplit(url).netloc:
        raise TwimlError(f"<Stream url={written!r}> has no host")
    return url


def _stream(connect: ET.Element, base_url: str) -> tuple[str, str, dict[str, str], str | None]:
    streams = [child for child in connect if _tag(child) == "Stream"]
    if not streams:
        found = ", ".join(f"<{_tag(child)}>" for child in connect) or "nothing"
        raise TwimlError(f"<Connect> holds no <Stream> (found {found})")
    stream = streams[0]
    written = stream.get("url", "")
    parameters: dict[str, str] = {}
    for child in stream:
        if _tag(child) != "Parameter":
            continue
        name, value = child.get("name"), child.get("value")
        if not name or value is None:
            raise TwimlError(f"<Parameter> needs both name and value, got {child.attrib!r}")
        parameters[name] = value
    return _stream_url(written, base_url), written, parameters, stream.get("name")


def parse_connect(twiml: str, base_url: str) -> ConnectStream:
    """Read a voice webhook answer fetched from ``base_url``."""
    root = _root(twiml)
    children = list(root)
    index = next((i for i, child in enumerate(children) if _tag(child) == "Connect"), None)
    if index is None:
        found = ", ".join(f"<{_tag(child)}>" for child in children) or "nothing"
        raise TwimlError(f"TwiML has no <Connect><Stream> (found {found})")
    before = tuple(_verb(child, base_url) for child in children[:index])
    for verb in before:
        if not isinstance(verb, Say | Play | Pause):
            raise TwimlError(f"TwiML ends the call before <Connect>: {verb!r} comes first")
    url, written, parameters, name = _stream(children[index], base_url)
    after = tuple(_verb(child, base_url) for child in children[index + 1 :])
    return ConnectStream(url, written, parameters, before, after, name)


def parse_verbs(twiml: str, base_url: str) -> tuple[Verb, ...]:
    """The verbs of a TwiML document fetched from ``base_url``, in order."""
    return tuple(_verb(child, base_url) for child in _root(twiml))
