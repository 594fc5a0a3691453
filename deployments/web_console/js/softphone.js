// The softphone: call the service from this browser's microphone and hear the model answer.
//
// "Call" opens the microphone (so a refused microphone costs no session), creates a session
// (POST /v1/sessions: PCM16 at 24 kHz, metadata channel=softphone), opens its stream
// (stream.js) and, once the stream is live, sends the microphone as 20 ms PCM16 frames
// (audio.js). The model's audio plays gap-free (Player); on speech_started or interrupted the
// page stops it at once and reports how much of the item the person heard ({"type":
// "playback", item_id, played_ms}), so the model forgets what was never heard. It also reports an item that played
// out in full, and the playing item every 100 ms (as phone platforms' marks do), because the
// service places the barge-in cut at the latest report it has when the provider hears the
// caller, before this page's own stop report arrives: a report at most 100 ms old keeps the cut
// within 100 ms of what was heard (without reports the service guesses by the wall clock, which
// is wrong whenever this page's playback runs behind the audio's arrival).
//
// The page shows its state in the DOM with stable ids and data- attributes (#call-state
// [data-state], #transcript li[data-role][data-final], #played-ms[data-ms],
// #reports[data-count], #report-log li[data-item-id][data-played-ms][data-why]); the browser
// tests read those.

import { ApiError, api, el, ms, signIn } from "./api.js";
import { Microphone, Player, pcm16ToFloat, ulawToFloat } from "./audio.js";
import { CallStream } from "./stream.js";

const SAMPLE_RATE = 24000;
const REPORT_EVERY_MS = 100;
const HANG_UP_WAIT_MS = 5000;
const REPORT_LOG_LINES = 200;

const $ = (id) => document.getElementById(id);

/** An error, named: "NotAllowedError: ...", "rate_limited (HTTP 429): ...". */
function describe(error) {
  if (error instanceof ApiError) return `${error.code} (HTTP ${error.status}): ${error.message}`;
  if (error && error.name) return `${error.name}: ${error.message}`;
  return String(error);
}

function showError(text) {
  $("error").textContent = text;
}

function setState(state, detail) {
  const badge = $("call-state");
  badge.textContent = state;
  badge.dataset.state = state;
  badge.className = "state " + state;
  if (detail !== undefined) $("state-detail").textContent = detail || state;
}

/** The transcript: one line per (role, item), partial until its final text arrives. */
class Transcript {
  constructor(list) {
    this.list = list;
    this.lines = new Map();
  }

  clear() {
    this.list.replaceChildren();
    this.lines.clear();
  }

  add(node) {
    this.list.append(node);
    this.list.scrollTop = this.list.scrollHeight;
    return node;
  }

  speech(role, itemId, text, final) {
    const key = role + ":" + (itemId || "");
    let line = this.lines.get(key);
    if (!line) {
      line = this.add(el("li", { class: role, dataset: { role, itemId: itemId || "" } }));
      line.text = "";
      this.lines.set(key, line);
    }
    line.text = final ? text : line.text + text;
    line.classList.toggle("partial", !final);
    line.dataset.final = String(Boolean(final));
    if (final) delete line.dataset.cut; // a final text means the service kept all of it
    line.replaceChildren(el("span", { class: "who" }, role === "user" ? "you" : "model"), line.text || "…");
  }

  /** The model's lines still partial were cut off by a barge-in. */
  cutOff() {
    for (const line of this.lines.values()) {
      if (line.dataset.role === "assistant" && line.dataset.final === "false" && !line.dataset.cut) {
        line.dataset.cut = "true";
        line.append(el("span", { class: "muted" }, " (cut off)"));
      }
    }
  }

  tool(text) {
    this.add(el("li", { class: "tool" }, text));
  }

  notice(text, error = false) {
    this.add(el("li", { class: error ? "notice error" : "notice" }, text));
  }
}

/** One call: its audio, its stream and its reports. */
class Call {
  constructor(phone, context) {
    this.phone = phone;
    this.context = context;
    this.session = null;
    this.stream = null;
    this.microphone = null;
    this.player = null;
    this.cut = new Set(); // items flushed by a barge-in: their late audio is not played
    this.heard = new Map(); // item id -> ms reported heard
    this.lastReport = new Map();
    this.reports = 0;
    this.timer = null;
    this.ended = false;
  }

