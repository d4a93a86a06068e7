//! STUN wire tests: every RFC 5769 vector, the RFC 8489 B.1 vector, and the
//! parser's behaviour on malformed input.
extern crate std;

use super::*;
use std::vec::Vec;

fn h(lines: &[&str]) -> Vec<u8> {
    hex::decode(lines.concat()).unwrap()
}

const TID: TransactionId = [0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae];
const SHORT_TERM_PASSWORD: &str = "VOkJxbRl1RmTxUk/WvJxBt";

/// RFC 5769 2.1: sample request (short-term credentials, FINGERPRINT).
fn request() -> Vec<u8> {
    h(&[
        "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e74",
        "002400046e0001ff80290008932ff9b151263b36000600096576746a3a6836765920202000080014",
        "9aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a280280004e57a3bcf",
    ])
}

/// RFC 5769 2.2: sample IPv4 response.
fn response_v4() -> Vec<u8> {
    h(&[
        "0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f722000200008",
        "0001a147e112a643000800142b91f599fd9e90c38c7489f92af9ba53f06be7d780280004c07d4c96",
    ])
}

/// RFC 5769 2.3: sample IPv6 response.
fn response_v6() -> Vec<u8> {
    h(&[
        "010100482112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f722000200014",
        "0002a1470113a9faa5d3f179bc25f4b5bed2b9d900080014a382954e4be67bf11784c97c8292c275",
        "bfe3ed4180280004c8fb0b4c",
    ])
}

/// RFC 5769 2.4: sample request with long-term authentication.
fn long_term_request() -> Vec<u8> {
    h(&[
        "000100602112a44278ad3433c6ad72c029da412e00060012e3839ee38388e383aae38383e382afe3",
        "82b900000015001c662f2f3439396b39353464364f4c33346f4c394653547679363473410014000b",
        "6578616d706c652e6f72670000080014f67024656dd64a3e02b8e0712e85c9a28ca89666",
    ])
}

/// RFC 8489 B.1 (with the verified erratum 6268): USERHASH, NONCE, REALM,
/// PASSWORD-ALGORITHM and MESSAGE-INTEGRITY-SHA256.
fn rfc8489_b1_request() -> Vec<u8> {
    h(&[
        "000100902112a44278ad3433c6ad72c029da412e001e00204a3cf38fef6992bda952c6780417da0f",
        "24819415569e60b205c46e41407f1704001500296f624d61744a6f733241414143662f2f3439396b",
        "39353464364f4c33346f4c394653547679363473410000000014000b6578616d706c652e6f726700",
        "001d000400020000001c0020b5c7bf005b6c52a21c51c5e892f81924136296cb927c43149309278c",
        "c6518e65",
    ])
}

/// The username of RFC 5769 2.4 (katakana "matrix").
const MATRIX_USER: &str = "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}";
/// "The<U+00AD>M<U+00AA>tr<U+2168>" after SASLprep.
const MATRIX_PASSWORD: &str = "TheMatrIX";

#[test]
fn rfc5769_request() {
    let buf = request();
    let m = Message::new_checked(&buf).unwrap();
    assert_eq!(m.method(), Method::BINDING);
    assert_eq!(m.class(), Class::Request);
    assert_eq!(m.transaction_id(), TID);
    assert_eq!(m.software().unwrap(), Some("STUN test client"));
    assert_eq!(m.priority().unwrap(), Some(0x6e0001ff));
    assert_eq!(m.ice_controlled().unwrap(), Some(0x932ff9b151263b36));
    assert_eq!(m.ice_controlling().unwrap(), None);
    assert!(!m.use_candidate());
    assert_eq!(m.username().unwrap(), Some("evtj:h6vY"));
    m.check_integrity(SHORT_TERM_PASSWORD.as_bytes()).unwrap();
    assert_eq!(m.check_integrity(b"VOkJxbRl1RmTxUk/WvJxBT"), Err(StunError::IntegrityMismatch));
    m.check_fingerprint().unwrap();
    // Every attribute of the vector is known to the ICE code.
    assert!(m.unknown_comprehension_required(attr::is_known_binding).is_empty());
}

