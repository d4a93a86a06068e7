//! Loss recovery of the video section of a [`PeerN`](super::PeerN).
//!
//! - Sending: every video packet sent is kept in a bounded history
//!   ([`RtpSender`], `TXH` bytes of storage); generic NACKs (RFC 4585
//!   section 6.2.1) are answered from it, in RTX form (RFC 4588 section 4:
//!   own SSRC and payload type, original sequence number first) when `rtx`
//!   was negotiated, as the original packet otherwise.
//! - Receiving: a reordering buffer ([`RtpReceiver`], `RXB` bytes) holds
//!   packets that arrive after a gap; the in-order packet is handed out in
//!   place (no copy). Missing packets are NACKed after [`NACK_DELAY`]
//!   (reordering tolerance), then with backoff (RTT x
//!   1.5^attempt), given up after [`GIVE_UP_AFTER`]; a packet given up
//!   means its frame is lost, so a PLI (RFC 4585 section 6.3.1) is sent
//!   and repeated until a keyframe arrives.
//!
//! - The first video packets are held for [`START_HOLD`] so that packets
//!   overtaken by the first arrival still come out in order; delivery
//!   then starts at a `handle_timeout`. Held packets are read with
//!   [`PeerN::poll_media`](super::PeerN::poll_media).
//!
//! Limits: a packet lost at the very end of a burst is only noticed when a
//! later one arrives (no tail-loss probe); when the reordering buffer is
//! full the oldest missing packets are given up early, so size it for
//! [`GIVE_UP_AFTER`] worth of packets.
//!
//! Only video is protected: audio is not NACKed (a late audio packet is
//! useless; Opus has its own in-band FEC).
//!
//! The sender and receiver write no reports of their own: the `Peer`
//! sends one compound SR/RR per interval for all sections.

use crate::rtp::receiver::{Arrival, KeyframeDetect, ReceiverConfig, RtpReceiver};
use crate::rtp::sender::{PacketKind, RtpSender, RtxConfig, SenderConfig};
use crate::rtp::wire::RtpPacket;
use crate::sdp::{CodecChoice, Feedback};
use crate::time::{Duration, Instant};

use super::track::Track;

/// A missing packet is given up (and a PLI sent) this long after the gap
/// was seen.
pub const GIVE_UP_AFTER: Duration = Duration::from_millis(1000);

/// The first received video packets are held this long, so that packets
/// overtaken by the first one to arrive (jitter) are still handed out in
/// order; delivery then starts from [`PeerN::handle_timeout`](super::PeerN::handle_timeout)
/// through [`PeerN::poll_media`](super::PeerN::poll_media).
pub const START_HOLD: Duration = Duration::from_millis(30);

/// A gap in the received video is NACKed this long after it is seen, so
/// that packets only reordered by jitter do not cause retransmissions.
pub const NACK_DELAY: Duration = Duration::from_millis(10);

/// RTX adds the 2-byte original sequence number to each retransmission;
/// the packetizer leaves room for it when RTX is negotiated.
pub const RTX_OVERHEAD: usize = 2;

/// The video recovery state of one session.
pub(crate) struct Recovery<const TXH: usize, const RXB: usize> {
    sender: Option<RtpSender<[u8; TXH]>>,
    receiver: Option<RtpReceiver<[u8; RXB]>>,
    /// Receiver parameters until the remote SSRC is known.
    rx_template: Option<ReceiverConfig>,
    /// Negotiated RTX payload type of the stream we receive.
    remote_rtx_pt: Option<u8>,
}

impl<const TXH: usize, const RXB: usize> core::fmt::Debug for Recovery<TXH, RXB> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Recovery")
            .field("sender", &self.sender.as_ref().map(|s| s.stats()))
            .field("receiver", &self.receiver.as_ref().map(|r| r.stats()))
            .finish()
    }
}

impl<const TXH: usize, const RXB: usize> Recovery<TXH, RXB> {
    pub const fn new() -> Self {
        Recovery { sender: None, receiver: None, rx_template: None, remote_rtx_pt: None }
    }

