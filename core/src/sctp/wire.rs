//! SCTP packets and chunks on the wire (RFC 9260 section 3, RFC 3758
//! section 3.2, RFC 6525 sections 3 and 4).
//!
//! [`parse_packet`] checks the common header and its CRC-32C and returns a
//! [`Chunks`] iterator yielding [`Chunk`] representations that borrow from
//! the packet (zero-copy). [`PacketWriter`] emits a packet chunk by chunk into
//! a caller buffer and stamps the checksum in [`PacketWriter::finish`].
//!
//! Variable-length lists inside chunks (gap blocks, duplicate TSNs, stream
//! lists of FORWARD-TSN and RE-CONFIG, optional parameters of INIT) stay as
//! raw big-endian byte slices with iterators, so that a representation can be
//! both parsed from and emitted to the wire without an allocator.
//!
//! Left out: chunk types WebRTC does not use (ECN, ASCONF, AUTH, I-DATA,
//! PAD) are surfaced as [`Chunk::Unknown`] so the association can apply the
//! "upper two bits" rule of RFC 9260 section 3.2.

use crate::bytes::{BufferTooSmall, Reader, Truncated, Writer};
use crate::crypto::crc32c_parts;

/// Length of the SCTP common header.
pub const COMMON_HEADER_LEN: usize = 12;
/// Length of a DATA chunk header (before the user data).
pub const DATA_HEADER_LEN: usize = 16;

/// Chunk type codes (RFC 9260 section 3.2, RFC 3758, RFC 6525).
pub mod chunk_type {
    pub const DATA: u8 = 0;
    pub const INIT: u8 = 1;
    pub const INIT_ACK: u8 = 2;
    pub const SACK: u8 = 3;
    pub const HEARTBEAT: u8 = 4;
    pub const HEARTBEAT_ACK: u8 = 5;
    pub const ABORT: u8 = 6;
    pub const SHUTDOWN: u8 = 7;
    pub const SHUTDOWN_ACK: u8 = 8;
    pub const ERROR: u8 = 9;
    pub const COOKIE_ECHO: u8 = 10;
    pub const COOKIE_ACK: u8 = 11;
    pub const SHUTDOWN_COMPLETE: u8 = 14;
    pub const RE_CONFIG: u8 = 130;
    pub const FORWARD_TSN: u8 = 192;
}

/// INIT / INIT-ACK parameter type codes.
pub mod param_type {
    pub const HEARTBEAT_INFO: u16 = 1;
    pub const STATE_COOKIE: u16 = 7;
    pub const UNRECOGNIZED: u16 = 8;
    pub const SUPPORTED_EXTENSIONS: u16 = 0x8008;
    pub const FORWARD_TSN_SUPPORTED: u16 = 0xc000;
    /// RE-CONFIG: Outgoing SSN Reset Request (RFC 6525 section 4.1).
    pub const OUTGOING_SSN_RESET: u16 = 13;
    /// RE-CONFIG: Incoming SSN Reset Request (RFC 6525 section 4.2).
    pub const INCOMING_SSN_RESET: u16 = 14;
    /// RE-CONFIG: Re-configuration Response (RFC 6525 section 4.4).
    pub const RECONFIG_RESPONSE: u16 = 16;
}

/// Error cause codes used in ABORT / ERROR (RFC 9260 section 3.3.10).
pub mod cause {
    pub const INVALID_STREAM: u16 = 1;
    pub const NO_USER_DATA: u16 = 9;
    pub const PROTOCOL_VIOLATION: u16 = 13;
    pub const USER_INITIATED_ABORT: u16 = 12;
}

/// DATA chunk flag bits (RFC 9260 section 3.3.1).
pub mod data_flags {
    /// Last fragment of a message.
    pub const END: u8 = 0x01;
    /// First fragment of a message.
    pub const BEGIN: u8 = 0x02;
    /// Unordered.
    pub const UNORDERED: u8 = 0x04;
    /// Immediate SACK requested (RFC 7053).
    pub const IMMEDIATE: u8 = 0x08;
}

/// Why a packet or chunk could not be parsed or emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum WireError {
    /// Shorter than a header or a declared length.
    Truncated,
    /// CRC-32C mismatch.
    BadChecksum,
    /// A length field is impossible (e.g. a chunk shorter than its header).
    BadLength,
    /// The caller's output buffer is too small.
    BufferTooSmall,
}

impl From<Truncated> for WireError {
    fn from(_: Truncated) -> Self {
        WireError::Truncated
    }
}

impl From<BufferTooSmall> for WireError {
    fn from(_: BufferTooSmall) -> Self {
        WireError::BufferTooSmall
    }
}

/// The SCTP common header (RFC 9260 section 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CommonHeader {
    pub src_port: u16,
    pub dst_port: u16,
    pub verification_tag: u32,
}

