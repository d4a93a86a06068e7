//! STUN messages on the wire (RFC 8489 sections 5, 6, 14; RFC 5389).
//!
//! [`Message`] is a zero-copy, validated view of a received datagram;
//! [`MessageBuilder`] writes a message into a caller buffer, attribute by
//! attribute, finishing with MESSAGE-INTEGRITY(-SHA256) and FINGERPRINT.
//!
//! Parsing rules (RFC 8489 14): attributes are type-length-value with the
//! value padded to four bytes; attributes after MESSAGE-INTEGRITY are ignored
//! except MESSAGE-INTEGRITY-SHA256 and FINGERPRINT, and FINGERPRINT must be
//! last. The view's [`Message::attributes`] yields only the attributes that
//! precede the first integrity/fingerprint attribute, which are the ones the
//! integrity covers.

use crate::bytes::{BufferTooSmall, Reader, Truncated, Writer};
use crate::crypto;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The fixed value in bytes 4..8 of every RFC 5389/8489 message.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Length of the STUN header.
pub const HEADER_LEN: usize = 20;
/// Length of a MESSAGE-INTEGRITY attribute including its 4-byte header.
pub const MESSAGE_INTEGRITY_LEN: usize = 24;
/// Length of a full MESSAGE-INTEGRITY-SHA256 attribute including its header.
pub const MESSAGE_INTEGRITY_SHA256_LEN: usize = 36;
/// Length of a FINGERPRINT attribute including its header.
pub const FINGERPRINT_LEN: usize = 8;
const FINGERPRINT_XOR: u32 = 0x5354_554e;

/// Longest USERNAME value accepted or written (RFC 8489 14.3: < 513 bytes).
pub const MAX_USERNAME_LEN: usize = 513;
/// Longest REALM / NONCE / SOFTWARE / reason phrase value (RFC 8489: < 763 bytes).
pub const MAX_TEXT_LEN: usize = 763;
/// Most attribute types reported in one UNKNOWN-ATTRIBUTES (16 bytes of stack).
pub const MAX_UNKNOWN_ATTRIBUTES: usize = 8;

/// The 96-bit transaction ID.
pub type TransactionId = [u8; 12];

/// Attribute types (RFC 8489 18.3, RFC 8445 16.1, RFC 8656 18).
pub mod attr {
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    pub const USERNAME: u16 = 0x0006;
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    pub const ERROR_CODE: u16 = 0x0009;
    pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
    pub const REALM: u16 = 0x0014;
    pub const NONCE: u16 = 0x0015;
    pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
    pub const PASSWORD_ALGORITHM: u16 = 0x001D;
    pub const USERHASH: u16 = 0x001E;
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    pub const PRIORITY: u16 = 0x0024;
    pub const USE_CANDIDATE: u16 = 0x0025;
    pub const PASSWORD_ALGORITHMS: u16 = 0x8002;
    pub const ALTERNATE_DOMAIN: u16 = 0x8003;
    pub const SOFTWARE: u16 = 0x8022;
    pub const ALTERNATE_SERVER: u16 = 0x8023;
    pub const FINGERPRINT: u16 = 0x8028;
    pub const ICE_CONTROLLED: u16 = 0x8029;
    pub const ICE_CONTROLLING: u16 = 0x802A;
    // TURN (RFC 8656 18), parsed by the TURN client as raw attributes.
    pub const CHANNEL_NUMBER: u16 = 0x000C;
    pub const LIFETIME: u16 = 0x000D;
    pub const XOR_PEER_ADDRESS: u16 = 0x0012;
    pub const DATA: u16 = 0x0013;
    pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
    pub const REQUESTED_ADDRESS_FAMILY: u16 = 0x0017;
    pub const EVEN_PORT: u16 = 0x0018;
    pub const REQUESTED_TRANSPORT: u16 = 0x0019;
    pub const DONT_FRAGMENT: u16 = 0x001A;
    pub const RESERVATION_TOKEN: u16 = 0x0022;
    pub const ADDRESS_ERROR_CODE: u16 = 0x8001;
    pub const ICMP: u16 = 0x8004;

    /// Whether `typ` is in the comprehension-required range (0x0000-0x7FFF).
    pub const fn is_comprehension_required(typ: u16) -> bool {
        typ < 0x8000
    }

