//! Byte-for-byte checks against the golden vectors of the reference C
//! implementation (see `../vectors/README.md`), plus rejection checks.

use super::*;

const PROTOCOL_ID: u64 = 0x1122334455667788;
const CLIENT_ID: u64 = 0x0102030405060708;
const TIMEOUT_SECONDS: i32 = 15;
const CREATE: u64 = 1720000000;
const EXPIRE: u64 = 1720000100;
const CHALLENGE_SEQUENCE: u64 = 1000;
const PACKET_SEQUENCE: u64 = 0x1122334455;
const PRIVATE_KEY: Key = [
    0x60, 0x6a, 0xbe, 0x6e, 0xc9, 0x19, 0x10, 0xea, 0x9a, 0x65, 0x62, 0xf6, 0x6f, 0x2b, 0x30, 0xe4, 0x43, 0x71, 0xd6,
    0x2c, 0xd1, 0x99, 0x27, 0x26, 0x6b, 0x3c, 0x60, 0xf4, 0xb7, 0x15, 0xab, 0xa1,
];

const V_PRIVATE_PLAIN: &[u8; 1024] = include_bytes!("../vectors/private_connect_token_plaintext.bin");
const V_PRIVATE_SEALED: &[u8; 1024] = include_bytes!("../vectors/private_connect_token_encrypted.bin");
const V_CONNECT_TOKEN: &[u8; 2048] = include_bytes!("../vectors/connect_token.bin");
const V_CHALLENGE_TOKEN: &[u8; 300] = include_bytes!("../vectors/challenge_token_encrypted.bin");
const V_REQUEST: &[u8] = include_bytes!("../vectors/packet_request.bin");
const V_DENIED: &[u8] = include_bytes!("../vectors/packet_denied.bin");
const V_CHALLENGE: &[u8] = include_bytes!("../vectors/packet_challenge.bin");
const V_RESPONSE: &[u8] = include_bytes!("../vectors/packet_response.bin");
const V_KEEP_ALIVE: &[u8] = include_bytes!("../vectors/packet_keep_alive.bin");
const V_PAYLOAD: &[u8] = include_bytes!("../vectors/packet_payload.bin");
const V_DISCONNECT: &[u8] = include_bytes!("../vectors/packet_disconnect.bin");

fn seq_key(f: impl Fn(usize) -> u8) -> Key {
    core::array::from_fn(f)
}
fn c2s() -> Key {
    seq_key(|i| i as u8)
}
fn s2c() -> Key {
    seq_key(|i| 255 - i as u8)
}
fn challenge_key() -> Key {
    seq_key(|i| (i * 2) as u8)
}
fn packet_key() -> Key {
    seq_key(|i| (i + 17) as u8)
}
fn user_data() -> UserData {
    core::array::from_fn(|i| i as u8)
}
fn nonce() -> [u8; 24] {
    core::array::from_fn(|i| (100 + i) as u8)
}
fn addresses() -> ServerAddresses {
    let mut v = ServerAddresses::new();
    v.push("127.0.0.1:40000".parse().unwrap()).unwrap();
    v.push("[::1]:50000".parse().unwrap()).unwrap();
    v
}
fn private_token() -> PrivateConnectToken {
    PrivateConnectToken {
        client_id: CLIENT_ID,
        timeout_seconds: TIMEOUT_SECONDS,
        server_addresses: addresses(),
        client_to_server_key: c2s(),
        server_to_client_key: s2c(),
        user_data: user_data(),
    }
}

#[test]
fn private_token_plaintext_and_sealed_match_reference() {
    let mut buf = [0u8; 1024];
    private_token().emit(&mut buf).unwrap();
    assert_eq!(&buf, V_PRIVATE_PLAIN);
    private_token().seal(PROTOCOL_ID, EXPIRE, &nonce(), &PRIVATE_KEY, &mut buf).unwrap();
    assert_eq!(&buf, V_PRIVATE_SEALED);

    let mut opened = *V_PRIVATE_SEALED;
    open_private(&mut opened, PROTOCOL_ID, EXPIRE, &nonce(), &PRIVATE_KEY).unwrap();
    assert_eq!(opened[..1008], V_PRIVATE_PLAIN[..1008]);
    assert_eq!(opened[1008..], V_PRIVATE_SEALED[1008..], "tag stays in place for the token history");
    assert_eq!(PrivateConnectToken::parse(&opened).unwrap(), private_token());

    // The associated data binds protocol id and expiry; the key must match.
    for (pid, exp, key) in
        [(PROTOCOL_ID + 1, EXPIRE, PRIVATE_KEY), (PROTOCOL_ID, EXPIRE + 1, PRIVATE_KEY), (PROTOCOL_ID, EXPIRE, c2s())]
    {
        let mut b = *V_PRIVATE_SEALED;
        assert_eq!(open_private(&mut b, pid, exp, &nonce(), &key), Err(Error::DecryptFailed));
    }
}

