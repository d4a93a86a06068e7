//! RTP fixed header, CSRC list, padding (RFC 3550 section 5.1) and header
//! extensions (RFC 3550 section 5.3.1; one-byte and two-byte forms of
//! RFC 8285 section 4), with value helpers for the extensions WebRTC
//! negotiates: `urn:ietf:params:rtp-hdrext:sdes:mid` (RFC 8843),
//! `abs-send-time` (http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time)
//! and `transport-wide-cc` (draft-holmer-rmcat-transport-wide-cc-extensions-01).
//!
//! Parsing: [`RtpPacket::new_checked`] validates once, then accessors read
//! in place. Building: [`RtpHeader::emit`] writes a header into a caller
//! buffer; [`add_padding`] appends RFC 3550 padding.

use super::Error;
use crate::bytes::{Reader, Writer};

/// Size of the fixed RTP header.
pub const FIXED_HEADER_LEN: usize = 12;
/// Most CSRCs a header can carry (4-bit CC field).
pub const MAX_CSRCS: usize = 15;
/// "defined by profile" value of the one-byte extension form (RFC 8285 4.2).
pub const ONE_BYTE_PROFILE: u16 = 0xBEDE;
/// "defined by profile" value of the two-byte form; low 4 bits are app bits (RFC 8285 4.3).
pub const TWO_BYTE_PROFILE: u16 = 0x1000;

/// Zero-copy view of an RTP packet whose layout has been validated.
#[derive(Debug, Clone, Copy)]
pub struct RtpPacket<T: AsRef<[u8]>> {
    buf: T,
    header_len: usize,
    payload_end: usize,
}

impl<T: AsRef<[u8]>> RtpPacket<T> {
    /// Validate version, CSRC count, extension length and padding.
    pub fn new_checked(buf: T) -> Result<Self, Error> {
        let b = buf.as_ref();
        let mut r = Reader::new(b);
        let first = r.u8()?;
        if first >> 6 != 2 {
            return Err(Error::BadVersion);
        }
        r.skip(FIXED_HEADER_LEN - 1)?;
        let cc = (first & 0x0f) as usize;
        r.skip(cc * 4)?;
        if first & 0x10 != 0 {
            let _profile = r.u16()?;
            let words = r.u16()? as usize;
            r.skip(words * 4)?;
        }
        let header_len = r.position();
        let mut payload_end = b.len();
        if first & 0x20 != 0 {
            let pad = *b.last().ok_or(Error::Truncated)? as usize;
            if pad == 0 || pad > b.len() - header_len {
                return Err(Error::BadPadding);
            }
            payload_end -= pad;
        }
        Ok(RtpPacket { buf, header_len, payload_end })
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }
    fn be16(&self, at: usize) -> u16 {
        let b = self.b();
        u16::from_be_bytes([b[at], b[at + 1]])
    }
    fn be32(&self, at: usize) -> u32 {
        let b = self.b();
        u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    pub fn into_inner(self) -> T {
        self.buf
    }
    pub fn has_padding(&self) -> bool {
        self.b()[0] & 0x20 != 0
    }
    pub fn has_extension(&self) -> bool {
        self.b()[0] & 0x10 != 0
    }
    pub fn marker(&self) -> bool {
        self.b()[1] & 0x80 != 0
    }
    pub fn payload_type(&self) -> u8 {
        self.b()[1] & 0x7f
    }
    pub fn sequence_number(&self) -> u16 {
        self.be16(2)
    }
    pub fn timestamp(&self) -> u32 {
        self.be32(4)
    }
    pub fn ssrc(&self) -> u32 {
        self.be32(8)
    }
    pub fn csrc_count(&self) -> usize {
        (self.b()[0] & 0x0f) as usize
    }
    /// The `i`th CSRC, `None` past the count.
    pub fn csrc(&self, i: usize) -> Option<u32> {
        (i < self.csrc_count()).then(|| self.be32(FIXED_HEADER_LEN + 4 * i))
    }
    /// Header length including CSRCs and the extension block.
    pub fn header_len(&self) -> usize {
        self.header_len
    }
    /// The 16-bit "defined by profile" field of the extension block.
    pub fn extension_profile(&self) -> Option<u16> {
        self.has_extension().then(|| self.be16(FIXED_HEADER_LEN + 4 * self.csrc_count()))
    }
    /// The raw extension block body (without its 4-byte header).
    pub fn extension_data(&self) -> &[u8] {
        if !self.has_extension() {
            return &[];
        }
        &self.b()[FIXED_HEADER_LEN + 4 * self.csrc_count() + 4..self.header_len]
    }
    /// RFC 8285 extension elements (empty for other profiles).
    pub fn extensions(&self) -> Extensions<'_> {
        Extensions::new(self.extension_profile().unwrap_or(0), self.extension_data())
    }
    /// Find extension element `id` (RFC 8285 forms only).
    pub fn extension(&self, id: u8) -> Option<&[u8]> {
        self.extensions().filter_map(Result::ok).find(|e| e.id == id).map(|e| e.data)
    }
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len..self.payload_end]
    }
    /// Number of padding bytes at the end (0 without padding).
    pub fn padding_len(&self) -> usize {
        self.b().len() - self.payload_end
    }
    /// Everything: header, payload and padding.
    pub fn as_bytes(&self) -> &[u8] {
        self.b()
    }
}

