//! The packetizing model shared by all payload formats.
//!
//! Sending: a codec [`Payloader`] borrows one frame and writes its RTP
//! payloads one at a time into a caller buffer (the frame is never copied
//! as a whole). [`RtpPacketizer`] keeps a stream's SSRC, payload type and
//! sequence counter and wraps each payload in an RTP header:
//!
//! ```
//! use tinyrtc::rtp::{packetizer::RtpPacketizer, h264::H264Payloader};
//! let au = [0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21];
//! let mut stream = RtpPacketizer::new(0x1234, 96, 1000, 1200);
//! let mut packets = stream.frame(H264Payloader::new(&au), 90_000);
//! let mut buf = [0u8; 1500];
//! while let Some(len) = packets.next_packet(&mut buf) {
//!     let len = len.unwrap();
//!     // send &buf[..len]
//! #   assert_eq!(len, 12 + 4);
//! }
//! ```
//!
//! Receiving: a [`Depacketizer`] takes payloads in sequence order (the
//! receiver's reordering buffer provides that) and reassembles each frame
//! into storage the caller gives it. A frame with a missing packet is
//! dropped, never handed out partly; [`Depacketizer::dropped_frames`]
//! counts them.

use super::seq::seq_after;
use super::wire::{Extension, RtpHeader, RtpPacket};
use super::Error;

/// Where one payload ended up in the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// Payload bytes written at the start of the buffer.
    pub len: usize,
    /// Last payload of the frame: the RTP marker bit for video.
    pub last: bool,
    /// Added to the frame's RTP timestamp for this packet (non-zero only
    /// for formats that split a frame over time, like G.711 samples).
    pub timestamp_offset: u32,
}

/// A payload format's sender half, borrowing one frame.
pub trait Payloader {
    /// Write the next payload into `buf`, using at most `buf.len()` bytes
    /// (the space an MTU leaves after the RTP header). `None` once the
    /// frame is exhausted.
    fn next_payload(&mut self, buf: &mut [u8]) -> Option<Result<Chunk, Error>>;
}

/// Per-stream RTP header state: SSRC, payload type, next sequence number
/// and the MTU each packet must fit (header included). 12 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacketizer {
    pub ssrc: u32,
    pub payload_type: u8,
    /// Largest RTP packet to produce, header included (no SRTP tag: leave
    /// room for it when choosing the MTU).
    pub mtu: usize,
    next_seq: u16,
}

impl RtpPacketizer {
    /// `initial_seq` should be random (RFC 3550 section 5.1).
    pub fn new(ssrc: u32, payload_type: u8, initial_seq: u16, mtu: usize) -> Self {
        RtpPacketizer { ssrc, payload_type, mtu, next_seq: initial_seq }
    }

    /// The sequence number the next packet will carry.
    pub fn next_sequence_number(&self) -> u16 {
        self.next_seq
    }

    /// Start packetizing one frame with RTP timestamp `timestamp`.
    pub fn frame<P: Payloader>(&mut self, payloader: P, timestamp: u32) -> FramePackets<'_, P> {
        FramePackets { stream: self, payloader, timestamp, done: false }
    }
}

/// The packets of one frame, produced one at a time.
#[derive(Debug)]
pub struct FramePackets<'s, P> {
    stream: &'s mut RtpPacketizer,
    payloader: P,
    timestamp: u32,
    done: bool,
}

impl<P: Payloader> FramePackets<'_, P> {
    /// Write the next RTP packet into `buf`; returns its length.
    pub fn next_packet(&mut self, buf: &mut [u8]) -> Option<Result<usize, Error>> {
        self.next_packet_with(buf, &[])
    }

    /// Like [`next_packet`](Self::next_packet), with header extensions
    /// (mid, abs-send-time, transport-wide sequence number...).
    pub fn next_packet_with(&mut self, buf: &mut [u8], extensions: &[Extension<'_>]) -> Option<Result<usize, Error>> {
        if self.done {
            return None;
        }
        let mut header = RtpHeader {
            marker: false,
            payload_type: self.stream.payload_type,
            sequence_number: self.stream.next_seq,
            timestamp: self.timestamp,
            ssrc: self.stream.ssrc,
            csrcs: &[],
            extensions,
        };
        let hlen = match header.len() {
            Ok(l) => l,
            Err(e) => return Some(Err(e)),
        };
        let limit = self.stream.mtu.min(buf.len());
        if limit <= hlen {
            return Some(Err(if self.stream.mtu <= hlen { Error::MtuTooSmall } else { Error::BufferTooSmall }));
        }
        let chunk = match self.payloader.next_payload(&mut buf[hlen..limit])? {
            Ok(c) => c,
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        header.marker = chunk.last;
        header.timestamp = self.timestamp.wrapping_add(chunk.timestamp_offset);
        if let Err(e) = header.emit(buf) {
            return Some(Err(e));
        }
        self.stream.next_seq = self.stream.next_seq.wrapping_add(1);
        if chunk.last {
            self.done = true;
        }
        Some(Ok(hlen + chunk.len))
    }
}

/// A reassembled frame, whose bytes are [`Depacketizer::frame`] until the
/// next push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Frame {
    pub len: usize,
    pub timestamp: u32,
    /// Decodable on its own (H.264 IDR, VP8 key frame, JPEG; audio: always false).
    pub keyframe: bool,
}

