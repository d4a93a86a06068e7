//! RustCrypto backend of the provider layer.

use super::{AeadError, InvalidKey, AEAD_TAG_LEN};
use aes::cipher::{BlockEncrypt, InnerIvInit, KeyInit, KeyIvInit, StreamCipher};
use aes_gcm::aead::AeadInPlace;
use hmac::{Hmac, Mac};
use rand_core::{CryptoRng, RngCore};
use sha2::Digest;

// ---------------------------------------------------------------- hashes

/// SHA-1 of the concatenation of `parts`.
pub fn sha1(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = sha1::Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// SHA-256 of the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// MD5 of the concatenation of `parts`. Only for protocols that mandate it
/// (the STUN long-term credential key, RFC 8489 9.2.2); never for new designs.
pub fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = md5::Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Incremental SHA-256 (cloneable: a TLS transcript hash is read mid-way).
#[derive(Clone, Debug, Default)]
pub struct Sha256 {
    inner: sha2::Sha256,
}

impl Sha256 {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
    }
    /// The digest so far; the hasher can keep going.
    pub fn peek(&self) -> [u8; 32] {
        self.inner.clone().finalize().into()
    }
    pub fn finish(self) -> [u8; 32] {
        self.inner.finalize().into()
    }
}

/// HMAC-SHA1 over the concatenation of `parts`.
pub fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    let mut m = <Hmac<sha1::Sha1> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// HMAC-SHA256 over the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// HMAC-SHA1 with the key schedule computed once (SRTP authenticates every
/// packet with the same session key).
#[derive(Clone)]
pub struct HmacSha1 {
    inner: Hmac<sha1::Sha1>,
}

impl core::fmt::Debug for HmacSha1 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("HmacSha1(..)")
    }
}

impl HmacSha1 {
    pub fn new(key: &[u8]) -> Self {
        HmacSha1 { inner: <Hmac<sha1::Sha1> as Mac>::new_from_slice(key).expect("HMAC takes any key length") }
    }
    /// The MAC of the concatenation of `parts`.
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; 20] {
        let mut m = self.inner.clone();
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }
}

const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// CRC-32 (ISO-HDLC, as STUN FINGERPRINT uses it).
pub fn crc32(data: &[u8]) -> u32 {
    CRC32.checksum(data)
}

/// CRC-32C (Castagnoli, as SCTP uses it).
pub fn crc32c(data: &[u8]) -> u32 {
    CRC32C.checksum(data)
}

/// CRC-32C over the concatenation of `parts` (SCTP checks a packet whose
/// checksum field reads as zero without copying it).
pub fn crc32c_parts(parts: &[&[u8]]) -> u32 {
    let mut d = CRC32C.digest();
    for p in parts {
        d.update(p);
    }
    d.finalize()
}

// ---------------------------------------------------------------- AES

/// AES-128 with its key schedule expanded once: block encryption and
/// counter mode (SRTP AES-CM, RFC 3711 4.1.1).
#[derive(Clone)]
pub struct Aes128 {
    cipher: aes::Aes128,
}

impl core::fmt::Debug for Aes128 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Aes128(..)")
    }
}

impl Aes128 {
    pub fn new(key: &[u8; 16]) -> Self {
        Aes128 { cipher: aes::Aes128::new(key.into()) }
    }
    pub fn encrypt_block(&self, block: &mut [u8; 16]) {
        self.cipher.encrypt_block(block.into());
    }
    /// XOR `data` with the AES-CTR keystream starting at counter block `iv`
    /// (128-bit big-endian counter).
    pub fn ctr_apply(&self, iv: &[u8; 16], data: &mut [u8]) {
        let core = ctr::CtrCore::<aes::Aes128, ctr::flavors::Ctr128BE>::inner_iv_init(self.cipher.clone(), iv.into());
        let mut c = ctr::cipher::StreamCipherCoreWrapper::from_core(core);
        c.apply_keystream(data);
    }
}

/// One-shot AES-128-CTR (key derivation and tests).
pub fn aes128_ctr(key: &[u8; 16], iv: &[u8; 16], data: &mut [u8]) {
    let mut c = ctr::Ctr128BE::<aes::Aes128>::new(key.into(), iv.into());
    c.apply_keystream(data);
}

// ---------------------------------------------------------------- AEADs

