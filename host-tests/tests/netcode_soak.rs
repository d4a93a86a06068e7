//! Soak: 256 netcode clients on one server over the deterministic network
//! simulator, 10% loss end to end (5.13% on each host's uplink and
//! downlink: 1 - 0.9487^2 = 0.10), 40 ms one-way delay, for 10 virtual minutes, each client and the server
//! sending 60 payloads per second each way (~18 million datagrams).
//!
//! Checked: every client connects and nobody is ever dropped (no disconnect
//! event, every client still connected at the end); every payload received
//! is authentic (sender id, counter and filler bytes all match), arrives in
//! order (the links add no jitter, so order must hold) and is counted: per
//! flow, `received + gaps + tail == sent`, and the loss seen in the gaps
//! matches the configured loss. Finally a 257th client is denied.
//!
//! `NETCODE_SOAK_SECS` overrides the 600 virtual seconds (for quick runs).

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

use host_tests::netsim::{run_with_seed, LinkConfig, Network, Node};
use tinyrtc::netcode::server::{ServerEvent, ServerPayload};
use tinyrtc::netcode::wire::{ConnectTokenParams, CONNECT_TOKEN_BYTES, MAX_PACKET_BYTES};
use tinyrtc::netcode::{generate_connect_token, ClientState, NetcodeClient, NetcodeServerN, ServerConfig};
use tinyrtc::{Duration, Instant, Transmit};

const PID: u64 = 0x50a4_0000_0000_0001;
const KEY: [u8; 32] = [0x42; 32];
const UNIX_START: u64 = 1_900_000_000;
const CLIENTS: usize = 256;
const PERIOD: Duration = Duration::from_micros(1_000_000 / 60);
/// End-to-end loss; each link direction drops `1 - sqrt(1 - LOSS)`.
const LOSS: f64 = 0.10;
const PAYLOAD_LEN: usize = 40;

type Server = NetcodeServerN<CLIENTS, CLIENTS, 1024>;

fn unix(now: Instant) -> u64 {
    UNIX_START + now.as_micros() / 1_000_000
}

/// dir, sender id, counter, filler derived from all three.
fn payload(dir: u8, id: u64, n: u32) -> [u8; PAYLOAD_LEN] {
    let mut p = [0u8; PAYLOAD_LEN];
    p[0] = dir;
    p[1..9].copy_from_slice(&id.to_le_bytes());
    p[9..13].copy_from_slice(&n.to_le_bytes());
    for (i, b) in p.iter_mut().enumerate().skip(13) {
        *b = (id as u8).wrapping_mul(7) ^ (n as u8).wrapping_mul(13) ^ (i as u8) ^ dir;
    }
    p
}

/// One direction of one client's payload flow, seen by the receiver.
#[derive(Debug, Default, Clone, Copy)]
struct Flow {
    received: u64,
    gaps: u64,
    next: u32,
}

impl Flow {
    fn take(&mut self, dir: u8, id: u64, data: &[u8]) {
        assert_eq!(data.len(), PAYLOAD_LEN, "payload length");
        let n = u32::from_le_bytes(data[9..13].try_into().unwrap());
        assert_eq!(data, &payload(dir, id, n)[..], "payload not authentic (dir {dir}, id {id})");
        assert!(n >= self.next, "out of order or duplicate: {n} after {} (dir {dir}, id {id})", self.next);
        self.gaps += u64::from(n - self.next);
        self.next = n + 1;
        self.received += 1;
    }
    /// Every payload sent is received, lost in a gap, or lost at the tail.
    fn check(&self, sent: u32, what: &str) {
        let tail = u64::from(sent - self.next.min(sent));
        assert_eq!(self.received + self.gaps + tail, u64::from(sent), "{what}: {self:?} sent {sent}");
    }
}

struct ClientNode {
    id: u64,
    client: NetcodeClient,
    next_payload: Instant,
    due: bool,
    sent: u32,
    down: Flow,
    scratch: Vec<u8>,
    states: Vec<ClientState>,
}

impl Node for ClientNode {
    fn handle_receive(&mut self, now: Instant, from: SocketAddr, _to: SocketAddr, data: &[u8]) {
        let buf = &mut self.scratch[..data.len()];
        buf.copy_from_slice(data);
        if let Ok(Some(p)) = self.client.handle_receive(now, from, buf) {
            self.down.take(b'd', self.id, p.data);
        }
        self.note_states();
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if let Some(t) = self.client.poll_transmit(now, buf) {
            return Some(t);
        }
        if self.due && self.client.state() == ClientState::Connected {
            self.due = false;
            let t = self.client.send_payload(now, &payload(b'u', self.id, self.sent), buf).unwrap();
            self.sent += 1;
            return Some(t);
        }
        None
    }
    fn poll_timeout(&self) -> Option<Instant> {
        let t = self.client.poll_timeout();
        if self.client.state() == ClientState::Connected {
            Some(t.map_or(self.next_payload, |t| t.min(self.next_payload)))
        } else {
            t
        }
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.client.handle_timeout(now);
        self.note_states();
        if now >= self.next_payload {
            self.due = self.client.state() == ClientState::Connected;
            self.next_payload += PERIOD;
            if self.next_payload <= now {
                self.next_payload = now + PERIOD;
            }
        }
    }
}

