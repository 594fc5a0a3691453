// One call, as a supervisor sees it: the live transcript of both sides (partial, then final),
// tool calls with their results, latencies and workers, provider switches and resumptions,
// errors, a timeline of turns with their response latency; listening to the model's side; and
// stepping in (guidance text to the model, interrupt, end the call) through the public API,
// under the same tenant rules as any client.

import { api, clock, el, followEvents, ms, signIn } from "./api.js";
import { Listener } from "./listen.js";

const sessionId = new URLSearchParams(location.hash.slice(1)).get("id") || "";
const path = `/v1/sessions/${encodeURIComponent(sessionId)}`;
const transcript = document.getElementById("transcript");
const facts = document.getElementById("facts");
const actionError = document.getElementById("action-error");
const feedState = document.getElementById("feed-state");

const call = { record: {}, state: "starting", startedAt: null, lastSeq: 0, ended: false };
const lines = new Map(); // role:item -> transcript <li>
const toolRows = new Map(); // call id -> {line, row}
let listener = null;

function notice(text, kind = "notice") {
  const item = el("li", { class: kind }, text);
  append(item);
  return item;
}

function append(item) {
  const atBottom = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 40;
  transcript.append(item);
  if (atBottom) transcript.scrollTop = transcript.scrollHeight;
}

function showFacts() {
  const r = call.record;
  const meta = r.metadata || {};
  const rows = [
    ["Call", sessionId],
    ["Tenant", r.tenant || "–"],
    ["Provider", [r.provider, r.model].filter(Boolean).join(" · ") || "–"],
    ["State", el("span", { class: `state ${call.state}`, id: "call-state" }, call.state.replace("_", " "))],
    ["Started", call.startedAt ? new Date(call.startedAt * 1000).toLocaleTimeString() : "–"],
    ["Duration", el("span", { id: "call-duration" }, "–")],
    ["Audio", r.audio_format ? `${r.audio_format} ${r.sample_rate} Hz` : "–"],
    ["Tools", (r.tools || []).join(", ") || "none"],
  ];
  for (const [name, value] of Object.entries(meta)) {
    rows.push([name, typeof value === "object" ? JSON.stringify(value) : String(value)]);
  }
  facts.replaceChildren(...rows.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, value)]));
  tickDuration();
}

function tickDuration() {
  const node = document.getElementById("call-duration");
  if (!node || !call.startedAt) return;
  const end = call.endedAt || Date.now() / 1000;
  node.textContent = clock(end - call.startedAt);
}

function setState(state) {
  if (call.ended && state !== "ended") return;
  call.state = state;
  const node = document.getElementById("call-state");
  if (node) {
    node.className = `state ${state}`;
    node.textContent = state.replace("_", " ");
  }
  document.body.dataset.callState = state;
}

function onTranscript(e) {
  const role = e.role === "assistant" ? "assistant" : "user";
  const key = `${role}:${e.item_id || e.response_id || "-"}`;
  let line = lines.get(key);
  if (!line) {
    line = el("li", { class: `${role} partial`, dataset: { role } },
      el("span", { class: "who" }, role === "user" ? "Caller" : "Model"), el("span", { class: "text" }, ""));
    lines.set(key, line);
    append(line);
  }
  const text = line.querySelector(".text");
  if (e.final) {
    text.textContent = e.text || "";
    line.classList.remove("partial");
    line.dataset.final = "true";
  } else {
    text.textContent += e.text || "";
  }
}

function onToolCall(e) {
  const raw = e.tool_call || {};
  const tool = { call_id: raw.id || raw.call_id || "", name: raw.name, arguments: raw.arguments };
  const line = notice("", "tool");
  line.dataset.callId = tool.call_id || "";
  line.append(el("span", { class: "who" }, "Tool call"),
    el("code", {}, `${tool.name}(${tool.arguments || ""})`), el("pre", { class: "result" }, "running…"));
  const row = el("tr", { dataset: { callId: tool.call_id || "" } },
    el("td", {}, tool.name || "?"), el("td", {}, "…"), el("td", {}, "–"), el("td", {}, "running"));
  document.querySelector("#tools tbody").append(row);
  toolRows.set(tool.call_id, { line, row });
  setState("tool_running");
}

function onToolResult(e) {
  let entry = toolRows.get(e.call_id);
  if (!entry) {
    onToolCall({ tool_call: { id: e.call_id, name: e.name, arguments: "" } });
    entry = toolRows.get(e.call_id);
  }
  const outcome = e.is_error ? "error" : "ok";
  entry.line.querySelector(".result").textContent = `${e.is_error ? "error: " : "→ "}${e.content}`;
  entry.line.classList.toggle("error", Boolean(e.is_error));
  const cells = entry.row.children;
  cells[1].textContent = ms(e.latency_ms);
  cells[2].textContent = e.worker || e.source || "–";
  cells[3].textContent = outcome;
  entry.row.dataset.outcome = outcome;
}

