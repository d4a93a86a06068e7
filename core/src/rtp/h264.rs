//! H.264 RTP payload format (RFC 6184), packetization-mode 1
//! (non-interleaved): single NAL unit packets (section 5.6), STAP-A
//! (5.7.1) and FU-A (5.8).
//!
//! The sender takes one Annex-B access unit (NAL units behind
//! `00 00 01` / `00 00 00 01` start codes, H.264 annex B), aggregates
//! consecutive NAL units into a STAP-A while they fit one packet (so
//! SPS/PPS travel with a small IDR, or together ahead of a large one),
//! sends a NAL unit that fits alone as a single NAL unit packet, and
//! fragments larger ones with FU-A. The receiver writes the access unit
//! back in Annex-B form with 4-byte start codes and drops access units that
//! lost a packet (sequence gap, missing FU-A start/end, missing marker).
//!
//! Left out: packetization-mode 0-only senders and mode 2 (STAP-B, MTAP16,
//! MTAP24, FU-B: reported as [`Error::Unsupported`]), DON handling.

use super::packetizer::{Assembler, Chunk, Depacketizer, Frame, Payloader};
use super::Error;

/// NAL unit type of an IDR slice.
pub const NAL_IDR: u8 = 5;
pub const NAL_SEI: u8 = 6;
pub const NAL_SPS: u8 = 7;
pub const NAL_PPS: u8 = 8;
pub const NAL_AUD: u8 = 9;
/// STAP-A aggregation packet type.
pub const STAP_A: u8 = 24;
/// FU-A fragmentation unit type.
pub const FU_A: u8 = 28;

const START_CODE: [u8; 4] = [0, 0, 0, 1];
/// Most NAL units aggregated into one STAP-A (a count, no memory cost).
pub const MAX_STAP_NALS: usize = 16;

/// Iterator over the NAL units of an Annex-B byte stream (H.264 annex B.2):
/// a NAL unit is what lies between one `00 00 01` start code and the next
/// (or the end), less its trailing zero bytes (`trailing_zero_8bits`, and
/// the leading zero of a 4-byte start code, belong to no NAL unit: a NAL
/// unit never ends in `00`, H.264 7.4.1). Bytes before the first start code
/// (`leading_zero_8bits`) and empty NAL units (start codes back to back)
/// are skipped. Every byte is looked at once.
#[derive(Debug, Clone)]
pub struct NalUnits<'a> {
    data: &'a [u8],
    /// Start of the next NAL unit (just past a start code), or `None` at end.
    next: Option<usize>,
}

/// Position just past the first `00 00 01` at or after `from`. Searches
/// for the rare pair `00 00` (SIMD where available), then checks the third byte.
fn find_start_code(data: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    loop {
        let j = memchr::memmem::find(data.get(i..)?, &[0, 0])? + i;
        if *data.get(j + 2)? == 1 {
            return Some(j + 3);
        }
        i = j + 1;
    }
}

impl<'a> NalUnits<'a> {
    pub fn new(annexb: &'a [u8]) -> Self {
        NalUnits { data: annexb, next: find_start_code(annexb, 0) }
    }
}

impl<'a> Iterator for NalUnits<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let start = self.next?;
            let (mut end, next) = match find_start_code(self.data, start) {
                Some(n) => (n - 3, Some(n)),
                None => (self.data.len(), None),
            };
            self.next = next;
            while end > start && self.data[end - 1] == 0 {
                end -= 1; // trailing_zero_8bits / the 4-byte start code's first zero
            }
            if end > start {
                return Some(&self.data[start..end]);
            }
        }
    }
}

/// The access unit contains an IDR slice.
pub fn is_keyframe(annexb: &[u8]) -> bool {
    NalUnits::new(annexb).any(|n| n[0] & 0x1f == NAL_IDR)
}

/// The RTP payload carries (the start of) an IDR slice, or an SPS.
pub fn payload_is_keyframe(payload: &[u8]) -> bool {
    let Some(&h) = payload.first() else { return false };
    match h & 0x1f {
        NAL_IDR | NAL_SPS => true,
        STAP_A => {
            let mut r = crate::bytes::Reader::new(&payload[1..]);
            while let Ok(nal) = r.vec16() {
                if matches!(nal.first().map(|b| b & 0x1f), Some(NAL_IDR | NAL_SPS)) {
                    return true;
                }
            }
            false
        }
        FU_A => payload.get(1).is_some_and(|fu| fu & 0x80 != 0 && fu & 0x1f == NAL_IDR),
        _ => false,
    }
}