/// One header extension element (RFC 8285).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extension<'a> {
    /// Local identifier negotiated in SDP `a=extmap` (1..=14 one-byte, 1..=255 two-byte).
    pub id: u8,
    pub data: &'a [u8],
}

/// Iterator over RFC 8285 extension elements; yields `Err(BadExtension)`
/// once and stops on malformed input.
#[derive(Debug, Clone)]
pub struct Extensions<'a> {
    r: Reader<'a>,
    two_byte: Option<bool>,
}

impl<'a> Extensions<'a> {
    fn new(profile: u16, data: &'a [u8]) -> Self {
        let two_byte = if profile == ONE_BYTE_PROFILE {
            Some(false)
        } else if profile & 0xfff0 == TWO_BYTE_PROFILE {
            Some(true)
        } else {
            None
        };
        Extensions { r: Reader::new(data), two_byte }
    }
}

impl<'a> Iterator for Extensions<'a> {
    type Item = Result<Extension<'a>, Error>;
    fn next(&mut self) -> Option<Self::Item> {
        let two = self.two_byte?;
        loop {
            let first = self.r.u8().ok()?;
            if first == 0 {
                continue; // padding byte between elements
            }
            let (id, len) = if two {
                match self.r.u8() {
                    Ok(l) => (first, l as usize),
                    Err(_) => return self.fail(),
                }
            } else {
                let id = first >> 4;
                if id == 15 {
                    // Reserved: stop processing (RFC 8285 4.2).
                    self.two_byte = None;
                    return None;
                }
                (id, (first & 0x0f) as usize + 1)
            };
            return match self.r.take(len) {
                Ok(data) => Some(Ok(Extension { id, data })),
                Err(_) => self.fail(),
            };
        }
    }
}

impl Extensions<'_> {
    fn fail<T>(&mut self) -> Option<Result<T, Error>> {
        self.two_byte = None;
        Some(Err(Error::BadExtension))
    }
}

/// Fields of an RTP header to emit. Extensions use the one-byte form when
/// every element fits it (id 1..=14, 1..=16 bytes), the two-byte form
/// otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtpHeader<'a> {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence_number: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub csrcs: &'a [u32],
    pub extensions: &'a [Extension<'a>],
}

