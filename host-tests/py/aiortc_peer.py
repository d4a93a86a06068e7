"""aiortc as an interop peer for tinyrtc's host tests.

Speaks line-delimited JSON on stdin/stdout: one command per line in, one
reply per line out (`{"ok": ...}` or `{"err": "..."}`). Logs go to stderr.
EOF on stdin closes the peer connection and exits.

Commands:
  {"cmd": "answer", "sdp": OFFER}            -> {"ok": ANSWER}
      Answer the remote offer; received video is decoded and counted.
  {"cmd": "offer", "video_frames": N,        -> {"ok": OFFER}
   "width": W, "height": H, "channels": [..]}
      Offer send-only VP8 video from a synthetic track that yields N frames
      (30 fps, moving pattern) and/or data channels created up front.
  {"cmd": "remote_answer", "sdp": ANSWER}    -> {"ok": true}
  {"cmd": "wait", "what": KEY, "at_least": N, "timeout": S}
      Wait until counter KEY (see "stats") reaches N  -> {"ok": STATS}
  {"cmd": "stats"}                           -> {"ok": STATS}
      STATS["received"][L]["first"]: the first 16 messages ({"text": ..} or
      {"bytes": [..]}, 64 bytes at most); STATS["options"][L]: id, protocol,
      ordered, max_retransmits, max_packet_lifetime, negotiated.
  {"cmd": "open_channel", "label": L, "ordered": B, "max_retransmits": N,
   "max_packet_lifetime": MS, "protocol": P, "negotiated": B, "id": ID}
      (the same keys describe the channels of "offer")
  {"cmd": "send", "label": L, "text": T} or {..., "bytes": [..]}
      One text or binary message (either may be empty).
  {"cmd": "send_bulk", "label": L, "total": N, "chunk": C, "seed": S, "window": W}
      Send N pseudo-random bytes (see `bulk_bytes`) in C-byte messages.
  {"cmd": "send_burst", "label": L, "count": N, "size": C, "window": W}
      Send N messages of C bytes, message i starting with i (u32 BE).
      W (optional): keep at most W bytes in flight (see `send_paced`).
  {"cmd": "close_channel", "label": L}

ICE: aioice skips loopback addresses, so host addresses are pinned to
127.0.0.1 before any peer connection exists.
"""

import asyncio
import fractions
import hashlib
import json
import logging
import sys
import time

import aioice.ice

aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]