    /// The comprehension-required attributes this crate's STUN and ICE code
    /// understands in a Binding request (RFC 8489, RFC 8445).
    pub const fn is_known_binding(typ: u16) -> bool {
        matches!(
            typ,
            MAPPED_ADDRESS
                | USERNAME
                | MESSAGE_INTEGRITY
                | ERROR_CODE
                | UNKNOWN_ATTRIBUTES
                | REALM
                | NONCE
                | MESSAGE_INTEGRITY_SHA256
                | PASSWORD_ALGORITHM
                | USERHASH
                | XOR_MAPPED_ADDRESS
                | PRIORITY
                | USE_CANDIDATE
        )
    }
}

/// Error codes (RFC 8489 14.8, RFC 8445 7.3.1.1).
pub mod code {
    pub const TRY_ALTERNATE: u16 = 300;
    pub const BAD_REQUEST: u16 = 400;
    pub const UNAUTHENTICATED: u16 = 401;
    pub const UNKNOWN_ATTRIBUTE: u16 = 420;
    pub const STALE_NONCE: u16 = 438;
    pub const ROLE_CONFLICT: u16 = 487;
    pub const SERVER_ERROR: u16 = 500;

    /// The reason phrase RFC 8489 suggests for `code`.
    pub const fn reason(code: u16) -> &'static str {
        match code {
            TRY_ALTERNATE => "Try Alternate",
            BAD_REQUEST => "Bad Request",
            UNAUTHENTICATED => "Unauthenticated",
            UNKNOWN_ATTRIBUTE => "Unknown Attribute",
            STALE_NONCE => "Stale Nonce",
            ROLE_CONFLICT => "Role Conflict",
            SERVER_ERROR => "Server Error",
            _ => "",
        }
    }
}

/// What can go wrong parsing, checking or writing a STUN message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum StunError {
    /// Not a STUN message: shorter than a header, top bits set, wrong magic
    /// cookie, or a length field that is not a multiple of four.
    NotStun,
    /// The header length does not match the datagram, or an attribute runs
    /// past the end of the message.
    Truncated,
    /// Structurally invalid: FINGERPRINT not last, an integrity or
    /// fingerprint attribute of the wrong size.
    Malformed,
    /// An attribute of this type has a value that does not parse.
    BadAttribute(u16),
    /// The message has no MESSAGE-INTEGRITY (or -SHA256) attribute.
    IntegrityMissing,
    /// MESSAGE-INTEGRITY(-SHA256) does not verify under the key.
    IntegrityMismatch,
    /// The message has no FINGERPRINT attribute.
    FingerprintMissing,
    /// FINGERPRINT does not match the message.
    FingerprintMismatch,
    /// The caller's buffer is too small for the message being written.
    BufferTooSmall,
    /// A value given to the builder cannot be written (too long, bad code).
    InvalidValue,
}

impl From<BufferTooSmall> for StunError {
    fn from(_: BufferTooSmall) -> Self {
        StunError::BufferTooSmall
    }
}

impl From<Truncated> for StunError {
    fn from(_: Truncated) -> Self {
        StunError::Truncated
    }
}

impl core::fmt::Display for StunError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StunError::NotStun => f.write_str("not a STUN message"),
            StunError::Truncated => f.write_str("STUN message truncated"),
            StunError::Malformed => f.write_str("malformed STUN message"),
            StunError::BadAttribute(t) => write!(f, "bad STUN attribute 0x{t:04x}"),
            StunError::IntegrityMissing => f.write_str("MESSAGE-INTEGRITY missing"),
            StunError::IntegrityMismatch => f.write_str("MESSAGE-INTEGRITY mismatch"),
            StunError::FingerprintMissing => f.write_str("FINGERPRINT missing"),
            StunError::FingerprintMismatch => f.write_str("FINGERPRINT mismatch"),
            StunError::BufferTooSmall => f.write_str("buffer too small"),
            StunError::InvalidValue => f.write_str("value cannot be encoded"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for StunError {}

/// The class of a message (RFC 8489 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Class {
    Request,
    Indication,
    SuccessResponse,
    ErrorResponse,
}

impl Class {
    const fn bits(self) -> u16 {
        match self {
            Class::Request => 0,
            Class::Indication => 1,
            Class::SuccessResponse => 2,
            Class::ErrorResponse => 3,
        }
    }
    const fn from_bits(b: u16) -> Class {
        match b & 3 {
            0 => Class::Request,
            1 => Class::Indication,
            2 => Class::SuccessResponse,
            _ => Class::ErrorResponse,
        }
    }
}

