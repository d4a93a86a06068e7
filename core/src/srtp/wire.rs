//! The few RTP and RTCP header fields SRTP needs (RFC 3550 5.1, 6.4; RFC
//! 3711 3.1, 3.4): where the encrypted part starts, the SSRC, the sequence
//! number, and the SRTCP `E || index` word. Full RTP/RTCP parsing lives in
//! `rtp/` and `rtcp/`.

use super::SrtpError;
use crate::bytes::Reader;

/// Length of the fixed RTP header.
pub const RTP_FIXED_HEADER_LEN: usize = 12;
/// Length of the RTCP header SRTCP leaves in clear (first word and sender SSRC).
pub const RTCP_HEADER_LEN: usize = 8;
/// Length of the SRTCP `E || SRTCP index` word.
pub const SRTCP_INDEX_LEN: usize = 4;
/// The E (encrypted) flag in the SRTCP index word.
pub const SRTCP_E_FLAG: u32 = 0x8000_0000;
/// Largest SRTCP index (31 bits).
pub const SRTCP_INDEX_MAX: u32 = 0x7fff_ffff;

/// The header of an RTP packet, as far as SRTP is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub sequence_number: u16,
    pub ssrc: u32,
    /// Bytes of header (fixed part, CSRCs, extension): the authenticated but
    /// unencrypted prefix.
    pub header_len: usize,
}

impl RtpHeader {
    /// Parse the header at the start of `packet`. The header must fit in
    /// `packet`; the payload may be empty.
    pub fn parse(packet: &[u8]) -> Result<Self, SrtpError> {
        let mut r = Reader::new(packet);
        let b0 = r.u8()?;
        if b0 >> 6 != 2 {
            return Err(SrtpError::Malformed);
        }
        let csrc_count = usize::from(b0 & 0x0f);
        let _marker_pt = r.u8()?;
        let sequence_number = r.u16()?;
        let _timestamp = r.u32()?;
        let ssrc = r.u32()?;
        r.skip(4 * csrc_count)?;
        if b0 & 0x10 != 0 {
            let _profile = r.u16()?;
            let words = usize::from(r.u16()?);
            r.skip(4 * words)?;
        }
        Ok(RtpHeader { sequence_number, ssrc, header_len: r.position() })
    }
}

/// The sender SSRC of an RTCP compound packet (the first packet's header).
pub fn rtcp_sender_ssrc(packet: &[u8]) -> Result<u32, SrtpError> {
    let mut r = Reader::new(packet);
    let b0 = r.u8()?;
    if b0 >> 6 != 2 {
        return Err(SrtpError::Malformed);
    }
    r.skip(3)?;
    Ok(r.u32()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_header_lengths() {
        let mut p = [0u8; 40];
        p[0] = 0x80;
        p[2] = 0x12;
        p[3] = 0x34;
        p[8..12].copy_from_slice(&0xcafebabeu32.to_be_bytes());
        let h = RtpHeader::parse(&p).unwrap();
        assert_eq!((h.sequence_number, h.ssrc, h.header_len), (0x1234, 0xcafebabe, 12));
        // Two CSRCs and a one-word extension.
        p[0] = 0x92;
        p[20..24].copy_from_slice(&[0xbe, 0xde, 0, 1]);
        assert_eq!(RtpHeader::parse(&p).unwrap().header_len, 12 + 8 + 4 + 4);
        // Extension running past the end.
        p[22..24].copy_from_slice(&[0, 9]);
        assert_eq!(RtpHeader::parse(&p), Err(SrtpError::Truncated));
        p[0] = 0x40;
        assert_eq!(RtpHeader::parse(&p), Err(SrtpError::Malformed));
        assert_eq!(RtpHeader::parse(&p[..5]), Err(SrtpError::Malformed));
        p[0] = 0x80;
        assert_eq!(RtpHeader::parse(&p[..11]), Err(SrtpError::Truncated));
        assert_eq!(rtcp_sender_ssrc(&[0x81, 0xc8, 0, 1, 1, 2, 3, 4]), Ok(0x01020304));
        assert_eq!(rtcp_sender_ssrc(&[0x81, 0xc8, 0, 1, 1, 2, 3]), Err(SrtpError::Truncated));
    }
}
