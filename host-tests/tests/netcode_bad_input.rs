//! Bad input against the netcode server and client: each case is refused
//! the way netcode 1.02 says (the packet is ignored, with the matching typed
//! error), nothing panics, no reply is sent to unauthenticated input, and no
//! state is created for it: no slot, no token-history entry, no pending
//! handshake.

use std::net::SocketAddr;

use rand::{Rng, SeedableRng};
use tinyrtc::netcode::client::{ClientState, NetcodeClient};
use tinyrtc::netcode::server::{NetcodeServerN, ServerConfig};
use tinyrtc::netcode::wire::{self, Allowed, Body, ConnectTokenParams, Key, CONNECT_TOKEN_BYTES, MAX_PACKET_BYTES};
use tinyrtc::netcode::{generate_connect_token, Error};
use tinyrtc::{Duration, Instant};

const PID: u64 = 0xbad1_0000_0000_0001;
const KEY: Key = [0x11; 32];
const UNIX: u64 = 1_900_000_000;

type Server = NetcodeServerN<4, 4, 16>;

fn server_addr() -> SocketAddr {
    "192.0.2.1:40000".parse().unwrap()
}
fn client_addr(n: u8) -> SocketAddr {
    format!("198.51.100.{n}:5000").parse().unwrap()
}

struct Tok<'a> {
    pid: u64,
    key: &'a Key,
    create: u64,
    expire_seconds: i32,
    server: SocketAddr,
    client_id: u64,
}

impl Default for Tok<'_> {
    fn default() -> Self {
        Tok { pid: PID, key: &KEY, create: UNIX, expire_seconds: 30, server: server_addr(), client_id: 7 }
    }
}

fn make_token(t: Tok<'_>, rng: &mut rand::rngs::StdRng) -> [u8; CONNECT_TOKEN_BYTES] {
    let ud = [3u8; 256];
    let p = ConnectTokenParams {
        protocol_id: t.pid,
        client_id: t.client_id,
        create_timestamp: t.create,
        expire_seconds: t.expire_seconds,
        timeout_seconds: 5,
        public_addresses: &[t.server],
        internal_addresses: &[t.server],
        user_data: &ud,
    };
    let mut out = [0u8; CONNECT_TOKEN_BYTES];
    generate_connect_token(&p, t.key, rng, &mut out).unwrap();
    out
}

fn new_server(rng: &mut rand::rngs::StdRng) -> Server {
    Server::new(ServerConfig { protocol_id: PID, private_key: KEY, public_address: server_addr() }, rng)
}

fn request_of(token: &[u8]) -> Vec<u8> {
    let t = wire::ConnectToken::parse(token).unwrap();
    let mut out = [0u8; MAX_PACKET_BYTES];
    let n = wire::emit_request(&t, &mut out).unwrap();
    out[..n].to_vec()
}

/// The server holds nothing and has nothing to send.
fn assert_untouched(s: &mut Server, now: Instant, what: &str) {
    assert_eq!(s.num_connected(), 0, "{what}: slot");
    assert_eq!(s.num_pending(now), 0, "{what}: pending handshake");
    assert_eq!(s.num_tokens_seen(), 0, "{what}: token history");
    let mut buf = [0u8; MAX_PACKET_BYTES];
    assert!(s.poll_transmit(now, &mut buf).is_none(), "{what}: server replied");
    assert!(s.poll_event().is_none(), "{what}: event");
}

fn feed(s: &mut Server, now: Instant, unix: u64, from: SocketAddr, pkt: &[u8]) -> Result<(), Error> {
    let mut b = pkt.to_vec();
    s.handle_receive(now, unix, from, &mut b).map(|_| ())
}