/// A 12-bit STUN method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Method(pub u16);

impl Method {
    pub const BINDING: Method = Method(0x001);
    pub const ALLOCATE: Method = Method(0x003);
    pub const REFRESH: Method = Method(0x004);
    pub const SEND: Method = Method(0x006);
    pub const DATA: Method = Method(0x007);
    pub const CREATE_PERMISSION: Method = Method(0x008);
    pub const CHANNEL_BIND: Method = Method(0x009);
}

/// The 14-bit message type: method bits interleaved with the class bits.
pub const fn message_type(method: Method, class: Class) -> u16 {
    let m = method.0 & 0x0fff;
    let c = class.bits();
    ((m & 0x0f80) << 2) | ((m & 0x0070) << 1) | (m & 0x000f) | ((c & 2) << 7) | ((c & 1) << 4)
}

/// Split a message type into method and class.
pub const fn split_message_type(t: u16) -> (Method, Class) {
    let m = (t & 0x000f) | ((t & 0x00e0) >> 1) | ((t & 0x3e00) >> 2);
    let c = ((t & 0x0100) >> 7) | ((t & 0x0010) >> 4);
    (Method(m), Class::from_bits(c))
}

/// Cheap demultiplexing test (RFC 7983): first byte 0..=3 and the magic
/// cookie in place. A `true` does not mean the message is valid.
pub fn is_stun(data: &[u8]) -> bool {
    data.len() >= HEADER_LEN && data[0] < 4 && data.get(4..8).map(|c| c == MAGIC_COOKIE.to_be_bytes()) == Some(true)
}

/// One attribute as found in a message: its type and its unpadded value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawAttribute<'a> {
    pub typ: u16,
    pub value: &'a [u8],
}

/// Iterator over the attributes the integrity covers (see [`Message::attributes`]).
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    r: Reader<'a>,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = RawAttribute<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        // The message was walked in `new_checked`; these reads cannot fail,
        // but an error just ends the iteration.
        let typ = self.r.u16().ok()?;
        let len = self.r.u16().ok()? as usize;
        let value = self.r.take(len).ok()?;
        self.r.skip(pad4(len) - len).ok()?;
        Some(RawAttribute { typ, value })
    }
}

const fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// A validated, zero-copy view of one STUN message.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    buf: &'a [u8],
    /// Offsets (from the start of the message) of the attribute headers.
    integrity: Option<usize>,
    integrity_sha256: Option<usize>,
    fingerprint: Option<usize>,
    /// End of the attributes that precede any integrity/fingerprint attribute.
    covered_end: usize,
}