#[test]
fn rfc5769_ipv4_response() {
    let buf = response_v4();
    let m = Message::new_checked(&buf).unwrap();
    assert_eq!(m.class(), Class::SuccessResponse);
    assert_eq!(m.transaction_id(), TID);
    assert_eq!(m.software().unwrap(), Some("test vector"));
    assert_eq!(m.xor_mapped_address().unwrap(), Some("192.0.2.1:32853".parse().unwrap()));
    m.check_integrity(SHORT_TERM_PASSWORD.as_bytes()).unwrap();
    m.check_fingerprint().unwrap();
    // Our encoding of the same address is byte-identical.
    let mut out = [0u8; 64];
    let mut b = MessageBuilder::new(&mut out, Method::BINDING, Class::SuccessResponse, &TID).unwrap();
    b.xor_mapped_address("192.0.2.1:32853".parse().unwrap()).unwrap();
    let n = b.finish();
    assert_eq!(&out[20..n], &buf[36..48]);
}

#[test]
fn rfc5769_ipv6_response() {
    let buf = response_v6();
    let m = Message::new_checked(&buf).unwrap();
    let want: core::net::SocketAddr = "[2001:db8:1234:5678:11:2233:4455:6677]:32853".parse().unwrap();
    assert_eq!(m.xor_mapped_address().unwrap(), Some(want));
    m.check_integrity(SHORT_TERM_PASSWORD.as_bytes()).unwrap();
    m.check_fingerprint().unwrap();
    let mut out = [0u8; 64];
    let mut b = MessageBuilder::new(&mut out, Method::BINDING, Class::SuccessResponse, &TID).unwrap();
    b.xor_mapped_address(want).unwrap();
    let n = b.finish();
    assert_eq!(&out[20..n], &buf[36..60]);
}

#[test]
fn rfc5769_long_term_request() {
    let buf = long_term_request();
    let m = Message::new_checked(&buf).unwrap();
    assert_eq!(m.username().unwrap(), Some(MATRIX_USER));
    assert_eq!(m.realm().unwrap(), Some("example.org"));
    assert_eq!(m.nonce().unwrap(), Some("f//499k954d6OL34oL9FSTvy64sA"));
    assert!(!m.has_fingerprint());
    let key = long_term_key(MATRIX_USER, "example.org", MATRIX_PASSWORD);
    m.check_integrity(&key).unwrap();
    let wrong = long_term_key(MATRIX_USER, "example.org", "TheMatrix");
    assert_eq!(m.check_integrity(&wrong), Err(StunError::IntegrityMismatch));
    assert_eq!(m.check_fingerprint(), Err(StunError::FingerprintMissing));

    // The builder reproduces the vector byte for byte, HMAC included.
    let mut out = [0u8; 200];
    let mut b = MessageBuilder::new(&mut out, Method::BINDING, Class::Request, &m.transaction_id()).unwrap();
    b.username(MATRIX_USER).unwrap();
    b.nonce("f//499k954d6OL34oL9FSTvy64sA").unwrap();
    b.realm("example.org").unwrap();
    b.message_integrity(&key).unwrap();
    let n = b.finish();
    assert_eq!(&out[..n], &buf[..]);
}

#[test]
fn rfc8489_b1_sha256_integrity() {
    let buf = rfc8489_b1_request();
    let m = Message::new_checked(&buf).unwrap();
    let key = long_term_key_sha256(MATRIX_USER, "example.org", MATRIX_PASSWORD);
    m.check_integrity_sha256(&key).unwrap();
    assert_eq!(m.check_integrity(&key), Err(StunError::IntegrityMissing));
    let md5 = long_term_key(MATRIX_USER, "example.org", MATRIX_PASSWORD);
    assert_eq!(m.check_integrity_sha256(&md5), Err(StunError::IntegrityMismatch));

    let mut out = [0u8; 200];
    let mut b = MessageBuilder::new(&mut out, Method::BINDING, Class::Request, &m.transaction_id()).unwrap();
    b.raw(attr::USERHASH, m.attribute(attr::USERHASH).unwrap()).unwrap();
    b.nonce("obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA").unwrap();
    b.realm("example.org").unwrap();
    b.raw(attr::PASSWORD_ALGORITHM, &[0, 2, 0, 0]).unwrap();
    b.message_integrity_sha256(&key).unwrap();
    let n = b.finish();
    assert_eq!(&out[..n], &buf[..]);
}