/// Checksum of a whole packet as it is stored on the wire (the CRC-32C over
/// the packet with a zero checksum field, in little-endian byte order as
/// RFC 9260 appendix A and every WebRTC stack place it).
fn packet_crc(packet: &[u8]) -> Option<u32> {
    let head = packet.get(..8)?;
    let tail = packet.get(COMMON_HEADER_LEN..)?;
    Some(crc32c_parts(&[head, &[0; 4], tail]))
}

/// Check the common header and checksum of `packet`; return the header and an
/// iterator over its chunks.
pub fn parse_packet(packet: &[u8]) -> Result<(CommonHeader, Chunks<'_>), WireError> {
    let mut r = Reader::new(packet);
    let header = CommonHeader { src_port: r.u16()?, dst_port: r.u16()?, verification_tag: r.u32()? };
    let stored = u32::from_le_bytes(r.array()?);
    let computed = packet_crc(packet).ok_or(WireError::Truncated)?;
    if stored != computed {
        return Err(WireError::BadChecksum);
    }
    Ok((header, Chunks { r }))
}

/// Iterator over the chunks of a packet. Yields an error (once, then stops)
/// when a chunk header is malformed.
#[derive(Debug, Clone)]
pub struct Chunks<'a> {
    r: Reader<'a>,
}

impl<'a> Iterator for Chunks<'a> {
    type Item = Result<Chunk<'a>, WireError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.r.is_empty() {
            return None;
        }
        let res = read_chunk(&mut self.r);
        if res.is_err() {
            self.r.take_rest();
        }
        Some(res)
    }
}

fn read_chunk<'a>(r: &mut Reader<'a>) -> Result<Chunk<'a>, WireError> {
    let ty = r.u8()?;
    let flags = r.u8()?;
    let len = r.u16()? as usize;
    if len < 4 {
        return Err(WireError::BadLength);
    }
    let value = r.take(len - 4)?;
    // The last chunk's padding may be missing; tolerate that.
    let pad = (4 - len % 4) % 4;
    let _ = r.skip(pad.min(r.remaining()));
    Chunk::parse(ty, flags, value)
}

/// A parsed chunk, borrowing its variable parts from the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Chunk<'a> {
    Data(DataChunk<'a>),
    Init(InitChunk<'a>),
    InitAck(InitChunk<'a>),
    Sack(SackChunk<'a>),
    /// HEARTBEAT with the opaque Heartbeat Information value.
    Heartbeat {
        info: &'a [u8],
    },
    HeartbeatAck {
        info: &'a [u8],
    },
    /// ABORT; `t_bit` set when the tag is the receiver's own (reflected).
    Abort {
        t_bit: bool,
        causes: &'a [u8],
    },
    Shutdown {
        cum_tsn_ack: u32,
    },
    ShutdownAck,
    Error {
        causes: &'a [u8],
    },
    CookieEcho {
        cookie: &'a [u8],
    },
    CookieAck,
    ShutdownComplete {
        t_bit: bool,
    },
    ForwardTsn(ForwardTsnChunk<'a>),
    /// RE-CONFIG: its parameters (see [`ReconfigParams`]).
    Reconfig {
        params: &'a [u8],
    },
    Unknown {
        chunk_type: u8,
        flags: u8,
        value: &'a [u8],
    },
}

/// A DATA chunk (RFC 9260 section 3.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataChunk<'a> {
    /// [`data_flags`] bits.
    pub flags: u8,
    pub tsn: u32,
    pub stream_id: u16,
    pub ssn: u16,
    pub ppid: u32,
    pub payload: &'a [u8],
}

/// INIT and INIT-ACK share this layout (RFC 9260 sections 3.3.2, 3.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitChunk<'a> {
    pub initiate_tag: u32,
    pub a_rwnd: u32,
    pub outbound_streams: u16,
    pub inbound_streams: u16,
    pub initial_tsn: u32,
    /// Optional/variable parameters, raw (iterate with [`Params`]).
    pub params: &'a [u8],
}

/// SACK (RFC 9260 section 3.3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SackChunk<'a> {
    pub cum_tsn_ack: u32,
    pub a_rwnd: u32,
    /// Gap Ack Blocks, 4 bytes each: start and end offsets from `cum_tsn_ack`.
    pub gap_blocks: &'a [u8],
    /// Duplicate TSNs, 4 bytes each.
    pub dup_tsns: &'a [u8],
}

/// FORWARD-TSN (RFC 3758 section 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardTsnChunk<'a> {
    pub new_cum_tsn: u32,
    /// (stream, SSN) pairs, 4 bytes each.
    pub streams: &'a [u8],
}

impl<'a> SackChunk<'a> {
    /// Gap Ack Blocks as (start, end) offsets from the cumulative TSN.
    pub fn gaps(&self) -> impl Iterator<Item = (u16, u16)> + 'a {
        self.gap_blocks.chunks_exact(4).map(|c| (u16::from_be_bytes([c[0], c[1]]), u16::from_be_bytes([c[2], c[3]])))
    }
    pub fn dups(&self) -> impl Iterator<Item = u32> + 'a {
        self.dup_tsns.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }
}

