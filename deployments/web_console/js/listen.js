// "Listen": a supervisor hears the model's side of a call live, in the browser (WebAudio).
//
// A second event feed of the call with audio (base64 in the events) from the position the page
// has reached, played on the shared Player; a barge-in (`speech_started`, `interrupted`) flushes
// what is queued, exactly as the caller's own player does. Listening reports nothing back: only
// the caller's playback reports may truncate what the model said.

import { followEvents } from "./api.js";
import { Player, pcm16ToFloat, ulawToFloat } from "./audio.js";

function decode(base64) {
  const text = atob(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

export class Listener {
  /** `onAudio(totalMs)` after each chunk of model audio queued for the speakers. */
  constructor(path, afterSeq, onError, onAudio = () => {}) {
    this.path = path;
    this.lastSeq = afterSeq;
    this.onError = onError;
    this.onAudio = onAudio;
    this.queuedMs = 0;
    this.abort = new AbortController();
    this.context = null;
    this.player = null;
  }

  start() {
    this.context = new AudioContext();
    this.player = new Player(this.context, { sampleRate: 24000 });
    followEvents(`${this.path}/events?audio=true`, (event) => this.onEvent(event.data), {
      signal: this.abort.signal,
      resumeFrom: (base) => `${base}&last_event_id=${this.lastSeq}`,
    }).catch((error) => this.onError(error));
  }

  onEvent(e) {
    if (typeof e.seq === "number") {
      if (e.seq <= this.lastSeq) return;
      this.lastSeq = e.seq;
    }
    if (e.type === "audio_output" && e.audio) {
      const bytes = decode(e.audio);
      const samples = e.encoding === "pcmu" ? ulawToFloat(bytes) : pcm16ToFloat(bytes);
      const rate = e.sample_rate || 24000;
      this.player.enqueue(e.item_id || "-", samples, rate);
      this.player.prune();
      this.queuedMs += (samples.length / rate) * 1000;
      this.onAudio(this.queuedMs);
    } else if (e.type === "speech_started" || e.type === "interrupted") {
      this.player.flush();
    } else if (e.type === "session_closed") {
      this.stop();
    }
  }

  stop() {
    this.abort.abort();
    if (this.player) this.player.close();
    if (this.context) this.context.close();
    this.player = null;
    this.context = null;
  }
}