macro_rules! aead_type {
    ($(#[$doc:meta])* $name:ident, $inner:ty, $key:expr, $nonce:expr) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            inner: $inner,
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(concat!(stringify!($name), "(..)"))
            }
        }

        impl $name {
            pub const KEY_LEN: usize = $key;
            pub const NONCE_LEN: usize = $nonce;

            pub fn new(key: &[u8; $key]) -> Self {
                $name { inner: <$inner>::new(key.into()) }
            }
            /// Encrypt `buf` in place and return the detached tag.
            pub fn seal(&self, nonce: &[u8; $nonce], aad: &[u8], buf: &mut [u8]) -> [u8; AEAD_TAG_LEN] {
                self.inner
                    .encrypt_in_place_detached(nonce.into(), aad, buf)
                    .expect("in-place encryption of a bounded buffer cannot fail")
                    .into()
            }
            /// Verify `tag` and decrypt `buf` in place. On failure `buf` is
            /// left encrypted.
            pub fn open(&self, nonce: &[u8; $nonce], aad: &[u8], buf: &mut [u8], tag: &[u8]) -> Result<(), AeadError> {
                if tag.len() != AEAD_TAG_LEN {
                    return Err(AeadError);
                }
                self.inner.decrypt_in_place_detached(nonce.into(), aad, buf, tag.into()).map_err(|_| AeadError)
            }
            /// Encrypt `buf[..len]` in place and append the tag: returns
            /// `len + 16`, or `None` if `buf` has no room for the tag.
            pub fn seal_append(&self, nonce: &[u8; $nonce], aad: &[u8], buf: &mut [u8], len: usize) -> Option<usize> {
                let total = len.checked_add(AEAD_TAG_LEN)?;
                if total > buf.len() {
                    return None;
                }
                let (data, rest) = buf.split_at_mut(len);
                let tag = self.seal(nonce, aad, data);
                rest[..AEAD_TAG_LEN].copy_from_slice(&tag);
                Some(total)
            }
            /// Open `buf` = ciphertext || tag in place: returns the plaintext length.
            pub fn open_trailing(&self, nonce: &[u8; $nonce], aad: &[u8], buf: &mut [u8]) -> Result<usize, AeadError> {
                let n = buf.len().checked_sub(AEAD_TAG_LEN).ok_or(AeadError)?;
                let (data, tag) = buf.split_at_mut(n);
                self.open(nonce, aad, data, tag)?;
                Ok(n)
            }
        }
    };
}

aead_type!(
    /// AES-128-GCM (DTLS, SRTP AEAD_AES_128_GCM).
    Aes128Gcm, aes_gcm::Aes128Gcm, 16, 12
);
aead_type!(
    /// ChaCha20-Poly1305, IETF variant (RFC 8439): DTLS, netcode packets.
    ChaCha20Poly1305, chacha20poly1305::ChaCha20Poly1305, 32, 12
);
aead_type!(
    /// XChaCha20-Poly1305 (24-byte nonce): netcode connect tokens.
    XChaCha20Poly1305, chacha20poly1305::XChaCha20Poly1305, 32, 24
);

// ---------------------------------------------------------------- P-256

/// Uncompressed SEC1 point length for P-256 (`04 || X || Y`).
pub const P256_PUBLIC_LEN: usize = 65;
/// Longest DER-encoded ECDSA P-256 signature.
pub const P256_MAX_DER_SIG_LEN: usize = 72;

/// A long-term ECDSA P-256 key (the certificate key of a DTLS endpoint).
#[derive(Clone)]
pub struct EcdsaP256 {
    key: p256::ecdsa::SigningKey,
}

impl core::fmt::Debug for EcdsaP256 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("EcdsaP256(..)")
    }
}

/// A DER-encoded ECDSA signature in a fixed buffer.
#[derive(Clone, Copy, Debug)]
pub struct DerSignature {
    bytes: [u8; P256_MAX_DER_SIG_LEN],
    len: usize,
}

impl DerSignature {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl EcdsaP256 {
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        EcdsaP256 { key: p256::ecdsa::SigningKey::random(rng) }
    }
    /// From a 32-byte big-endian private scalar.
    pub fn from_bytes(secret: &[u8; 32]) -> Result<Self, InvalidKey> {
        p256::ecdsa::SigningKey::from_bytes(secret.into()).map(|key| EcdsaP256 { key }).map_err(|_| InvalidKey)
    }
    /// The 32-byte private scalar (to store the identity across restarts).
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes().into()
    }
    /// Uncompressed SEC1 public key.
    pub fn public_key(&self) -> [u8; P256_PUBLIC_LEN] {
        let p = self.key.verifying_key().to_encoded_point(false);
        let mut out = [0u8; P256_PUBLIC_LEN];
        out.copy_from_slice(p.as_bytes());
        out
    }
    /// Sign SHA-256(message) deterministically (RFC 6979), DER-encoded.
    pub fn sign_sha256(&self, parts: &[&[u8]]) -> DerSignature {
        self.sign_digest(&sha256(parts))
    }
    /// Sign a SHA-256 digest computed by the caller, DER-encoded.
    pub fn sign_digest(&self, digest: &[u8; 32]) -> DerSignature {
        use p256::ecdsa::signature::hazmat::PrehashSigner;
        let sig: p256::ecdsa::Signature =
            self.key.sign_prehash(digest).expect("a 32-byte digest is a valid P-256 prehash");
        let der = sig.to_der();
        let mut bytes = [0u8; P256_MAX_DER_SIG_LEN];
        let b = der.as_bytes();
        bytes[..b.len()].copy_from_slice(b);
        DerSignature { bytes, len: b.len() }
    }
}