impl<'a> ForwardTsnChunk<'a> {
    /// (stream id, stream sequence number) pairs.
    pub fn stream_ssns(&self) -> impl Iterator<Item = (u16, u16)> + 'a {
        self.streams.chunks_exact(4).map(|c| (u16::from_be_bytes([c[0], c[1]]), u16::from_be_bytes([c[2], c[3]])))
    }
}

impl<'a> Chunk<'a> {
    /// Parse the value of a chunk whose header said `ty` / `flags`.
    pub fn parse(ty: u8, flags: u8, value: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(value);
        use chunk_type::*;
        Ok(match ty {
            DATA => {
                let c = DataChunk {
                    flags,
                    tsn: r.u32()?,
                    stream_id: r.u16()?,
                    ssn: r.u16()?,
                    ppid: r.u32()?,
                    payload: r.take_rest(),
                };
                if c.payload.is_empty() {
                    return Err(WireError::BadLength);
                }
                Chunk::Data(c)
            }
            INIT | INIT_ACK => {
                let c = InitChunk {
                    initiate_tag: r.u32()?,
                    a_rwnd: r.u32()?,
                    outbound_streams: r.u16()?,
                    inbound_streams: r.u16()?,
                    initial_tsn: r.u32()?,
                    params: r.take_rest(),
                };
                // Validate the parameter list now so users can iterate freely.
                for p in Params::new(c.params) {
                    p?;
                }
                if ty == INIT {
                    Chunk::Init(c)
                } else {
                    Chunk::InitAck(c)
                }
            }
            SACK => {
                let cum_tsn_ack = r.u32()?;
                let a_rwnd = r.u32()?;
                let ngaps = r.u16()? as usize;
                let ndups = r.u16()? as usize;
                let gap_blocks = r.take(ngaps * 4)?;
                let dup_tsns = r.take(ndups * 4)?;
                Chunk::Sack(SackChunk { cum_tsn_ack, a_rwnd, gap_blocks, dup_tsns })
            }
            HEARTBEAT | HEARTBEAT_ACK => {
                let (ptype, info) = read_param(&mut r)?;
                if ptype != param_type::HEARTBEAT_INFO {
                    return Err(WireError::BadLength);
                }
                if ty == HEARTBEAT {
                    Chunk::Heartbeat { info }
                } else {
                    Chunk::HeartbeatAck { info }
                }
            }
            ABORT => Chunk::Abort { t_bit: flags & 1 != 0, causes: r.take_rest() },
            SHUTDOWN => Chunk::Shutdown { cum_tsn_ack: r.u32()? },
            SHUTDOWN_ACK => Chunk::ShutdownAck,
            ERROR => Chunk::Error { causes: r.take_rest() },
            COOKIE_ECHO => Chunk::CookieEcho { cookie: r.take_rest() },
            COOKIE_ACK => Chunk::CookieAck,
            SHUTDOWN_COMPLETE => Chunk::ShutdownComplete { t_bit: flags & 1 != 0 },
            FORWARD_TSN => {
                let new_cum_tsn = r.u32()?;
                let rest = r.take_rest();
                let streams = rest.get(..rest.len() / 4 * 4).ok_or(WireError::BadLength)?;
                Chunk::ForwardTsn(ForwardTsnChunk { new_cum_tsn, streams })
            }
            RE_CONFIG => {
                let params = r.take_rest();
                for p in ReconfigParams::new(params) {
                    p?;
                }
                Chunk::Reconfig { params }
            }
            _ => Chunk::Unknown { chunk_type: ty, flags, value },
        })
    }

