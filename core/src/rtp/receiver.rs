//! The receiving side of one RTP stream (one SSRC), sans-IO.
//!
//! - A bounded reordering buffer (caller storage) hands packets out in
//!   sequence order ([`RtpReceiver::poll_packet`]), unwrapping RTX
//!   retransmissions (RFC 4588 section 4) back into the original packet.
//! - Loss detection: a gap registers the missing sequence numbers; generic
//!   NACKs (RFC 4585 section 6.2.1) are sent (after `nack_delay`) and repeated with
//!   backoff (RTT x 1.5^attempt, RTT from [`RtpReceiver::set_rtt`]) until
//!   the packet arrives, `max_nack_attempts` is reached or it is older
//!   than `give_up_after`. A packet given up is skipped, reported as
//!   [`ReceiverEvent::Lost`], and a PLI is sent (the frame it belonged to
//!   cannot be recovered), at most one per `keyframe_request_interval`.
//! - Receiver reports (RFC 3550 section 6.4.2) every `rtcp_interval` with
//!   the statistics of appendix A.3 (fraction and cumulative lost,
//!   extended highest sequence number) and A.8 (interarrival jitter), and
//!   LSR/DLSR from the last SR; SDES CNAME alongside.
//!
//! Left out: source probation (RFC 3550 A.1: the first packet is trusted),
//! SSRC changes, RTCP interval randomization, XR.

use super::sender::{Outgoing, PacketKind, RtxConfig, MAX_CNAME};
use super::seq::SeqUnwrapper;
use super::store::{PacketStore, SLOT_OVERHEAD};
use super::wire::RtpPacket;
use super::Error;
use crate::rtcp::wire::{
    micros_to_units_1_65536, ntp_middle, CompoundIter, CompoundWriter, NtpTime, ReportBlock, RtcpPacket,
};
use crate::time::{Duration, Instant};

/// Missing packets tracked for NACK at once; 24 bytes each.
pub const MAX_TRACKED_LOSSES: usize = 128;
/// Sequence numbers in one NACK packet (the rest go next time).
pub const MAX_NACK_SEQS: usize = 64;
/// Events buffered until polled; 16 bytes each.
pub const MAX_RECEIVER_EVENTS: usize = 16;
/// Default reordering buffer: packets held.
pub const DEFAULT_REORDER_PACKETS: usize = 256;
/// Bytes for the default reordering buffer (256 x 1218 = 311,808 bytes).
pub const DEFAULT_REORDER_BYTES: usize = DEFAULT_REORDER_PACKETS * (1200 + SLOT_OVERHEAD);

/// A receiver with the default reordering buffer held inline (hosts; on a
/// microcontroller pass a smaller `&mut [u8]`).
pub type DefaultRtpReceiver = RtpReceiver<[u8; DEFAULT_REORDER_BYTES]>;

/// How the receiver recognizes the first packet of a keyframe, to stop
/// repeating keyframe requests once one arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum KeyframeDetect {
    /// H.264 (RFC 6184): an IDR or SPS in a single NAL, STAP-A or FU-A start.
    H264,
    /// VP8 (RFC 7741): start of partition 0 with the P bit clear.
    Vp8,
    /// Unknown payload: each request sends one PLI, unless the owner calls
    /// [`RtpReceiver::keyframe_received`] (then PLIs repeat until it does).
    None,
}

/// Receiver configuration (plain data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverConfig {
    /// Our own SSRC (sender of RR/NACK/PLI).
    pub local_ssrc: u32,
    /// The media SSRC received.
    pub remote_ssrc: u32,
    pub clock_rate: u32,
    /// RTX stream of `remote_ssrc`, and the payload type it restores.
    pub rtx: Option<RtxConfig>,
    pub rtx_original_payload_type: u8,
    pub cname: heapless::Vec<u8, MAX_CNAME>,
    pub rtcp_interval: Duration,
    /// Write receiver reports (default true; false when the owner sends
    /// its own, as the `Peer` does).
    pub send_reports: bool,
    /// Send NACKs at all (default true).
    pub nack: bool,
    /// Wait this long after a gap is seen before the first NACK (default
    /// 0): packets merely reordered by jitter arrive meanwhile and are not
    /// retransmitted for nothing.
    pub nack_delay: Duration,
    pub max_nack_attempts: u8,
    /// Stop waiting for a packet this long after the loss was seen (default 1 s).
    pub give_up_after: Duration,
    /// RTT assumed until [`RtpReceiver::set_rtt`] (default 100 ms).
    pub initial_rtt: Duration,
    /// Least time between PLIs (default 500 ms). While a keyframe is
    /// awaited the PLI is repeated at this interval (a PLI can be lost too).
    pub keyframe_request_interval: Duration,
    /// Recognizing keyframes in the payload (default `None`).
    pub keyframe_detect: KeyframeDetect,
    /// Largest packet held (default 1200).
    pub max_packet: usize,
    /// Hold the first packets this long before handing any out (default
    /// 0): packets sent before the first one to arrive but overtaken by it
    /// (jitter) are still delivered, in order.
    pub start_hold: Duration,
}