impl ClientNode {
    fn note_states(&mut self) {
        while let Some(tinyrtc::netcode::client::ClientEvent::StateChanged(s)) = self.client.poll_event() {
            self.states.push(s);
        }
    }
}

/// Counters shared with the test body (the server node lives in the network).
#[derive(Default)]
struct ServerSide {
    slot_client: Vec<Option<u64>>,
    sent: Vec<u32>,
    up: Vec<Flow>,
    connects: usize,
    disconnects: Vec<ServerEvent>,
}

struct ServerNode {
    server: Box<Server>,
    side: Rc<RefCell<ServerSide>>,
    next_round: Instant,
    cursor: usize,
    carry: Option<(SocketAddr, usize, [u8; MAX_PACKET_BYTES])>,
    scratch: Vec<u8>,
}

impl ServerNode {
    fn events(&mut self) {
        let mut side = self.side.borrow_mut();
        while let Some(e) = self.server.poll_event() {
            match e {
                ServerEvent::ClientConnected { slot, client_id, .. } => {
                    side.slot_client[slot] = Some(client_id);
                    side.connects += 1;
                }
                e => side.disconnects.push(e),
            }
        }
    }
}

impl Node for ServerNode {
    fn handle_receive(&mut self, now: Instant, from: SocketAddr, _to: SocketAddr, data: &[u8]) {
        let buf = &mut self.scratch[..data.len()];
        buf.copy_from_slice(data);
        if let Ok(Some(ServerPayload { slot, data, .. })) = self.server.handle_receive(now, unix(now), from, buf) {
            let mut side = self.side.borrow_mut();
            let id = side.slot_client[slot].expect("payload from a slot that never reported connecting");
            side.up[(id - 1000) as usize].take(b'u', id, data);
        }
        self.events();
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if let Some((dst, len, bytes)) = self.carry.take() {
            buf[..len].copy_from_slice(&bytes[..len]);
            return Some(Transmit { source: None, destination: dst, len });
        }
        if let Some(t) = self.server.poll_transmit(now, buf) {
            return Some(t);
        }
        while self.cursor < CLIENTS {
            let slot = self.cursor;
            self.cursor += 1;
            let Some(id) = self.server.client_id(slot) else { continue };
            let mut side = self.side.borrow_mut();
            let k = (id - 1000) as usize;
            let n = side.sent[k];
            side.sent[k] += 1;
            let sp = self.server.send_payload(now, slot, &payload(b'd', id, n), buf).unwrap();
            if sp.keep_alive_len == 0 {
                return Some(Transmit { source: None, destination: sp.destination, len: sp.payload_len });
            }
            let mut bytes = [0u8; MAX_PACKET_BYTES];
            bytes[..sp.payload_len].copy_from_slice(&buf[sp.keep_alive_len..sp.keep_alive_len + sp.payload_len]);
            self.carry = Some((sp.destination, sp.payload_len, bytes));
            return Some(Transmit { source: None, destination: sp.destination, len: sp.keep_alive_len });
        }
        None
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Some(self.server.poll_timeout().map_or(self.next_round, |t| t.min(self.next_round)))
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.server.handle_timeout(now);
        self.events();
        if now >= self.next_round {
            self.cursor = 0;
            self.next_round += PERIOD;
        }
    }
}

fn token(id: u64, server: SocketAddr, now: Instant, rng: &mut rand_chacha::ChaCha8Rng) -> [u8; CONNECT_TOKEN_BYTES] {
    let ud = [id as u8; 256];
    let params = ConnectTokenParams {
        protocol_id: PID,
        client_id: id,
        create_timestamp: unix(now),
        expire_seconds: 60,
        timeout_seconds: 10,
        public_addresses: &[server],
        internal_addresses: &[server],
        user_data: &ud,
    };
    let mut out = [0u8; CONNECT_TOKEN_BYTES];
    generate_connect_token(&params, &KEY, rng, &mut out).unwrap();
    out
}

fn client_node(id: u64, tok: &[u8], now: Instant) -> ClientNode {
    let mut client = NetcodeClient::new();
    client.connect(now, tok).unwrap();
    ClientNode {
        id,
        client,
        next_payload: now + PERIOD,
        due: false,
        sent: 0,
        down: Flow::default(),
        scratch: vec![0; 2048],
        states: Vec::new(),
    }
}