#[test]
fn builder_round_trip_with_integrity_and_fingerprint() {
    let mut out = [0u8; 256];
    let tid = [7u8; 12];
    let mut b = MessageBuilder::new(&mut out, Method::BINDING, Class::Request, &tid).unwrap();
    b.username("abcd:efgh").unwrap();
    b.priority(1234).unwrap();
    b.ice_controlling(0x0102030405060708).unwrap();
    b.use_candidate().unwrap();
    b.message_integrity(b"password").unwrap();
    b.fingerprint().unwrap();
    let n = b.finish();
    let m = Message::new_checked(&out[..n]).unwrap();
    assert_eq!(m.username().unwrap(), Some("abcd:efgh"));
    assert_eq!(m.priority().unwrap(), Some(1234));
    assert_eq!(m.ice_controlling().unwrap(), Some(0x0102030405060708));
    assert!(m.use_candidate());
    m.check_integrity(b"password").unwrap();
    m.check_fingerprint().unwrap();

    // Flipping any single bit is caught by the fingerprint or the parser.
    for i in 0..n * 8 {
        let mut c = out[..n].to_vec();
        c[i / 8] ^= 1 << (i % 8);
        let ok =
            Message::new_checked(&c).map(|m| m.check_fingerprint().is_ok() && m.check_integrity(b"password").is_ok());
        assert!(!matches!(ok, Ok(true)), "bit {i}");
    }
}

#[test]
fn message_type_encoding() {
    assert_eq!(message_type(Method::BINDING, Class::Request), 0x0001);
    assert_eq!(message_type(Method::BINDING, Class::Indication), 0x0011);
    assert_eq!(message_type(Method::BINDING, Class::SuccessResponse), 0x0101);
    assert_eq!(message_type(Method::BINDING, Class::ErrorResponse), 0x0111);
    assert_eq!(message_type(Method::ALLOCATE, Class::Request), 0x0003);
    for t in 0..0x4000u16 {
        let (m, c) = split_message_type(t);
        assert_eq!(message_type(m, c), t);
    }
}

#[test]
fn error_response_with_unknown_attributes() {
    let mut req = [0u8; 128];
    let mut b = MessageBuilder::new(&mut req, Method::BINDING, Class::Request, &TID).unwrap();
    b.raw(0x7777, &[1, 2, 3]).unwrap();
    b.raw(0x8777, &[1]).unwrap(); // comprehension-optional: not reported
    b.raw(0x0031, &[]).unwrap();
    let n = b.finish();
    let m = Message::new_checked(&req[..n]).unwrap();
    let unknown = m.unknown_comprehension_required(attr::is_known_binding);
    assert_eq!(&unknown[..], &[0x7777, 0x0031]);
    let mut out = [0u8; 128];
    let len = write_error_response(&mut out, &m, code::UNKNOWN_ATTRIBUTE, &unknown, None, true).unwrap();
    let r = Message::new_checked(&out[..len]).unwrap();
    assert_eq!(r.class(), Class::ErrorResponse);
    assert_eq!(r.transaction_id(), TID);
    assert_eq!(r.error_code().unwrap(), Some((420, "Unknown Attribute")));
    let listed: Vec<u16> = r.unknown_attributes().unwrap().unwrap().collect();
    assert_eq!(listed, [0x7777, 0x0031]);
    r.check_fingerprint().unwrap();
}