impl RtpHeader<'_> {
    /// Bytes [`emit`](Self::emit) will write.
    #[inline]
    pub fn len(&self) -> Result<usize, Error> {
        if self.csrcs.is_empty() && self.extensions.is_empty() {
            return Ok(FIXED_HEADER_LEN); // the common case, inlined into packetizing loops
        }
        self.len_general()
    }

    fn len_general(&self) -> Result<usize, Error> {
        if self.csrcs.len() > MAX_CSRCS {
            return Err(Error::TooManyCsrcs);
        }
        Ok(FIXED_HEADER_LEN + 4 * self.csrcs.len() + self.extension_block_len()?)
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    fn one_byte_form(&self) -> bool {
        self.extensions.iter().all(|e| (1..=14).contains(&e.id) && (1..=16).contains(&e.data.len()))
    }

    fn extension_block_len(&self) -> Result<usize, Error> {
        if self.extensions.is_empty() {
            return Ok(0);
        }
        let per = if self.one_byte_form() { 1 } else { 2 };
        let mut body = 0usize;
        for e in self.extensions {
            if e.id == 0 || e.data.len() > 255 {
                return Err(Error::ExtensionOutOfRange);
            }
            body += per + e.data.len();
        }
        let words = body.div_ceil(4);
        if words > u16::MAX as usize {
            return Err(Error::ExtensionOutOfRange);
        }
        Ok(4 + words * 4)
    }

    /// Write the header at the start of `buf`; returns its length.
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        if self.csrcs.is_empty() && self.extensions.is_empty() {
            // The common case in one store, inlined into packetizing loops.
            let dst = buf.get_mut(..FIXED_HEADER_LEN).ok_or(Error::BufferTooSmall)?;
            let mut h = [0u8; FIXED_HEADER_LEN];
            h[0] = 0x80;
            h[1] = ((self.marker as u8) << 7) | (self.payload_type & 0x7f);
            h[2..4].copy_from_slice(&self.sequence_number.to_be_bytes());
            h[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
            h[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
            dst.copy_from_slice(&h);
            return Ok(FIXED_HEADER_LEN);
        }
        self.emit_general(buf)
    }

    fn emit_general(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let len = self.len()?;
        let mut w = Writer::new(buf);
        let x = if self.extensions.is_empty() { 0 } else { 0x10 };
        w.u8(0x80 | x | self.csrcs.len() as u8)?;
        w.u8(((self.marker as u8) << 7) | (self.payload_type & 0x7f))?;
        w.u16(self.sequence_number)?;
        w.u32(self.timestamp)?;
        w.u32(self.ssrc)?;
        for c in self.csrcs {
            w.u32(*c)?;
        }
        if !self.extensions.is_empty() {
            let one = self.one_byte_form();
            w.u16(if one { ONE_BYTE_PROFILE } else { TWO_BYTE_PROFILE })?;
            w.u16(((len - w.len() - 2) / 4) as u16)?;
            for e in self.extensions {
                if one {
                    w.u8((e.id << 4) | (e.data.len() as u8 - 1))?;
                } else {
                    w.u8(e.id)?;
                    w.u8(e.data.len() as u8)?;
                }
                w.bytes(e.data)?;
            }
            let n = len - w.len();
            w.zeros(n)?;
        }
        Ok(w.len())
    }
}

/// Append `pad` bytes of RFC 3550 padding to the packet of `len` bytes at
/// the start of `buf` and set its P bit; returns the new length.
/// `pad` must be 1..=255.
pub fn add_padding(buf: &mut [u8], len: usize, pad: u8) -> Result<usize, Error> {
    if pad == 0 {
        return Err(Error::BadPadding);
    }
    if len < FIXED_HEADER_LEN {
        return Err(Error::Truncated);
    }
    let end = len + pad as usize;
    let tail = buf.get_mut(len..end).ok_or(Error::BufferTooSmall)?;
    tail.fill(0);
    if let Some(last) = tail.last_mut() {
        *last = pad;
    }
    buf[0] |= 0x20;
    Ok(end)
}

/// abs-send-time value: 6.18 fixed-point seconds, 24 bits, from a 64-bit
/// NTP timestamp (32.32).
pub fn abs_send_time_from_ntp(ntp: u64) -> [u8; 3] {
    let v = ((ntp >> 14) & 0x00ff_ffff) as u32;
    let b = v.to_be_bytes();
    [b[1], b[2], b[3]]
}

/// abs-send-time value from microseconds of any clock.
pub fn abs_send_time_from_micros(us: u64) -> [u8; 3] {
    let v = (((us as u128) << 18) / 1_000_000) as u32 & 0x00ff_ffff;
    let b = v.to_be_bytes();
    [b[1], b[2], b[3]]
}

/// Read an abs-send-time element as 6.18 fixed-point seconds.
pub fn parse_abs_send_time(data: &[u8]) -> Result<u32, Error> {
    match data {
        [a, b, c] => Ok(u32::from_be_bytes([0, *a, *b, *c])),
        _ => Err(Error::BadExtension),
    }
}

/// transport-wide-cc element value: the transport-wide sequence number.
pub fn transport_cc_value(seq: u16) -> [u8; 2] {
    seq.to_be_bytes()
}

/// Read a transport-wide-cc element.
pub fn parse_transport_cc(data: &[u8]) -> Result<u16, Error> {
    match data {
        [a, b] => Ok(u16::from_be_bytes([*a, *b])),
        _ => Err(Error::BadExtension),
    }
}

/// Read an `sdes:mid` element (its bytes are the MID token, RFC 8843 15.2).
pub fn parse_mid(data: &[u8]) -> Result<&str, Error> {
    if data.is_empty() {
        return Err(Error::BadExtension);
    }
    core::str::from_utf8(data).map_err(|_| Error::BadExtension)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hand_built_packet() {
        // V=2 P=1 X=1 CC=1, M=1 PT=96, seq 0x1234, ts 0xdeadbeef, ssrc 0x01020304,
        // csrc 0x0a0b0c0d, one-byte ext: id 1 len 2 "ab", id 3 len1 0x07, pad to
        // word; payload 0x55 0x66; padding 3 bytes.
        let pkt: [u8; 33] = [
            0xb1, 0xe0, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0x0a, 0x0b, 0x0c, 0x0d, 0xbe, 0xde,
            0x00, 0x02, 0x11, b'a', b'b', 0x30, 0x07, 0x00, 0x00, 0x00, 0x55, 0x66, 0x00, 0x00, 0x03,
        ];
        let p = RtpPacket::new_checked(&pkt[..]).unwrap();
        assert!(p.marker());
        assert_eq!(p.payload_type(), 96);
        assert_eq!(p.sequence_number(), 0x1234);
        assert_eq!(p.timestamp(), 0xdeadbeef);
        assert_eq!(p.ssrc(), 0x01020304);
        assert_eq!(p.csrc(0), Some(0x0a0b0c0d));
        assert_eq!(p.csrc(1), None);
        assert_eq!(p.extension(1), Some(&b"ab"[..]));
        assert_eq!(p.extension(3), Some(&[7u8][..]));
        assert_eq!(p.payload(), &[0x55, 0x66]);
        assert_eq!(p.padding_len(), 3);

        // Builder reproduces it.
        let exts = [Extension { id: 1, data: b"ab" }, Extension { id: 3, data: &[7] }];
        let h = RtpHeader {
            marker: true,
            payload_type: 96,
            sequence_number: 0x1234,
            timestamp: 0xdeadbeef,
            ssrc: 0x01020304,
            csrcs: &[0x0a0b0c0d],
            extensions: &exts,
        };
        let mut buf = [0u8; 64];
        let n = h.emit(&mut buf).unwrap();
        buf[n..n + 2].copy_from_slice(&[0x55, 0x66]);
        let n = add_padding(&mut buf, n + 2, 3).unwrap();
        assert_eq!(&buf[..n], &pkt[..]);
    }

    #[test]
    fn two_byte_form_when_needed() {
        let long = [9u8; 20];
        let exts = [Extension { id: 1, data: &[] }, Extension { id: 200, data: &long }];
        let h = RtpHeader { extensions: &exts, ..Default::default() };
        let mut buf = [0u8; 64];
        let n = h.emit(&mut buf).unwrap();
        let p = RtpPacket::new_checked(&buf[..n]).unwrap();
        assert_eq!(p.extension_profile(), Some(TWO_BYTE_PROFILE));
        let got: [Extension; 2] = {
            let mut it = p.extensions().map(Result::unwrap);
            [it.next().unwrap(), it.next().unwrap()]
        };
        assert_eq!(got, exts);
        assert!(p.payload().is_empty());
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(RtpPacket::new_checked(&[0x80u8; 11][..]).unwrap_err(), Error::Truncated);
        assert_eq!(RtpPacket::new_checked(&[0x40u8; 12][..]).unwrap_err(), Error::BadVersion);
        let mut p = [0u8; 13];
        p[0] = 0xa0; // padding, last byte 0
        assert_eq!(RtpPacket::new_checked(&p[..]).unwrap_err(), Error::BadPadding);
        p[12] = 2; // padding longer than body
        assert_eq!(RtpPacket::new_checked(&p[..]).unwrap_err(), Error::BadPadding);
        let mut q = [0u8; 16];
        q[0] = 0x90; // extension header claims 1 word past the end
        q[15] = 1;
        assert_eq!(RtpPacket::new_checked(&q[..]).unwrap_err(), Error::Truncated);
        // one-byte element overrunning its block
        let bad = [0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe, 0xde, 0, 1, 0x13, 1, 2, 3];
        let p = RtpPacket::new_checked(&bad[..]).unwrap();
        assert_eq!(p.extensions().next(), Some(Err(Error::BadExtension)));
    }

    #[test]
    fn extension_values() {
        // 1.5 s -> 1.5 * 2^18 = 393216 = 0x060000
        assert_eq!(abs_send_time_from_micros(1_500_000), [0x06, 0x00, 0x00]);
        assert_eq!(abs_send_time_from_ntp(0x0000_0001_8000_0000), [0x06, 0x00, 0x00]);
        assert_eq!(parse_abs_send_time(&[0x06, 0, 0]), Ok(0x060000));
        assert_eq!(parse_transport_cc(&transport_cc_value(513)), Ok(513));
        assert_eq!(parse_mid(b"0"), Ok("0"));
    }

    proptest::proptest! {
        #[test]
        fn header_round_trip(m: bool, pt in 0u8..128, seq: u16, ts: u32, ssrc: u32,
                             csrcs in proptest::collection::vec(proptest::num::u32::ANY, 0..15),
                             ext_ids in proptest::collection::vec(1u8..=255, 0..5),
                             ext_len in 0usize..40, payload in proptest::collection::vec(0u8..=255, 0..50),
                             pad in 0u8..20) {
            let data = [0x5au8; 40];
            let mut exts = heapless::Vec::<Extension, 5>::new();
            for (i, id) in ext_ids.iter().enumerate() {
                let l = (ext_len + i) % 40;
                // one-byte form has no empty elements; keep them non-empty for small ids
                let l = if l == 0 && *id <= 14 { 1 } else { l };
                exts.push(Extension { id: *id, data: &data[..l] }).unwrap();
            }
            let h = RtpHeader { marker: m, payload_type: pt, sequence_number: seq, timestamp: ts, ssrc,
                                csrcs: &csrcs, extensions: &exts };
            let mut buf = [0u8; 600];
            let n = h.emit(&mut buf).unwrap();
            proptest::prop_assert_eq!(n, h.len().unwrap());
            buf[n..n + payload.len()].copy_from_slice(&payload);
            let mut total = n + payload.len();
            if pad > 0 { total = add_padding(&mut buf, total, pad).unwrap(); }
            let p = RtpPacket::new_checked(&buf[..total]).unwrap();
            proptest::prop_assert_eq!(p.marker(), m);
            proptest::prop_assert_eq!(p.payload_type(), pt);
            proptest::prop_assert_eq!(p.sequence_number(), seq);
            proptest::prop_assert_eq!(p.timestamp(), ts);
            proptest::prop_assert_eq!(p.ssrc(), ssrc);
            for (i, c) in csrcs.iter().enumerate() { proptest::prop_assert_eq!(p.csrc(i), Some(*c)); }
            let mut n_ext = 0;
            for (e, want) in p.extensions().zip(exts.iter()) {
                proptest::prop_assert_eq!(e.unwrap(), *want);
                n_ext += 1;
            }
            proptest::prop_assert_eq!(n_ext, exts.len());
            proptest::prop_assert_eq!(p.payload(), &payload[..]);
            proptest::prop_assert_eq!(p.padding_len(), pad as usize);
        }
    }
}