impl ReceiverConfig {
    pub fn new(local_ssrc: u32, remote_ssrc: u32, clock_rate: u32) -> Self {
        ReceiverConfig {
            local_ssrc,
            remote_ssrc,
            clock_rate,
            rtx: None,
            rtx_original_payload_type: 0,
            cname: heapless::Vec::new(),
            rtcp_interval: Duration::from_secs(1),
            send_reports: true,
            nack: true,
            nack_delay: Duration::ZERO,
            max_nack_attempts: 10,
            give_up_after: Duration::from_secs(1),
            initial_rtt: Duration::from_millis(100),
            keyframe_request_interval: Duration::from_millis(500),
            keyframe_detect: KeyframeDetect::None,
            max_packet: 1200,
            start_hold: Duration::ZERO,
        }
    }
}

/// What the receiver tells its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ReceiverEvent {
    /// A packet was given up: it will never be delivered.
    Lost { seq: u16 },
    /// A sender report: the sender's NTP/RTP time mapping (for A/V sync).
    SenderReport { ntp_time: NtpTime, rtp_time: u32 },
    /// The sender said BYE.
    Bye,
}

/// What became of a packet given to [`RtpReceiver::handle_rtp_in_place`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Arrival {
    /// The next packet in sequence order: the caller uses it where it is
    /// (not copied). `seq` is its sequence number; with `rtx` it came in
    /// RTX form (the original payload starts 2 bytes into the RTP payload).
    InOrder { seq: u16, rtx: bool },
    /// Held in the reordering buffer for [`RtpReceiver::poll_packet`].
    Buffered,
    /// Already delivered or held, or older than what was delivered.
    Duplicate,
}

/// Statistics (plain data).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ReceiverStats {
    pub packets_received: u32,
    pub duplicates: u32,
    pub retransmissions_received: u32,
    pub nacks_sent: u32,
    pub nacked_packets: u32,
    pub plis_sent: u32,
    pub lost_given_up: u32,
    pub cumulative_lost: i32,
    pub extended_highest_seq: u32,
    /// Interarrival jitter, RTP timestamp units.
    pub jitter: u32,
}

#[derive(Debug, Clone, Copy)]
struct Missing {
    ext: u64,
    detected: Instant,
    next_nack: Instant,
    attempts: u8,
}

/// The receiving side of one stream over reordering storage `B`.
#[derive(Debug)]
pub struct RtpReceiver<B> {
    config: ReceiverConfig,
    store: PacketStore<B>,
    unwrap: SeqUnwrapper,
    base_ext: Option<u64>,
    next_deliver: Option<u64>,
    missing: heapless::Vec<Missing, MAX_TRACKED_LOSSES>,
    events: heapless::Deque<ReceiverEvent, MAX_RECEIVER_EVENTS>,
    stats: ReceiverStats,
    rtt: Duration,
    received: u32,
    expected_prior: u64,
    received_prior: u32,
    /// Jitter x 16 (RFC 3550 A.8).
    jitter16: u32,
    last_transit: Option<i64>,
    last_sr: Option<(u32, Instant)>,
    next_report: Option<Instant>,
    /// A keyframe is wanted (PLI sent at most every interval while set).
    pli_pending: bool,
    /// The owner signals keyframes itself: repeat PLIs until it does.
    owner_tracks_keyframes: bool,
    last_pli: Option<Instant>,
    bye: bool,
    /// Arrival of the first packet, and whether delivery has begun
    /// (`start_hold` passed).
    first_arrival: Option<Instant>,
    delivering: bool,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> RtpReceiver<B> {
    /// `storage` holds `len / (max_packet + 18)` packets in reordering.
    pub fn new(config: ReceiverConfig, storage: B) -> Self {
        let rtt = config.initial_rtt;
        let store = PacketStore::new(storage, config.max_packet);
        RtpReceiver {
            config,
            store,
            unwrap: SeqUnwrapper::new(),
            base_ext: None,
            next_deliver: None,
            missing: heapless::Vec::new(),
            events: heapless::Deque::new(),
            stats: ReceiverStats::default(),
            rtt,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            jitter16: 0,
            last_transit: None,
            last_sr: None,
            next_report: None,
            pli_pending: false,
            owner_tracks_keyframes: false,
            last_pli: None,
            bye: false,
            first_arrival: None,
            delivering: false,
        }
    }

    pub fn config(&self) -> &ReceiverConfig {
        &self.config
    }

    pub fn stats(&self) -> ReceiverStats {
        let mut s = self.stats;
        s.jitter = self.jitter16 >> 4;
        if let (Some(base), Some(high)) = (self.base_ext, self.unwrap.highest()) {
            let expected = high - base + 1;
            s.cumulative_lost = (expected as i64 - self.received as i64).clamp(-0x80_0000, 0x7f_ffff) as i32;
            s.extended_highest_seq = (high - 0x1_0000) as u32;
        }
        s
    }

    /// Round-trip time to the sender (from the caller's own measurement,
    /// e.g. the sender side's RR processing or ICE), used for NACK backoff.
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.rtt = rtt;
    }

