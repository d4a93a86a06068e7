//! The sending side of one RTP stream (one SSRC), sans-IO.
//!
//! - Sender reports (RFC 3550 section 6.4.1) every `rtcp_interval`, with
//!   SDES CNAME (section 6.5.1), mapping the caller's clock to NTP time
//!   ([`RtpSender::set_ntp_mapping`], else the caller's clock origin at the
//!   Unix epoch, [`crate::rtcp::wire::ntp_from_instant`]) and
//!   to the RTP clock (from the last packet sent).
//! - A bounded history of sent packets (caller storage) answers generic
//!   NACKs (RFC 4585 section 6.2.1): retransmitted in RTX form (RFC 4588
//!   section 4: RTX SSRC and payload type, original sequence number first
//!   in the payload) when configured, as the original packet otherwise.
//!   The same packet is not resent twice within `min_retransmit_interval`.
//! - PLI (RFC 4585 6.3.1) and FIR (RFC 5104 4.3.1) become
//!   [`SenderEvent::KeyframeRequested`], at most one per
//!   `keyframe_request_interval` however many receivers ask.
//! - RR report blocks about this SSRC give round-trip time (RFC 3550
//!   section 6.4.1, LSR/DLSR) and loss; REMB is surfaced as an event.
//!
//! Use: after sending each RTP packet call [`RtpSender::handle_sent`]; feed
//! RTCP with [`RtpSender::handle_rtcp`]; drain `poll_transmit` and
//! `poll_event`; call `handle_timeout` at `poll_timeout`.
//!
//! Left out: RTCP transmission-interval randomization (section 6.3),
//! pacing, congestion control.

use super::seq::SeqUnwrapper;
use super::store::{PacketStore, SLOT_OVERHEAD};
use super::wire::RtpPacket;
use super::Error;
use crate::rtcp::wire::{micros_to_ntp, ntp_middle, CompoundIter, CompoundWriter, NtpTime, RtcpPacket, SenderInfo};
use crate::time::{Duration, Instant};

/// Retransmissions waiting to be sent (NACKed sequence numbers); 2 bytes each.
pub const MAX_PENDING_RETRANSMITS: usize = 128;
/// Events buffered until polled; 24 bytes each.
pub const MAX_SENDER_EVENTS: usize = 8;
/// Longest CNAME kept.
pub const MAX_CNAME: usize = 32;
/// Default history: packets kept for retransmission.
pub const DEFAULT_HISTORY_PACKETS: usize = 256;
/// Default largest RTP packet kept.
pub const DEFAULT_MAX_PACKET: usize = 1200;
/// Bytes of storage for the default history (256 x 1218 = 311,808 bytes).
pub const DEFAULT_HISTORY_BYTES: usize = DEFAULT_HISTORY_PACKETS * (DEFAULT_MAX_PACKET + SLOT_OVERHEAD);

/// A sender with the default history held inline (about 305 KiB: hosts;
/// on a microcontroller pass a smaller `&mut [u8]`).
pub type DefaultRtpSender = RtpSender<[u8; DEFAULT_HISTORY_BYTES]>;

/// RTX stream parameters (RFC 4588), negotiated in SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtxConfig {
    pub ssrc: u32,
    pub payload_type: u8,
}

/// Sender configuration (plain data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderConfig {
    pub ssrc: u32,
    /// RTP clock rate (90000 video, 48000 Opus, 8000 G.711).
    pub clock_rate: u32,
    pub rtx: Option<RtxConfig>,
    /// First RTX sequence number (should be random).
    pub rtx_initial_seq: u16,
    /// CNAME sent in SDES with every SR (empty: no SDES).
    pub cname: heapless::Vec<u8, MAX_CNAME>,
    /// Time between sender reports (default 1 s).
    pub rtcp_interval: Duration,
    /// Write sender reports (default true; false when the owner sends its
    /// own, as the `Peer` does).
    pub send_reports: bool,
    /// Keyframe requests closer than this to the last one surfaced are
    /// collapsed into it (default 500 ms).
    pub keyframe_request_interval: Duration,
    /// A packet is not resent again within this time (default 10 ms).
    pub min_retransmit_interval: Duration,
    /// Largest packet the history keeps (default 1200).
    pub max_packet: usize,
}

