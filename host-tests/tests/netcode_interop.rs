//! Interop with `netcode-official` (netcode.io 1.02, an independent Rust
//! implementation checked against the reference C one) over real UDP on
//! 127.0.0.1 and on ::1, both ways:
//!
//! - our sans-IO client connects to an official server with a token made by
//!   our backend code; the official server must accept it;
//! - an official client connects to our sans-IO server with a token made by
//!   the official `generate_connect_token`; our server must accept it.
//!
//! Each run stays connected for 5 s with a 2 s timeout (keep-alives keep the
//! link up), sends payloads both ways and counts them exactly, then ends
//! with a client-side disconnect the server must report. Every datagram the
//! official side sends is also re-encoded with our emitter (same key, same
//! sequence) and must come out byte-identical, and the official token is
//! rebuilt byte for byte from its fields.

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration as StdDuration, Instant as StdInstant, SystemTime, UNIX_EPOCH};

use tinyrtc::netcode::server::{DisconnectReason, ServerEvent};
use tinyrtc::netcode::wire::{
    self, build_connect_token, emit_request, open_private, Allowed, ConnectToken, ConnectTokenParams, PacketType,
    PrivateConnectToken, CONNECT_TOKEN_BYTES, MAX_PACKET_BYTES,
};
use tinyrtc::netcode::{generate_connect_token, ClientState, NetcodeClient, NetcodeServerN, ServerConfig};
use tinyrtc::Instant;

const PID: u64 = 0x7e57_1234_abcd_0001;
const TIMEOUT_SECONDS: i32 = 2;
const CONNECTED_FOR: StdDuration = StdDuration::from_secs(5);
const PAYLOAD_EVERY: StdDuration = StdDuration::from_millis(20);

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