    /// Ask the sender for a keyframe (e.g. the decoder cannot go on);
    /// rate-limited like automatic requests.
    pub fn request_keyframe(&mut self) {
        self.pli_pending = true;
    }

    /// The RTX stream of the received SSRC, when learned after creation
    /// (e.g. from the first RTX packet when SDP named no FID group).
    pub fn set_rtx(&mut self, rtx: RtxConfig) {
        self.config.rtx = Some(rtx);
    }

    /// A keyframe arrived (the owner's decoder saw one): stop repeating
    /// PLIs. Calling it once makes the receiver repeat PLIs until the
    /// next call, also with [`KeyframeDetect::None`].
    pub fn keyframe_received(&mut self) {
        self.owner_tracks_keyframes = true;
        self.pli_pending = false;
    }

    fn is_keyframe_start(&self, packet: &[u8]) -> bool {
        let Ok(p) = RtpPacket::new_checked(packet) else { return false };
        self.is_keyframe_payload(p.payload())
    }

    fn is_keyframe_payload(&self, payload: &[u8]) -> bool {
        match self.config.keyframe_detect {
            KeyframeDetect::H264 => super::h264::payload_is_keyframe(payload),
            KeyframeDetect::Vp8 => match super::vp8::Vp8Descriptor::parse(payload) {
                Ok(d) => d.starts_frame() && payload.get(d.len).is_some_and(|b| b & 1 == 0),
                Err(_) => false,
            },
            KeyframeDetect::None => false,
        }
    }

    fn push_event(&mut self, e: ReceiverEvent) {
        if self.events.is_full() {
            self.events.pop_front();
        }
        let _ = self.events.push_back(e);
    }

    /// Process one RTP packet (already SRTP-unprotected) of this stream or
    /// its RTX stream; packets come out of [`poll_packet`](Self::poll_packet).
    pub fn handle_rtp(&mut self, now: Instant, packet: &[u8]) -> Result<(), Error> {
        self.accept(now, packet, false).map(|_| ())
    }

    /// Like [`handle_rtp`](Self::handle_rtp), but the next packet in
    /// sequence order is not copied: [`Arrival::InOrder`] tells the caller
    /// to use it in place. Packets after a gap are held as usual; drain
    /// [`poll_packet`](Self::poll_packet) after each call.
    pub fn handle_rtp_in_place(&mut self, now: Instant, packet: &[u8]) -> Result<Arrival, Error> {
        self.accept(now, packet, true)
    }