#[test]
fn requests_with_bad_tokens_are_ignored_without_state() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let now = Instant::from_secs(10);
    let mut s = new_server(&mut rng);
    let other_key = [0x22; 32];
    let cases: Vec<(&str, [u8; CONNECT_TOKEN_BYTES], u64, Error)> = vec![
        (
            "expired token",
            make_token(Tok { create: UNIX - 100, ..Default::default() }, &mut rng),
            UNIX,
            Error::TokenExpired,
        ),
        ("expires this second", make_token(Tok::default(), &mut rng), UNIX + 30, Error::TokenExpired),
        (
            "wrong protocol id",
            make_token(Tok { pid: PID + 1, ..Default::default() }, &mut rng),
            UNIX,
            Error::ProtocolIdMismatch,
        ),
        (
            "wrong private key",
            make_token(Tok { key: &other_key, ..Default::default() }, &mut rng),
            UNIX,
            Error::DecryptFailed,
        ),
        (
            "server address not in token",
            make_token(Tok { server: "192.0.2.1:40001".parse().unwrap(), ..Default::default() }, &mut rng),
            UNIX,
            Error::ServerAddressNotInToken,
        ),
    ];
    for (what, tok, unix, err) in cases {
        assert_eq!(feed(&mut s, now, unix, client_addr(1), &request_of(&tok)), Err(err), "{what}");
        assert_untouched(&mut s, now, what);
    }
    // Forged requests: tampered private data, nonce, expiry; wrong size; bad version.
    let good = request_of(&make_token(Tok::default(), &mut rng));
    for (what, at) in [("private data", 500), ("nonce", 40), ("expire timestamp", 22), ("tag", 1077)] {
        let mut r = good.clone();
        r[at] ^= 0x01;
        let e = feed(&mut s, now, UNIX, client_addr(1), &r).unwrap_err();
        assert!(matches!(e, Error::DecryptFailed | Error::TokenExpired), "{what}: {e:?}");
        assert_untouched(&mut s, now, what);
    }
    for len in [0, 1, 17, 18, 100, 1077, 1079, 1300] {
        let mut r = good.clone();
        r.resize(len, 0);
        let e = feed(&mut s, now, UNIX, client_addr(1), &r).unwrap_err();
        assert!(matches!(e, Error::WrongPacketSize | Error::PacketTooSmall), "length {len}: {e:?}");
        assert_untouched(&mut s, now, "bad length");
    }
    let mut r = good.clone();
    r[3] = b'X';
    assert_eq!(feed(&mut s, now, UNIX, client_addr(1), &r), Err(Error::VersionMismatch));
    assert_untouched(&mut s, now, "version");
    // And the good one is accepted (the cases above were refused for their fault only).
    assert_eq!(feed(&mut s, now, UNIX, client_addr(1), &good), Ok(()));
    assert_eq!((s.num_pending(now), s.num_tokens_seen()), (1, 1));
}

/// Runs a real client against the server until connected; returns the
/// client and its last datagrams per type, for replays.
fn connect(
    s: &mut Server,
    token: &[u8],
    from: SocketAddr,
    now: &mut Instant,
) -> (NetcodeClient, Vec<(wire::PacketType, Vec<u8>)>) {
    let mut c = NetcodeClient::new();
    c.connect(*now, token).unwrap();
    let mut sent = Vec::new();
    let mut buf = [0u8; MAX_PACKET_BYTES];
    for _ in 0..50 {
        *now += Duration::from_millis(100);
        c.handle_timeout(*now);
        while let Some(t) = c.poll_transmit(*now, &mut buf) {
            let ty = wire::PacketType::from_u8(buf[0] & 0x0f).unwrap();
            sent.push((ty, buf[..t.len].to_vec()));
            let _ = s.handle_receive(*now, UNIX, from, &mut buf[..t.len]);
        }
        while let Some(t) = s.poll_transmit(*now, &mut buf) {
            if t.destination == from {
                let _ = c.handle_receive(*now, server_addr(), &mut buf[..t.len]);
            }
        }
        while s.poll_event().is_some() {}
        if c.state() == ClientState::Connected {
            // One keep-alive so the server confirms the client.
            *now += Duration::from_millis(100);
            let t = c.poll_transmit(*now, &mut buf).unwrap();
            sent.push((wire::PacketType::KeepAlive, buf[..t.len].to_vec()));
            s.handle_receive(*now, UNIX, from, &mut buf[..t.len]).unwrap();
            return (c, sent);
        }
    }
    panic!("client did not connect: {:?}", c.state());
}