/// Where the payloader takes NAL units from.
#[derive(Debug, Clone)]
enum NalSource<'a> {
    /// An Annex-B byte stream, split by scanning for start codes.
    AnnexB(NalUnits<'a>),
    /// NAL units already split by the encoder (no scanning).
    List(core::slice::Iter<'a, &'a [u8]>),
}

impl<'a> NalSource<'a> {
    fn next(&mut self) -> Option<&'a [u8]> {
        match self {
            NalSource::AnnexB(n) => n.next(),
            NalSource::List(it) => it.by_ref().copied().find(|n| !n.is_empty()),
        }
    }
}

/// Sender half: one access unit in (Annex-B, or NAL units the encoder
/// already split), RTP payloads out.
#[derive(Debug, Clone)]
pub struct H264Payloader<'a> {
    nals: NalSource<'a>,
    /// The next NAL unit not yet sent (looked ahead).
    pending: Option<&'a [u8]>,
    /// NAL unit being fragmented and how much of it (after its header) is sent.
    fu: Option<(&'a [u8], usize)>,
}

impl<'a> H264Payloader<'a> {
    /// An Annex-B access unit (start codes found by scanning it once).
    pub fn new(access_unit: &'a [u8]) -> Self {
        Self::from_source(NalSource::AnnexB(NalUnits::new(access_unit)))
    }

    /// An access unit given as its NAL units (each starting with its NAL
    /// header, no start codes; empty ones are skipped), as many encoders
    /// hand them out: nothing is scanned, only copied. Valid NAL units (no
    /// start code inside, last byte non-zero) give exactly the packets
    /// [`new`](Self::new) gives for the same units in Annex-B form.
    pub fn from_nal_units(nal_units: &'a [&'a [u8]]) -> Self {
        Self::from_source(NalSource::List(nal_units.iter()))
    }

    fn from_source(mut nals: NalSource<'a>) -> Self {
        let pending = nals.next();
        H264Payloader { nals, pending, fu: None }
    }

    #[inline]
    fn fragment(&mut self, buf: &mut [u8]) -> Result<Chunk, Error> {
        let Some((nal, off)) = self.fu else { return Err(Error::BadFrame) };
        if buf.len() < 3 {
            return Err(Error::MtuTooSmall);
        }
        let body = &nal[1..];
        let n = (body.len() - off).min(buf.len() - 2);
        let start = off == 0;
        let end = off + n == body.len();
        buf[0] = (nal[0] & 0xe0) | FU_A;
        buf[1] = ((start as u8) << 7) | ((end as u8) << 6) | (nal[0] & 0x1f);
        buf[2..2 + n].copy_from_slice(&body[off..off + n]);
        self.fu = if end { None } else { Some((nal, off + n)) };
        Ok(Chunk { len: 2 + n, last: end && self.pending.is_none(), timestamp_offset: 0 })
    }
}

impl Payloader for H264Payloader<'_> {
    #[inline]
    fn next_payload(&mut self, buf: &mut [u8]) -> Option<Result<Chunk, Error>> {
        if self.fu.is_some() {
            return Some(self.fragment(buf));
        }
        let nal = self.pending?;
        self.pending = self.nals.next();
        let max = buf.len();
        if nal.len() > max {
            if nal.len() < 2 {
                return Some(Err(Error::MtuTooSmall));
            }
            self.fu = Some((nal, 0));
            return Some(self.fragment(buf));
        }
        // Aggregate the following NAL units into a STAP-A while they fit
        // (each unit is scanned once: `pending` is the one looked ahead).
        let fits = |at: usize, n: &[u8]| n.len() <= u16::MAX as usize && at + 2 + n.len() <= max;
        let aggregate = match self.pending {
            Some(p) => nal.len() <= u16::MAX as usize && fits(1 + 2 + nal.len(), p),
            None => false,
        };
        if !aggregate {
            buf[..nal.len()].copy_from_slice(nal);
            return Some(Ok(Chunk { len: nal.len(), last: self.pending.is_none(), timestamp_offset: 0 }));
        }
        // STAP-A: F is the OR of the aggregated F bits, NRI their maximum.
        let (mut f, mut nri) = (0u8, 0u8);
        let (mut at, mut count, mut n) = (1, 0, nal);
        loop {
            f |= n[0] & 0x80;
            nri = nri.max(n[0] & 0x60);
            buf[at..at + 2].copy_from_slice(&(n.len() as u16).to_be_bytes());
            buf[at + 2..at + 2 + n.len()].copy_from_slice(n);
            at += 2 + n.len();
            count += 1;
            match self.pending {
                Some(p) if count < MAX_STAP_NALS && fits(at, p) => {
                    n = p;
                    self.pending = self.nals.next();
                }
                _ => break,
            }
        }
        buf[0] = f | nri | STAP_A;
        Some(Ok(Chunk { len: at, last: self.pending.is_none(), timestamp_offset: 0 }))
    }
}

