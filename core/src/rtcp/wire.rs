//! RTCP wire formats: parse a compound (or reduced-size) packet with
//! [`CompoundIter`], build one with [`CompoundWriter`]. Views borrow the
//! input; lists inside packets (report blocks, NACK items, FIR entries,
//! TWCC statuses) are iterators over the borrowed bytes.

use super::Error;
use crate::bytes::{Reader, Writer};

pub const PT_SR: u8 = 200;
pub const PT_RR: u8 = 201;
pub const PT_SDES: u8 = 202;
pub const PT_BYE: u8 = 203;
pub const PT_APP: u8 = 204;
/// Transport-layer feedback (RFC 4585 6.2).
pub const PT_RTPFB: u8 = 205;
/// Payload-specific feedback (RFC 4585 6.3).
pub const PT_PSFB: u8 = 206;
pub const FMT_NACK: u8 = 1;
pub const FMT_TWCC: u8 = 15;
pub const FMT_PLI: u8 = 1;
pub const FMT_FIR: u8 = 4;
/// Application-layer feedback (REMB rides on it).
pub const FMT_AFB: u8 = 15;
/// SDES item type CNAME.
pub const SDES_CNAME: u8 = 1;
/// Size of one report block.
pub const REPORT_BLOCK_LEN: usize = 24;
/// Most report blocks / sources one packet can count (5-bit field).
pub const MAX_COUNT: usize = 31;

/// NTP timestamp (RFC 3550 section 4): seconds since 1900 in the high 32
/// bits, fraction in the low 32.
pub type NtpTime = u64;

/// Seconds from the NTP epoch (1900-01-01 UTC) to the Unix epoch
/// (1970-01-01 UTC).
pub const NTP_UNIX_EPOCH_SECS: u64 = 2_208_988_800;

/// NTP time of a caller instant when no wallclock mapping is known: the
/// caller's clock origin is placed at the Unix epoch. RFC 3550 section 6.4.1
/// allows such relative timestamps (only differences matter: RTT from
/// LSR/DLSR, A/V sync offsets), but timestamps before 1970 are not safe: a
/// receiver that stores the SR time as a Unix wallclock (str0m does) clamps
/// them to 1970 and echoes an LSR we never sent, so no RTT can be measured.
/// Wraps like NTP era 0 (in 2036 of this fictitious calendar, ~66 years of
/// uptime).
pub fn ntp_from_instant(now: crate::time::Instant) -> NtpTime {
    micros_to_ntp(now.as_micros()).wrapping_add(NTP_UNIX_EPOCH_SECS << 32)
}

/// NTP format (seconds high, fraction low) of a span in microseconds.
pub fn micros_to_ntp(us: u64) -> NtpTime {
    let secs = us / 1_000_000;
    let frac = ((us % 1_000_000) << 32) / 1_000_000;
    (secs << 32) | frac
}

/// The middle 32 bits of an NTP timestamp, as carried in LSR.
pub fn ntp_middle(ntp: NtpTime) -> u32 {
    (ntp >> 16) as u32
}

/// Convert a span in 1/65536 s (DLSR, RTT) to microseconds.
pub fn units_1_65536_to_micros(v: u32) -> u64 {
    (v as u64 * 1_000_000) >> 16
}

/// Convert microseconds to 1/65536 s units (saturating).
pub fn micros_to_units_1_65536(us: u64) -> u32 {
    u32::try_from((us << 16) / 1_000_000).unwrap_or(u32::MAX)
}

/// One reception report block (RFC 3550 section 6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ReportBlock {
    pub ssrc: u32,
    /// Fraction lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost, 24-bit signed.
    pub cumulative_lost: i32,
    pub extended_highest_seq: u32,
    /// Interarrival jitter in RTP timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the last SR's NTP time (0: none yet).
    pub last_sr: u32,
    /// Delay since that SR in 1/65536 s.
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    fn parse(r: &mut Reader<'_>) -> Result<Self, Error> {
        let ssrc = r.u32()?;
        let fraction_lost = r.u8()?;
        let lost = r.u24()?;
        let cumulative_lost = ((lost << 8) as i32) >> 8;
        Ok(ReportBlock {
            ssrc,
            fraction_lost,
            cumulative_lost,
            extended_highest_seq: r.u32()?,
            jitter: r.u32()?,
            last_sr: r.u32()?,
            delay_since_last_sr: r.u32()?,
        })
    }
    fn emit(&self, w: &mut Writer<'_>) -> Result<(), Error> {
        w.u32(self.ssrc)?;
        w.u8(self.fraction_lost)?;
        let lost = self.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff);
        w.u24(lost as u32 & 0x00ff_ffff)?;
        w.u32(self.extended_highest_seq)?;
        w.u32(self.jitter)?;
        w.u32(self.last_sr)?;
        w.u32(self.delay_since_last_sr)?;
        Ok(())
    }
}

/// Report blocks of an SR/RR.
#[derive(Debug, Clone)]
pub struct ReportBlocks<'a>(Reader<'a>);

impl Iterator for ReportBlocks<'_> {
    type Item = ReportBlock;
    fn next(&mut self) -> Option<ReportBlock> {
        ReportBlock::parse(&mut self.0).ok()
    }
}

/// Sender info of an SR (RFC 3550 section 6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SenderInfo {
    pub ntp_time: NtpTime,
    pub rtp_time: u32,
    pub packet_count: u32,
    pub octet_count: u32,
}

