//! One negotiated RTP media section: what we send (packetizer, counters,
//! the RTP/NTP clock mapping for sender reports) and what we receive
//! (RFC 3550 appendix A.1/A.3 sequence and loss accounting, the last SR for
//! LSR/DLSR), and the report-block arithmetic of RFC 3550 section 6.4.

use crate::rtcp::wire::{micros_to_units_1_65536, ntp_middle, units_1_65536_to_micros, NtpTime, ReportBlock};
use crate::rtp::packetizer::RtpPacketizer;
use crate::sdp::{CodecChoice, Direction, Feedback, MediaKind};
use crate::time::Instant;

pub use crate::rtcp::wire::ntp_from_instant;

/// Counters of one media section (plain data).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TrackStats {
    /// Whether the section was negotiated.
    pub active: bool,
    pub frames_sent: u64,
    pub packets_sent: u64,
    /// RTP payload bytes sent.
    pub bytes_sent: u64,
    pub packets_received: u64,
    /// RTP payload bytes received.
    pub bytes_received: u64,
    /// Packets lost in what we receive (RFC 3550 A.3, expected - received).
    pub packets_lost: i64,
    /// Round-trip time from the remote's receiver reports (microseconds; 0 = unknown).
    pub rtt_us: u64,
    /// Remote's last reported loss fraction of our stream (1/256).
    pub remote_fraction_lost: u8,
    /// Remote's cumulative count of our packets lost.
    pub remote_packets_lost: i32,
    /// PLI + FIR received for our stream.
    pub keyframe_requests_received: u32,
    /// PLI sent for the stream we receive.
    pub keyframe_requests_sent: u32,
    /// NACKed sequence numbers received.
    pub nacks_received: u32,
    /// Packets retransmitted in answer to NACKs (RTX or plain).
    pub retransmissions_sent: u32,
    /// NACKed packets no longer (or never) in the send history.
    pub retransmit_misses: u32,
    /// NACKed sequence numbers sent for the stream we receive.
    pub nacks_sent: u32,
    /// RTX retransmissions received that filled a gap (plain ones count
    /// as late originals).
    pub retransmissions_received: u32,
    /// Packets of the stream we receive given up (never delivered).
    pub packets_given_up: u32,
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RecvState {
    pub started: bool,
    pub base_seq: u16,
    pub max_seq: u16,
    pub cycles: u32,
    pub expected_prior: u32,
    pub received_prior: u32,
    pub last_sr_mid: u32,
    pub last_sr_at: Option<Instant>,
}

#[derive(Debug, Clone)]
pub(crate) struct Track {
    pub kind: MediaKind,
    pub codec: CodecChoice,
    pub payload_type: u8,
    pub direction: Direction,
    pub feedback: Feedback,
    pub local_ssrc: u32,
    pub remote_ssrc: Option<u32>,
    pub packetizer: RtpPacketizer,
    pub last_rtp: Option<(Instant, u32)>,
    pub vp8_picture_id: u16,
    pub recv: RecvState,
    pub stats: TrackStats,
    /// A PLI to send for the received stream.
    pub pli_pending: bool,
}

impl Track {
    pub fn clock_rate(&self) -> u32 {
        match self.codec {
            CodecChoice::Opus => 48_000,
            CodecChoice::Pcmu | CodecChoice::Pcma => 8_000,
            _ => 90_000,
        }
    }

    /// RTP timestamp corresponding to `now`, from the last frame sent.
    pub fn rtp_time_at(&self, now: Instant) -> u32 {
        match self.last_rtp {
            Some((at, ts)) => {
                let dt = now.saturating_duration_since(at).as_micros();
                let ticks = dt.saturating_mul(u64::from(self.clock_rate())) / 1_000_000;
                ts.wrapping_add(ticks as u32)
            }
            None => 0,
        }
    }

    /// Account for a received RTP packet (RFC 3550 A.1, without probation).
    pub fn on_rtp(&mut self, seq: u16, payload_len: usize) {
        let r = &mut self.recv;
        if !r.started {
            r.started = true;
            r.base_seq = seq;
            r.max_seq = seq;
        } else {
            let delta = seq.wrapping_sub(r.max_seq);
            if delta != 0 && delta < 0x8000 {
                if seq < r.max_seq {
                    r.cycles = r.cycles.wrapping_add(1 << 16);
                }
                r.max_seq = seq;
            }
        }
        self.stats.packets_received += 1;
        self.stats.bytes_received += payload_len as u64;
        self.stats.packets_lost = self.expected() as i64 - self.stats.packets_received as i64;
    }

    fn extended_max(&self) -> u32 {
        self.recv.cycles | u32::from(self.recv.max_seq)
    }

    fn expected(&self) -> u32 {
        if !self.recv.started {
            return 0;
        }
        self.extended_max().wrapping_sub(u32::from(self.recv.base_seq)).wrapping_add(1)
    }

    /// A report block about the stream we receive (RFC 3550 A.3).
    pub fn report_block(&mut self, now: Instant) -> Option<ReportBlock> {
        let ssrc = self.remote_ssrc?;
        if !self.recv.started {
            return None;
        }
        let expected = self.expected();
        let received = self.stats.packets_received as u32;
        let exp_int = expected.wrapping_sub(self.recv.expected_prior);
        let rec_int = received.wrapping_sub(self.recv.received_prior);
        self.recv.expected_prior = expected;
        self.recv.received_prior = received;
        let lost_int = exp_int.saturating_sub(rec_int);
        let fraction_lost = (u64::from(lost_int) << 8).checked_div(u64::from(exp_int)).map_or(0, |f| f.min(255) as u8);
        let dlsr = match self.recv.last_sr_at {
            Some(at) => micros_to_units_1_65536(now.saturating_duration_since(at).as_micros()),
            None => 0,
        };
        Some(ReportBlock {
            ssrc,
            fraction_lost,
            cumulative_lost: self.stats.packets_lost.clamp(-0x80_0000, 0x7f_ffff) as i32,
            extended_highest_seq: self.extended_max(),
            jitter: 0,
            last_sr: self.recv.last_sr_mid,
            delay_since_last_sr: dlsr,
        })
    }

    /// A sender report about our stream arrived from the remote.
    pub fn on_sender_report(&mut self, now: Instant, ntp: NtpTime) {
        self.recv.last_sr_mid = ntp_middle(ntp);
        self.recv.last_sr_at = Some(now);
    }

    /// A report block about our stream: RTT (RFC 3550 6.4.1) and loss.
    pub fn on_report_block(&mut self, now: Instant, rb: &ReportBlock) {
        self.stats.remote_fraction_lost = rb.fraction_lost;
        self.stats.remote_packets_lost = rb.cumulative_lost;
        if rb.last_sr != 0 {
            let now_mid = ntp_middle(ntp_from_instant(now));
            let rtt = now_mid.wrapping_sub(rb.last_sr).wrapping_sub(rb.delay_since_last_sr);
            if rtt < 0x8000_0000 {
                self.stats.rtt_us = units_1_65536_to_micros(rtt).max(1);
            }
        }
    }
}