impl<'a> Message<'a> {
    /// Validate the header and walk every attribute's framing.
    ///
    /// The datagram must hold exactly one message (length field = datagram
    /// length - 20), as STUN over UDP requires.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, StunError> {
        let mut r = Reader::new(buf);
        let typ = r.u16().map_err(|_| StunError::NotStun)?;
        let len = r.u16().map_err(|_| StunError::NotStun)? as usize;
        let cookie = r.u32().map_err(|_| StunError::NotStun)?;
        r.skip(12).map_err(|_| StunError::NotStun)?;
        if typ & 0xc000 != 0 || cookie != MAGIC_COOKIE || len % 4 != 0 {
            return Err(StunError::NotStun);
        }
        if r.remaining() != len {
            return Err(StunError::Truncated);
        }
        let mut msg =
            Message { buf, integrity: None, integrity_sha256: None, fingerprint: None, covered_end: HEADER_LEN };
        let mut covered_open = true;
        while !r.is_empty() {
            let at = r.position();
            if msg.fingerprint.is_some() {
                // Nothing may follow FINGERPRINT.
                return Err(StunError::Malformed);
            }
            let atyp = r.u16()?;
            let alen = r.u16()? as usize;
            r.skip(pad4(alen))?;
            match atyp {
                attr::MESSAGE_INTEGRITY => {
                    if alen != 20 {
                        return Err(StunError::Malformed);
                    }
                    // Only the first, and not after MESSAGE-INTEGRITY-SHA256.
                    if msg.integrity.is_none() && msg.integrity_sha256.is_none() {
                        msg.integrity = Some(at);
                    }
                    covered_open = false;
                }
                attr::MESSAGE_INTEGRITY_SHA256 => {
                    if !(16..=32).contains(&alen) || alen % 4 != 0 {
                        return Err(StunError::Malformed);
                    }
                    if msg.integrity_sha256.is_none() {
                        msg.integrity_sha256 = Some(at);
                    }
                    covered_open = false;
                }
                attr::FINGERPRINT => {
                    if alen != 4 {
                        return Err(StunError::Malformed);
                    }
                    msg.fingerprint = Some(at);
                    covered_open = false;
                }
                _ => {
                    if covered_open {
                        msg.covered_end = r.position();
                    }
                }
            }
        }
        Ok(msg)
    }

    /// The whole message.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }
    pub fn message_type(&self) -> u16 {
        u16::from_be_bytes([self.buf[0], self.buf[1]])
    }
    pub fn method(&self) -> Method {
        split_message_type(self.message_type()).0
    }
    pub fn class(&self) -> Class {
        split_message_type(self.message_type()).1
    }
    pub fn transaction_id(&self) -> TransactionId {
        let mut t = [0u8; 12];
        t.copy_from_slice(&self.buf[8..HEADER_LEN]);
        t
    }

    /// The attributes before the first MESSAGE-INTEGRITY,
    /// MESSAGE-INTEGRITY-SHA256 or FINGERPRINT (the others are reached
    /// through the dedicated methods; anything else after them is ignored,
    /// RFC 8489 14.5).
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes { r: Reader::new(&self.buf[HEADER_LEN..self.covered_end]) }
    }

    /// The value of the first attribute of type `typ` (see [`Self::attributes`]).
    pub fn attribute(&self, typ: u16) -> Option<&'a [u8]> {
        self.attributes().find(|a| a.typ == typ).map(|a| a.value)
    }

    pub fn has_attribute(&self, typ: u16) -> bool {
        self.attribute(typ).is_some()
    }

    /// Comprehension-required attributes `is_known` rejects (RFC 8489 6.3.1):
    /// at most [`MAX_UNKNOWN_ATTRIBUTES`] are listed.
    pub fn unknown_comprehension_required(
        &self,
        is_known: impl Fn(u16) -> bool,
    ) -> heapless::Vec<u16, MAX_UNKNOWN_ATTRIBUTES> {
        let mut out = heapless::Vec::new();
        for a in self.attributes() {
            if attr::is_comprehension_required(a.typ) && !is_known(a.typ) && !out.contains(&a.typ) {
                let _ = out.push(a.typ);
            }
        }
        out
    }

    pub fn mapped_address(&self) -> Result<Option<SocketAddr>, StunError> {
        self.attribute(attr::MAPPED_ADDRESS)
            .map(|v| decode_address(v).ok_or(StunError::BadAttribute(attr::MAPPED_ADDRESS)))
            .transpose()
    }

    pub fn xor_mapped_address(&self) -> Result<Option<SocketAddr>, StunError> {
        self.xor_address(attr::XOR_MAPPED_ADDRESS)
    }

    /// Any XOR-encoded address attribute (XOR-MAPPED-ADDRESS, and TURN's
    /// XOR-PEER-ADDRESS / XOR-RELAYED-ADDRESS).
    pub fn xor_address(&self, typ: u16) -> Result<Option<SocketAddr>, StunError> {
        let tid = self.transaction_id();
        self.attribute(typ).map(|v| decode_xor_address(v, &tid).ok_or(StunError::BadAttribute(typ))).transpose()
    }

    pub fn username(&self) -> Result<Option<&'a str>, StunError> {
        self.text(attr::USERNAME, MAX_USERNAME_LEN)
    }
    pub fn realm(&self) -> Result<Option<&'a str>, StunError> {
        self.text(attr::REALM, MAX_TEXT_LEN)
    }
    pub fn nonce(&self) -> Result<Option<&'a str>, StunError> {
        self.text(attr::NONCE, MAX_TEXT_LEN)
    }
    pub fn software(&self) -> Result<Option<&'a str>, StunError> {
        self.text(attr::SOFTWARE, MAX_TEXT_LEN)
    }

    fn text(&self, typ: u16, max: usize) -> Result<Option<&'a str>, StunError> {
        match self.attribute(typ) {
            None => Ok(None),
            Some(v) if v.len() <= max => core::str::from_utf8(v).map(Some).map_err(|_| StunError::BadAttribute(typ)),
            Some(_) => Err(StunError::BadAttribute(typ)),
        }
    }

    /// ERROR-CODE as (code, reason phrase).
    pub fn error_code(&self) -> Result<Option<(u16, &'a str)>, StunError> {
        let bad = StunError::BadAttribute(attr::ERROR_CODE);
        let Some(v) = self.attribute(attr::ERROR_CODE) else { return Ok(None) };
        let mut r = Reader::new(v);
        r.skip(2).map_err(|_| bad)?;
        let class = (r.u8().map_err(|_| bad)? & 0x07) as u16;
        let number = r.u8().map_err(|_| bad)? as u16;
        if !(3..=6).contains(&class) || number > 99 || r.remaining() > MAX_TEXT_LEN {
            return Err(bad);
        }
        let reason = core::str::from_utf8(r.rest()).map_err(|_| bad)?;
        Ok(Some((class * 100 + number, reason)))
    }

    /// The attribute types listed in UNKNOWN-ATTRIBUTES.
    pub fn unknown_attributes(&self) -> Result<Option<impl Iterator<Item = u16> + 'a>, StunError> {
        match self.attribute(attr::UNKNOWN_ATTRIBUTES) {
            None => Ok(None),
            Some(v) if v.len() % 2 == 0 => Ok(Some(v.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])))),
            Some(_) => Err(StunError::BadAttribute(attr::UNKNOWN_ATTRIBUTES)),
        }
    }

    pub fn priority(&self) -> Result<Option<u32>, StunError> {
        self.fixed::<4>(attr::PRIORITY).map(|o| o.map(u32::from_be_bytes))
    }
    pub fn use_candidate(&self) -> bool {
        self.has_attribute(attr::USE_CANDIDATE)
    }
    pub fn ice_controlled(&self) -> Result<Option<u64>, StunError> {
        self.fixed::<8>(attr::ICE_CONTROLLED).map(|o| o.map(u64::from_be_bytes))
    }
    pub fn ice_controlling(&self) -> Result<Option<u64>, StunError> {
        self.fixed::<8>(attr::ICE_CONTROLLING).map(|o| o.map(u64::from_be_bytes))
    }

    fn fixed<const N: usize>(&self, typ: u16) -> Result<Option<[u8; N]>, StunError> {
        match self.attribute(typ) {
            None => Ok(None),
            Some(v) => v.try_into().map(Some).map_err(|_| StunError::BadAttribute(typ)),
        }
    }

    pub fn has_integrity(&self) -> bool {
        self.integrity.is_some()
    }
    pub fn has_integrity_sha256(&self) -> bool {
        self.integrity_sha256.is_some()
    }
    pub fn has_fingerprint(&self) -> bool {
        self.fingerprint.is_some()
    }

    /// Verify MESSAGE-INTEGRITY (HMAC-SHA1) under `key` in constant time.
    /// `key` is the password for short-term credentials, or
    /// [`long_term_key`] for long-term ones.
    pub fn check_integrity(&self, key: &[u8]) -> Result<(), StunError> {
        let at = self.integrity.ok_or(StunError::IntegrityMissing)?;
        let len_field = Self::length_up_to(at, MESSAGE_INTEGRITY_LEN);
        let mac = crypto::hmac_sha1(key, &[&self.buf[..2], &len_field, &self.buf[4..at]]);
        let got = self.buf.get(at + 4..at + MESSAGE_INTEGRITY_LEN).ok_or(StunError::Malformed)?;
        if crypto::ct_eq(&mac, got) {
            Ok(())
        } else {
            Err(StunError::IntegrityMismatch)
        }
    }

    /// Verify MESSAGE-INTEGRITY-SHA256 (HMAC-SHA256, possibly truncated to
    /// 16..32 bytes) under `key` in constant time.
    pub fn check_integrity_sha256(&self, key: &[u8]) -> Result<(), StunError> {
        let at = self.integrity_sha256.ok_or(StunError::IntegrityMissing)?;
        let vlen = self.buf.get(at + 2..at + 4).map(|b| u16::from_be_bytes([b[0], b[1]]) as usize);
        let vlen = vlen.ok_or(StunError::Malformed)?;
        let len_field = Self::length_up_to(at, 4 + vlen);
        let mac = crypto::hmac_sha256(key, &[&self.buf[..2], &len_field, &self.buf[4..at]]);
        let got = self.buf.get(at + 4..at + 4 + vlen).ok_or(StunError::Malformed)?;
        if crypto::ct_eq(mac.get(..vlen).ok_or(StunError::Malformed)?, got) {
            Ok(())
        } else {
            Err(StunError::IntegrityMismatch)
        }
    }

    /// The header length field the HMAC is computed with: the message
    /// ending just after the integrity attribute at `at` (`attr_len` bytes).
    fn length_up_to(at: usize, attr_len: usize) -> [u8; 2] {
        ((at + attr_len - HEADER_LEN) as u16).to_be_bytes()
    }

    /// Verify FINGERPRINT (CRC-32 XOR 0x5354554e).
    pub fn check_fingerprint(&self) -> Result<(), StunError> {
        let at = self.fingerprint.ok_or(StunError::FingerprintMissing)?;
        let got = self.buf.get(at + 4..at + 8).ok_or(StunError::Malformed)?;
        let want = (crypto::crc32(&self.buf[..at]) ^ FINGERPRINT_XOR).to_be_bytes();
        if got == want {
            Ok(())
        } else {
            Err(StunError::FingerprintMismatch)
        }
    }
}