fn params<'a>(addrs: &'a [core::net::SocketAddr], ud: &'a UserData) -> ConnectTokenParams<'a> {
    ConnectTokenParams {
        protocol_id: PROTOCOL_ID,
        client_id: CLIENT_ID,
        create_timestamp: CREATE,
        expire_seconds: (EXPIRE - CREATE) as i32,
        timeout_seconds: TIMEOUT_SECONDS,
        public_addresses: addrs,
        internal_addresses: addrs,
        user_data: ud,
    }
}

#[test]
fn public_connect_token_matches_reference() {
    let addrs = addresses();
    let ud = user_data();
    let token = build_connect_token(&params(&addrs, &ud), &PRIVATE_KEY, nonce(), c2s(), s2c()).unwrap();
    let mut out = [0u8; CONNECT_TOKEN_BYTES];
    token.emit(&mut out).unwrap();
    assert_eq!(&out[..], &V_CONNECT_TOKEN[..]);

    let parsed = ConnectToken::parse(V_CONNECT_TOKEN).unwrap();
    assert_eq!(parsed, token);
    assert_eq!(parsed.create_timestamp, CREATE);
    assert_eq!(parsed.expire_timestamp, EXPIRE);
    assert_eq!(&parsed.private_data, V_PRIVATE_SEALED);

    // Base64 hand-off round trip.
    let mut b64 = [0u8; super::super::base64::CONNECT_TOKEN_BASE64_LEN];
    let n = super::super::base64::encode(V_CONNECT_TOKEN, &mut b64).unwrap();
    let mut back = [0u8; CONNECT_TOKEN_BYTES];
    assert_eq!(super::super::base64::decode(&b64[..n], &mut back), Ok(CONNECT_TOKEN_BYTES));
    assert_eq!(&back, V_CONNECT_TOKEN);
}

#[test]
fn connect_token_parse_rejects_bad_fields() {
    let mut t = *V_CONNECT_TOKEN;
    t[0] = b'X';
    assert_eq!(ConnectToken::parse(&t), Err(Error::InvalidConnectToken));
    let mut t = *V_CONNECT_TOKEN;
    t.copy_within(21..29, 29); // expire := create... then create := old expire
    t[21..29].copy_from_slice(&EXPIRE.to_le_bytes());
    t[29..37].copy_from_slice(&CREATE.to_le_bytes());
    assert_eq!(ConnectToken::parse(&t), Err(Error::InvalidConnectToken));
    // address count 0 and 33
    let count_at = 13 + 8 + 8 + 8 + 24 + 1024 + 4;
    for n in [0u32, 33, u32::MAX] {
        let mut t = *V_CONNECT_TOKEN;
        t[count_at..count_at + 4].copy_from_slice(&n.to_le_bytes());
        assert_eq!(ConnectToken::parse(&t), Err(Error::InvalidConnectToken));
    }
    // address type 3
    let mut t = *V_CONNECT_TOKEN;
    t[count_at + 4] = 3;
    assert_eq!(ConnectToken::parse(&t), Err(Error::InvalidConnectToken));
    assert_eq!(ConnectToken::parse(&V_CONNECT_TOKEN[..2047]), Err(Error::InvalidConnectToken));
}

#[test]
fn challenge_token_matches_reference() {
    let tok = ChallengeToken { client_id: CLIENT_ID, user_data: user_data() };
    let mut buf = [0u8; CHALLENGE_TOKEN_BYTES];
    tok.seal(CHALLENGE_SEQUENCE, &challenge_key(), &mut buf);
    assert_eq!(&buf, V_CHALLENGE_TOKEN);
    let mut b = *V_CHALLENGE_TOKEN;
    assert_eq!(ChallengeToken::open(CHALLENGE_SEQUENCE, &challenge_key(), &mut b), Ok(tok));
    let mut b = *V_CHALLENGE_TOKEN;
    assert_eq!(ChallengeToken::open(CHALLENGE_SEQUENCE + 1, &challenge_key(), &mut b), Err(Error::DecryptFailed));
}