    fn accept(&mut self, now: Instant, packet: &[u8], in_place: bool) -> Result<Arrival, Error> {
        let p = RtpPacket::new_checked(packet)?;
        let is_rtx = match self.config.rtx {
            Some(r) if p.ssrc() == r.ssrc && p.payload_type() == r.payload_type => true,
            _ if p.ssrc() == self.config.remote_ssrc => false,
            _ => return Err(Error::BadPayload),
        };
        let (seq, extra) = if is_rtx {
            let pl = p.payload();
            if pl.len() < 2 {
                return Err(Error::BadPayload);
            }
            (u16::from_be_bytes([pl[0], pl[1]]), 2)
        } else {
            (p.sequence_number(), 0)
        };
        let len = p.header_len() + p.payload().len() - extra;
        if len > self.store.max_packet() && !in_place {
            return Err(Error::BufferTooSmall);
        }
        if self.next_report.is_none() && self.config.send_reports {
            self.next_report = Some(now + self.config.rtcp_interval);
        }
        let prev_high = self.unwrap.highest();
        let ext = self.unwrap.unwrap(seq);
        if self.base_ext.is_none() {
            self.base_ext = Some(ext);
            self.next_deliver = Some(ext);
            self.first_arrival = Some(now);
            self.delivering = self.config.start_hold == Duration::ZERO;
        }
        if let (false, Some(next)) = (self.delivering, self.next_deliver) {
            // Still holding the start: an earlier packet moves the start back
            // (within the buffer); the numbers in between are now missing.
            let cap = self.store.capacity() as u64;
            if ext < next && next - ext < cap && self.unwrap.highest().is_some_and(|h| h - ext < cap) {
                self.base_ext = Some(ext);
                self.next_deliver = Some(ext);
                for e in ext + 1..next {
                    if !self.missing.is_full() {
                        let _ = self.missing.push(Missing {
                            ext: e,
                            detected: now,
                            next_nack: now + self.config.nack_delay,
                            attempts: 0,
                        });
                    }
                }
            }
        }
        let next = self.next_deliver.unwrap_or(ext);
        if ext < next || self.store.contains(ext) {
            self.stats.duplicates = self.stats.duplicates.saturating_add(1);
            return Ok(Arrival::Duplicate);
        }
        self.stats.packets_received = self.stats.packets_received.saturating_add(1);
        self.received = self.received.saturating_add(1);
        if is_rtx {
            self.stats.retransmissions_received = self.stats.retransmissions_received.saturating_add(1);
        } else {
            // RFC 3550 A.8, for original transmissions only.
            let arrival = (now.as_micros() as u128 * self.config.clock_rate as u128 / 1_000_000) as i64;
            let transit = arrival.wrapping_sub(p.timestamp() as i64);
            if let Some(last) = self.last_transit {
                let d = (transit - last).unsigned_abs().min(u32::MAX as u64) as u32;
                self.jitter16 = self.jitter16.wrapping_add(d).wrapping_sub((self.jitter16 + 8) >> 4);
            }
            self.last_transit = Some(transit);
        }
        // Too far ahead for the buffer: give up the oldest to make room.
        let cap = self.store.capacity() as u64;
        if cap == 0 {
            return Err(Error::BufferTooSmall);
        }
        if ext >= next + cap {
            let new_next = ext + 1 - cap;
            // Only the last `cap` numbers can be in the store or the loss list;
            // a longer jump counts the rest as lost in bulk (bounded work).
            let from = next.max(new_next.saturating_sub(cap));
            let skipped = (from - next).min(u32::MAX as u64) as u32;
            if skipped > 0 {
                self.stats.lost_given_up = self.stats.lost_given_up.saturating_add(skipped);
                self.missing.retain(|m| m.ext >= from);
                self.pli_pending = true;
            }
            for e in from..new_next {
                if !self.store.contains(e) {
                    self.give_up(now, e);
                }
                self.store.remove(e);
            }
            self.next_deliver = Some(new_next);
        }
        // Gap: register the missing numbers.
        if let Some(high) = prev_high {
            if ext > high + 1 {
                let from =
                    (high + 1).max(ext.saturating_sub(MAX_TRACKED_LOSSES as u64)).max(self.next_deliver.unwrap_or(0));
                for e in from..ext {
                    if self.missing.is_full() {
                        let oldest = self.missing.remove(0);
                        self.give_up(now, oldest.ext);
                    }
                    let _ = self.missing.push(Missing {
                        ext: e,
                        detected: now,
                        next_nack: now + self.config.nack_delay,
                        attempts: 0,
                    });
                }
            }
        }
        self.missing.retain(|m| m.ext != ext);
        if in_place && self.delivering && self.next_deliver == Some(ext) {
            if self.pli_pending && self.is_keyframe_payload(p.payload().get(extra..).unwrap_or(&[])) {
                self.pli_pending = false;
            }
            self.next_deliver = Some(ext + 1);
            return Ok(Arrival::InOrder { seq, rtx: is_rtx });
        }
        if len > self.store.max_packet() {
            return Err(Error::BufferTooSmall);
        }
        if let Some(slot) = self.store.slot_for(ext) {
            let h = p.header_len();
            slot[..h].copy_from_slice(&packet[..h]);
            slot[0] &= !0x20; // padding removed
            if is_rtx {
                slot[1] = (slot[1] & 0x80) | (self.config.rtx_original_payload_type & 0x7f);
                slot[2..4].copy_from_slice(&seq.to_be_bytes());
                slot[8..12].copy_from_slice(&self.config.remote_ssrc.to_be_bytes());
            }
            slot[h..len].copy_from_slice(&p.payload()[extra..]);
            self.store.commit(ext, len, now.as_micros());
        }
        Ok(Arrival::Buffered)
    }

    fn give_up(&mut self, now: Instant, ext: u64) {
        self.stats.lost_given_up = self.stats.lost_given_up.saturating_add(1);
        self.missing.retain(|m| m.ext != ext);
        self.push_event(ReceiverEvent::Lost { seq: ext as u16 });
        let _ = now;
        self.pli_pending = true;
    }

