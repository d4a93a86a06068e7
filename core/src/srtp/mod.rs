//! SRTP and SRTCP (RFC 3711, RFC 7714) for DTLS-SRTP (RFC 5764).
//!
//! Implemented: the protection profiles SRTP_AES128_CM_HMAC_SHA1_80,
//! SRTP_AES128_CM_HMAC_SHA1_32 (32-bit tag on SRTP, 80-bit on SRTCP) and
//! SRTP_AEAD_AES_128_GCM; key derivation with the AES-CM PRF and key
//! derivation rate 0 (RFC 3711 4.3, RFC 7714 11); the packet index and
//! rollover counter estimate (RFC 3711 3.3.1, appendix A); the replay list
//! as a [`REPLAY_WINDOW`]-packet bitmap (3.3.2); SRTCP with its 31-bit index
//! and E flag (3.4, RFC 7714 9), encrypted or authenticated only.
//!
//! Left out: MKI, key derivation rates other than 0, AES-256 and AES-192
//! profiles, NULL ciphers, RFC 6904 header extension encryption, and
//! re-keying (a new context is built for new keys).
//!
//! Every operation works in place in the caller's buffer: `protect_*`
//! encrypts the payload and appends the trailer, `unprotect_*` verifies the
//! tag (constant time) and decrypts. Session keys are expanded once, when
//! the context is built.
//!
//! ```
//! use tinyrtc::srtp::{SrtpContext, SrtpMasterKey, SrtpProfile, SRTP_MAX_OVERHEAD};
//! let master = SrtpMasterKey { key: [7; 16], salt: [9; 14] };
//! let mut tx = SrtpContext::new(SrtpProfile::Aes128CmSha1_80, &master);
//! let mut rx = SrtpContext::new(SrtpProfile::Aes128CmSha1_80, &master);
//! let rtp = [0x80, 0x60, 0, 1, 0, 0, 0, 0, 0xca, 0xfe, 0xba, 0xbe, 1, 2, 3];
//! let mut buf = [0u8; 15 + SRTP_MAX_OVERHEAD];
//! buf[..15].copy_from_slice(&rtp);
//! let n = tx.protect_rtp(&mut buf, rtp.len()).unwrap();
//! let m = rx.unprotect_rtp(&mut buf[..n]).unwrap();
//! assert_eq!(&buf[..m], &rtp);
//! ```

mod context;
mod kdf;
mod profile;
mod replay;
pub mod wire;

pub use context::{
    SrtpContext, SrtpContextN, SrtpError, SrtpStats, DEFAULT_STREAMS, SRTCP_MAX_OVERHEAD, SRTP_MAX_OVERHEAD,
};
pub use kdf::{SrtpSessionKeys, SRTP_AUTH_KEY_LEN};
pub use profile::{SrtpKeyingMaterial, SrtpMasterKey, SrtpProfile};
pub use replay::REPLAY_WINDOW;

#[cfg(test)]
mod tests;