/// A payload format's receiver half.
pub trait Depacketizer {
    /// Feed one packet's payload, in sequence order (duplicates and late
    /// packets are ignored). Returns a frame when one is complete.
    fn push(&mut self, seq: u16, timestamp: u32, marker: bool, payload: &[u8]) -> Result<Option<Frame>, Error>;
    /// The bytes of the frame the last `push` returned.
    fn frame(&self) -> &[u8];
    /// Frames dropped because a packet was missing or the buffer too small.
    fn dropped_frames(&self) -> u32;
    /// Convenience: feed a parsed RTP packet.
    fn push_packet<T: AsRef<[u8]>>(&mut self, p: &RtpPacket<T>) -> Result<Option<Frame>, Error> {
        self.push(p.sequence_number(), p.timestamp(), p.marker(), p.payload())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between frames.
    Idle,
    Collecting,
    /// A packet of this frame is missing: discard until the frame ends.
    Broken,
}

/// Frame reassembly into caller storage `B` with loss detection, shared by
/// the video depacketizers. Costs `B` plus 20 bytes.
#[derive(Debug)]
pub(crate) struct Assembler<B> {
    buf: B,
    len: usize,
    state: State,
    timestamp: u32,
    last_seq: Option<u16>,
    keyframe: bool,
    dropped: u32,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Assembler<B> {
    pub(crate) fn new(buf: B) -> Self {
        Assembler { buf, len: 0, state: State::Idle, timestamp: 0, last_seq: None, keyframe: false, dropped: 0 }
    }

    fn drop_frame(&mut self) {
        if self.state == State::Collecting {
            self.dropped = self.dropped.saturating_add(1);
        }
        self.state = State::Broken;
    }

    /// Decide whether this packet's payload is to be appended.
    /// `starts_frame`: the payload can begin a frame.
    pub(crate) fn begin(&mut self, seq: u16, timestamp: u32, starts_frame: bool) -> bool {
        if let Some(last) = self.last_seq {
            if !seq_after(seq, last) {
                return false; // duplicate or late
            }
        }
        let contiguous = self.last_seq.map_or(true, |l| seq == l.wrapping_add(1));
        self.last_seq = Some(seq);
        if self.state != State::Idle && timestamp != self.timestamp {
            // The previous frame never saw its marker.
            self.drop_frame();
            self.state = State::Idle;
        }
        if self.state == State::Idle {
            self.timestamp = timestamp;
            self.len = 0;
            self.keyframe = false;
            if starts_frame && contiguous {
                self.state = State::Collecting;
            } else {
                self.state = State::Collecting;
                self.drop_frame();
            }
        } else if !contiguous {
            self.drop_frame();
        }
        self.state == State::Collecting
    }

    /// Break the current frame (malformed fragment sequence).
    pub(crate) fn fail(&mut self) {
        self.drop_frame();
    }

    pub(crate) fn set_keyframe(&mut self) {
        self.keyframe = true;
    }

    pub(crate) fn append(&mut self, parts: &[&[u8]]) -> Result<(), Error> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let buf = self.buf.as_mut();
        let Some(dst) = buf.get_mut(self.len..self.len + total) else {
            self.drop_frame();
            return Err(Error::BufferTooSmall);
        };
        let mut at = 0;
        for p in parts {
            dst[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        self.len += total;
        Ok(())
    }

    /// The packet has been consumed; `complete` ends the frame.
    pub(crate) fn end(&mut self, complete: bool) -> Option<Frame> {
        if !complete {
            return None;
        }
        let out = (self.state == State::Collecting).then_some(Frame {
            len: self.len,
            timestamp: self.timestamp,
            keyframe: self.keyframe,
        });
        self.state = State::Idle;
        out
    }

    /// Bytes collected for the current frame.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn frame_mut(&mut self) -> &mut [u8] {
        let len = self.len;
        self.buf.as_mut().get_mut(..len).unwrap_or(&mut [])
    }

    pub(crate) fn frame(&self) -> &[u8] {
        self.buf.as_ref().get(..self.len).unwrap_or(&[])
    }

    pub(crate) fn dropped(&self) -> u32 {
        self.dropped
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    extern crate std;
    use super::*;

    /// Packetize `frame` with `P` at `mtu`, feed every packet through `D`
    /// (optionally skipping packet index `lose`), return the frames' bytes
    /// concatenated into `out` and the number of packets.
    pub fn round_trip<P: Payloader, D: Depacketizer>(
        payloader: P,
        depack: &mut D,
        mtu: usize,
        ts: u32,
        lose: Option<usize>,
        out: &mut std::vec::Vec<u8>,
    ) -> Result<(usize, std::vec::Vec<Frame>), Error> {
        let mut stream = RtpPacketizer::new(7, 96, 65530, mtu);
        let mut packets = stream.frame(payloader, ts);
        let mut buf = std::vec![0u8; mtu + 64];
        let mut n = 0;
        let mut frames = std::vec::Vec::new();
        while let Some(r) = packets.next_packet(&mut buf) {
            let len = r?;
            assert!(len <= mtu, "packet {len} > mtu {mtu}");
            let p = RtpPacket::new_checked(&buf[..len])?;
            if lose != Some(n) {
                if let Some(f) = depack.push_packet(&p)? {
                    out.extend_from_slice(depack.frame());
                    frames.push(f);
                }
            }
            n += 1;
        }
        Ok((n, frames))
    }
}
