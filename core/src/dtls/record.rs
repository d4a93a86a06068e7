//! DTLS 1.2 record protection (RFC 6347 4.1) with the two AEAD suites, and
//! the anti-replay window (RFC 6347 4.1.2.6).
//!
//! AES-128-GCM (RFC 5288 3): nonce = 4-byte implicit salt || 8-byte explicit
//! nonce carried in the record (we send epoch || sequence number).
//! ChaCha20-Poly1305 (RFC 7905 2): nonce = 12-byte IV XOR the padded
//! epoch || sequence number; nothing explicit on the wire.
//! Both: additional data = epoch || seq (8) || type || version || length of
//! the plaintext (RFC 5246 6.2.3.3, RFC 6347 4.1.2.1).

use crate::bytes::Writer;
use crate::crypto::{Aes128Gcm, ChaCha20Poly1305, AEAD_TAG_LEN};

/// Record header length: type, version, epoch, sequence number, length.
pub(crate) const RECORD_HEADER_LEN: usize = 13;
/// The DTLS 1.2 version on the wire.
pub(crate) const DTLS12: u16 = 0xfefd;
/// The DTLS 1.0 version (accepted in epoch-0 record headers).
pub(crate) const DTLS10: u16 = 0xfeff;

/// A cipher suite this implementation speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CipherSuite {
    /// TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 (0xC02B).
    EcdheEcdsaAes128GcmSha256,
    /// TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 (0xCCA9).
    EcdheEcdsaChaCha20Poly1305Sha256,
}

impl CipherSuite {
    pub const fn id(self) -> u16 {
        match self {
            CipherSuite::EcdheEcdsaAes128GcmSha256 => 0xc02b,
            CipherSuite::EcdheEcdsaChaCha20Poly1305Sha256 => 0xcca9,
        }
    }
    pub const fn from_id(id: u16) -> Option<Self> {
        match id {
            0xc02b => Some(CipherSuite::EcdheEcdsaAes128GcmSha256),
            0xcca9 => Some(CipherSuite::EcdheEcdsaChaCha20Poly1305Sha256),
            _ => None,
        }
    }
    pub(crate) const fn key_len(self) -> usize {
        match self {
            CipherSuite::EcdheEcdsaAes128GcmSha256 => 16,
            CipherSuite::EcdheEcdsaChaCha20Poly1305Sha256 => 32,
        }
    }
    pub(crate) const fn iv_len(self) -> usize {
        match self {
            CipherSuite::EcdheEcdsaAes128GcmSha256 => 4,
            CipherSuite::EcdheEcdsaChaCha20Poly1305Sha256 => 12,
        }
    }
    /// Bytes a protected record adds to its plaintext (explicit nonce + tag).
    pub const fn record_overhead(self) -> usize {
        match self {
            CipherSuite::EcdheEcdsaAes128GcmSha256 => 8 + AEAD_TAG_LEN,
            CipherSuite::EcdheEcdsaChaCha20Poly1305Sha256 => AEAD_TAG_LEN,
        }
    }
}

/// One direction's record protection state. The GCM variant is larger (the
/// expanded AES key schedule); there is no heap to box it into.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum RecordCipher {
    Gcm(Aes128Gcm, [u8; 4]),
    ChaCha(ChaCha20Poly1305, [u8; 12]),
}

fn seq_num(epoch: u16, seq: u64) -> [u8; 8] {
    (((epoch as u64) << 48) | (seq & 0xffff_ffff_ffff)).to_be_bytes()
}

fn aad(ctype: u8, version: u16, epoch: u16, seq: u64, len: usize) -> [u8; 13] {
    let mut a = [0u8; 13];
    a[..8].copy_from_slice(&seq_num(epoch, seq));
    a[8] = ctype;
    a[9..11].copy_from_slice(&version.to_be_bytes());
    a[11..13].copy_from_slice(&(len as u16).to_be_bytes());
    a
}

impl RecordCipher {
    /// From key and IV slices of the lengths `suite` needs (from the key block).
    pub(crate) fn new(suite: CipherSuite, key: &[u8], iv: &[u8]) -> Self {
        match suite {
            CipherSuite::EcdheEcdsaAes128GcmSha256 => {
                let mut k = [0u8; 16];
                k.copy_from_slice(&key[..16]);
                let mut s = [0u8; 4];
                s.copy_from_slice(&iv[..4]);
                RecordCipher::Gcm(Aes128Gcm::new(&k), s)
            }
            CipherSuite::EcdheEcdsaChaCha20Poly1305Sha256 => {
                let mut k = [0u8; 32];
                k.copy_from_slice(&key[..32]);
                let mut s = [0u8; 12];
                s.copy_from_slice(&iv[..12]);
                RecordCipher::ChaCha(ChaCha20Poly1305::new(&k), s)
            }
        }
    }

    pub(crate) fn overhead(&self) -> usize {
        match self {
            RecordCipher::Gcm(..) => 8 + AEAD_TAG_LEN,
            RecordCipher::ChaCha(..) => AEAD_TAG_LEN,
        }
    }

