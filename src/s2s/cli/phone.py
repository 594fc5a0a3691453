"""``s2s phone twilio|genesys``: place a call to a running service the way the platform would.

The caller is the platform simulator of :mod:`s2s.phone` (it signs, paces, plays, echoes marks
and checks every message as strictly as the platform). The command speaks a WAV file (or a
short synthetic utterance) into the call, presses keys if asked, listens until the bot has
been quiet for a while, hangs up (unless the service ended the call first), prints the
session's events as they happen (with ``--api-key``: a key of the tenant) and the outcome, and
writes what the caller heard to ``--out``. It exits 1 if the service sent anything the
platform would have rejected.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..audio.g711 import pcm16_to_ulaw, ulaw_to_pcm16
from ..audio.resample import StreamResampler
from ..audio.synth import speech_like
from ..audio.wav import read_wav, write_wav

__all__ = ["add_parser"]

#: The bot counts as done once it has sent no audio for this long.
QUIET_S = 2.5


def add_parser(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "phone",
        help="place a test call to a running service as Twilio or Genesys would",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    platforms = parser.add_subparsers(dest="platform", metavar="PLATFORM", required=True)
    twilio = platforms.add_parser(
        "twilio",
        help="a Twilio Media Streams call (voice webhook, then <Connect><Stream>)",
        description="Call POST {url}/v1/telephony/twilio/{tenant}/voice, signed with the "
        "account's auth token, and stream the call Twilio's way.",
    )
    twilio.add_argument(
        "--auth-token",
        default=os.environ.get("TWILIO_AUTH_TOKEN"),
        help="the tenant's Twilio auth token (default: $TWILIO_AUTH_TOKEN)",
    )
    twilio.add_argument("--from", dest="caller", default="+15555550100", help="caller number")
    twilio.add_argument("--to", dest="called", default="+18005550199", help="number dialled")
    genesys = platforms.add_parser(
        "genesys",
        help="a Genesys Cloud Audio Connector session (AudioHook v2)",
        description="Open WS {url}/v1/telephony/genesys/{tenant} with X-API-KEY (and the "
        "HTTP message signature when a client secret is given) and stream the call Genesys' way.",
    )
    genesys.add_argument(
        "--client-secret",
        default=os.environ.get("GENESYS_CLIENT_SECRET"),
        help="the integration's client secret, base64 (default: $GENESYS_CLIENT_SECRET)",
    )
    genesys.add_argument(
        "--probe", action="store_true", help="only the connection probe Genesys sends on save"
    )
    for platform in (twilio, genesys):
        platform.add_argument("url", help="the service's base URL, e.g. http://127.0.0.1:8000")
        platform.add_argument("--tenant", required=True, help="the tenant whose line to call")
        platform.add_argument(
            "--api-key",
            default=os.environ.get("S2S_API_KEY"),
            help="a key of the tenant: prints the call's events (Genesys: also X-API-KEY; "
            "default: $S2S_API_KEY)",
        )
        platform.add_argument("--wav", type=Path, help="what the caller says (any WAV, mono)")
        platform.add_argument(
            "--press",
            action="append",
            default=[],
            metavar="DIGIT@SECONDS",
            help="press a key that many seconds into the call (repeatable), e.g. 4@3.5",
        )
        platform.add_argument(
            "--max-seconds", type=float, default=60.0, help="hang up after this long at most"
        )
        platform.add_argument(
            "--out",
            type=Path,
            default=Path("phone-reply.wav"),
            help="where to write what the caller heard (8 kHz WAV)",
        )
    parser.set_defaults(run=run)


def caller_audio(path: Path | None) -> bytes:
    """μ-law 8 kHz of ``path`` (resampled as needed), or 1.5 s of synthetic speech."""
    if path is None:
        return pcm16_to_ulaw(speech_like(1.5, 8000))
    pcm, rate = read_wav(path)
    resampler = StreamResampler(rate, 8000)
    return pcm16_to_ulaw(resampler.process(pcm) + resampler.flush())


def key_presses(specs: list[str]) -> list[tuple[float, str]]:
    presses = []
    for spec in specs:
        digit, _, at = spec.partition("@")
        try:
            presses.append((float(at or 0), digit))
        except ValueError:
            raise SystemExit(f"--press {spec!r}: use DIGIT@SECONDS, e.g. 4@3.5") from None
    return sorted(presses)


async def run(args: argparse.Namespace) -> int:
    base = args.url.rstrip("/")
    if args.platform == "twilio":
        if not args.auth_token:
            print("s2s phone twilio: give --auth-token or set $TWILIO_AUTH_TOKEN", file=sys.stderr)
            return 2
        call: Any = await _twilio(args, base)
    else:
        if not args.api_key:
            print("s2s phone genesys: give --api-key or set $S2S_API_KEY", file=sys.stderr)
            return 2
        call = await _genesys(args, base)
    if call is None:
        return 0
    async with call:
        printer = asyncio.create_task(_print_events(args, base, call))
        try:
            ended = await _converse(args, call)
            if not ended:
                await call.hang_up()
            outcome = await call.finished(15)
        finally:
            printer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await printer
    heard = ulaw_to_pcm16(bytes(call.playout.played))
    write_wav(args.out, heard, 8000)
    print(f"outcome: {outcome}")
    print(f"heard {len(heard) / 16000:.1f} s of the bot -> {args.out}")
    if call.violations:
        print(f"{len(call.violations)} message(s) the platform would reject:", file=sys.stderr)
        for violation in call.violations:
            print(f"  {violation}", file=sys.stderr)
        return 1
    return 0


async def _twilio(args: argparse.Namespace, base: str) -> Any:
    from ..phone import TwilioCall

    url = f"{base}/v1/telephony/twilio/{args.tenant}/voice"
    call = await TwilioCall.place(
        url, auth_token=args.auth_token, from_=args.caller, to=args.called
    )
    print(f"twilio call {call.call_sid}: session {call.parameters.get('session_id', '?')}")
    return call


async def _genesys(args: argparse.Namespace, base: str) -> Any:
    from ..phone.genesys import GenesysCall, GenesysCredentials

    url = "ws" + base[4:] if base.startswith("http") else base
    credentials = GenesysCredentials(api_key=args.api_key, client_secret=args.client_secret)
    call = await GenesysCall.connect(
        f"{url}/v1/telephony/genesys/{args.tenant}", credentials, probe=args.probe
    )
    print(f"genesys session {call.session_id}: opened with {call.opened.media}")
    if args.probe:
        outcome = await call.finished(15)
        await call.aclose()
        print(f"probe answered: {outcome}")
        return None
    return call


def _bot_audio_times(call: Any) -> list[float]:
    timeline = call.timeline
    entries = getattr(timeline, "audio", None) or getattr(timeline, "bot_frames", [])
    return [entry.at for entry in entries]


async def _converse(args: argparse.Namespace, call: Any) -> bool:
    """Speak, press keys, listen; True if the service ended the call meanwhile."""
    started = time.monotonic()
    call.say_nowait(caller_audio(args.wav))
    for at, digit in key_presses(args.press):
        await asyncio.sleep(max(0.0, started + at - time.monotonic()))
        await call.press(digit)
    while time.monotonic() - started < args.max_seconds:
        if getattr(call.timeline, "closed", None) is not None or _outcome(call) is not None:
            return True
        heard = _bot_audio_times(call)
        if heard and time.monotonic() - heard[-1] > QUIET_S:
            return False
        await asyncio.sleep(0.2)
    return False


def _outcome(call: Any) -> Any:
    return getattr(call, "outcome", None) or getattr(call.timeline, "outcome", None)


async def _session_id(http: Any, base: str, call: Any) -> str | None:
    """The service's session of ``call``: a TwiML parameter, or found by the call's id."""
    parameters = getattr(call, "parameters", None)
    if parameters is not None:
        return str(parameters.get("session_id") or "") or None
    conversation = call.config.conversation_id
    for _ in range(20):  # the session is listed once the service admitted the call
        listing = (await http.get(f"{base}/v1/sessions")).json().get("sessions", [])
        for session in listing:
            if (session.get("metadata") or {}).get("telephony", {}).get("call_id") == conversation:
                return str(session["session_id"])
        await asyncio.sleep(0.25)
    return None


async def _print_events(args: argparse.Namespace, base: str, call: Any) -> None:
    """The session's events as they happen (needs a key of the tenant)."""
    import httpx

    if not args.api_key:
        return
    headers = {"Authorization": f"Bearer {args.api_key}"}
    async with httpx.AsyncClient(headers=headers, timeout=10) as lookup:
        session_id = await _session_id(lookup, base, call)
    if session_id is None:
        return
    url = f"{base}/v1/sessions/{session_id}/events"
    async with (
        httpx.AsyncClient(headers=headers, timeout=None) as http,
        http.stream("GET", url, params={"audio": "false"}) as reply,
    ):
        async for line in reply.aiter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                details = {k: v for k, v in event.items() if k not in ("type", "seq", "ts")}
                print(f"  [{event.get('seq')}] {event.get('type')} {json.dumps(details)[:160]}")
