//! DTLS handshakes over the deterministic network simulator: loss, reorder,
//! duplication and a 576-byte IP MTU; fingerprint mismatch; tampered and
//! replayed records; garbage. Failures print the seed (`NETSIM_SEED=N`
//! replays one).

use std::collections::VecDeque;
use std::net::SocketAddr;

use host_tests::netsim::{run_seeds, run_with_seed, LinkConfig, Network, Node, NodeId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tinyrtc::dtls::{DtlsConfig, DtlsEndpoint, DtlsEvent, DtlsFailure, DtlsIdentity, DtlsRole, Fingerprint};
use tinyrtc::{Duration, Instant, Transmit};

/// What a node does to its own outgoing datagrams (an on-path attacker
/// sitting next to it).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mischief {
    None,
    /// After the handshake: each datagram is followed by a forged copy (new
    /// sequence number, one bit flipped) and by the same datagram again (a
    /// replay).
    TamperAndReplay,
    /// Each datagram is followed by a randomly mutated copy.
    Mutate,
}

struct DtlsNode {
    ep: DtlsEndpoint,
    peer: SocketAddr,
    events: Vec<DtlsEvent>,
    received: Vec<Vec<u8>>,
    mischief: Mischief,
    extra: VecDeque<Vec<u8>>,
    rng: ChaCha8Rng,
}