/// The long-term credential key (RFC 8489 9.2.2, MD5 password algorithm):
/// MD5(username ":" realm ":" password). Inputs are used as given: the
/// caller applies OpaqueString/SASLprep if its users need it.
pub fn long_term_key(username: &str, realm: &str, password: &str) -> [u8; 16] {
    crypto::md5(&[username.as_bytes(), b":", realm.as_bytes(), b":", password.as_bytes()])
}

/// The long-term credential key for the SHA-256 password algorithm
/// (RFC 8489 18.5.1.2): SHA-256(username ":" realm ":" password).
pub fn long_term_key_sha256(username: &str, realm: &str, password: &str) -> [u8; 32] {
    crypto::sha256(&[username.as_bytes(), b":", realm.as_bytes(), b":", password.as_bytes()])
}

fn decode_address(v: &[u8]) -> Option<SocketAddr> {
    let mut r = Reader::new(v);
    r.skip(1).ok()?;
    let family = r.u8().ok()?;
    let port = r.u16().ok()?;
    let ip = match family {
        0x01 => IpAddr::V4(Ipv4Addr::from(r.array::<4>().ok()?)),
        0x02 => IpAddr::V6(Ipv6Addr::from(r.array::<16>().ok()?)),
        _ => return None,
    };
    r.is_empty().then_some(SocketAddr::new(ip, port))
}