    /// Set up after negotiation for the video `track`. `rtx_pt`: the
    /// negotiated RTX payload type; `local_rtx_ssrc`: ours; `remote_rtx_ssrc`:
    /// theirs (from the FID group, else learned from the first RTX packet).
    #[allow(clippy::too_many_arguments)]
    pub fn configure(
        &mut self,
        track: &Track,
        rtx_pt: Option<u8>,
        local_rtx_ssrc: u32,
        remote_rtx_ssrc: Option<u32>,
        rtx_initial_seq: u16,
        mtu: usize,
    ) {
        *self = Self::new();
        if !track.feedback.contains(Feedback::NACK) {
            return;
        }
        // A zero-sized side is off (the const parameter says so).
        if track.direction.sends() && TXH > 0 {
            let mut cfg = SenderConfig::new(track.local_ssrc, 90_000);
            cfg.rtx = rtx_pt.map(|payload_type| RtxConfig { ssrc: local_rtx_ssrc, payload_type });
            cfg.rtx_initial_seq = rtx_initial_seq;
            cfg.send_reports = false;
            cfg.max_packet = mtu;
            self.sender = Some(RtpSender::new(cfg, [0u8; TXH]));
        }
        if track.direction.receives() && RXB > 0 {
            let mut cfg = ReceiverConfig::new(track.local_ssrc, 0, 90_000);
            cfg.rtx = rtx_pt.zip(remote_rtx_ssrc).map(|(payload_type, ssrc)| RtxConfig { ssrc, payload_type });
            cfg.rtx_original_payload_type = track.payload_type;
            cfg.send_reports = false;
            cfg.give_up_after = GIVE_UP_AFTER;
            cfg.keyframe_detect = match track.codec {
                CodecChoice::Vp8 => KeyframeDetect::Vp8,
                CodecChoice::H264ConstrainedBaseline | CodecChoice::H264Baseline => KeyframeDetect::H264,
                _ => KeyframeDetect::None,
            };
            cfg.keyframe_request_interval = Duration::from_millis(500);
            cfg.max_packet = mtu;
            cfg.start_hold = START_HOLD;
            cfg.nack_delay = NACK_DELAY;
            self.remote_rtx_pt = rtx_pt;
            self.rx_template = Some(cfg);
        }
    }

    /// The history, for recording each packet as it is sent.
    pub fn history(&mut self) -> Option<&mut RtpSender<[u8; TXH]>> {
        self.sender.as_mut()
    }

    /// Whether RTP payload type `pt` is the RTX format of the received video.
    pub fn is_remote_rtx(&self, pt: u8) -> bool {
        self.remote_rtx_pt == Some(pt)
    }

    /// Feed a received video RTP packet (original or RTX, decrypted and
    /// parsed) of remote SSRC `primary`. `None`: recovery is off for this
    /// stream, the caller delivers the packet itself.
    pub fn on_rtp(&mut self, now: Instant, primary: u32, packet: RtpPacket<&[u8]>) -> Option<Arrival> {
        if self.receiver.is_none() {
            let mut cfg = self.rx_template.take()?;
            cfg.remote_ssrc = primary;
            self.receiver = Some(RtpReceiver::new(cfg, [0u8; RXB]));
        }
        let r = self.receiver.as_mut()?;
        if packet.ssrc() != primary && r.config().rtx.is_none() {
            if let Some(payload_type) = self.remote_rtx_pt {
                r.set_rtx(RtxConfig { ssrc: packet.ssrc(), payload_type });
            }
        }
        match r.handle_rtp_in_place(now, packet.into_inner()) {
            Ok(a) => Some(a),
            // Too large for a slot, or no slot at all: hand it out as is.
            Err(crate::rtp::Error::BufferTooSmall) => None,
            Err(_) => Some(Arrival::Duplicate),
        }
    }

    /// The next held packet in sequence order, copied into `buf`.
    pub fn poll_packet(&mut self, buf: &mut [u8]) -> Option<usize> {
        let r = self.receiver.as_mut()?;
        loop {
            match r.poll_packet(buf)? {
                Ok(n) => return Some(n),
                // Does not fit the caller's buffer: dropped (counted as lost).
                Err(_) => continue,
            }
        }
    }

    /// Feed a received compound RTCP packet (decrypted): NACKs of our video.
    pub fn on_rtcp(&mut self, now: Instant, compound: &[u8]) {
        if let Some(s) = self.sender.as_mut() {
            let _ = s.handle_rtcp(now, compound);
            // PLI/FIR and reports are handled by the session itself.
            while s.poll_event().is_some() {}
        }
    }

    /// The next retransmission (RTP) or NACK/PLI (RTCP) to protect and send:
    /// (length, is RTCP).
    pub fn poll_transmit(&mut self, now: Instant, rtt: Option<Duration>, buf: &mut [u8]) -> Option<(usize, bool)> {
        if let Some(s) = self.sender.as_mut() {
            if let Some(o) = s.poll_transmit(now, buf) {
                return Some((o.len, o.kind == PacketKind::Rtcp));
            }
        }
        let r = self.receiver.as_mut()?;
        if let Some(rtt) = rtt {
            r.set_rtt(rtt);
        }
        let o = r.poll_transmit(now, buf)?;
        while r.poll_event().is_some() {}
        Some((o.len, true))
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let s = self.sender.as_ref().and_then(|s| s.poll_timeout());
        let r = self.receiver.as_ref().and_then(|r| r.poll_timeout());
        [s, r].into_iter().flatten().min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(r) = self.receiver.as_mut() {
            r.handle_timeout(now);
            while r.poll_event().is_some() {}
        }
    }