impl SenderConfig {
    pub fn new(ssrc: u32, clock_rate: u32) -> Self {
        SenderConfig {
            ssrc,
            clock_rate,
            rtx: None,
            rtx_initial_seq: 0,
            cname: heapless::Vec::new(),
            rtcp_interval: Duration::from_secs(1),
            send_reports: true,
            keyframe_request_interval: Duration::from_millis(500),
            min_retransmit_interval: Duration::from_millis(10),
            max_packet: DEFAULT_MAX_PACKET,
        }
    }
}

/// What the sender tells its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SenderEvent {
    /// Send a keyframe soon (`fir`: at least one request was a FIR).
    KeyframeRequested { fir: bool },
    /// A receiver's report about this stream.
    ReceiverReport {
        reporter_ssrc: u32,
        fraction_lost: u8,
        cumulative_lost: i32,
        jitter: u32,
        /// Round-trip time, when the report echoed one of our SRs.
        rtt_us: Option<u64>,
    },
    /// Receiver-estimated maximum bitrate.
    Remb { bitrate_bps: u64 },
    /// The receiver left.
    Bye { ssrc: u32 },
}

/// Kind of packet `poll_transmit` wrote (protect RTP with SRTP, RTCP with SRTCP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PacketKind {
    Rtp,
    Rtcp,
}

/// A packet written by `poll_transmit` at the start of the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Outgoing {
    pub len: usize,
    pub kind: PacketKind,
}

/// Counters (plain data).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SenderStats {
    pub packets_sent: u32,
    /// Payload octets (RFC 3550 SR octet count).
    pub octets_sent: u32,
    pub nacks_received: u32,
    pub retransmitted: u32,
    /// NACKed packets no longer (or never) in the history.
    pub retransmit_misses: u32,
    pub keyframe_requests_received: u32,
    pub keyframe_requests_surfaced: u32,
    pub rtt_us: Option<u64>,
}

