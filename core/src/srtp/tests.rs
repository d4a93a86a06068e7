//! Published vectors (RFC 3711 appendix B, RFC 7714 sections 16 and 17,
//! libsrtp's `srtp_validate` and `srtp_validate_gcm` reference packets) and
//! behaviour tests (rollover, replay, tampering, limits).

extern crate std;

use super::kdf::{prf_output, LABEL_RTP_AUTH, LABEL_RTP_ENCRYPTION, LABEL_RTP_SALT};
use super::*;
use crate::crypto::Aes128;
use std::vec::Vec;

fn h(s: &str) -> Vec<u8> {
    let clean: std::string::String = s.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(clean).unwrap()
}

fn arr<const N: usize>(s: &str) -> [u8; N] {
    h(s).try_into().unwrap()
}

fn master(key: &str, salt: &str) -> SrtpMasterKey {
    let mut m = SrtpMasterKey { key: arr(key), salt: [0; 14] };
    let s = h(salt);
    m.salt[..s.len()].copy_from_slice(&s);
    m
}

/// Protect `plain` (RTP or RTCP) and return the protected bytes.
fn protect(ctx: &mut SrtpContext, plain: &[u8], rtcp: bool) -> Vec<u8> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + SRTCP_MAX_OVERHEAD, 0);
    let n = if rtcp { ctx.protect_rtcp(&mut buf, plain.len()) } else { ctx.protect_rtp(&mut buf, plain.len()) };
    buf.truncate(n.unwrap());
    buf
}

fn unprotect(ctx: &mut SrtpContext, wire: &[u8], rtcp: bool) -> Result<Vec<u8>, SrtpError> {
    let mut buf = wire.to_vec();
    let n = if rtcp { ctx.unprotect_rtcp(&mut buf)? } else { ctx.unprotect_rtp(&mut buf)? };
    buf.truncate(n);
    Ok(buf)
}

