//! Motion JPEG RTP payload format (RFC 2435) for JPEG camera sensors.
//!
//! Sender: a baseline JPEG (SOF0, 8-bit precision, three components,
//! Y sampled 2x1 or 2x2 and Cb/Cr 1x1, Huffman tables equal to the
//! standard ones of ITU-T T.81 annex K.3) is parsed with [`parse_jpeg`];
//! its entropy-coded scan is sent in fragments behind the 8-byte JPEG
//! header (section 3.1) as type 0 (4:2:2) or 1 (4:2:0), with Q=255 and the
//! quantization tables in-band in the first packet (section 3.1.8).
//!
//! Receiver: fragments are placed by their offset; when the marker
//! arrives a complete JPEG is written: SOI, DQT (from the in-band tables,
//! or from Q 1..=99 scaled as in section 4.2 / appendix A), SOF0, the
//! standard DHT, SOS, scan, EOI. Frames with a missing fragment are dropped.
//!
//! Left out: restart markers (types 64..=127, DRI), 16-bit quantization
//! tables, custom Huffman tables, grayscale / other sampling, dimensions
//! not a multiple of 8 or above 2040, Q 100..=127 (reserved).

use super::packetizer::{Assembler, Chunk, Depacketizer, Frame, Payloader};
use super::Error;
use crate::bytes::{Reader, Writer};

/// Bytes of the RFC 2435 main JPEG header.
pub const MAIN_HEADER_LEN: usize = 8;
/// Bytes of the quantization table header plus two 8-bit tables.
pub const QTABLE_HEADER_LEN: usize = 4 + 128;
/// Bytes of the JPEG headers the depacketizer writes before the scan.
pub const JPEG_HEADER_LEN: usize = 2 + (4 + 130) + (4 + 15) + (4 + 416) + (4 + 10);

/// Standard Huffman tables, ITU-T T.81 annex K.3: (class<<4 | id, BITS, HUFFVAL).
const DC_LUMA_BITS: [u8; 16] = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const DC_CHROMA_BITS: [u8; 16] = [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0];
const DC_VALS: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const AC_LUMA_BITS: [u8; 16] = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
#[rustfmt::skip]
const AC_LUMA_VALS: [u8; 162] = [
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
    0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
    0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
    0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
    0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
    0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
    0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
    0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
    0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
    0xf9, 0xfa,
];
const AC_CHROMA_BITS: [u8; 16] = [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77];
#[rustfmt::skip]
const AC_CHROMA_VALS: [u8; 162] = [
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
    0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0,
    0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26,
    0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
    0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
    0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
    0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5,
    0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
    0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
    0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
    0xf9, 0xfa,
];

/// The four standard tables: (Tc<<4 | Th, bits, values).
const STD_HUFFMAN: [(u8, &[u8; 16], &[u8]); 4] = [
    (0x00, &DC_LUMA_BITS, &DC_VALS),
    (0x10, &AC_LUMA_BITS, &AC_LUMA_VALS),
    (0x01, &DC_CHROMA_BITS, &DC_VALS),
    (0x11, &AC_CHROMA_BITS, &AC_CHROMA_VALS),
];

/// Annex K.1 example tables, in zig-zag order (the order DQT and RFC 2435 use).
#[rustfmt::skip]
const STD_LUMA_Q: [u8; 64] = [
    16, 11, 12, 14, 12, 10, 16, 14, 13, 14, 18, 17, 16, 19, 24, 40,
    26, 24, 22, 22, 24, 49, 35, 37, 29, 40, 58, 51, 61, 60, 57, 51,
    56, 55, 64, 72, 92, 78, 64, 68, 87, 69, 55, 56, 80, 109, 81, 87,
    95, 98, 103, 104, 103, 62, 77, 113, 121, 112, 100, 120, 92, 101, 103, 99,
];
#[rustfmt::skip]
const STD_CHROMA_Q: [u8; 64] = [
    17, 18, 18, 24, 21, 24, 47, 26, 26, 47, 99, 66, 56, 66, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
];