function onTurn(e) {
  const at = call.startedAt && e.opened_at ? clock(e.opened_at - call.startedAt) : "–";
  const row = el("tr", { dataset: { turn: e.turn } },
    el("td", {}, e.turn), el("td", {}, at), el("td", {}, ms(e.response_latency_ms)),
    el("td", {}, e.interrupted ? "yes" : "no"),
    el("td", {}, (e.tools || []).map((t) => `${t.name} ${ms(t.latency_ms)}`).join(", ") || "–"));
  document.querySelector("#turns tbody").append(row);
}

function onEvent(event) {
  const e = event.data;
  if (typeof e.seq === "number") {
    if (e.seq <= call.lastSeq) return;
    call.lastSeq = e.seq;
  }
  switch (e.type) {
    case "session_started":
      if (e.resumed) notice("The call continued in a new session actor.");
      if (e.provider && e.provider !== call.record.provider) {
        call.record.provider = e.provider;
        showFacts();
      }
      setState("listening");
      break;
    case "provider_skipped":
      notice(`Started on ${e.to}: ${e.provider} is down for this account (${e.code}).`);
      break;
    case "transcript":
      onTranscript(e);
      break;
    case "speech_started":
      setState("caller_speaking");
      break;
    case "speech_stopped":
      setState("listening");
      break;
    case "audio_output":
      setState("model_speaking");
      break;
    case "interrupted":
      notice("The caller barged in; the model stopped.");
      setState("caller_speaking");
      break;
    case "turn_end":
      if (call.state !== "tool_running" || e.reason !== "tool_calls") setState("listening");
      break;
    case "tool_call":
      onToolCall(e);
      break;
    case "tool_result":
      onToolResult(e);
      setState("listening");
      break;
    case "turn":
      onTurn(e);
      break;
    case "session_resumed":
      notice(`Reconnected to the provider (${e.reason || "resumed"}; gap ${ms((e.data || {}).gap_ms)}).`);
      break;
    case "provider_switched": {
      const d = e.data || {};
      notice(`Switched provider ${d.from} → ${d.to} (${e.reason}; gap ${ms(d.gap_ms)}).`);
      call.record.provider = d.to;
      showFacts();
      break;
    }
    case "error": {
      const err = e.error || {};
      notice(`Error ${err.code || err.type || ""}: ${err.message || ""}`, "notice error");
      break;
    }
    case "dtmf":
      notice(`The caller pressed ${e.digit}.`);
      break;
    case "events_lost":
      notice("Some events of this call are no longer available.", "notice error");
      break;
    case "session_closed":
      call.ended = true;
      call.endedAt = e.ts;
      notice(`The call ended (${e.reason}).`);
      setState("ended");
      for (const button of document.querySelectorAll("#whisper button, .actions button")) {
        button.disabled = true;
      }
      listener?.stop();
      tickDuration();
      break;
    default:
      break;
  }
}

async function act(button, work) {
  actionError.textContent = "";
  button.disabled = true;
  try {
    await work();
  } catch (error) {
    actionError.textContent = `${error.code || "error"}: ${error.message}`;
  } finally {
    if (!call.ended) button.disabled = false;
  }
}

function wireActions() {
  const form = document.getElementById("whisper");
  const input = document.getElementById("whisper-text");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    act(form.querySelector("button"), async () => {
      await api("POST", `${path}/text`, { text });
      input.value = "";
      notice(`Supervisor to the model: ${text}`, "notice supervisor");
    });
  });
  const interrupt = document.getElementById("interrupt");
  interrupt.addEventListener("click", () => act(interrupt, () => api("POST", `${path}/interrupt`, {})));
  const end = document.getElementById("end-call");
  end.addEventListener("click", () => act(end, () => api("DELETE", path)));
  const listen = document.getElementById("listen");
  listen.addEventListener("click", () => {
    if (listener) {
      listener.stop();
      listener = null;
      listen.textContent = "Listen";
      return;
    }
    listener = new Listener(path, call.lastSeq, (error) => {
      actionError.textContent = `listening stopped: ${error.message}`;
    }, (queuedMs) => {
      listen.dataset.heardMs = String(Math.round(queuedMs));
      listen.textContent = `Stop listening (${ms(queuedMs)} heard)`;
    });
    listener.start();
    listen.textContent = "Stop listening";
  });
}

async function start() {
  if (!sessionId) {
    document.getElementById("main").append(el("p", { class: "error" }, "No call id in the address (#id=...)."));
    return;
  }
  try {
    call.record = await api("GET", path);
  } catch (error) {
    document.getElementById("main").append(el("p", { class: "error", role: "alert" }, error.message));
    return;
  }
  call.startedAt = call.record.created_at || null;
  document.getElementById("call-view").hidden = false;
  document.title = `s2s · call ${sessionId}`;
  showFacts();
  wireActions();
  setInterval(tickDuration, 1000);
  await followEvents(`${path}/events?audio=false`, onEvent, {
    onState: (state) => { feedState.textContent = `events: ${state}`; },
    resumeFrom: (base) => `${base}&last_event_id=${call.lastSeq}`,
  }).catch((error) => { feedState.textContent = `events stopped: ${error.message}`; });
}

signIn(document.getElementById("main"), start);