#[test]
fn attributes_after_integrity_are_ignored_and_fingerprint_is_last() {
    let mut out = [0u8; 128];
    let mut b = MessageBuilder::new(&mut out, Method::BINDING, Class::Request, &TID).unwrap();
    b.username("a:b").unwrap();
    b.message_integrity(b"k").unwrap();
    b.priority(5).unwrap();
    let n = b.finish();
    let m = Message::new_checked(&out[..n]).unwrap();
    assert_eq!(m.priority().unwrap(), None);
    m.check_integrity(b"k").unwrap();

    // Anything after FINGERPRINT is malformed.
    let mut out = [0u8; 128];
    let mut b = MessageBuilder::new(&mut out, Method::BINDING, Class::Request, &TID).unwrap();
    b.fingerprint().unwrap();
    b.priority(5).unwrap();
    let n = b.finish();
    assert_eq!(Message::new_checked(&out[..n]).unwrap_err(), StunError::Malformed);
}

#[test]
fn header_errors_and_truncation() {
    for v in [request(), response_v4(), response_v6(), long_term_request(), rfc8489_b1_request()] {
        for n in 0..v.len() {
            assert!(Message::new_checked(&v[..n]).is_err(), "prefix {n}");
        }
        let mut longer = v.clone();
        longer.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(Message::new_checked(&longer).unwrap_err(), StunError::Truncated);
    }
    let mut v = request();
    v[0] |= 0x40;
    assert_eq!(Message::new_checked(&v).unwrap_err(), StunError::NotStun);
    let mut v = request();
    v[4] = 0;
    assert_eq!(Message::new_checked(&v).unwrap_err(), StunError::NotStun);
    assert!(!is_stun(&v));
    assert!(is_stun(&request()));
    // An attribute whose length runs past the message end.
    let mut v = request();
    v[22] = 0x40;
    assert_eq!(Message::new_checked(&v).unwrap_err(), StunError::Truncated);
    // A corrupted byte under the fingerprint.
    let mut v = response_v4();
    v[30] ^= 0x01;
    let m = Message::new_checked(&v).unwrap();
    assert_eq!(m.check_fingerprint(), Err(StunError::FingerprintMismatch));
    assert_eq!(m.check_integrity(SHORT_TERM_PASSWORD.as_bytes()), Err(StunError::IntegrityMismatch));
}

#[test]
fn bad_attribute_values() {
    let mut out = [0u8; 128];
    let mut b = MessageBuilder::new(&mut out, Method::BINDING, Class::SuccessResponse, &TID).unwrap();
    b.raw(attr::XOR_MAPPED_ADDRESS, &[0, 3, 0, 0, 1, 2, 3, 4]).unwrap();
    b.raw(attr::PRIORITY, &[1, 2]).unwrap();
    b.raw(attr::USERNAME, &[0xff, 0xfe]).unwrap();
    b.raw(attr::ERROR_CODE, &[0, 0, 7, 0]).unwrap();
    let n = b.finish();
    let m = Message::new_checked(&out[..n]).unwrap();
    assert_eq!(m.xor_mapped_address(), Err(StunError::BadAttribute(attr::XOR_MAPPED_ADDRESS)));
    assert_eq!(m.priority(), Err(StunError::BadAttribute(attr::PRIORITY)));
    assert_eq!(m.username(), Err(StunError::BadAttribute(attr::USERNAME)));
    assert_eq!(m.error_code(), Err(StunError::BadAttribute(attr::ERROR_CODE)));
}

#[test]
fn builder_reports_small_buffers() {
    let mut out = [0u8; 19];
    assert_eq!(
        MessageBuilder::new(&mut out, Method::BINDING, Class::Request, &TID).unwrap_err(),
        StunError::BufferTooSmall
    );
    let mut out = [0u8; 39];
    let mut b = MessageBuilder::new(&mut out, Method::BINDING, Class::Request, &TID).unwrap();
    assert_eq!(b.message_integrity(b"k"), Err(StunError::BufferTooSmall));
    b.username("abcdefgh").unwrap();
    assert_eq!(b.fingerprint(), Err(StunError::BufferTooSmall));
    let n = b.finish();
    // Failed attributes left the message intact and consistent.
    assert_eq!(n, 32);
    let m = Message::new_checked(&out[..n]).unwrap();
    assert_eq!(m.username().unwrap(), Some("abcdefgh"));
    assert_eq!(m.error_code().unwrap(), None);
    let mut out = [0u8; 64];
    let mut b = MessageBuilder::new(&mut out, Method::BINDING, Class::Request, &TID).unwrap();
    assert_eq!(b.error_code(200, "x"), Err(StunError::InvalidValue));
}