#[test]
fn request_packet_matches_reference() {
    let addrs = addresses();
    let ud = user_data();
    let token = build_connect_token(&params(&addrs, &ud), &PRIVATE_KEY, nonce(), c2s(), s2c()).unwrap();
    let mut out = [0u8; MAX_PACKET_BYTES];
    let n = emit_request(&token, &mut out).unwrap();
    assert_eq!(n, CONNECTION_REQUEST_BYTES);
    assert_eq!(&out[..n], V_REQUEST);

    let p = RequestPacket::new_checked(V_REQUEST, PROTOCOL_ID).unwrap();
    assert_eq!(p.expire_timestamp(), EXPIRE);
    assert_eq!(p.nonce(), nonce());
    assert_eq!(&p.private_data(), V_PRIVATE_SEALED);
    assert_eq!(RequestPacket::new_checked(V_REQUEST, PROTOCOL_ID + 1).unwrap_err(), Error::ProtocolIdMismatch);
    assert_eq!(RequestPacket::new_checked(&V_REQUEST[..1077], PROTOCOL_ID).unwrap_err(), Error::WrongPacketSize);
    let mut v = V_REQUEST.to_vec();
    v[5] ^= 1;
    assert_eq!(RequestPacket::new_checked(&v[..], PROTOCOL_ID).unwrap_err(), Error::VersionMismatch);
}

fn check_packet(body: Body<'_>, vector: &[u8], allowed: Allowed) {
    let mut out = [0u8; MAX_PACKET_BYTES];
    let n = emit_encrypted(&body, PACKET_SEQUENCE, &packet_key(), PROTOCOL_ID, &mut out).unwrap();
    assert_eq!(&out[..n], vector, "{:?}", body.packet_type());

    let mut buf = vector.to_vec();
    let mut window = ReplayWindow::new();
    let (seq, parsed) = open_encrypted(&mut buf, &packet_key(), PROTOCOL_ID, allowed, Some(&mut window)).unwrap();
    assert_eq!(seq, PACKET_SEQUENCE);
    assert_eq!(parsed, body);

    // Replays of protected types are refused before decryption.
    let t = body.packet_type();
    let mut again = vector.to_vec();
    let r = open_encrypted(&mut again, &packet_key(), PROTOCOL_ID, allowed, Some(&mut window));
    if matches!(t, PacketType::KeepAlive | PacketType::Payload | PacketType::Disconnect) {
        assert_eq!(r.unwrap_err(), Error::Replayed);
    } else {
        assert!(r.is_ok());
    }
    // Any flipped bit fails authentication (or the prefix checks).
    for i in [0, 1, vector.len() / 2, vector.len() - 1] {
        let mut bad = vector.to_vec();
        bad[i] ^= 0x10;
        assert!(open_encrypted(&mut bad, &packet_key(), PROTOCOL_ID, allowed, None).is_err(), "{t:?} byte {i}");
    }
    let mut wrong = vector.to_vec();
    assert_eq!(
        open_encrypted(&mut wrong, &packet_key(), PROTOCOL_ID ^ 1, allowed, None).unwrap_err(),
        Error::DecryptFailed
    );
    // Truncations never parse.
    for len in 0..vector.len() {
        let mut t = vector[..len].to_vec();
        assert!(open_encrypted(&mut t, &packet_key(), PROTOCOL_ID, allowed, None).is_err());
    }
}

#[test]
fn encrypted_packets_match_reference() {
    check_packet(Body::Denied, V_DENIED, Allowed::CLIENT);
    check_packet(
        Body::Challenge { token_sequence: CHALLENGE_SEQUENCE, token: V_CHALLENGE_TOKEN },
        V_CHALLENGE,
        Allowed::CLIENT,
    );
    check_packet(
        Body::Response { token_sequence: CHALLENGE_SEQUENCE, token: V_CHALLENGE_TOKEN },
        V_RESPONSE,
        Allowed::SERVER,
    );
    check_packet(Body::KeepAlive { client_index: 7, max_clients: 32 }, V_KEEP_ALIVE, Allowed::CLIENT);
    let payload: [u8; MAX_PAYLOAD_BYTES] = core::array::from_fn(|i| i as u8);
    check_packet(Body::Payload(&payload), V_PAYLOAD, Allowed::CLIENT);
    check_packet(Body::Disconnect, V_DISCONNECT, Allowed::CLIENT);
}

