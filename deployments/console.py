"""The supervisor console and the browser softphone: static pages the ingress serves itself.

The pages live in ``deployments/web_console/`` (plain HTML, one stylesheet, ES modules; no build
step, no CDN, no external fonts: the service must work without internet). They hold no data:
everything they show comes from the public API with the API key the user types in (or that
``s2s up`` puts in the URL's ``#key=`` fragment, which browsers never send to a server), kept in
the tab's ``sessionStorage`` and sent as ``Authorization: Bearer`` (``?api_key=`` on the stream
WebSocket, where browsers cannot set headers). No cookies, so no other site can ride a session.

Every file is read once, at import, into memory: the replica serves the console without touching
the disk, and a request for anything not in :data:`FILES` is a 404 (no path traversal).
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from fastapi.responses import RedirectResponse, Response

from .errors import ApiError

__all__ = ["CONSOLE_DIR", "FILES", "SECURITY_HEADERS", "StaticFile", "console_file", "redirect"]

CONSOLE_DIR = Path(__file__).with_name("web_console")

#: The pages may load only what the service serves, talk only to the service (same-origin HTTP
#: and WebSocket), play audio they made themselves, and never be framed by another site.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; media-src 'self' blob:; worker-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Permissions-Policy": "microphone=(self), camera=(), geolocation=()",
    "Cache-Control": "no-cache",
}
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True, slots=True)
class StaticFile:
    """One console file: its bytes, media type and ETag."""

    body: bytes
    media_type: str
    etag: str


def _load(root: Path) -> dict[str, StaticFile]:
    files: dict[str, StaticFile] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        body = path.read_bytes()
        media_type = _TYPES.get(path.suffix) or (
            mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        )
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        files[path.relative_to(root).as_posix()] = StaticFile(body, media_type, etag)
    return files


#: Relative path (``index.html``, ``js/api.js``) -> file.
FILES = _load(CONSOLE_DIR)
#: Pages reachable without their ``.html`` suffix (``/console/call``, ``/console/softphone``).
PAGES = {"": "index.html", "call": "call.html", "softphone": "softphone.html"}


def console_file(name: str, if_none_match: str | None = None) -> Response:
    """The response for ``/console/<name>``: the file (304 if the client has it), else 404."""
    static = FILES.get(PAGES.get(name, name))
    if static is None:
        raise ApiError(404, "not_found", f"no console file {name!r}")
    headers = {**SECURITY_HEADERS, "ETag": static.etag}
    if if_none_match == static.etag:
        return Response(status_code=304, headers=headers)
    return Response(static.body, media_type=static.media_type, headers=headers)


def redirect() -> RedirectResponse:
    """``/console`` -> ``/console/`` (relative module paths in the pages need the slash)."""
    return RedirectResponse("/console/", status_code=308)