    /// Append this chunk (header, value, padding) to `w`.
    pub fn emit(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        use chunk_type::*;
        let start = w.len();
        match *self {
            Chunk::Data(d) => {
                header(w, DATA, d.flags)?;
                w.u32(d.tsn)?;
                w.u16(d.stream_id)?;
                w.u16(d.ssn)?;
                w.u32(d.ppid)?;
                w.bytes(d.payload)?;
            }
            Chunk::Init(c) | Chunk::InitAck(c) => {
                header(w, if matches!(self, Chunk::Init(_)) { INIT } else { INIT_ACK }, 0)?;
                w.u32(c.initiate_tag)?;
                w.u32(c.a_rwnd)?;
                w.u16(c.outbound_streams)?;
                w.u16(c.inbound_streams)?;
                w.u32(c.initial_tsn)?;
                w.bytes(c.params)?;
            }
            Chunk::Sack(s) => {
                header(w, SACK, 0)?;
                w.u32(s.cum_tsn_ack)?;
                w.u32(s.a_rwnd)?;
                w.u16(u16::try_from(s.gap_blocks.len() / 4).map_err(|_| WireError::BadLength)?)?;
                w.u16(u16::try_from(s.dup_tsns.len() / 4).map_err(|_| WireError::BadLength)?)?;
                w.bytes(s.gap_blocks)?;
                w.bytes(s.dup_tsns)?;
            }
            Chunk::Heartbeat { info } | Chunk::HeartbeatAck { info } => {
                header(w, if matches!(self, Chunk::Heartbeat { .. }) { HEARTBEAT } else { HEARTBEAT_ACK }, 0)?;
                write_param(w, param_type::HEARTBEAT_INFO, info)?;
            }
            Chunk::Abort { t_bit, causes } => {
                header(w, ABORT, t_bit as u8)?;
                w.bytes(causes)?;
            }
            Chunk::Shutdown { cum_tsn_ack } => {
                header(w, SHUTDOWN, 0)?;
                w.u32(cum_tsn_ack)?;
            }
            Chunk::ShutdownAck => header(w, SHUTDOWN_ACK, 0)?,
            Chunk::Error { causes } => {
                header(w, ERROR, 0)?;
                w.bytes(causes)?;
            }
            Chunk::CookieEcho { cookie } => {
                header(w, COOKIE_ECHO, 0)?;
                w.bytes(cookie)?;
            }
            Chunk::CookieAck => header(w, COOKIE_ACK, 0)?,
            Chunk::ShutdownComplete { t_bit } => header(w, SHUTDOWN_COMPLETE, t_bit as u8)?,
            Chunk::ForwardTsn(f) => {
                header(w, FORWARD_TSN, 0)?;
                w.u32(f.new_cum_tsn)?;
                w.bytes(f.streams)?;
            }
            Chunk::Reconfig { params } => {
                header(w, RE_CONFIG, 0)?;
                w.bytes(params)?;
            }
            Chunk::Unknown { chunk_type, flags, value } => {
                header(w, chunk_type, flags)?;
                w.bytes(value)?;
            }
        }
        finish_tlv(w, start, 2)
    }

    /// Bytes this chunk occupies on the wire, padding included.
    pub fn wire_len(&self) -> usize {
        let value = match *self {
            Chunk::Data(d) => 12 + d.payload.len(),
            Chunk::Init(c) | Chunk::InitAck(c) => 16 + c.params.len(),
            Chunk::Sack(s) => 12 + s.gap_blocks.len() + s.dup_tsns.len(),
            Chunk::Heartbeat { info } | Chunk::HeartbeatAck { info } => 4 + pad4(info.len()),
            Chunk::Abort { causes, .. } | Chunk::Error { causes } => causes.len(),
            Chunk::Shutdown { .. } => 4,
            Chunk::ShutdownAck | Chunk::CookieAck | Chunk::ShutdownComplete { .. } => 0,
            Chunk::CookieEcho { cookie } => cookie.len(),
            Chunk::ForwardTsn(f) => 4 + f.streams.len(),
            Chunk::Reconfig { params } => params.len(),
            Chunk::Unknown { value, .. } => value.len(),
        };
        pad4(4 + value)
    }
}

/// Round up to a multiple of four.
pub const fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

fn header(w: &mut Writer<'_>, ty: u8, flags: u8) -> Result<(), WireError> {
    w.u8(ty)?;
    w.u8(flags)?;
    w.u16(0)?; // patched by finish_tlv
    Ok(())
}

/// Patch the length of a TLV started at `start` (length field at
/// `start + len_at`) and pad it to four bytes.
fn finish_tlv(w: &mut Writer<'_>, start: usize, len_at: usize) -> Result<(), WireError> {
    let len = w.len() - start;
    w.patch_u16(start + len_at, u16::try_from(len).map_err(|_| WireError::BadLength)?)?;
    w.zeros(pad4(len) - len)?;
    Ok(())
}

/// Write a parameter (type, length, value, padding).
pub fn write_param(w: &mut Writer<'_>, ty: u16, value: &[u8]) -> Result<(), WireError> {
    let start = w.len();
    w.u16(ty)?;
    w.u16(0)?;
    w.bytes(value)?;
    finish_tlv(w, start, 2)
}

fn read_param<'a>(r: &mut Reader<'a>) -> Result<(u16, &'a [u8]), WireError> {
    let ty = r.u16()?;
    let len = r.u16()? as usize;
    if len < 4 {
        return Err(WireError::BadLength);
    }
    let value = r.take(len - 4)?;
    let pad = (4 - len % 4) % 4;
    let _ = r.skip(pad.min(r.remaining()));
    Ok((ty, value))
}

/// Iterator over (type, value) TLV parameters (INIT options, error causes).
#[derive(Debug, Clone)]
pub struct Params<'a> {
    r: Reader<'a>,
}

impl<'a> Params<'a> {
    pub fn new(raw: &'a [u8]) -> Self {
        Params { r: Reader::new(raw) }
    }
}

impl<'a> Iterator for Params<'a> {
    type Item = Result<(u16, &'a [u8]), WireError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.r.is_empty() {
            return None;
        }
        let res = read_param(&mut self.r);
        if res.is_err() {
            self.r.take_rest();
        }
        Some(res)
    }
}