from aiortc import (  # noqa: E402
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.codecs import vpx  # noqa: E402
from aiortc.mediastreams import MediaStreamError  # noqa: E402
from av import VideoFrame  # noqa: E402

COUNTERS = {
    "frames_decoded": 0,
    "frames_produced": 0,
    "frames_encoded": 0,
    "keyframes_encoded": 0,
    "bytes_encoded": 0,
}
CHANNELS = {}  # label -> RTCDataChannel
RECEIVED = {}  # label -> {"messages", "bytes", "sha256", "first_ids"}
CLOSED = []  # labels whose channel closed
OPENED = []  # labels of channels that opened (either side)
DECODED_SIZE = [0, 0]


def log(*args):
    print("[aiortc]", *args, file=sys.stderr, flush=True)


def bulk_bytes(total, seed):
    """Deterministic bytes: x = x * 1103515245 + 12345 (mod 2^32), top byte.

    The Rust side generates the same sequence to compare hashes.
    """
    out = bytearray(total)
    x = seed & 0xFFFFFFFF
    for i in range(total):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        out[i] = x >> 24
    return bytes(out)


# Count what the VP8 encoder really produced (frames handed to the RTP sender).
_orig_packetize = vpx.Vp8Encoder._packetize.__func__


def _counting_packetize(cls, buffer, picture_id):
    if buffer:
        COUNTERS["frames_encoded"] += 1
        COUNTERS["bytes_encoded"] += len(buffer)
        if buffer[0] & 0x01 == 0:
            COUNTERS["keyframes_encoded"] += 1
    return _orig_packetize(cls, buffer, picture_id)


vpx.Vp8Encoder._packetize = classmethod(_counting_packetize)


class PatternTrack(VideoStreamTrack):
    """N frames of a moving luma gradient at 30 fps, then nothing."""

    def __init__(self, frames, width, height):
        super().__init__()
        self.frames = frames
        self.width = width
        self.height = height

    async def recv(self):
        if COUNTERS["frames_produced"] >= self.frames:
            # Done: hold the sender without ending the track.
            await asyncio.sleep(3600)
            raise MediaStreamError
        pts, time_base = await self.next_timestamp()
        n = COUNTERS["frames_produced"]
        frame = VideoFrame(width=self.width, height=self.height, format="yuv420p")
        w, h = self.width, self.height
        y = bytes(((x + 4 * n) & 0xFF) for x in range(w)) * h
        frame.planes[0].update(y)
        frame.planes[1].update(bytes([(64 + 2 * n) & 0xFF]) * (frame.planes[1].buffer_size))
        frame.planes[2].update(bytes([(192 - 3 * n) & 0xFF]) * (frame.planes[2].buffer_size))
        frame.pts = pts
        frame.time_base = time_base
        COUNTERS["frames_produced"] += 1
        return frame


async def consume_video(track):
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        COUNTERS["frames_decoded"] += 1
        DECODED_SIZE[0], DECODED_SIZE[1] = frame.width, frame.height


def channel_kwargs(spec):
    """RTCDataChannel options from a command's channel spec."""
    kw = {"ordered": spec.get("ordered", True)}
    if spec.get("max_retransmits") is not None:
        kw["maxRetransmits"] = spec["max_retransmits"]
    if spec.get("max_packet_lifetime") is not None:
        kw["maxPacketLifeTime"] = spec["max_packet_lifetime"]
    if spec.get("protocol"):
        kw["protocol"] = spec["protocol"]
    if spec.get("negotiated"):
        kw["negotiated"] = True
        kw["id"] = spec["id"]
    return kw


def watch_channel(channel):
    label = channel.label
    CHANNELS[label] = channel
    rx = RECEIVED.setdefault(label, {"messages": 0, "bytes": 0, "sha": hashlib.sha256(), "ids": [], "first": []})

    @channel.on("open")
    def on_open():
        OPENED.append(label)

    if channel.readyState == "open":
        OPENED.append(label)

    @channel.on("message")
    def on_message(message):
        if len(rx["first"]) < 16:
            if isinstance(message, str):
                rx["first"].append({"text": message})
            else:
                rx["first"].append({"bytes": list(message[:64])})
        if isinstance(message, str):
            message = message.encode()
        rx["messages"] += 1
        rx["bytes"] += len(message)
        rx["sha"].update(message)
        if len(rx["ids"]) < 100000 and len(message) >= 4:
            rx["ids"].append(int.from_bytes(message[:4], "big"))

    @channel.on("close")
    def on_close():
        CLOSED.append(label)


def stats(pc):
    out = dict(COUNTERS)
    out["decoded_size"] = list(DECODED_SIZE)
    out["connection"] = pc.connectionState if pc else None
    out["opened"] = list(OPENED)
    out["closed"] = list(CLOSED)
    out["received"] = {
        k: {
            "messages": v["messages"],
            "bytes": v["bytes"],
            "sha256": v["sha"].hexdigest(),
            "ids": v["ids"],
            "first": v["first"],
        }
        for k, v in RECEIVED.items()
    }
    out["options"] = {
        k: {
            "id": c.id,
            "protocol": c.protocol,
            "ordered": c.ordered,
            "max_retransmits": c.maxRetransmits,
            "max_packet_lifetime": c.maxPacketLifeTime,
            "negotiated": c.negotiated,
        }
        for k, c in CHANNELS.items()
    }
    out["states"] = {k: c.readyState for k, c in CHANNELS.items()}
    out["buffered"] = {k: c.bufferedAmount for k, c in CHANNELS.items()}
    return out


def counter(pc, key):
    if key in COUNTERS:
        return COUNTERS[key]
    if key.startswith("rx_bytes:"):
        return RECEIVED.get(key[9:], {}).get("bytes", 0)
    if key.startswith("rx_messages:"):
        return RECEIVED.get(key[12:], {}).get("messages", 0)
    if key.startswith("closed:"):
        return CLOSED.count(key[7:])
    if key.startswith("opened:"):
        return OPENED.count(key[7:])
    if key == "connected":
        return 1 if pc and pc.connectionState == "connected" else 0
    raise ValueError(f"unknown counter {key}")


def unacked(sctp):
    """User data bytes aiortc has queued or in flight and not yet acked."""
    return sum(c._book_size for c in sctp._outbound_queue if not c._acked and not c._abandoned)


async def send_paced(pc, channel, messages, window):
    """Send messages, keeping the SCTP send buffer bounded.

    aiortc's SCTP sender ignores the receiver's advertised window (a_rwnd):
    it sends as much as its congestion window allows, so a receiver with a
    small buffer drops the excess and aiortc recovers only through
    retransmission timeouts (1 s and up). With `window` set, a message is
    sent only once the bytes queued or in flight plus the message fit in `window`:
    the sender honours a receive window of that size.
    """
    sctp = pc.sctp if pc else None
    for m in messages:
        while channel.bufferedAmount > 256 * 1024:
            await asyncio.sleep(0.005)
        if window and sctp is not None:
            t0 = time.monotonic()
            while channel.bufferedAmount or unacked(sctp) + len(m) > window:
                await asyncio.sleep(0.001)
                if time.monotonic() - t0 > 2:
                    t0 = time.monotonic()
                    q = [c for c in sctp._outbound_queue if not c._acked]
                    log(
                        "send stalled: unacked", unacked(sctp), "flight", sctp._flight_size, "cwnd", sctp._cwnd,
                        "rto", sctp._rto, "last_sacked", sctp._last_sacked_tsn,
                        "first", [(c.tsn, c._sent_count, c._in_flight) for c in q[:3]], "queue", len(q),
                    )
        channel.send(m)


async def main():
    loop = asyncio.get_running_loop()
    pc = None
    tasks = []

    def new_pc():
        p = RTCPeerConnection()

        @p.on("track")
        def on_track(track):
            log("track", track.kind)
            if track.kind == "video":
                tasks.append(asyncio.ensure_future(consume_video(track)))

        @p.on("datachannel")
        def on_datachannel(channel):
            log("remote channel", channel.label)
            watch_channel(channel)

        @p.on("connectionstatechange")
        def on_state():
            log("connection", p.connectionState)

        return p

    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
            cmd = req["cmd"]
            if cmd == "answer":
                pc = new_pc()
                await pc.setRemoteDescription(RTCSessionDescription(req["sdp"], "offer"))
                await pc.setLocalDescription(await pc.createAnswer())
                result = pc.localDescription.sdp
            elif cmd == "offer":
                pc = new_pc()
                n = req.get("video_frames", 0)
                if n:
                    track = PatternTrack(n, req.get("width", 320), req.get("height", 240))
                    pc.addTransceiver(track, direction="sendonly")
                for ch in req.get("channels", []):
                    watch_channel(pc.createDataChannel(ch["label"], **channel_kwargs(ch)))
                await pc.setLocalDescription(await pc.createOffer())
                result = pc.localDescription.sdp
            elif cmd == "remote_answer":
                await pc.setRemoteDescription(RTCSessionDescription(req["sdp"], "answer"))
                result = True
            elif cmd == "open_channel":
                watch_channel(pc.createDataChannel(req["label"], **channel_kwargs(req)))
                result = True
            elif cmd == "send":
                if req.get("text") is not None:
                    CHANNELS[req["label"]].send(req["text"])
                else:
                    CHANNELS[req["label"]].send(bytes(req["bytes"]))
                result = True
            elif cmd == "send_bulk":
                data = bulk_bytes(req["total"], req["seed"])
                c = req["chunk"]
                t0 = time.monotonic()
                await send_paced(
                    pc, CHANNELS[req["label"]], [data[i : i + c] for i in range(0, len(data), c)], req.get("window")
                )
                result = {"queued_s": time.monotonic() - t0, "sha256": hashlib.sha256(data).hexdigest()}
            elif cmd == "send_burst":
                size = req["size"]
                msgs = [i.to_bytes(4, "big") + bytes(size - 4) for i in range(req["count"])]
                await send_paced(pc, CHANNELS[req["label"]], msgs, req.get("window"))
                result = True
            elif cmd == "close_channel":
                CHANNELS[req["label"]].close()
                result = True
            elif cmd == "wait":
                deadline = time.monotonic() + req.get("timeout", 10)
                while counter(pc, req["what"]) < req["at_least"] and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                result = stats(pc)
            elif cmd == "stats":
                result = stats(pc)
            else:
                raise ValueError(f"unknown command {cmd}")
            reply = {"ok": result}
        except Exception as e:  # reported to the test, which fails
            log("error:", repr(e))
            reply = {"err": repr(e)}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()

    for t in tasks:
        t.cancel()
    if pc is not None:
        await pc.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(main())
