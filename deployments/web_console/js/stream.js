// One call's stream WebSocket, kept honest: events resume from the last sequence number seen,
// input resumes from the position the service saved, and every close says why.
//
// The protocol (deployments/api.py, deployments/streams.py): the socket's first message is
// {"type": "stream_opened", "input_position": N, "last_seq": L}; every binary frame and every
// text message but "ping" the client sends takes the next input position (N + 1, N + 2, ...);
// {"type": "input_ack", "input_position": N} says the service has saved up to N, so the client
// may forget it. After a reconnect the client resends what it sent after N. Server binary
// frames are audio: seq (uint64 BE), item-id length (uint8), the item id (UTF-8), the audio.
// Close codes: 1000 the call ended; 1009 and 4400-4404 are final refusals; anything else
// (1006, 1011, 1012 restarting, 4408 too slow, 4503 unreachable) means reconnect and resume.

import { api, ApiError, streamUrl } from "./api.js";

/** What each close code means, for people. */
export const CLOSE_CODES = {
  1000: "call ended",
  1001: "going away",
  1006: "connection lost",
  1009: "frame too big",
  1011: "internal error",
  1012: "service restarting",
  4400: "bad request",
  4401: "unauthorized",
  4403: "forbidden",
  4404: "no such session",
  4408: "too slow: fell behind the events",
  4503: "session unreachable",
};

/** Closes after which reconnecting cannot help. */
const FINAL = new Set([1009, 4400, 4401, 4403, 4404]);
/** Input kept for resending (unacknowledged): about 60 s of 20 ms frames. */
const MAX_UNACKED = 3000;
/** Reconnect attempts in a row before giving up. */
const MAX_ATTEMPTS = 10;

export function closeName(code) {
  return `${code} ${CLOSE_CODES[code] || "closed"}`;
}

/**
 * A call's stream. Handlers: onEvent(event) for JSON events (in seq order, each once),
 * onAudio(seq, itemId, bytes) for audio frames, onState(state, detail) with state one of
 * "connecting", "live", "reconnecting", "ended", "failed", and onNotice(kind, text) for what
 * the page should show but is not an event (client errors, lost input, reconnects).
 */
export class CallStream {
  constructor(sessionId, { onEvent, onAudio, onState, onNotice }) {
    this.sessionId = sessionId;
    this.onEvent = onEvent;
    this.onAudio = onAudio;
    this.onState = onState;
    this.onNotice = onNotice;
    this.lastSeq = 0;
    this.position = 0; // the input position of the last message sent (or queued)
    this.acked = 0;
    this.unacked = []; // [{position, data}] not yet acknowledged, in order
    this.opened = false; // a stream_opened arrived on some socket
    this.live = false; // the current socket is open and past stream_opened
    this.attempts = 0;
    this.ended = false;
    this.closeSent = false; // the page asked to end the call: no more input
    this.ws = null;
    this.closeReason = null; // from session_closed
    this.decoder = new TextDecoder();
  }

  open() {
    this.connect("connecting");
  }

  connect(state) {
    this.live = false;
    this.onState(state, null);
    const ws = new WebSocket(streamUrl(this.sessionId) + "&last_seq=" + this.lastSeq);
    ws.binaryType = "arraybuffer";
    ws.onmessage = (message) => this.received(message.data);
    ws.onclose = (event) => this.closed(ws, event);
    this.ws = ws;
  }

  /** Caller audio (an ArrayBuffer of PCM16 in the session's format): the next position. */
  sendAudio(buffer) {
    this.input(buffer);
  }

  /** A control message ({type: "text" | "interrupt" | "playback" | "close" | "ping", ...}). */
  sendControl(message) {
    const text = JSON.stringify(message);
    if (message.type === "ping") {
      this.transmit(text);
      return;
    }
    this.input(text);
    if (message.type === "close") this.closeSent = true;
  }

  input(data) {
    // Once the page has asked to end the call, nothing else goes (the close may cross the
    // service's own close of the socket, and input after it would only be refused).
    if (this.ended || this.closeSent) return;
    this.position += 1;
    this.unacked.push({ position: this.position, data });
    if (this.unacked.length > MAX_UNACKED) {
      const dropped = this.unacked.splice(0, this.unacked.length - MAX_UNACKED);
      this.onNotice("error", `input lost: ${dropped.length} messages were never acknowledged`);
    }
    this.transmit(data);
  }

  /** Send now if the socket is open; otherwise the input waits in `unacked` for the next one
   * (a socket the service is closing takes nothing: the browser would only log an error). */
  transmit(data) {
    if (this.live && this.ws.readyState === WebSocket.OPEN) this.ws.send(data);
  }

