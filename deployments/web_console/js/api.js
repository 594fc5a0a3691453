// The console's one door to the service: the API key, authenticated requests, and event feeds.
//
// The key lives in this tab's sessionStorage only (no cookies: no other site can ride it). A
// link may carry it in the URL fragment (#key=...), which browsers never send to a server; it
// is moved to sessionStorage and removed from the address bar at once.

const KEY = "s2s.apiKey";

/** Take a key from the URL fragment (if any) into this tab's storage. */
export function adoptKeyFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const key = params.get("key");
  if (key) {
    sessionStorage.setItem(KEY, key);
    params.delete("key");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? "#" + rest : ""));
  }
}

export function apiKey() {
  return sessionStorage.getItem(KEY) || "";
}

export function setApiKey(key) {
  sessionStorage.setItem(KEY, key.trim());
}

export function forgetApiKey() {
  sessionStorage.removeItem(KEY);
}

/** An error the service answered with: HTTP status, the API's error code and message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Call the API; resolves to the JSON body, rejects with an ApiError naming what went wrong. */
export async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + apiKey() };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(response.status, error.code || "http_" + response.status,
      error.message || response.statusText || "request failed");
  }
  return data;
}

/**
 * Read a Server-Sent Events response (with the key in a header, which EventSource cannot
 * send): calls onEvent({id, event, data}) for each event, with data parsed as JSON. Resolves
 * when the stream ends; rejects with an ApiError if the service refuses it.
 */
export async function readEvents(path, onEvent, signal) {
  const response = await fetch(path, {
    headers: { Authorization: "Bearer " + apiKey(), Accept: "text/event-stream" },
    signal,
  });
  if (!response.ok) {
    let error = {};
    try {
      error = (await response.json()).error || {};
    } catch {
      error = {};
    }
    throw new ApiError(response.status, error.code || "http_" + response.status,
      error.message || "the event feed was refused");
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = { id: null, event: "message", data: "" };
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "data") event.data += (event.data ? "\n" : "") + text;
        else if (field === "event") event.event = text;
        else if (field === "id") event.id = text;
      }
      if (event.data) {
        event.data = JSON.parse(event.data);
        onEvent(event);
      }
    }
  }
}

/**
 * Follow an event feed for as long as `signal` is not aborted: reconnect after a dropped
 * connection (waiting a little longer each time, up to 10 s). `onState(text)` tells the page
 * whether it is live. An ApiError for 401/403/404 ends the loop (it would not get better).
 */
export async function followEvents(path, onEvent, { signal, onState = () => {}, resumeFrom } = {}) {
  let delay = 500;
  while (!signal?.aborted) {
    try {
      onState("live");
      await readEvents(resumeFrom ? resumeFrom(path) : path, (e) => {
        delay = 500;
        onEvent(e);
      }, signal);
      onState("ended");
      return;
    } catch (error) {
      if (signal?.aborted) return;
      if (error instanceof ApiError && [400, 401, 403, 404].includes(error.status)) throw error;
      onState("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 10000);
    }
  }
}

/** The stream WebSocket's URL (the key goes as ?api_key=: browsers cannot set WS headers). */
export function streamUrl(sessionId) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const key = encodeURIComponent(apiKey());
  return `${scheme}//${location.host}/v1/sessions/${encodeURIComponent(sessionId)}/stream?api_key=${key}`;
}

/** Build a DOM element; children are nodes or text (never parsed as HTML). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** "1.2 s", "850 ms", or "–". */
export function ms(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return value >= 1000 ? (value / 1000).toFixed(1) + " s" : Math.round(value) + " ms";
}

/** "4:05" for seconds. */
export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

/** The sign-in form: shown until a key works; calls onSignedIn() once one does. */
export function signIn(container, onSignedIn) {
  adoptKeyFromFragment();
  const status = el("p", { class: "error", role: "alert" });
  const input = el("input", {
    type: "password", id: "api-key", autocomplete: "off", placeholder: "API key", required: true,
  });
  const form = el("form", { class: "sign-in", id: "sign-in" },
    el("label", { for: "api-key" }, "API key"), input,
    el("button", { type: "submit" }, "Sign in"), status);
  const attempt = async () => {
    try {
      await api("GET", "/v1/sessions");
      form.remove();
      onSignedIn();
    } catch (error) {
      status.textContent = error.status === 401 ? "That key is not known." : error.message;
      forgetApiKey();
      if (!form.isConnected) container.append(form);
      input.focus();
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setApiKey(input.value);
    input.value = "";
    attempt();
  });
  if (apiKey()) attempt();
  else container.append(form);
}