impl DtlsNode {
    fn new(ep: DtlsEndpoint, peer: SocketAddr, seed: u64) -> Self {
        DtlsNode {
            ep,
            peer,
            events: Vec::new(),
            received: Vec::new(),
            mischief: Mischief::None,
            extra: VecDeque::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    fn drain(&mut self) {
        while let Some(e) = self.ep.poll_event() {
            self.events.push(e);
        }
        let mut buf = [0u8; 2048];
        while let Ok(Some(n)) = self.ep.read_application_data(&mut buf) {
            self.received.push(buf[..n].to_vec());
        }
    }

    fn connected(&self) -> bool {
        self.events.iter().any(|e| matches!(e, DtlsEvent::Connected { .. }))
    }

    fn failed(&self) -> Option<DtlsFailure> {
        self.events.iter().find_map(|e| match e {
            DtlsEvent::Failed(f) => Some(*f),
            _ => None,
        })
    }
}

impl Node for DtlsNode {
    fn handle_receive(&mut self, now: Instant, _from: SocketAddr, _to: SocketAddr, data: &[u8]) {
        let _ = self.ep.handle_receive(now, data);
        self.drain();
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let transmit = |len| Some(Transmit { source: None, destination: self.peer, len });
        if let Some(d) = self.extra.pop_front() {
            buf[..d.len()].copy_from_slice(&d);
            return transmit(d.len());
        }
        let n = self.ep.poll_transmit(now, buf)?;
        let d = &buf[..n];
        match self.mischief {
            Mischief::None => {}
            Mischief::TamperAndReplay if self.ep.is_connected() => {
                // A forged record: fresh sequence number (so the replay
                // window lets it through to the AEAD) and a flipped bit.
                let mut bad = d.to_vec();
                bad[10] = bad[10].wrapping_add(100);
                let i = self.rng.gen_range(13..n);
                bad[i] ^= 1 << self.rng.gen_range(0..8);
                self.extra.push_back(bad);
                self.extra.push_back(d.to_vec());
            }
            Mischief::TamperAndReplay => {}
            Mischief::Mutate => {
                let mut m = d.to_vec();
                match self.rng.gen_range(0..3) {
                    0 => {
                        let i = self.rng.gen_range(0..n);
                        m[i] ^= 1 << self.rng.gen_range(0..8);
                    }
                    1 => m.truncate(self.rng.gen_range(0..n)),
                    _ => {
                        for _ in 0..4 {
                            let i = self.rng.gen_range(0..n);
                            m[i] = self.rng.gen();
                        }
                    }
                }
                self.extra.push_back(m);
            }
        }
        transmit(n)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.extra.is_empty() {
            self.ep.poll_timeout()
        } else {
            Some(Instant::ZERO)
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.ep.handle_timeout(now);
        self.drain();
    }
}

/// Sends random datagrams (first byte in the DTLS range 20..=63) to a target.
struct Garbage {
    target: SocketAddr,
    rng: ChaCha8Rng,
    left: u32,
    next: Instant,
}

impl Node for Garbage {
    fn handle_receive(&mut self, _: Instant, _: SocketAddr, _: SocketAddr, _: &[u8]) {}
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if self.left == 0 || now < self.next {
            return None;
        }
        self.left -= 1;
        self.next = now + Duration::from_millis(self.rng.gen_range(1..20));
        let n = self.rng.gen_range(1..600);
        self.rng.fill(&mut buf[..n]);
        buf[0] = self.rng.gen_range(20..64);
        if self.rng.gen_bool(0.5) && n >= 13 {
            // A plausible record header: DTLS 1.2, epoch 0 or 1, a length
            // that may or may not match.
            buf[1] = 0xfe;
            buf[2] = 0xfd;
            buf[3] = 0;
            buf[4] = self.rng.gen_range(0..2);
            buf[0] = self.rng.gen_range(20..24);
        }
        Some(Transmit { source: None, destination: self.target, len: n })
    }
    fn poll_timeout(&self) -> Option<Instant> {
        (self.left > 0).then_some(self.next)
    }
    fn handle_timeout(&mut self, _: Instant) {}
}

const CLIENT: &str = "198.51.100.10:5000";
const SERVER: &str = "203.0.113.20:6000";
/// IP MTU of the links; DTLS datagrams must fit after IPv4 + UDP headers.
const LINK_MTU: usize = 576;

struct Setup {
    net: Network,
    client: NodeId,
    server: NodeId,
}

fn setup(
    seed: u64,
    link: LinkConfig,
    client_expects: Option<Fingerprint>,
    server_expects: Option<Fingerprint>,
) -> Setup {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let ci = DtlsIdentity::generate(&mut rng);
    let si = DtlsIdentity::generate(&mut rng);
    let mut cc = DtlsConfig::new(DtlsRole::Client);
    let mut sc = DtlsConfig::new(DtlsRole::Server);
    cc.mtu = (LINK_MTU - 28) as u16;
    sc.mtu = (LINK_MTU - 28) as u16;
    let client_ep = DtlsEndpoint::new(cc, &ci, Some(client_expects.unwrap_or(si.fingerprint())), &mut rng);
    let mut server_ep = DtlsEndpoint::new(sc, &si, Some(server_expects.unwrap_or(ci.fingerprint())), &mut rng);
    let (ca, sa): (SocketAddr, SocketAddr) = (CLIENT.parse().unwrap(), SERVER.parse().unwrap());
    server_ep.set_peer_address(ca);
    let mut net = Network::new(seed);
    // Impairments on the client's access link only: its loss is the
    // end-to-end loss in each direction.
    net.set_default_link(LinkConfig { mtu: LINK_MTU, ..LinkConfig::wan() });
    let client = net.add_host(Network::PUBLIC, ca, DtlsNode::new(client_ep, sa, seed ^ 1));
    let server = net.add_host(Network::PUBLIC, sa, DtlsNode::new(server_ep, ca, seed ^ 2));
    net.set_link(client, link);
    Setup { net, client, server }
}

fn impaired(loss: f64) -> LinkConfig {
    LinkConfig {
        loss,
        reorder: 0.2,
        reorder_delay: Duration::from_millis(40),
        duplicate: 0.1,
        mtu: LINK_MTU,
        ..LinkConfig::wan()
    }
}

/// Virtual time every handshake must finish in, whatever the loss.
const HANDSHAKE_DEADLINE: Instant = Instant::from_secs(120);

fn handshake_completes(seed: u64, loss: f64) -> Instant {
    let Setup { mut net, client, server } = setup(seed, impaired(loss), None, None);
    let done = net.run_until_cond(HANDSHAKE_DEADLINE, |net| {
        net.node::<DtlsNode>(client).connected() && net.node::<DtlsNode>(server).connected()
    });
    let (c, s) = (net.node::<DtlsNode>(client), net.node::<DtlsNode>(server));
    assert!(done, "loss {loss}: client {:?} {:?}, server {:?} {:?}", c.events, c.ep, s.events, s.ep);
    let took = net.now();
    // Same SRTP keys on both sides.
    let keys = |n: &DtlsNode| {
        n.events.iter().find_map(|e| match e {
            DtlsEvent::Connected { srtp, .. } => *srtp,
            _ => None,
        })
    };
    assert_eq!(keys(c), keys(s));
    assert!(keys(c).is_some());
    took
}

#[test]
fn handshakes_complete_under_loss_reorder_duplication_and_small_mtu() {
    for (loss, seeds) in [(0.0, 0..10u64), (0.1, 100..120), (0.3, 300..330)] {
        let mut worst = Instant::ZERO;
        let mut total = 0u64;
        let n = seeds.end - seeds.start;
        run_seeds(seeds, |seed| {
            let t = handshake_completes(seed, loss);
            worst = worst.max(t);
            total += t.as_millis();
        });
        println!(
            "loss {:>3.0}%: {n} handshakes, mean {} ms, worst {} ms virtual time",
            loss * 100.0,
            total / n,
            worst.as_millis()
        );
    }
}

#[test]
fn application_data_after_a_lossy_handshake() {
    run_with_seed(42, |seed| {
        let Setup { mut net, client, server } = setup(seed, impaired(0.1), None, None);
        assert!(net.run_until_cond(HANDSHAKE_DEADLINE, |net| {
            net.node::<DtlsNode>(client).connected() && net.node::<DtlsNode>(server).connected()
        }));
        net.set_link(client, LinkConfig { mtu: LINK_MTU, ..LinkConfig::wan() });
        for i in 0..20u32 {
            net.node_mut::<DtlsNode>(client).ep.send_application_data(&i.to_be_bytes()).unwrap();
            net.node_mut::<DtlsNode>(server).ep.send_application_data(&(1000 + i).to_be_bytes()).unwrap();
        }
        net.run_for(Duration::from_secs(2));
        let got = |id| net.node::<DtlsNode>(id).received.clone();
        assert_eq!(got(server), (0..20u32).map(|i| i.to_be_bytes().to_vec()).collect::<Vec<_>>());
        assert_eq!(got(client), (1000..1020u32).map(|i| i.to_be_bytes().to_vec()).collect::<Vec<_>>());
    });
}

#[test]
fn fingerprint_mismatch_fails_closed_on_both_sides() {
    run_seeds(0..4, |seed| {
        let wrong = Fingerprint { sha256: [seed as u8; 32] };
        // The client expects a different server certificate, then the other way round.
        for client_side in [true, false] {
            let (ce, se) = if client_side { (Some(wrong), None) } else { (None, Some(wrong)) };
            let Setup { mut net, client, server } = setup(seed, impaired(0.0), ce, se);
            net.run_until(Instant::from_secs(30));
            let (c, s) = (net.node::<DtlsNode>(client), net.node::<DtlsNode>(server));
            assert!(!c.connected() && !s.connected(), "{:?} {:?}", c.events, s.events);
            assert!(c.ep.is_closed() && s.ep.is_closed());
            let (checker, other) = if client_side { (c, s) } else { (s, c) };
            assert_eq!(checker.failed(), Some(DtlsFailure::FingerprintMismatch));
            assert_eq!(other.failed(), Some(DtlsFailure::PeerAlert(42)), "bad_certificate alert");
        }
    });
}

#[test]
fn tampered_and_replayed_records_are_dropped_and_counted() {
    run_with_seed(7, |seed| {
        let Setup { mut net, client, server } = setup(seed, impaired(0.0), None, None);
        net.node_mut::<DtlsNode>(client).mischief = Mischief::TamperAndReplay;
        assert!(net.run_until_cond(HANDSHAKE_DEADLINE, |net| {
            net.node::<DtlsNode>(client).connected() && net.node::<DtlsNode>(server).connected()
        }));
        // No duplication on the path: every extra copy comes from the attacker.
        net.set_link(client, LinkConfig { mtu: LINK_MTU, ..LinkConfig::wan() });
        let before = net.node::<DtlsNode>(server).ep.stats();
        for i in 0..30u32 {
            net.node_mut::<DtlsNode>(client).ep.send_application_data(&i.to_be_bytes()).unwrap();
            net.run_for(Duration::from_millis(10));
        }
        net.run_for(Duration::from_secs(1));
        let s = net.node::<DtlsNode>(server);
        assert_eq!(s.received, (0..30u32).map(|i| i.to_be_bytes().to_vec()).collect::<Vec<_>>());
        let after = s.ep.stats();
        assert_eq!(after.dropped_bad_tag - before.dropped_bad_tag, 30, "{after:?}");
        assert_eq!(after.dropped_replayed - before.dropped_replayed, 30, "{after:?}");
        assert!(s.ep.is_connected());
    });
}

#[test]
fn garbage_and_mutated_records_never_panic() {
    run_seeds(0..12, |seed| {
        // Random datagrams at the server while the handshake runs: it still
        // completes.
        let Setup { mut net, client, server } = setup(seed, impaired(0.0), None, None);
        let target = net.addr(server);
        let g = Garbage { target, rng: ChaCha8Rng::seed_from_u64(seed), left: 300, next: Instant::ZERO };
        net.add_host(Network::PUBLIC, "192.0.2.66:666".parse().unwrap(), g);
        let g2 =
            Garbage { target: net.addr(client), rng: ChaCha8Rng::seed_from_u64(!seed), left: 300, next: Instant::ZERO };
        net.add_host(Network::PUBLIC, "192.0.2.67:666".parse().unwrap(), g2);
        assert!(net.run_until_cond(HANDSHAKE_DEADLINE, |net| {
            net.node::<DtlsNode>(client).connected() && net.node::<DtlsNode>(server).connected()
        }));
        net.run_for(Duration::from_secs(10));
        let (c, s) = (net.node::<DtlsNode>(client), net.node::<DtlsNode>(server));
        assert!(c.ep.is_connected() && s.ep.is_connected());
        assert!(s.ep.stats().dropped_malformed + s.ep.stats().dropped_bad_epoch + s.ep.stats().dropped_bad_tag > 0);

        // Mutated copies of every datagram from both sides: plaintext
        // handshake messages are not authenticated, so the handshake may
        // fail (cleanly) or succeed; nothing may panic or hang.
        let Setup { mut net, client, server } = setup(seed, impaired(0.05), None, None);
        net.node_mut::<DtlsNode>(client).mischief = Mischief::Mutate;
        net.node_mut::<DtlsNode>(server).mischief = Mischief::Mutate;
        net.run_until(Instant::from_secs(200));
        let (c, s) = (net.node::<DtlsNode>(client), net.node::<DtlsNode>(server));
        // The client (it has the timers) ends connected or failed; a
        // connected client implies a connected server. A stateless server
        // may still be waiting for a ClientHello.
        assert!(c.ep.is_connected() || c.ep.is_closed(), "{:?} {:?}", c.events, c.ep);
        assert!(!c.ep.is_connected() || s.ep.is_connected(), "{:?} {:?}", s.events, s.ep);
    });
}