  received(data) {
    if (typeof data !== "string") {
      this.audioFrame(new Uint8Array(data));
      return;
    }
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      this.onNotice("error", "the service sent a text frame that is not JSON");
      return;
    }
    if (message.type === "stream_opened") this.streamOpened(message.input_position);
    else if (message.type === "input_ack") this.inputAck(message.input_position);
    else if (message.type === "pong") return;
    else if (message.seq === undefined) {
      const error = message.error || {};
      this.onNotice("error", `${error.code || message.type}: ${error.message || "no details"}`);
    } else if (message.seq > this.lastSeq) {
      this.lastSeq = message.seq;
      if (message.type === "session_closed") this.closeReason = message.reason || "closed";
      this.onEvent(message);
    }
  }

  audioFrame(bytes) {
    if (bytes.length < 9) {
      this.onNotice("error", `an audio frame of ${bytes.length} bytes has no header`);
      return;
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const seq = Number(view.getBigUint64(0));
    const length = view.getUint8(8);
    if (seq <= this.lastSeq) return; // replayed after a resume: already played
    this.lastSeq = seq;
    const itemId = this.decoder.decode(bytes.subarray(9, 9 + length));
    this.onAudio(seq, itemId, bytes.subarray(9 + length));
  }

  streamOpened(saved) {
    const first = !this.opened;
    this.opened = true;
    this.attempts = 0;
    // Before the first stream_opened positions were provisional: all of it is new input.
    const resend = first ? this.unacked : this.unacked.filter((entry) => entry.position > saved);
    if (!first && resend.length && resend[0].position !== saved + 1) {
      this.onNotice("error",
        `input lost: the service saved up to position ${saved}, this page kept from ${resend[0].position}`);
    }
    resend.forEach((entry, index) => {
      entry.position = saved + 1 + index;
    });
    this.unacked = resend;
    this.position = saved + resend.length;
    this.acked = Math.max(this.acked, saved);
    this.live = true;
    // (a socket closed while its stream_opened was on the way takes nothing: the next one will)
    for (const entry of resend) this.transmit(entry.data);
    if (!first && resend.length) this.onNotice("notice", `resumed: resent ${resend.length} messages`);
    this.onState("live", null);
  }

  inputAck(position) {
    this.acked = Math.max(this.acked, position);
    let n = 0;
    while (n < this.unacked.length && this.unacked[n].position <= position) n++;
    if (n) this.unacked.splice(0, n);
  }

  async closed(ws, event) {
    if (ws !== this.ws) return;
    this.live = false;
    if (this.ended) return;
    if (event.code === 1000) {
      this.finish("ended", this.closeReason || event.reason || "call ended");
      return;
    }
    if (FINAL.has(event.code)) {
      this.finish("failed", `${closeName(event.code)}${event.reason ? ": " + event.reason : ""}`);
      return;
    }
    this.attempts += 1;
    if (this.attempts > MAX_ATTEMPTS) {
      this.finish("failed", `could not reconnect (${closeName(event.code)})`);
      return;
    }
    this.onNotice("notice",
      `stream closed (${closeName(event.code)}${event.reason ? ": " + event.reason : ""}); reconnecting`);
    this.onState("reconnecting", closeName(event.code));
    await new Promise((resolve) => setTimeout(resolve, Math.min(250 * 2 ** (this.attempts - 1), 5000)));
    if (this.ended) return;
    if (this.attempts > 1 && !(await this.stillLive())) return;
    try {
      this.connect("reconnecting");
    } catch (error) {
      this.finish("failed", `reconnecting: ${error.name}: ${error.message}`);
    }
  }

  /** After a failed reconnect: is the call still there? (Ends the stream if not.) */
  async stillLive() {
    try {
      const session = await api("GET", `/v1/sessions/${encodeURIComponent(this.sessionId)}`);
      if (session.status === "closed" || session.status === "failed") {
        this.finish("ended", session.closed_reason || session.status);
        return false;
      }
    } catch (error) {
      if (error instanceof ApiError && [401, 403, 404].includes(error.status)) {
        this.finish("failed", `${error.code}: ${error.message}`);
        return false;
      }
      // the service itself is unreachable: keep trying
    }
    return !this.ended;
  }

  finish(state, detail) {
    if (this.ended) return;
    this.ended = true;
    this.live = false;
    this.onState(state, detail);
  }

  /** Stop for good (the page hung up or the call ended); no reconnect. */
  close() {
    this.ended = true;
    this.live = false;
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000, "hung up");
  }
}
