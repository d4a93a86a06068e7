//! Audio payload formats: Opus (RFC 7587) and G.711 PCMU/PCMA (RFC 3551
//! section 4.5.14).
//!
//! Opus: one Opus packet (RFC 6716) per RTP packet, 48 kHz RTP clock,
//! never fragmented (a frame larger than the payload room is
//! [`Error::FrameTooLarge`]). G.711: one byte per sample at 8 kHz; a block
//! of samples is split into packets of at most `samples_per_packet`
//! samples (160 = 20 ms is the usual ptime), each packet's timestamp
//! advanced by the samples before it.
//!
//! Left out: Opus in-band FEC/DTX signalling (a codec matter), the G.711
//! companding itself (a codec matter), comfort noise (RFC 3389).

use super::packetizer::{Chunk, Depacketizer, Frame, Payloader};
use super::Error;

/// RTP clock rate of Opus (RFC 7587 section 4.1).
pub const OPUS_CLOCK_RATE: u32 = 48_000;
/// RTP clock rate of G.711.
pub const G711_CLOCK_RATE: u32 = 8_000;
/// Static payload type of PCMU (RFC 3551 table 4).
pub const PT_PCMU: u8 = 0;
/// Static payload type of PCMA.
pub const PT_PCMA: u8 = 8;

/// Sender half for Opus: the frame is the payload.
#[derive(Debug, Clone)]
pub struct OpusPayloader<'a> {
    frame: Option<&'a [u8]>,
}

impl<'a> OpusPayloader<'a> {
    pub fn new(opus_packet: &'a [u8]) -> Self {
        OpusPayloader { frame: Some(opus_packet) }
    }
}

impl Payloader for OpusPayloader<'_> {
    fn next_payload(&mut self, buf: &mut [u8]) -> Option<Result<Chunk, Error>> {
        let f = self.frame.take()?;
        if f.is_empty() {
            return Some(Err(Error::BadFrame));
        }
        let Some(dst) = buf.get_mut(..f.len()) else { return Some(Err(Error::FrameTooLarge)) };
        dst.copy_from_slice(f);
        Some(Ok(Chunk { len: f.len(), last: true, timestamp_offset: 0 }))
    }
}

/// Sender half for G.711: a block of samples split by `samples_per_packet`.
#[derive(Debug, Clone)]
pub struct G711Payloader<'a> {
    samples: &'a [u8],
    offset: usize,
    samples_per_packet: usize,
}

impl<'a> G711Payloader<'a> {
    pub fn new(samples: &'a [u8], samples_per_packet: usize) -> Self {
        G711Payloader { samples, offset: 0, samples_per_packet: samples_per_packet.max(1) }
    }
}

impl Payloader for G711Payloader<'_> {
    fn next_payload(&mut self, buf: &mut [u8]) -> Option<Result<Chunk, Error>> {
        if self.offset >= self.samples.len() {
            return None;
        }
        if buf.is_empty() {
            self.offset = self.samples.len();
            return Some(Err(Error::MtuTooSmall));
        }
        let n = (self.samples.len() - self.offset).min(self.samples_per_packet).min(buf.len());
        buf[..n].copy_from_slice(&self.samples[self.offset..self.offset + n]);
        let ts = self.offset as u32;
        self.offset += n;
        Some(Ok(Chunk { len: n, last: self.offset == self.samples.len(), timestamp_offset: ts }))
    }
}

