//! Every client state of the standard, reached through a real server (in
//! memory) or through silence.

extern crate std;
use std::vec::Vec;

use super::*;
use crate::netcode::server::{NetcodeServerN, ServerConfig};
use crate::netcode::wire::{build_connect_token, ConnectTokenParams, Key, CONNECT_TOKEN_BYTES, MAX_PACKET_BYTES};
use rand::SeedableRng;

const PID: u64 = 42;
const KEY: Key = [9; 32];
const UNIX: u64 = 1_900_000_000;

fn live() -> SocketAddr {
    "10.0.0.2:40000".parse().unwrap()
}
fn dead() -> SocketAddr {
    "10.0.0.1:40000".parse().unwrap()
}
fn me() -> SocketAddr {
    "10.0.1.1:5000".parse().unwrap()
}

fn token(servers: &[SocketAddr], expire_seconds: i32, timeout_seconds: i32) -> [u8; CONNECT_TOKEN_BYTES] {
    let ud = [0u8; 256];
    let p = ConnectTokenParams {
        protocol_id: PID,
        client_id: 5,
        create_timestamp: UNIX,
        expire_seconds,
        timeout_seconds,
        public_addresses: servers,
        internal_addresses: servers,
        user_data: &ud,
    };
    let t = build_connect_token(&p, &KEY, [1; 24], [2; 32], [3; 32]).unwrap();
    let mut out = [0u8; CONNECT_TOKEN_BYTES];
    t.emit(&mut out).unwrap();
    out
}

/// A client against one in-memory server at `live()`; `deliver` filters
/// server-to-client datagrams by packet type. Returns the client's states
/// and the datagrams it sent, with their times and destinations.
struct Run {
    client: NetcodeClient,
    server: NetcodeServerN<1, 2, 4>,
    now: Instant,
    states: Vec<ClientState>,
    sent: Vec<(Instant, SocketAddr, u8)>,
}

impl Run {
    fn new(tok: &[u8]) -> Self {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let cfg = ServerConfig { protocol_id: PID, private_key: KEY, public_address: live() };
        let mut client = NetcodeClient::new();
        let now = Instant::from_secs(1);
        let _ = client.connect(now, tok);
        Run { client, server: NetcodeServerN::new(cfg, &mut rng), now, states: Vec::new(), sent: Vec::new() }
    }
    fn step(&mut self, deliver: impl Fn(u8) -> bool) {
        let mut buf = [0u8; MAX_PACKET_BYTES];
        self.now += Duration::from_millis(10);
        self.client.handle_timeout(self.now);
        while let Some(t) = self.client.poll_transmit(self.now, &mut buf) {
            self.sent.push((self.now, t.destination, buf[0] & 0x0f));
            if t.destination == live() {
                let _ = self.server.handle_receive(self.now, UNIX, me(), &mut buf[..t.len]);
            }
        }
        self.server.handle_timeout(self.now);
        while let Some(t) = self.server.poll_transmit(self.now, &mut buf) {
            if deliver(buf[0] & 0x0f) {
                let _ = self.client.handle_receive(self.now, live(), &mut buf[..t.len]);
            }
        }
        while self.server.poll_event().is_some() {}
        while let Some(ClientEvent::StateChanged(s)) = self.client.poll_event() {
            self.states.push(s);
        }
    }
    fn run(&mut self, d: Duration, deliver: impl Fn(u8) -> bool + Copy) {
        let end = self.now + d;
        while self.now < end {
            self.step(deliver);
        }
    }
}

#[test]
fn state_numbers_are_the_standards() {
    use ClientState::*;
    let all = [
        (ConnectTokenExpired, -6),
        (InvalidConnectToken, -5),
        (ConnectionTimedOut, -4),
        (ConnectionResponseTimedOut, -3),
        (ConnectionRequestTimedOut, -2),
        (ConnectionDenied, -1),
        (Disconnected, 0),
        (SendingConnectionRequest, 1),
        (SendingConnectionResponse, 2),
        (Connected, 3),
    ];
    for (s, n) in all {
        assert_eq!(s as i8, n);
        assert_eq!(s.is_error(), n < 0);
    }
}

#[test]
fn invalid_connect_token() {
    let mut t = token(&[live()], 30, 5);
    t[0] ^= 1;
    let mut c = NetcodeClient::new();
    assert_eq!(c.connect(Instant::ZERO, &t), Err(Error::InvalidConnectToken));
    assert_eq!(c.state(), ClientState::InvalidConnectToken);
    assert_eq!(c.connect(Instant::ZERO, &t[..100]), Err(Error::InvalidConnectToken));
}