/// Features an INIT or INIT-ACK announces (RFC 3758 section 3.3.1,
/// RFC 5061 section 4.2.7 Supported Extensions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InitFeatures<'a> {
    pub forward_tsn: bool,
    pub reconfig: bool,
    pub cookie: Option<&'a [u8]>,
}

impl<'a> InitChunk<'a> {
    /// The features named in the optional parameters.
    pub fn features(&self) -> InitFeatures<'a> {
        let mut f = InitFeatures::default();
        for (ty, value) in Params::new(self.params).flatten() {
            match ty {
                param_type::FORWARD_TSN_SUPPORTED => f.forward_tsn = true,
                param_type::STATE_COOKIE => f.cookie = Some(value),
                param_type::SUPPORTED_EXTENSIONS => {
                    for &c in value {
                        match c {
                            chunk_type::FORWARD_TSN => f.forward_tsn = true,
                            chunk_type::RE_CONFIG => f.reconfig = true,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        f
    }
}

/// Write the optional INIT parameters this stack announces: Forward-TSN
/// supported, Supported Extensions (RE-CONFIG, FORWARD-TSN), and a state
/// cookie when given (INIT-ACK). Returns the bytes written to `buf`.
pub fn write_init_params(buf: &mut [u8], cookie: Option<&[u8]>) -> Result<usize, WireError> {
    let mut w = Writer::new(buf);
    write_param(&mut w, param_type::FORWARD_TSN_SUPPORTED, &[])?;
    write_param(&mut w, param_type::SUPPORTED_EXTENSIONS, &[chunk_type::RE_CONFIG, chunk_type::FORWARD_TSN])?;
    if let Some(c) = cookie {
        write_param(&mut w, param_type::STATE_COOKIE, c)?;
    }
    Ok(w.len())
}

/// A parameter of a RE-CONFIG chunk (RFC 6525 section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReconfigParam<'a> {
    /// Outgoing SSN Reset Request: the sender resets its outgoing streams
    /// (`streams`: u16 ids, 2 bytes each; empty means all).
    OutgoingReset {
        req_seq: u32,
        resp_seq: u32,
        last_tsn: u32,
        streams: &'a [u8],
    },
    /// Incoming SSN Reset Request: the sender asks us to reset ours.
    IncomingReset {
        req_seq: u32,
        streams: &'a [u8],
    },
    /// Re-configuration Response.
    Response {
        resp_seq: u32,
        result: u32,
    },
    Unknown {
        ty: u16,
        value: &'a [u8],
    },
}

/// Re-configuration Response result codes (RFC 6525 section 4.4).
pub mod reconfig_result {
    pub const SUCCESS_NOTHING_TO_DO: u32 = 0;
    pub const SUCCESS_PERFORMED: u32 = 1;
    pub const DENIED: u32 = 2;
    pub const ERROR_WRONG_SSN: u32 = 3;
    pub const ERROR_REQUEST_IN_PROGRESS: u32 = 4;
    pub const ERROR_BAD_SEQUENCE: u32 = 5;
    pub const IN_PROGRESS: u32 = 6;
}

impl<'a> ReconfigParam<'a> {
    /// Stream ids listed in a reset request.
    pub fn stream_ids(streams: &'a [u8]) -> impl Iterator<Item = u16> + 'a {
        streams.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]]))
    }

    pub fn emit(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        let start = w.len();
        match *self {
            ReconfigParam::OutgoingReset { req_seq, resp_seq, last_tsn, streams } => {
                w.u16(param_type::OUTGOING_SSN_RESET)?;
                w.u16(0)?;
                w.u32(req_seq)?;
                w.u32(resp_seq)?;
                w.u32(last_tsn)?;
                w.bytes(streams)?;
            }
            ReconfigParam::IncomingReset { req_seq, streams } => {
                w.u16(param_type::INCOMING_SSN_RESET)?;
                w.u16(0)?;
                w.u32(req_seq)?;
                w.bytes(streams)?;
            }
            ReconfigParam::Response { resp_seq, result } => {
                w.u16(param_type::RECONFIG_RESPONSE)?;
                w.u16(0)?;
                w.u32(resp_seq)?;
                w.u32(result)?;
            }
            ReconfigParam::Unknown { ty, value } => {
                w.u16(ty)?;
                w.u16(0)?;
                w.bytes(value)?;
            }
        }
        finish_tlv(w, start, 2)
    }
}

/// Iterator over the parameters of a RE-CONFIG chunk.
#[derive(Debug, Clone)]
pub struct ReconfigParams<'a> {
    inner: Params<'a>,
}

impl<'a> ReconfigParams<'a> {
    pub fn new(raw: &'a [u8]) -> Self {
        ReconfigParams { inner: Params::new(raw) }
    }
}

