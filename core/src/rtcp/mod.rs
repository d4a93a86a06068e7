//! RTCP: parsing and building of the packets a WebRTC media stream uses.
//!
//! - RFC 3550 section 6.4-6.6: SR, RR (report blocks), SDES (CNAME and
//!   other items), BYE; compound packets (section 6.1) parsed with
//!   [`wire::CompoundIter`] and built with [`wire::CompoundWriter`].
//! - RFC 5506: reduced-size packets (any packet type first, no SR/RR
//!   required) are accepted and can be built.
//! - RFC 4585 section 6.2.1 generic NACK, 6.3.1 PLI; RFC 5104 section
//!   4.3.1 FIR; REMB (draft-alvestrand-rmcat-remb-03); transport-wide
//!   congestion control feedback
//!   (draft-holmer-rmcat-transport-wide-cc-extensions-01 section 3.1).
//! - NTP timestamp helpers (RFC 3550 section 4).
//!
//! Left out: APP packets (parsed as [`wire::RtcpPacket::Other`]), XR
//! (RFC 3611), SLI/RPSI, TMMBR/TSTR/VBCM, RTCP timing rules of RFC 3550
//! section 6.3 (the sender/receiver machines in [`crate::rtp`] send at a
//! fixed configurable interval).

pub mod wire;

use crate::bytes::{BufferTooSmall, Truncated};

/// Errors of RTCP parsing and building.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// Input ended before a field it announces.
    Truncated,
    /// The caller's output buffer cannot hold the packet.
    BufferTooSmall,
    /// Version is not 2.
    BadVersion,
    /// Padding count zero or beyond the packet.
    BadPadding,
    /// The length field or a count disagrees with the content.
    BadLength,
    /// A field value outside what the format allows (SDES item too long,
    /// REMB bitrate not representable, TWCC delta out of range...).
    BadValue,
    /// More items than the format can count (e.g. > 31 report blocks).
    TooMany,
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
        f.write_str(match self {
            Error::Truncated => "truncated RTCP packet",
            Error::BufferTooSmall => "output buffer too small",
            Error::BadVersion => "RTCP version is not 2",
            Error::BadPadding => "bad RTCP padding",
            Error::BadLength => "RTCP length or count inconsistent",
            Error::BadValue => "RTCP field value out of range",
            Error::TooMany => "too many items for one RTCP packet",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}