  async start(provider) {
    const transcript = this.phone.transcript;
    this.microphone = new Microphone(this.context, {
      sampleRate: SAMPLE_RATE,
      onFrame: (frame) => this.stream?.sendAudio(frame),
      onLevel: (dbfs) => {
        $("level").firstElementChild.style.width = Math.max(0, Math.min(100, ((dbfs + 60) / 60) * 100)) + "%";
      },
      onError: (error) => this.fail(`microphone: ${describe(error)}`),
    });
    await this.microphone.start();
    if (this.ended) {
      this.microphone.stop(); // hung up while the microphone was starting
      return;
    }
    const body = { sample_rate: SAMPLE_RATE, audio_format: "pcm16", metadata: { channel: "softphone" } };
    if (provider) body.provider = provider;
    this.session = await api("POST", "/v1/sessions", body);
    const id = this.session.session_id;
    if (this.ended) {
      // hung up while the session was being created: end it too
      await api("DELETE", `/v1/sessions/${encodeURIComponent(id)}`);
      return;
    }
    $("session-id").textContent = id;
    const link = $("call-link");
    link.href = "call#id=" + encodeURIComponent(id);
    link.hidden = false;
    this.player = new Player(this.context, {
      sampleRate: this.session.sample_rate || SAMPLE_RATE,
      onItemPlayed: (itemId, playedMs) => this.report(itemId, playedMs, "played"),
    });
    this.stream = new CallStream(id, {
      onEvent: (event) => this.event(event),
      onAudio: (seq, itemId, bytes) => this.audio(itemId, bytes),
      onState: (state, detail) => this.streamState(state, detail),
      onNotice: (kind, text) => transcript.notice(text, kind === "error"),
    });
    this.stream.open();
    this.timer = setInterval(() => this.tick(), REPORT_EVERY_MS);
  }

  audio(itemId, bytes) {
    if (this.ended || this.cut.has(itemId)) return;
    const samples = this.session.audio_format === "pcmu" ? ulawToFloat(bytes) : pcm16ToFloat(bytes);
    this.player.enqueue(itemId, samples);
  }

  event(event) {
    const transcript = this.phone.transcript;
    switch (event.type) {
      case "session_started":
        transcript.notice(`call started (${event.provider || this.session.provider})`);
        break;
      case "transcript":
        transcript.speech(event.role, event.item_id, event.text || "", event.final);
        break;
      case "text_output":
        transcript.speech("assistant", event.item_id, event.text || "", event.final);
        break;
      case "speech_started":
        this.flush();
        // the caller's line takes its place now: the transcript often comes after the answer began
        if (event.item_id) transcript.speech("user", event.item_id, "", false);
        break;
      case "interrupted":
        this.flush();
        transcript.notice(`interrupted (${event.reason || "no reason given"})`);
        break;
      case "tool_call": {
        const call = event.tool_call || {};
        transcript.tool(`→ ${call.name}(${call.arguments || ""})`);
        break;
      }
      case "tool_result":
        transcript.tool(`← ${event.name || event.call_id}: ${event.content}` +
          (event.is_error ? " (error)" : "") +
          (event.latency_ms !== undefined ? ` · ${ms(event.latency_ms)}` : "") +
          (event.worker ? ` · ${event.worker}` : ""));
        break;
      case "tool_call_cancelled":
        transcript.notice(`tool calls cancelled: ${(event.call_ids || []).join(", ")}`);
        break;
      case "error": {
        const error = event.error || {};
        transcript.notice(`${error.type || "error"}${error.code ? " " + error.code : ""}: ${error.message}`, true);
        break;
      }
      case "session_resumed":
        transcript.notice(`provider connection resumed (${event.reason || "no reason given"})`);
        break;
      case "provider_skipped":
        transcript.notice(`started on ${event.to}: ${event.provider} is down for this account (${event.code})`);
        break;
      case "provider_switched":
        transcript.notice(`switched provider (${event.reason || "no reason given"})`);
        break;
      case "events_lost":
        transcript.notice("some events of this call were lost", true);
        break;
      case "session_closed":
        transcript.notice(`call ended: ${event.reason}`, Boolean(event.error));
        if (event.error) showError(`${event.error.type}: ${event.error.message}`);
        break;
      default:
        break;
    }
  }

  /** Barge-in: stop the model's audio now and report what of it was heard. */
  flush() {
    const flushed = [...this.player.items.keys()];
    const head = this.player.flush();
    for (const itemId of flushed) this.cut.add(itemId);
    if (head) {
      this.report(head.itemId, head.playedMs, "flush");
      this.phone.transcript.cutOff();
    }
  }

  /** Tell the service `playedMs` of `itemId` were heard; `why`: progress, played or flush. */
  report(itemId, playedMs, why) {
    if (this.ended || !this.stream) return;
    const value = Math.max(0, Math.round(playedMs));
    this.stream.sendControl({ type: "playback", item_id: itemId, played_ms: value });
    const log = $("report-log");
    log.append(el("li", { class: "notice", dataset: { itemId, playedMs: value, why } },
      `${why}: ${itemId} ${ms(value)}`));
    while (log.childElementCount > REPORT_LOG_LINES) log.firstElementChild.remove();
    this.lastReport.set(itemId, value);
    this.heard.set(itemId, Math.max(this.heard.get(itemId) || 0, value));
    this.reports += 1;
    this.render();
  }

