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
    dc.onopen = () => this.emit({ event: 'dc-open', label: dc.label });
    dc.onclose = () => this.emit({ event: 'dc-close', label: dc.label });
    dc.onmessage = (m) =>
      this.emit({
        event: 'dc-message',
        label: dc.label,
        text: typeof m.data === 'string' ? m.data : null,
        bytes: typeof m.data === 'string' ? null : Array.from(new Uint8Array(m.data)),
      });
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
