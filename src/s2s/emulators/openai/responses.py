"""Responses: ``response.create`` / ``response.cancel``, what to answer, ``response.done``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from .. import behavior
from . import events as ev
from .base import SessionBase
from .failures import ResponseFailure, failure_for

__all__ = ["ResponsesMixin"]


@dataclass(slots=True)
class _Response:
    id: str
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    reason: str = ""
    task: asyncio.Task[None] | None = None


class ResponsesMixin(SessionBase):
    """The response lifecycle for :class:`~.session.EmulatedSession`."""

    # -- responses -----------------------------------------------------------------------------

    async def _on_response_create(self, data: dict[str, Any], event_id: str | None) -> None:
        if self._response is not None:
            await self.error(
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: {self._response.id}. "
                "Wait until the response is finished before creating a new one.",
                event_id=event_id,
            )
            return
        params = data.get("response") or {}
        await self._start_response(params.get("output_modalities"))

    async def _on_response_cancel(self, data: dict[str, Any], event_id: str | None) -> None:
        response = self._response
        wanted = data.get("response_id")
        if response is None or (wanted and wanted != response.id):
            await self.error(
                "response_cancel_not_active",
                "Cancellation failed: no active response found.",
                event_id=event_id,
            )
            return
        await self._cancel(response, "client_cancelled")

    async def _cancel(self, response: _Response, reason: str) -> None:
        response.reason = reason
        response.cancel.set()
        if response.task is not None:
            await asyncio.shield(response.task)

    async def _start_response(self, modalities: list[str] | None = None) -> None:
        response = _Response(id=self.ids.new("resp"))
        self._response = response
        modalities = modalities or list(self.session.get("output_modalities") or ["audio"])
        response.task = self._tasks.spawn(self._run_response(response, modalities))

    def _plan(self) -> tuple[list[behavior.ToolRequest], str]:
        """What to answer: tool calls to make, or the text to say."""
        last_model = max(
            (
                i
                for i, item in enumerate(self.items)
                if item.role == "assistant" or item.type == "function_call"
            ),
            default=-1,
        )
        tail = self.items[last_model + 1 :]
        outputs = [item for item in tail if item.type == "function_call_output"]
        if outputs:
            calls = {i.call_id: i.name for i in self.items if i.type == "function_call"}
            return [], behavior.reply_for_tool_outputs(
                [(calls.get(o.call_id) or "unknown", o.output or "") for o in outputs]
            )
        users = [item for item in tail if item.role == "user"]
        if not users:
            return [], "Hello! How can I help you today?"
        user = users[-1]
        earlier = [
            i.text for i in self.items[: self.items.index(user)] if i.role == "user" and i.text
        ]
        if user.audio:
            return [], behavior.reply_for_audio(user.heard_s)
        requests = behavior.parse_tool_requests(user.text)
        if requests:
            declared = {t.get("name") for t in self.session.get("tools") or []}
            known = [r for r in requests if r.name in declared]
            if known:
                return known, ""
            return [], behavior.reply_for_unknown_tools([r.name for r in requests])
        return [], behavior.reply_for_text(user.text, earlier)

    async def _run_response(self, response: _Response, modalities: list[str]) -> None:
        voice = str((self.session["audio"]["output"].get("voice")) or "alloy")
        output_format = dict(self.session["audio"]["output"].get("format") or {}) or None
        await self.send(
            {
                "type": "response.created",
                "event_id": self.ids.event(),
                "response": ev.response_object(
                    response.id,
                    self.conversation_id,
                    "in_progress",
                    [],
                    modalities,
                    voice,
                    audio_format=output_format,
                ),
            }
        )
        try:
            if self.options.response_delay_s:
                await asyncio.wait_for(response.cancel.wait(), self.options.response_delay_s)
        except TimeoutError:
            pass
        if self.options.fail_responses is not None:
            failure = failure_for(self.options.fail_responses)
            await self._fail(response, failure, modalities, voice, output_format)
            return
        calls, text = self._plan()
        output: list[dict[str, Any]] = []
        status = "completed"
        if calls and not response.cancel.is_set():
            for index, request in enumerate(calls):
                output.append(await self._emit_call(response, index, request))
        elif not response.cancel.is_set():
            items = await self._emit_messages(response, self._parts(text), modalities)
            output.extend(item.wire() for item in items)
            text = " ".join(item.text for item in items)
        if response.cancel.is_set():
            status = "cancelled"
        prompt_chars = sum(len(i.text) for i in self.items)
        spoken = sum(len(i.text) for i in self.items if i.role == "assistant")
        audio_in = int(sum(i.heard_s for i in self.items) * 10)
        done = ev.response_object(
            response.id,
            self.conversation_id,
            status,
            output,
            modalities,
            voice,
            usage=ev.usage(
                prompt_chars // 4 + 1,
                audio_in,
                len(text) // 4 + 1 if text else 0,
                int(len(text) * 0.6) if "audio" in modalities else 0,
            ),
            status_details=(
                {"type": "cancelled", "reason": response.reason} if status == "cancelled" else None
            ),
            audio_format=output_format,
        )
        self._response = None
        await self.send({"type": "response.done", "event_id": self.ids.event(), "response": done})
        await self.send(
            {
                "type": "rate_limits.updated",
                "event_id": self.ids.event(),
                "rate_limits": ev.rate_limits(400000 - spoken - prompt_chars),
            }
        )

    def _parts(self, text: str) -> list[tuple[str, str | None]]:
        """The items an answer is spoken in: a preamble first for gpt-realtime-2 models."""
        if not self.options.preamble_for(self.model):
            return [(text, None)]
        phase = self.options.phase
        return [
            (self.options.preamble_text, "commentary" if phase else None),
            (text, "final_answer" if phase else None),
        ]

    async def _fail(
        self,
        response: _Response,
        failure: ResponseFailure,
        modalities: list[str],
        voice: str,
        output_format: dict[str, Any] | None,
    ) -> None:
        """Fail ``response`` as production does for ``failure`` (see :mod:`.failures`)."""
        if failure.terminal:
            await self.error(failure.code, failure.message, type=failure.type)
        else:
            self.options.fail_responses = None  # a rate limit fails one response
        details = {"type": "failed", "error": {"type": failure.type, "code": failure.code}}
        done = ev.response_object(
            response.id,
            self.conversation_id,
            "failed",
            [],
            modalities,
            voice,
            status_details=details,
            audio_format=output_format,
        )
        self._response = None
        await self.send({"type": "response.done", "event_id": self.ids.event(), "response": done})
        if failure.terminal:
            await self._close(failure.close_code, f"{failure.type}.{failure.code}")
