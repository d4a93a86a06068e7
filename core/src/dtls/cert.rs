//! Certificates the WebRTC way: a self-signed X.509 v3 certificate (RFC
//! 5280) for an ECDSA P-256 key, written without a heap; its SHA-256
//! fingerprint in the SDP form of RFC 8122 (`sha-256 AB:CD:...`); and a
//! bounded DER walker that finds a peer certificate's P-256 public key.
//!
//! The peer is authenticated by the fingerprint alone (and by its key
//! signing the handshake), so names, extensions, chains and validity dates
//! are not checked. We read no clock: generated certificates are valid from
//! 2000-01-01 00:00:00Z to 2099-12-31 23:59:59Z.

use crate::bytes::{BufferTooSmall, Reader};
use crate::crypto::{ct_eq, sha256, EcdsaP256, P256_PUBLIC_LEN};
use rand_core::{CryptoRng, RngCore};

/// Largest certificate (DER) an identity can hold: 1024 bytes of
/// [`DtlsIdentity`]. Generated ones are about 330 bytes.
pub const MAX_CERT_LEN: usize = 1024;

/// A certificate could not be built or understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CertError {
    /// DER structure is malformed or truncated.
    Malformed,
    /// The key is not an uncompressed ECDSA P-256 point.
    UnsupportedKey,
    /// The certificate's key does not belong to the given private key.
    KeyMismatch,
    /// Longer than [`MAX_CERT_LEN`].
    TooLarge,
    /// Not a `sha-256 XX:XX:...` fingerprint.
    BadFingerprint,
}

// ---------------------------------------------------------------- DER

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;
const UTF8_STRING: u8 = 0x0c;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const CONTEXT_0: u8 = 0xa0;

const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const COMMON_NAME: &[u8] = b"tinyrtc";

/// Writes DER into a fixed buffer. A constructed value is opened with
/// [`Der::open`], its content written, then [`Der::close`] inserts the tag
/// and the minimal length in front (moving the content up).
struct Der<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Der<'_> {
    fn raw(&mut self, b: &[u8]) -> Result<(), BufferTooSmall> {
        let dst = self.buf.get_mut(self.pos..self.pos + b.len()).ok_or(BufferTooSmall)?;
        dst.copy_from_slice(b);
        self.pos += b.len();
        Ok(())
    }
    fn open(&self) -> usize {
        self.pos
    }
    fn close(&mut self, start: usize, tag: u8) -> Result<(), BufferTooSmall> {
        let len = self.pos - start;
        let mut hdr = [tag, 0, 0, 0];
        let hlen = match len {
            0..=0x7f => {
                hdr[1] = len as u8;
                2
            }
            0x80..=0xff => {
                hdr[1] = 0x81;
                hdr[2] = len as u8;
                3
            }
            _ => {
                hdr[1] = 0x82;
                hdr[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                4
            }
        };
        if self.pos + hlen > self.buf.len() || len > 0xffff {
            return Err(BufferTooSmall);
        }
        self.buf.copy_within(start..self.pos, start + hlen);
        self.buf[start..start + hlen].copy_from_slice(&hdr[..hlen]);
        self.pos += hlen;
        Ok(())
    }
    fn tlv(&mut self, tag: u8, content: &[u8]) -> Result<(), BufferTooSmall> {
        let s = self.open();
        self.raw(content)?;
        self.close(s, tag)
    }
    /// A positive INTEGER from big-endian magnitude bytes (minimal form).
    fn uint(&mut self, mag: &[u8]) -> Result<(), BufferTooSmall> {
        let s = self.open();
        let mut m = mag;
        while m.len() > 1 && m[0] == 0 {
            m = &m[1..];
        }
        if m.first().is_some_and(|b| b & 0x80 != 0) {
            self.raw(&[0])?;
        }
        self.raw(m)?;
        self.close(s, INTEGER)
    }
    fn name(&mut self) -> Result<(), BufferTooSmall> {
        let name = self.open();
        let rdn = self.open();
        let atv = self.open();
        self.tlv(OID, OID_COMMON_NAME)?;
        self.tlv(UTF8_STRING, COMMON_NAME)?;
        self.close(atv, SEQUENCE)?;
        self.close(rdn, SET)?;
        self.close(name, SEQUENCE)
    }
    fn sig_alg(&mut self) -> Result<(), BufferTooSmall> {
        let s = self.open();
        self.tlv(OID, OID_ECDSA_SHA256)?;
        self.close(s, SEQUENCE)
    }
}