/// Verify a DER-encoded ECDSA P-256 signature over SHA-256(parts).
pub fn ecdsa_p256_verify_sha256(public_sec1: &[u8], parts: &[&[u8]], der_sig: &[u8]) -> Result<(), InvalidKey> {
    ecdsa_p256_verify_digest(public_sec1, &sha256(parts), der_sig)
}

/// Verify a DER-encoded ECDSA P-256 signature over a SHA-256 digest.
pub fn ecdsa_p256_verify_digest(public_sec1: &[u8], digest: &[u8; 32], der_sig: &[u8]) -> Result<(), InvalidKey> {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(public_sec1).map_err(|_| InvalidKey)?;
    let sig = p256::ecdsa::Signature::from_der(der_sig).map_err(|_| InvalidKey)?;
    vk.verify_prehash(digest, &sig).map_err(|_| InvalidKey)
}

/// An ephemeral P-256 ECDH key (ECDHE in DTLS).
pub struct P256Ecdh {
    secret: p256::ecdh::EphemeralSecret,
}

impl core::fmt::Debug for P256Ecdh {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("P256Ecdh(..)")
    }
}

impl P256Ecdh {
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        P256Ecdh { secret: p256::ecdh::EphemeralSecret::random(rng) }
    }
    pub fn public_key(&self) -> [u8; P256_PUBLIC_LEN] {
        let p = p256::EncodedPoint::from(self.secret.public_key());
        let mut out = [0u8; P256_PUBLIC_LEN];
        out.copy_from_slice(p.as_bytes());
        out
    }
    /// The shared secret's X coordinate (the TLS premaster secret).
    pub fn diffie_hellman(&self, peer_sec1: &[u8]) -> Result<[u8; 32], InvalidKey> {
        let pk = p256::PublicKey::from_sec1_bytes(peer_sec1).map_err(|_| InvalidKey)?;
        let shared = self.secret.diffie_hellman(&pk);
        Ok((*shared.raw_secret_bytes()).into())
    }
}

// ---------------------------------------------------------------- X25519

/// An ephemeral X25519 key (ECDHE in DTLS).
pub struct X25519 {
    secret: x25519_dalek::StaticSecret,
}

impl core::fmt::Debug for X25519 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("X25519(..)")
    }
}

impl X25519 {
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        X25519 { secret: x25519_dalek::StaticSecret::from(b) }
    }
    pub fn from_bytes(secret: [u8; 32]) -> Self {
        X25519 { secret: x25519_dalek::StaticSecret::from(secret) }
    }
    pub fn public_key(&self) -> [u8; 32] {
        x25519_dalek::PublicKey::from(&self.secret).to_bytes()
    }
    /// Fails on an all-zero shared secret (a low-order peer point).
    pub fn diffie_hellman(&self, peer: &[u8; 32]) -> Result<[u8; 32], InvalidKey> {
        let s = self.secret.diffie_hellman(&x25519_dalek::PublicKey::from(*peer));
        if s.was_contributory() {
            Ok(s.to_bytes())
        } else {
            Err(InvalidKey)
        }
    }
}

// ---------------------------------------------------------------- RNG

/// The CSPRNG a state machine keeps for randomness it needs after
/// construction (transaction IDs, nonces, jitter): ChaCha20 seeded once from
/// the caller's `CryptoRng`. Randomness still comes from the caller; this
/// only saves threading an `&mut rng` through every `poll_*` call.
#[derive(Clone)]
pub struct Rng {
    inner: rand_chacha::ChaCha20Rng,
}

impl core::fmt::Debug for Rng {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Rng(..)")
    }
}

impl Rng {
    /// Seed from the caller's generator.
    pub fn from_rng<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        Self::from_seed(seed)
    }
    /// From a 32-byte seed (tests and simulations: same seed, same run).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        use rand_core::SeedableRng;
        Rng { inner: rand_chacha::ChaCha20Rng::from_seed(seed) }
    }
}

impl RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        self.inner.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.inner.fill_bytes(dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.inner.try_fill_bytes(dest)
    }
}

impl CryptoRng for Rng {}
