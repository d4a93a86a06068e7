//! Known-answer tests for the backend glue (the primitives themselves are
//! the crates' business; these catch wiring mistakes).
use super::*;

fn h(s: &str) -> std::vec::Vec<u8> {
    hex::decode(s).unwrap()
}

extern crate std;

#[test]
fn sha_and_hmac_known_answers() {
    assert_eq!(sha1(&[b"ab", b"c"]).to_vec(), h("a9993e364706816aba3e25717850c26c9cd0d89d"));
    assert_eq!(sha256(&[b"abc"]).to_vec(), h("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    // RFC 2202 test case 2 and RFC 4231 test case 2.
    assert_eq!(
        hmac_sha1(b"Jefe", &[b"what do ya want ", b"for nothing?"]).to_vec(),
        h("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")
    );
    assert_eq!(
        HmacSha1::new(b"Jefe").mac(&[b"what do ya want for nothing?"]),
        hmac_sha1(b"Jefe", &[b"what do ya want for nothing?"])
    );
    assert_eq!(
        hmac_sha256(b"Jefe", &[b"what do ya want for nothing?"]).to_vec(),
        h("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    );
}

#[test]
fn crc_known_answers() {
    assert_eq!(crc32(b"123456789"), 0xCBF43926);
    assert_eq!(crc32c(b"123456789"), 0xE3069283);
}

#[test]
fn aes_ctr_matches_one_shot() {
    // RFC 3686 test vector #1 (AES-CTR with a 128-bit key).
    let key: [u8; 16] = h("ae6852f8121067cc4bf7a5765577f39e").try_into().unwrap();
    let iv: [u8; 16] = h("00000030000000000000000000000001").try_into().unwrap();
    let mut data = *b"Single block msg";
    Aes128::new(&key).ctr_apply(&iv, &mut data);
    assert_eq!(data.to_vec(), h("e4095d4fb7a7b3792d6175a3261311b8"));
    aes128_ctr(&key, &iv, &mut data);
    assert_eq!(&data, b"Single block msg");
}

#[test]
fn aead_round_trip_and_tamper() {
    let g = Aes128Gcm::new(&[7; 16]);
    let mut buf = [0u8; 40];
    buf[..24].copy_from_slice(b"twenty-four bytes here!!");
    let n = g.seal_append(&[1; 12], b"aad", &mut buf, 24).unwrap();
    assert_eq!(n, 40);
    let mut bad = buf;
    bad[3] ^= 1;
    assert_eq!(g.open_trailing(&[1; 12], b"aad", &mut bad), Err(AeadError));
    assert_eq!(g.open_trailing(&[1; 12], b"aad", &mut buf), Ok(24));
    assert_eq!(&buf[..24], b"twenty-four bytes here!!");
    assert_eq!(g.seal_append(&[1; 12], b"", &mut [0u8; 20], 8), None);

    let x = XChaCha20Poly1305::new(&[9; 32]);
    let mut m = *b"hello";
    let tag = x.seal(&[3; 24], b"ad", &mut m);
    assert!(x.open(&[3; 24], b"ad", &mut m, &tag).is_ok());
    assert_eq!(&m, b"hello");
}

#[test]
fn ecdsa_and_ecdh() {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let k = EcdsaP256::generate(&mut rng);
    let sig = k.sign_sha256(&[b"hello ", b"world"]);
    assert!(ecdsa_p256_verify_sha256(&k.public_key(), &[b"hello world"], sig.as_bytes()).is_ok());
    assert!(ecdsa_p256_verify_sha256(&k.public_key(), &[b"hello"], sig.as_bytes()).is_err());
    assert!(ecdsa_p256_verify_sha256(&[4; 65], &[b"x"], sig.as_bytes()).is_err());

    let a = P256Ecdh::generate(&mut rng);
    let b = P256Ecdh::generate(&mut rng);
    assert_eq!(a.diffie_hellman(&b.public_key()).unwrap(), b.diffie_hellman(&a.public_key()).unwrap());
    assert!(a.diffie_hellman(&[0; 65]).is_err());

    let a = X25519::generate(&mut rng);
    let b = X25519::generate(&mut rng);
    assert_eq!(a.diffie_hellman(&b.public_key()).unwrap(), b.diffie_hellman(&a.public_key()).unwrap());
    assert!(a.diffie_hellman(&[0; 32]).is_err());
}

#[test]
fn md5_known_answers() {
    // RFC 1321 appendix A.5.
    assert_eq!(md5(&[b""]).to_vec(), h("d41d8cd98f00b204e9800998ecf8427e"));
    assert_eq!(md5(&[b"a", b"bc"]).to_vec(), h("900150983cd24fb0d6963f7d28e17f72"));
}
