use super::*;
use crate::netcode::client::{ClientState, NetcodeClient};
use crate::netcode::wire::{generate_connect_token, ConnectTokenParams, CONNECT_TOKEN_BYTES, MAX_PACKET_BYTES};
use rand::SeedableRng;

const PID: u64 = 0x1122334455667788;
const KEY: Key = [7; 32];
const UNIX: u64 = 1_800_000_000;

fn server_addr() -> SocketAddr {
    "10.0.0.1:40000".parse().unwrap()
}

fn token(client_id: u64, timeout: i32, rng: &mut rand::rngs::StdRng) -> [u8; CONNECT_TOKEN_BYTES] {
    let addrs = [server_addr()];
    let ud = [client_id as u8; 256];
    let p = ConnectTokenParams {
        protocol_id: PID,
        client_id,
        create_timestamp: UNIX,
        expire_seconds: 30,
        timeout_seconds: timeout,
        public_addresses: &addrs,
        internal_addresses: &addrs,
        user_data: &ud,
    };
    let mut out = [0u8; CONNECT_TOKEN_BYTES];
    generate_connect_token(&p, &KEY, rng, &mut out).unwrap();
    out
}

type Small = NetcodeServerN<2, 4, 8>;

struct Net {
    server: Small,
    clients: std::vec::Vec<(SocketAddr, NetcodeClient)>,
    now: Instant,
    server_rx: std::vec::Vec<(usize, std::vec::Vec<u8>)>,
    client_rx: std::vec::Vec<(usize, std::vec::Vec<u8>)>,
    events: std::vec::Vec<ServerEvent>,
    drop_to_server: bool,
}

extern crate std;

impl Net {
    fn new(rng: &mut rand::rngs::StdRng) -> Self {
        let cfg = ServerConfig { protocol_id: PID, private_key: KEY, public_address: server_addr() };
        Net {
            server: Small::new(cfg, rng),
            clients: std::vec::Vec::new(),
            now: Instant::from_secs(100),
            server_rx: std::vec::Vec::new(),
            client_rx: std::vec::Vec::new(),
            events: std::vec::Vec::new(),
            drop_to_server: false,
        }
    }
    fn add(&mut self, tok: &[u8]) -> usize {
        let addr: SocketAddr = std::format!("10.0.1.{}:5000", self.clients.len() + 1).parse().unwrap();
        let mut c = NetcodeClient::new();
        c.connect(self.now, tok).unwrap();
        self.clients.push((addr, c));
        self.clients.len() - 1
    }
    /// Deliver everything until quiet, at the current time.
    fn pump(&mut self) {
        let mut buf = [0u8; MAX_PACKET_BYTES];
        for _ in 0..100 {
            let mut moved = false;
            for ci in 0..self.clients.len() {
                let (addr, c) = &mut self.clients[ci];
                c.handle_timeout(self.now);
                while let Some(t) = c.poll_transmit(self.now, &mut buf) {
                    assert_eq!(t.destination, server_addr());
                    moved = true;
                    if self.drop_to_server {
                        continue;
                    }
                    if let Ok(Some(p)) = self.server.handle_receive(self.now, UNIX, *addr, &mut buf[..t.len]) {
                        self.server_rx.push((p.slot, p.data.to_vec()));
                    }
                }
            }
            self.server.handle_timeout(self.now);
            while let Some(t) = self.server.poll_transmit(self.now, &mut buf) {
                moved = true;
                if let Some(ci) = self.clients.iter().position(|(a, _)| *a == t.destination) {
                    if let Ok(Some(p)) = self.clients[ci].1.handle_receive(self.now, server_addr(), &mut buf[..t.len]) {
                        self.client_rx.push((ci, p.data.to_vec()));
                    }
                }
            }
            while let Some(e) = self.server.poll_event() {
                self.events.push(e);
            }
            if !moved {
                break;
            }
        }
    }
    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now += Duration::from_millis(10);
            self.pump();
        }
    }
}