/// The sending side of one stream over history storage `B`.
#[derive(Debug)]
pub struct RtpSender<B> {
    config: SenderConfig,
    history: PacketStore<B>,
    unwrap: SeqUnwrapper,
    pending: heapless::Deque<u16, MAX_PENDING_RETRANSMITS>,
    events: heapless::Deque<SenderEvent, MAX_SENDER_EVENTS>,
    stats: SenderStats,
    /// NTP time at Instant::ZERO of the caller's clock.
    ntp_base: Option<(Instant, NtpTime)>,
    /// RTP timestamp and time of the last packet sent.
    last_rtp: Option<(u32, Instant)>,
    next_report: Option<Instant>,
    last_keyframe_request: Option<Instant>,
    rtx_seq: u16,
    /// LSR values of SRs sent (middle NTP bits), for RTT.
    last_sr_ntp: Option<u32>,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> RtpSender<B> {
    /// `history` storage holds `len / (max_packet + 18)` packets.
    pub fn new(config: SenderConfig, history: B) -> Self {
        let rtx_seq = config.rtx_initial_seq;
        let history = PacketStore::new(history, config.max_packet);
        RtpSender {
            config,
            history,
            unwrap: SeqUnwrapper::new(),
            pending: heapless::Deque::new(),
            events: heapless::Deque::new(),
            stats: SenderStats::default(),
            ntp_base: None,
            last_rtp: None,
            next_report: None,
            last_keyframe_request: None,
            rtx_seq,
            last_sr_ntp: None,
        }
    }

    pub fn config(&self) -> &SenderConfig {
        &self.config
    }

    pub fn stats(&self) -> SenderStats {
        self.stats
    }

    /// Packets the history can hold.
    pub fn history_capacity(&self) -> usize {
        self.history.capacity()
    }

    /// Tell the sender that wall-clock time `ntp` corresponds to `now`.
    pub fn set_ntp_mapping(&mut self, now: Instant, ntp: NtpTime) {
        self.ntp_base = Some((now, ntp));
    }

    /// NTP time of `now` ([`crate::rtcp::wire::ntp_from_instant`] if no mapping was given).
    pub fn ntp_time(&self, now: Instant) -> NtpTime {
        match self.ntp_base {
            Some((at, ntp)) => {
                if now >= at {
                    ntp.wrapping_add(micros_to_ntp((now - at).as_micros()))
                } else {
                    ntp.wrapping_sub(micros_to_ntp((at - now).as_micros()))
                }
            }
            None => crate::rtcp::wire::ntp_from_instant(now),
        }
    }

    /// Record an RTP packet of this stream that the caller has just sent
    /// (copied into the history if it fits `max_packet`).
    pub fn handle_sent(&mut self, now: Instant, packet: &[u8]) -> Result<(), Error> {
        let p = RtpPacket::new_checked(packet)?;
        if p.ssrc() != self.config.ssrc {
            return Err(Error::BadPayload);
        }
        self.stats.packets_sent = self.stats.packets_sent.wrapping_add(1);
        self.stats.octets_sent = self.stats.octets_sent.wrapping_add(p.payload().len() as u32);
        self.last_rtp = Some((p.timestamp(), now));
        if self.next_report.is_none() && self.config.send_reports {
            self.next_report = Some(now);
        }
        let ext = self.unwrap.unwrap(p.sequence_number());
        if packet.len() <= self.history.max_packet() {
            if let Some(slot) = self.history.slot_for(ext) {
                slot[..packet.len()].copy_from_slice(packet);
                // Time 0: never retransmitted.
                self.history.commit(ext, packet.len(), 0);
            }
        }
        Ok(())
    }

    fn push_event(&mut self, e: SenderEvent) {
        if self.events.is_full() {
            self.events.pop_front();
        }
        let _ = self.events.push_back(e);
    }

    fn keyframe_request(&mut self, now: Instant, fir: bool) {
        self.stats.keyframe_requests_received = self.stats.keyframe_requests_received.saturating_add(1);
        let recent = self.last_keyframe_request.is_some_and(|t| now - t < self.config.keyframe_request_interval);
        if recent {
            return;
        }
        self.last_keyframe_request = Some(now);
        self.stats.keyframe_requests_surfaced = self.stats.keyframe_requests_surfaced.saturating_add(1);
        self.push_event(SenderEvent::KeyframeRequested { fir });
    }

    /// Process a compound RTCP packet (already SRTCP-unprotected). Parts
    /// about other SSRCs are ignored.
    pub fn handle_rtcp(&mut self, now: Instant, compound: &[u8]) -> Result<(), crate::rtcp::Error> {
        let ssrc = self.config.ssrc;
        for p in CompoundIter::new(compound) {
            match p? {
                RtcpPacket::Nack { media_ssrc, items, .. } if media_ssrc == ssrc => {
                    self.stats.nacks_received = self.stats.nacks_received.saturating_add(1);
                    for seq in items.flat_map(|i| i.lost()) {
                        if !self.pending.iter().any(|s| *s == seq) {
                            if self.pending.is_full() {
                                self.pending.pop_front();
                            }
                            let _ = self.pending.push_back(seq);
                        }
                    }
                }
                RtcpPacket::Pli { media_ssrc, .. } if media_ssrc == ssrc => self.keyframe_request(now, false),
                RtcpPacket::Fir { mut entries, .. } => {
                    let ours = entries.any(|(s, _)| s == ssrc);
                    if ours {
                        self.keyframe_request(now, true);
                    }
                }
                RtcpPacket::ReceiverReport { ssrc: reporter, reports }
                | RtcpPacket::SenderReport { ssrc: reporter, reports, .. } => {
                    for b in reports.filter(|b| b.ssrc == ssrc) {
                        let rtt_us = (b.last_sr != 0).then(|| {
                            let now_mid = ntp_middle(self.ntp_time(now));
                            let rtt = now_mid.wrapping_sub(b.last_sr).wrapping_sub(b.delay_since_last_sr);
                            crate::rtcp::wire::units_1_65536_to_micros(rtt)
                        });
                        // A wrapped (negative) value means clocks disagree: ignore it.
                        let rtt_us = rtt_us.filter(|r| *r < 60_000_000);
                        if rtt_us.is_some() {
                            self.stats.rtt_us = rtt_us;
                        }
                        self.push_event(SenderEvent::ReceiverReport {
                            reporter_ssrc: reporter,
                            fraction_lost: b.fraction_lost,
                            cumulative_lost: b.cumulative_lost,
                            jitter: b.jitter,
                            rtt_us,
                        });
                    }
                }
                RtcpPacket::Remb { bitrate_bps, mut ssrcs, .. } => {
                    let ours = ssrcs.any(|s| s == ssrc);
                    if ours {
                        self.push_event(SenderEvent::Remb { bitrate_bps });
                    }
                }
                RtcpPacket::Bye { sources, .. } => {
                    for s in sources {
                        self.push_event(SenderEvent::Bye { ssrc: s });
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Write the retransmission of `seq` into `buf`, if it is in the history.
    fn retransmit(&mut self, now: Instant, seq: u16, buf: &mut [u8]) -> Option<usize> {
        let highest = self.unwrap.highest()?;
        // Extended number of `seq` near the highest sent.
        let back = (highest as u16).wrapping_sub(seq) as u64;
        let ext = highest.checked_sub(back)?;
        let (pkt, last_resent) = self.history.get(ext)?;
        if last_resent != 0 && now.as_micros() < last_resent + self.config.min_retransmit_interval.as_micros() {
            return None;
        }
        let p = RtpPacket::new_checked(pkt).ok()?;
        let len = match self.config.rtx {
            None => {
                let n = p.header_len() + p.payload().len();
                let dst = buf.get_mut(..n)?;
                dst.copy_from_slice(&pkt[..n]);
                dst[0] &= !0x20; // padding dropped
                n
            }
            Some(rtx) => {
                // Same header (CSRCs, extensions), RTX SSRC/PT/sequence, OSN first.
                let h = p.header_len();
                let n = h + 2 + p.payload().len();
                let dst = buf.get_mut(..n)?;
                dst[..h].copy_from_slice(&pkt[..h]);
                dst[0] &= !0x20;
                dst[1] = (dst[1] & 0x80) | (rtx.payload_type & 0x7f);
                dst[2..4].copy_from_slice(&self.rtx_seq.to_be_bytes());
                dst[8..12].copy_from_slice(&rtx.ssrc.to_be_bytes());
                dst[h..h + 2].copy_from_slice(&seq.to_be_bytes());
                dst[h + 2..].copy_from_slice(p.payload());
                self.rtx_seq = self.rtx_seq.wrapping_add(1);
                n
            }
        };
        self.history.set_time(ext, now.as_micros().max(1));
        Some(len)
    }

    /// Next packet to send: retransmissions first, then a due SR + SDES.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Outgoing> {
        while let Some(seq) = self.pending.pop_front() {
            match self.retransmit(now, seq, buf) {
                Some(len) => {
                    self.stats.retransmitted = self.stats.retransmitted.saturating_add(1);
                    return Some(Outgoing { len, kind: PacketKind::Rtp });
                }
                None => self.stats.retransmit_misses = self.stats.retransmit_misses.saturating_add(1),
            }
        }
        let due = self.next_report.is_some_and(|t| now >= t);
        if due {
            let (rtp_ts, at) = self.last_rtp?;
            let elapsed = (now - at).as_micros() as u128;
            let rtp_time = rtp_ts.wrapping_add((elapsed * self.config.clock_rate as u128 / 1_000_000) as u32);
            let ntp = self.ntp_time(now);
            let info = SenderInfo {
                ntp_time: ntp,
                rtp_time,
                packet_count: self.stats.packets_sent,
                octet_count: self.stats.octets_sent,
            };
            let mut w = CompoundWriter::new(buf);
            w.sender_report(self.config.ssrc, &info, &[]).ok()?;
            if !self.config.cname.is_empty() {
                w.sdes_cname(self.config.ssrc, &self.config.cname).ok()?;
            }
            self.last_sr_ntp = Some(ntp_middle(ntp));
            self.next_report = Some(now + self.config.rtcp_interval);
            return Some(Outgoing { len: w.len(), kind: PacketKind::Rtcp });
        }
        None
    }

    pub fn poll_event(&mut self) -> Option<SenderEvent> {
        self.events.pop_front()
    }

    /// When to call `handle_timeout` / `poll_transmit` next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.pending.is_empty() {
            return self.last_rtp.map(|(_, t)| t);
        }
        self.next_report
    }

    /// Time has passed; due reports are written by the next `poll_transmit`.
    pub fn handle_timeout(&mut self, _now: Instant) {}
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::rtcp::wire::ReportBlock;
    use crate::rtp::wire::RtpHeader;

    fn packet(seq: u16, payload: &[u8], buf: &mut [u8]) -> usize {
        let h = RtpHeader {
            payload_type: 96,
            sequence_number: seq,
            timestamp: seq as u32 * 3000,
            ssrc: 0x1111,
            ..Default::default()
        };
        let n = h.emit(buf).unwrap();
        buf[n..n + payload.len()].copy_from_slice(payload);
        n + payload.len()
    }

    #[test]
    fn nack_answered_with_rtx_and_plain() {
        for rtx in [None, Some(RtxConfig { ssrc: 0x2222, payload_type: 97 })] {
            let mut cfg = SenderConfig::new(0x1111, 90_000);
            cfg.rtx = rtx;
            cfg.rtx_initial_seq = 500;
            let mut s = RtpSender::new(cfg, std::vec![0u8; 4 * (1200 + SLOT_OVERHEAD)]);
            assert_eq!(s.history_capacity(), 4);
            let mut buf = [0u8; 1500];
            let t = Instant::from_millis(10);
            for seq in 65533..=65535u16 {
                let n = packet(seq, &[seq as u8; 10], &mut buf);
                s.handle_sent(t, &buf[..n]).unwrap();
            }
            for seq in 0..3u16 {
                let n = packet(seq, &[seq as u8; 10], &mut buf);
                s.handle_sent(t, &buf[..n]).unwrap();
            }
            // SR first (due at the first packet).
            assert_eq!(s.poll_transmit(t, &mut buf).unwrap().kind, PacketKind::Rtcp);
            let mut fb = [0u8; 64];
            let mut w = CompoundWriter::new(&mut fb);
            w.nack(9, 0x1111, &[65534, 65535, 1]).unwrap();
            let n = w.len();
            s.handle_rtcp(t, &fb[..n]).unwrap();
            // 65534 fell out of the 4-slot history; 65535 and 1 are resent.
            let mut got = std::vec::Vec::new();
            while let Some(o) = s.poll_transmit(t, &mut buf) {
                assert_eq!(o.kind, PacketKind::Rtp);
                let p = RtpPacket::new_checked(&buf[..o.len]).unwrap();
                match rtx {
                    Some(r) => {
                        assert_eq!((p.ssrc(), p.payload_type()), (r.ssrc, r.payload_type));
                        let osn = u16::from_be_bytes([p.payload()[0], p.payload()[1]]);
                        assert_eq!(&p.payload()[2..], &[osn as u8; 10]);
                        got.push((osn, p.sequence_number()));
                    }
                    None => {
                        assert_eq!(p.ssrc(), 0x1111);
                        got.push((p.sequence_number(), 0));
                    }
                }
            }
            match rtx {
                Some(_) => assert_eq!(got, [(65535, 500), (1, 501)]),
                None => assert_eq!(got, [(65535, 0), (1, 0)]),
            }
            assert_eq!(s.stats().retransmit_misses, 1);
            // Asked again at once: held back by min_retransmit_interval.
            s.handle_rtcp(t, &fb[..n]).unwrap();
            assert!(s.poll_transmit(t, &mut buf).is_none());
        }
    }

    #[test]
    fn keyframe_requests_collapse() {
        let mut s = RtpSender::new(SenderConfig::new(0x1111, 90_000), [0u8; 0]);
        let mut fb = [0u8; 512];
        let mut w = CompoundWriter::new(&mut fb);
        for r in 0..10 {
            w.pli(r, 0x1111).unwrap();
            w.fir(r, &[(0x1111, r as u8)]).unwrap();
        }
        w.pli(99, 0x3333).unwrap(); // another stream's
        let n = w.len();
        let t0 = Instant::from_secs(1);
        s.handle_rtcp(t0, &fb[..n]).unwrap();
        assert_eq!(s.poll_event(), Some(SenderEvent::KeyframeRequested { fir: false }));
        assert_eq!(s.poll_event(), None);
        s.handle_rtcp(t0 + Duration::from_millis(499), &fb[..n]).unwrap();
        assert_eq!(s.poll_event(), None);
        s.handle_rtcp(t0 + Duration::from_millis(500), &fb[..n]).unwrap();
        assert_eq!(s.poll_event(), Some(SenderEvent::KeyframeRequested { fir: false }));
        assert_eq!(s.stats().keyframe_requests_received, 60);
        assert_eq!(s.stats().keyframe_requests_surfaced, 2);
    }

    #[test]
    fn sr_maps_ntp_and_rtp_time_and_rr_gives_rtt() {
        let mut cfg = SenderConfig::new(0x1111, 90_000);
        cfg.cname.extend_from_slice(b"cam").unwrap();
        let mut s = RtpSender::new(cfg, [0u8; 0]);
        let t0 = Instant::from_secs(5);
        s.set_ntp_mapping(t0, 0xe000_0000_0000_0000);
        let mut buf = [0u8; 1500];
        let n = packet(10, &[1; 100], &mut buf);
        s.handle_sent(t0, &buf[..n]).unwrap();
        // SR 100 ms later: RTP time advanced by 9000 ticks.
        let t1 = t0 + Duration::from_millis(100);
        let o = s.poll_transmit(t1, &mut buf).unwrap();
        let mut it = CompoundIter::new(&buf[..o.len]);
        let Some(Ok(RtcpPacket::SenderReport { ssrc, info, .. })) = it.next() else { panic!() };
        assert_eq!(ssrc, 0x1111);
        assert_eq!(info.rtp_time, 30_000 + 9000);
        assert_eq!(info.ntp_time, 0xe000_0000_0000_0000 + (1u64 << 32) / 10);
        assert_eq!((info.packet_count, info.octet_count), (1, 100));
        assert!(matches!(it.next(), Some(Ok(RtcpPacket::Sdes(_)))));
        assert_eq!(s.poll_timeout(), Some(t1 + Duration::from_secs(1)));
        // RR echoing it 80 ms later, held 30 ms at the receiver: RTT 50 ms.
        let block = ReportBlock {
            ssrc: 0x1111,
            fraction_lost: 3,
            last_sr: ntp_middle(info.ntp_time),
            delay_since_last_sr: crate::rtcp::wire::micros_to_units_1_65536(30_000),
            ..Default::default()
        };
        let mut fb = [0u8; 64];
        let mut w = CompoundWriter::new(&mut fb);
        w.receiver_report(7, &[block]).unwrap();
        let n = w.len();
        s.handle_rtcp(t1 + Duration::from_millis(80), &fb[..n]).unwrap();
        let Some(SenderEvent::ReceiverReport { rtt_us: Some(rtt), fraction_lost: 3, .. }) = s.poll_event() else {
            panic!()
        };
        assert!((49_900..=50_100).contains(&rtt), "{rtt}");
    }
}