#[test]
fn reused_forged_replayed_and_truncated_packets() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let mut now = Instant::from_secs(10);
    let mut s = new_server(&mut rng);
    let tok = make_token(Tok::default(), &mut rng);
    let req = request_of(&tok);

    // Token reuse while pending: from another address, refused, no new state.
    feed(&mut s, now, UNIX, client_addr(1), &req).unwrap();
    let mut buf = [0u8; MAX_PACKET_BYTES];
    assert!(s.poll_transmit(now, &mut buf).is_some(), "challenge");
    assert_eq!(feed(&mut s, now, UNIX, client_addr(2), &req), Err(Error::TokenAlreadyUsed));
    assert!(s.poll_transmit(now, &mut buf).is_none());
    assert_eq!((s.num_pending(now), s.num_tokens_seen()), (1, 1));

    let (mut c, sent) = connect(&mut s, &tok, client_addr(1), &mut now);
    assert_eq!(s.num_connected(), 1);
    assert_eq!(s.num_pending(now), 0);
    let slot = c.client_index() as usize;

    // A payload, then its replay.
    let t = c.send_payload(now, b"hello", &mut buf).unwrap();
    let payload = buf[..t.len].to_vec();
    let mut b = payload.clone();
    assert_eq!(s.handle_receive(now, UNIX, client_addr(1), &mut b).unwrap().unwrap().data, b"hello");
    let mut b = payload.clone();
    assert_eq!(s.handle_receive(now, UNIX, client_addr(1), &mut b), Err(Error::Replayed));
    // Replays of every handshake packet: ignored.
    for (ty, p) in &sent {
        let e = feed(&mut s, now, UNIX, client_addr(1), p).unwrap_err();
        let want = match ty {
            wire::PacketType::Request => Error::AddressAlreadyConnected,
            wire::PacketType::Response => Error::UnexpectedPacket,
            _ => Error::Replayed,
        };
        assert_eq!(e, want, "replayed {ty:?}");
    }
    // The same packets from an unknown address: nobody to decrypt them.
    for (ty, p) in &sent {
        let e = feed(&mut s, now, UNIX, client_addr(9), p).unwrap_err();
        // A request decrypts (the token is genuine) but its client id is connected.
        let want =
            if *ty == wire::PacketType::Request { Error::ClientIdAlreadyConnected } else { Error::UnknownAddress };
        assert_eq!(e, want, "{ty:?} from another address");
    }
    // Forged: every bit position of a payload flipped once, and a packet
    // sealed with a key the attacker made up.
    for i in 0..payload.len() * 8 {
        let mut f = payload.clone();
        f[i / 8] ^= 1 << (i % 8);
        assert!(feed(&mut s, now, UNIX, client_addr(1), &f).is_err(), "bit {i} flipped was accepted");
    }
    let mut f = [0u8; MAX_PACKET_BYTES];
    let n = wire::emit_encrypted(&Body::Payload(b"forged"), 1 << 40, &[9; 32], PID, &mut f).unwrap();
    assert_eq!(feed(&mut s, now, UNIX, client_addr(1), &f[..n]), Err(Error::DecryptFailed));
    // Truncations of every valid packet: refused.
    for (_, p) in sent.iter().chain([(wire::PacketType::Payload, payload.clone())].iter()) {
        for len in 0..p.len() {
            assert!(feed(&mut s, now, UNIX, client_addr(1), &p[..len]).is_err());
        }
    }
    while let Some(t) = s.poll_transmit(now, &mut buf) {
        assert_eq!(t.destination, client_addr(1), "a reply to an attacker");
    }
    assert!(s.is_connected(slot), "the connected client survived all of it");
    let _ = s.poll_event();

    // Consumed: after the client leaves, the same token cannot connect again,
    // even from the same address.
    c.disconnect(now);
    while let Some(t) = c.poll_transmit(now, &mut buf) {
        let _ = s.handle_receive(now, UNIX, client_addr(1), &mut buf[..t.len]);
    }
    assert_eq!(s.num_connected(), 0);
    assert_eq!(feed(&mut s, now, UNIX, client_addr(1), &req), Err(Error::TokenAlreadyUsed));
    assert!(s.poll_transmit(now, &mut buf).is_none());

    // A malicious client with a valid token forges its response: a challenge
    // token of its own making fails the challenge key.
    let tok2 = make_token(Tok { client_id: 8, ..Default::default() }, &mut rng);
    feed(&mut s, now, UNIX, client_addr(3), &request_of(&tok2)).unwrap();
    let _challenge = s.poll_transmit(now, &mut buf).unwrap();
    let t2 = wire::ConnectToken::parse(&tok2).unwrap();
    let fake_token = [0x55u8; 300];
    let n = wire::emit_encrypted(
        &Body::Response { token_sequence: 0, token: &fake_token },
        0,
        &t2.client_to_server_key,
        PID,
        &mut f,
    )
    .unwrap();
    assert_eq!(feed(&mut s, now, UNIX, client_addr(3), &f[..n]), Err(Error::DecryptFailed));
    assert_eq!(s.num_connected(), 0);
    // Packet types a server never takes.
    let n = wire::emit_encrypted(&Body::Denied, 5, &t2.client_to_server_key, PID, &mut f).unwrap();
    assert_eq!(feed(&mut s, now, UNIX, client_addr(3), &f[..n]), Err(Error::PacketTypeNotAllowed));
}

