//! One direction of SRTP and SRTCP protection (RFC 3711 3, 4; RFC 7714 7-9):
//! session keys expanded once, a bounded table of per-SSRC state, and
//! protect/unprotect in place in the caller's buffer.

use super::kdf::SrtpSessionKeys;
use super::replay::{estimate_index, ReplayWindow};
use super::wire::{rtcp_sender_ssrc, RtpHeader, RTCP_HEADER_LEN, SRTCP_E_FLAG, SRTCP_INDEX_LEN, SRTCP_INDEX_MAX};
use super::{SrtpMasterKey, SrtpProfile};
use crate::crypto::{ct_eq, Aes128, Aes128Gcm, HmacSha1, AEAD_TAG_LEN};

/// Default number of SSRCs one [`SrtpContext`] tracks (audio, video, their
/// retransmission streams, and RTCP-only senders, with room to spare).
pub const DEFAULT_STREAMS: usize = 8;

/// Most bytes `protect_rtp` adds to a packet (the AEAD tag of
/// AEAD_AES_128_GCM): leave this much room after the RTP packet.
pub const SRTP_MAX_OVERHEAD: usize = 16;
/// Most bytes `protect_rtcp` adds to a packet (`E || index` and a 16-byte
/// AEAD tag).
pub const SRTCP_MAX_OVERHEAD: usize = SRTCP_INDEX_LEN + 16;

/// Bytes of HMAC-SHA1 tag on SRTCP for both AES-CM profiles (RFC 5764 4.1.2:
/// SRTCP keeps the 80-bit tag even with SRTP_AES128_CM_HMAC_SHA1_32).
const SRTCP_HMAC_TAG_LEN: usize = 10;

/// Why a packet could not be protected or unprotected. On error the
/// caller's buffer holds unspecified bytes and the packet must be dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SrtpError {
    /// The buffer has no room for the tag (and SRTCP index) after the
    /// packet, or `len` exceeds the buffer.
    BufferTooSmall,
    /// The packet ends inside its header, tag or SRTCP trailer.
    Truncated,
    /// Not an RTP/RTCP version 2 packet.
    Malformed,
    /// The authentication tag did not verify (forged, corrupted, wrong key,
    /// or a rollover counter guess that does not match the sender's).
    AuthFailed,
    /// Already received, or too old for the replay window.
    Replayed,
    /// A new SSRC arrived and the stream table is full.
    TooManyStreams,
    /// This key has protected 2^48 SRTP or 2^31 SRTCP packets of one SSRC:
    /// the session must be re-keyed.
    KeyExhausted,
}

impl From<crate::bytes::Truncated> for SrtpError {
    fn from(_: crate::bytes::Truncated) -> Self {
        SrtpError::Truncated
    }
}

impl core::fmt::Display for SrtpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SrtpError::BufferTooSmall => "buffer too small for the SRTP trailer",
            SrtpError::Truncated => "SRTP packet truncated",
            SrtpError::Malformed => "not an RTP/RTCP version 2 packet",
            SrtpError::AuthFailed => "SRTP authentication failed",
            SrtpError::Replayed => "SRTP packet replayed or too old",
            SrtpError::TooManyStreams => "SRTP stream table full",
            SrtpError::KeyExhausted => "SRTP key exhausted, re-key",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SrtpError {}

/// Counters of one context, in packets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SrtpStats {
    pub rtp_protected: u64,
    pub rtcp_protected: u64,
    pub rtp_unprotected: u64,
    pub rtcp_unprotected: u64,
    /// Rejected by the tag check.
    pub auth_failures: u64,
    /// Rejected by the replay check.
    pub replayed: u64,
    /// Rejected for any other reason (truncated, malformed, table full...).
    pub other_errors: u64,
}

/// The cipher and authentication state for SRTP or SRTCP, keys expanded once.
#[derive(Clone)]
enum Transform {
    AesCmHmacSha1 { cipher: Aes128, salt: [u8; 14], auth: HmacSha1 },
    AesGcm { aead: Aes128Gcm, salt: [u8; 12] },
}

impl Transform {
    fn new(profile: SrtpProfile, keys: &SrtpSessionKeys) -> Self {
        match profile {
            SrtpProfile::AeadAes128Gcm => {
                let mut salt = [0u8; 12];
                salt.copy_from_slice(&keys.salt[..12]);
                Transform::AesGcm { aead: Aes128Gcm::new(&keys.key), salt }
            }
            SrtpProfile::Aes128CmSha1_80 | SrtpProfile::Aes128CmSha1_32 => Transform::AesCmHmacSha1 {
                cipher: Aes128::new(&keys.key),
                salt: keys.salt,
                auth: HmacSha1::new(&keys.auth_key),
            },
        }
    }
}

