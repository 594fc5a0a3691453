// The live-calls page: one row per call of the key's tenant (every tenant for an admin key),
// kept current by the service's call feed (GET /v1/calls/feed, one response for the whole
// list), with a local clock for durations. Nothing here polls.

import { api, clock, el, followEvents, ms, signIn } from "./api.js";

/** How long an ended call stays in the list (greyed) before it leaves. */
const ENDED_KEPT_MS = 15000;

const rows = new Map(); // session id -> {summary, row, cells}
const tbody = document.querySelector("#calls tbody");

function caller(summary) {
  const meta = summary.metadata || {};
  const phone = meta.telephony || {};
  return phone.from || meta.caller || meta.caller_id || meta.customer || meta.channel || "–";
}

function render(entry) {
  const s = entry.summary;
  const c = entry.cells;
  c.provider.textContent = [s.provider, s.model].filter(Boolean).join(" · ") || "–";
  c.caller.textContent = caller(s);
  const state = s.ended ? "ended" : s.state || "starting";
  c.state.replaceChildren(el("span", { class: "state " + state }, state.replace("_", " ")));
  c.turns.textContent = s.turns ?? 0;
  c.latency.textContent = ms(s.last_response_latency_ms);
  const errors = s.errors ?? 0;
  c.errors.textContent = errors ? `${errors} (${(s.last_error && s.last_error.code) || "error"})` : "0";
  c.errors.className = errors ? "error" : "";
  entry.row.classList.toggle("muted", Boolean(s.ended));
  entry.row.dataset.state = state;
  tick(entry, Date.now() / 1000);
}

function tick(entry, now) {
  const s = entry.summary;
  const end = s.ended ? (s.updated_at || now) : now;
  entry.cells.duration.textContent = s.started_at ? clock(end - s.started_at) : "–";
}

function upsert(summary) {
  const id = summary.session_id;
  if (!id) return;
  let entry = rows.get(id);
  if (entry && summary.updated_at && entry.summary.updated_at > summary.updated_at) return;
  if (!entry) {
    const cells = {
      id: el("td", {}, el("a", { href: `call#id=${encodeURIComponent(id)}` }, id)),
      caller: el("td"), provider: el("td"), duration: el("td"), state: el("td"),
      turns: el("td"), latency: el("td"), errors: el("td"),
    };
    const row = el("tr", { class: "call-row", dataset: { session: id } }, Object.values(cells));
    row.addEventListener("click", (event) => {
      if (event.target.tagName !== "A") location.href = `call#id=${encodeURIComponent(id)}`;
    });
    entry = { summary: {}, row, cells };
    rows.set(id, entry);
    tbody.prepend(row);
    if (!summary.metadata) fillIn(id);
  }
  entry.summary = { ...entry.summary, ...summary };
  render(entry);
  if (summary.ended) {
    setTimeout(() => {
      if (rows.get(id) === entry) {
        rows.delete(id);
        entry.row.remove();
        counted();
      }
    }, ENDED_KEPT_MS);
  }
  counted();
}

/** A call first seen through the feed: its record once, for caller metadata and model. */
async function fillIn(id) {
  try {
    const meta = await api("GET", `/v1/sessions/${encodeURIComponent(id)}`);
    upsert({ session_id: id, metadata: meta.metadata, provider: meta.provider, model: meta.model,
      started_at: meta.created_at, updated_at: 0 });
  } catch {
    // the call may already be gone; the feed will say so
  }
}

function counted() {
  const live = [...rows.values()].filter((e) => !e.summary.ended).length;
  document.getElementById("call-count").textContent = `(${live})`;
  document.getElementById("no-calls").hidden = rows.size > 0;
}

function replace(calls) {
  const seen = new Set(calls.map((s) => s.session_id));
  for (const [id, entry] of rows) {
    if (!seen.has(id)) {
      rows.delete(id);
      entry.row.remove();
    }
  }
  for (const summary of calls.sort((a, b) => (a.started_at || 0) - (b.started_at || 0))) {
    upsert(summary);
  }
  counted();
}

function start() {
  document.getElementById("calls-panel").hidden = false;
  const feedState = document.getElementById("feed-state");
  setInterval(() => {
    const now = Date.now() / 1000;
    for (const entry of rows.values()) tick(entry, now);
  }, 1000);
  followEvents("/v1/calls/feed", (event) => {
    if (event.event === "snapshot") replace(event.data.calls || []);
    else if (event.event === "call") upsert(event.data);
  }, { onState: (state) => { feedState.textContent = `feed: ${state}`; feedState.dataset.state = state; } })
    .catch((error) => { feedState.textContent = `feed stopped: ${error.message}`; });
}

signIn(document.getElementById("main"), start);