/// Receiver half for Opus and G.711: every packet is a frame; the payload
/// is copied into caller storage `B`. Losses are counted, nothing is
/// dropped beyond the lost packet itself.
#[derive(Debug)]
pub struct AudioDepacketizer<B> {
    buf: B,
    len: usize,
    last_seq: Option<u16>,
    lost: u32,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> AudioDepacketizer<B> {
    pub fn new(storage: B) -> Self {
        AudioDepacketizer { buf: storage, len: 0, last_seq: None, lost: 0 }
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Depacketizer for AudioDepacketizer<B> {
    fn push(&mut self, seq: u16, timestamp: u32, _marker: bool, payload: &[u8]) -> Result<Option<Frame>, Error> {
        if let Some(last) = self.last_seq {
            if !super::seq::seq_after(seq, last) {
                return Ok(None);
            }
            let gap = seq.wrapping_sub(last).wrapping_sub(1);
            self.lost = self.lost.saturating_add(gap as u32);
        }
        self.last_seq = Some(seq);
        if payload.is_empty() {
            return Err(Error::BadPayload);
        }
        let dst = self.buf.as_mut().get_mut(..payload.len()).ok_or(Error::BufferTooSmall)?;
        dst.copy_from_slice(payload);
        self.len = payload.len();
        Ok(Some(Frame { len: payload.len(), timestamp, keyframe: false }))
    }
    fn frame(&self) -> &[u8] {
        self.buf.as_ref().get(..self.len).unwrap_or(&[])
    }
    /// Packets (frames) lost in sequence.
    fn dropped_frames(&self) -> u32 {
        self.lost
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::rtp::packetizer::RtpPacketizer;
    use crate::rtp::wire::RtpPacket;
    use std::vec::Vec;

    #[test]
    fn opus_frame_too_large_is_an_error() {
        let f = [1u8; 200];
        let mut s = RtpPacketizer::new(1, 111, 0, 100);
        let mut buf = [0u8; 1500];
        assert_eq!(s.frame(OpusPayloader::new(&f), 0).next_packet(&mut buf), Some(Err(Error::FrameTooLarge)));
        let mut pk = s.frame(OpusPayloader::new(&f[..88]), 960);
        assert_eq!(pk.next_packet(&mut buf), Some(Ok(100)));
        assert_eq!(pk.next_packet(&mut buf), None);
    }

    #[test]
    fn g711_split_advances_timestamp() {
        let samples: Vec<u8> = (0..400u32).map(|i| i as u8).collect();
        let mut s = RtpPacketizer::new(1, PT_PCMU, 0, 1200);
        let mut pk = s.frame(G711Payloader::new(&samples, 160), 8000);
        let mut buf = [0u8; 1500];
        let mut d = AudioDepacketizer::new([0u8; 160]);
        let mut got = Vec::new();
        let mut stamps = Vec::new();
        while let Some(n) = pk.next_packet(&mut buf) {
            let p = RtpPacket::new_checked(&buf[..n.unwrap()]).unwrap();
            let f = d.push_packet(&p).unwrap().unwrap();
            stamps.push(f.timestamp);
            got.extend_from_slice(d.frame());
        }
        assert_eq!(stamps, [8000, 8160, 8320]);
        assert_eq!(got, samples);
    }

    proptest::proptest! {
        #[test]
        fn opus_round_trip(len in 1usize..1500, mtu in 13usize..1500) {
            let f: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut d = AudioDepacketizer::new(std::vec![0u8; 1500]);
            let mut out = Vec::new();
            let r = crate::rtp::packetizer::test_util::round_trip(OpusPayloader::new(&f), &mut d, mtu, 0, None, &mut out);
            if len + 12 <= mtu {
                proptest::prop_assert_eq!(r.unwrap().0, 1);
                proptest::prop_assert_eq!(out, f);
            } else {
                proptest::prop_assert_eq!(r.unwrap_err(), Error::FrameTooLarge);
            }
        }

        #[test]
        fn g711_round_trip(len in 1usize..5000, mtu in 13usize..1500, spp in 1usize..400, lose: Option<u8>) {
            let f: Vec<u8> = (0..len).map(|i| (i * 3) as u8).collect();
            let mut d = AudioDepacketizer::new(std::vec![0u8; 1500]);
            let mut s = RtpPacketizer::new(1, PT_PCMA, 100, mtu);
            let mut pk = s.frame(G711Payloader::new(&f, spp), 0);
            let mut buf = std::vec![0u8; mtu];
            let mut out = std::vec![0u8; len];
            let mut i = 0usize;
            let mut lost = 0;
            while let Some(n) = pk.next_packet(&mut buf) {
                let p = RtpPacket::new_checked(&buf[..n.unwrap()]).unwrap();
                if lose.map(|l| l as usize) == Some(i) { lost += 1; i += 1; continue; }
                i += 1;
                let fr = d.push_packet(&p).unwrap().unwrap();
                let at = fr.timestamp as usize;
                out[at..at + fr.len].copy_from_slice(d.frame());
            }
            if lost == 0 { proptest::prop_assert_eq!(out, f); }
            // Only a loss between two received packets is visible.
            let visible = match lose { Some(l) if l >= 1 && (l as usize) + 1 < i => 1, _ => 0 };
            proptest::prop_assert_eq!(d.dropped_frames(), visible);
        }
    }
}