#[test]
fn handshake_payloads_keepalives_and_timeouts() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut net = Net::new(&mut rng);
    let t = token(42, 2, &mut rng);
    let c = net.add(&t);
    net.run(Duration::from_millis(300));
    assert_eq!(net.clients[c].1.state(), ClientState::Connected);
    assert_eq!(net.server.num_connected(), 1);
    assert_eq!(net.server.num_pending(net.now), 0);
    match &net.events[0] {
        ServerEvent::ClientConnected { slot, client_id: 42, user_data, .. } => {
            assert_eq!(*slot as u32, net.clients[c].1.client_index());
            assert_eq!(net.clients[c].1.max_clients(), 2);
            assert_eq!(user_data, &[42u8; 256]);
        }
        e => panic!("{e:?}"),
    }
    // Server payload before confirmation carries a keep-alive first.
    let mut buf = [0u8; 2 * MAX_PACKET_BYTES];
    let now = net.now;
    // Stays connected well past the 2 s timeout on keep-alives alone.
    net.run(Duration::from_secs(5));
    assert_eq!(net.clients[c].1.state(), ClientState::Connected);
    assert_eq!(net.server.num_connected(), 1);
    let slot = net.clients[c].1.client_index() as usize;
    let sent = net.server.send_payload(net.now, slot, b"to client", &mut buf).unwrap();
    assert_eq!(sent.keep_alive_len, 0, "confirmed by the client's keep-alives");
    let p = net.clients[c].1.handle_receive(net.now, server_addr(), &mut buf[..sent.payload_len]).unwrap().unwrap();
    assert_eq!(p.data, b"to client");
    let tx = net.clients[c].1.send_payload(net.now, b"to server", &mut buf).unwrap();
    let addr = net.clients[c].0;
    let p = net.server.handle_receive(net.now, UNIX, addr, &mut buf[..tx.len]).unwrap().unwrap();
    assert_eq!((p.slot, p.data), (slot, &b"to server"[..]));
    assert!(now < net.now);

    // Silence from the client: the server times it out, the client too.
    net.drop_to_server = true;
    net.run(Duration::from_secs(3));
    assert_eq!(net.server.num_connected(), 0);
    assert!(net
        .events
        .iter()
        .any(|e| matches!(e, ServerEvent::ClientDisconnected { reason: DisconnectReason::TimedOut, .. })));
    net.drop_to_server = false;
    net.run(Duration::from_secs(2));
    assert_eq!(net.clients[c].1.state(), ClientState::ConnectionTimedOut);
}

#[test]
fn tokens_are_single_use_and_full_server_denies() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let mut net = Net::new(&mut rng);
    let t1 = token(1, 5, &mut rng);
    let a = net.add(&t1);
    net.run(Duration::from_millis(300));
    assert_eq!(net.clients[a].1.state(), ClientState::Connected);
    // Client disconnects on purpose: 10 packets, server frees the slot.
    net.clients[a].1.disconnect(net.now);
    net.run(Duration::from_millis(100));
    assert_eq!(net.server.num_connected(), 0);
    assert!(net
        .events
        .iter()
        .any(|e| matches!(e, ServerEvent::ClientDisconnected { reason: DisconnectReason::ClientDisconnect, .. })));
    // The same token again from the same address: consumed, refused.
    net.clients[a].1.connect(net.now, &t1).unwrap();
    let tokens_before = net.server.num_tokens_seen();
    net.run(Duration::from_millis(500));
    assert_eq!(net.clients[a].1.state(), ClientState::SendingConnectionRequest);
    assert_eq!(net.server.num_tokens_seen(), tokens_before);
    // Two slots: the third client is denied.
    let b = net.add(&token(2, 5, &mut rng));
    let c = net.add(&token(3, 5, &mut rng));
    net.run(Duration::from_millis(300));
    assert_eq!(net.clients[b].1.state(), ClientState::Connected);
    assert_eq!(net.clients[c].1.state(), ClientState::Connected);
    let d = net.add(&token(4, 5, &mut rng));
    net.run(Duration::from_millis(300));
    assert_eq!(net.clients[d].1.state(), ClientState::ConnectionDenied);
    // Server-side disconnect reaches the client.
    net.server.disconnect(net.clients[b].1.client_index() as usize).unwrap();
    net.run(Duration::from_millis(100));
    assert_eq!(net.clients[b].1.state(), ClientState::Disconnected);
}

#[test]
fn server_memory() {
    use core::mem::size_of;
    std::println!("NetcodeServerN<16, 16, 64>   = {} bytes", size_of::<NetcodeServerN<16, 16, 64>>());
    std::println!("NetcodeServerN<64, 64, 256>  = {} bytes (NetcodeServer)", size_of::<NetcodeServer>());
    std::println!("NetcodeServerN<256, 256, 1024> = {} bytes", size_of::<NetcodeServerN<256, 256, 1024>>());
    std::println!("NetcodeClient = {} bytes", size_of::<NetcodeClient>());
    assert!(size_of::<NetcodeServerN<256, 256, 1024>>() < 256 * 1024);
}