/// A list of big-endian u32s (SSRCs).
#[derive(Debug, Clone)]
pub struct Ssrcs<'a>(Reader<'a>);

impl Iterator for Ssrcs<'_> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        self.0.u32().ok()
    }
}

/// One SDES item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesItem<'a> {
    pub ssrc: u32,
    pub kind: u8,
    pub value: &'a [u8],
}

/// Items of an SDES packet, flattened over its chunks.
#[derive(Debug, Clone)]
pub struct SdesItems<'a> {
    r: Reader<'a>,
    chunks_left: usize,
    /// SSRC of the chunk being read.
    ssrc: Option<u32>,
}

impl<'a> Iterator for SdesItems<'a> {
    type Item = SdesItem<'a>;
    fn next(&mut self) -> Option<SdesItem<'a>> {
        loop {
            let ssrc = match self.ssrc {
                Some(s) => s,
                None => {
                    if self.chunks_left == 0 {
                        return None;
                    }
                    self.chunks_left -= 1;
                    let s = self.r.u32().ok()?;
                    self.ssrc = Some(s);
                    s
                }
            };
            let kind = self.r.u8().ok()?;
            if kind == 0 {
                // End of chunk: skip to the next 32-bit boundary.
                let pad = (4 - self.r.position() % 4) % 4;
                self.r.skip(pad).ok()?;
                self.ssrc = None;
                continue;
            }
            let value = self.r.vec8().ok()?;
            return Some(SdesItem { ssrc, kind, value });
        }
    }
}

/// One generic NACK FCI entry: `pid` and the bitmask of the 16 following.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NackItem {
    pub pid: u16,
    pub blp: u16,
}

impl NackItem {
    /// The sequence numbers this item reports lost.
    pub fn lost(self) -> impl Iterator<Item = u16> {
        core::iter::once(self.pid)
            .chain((0..16u16).filter(move |i| self.blp & (1 << i) != 0).map(move |i| self.pid.wrapping_add(i + 1)))
    }
}

/// NACK items of a generic NACK.
#[derive(Debug, Clone)]
pub struct NackItems<'a>(Reader<'a>);

impl Iterator for NackItems<'_> {
    type Item = NackItem;
    fn next(&mut self) -> Option<NackItem> {
        Some(NackItem { pid: self.0.u16().ok()?, blp: self.0.u16().ok()? })
    }
}

/// FIR entries: (SSRC, command sequence number).
#[derive(Debug, Clone)]
pub struct FirEntries<'a>(Reader<'a>);

impl Iterator for FirEntries<'_> {
    type Item = (u32, u8);
    fn next(&mut self) -> Option<(u32, u8)> {
        let ssrc = self.0.u32().ok()?;
        let seq = self.0.u8().ok()?;
        self.0.skip(3).ok()?;
        Some((ssrc, seq))
    }
}

/// Status of one packet in transport-wide CC feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TwccStatus {
    pub seq: u16,
    /// Arrival time in microseconds on the feedback sender's time base
    /// (reference time x 64 ms plus the deltas so far); `None`: not received.
    pub arrival_us: Option<i64>,
}

/// Transport-wide CC feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TwccFeedback<'a> {
    pub sender_ssrc: u32,
    pub media_ssrc: u32,
    pub base_seq: u16,
    pub status_count: u16,
    /// 24-bit reference time in multiples of 64 ms.
    pub reference_time: u32,
    pub fb_pkt_count: u8,
    chunks: &'a [u8],
    deltas: &'a [u8],
}

const TWCC_NOT_RECEIVED: u8 = 0;
const TWCC_SMALL: u8 = 1;
const TWCC_LARGE: u8 = 2;
/// Microseconds per TWCC receive-delta tick.
pub const TWCC_DELTA_US: i64 = 250;
/// Microseconds per TWCC reference-time unit.
pub const TWCC_REFERENCE_US: i64 = 64_000;

/// Walk the status symbols of TWCC packet chunks, `count` of them.
fn twcc_symbols(chunks: &[u8], count: usize, mut f: impl FnMut(u8) -> Result<(), Error>) -> Result<usize, Error> {
    let mut r = Reader::new(chunks);
    let mut done = 0usize;
    while done < count {
        let c = r.u16()?;
        if c & 0x8000 == 0 {
            let sym = ((c >> 13) & 0x3) as u8;
            let run = (c & 0x1fff) as usize;
            for _ in 0..run.min(count - done) {
                f(sym)?;
            }
            done += run.min(count - done);
            if run == 0 {
                return Err(Error::BadValue);
            }
        } else if c & 0x4000 == 0 {
            for i in (0..14).rev() {
                if done < count {
                    f(((c >> i) & 1) as u8)?;
                    done += 1;
                }
            }
        } else {
            for i in (0..7).rev() {
                if done < count {
                    f(((c >> (2 * i)) & 3) as u8)?;
                    done += 1;
                }
            }
        }
    }
    Ok(r.position())
}

impl<'a> TwccFeedback<'a> {
    fn parse(sender_ssrc: u32, media_ssrc: u32, fci: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(fci);
        let base_seq = r.u16()?;
        let status_count = r.u16()?;
        let reference_time = r.u24()?;
        let fb_pkt_count = r.u8()?;
        let rest = r.rest();
        let mut delta_len = 0usize;
        let chunk_len = twcc_symbols(rest, status_count as usize, |s| {
            match s {
                TWCC_NOT_RECEIVED => {}
                TWCC_SMALL => delta_len += 1,
                TWCC_LARGE => delta_len += 2,
                _ => return Err(Error::BadValue),
            }
            Ok(())
        })?;
        let deltas = rest.get(chunk_len..chunk_len + delta_len).ok_or(Error::Truncated)?;
        Ok(TwccFeedback {
            sender_ssrc,
            media_ssrc,
            base_seq,
            status_count,
            reference_time,
            fb_pkt_count,
            chunks: &rest[..chunk_len],
            deltas,
        })
    }