/// Write a self-signed certificate for `key` into `out`; returns its length.
fn write_self_signed(key: &EcdsaP256, serial: &[u8; 16], out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let mut d = Der { buf: out, pos: 0 };
    let cert = d.open();
    let tbs = d.open();
    // version [0] EXPLICIT INTEGER 2 (v3)
    let v = d.open();
    d.tlv(INTEGER, &[2])?;
    d.close(v, CONTEXT_0)?;
    d.uint(serial)?;
    d.sig_alg()?;
    d.name()?;
    let validity = d.open();
    d.tlv(UTC_TIME, b"000101000000Z")?;
    d.tlv(GENERALIZED_TIME, b"20991231235959Z")?;
    d.close(validity, SEQUENCE)?;
    d.name()?;
    let spki = d.open();
    let alg = d.open();
    d.tlv(OID, OID_EC_PUBLIC_KEY)?;
    d.tlv(OID, OID_PRIME256V1)?;
    d.close(alg, SEQUENCE)?;
    let bits = d.open();
    d.raw(&[0])?;
    d.raw(&key.public_key())?;
    d.close(bits, BIT_STRING)?;
    d.close(spki, SEQUENCE)?;
    d.close(tbs, SEQUENCE)?;
    let sig = key.sign_sha256(&[&d.buf[tbs..d.pos]]);
    d.sig_alg()?;
    let bits = d.open();
    d.raw(&[0])?;
    d.raw(sig.as_bytes())?;
    d.close(bits, BIT_STRING)?;
    d.close(cert, SEQUENCE)?;
    Ok(d.pos)
}

/// Read one DER TLV (definite lengths up to 3 bytes).
fn tlv<'a>(r: &mut Reader<'a>) -> Result<(u8, &'a [u8]), CertError> {
    let tag = r.u8().map_err(|_| CertError::Malformed)?;
    let first = r.u8().map_err(|_| CertError::Malformed)?;
    let len = match first {
        0..=0x7f => first as usize,
        0x81 => r.u8().map_err(|_| CertError::Malformed)? as usize,
        0x82 => r.u16().map_err(|_| CertError::Malformed)? as usize,
        0x83 => r.u24().map_err(|_| CertError::Malformed)? as usize,
        _ => return Err(CertError::Malformed),
    };
    Ok((tag, r.take(len).map_err(|_| CertError::Malformed)?))
}

fn expect<'a>(r: &mut Reader<'a>, tag: u8) -> Result<&'a [u8], CertError> {
    match tlv(r)? {
        (t, v) if t == tag => Ok(v),
        _ => Err(CertError::Malformed),
    }
}

/// The uncompressed P-256 public key in a certificate's SubjectPublicKeyInfo.
pub fn certificate_p256_key(der: &[u8]) -> Result<[u8; P256_PUBLIC_LEN], CertError> {
    let mut r = Reader::new(der);
    let cert = expect(&mut r, SEQUENCE)?;
    let mut c = Reader::new(cert);
    let tbs = expect(&mut c, SEQUENCE)?;
    let mut t = Reader::new(tbs);
    let (mut tag, mut val) = tlv(&mut t)?;
    if tag == CONTEXT_0 {
        (tag, val) = tlv(&mut t)?; // serial
    }
    let _ = val;
    if tag != INTEGER {
        return Err(CertError::Malformed);
    }
    expect(&mut t, SEQUENCE)?; // signature algorithm
    expect(&mut t, SEQUENCE)?; // issuer
    expect(&mut t, SEQUENCE)?; // validity
    expect(&mut t, SEQUENCE)?; // subject
    let spki = expect(&mut t, SEQUENCE)?;
    let mut s = Reader::new(spki);
    let alg = expect(&mut s, SEQUENCE)?;
    let mut a = Reader::new(alg);
    if expect(&mut a, OID)? != OID_EC_PUBLIC_KEY || expect(&mut a, OID)? != OID_PRIME256V1 {
        return Err(CertError::UnsupportedKey);
    }
    let bits = expect(&mut s, BIT_STRING)?;
    match bits {
        [0, point @ ..] if point.len() == P256_PUBLIC_LEN && point[0] == 4 => {
            let mut out = [0u8; P256_PUBLIC_LEN];
            out.copy_from_slice(point);
            Ok(out)
        }
        _ => Err(CertError::UnsupportedKey),
    }
}

