// Audio for the softphone and the console's "listen": sample formats, a streaming resampler,
// the microphone (AudioWorklet capture -> resample -> PCM16 frames) and the Player.
//
// The Player schedules the model's audio gap-free on one AudioContext timeline and knows, for
// every item id, when its first sample plays and how much of it was scheduled, so it can say how
// many milliseconds of an item the listener actually heard (for playback reports) and stop
// everything at once on a barge-in.

/** Float samples in [-1, 1] -> 16-bit little-endian PCM (an ArrayBuffer). */
export function floatToPcm16(samples) {
  const out = new DataView(new ArrayBuffer(samples.length * 2));
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    out.setInt16(i * 2, s < 0 ? Math.round(s * 0x8000) : Math.round(s * 0x7fff), true);
  }
  return out.buffer;
}

/** 16-bit little-endian PCM (a Uint8Array, any offset) -> Float32Array in [-1, 1). */
export function pcm16ToFloat(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength - (bytes.byteLength % 2));
  const out = new Float32Array(view.byteLength / 2);
  for (let i = 0; i < out.length; i++) out[i] = view.getInt16(i * 2, true) / 0x8000;
  return out;
}

/** G.711 mu-law bytes -> Float32Array (sessions with audio_format "pcmu"). */
export function ulawToFloat(bytes) {
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const u = ~bytes[i] & 0xff;
    const magnitude = ((((u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4)) - 0x84;
    out[i] = (u & 0x80 ? -magnitude : magnitude) / 0x8000;
  }
  return out;
}

/** The RMS level of some samples in dBFS (-100 for silence). */
export function levelDbfs(samples) {
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
  const rms = Math.sqrt(sum / Math.max(1, samples.length));
  return rms > 1e-5 ? 20 * Math.log10(rms) : -100;
}

/**
 * A streaming band-limited resampler: each output sample is a windowed-sinc (Blackman)
 * interpolation of the input around its position, with the cut-off below the lower rate's
 * Nyquist frequency, so downsampling (48 kHz -> 24 kHz) low-passes before it decimates and
 * nothing above the new Nyquist folds back. Any ratio; state carries across calls, so blocks of
 * any size give the same output as one long block. Latency: `halfTaps` input samples or so.
 */
export class Resampler {
  constructor(fromRate, toRate, { halfTaps = 12, resolution = 256 } = {}) {
    if (!(fromRate > 0 && toRate > 0)) throw new RangeError("sample rates must be positive");
    this.fromRate = fromRate;
    this.toRate = toRate;
    this.step = fromRate / toRate; // input samples per output sample
    this.identity = fromRate === toRate;
    const cutoff = Math.min(1, toRate / fromRate) * 0.9; // of the input's Nyquist frequency
    this.half = halfTaps / cutoff; // the kernel's half-width, in input samples
    this.resolution = resolution;
    const size = Math.ceil(this.half * resolution) + 2;
    this.table = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      const x = i / resolution;
      if (x >= this.half) break;
      const t = cutoff * x;
      const sinc = t === 0 ? 1 : Math.sin(Math.PI * t) / (Math.PI * t);
      const w = 0.42 + 0.5 * Math.cos((Math.PI * x) / this.half) + 0.08 * Math.cos((2 * Math.PI * x) / this.half);
      this.table[i] = sinc * w;
    }
    const lead = Math.ceil(this.half);
    this.buffer = new Float32Array(lead); // zeros before the first sample
    this.t = lead; // the next output's position in `buffer`
  }

  kernel(x) {
    const a = Math.abs(x) * this.resolution;
    const i = Math.floor(a);
    if (i >= this.table.length - 1) return 0;
    const frac = a - i;
    return this.table[i] + (this.table[i + 1] - this.table[i]) * frac;
  }

  /** Resample the next block (Float32Array at fromRate) -> Float32Array at toRate. */
  process(input) {
    if (this.identity) return Float32Array.from(input);
    const buffer = new Float32Array(this.buffer.length + input.length);
    buffer.set(this.buffer);
    buffer.set(input, this.buffer.length);
    const half = this.half;
    const room = Math.max(0, Math.floor((buffer.length - 1 - half - this.t) / this.step) + 2);
    const out = new Float32Array(room);
    let n = 0;
    let t = this.t;
    while (Math.floor(t + half) < buffer.length && n < room) {
      const lo = Math.max(0, Math.ceil(t - half));
      const hi = Math.floor(t + half);
      let acc = 0;
      let norm = 0;
      for (let k = lo; k <= hi; k++) {
        const w = this.kernel(k - t);
        acc += buffer[k] * w;
        norm += w;
      }
      out[n++] = norm > 0 ? acc / norm : 0;
      t += this.step;
    }
    const keep = Math.max(0, Math.min(buffer.length, Math.ceil(t - half)));
    this.buffer = buffer.slice(keep);
    this.t = t - keep;
    return out.subarray(0, n);
  }
}