    /// Call `f` with each packet's status, in sequence order.
    pub fn for_each(&self, mut f: impl FnMut(TwccStatus)) {
        let mut d = Reader::new(self.deltas);
        let mut t = self.reference_time as i64 * TWCC_REFERENCE_US;
        let mut seq = self.base_seq;
        // Validated at parse time: cannot fail.
        let _ = twcc_symbols(self.chunks, self.status_count as usize, |s| {
            let arrival_us = match s {
                TWCC_SMALL => {
                    t += d.u8()? as i64 * TWCC_DELTA_US;
                    Some(t)
                }
                TWCC_LARGE => {
                    t += d.u16()? as i16 as i64 * TWCC_DELTA_US;
                    Some(t)
                }
                _ => None,
            };
            f(TwccStatus { seq, arrival_us });
            seq = seq.wrapping_add(1);
            Ok(())
        });
    }
}

/// One packet of a compound, parsed.
#[derive(Debug, Clone)]
pub enum RtcpPacket<'a> {
    SenderReport {
        ssrc: u32,
        info: SenderInfo,
        reports: ReportBlocks<'a>,
    },
    ReceiverReport {
        ssrc: u32,
        reports: ReportBlocks<'a>,
    },
    Sdes(SdesItems<'a>),
    Bye {
        sources: Ssrcs<'a>,
        reason: Option<&'a [u8]>,
    },
    Nack {
        sender_ssrc: u32,
        media_ssrc: u32,
        items: NackItems<'a>,
    },
    Pli {
        sender_ssrc: u32,
        media_ssrc: u32,
    },
    Fir {
        sender_ssrc: u32,
        entries: FirEntries<'a>,
    },
    Remb {
        sender_ssrc: u32,
        bitrate_bps: u64,
        ssrcs: Ssrcs<'a>,
    },
    TransportCc(TwccFeedback<'a>),
    /// APP, XR, other feedback messages: type, count/FMT and body after the 4-byte header.
    Other {
        packet_type: u8,
        count: u8,
        body: &'a [u8],
    },
}

/// Iterator over the packets of a compound RTCP packet. Yields an error
/// once and stops if a packet is malformed.
#[derive(Debug, Clone)]
pub struct CompoundIter<'a> {
    r: Reader<'a>,
    failed: bool,
}

impl<'a> CompoundIter<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        CompoundIter { r: Reader::new(buf), failed: false }
    }

    fn parse_one(&mut self) -> Result<RtcpPacket<'a>, Error> {
        let b0 = self.r.u8()?;
        if b0 >> 6 != 2 {
            return Err(Error::BadVersion);
        }
        let pt = self.r.u8()?;
        let words = self.r.u16()? as usize;
        let mut body = self.r.take(words * 4)?;
        if b0 & 0x20 != 0 {
            let pad = *body.last().ok_or(Error::BadPadding)? as usize;
            if pad == 0 || pad > body.len() {
                return Err(Error::BadPadding);
            }
            body = &body[..body.len() - pad];
        }
        let count = b0 & 0x1f;
        parse_body(pt, count, body)
    }
}

fn parse_body(pt: u8, count: u8, body: &[u8]) -> Result<RtcpPacket<'_>, Error> {
    let mut r = Reader::new(body);
    let n = count as usize;
    Ok(match pt {
        PT_SR => {
            let ssrc = r.u32()?;
            let info =
                SenderInfo { ntp_time: r.u64()?, rtp_time: r.u32()?, packet_count: r.u32()?, octet_count: r.u32()? };
            let reports = r.take(n * REPORT_BLOCK_LEN)?;
            RtcpPacket::SenderReport { ssrc, info, reports: ReportBlocks(Reader::new(reports)) }
        }
        PT_RR => {
            let ssrc = r.u32()?;
            let reports = r.take(n * REPORT_BLOCK_LEN)?;
            RtcpPacket::ReceiverReport { ssrc, reports: ReportBlocks(Reader::new(reports)) }
        }
        PT_SDES => {
            let items = SdesItems { r: Reader::new(body), chunks_left: n, ssrc: None };
            // Validate now so iteration cannot stop early on a bad packet.
            let mut check = items.clone();
            while check.next().is_some() {}
            if check.chunks_left != 0 || check.ssrc.is_some() {
                return Err(Error::BadLength);
            }
            RtcpPacket::Sdes(items)
        }
        PT_BYE => {
            let sources = r.take(n * 4)?;
            let reason = if r.is_empty() { None } else { Some(r.vec8()?) };
            RtcpPacket::Bye { sources: Ssrcs(Reader::new(sources)), reason }
        }
        PT_RTPFB | PT_PSFB => {
            let sender_ssrc = r.u32()?;
            let media_ssrc = r.u32()?;
            let fci = r.rest();
            match (pt, count) {
                (PT_RTPFB, FMT_NACK) => {
                    if fci.is_empty() || fci.len() % 4 != 0 {
                        return Err(Error::BadLength);
                    }
                    RtcpPacket::Nack { sender_ssrc, media_ssrc, items: NackItems(Reader::new(fci)) }
                }
                (PT_RTPFB, FMT_TWCC) => RtcpPacket::TransportCc(TwccFeedback::parse(sender_ssrc, media_ssrc, fci)?),
                (PT_PSFB, FMT_PLI) => RtcpPacket::Pli { sender_ssrc, media_ssrc },
                (PT_PSFB, FMT_FIR) => {
                    if fci.is_empty() || fci.len() % 8 != 0 {
                        return Err(Error::BadLength);
                    }
                    RtcpPacket::Fir { sender_ssrc, entries: FirEntries(Reader::new(fci)) }
                }
                (PT_PSFB, FMT_AFB) if fci.starts_with(b"REMB") => {
                    let mut f = Reader::new(&fci[4..]);
                    let num = f.u8()? as usize;
                    let v = f.u24()?;
                    let exp = v >> 18;
                    let mantissa = (v & 0x3ffff) as u64;
                    let bitrate_bps = mantissa.checked_shl(exp).filter(|b| b >> exp == mantissa).unwrap_or(u64::MAX);
                    let ssrcs = f.take(num * 4)?;
                    RtcpPacket::Remb { sender_ssrc, bitrate_bps, ssrcs: Ssrcs(Reader::new(ssrcs)) }
                }
                _ => RtcpPacket::Other { packet_type: pt, count, body },
            }
        }
        _ => RtcpPacket::Other { packet_type: pt, count, body },
    })
}

