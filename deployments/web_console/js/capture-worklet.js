// The microphone's AudioWorklet processor (loaded with audioWorklet.addModule by audio.js).
//
// It runs on the audio rendering thread and does one thing: copy the input's first channel
// (the node down-mixes to mono) into blocks of `blockSize` samples at the context's rate and
// post each block, as a transferred Float32Array, to the main thread. Resampling, PCM16 and
// framing happen there. The message "stop" ends processing.

class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const size = options?.processorOptions?.blockSize;
    this.size = Number.isInteger(size) && size > 0 ? size : 480;
    this.block = new Float32Array(this.size);
    this.fill = 0;
    this.running = true;
    this.port.onmessage = (event) => {
      if (event.data === "stop") this.running = false;
    };
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel) {
      let offset = 0;
      while (offset < channel.length) {
        const n = Math.min(channel.length - offset, this.size - this.fill);
        this.block.set(channel.subarray(offset, offset + n), this.fill);
        this.fill += n;
        offset += n;
        if (this.fill === this.size) {
          this.port.postMessage(this.block, [this.block.buffer]);
          this.block = new Float32Array(this.size);
          this.fill = 0;
        }
      }
    }
    return this.running;
  }
}

registerProcessor("s2s-capture", CaptureProcessor);