    fn chacha_nonce(iv: &[u8; 12], epoch: u16, seq: u64) -> [u8; 12] {
        let mut n = *iv;
        for (b, s) in n[4..].iter_mut().zip(seq_num(epoch, seq)) {
            *b ^= s;
        }
        n
    }

    /// Decrypt a record fragment (`fragment` as on the wire) into `out`;
    /// returns the plaintext length. `None` on a bad tag or bad length.
    pub(crate) fn open(
        &self,
        ctype: u8,
        version: u16,
        epoch: u16,
        seq: u64,
        fragment: &[u8],
        out: &mut [u8],
    ) -> Option<usize> {
        match self {
            RecordCipher::Gcm(c, salt) => {
                let ct_len = fragment.len().checked_sub(8 + AEAD_TAG_LEN)?;
                let mut nonce = [0u8; 12];
                nonce[..4].copy_from_slice(salt);
                nonce[4..].copy_from_slice(fragment.get(..8)?);
                let dst = out.get_mut(..ct_len)?;
                dst.copy_from_slice(fragment.get(8..8 + ct_len)?);
                let tag = fragment.get(8 + ct_len..)?;
                c.open(&nonce, &aad(ctype, version, epoch, seq, ct_len), dst, tag).ok()?;
                Some(ct_len)
            }
            RecordCipher::ChaCha(c, iv) => {
                let ct_len = fragment.len().checked_sub(AEAD_TAG_LEN)?;
                let nonce = Self::chacha_nonce(iv, epoch, seq);
                let dst = out.get_mut(..ct_len)?;
                dst.copy_from_slice(fragment.get(..ct_len)?);
                let tag = fragment.get(ct_len..)?;
                c.open(&nonce, &aad(ctype, version, epoch, seq, ct_len), dst, tag).ok()?;
                Some(ct_len)
            }
        }
    }
}

/// Write one record (header, then `payload_parts` concatenated, protected by
/// `cipher` if given) at the start of `out`. Returns the record length, or
/// `None` if `out` is too small.
pub(crate) fn write_record(
    out: &mut [u8],
    ctype: u8,
    epoch: u16,
    seq: u64,
    cipher: Option<&RecordCipher>,
    payload_parts: &[&[u8]],
) -> Option<usize> {
    let plain_len: usize = payload_parts.iter().map(|p| p.len()).sum();
    let overhead = cipher.map_or(0, |c| c.overhead());
    let frag_len = plain_len + overhead;
    if frag_len > u16::MAX as usize {
        return None;
    }
    let mut w = Writer::new(out);
    w.u8(ctype).ok()?;
    w.u16(DTLS12).ok()?;
    w.u16(epoch).ok()?;
    w.u48(seq).ok()?;
    w.u16(frag_len as u16).ok()?;
    let explicit = match cipher {
        Some(RecordCipher::Gcm(..)) => {
            w.bytes(&seq_num(epoch, seq)).ok()?;
            true
        }
        _ => false,
    };
    let data_start = w.len();
    for p in payload_parts {
        w.bytes(p).ok()?;
    }
    let (buf, end) = w.finish();
    let Some(cipher) = cipher else { return Some(end) };
    let tag_end = end + AEAD_TAG_LEN;
    let region = buf.get_mut(..tag_end)?;
    let a = aad(ctype, DTLS12, epoch, seq, plain_len);
    let (head, rest) = region.split_at_mut(data_start);
    let (data, tag_out) = rest.split_at_mut(plain_len);
    let tag = match cipher {
        RecordCipher::Gcm(c, salt) => {
            let mut nonce = [0u8; 12];
            nonce[..4].copy_from_slice(salt);
            nonce[4..].copy_from_slice(&head[RECORD_HEADER_LEN..RECORD_HEADER_LEN + 8]);
            debug_assert!(explicit);
            c.seal(&nonce, &a, data)
        }
        RecordCipher::ChaCha(c, iv) => c.seal(&RecordCipher::chacha_nonce(iv, epoch, seq), &a, data),
    };
    tag_out.copy_from_slice(&tag);
    Some(tag_end)
}

/// The 64-entry sliding anti-replay window of one epoch (RFC 6347 4.1.2.6,
/// RFC 4303 3.4.3): 16 bytes.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ReplayWindow {
    /// Highest sequence number accepted so far (valid if `any`).
    top: u64,
    /// Bit i set: `top - i` was received.
    bits: u64,
    any: bool,
}

impl ReplayWindow {
    /// `true` if `seq` is new and inside (or ahead of) the window.
    pub(crate) fn check(&self, seq: u64) -> bool {
        if !self.any || seq > self.top {
            return true;
        }
        let back = self.top - seq;
        back < 64 && self.bits & (1u64 << back) == 0
    }

    /// Record `seq` as received (after it authenticated).
    pub(crate) fn mark(&mut self, seq: u64) {
        if !self.any {
            self.any = true;
            self.top = seq;
            self.bits = 1;
        } else if seq > self.top {
            let shift = seq - self.top;
            self.bits = if shift >= 64 { 0 } else { self.bits << shift };
            self.bits |= 1;
            self.top = seq;
        } else {
            let back = self.top - seq;
            if back < 64 {
                self.bits |= 1u64 << back;
            }
        }
    }
}