/// Quantization tables for Q 1..=99 (RFC 2435 section 4.2, appendix A):
/// the annex K tables scaled by 5000/Q below 50, 200-2Q from 50.
pub fn tables_for_q(q: u8) -> [[u8; 64]; 2] {
    let q = q.clamp(1, 99) as u32;
    let factor = if q < 50 { 5000 / q } else { 200 - 2 * q };
    let mut out = [[0u8; 64]; 2];
    for (t, std) in [STD_LUMA_Q, STD_CHROMA_Q].iter().enumerate() {
        for (o, s) in out[t].iter_mut().zip(std) {
            *o = ((*s as u32 * factor + 50) / 100).clamp(1, 255) as u8;
        }
    }
    out
}

/// What the packetizer needs from a baseline JPEG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JpegInfo<'a> {
    pub width: u16,
    pub height: u16,
    /// RFC 2435 type: 0 = Y 2x1 (4:2:2), 1 = Y 2x2 (4:2:0).
    pub kind: u8,
    /// Luma and chroma quantization tables, zig-zag order.
    pub qtables: [&'a [u8]; 2],
    /// Entropy-coded scan data (between the SOS header and EOI).
    pub scan: &'a [u8],
}

/// Parse a baseline JPEG with the restrictions listed in the module docs.
pub fn parse_jpeg(jpeg: &[u8]) -> Result<JpegInfo<'_>, Error> {
    let mut r = Reader::new(jpeg);
    if r.u16()? != 0xffd8 {
        return Err(Error::BadFrame);
    }
    let mut tables: [Option<&[u8]>; 4] = [None; 4];
    let mut sof: Option<(u16, u16, u8, [u8; 3])> = None;
    loop {
        let mut m = r.u8()?;
        if m != 0xff {
            return Err(Error::BadFrame);
        }
        while m == 0xff {
            m = r.u8()?; // fill bytes
        }
        let len = r.u16()? as usize;
        let seg = r.take(len.checked_sub(2).ok_or(Error::BadFrame)?)?;
        let mut s = Reader::new(seg);
        match m {
            0xdb => {
                while !s.is_empty() {
                    let pq_tq = s.u8()?;
                    if pq_tq >> 4 != 0 {
                        return Err(Error::Unsupported); // 16-bit tables
                    }
                    let t = tables.get_mut((pq_tq & 0x0f) as usize).ok_or(Error::BadFrame)?;
                    *t = Some(s.take(64)?);
                }
            }
            0xc0 => {
                if s.u8()? != 8 {
                    return Err(Error::Unsupported);
                }
                let height = s.u16()?;
                let width = s.u16()?;
                if s.u8()? != 3 {
                    return Err(Error::Unsupported);
                }
                let mut samp = [0u8; 3];
                let mut tq = [0u8; 3];
                for i in 0..3 {
                    let _id = s.u8()?;
                    samp[i] = s.u8()?;
                    tq[i] = s.u8()?;
                }
                let kind = match samp {
                    [0x21, 0x11, 0x11] => 0,
                    [0x22, 0x11, 0x11] => 1,
                    _ => return Err(Error::Unsupported),
                };
                sof = Some((width, height, kind, tq));
            }
            0xc4 => {
                while !s.is_empty() {
                    let class_id = s.u8()?;
                    let bits = s.take(16)?;
                    let n: usize = bits.iter().map(|b| *b as usize).sum();
                    let vals = s.take(n)?;
                    let std = STD_HUFFMAN.iter().find(|t| t.0 == class_id).ok_or(Error::Unsupported)?;
                    if bits != std.1 || vals != std.2 {
                        return Err(Error::Unsupported);
                    }
                }
            }
            0xdd => {
                let restart_interval = s.u16()?;
                if restart_interval != 0 {
                    return Err(Error::Unsupported); // restart interval
                }
            }
            0xda => {
                let (width, height, kind, tq) = sof.ok_or(Error::BadFrame)?;
                if width == 0 || height == 0 || width % 8 != 0 || height % 8 != 0 || width > 2040 || height > 2040 {
                    return Err(Error::Unsupported);
                }
                if tq[1] != tq[2] {
                    return Err(Error::Unsupported);
                }
                let luma = tables.get(tq[0] as usize).copied().flatten().ok_or(Error::BadFrame)?;
                let chroma = tables.get(tq[1] as usize).copied().flatten().ok_or(Error::BadFrame)?;
                let rest = r.rest();
                let scan = match rest {
                    [scan @ .., 0xff, 0xd9] => scan,
                    _ => return Err(Error::BadFrame),
                };
                return Ok(JpegInfo { width, height, kind, qtables: [luma, chroma], scan });
            }
            0xc1..=0xcf => return Err(Error::Unsupported), // other SOFn
            0xd8 | 0xd9 => return Err(Error::BadFrame),
            _ => {} // APPn, COM...
        }
    }
}