/**
 * The microphone: getUserMedia (echo cancellation, noise suppression) -> the capture worklet ->
 * a Resampler to `sampleRate` -> PCM16 little-endian frames of `frameMs`, given to
 * `onFrame(ArrayBuffer)`; `onLevel(dbfs)` for a meter; `onError(error)` if the worklet fails.
 * `start()` opens the device and rejects with the browser's error (NotAllowedError,
 * NotFoundError, ...) when there is no microphone to use; `listen()` starts the frames.
 */
export class Microphone {
  constructor(context, { sampleRate, frameMs = 20, onFrame, onLevel = () => {}, onError }) {
    this.context = context;
    this.onError = onError || ((error) => {
      throw error;
    });
    this.sampleRate = sampleRate;
    this.frameSamples = Math.round((sampleRate * frameMs) / 1000);
    this.onFrame = onFrame;
    this.onLevel = onLevel;
    this.pending = new Float32Array(0);
    this.stream = null;
    this.node = null;
    this.source = null;
    this.listening = false;
  }

  /** Open the microphone (the browser asks the person) and load the capture worklet; nothing
   * is captured until `listen()`. */
  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, channelCount: 1 },
    });
    await this.context.audioWorklet.addModule(new URL("./capture-worklet.js", import.meta.url));
    this.resampler = new Resampler(this.context.sampleRate, this.sampleRate);
    this.source = this.context.createMediaStreamSource(this.stream);
    this.node = new AudioWorkletNode(this.context, "s2s-capture", {
      numberOfInputs: 1,
      numberOfOutputs: 0,
      channelCount: 1,
      channelCountMode: "explicit",
      channelInterpretation: "speakers",
      processorOptions: { blockSize: Math.round(this.context.sampleRate / 100) },
    });
    this.node.port.onmessage = (event) => this.block(event.data);
    this.node.onprocessorerror = () => this.onError(new Error("the capture worklet failed"));
  }

  /** Start capturing (after `start()`): frames flow from now on. Idempotent. */
  listen() {
    if (this.source && this.node && !this.listening) {
      this.source.connect(this.node);
      this.listening = true;
    }
  }

  block(samples) {
    this.onLevel(levelDbfs(samples));
    const resampled = this.resampler.process(samples);
    const joined = new Float32Array(this.pending.length + resampled.length);
    joined.set(this.pending);
    joined.set(resampled, this.pending.length);
    let offset = 0;
    while (joined.length - offset >= this.frameSamples) {
      this.onFrame(floatToPcm16(joined.subarray(offset, offset + this.frameSamples)));
      offset += this.frameSamples;
    }
    this.pending = joined.slice(offset);
  }

  stop() {
    if (this.node) {
      this.node.port.postMessage("stop");
      this.node.port.onmessage = null;
      this.node.disconnect();
    }
    if (this.source) this.source.disconnect();
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    this.node = this.source = this.stream = null;
    this.listening = false;
    this.onLevel(-100);
  }
}