/// AES-CM IV (RFC 3711 4.1.1): `(salt * 2^16) XOR (SSRC * 2^64) XOR (index * 2^16)`.
fn cm_iv(salt: &[u8; 14], ssrc: u32, index: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[4..8].copy_from_slice(&ssrc.to_be_bytes());
    iv[8..14].copy_from_slice(&index.to_be_bytes()[2..]);
    for (v, s) in iv.iter_mut().zip(salt) {
        *v ^= s;
    }
    iv
}

/// AEAD IV for SRTP (RFC 7714 8.1): `(00 00 || SSRC || ROC || SEQ) XOR salt`.
fn gcm_rtp_iv(salt: &[u8; 12], ssrc: u32, index: u64) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
    iv[6..12].copy_from_slice(&index.to_be_bytes()[2..]);
    for (v, s) in iv.iter_mut().zip(salt) {
        *v ^= s;
    }
    iv
}

/// AEAD IV for SRTCP (RFC 7714 9.1): `(00 00 || SSRC || 00 00 || 0 || index) XOR salt`.
fn gcm_rtcp_iv(salt: &[u8; 12], ssrc: u32, index: u32) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
    iv[8..12].copy_from_slice(&index.to_be_bytes());
    for (v, s) in iv.iter_mut().zip(salt) {
        *v ^= s;
    }
    iv
}

/// Per-SSRC state.
#[derive(Debug, Clone, Copy)]
struct Stream {
    ssrc: u32,
    /// SRTP: highest packet index (ROC and highest sequence number) and,
    /// on the receiving side, the replay bitmap.
    rtp: ReplayWindow,
    /// SRTCP receiving side: highest index and replay bitmap.
    rtcp: ReplayWindow,
    /// SRTCP sending side: the next SRTCP index.
    rtcp_next: u32,
}

impl Stream {
    const EMPTY: Stream = Stream { ssrc: 0, rtp: ReplayWindow::EMPTY, rtcp: ReplayWindow::EMPTY, rtcp_next: 0 };
}

/// SRTP and SRTCP protection for one direction with one master key, for up
/// to `STREAMS` SSRCs.
///
/// A sending context protects (`protect_rtp`, `protect_rtcp`); a receiving
/// context unprotects. A DTLS-SRTP endpoint holds one of each, keyed from
/// [`super::SrtpKeyingMaterial::local_remote`].
///
/// Memory: the expanded keys (two AES key schedules, plus two HMAC-SHA1
/// states or two GHASH keys) and 80 bytes per stream (`x86_64`); see the README for
/// `size_of::<SrtpContext>()`. No allocation, no per-packet key expansion,
/// no copy of the payload.
///
/// Not supported: MKI, key derivation rate other than 0, RFC 6904 header
/// extension encryption, and replay protection on the sending side (the
/// caller must not protect two different packets with the same SSRC and
/// sequence number; doing so reuses keystream).
#[derive(Clone)]
pub struct SrtpContextN<const STREAMS: usize> {
    profile: SrtpProfile,
    rtp: Transform,
    rtcp: Transform,
    encrypt_rtcp: bool,
    streams: [Stream; STREAMS],
    used: usize,
    stats: SrtpStats,
}

/// An [`SrtpContextN`] with room for [`DEFAULT_STREAMS`] SSRCs.
pub type SrtpContext = SrtpContextN<DEFAULT_STREAMS>;