// ---------------------------------------------------------------- fingerprint

/// A certificate's SHA-256 fingerprint (RFC 8122 `a=fingerprint:sha-256 ...`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    pub sha256: [u8; 32],
}

/// Length of the SDP text form: `sha-256 ` + 32 `XX` joined by `:`.
pub const FINGERPRINT_TEXT_LEN: usize = 8 + 32 * 3 - 1;

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub fn of_certificate(der: &[u8]) -> Self {
        Fingerprint { sha256: sha256(&[der]) }
    }

    /// Constant-time comparison.
    pub fn matches(&self, other: &Fingerprint) -> bool {
        ct_eq(&self.sha256, &other.sha256)
    }

    /// Parse `sha-256 AB:CD:...` (hash name and hex digits in any case,
    /// surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<Self, CertError> {
        let text = text.trim();
        let (alg, hex) = text.split_once(' ').ok_or(CertError::BadFingerprint)?;
        if !alg.eq_ignore_ascii_case("sha-256") {
            return Err(CertError::BadFingerprint);
        }
        let mut out = [0u8; 32];
        let mut n = 0;
        for part in hex.trim().split(':') {
            let b = part.as_bytes();
            if b.len() != 2 || n == 32 {
                return Err(CertError::BadFingerprint);
            }
            let hi = hex_val(b[0]).ok_or(CertError::BadFingerprint)?;
            let lo = hex_val(b[1]).ok_or(CertError::BadFingerprint)?;
            out[n] = hi << 4 | lo;
            n += 1;
        }
        if n != 32 {
            return Err(CertError::BadFingerprint);
        }
        Ok(Fingerprint { sha256: out })
    }

    /// Write the SDP text form into `out` (needs [`FINGERPRINT_TEXT_LEN`] bytes).
    pub fn format<'a>(&self, out: &'a mut [u8]) -> Result<&'a str, BufferTooSmall> {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        let out = out.get_mut(..FINGERPRINT_TEXT_LEN).ok_or(BufferTooSmall)?;
        out[..8].copy_from_slice(b"sha-256 ");
        for (i, b) in self.sha256.iter().enumerate() {
            let at = 8 + i * 3;
            out[at] = HEX[(b >> 4) as usize];
            out[at + 1] = HEX[(b & 15) as usize];
            if i < 31 {
                out[at + 2] = b':';
            }
        }
        core::str::from_utf8(out).map_err(|_| BufferTooSmall)
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl core::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut buf = [0u8; FINGERPRINT_TEXT_LEN];
        f.write_str(self.format(&mut buf).map_err(|_| core::fmt::Error)?)
    }
}

impl core::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

// ---------------------------------------------------------------- identity

/// A DTLS endpoint's long-term identity: ECDSA P-256 key, its certificate
/// (DER, up to [`MAX_CERT_LEN`]) and the certificate's fingerprint. About
/// 1.2 KB; cloned into each endpoint.
#[derive(Clone)]
pub struct DtlsIdentity {
    pub(crate) key: EcdsaP256,
    cert: [u8; MAX_CERT_LEN],
    cert_len: usize,
    fingerprint: Fingerprint,
}

impl core::fmt::Debug for DtlsIdentity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DtlsIdentity").field("fingerprint", &self.fingerprint).finish()
    }
}