/// Sender half: one JPEG in, RTP payloads out (RTP clock 90 kHz).
#[derive(Debug, Clone)]
pub struct MjpegPayloader<'a> {
    info: JpegInfo<'a>,
    offset: usize,
    started: bool,
}

impl<'a> MjpegPayloader<'a> {
    /// Parse the JPEG; errors with [`Error::Unsupported`] / [`Error::BadFrame`]
    /// if it is outside what RFC 2435 (and this implementation) carries.
    pub fn new(jpeg: &'a [u8]) -> Result<Self, Error> {
        Ok(MjpegPayloader { info: parse_jpeg(jpeg)?, offset: 0, started: false })
    }
}

impl Payloader for MjpegPayloader<'_> {
    fn next_payload(&mut self, buf: &mut [u8]) -> Option<Result<Chunk, Error>> {
        if self.started && self.offset >= self.info.scan.len() {
            return None;
        }
        let first = !self.started;
        self.started = true;
        let hdr = MAIN_HEADER_LEN + if first { QTABLE_HEADER_LEN } else { 0 };
        if buf.len() <= hdr {
            self.offset = self.info.scan.len();
            return Some(Err(Error::MtuTooSmall));
        }
        let n = (self.info.scan.len() - self.offset).min(buf.len() - hdr);
        let mut w = Writer::new(buf);
        let res = (|| -> Result<(), crate::bytes::BufferTooSmall> {
            w.u8(0)?;
            w.u24(self.offset as u32)?;
            w.u8(self.info.kind)?;
            w.u8(255)?;
            w.u8((self.info.width / 8) as u8)?;
            w.u8((self.info.height / 8) as u8)?;
            if first {
                w.u8(0)?;
                w.u8(0)?; // both tables 8-bit
                w.u16(128)?;
                w.bytes(self.info.qtables[0])?;
                w.bytes(self.info.qtables[1])?;
            }
            w.bytes(&self.info.scan[self.offset..self.offset + n])
        })();
        if let Err(e) = res {
            return Some(Err(e.into()));
        }
        self.offset += n;
        Some(Ok(Chunk { len: hdr + n, last: self.offset == self.info.scan.len(), timestamp_offset: 0 }))
    }
}

/// Write the JPEG headers for the given parameters (exactly
/// [`JPEG_HEADER_LEN`] bytes).
fn write_headers(out: &mut [u8], kind: u8, width: u16, height: u16, q: &[[u8; 64]; 2]) -> Result<(), Error> {
    let mut w = Writer::new(out);
    w.u16(0xffd8)?;
    w.u16(0xffdb)?;
    w.u16(2 + 130)?;
    for (i, t) in q.iter().enumerate() {
        w.u8(i as u8)?;
        w.bytes(t)?;
    }
    w.u16(0xffc0)?;
    w.u16(2 + 15)?;
    w.u8(8)?;
    w.u16(height)?;
    w.u16(width)?;
    w.u8(3)?;
    w.bytes(&[1, if kind == 0 { 0x21 } else { 0x22 }, 0, 2, 0x11, 1, 3, 0x11, 1])?;
    w.u16(0xffc4)?;
    w.u16(2 + 416)?;
    for (class_id, bits, vals) in STD_HUFFMAN {
        w.u8(class_id)?;
        w.bytes(bits)?;
        w.bytes(vals)?;
    }
    w.u16(0xffda)?;
    w.u16(2 + 10)?;
    w.bytes(&[3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0])?;
    debug_assert_eq!(w.len(), JPEG_HEADER_LEN);
    Ok(())
}

