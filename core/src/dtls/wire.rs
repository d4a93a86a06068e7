//! DTLS 1.2 wire formats: record and handshake headers (RFC 6347 4.1, 4.2.2),
//! hello messages and their extensions (RFC 5246 7.4.1, RFC 6347 4.2.1),
//! alerts (RFC 5246 7.2). Parsing goes through [`Reader`] and never panics.

use crate::bytes::{Reader, Truncated};

pub(crate) mod content {
    pub const CHANGE_CIPHER_SPEC: u8 = 20;
    pub const ALERT: u8 = 21;
    pub const HANDSHAKE: u8 = 22;
    pub const APPLICATION_DATA: u8 = 23;
}

pub(crate) mod hs {
    pub const HELLO_REQUEST: u8 = 0;
    pub const CLIENT_HELLO: u8 = 1;
    pub const SERVER_HELLO: u8 = 2;
    pub const HELLO_VERIFY_REQUEST: u8 = 3;
    pub const CERTIFICATE: u8 = 11;
    pub const SERVER_KEY_EXCHANGE: u8 = 12;
    pub const CERTIFICATE_REQUEST: u8 = 13;
    pub const SERVER_HELLO_DONE: u8 = 14;
    pub const CERTIFICATE_VERIFY: u8 = 15;
    pub const CLIENT_KEY_EXCHANGE: u8 = 16;
    pub const FINISHED: u8 = 20;
}

pub(crate) mod ext {
    pub const SUPPORTED_GROUPS: u16 = 10;
    pub const EC_POINT_FORMATS: u16 = 11;
    pub const SIGNATURE_ALGORITHMS: u16 = 13;
    pub const USE_SRTP: u16 = 14;
    pub const EXTENDED_MASTER_SECRET: u16 = 23;
    pub const RENEGOTIATION_INFO: u16 = 0xff01;
}

/// ecdsa_secp256r1_sha256 (hash sha256 = 4, signature ecdsa = 3).
pub(crate) const SIG_ECDSA_P256_SHA256: u16 = 0x0403;
/// TLS_EMPTY_RENEGOTIATION_INFO_SCSV (RFC 5746 3.3).
pub(crate) const EMPTY_RENEGOTIATION_SCSV: u16 = 0x00ff;
/// ClientCertificateType ecdsa_sign (RFC 8422 5.5).
pub(crate) const CERT_TYPE_ECDSA_SIGN: u8 = 64;
/// ECCurveType named_curve.
pub(crate) const CURVE_TYPE_NAMED: u8 = 3;
/// Handshake message header length in DTLS.
pub(crate) const HS_HEADER_LEN: usize = 12;

/// A key exchange group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum NamedGroup {
    /// x25519 (29).
    X25519,
    /// secp256r1 (23).
    Secp256r1,
}

impl NamedGroup {
    pub const fn id(self) -> u16 {
        match self {
            NamedGroup::X25519 => 29,
            NamedGroup::Secp256r1 => 23,
        }
    }
    pub const fn from_id(id: u16) -> Option<Self> {
        match id {
            29 => Some(NamedGroup::X25519),
            23 => Some(NamedGroup::Secp256r1),
            _ => None,
        }
    }
}

/// Alert descriptions we send or recognize (RFC 5246 7.2, RFC 5746).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum AlertDescription {
    CloseNotify = 0,
    UnexpectedMessage = 10,
    BadRecordMac = 20,
    HandshakeFailure = 40,
    BadCertificate = 42,
    UnsupportedCertificate = 43,
    IllegalParameter = 47,
    DecodeError = 50,
    DecryptError = 51,
    InternalError = 80,
    NoRenegotiation = 100,
    UnsupportedExtension = 110,
}

/// A record header and its fragment, borrowed from the datagram.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record<'a> {
    pub ctype: u8,
    pub version: u16,
    pub epoch: u16,
    pub seq: u64,
    pub fragment: &'a [u8],
}

impl<'a> Record<'a> {
    pub(crate) fn parse(r: &mut Reader<'a>) -> Result<Self, Truncated> {
        let ctype = r.u8()?;
        let version = r.u16()?;
        let epoch = r.u16()?;
        let seq = r.u48()?;
        let fragment = r.vec16()?;
        Ok(Record { ctype, version, epoch, seq, fragment })
    }
}