impl DtlsIdentity {
    /// A fresh key and a self-signed certificate with a random serial.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let key = EcdsaP256::generate(rng);
        let mut serial = [0u8; 16];
        rng.fill_bytes(&mut serial);
        serial[0] = (serial[0] & 0x7f) | 0x01; // positive, 16 significant bytes
        let mut cert = [0u8; MAX_CERT_LEN];
        // Our certificate is ~330 bytes: it always fits.
        let cert_len = write_self_signed(&key, &serial, &mut cert).unwrap_or(0);
        let fingerprint = Fingerprint::of_certificate(&cert[..cert_len]);
        DtlsIdentity { key, cert, cert_len, fingerprint }
    }

    /// Load a stored identity: the 32-byte private scalar and the DER
    /// certificate holding its public key.
    pub fn from_parts(private_key: &[u8; 32], certificate_der: &[u8]) -> Result<Self, CertError> {
        let key = EcdsaP256::from_bytes(private_key).map_err(|_| CertError::UnsupportedKey)?;
        if certificate_der.len() > MAX_CERT_LEN {
            return Err(CertError::TooLarge);
        }
        if certificate_p256_key(certificate_der)? != key.public_key() {
            return Err(CertError::KeyMismatch);
        }
        let mut cert = [0u8; MAX_CERT_LEN];
        cert[..certificate_der.len()].copy_from_slice(certificate_der);
        Ok(DtlsIdentity {
            key,
            cert,
            cert_len: certificate_der.len(),
            fingerprint: Fingerprint::of_certificate(certificate_der),
        })
    }

    pub fn certificate_der(&self) -> &[u8] {
        &self.cert[..self.cert_len]
    }

    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The private scalar, to store the identity across restarts.
    pub fn private_key_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn generated_certificate_parses_back_and_reloads() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let id = DtlsIdentity::generate(&mut rng);
        let der = id.certificate_der();
        assert!(der.len() > 250 && der.len() < 400, "{}", der.len());
        assert_eq!(certificate_p256_key(der).unwrap(), id.key.public_key());
        // The signature verifies over the TBS part with the certificate's key.
        let mut r = Reader::new(der);
        let outer = expect(&mut r, SEQUENCE).unwrap();
        let mut c = Reader::new(outer);
        let before = c.position();
        expect(&mut c, SEQUENCE).unwrap();
        let tbs_der = &outer[before..c.position()];
        expect(&mut c, SEQUENCE).unwrap();
        let sig = expect(&mut c, BIT_STRING).unwrap();
        crate::crypto::ecdsa_p256_verify_sha256(&id.key.public_key(), &[tbs_der], &sig[1..]).unwrap();
        let again = DtlsIdentity::from_parts(&id.private_key_bytes(), der).unwrap();
        assert_eq!(again.fingerprint(), id.fingerprint());
        let other = DtlsIdentity::generate(&mut rng);
        assert_eq!(DtlsIdentity::from_parts(&other.private_key_bytes(), der).unwrap_err(), CertError::KeyMismatch);
    }

    #[test]
    fn walker_never_panics_on_truncation_or_mutation() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(8);
        let id = DtlsIdentity::generate(&mut rng);
        let der = id.certificate_der();
        for n in 0..der.len() {
            assert!(certificate_p256_key(&der[..n]).is_err());
        }
        let mut m = [0u8; MAX_CERT_LEN];
        for i in 0..der.len() {
            m[..der.len()].copy_from_slice(der);
            m[i] ^= 0xff;
            let _ = certificate_p256_key(&m[..der.len()]);
        }
    }

    #[test]
    fn fingerprint_text_round_trip() {
        let fp = Fingerprint { sha256: core::array::from_fn(|i| (i * 8 + 0x0a) as u8) };
        let mut buf = [0u8; FINGERPRINT_TEXT_LEN];
        let s = fp.format(&mut buf).unwrap();
        assert!(s.starts_with("sha-256 0A:12:1A:"));
        assert_eq!(s.len(), 103);
        assert_eq!(Fingerprint::parse(s).unwrap(), fp);
        assert_eq!(Fingerprint::parse(&s.to_ascii_lowercase().replace("sha-256", "SHA-256")).unwrap(), fp);
        assert!(Fingerprint::parse("sha-1 0A:12").is_err());
        assert!(Fingerprint::parse(&s[..s.len() - 3]).is_err());
        assert!(Fingerprint::parse(&[s, ":00"].concat()).is_err());
        assert!(fp.format(&mut [0u8; 10]).is_err());
    }
}