impl<'a> Iterator for ReconfigParams<'a> {
    type Item = Result<ReconfigParam<'a>, WireError>;
    fn next(&mut self) -> Option<Self::Item> {
        let (ty, value) = match self.inner.next()? {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        let mut r = Reader::new(value);
        let parsed = (|| -> Result<ReconfigParam<'a>, WireError> {
            Ok(match ty {
                param_type::OUTGOING_SSN_RESET => {
                    let (req_seq, resp_seq, last_tsn) = (r.u32()?, r.u32()?, r.u32()?);
                    let rest = r.take_rest();
                    ReconfigParam::OutgoingReset {
                        req_seq,
                        resp_seq,
                        last_tsn,
                        streams: rest.get(..rest.len() / 2 * 2).unwrap_or(&[]),
                    }
                }
                param_type::INCOMING_SSN_RESET => {
                    let req_seq = r.u32()?;
                    let rest = r.take_rest();
                    ReconfigParam::IncomingReset { req_seq, streams: rest.get(..rest.len() / 2 * 2).unwrap_or(&[]) }
                }
                param_type::RECONFIG_RESPONSE => ReconfigParam::Response { resp_seq: r.u32()?, result: r.u32()? },
                _ => ReconfigParam::Unknown { ty, value },
            })
        })();
        Some(parsed)
    }
}

/// Emits one SCTP packet into a caller buffer.
#[derive(Debug)]
pub struct PacketWriter<'a> {
    w: Writer<'a>,
}

impl<'a> PacketWriter<'a> {
    /// Start a packet with the given common header (checksum filled later).
    pub fn new(buf: &'a mut [u8], header: CommonHeader) -> Result<Self, WireError> {
        let mut w = Writer::new(buf);
        w.u16(header.src_port)?;
        w.u16(header.dst_port)?;
        w.u32(header.verification_tag)?;
        w.u32(0)?;
        Ok(PacketWriter { w })
    }

    /// Bytes written so far (header included).
    pub fn len(&self) -> usize {
        self.w.len()
    }

    /// True when no chunk has been added yet.
    pub fn is_empty(&self) -> bool {
        self.w.len() <= COMMON_HEADER_LEN
    }

    /// Room left in the buffer.
    pub fn remaining(&self) -> usize {
        self.w.remaining()
    }

    /// Append a chunk; on error nothing is appended.
    pub fn push(&mut self, chunk: &Chunk<'_>) -> Result<(), WireError> {
        if chunk.wire_len() > self.w.remaining() {
            return Err(WireError::BufferTooSmall);
        }
        chunk.emit(&mut self.w)
    }