#[test]
fn requests_at_10_hz_then_request_timed_out() {
    let mut r = Run::new(&token(&[dead()], 30, 2));
    r.run(Duration::from_millis(2500), |_| true);
    assert_eq!(r.states.last(), Some(&ClientState::ConnectionRequestTimedOut));
    let requests: Vec<_> = r.sent.iter().filter(|s| s.2 == 0).collect();
    // 2 s of requests at 10 Hz: 20 (+1 for the one at the start).
    assert!((20..=22).contains(&requests.len()), "{} requests", requests.len());
    for w in requests.windows(2) {
        assert!(w[1].0 - w[0].0 >= Duration::from_millis(100));
    }
    assert!(r.client.poll_timeout().is_none());
}

#[test]
fn response_timed_out_when_keep_alives_never_arrive() {
    let mut r = Run::new(&token(&[live()], 30, 2));
    r.run(Duration::from_secs(3), |t| t != 4);
    assert_eq!(
        r.states,
        [
            ClientState::SendingConnectionRequest,
            ClientState::SendingConnectionResponse,
            ClientState::ConnectionResponseTimedOut
        ]
    );
}

#[test]
fn connect_token_expired() {
    // Timeouts never fire (negative); the 3 s token lifetime ends the attempt.
    let mut r = Run::new(&token(&[dead()], 3, -1));
    r.run(Duration::from_secs(4), |_| true);
    assert_eq!(r.states.last(), Some(&ClientState::ConnectTokenExpired));
}

#[test]
fn tries_the_next_server_after_a_timeout_then_connects() {
    let mut r = Run::new(&token(&[dead(), live()], 30, 1));
    r.run(Duration::from_secs(2), |_| true);
    assert_eq!(r.client.state(), ClientState::Connected);
    assert_eq!(r.client.server_address(), Some(live()));
    assert!(r.sent.iter().any(|s| s.1 == dead()) && r.sent.iter().any(|s| s.1 == live()));
    assert_eq!(r.client.max_clients(), 1);
    // Disconnecting sends exactly 10 disconnect packets, then nothing.
    let before = r.sent.len();
    r.client.disconnect(r.now);
    r.step(|_| true);
    let bye: Vec<_> = r.sent[before..].iter().collect();
    assert_eq!(bye.len(), 10);
    assert!(bye.iter().all(|s| s.2 == 6 && s.1 == live()));
    assert_eq!(r.client.state(), ClientState::Disconnected);
    assert_eq!(r.server.num_connected(), 0);
}

#[test]
fn denied_by_a_full_server() {
    let mut first = Run::new(&token(&[live()], 30, 5));
    first.run(Duration::from_millis(300), |_| true);
    assert_eq!(first.client.state(), ClientState::Connected);
    // A second client (another token, another address) on the 1-slot server.
    let tok = {
        let ud = [0u8; 256];
        let p = ConnectTokenParams {
            protocol_id: PID,
            client_id: 6,
            create_timestamp: UNIX,
            expire_seconds: 30,
            timeout_seconds: 5,
            public_addresses: &[live()],
            internal_addresses: &[live()],
            user_data: &ud,
        };
        let t = build_connect_token(&p, &KEY, [7; 24], [2; 32], [3; 32]).unwrap();
        let mut out = [0u8; CONNECT_TOKEN_BYTES];
        t.emit(&mut out).unwrap();
        out
    };
    let mut c2 = NetcodeClient::new();
    c2.connect(first.now, &tok).unwrap();
    let other: SocketAddr = "10.0.1.2:5000".parse().unwrap();
    let mut buf = [0u8; MAX_PACKET_BYTES];
    for _ in 0..10 {
        first.now += Duration::from_millis(100);
        c2.handle_timeout(first.now);
        while let Some(t) = c2.poll_transmit(first.now, &mut buf) {
            let _ = first.server.handle_receive(first.now, UNIX, other, &mut buf[..t.len]);
        }
        while let Some(t) = first.server.poll_transmit(first.now, &mut buf) {
            if t.destination == other {
                let _ = c2.handle_receive(first.now, live(), &mut buf[..t.len]);
            }
        }
    }
    assert_eq!(c2.state(), ClientState::ConnectionDenied);
}
