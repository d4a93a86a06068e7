// In-page helpers for tinyrtc's Chromium tests. Loaded into a page served on
// 127.0.0.1 by harness.mjs. Every helper is async and returns plain JSON data;
// asynchronous happenings (ICE candidates, state changes, data channel
// messages) are pushed to the driver through window.__trEvent.
window.tr = {
  pc: null,
  stream: null,
  channels: {},
  emit(ev) {
    if (window.__trEvent) window.__trEvent(JSON.stringify(ev));
  },
  async media(video, audio) {
    if (!video && !audio) return null;
    this.stream = await navigator.mediaDevices.getUserMedia({ video, audio });
    return this.stream.getTracks().map((t) => t.kind);
  },
  newPc(config) {
    const pc = new RTCPeerConnection(config || {});
    this.pc = pc;
    pc.onicecandidate = (e) =>
      this.emit({ event: 'candidate', candidate: e.candidate ? e.candidate.toJSON() : null });
    pc.onconnectionstatechange = () => this.emit({ event: 'connection', state: pc.connectionState });
    pc.oniceconnectionstatechange = () => this.emit({ event: 'ice', state: pc.iceConnectionState });
    pc.ontrack = (e) => {
      // Give every remote track a sink so that video frames are decoded.
      const el = document.createElement(e.track.kind === 'video' ? 'video' : 'audio');
      el.muted = true;
      el.autoplay = true;
      el.playsInline = true;
      el.srcObject = new MediaStream([e.track]);
      document.body.appendChild(el);
      el.play().catch(() => {});
      this.emit({ event: 'track', kind: e.track.kind, mid: e.transceiver.mid });
    };
    pc.ondatachannel = (e) => this.watchChannel(e.channel);
    return pc;
  },
  watchChannel(dc) {
    this.channels[dc.label] = dc;
    dc.binaryType = 'arraybuffer';
    const rx = { messages: 0, bytes: 0, texts: 0, emptyTexts: 0, emptyBinaries: 0, parts: [], ids: [] };
    this.received[dc.label] = rx;
    dc.onopen = () => this.emit({ event: 'dc-open', label: dc.label });
    dc.onclose = () => this.emit({ event: 'dc-close', label: dc.label });
    dc.onmessage = (m) => {
      const text = typeof m.data === 'string';
      const bytes = text ? null : new Uint8Array(m.data);
      rx.messages += 1;
      if (text) {
        rx.texts += 1;
        if (m.data.length === 0) rx.emptyTexts += 1;
      } else {
        rx.bytes += bytes.length;
        if (bytes.length === 0) rx.emptyBinaries += 1;
        if (this.quiet[dc.label]) {
          rx.parts.push(bytes);
          if (bytes.length >= 4) rx.ids.push(new DataView(m.data).getUint32(0));
          return;
        }
      }
      this.emit({
        event: 'dc-message',
        label: dc.label,
        text: text ? m.data : null,
        bytes: text ? null : Array.from(bytes),
      });
    };
  },
  // Data channel exchange helpers (datachannel_chromium). Channels marked
  // quiet keep what they receive in the page (counted and hashed on
  // request) instead of emitting one event per message.
  received: {},
  quiet: {},
  sending: {},
  // pc.createDataChannel(label, init); init as in RTCDataChannelInit
  // (ordered, maxRetransmits, maxPacketLifeTime, protocol, negotiated, id).
  createChannel(label, init) {
    const dc = this.pc.createDataChannel(label, init || {});
    this.watchChannel(dc);
    return dc.id;
  },
  setQuiet(label) {
    this.quiet[label] = true;
    return true;
  },
  // The deterministic bytes tinyrtc's tests use (x = x * 1103515245 + 12345
  // mod 2^32, top byte), as in aiortc_peer.py.
  bulkBytes(total, seed) {
    const out = new Uint8Array(total);
    let x = seed >>> 0;
    for (let i = 0; i < total; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      out[i] = x >>> 24;
    }
    return out;
  },
  // Start sending `total` bulk bytes in `chunk`-byte binary messages,
  // keeping at most `window` bytes buffered; returns at once (progress in
  // channelStatus).
  sendBulk(label, total, chunk, seed, window) {
    const dc = this.channels[label];
    const data = this.bulkBytes(total, seed);
    const st = { sent: 0, done: false, error: null };
    this.sending[label] = st;
    dc.bufferedAmountLowThreshold = Math.floor((window || 262144) / 2);
    const pump = () => {
      try {
        while (st.sent < total && dc.bufferedAmount < (window || 262144)) {
          const n = Math.min(chunk, total - st.sent);
          dc.send(data.subarray(st.sent, st.sent + n));
          st.sent += n;
        }
        if (st.sent >= total) {
          st.done = true;
          dc.onbufferedamountlow = null;
        }
      } catch (e) {
        st.error = String(e);
      }
    };
    dc.onbufferedamountlow = pump;
    pump();
    return true;
  },
  // Send `count` binary messages of `size` bytes at once, message i
  // starting with i (u32 big-endian); returns how long the sends took.
  sendBurst(label, count, size) {
    const dc = this.channels[label];
    const t0 = performance.now();
    for (let i = 0; i < count; i++) {
      const m = new Uint8Array(size);
      new DataView(m.buffer).setUint32(0, i);
      dc.send(m);
    }
    return { ms: performance.now() - t0, bufferedAmount: dc.bufferedAmount };
  },
  sendBinary(label, bytes) {
    this.channels[label].send(new Uint8Array(bytes));
    return true;
  },
  closeChannel(label) {
    this.channels[label].close();
    return true;
  },
  // Every channel's options, state and what it received; `digest` also
  // hashes the binary data of quiet channels (SHA-256, hex).
  async channelStatus(digest) {
    const out = {};
    for (const [label, dc] of Object.entries(this.channels)) {
      const rx = this.received[label];
      const st = {
        id: dc.id,
        state: dc.readyState,
        protocol: dc.protocol,
        ordered: dc.ordered,
        maxRetransmits: dc.maxRetransmits,
        maxPacketLifeTime: dc.maxPacketLifeTime,
        negotiated: dc.negotiated,
        bufferedAmount: dc.bufferedAmount,
        sending: this.sending[label] || null,
        messages: rx.messages,
        bytes: rx.bytes,
        texts: rx.texts,
        emptyTexts: rx.emptyTexts,
        emptyBinaries: rx.emptyBinaries,
        ids: rx.ids,
        sizes: [...new Set(rx.parts.map((p) => p.length))],
      };
      if (digest) {
        const all = new Uint8Array(rx.parts.reduce((n, p) => n + p.length, 0));
        let o = 0;
        for (const p of rx.parts) {
          all.set(p, o);
          o += p.length;
        }
        const h = new Uint8Array(await crypto.subtle.digest('SHA-256', all));
        st.sha256 = Array.from(h, (b) => b.toString(16).padStart(2, '0')).join('');
      }
      out[label] = st;
    }
    return out;
  },
  // Wait until ICE gathering is complete (or `ms` elapse).
  gathered(ms) {
    const pc = this.pc;
    if (pc.iceGatheringState === 'complete') return Promise.resolve(true);
    return new Promise((res) => {
      const t = setTimeout(() => res(false), ms || 5000);
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') {
          clearTimeout(t);
          res(true);
        }
      });
    });
  },
  // Offer: opts.video / opts.audio = 'sendrecv' | 'recvonly' | 'sendonly' | null,
  // opts.datachannel = label or null, opts.gather = wait for all candidates.
  async offer(opts) {
    const pc = this.newPc();
    const wantVideo = opts.video && opts.video !== 'recvonly';
    const wantAudio = opts.audio && opts.audio !== 'recvonly';
    await this.media(!!wantVideo, !!wantAudio);
    for (const kind of ['audio', 'video']) {
      const dir = opts[kind];
      if (!dir) continue;
      const track = this.stream && this.stream.getTracks().find((t) => t.kind === kind);
      if (track && dir !== 'recvonly') pc.addTransceiver(track, { direction: dir, streams: [this.stream] });
      else pc.addTransceiver(kind, { direction: dir });
    }
    if (opts.datachannel) this.watchChannel(pc.createDataChannel(opts.datachannel));
    for (const c of opts.channels || []) this.createChannel(c.label, c.init);
    await pc.setLocalDescription(await pc.createOffer());
    if (opts.gather) await this.gathered();
    return pc.localDescription.sdp;
  },
  // Answer a remote offer. opts.video / opts.audio: whether to send our
  // camera/microphone on the matching transceivers.
  async answer(sdp, opts) {
    opts = opts || {};
    const pc = this.newPc();
    await this.media(!!opts.video, !!opts.audio);
    await pc.setRemoteDescription({ type: 'offer', sdp });
    if (this.stream) {
      for (const tr of pc.getTransceivers()) {
        const kind = tr.receiver.track.kind;
        const track = this.stream.getTracks().find((t) => t.kind === kind);
        if (track) {
          await tr.sender.replaceTrack(track);
          tr.direction = 'sendrecv';
        }
      }
    }
    await pc.setLocalDescription(await pc.createAnswer());
    if (opts.gather) await this.gathered();
    return pc.localDescription.sdp;
  },
  async remoteAnswer(sdp) {
    await this.pc.setRemoteDescription({ type: 'answer', sdp });
    return true;
  },
  async addCandidate(c) {
    await this.pc.addIceCandidate(c);
    return true;
  },
  async stats() {
    const out = [];
    (await this.pc.getStats()).forEach((s) => out.push(s));
    return out;
  },
  send(label, text) {
    this.channels[label].send(text);
    return true;
  },
  close() {
    if (this.pc) this.pc.close();
    return true;
  },
};
