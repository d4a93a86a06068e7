//! RTP: the packet format (RFC 3550 section 5.1), header extensions in the
//! one-byte and two-byte forms (RFC 8285), the payload formats a camera or
//! sensor needs, and the sender/receiver stream machines.
//!
//! - [`wire`]: zero-copy [`wire::RtpPacket`] view and [`wire::RtpHeader`]
//!   builder (CSRCs, padding, extensions); helpers for `sdes:mid`,
//!   `abs-send-time` and `transport-wide-cc` extensions.
//! - [`packetizer`]: the [`packetizer::Payloader`] trait, the
//!   [`packetizer::RtpPacketizer`] that wraps payloads in RTP headers
//!   one packet at a time into caller buffers, and the
//!   [`packetizer::Depacketizer`] trait.
//! - [`h264`] (RFC 6184, packetization-mode 1), [`vp8`] (RFC 7741),
//!   [`audio`] (Opus RFC 7587, G.711 RFC 3551), [`mjpeg`] (RFC 2435).
//! - [`sender`] / [`receiver`]: send history with NACK-driven
//!   retransmission (RFC 4588 RTX), SR generation, keyframe-request
//!   collapsing; reordering, NACK with backoff, RR statistics, PLI.
//!
//! Left out: RTP translators/mixers (CSRC lists are carried, never built
//! from mixing), SSRC collision detection (RFC 3550 section 8.2), FEC/RED.

pub mod audio;
pub mod h264;
pub mod mjpeg;
pub mod packetizer;
pub mod receiver;
pub mod sender;
pub mod seq;
mod store;
pub use store::SLOT_OVERHEAD;
pub mod vp8;
pub mod wire;

use crate::bytes::{BufferTooSmall, Truncated};

/// Errors of RTP parsing, building, packetizing and depacketizing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// Input ended before a field it announces.
    Truncated,
    /// The caller's output buffer cannot hold the result.
    BufferTooSmall,
    /// RTP version field is not 2.
    BadVersion,
    /// Padding count is zero or longer than the packet body.
    BadPadding,
    /// Header extension malformed (bad length, reserved id 15 in one-byte form...).
    BadExtension,
    /// An extension does not fit the form asked for (id or length out of range).
    ExtensionOutOfRange,
    /// Too many CSRCs (more than 15) given to the builder.
    TooManyCsrcs,
    /// The MTU leaves no room for any payload byte after the headers.
    MtuTooSmall,
    /// A frame that cannot be fragmented (Opus, G.711 sample) exceeds the payload size.
    FrameTooLarge,
    /// The frame given to a packetizer is not in the expected format
    /// (no Annex-B start code, not a baseline JPEG...).
    BadFrame,
    /// A payload is malformed for its payload format.
    BadPayload,
    /// A payload uses a feature this implementation leaves out
    /// (H.264 STAP-B/MTAP/FU-B, JPEG restart markers, non-standard Huffman tables...).
    Unsupported,
}

impl From<Truncated> for Error {
    fn from(_: Truncated) -> Self {
        Error::Truncated
    }
}

impl From<BufferTooSmall> for Error {
    fn from(_: BufferTooSmall) -> Self {
        Error::BufferTooSmall
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = match self {
            Error::Truncated => "truncated RTP packet",
            Error::BufferTooSmall => "output buffer too small",
            Error::BadVersion => "RTP version is not 2",
            Error::BadPadding => "bad RTP padding",
            Error::BadExtension => "malformed RTP header extension",
            Error::ExtensionOutOfRange => "header extension id or length out of range",
            Error::TooManyCsrcs => "more than 15 CSRCs",
            Error::MtuTooSmall => "MTU too small for any payload",
            Error::FrameTooLarge => "frame larger than the payload size and not fragmentable",
            Error::BadFrame => "frame not in the expected format",
            Error::BadPayload => "malformed RTP payload",
            Error::Unsupported => "payload feature not supported",
        };
        f.write_str(s)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

#[cfg(test)]
mod robustness {
    //! Arbitrary bytes into every parser and state machine: errors are
    //! fine, panics and unbounded work are not.
    extern crate std;
    use super::packetizer::Depacketizer;
    use crate::time::{Duration, Instant};

    proptest::proptest! {
        #[test]
        fn arbitrary_packets_never_panic(packets in proptest::collection::vec(
            (proptest::num::u16::ANY, proptest::num::u32::ANY, proptest::bool::ANY,
             proptest::collection::vec(proptest::num::u8::ANY, 0..300)), 0..40)) {
            let mut h = super::h264::H264Depacketizer::new([0u8; 2048]);
            let mut v = super::vp8::Vp8Depacketizer::new([0u8; 2048]);
            let mut j = super::mjpeg::MjpegDepacketizer::new([0u8; 4096]);
            let mut a = super::audio::AudioDepacketizer::new([0u8; 512]);
            let mut rcfg = super::receiver::ReceiverConfig::new(1, 2, 90_000);
            rcfg.rtx = Some(super::sender::RtxConfig { ssrc: 3, payload_type: 97 });
            rcfg.keyframe_detect = super::receiver::KeyframeDetect::H264;
            let mut r = super::receiver::RtpReceiver::new(rcfg, std::vec![0u8; 8 * 1218]);
            let mut s = super::sender::RtpSender::new(super::sender::SenderConfig::new(2, 90_000), std::vec![0u8; 8 * 1218]);
            let mut t = Instant::from_secs(1);
            let mut buf = [0u8; 1500];
            for (seq, ts, m, payload) in &packets {
                let _ = h.push(*seq, *ts, *m, payload);
                let _ = v.push(*seq, *ts, *m, payload);
                let _ = j.push(*seq, *ts, *m, payload);
                let _ = a.push(*seq, *ts, *m, payload);
                let _ = super::mjpeg::parse_jpeg(payload);
                if let Ok(p) = super::wire::RtpPacket::new_checked(&payload[..]) {
                    let _ = p.extensions().count();
                    let _ = p.payload();
                }
                // As RTP (with a valid first byte and our SSRCs) and as RTCP.
                let mut pkt = payload.clone();
                if pkt.len() >= 12 {
                    pkt[0] = 0x80 | (pkt[0] & 0x3f);
                    pkt[8..12].copy_from_slice(&[0, 0, 0, if *m { 2 } else { 3 }]);
                }
                let _ = r.handle_rtp(t, &pkt);
                let _ = r.handle_rtcp(t, payload);
                let _ = s.handle_rtcp(t, payload);
                let _ = s.handle_sent(t, &pkt);
                while r.poll_packet(&mut buf).is_some() {}
                while r.poll_transmit(t, &mut buf).is_some() {}
                while s.poll_transmit(t, &mut buf).is_some() {}
                while r.poll_event().is_some() {}
                while s.poll_event().is_some() {}
                t += Duration::from_millis(7);
            }
        }
    }
}
