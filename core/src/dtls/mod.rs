//! DTLS 1.2 (RFC 6347) with the DTLS-SRTP key exchange (RFC 5764), as WebRTC
//! uses it: both sides authenticate with self-signed ECDSA P-256
//! certificates whose SHA-256 fingerprints travel in SDP.
//!
//! Implemented:
//! - RFC 6347: record layer (epochs, 48-bit sequence numbers, a 64-entry
//!   anti-replay window, 4.1.2.6), handshake fragmentation and reassembly to
//!   a configurable MTU (4.2.3), flight retransmission with exponential
//!   back-off (4.2.4), stateless HelloVerifyRequest cookies (4.2.1).
//! - RFC 5246 handshake with mutual authentication: cipher suites
//!   TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 (RFC 5289) and
//!   TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 (RFC 7905); groups x25519
//!   and secp256r1 (RFC 8422); signature scheme ecdsa_secp256r1_sha256.
//! - Extensions: use_srtp (RFC 5764 4.1.1, every [`SrtpProfile`]),
//!   extended_master_secret (RFC 7627, required from the peer),
//!   renegotiation_info (RFC 5746, initial handshake only), supported_groups,
//!   ec_point_formats, signature_algorithms.
//! - The TLS PRF with SHA-256 (RFC 5246 5) and the keying material exporter
//!   (RFC 5705) giving the SRTP master keys (RFC 5764 4.2).
//! - Certificates ([`cert`]): a self-signed X.509 v3 certificate written
//!   without a heap, SDP fingerprints (RFC 8122), and a bounded DER walker
//!   that finds the peer's P-256 key.
//!
//! Left out: session resumption and tickets, renegotiation (refused with a
//! `no_renegotiation` alert), RSA and non-AEAD suites, certificate chains
//! beyond the first certificate (the fingerprint authenticates the peer, so
//! chains and validity dates are not checked), DTLS 1.0 and 1.3,
//! compression, PSK, and the record size limit extension.
//!
//! Use [`DtlsEndpoint`] (one per peer) through the crate's sans-IO contract.

pub mod cert;
mod endpoint;
mod prf;
mod queue;
mod record;
mod wire;

pub use cert::{CertError, DtlsIdentity, Fingerprint, MAX_CERT_LEN};
pub use endpoint::{
    DtlsConfig, DtlsEndpoint, DtlsEndpointN, DtlsError, DtlsEvent, DtlsFailure, DtlsRole, DtlsStats,
    DEFAULT_APP_BUFFER, DEFAULT_FLIGHT_BUFFER, DEFAULT_HANDSHAKE_BUFFER, DEFAULT_MTU, MAX_RECORD_PLAINTEXT, MIN_MTU,
};
pub use prf::{prf_sha256, EXPORTER_LABEL_DTLS_SRTP};
pub use record::CipherSuite;
pub use wire::{AlertDescription, NamedGroup};

pub use crate::srtp::{SrtpKeyingMaterial, SrtpProfile};

#[cfg(test)]
mod tests;