fn xor_bytes(tid: &TransactionId) -> [u8; 16] {
    let mut x = [0u8; 16];
    x[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    x[4..].copy_from_slice(tid);
    x
}

fn decode_xor_address(v: &[u8], tid: &TransactionId) -> Option<SocketAddr> {
    let a = decode_address(v)?;
    let x = xor_bytes(tid);
    let port = a.port() ^ (MAGIC_COOKIE >> 16) as u16;
    let ip = match a.ip() {
        IpAddr::V4(ip) => {
            let mut o = ip.octets();
            o.iter_mut().zip(x.iter()).for_each(|(b, k)| *b ^= k);
            IpAddr::V4(o.into())
        }
        IpAddr::V6(ip) => {
            let mut o = ip.octets();
            o.iter_mut().zip(x.iter()).for_each(|(b, k)| *b ^= k);
            IpAddr::V6(o.into())
        }
    };
    Some(SocketAddr::new(ip, port))
}

/// Writes one STUN message into a caller buffer.
///
/// Add attributes in order, then (optionally) [`Self::message_integrity`] /
/// [`Self::message_integrity_sha256`], then (optionally)
/// [`Self::fingerprint`], then [`Self::finish`]. The header length is kept
/// current after each attribute. Nothing is allocated.
#[derive(Debug)]
pub struct MessageBuilder<'a> {
    w: Writer<'a>,
    tid: TransactionId,
}

impl<'a> MessageBuilder<'a> {
    /// Start a message: writes the header with an empty body.
    pub fn new(buf: &'a mut [u8], method: Method, class: Class, tid: &TransactionId) -> Result<Self, StunError> {
        if method.0 > 0x0fff {
            return Err(StunError::InvalidValue);
        }
        let mut w = Writer::new(buf);
        w.u16(message_type(method, class))?;
        w.u16(0)?;
        w.u32(MAGIC_COOKIE)?;
        w.bytes(tid)?;
        Ok(MessageBuilder { w, tid: *tid })
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.w.len()
    }
    pub fn is_empty(&self) -> bool {
        self.w.is_empty()
    }