fn rtp_packet(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = std::vec![0x80, 0x60];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn rtcp_packet(ssrc: u32, body: &[u8]) -> Vec<u8> {
    let mut p = std::vec![0x80, 0xc9, 0, 1];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(body);
    p
}

// ------------------------------------------------------------ RFC 3711 B.2

#[test]
fn rfc3711_b2_aes_cm_keystream() {
    // Session key and (already shifted) salt of B.2; SSRC, ROC, SEQ all 0,
    // so the AES-CM IV is the salt and a zero payload encrypts to the keystream.
    let keys = SrtpSessionKeys {
        key: arr("2B7E151628AED2A6ABF7158809CF4F3C"),
        salt: arr("F0F1F2F3F4F5F6F7F8F9FAFBFCFD"),
        auth_key: [0; SRTP_AUTH_KEY_LEN],
    };
    let mut ctx = SrtpContext::from_session_keys(SrtpProfile::Aes128CmSha1_80, &keys, &keys);
    let blocks = 65282;
    let plain = rtp_packet(0, 0, &std::vec![0u8; blocks * 16]);
    let wire = protect(&mut ctx, &plain, false);
    let ks = &wire[12..12 + blocks * 16];
    assert_eq!(
        ks[..48],
        h("E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB 41E95B3BB0A2E8DD477901E4FCA894C0")
    );
    assert_eq!(
        ks[ks.len() - 48..],
        h("EC8CDF7398607CB0F2D21675EA9EA1E4 362B7C3C6773516318A077D7FC5073AE 6A2CC3787889374FBEB4C81B17BA6C44")
    );
}

// ------------------------------------------------------------ RFC 3711 B.3

#[test]
fn rfc3711_b3_key_derivation() {
    let m = master("E1F97A0D3E018BE0D64FA32C06DE4139", "0EC675AD498AFEEBB6960B3AABE6");
    let prf = Aes128::new(&m.key);
    let mut out = [0u8; 94];
    prf_output(&prf, &m.salt, LABEL_RTP_ENCRYPTION, &mut out[..16]);
    assert_eq!(out[..16], h("C61E7A93744F39EE10734AFE3FF7A087"));
    prf_output(&prf, &m.salt, LABEL_RTP_SALT, &mut out[..14]);
    assert_eq!(out[..14], h("30CBBC08863D8C85D49DB34A9AE1"));
    // B.3 lists 94 octets of auth key output to show the counter stepping.
    prf_output(&prf, &m.salt, LABEL_RTP_AUTH, &mut out);
    let auth = h("CEBE321F6FF7716B6FD4AB49AF256A15 6D38BAA48F0A0ACF3C34E2359E6CDBCE
                  E049646C43D9327AD175578EF7227098 6371C10C9A369AC2F94A8C5FBCDDDC25
                  6D6E919A48B610EF17C2041E47403576 6B68642C59BBFC2F34DB60DBDFB2");
    assert_eq!(out[..], auth[..]);

    let k = SrtpSessionKeys::derive(SrtpProfile::Aes128CmSha1_80, &m, false);
    assert_eq!(k.key[..], h("C61E7A93744F39EE10734AFE3FF7A087"));
    assert_eq!(k.salt[..], h("30CBBC08863D8C85D49DB34A9AE1"));
    assert_eq!(k.auth_key[..], auth[..20]);
}

// ------------------------------------------------------------ libsrtp srtp_validate

const LIBSRTP_KEY: &str = "e1f97a0d3e018be0d64fa32c06de4139";
const LIBSRTP_SALT: &str = "0ec675ad498afeebb6960b3aabe6";

#[test]
fn libsrtp_validate_aes_cm_hmac_sha1_80() {
    let m = master(LIBSRTP_KEY, LIBSRTP_SALT);
    let plain = h("800f1234decafbadcafebabe abababababababababababababababab");
    let cipher = h("800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 b78d6acc99ea179b8dbb");
    let rtcp_plain = h("81c8000bcafebabe abababababababababababababababab");
    let srtcp = h("81c8000bcafebabe 7128035be487b9bdbef89041f977a5a8 80000001 993e08cd54d6c1230798");

    let mut tx = SrtpContext::new(SrtpProfile::Aes128CmSha1_80, &m);
    assert_eq!(protect(&mut tx, &plain, false), cipher);
    // libsrtp numbers its first SRTCP packet 1; ours starts at 0 (RFC 3711 3.4).
    protect(&mut tx, &rtcp_packet(0xcafebabe, &[]), true);
    assert_eq!(protect(&mut tx, &rtcp_plain, true), srtcp);

    let mut rx = SrtpContext::new(SrtpProfile::Aes128CmSha1_80, &m);
    assert_eq!(unprotect(&mut rx, &cipher, false).unwrap(), plain);
    assert_eq!(unprotect(&mut rx, &srtcp, true).unwrap(), rtcp_plain);
    assert_eq!(unprotect(&mut rx, &cipher, false), Err(SrtpError::Replayed));
    assert_eq!(unprotect(&mut rx, &srtcp, true), Err(SrtpError::Replayed));
}

#[test]
fn libsrtp_reference_packet_with_32_bit_tag() {
    // Same keystream and HMAC as the 80-bit profile, tag truncated to 4 bytes;
    // SRTCP keeps the 80-bit tag.
    let m = master(LIBSRTP_KEY, LIBSRTP_SALT);
    let plain = h("800f1234decafbadcafebabe abababababababababababababababab");
    let cipher = h("800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 b78d6acc");
    let mut tx = SrtpContext::new(SrtpProfile::Aes128CmSha1_32, &m);
    assert_eq!(protect(&mut tx, &plain, false), cipher);
    protect(&mut tx, &rtcp_packet(0xcafebabe, &[]), true);
    let srtcp = protect(&mut tx, &h("81c8000bcafebabe abababababababababababababababab"), true);
    assert_eq!(srtcp, h("81c8000bcafebabe 7128035be487b9bdbef89041f977a5a8 80000001 993e08cd54d6c1230798"));
    let mut rx = SrtpContext::new(SrtpProfile::Aes128CmSha1_32, &m);
    assert_eq!(unprotect(&mut rx, &cipher, false).unwrap(), plain);
}

#[test]
fn libsrtp_validate_gcm() {
    // srtp_validate_gcm: master key and 96-bit master salt through the KDF.
    let m = master("000102030405060708090a0b0c0d0e0f", "a0a1a2a3a4a5a6a7a8a9aaab");
    let plain = h("800f1234decafbadcafebabe abababababababababababababababab");
    let cipher = h("800f1234decafbadcafebabe c5002ede04cfdd2eb91159e0880aa06e
                    d2976826f796b201df3131a127e8a392");
    let rtcp_plain = h("81c8000bcafebabe abababababababababababababababab");
    let srtcp = h("81c8000bcafebabe c98b8b5df0392a55852b6c21ac8e7025
                   c52c6fbea2b3b446ea31123ba88ce61e 80000001");
    let mut tx = SrtpContext::new(SrtpProfile::AeadAes128Gcm, &m);
    assert_eq!(protect(&mut tx, &plain, false), cipher);
    protect(&mut tx, &rtcp_packet(0xcafebabe, &[]), true);
    assert_eq!(protect(&mut tx, &rtcp_plain, true), srtcp);

    let mut rx = SrtpContext::new(SrtpProfile::AeadAes128Gcm, &m);
    assert_eq!(unprotect(&mut rx, &cipher, false).unwrap(), plain);
    assert_eq!(unprotect(&mut rx, &srtcp, true).unwrap(), rtcp_plain);
}

#[test]
fn gcm_ignores_salt_bytes_past_96_bits() {
    let a = master("000102030405060708090a0b0c0d0e0f", "a0a1a2a3a4a5a6a7a8a9aaab");
    let mut b = a;
    b.salt[12] = 0x55;
    b.salt[13] = 0x66;
    let plain = rtp_packet(1, 2, b"payload");
    let mut ta = SrtpContext::new(SrtpProfile::AeadAes128Gcm, &a);
    let mut tb = SrtpContext::new(SrtpProfile::AeadAes128Gcm, &b);
    assert_eq!(protect(&mut ta, &plain, false), protect(&mut tb, &plain, false));
}

// ------------------------------------------------------------ RFC 7714 16, 17

fn rfc7714_context() -> SrtpContext {
    // Sections 16 and 17 give session keys directly, the same for SRTP and SRTCP.
    let keys = SrtpSessionKeys {
        key: arr("000102030405060708090a0b0c0d0e0f"),
        salt: {
            let mut s = [0u8; 14];
            s[..12].copy_from_slice(&h("517569642070726f2071756f"));
            s
        },
        auth_key: [0; SRTP_AUTH_KEY_LEN],
    };
    SrtpContext::from_session_keys(SrtpProfile::AeadAes128Gcm, &keys, &keys)
}

const RFC7714_RTP: &str = "8040f17b8041f8d35501a0b2 47616c6c696120657374206f6d6e697320646976
                           69736120696e207061727465732074726573";
const RFC7714_RTCP: &str = "81c8000d4d617273 4e5450314e545032525450200000042a0000e9304c756e61
                            deadbeefdeadbeefdeadbeefdeadbeefdeadbeef";

#[test]
fn rfc7714_16_1_srtp_aead_aes_128_gcm() {
    let plain = h(RFC7714_RTP);
    let wire = h("8040f17b8041f8d35501a0b2 f24de3a3fb34de6cacba861c9d7e4bcabe633bd50d294e6f
                  42a5f47a51c7d19b36de3adf8833 899d7f27beb16a9152cf765ee4390cce");
    assert_eq!(protect(&mut rfc7714_context(), &plain, false), wire);
    assert_eq!(unprotect(&mut rfc7714_context(), &wire, false).unwrap(), plain);
}

/// Protect 0x5d4 throwaway SRTCP packets so the next one carries index 0x5d4.
fn at_srtcp_index_0x5d4(ctx: &mut SrtpContext) {
    for _ in 0..0x5d4 {
        protect(ctx, &rtcp_packet(0x4d617273, &[]), true);
    }
}

#[test]
fn rfc7714_17_1_srtcp_encrypted() {
    let plain = h(RFC7714_RTCP);
    let wire = h("81c8000d4d617273 63e94885dcdab67ca727d7662f6b7e997ff5c0f76c06f32d
                  c676a5f1730d6fda4ce09b4686303ded0bb9275bc84aa458
                  96cf4d2fc5abf87245d9eade 800005d4");
    let mut tx = rfc7714_context();
    at_srtcp_index_0x5d4(&mut tx);
    assert_eq!(protect(&mut tx, &plain, true), wire);
    assert_eq!(unprotect(&mut rfc7714_context(), &wire, true).unwrap(), plain);
}

#[test]
fn rfc7714_17_3_srtcp_authenticated_only() {
    let plain = h(RFC7714_RTCP);
    let wire = h("81c8000d4d6172734e5450314e545032525450200000042a0000e9304c756e61
                  deadbeefdeadbeefdeadbeefdeadbeefdeadbeef
                  841dd9683dd78ec92ae58790125f62b3 000005d4");
    let mut tx = rfc7714_context();
    tx.set_rtcp_encryption(false);
    at_srtcp_index_0x5d4(&mut tx);
    assert_eq!(protect(&mut tx, &plain, true), wire);
    let mut rx = rfc7714_context();
    assert_eq!(unprotect(&mut rx, &wire, true).unwrap(), plain);
    let mut bad = wire.clone();
    bad[20] ^= 1;
    assert_eq!(unprotect(&mut rfc7714_context(), &bad, true), Err(SrtpError::AuthFailed));
}

// ------------------------------------------------------------ behaviour

fn pair(profile: SrtpProfile) -> (SrtpContext, SrtpContext) {
    let m =
        SrtpMasterKey { key: core::array::from_fn(|i| i as u8 * 3), salt: core::array::from_fn(|i| 0x40 + i as u8) };
    (SrtpContext::new(profile, &m), SrtpContext::new(profile, &m))
}

#[test]
fn rollover_counter_across_sequence_wrap() {
    for profile in SrtpProfile::ALL {
        let (mut tx, mut rx) = pair(profile);
        let mut seq: u16 = 65530;
        for i in 0..20u32 {
            let plain = rtp_packet(seq, 0x1111, &i.to_be_bytes());
            let wire = protect(&mut tx, &plain, false);
            assert_eq!(unprotect(&mut rx, &wire, false).unwrap(), plain, "{profile:?} seq {seq}");
            seq = seq.wrapping_add(1);
        }
        // After the wrap the sender uses ROC 1: a fresh sender (ROC 0) for the
        // same sequence number produces a different packet that the receiver
        // rejects.
        let plain = rtp_packet(seq, 0x1111, b"x");
        let (mut fresh, _) = pair(profile);
        let with_roc0 = protect(&mut fresh, &plain, false);
        let with_roc1 = protect(&mut tx, &plain, false);
        assert_ne!(with_roc0, with_roc1);
        assert_eq!(unprotect(&mut rx, &with_roc0, false), Err(SrtpError::AuthFailed));
        assert_eq!(unprotect(&mut rx, &with_roc1, false).unwrap(), plain);
    }
}

#[test]
fn rollover_counter_is_authenticated_with_index_roc_times_2_16() {
    // Independent composition for AES-CM: after the wrap, seq 3 is encrypted
    // at index 65536 + 3 and the HMAC covers ROC = 1.
    let m = SrtpMasterKey { key: [1; 16], salt: [2; 14] };
    let mut tx = SrtpContext::new(SrtpProfile::Aes128CmSha1_80, &m);
    protect(&mut tx, &rtp_packet(65535, 9, b"a"), false);
    let plain = rtp_packet(3, 9, b"hello");
    let wire = protect(&mut tx, &plain, false);

    let k = SrtpSessionKeys::derive(SrtpProfile::Aes128CmSha1_80, &m, false);
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(&k.salt);
    for (b, x) in iv[4..8].iter_mut().zip(9u32.to_be_bytes()) {
        *b ^= x;
    }
    for (b, x) in iv[8..14].iter_mut().zip(&(65536u64 + 3).to_be_bytes()[2..]) {
        *b ^= x;
    }
    let mut expected = plain.clone();
    Aes128::new(&k.key).ctr_apply(&iv, &mut expected[12..]);
    let tag = crate::crypto::hmac_sha1(&k.auth_key, &[&expected, &1u32.to_be_bytes()]);
    expected.extend_from_slice(&tag[..10]);
    assert_eq!(wire, expected);
}

#[test]
fn replay_and_reordering() {
    for profile in SrtpProfile::ALL {
        let (mut tx, mut rx) = pair(profile);
        let wires: Vec<Vec<u8>> = (0..200u16).map(|s| protect(&mut tx, &rtp_packet(s, 5, b"data"), false)).collect();
        // In order up to 150, then late ones inside and outside the window.
        for w in &wires[..150] {
            unprotect(&mut rx, w, false).unwrap();
        }
        assert_eq!(unprotect(&mut rx, &wires[149], false), Err(SrtpError::Replayed));
        assert_eq!(unprotect(&mut rx, &wires[10], false), Err(SrtpError::Replayed));
        unprotect(&mut rx, &wires[180], false).unwrap();
        unprotect(&mut rx, &wires[160], false).unwrap();
        assert_eq!(unprotect(&mut rx, &wires[160], false), Err(SrtpError::Replayed));
        unprotect(&mut rx, &wires[155], false).unwrap();
        assert_eq!(rx.stats().replayed, 3);
        assert_eq!(rx.stats().rtp_unprotected, 153);

        // SRTCP replay.
        let r0 = protect(&mut tx, &rtcp_packet(5, b"rtcpbody"), true);
        let r1 = protect(&mut tx, &rtcp_packet(5, b"rtcpbody"), true);
        unprotect(&mut rx, &r1, true).unwrap();
        unprotect(&mut rx, &r0, true).unwrap();
        assert_eq!(unprotect(&mut rx, &r0, true), Err(SrtpError::Replayed));
        assert_eq!(unprotect(&mut rx, &r1, true), Err(SrtpError::Replayed));
    }
}

#[test]
fn tampering_is_detected() {
    for profile in SrtpProfile::ALL {
        let (mut tx, mut rx) = pair(profile);
        let wire = protect(&mut tx, &rtp_packet(77, 6, &[0x55; 40]), false);
        for at in [1, 3, 7, 11, 12, 30, wire.len() - 1] {
            let mut bad = wire.clone();
            bad[at] ^= 0x01;
            assert_eq!(unprotect(&mut rx, &bad, false), Err(SrtpError::AuthFailed), "{profile:?} byte {at}");
        }
        let rwire = protect(&mut tx, &rtcp_packet(6, &[0x66; 20]), true);
        for at in [1, 5, 9, rwire.len() - 11, rwire.len() - 1] {
            let mut bad = rwire.clone();
            bad[at] ^= 0x01;
            assert_eq!(unprotect(&mut rx, &bad, true), Err(SrtpError::AuthFailed), "{profile:?} rtcp byte {at}");
        }
        // Clearing the E flag is caught too.
        let mut bad = rwire.clone();
        let e_at = if profile == SrtpProfile::AeadAes128Gcm { bad.len() - 4 } else { bad.len() - 14 };
        bad[e_at] &= 0x7f;
        assert_eq!(unprotect(&mut rx, &bad, true), Err(SrtpError::AuthFailed));
        assert_eq!(rx.stats().auth_failures, 13);
        // The untouched packets still verify: failures did not poison state.
        unprotect(&mut rx, &wire, false).unwrap();
        unprotect(&mut rx, &rwire, true).unwrap();
        // A different key fails.
        let other = SrtpMasterKey { key: [0xee; 16], salt: [0; 14] };
        let mut wrong = SrtpContext::new(profile, &other);
        assert_eq!(unprotect(&mut wrong, &wire, false), Err(SrtpError::AuthFailed));
    }
}

#[test]
fn headers_with_csrcs_and_extensions_stay_clear_and_authenticated() {
    for profile in SrtpProfile::ALL {
        let (mut tx, mut rx) = pair(profile);
        let mut plain = std::vec![0x92, 0x60, 0, 9, 0, 0, 0, 1, 0, 0, 0, 42];
        plain.extend_from_slice(&[1, 1, 1, 1, 2, 2, 2, 2]); // two CSRCs
        plain.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0]); // extension
        plain.extend_from_slice(b"the payload");
        let wire = protect(&mut tx, &plain, false);
        assert_eq!(wire[..28], plain[..28]);
        assert_ne!(wire[28..28 + 11], plain[28..]);
        assert_eq!(unprotect(&mut rx, &wire, false).unwrap(), plain);
    }
}

#[test]
fn limits_and_malformed_input() {
    for profile in SrtpProfile::ALL {
        let (mut tx, _) = pair(profile);
        let plain = rtp_packet(1, 1, b"abc");
        // No room for the tag.
        let mut buf = plain.clone();
        assert_eq!(tx.protect_rtp(&mut buf, plain.len()), Err(SrtpError::BufferTooSmall));
        assert_eq!(tx.protect_rtp(&mut buf, plain.len() + 1), Err(SrtpError::BufferTooSmall));
        let mut buf = plain.clone();
        buf.resize(plain.len() + profile.rtp_tag_len() - 1, 0);
        assert_eq!(tx.protect_rtp(&mut buf, plain.len()), Err(SrtpError::BufferTooSmall));
        let mut buf = rtcp_packet(1, b"");
        buf.resize(8 + profile.srtcp_trailer_len() - 1, 0);
        assert_eq!(tx.protect_rtcp(&mut buf, 8), Err(SrtpError::BufferTooSmall));
        // Short or non-version-2 input never panics.
        let mut rx = SrtpContext::new(profile, &SrtpMasterKey { key: [0; 16], salt: [0; 14] });
        for n in 0..40 {
            let mut junk = std::vec![0x80u8; n];
            assert!(rx.unprotect_rtp(&mut junk).is_err());
            let mut junk = std::vec![0x81u8; n];
            assert!(rx.unprotect_rtcp(&mut junk).is_err());
            let mut junk = std::vec![0x00u8; n];
            assert!(rx.unprotect_rtp(&mut junk).is_err());
        }
        let mut junk = [0u8; 40];
        assert_eq!(rx.unprotect_rtp(&mut junk), Err(SrtpError::Malformed));
        let mut short = [0x80u8; 5];
        assert_eq!(rx.unprotect_rtp(&mut short), Err(SrtpError::Truncated));
        assert_eq!(rx.stream_count(), 0);
    }
}

#[test]
fn stream_table_is_bounded() {
    let m = SrtpMasterKey { key: [3; 16], salt: [4; 14] };
    let mut tx = SrtpContextN::<2>::new(SrtpProfile::Aes128CmSha1_80, &m);
    let mut rx = SrtpContextN::<2>::new(SrtpProfile::Aes128CmSha1_80, &m);
    let mut wires = Vec::new();
    for ssrc in [10u32, 20] {
        let mut buf = rtp_packet(1, ssrc, b"p");
        let n = buf.len();
        buf.resize(n + 10, 0);
        let n = tx.protect_rtp(&mut buf, n).unwrap();
        buf.truncate(n);
        wires.push(buf);
    }
    let mut buf = rtp_packet(1, 30, b"p");
    let n = buf.len();
    buf.resize(n + 10, 0);
    assert_eq!(tx.protect_rtp(&mut buf, n), Err(SrtpError::TooManyStreams));
    // Forged packets for new SSRCs do not take slots: only authenticated ones do.
    let mut forged = wires[0].clone();
    forged[11] = 99;
    assert_eq!(rx.unprotect_rtp(&mut forged), Err(SrtpError::AuthFailed));
    assert_eq!(rx.stream_count(), 0);
    for w in &wires {
        rx.unprotect_rtp(&mut w.clone()).unwrap();
    }
    assert_eq!(rx.stream_count(), 2);
    assert_eq!(rx.unprotect_rtp(&mut forged), Err(SrtpError::TooManyStreams));
    assert!(tx.remove_stream(10));
    assert!(!tx.remove_stream(10));
    assert_eq!(tx.protect_rtp(&mut buf, n).map(|_| ()), Ok(()));
}

#[test]
fn srtcp_index_increments_and_e_flag() {
    for profile in SrtpProfile::ALL {
        let (mut tx, mut rx) = pair(profile);
        let word_at = |w: &[u8]| if profile == SrtpProfile::AeadAes128Gcm { w.len() - 4 } else { w.len() - 14 };
        for i in 0..3u32 {
            let plain = rtcp_packet(0xabc, &[i as u8; 12]);
            let w = protect(&mut tx, &plain, true);
            let at = word_at(&w);
            assert_eq!(w[at..at + 4], (0x8000_0000 | i).to_be_bytes());
            assert_ne!(w[8..20], plain[8..]);
            assert_eq!(unprotect(&mut rx, &w, true).unwrap(), plain);
        }
        tx.set_rtcp_encryption(false);
        let plain = rtcp_packet(0xabc, &[9; 12]);
        let w = protect(&mut tx, &plain, true);
        let at = word_at(&w);
        assert_eq!(w[at..at + 4], 3u32.to_be_bytes());
        assert_eq!(w[..plain.len()], plain[..]);
        assert_eq!(unprotect(&mut rx, &w, true).unwrap(), plain);
        assert_eq!(tx.stats().rtcp_protected, 4);
        assert_eq!(rx.stats().rtcp_unprotected, 4);
    }
}

#[test]
fn keying_material_roles() {
    let m: [u8; 60] = core::array::from_fn(|i| i as u8);
    let k = SrtpKeyingMaterial::split(SrtpProfile::Aes128CmSha1_80, &m).unwrap();
    let (c_out, c_in) = k.local_remote(true);
    let (s_out, s_in) = k.local_remote(false);
    assert_eq!((c_out, c_in), (s_in, s_out));
    let mut client_tx = SrtpContext::new(k.profile, c_out);
    let mut server_rx = SrtpContext::new(k.profile, s_in);
    let plain = rtp_packet(1, 2, b"hi");
    let w = protect(&mut client_tx, &plain, false);
    assert_eq!(unprotect(&mut server_rx, &w, false).unwrap(), plain);
}

#[test]
fn context_size() {
    let size = core::mem::size_of::<SrtpContext>();
    std::println!("size_of::<SrtpContext>() = {size} bytes ({DEFAULT_STREAMS} streams)");
    std::println!("size_of::<SrtpContextN<1>>() = {} bytes", core::mem::size_of::<SrtpContextN<1>>());
    assert!(size < 4096);
}

mod arbitrary_input {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes at all: unprotect returns an error, never panics, and
        /// takes no stream slot.
        #[test]
        fn unprotect_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120), first in 0x80u8..0xc0) {
            for profile in SrtpProfile::ALL {
                let (_, mut rx) = pair(profile);
                let mut a = bytes.clone();
                if let Some(b) = a.first_mut() {
                    *b = first;
                }
                prop_assert!(rx.unprotect_rtp(&mut a.clone()).is_err());
                prop_assert!(rx.unprotect_rtcp(&mut a).is_err());
                prop_assert!(rx.unprotect_rtp(&mut bytes.clone()).is_err());
                prop_assert_eq!(rx.stream_count(), 0);
            }
        }

        /// Round trip of arbitrary RTP headers and payloads, any `len`/buffer split.
        #[test]
        fn protect_round_trips(payload in proptest::collection::vec(any::<u8>(), 0..200), seq in any::<u16>(),
                               ssrc in any::<u32>(), room in 0usize..40) {
            for profile in SrtpProfile::ALL {
                let (mut tx, mut rx) = pair(profile);
                let plain = rtp_packet(seq, ssrc, &payload);
                let mut buf = plain.clone();
                buf.resize(plain.len() + room, 0);
                match tx.protect_rtp(&mut buf, plain.len()) {
                    Ok(n) => {
                        prop_assert!(room >= profile.rtp_tag_len());
                        let m = rx.unprotect_rtp(&mut buf[..n]).unwrap();
                        prop_assert_eq!(&buf[..m], &plain[..]);
                    }
                    Err(e) => {
                        prop_assert!(room < profile.rtp_tag_len());
                        prop_assert_eq!(e, SrtpError::BufferTooSmall);
                    }
                }
            }
        }
    }
}