mod client_server {
    use super::super::*;
    use crate::time::{Duration, Instant};
    use core::net::SocketAddr;
    use rand::SeedableRng;

    fn rng() -> rand_chacha::ChaCha20Rng {
        rand_chacha::ChaCha20Rng::seed_from_u64(7)
    }

    #[test]
    fn client_learns_reflexive_address_from_server() {
        let local: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        let mapped: SocketAddr = "[2001:db8::7]:40000".parse().unwrap();
        let server_addr: SocketAddr = "192.0.2.10:3478".parse().unwrap();
        let mut client: StunBindingClient = BindingClient::new(RetransmitConfig::default(), &mut rng());
        let mut server = BindingServer::new(Some("tinyrtc test"));
        let now = Instant::from_secs(1);
        let id = client.start(now, Some(local), server_addr).unwrap();
        let mut buf = [0u8; 128];
        let t = client.poll_transmit(now, &mut buf).unwrap();
        assert_eq!((t.source, t.destination), (Some(local), server_addr));
        assert!(client.poll_transmit(now, &mut buf).is_none());
        let mut resp = [0u8; 128];
        // The NAT rewrote the source to `mapped`.
        let n = server.respond(&buf[..t.len], mapped, &mut resp).unwrap().unwrap();
        assert_eq!(server.stats.success, 1);
        let m = Message::new_checked(&resp[..n]).unwrap();
        assert_eq!(m.software().unwrap(), Some("tinyrtc test"));
        m.check_fingerprint().unwrap();
        // From the wrong address: not ours.
        let wrong: SocketAddr = "192.0.2.11:3478".parse().unwrap();
        assert_eq!(client.handle_receive(now, wrong, &resp[..n]), Err(BindingError::UnknownTransaction));
        client.handle_receive(now, server_addr, &resp[..n]).unwrap();
        assert_eq!(
            client.poll_event(),
            Some(BindingEvent::Success { id, source: Some(local), server: server_addr, reflexive: mapped })
        );
        assert_eq!(client.poll_event(), None);
        assert_eq!(client.poll_timeout(), None);
        // A duplicate response is not ours any more.
        assert_eq!(client.handle_receive(now, server_addr, &resp[..n]), Err(BindingError::UnknownTransaction));
    }

    #[test]
    fn client_times_out_after_rc_requests() {
        let server: SocketAddr = "192.0.2.10:3478".parse().unwrap();
        let cfg = RetransmitConfig { rto: Duration::from_millis(100), rc: 3, rm: 4 };
        let mut client: BindingClient<2> = BindingClient::new(cfg, &mut rng());
        let mut now = Instant::ZERO;
        let id = client.start(now, None, server).unwrap();
        let mut buf = [0u8; 64];
        let mut sent = 0;
        let mut first_len = None;
        loop {
            while let Some(t) = client.poll_transmit(now, &mut buf) {
                sent += 1;
                // Retransmissions are identical.
                let m = Message::new_checked(&buf[..t.len]).unwrap();
                assert_eq!(m.transaction_id(), id);
                first_len.get_or_insert(t.len);
            }
            client.handle_timeout(now);
            if let Some(ev) = client.poll_event() {
                assert_eq!(ev, BindingEvent::Failed { id, source: None, server, reason: BindingFailure::Timeout });
                break;
            }
            now = client.poll_timeout().unwrap();
        }
        assert_eq!(sent, 3);
        // 0, 100, 300; then 4 * 100 ms.
        assert_eq!(now, Instant::from_millis(700));
    }