    fn update_length(&mut self) -> Result<(), StunError> {
        let body = u16::try_from(self.w.len() - HEADER_LEN).map_err(|_| StunError::InvalidValue)?;
        self.w.patch_u16(2, body)?;
        Ok(())
    }

    /// Start an attribute of `len` value bytes; returns the (zero-padded)
    /// value slot to fill.
    fn begin(&mut self, typ: u16, len: usize) -> Result<&mut [u8], StunError> {
        let l16 = u16::try_from(len).map_err(|_| StunError::InvalidValue)?;
        if self.w.len() + 4 + pad4(len) - HEADER_LEN > u16::MAX as usize {
            return Err(StunError::InvalidValue);
        }
        // Check room first so that a failed attribute leaves nothing behind.
        if self.w.remaining() < 4 + pad4(len) {
            return Err(StunError::BufferTooSmall);
        }
        self.w.u16(typ)?;
        self.w.u16(l16)?;
        let slot = self.w.reserve(pad4(len))?;
        slot.fill(0);
        Ok(&mut slot[..len])
    }

    /// Any attribute, value given as bytes (padding is added).
    pub fn raw(&mut self, typ: u16, value: &[u8]) -> Result<(), StunError> {
        self.begin(typ, value.len())?.copy_from_slice(value);
        self.update_length()
    }

    fn address(&mut self, typ: u16, addr: SocketAddr, xor: bool) -> Result<(), StunError> {
        let x = xor_bytes(&self.tid);
        let mut v = [0u8; 20];
        let (port, len) = (addr.port(), if addr.is_ipv4() { 8 } else { 20 });
        let port = if xor { port ^ (MAGIC_COOKIE >> 16) as u16 } else { port };
        v[1] = if addr.is_ipv4() { 0x01 } else { 0x02 };
        v[2..4].copy_from_slice(&port.to_be_bytes());
        match addr.ip() {
            IpAddr::V4(ip) => v[4..8].copy_from_slice(&ip.octets()),
            IpAddr::V6(ip) => v[4..20].copy_from_slice(&ip.octets()),
        }
        if xor {
            v[4..len].iter_mut().zip(x.iter()).for_each(|(b, k)| *b ^= k);
        }
        self.raw(typ, &v[..len])
    }

    pub fn mapped_address(&mut self, addr: SocketAddr) -> Result<(), StunError> {
        self.address(attr::MAPPED_ADDRESS, addr, false)
    }
    pub fn xor_mapped_address(&mut self, addr: SocketAddr) -> Result<(), StunError> {
        self.address(attr::XOR_MAPPED_ADDRESS, addr, true)
    }
    /// Any XOR-encoded address attribute (e.g. TURN XOR-PEER-ADDRESS).
    pub fn xor_address(&mut self, typ: u16, addr: SocketAddr) -> Result<(), StunError> {
        self.address(typ, addr, true)
    }
    pub fn username(&mut self, username: &str) -> Result<(), StunError> {
        if username.len() > MAX_USERNAME_LEN {
            return Err(StunError::InvalidValue);
        }
        self.raw(attr::USERNAME, username.as_bytes())
    }
    pub fn realm(&mut self, realm: &str) -> Result<(), StunError> {
        self.text(attr::REALM, realm)
    }
    pub fn nonce(&mut self, nonce: &str) -> Result<(), StunError> {
        self.text(attr::NONCE, nonce)
    }
    pub fn software(&mut self, software: &str) -> Result<(), StunError> {
        self.text(attr::SOFTWARE, software)
    }
    fn text(&mut self, typ: u16, s: &str) -> Result<(), StunError> {
        if s.len() > MAX_TEXT_LEN {
            return Err(StunError::InvalidValue);
        }
        self.raw(typ, s.as_bytes())
    }

    /// ERROR-CODE with a code in 300..=699 and a reason phrase.
    pub fn error_code(&mut self, code: u16, reason: &str) -> Result<(), StunError> {
        if !(300..=699).contains(&code) || reason.len() > MAX_TEXT_LEN {
            return Err(StunError::InvalidValue);
        }
        let slot = self.begin(attr::ERROR_CODE, 4 + reason.len())?;
        slot[2] = (code / 100) as u8;
        slot[3] = (code % 100) as u8;
        slot[4..].copy_from_slice(reason.as_bytes());
        self.update_length()
    }

