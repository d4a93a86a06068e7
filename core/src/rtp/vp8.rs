//! VP8 RTP payload format (RFC 7741): the payload descriptor (section 4.2)
//! with a 15-bit picture ID, frames split over packets at any byte
//! (section 4.4 allows it), key frame detection from the VP8 payload
//! header (section 4.3, P bit).
//!
//! The sender always writes X=1, I=1, M=1 (4-byte descriptor), S=1 and
//! PID=0 on the first packet of a frame, N=0. The receiver accepts every
//! optional field (I, L, T, K) and skips what it does not use.
//!
//! Left out: partition-aligned packetizing and temporal-layer fields on send.

use super::packetizer::{Assembler, Chunk, Depacketizer, Frame, Payloader};
use super::Error;
use crate::bytes::Reader;

/// Bytes of the payload descriptor this sender writes.
pub const DESCRIPTOR_LEN: usize = 4;

/// A parsed VP8 payload descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vp8Descriptor {
    pub non_reference: bool,
    /// S: first packet of a partition.
    pub start_of_partition: bool,
    pub partition_id: u8,
    /// 7- or 15-bit picture ID when present.
    pub picture_id: Option<u16>,
    pub tl0_pic_idx: Option<u8>,
    pub tid: Option<u8>,
    pub key_idx: Option<u8>,
    /// Descriptor length: the VP8 payload starts here.
    pub len: usize,
}

impl Vp8Descriptor {
    pub fn parse(payload: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(payload);
        let b0 = r.u8()?;
        let mut d = Vp8Descriptor {
            non_reference: b0 & 0x20 != 0,
            start_of_partition: b0 & 0x10 != 0,
            partition_id: b0 & 0x0f,
            ..Default::default()
        };
        if b0 & 0x80 != 0 {
            let x = r.u8()?;
            if x & 0x80 != 0 {
                let p = r.u8()?;
                d.picture_id = Some(if p & 0x80 != 0 { (((p & 0x7f) as u16) << 8) | r.u8()? as u16 } else { p as u16 });
            }
            if x & 0x40 != 0 {
                d.tl0_pic_idx = Some(r.u8()?);
            }
            if x & 0x30 != 0 {
                let t = r.u8()?;
                if x & 0x20 != 0 {
                    d.tid = Some(t >> 6);
                }
                if x & 0x10 != 0 {
                    d.key_idx = Some(t & 0x1f);
                }
            }
        }
        d.len = r.position();
        Ok(d)
    }

    /// First packet of a frame: S=1 and partition 0.
    pub fn starts_frame(&self) -> bool {
        self.start_of_partition && self.partition_id == 0
    }
}

/// A VP8 frame (uncompressed data chunk first byte) is a key frame: P bit clear.
pub fn is_keyframe(frame: &[u8]) -> bool {
    frame.first().is_some_and(|b| b & 0x01 == 0)
}

/// Sender half: one VP8 frame in, RTP payloads out.
#[derive(Debug, Clone)]
pub struct Vp8Payloader<'a> {
    frame: &'a [u8],
    offset: usize,
    picture_id: u16,
}

impl<'a> Vp8Payloader<'a> {
    /// `picture_id` (15 bits used) should increase by one per frame.
    pub fn new(frame: &'a [u8], picture_id: u16) -> Self {
        Vp8Payloader { frame, offset: 0, picture_id: picture_id & 0x7fff }
    }
}

impl Payloader for Vp8Payloader<'_> {
    fn next_payload(&mut self, buf: &mut [u8]) -> Option<Result<Chunk, Error>> {
        if self.offset >= self.frame.len() && !(self.offset == 0 && self.frame.is_empty()) {
            return None;
        }
        if self.frame.is_empty() {
            self.offset = 1;
            return Some(Err(Error::BadFrame));
        }
        if buf.len() <= DESCRIPTOR_LEN {
            return Some(Err(Error::MtuTooSmall));
        }
        let first = self.offset == 0;
        let n = (self.frame.len() - self.offset).min(buf.len() - DESCRIPTOR_LEN);
        buf[0] = 0x80 | if first { 0x10 } else { 0 };
        buf[1] = 0x80;
        buf[2] = 0x80 | (self.picture_id >> 8) as u8;
        buf[3] = self.picture_id as u8;
        buf[DESCRIPTOR_LEN..DESCRIPTOR_LEN + n].copy_from_slice(&self.frame[self.offset..self.offset + n]);
        self.offset += n;
        Some(Ok(Chunk { len: DESCRIPTOR_LEN + n, last: self.offset == self.frame.len(), timestamp_offset: 0 }))
    }
}