impl<'a> Iterator for CompoundIter<'a> {
    type Item = Result<RtcpPacket<'a>, Error>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.r.is_empty() {
            return None;
        }
        let r = self.parse_one();
        if r.is_err() {
            self.failed = true;
        }
        Some(r)
    }
}

/// Whether `buf` looks like RTCP rather than RTP when both share a port
/// (RFC 5761 section 4: payload type 192..=223 in the second byte).
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 4 && buf[0] >> 6 == 2 && (192..=223).contains(&buf[1])
}

/// Builds a compound (or reduced-size) RTCP packet into a caller buffer,
/// one packet per call. RFC 3550 wants SR/RR first in a full compound;
/// that order is the caller's to choose.
#[derive(Debug)]
pub struct CompoundWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> CompoundWriter<'b> {
    pub fn new(buf: &'b mut [u8]) -> Self {
        CompoundWriter { buf, len: 0 }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Write one packet: header, then `body`; the length is patched and the
    /// body padded to 32 bits with zeros. On error nothing is added.
    fn packet(
        &mut self,
        count: u8,
        pt: u8,
        body: impl FnOnce(&mut Writer<'_>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let dst = self.buf.get_mut(self.len..).ok_or(Error::BufferTooSmall)?;
        let mut w = Writer::new(dst);
        w.u8(0x80 | (count & 0x1f))?;
        w.u8(pt)?;
        w.u16(0)?;
        body(&mut w)?;
        let pad = (4 - w.len() % 4) % 4;
        w.zeros(pad)?;
        let words = w.len() / 4 - 1;
        w.patch_u16(2, u16::try_from(words).map_err(|_| Error::BadLength)?)?;
        self.len += w.len();
        Ok(())
    }

    /// Sender report with up to 31 report blocks.
    pub fn sender_report(&mut self, ssrc: u32, info: &SenderInfo, reports: &[ReportBlock]) -> Result<(), Error> {
        if reports.len() > MAX_COUNT {
            return Err(Error::TooMany);
        }
        self.packet(reports.len() as u8, PT_SR, |w| {
            w.u32(ssrc)?;
            w.u64(info.ntp_time)?;
            w.u32(info.rtp_time)?;
            w.u32(info.packet_count)?;
            w.u32(info.octet_count)?;
            reports.iter().try_for_each(|b| b.emit(w))
        })
    }

    /// Receiver report with up to 31 report blocks.
    pub fn receiver_report(&mut self, ssrc: u32, reports: &[ReportBlock]) -> Result<(), Error> {
        if reports.len() > MAX_COUNT {
            return Err(Error::TooMany);
        }
        self.packet(reports.len() as u8, PT_RR, |w| {
            w.u32(ssrc)?;
            reports.iter().try_for_each(|b| b.emit(w))
        })
    }

    /// SDES with one chunk holding a CNAME item (1..=255 bytes).
    pub fn sdes_cname(&mut self, ssrc: u32, cname: &[u8]) -> Result<(), Error> {
        if cname.is_empty() || cname.len() > 255 {
            return Err(Error::BadValue);
        }
        self.packet(1, PT_SDES, |w| {
            w.u32(ssrc)?;
            w.u8(SDES_CNAME)?;
            w.u8(cname.len() as u8)?;
            w.bytes(cname)?;
            // End item: at least one zero byte, then pad to 32 bits.
            w.u8(0)?;
            Ok(())
        })
    }

    /// BYE for up to 31 sources with an optional reason (<= 255 bytes).
    pub fn bye(&mut self, sources: &[u32], reason: Option<&[u8]>) -> Result<(), Error> {
        if sources.len() > MAX_COUNT {
            return Err(Error::TooMany);
        }
        if reason.is_some_and(|r| r.len() > 255) {
            return Err(Error::BadValue);
        }
        self.packet(sources.len() as u8, PT_BYE, |w| {
            sources.iter().try_for_each(|s| w.u32(*s))?;
            if let Some(r) = reason {
                w.u8(r.len() as u8)?;
                w.bytes(r)?;
            }
            Ok(())
        })
    }

    /// Generic NACK for the given lost sequence numbers (any order;
    /// consecutive ones within 16 of a PID share an item).
    pub fn nack(&mut self, sender_ssrc: u32, media_ssrc: u32, lost: &[u16]) -> Result<(), Error> {
        if lost.is_empty() {
            return Err(Error::BadValue);
        }
        self.packet(FMT_NACK, PT_RTPFB, |w| {
            w.u32(sender_ssrc)?;
            w.u32(media_ssrc)?;
            let mut i = 0;
            while i < lost.len() {
                let pid = lost[i];
                let mut blp = 0u16;
                let mut j = i + 1;
                while j < lost.len() {
                    let d = lost[j].wrapping_sub(pid);
                    if d == 0 || d > 16 {
                        break;
                    }
                    blp |= 1 << (d - 1);
                    j += 1;
                }
                w.u16(pid)?;
                w.u16(blp)?;
                i = j;
            }
            Ok(())
        })
    }

    /// Picture loss indication.
    pub fn pli(&mut self, sender_ssrc: u32, media_ssrc: u32) -> Result<(), Error> {
        self.packet(FMT_PLI, PT_PSFB, |w| {
            w.u32(sender_ssrc)?;
            w.u32(media_ssrc)?;
            Ok(())
        })
    }

    /// Full intra request: (media SSRC, command sequence number) entries.
    pub fn fir(&mut self, sender_ssrc: u32, entries: &[(u32, u8)]) -> Result<(), Error> {
        if entries.is_empty() {
            return Err(Error::BadValue);
        }
        self.packet(FMT_FIR, PT_PSFB, |w| {
            w.u32(sender_ssrc)?;
            w.u32(0)?;
            for (ssrc, seq) in entries {
                w.u32(*ssrc)?;
                w.u8(*seq)?;
                w.u24(0)?;
            }
            Ok(())
        })
    }

    /// Receiver estimated maximum bitrate (rounded down to what 18 bits of
    /// mantissa can express).
    pub fn remb(&mut self, sender_ssrc: u32, bitrate_bps: u64, ssrcs: &[u32]) -> Result<(), Error> {
        if ssrcs.len() > 255 {
            return Err(Error::TooMany);
        }
        let mut exp = 0u32;
        while (bitrate_bps >> exp) > 0x3ffff {
            exp += 1;
        }
        if exp > 63 {
            return Err(Error::BadValue);
        }
        let mantissa = (bitrate_bps >> exp) as u32;
        self.packet(FMT_AFB, PT_PSFB, |w| {
            w.u32(sender_ssrc)?;
            w.u32(0)?;
            w.bytes(b"REMB")?;
            w.u8(ssrcs.len() as u8)?;
            w.u24((exp << 18) | mantissa)?;
            ssrcs.iter().try_for_each(|s| w.u32(*s))?;
            Ok(())
        })
    }

    /// Transport-wide CC feedback for packets `base_seq..base_seq+arrivals.len()`;
    /// `arrivals[i]` is the arrival time in microseconds (any time base)
    /// or `None` if not received. The reference time is taken from the
    /// first arrival (floor to 64 ms); deltas must fit -8192..8191.75 ms.
    pub fn transport_cc(
        &mut self,
        sender_ssrc: u32,
        media_ssrc: u32,
        base_seq: u16,
        fb_pkt_count: u8,
        arrivals: &[Option<i64>],
    ) -> Result<(), Error> {
        if arrivals.is_empty() || arrivals.len() > u16::MAX as usize {
            return Err(Error::BadValue);
        }
        let first = arrivals.iter().flatten().next().copied().unwrap_or(0);
        let reference = first.div_euclid(TWCC_REFERENCE_US);
        let symbol = |prev: &mut i64, a: Option<i64>| -> Result<(u8, i64), Error> {
            match a {
                None => Ok((TWCC_NOT_RECEIVED, 0)),
                Some(t) => {
                    let ticks = t.div_euclid(TWCC_DELTA_US);
                    let d = ticks - *prev;
                    *prev = ticks;
                    if (0..=255).contains(&d) {
                        Ok((TWCC_SMALL, d))
                    } else if (i16::MIN as i64..=i16::MAX as i64).contains(&d) {
                        Ok((TWCC_LARGE, d))
                    } else {
                        Err(Error::BadValue)
                    }
                }
            }
        };
        let ref_ticks = reference * (TWCC_REFERENCE_US / TWCC_DELTA_US);
        self.packet(FMT_TWCC, PT_RTPFB, |w| {
            w.u32(sender_ssrc)?;
            w.u32(media_ssrc)?;
            w.u16(base_seq)?;
            w.u16(arrivals.len() as u16)?;
            w.u24((reference as u32) & 0x00ff_ffff)?;
            w.u8(fb_pkt_count)?;
            // Pass 1: chunks.
            let mut prev = ref_ticks;
            let mut syms = [0u8; 14];
            let mut i = 0;
            while i < arrivals.len() {
                let mut p = prev;
                let (s0, _) = symbol(&mut p, arrivals[i])?;
                // Run length of identical symbols.
                let mut run = 1;
                let mut q = p;
                while i + run < arrivals.len() && run < 0x1fff {
                    let mut qq = q;
                    let (s, _) = symbol(&mut qq, arrivals[i + run])?;
                    if s != s0 {
                        break;
                    }
                    q = qq;
                    run += 1;
                }
                if run >= 14 || i + run == arrivals.len() && run >= 7 {
                    w.u16(((s0 as u16) << 13) | run as u16)?;
                    prev = q;
                    i += run;
                    continue;
                }
                // Status vector: 1-bit of 14 if no large delta among them, else 2-bit of 7.
                let take14 = (arrivals.len() - i).min(14);
                let mut pp = prev;
                let mut any_large = false;
                for (k, a) in arrivals[i..i + take14].iter().enumerate() {
                    let (s, _) = symbol(&mut pp, *a)?;
                    syms[k] = s;
                    any_large |= s == TWCC_LARGE;
                }
                let (n, bits) = if any_large { ((arrivals.len() - i).min(7), 2) } else { (take14, 1) };
                let mut c: u16 = if bits == 1 { 0x8000 } else { 0xc000 };
                for (k, s) in syms.iter().take(n).enumerate() {
                    if bits == 1 {
                        c |= (*s as u16) << (13 - k);
                    } else {
                        c |= (*s as u16) << (12 - 2 * k);
                    }
                }
                w.u16(c)?;
                for a in &arrivals[i..i + n] {
                    symbol(&mut prev, *a)?;
                }
                i += n;
            }
            // Pass 2: receive deltas.
            let mut prev = ref_ticks;
            for a in arrivals {
                match symbol(&mut prev, *a)? {
                    (TWCC_SMALL, d) => w.u8(d as u8)?,
                    (TWCC_LARGE, d) => w.u16(d as i16 as u16)?,
                    _ => {}
                }
            }
            Ok(())
        })
    }

    /// Append `pad` padding bytes (multiple of 4, 4..=252) to the last
    /// packet written and set its P bit (RFC 3550 6.4.1; used e.g. before
    /// SRTCP encryption to hide lengths). `last_start` is where that packet began.
    pub fn pad_last(&mut self, last_start: usize, pad: u8) -> Result<(), Error> {
        if pad == 0 || pad % 4 != 0 || last_start + 4 > self.len {
            return Err(Error::BadPadding);
        }
        let end = self.len + pad as usize;
        let words = (end - last_start) / 4 - 1;
        let dst = self.buf.get_mut(self.len..end).ok_or(Error::BufferTooSmall)?;
        dst.fill(0);
        dst[pad as usize - 1] = pad;
        let hdr = &mut self.buf[last_start..last_start + 4];
        hdr[0] |= 0x20;
        hdr[2..4].copy_from_slice(&(words as u16).to_be_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn one(buf: &[u8]) -> RtcpPacket<'_> {
        let mut it = CompoundIter::new(buf);
        let p = it.next().unwrap().unwrap();
        assert!(it.next().is_none());
        p
    }

    #[test]
    fn ntp_of_caller_clock_starts_at_unix_epoch() {
        use crate::time::Instant;
        // 1970-01-01 00:00:00 UTC is NTP 0x83aa7e80_00000000 (RFC 868's 2,208,988,800 s).
        assert_eq!(ntp_from_instant(Instant::ZERO), 0x83aa_7e80_0000_0000);
        // +1.5 s: half a second is 0x8000_0000 in the fraction.
        assert_eq!(ntp_from_instant(Instant::from_micros(1_500_000)), 0x83aa_7e81_8000_0000);
        assert_eq!(ntp_middle(ntp_from_instant(Instant::from_micros(1_500_000))), 0x7e81_8000);
    }

    #[test]
    fn hand_checked_feedback_vectors() {
        // PLI (RFC 4585 6.3.1): FMT 1, PT 206, length 2.
        let pli = [0x81, 0xce, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 2];
        assert!(matches!(one(&pli), RtcpPacket::Pli { sender_ssrc: 1, media_ssrc: 2 }));
        let mut buf = [0u8; 64];
        let mut w = CompoundWriter::new(&mut buf);
        w.pli(1, 2).unwrap();
        assert_eq!(&buf[..12], &pli);

        // Generic NACK (RFC 4585 6.2.1): PID 16, BLP 0b101 -> 16, 17, 19 lost.
        let nack = [0x81, 0xcd, 0x00, 0x03, 0, 0, 0, 1, 0, 0, 0, 2, 0x00, 0x10, 0x00, 0x05];
        let RtcpPacket::Nack { items, .. } = one(&nack) else { panic!() };
        let lost: Vec<u16> = items.flat_map(NackItem::lost).collect();
        assert_eq!(lost, [16, 17, 19]);
        let mut w = CompoundWriter::new(&mut buf);
        w.nack(1, 2, &[16, 17, 19]).unwrap();
        assert_eq!(&buf[..16], &nack);

        // FIR (RFC 5104 4.3.1): media SSRC field 0, one FCI entry.
        let fir = [0x84, 0xce, 0x00, 0x04, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 7, 0, 0, 0];
        let RtcpPacket::Fir { sender_ssrc: 1, entries } = one(&fir) else { panic!() };
        assert_eq!(entries.collect::<Vec<_>>(), [(9, 7)]);
        let mut w = CompoundWriter::new(&mut buf);
        w.fir(1, &[(9, 7)]).unwrap();
        assert_eq!(&buf[..20], &fir);

        // REMB 1 Mbit/s = 250000 << 2: exp 2, mantissa 0x3d090.
        let remb =
            [0x8f, 0xce, 0x00, 0x05, 0, 0, 0, 1, 0, 0, 0, 0, b'R', b'E', b'M', b'B', 1, 0x0b, 0xd0, 0x90, 0, 0, 0, 9];
        let RtcpPacket::Remb { bitrate_bps, ssrcs, .. } = one(&remb) else { panic!() };
        assert_eq!(bitrate_bps, 1_000_000);
        assert_eq!(ssrcs.collect::<Vec<_>>(), [9]);
        let mut w = CompoundWriter::new(&mut buf);
        w.remb(1, 1_000_000, &[9]).unwrap();
        assert_eq!(&buf[..24], &remb);
    }

    #[test]
    fn hand_checked_report_and_sdes() {
        // RR (RFC 3550 6.4.2) with one block: lost -3 (24-bit two's complement).
        #[rustfmt::skip]
        let rr = [0x81, 0xc9, 0x00, 0x07, 0, 0, 0, 5,
                  0, 0, 0, 9, 0x40, 0xff, 0xff, 0xfd, 0, 1, 0x00, 0x10, 0, 0, 0, 0x20, 0x12, 0x34, 0x56, 0x78,
                  0, 1, 0, 0];
        let RtcpPacket::ReceiverReport { ssrc: 5, mut reports } = one(&rr) else { panic!() };
        let b = reports.next().unwrap();
        assert_eq!(
            b,
            ReportBlock {
                ssrc: 9,
                fraction_lost: 0x40,
                cumulative_lost: -3,
                extended_highest_seq: 0x10010,
                jitter: 0x20,
                last_sr: 0x12345678,
                delay_since_last_sr: 0x10000
            }
        );
        assert_eq!(units_1_65536_to_micros(b.delay_since_last_sr), 1_000_000);
        let mut buf = [0u8; 64];
        let mut w = CompoundWriter::new(&mut buf);
        w.receiver_report(5, &[b]).unwrap();
        assert_eq!(&buf[..32], &rr);

        // SDES CNAME "abcd": item 6 bytes, end byte, 1 byte padding.
        let sdes = [0x81, 0xca, 0x00, 0x03, 0, 0, 0, 5, 1, 4, b'a', b'b', b'c', b'd', 0, 0];
        let RtcpPacket::Sdes(mut items) = one(&sdes) else { panic!() };
        assert_eq!(items.next(), Some(SdesItem { ssrc: 5, kind: SDES_CNAME, value: b"abcd" }));
        assert_eq!(items.next(), None);
        let mut w = CompoundWriter::new(&mut buf);
        w.sdes_cname(5, b"abcd").unwrap();
        assert_eq!(&buf[..16], &sdes);

        // BYE with reason "x": 1 length byte + 1 byte, padded to 4.
        let bye = [0x81, 0xcb, 0x00, 0x02, 0, 0, 0, 5, 1, b'x', 0, 0];
        let RtcpPacket::Bye { sources, reason } = one(&bye) else { panic!() };
        assert_eq!(sources.collect::<Vec<_>>(), [5]);
        assert_eq!(reason, Some(&b"x"[..]));
        let mut w = CompoundWriter::new(&mut buf);
        w.bye(&[5], Some(b"x")).unwrap();
        assert_eq!(&buf[..12], &bye);
    }

    #[test]
    fn hand_checked_twcc() {
        // base 100, 3 statuses, reference 1 (64 ms), fb count 5; one 1-bit
        // vector chunk [1,0,1] = 0b1_0_10100000000000; deltas 4 (1 ms), 8 (2 ms).
        #[rustfmt::skip]
        let fb = [0x8f, 0xcd, 0x00, 0x05, 0, 0, 0, 1, 0, 0, 0, 2,
                  0x00, 0x64, 0x00, 0x03, 0x00, 0x00, 0x01, 0x05, 0xa8, 0x00, 0x04, 0x08];
        let RtcpPacket::TransportCc(t) = one(&fb) else { panic!() };
        let mut got = Vec::new();
        t.for_each(|s| got.push(s));
        assert_eq!(
            got,
            [
                TwccStatus { seq: 100, arrival_us: Some(65_000) },
                TwccStatus { seq: 101, arrival_us: None },
                TwccStatus { seq: 102, arrival_us: Some(67_000) },
            ]
        );
        // Run-length chunk example of the draft: S=01, run 221 = 0x20dd.
        let mut fb2 = [0u8; 12 + 8 + 2 + 221 + 1];
        fb2[..12].copy_from_slice(&[0x8f, 0xcd, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2]);
        fb2[12..20].copy_from_slice(&[0, 0, 0, 221, 0, 0, 0, 0]);
        fb2[20..22].copy_from_slice(&[0x20, 0xdd]);
        let words = (fb2.len() / 4 - 1) as u16;
        fb2[2..4].copy_from_slice(&words.to_be_bytes());
        let RtcpPacket::TransportCc(t) = one(&fb2) else { panic!() };
        let mut n = 0;
        t.for_each(|s| {
            assert!(s.arrival_us.is_some());
            n += 1
        });
        assert_eq!(n, 221);
        // Deltas missing: rejected.
        let mut short = fb;
        short[3] = 4;
        assert!(CompoundIter::new(&short[..20]).next().unwrap().is_err());
    }

    #[test]
    fn compound_and_reduced_size() {
        let mut buf = [0u8; 256];
        let mut w = CompoundWriter::new(&mut buf);
        let info = SenderInfo { ntp_time: 0x0102030405060708, rtp_time: 9, packet_count: 10, octet_count: 11 };
        w.sender_report(1, &info, &[]).unwrap();
        w.sdes_cname(1, b"cam").unwrap();
        let start = w.len();
        w.pli(1, 2).unwrap();
        w.pad_last(start, 8).unwrap();
        let n = w.len();
        let kinds: Vec<u8> = CompoundIter::new(&buf[..n])
            .map(|p| match p.unwrap() {
                RtcpPacket::SenderReport { ssrc: 1, info: i, .. } if i == info => 0,
                RtcpPacket::Sdes(_) => 1,
                RtcpPacket::Pli { .. } => 2,
                _ => 9,
            })
            .collect();
        assert_eq!(kinds, [0, 1, 2]);
        assert!(is_rtcp(&buf));
        // Reduced-size: a lone NACK is a valid input.
        let mut w = CompoundWriter::new(&mut buf);
        w.nack(1, 2, &[5]).unwrap();
        let n = w.len();
        assert_eq!(CompoundIter::new(&buf[..n]).count(), 1);
        // Too small a buffer: error, nothing written.
        let mut small = [0u8; 10];
        let mut w = CompoundWriter::new(&mut small);
        assert_eq!(w.pli(1, 2), Err(Error::BufferTooSmall));
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn malformed_inputs_error_without_panic() {
        let cases: [&[u8]; 6] = [
            &[0x81, 0xc9, 0x00, 0x01, 0, 0, 0, 5],             // RR claims 1 block, none there
            &[0x41, 0xc9, 0x00, 0x00],                         // version 1
            &[0xa0, 0xc9, 0x00, 0x01, 0, 0, 0, 0],             // padding 0
            &[0x81, 0xca, 0x00, 0x01, 0, 0, 0, 5],             // SDES chunk without end
            &[0x81, 0xcd, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 2], // NACK without FCI
            &[0x80, 0xc8, 0x00, 0x05, 0, 0, 0, 5],             // SR body truncated
        ];
        for c in cases {
            assert!(CompoundIter::new(c).next().unwrap().is_err(), "{c:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn reports_round_trip(ssrc: u32, ntp: u64, rtp: u32, pc: u32, oc: u32,
                              blocks in proptest::collection::vec((proptest::num::u32::ANY, proptest::num::u8::ANY,
                                  -0x80_0000i32..0x80_0000, proptest::num::u32::ANY, proptest::num::u32::ANY), 0..31)) {
            let reports: Vec<ReportBlock> = blocks.iter().map(|&(s, f, l, e, j)| ReportBlock {
                ssrc: s, fraction_lost: f, cumulative_lost: l, extended_highest_seq: e, jitter: j,
                last_sr: e ^ j, delay_since_last_sr: s ^ e }).collect();
            let info = SenderInfo { ntp_time: ntp, rtp_time: rtp, packet_count: pc, octet_count: oc };
            let mut buf = [0u8; 2048];
            let mut w = CompoundWriter::new(&mut buf);
            w.sender_report(ssrc, &info, &reports).unwrap();
            w.receiver_report(ssrc, &reports).unwrap();
            let n = w.len();
            let mut it = CompoundIter::new(&buf[..n]);
            let RtcpPacket::SenderReport { ssrc: s, info: i, reports: r } = it.next().unwrap().unwrap() else { panic!() };
            proptest::prop_assert_eq!((s, i), (ssrc, info));
            proptest::prop_assert_eq!(r.collect::<Vec<_>>(), reports.clone());
            let RtcpPacket::ReceiverReport { reports: r, .. } = it.next().unwrap().unwrap() else { panic!() };
            proptest::prop_assert_eq!(r.collect::<Vec<_>>(), reports);
        }

        #[test]
        fn nack_round_trip(start: u16, offsets in proptest::collection::btree_set(0u16..2000, 1..100)) {
            let lost: Vec<u16> = offsets.iter().map(|o| start.wrapping_add(*o)).collect();
            let mut buf = [0u8; 1024];
            let mut w = CompoundWriter::new(&mut buf);
            w.nack(1, 2, &lost).unwrap();
            let n = w.len();
            let RtcpPacket::Nack { items, .. } = one(&buf[..n]) else { panic!() };
            proptest::prop_assert_eq!(items.flat_map(NackItem::lost).collect::<Vec<_>>(), lost);
        }

        #[test]
        fn twcc_round_trip(base: u16, t0 in 0i64..10_000_000,
                           gaps in proptest::collection::vec(proptest::option::weighted(0.8, -20_000i64..200_000), 1..400)) {
            let mut t = t0;
            let arrivals: Vec<Option<i64>> = gaps.iter().map(|g| g.map(|d| { t = (t + d).max(0); t })).collect();
            let mut buf = [0u8; 4096];
            let mut w = CompoundWriter::new(&mut buf);
            w.transport_cc(1, 2, base, 7, &arrivals).unwrap();
            let n = w.len();
            let RtcpPacket::TransportCc(fb) = one(&buf[..n]) else { panic!() };
            proptest::prop_assert_eq!(fb.fb_pkt_count, 7);
            let mut got = Vec::new();
            fb.for_each(|s| got.push(s));
            proptest::prop_assert_eq!(got.len(), arrivals.len());
            for (k, (g, a)) in got.iter().zip(&arrivals).enumerate() {
                proptest::prop_assert_eq!(g.seq, base.wrapping_add(k as u16));
                // Arrival times survive to the 250 us tick.
                proptest::prop_assert_eq!(g.arrival_us, a.map(|a| a - a.rem_euclid(TWCC_DELTA_US)));
            }
        }

        #[test]
        fn parser_never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            for p in CompoundIter::new(&data).take(50) {
                if let Ok(RtcpPacket::TransportCc(t)) = &p { t.for_each(|_| {}); }
                if let Ok(RtcpPacket::Sdes(s)) = p { for _ in s {} }
            }
        }
    }
}