    /// Direct access for chunks built in place.
    pub fn writer(&mut self) -> &mut Writer<'a> {
        &mut self.w
    }

    /// Stamp the CRC-32C and return the packet length.
    pub fn finish(mut self) -> usize {
        let len = self.w.len();
        let crc = packet_crc(self.w.written()).unwrap_or(0);
        if let Some(dst) = self.w.written_mut().get_mut(8..12) {
            dst.copy_from_slice(&crc.to_le_bytes());
        }
        len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An INIT captured from a Chromium data channel (the capture published
    /// in WebRTC's dcsctp packet tests), with its checksum 0xaa019d33.
    const CHROME_INIT: [u8; 104] = [
        0x13, 0x88, 0x13, 0x88, 0x00, 0x00, 0x00, 0x00, 0xaa, 0x01, 0x9d, 0x33, 0x01, 0x00, 0x00, 0x5a, 0x0e, 0xdd,
        0xca, 0x08, 0x00, 0x02, 0x00, 0x00, 0x03, 0xe8, 0x03, 0xe8, 0x55, 0x08, 0x36, 0x37, 0x80, 0x00, 0x00, 0x04,
        0xc0, 0x00, 0x00, 0x04, 0x80, 0x08, 0x00, 0x09, 0xc0, 0x0f, 0xc1, 0x80, 0x82, 0x00, 0x00, 0x00, 0x80, 0x02,
        0x00, 0x24, 0xc5, 0xa8, 0x61, 0x55, 0x09, 0x0e, 0x6f, 0x42, 0x00, 0x50, 0x63, 0x4c, 0xc8, 0xd6, 0xb9, 0x08,
        0xdf, 0xd5, 0x3e, 0x17, 0xc9, 0x9c, 0xb1, 0x43, 0x28, 0x4e, 0xaf, 0x64, 0x68, 0x2a, 0xc2, 0x97, 0x80, 0x04,
        0x00, 0x06, 0x00, 0x01, 0x00, 0x00, 0x80, 0x03, 0x00, 0x06, 0x80, 0xc1, 0x00, 0x00,
    ];

    /// COOKIE-ACK + SACK from the same published capture set (checksum 0xc06e8b36).
    const COOKIE_ACK_SACK: [u8; 32] = [
        0x04, 0xd2, 0x10, 0xe1, 0x69, 0x7e, 0x3a, 0x4e, 0xc0, 0x6e, 0x8b, 0x36, 0x0b, 0x00, 0x00, 0x04, 0x03, 0x00,
        0x00, 0x10, 0xae, 0xa9, 0x52, 0x52, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn parses_captured_chrome_init() {
        let (h, mut chunks) = parse_packet(&CHROME_INIT).unwrap();
        assert_eq!(h, CommonHeader { src_port: 5000, dst_port: 5000, verification_tag: 0 });
        let Chunk::Init(init) = chunks.next().unwrap().unwrap() else { panic!("not INIT") };
        assert!(chunks.next().is_none());
        assert_eq!(init.initiate_tag, 0x0eddca08);
        assert_eq!(init.a_rwnd, 131072);
        assert_eq!((init.outbound_streams, init.inbound_streams), (1000, 1000));
        assert_eq!(init.initial_tsn, 1426601527);
        let f = init.features();
        assert!(f.forward_tsn && f.reconfig && f.cookie.is_none());
        // Params: ECN, FWD-TSN, Supported Ext (len 9, padded), Random, HMAC algo, chunk list.
        let types: heapless::Vec<u16, 8> = Params::new(init.params).map(|p| p.unwrap().0).collect();
        assert_eq!(&types[..], &[0x8000, 0xc000, 0x8008, 0x8002, 0x8004, 0x8003]);
    }

    #[test]
    fn rejects_corrupted_checksum() {
        let mut p = CHROME_INIT;
        p[20] ^= 1;
        assert_eq!(parse_packet(&p).err(), Some(WireError::BadChecksum));
        let mut p = CHROME_INIT;
        p[8] ^= 0x80;
        assert_eq!(parse_packet(&p).err(), Some(WireError::BadChecksum));
    }

    #[test]
    fn captured_cookie_ack_sack_round_trips() {
        let (h, chunks) = parse_packet(&COOKIE_ACK_SACK).unwrap();
        let list: heapless::Vec<Chunk<'_>, 4> = chunks.map(|c| c.unwrap()).collect();
        assert_eq!(list[0], Chunk::CookieAck);
        let Chunk::Sack(s) = list[1] else { panic!() };
        assert_eq!((s.cum_tsn_ack, s.a_rwnd, s.gaps().count(), s.dups().count()), (2930332242, 131072, 0, 0));
        // Re-emitting gives the captured bytes, checksum included.
        let mut buf = [0u8; 64];
        let mut pw = PacketWriter::new(&mut buf, h).unwrap();
        for c in &list {
            pw.push(c).unwrap();
        }
        let n = pw.finish();
        assert_eq!(&buf[..n], &COOKIE_ACK_SACK[..]);
    }

    #[test]
    fn chrome_init_re_emits_identically() {
        let (h, mut chunks) = parse_packet(&CHROME_INIT).unwrap();
        let c = chunks.next().unwrap().unwrap();
        let mut buf = [0u8; 128];
        let mut pw = PacketWriter::new(&mut buf, h).unwrap();
        pw.push(&c).unwrap();
        let n = pw.finish();
        assert_eq!(&buf[..n], &CHROME_INIT[..]);
    }

    #[test]
    fn data_chunk_hand_checked_bytes() {
        // RFC 9260 3.3.1 layout: type 0, flags B|E = 0x03, length 16+3 = 19,
        // TSN, stream id, SSN, PPID 51 (WebRTC string), "abc", one pad byte.
        let d =
            Chunk::Data(DataChunk { flags: 0x03, tsn: 0x01020304, stream_id: 1, ssn: 2, ppid: 51, payload: b"abc" });
        let mut buf = [0u8; 32];
        let mut w = Writer::new(&mut buf);
        d.emit(&mut w).unwrap();
        assert_eq!(w.written(), &[0, 3, 0, 19, 1, 2, 3, 4, 0, 1, 0, 2, 0, 0, 0, 51, b'a', b'b', b'c', 0]);
        assert_eq!(d.wire_len(), 20);
        let mut r = Reader::new(w.written());
        assert_eq!(read_chunk(&mut r).unwrap(), d);
    }

    #[test]
    fn chunk_round_trips() {
        let gaps = [0, 2, 0, 3, 0, 5, 0, 9];
        let dups = [0, 0, 0, 7];
        let fwd = [0, 1, 0, 4, 0, 3, 0, 0];
        let mut rc = [0u8; 64];
        let rcn = {
            let mut w = Writer::new(&mut rc);
            ReconfigParam::OutgoingReset { req_seq: 9, resp_seq: 8, last_tsn: 77, streams: &[0, 1, 0, 3] }
                .emit(&mut w)
                .unwrap();
            ReconfigParam::Response { resp_seq: 5, result: reconfig_result::SUCCESS_PERFORMED }.emit(&mut w).unwrap();
            w.len()
        };
        let mut ip = [0u8; 64];
        let ipn = write_init_params(&mut ip, Some(b"cookie!")).unwrap();
        let init = InitChunk {
            initiate_tag: 1,
            a_rwnd: 2,
            outbound_streams: 3,
            inbound_streams: 4,
            initial_tsn: 5,
            params: &ip[..ipn],
        };
        let all = [
            Chunk::Init(init),
            Chunk::InitAck(init),
            Chunk::Sack(SackChunk { cum_tsn_ack: 10, a_rwnd: 1000, gap_blocks: &gaps, dup_tsns: &dups }),
            Chunk::Heartbeat { info: b"hello" },
            Chunk::HeartbeatAck { info: b"hello!!!" },
            Chunk::Abort { t_bit: true, causes: &[0, 12, 0, 4] },
            Chunk::Shutdown { cum_tsn_ack: 99 },
            Chunk::ShutdownAck,
            Chunk::Error { causes: &[0, 1, 0, 8, 0, 5, 0, 0] },
            Chunk::CookieEcho { cookie: b"c00kie" },
            Chunk::CookieAck,
            Chunk::ShutdownComplete { t_bit: false },
            Chunk::ForwardTsn(ForwardTsnChunk { new_cum_tsn: 55, streams: &fwd }),
            Chunk::Reconfig { params: &rc[..rcn] },
            Chunk::Unknown { chunk_type: 0x40, flags: 3, value: &[1, 2, 3] },
        ];
        let mut buf = [0u8; 1024];
        let mut pw =
            PacketWriter::new(&mut buf, CommonHeader { src_port: 5000, dst_port: 5000, verification_tag: 42 }).unwrap();
        let mut expect_len = COMMON_HEADER_LEN;
        for c in &all {
            pw.push(c).unwrap();
            expect_len += c.wire_len();
            assert_eq!(pw.len(), expect_len, "{c:?}");
        }
        let n = pw.finish();
        let (h, chunks) = parse_packet(&buf[..n]).unwrap();
        assert_eq!(h.verification_tag, 42);
        let mut count = 0;
        for (got, want) in chunks.zip(all.iter()) {
            assert_eq!(&got.unwrap(), want);
            count += 1;
        }
        assert_eq!(count, all.len());
        // Typed views of the lists.
        let Chunk::Sack(s) = all[2] else { panic!() };
        assert_eq!(s.gaps().collect::<heapless::Vec<_, 4>>()[..], [(2, 3), (5, 9)]);
        assert_eq!(s.dups().collect::<heapless::Vec<_, 4>>()[..], [7]);
        assert!(init.features().forward_tsn && init.features().reconfig);
        assert_eq!(init.features().cookie, Some(&b"cookie!"[..]));
        let params: heapless::Vec<_, 4> = ReconfigParams::new(&rc[..rcn]).map(|p| p.unwrap()).collect();
        assert_eq!(params[1], ReconfigParam::Response { resp_seq: 5, result: 1 });
        let ReconfigParam::OutgoingReset { streams, last_tsn, .. } = params[0] else { panic!() };
        assert_eq!(last_tsn, 77);
        assert_eq!(ReconfigParam::stream_ids(streams).collect::<heapless::Vec<_, 4>>()[..], [1, 3]);
    }

    #[test]
    fn malformed_chunks_are_errors() {
        // Chunk length < 4.
        let mut r = Reader::new(&[0, 0, 0, 2]);
        assert_eq!(read_chunk(&mut r), Err(WireError::BadLength));
        // Length beyond the packet.
        let mut r = Reader::new(&[3, 0, 0, 40, 0, 0]);
        assert_eq!(read_chunk(&mut r), Err(WireError::Truncated));
        // DATA without user data.
        let mut r = Reader::new(&[0, 3, 0, 16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(read_chunk(&mut r), Err(WireError::BadLength));
        // SACK announcing more gap blocks than present.
        let mut r = Reader::new(&[3, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 5, 0, 0]);
        assert_eq!(read_chunk(&mut r), Err(WireError::Truncated));
    }

    #[test]
    fn random_garbage_never_panics() {
        use rand::{Rng, SeedableRng};
        let seed = 0x5c7b_0001u64;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut buf = [0u8; 256];
        for i in 0..20000 {
            let n = rng.gen_range(0..buf.len());
            // Half the time start from a valid packet and flip bytes.
            if i % 2 == 0 && n >= CHROME_INIT.len() {
                buf[..CHROME_INIT.len()].copy_from_slice(&CHROME_INIT);
                for _ in 0..rng.gen_range(1..6) {
                    let at = rng.gen_range(12..CHROME_INIT.len());
                    buf[at] = rng.gen();
                }
            } else {
                rng.fill(&mut buf[..n]);
            }
            // Fix the checksum so the chunk parser is exercised.
            if n >= 12 {
                let crc = packet_crc(&buf[..n]).unwrap();
                buf[8..12].copy_from_slice(&crc.to_le_bytes());
            }
            if let Ok((_, chunks)) = parse_packet(&buf[..n]) {
                for c in chunks.take(64) {
                    if let Ok(Chunk::Reconfig { params }) = c {
                        for p in ReconfigParams::new(params) {
                            let _ = p;
                        }
                    }
                }
            }
        }
    }
}
