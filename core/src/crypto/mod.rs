//! The crypto provider layer: every primitive the protocols use, behind one
//! small API with a backend chosen at compile time.
//!
//! The default backend is RustCrypto (`rustcrypto.rs`). A backend is a module
//! exporting the same names; an alternative (e.g. `p256-cortex-m4`, or a
//! chip's hardware AES) is selected by feature in the `pub use` below. The
//! backend is compile-time rather than a runtime trait object so that every
//! protocol type stays concrete (no generic parameter leaks into `Peer` or
//! the FFI) and no vtable or heap is needed.
//!
//! Rules: no primitive is written here, only glue; every MAC/tag comparison
//! goes through [`ct_eq`] or an AEAD's own constant-time check.

mod rustcrypto;

pub use rustcrypto::*;

/// An AEAD open failed: the tag did not verify (or the input was too short).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AeadError;

/// A public key, point or signature from the peer is malformed or invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct InvalidKey;

/// Length of an AEAD tag for every AEAD here (GCM, ChaCha20-Poly1305).
pub const AEAD_TAG_LEN: usize = 16;

/// Constant-time equality of two byte strings (length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests;