/**
 * Plays items of model audio one after another on one AudioContext timeline, without gaps.
 *
 * `enqueue(itemId, samples, sampleRate)` schedules a chunk right after the previous one (or,
 * after an underrun or at the start, `lead` seconds from now). For each item the Player keeps
 * the time spans its audio occupies on the timeline, so `heardMs(itemId)` is what has actually
 * come out of the speakers (the context's output timestamp, not the time audio was queued).
 * `flush()` stops everything at once (barge-in) and returns the playhead: the item that was
 * playing and the ms of it heard. `onItemPlayed(itemId, ms)` fires when an item's scheduled
 * audio has played out in full.
 */
export class Player {
  constructor(context, { sampleRate, destination, lead = 0.06, onItemPlayed = () => {} } = {}) {
    this.context = context;
    this.sampleRate = sampleRate;
    this.output = context.createGain();
    this.output.connect(destination || context.destination);
    this.lead = lead;
    this.onItemPlayed = onItemPlayed;
    this.items = new Map(); // item id -> {spans: [[start, end]], scheduled: s, pending: n}
    this.sources = new Set();
    this.nextTime = 0;
  }

  /** The context time of the sample leaving the speakers now. */
  now() {
    const stamp = this.context.getOutputTimestamp ? this.context.getOutputTimestamp() : null;
    if (stamp && stamp.contextTime > 0) return stamp.contextTime;
    return Math.max(0, this.context.currentTime - (this.context.outputLatency || 0));
  }

  enqueue(itemId, samples, sampleRate = this.sampleRate) {
    if (!samples.length) return;
    const buffer = this.context.createBuffer(1, samples.length, sampleRate);
    buffer.copyToChannel(samples, 0);
    const current = this.context.currentTime;
    if (this.nextTime < current + 0.005) this.nextTime = current + this.lead;
    const start = this.nextTime;
    const end = start + buffer.duration;
    let item = this.items.get(itemId);
    if (!item) {
      item = { spans: [], scheduled: 0, pending: 0 };
      this.items.set(itemId, item);
    }
    const last = item.spans[item.spans.length - 1];
    if (last && Math.abs(last[1] - start) < 1e-6) last[1] = end;
    else item.spans.push([start, end]);
    item.scheduled += buffer.duration;
    item.pending += 1;
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.output);
    source.onended = () => {
      this.sources.delete(source);
      if (source.cut) return;
      item.pending -= 1;
      if (item.pending === 0) this.onItemPlayed(itemId, item.scheduled * 1000);
    };
    this.sources.add(source);
    source.start(start);
    this.nextTime = end;
  }

  /** Milliseconds of `itemId` heard so far (0 for an unknown item). */
  heardMs(itemId, at = this.now()) {
    const item = this.items.get(itemId);
    if (!item) return 0;
    let heard = 0;
    for (const [start, end] of item.spans) heard += Math.max(0, Math.min(at, end) - start);
    return heard * 1000;
  }

  /** Ms of `itemId` scheduled so far. */
  scheduledMs(itemId) {
    const item = this.items.get(itemId);
    return item ? item.scheduled * 1000 : 0;
  }

  /** The item being heard now and how much of it, or null when nothing is left to play. */
  playhead(at = this.now()) {
    for (const [itemId, item] of this.items) {
      const end = item.spans[item.spans.length - 1][1];
      if (at < end) return { itemId, playedMs: this.heardMs(itemId, at), scheduledMs: item.scheduled * 1000 };
    }
    return null;
  }

  /** True while scheduled audio is still to be heard. */
  get playing() {
    return this.playhead() !== null;
  }

  /** Stop all audio now; returns the playhead at that moment (null if nothing was playing). */
  flush() {
    const head = this.playhead();
    for (const source of this.sources) {
      source.cut = true;
      try {
        source.stop();
      } catch {
        // never started: nothing to stop
      }
    }
    this.sources.clear();
    this.items.clear();
    this.nextTime = 0;
    return head;
  }

  /** Forget finished items (the timeline keeps only what may still play). */
  prune(at = this.now()) {
    for (const [itemId, item] of this.items) {
      if (item.pending === 0 && item.spans[item.spans.length - 1][1] <= at) this.items.delete(itemId);
    }
  }

  close() {
    this.flush();
    this.output.disconnect();
  }
}