    pub fn unknown_attributes(&mut self, types: &[u16]) -> Result<(), StunError> {
        let slot = self.begin(attr::UNKNOWN_ATTRIBUTES, types.len().saturating_mul(2))?;
        for (c, t) in slot.chunks_exact_mut(2).zip(types) {
            c.copy_from_slice(&t.to_be_bytes());
        }
        self.update_length()
    }

    pub fn priority(&mut self, priority: u32) -> Result<(), StunError> {
        self.raw(attr::PRIORITY, &priority.to_be_bytes())
    }
    pub fn use_candidate(&mut self) -> Result<(), StunError> {
        self.raw(attr::USE_CANDIDATE, &[])
    }
    pub fn ice_controlled(&mut self, tie_breaker: u64) -> Result<(), StunError> {
        self.raw(attr::ICE_CONTROLLED, &tie_breaker.to_be_bytes())
    }
    pub fn ice_controlling(&mut self, tie_breaker: u64) -> Result<(), StunError> {
        self.raw(attr::ICE_CONTROLLING, &tie_breaker.to_be_bytes())
    }

    /// MESSAGE-INTEGRITY (HMAC-SHA1) over everything written so far.
    pub fn message_integrity(&mut self, key: &[u8]) -> Result<(), StunError> {
        self.integrity(attr::MESSAGE_INTEGRITY, 20, |parts| {
            let mut out = [0u8; 32];
            out[..20].copy_from_slice(&crypto::hmac_sha1(key, parts));
            out
        })
    }

    /// MESSAGE-INTEGRITY-SHA256 (full 32-byte HMAC-SHA256).
    pub fn message_integrity_sha256(&mut self, key: &[u8]) -> Result<(), StunError> {
        self.integrity(attr::MESSAGE_INTEGRITY_SHA256, 32, |parts| crypto::hmac_sha256(key, parts))
    }

    fn integrity(&mut self, typ: u16, len: usize, mac: impl FnOnce(&[&[u8]]) -> [u8; 32]) -> Result<(), StunError> {
        if self.w.remaining() < 4 + len {
            return Err(StunError::BufferTooSmall);
        }
        // The length field must already count the integrity attribute.
        let body = u16::try_from(self.w.len() + 4 + len - HEADER_LEN).map_err(|_| StunError::InvalidValue)?;
        self.w.patch_u16(2, body)?;
        let m = mac(&[self.w.written()]);
        self.raw(typ, &m[..len])
    }

    /// FINGERPRINT over everything written so far. Must come last.
    pub fn fingerprint(&mut self) -> Result<(), StunError> {
        if self.w.remaining() < FINGERPRINT_LEN {
            return Err(StunError::BufferTooSmall);
        }
        let body = u16::try_from(self.w.len() + FINGERPRINT_LEN - HEADER_LEN).map_err(|_| StunError::InvalidValue)?;
        self.w.patch_u16(2, body)?;
        let crc = crypto::crc32(self.w.written()) ^ FINGERPRINT_XOR;
        self.raw(attr::FINGERPRINT, &crc.to_be_bytes())
    }

    /// The message length in bytes (it starts at the buffer's first byte).
    pub fn finish(self) -> usize {
        self.w.len()
    }
}

/// Write an error response to `request` (same method and transaction ID)
/// with ERROR-CODE `code` (reason from [`code::reason`]) and, for 420, the
/// UNKNOWN-ATTRIBUTES list. Integrity is the caller's choice: `key`, when
/// given, adds MESSAGE-INTEGRITY. FINGERPRINT is added when `fingerprint`.
pub fn write_error_response(
    buf: &mut [u8],
    request: &Message<'_>,
    code: u16,
    unknown: &[u16],
    key: Option<&[u8]>,
    fingerprint: bool,
) -> Result<usize, StunError> {
    let mut b = MessageBuilder::new(buf, request.method(), Class::ErrorResponse, &request.transaction_id())?;
    b.error_code(code, code::reason(code))?;
    if code == code::UNKNOWN_ATTRIBUTE {
        b.unknown_attributes(unknown)?;
    }
    if let Some(k) = key {
        b.message_integrity(k)?;
    }
    if fingerprint {
        b.fingerprint()?;
    }
    Ok(b.finish())
}