    #[test]
    fn server_answers_errors_and_drops_garbage() {
        let src: SocketAddr = "10.1.1.1:1".parse().unwrap();
        let mut server = BindingServer::default();
        let mut out = [0u8; 128];
        let mut req = [0u8; 64];
        let tid = [3u8; 12];
        // Unknown comprehension-required attribute: 420.
        let mut b = MessageBuilder::new(&mut req, Method::BINDING, Class::Request, &tid).unwrap();
        b.raw(0x0777, &[0; 4]).unwrap();
        let n = b.finish();
        let r = server.respond(&req[..n], src, &mut out).unwrap().unwrap();
        let m = Message::new_checked(&out[..r]).unwrap();
        assert_eq!(m.error_code().unwrap(), Some((420, "Unknown Attribute")));
        assert_eq!(m.unknown_attributes().unwrap().unwrap().next(), Some(0x0777));
        // Another method: 400.
        let b = MessageBuilder::new(&mut req, Method(0x0abc), Class::Request, &tid).unwrap();
        let n = b.finish();
        let r = server.respond(&req[..n], src, &mut out).unwrap().unwrap();
        let m = Message::new_checked(&out[..r]).unwrap();
        assert_eq!((m.method(), m.error_code().unwrap()), (Method(0x0abc), Some((400, "Bad Request"))));
        // Indication, bad fingerprint, garbage: dropped.
        let b = MessageBuilder::new(&mut req, Method::BINDING, Class::Indication, &tid).unwrap();
        let n = b.finish();
        assert_eq!(server.respond(&req[..n], src, &mut out), Ok(None));
        let mut b = MessageBuilder::new(&mut req, Method::BINDING, Class::Request, &tid).unwrap();
        b.fingerprint().unwrap();
        let n = b.finish();
        req[n - 1] ^= 1;
        assert_eq!(server.respond(&req[..n], src, &mut out), Ok(None));
        assert_eq!(server.respond(b"hello", src, &mut out), Err(StunError::NotStun));
        assert_eq!(server.stats, BindingServerStats { success: 0, errors: 2, dropped: 3 });
        // A too-small output buffer is an error, not a panic.
        req[n - 1] ^= 1;
        assert_eq!(server.respond(&req[..n], src, &mut out[..30]), Err(StunError::BufferTooSmall));
    }
}

#[test]
fn random_and_mutated_messages_never_panic() {
    use rand::{Rng, SeedableRng};
    let mut r = rand_chacha::ChaCha20Rng::seed_from_u64(5769);
    let vectors = [request(), response_v4(), response_v6(), long_term_request(), rfc8489_b1_request()];
    let mut server = BindingServer::default();
    let mut client: StunBindingClient = BindingClient::new(RetransmitConfig::default(), &mut r);
    let src: core::net::SocketAddr = "192.0.2.1:1".parse().unwrap();
    let mut parsed = 0;
    for i in 0..20_000 {
        let mut d = vectors[i % vectors.len()].clone();
        for _ in 0..r.gen_range(1..4) {
            match r.gen_range(0..3) {
                0 => {
                    let at = r.gen_range(0..d.len());
                    d[at] = r.gen();
                }
                1 => {
                    let at = r.gen_range(0..d.len());
                    d.truncate(at.max(20));
                }
                _ => {
                    // Keep the header consistent so the attribute walk runs.
                    let body = (d.len() - 20) as u16;
                    d[2..4].copy_from_slice(&body.to_be_bytes());
                }
            }
        }
        if let Ok(m) = Message::new_checked(&d) {
            parsed += 1;
            let _ = (m.method(), m.class(), m.transaction_id(), m.mapped_address(), m.xor_mapped_address());
            let _ = (m.username(), m.realm(), m.nonce(), m.software(), m.error_code(), m.priority());
            let _ = (m.ice_controlled(), m.ice_controlling(), m.use_candidate(), m.check_fingerprint());
            let _ = (m.check_integrity(b"k"), m.check_integrity_sha256(b"k"));
            if let Ok(Some(u)) = m.unknown_attributes() {
                let _ = u.count();
            }
            let _ = m.unknown_comprehension_required(attr::is_known_binding);
        }
        let mut out = [0u8; 256];
        let _ = server.respond(&d, src, &mut out);
        let _ = client.handle_receive(crate::time::Instant::ZERO, src, &d);
    }
    // The mutations reach the attribute decoders, not only the header check.
    assert!(parsed > 2000, "{parsed}");
}