  tick() {
    const head = this.player.playhead();
    if (head && head.playedMs >= 1 && Math.round(head.playedMs) !== this.lastReport.get(head.itemId)) {
      this.report(head.itemId, head.playedMs, "progress");
    }
    this.player.prune();
    this.render();
  }

  render() {
    let heard = 0;
    for (const [itemId, reported] of this.heard) heard += Math.max(reported, this.player.heardMs(itemId));
    const head = this.player.playhead();
    if (head && !this.heard.has(head.itemId)) heard += head.playedMs;
    const played = $("played-ms");
    played.dataset.ms = String(Math.round(heard));
    played.textContent = ms(heard);
    const reports = $("reports");
    reports.dataset.count = String(this.reports);
    reports.textContent = String(this.reports);
    if (this.stream) {
      const input = $("input-position");
      input.dataset.sent = String(this.stream.position);
      input.dataset.saved = String(this.stream.acked);
      input.textContent = `sent ${this.stream.position}, saved ${this.stream.acked}`;
    }
  }

  streamState(state, detail) {
    setState(state, detail);
    // The caller is heard from the moment the call is live (as on a phone, nothing said while
    // it rings is sent); from then on, input during a reconnect waits in the stream, unlost.
    if (state === "live") this.microphone.listen();
    if (state === "ended" || state === "failed") {
      if (state === "failed") showError(detail);
      this.stop();
    }
  }

  /** Hang up: ask the service to end the call, and make sure it ends. */
  async hangUp() {
    this.microphone?.stop();
    clearInterval(this.timer); // nothing more to report on a call being ended
    if (!this.stream || this.ended) {
      this.stop();
      return;
    }
    setState("ending", "hanging up");
    if (this.stream.live) this.stream.sendControl({ type: "close" });
    const ended = await new Promise((resolve) => {
      const started = Date.now();
      const poll = setInterval(() => {
        if (this.ended || Date.now() - started > (this.stream.live ? HANG_UP_WAIT_MS : 0)) {
          clearInterval(poll);
          resolve(this.ended);
        }
      }, 50);
    });
    if (!ended) {
      try {
        const result = await api("DELETE", `/v1/sessions/${encodeURIComponent(this.session.session_id)}`);
        this.stream.finish("ended", result.reason || "hung up");
      } catch (error) {
        this.fail(`hang up: ${describe(error)}`);
      }
    }
  }

  fail(text) {
    showError(text);
    this.phone.transcript.notice(text, true);
    if (this.stream && !this.stream.ended) this.stream.finish("failed", text);
    else this.stop();
  }

  /** Release everything the call holds (idempotent). */
  stop() {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.timer);
    this.microphone?.stop();
    this.stream?.close();
    if (this.player) {
      this.render();
      this.player.close();
    }
    this.context.close().catch(() => {});
    this.phone.ended(this);
  }
}

/** The page: the dial form and the call in progress, if any. */
class Softphone {
  constructor() {
    this.transcript = new Transcript($("transcript"));
    this.call = null;
    $("dial").addEventListener("submit", (event) => {
      event.preventDefault();
      this.dial();
    });
    $("hangup").addEventListener("click", () => this.call?.hangUp());
    window.addEventListener("pagehide", () => {
      if (this.call?.stream?.live) this.call.stream.sendControl({ type: "close" });
    });
  }

  async dial() {
    if (this.call) return;
    showError("");
    this.transcript.clear();
    $("report-log").replaceChildren();
    $("session-id").textContent = "–";
    $("call-link").hidden = true;
    $("call").disabled = true;
    $("hangup").disabled = false;
    setState("connecting", "creating the session");
    const context = new AudioContext({ sampleRate: 48000, latencyHint: "interactive" });
    const call = (this.call = new Call(this, context));
    try {
      await context.resume();
      await call.start($("provider").value);
    } catch (error) {
      if (call.ended) return; // hung up while dialling: what failed no longer matters
      showError(describe(error));
      setState("failed", describe(error));
      if (call.session) {
        api("DELETE", `/v1/sessions/${encodeURIComponent(call.session.session_id)}`).catch((e) =>
          showError(`${describe(error)}; ending the session failed too: ${describe(e)}`));
      }
      call.stop();
    }
  }

  ended(call) {
    if (call !== this.call) return;
    this.call = null;
    $("call").disabled = false;
    $("hangup").disabled = true;
    if ($("call-state").dataset.state !== "failed") setState("ended");
  }
}

signIn($("main"), () => {
  $("phone").hidden = false;
  $("conversation").hidden = false;
  new Softphone();
});