/// Receiver half: RTP payloads in, VP8 frames out into caller storage `B`.
#[derive(Debug)]
pub struct Vp8Depacketizer<B> {
    asm: Assembler<B>,
    /// Picture ID of the last completed frame.
    pub last_picture_id: Option<u16>,
    picture_id: Option<u16>,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Vp8Depacketizer<B> {
    pub fn new(storage: B) -> Self {
        Vp8Depacketizer { asm: Assembler::new(storage), last_picture_id: None, picture_id: None }
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Depacketizer for Vp8Depacketizer<B> {
    fn push(&mut self, seq: u16, timestamp: u32, marker: bool, payload: &[u8]) -> Result<Option<Frame>, Error> {
        let d = match Vp8Descriptor::parse(payload) {
            Ok(d) if d.len < payload.len() => d,
            Ok(_) | Err(_) => {
                if self.asm.begin(seq, timestamp, false) {
                    self.asm.fail();
                }
                let _ = self.asm.end(marker);
                return Err(Error::BadPayload);
            }
        };
        let data = &payload[d.len..];
        if self.asm.begin(seq, timestamp, d.starts_frame()) {
            if d.starts_frame() {
                self.picture_id = d.picture_id;
                if is_keyframe(data) {
                    self.asm.set_keyframe();
                }
            }
            self.asm.append(&[data])?;
        }
        let f = self.asm.end(marker);
        if f.is_some() {
            self.last_picture_id = self.picture_id;
        }
        Ok(f)
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

    #[test]
    fn parses_rfc7741_descriptors() {
        // X=1 S=1, I=1 L=1 T=1 K=1, M=1 picture id 0x1234, TL0PICIDX 5, TID 2 Y KEYIDX 3
        let d = Vp8Descriptor::parse(&[0x90, 0xf0, 0x92, 0x34, 0x05, 0xa3, 0x9d]).unwrap();
        assert_eq!(d.picture_id, Some(0x1234));
        assert_eq!(d.tl0_pic_idx, Some(5));
        assert_eq!(d.tid, Some(2));
        assert_eq!(d.key_idx, Some(3));
        assert_eq!(d.len, 6);
        assert!(d.starts_frame());
        // Minimal descriptor, 7-bit picture id.
        let d = Vp8Descriptor::parse(&[0x80, 0x80, 0x11, 0x9d]).unwrap();
        assert_eq!((d.picture_id, d.len, d.starts_frame()), (Some(0x11), 3, false));
        let d = Vp8Descriptor::parse(&[0x10, 0x9d]).unwrap();
        assert_eq!((d.picture_id, d.len, d.starts_frame()), (None, 1, true));
        assert_eq!(Vp8Descriptor::parse(&[0x80, 0x80]), Err(Error::Truncated));
    }

    #[test]
    fn keyframe_detected_and_picture_id_kept() {
        let frame: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8 & 0xfe).collect();
        let mut d = Vp8Depacketizer::new([0u8; 4000]);
        let mut out = Vec::new();
        let (n, frames) = round_trip(Vp8Payloader::new(&frame, 0x7abc), &mut d, 1200, 5, None, &mut out).unwrap();
        assert_eq!(n, 3);
        assert!(frames[0].keyframe);
        assert_eq!(d.last_picture_id, Some(0x7abc));
        assert_eq!(out, frame);
    }

    proptest::proptest! {
        #[test]
        fn round_trips_any_sizes(len in 1usize..20000, mtu in 20usize..1500, pid: u16, lose: Option<usize>) {
            let frame: Vec<u8> = (0..len).map(|i| (i * 13 + 1) as u8).collect();
            let mut d = Vp8Depacketizer::new(std::vec![0u8; len]);
            let mut out = Vec::new();
            let per = mtu - 12 - DESCRIPTOR_LEN;
            let n = len.div_ceil(per);
            let lose = lose.map(|l| if n == 1 { 0 } else { 1 + l % (n - 1) });
            let (np, frames) = round_trip(Vp8Payloader::new(&frame, pid), &mut d, mtu, 9, lose, &mut out).unwrap();
            proptest::prop_assert_eq!(np, n);
            if lose.is_none() {
                proptest::prop_assert_eq!(frames.len(), 1);
                proptest::prop_assert_eq!(frames[0].keyframe, frame[0] & 1 == 0);
                proptest::prop_assert_eq!(out, frame);
            } else {
                proptest::prop_assert!(frames.is_empty());
            }
        }
    }
}