#[test]
fn sides_refuse_the_other_sides_packet_types() {
    let mut c = V_CHALLENGE.to_vec();
    assert_eq!(
        open_encrypted(&mut c, &packet_key(), PROTOCOL_ID, Allowed::SERVER, None).unwrap_err(),
        Error::PacketTypeNotAllowed
    );
    let mut r = V_RESPONSE.to_vec();
    assert_eq!(
        open_encrypted(&mut r, &packet_key(), PROTOCOL_ID, Allowed::CLIENT, None).unwrap_err(),
        Error::PacketTypeNotAllowed
    );
    let mut d = V_DENIED.to_vec();
    assert_eq!(
        open_encrypted(&mut d, &packet_key(), PROTOCOL_ID, Allowed::SERVER, None).unwrap_err(),
        Error::PacketTypeNotAllowed
    );
}

#[test]
fn sequence_encoding() {
    assert_eq!(sequence_bytes(0), 1);
    assert_eq!(sequence_bytes(0xff), 1);
    assert_eq!(sequence_bytes(0x100), 2);
    assert_eq!(sequence_bytes(1 << 63), 8);
    assert_eq!(sequence_bytes(u64::MAX), 8);
    let mut out = [0u8; 64];
    let n = emit_encrypted(&Body::Denied, 1000, &packet_key(), PROTOCOL_ID, &mut out).unwrap();
    assert_eq!(&out[..3], &[0x21, 0xe8, 0x03]);
    assert_eq!(n, 3 + MAC_BYTES);
    assert_eq!(
        emit_encrypted(&Body::Denied, 1000, &packet_key(), PROTOCOL_ID, &mut out[..18]),
        Err(Error::BufferTooSmall)
    );
    assert_eq!(
        emit_encrypted(&Body::Payload(&[]), 1, &packet_key(), PROTOCOL_ID, &mut out),
        Err(Error::InvalidPayloadSize)
    );
}

mod arbitrary_input {
    use super::*;
    use crate::netcode::base64;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// No input makes a parser panic; whatever an encrypted packet parse
        /// accepts must have authenticated (impossible for random bytes).
        #[test]
        fn parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..1400), server in any::<bool>()) {
            let allowed = if server { Allowed::SERVER } else { Allowed::CLIENT };
            let mut buf = data.clone();
            let mut window = ReplayWindow::new();
            prop_assert!(open_encrypted(&mut buf, &packet_key(), PROTOCOL_ID, allowed, Some(&mut window)).is_err());
            prop_assert_eq!(&window, &ReplayWindow::new());
            let _ = RequestPacket::new_checked(&data[..], PROTOCOL_ID);
            let _ = ConnectToken::parse(&data);
            let _ = PrivateConnectToken::parse(&data);
            let mut out = [0u8; 2048];
            let _ = base64::decode(&data, &mut out);
        }

        /// Token fields survive emit/parse for any values.
        #[test]
        fn private_token_round_trips(client_id in any::<u64>(), timeout in any::<i32>(), n in 1usize..=32, port in any::<u16>(), v6 in any::<bool>()) {
            let mut addrs = ServerAddresses::new();
            for i in 0..n {
                let a: core::net::SocketAddr = if v6 && i % 2 == 0 {
                    core::net::SocketAddr::new(core::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, i as u16, 1).into(), port)
                } else {
                    core::net::SocketAddr::new(core::net::Ipv4Addr::new(192, 0, 2, i as u8).into(), port)
                };
                addrs.push(a).unwrap();
            }
            let t = PrivateConnectToken { client_id, timeout_seconds: timeout, server_addresses: addrs, client_to_server_key: c2s(), server_to_client_key: s2c(), user_data: user_data() };
            let mut buf = [0u8; 1024];
            t.seal(PROTOCOL_ID, EXPIRE, &nonce(), &PRIVATE_KEY, &mut buf).unwrap();
            open_private(&mut buf, PROTOCOL_ID, EXPIRE, &nonce(), &PRIVATE_KEY).unwrap();
            prop_assert_eq!(PrivateConnectToken::parse(&buf).unwrap(), t);
        }
    }
}