impl<const STREAMS: usize> core::fmt::Debug for SrtpContextN<STREAMS> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SrtpContext")
            .field("profile", &self.profile)
            .field("streams", &self.used)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<const STREAMS: usize> SrtpContextN<STREAMS> {
    /// A context for one direction: derives the SRTP and SRTCP session keys
    /// from `master` (RFC 3711 4.3, kdr 0) and expands them once.
    pub fn new(profile: SrtpProfile, master: &SrtpMasterKey) -> Self {
        let rtp = SrtpSessionKeys::derive(profile, master, false);
        let rtcp = SrtpSessionKeys::derive(profile, master, true);
        Self::from_session_keys(profile, &rtp, &rtcp)
    }

    /// A context from session keys derived elsewhere (or given by a test vector).
    pub fn from_session_keys(profile: SrtpProfile, rtp: &SrtpSessionKeys, rtcp: &SrtpSessionKeys) -> Self {
        SrtpContextN {
            profile,
            rtp: Transform::new(profile, rtp),
            rtcp: Transform::new(profile, rtcp),
            encrypt_rtcp: true,
            streams: [Stream::EMPTY; STREAMS],
            used: 0,
            stats: SrtpStats::default(),
        }
    }

    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    pub fn stats(&self) -> SrtpStats {
        self.stats
    }

    /// Number of SSRCs in the stream table.
    pub fn stream_count(&self) -> usize {
        self.used
    }

    /// Forget an SSRC (e.g. after an RTCP BYE), freeing its slot. Returns
    /// whether it was known.
    pub fn remove_stream(&mut self, ssrc: u32) -> bool {
        match self.find(ssrc) {
            Some(i) => {
                self.used -= 1;
                self.streams[i] = self.streams[self.used];
                true
            }
            None => false,
        }
    }

    /// Whether `protect_rtcp` encrypts (sets the E flag). On by default;
    /// RFC 3711 3.4 makes SRTCP encryption optional, authentication is
    /// always applied. Unprotect accepts both forms.
    pub fn set_rtcp_encryption(&mut self, encrypt: bool) {
        self.encrypt_rtcp = encrypt;
    }

    fn find(&self, ssrc: u32) -> Option<usize> {
        self.streams.get(..self.used)?.iter().position(|s| s.ssrc == ssrc)
    }

    fn find_or_insert(&mut self, ssrc: u32) -> Result<usize, SrtpError> {
        if let Some(i) = self.find(ssrc) {
            return Ok(i);
        }
        let i = self.used;
        let slot = self.streams.get_mut(i).ok_or(SrtpError::TooManyStreams)?;
        *slot = Stream { ssrc, ..Stream::EMPTY };
        self.used += 1;
        Ok(i)
    }

    fn count_error(&mut self, e: SrtpError) -> SrtpError {
        match e {
            SrtpError::AuthFailed => self.stats.auth_failures += 1,
            SrtpError::Replayed => self.stats.replayed += 1,
            _ => self.stats.other_errors += 1,
        }
        e
    }

    /// Protect the RTP packet `buf[..len]` in place: encrypt its payload and
    /// append the tag. Returns the SRTP packet length (`len` plus
    /// [`SrtpProfile::rtp_tag_len`], at most [`SRTP_MAX_OVERHEAD`]).
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let r = self.protect_rtp_inner(buf, len);
        match r {
            Ok(_) => self.stats.rtp_protected += 1,
            Err(_) => self.stats.other_errors += 1,
        }
        r
    }

    fn protect_rtp_inner(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let hdr = RtpHeader::parse(buf.get(..len).ok_or(SrtpError::BufferTooSmall)?)?;
        let tag_len = self.profile.rtp_tag_len();
        let total = len + tag_len;
        if total > buf.len() {
            return Err(SrtpError::BufferTooSmall);
        }
        let slot = self.find_or_insert(hdr.ssrc)?;
        let stream = &mut self.streams[slot];
        let index = match estimate_index(stream.rtp.top(), hdr.sequence_number) {
            Some(i) => i,
            // A sequence number from before index 0: use ROC 0.
            None if stream.rtp.top().is_some_and(|t| t >> 16 == 0) => u64::from(hdr.sequence_number),
            None => return Err(SrtpError::KeyExhausted),
        };
        let (packet, trailer) = buf.split_at_mut(len);
        let (header, payload) = packet.split_at_mut(hdr.header_len);
        match &self.rtp {
            Transform::AesCmHmacSha1 { cipher, salt, auth } => {
                cipher.ctr_apply(&cm_iv(salt, hdr.ssrc, index), payload);
                let roc = ((index >> 16) as u32).to_be_bytes();
                let tag = auth.mac(&[header, payload, &roc]);
                trailer[..tag_len].copy_from_slice(&tag[..tag_len]);
            }
            Transform::AesGcm { aead, salt } => {
                let tag = aead.seal(&gcm_rtp_iv(salt, hdr.ssrc, index), header, payload);
                trailer[..AEAD_TAG_LEN].copy_from_slice(&tag);
            }
        }
        stream.rtp.advance(index);
        Ok(total)
    }

    /// Verify and decrypt the SRTP packet `packet` in place (the whole
    /// slice is the received datagram). Returns the RTP packet length: the
    /// plaintext packet is `packet[..n]`.
    pub fn unprotect_rtp(&mut self, packet: &mut [u8]) -> Result<usize, SrtpError> {
        match self.unprotect_rtp_inner(packet) {
            Ok(n) => {
                self.stats.rtp_unprotected += 1;
                Ok(n)
            }
            Err(e) => Err(self.count_error(e)),
        }
    }

    fn unprotect_rtp_inner(&mut self, packet: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.profile.rtp_tag_len();
        let body_len = packet.len().checked_sub(tag_len).ok_or(SrtpError::Truncated)?;
        let (body, tag) = packet.split_at_mut(body_len);
        let hdr = RtpHeader::parse(body)?;
        let slot = self.find(hdr.ssrc);
        if slot.is_none() && self.used >= STREAMS {
            return Err(SrtpError::TooManyStreams);
        }
        let window = slot.map_or(ReplayWindow::EMPTY, |i| self.streams[i].rtp);
        let index = estimate_index(window.top(), hdr.sequence_number).ok_or(SrtpError::Replayed)?;
        window.check(index)?;
        let (header, payload) = body.split_at_mut(hdr.header_len);
        match &self.rtp {
            Transform::AesCmHmacSha1 { cipher, salt, auth } => {
                let roc = ((index >> 16) as u32).to_be_bytes();
                let expected = auth.mac(&[header, payload, &roc]);
                if !ct_eq(&expected[..tag_len], tag) {
                    return Err(SrtpError::AuthFailed);
                }
                cipher.ctr_apply(&cm_iv(salt, hdr.ssrc, index), payload);
            }
            Transform::AesGcm { aead, salt } => {
                aead.open(&gcm_rtp_iv(salt, hdr.ssrc, index), header, payload, tag)
                    .map_err(|_| SrtpError::AuthFailed)?;
            }
        }
        let slot = match slot {
            Some(i) => i,
            None => self.find_or_insert(hdr.ssrc)?,
        };
        self.streams[slot].rtp.record(index);
        Ok(body_len)
    }

    /// Protect the RTCP (compound) packet `buf[..len]` in place: encrypt
    /// everything after the first 8 bytes (unless disabled with
    /// [`Self::set_rtcp_encryption`]), append `E || SRTCP index` and the tag.
    /// Returns the SRTCP packet length (at most `len + SRTCP_MAX_OVERHEAD`).
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let r = self.protect_rtcp_inner(buf, len);
        match r {
            Ok(_) => self.stats.rtcp_protected += 1,
            Err(_) => self.stats.other_errors += 1,
        }
        r
    }

    fn protect_rtcp_inner(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let ssrc = rtcp_sender_ssrc(buf.get(..len).ok_or(SrtpError::BufferTooSmall)?)?;
        let total = len + self.profile.srtcp_trailer_len();
        if total > buf.len() {
            return Err(SrtpError::BufferTooSmall);
        }
        let slot = self.find_or_insert(ssrc)?;
        let index = self.streams[slot].rtcp_next;
        if index > SRTCP_INDEX_MAX {
            return Err(SrtpError::KeyExhausted);
        }
        let encrypt = self.encrypt_rtcp;
        let word = (index | if encrypt { SRTCP_E_FLAG } else { 0 }).to_be_bytes();
        let (packet, trailer) = buf.split_at_mut(len);
        match &self.rtcp {
            Transform::AesCmHmacSha1 { cipher, salt, auth } => {
                if encrypt {
                    cipher.ctr_apply(&cm_iv(salt, ssrc, u64::from(index)), &mut packet[RTCP_HEADER_LEN..]);
                }
                trailer[..SRTCP_INDEX_LEN].copy_from_slice(&word);
                let tag = auth.mac(&[packet, &word]);
                trailer[SRTCP_INDEX_LEN..SRTCP_INDEX_LEN + SRTCP_HMAC_TAG_LEN]
                    .copy_from_slice(&tag[..SRTCP_HMAC_TAG_LEN]);
            }
            Transform::AesGcm { aead, salt } => {
                let iv = gcm_rtcp_iv(salt, ssrc, index);
                let tag = if encrypt {
                    // AAD: the clear header, then `E || index` (RFC 7714 9.2).
                    let (header, body) = packet.split_at_mut(RTCP_HEADER_LEN);
                    let mut aad = [0u8; RTCP_HEADER_LEN + SRTCP_INDEX_LEN];
                    aad[..RTCP_HEADER_LEN].copy_from_slice(header);
                    aad[RTCP_HEADER_LEN..].copy_from_slice(&word);
                    aead.seal(&iv, &aad, body)
                } else {
                    // AAD: the whole packet, then `E || index` (RFC 7714 9.3);
                    // staged contiguously where the tag will go.
                    let (packet_and_word, _) = buf.split_at_mut(len + SRTCP_INDEX_LEN);
                    packet_and_word[len..].copy_from_slice(&word);
                    aead.seal(&iv, packet_and_word, &mut [])
                };
                buf[len..len + AEAD_TAG_LEN].copy_from_slice(&tag);
                buf[len + AEAD_TAG_LEN..total].copy_from_slice(&word);
            }
        }
        self.streams[slot].rtcp_next = index + 1;
        Ok(total)
    }

    /// Verify and (if its E flag is set) decrypt the SRTCP packet `packet`
    /// in place. Returns the RTCP packet length: the plaintext is `packet[..n]`.
    pub fn unprotect_rtcp(&mut self, packet: &mut [u8]) -> Result<usize, SrtpError> {
        match self.unprotect_rtcp_inner(packet) {
            Ok(n) => {
                self.stats.rtcp_unprotected += 1;
                Ok(n)
            }
            Err(e) => Err(self.count_error(e)),
        }
    }

    fn unprotect_rtcp_inner(&mut self, packet: &mut [u8]) -> Result<usize, SrtpError> {
        let body_len = packet.len().checked_sub(self.profile.srtcp_trailer_len()).ok_or(SrtpError::Truncated)?;
        let (body, trailer) = packet.split_at_mut(body_len);
        let ssrc = rtcp_sender_ssrc(body)?;
        // `E || index` precedes the HMAC tag but follows the AEAD tag.
        let word_at = match self.rtcp {
            Transform::AesCmHmacSha1 { .. } => 0,
            Transform::AesGcm { .. } => AEAD_TAG_LEN,
        };
        let mut word = [0u8; SRTCP_INDEX_LEN];
        word.copy_from_slice(&trailer[word_at..word_at + SRTCP_INDEX_LEN]);
        let e_and_index = u32::from_be_bytes(word);
        let encrypted = e_and_index & SRTCP_E_FLAG != 0;
        let index = e_and_index & SRTCP_INDEX_MAX;
        let slot = self.find(ssrc);
        if slot.is_none() && self.used >= STREAMS {
            return Err(SrtpError::TooManyStreams);
        }
        let window = slot.map_or(ReplayWindow::EMPTY, |i| self.streams[i].rtcp);
        window.check(u64::from(index))?;
        match &self.rtcp {
            Transform::AesCmHmacSha1 { cipher, salt, auth } => {
                let expected = auth.mac(&[body, &word]);
                if !ct_eq(&expected[..SRTCP_HMAC_TAG_LEN], &trailer[SRTCP_INDEX_LEN..]) {
                    return Err(SrtpError::AuthFailed);
                }
                if encrypted {
                    cipher.ctr_apply(&cm_iv(salt, ssrc, u64::from(index)), &mut body[RTCP_HEADER_LEN..]);
                }
            }
            Transform::AesGcm { aead, salt } => {
                let iv = gcm_rtcp_iv(salt, ssrc, index);
                let mut tag = [0u8; AEAD_TAG_LEN];
                tag.copy_from_slice(&trailer[..AEAD_TAG_LEN]);
                if encrypted {
                    let (header, rest) = body.split_at_mut(RTCP_HEADER_LEN);
                    let mut aad = [0u8; RTCP_HEADER_LEN + SRTCP_INDEX_LEN];
                    aad[..RTCP_HEADER_LEN].copy_from_slice(header);
                    aad[RTCP_HEADER_LEN..].copy_from_slice(&word);
                    aead.open(&iv, &aad, rest, &tag).map_err(|_| SrtpError::AuthFailed)?;
                } else {
                    // Stage `packet || E || index` contiguously over the tag.
                    let (packet_and_word, _) = packet.split_at_mut(body_len + SRTCP_INDEX_LEN);
                    packet_and_word[body_len..].copy_from_slice(&word);
                    aead.open(&iv, packet_and_word, &mut [], &tag).map_err(|_| SrtpError::AuthFailed)?;
                }
            }
        }
        let slot = match slot {
            Some(i) => i,
            None => self.find_or_insert(ssrc)?,
        };
        self.streams[slot].rtcp.record(u64::from(index));
        Ok(body_len)
    }
}