#[test]
fn random_bytes_never_panic_or_create_state() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let now = Instant::from_secs(10);
    let mut s = new_server(&mut rng);
    let mut c = NetcodeClient::new();
    let tok = make_token(Tok::default(), &mut rng);
    c.connect(now, &tok).unwrap();
    let good = request_of(&tok);
    for i in 0..100_000u32 {
        let len = match i % 4 {
            0 => rng.gen_range(0..40),
            1 => 1078,
            2 => rng.gen_range(0..1500),
            _ => 330,
        };
        let mut pkt: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        if i % 8 == 1 {
            pkt[0] = 0; // looks like a request
            pkt[1..14].copy_from_slice(b"NETCODE 1.02\0");
            pkt[14..22].copy_from_slice(&PID.to_le_bytes());
            pkt[22..30].copy_from_slice(&(UNIX + 10).to_le_bytes());
        } else if i % 8 == 2 && len > 0 {
            pkt[0] = (pkt[0] & 0xf0) | rng.gen_range(0..7); // a valid type
        } else if i % 8 == 5 {
            pkt.copy_from_slice(&good);
            let k = rng.gen_range(0..1078);
            pkt[k] = pkt[k].wrapping_add(rng.gen_range(1..=255));
        }
        let from = client_addr((i % 200) as u8 + 1);
        assert!(feed(&mut s, now, UNIX, from, &pkt).is_err(), "random packet {i} accepted");
        let mut b = pkt.clone();
        let _ = c.handle_receive(now, server_addr(), &mut b);
        assert_eq!(c.state(), ClientState::SendingConnectionRequest);
    }
    assert_untouched(&mut s, now, "random bytes");
    // Client: anything from an address other than the server is refused first.
    let mut b = good.clone();
    assert_eq!(c.handle_receive(now, client_addr(1), &mut b).map(|_| ()), Err(Error::WrongSource));
    let _ = Allowed::CLIENT;
}