/// One handshake message fragment (RFC 6347 4.2.2).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fragment<'a> {
    pub msg_type: u8,
    pub length: u32,
    pub msg_seq: u16,
    pub offset: u32,
    pub body: &'a [u8],
}

impl<'a> Fragment<'a> {
    pub(crate) fn parse(r: &mut Reader<'a>) -> Result<Self, Truncated> {
        let msg_type = r.u8()?;
        let length = r.u24()?;
        let msg_seq = r.u16()?;
        let offset = r.u24()?;
        let body = r.vec24()?;
        Ok(Fragment { msg_type, length, msg_seq, offset, body })
    }

    /// Fragment fits inside the message it claims to be part of.
    pub(crate) fn is_consistent(&self) -> bool {
        (self.offset as usize).checked_add(self.body.len()).is_some_and(|end| end <= self.length as usize)
    }
}

/// Iterate `(type, data)` over an extensions block.
pub(crate) struct Extensions<'a> {
    r: Reader<'a>,
}

impl<'a> Extensions<'a> {
    pub(crate) fn new(block: &'a [u8]) -> Self {
        Extensions { r: Reader::new(block) }
    }
}

impl<'a> Iterator for Extensions<'a> {
    type Item = Result<(u16, &'a [u8]), Truncated>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.r.is_empty() {
            return None;
        }
        let item = (|| Ok((self.r.u16()?, self.r.vec16()?)))();
        if item.is_err() {
            self.r.take_rest();
        }
        Some(item)
    }
}

/// Iterate big-endian u16 values in `list` (an odd trailing byte is ignored).
pub(crate) fn u16_list(list: &[u8]) -> impl Iterator<Item = u16> + '_ {
    list.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]]))
}

/// A ClientHello body (RFC 6347 4.2.1 adds the cookie).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientHello<'a> {
    pub version: u16,
    pub random: [u8; 32],
    pub session_id: &'a [u8],
    pub cookie: &'a [u8],
    pub cipher_suites: &'a [u8],
    pub compression: &'a [u8],
    pub extensions: &'a [u8],
}

impl<'a> ClientHello<'a> {
    pub(crate) fn parse(body: &'a [u8]) -> Result<Self, Truncated> {
        let mut r = Reader::new(body);
        let version = r.u16()?;
        let random = r.array()?;
        let session_id = r.vec8()?;
        let cookie = r.vec8()?;
        let cipher_suites = r.vec16()?;
        let compression = r.vec8()?;
        let extensions = if r.is_empty() { &[][..] } else { r.vec16()? };
        Ok(ClientHello { version, random, session_id, cookie, cipher_suites, compression, extensions })
    }
}

/// A ServerHello body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServerHello<'a> {
    pub version: u16,
    pub random: [u8; 32],
    pub cipher_suite: u16,
    pub compression: u8,
    pub extensions: &'a [u8],
}

impl<'a> ServerHello<'a> {
    pub(crate) fn parse(body: &'a [u8]) -> Result<Self, Truncated> {
        let mut r = Reader::new(body);
        let version = r.u16()?;
        let random = r.array()?;
        let _session_id = r.vec8()?;
        let cipher_suite = r.u16()?;
        let compression = r.u8()?;
        let extensions = if r.is_empty() { &[][..] } else { r.vec16()? };
        Ok(ServerHello { version, random, cipher_suite, compression, extensions })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_and_extensions_parse_bounded() {
        let data = [1u8, 0, 0, 4, 0, 2, 0, 0, 1, 0, 0, 2, 0xaa, 0xbb];
        let f = Fragment::parse(&mut Reader::new(&data)).unwrap();
        assert_eq!((f.msg_type, f.length, f.msg_seq, f.offset, f.body), (1, 4, 2, 1, &[0xaa, 0xbb][..]));
        assert!(f.is_consistent());
        assert!(Fragment::parse(&mut Reader::new(&data[..13])).is_err());
        let exts = [0u8, 23, 0, 0, 0xff, 1, 0, 1, 0, 0, 5, 0, 9];
        let mut it = Extensions::new(&exts);
        assert_eq!(it.next().unwrap().unwrap(), (23, &[][..]));
        assert_eq!(it.next().unwrap().unwrap(), (0xff01, &[0][..]));
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
    }
}