    /// Process a compound RTCP packet from the sender (SR, BYE).
    pub fn handle_rtcp(&mut self, now: Instant, compound: &[u8]) -> Result<(), crate::rtcp::Error> {
        for p in CompoundIter::new(compound) {
            match p? {
                RtcpPacket::SenderReport { ssrc, info, .. } if ssrc == self.config.remote_ssrc => {
                    self.last_sr = Some((ntp_middle(info.ntp_time), now));
                    self.push_event(ReceiverEvent::SenderReport { ntp_time: info.ntp_time, rtp_time: info.rtp_time });
                }
                RtcpPacket::Bye { mut sources, .. } => {
                    let ours = sources.any(|s| s == self.config.remote_ssrc);
                    if ours && !self.bye {
                        self.bye = true;
                        self.push_event(ReceiverEvent::Bye);
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The next packet in sequence order, copied into `buf`; skips packets
    /// given up. `None` while the next one is still awaited.
    pub fn poll_packet(&mut self, buf: &mut [u8]) -> Option<Result<usize, Error>> {
        if !self.delivering {
            return None;
        }
        let high = self.unwrap.highest()?;
        loop {
            let next = self.next_deliver?;
            if next > high {
                return None;
            }
            if let Some((pkt, _)) = self.store.get(next) {
                let n = pkt.len();
                let Some(dst) = buf.get_mut(..n) else { return Some(Err(Error::BufferTooSmall)) };
                dst.copy_from_slice(pkt);
                if self.pli_pending && self.is_keyframe_start(&buf[..n]) {
                    self.pli_pending = false;
                }
                self.store.remove(next);
                self.next_deliver = Some(next + 1);
                return Some(Ok(n));
            }
            if self.missing.iter().any(|m| m.ext == next) {
                return None; // still hoping for it
            }
            // Given up: skip it.
            self.next_deliver = Some(next + 1);
        }
    }

    fn backoff(&self, attempts: u8) -> Duration {
        let mut d = self.rtt.as_micros().max(5_000);
        for _ in 1..attempts {
            d = d * 3 / 2;
        }
        Duration::from_micros(d)
    }

    /// Give up packets past their deadline; end the start hold.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.delivering && self.first_arrival.is_some_and(|t| now >= t + self.config.start_hold) {
            self.delivering = true;
        }
        let mut i = 0;
        while i < self.missing.len() {
            let m = self.missing[i];
            let out_of_time = now - m.detected >= self.config.give_up_after;
            let out_of_tries = m.attempts >= self.config.max_nack_attempts && now >= m.next_nack;
            if out_of_time || out_of_tries || !self.config.nack {
                self.give_up(now, m.ext);
            } else {
                i += 1;
            }
        }
    }

    /// Next RTCP packet: NACK, then PLI, then a due RR (+ SDES).
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Outgoing> {
        self.handle_timeout(now);
        if self.config.nack {
            let mut seqs = heapless::Vec::<u16, MAX_NACK_SEQS>::new();
            let max_attempts = self.config.max_nack_attempts;
            for k in 0..self.missing.len() {
                let m = self.missing[k];
                if now >= m.next_nack && m.attempts < max_attempts && !seqs.is_full() {
                    let _ = seqs.push(m.ext as u16);
                    let next = now + self.backoff(m.attempts + 1);
                    let mm = &mut self.missing[k];
                    mm.attempts += 1;
                    mm.next_nack = next;
                }
            }
            if !seqs.is_empty() {
                let mut w = CompoundWriter::new(buf);
                if w.nack(self.config.local_ssrc, self.config.remote_ssrc, &seqs).is_ok() {
                    self.stats.nacks_sent = self.stats.nacks_sent.saturating_add(1);
                    self.stats.nacked_packets = self.stats.nacked_packets.saturating_add(seqs.len() as u32);
                    return Some(Outgoing { len: w.len(), kind: PacketKind::Rtcp });
                }
            }
        }
        if self.pli_pending {
            let allowed = self.last_pli.is_none_or_elapsed(now, self.config.keyframe_request_interval);
            if allowed {
                let repeat = self.owner_tracks_keyframes || self.config.keyframe_detect != KeyframeDetect::None;
                self.pli_pending = repeat;
                self.last_pli = Some(now);
                let mut w = CompoundWriter::new(buf);
                if w.pli(self.config.local_ssrc, self.config.remote_ssrc).is_ok() {
                    self.stats.plis_sent = self.stats.plis_sent.saturating_add(1);
                    return Some(Outgoing { len: w.len(), kind: PacketKind::Rtcp });
                }
            }
        }
        if self.next_report.is_some_and(|t| now >= t) {
            self.next_report = Some(now + self.config.rtcp_interval);
            let block = self.report_block(now)?;
            let mut w = CompoundWriter::new(buf);
            w.receiver_report(self.config.local_ssrc, &[block]).ok()?;
            if !self.config.cname.is_empty() {
                w.sdes_cname(self.config.local_ssrc, &self.config.cname).ok()?;
            }
            return Some(Outgoing { len: w.len(), kind: PacketKind::Rtcp });
        }
        None
    }

    fn report_block(&mut self, now: Instant) -> Option<ReportBlock> {
        let base = self.base_ext?;
        let high = self.unwrap.highest()?;
        let expected = high - base + 1;
        let expected_interval = expected - self.expected_prior.min(expected);
        let received_interval = self.received.wrapping_sub(self.received_prior) as u64;
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        let stats = self.stats();
        let (last_sr, delay_since_last_sr) = match self.last_sr {
            Some((lsr, at)) => (lsr, micros_to_units_1_65536((now - at).as_micros())),
            None => (0, 0),
        };
        Some(ReportBlock {
            ssrc: self.config.remote_ssrc,
            fraction_lost,
            cumulative_lost: stats.cumulative_lost,
            extended_highest_seq: stats.extended_highest_seq,
            jitter: stats.jitter,
            last_sr,
            delay_since_last_sr,
        })
    }

    pub fn poll_event(&mut self) -> Option<ReceiverEvent> {
        self.events.pop_front()
    }

    /// When to call `handle_timeout` / `poll_transmit` next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = self.next_report;
        let mut consider = |x: Instant| t = Some(t.map_or(x, |t| t.min(x)));
        for m in &self.missing {
            consider(m.next_nack.min(m.detected + self.config.give_up_after));
        }
        if self.pli_pending {
            consider(self.last_pli.map_or(Instant::ZERO, |l| l + self.config.keyframe_request_interval));
        }
        if let (false, Some(first)) = (self.delivering, self.first_arrival) {
            consider(first + self.config.start_hold);
        }
        t
    }
}

trait ElapsedExt {
    fn is_none_or_elapsed(&self, now: Instant, d: Duration) -> bool;
}

impl ElapsedExt for Option<Instant> {
    fn is_none_or_elapsed(&self, now: Instant, d: Duration) -> bool {
        self.map_or(true, |t| now - t >= d)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::rtp::sender::{RtpSender, SenderConfig, SenderEvent};
    use crate::rtp::wire::RtpHeader;
    use std::vec::Vec;

    fn packet(seq: u16, ts: u32, buf: &mut [u8]) -> usize {
        let h = RtpHeader { payload_type: 96, sequence_number: seq, timestamp: ts, ssrc: 0xaaaa, ..Default::default() };
        let n = h.emit(buf).unwrap();
        buf[n..n + 4].copy_from_slice(&(seq as u32).to_be_bytes());
        n + 4
    }

    fn receiver(slots: usize) -> RtpReceiver<Vec<u8>> {
        let mut cfg = ReceiverConfig::new(0xbbbb, 0xaaaa, 90_000);
        cfg.rtx = Some(RtxConfig { ssrc: 0xcccc, payload_type: 97 });
        cfg.rtx_original_payload_type = 96;
        RtpReceiver::new(cfg, std::vec![0u8; slots * (1200 + SLOT_OVERHEAD)])
    }

    fn drain(r: &mut RtpReceiver<Vec<u8>>) -> Vec<u16> {
        let mut out = Vec::new();
        let mut buf = [0u8; 1500];
        while let Some(n) = r.poll_packet(&mut buf) {
            out.push(RtpPacket::new_checked(&buf[..n.unwrap()]).unwrap().sequence_number());
        }
        out
    }

    #[test]
    fn reorders_and_nacks_then_recovers_via_rtx() {
        let mut r = receiver(16);
        let mut buf = [0u8; 1500];
        let t = Instant::from_secs(1);
        for seq in [65534u16, 65535, 2, 1] {
            let n = packet(seq, 0, &mut buf);
            r.handle_rtp(t, &buf[..n]).unwrap();
        }
        assert_eq!(drain(&mut r), [65534, 65535]);
        // 0 missing: a NACK for it.
        let o = r.poll_transmit(t, &mut buf).unwrap();
        let Some(Ok(RtcpPacket::Nack { items, media_ssrc: 0xaaaa, .. })) = CompoundIter::new(&buf[..o.len]).next()
        else {
            panic!()
        };
        assert_eq!(items.flat_map(|i| i.lost()).collect::<Vec<_>>(), [0]);
        assert!(r.poll_transmit(t, &mut buf).is_none());
        // Retry after the backoff (RTT 100 ms).
        assert_eq!(r.poll_timeout(), Some(t + Duration::from_millis(100)));
        // RTX of 0 arrives: OSN 0, RTX seq 77.
        let h = RtpHeader { payload_type: 97, sequence_number: 77, ssrc: 0xcccc, ..Default::default() };
        let n = h.emit(&mut buf).unwrap();
        buf[n..n + 6].copy_from_slice(&[0, 0, 0, 0, 0, 0]);
        r.handle_rtp(t, &buf[..n + 6]).unwrap();
        let mut out = [0u8; 1500];
        let len = r.poll_packet(&mut out).unwrap().unwrap();
        let p = RtpPacket::new_checked(&out[..len]).unwrap();
        assert_eq!(
            (p.sequence_number(), p.ssrc(), p.payload_type(), p.payload()),
            (0, 0xaaaa, 96, &[0u8, 0, 0, 0][..])
        );
        assert_eq!(drain(&mut r), [1, 2]);
        assert_eq!(r.stats().cumulative_lost, 0);
        assert_eq!(r.stats().retransmissions_received, 1);
    }

    #[test]
    fn start_hold_keeps_packets_overtaken_by_the_first() {
        let mut r = receiver(16);
        r.config.start_hold = Duration::from_millis(30);
        let mut buf = [0u8; 1500];
        let t = Instant::from_secs(1);
        for seq in [7u16, 5, 4, 6] {
            let n = packet(seq, 0, &mut buf);
            assert_eq!(r.handle_rtp_in_place(t, &buf[..n]).unwrap(), Arrival::Buffered);
        }
        assert_eq!(drain(&mut r), Vec::<u16>::new(), "held");
        assert_eq!(r.poll_timeout(), Some(t + Duration::from_millis(30)));
        r.handle_timeout(t + Duration::from_millis(30));
        assert_eq!(drain(&mut r), [4, 5, 6, 7]);
        // From then on the next packet is handed out in place.
        let n = packet(8, 0, &mut buf);
        assert_eq!(r.handle_rtp_in_place(t, &buf[..n]).unwrap(), Arrival::InOrder { seq: 8, rtx: false });
        let n = packet(3, 0, &mut buf);
        assert_eq!(r.handle_rtp_in_place(t, &buf[..n]).unwrap(), Arrival::Duplicate, "too late now");
        assert_eq!(r.stats().cumulative_lost, 0);
    }

    #[test]
    fn gives_up_then_asks_for_keyframe() {
        let mut r = receiver(16);
        let mut buf = [0u8; 1500];
        let mut t = Instant::from_secs(1);
        for seq in [10u16, 12] {
            let n = packet(seq, 0, &mut buf);
            r.handle_rtp(t, &buf[..n]).unwrap();
        }
        let mut nacks = 0;
        let mut plis = 0;
        for _ in 0..400 {
            while let Some(o) = r.poll_transmit(t, &mut buf) {
                match CompoundIter::new(&buf[..o.len]).next() {
                    Some(Ok(RtcpPacket::Nack { .. })) => nacks += 1,
                    Some(Ok(RtcpPacket::Pli { media_ssrc: 0xaaaa, .. })) => plis += 1,
                    _ => {}
                }
            }
            t += Duration::from_millis(10);
        }
        // Backoff 100 ms x 1.5^k: NACKs at 0, 100, 250, 475, 812 ms; given up at 1 s.
        assert_eq!(nacks, 5);
        assert_eq!(plis, 1);
        assert_eq!(r.poll_event(), Some(ReceiverEvent::Lost { seq: 11 }));
        assert_eq!(drain(&mut r), [10, 12]);
        assert_eq!(r.stats().cumulative_lost, 1);
    }

    #[test]
    fn huge_sequence_jump_is_bounded_work() {
        let mut r = receiver(8);
        let mut buf = [0u8; 1500];
        let t = Instant::from_secs(1);
        for seq in [0u16, 1] {
            let n = packet(seq, 0, &mut buf);
            r.handle_rtp(t, &buf[..n]).unwrap();
        }
        assert_eq!(drain(&mut r), [0, 1]);
        for seq in [30_000u16, 30_001] {
            let n = packet(seq, 0, &mut buf);
            r.handle_rtp(t, &buf[..n]).unwrap();
        }
        // The buffer (8) slid to the newest packets; the 7 just before them are
        // still NACKed, everything older is lost at once.
        assert_eq!(drain(&mut r), Vec::<u16>::new());
        r.handle_timeout(t + Duration::from_secs(2));
        assert_eq!(drain(&mut r), [30_000, 30_001]);
        assert_eq!(r.stats().lost_given_up, 30_000 - 2);
        let o = r.poll_transmit(t + Duration::from_secs(2), &mut buf).unwrap();
        assert!(matches!(CompoundIter::new(&buf[..o.len]).next(), Some(Ok(RtcpPacket::Pli { .. }))));
    }

    #[test]
    fn pli_repeats_until_a_keyframe_arrives() {
        let mut r = receiver(16);
        r.config.keyframe_detect = KeyframeDetect::H264;
        r.config.give_up_after = Duration::from_millis(100);
        let mut buf = [0u8; 1500];
        let mut t = Instant::from_secs(1);
        let send = |r: &mut RtpReceiver<Vec<u8>>, seq: u16, nal: u8, t: Instant| {
            let mut b = [0u8; 64];
            let h = RtpHeader { payload_type: 96, sequence_number: seq, ssrc: 0xaaaa, ..Default::default() };
            let n = h.emit(&mut b).unwrap();
            b[n..n + 2].copy_from_slice(&[nal, 0x88]);
            r.handle_rtp(t, &b[..n + 2]).unwrap();
        };
        send(&mut r, 1, 0x41, t);
        send(&mut r, 3, 0x41, t); // 2 lost for good
        let mut plis = Vec::new();
        for step in 0..300u64 {
            if step == 200 {
                send(&mut r, 4, 0x65, t); // IDR
            }
            let mut out = [0u8; 64];
            while r.poll_packet(&mut out).is_some() {}
            while let Some(o) = r.poll_transmit(t, &mut buf) {
                if let Some(Ok(RtcpPacket::Pli { .. })) = CompoundIter::new(&buf[..o.len]).next() {
                    plis.push((t - Instant::from_secs(1)).as_millis());
                }
            }
            t += Duration::from_millis(10);
        }
        // Given up at 100 ms, PLI then every 500 ms until the IDR at 2 s.
        assert_eq!(plis, [100, 600, 1100, 1600]);
    }

    #[test]
    fn receiver_report_statistics() {
        let mut r = receiver(64);
        let mut buf = [0u8; 1500];
        // 20 packets, 4 lost (never recovered), 1 ms extra delay on odd ones.
        // Reference jitter: RFC 3550 6.4.1 J += (|D| - J) / 16 in floating point.
        let (mut jref, mut last_transit) = (0f64, None::<f64>);
        for seq in 0..20u16 {
            if seq % 5 == 3 {
                continue;
            }
            let t = Instant::from_millis(seq as u64 * 10 + (seq as u64 % 2));
            let n = packet(seq, seq as u32 * 900, &mut buf);
            r.handle_rtp(t, &buf[..n]).unwrap();
            let transit = t.as_micros() as f64 * 0.09 - (seq as f64 * 900.0);
            if let Some(l) = last_transit {
                jref += ((transit - l).abs() - jref) / 16.0;
            }
            last_transit = Some(transit);
        }
        // An SR arrived at 150 ms, RR at 1.2 s.
        let mut sr = [0u8; 64];
        let mut w = CompoundWriter::new(&mut sr);
        let info = crate::rtcp::wire::SenderInfo { ntp_time: 0x0000_1234_5678_0000, ..Default::default() };
        w.sender_report(0xaaaa, &info, &[]).unwrap();
        let n = w.len();
        r.handle_rtcp(Instant::from_millis(150), &sr[..n]).unwrap();
        let mut cfg_off = r.config().clone();
        cfg_off.nack = false;
        r.config = cfg_off;
        let t = Instant::from_millis(1200);
        let mut rr = None;
        while let Some(o) = r.poll_transmit(t, &mut buf) {
            if let Some(Ok(RtcpPacket::ReceiverReport { ssrc: 0xbbbb, mut reports })) =
                CompoundIter::new(&buf[..o.len]).next()
            {
                rr = reports.next();
            }
        }
        let b = rr.unwrap();
        assert_eq!(b.ssrc, 0xaaaa);
        assert_eq!(b.cumulative_lost, 4);
        assert_eq!(b.fraction_lost, (4 * 256 / 20) as u8);
        assert_eq!(b.extended_highest_seq, 19);
        assert_eq!(b.last_sr, 0x1234_5678);
        assert_eq!(b.delay_since_last_sr, micros_to_units_1_65536(1_050_000));
        assert!((b.jitter as f64 - jref).abs() <= 1.0, "{} vs {jref}", b.jitter);
        assert!(b.jitter > 20);
    }

    /// Sender and receiver back to back over a lossy link: every packet
    /// arrives, via NACK and RTX.
    #[test]
    fn sender_and_receiver_recover_losses_back_to_back() {
        let mut scfg = SenderConfig::new(0xaaaa, 90_000);
        scfg.rtx = Some(RtxConfig { ssrc: 0xcccc, payload_type: 97 });
        let mut s = RtpSender::new(scfg, std::vec![0u8; 512 * (1200 + SLOT_OVERHEAD)]);
        let mut r = receiver(512);
        r.set_rtt(Duration::from_millis(40));
        let mut rng = 12345u32;
        let mut lossy = |_: &[u8]| {
            rng = rng.wrapping_mul(1103515245).wrapping_add(12345);
            (rng >> 16) % 100 < 20
        };
        let mut buf = [0u8; 1500];
        let mut out = [0u8; 1500];
        let mut delivered = Vec::new();
        let mut t = Instant::from_secs(1);
        // Links with 20 ms one-way delay, as queues of (arrival, packet).
        let mut to_r: std::collections::VecDeque<(Instant, Vec<u8>)> = Default::default();
        let mut to_s: std::collections::VecDeque<(Instant, Vec<u8>)> = Default::default();
        let delay = Duration::from_millis(20);
        for step in 0..3000u32 {
            if step < 1000 {
                let n = packet(step as u16, step * 900, &mut buf);
                s.handle_sent(t, &buf[..n]).unwrap();
                if !lossy(&buf[..n]) {
                    to_r.push_back((t + delay, buf[..n].to_vec()));
                }
            }
            while let Some(o) = s.poll_transmit(t, &mut buf) {
                if !lossy(&buf[..o.len]) {
                    to_r.push_back((t + delay, buf[..o.len].to_vec()));
                }
            }
            while to_r.front().is_some_and(|(at, _)| *at <= t) {
                let (_, p) = to_r.pop_front().unwrap();
                if crate::rtcp::wire::is_rtcp(&p) {
                    r.handle_rtcp(t, &p).unwrap();
                } else {
                    r.handle_rtp(t, &p).unwrap();
                }
            }
            while let Some(n) = r.poll_packet(&mut out) {
                delivered.push(RtpPacket::new_checked(&out[..n.unwrap()]).unwrap().sequence_number());
            }
            while let Some(o) = r.poll_transmit(t, &mut buf) {
                if !lossy(&buf[..o.len]) {
                    to_s.push_back((t + delay, buf[..o.len].to_vec()));
                }
            }
            while to_s.front().is_some_and(|(at, _)| *at <= t) {
                let (_, p) = to_s.pop_front().unwrap();
                s.handle_rtcp(t, &p).unwrap();
            }
            while let Some(e) = s.poll_event() {
                if let SenderEvent::ReceiverReport { rtt_us: Some(rtt), .. } = e {
                    r.set_rtt(Duration::from_micros(rtt));
                }
            }
            t += Duration::from_millis(5);
        }
        let want: Vec<u16> = (0..1000).collect();
        assert_eq!(delivered, want, "stats {:?} / {:?}", r.stats(), s.stats());
        assert!(s.stats().retransmitted > 100);
    }
}