/// Receiver half: RTP payloads in, complete JPEG files out into caller
/// storage `B` (size: largest scan + [`JPEG_HEADER_LEN`] + 2).
#[derive(Debug)]
pub struct MjpegDepacketizer<B> {
    asm: Assembler<B>,
    kind: u8,
    width: u16,
    height: u16,
    q: [[u8; 64]; 2],
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> MjpegDepacketizer<B> {
    pub fn new(storage: B) -> Self {
        MjpegDepacketizer { asm: Assembler::new(storage), kind: 0, width: 0, height: 0, q: [[0; 64]; 2] }
    }

    fn consume(&mut self, payload: &[u8]) -> Result<(), Error> {
        let mut r = Reader::new(payload);
        let _type_specific = r.u8()?;
        let offset = r.u24()? as usize;
        let kind = r.u8()?;
        let q = r.u8()?;
        let width = r.u8()? as u16 * 8;
        let height = r.u8()? as u16 * 8;
        if kind > 1 {
            return Err(Error::Unsupported);
        }
        if offset == 0 {
            if width == 0 || height == 0 {
                return Err(Error::BadPayload);
            }
            self.kind = kind;
            self.width = width;
            self.height = height;
            if q >= 128 {
                let _mbz = r.u8()?;
                let precision = r.u8()?;
                let len = r.u16()?;
                if precision != 0 {
                    return Err(Error::Unsupported);
                }
                if len != 128 {
                    // Q=128..=254 may omit tables in later frames (len 0);
                    // without a cache of them that is unsupported here.
                    return Err(if len == 0 { Error::Unsupported } else { Error::BadPayload });
                }
                self.q[0].copy_from_slice(r.take(64)?);
                self.q[1].copy_from_slice(r.take(64)?);
            } else if (1..100).contains(&q) {
                self.q = tables_for_q(q);
            } else {
                return Err(Error::Unsupported);
            }
            self.asm.append(&[&[0u8; JPEG_HEADER_LEN]])?;
        } else if kind != self.kind || width != self.width || height != self.height {
            return Err(Error::BadPayload);
        }
        if offset + JPEG_HEADER_LEN != self.asm.len() {
            return Err(Error::BadPayload); // fragment missing or out of order
        }
        self.asm.append(&[r.rest()])
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Depacketizer for MjpegDepacketizer<B> {
    fn push(&mut self, seq: u16, timestamp: u32, marker: bool, payload: &[u8]) -> Result<Option<Frame>, Error> {
        let starts = payload.get(1..4).is_some_and(|o| o == [0, 0, 0]);
        if !self.asm.begin(seq, timestamp, starts) {
            let _ = self.asm.end(marker);
            return Ok(None);
        }
        if let Err(e) = self.consume(payload) {
            self.asm.fail();
            let _ = self.asm.end(marker);
            return Err(e);
        }
        if marker {
            self.asm.set_keyframe();
            if self.asm.append(&[&[0xff, 0xd9]]).is_ok() {
                let (kind, w, h, q) = (self.kind, self.width, self.height, self.q);
                if let Some(head) = self.asm.frame_mut().get_mut(..JPEG_HEADER_LEN) {
                    write_headers(head, kind, w, h, &q)?;
                }
            }
        }
        Ok(self.asm.end(marker))
    }
    fn frame(&self) -> &[u8] {
        self.asm.frame()
    }
    fn dropped_frames(&self) -> u32 {
        self.asm.dropped()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::rtp::packetizer::test_util::round_trip;
    use std::vec::Vec;

    fn jpeg(kind: u8, w: u16, h: u16, scan: &[u8]) -> Vec<u8> {
        let q = tables_for_q(75);
        let mut v = std::vec![0u8; JPEG_HEADER_LEN];
        write_headers(&mut v, kind, w, h, &q).unwrap();
        // Insert an APP0 and COM segment like encoders do, after SOI.
        let mut out = Vec::from(&v[..2]);
        out.extend_from_slice(&[0xff, 0xe0, 0, 7, b'J', b'F', b'I', b'F', 0]);
        out.extend_from_slice(&[0xff, 0xfe, 0, 4, b'h', b'i']);
        out.extend_from_slice(&v[2..]);
        out.extend_from_slice(scan);
        out.extend_from_slice(&[0xff, 0xd9]);
        out
    }

    #[test]
    fn standard_tables_are_consistent() {
        for (_, bits, vals) in STD_HUFFMAN {
            assert_eq!(bits.iter().map(|b| *b as usize).sum::<usize>(), vals.len());
        }
        // Q=50 gives the annex K tables themselves.
        assert_eq!(tables_for_q(50), [STD_LUMA_Q, STD_CHROMA_Q]);
        assert_eq!(tables_for_q(1)[0][0], 255);
        assert_eq!(tables_for_q(99)[1][63], 2);
    }

    #[test]
    fn rejects_what_rfc2435_cannot_carry() {
        let j = jpeg(1, 320, 240, &[1, 2, 3]);
        assert!(MjpegPayloader::new(&j).is_ok());
        let mut bad = j.clone();
        let dht = bad.windows(2).position(|w| w == [0xff, 0xc4]).unwrap();
        bad[dht + 5 + 1] ^= 1; // alter a DC luma BITS entry
        assert_eq!(MjpegPayloader::new(&bad).unwrap_err(), Error::Unsupported);
        assert_eq!(MjpegPayloader::new(&jpeg(1, 100, 240, &[1])).unwrap_err(), Error::Unsupported);
        assert_eq!(MjpegPayloader::new(&j[..j.len() - 1]).unwrap_err(), Error::BadFrame);
        assert_eq!(MjpegPayloader::new(&[0xff, 0xd8, 0xff]).unwrap_err(), Error::Truncated);
        assert_eq!(MjpegPayloader::new(b"GIF89a").unwrap_err(), Error::BadFrame);
    }

    #[test]
    fn q_below_128_uses_scaled_tables() {
        // Single-packet frame, Q=50, type 1, 16x16, scan "ab".
        let payload = [0, 0, 0, 0, 1, 50, 2, 2, b'a', b'b'];
        let mut d = MjpegDepacketizer::new([0u8; 1024]);
        let f = d.push(1, 0, true, &payload).unwrap().unwrap();
        let info = parse_jpeg(d.frame()).unwrap();
        assert_eq!(f.len, JPEG_HEADER_LEN + 4);
        assert_eq!((info.width, info.height, info.kind, info.scan), (16, 16, 1, &b"ab"[..]));
        assert_eq!(info.qtables, [&STD_LUMA_Q[..], &STD_CHROMA_Q[..]]);
    }

    proptest::proptest! {
        #[test]
        fn round_trip_any_size(scan_len in 1usize..30000, mtu in 160usize..1500, kind in 0u8..2,
                               w in 1u16..255, h in 1u16..255, lose: Option<usize>) {
            let scan: Vec<u8> = (0..scan_len).map(|i| (i % 251) as u8).collect();
            let j = jpeg(kind, w * 8, h * 8, &scan);
            let mut d = MjpegDepacketizer::new(std::vec![0u8; scan_len + JPEG_HEADER_LEN + 2]);
            let mut out = Vec::new();
            let first = mtu - 12 - MAIN_HEADER_LEN - QTABLE_HEADER_LEN;
            let n = 1 + (scan_len.saturating_sub(first)).div_ceil(mtu - 12 - MAIN_HEADER_LEN);
            let lose = lose.filter(|_| n > 1).map(|l| 1 + l % (n - 1));
            let (np, frames) = round_trip(MjpegPayloader::new(&j).unwrap(), &mut d, mtu, 3, lose, &mut out).unwrap();
            proptest::prop_assert_eq!(np, n);
            if lose.is_some() {
                proptest::prop_assert!(frames.is_empty());
            } else {
                proptest::prop_assert_eq!(frames.len(), 1);
                let a = parse_jpeg(&j).unwrap();
                let b = parse_jpeg(&out).unwrap();
                proptest::prop_assert_eq!(a, b);
            }
        }
    }
}
