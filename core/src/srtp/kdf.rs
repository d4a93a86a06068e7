//! SRTP key derivation (RFC 3711 4.3, with the AES-CM PRF of 4.3.3 and a key
//! derivation rate of 0, as DTLS-SRTP uses): session keys from a master key
//! and salt. AEAD_AES_128_GCM derives the same way (RFC 7714 11) with its
//! 96-bit master salt padded on the right with zeros to 112 bits.

use super::{SrtpMasterKey, SrtpProfile};
use crate::crypto::Aes128;

/// Labels of RFC 3711 4.3.1 (and 4.3.2 for SRTCP).
pub(crate) const LABEL_RTP_ENCRYPTION: u8 = 0x00;
pub(crate) const LABEL_RTP_AUTH: u8 = 0x01;
pub(crate) const LABEL_RTP_SALT: u8 = 0x02;
pub(crate) const LABEL_RTCP_ENCRYPTION: u8 = 0x03;
pub(crate) const LABEL_RTCP_AUTH: u8 = 0x04;
pub(crate) const LABEL_RTCP_SALT: u8 = 0x05;

/// Length of the HMAC-SHA1 session authentication key (160 bits, RFC 3711 5.2).
pub const SRTP_AUTH_KEY_LEN: usize = 20;

/// The keys for one of SRTP or SRTCP in one direction.
///
/// Normally derived inside [`super::SrtpContextN::new`]; public so that
/// session keys obtained elsewhere (and the published test vectors, which
/// are given as session keys) can be used directly.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SrtpSessionKeys {
    /// Session encryption key.
    pub key: [u8; 16],
    /// Session salt: 14 bytes for AES-CM, the first 12 for AEAD_AES_128_GCM.
    pub salt: [u8; 14],
    /// Session authentication key (AES-CM with HMAC-SHA1 only).
    pub auth_key: [u8; SRTP_AUTH_KEY_LEN],
}

impl core::fmt::Debug for SrtpSessionKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SrtpSessionKeys(..)")
    }
}

impl SrtpSessionKeys {
    /// Derive the SRTP (`rtcp == false`) or SRTCP session keys from `master`.
    pub fn derive(profile: SrtpProfile, master: &SrtpMasterKey, rtcp: bool) -> Self {
        let prf = Aes128::new(&master.key);
        let mut salt = [0u8; 14];
        let n = profile.master_salt_len();
        salt[..n].copy_from_slice(&master.salt[..n]);
        let (lk, la, ls) = if rtcp {
            (LABEL_RTCP_ENCRYPTION, LABEL_RTCP_AUTH, LABEL_RTCP_SALT)
        } else {
            (LABEL_RTP_ENCRYPTION, LABEL_RTP_AUTH, LABEL_RTP_SALT)
        };
        let mut keys = SrtpSessionKeys { key: [0; 16], salt: [0; 14], auth_key: [0; SRTP_AUTH_KEY_LEN] };
        prf_output(&prf, &salt, lk, &mut keys.key);
        prf_output(&prf, &salt, ls, &mut keys.salt[..n]);
        if profile != SrtpProfile::AeadAes128Gcm {
            prf_output(&prf, &salt, la, &mut keys.auth_key);
        }
        keys
    }
}

/// Fill `out` with the AES-CM PRF output for `label` (RFC 3711 4.3.1 with
/// `index DIV kdr` = 0): the keystream of the master key at IV
/// `(master_salt XOR (label << 48)) * 2^16`.
pub(crate) fn prf_output(prf: &Aes128, master_salt: &[u8; 14], label: u8, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(master_salt);
    // The label sits just above the 48-bit `index DIV kdr`: byte 7 of 14.
    iv[7] ^= label;
    out.fill(0);
    prf.ctr_apply(&iv, out);
}