struct Clock(StdInstant);
impl Clock {
    fn now(&self) -> Instant {
        Instant::from_micros(self.0.elapsed().as_micros() as u64)
    }
    fn secs(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}

/// A payload that proves its direction and counter: any corruption, mix-up
/// or reordering shows.
fn payload(dir: u8, n: u32) -> Vec<u8> {
    let len = 8 + (n as usize * 37) % 190;
    let mut p = vec![dir];
    p.extend_from_slice(&n.to_le_bytes());
    for i in p.len()..len {
        p.push((n as u8).wrapping_mul(31).wrapping_add(i as u8) ^ dir);
    }
    p
}

/// Counts payloads of one direction, checking content and order.
#[derive(Default)]
struct Tally {
    received: u32,
}
impl Tally {
    fn take(&mut self, dir: u8, data: &[u8]) {
        assert_eq!(data, &payload(dir, self.received)[..], "payload {} of direction {dir}", self.received);
        self.received += 1;
    }
}

/// Re-encodes a datagram the official side sent with our emitter and checks
/// it is byte-identical; returns its type.
fn reencode(pkt: &[u8], token: &ConnectToken, key: &wire::Key, allowed: Allowed) -> PacketType {
    if pkt.first() == Some(&0) {
        let mut out = [0u8; MAX_PACKET_BYTES];
        let n = emit_request(token, &mut out).unwrap();
        assert_eq!(&out[..n], pkt, "connection request differs");
        return PacketType::Request;
    }
    let mut copy = pkt.to_vec();
    let (seq, body) =
        wire::open_encrypted(&mut copy, key, token.protocol_id, allowed, None).expect("official packet opens");
    let mut out = [0u8; MAX_PACKET_BYTES];
    let n = wire::emit_encrypted(&body, seq, key, token.protocol_id, &mut out).unwrap();
    assert_eq!(&out[..n], pkt, "{:?} packet differs", body.packet_type());
    body.packet_type()
}

fn user_data() -> [u8; 256] {
    std::array::from_fn(|i| (i as u8) ^ 0x5a)
}

#[test]
fn our_client_to_official_server() {
    our_client_to_official_server_on("127.0.0.1");
}

#[test]
fn our_client_to_official_server_ipv6() {
    our_client_to_official_server_on("[::1]");
}

fn our_client_to_official_server_on(loopback: &str) {
    let any_port: SocketAddr = format!("{loopback}:0").parse().unwrap();
    let key = netcode::generate_key();
    let mut server = netcode::Server::new(any_port, PID, &key, 0.0).unwrap();
    server.start(16).unwrap();
    let server_addr = server.address();

    // Token made by our backend code.
    let mut rng = rand::rngs::OsRng;
    let ud = user_data();
    let addrs = [server_addr];
    let params = ConnectTokenParams {
        protocol_id: PID,
        client_id: 0x1234_5678,
        create_timestamp: unix_now(),
        expire_seconds: 30,
        timeout_seconds: TIMEOUT_SECONDS,
        public_addresses: &addrs,
        internal_addresses: &addrs,
        user_data: &ud,
    };
    let mut token_bytes = [0u8; CONNECT_TOKEN_BYTES];
    generate_connect_token(&params, &key, &mut rng, &mut token_bytes).unwrap();
    let token = ConnectToken::parse(&token_bytes).unwrap();
    {
        // The official client reads our public token too.
        let mut probe = netcode::Client::new(any_port, 0.0).unwrap();
        probe.connect(&token_bytes).expect("official client parses our token");
        assert_eq!(probe.state(), netcode::ClientState::SendingConnectionRequest);
    }

    let sock = UdpSocket::bind(any_port).unwrap();
    sock.set_nonblocking(true).unwrap();
    let clock = Clock(StdInstant::now());
    let mut client = NetcodeClient::new();
    client.connect(clock.now(), &token_bytes).unwrap();

    let mut buf = [0u8; MAX_PACKET_BYTES];
    let mut slot = None;
    let mut connected_at = None;
    let mut next_payload = StdInstant::now();
    let (mut sent_up, mut sent_down) = (0u32, 0u32);
    let (mut up, mut down) = (Tally::default(), Tally::default());
    let mut seen = BTreeSet::new();
    let mut stop_sending = None;
    let deadline = StdInstant::now() + StdDuration::from_secs(15);
    loop {
        assert!(StdInstant::now() < deadline, "timed out in state {:?}", client.state());
        server.update(clock.secs());
        while let Some(e) = server.next_event() {
            match e {
                netcode::ServerEvent::ClientConnected { client_index } => slot = Some(client_index),
                e => panic!("unexpected server event {e:?}"),
            }
        }
        if let Some(s) = slot {
            while let Some((p, _)) = server.receive_packet(s) {
                up.take(b'u', &p);
            }
        }
        loop {
            let (n, from) = match sock.recv_from(&mut buf) {
                Ok(x) => x,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            };
            seen.insert(reencode(&buf[..n], &token, &token.server_to_client_key, Allowed::CLIENT) as u8);
            if let Some(p) = client.handle_receive(clock.now(), from, &mut buf[..n]).unwrap() {
                down.take(b'd', p.data);
            }
        }
        client.handle_timeout(clock.now());
        while let Some(t) = client.poll_transmit(clock.now(), &mut buf) {
            sock.send_to(&buf[..t.len], t.destination).unwrap();
        }
        if client.state() == ClientState::Connected {
            let at = *connected_at.get_or_insert_with(StdInstant::now);
            let s = slot.expect("server reported the connection");
            if at.elapsed() >= CONNECTED_FOR {
                let since = *stop_sending.get_or_insert_with(StdInstant::now);
                if since.elapsed() > StdDuration::from_millis(500) {
                    break;
                }
            } else if StdInstant::now() >= next_payload {
                next_payload += PAYLOAD_EVERY;
                let t = client.send_payload(clock.now(), &payload(b'u', sent_up), &mut buf).unwrap();
                sock.send_to(&buf[..t.len], t.destination).unwrap();
                sent_up += 1;
                server.send_packet(s, &payload(b'd', sent_down)).unwrap();
                sent_down += 1;
            }
            assert!(server.client_connected(s), "the official server dropped us");
        } else {
            assert!(client.state().is_connecting(), "client failed: {:?}", client.state());
        }
        std::thread::sleep(StdDuration::from_millis(2));
    }
    assert!(sent_up >= 100, "only {sent_up} payloads in {CONNECTED_FOR:?}");
    assert_eq!(up.received, sent_up, "client -> server payloads");
    assert_eq!(down.received, sent_down, "server -> client payloads");
    for t in [PacketType::Challenge, PacketType::KeepAlive, PacketType::Payload] {
        assert!(seen.contains(&(t as u8)), "never saw a {t:?} from the official server");
    }

    // Disconnect: the official server must notice through our disconnect packets.
    client.disconnect(clock.now());
    let mut n = 0;
    while let Some(t) = client.poll_transmit(clock.now(), &mut buf) {
        sock.send_to(&buf[..t.len], t.destination).unwrap();
        n += 1;
    }
    assert_eq!(n, 10);
    let s = slot.unwrap();
    let deadline = StdInstant::now() + StdDuration::from_secs(1);
    loop {
        server.update(clock.secs());
        if let Some(e) = server.next_event() {
            assert_eq!(
                e,
                netcode::ServerEvent::ClientDisconnected {
                    client_index: s,
                    reason: netcode::DisconnectReason::ClientDisconnect
                }
            );
            break;
        }
        assert!(StdInstant::now() < deadline, "official server did not see the disconnect");
        std::thread::sleep(StdDuration::from_millis(5));
    }
    println!("our client -> official server ({loopback}): {sent_up} up, {sent_down} down, packet types seen {seen:?}");
}

#[test]
fn official_client_to_our_server() {
    official_client_to_our_server_on("127.0.0.1");
}

#[test]
fn official_client_to_our_server_ipv6() {
    official_client_to_our_server_on("[::1]");
}

fn official_client_to_our_server_on(loopback: &str) {
    let any_port: SocketAddr = format!("{loopback}:0").parse().unwrap();
    let key = netcode::generate_key();
    let sock = UdpSocket::bind(any_port).unwrap();
    sock.set_nonblocking(true).unwrap();
    let server_addr: SocketAddr = sock.local_addr().unwrap();
    let mut rng = rand::rngs::OsRng;
    let cfg = ServerConfig { protocol_id: PID, private_key: key, public_address: server_addr };
    let mut server = NetcodeServerN::<16, 16, 64>::new(cfg, &mut rng);

    // Token made by the official backend code.
    let ud = user_data();
    let client_id = 0xfeed_beef_u64;
    let token_bytes =
        netcode::generate_connect_token(&[server_addr], &[server_addr], 30, TIMEOUT_SECONDS, client_id, PID, &key, &ud)
            .unwrap();
    let token = ConnectToken::parse(&token_bytes).expect("we parse the official token");
    assert_eq!(token.timeout_seconds, TIMEOUT_SECONDS);
    assert_eq!(&token.server_addresses[..], &[server_addr]);
    assert_eq!(token.expire_timestamp - token.create_timestamp, 30);
    // Byte for byte: rebuild it from its fields with our code.
    let mut private = token.private_data;
    open_private(&mut private, PID, token.expire_timestamp, &token.nonce, &key).expect("official private token opens");
    let p = PrivateConnectToken::parse(&private).unwrap();
    assert_eq!((p.client_id, p.user_data, p.timeout_seconds), (client_id, ud, TIMEOUT_SECONDS));
    let params = ConnectTokenParams {
        protocol_id: PID,
        client_id,
        create_timestamp: token.create_timestamp,
        expire_seconds: 30,
        timeout_seconds: TIMEOUT_SECONDS,
        public_addresses: &[server_addr],
        internal_addresses: &[server_addr],
        user_data: &ud,
    };
    let rebuilt =
        build_connect_token(&params, &key, token.nonce, p.client_to_server_key, p.server_to_client_key).unwrap();
    let mut rebuilt_bytes = [0u8; CONNECT_TOKEN_BYTES];
    rebuilt.emit(&mut rebuilt_bytes).unwrap();
    assert_eq!(rebuilt_bytes, token_bytes, "connect token rebuilt byte for byte");

    let clock = Clock(StdInstant::now());
    let mut client = netcode::Client::new(any_port, 0.0).unwrap();
    client.connect(&token_bytes).unwrap();

    let mut buf = [0u8; 2 * MAX_PACKET_BYTES];
    let mut slot = None;
    let mut connected_at = None;
    let mut next_payload = StdInstant::now();
    let (mut sent_up, mut sent_down) = (0u32, 0u32);
    let (mut up, mut down) = (Tally::default(), Tally::default());
    let mut seen = BTreeSet::new();
    let mut stop_sending = None;
    let mut keep_alive_prefixed = 0;
    let deadline = StdInstant::now() + StdDuration::from_secs(15);

    let pump = |server: &mut NetcodeServerN<16, 16, 64>,
                buf: &mut [u8],
                seen: &mut BTreeSet<u8>,
                up: &mut Tally,
                events: &mut Vec<ServerEvent>| {
        loop {
            let (n, from) = match sock.recv_from(buf) {
                Ok(x) => x,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            };
            seen.insert(reencode(&buf[..n], &token, &token.client_to_server_key, Allowed::SERVER) as u8);
            if let Ok(Some(p)) = server.handle_receive(clock.now(), unix_now(), from, &mut buf[..n]) {
                up.take(b'u', p.data);
            }
        }
        server.handle_timeout(clock.now());
        while let Some(t) = server.poll_transmit(clock.now(), buf) {
            sock.send_to(&buf[..t.len], t.destination).unwrap();
        }
        while let Some(e) = server.poll_event() {
            events.push(e);
        }
    };
    let mut events = Vec::new();
    loop {
        assert!(StdInstant::now() < deadline, "timed out in state {:?}", client.state());
        client.update(clock.secs());
        while let Some((p, _)) = client.receive_packet() {
            down.take(b'd', &p);
        }
        pump(&mut server, &mut buf, &mut seen, &mut up, &mut events);
        for e in events.drain(..) {
            match e {
                ServerEvent::ClientConnected { slot: s, client_id: id, user_data, address } => {
                    assert_eq!((id, user_data, address.ip()), (client_id, ud, server_addr.ip()));
                    slot = Some(s);
                }
                e => panic!("unexpected event {e:?}"),
            }
        }
        if client.state() == netcode::ClientState::Connected {
            let at = *connected_at.get_or_insert_with(StdInstant::now);
            let s = slot.expect("our server reported the connection");
            if at.elapsed() >= CONNECTED_FOR {
                let since = *stop_sending.get_or_insert_with(StdInstant::now);
                if since.elapsed() > StdDuration::from_millis(500) {
                    break;
                }
            } else if StdInstant::now() >= next_payload {
                next_payload += PAYLOAD_EVERY;
                client.send_packet(&payload(b'u', sent_up)).unwrap();
                sent_up += 1;
                let sp = server.send_payload(clock.now(), s, &payload(b'd', sent_down), &mut buf).unwrap();
                if sp.keep_alive_len > 0 {
                    keep_alive_prefixed += 1;
                    sock.send_to(&buf[..sp.keep_alive_len], sp.destination).unwrap();
                }
                sock.send_to(&buf[sp.keep_alive_len..sp.keep_alive_len + sp.payload_len], sp.destination).unwrap();
                sent_down += 1;
            }
            assert!(server.is_connected(s), "our server dropped the official client");
        } else {
            assert!(client.state().is_connecting(), "official client failed: {:?}", client.state());
        }
        std::thread::sleep(StdDuration::from_millis(2));
    }
    assert!(sent_up >= 100, "only {sent_up} payloads in {CONNECTED_FOR:?}");
    assert_eq!(up.received, sent_up, "client -> server payloads");
    assert_eq!(down.received, sent_down, "server -> client payloads");
    for t in [PacketType::Request, PacketType::Response, PacketType::KeepAlive, PacketType::Payload] {
        assert!(seen.contains(&(t as u8)), "never saw a {t:?} from the official client");
    }

    // The official client disconnects: our server must report it.
    client.disconnect();
    let mut after = Vec::new();
    let deadline = StdInstant::now() + StdDuration::from_secs(1);
    while !after.iter().any(|e| {
        matches!(e, ServerEvent::ClientDisconnected { reason: DisconnectReason::ClientDisconnect, client_id: id, .. } if *id == client_id)
    }) {
        assert!(StdInstant::now() < deadline, "our server did not see the disconnect: {after:?}");
        std::thread::sleep(StdDuration::from_millis(5));
        pump(&mut server, &mut buf, &mut seen, &mut up, &mut after);
    }
    assert_eq!(server.num_connected(), 0);
    assert!(seen.contains(&(PacketType::Disconnect as u8)));
    println!(
        "official client -> our server ({loopback}): {sent_up} up, {sent_down} down ({keep_alive_prefixed} keep-alive prefixed), packet types seen {seen:?}"
    );
}