#[test]
fn soak_256_clients_10_percent_loss() {
    let secs: u64 = std::env::var("NETCODE_SOAK_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(600);
    run_with_seed(0x5eed_0256, |seed| {
        let started = std::time::Instant::now();
        let mut net = Network::new(seed);
        let per_link = 1.0 - (1.0 - LOSS).sqrt();
        net.set_default_link(LinkConfig::ideal().with_loss(per_link).with_delay(Duration::from_millis(20)));
        let server_addr: SocketAddr = "203.0.113.1:40000".parse().unwrap();
        let side = Rc::new(RefCell::new(ServerSide {
            slot_client: vec![None; CLIENTS],
            sent: vec![0; CLIENTS + 1],
            up: vec![Flow::default(); CLIENTS + 1],
            ..Default::default()
        }));
        let mut rng = net.rng(0);
        let cfg = ServerConfig { protocol_id: PID, private_key: KEY, public_address: server_addr };
        let server = ServerNode {
            server: Box::new(Server::new(cfg, &mut rng)),
            side: side.clone(),
            next_round: Instant::ZERO + PERIOD,
            cursor: CLIENTS,
            carry: None,
            scratch: vec![0; 2048],
        };
        net.add_host(Network::PUBLIC, server_addr, server);
        let mut ids = Vec::new();
        for i in 0..CLIENTS {
            let addr: SocketAddr =
                format!("10.{}.{}.{}:{}", 1 + i / 200, (i / 50) % 250, 1 + i % 50, 5000 + i).parse().unwrap();
            let id = 1000 + i as u64;
            let tok = token(id, server_addr, net.now(), &mut rng);
            ids.push(net.add_host(Network::PUBLIC, addr, client_node(id, &tok, net.now())));
        }

        let all_connected = net.run_until_cond(Instant::from_secs(30), |n| {
            ids.iter().all(|&c| n.node::<ClientNode>(c).client.state() == ClientState::Connected)
        });
        assert!(all_connected, "not every client connected within 30 s at {LOSS} loss");
        let connect_time = net.now();
        net.run_until(Instant::from_secs(secs));

        // Nobody dropped, at any time.
        let side_ref = side.borrow();
        assert!(side_ref.disconnects.is_empty(), "server dropped clients: {:?}", &side_ref.disconnects[..1]);
        assert_eq!(side_ref.connects, CLIENTS);
        let mut totals = (0u64, 0u64, 0u64, 0u64);
        for (k, &c) in ids.iter().enumerate() {
            let node = net.node::<ClientNode>(c);
            assert_eq!(node.client.state(), ClientState::Connected, "client {k}");
            assert_eq!(
                node.states,
                [ClientState::SendingConnectionRequest, ClientState::SendingConnectionResponse, ClientState::Connected],
                "client {k}"
            );
            node.down.check(side_ref.sent[k], "server -> client");
            side_ref.up[k].check(node.sent, "client -> server");
            totals.0 += u64::from(node.sent) + u64::from(side_ref.sent[k]);
            totals.1 += node.down.received + side_ref.up[k].received;
            totals.2 += node.down.gaps + side_ref.up[k].gaps;
            totals.3 += u64::from(node.sent);
        }
        // The gaps must show the configured end-to-end loss.
        let loss = totals.2 as f64 / totals.0 as f64;
        assert!((LOSS - 0.01..LOSS + 0.01).contains(&loss), "payload loss {loss}");
        let expected_per_client = (secs as f64 - connect_time.as_millis() as f64 / 1000.0) * 60.0;
        assert!(totals.3 as f64 >= 0.99 * expected_per_client * CLIENTS as f64, "clients sent {} payloads", totals.3);
        drop(side_ref);

        // A 257th client is denied: every slot is taken.
        let extra_id = 1000 + CLIENTS as u64;
        let tok = token(extra_id, server_addr, net.now(), &mut rng);
        let extra =
            net.add_host(Network::PUBLIC, "10.9.9.9:7000".parse().unwrap(), client_node(extra_id, &tok, net.now()));
        let denied = net.run_until_cond(net.now() + Duration::from_secs(10), |n| {
            n.node::<ClientNode>(extra).client.state() == ClientState::ConnectionDenied
        });
        assert!(denied, "257th client: {:?}", net.node::<ClientNode>(extra).client.state());
        assert!(side.borrow().disconnects.is_empty());

        let stats = net.stats();
        println!(
            "soak: {CLIENTS} clients, {secs} virtual s, all connected at {:.2} s; payloads sent {}, received {}, lost {} ({:.2}%); \
             datagrams sent {} (lost {}); {} events; wall {:.1} s",
            connect_time.as_millis() as f64 / 1000.0,
            totals.0,
            totals.1,
            totals.2,
            loss * 100.0,
            stats.sent,
            stats.lost,
            net.events_processed(),
            started.elapsed().as_secs_f64()
        );
    });
}