    /// `stats` of the video section with the recovery counters filled in.
    pub fn add_counters(&self, mut stats: super::TrackStats) -> super::TrackStats {
        if let Some(s) = &self.sender {
            let st = s.stats();
            stats.retransmissions_sent = st.retransmitted;
            stats.retransmit_misses = st.retransmit_misses;
        }
        if let Some(r) = &self.receiver {
            let st = r.stats();
            stats.nacks_sent = st.nacked_packets;
            stats.retransmissions_received = st.retransmissions_received;
            stats.packets_given_up = st.lost_given_up;
            stats.keyframe_requests_sent = stats.keyframe_requests_sent.saturating_add(st.plis_sent);
        }
        stats
    }
}

impl<
        const HS: usize,
        const FLIGHT: usize,
        const APP: usize,
        const STREAMS: usize,
        const CHBUF: usize,
        const CHANNELS: usize,
        const CHUNKS: usize,
        const TXH: usize,
        const RXB: usize,
    > super::PeerN<HS, FLIGHT, APP, STREAMS, CHBUF, CHANNELS, CHUNKS, TXH, RXB>
{
    /// A decrypted video RTP packet (`rtx`: in RTX form) through the
    /// reordering buffer: the packet itself if it is next in order.
    pub(super) fn receive_video(&mut self, now: Instant, p: RtpPacket<&[u8]>, rtx: bool) -> Option<super::MediaPacket> {
        let primary = self.video.as_ref()?.remote_ssrc?;
        let (seq, extra) = if rtx {
            let osn = p.payload().get(..2)?;
            (u16::from_be_bytes([osn[0], osn[1]]), RTX_OVERHEAD)
        } else {
            (p.sequence_number(), 0)
        };
        let arrival = self.recovery.on_rtp(now, primary, p);
        let t = self.video.as_mut()?;
        let payload_len = p.payload().len().saturating_sub(extra);
        match arrival {
            Some(Arrival::InOrder { .. }) => {}
            None if !rtx => {}
            Some(Arrival::Buffered) => {
                t.on_rtp(seq, payload_len);
                return None;
            }
            _ => {
                self.datagrams_dropped += 1;
                return None;
            }
        }
        t.on_rtp(seq, payload_len);
        Some(super::MediaPacket {
            kind: t.kind,
            codec: t.codec,
            payload_type: t.payload_type,
            ssrc: primary,
            sequence_number: seq,
            timestamp: p.timestamp(),
            marker: p.marker(),
            payload_offset: p.header_len() + extra,
            payload_len,
        })
    }

    /// The next received video packet that was held in the reordering
    /// buffer (it arrived after a gap that is now filled or given up),
    /// copied into `buf` (at least the MTU): payload at
    /// `buf[payload_offset..][..payload_len]`. Drain it after each
    /// [`handle_receive`](Self::handle_receive) and
    /// [`handle_timeout`](Self::handle_timeout).
    pub fn poll_media(&mut self, buf: &mut [u8]) -> Option<super::MediaPacket> {
        let t = self.video.as_ref()?;
        let (kind, codec, payload_type) = (t.kind, t.codec, t.payload_type);
        loop {
            let n = self.recovery.poll_packet(buf)?;
            let Some(p) = buf.get(..n).and_then(|b| RtpPacket::new_checked(b).ok()) else { continue };
            return Some(super::MediaPacket {
                kind,
                codec,
                payload_type,
                ssrc: p.ssrc(),
                sequence_number: p.sequence_number(),
                timestamp: p.timestamp(),
                marker: p.marker(),
                payload_offset: p.header_len(),
                payload_len: p.payload().len(),
            });
        }
    }

    /// A due retransmission, NACK or PLI, protected into `buf`.
    pub(super) fn write_recovery(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let rtt = [self.video.as_ref(), self.audio.as_ref()]
            .into_iter()
            .flatten()
            .map(|t| t.stats.rtt_us)
            .find(|r| *r > 0)
            .map(Duration::from_micros);
        let srtp = self.srtp_tx.as_mut()?;
        loop {
            let (len, rtcp) = self.recovery.poll_transmit(now, rtt, buf)?;
            let protected = if rtcp { srtp.protect_rtcp(buf, len) } else { srtp.protect_rtp(buf, len) };
            if let Ok(n) = protected {
                return Some(n);
            }
        }
    }
}