/// Receiver half: RTP payloads in, Annex-B access units out into caller
/// storage `B` (size it for the largest access unit plus 4 bytes per NAL unit).
#[derive(Debug)]
pub struct H264Depacketizer<B> {
    asm: Assembler<B>,
    in_fu: bool,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> H264Depacketizer<B> {
    pub fn new(storage: B) -> Self {
        H264Depacketizer { asm: Assembler::new(storage), in_fu: false }
    }

    fn consume(&mut self, payload: &[u8]) -> Result<(), Error> {
        let Some(&h) = payload.first() else { return Err(Error::BadPayload) };
        let ty = h & 0x1f;
        if self.in_fu && ty != FU_A {
            return Err(Error::BadPayload);
        }
        match ty {
            1..=23 => {
                if ty == NAL_IDR {
                    self.asm.set_keyframe();
                }
                self.asm.append(&[&START_CODE, payload])
            }
            STAP_A => {
                let mut r = crate::bytes::Reader::new(&payload[1..]);
                while !r.is_empty() {
                    let nal = r.vec16().map_err(|_| Error::BadPayload)?;
                    let Some(&nh) = nal.first() else { return Err(Error::BadPayload) };
                    if nh & 0x1f == NAL_IDR {
                        self.asm.set_keyframe();
                    }
                    self.asm.append(&[&START_CODE, nal])?;
                }
                Ok(())
            }
            FU_A => {
                let Some(&fu) = payload.get(1) else { return Err(Error::BadPayload) };
                let (start, end) = (fu & 0x80 != 0, fu & 0x40 != 0);
                if start == self.in_fu {
                    return Err(Error::BadPayload); // start inside a FU or continuation without one
                }
                let body = &payload[2..];
                if start {
                    if fu & 0x1f == NAL_IDR {
                        self.asm.set_keyframe();
                    }
                    self.asm.append(&[&START_CODE, &[(h & 0xe0) | (fu & 0x1f)], body])?;
                } else {
                    self.asm.append(&[body])?;
                }
                self.in_fu = !end;
                Ok(())
            }
            25..=27 | 29 => Err(Error::Unsupported),
            _ => Err(Error::BadPayload),
        }
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Depacketizer for H264Depacketizer<B> {
    fn push(&mut self, seq: u16, timestamp: u32, marker: bool, payload: &[u8]) -> Result<Option<Frame>, Error> {
        let fu_continuation =
            payload.first().is_some_and(|h| h & 0x1f == FU_A) && payload.get(1).is_some_and(|fu| fu & 0x80 == 0);
        let was_idle_or_new = self.asm.begin(seq, timestamp, !fu_continuation);
        if !was_idle_or_new {
            self.in_fu = false;
            // Still honour the marker so the next access unit starts clean.
            let _ = self.asm.end(marker);
            return Ok(None);
        }
        if let Err(e) = self.consume(payload) {
            self.in_fu = false;
            self.asm.fail();
            let _ = self.asm.end(marker);
            return Err(e);
        }
        if marker && self.in_fu {
            self.in_fu = false;
            self.asm.fail();
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

    fn annexb(nals: &[Vec<u8>]) -> Vec<u8> {
        let mut v = Vec::new();
        for n in nals {
            v.extend_from_slice(&START_CODE);
            v.extend_from_slice(n);
        }
        v
    }

    fn nal(ty: u8, len: usize, seed: u8) -> Vec<u8> {
        let mut v = Vec::with_capacity(len);
        v.push(0x60 | ty);
        for i in 1..len {
            // never two zeros in a row, last byte non-zero (like real RBSP with emulation prevention)
            v.push(((i as u8).wrapping_mul(31).wrapping_add(seed)) | 1);
        }
        v
    }

    #[test]
    fn splits_annexb_with_both_start_code_lengths() {
        let data = [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 9, 0];
        let v: Vec<&[u8]> = NalUnits::new(&data).collect();
        assert_eq!(v, [&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 9]]);
        assert!(is_keyframe(&data));
        assert!(!is_keyframe(&data[..15]));
    }

    #[test]
    fn sps_pps_idr_share_a_stap_a() {
        let au = annexb(&[nal(7, 10, 1), nal(8, 4, 2), nal(5, 300, 3)]);
        let mut p = H264Payloader::new(&au);
        let mut buf = [0u8; 1200];
        let c = p.next_payload(&mut buf).unwrap().unwrap();
        assert!(c.last);
        assert_eq!(buf[0] & 0x1f, STAP_A);
        assert_eq!(c.len, 1 + 2 + 10 + 2 + 4 + 2 + 300);
        assert!(payload_is_keyframe(&buf[..c.len]));
        assert!(p.next_payload(&mut buf).is_none());
    }

    #[test]
    fn large_idr_is_fragmented_after_stap_a() {
        let au = annexb(&[nal(7, 10, 1), nal(8, 4, 2), nal(5, 5000, 3)]);
        let mut p = H264Payloader::new(&au);
        let mut buf = [0u8; 1188];
        let c = p.next_payload(&mut buf).unwrap().unwrap();
        assert_eq!(buf[0] & 0x1f, STAP_A);
        assert_eq!(c.len, 1 + 2 + 10 + 2 + 4);
        assert!(!c.last);
        let c = p.next_payload(&mut buf).unwrap().unwrap();
        assert_eq!(buf[..2], [0x60 | FU_A, 0x80 | 5]);
        assert_eq!(c.len, 1188);
        let mut n = 2;
        let mut last = c.last;
        while let Some(c) = p.next_payload(&mut buf) {
            let c = c.unwrap();
            n += 1;
            last = c.last;
            if c.last {
                assert_eq!(buf[1], 0x40 | 5);
            }
        }
        assert!(last);
        assert_eq!(n, 1 + 4999usize.div_ceil(1186));
    }

    #[test]
    fn lost_fragment_drops_the_access_unit_only() {
        let au1 = annexb(&[nal(7, 10, 1), nal(8, 4, 2), nal(5, 5000, 3)]);
        let au2 = annexb(&[nal(1, 800, 4)]);
        let mut d = H264Depacketizer::new([0u8; 8000]);
        let mut out = Vec::new();
        let (_, frames) = round_trip(H264Payloader::new(&au1), &mut d, 1200, 0, Some(2), &mut out).unwrap();
        assert!(frames.is_empty());
        assert_eq!(d.dropped_frames(), 1);
        // The next access unit follows a gap in sequence numbers as seen by a fresh
        // stream; use the same depacketizer with contiguous numbering instead.
        let mut d = H264Depacketizer::new([0u8; 8000]);
        let mut s = crate::rtp::packetizer::RtpPacketizer::new(1, 96, 0, 1200);
        let mut buf = [0u8; 1200];
        let mut got = Vec::new();
        for (i, (au, ts)) in [(&au1, 0u32), (&au2, 3000)].into_iter().enumerate() {
            let mut pk = s.frame(H264Payloader::new(au), ts);
            let mut k = 0;
            while let Some(len) = pk.next_packet(&mut buf) {
                let p = crate::rtp::wire::RtpPacket::new_checked(&buf[..len.unwrap()]).unwrap();
                if !(i == 0 && k == 3) {
                    if let Some(f) = d.push_packet(&p).unwrap() {
                        got.push((f, d.frame().to_vec()));
                    }
                }
                k += 1;
            }
        }
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, au2);
        assert!(!got[0].0.keyframe);
        assert_eq!(d.dropped_frames(), 1);
    }

    #[test]
    fn rfc6184_stap_a_and_fu_a_depacketize() {
        // STAP-A (RFC 6184 figure 7 layout): header 0x78, two NAL units.
        let stap = [0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce];
        let mut d = H264Depacketizer::new([0u8; 64]);
        assert_eq!(d.push(1, 9, false, &stap), Ok(None));
        // FU-A of an IDR (NRI 3): start, middle, end.
        assert_eq!(d.push(2, 9, false, &[0x7c, 0x85, 0xaa]), Ok(None));
        assert_eq!(d.push(3, 9, false, &[0x7c, 0x05, 0xbb]), Ok(None));
        let f = d.push(4, 9, true, &[0x7c, 0x45, 0xcc]).unwrap().unwrap();
        assert!(f.keyframe);
        assert_eq!(d.frame(), &[0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x68, 0xce, 0, 0, 0, 1, 0x65, 0xaa, 0xbb, 0xcc]);
        // FU-A end without start is rejected and the AU dropped.
        assert_eq!(d.push(5, 10, true, &[0x7c, 0x45, 0xcc]), Ok(None));
        assert_eq!(d.push(6, 11, true, &[0x7c, 0x45]), Ok(None));
        assert_eq!(d.push(7, 12, true, &[0x7a]), Err(Error::Unsupported));
        assert_eq!(d.push(8, 13, true, &[0x78, 0x00, 0x09, 0x01]), Err(Error::BadPayload));
        assert_eq!(d.push(9, 14, true, &[]), Err(Error::BadPayload));
    }

    /// Every RTP packet (header included) the payloader gives at `mtu`.
    fn packets(p: H264Payloader<'_>, mtu: usize) -> Vec<Vec<u8>> {
        let mut stream = crate::rtp::packetizer::RtpPacketizer::new(9, 96, 100, mtu);
        let mut pk = stream.frame(p, 3000);
        let mut buf = std::vec![0u8; mtu];
        let mut out = Vec::new();
        while let Some(len) = pk.next_packet(&mut buf) {
            out.push(buf[..len.unwrap()].to_vec());
        }
        out
    }

    /// A valid NAL unit from a header byte and raw payload bytes: emulation
    /// prevention (H.264 7.4.1: `00 00` followed by `00`..`03` gets a `03`
    /// between) and a non-zero last byte.
    fn escape(header: u8, raw: &[u8]) -> Vec<u8> {
        let mut v = std::vec![header];
        let mut zeros = 0;
        for &b in raw {
            if zeros >= 2 && b <= 3 {
                v.push(3);
                zeros = 0;
            }
            v.push(b);
            zeros = if b == 0 { zeros + 1 } else { 0 };
        }
        if zeros > 0 {
            v.push(3);
        }
        v
    }

    #[test]
    fn trailing_zeros_and_empty_units_do_not_end_a_stap_a() {
        // Room for exactly A, B and C in one STAP-A: 1 + (2 + 10) * 2 + 2 + 73 = 100.
        let (a, b, c, d) = (nal(7, 10, 1), nal(8, 10, 2), nal(6, 73, 3), nal(1, 40, 4));
        let mut au = annexb(&[a.clone(), b.clone()]);
        au.extend_from_slice(&[0, 0, 1]); // an empty NAL unit
        au.extend_from_slice(&[0, 0, 1]);
        au.extend_from_slice(&c);
        au.extend_from_slice(&[0; 6]); // trailing_zero_8bits
        au.extend_from_slice(&[0, 0, 1]);
        au.extend_from_slice(&d);
        au.extend_from_slice(&[0; 5]);
        let list = [&a[..], &[], &b, &c, &[], &d];
        let from_list = packets(H264Payloader::from_nal_units(&list), 112);
        assert_eq!(packets(H264Payloader::new(&au), 112), from_list);
        assert_eq!(from_list.len(), 2);
        assert_eq!(from_list[0].len(), 112);
        assert_eq!(from_list[0][12], 0x60 | STAP_A);
        assert_eq!(from_list[1][12..], d[..]);
    }

    #[test]
    fn a_unit_over_half_the_room_still_shares_a_stap_a() {
        let (a, b) = (nal(5, 700, 1), nal(6, 10, 2));
        let p = packets(H264Payloader::new(&annexb(&[a.clone(), b.clone()])), 1200);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].len(), 12 + 1 + 2 + 700 + 2 + 10);
    }

    proptest::proptest! {
        /// Random valid NAL units written as Annex-B with 3- and 4-byte start
        /// codes, zero padding and empty NAL units: the scanning path gives
        /// byte for byte the packets of the pre-split path, and the
        /// depacketizer gives back the NAL units.
        #[test]
        fn annexb_and_split_units_give_the_same_packets(
            units in proptest::collection::vec((
                0u8..4, 1u8..24,
                proptest::prop_oneof![
                    proptest::collection::vec(proptest::prop_oneof![3 => proptest::strategy::Just(0u8), 1 => 1u8..4, 4 => proptest::num::u8::ANY], 0..40),
                    proptest::collection::vec(proptest::prop_oneof![1 => proptest::strategy::Just(0u8), 8 => proptest::num::u8::ANY], 0..3000),
                ],
                0usize..4, proptest::bool::ANY, proptest::bool::weighted(0.2)), 0..10),
            leading in 0usize..3, trailing in 0usize..4, trailing_empty: bool, mtu in 16usize..1500,
        ) {
            let nals: Vec<Vec<u8>> = units.iter().map(|(nri, ty, raw, ..)| escape(nri << 5 | ty, raw)).collect();
            let mut au = std::vec![0u8; leading];
            for (n, (_, _, _, zeros, long, empty)) in nals.iter().zip(&units) {
                if *empty {
                    au.extend_from_slice(&[0, 0, 1]);
                }
                au.extend(core::iter::repeat(0).take(*zeros + *long as usize));
                au.extend_from_slice(&[0, 0, 1]);
                au.extend_from_slice(n);
            }
            au.extend(core::iter::repeat(0).take(trailing));
            if trailing_empty {
                au.extend_from_slice(&[0, 0, 1]);
            }
            let list: Vec<&[u8]> = nals.iter().map(|n| n.as_slice()).collect();
            proptest::prop_assert_eq!(NalUnits::new(&au).collect::<Vec<_>>(), list.clone());
            let from_list = packets(H264Payloader::from_nal_units(&list), mtu);
            let from_annexb = packets(H264Payloader::new(&au), mtu);
            proptest::prop_assert_eq!(&from_annexb, &from_list);
            proptest::prop_assert_eq!(from_list.is_empty(), nals.is_empty());

            let expected = annexb(&nals);
            let mut d = H264Depacketizer::new(std::vec![0u8; expected.len()]);
            let mut frames = Vec::new();
            for (i, pkt) in from_annexb.iter().enumerate() {
                proptest::prop_assert!(pkt.len() <= mtu);
                let p = crate::rtp::wire::RtpPacket::new_checked(&pkt[..]).unwrap();
                proptest::prop_assert_eq!(p.marker(), i + 1 == from_annexb.len());
                if let Some(f) = d.push_packet(&p).unwrap() {
                    frames.push((f, d.frame().to_vec()));
                }
            }
            if nals.is_empty() {
                proptest::prop_assert!(frames.is_empty());
            } else {
                proptest::prop_assert_eq!(frames.len(), 1);
                proptest::prop_assert_eq!(&frames[0].1, &expected);
                proptest::prop_assert_eq!(frames[0].0.keyframe, nals.iter().any(|n| n[0] & 0x1f == NAL_IDR));
            }
        }
    }

    proptest::proptest! {
        /// Any bytes as an Annex-B access unit at any MTU: no panic, every
        /// packet within the MTU, the same packets as its NAL units given
        /// one by one, and (when every NAL unit type is one a single NAL
        /// unit packet may carry) the NAL units back from the depacketizer.
        #[test]
        fn any_annexb_bytes_packetize(
            au in proptest::collection::vec(proptest::prop_oneof![
                4 => proptest::strategy::Just(0u8), 2 => proptest::strategy::Just(1u8), 4 => proptest::num::u8::ANY], 0..3000),
            mtu in 15usize..1500,
        ) {
            let nals: Vec<&[u8]> = NalUnits::new(&au).collect();
            proptest::prop_assert!(nals.iter().all(|n| !n.is_empty() && n.last() != Some(&0)));
            let from_annexb = packets(H264Payloader::new(&au), mtu);
            proptest::prop_assert_eq!(&from_annexb, &packets(H264Payloader::from_nal_units(&nals), mtu));
            proptest::prop_assert!(from_annexb.iter().all(|p| p.len() <= mtu));
            if nals.iter().all(|n| matches!(n[0] & 0x1f, 1..=23)) {
                let mut d = H264Depacketizer::new(std::vec![0u8; au.len() * 2 + 4]);
                let mut out = Vec::new();
                for pkt in &from_annexb {
                    let p = crate::rtp::wire::RtpPacket::new_checked(&pkt[..]).unwrap();
                    if d.push_packet(&p).unwrap().is_some() {
                        out = d.frame().to_vec();
                    }
                }
                let owned: Vec<Vec<u8>> = nals.iter().map(|n| n.to_vec()).collect();
                proptest::prop_assert_eq!(out, annexb(&owned));
            }
            // No room for a single payload byte after the RTP header: a typed error.
            let mut stream = crate::rtp::packetizer::RtpPacketizer::new(1, 96, 0, 12);
            let mut buf = [0u8; 64];
            let r = stream.frame(H264Payloader::new(&au), 0).next_packet(&mut buf);
            proptest::prop_assert!(r.is_none() || r == Some(Err(Error::MtuTooSmall)));
        }

        #[test]
        fn round_trips_any_sizes(sizes in proptest::collection::vec(1usize..6000, 1..8), mtu in 40usize..1500,
                                 seed: u8) {
            let nals: Vec<Vec<u8>> = sizes.iter().enumerate()
                .map(|(i, &l)| nal([7, 8, 5, 1, 6][i % 5], l, seed.wrapping_add(i as u8))).collect();
            let au = annexb(&nals);
            let mut d = H264Depacketizer::new(std::vec![0u8; au.len()]);
            let mut out = Vec::new();
            let (n1, frames) = round_trip(H264Payloader::new(&au), &mut d, mtu, 1234, None, &mut out).unwrap();
            proptest::prop_assert_eq!(frames.len(), 1);
            proptest::prop_assert_eq!(frames[0].keyframe, sizes.len() >= 3);
            proptest::prop_assert_eq!(&out, &au);
            // Same packets from pre-split NAL units.
            let list: Vec<&[u8]> = nals.iter().map(|n| n.as_slice()).collect();
            let mut d = H264Depacketizer::new(std::vec![0u8; au.len()]);
            let mut out2 = Vec::new();
            let (n2, _) = round_trip(H264Payloader::from_nal_units(&list), &mut d, mtu, 1234, None, &mut out2).unwrap();
            proptest::prop_assert_eq!(n1, n2);
            proptest::prop_assert_eq!(out2, au);
        }

        #[test]
        fn any_single_loss_drops_the_frame(sizes in proptest::collection::vec(1usize..4000, 1..6),
                                           mtu in 100usize..1500, lose_at: usize) {
            let nals: Vec<Vec<u8>> = sizes.iter().enumerate().map(|(i, &l)| nal(1, l, i as u8)).collect();
            let au = annexb(&nals);
            let mut count = H264Payloader::new(&au);
            let mut b = std::vec![0u8; mtu - 12];
            let mut n = 0;
            while let Some(c) = count.next_payload(&mut b) { c.unwrap(); n += 1; }
            // A fresh depacketizer cannot see the loss of the very first packet.
            let lose = if n == 1 { 0 } else { 1 + lose_at % (n - 1) };
            // Room for the lost unit and for the 6-byte unit pushed after it.
            let mut d = H264Depacketizer::new(std::vec![0u8; au.len().max(16)]);
            let mut out = Vec::new();
            let (_, frames) = round_trip(H264Payloader::new(&au), &mut d, mtu, 1, Some(lose), &mut out).unwrap();
            proptest::prop_assert!(frames.is_empty());
            // The next access unit comes through; by then a loss of the last packet is known too.
            let next = d.push(65530u16.wrapping_add(n as u16), 2, true, &[0x41, 7]).unwrap();
            if n > 1 && lose == n - 1 {
                // A gap just before it: the lost packet may have been its own first one.
                proptest::prop_assert!(next.is_none());
                proptest::prop_assert_eq!(d.dropped_frames(), 2);
            } else {
                proptest::prop_assert!(next.is_some());
                proptest::prop_assert_eq!(d.frame(), &[0, 0, 0, 1, 0x41, 7]);
                // Losing the only packet leaves nothing to drop; otherwise the AU is dropped.
                proptest::prop_assert_eq!(d.dropped_frames(), if n == 1 { 0 } else { 1 });
            }
        }
    }
}
