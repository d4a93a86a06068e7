//! SRTP protection profiles negotiated by DTLS `use_srtp` (RFC 5764 4.1.2,
//! RFC 7714 14.2), with the key material each one takes from the exporter.

/// An SRTP protection profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SrtpProfile {
    /// SRTP_AES128_CM_HMAC_SHA1_80 (0x0001).
    Aes128CmSha1_80,
    /// SRTP_AES128_CM_HMAC_SHA1_32 (0x0002).
    Aes128CmSha1_32,
    /// SRTP_AEAD_AES_128_GCM (0x0007).
    AeadAes128Gcm,
}

impl SrtpProfile {
    /// Every profile, in our order of preference.
    pub const ALL: [SrtpProfile; 3] =
        [SrtpProfile::AeadAes128Gcm, SrtpProfile::Aes128CmSha1_80, SrtpProfile::Aes128CmSha1_32];

    /// The two-byte identifier in the `use_srtp` extension.
    pub const fn id(self) -> u16 {
        match self {
            SrtpProfile::Aes128CmSha1_80 => 0x0001,
            SrtpProfile::Aes128CmSha1_32 => 0x0002,
            SrtpProfile::AeadAes128Gcm => 0x0007,
        }
    }

    pub const fn from_id(id: u16) -> Option<Self> {
        match id {
            0x0001 => Some(SrtpProfile::Aes128CmSha1_80),
            0x0002 => Some(SrtpProfile::Aes128CmSha1_32),
            0x0007 => Some(SrtpProfile::AeadAes128Gcm),
            _ => None,
        }
    }

    /// Master key length in bytes.
    pub const fn master_key_len(self) -> usize {
        16
    }

    /// Master salt length in bytes (112 bits for AES-CM, 96 for GCM).
    pub const fn master_salt_len(self) -> usize {
        match self {
            SrtpProfile::AeadAes128Gcm => 12,
            _ => 14,
        }
    }

    /// Exporter output length: both sides' keys, then both sides' salts
    /// (RFC 5764 4.2): 60 bytes for AES-CM, 56 for GCM.
    pub const fn keying_material_len(self) -> usize {
        2 * (self.master_key_len() + self.master_salt_len())
    }

    /// Bytes appended to each SRTP packet (auth tag or AEAD tag).
    pub const fn rtp_tag_len(self) -> usize {
        match self {
            SrtpProfile::Aes128CmSha1_80 => 10,
            SrtpProfile::Aes128CmSha1_32 => 4,
            SrtpProfile::AeadAes128Gcm => 16,
        }
    }

    /// Bytes appended to each SRTCP packet: the 4-byte `E || SRTCP index`
    /// and the tag (80-bit HMAC for both AES-CM profiles, RFC 5764 4.1.2;
    /// 16-byte AEAD tag for GCM).
    pub const fn srtcp_trailer_len(self) -> usize {
        4 + match self {
            SrtpProfile::Aes128CmSha1_80 | SrtpProfile::Aes128CmSha1_32 => 10,
            SrtpProfile::AeadAes128Gcm => 16,
        }
    }
}

/// One direction's master key and salt.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SrtpMasterKey {
    pub key: [u8; 16],
    /// The first `profile.master_salt_len()` bytes are used.
    pub salt: [u8; 14],
}

impl core::fmt::Debug for SrtpMasterKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SrtpMasterKey(..)")
    }
}

/// The exporter output split per RFC 5764 4.2: `client_write_key ||
/// server_write_key || client_write_salt || server_write_salt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SrtpKeyingMaterial {
    pub profile: SrtpProfile,
    pub client: SrtpMasterKey,
    pub server: SrtpMasterKey,
}

impl SrtpKeyingMaterial {
    /// Split exporter output; `None` if `material` is shorter than the profile needs.
    pub fn split(profile: SrtpProfile, material: &[u8]) -> Option<Self> {
        let k = profile.master_key_len();
        let s = profile.master_salt_len();
        if material.len() < profile.keying_material_len() {
            return None;
        }
        let mut client = SrtpMasterKey { key: [0; 16], salt: [0; 14] };
        let mut server = client;
        client.key.copy_from_slice(material.get(..k)?);
        server.key.copy_from_slice(material.get(k..2 * k)?);
        client.salt[..s].copy_from_slice(material.get(2 * k..2 * k + s)?);
        server.salt[..s].copy_from_slice(material.get(2 * k + s..2 * k + 2 * s)?);
        Some(SrtpKeyingMaterial { profile, client, server })
    }

    /// The keys this endpoint protects with and unprotects with, in that
    /// order: the client writes with the client keys (RFC 5764 4.2).
    pub fn local_remote(&self, is_client: bool) -> (&SrtpMasterKey, &SrtpMasterKey) {
        if is_client {
            (&self.client, &self.server)
        } else {
            (&self.server, &self.client)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_follows_rfc5764_layout() {
        let m: [u8; 60] = core::array::from_fn(|i| i as u8);
        let k = SrtpKeyingMaterial::split(SrtpProfile::Aes128CmSha1_80, &m).unwrap();
        assert_eq!(k.client.key[0], 0);
        assert_eq!(k.server.key[0], 16);
        assert_eq!(k.client.salt[0], 32);
        assert_eq!(k.server.salt[13], 59);
        let g = SrtpKeyingMaterial::split(SrtpProfile::AeadAes128Gcm, &m[..56]).unwrap();
        assert_eq!(g.server.salt[..12], m[44..56]);
        assert!(SrtpKeyingMaterial::split(SrtpProfile::AeadAes128Gcm, &m[..55]).is_none());
        for p in SrtpProfile::ALL {
            assert_eq!(SrtpProfile::from_id(p.id()), Some(p));
        }
    }
}
