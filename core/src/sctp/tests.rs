//! Association tests: two associations in memory, a virtual clock, a link
//! with a fixed delay and seeded loss/reordering.

extern crate std;

use std::boxed::Box;
use std::collections::VecDeque;
use std::vec::Vec;

use rand::{Rng, SeedableRng};

use super::association::*;
use super::dcep::Reliability;
use super::wire::{self, Chunk};
use crate::time::{Duration, Instant};

type Assoc = SctpAssociationN<65536, 65536, 8, 128>;

type PacketFilter = Box<dyn FnMut(bool, &[u8]) -> bool>;

struct Link {
    /// Packets in flight: (arrival, to_b, bytes).
    queue: Vec<(Instant, bool, Vec<u8>)>,
    delay: Duration,
    jitter: Duration,
    loss: f64,
    /// Drop everything sent by A (A "vanished" as a sender) / by B.
    cut_a: bool,
    cut_b: bool,
    rng: rand::rngs::StdRng,
    /// Optional filter: return false to drop a packet (sent by A when `true`).
    filter: Option<PacketFilter>,
}

struct Pair {
    a: Box<Assoc>,
    b: Box<Assoc>,
    now: Instant,
    link: Link,
    a_events: VecDeque<Event>,
    b_events: VecDeque<Event>,
    a_msgs: Vec<(ChannelId, MessageKind, Vec<u8>)>,
    b_msgs: Vec<(ChannelId, MessageKind, Vec<u8>)>,
    /// Read messages as they are announced.
    auto_read: bool,
    seed: u64,
}

fn config() -> SctpConfig {
    SctpConfig { rto_min: Duration::from_millis(200), rto_initial: Duration::from_millis(500), ..SctpConfig::default() }
}

impl Pair {
    fn new(seed: u64) -> Pair {
        Self::with_config(seed, config(), config())
    }

    fn with_config(seed: u64, ca: SctpConfig, cb: SctpConfig) -> Pair {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let a = Box::new(Assoc::new(ca, Role::Client, &mut rng));
        let b = Box::new(Assoc::new(cb, Role::Server, &mut rng));
        Self::with_assocs(seed, a, b)
    }

    fn with_assocs(seed: u64, a: Box<Assoc>, b: Box<Assoc>) -> Pair {
        Pair {
            a,
            b,
            now: Instant::from_secs(1),
            link: Link {
                queue: Vec::new(),
                delay: Duration::from_millis(10),
                jitter: Duration::ZERO,
                loss: 0.0,
                cut_a: false,
                cut_b: false,
                rng: rand::rngs::StdRng::seed_from_u64(seed ^ 0xabcdef),
                filter: None,
            },
            a_events: VecDeque::new(),
            b_events: VecDeque::new(),
            a_msgs: Vec::new(),
            b_msgs: Vec::new(),
            auto_read: true,
            seed,
        }
    }

    fn drain(&mut self) {
        let mut buf = [0u8; 1500];
        for from_a in [true, false] {
            loop {
                let assoc = if from_a { &mut self.a } else { &mut self.b };
                let Some(n) = assoc.poll_transmit(self.now, &mut buf) else { break };
                assert!(n <= 1200, "packet over mtu (seed {})", self.seed);
                let pkt = buf[..n].to_vec();
                let cut = if from_a { self.link.cut_a } else { self.link.cut_b };
                let lost = self.link.loss > 0.0 && self.link.rng.gen_bool(self.link.loss);
                let keep = self.link.filter.as_mut().map_or(true, |f| f(from_a, &pkt));
                if !cut && !lost && keep {
                    let j = if self.link.jitter > Duration::ZERO {
                        self.link.rng.gen_range(0..self.link.jitter.as_micros())
                    } else {
                        0
                    };
                    let at = self.now + self.link.delay + Duration::from_micros(j);
                    self.link.queue.push((at, from_a, pkt));
                }
            }
        }
        for is_a in [true, false] {
            loop {
                let assoc = if is_a { &mut self.a } else { &mut self.b };
                let Some(ev) = assoc.poll_event() else { break };
                if self.auto_read {
                    if let Event::MessageReceived { len, .. } = ev {
                        let mut m = std::vec![0u8; len];
                        let (ch, kind, n) = assoc.read_message(&mut m).unwrap();
                        assert_eq!(n, len);
                        if is_a {
                            self.a_msgs.push((ch, kind, m));
                        } else {
                            self.b_msgs.push((ch, kind, m));
                        }
                    }
                }
                if is_a {
                    self.a_events.push_back(ev);
                } else {
                    self.b_events.push_back(ev);
                }
            }
        }
    }

    /// Advance to the next packet arrival or timer, at most until `until`.
    fn step(&mut self, until: Instant) -> bool {
        self.drain();
        let next_pkt = self.link.queue.iter().map(|p| p.0).min();
        let next = [next_pkt, self.a.poll_timeout(), self.b.poll_timeout()].into_iter().flatten().min();
        let Some(next) = next else { return false };
        if next > until {
            self.now = until;
            return false;
        }
        self.now = self.now.max(next);
        // Deliver due packets in arrival order.
        self.link.queue.sort_by_key(|p| p.0);
        while let Some(p) = self.link.queue.first() {
            if p.0 > self.now {
                break;
            }
            let (_, to_b, pkt) = self.link.queue.remove(0);
            let assoc = if to_b { &mut self.b } else { &mut self.a };
            let _ = assoc.handle_receive(self.now, &pkt);
            self.drain();
        }
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
        self.drain();
        true
    }

    fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        while self.now < until {
            if !self.step(until) {
                self.now = until;
                break;
            }
        }
        self.drain();
    }

    fn run_until(&mut self, limit: Duration, mut cond: impl FnMut(&mut Pair) -> bool) -> bool {
        let until = self.now + limit;
        loop {
            if cond(self) {
                return true;
            }
            if self.now >= until || !self.step(until) {
                return cond(self);
            }
        }
    }

    fn connect(&mut self) {
        self.a.connect(self.now);
        let ok = self.run_until(Duration::from_secs(5), |p| p.a.is_established() && p.b.is_established());
        assert!(ok, "handshake failed (seed {})", self.seed);
        assert_eq!(self.a_events.pop_front(), Some(Event::AssociationEstablished));
        assert_eq!(self.b_events.pop_front(), Some(Event::AssociationEstablished));
    }

    fn open(&mut self, label: &str, config: ChannelConfig) -> ChannelId {
        let id = self.a.open_channel(self.now, label, "", config).unwrap();
        let seed = self.seed;
        let ok = self.run_until(Duration::from_secs(30), |p| {
            p.b_events.iter().any(|e| matches!(e, Event::ChannelOpened { id: i, .. } if *i == id))
                && p.a_events.iter().any(|e| matches!(e, Event::ChannelOpened { id: i, .. } if *i == id))
        });
        assert!(ok, "channel did not open (seed {seed})");
        self.a_events.retain(|e| !matches!(e, Event::ChannelOpened { .. }));
        self.b_events.retain(|e| !matches!(e, Event::ChannelOpened { .. }));
        id
    }
}

fn payload(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|k| (i * 31 + k * 7) as u8).collect()
}

#[test]
fn handshake_and_dcep_open() {
    let mut p = Pair::new(1);
    p.connect();
    let id = p.a.open_channel(p.now, "chat", "proto-x", ChannelConfig::default()).unwrap();
    assert_eq!(id, ChannelId(0), "DTLS client opens even stream ids");
    p.run_for(Duration::from_millis(200));
    let ev = p.b_events.pop_front().unwrap();
    let Event::ChannelOpened { id: bid, label, by_peer } = ev else { panic!("{ev:?}") };
    assert_eq!((bid, label.as_str(), by_peer), (id, "chat", true));
    assert_eq!(p.b.channel_protocol(id), Some("proto-x"));
    assert!(matches!(p.a_events.pop_front(), Some(Event::ChannelOpened { by_peer: false, .. })));
    // The server side opens odd ids.
    let sid = p.b.open_channel(p.now, "back", "", ChannelConfig::default()).unwrap();
    assert_eq!(sid, ChannelId(1));
    p.run_for(Duration::from_millis(200));
    assert!(p.a_events.iter().any(|e| matches!(e, Event::ChannelOpened { id, by_peer: true, .. } if *id == sid)));
    assert_eq!(p.a.channel_label(sid), Some("back"));
}

#[test]
fn simultaneous_init() {
    let mut p = Pair::new(2);
    p.a.connect(p.now);
    p.b.connect(p.now);
    assert!(p.run_until(Duration::from_secs(5), |p| p.a.is_established() && p.b.is_established()));
    // Data flows both ways afterwards.
    let id = p.open("x", ChannelConfig::default());
    p.a.send(p.now, id, MessageKind::Text, b"hello").unwrap();
    p.b.send(p.now, id, MessageKind::Binary, b"world").unwrap();
    p.run_for(Duration::from_millis(500));
    assert_eq!(p.b_msgs, std::vec![(id, MessageKind::Text, b"hello".to_vec())]);
    assert_eq!(p.a_msgs, std::vec![(id, MessageKind::Binary, b"world".to_vec())]);
}

#[test]
fn handshake_survives_lost_init_and_cookie() {
    let mut p = Pair::new(3);
    // Drop the first INIT and the first COOKIE-ECHO.
    let mut dropped = [false; 2];
    p.link.filter = Some(Box::new(move |from_a, pkt| {
        let (_, mut chunks) = wire::parse_packet(pkt).unwrap();
        let first = chunks.next().unwrap().unwrap();
        let k = match first {
            Chunk::Init(_) if from_a => 0,
            Chunk::CookieEcho { .. } => 1,
            _ => return true,
        };
        let drop = !dropped[k];
        dropped[k] = true;
        !drop
    }));
    p.connect();
}

#[test]
fn handshake_gives_up() {
    let mut p = Pair::with_config(4, SctpConfig { max_init_retransmits: 3, ..config() }, config());
    p.link.cut_a = true;
    p.a.connect(p.now);
    p.run_for(Duration::from_secs(60));
    assert_eq!(p.a_events.pop_front(), Some(Event::AssociationLost { reason: LostReason::HandshakeTimeout }));
    assert!(p.b_events.is_empty());
}

#[test]
fn listener_keeps_no_state_before_cookie_echo() {
    // B answers INIT with INIT-ACK but stays CLOSED; a forged COOKIE-ECHO is ignored.
    let mut p = Pair::new(5);
    p.a.connect(p.now);
    p.link.cut_b = false;
    p.drain();
    let (_, _, init) = p.link.queue.remove(0);
    p.b.handle_receive(p.now, &init).unwrap();
    let mut buf = [0u8; 1500];
    let n = p.b.poll_transmit(p.now, &mut buf).unwrap();
    assert!(!p.b.is_established());
    let (h, mut chunks) = wire::parse_packet(&buf[..n]).unwrap();
    let Chunk::InitAck(ack) = chunks.next().unwrap().unwrap() else { panic!() };
    let cookie = ack.features().cookie.unwrap().to_vec();
    // Tamper with the cookie: B must not establish.
    let mut bad = cookie.clone();
    bad[3] ^= 1;
    let mut out = [0u8; 256];
    let mut pw = wire::PacketWriter::new(
        &mut out,
        wire::CommonHeader { src_port: 5000, dst_port: 5000, verification_tag: ack.initiate_tag },
    )
    .unwrap();
    pw.push(&Chunk::CookieEcho { cookie: &bad }).unwrap();
    let m = pw.finish();
    p.b.handle_receive(p.now, &out[..m]).unwrap();
    assert!(!p.b.is_established());
    assert!(p.b.poll_event().is_none());
    let _ = h;
    // The genuine cookie works.
    let mut pw = wire::PacketWriter::new(
        &mut out,
        wire::CommonHeader { src_port: 5000, dst_port: 5000, verification_tag: ack.initiate_tag },
    )
    .unwrap();
    pw.push(&Chunk::CookieEcho { cookie: &cookie }).unwrap();
    let m = pw.finish();
    p.b.handle_receive(p.now, &out[..m]).unwrap();
    assert!(p.b.is_established());
}

#[test]
fn ordered_and_unordered_delivery() {
    let mut p = Pair::new(6);
    p.connect();
    let ord = p.open("ordered", ChannelConfig::default());
    let un = p.open("unordered", ChannelConfig { ordered: false, ..ChannelConfig::default() });
    for i in 0..50 {
        p.a.send(p.now, ord, MessageKind::Binary, &payload(i, 100 + i)).unwrap();
        p.a.send(p.now, un, MessageKind::Text, &payload(i, 10)).unwrap();
    }
    p.a.send(p.now, ord, MessageKind::Text, b"").unwrap();
    p.a.send(p.now, ord, MessageKind::Binary, b"").unwrap();
    p.run_for(Duration::from_secs(2));
    let ordered: Vec<_> = p.b_msgs.iter().filter(|m| m.0 == ord).collect();
    assert_eq!(ordered.len(), 52);
    for (i, m) in ordered.iter().take(50).enumerate() {
        assert_eq!(m.2, payload(i, 100 + i));
        assert_eq!(m.1, MessageKind::Binary);
    }
    assert_eq!((ordered[50].1, ordered[50].2.len()), (MessageKind::Text, 0));
    assert_eq!((ordered[51].1, ordered[51].2.len()), (MessageKind::Binary, 0));
    assert_eq!(p.b_msgs.iter().filter(|m| m.0 == un && m.1 == MessageKind::Text).count(), 50);
    assert_eq!(p.a.buffered_amount(), 0);
}

#[test]
fn fragmentation_of_large_messages() {
    let mut p = Pair::new(7);
    p.connect();
    let id = p.open("big", ChannelConfig::default());
    let big = payload(9, 60_000);
    p.a.send(p.now, id, MessageKind::Binary, &big).unwrap();
    p.a.send(p.now, id, MessageKind::Binary, &payload(1, 1173)).unwrap();
    p.run_for(Duration::from_secs(3));
    assert_eq!(p.b_msgs.len(), 2);
    assert_eq!(p.b_msgs[0].2, big);
    assert_eq!(p.b_msgs[1].2, payload(1, 1173));
    // 60000 bytes in 1172-byte fragments: 52 DATA chunks, + 2 + DCEP.
    assert!(p.a.stats().data_chunks_sent >= 54);
}

#[test]
fn max_message_size_and_would_block() {
    let mut p = Pair::new(8);
    p.connect();
    assert_eq!(p.a.max_message_size(), 65536);
    let id = p.open("m", ChannelConfig::default());
    p.a.set_peer_max_message_size(1000);
    assert_eq!(p.a.send(p.now, id, MessageKind::Binary, &[0; 1001]), Err(SctpError::MessageTooLarge));
    p.a.send(p.now, id, MessageKind::Binary, &[0; 1000]).unwrap();
    p.a.set_peer_max_message_size(usize::MAX);
    assert_eq!(p.a.send(p.now, id, MessageKind::Binary, &[0; 70000]), Err(SctpError::MessageTooLarge));
    // Fill the send buffer without running the link.
    let mut sent = 1000;
    loop {
        match p.a.send(p.now, id, MessageKind::Binary, &[1; 16384]) {
            Ok(()) => sent += 16384,
            Err(e) => {
                assert_eq!(e, SctpError::WouldBlock);
                break;
            }
        }
    }
    assert!(sent > 40000 && p.a.buffered_amount() == sent, "{sent}");
    p.run_for(Duration::from_secs(5));
    assert_eq!(p.a.buffered_amount(), 0);
    assert_eq!(p.b_msgs.iter().map(|m| m.2.len()).sum::<usize>(), sent);
    assert_eq!(p.a.send(p.now, ChannelId(99), MessageKind::Binary, b"x"), Err(SctpError::UnknownChannel));
}

#[test]
fn receiver_flow_control_with_unread_messages() {
    let mut p = Pair::new(9);
    p.connect();
    let id = p.open("flow", ChannelConfig::default());
    p.auto_read = false;
    let mut next = 0;
    p.run_until(Duration::from_secs(10), |p| {
        while next < 6 && p.a.send(p.now, id, MessageKind::Binary, &payload(next, 16000)).is_ok() {
            next += 1;
        }
        false
    });
    assert_eq!(next, 6);
    // B's window is 64 KiB: four messages fit, the rest waits at A.
    let announced = p.b_events.iter().filter(|e| matches!(e, Event::MessageReceived { .. })).count();
    assert_eq!(announced, 4);
    assert!(p.a.buffered_amount() >= 96000 - 65536, "{}", p.a.buffered_amount());
    assert!(p.a.is_established() && p.b.is_established(), "zero window must not kill the association");
    // Reading frees space; the rest arrives.
    let mut got = Vec::new();
    let mut buf = std::vec![0u8; 16000];
    assert_eq!(p.b.read_message(&mut buf[..10]), Err(SctpError::BufferTooSmall { needed: 16000 }));
    while let Ok((_, _, n)) = p.b.read_message(&mut buf) {
        got.push(buf[..n].to_vec());
    }
    p.auto_read = true;
    p.run_for(Duration::from_secs(10));
    got.extend(p.b_msgs.drain(..).map(|m| m.2));
    assert_eq!(got.len(), 6);
    for (i, m) in got.iter().enumerate() {
        assert_eq!(*m, payload(i, 16000));
    }
}

fn lossy_reliable_transfer(seed: u64, loss: f64, jitter_ms: u64) {
    let mut p = Pair::new(seed);
    p.connect();
    let id = p.open("reliable", ChannelConfig::default());
    p.link.loss = loss;
    p.link.jitter = Duration::from_millis(jitter_ms);
    let total = 40;
    let mut next = 0;
    let ok = p.run_until(Duration::from_secs(600), |p| {
        while next < total && p.a.send(p.now, id, MessageKind::Binary, &payload(next, 5000)).is_ok() {
            next += 1;
        }
        p.b_msgs.len() == total
    });
    assert!(ok, "transfer stalled at {} of {total} (seed {seed}): {:?} {:?}", p.b_msgs.len(), p.a.stats(), p.b.stats());
    for (i, m) in p.b_msgs.iter().enumerate() {
        assert_eq!(m.2, payload(i, 5000), "message {i} wrong (seed {seed})");
    }
    let s = p.a.stats();
    assert!(s.retransmitted_chunks > 0, "seed {seed}");
}

#[test]
fn loss_recovery_reliable_ordered() {
    for seed in 10..14 {
        lossy_reliable_transfer(seed, 0.1, 0);
        lossy_reliable_transfer(seed, 0.3, 15);
    }
}

#[test]
fn fast_retransmit_recovers_single_loss_without_timeout() {
    let mut p = Pair::new(20);
    p.connect();
    let id = p.open("fr", ChannelConfig::default());
    // Drop exactly one DATA packet from A (the 3rd carrying data).
    let mut n = 0;
    p.link.filter = Some(Box::new(move |from_a, pkt| {
        let (_, mut c) = wire::parse_packet(pkt).unwrap();
        if from_a && c.any(|c| matches!(c, Ok(Chunk::Data(_)))) {
            n += 1;
            return n != 3;
        }
        true
    }));
    for i in 0..20 {
        p.a.send(p.now, id, MessageKind::Binary, &payload(i, 1100)).unwrap();
    }
    p.run_for(Duration::from_secs(3));
    assert_eq!(p.b_msgs.len(), 20);
    let s = p.a.stats();
    assert_eq!(s.fast_retransmits, 1, "{s:?}");
    assert_eq!(s.t3_timeouts, 0, "{s:?}");
    assert_eq!(s.retransmitted_chunks, 1);
}

#[test]
fn congestion_window_grows_then_halves_on_loss() {
    let mut p = Pair::new(21);
    p.connect();
    let id = p.open("cc", ChannelConfig::default());
    let initial = p.a.stats().cwnd;
    assert_eq!(initial, 4380, "RFC 9260 7.2.1: min(4*MTU, max(2*MTU, 4380))");
    for i in 0..40 {
        p.a.send(p.now, id, MessageKind::Binary, &payload(i, 1000)).unwrap();
    }
    p.run_for(Duration::from_secs(2));
    let grown = p.a.stats().cwnd;
    assert!(grown > initial + 5000, "slow start: {initial} -> {grown}");
    p.link.loss = 0.05;
    for i in 0..40 {
        let _ = p.a.send(p.now, id, MessageKind::Binary, &payload(i, 1000));
    }
    p.run_for(Duration::from_secs(20));
    let s = p.a.stats();
    assert!(s.fast_retransmits + s.t3_timeouts > 0);
    assert!((s.ssthresh as usize) < 65536, "ssthresh lowered after loss: {s:?}");
}

#[test]
fn partial_reliability_forward_tsn_skips() {
    let mut p = Pair::new(22);
    p.connect();
    let pr = p.open(
        "pr",
        ChannelConfig { ordered: true, reliability: Reliability::MaxRetransmits(0), ..ChannelConfig::default() },
    );
    let rel = p.open("rel", ChannelConfig::default());
    p.link.loss = 0.3;
    for i in 0..100 {
        p.a.send(p.now, pr, MessageKind::Binary, &payload(i, 300)).unwrap();
        if i % 10 == 0 {
            p.a.send(p.now, rel, MessageKind::Binary, &payload(i, 50)).unwrap();
        }
        p.run_for(Duration::from_millis(5));
    }
    p.link.loss = 0.0;
    p.run_for(Duration::from_secs(30));
    let got_pr: Vec<_> = p.b_msgs.iter().filter(|m| m.0 == pr).collect();
    let got_rel: Vec<_> = p.b_msgs.iter().filter(|m| m.0 == rel).collect();
    assert_eq!(got_rel.len(), 10, "reliable channel unaffected");
    assert!(got_pr.len() < 100 && got_pr.len() > 30, "{}", got_pr.len());
    // Ordered: what arrives is in order, never duplicated.
    let idx: Vec<usize> = got_pr.iter().map(|m| (0..100).find(|&i| payload(i, 300) == m.2).unwrap()).collect();
    assert!(idx.windows(2).all(|w| w[0] < w[1]), "{idx:?}");
    let s = p.a.stats();
    assert!(s.chunks_abandoned > 0);
    assert_eq!(p.a.buffered_amount(), 0, "FORWARD-TSN moved the ack point past abandoned data");
}

#[test]
fn partial_reliability_lifetime_unordered() {
    let mut p = Pair::new(23);
    p.connect();
    let ch = p.open(
        "timed",
        ChannelConfig { ordered: false, reliability: Reliability::MaxLifetimeMs(100), ..ChannelConfig::default() },
    );
    p.link.loss = 0.3;
    for i in 0..60 {
        p.a.send(p.now, ch, MessageKind::Binary, &payload(i, 2500)).unwrap();
        p.run_for(Duration::from_millis(10));
    }
    p.link.loss = 0.0;
    p.run_for(Duration::from_secs(10));
    assert!(p.b_msgs.len() > 10 && p.b_msgs.len() < 60, "{}", p.b_msgs.len());
    for m in &p.b_msgs {
        assert!((0..60).any(|i| payload(i, 2500) == m.2), "corrupted reassembly");
    }
    assert!(p.a.stats().chunks_abandoned > 0);
    assert_eq!(p.a.buffered_amount(), 0);
}

#[test]
fn stream_reset_closes_channel_both_sides() {
    let mut p = Pair::new(24);
    p.connect();
    let id = p.open("closing", ChannelConfig::default());
    let other = p.open("other", ChannelConfig::default());
    p.a.send(p.now, id, MessageKind::Text, b"last words").unwrap();
    p.a.close_channel(p.now, id).unwrap();
    assert_eq!(p.a.send(p.now, id, MessageKind::Text, b"too late"), Err(SctpError::UnknownChannel));
    p.run_for(Duration::from_secs(2));
    assert_eq!(p.b_msgs, std::vec![(id, MessageKind::Text, b"last words".to_vec())]);
    assert!(p.a_events.contains(&Event::ChannelClosed { id }), "{:?}", p.a_events);
    assert!(p.b_events.contains(&Event::ChannelClosed { id }), "{:?}", p.b_events);
    // The other channel still works, and the id can be reused with SSN 0.
    p.a.send(p.now, other, MessageKind::Text, b"still here").unwrap();
    let again = p.open("again", ChannelConfig::default());
    assert_eq!(again, id);
    p.a.send(p.now, again, MessageKind::Text, b"reborn").unwrap();
    p.run_for(Duration::from_secs(1));
    assert!(p.b_msgs.iter().any(|m| m.2 == b"still here"));
    assert!(p.b_msgs.iter().any(|m| m.0 == again && m.2 == b"reborn"));
}

#[test]
fn peer_closes_channel_with_loss() {
    let mut p = Pair::new(25);
    p.connect();
    let id = p.open("c", ChannelConfig::default());
    p.link.loss = 0.3;
    for i in 0..10 {
        p.a.send(p.now, id, MessageKind::Binary, &payload(i, 2000)).unwrap();
    }
    p.b.close_channel(p.now, id).unwrap();
    let ok = p.run_until(Duration::from_secs(120), |p| {
        p.a_events.contains(&Event::ChannelClosed { id }) && p.b_events.contains(&Event::ChannelClosed { id })
    });
    assert!(ok, "close did not complete: {:?} / {:?}", p.a_events, p.b_events);
}

#[test]
fn pre_negotiated_channels() {
    let mut p = Pair::new(26);
    let cfg = ChannelConfig { negotiated: Some(7), ..ChannelConfig::default() };
    let a = p.a.open_channel(p.now, "neg", "", cfg).unwrap();
    let b = p.b.open_channel(p.now, "neg", "", cfg).unwrap();
    assert_eq!((a, b), (ChannelId(7), ChannelId(7)));
    assert_eq!(p.b.open_channel(p.now, "dup", "", cfg), Err(SctpError::ChannelIdInUse));
    p.connect();
    assert!(matches!(p.a_events.pop_front(), Some(Event::ChannelOpened { id: ChannelId(7), by_peer: false, .. })));
    assert!(matches!(p.b_events.pop_front(), Some(Event::ChannelOpened { id: ChannelId(7), .. })));
    p.a.send(p.now, a, MessageKind::Text, b"no dcep").unwrap();
    p.run_for(Duration::from_millis(300));
    assert_eq!(p.b_msgs, std::vec![(b, MessageKind::Text, b"no dcep".to_vec())]);
    // No DCEP went over the wire.
    assert_eq!(p.b.stats().messages_received, 1);
}

#[test]
fn heartbeat_detects_vanished_peer() {
    let cfg = SctpConfig { heartbeat_interval: Duration::from_secs(1), max_retransmits: 4, ..config() };
    let mut p = Pair::with_config(27, cfg, cfg);
    p.connect();
    // Idle heartbeats keep a live association up.
    p.run_for(Duration::from_secs(30));
    assert!(p.a.is_established() && p.b.is_established());
    assert!(p.a.stats().srtt_ms >= 19, "heartbeat RTT measured: {:?}", p.a.stats());
    // Some data, fully acknowledged, then idle again: heartbeats resume.
    let id = p.open("hb", ChannelConfig::default());
    p.a.send(p.now, id, MessageKind::Binary, &[7; 5000]).unwrap();
    p.run_for(Duration::from_secs(2));
    assert_eq!(p.a.buffered_amount(), 0);
    // B vanishes.
    p.link.cut_b = true;
    let ok = p.run_until(Duration::from_secs(300), |p| {
        p.a_events.contains(&Event::AssociationLost { reason: LostReason::Timeout })
    });
    assert!(ok, "{:?}", p.a_events);
    assert!(!p.a.is_established());
}

#[test]
fn retransmission_timeout_detects_vanished_peer_while_sending() {
    let cfg = SctpConfig { max_retransmits: 3, ..config() };
    let mut p = Pair::with_config(28, cfg, cfg);
    p.connect();
    let id = p.open("x", ChannelConfig::default());
    p.link.cut_b = true;
    p.a.send(p.now, id, MessageKind::Binary, &[1; 3000]).unwrap();
    let ok = p.run_until(Duration::from_secs(300), |p| {
        p.a_events.contains(&Event::AssociationLost { reason: LostReason::Timeout })
    });
    assert!(ok);
    assert!(p.a.stats().t3_timeouts >= 3);
}

/// RFC 9260 6.3.3 E2 doubles the RTO on every expiry; RTO.Max caps it.
/// With the RFC's 60 s a few lost rounds in a row leave the association
/// waiting for a minute; ours stops at `rto_max`.
#[test]
fn t3_backoff_is_capped_at_rto_max() {
    let cfg = SctpConfig { max_retransmits: 12, ..config() };
    assert_eq!(cfg.rto_max, DEFAULT_RTO_MAX);
    let mut p = Pair::with_config(40, cfg, cfg);
    p.connect();
    let id = p.open("x", ChannelConfig::default());
    // B's SACKs never arrive: A's data is never acknowledged.
    p.link.cut_b = true;
    p.a.send(p.now, id, MessageKind::Binary, &[1; 500]).unwrap();
    let mut expiries = Vec::new();
    let mut seen = p.a.stats().t3_timeouts;
    let ok = p.run_until(Duration::from_secs(120), |p| {
        let t = p.a.stats().t3_timeouts;
        if t != seen {
            seen = t;
            expiries.push(p.now);
        }
        t >= 10
    });
    assert!(ok, "{:?}", p.a.stats());
    let gaps: Vec<u64> = expiries.windows(2).map(|w| (w[1] - w[0]).as_millis()).collect();
    // Doubling from the measured RTO (RTO.Min here), then flat at RTO.Max.
    assert!(gaps.windows(2).all(|w| w[0] <= w[1]), "{gaps:?}");
    assert!(gaps.iter().all(|&g| g <= DEFAULT_RTO_MAX.as_millis()), "{gaps:?}");
    assert!(gaps[0] < DEFAULT_RTO_MAX.as_millis(), "{gaps:?}");
    assert_eq!(gaps[gaps.len() - 3..], [DEFAULT_RTO_MAX.as_millis(); 3], "{gaps:?}");
    assert_eq!(p.a.stats().rto_ms as u64, DEFAULT_RTO_MAX.as_millis());
    // Still alive: max_retransmits (12) not reached yet.
    assert!(p.a.is_established());
}

/// The cap limits backoff only: on a path whose RTT exceeds RTO.Max the
/// timers follow the measured RTO instead of firing spuriously.
#[test]
fn backoff_never_cuts_timers_below_the_measured_rto() {
    let mut p = Pair::new(41);
    p.link.delay = Duration::from_millis(1500); // RTT 3 s > RTO.Max (1 s)
    p.a.connect(p.now);
    assert!(p.run_until(Duration::from_secs(60), |p| p.a.is_established() && p.b.is_established()));
    let id = p.a.open_channel(p.now, "slow", "", ChannelConfig::default()).unwrap();
    // Warm up: until an RTT sample exists, timers fire on RTO.Initial.
    p.a.send(p.now, id, MessageKind::Binary, &[1; 100]).unwrap();
    p.run_for(Duration::from_secs(20));
    assert!(p.a.stats().srtt_ms >= 2900, "{:?}", p.a.stats());
    assert!(p.a.stats().rto_ms >= 3000, "{:?}", p.a.stats());
    let t3_before = p.a.stats().t3_timeouts;
    for i in 0..20 {
        p.a.send(p.now, id, MessageKind::Binary, &payload(i, 800)).unwrap();
        p.run_for(Duration::from_millis(500));
    }
    p.run_for(Duration::from_secs(10));
    assert_eq!(p.a.stats().t3_timeouts, t3_before, "spurious timeouts: {:?}", p.a.stats());
    assert_eq!(p.b_msgs.len(), 21);
}

/// RFC 9260 6.3.1: an RTT sample must not count SACKs lost on the way
/// back. Timing the first chunk of a round until some SACK finally covers
/// it would; we time the newest chunk the SACK newly acknowledges.
#[test]
fn rtt_sample_is_not_inflated_by_lost_sacks() {
    let mut p = Pair::new(42); // 10 ms each way: RTT 20 ms
                               // No sample from the handshake (its COOKIE-ECHO is retransmitted), and
                               // the first five SACKs from B are lost.
    let (mut echoes, mut sacks) = (0, 0);
    p.link.filter = Some(Box::new(move |from_a, pkt| {
        let (_, chunks) = wire::parse_packet(pkt).unwrap();
        for c in chunks.flatten() {
            match c {
                Chunk::CookieEcho { .. } if from_a => {
                    echoes += 1;
                    return echoes > 1;
                }
                Chunk::Sack(_) if !from_a => {
                    sacks += 1;
                    return sacks > 5;
                }
                _ => {}
            }
        }
        true
    }));
    p.a.connect(p.now);
    assert!(p.run_until(Duration::from_secs(10), |p| p.a.is_established() && p.b.is_established()));
    assert_eq!(p.a.stats().srtt_ms, 0, "no RTT sample yet");
    let cfg = ChannelConfig { negotiated: Some(3), ..ChannelConfig::default() };
    let id = p.a.open_channel(p.now, "m", "", cfg).unwrap();
    p.b.open_channel(p.now, "m", "", cfg).unwrap();
    // A message every 10 ms until the first sample.
    let mut i = 0;
    while p.a.stats().srtt_ms == 0 && i < 100 {
        p.a.send(p.now, id, MessageKind::Binary, &payload(i, 200)).unwrap();
        p.run_for(Duration::from_millis(10));
        i += 1;
    }
    let s = p.a.stats();
    assert!(s.srtt_ms > 0, "{s:?}");
    // The lost SACKs covered ~100 ms of sending; the path RTT is 20 ms,
    // plus at most one 10 ms sending interval before B acknowledges.
    assert!(s.srtt_ms <= 40, "RTT sample counts lost SACKs: {s:?}");
}

/// With a long RTO.Max, COOKIE-ECHO retransmissions can outlive the peer's
/// 60 s cookie lifetime; the peer then drops the stale cookie, so we go
/// back to INIT for a fresh one instead of echoing it until we give up.
#[test]
fn stale_cookie_is_replaced_by_a_new_init() {
    let cfg = SctpConfig { rto_max: Duration::from_secs(10), max_init_retransmits: 16, ..config() };
    let mut p = Pair::with_config(45, cfg, cfg);
    // The first ten COOKIE-ECHOs are lost: the tenth leaves ~55 s after
    // the INIT-ACK, the next retransmission would come after 60 s.
    let mut echoes = 0;
    p.link.filter = Some(Box::new(move |from_a, pkt| {
        let (_, mut chunks) = wire::parse_packet(pkt).unwrap();
        match chunks.next() {
            Some(Ok(Chunk::CookieEcho { .. })) if from_a => {
                echoes += 1;
                echoes > 10
            }
            _ => true,
        }
    }));
    p.a.connect(p.now);
    let start = p.now;
    assert!(
        p.run_until(Duration::from_secs(120), |p| p.a.is_established() && p.b.is_established()),
        "{:?} {:?}",
        p.a.lost_reason(),
        p.a.stats()
    );
    let took = p.now - start;
    assert!(took > Duration::from_secs(60) && took < Duration::from_secs(80), "{took:?}");
}

/// A lost COOKIE-ACK is implied by DATA, SACK or HEARTBEAT from the peer
/// (they carry our tag, so the peer accepted our cookie).
#[test]
fn lost_cookie_ack_is_implied_by_peer_data() {
    let mut p = Pair::new(43);
    p.link.filter = Some(Box::new(|from_a, pkt| {
        let (_, chunks) = wire::parse_packet(pkt).unwrap();
        from_a || !chunks.flatten().any(|c| matches!(c, Chunk::CookieAck))
    }));
    p.a.connect(p.now);
    assert!(p.run_until(Duration::from_secs(5), |p| p.b.is_established()));
    assert!(!p.a.is_established(), "every COOKIE-ACK is dropped");
    // B opens a channel: its DATA_CHANNEL_OPEN establishes A.
    let id = p.b.open_channel(p.now, "from-b", "", ChannelConfig::default()).unwrap();
    assert!(p.run_until(Duration::from_secs(2), |p| p.a.is_established()));
    assert_eq!(p.a_events.pop_front(), Some(Event::AssociationEstablished));
    p.run_for(Duration::from_millis(200));
    assert!(p.a_events.iter().any(|e| matches!(e, Event::ChannelOpened { id: i, by_peer: true, .. } if *i == id)));
    p.b.send(p.now, id, MessageKind::Text, b"hi").unwrap();
    p.run_for(Duration::from_millis(200));
    assert_eq!(p.a_msgs, std::vec![(id, MessageKind::Text, b"hi".to_vec())]);
}

/// RFC 3758 3.5 F2: until the peer acknowledges past abandoned data, every
/// packet with DATA carries FORWARD-TSN, ahead of the DATA (RFC 9260 6.10:
/// control chunks first), so a lost FORWARD-TSN is repaired by the next
/// data packet instead of another timeout.
#[test]
fn forward_tsn_is_bundled_ahead_of_data_until_acknowledged() {
    use std::cell::RefCell;
    use std::rc::Rc;
    let mut p = Pair::new(44);
    p.connect();
    let cfg = ChannelConfig { ordered: false, reliability: Reliability::MaxRetransmits(0), ..ChannelConfig::default() };
    let id = p.open("pr", cfg);
    // From now: A's first DATA packet and first FORWARD-TSN are lost; log
    // the chunk kinds of every packet A sends.
    let log: Rc<RefCell<Vec<Vec<&'static str>>>> = Rc::new(RefCell::new(Vec::new()));
    let (mut data, mut fwd) = (0, 0);
    let l = log.clone();
    p.link.filter = Some(Box::new(move |from_a, pkt| {
        if !from_a {
            return true;
        }
        let (_, chunks) = wire::parse_packet(pkt).unwrap();
        let kinds: Vec<&'static str> = chunks
            .flatten()
            .map(|c| match c {
                Chunk::Data(_) => "DATA",
                Chunk::ForwardTsn(_) => "FWD",
                Chunk::Sack(_) => "SACK",
                _ => "other",
            })
            .collect();
        let keep = if kinds.contains(&"FWD") {
            fwd += 1;
            fwd > 1
        } else if kinds.contains(&"DATA") {
            data += 1;
            data > 1
        } else {
            true
        };
        l.borrow_mut().push(kinds);
        keep
    }));
    p.a.send(p.now, id, MessageKind::Binary, &payload(0, 100)).unwrap();
    // T3 abandons message 0; its FORWARD-TSN is lost.
    assert!(p.run_until(Duration::from_secs(5), |p| p.a.stats().t3_timeouts == 1));
    p.run_for(Duration::from_millis(50));
    assert_eq!(fwd, 0, "filter moved into the closure");
    for i in 1..4 {
        p.a.send(p.now, id, MessageKind::Binary, &payload(i, 100)).unwrap();
        p.run_for(Duration::from_millis(30));
    }
    p.run_for(Duration::from_millis(200));
    let log = log.borrow();
    let with_fwd: Vec<&Vec<&str>> = log.iter().filter(|k| k.contains(&"FWD")).collect();
    assert!(with_fwd.len() >= 2, "{log:?}");
    // The first DATA packet after the loss carried FORWARD-TSN, first.
    let first_data_after = log.iter().skip(1).find(|k| k.contains(&"DATA")).unwrap();
    assert_eq!(first_data_after.first(), Some(&"FWD"), "{log:?}");
    for k in log.iter() {
        if let (Some(f), Some(d)) = (k.iter().position(|c| *c == "FWD"), k.iter().position(|c| *c == "DATA")) {
            assert!(f < d, "control chunks first: {k:?}");
        }
    }
    assert_eq!(p.a.stats().t3_timeouts, 1, "no second timeout: {:?}", p.a.stats());
    assert_eq!(p.a.buffered_amount(), 0);
    assert_eq!(p.b_msgs.len(), 3);
}

/// A FORWARD-TSN carries the skipped SSN of at most MAX_RESET_STREAMS
/// ordered streams; with more abandoned streams the ack point advances in
/// steps, so every stream's receiver learns its skip and keeps delivering.
#[test]
fn forward_tsn_over_more_ordered_streams_than_one_chunk_names() {
    type Wide = SctpAssociationN<65536, 65536, 24, 128>;
    const N: u16 = MAX_RESET_STREAMS as u16 + 4;
    let mut rng = rand::rngs::StdRng::seed_from_u64(46);
    let mut a = Box::new(Wide::new(config(), Role::Client, &mut rng));
    let mut b = Box::new(Wide::new(config(), Role::Server, &mut rng));
    let mut now = Instant::from_secs(1);
    let mut got = 0;
    let mut max_streams_named = 0;
    // Exchange packets without delay until both are quiet; A's DATA is
    // lost while `drop_data`.
    let mut shuttle = |a: &mut Wide, b: &mut Wide, now: Instant, drop_data: bool, got: &mut usize| {
        let mut buf = [0u8; 1500];
        loop {
            let mut moved = false;
            while let Some(n) = a.poll_transmit(now, &mut buf) {
                moved = true;
                let (_, chunks) = wire::parse_packet(&buf[..n]).unwrap();
                let mut has_data = false;
                for c in chunks.flatten() {
                    match c {
                        Chunk::Data(_) => has_data = true,
                        Chunk::ForwardTsn(f) => max_streams_named = max_streams_named.max(f.stream_ssns().count()),
                        _ => {}
                    }
                }
                if !(drop_data && has_data) {
                    let _ = b.handle_receive(now, &buf[..n]);
                }
            }
            while let Some(n) = b.poll_transmit(now, &mut buf) {
                moved = true;
                let _ = a.handle_receive(now, &buf[..n]);
            }
            while let Some(ev) = b.poll_event() {
                if let Event::MessageReceived { len, .. } = ev {
                    let mut m = std::vec![0u8; len];
                    b.read_message(&mut m).unwrap();
                    *got += 1;
                }
            }
            while a.poll_event().is_some() {}
            if !moved {
                break;
            }
        }
    };
    a.connect(now);
    shuttle(&mut a, &mut b, now, false, &mut got);
    assert!(a.is_established() && b.is_established());
    let ids: Vec<ChannelId> = (0..N)
        .map(|k| {
            let cfg = ChannelConfig {
                ordered: true,
                reliability: Reliability::MaxRetransmits(0),
                negotiated: Some(2 * k),
                ..ChannelConfig::default()
            };
            b.open_channel(now, "w", "", cfg).unwrap();
            a.open_channel(now, "w", "", cfg).unwrap()
        })
        .collect();
    // One message per stream, all lost; T3 abandons them.
    for &id in &ids {
        a.send(now, id, MessageKind::Binary, &[1; 100]).unwrap();
    }
    shuttle(&mut a, &mut b, now, true, &mut got);
    // Then one more per stream, delivered: each needs its stream's skip.
    let mut sent_second = false;
    for _ in 0..40 {
        now = [a.poll_timeout(), b.poll_timeout()].into_iter().flatten().min().unwrap().max(now);
        a.handle_timeout(now);
        b.handle_timeout(now);
        if !sent_second && a.stats().chunks_abandoned >= N as u64 {
            for &id in &ids {
                a.send(now, id, MessageKind::Binary, &[2; 100]).unwrap();
            }
            sent_second = true;
        }
        shuttle(&mut a, &mut b, now, !sent_second, &mut got);
        if got == N as usize {
            break;
        }
    }
    assert!(sent_second);
    assert!(max_streams_named <= MAX_RESET_STREAMS, "{max_streams_named}");
    assert_eq!(got, N as usize, "every ordered stream moved past its lost message");
    assert_eq!(a.buffered_amount(), 0);
}

#[test]
fn graceful_shutdown_and_abort() {
    let mut p = Pair::new(29);
    p.connect();
    let id = p.open("s", ChannelConfig::default());
    p.a.send(p.now, id, MessageKind::Binary, &payload(1, 20000)).unwrap();
    p.a.shutdown(p.now);
    p.run_for(Duration::from_secs(3));
    assert_eq!(p.b_msgs.len(), 1, "data before SHUTDOWN is delivered");
    assert!(p.a_events.contains(&Event::AssociationLost { reason: LostReason::Shutdown }));
    assert!(p.b_events.contains(&Event::AssociationLost { reason: LostReason::Shutdown }));

    let mut p = Pair::new(30);
    p.connect();
    p.a.abort(p.now);
    p.run_for(Duration::from_secs(1));
    assert_eq!(p.a_events.pop_front(), Some(Event::AssociationLost { reason: LostReason::LocalAbort }));
    assert_eq!(p.b_events.pop_front(), Some(Event::AssociationLost { reason: LostReason::PeerAbort }));
}

#[test]
fn garbage_input_never_panics() {
    let seed = 0x06a7_ba6e;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut p = Pair::new(31);
    p.connect();
    let id = p.open("g", ChannelConfig::default());
    // Learn B's tag from a real packet so garbage passes the tag check.
    let mut buf = [0u8; 1500];
    p.a.send(p.now, id, MessageKind::Binary, b"x").unwrap();
    let n = p.a.poll_transmit(p.now, &mut buf).unwrap();
    let tag = u32::from_be_bytes(buf[4..8].try_into().unwrap());
    let kinds = [0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14, 130, 192, 0x40, 0xc1];
    for i in 0..30000 {
        let len = rng.gen_range(12..400);
        let mut pkt = std::vec![0u8; len];
        rng.fill(&mut pkt[..]);
        pkt[..4].copy_from_slice(&[0x13, 0x88, 0x13, 0x88]);
        pkt[4..8].copy_from_slice(&tag.to_be_bytes());
        if i % 3 != 0 && len > 16 {
            // A plausible chunk header with a random body.
            pkt[12] = kinds[rng.gen_range(0..kinds.len())];
            let cl = rng.gen_range(4..=(len - 12)) as u16;
            pkt[14..16].copy_from_slice(&cl.to_be_bytes());
        }
        if i % 5 != 0 {
            let crc = crate::crypto::crc32c_parts(&[&pkt[..8], &[0; 4], &pkt[12..]]);
            pkt[8..12].copy_from_slice(&crc.to_le_bytes());
        }
        let _ = p.b.handle_receive(p.now, &pkt);
        while p.b.poll_transmit(p.now, &mut buf).is_some() {}
        while let Some(ev) = p.b.poll_event() {
            if let Event::MessageReceived { len, .. } = ev {
                let mut m = std::vec![0u8; len];
                p.b.read_message(&mut m).unwrap();
            }
        }
        if i % 100 == 0 {
            p.now += Duration::from_millis(50);
            p.b.handle_timeout(p.now);
        }
    }
    let _ = n;
}

#[test]
fn bogus_sack_gap_blocks_are_bounded() {
    let mut p = Pair::new(32);
    p.connect();
    let id = p.open("s", ChannelConfig::default());
    for i in 0..10 {
        p.a.send(p.now, id, MessageKind::Binary, &payload(i, 1000)).unwrap();
    }
    let mut buf = [0u8; 1500];
    let mut first_tsn = None;
    while let Some(n) = p.a.poll_transmit(p.now, &mut buf) {
        let (_, chunks) = wire::parse_packet(&buf[..n]).unwrap();
        for c in chunks {
            if let Ok(Chunk::Data(d)) = c {
                first_tsn.get_or_insert(d.tsn);
            }
        }
    }
    let cum = first_tsn.unwrap().wrapping_sub(1);
    // A SACK from "B" with 250 gap blocks each spanning 1..65535.
    p.b.send(p.now, id, MessageKind::Binary, b"x").unwrap();
    p.b.poll_transmit(p.now, &mut buf).unwrap();
    let tag = u32::from_be_bytes(buf[4..8].try_into().unwrap());
    let gaps: Vec<u8> = (0..250).flat_map(|_| [0, 1, 0xff, 0xff]).collect();
    let sack = wire::SackChunk { cum_tsn_ack: cum, a_rwnd: 65536, gap_blocks: &gaps, dup_tsns: &[] };
    let mut out = [0u8; 1500];
    let mut pw =
        wire::PacketWriter::new(&mut out, wire::CommonHeader { src_port: 5000, dst_port: 5000, verification_tag: tag })
            .unwrap();
    pw.push(&Chunk::Sack(sack)).unwrap();
    let n = pw.finish();
    let start = std::time::Instant::now();
    let _ = p.a.handle_receive(p.now, &out[..n]);
    assert!(start.elapsed() < std::time::Duration::from_secs(1));
    // The bogus gap acks are reneged by B's real SACKs; everything arrives.
    p.run_for(Duration::from_secs(10));
    assert_eq!(p.b_msgs.len(), 10);
}

#[test]
fn message_above_our_max_message_size_aborts_instead_of_stalling() {
    type Big = SctpAssociationN<262144, 262144, 4, 512>;
    type Small = SctpAssociationN<16384, 16384, 4, 64>;
    let mut rng = rand::rngs::StdRng::seed_from_u64(33);
    let mut a = Box::new(Big::new(config(), Role::Client, &mut rng));
    let mut b = Box::new(Small::new(config(), Role::Server, &mut rng));
    assert_eq!(b.max_message_size(), 16384);
    let mut now = Instant::from_secs(1);
    a.connect(now);
    let cfg = ChannelConfig { negotiated: Some(1), ..ChannelConfig::default() };
    let id = a.open_channel(now, "x", "", cfg).unwrap();
    b.open_channel(now, "x", "", cfg).unwrap();
    // A ignores B's max-message-size (as if the SDP said nothing).
    a.set_peer_max_message_size(usize::MAX);
    let mut sent = false;
    let mut buf = [0u8; 1500];
    let mut b_lost = None;
    let mut a_lost = None;
    for _ in 0..20000 {
        if a.is_established() && !sent {
            a.send(now, id, MessageKind::Binary, &[9; 40000]).unwrap();
            sent = true;
        }
        while let Some(n) = a.poll_transmit(now, &mut buf) {
            let _ = b.handle_receive(now, &buf[..n]);
        }
        while let Some(n) = b.poll_transmit(now, &mut buf) {
            let _ = a.handle_receive(now, &buf[..n]);
        }
        while let Some(e) = b.poll_event() {
            if let Event::AssociationLost { reason } = e {
                b_lost = Some(reason);
            }
        }
        while let Some(e) = a.poll_event() {
            if let Event::AssociationLost { reason } = e {
                a_lost = Some(reason);
            }
        }
        if a_lost.is_some() {
            break;
        }
        now += Duration::from_millis(10);
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
    assert_eq!(b_lost, Some(LostReason::ProtocolViolation));
    assert_eq!(a_lost, Some(LostReason::PeerAbort));
}

/// An RNG that hands out a chosen verification tag, then a chosen initial
/// TSN (the order `new` asks for them), then fixed filler.
struct PinnedRng {
    words: [u32; 2],
    n: usize,
}
impl rand_core::RngCore for PinnedRng {
    fn next_u32(&mut self) -> u32 {
        let w = self.words.get(self.n).copied().unwrap_or(0x4242_4242);
        self.n += 1;
        w
    }
    fn next_u64(&mut self) -> u64 {
        0x0123_4567_89ab_cdef
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.fill(0x42)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        dest.fill(0x42);
        Ok(())
    }
}
impl rand_core::CryptoRng for PinnedRng {}

#[test]
fn tsn_and_reset_sequence_wrap_around() {
    // Initial TSNs just below 2^32 on both sides: every serial comparison,
    // the receive bitmap and the reset request sequence cross the wrap.
    let a = Box::new(Assoc::new(config(), Role::Client, &mut PinnedRng { words: [0xaaaa_0001, 0xffff_fff0], n: 0 }));
    let b = Box::new(Assoc::new(config(), Role::Server, &mut PinnedRng { words: [0xbbbb_0002, 0xffff_ffe0], n: 0 }));
    let mut p = Pair::with_assocs(34, a, b);
    p.connect();
    let id = p.open("wrap", ChannelConfig::default());
    let pr = p.open(
        "wrap-pr",
        ChannelConfig { ordered: true, reliability: Reliability::MaxRetransmits(0), ..ChannelConfig::default() },
    );
    p.link.loss = 0.2;
    let mut next = 0;
    let ok = p.run_until(Duration::from_secs(300), |p| {
        while next < 30 && p.a.send(p.now, id, MessageKind::Binary, &payload(next, 3000)).is_ok() {
            let _ = p.a.send(p.now, pr, MessageKind::Binary, &payload(next, 500));
            let _ = p.b.send(p.now, id, MessageKind::Binary, &payload(next, 700));
            next += 1;
        }
        p.b_msgs.iter().filter(|m| m.0 == id).count() == 30 && p.a_msgs.iter().filter(|m| m.0 == id).count() == 30
    });
    assert!(ok, "stalled across the wrap: {:?}", p.a.stats());
    let got: Vec<_> = p.b_msgs.iter().filter(|m| m.0 == id).map(|m| m.2.clone()).collect();
    assert!(got.iter().enumerate().all(|(i, m)| *m == payload(i, 3000)));
    p.link.loss = 0.0;
    p.a.close_channel(p.now, id).unwrap();
    p.run_for(Duration::from_secs(5));
    assert!(p.b_events.contains(&Event::ChannelClosed { id }));
    assert_eq!(p.a.buffered_amount(), 0);
}

#[test]
fn garbage_in_every_state_never_panics() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed_0035);
    let mut buf = [0u8; 1500];
    for state in 0..3 {
        let mut p = Pair::new(35 + state);
        match state {
            0 => {}
            1 => p.a.connect(p.now),
            _ => p.connect(),
        }
        let tags = [0u32, u32::from_be_bytes([0; 4]), 1];
        for i in 0..5000 {
            let len = rng.gen_range(12..300);
            let mut pkt = std::vec![0u8; len];
            rng.fill(&mut pkt[..]);
            pkt[..4].copy_from_slice(&[0x13, 0x88, 0x13, 0x88]);
            pkt[4..8].copy_from_slice(&tags[i % 3].to_be_bytes());
            if len > 16 {
                pkt[12] = [1u8, 2, 6, 10, 11, 8, 14, 0, 3][i % 9];
                let cl = rng.gen_range(4..=(len - 12)) as u16;
                pkt[14..16].copy_from_slice(&cl.to_be_bytes());
            }
            let crc = crate::crypto::crc32c_parts(&[&pkt[..8], &[0; 4], &pkt[12..]]);
            pkt[8..12].copy_from_slice(&crc.to_le_bytes());
            let _ = p.a.handle_receive(p.now, &pkt);
            while p.a.poll_transmit(p.now, &mut buf).is_some() {}
            while p.a.poll_event().is_some() {}
            if i % 50 == 0 {
                p.now += Duration::from_millis(100);
                p.a.handle_timeout(p.now);
            }
        }
    }
}

#[test]
fn memory_footprint() {
    let default = core::mem::size_of::<SctpAssociation>();
    std::println!("size_of::<SctpAssociation>() = {default} bytes (SEND 65536, RECV 65536, STREAMS 16, CHUNKS 128)");
    std::println!(
        "size_of::<SctpAssociationN<16384, 16384, 4, 32>>() = {} bytes",
        core::mem::size_of::<SctpAssociationN<16384, 16384, 4, 32>>()
    );
    assert!(default > 2 * 65536 && default < 2 * 65536 + 24 * 1024, "{default}");
}

/// A receiver with a 16 KiB buffer fed by a peer that overruns its window
/// and reorders: whatever it acknowledges in a gap block it keeps (no
/// reneging, which sctp-proto/pion peers never recover from), and the
/// chunk that completes the cumulative ack point always finds room.
#[test]
fn overrun_window_never_forces_reneging() {
    type Small = SctpAssociationN<16384, 16384, 4, 64>;
    let mut rng = rand::rngs::StdRng::seed_from_u64(41);
    let mut a = Box::new(Assoc::new(config(), Role::Client, &mut rng));
    let mut b = Box::new(Small::new(config(), Role::Server, &mut rng));
    let mut now = Instant::from_secs(1);
    a.connect(now);
    let cfg = ChannelConfig { negotiated: Some(1), ..ChannelConfig::default() };
    let id = a.open_channel(now, "x", "", cfg).unwrap();
    b.open_channel(now, "x", "", cfg).unwrap();
    let mut buf = [0u8; 1500];
    let mut exchange = |a: &mut Assoc, b: &mut Small, now: Instant| {
        let mut from_a = Vec::new();
        for _ in 0..10 {
            while let Some(n) = a.poll_transmit(now, &mut buf) {
                from_a.push(buf[..n].to_vec());
                let _ = b.handle_receive(now, &buf[..n]);
            }
            while let Some(n) = b.poll_transmit(now, &mut buf) {
                let _ = a.handle_receive(now, &buf[..n]);
            }
        }
        from_a
    };
    for _ in 0..5 {
        exchange(&mut a, &mut b, now);
        now += Duration::from_millis(10);
    }
    assert!(a.is_established() && b.is_established());
    // One real DATA packet from A gives the header and the next TSN.
    a.send(now, id, MessageKind::Binary, b"first").unwrap();
    let sent = exchange(&mut a, &mut b, now);
    let (header, tsn0) = sent
        .iter()
        .find_map(|p| {
            let (h, mut chunks) = wire::parse_packet(p).ok()?;
            chunks.find_map(|c| match c {
                Ok(Chunk::Data(d)) => Some((h, d.tsn)),
                _ => None,
            })
        })
        .expect("a DATA packet");
    let mut msg = [0u8; 32];
    while let Some(e) = b.poll_event() {
        if let Event::MessageReceived { .. } = e {
            b.read_message(&mut msg).unwrap();
        }
    }
    // Message 1: 16 chunks of 1024 bytes (the whole window), message 2: 4
    // more. The first chunk of message 1 arrives last.
    let packet = |i: u32| {
        let flags = match i {
            1 | 17 => wire::data_flags::BEGIN,
            16 | 20 => wire::data_flags::END,
            _ => 0,
        };
        let payload = [i as u8; 1024];
        // "first" took SSN 0.
        let ssn = 1 + u16::from(i > 16);
        let d = wire::DataChunk { flags, tsn: tsn0.wrapping_add(i), stream_id: 1, ssn, ppid: 53, payload: &payload };
        let mut out = [0u8; 1200];
        let mut pw = wire::PacketWriter::new(&mut out, header).unwrap();
        pw.push(&Chunk::Data(d)).unwrap();
        let n = pw.finish();
        out[..n].to_vec()
    };
    // What B acknowledged: cumulative point and every TSN offset in a gap block.
    let mut acks = (tsn0, std::collections::BTreeSet::new());
    let feed = |b: &mut Small, i: u32, now: Instant, acks: &mut (u32, std::collections::BTreeSet<u32>)| {
        let _ = b.handle_receive(now, &packet(i));
        let mut out = [0u8; 1500];
        while let Some(n) = b.poll_transmit(now, &mut out) {
            let (_, chunks) = wire::parse_packet(&out[..n]).unwrap();
            for c in chunks.flatten() {
                if let Chunk::Sack(s) = c {
                    acks.0 = s.cum_tsn_ack;
                    for g in s.gap_blocks.chunks(4) {
                        let start = u16::from_be_bytes([g[0], g[1]]) as u32;
                        let end = u16::from_be_bytes([g[2], g[3]]) as u32;
                        for k in start..=end {
                            acks.1.insert(s.cum_tsn_ack.wrapping_add(k).wrapping_sub(tsn0));
                        }
                    }
                }
            }
        }
    };
    for i in (2..=20).chain([1]) {
        feed(&mut b, i, now, &mut acks);
    }
    // Message 1 is complete and readable.
    let mut big = std::vec![0u8; 16384];
    assert!(matches!(b.poll_event(), Some(Event::MessageReceived { len: 16384, .. })));
    b.read_message(&mut big).unwrap();
    assert!(big.chunks(1024).enumerate().all(|(k, c)| c.iter().all(|&x| x == k as u8 + 1)));
    // Nothing acknowledged in a gap block was thrown away: the cumulative
    // ack point covers all of it without any chunk sent twice.
    let cum = acks.0.wrapping_sub(tsn0);
    assert!(acks.1.iter().all(|&k| k <= cum), "gap-acked {:?}, cum +{cum}", acks.1);
    assert_eq!(cum, 16, "message 1 acknowledged, message 2 not yet");
    // The overrunning chunks were dropped unacknowledged; sent again, they arrive.
    for i in 17..=20 {
        feed(&mut b, i, now, &mut acks);
    }
    assert!(matches!(b.poll_event(), Some(Event::MessageReceived { len: 4096, .. })));
    b.read_message(&mut big).unwrap();
    assert!(big[..4096].chunks(1024).enumerate().all(|(k, c)| c.iter().all(|&x| x == k as u8 + 17)));
    assert!(b.stats().rx_chunks_dropped >= 1);
}

/// RFC 7053: once a send was refused for lack of buffer, the last queued
/// chunk asks for an immediate SACK (the application waits for it);
/// otherwise SACKs may be delayed.
#[test]
fn i_bit_on_the_last_chunk_of_a_full_send_buffer() {
    type Small = SctpAssociationN<16384, 16384, 4, 64>;
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut a = Box::new(Small::new(config(), Role::Client, &mut rng));
    let mut b = Box::new(Small::new(config(), Role::Server, &mut rng));
    let mut now = Instant::from_secs(1);
    a.connect(now);
    let cfg = ChannelConfig { negotiated: Some(1), ..ChannelConfig::default() };
    let id = a.open_channel(now, "x", "", cfg).unwrap();
    b.open_channel(now, "x", "", cfg).unwrap();
    let mut buf = [0u8; 1500];
    let mut data_flags_sent = |a: &mut Small, b: &mut Small, now: Instant| {
        let mut flags = Vec::new();
        for _ in 0..20 {
            while let Some(n) = a.poll_transmit(now, &mut buf) {
                let (_, chunks) = wire::parse_packet(&buf[..n]).unwrap();
                for c in chunks.flatten() {
                    if let Chunk::Data(d) = c {
                        flags.push(d.flags);
                    }
                }
                let _ = b.handle_receive(now, &buf[..n]);
            }
            while let Some(n) = b.poll_transmit(now, &mut buf) {
                let _ = a.handle_receive(now, &buf[..n]);
            }
            while let Some(e) = b.poll_event() {
                if let Event::MessageReceived { len, .. } = e {
                    let mut m = std::vec![0u8; len.max(1)];
                    b.read_message(&mut m).unwrap();
                }
            }
        }
        flags
    };
    data_flags_sent(&mut a, &mut b, now);
    a.send(now, id, MessageKind::Binary, &[1; 100]).unwrap();
    let small = data_flags_sent(&mut a, &mut b, now);
    assert_eq!(small.len(), 1);
    assert_eq!(small[0] & wire::data_flags::IMMEDIATE, 0);
    assert_eq!(a.buffered_amount(), 100, "the small message waits for a delayed SACK");
    now += Duration::from_millis(300);
    b.handle_timeout(now);
    a.handle_timeout(now);
    data_flags_sent(&mut a, &mut b, now);
    assert_eq!(a.buffered_amount(), 0);
    a.send(now, id, MessageKind::Binary, &[2; 16384]).unwrap();
    // The application has more: it is now waiting for the buffer.
    assert_eq!(a.send(now, id, MessageKind::Binary, &[3; 16384]), Err(SctpError::WouldBlock));
    let big = data_flags_sent(&mut a, &mut b, now);
    assert!(big.len() > 10, "{big:?}");
    let (last, rest) = big.split_last().unwrap();
    assert_ne!(last & wire::data_flags::IMMEDIATE, 0, "{big:?}");
    assert!(rest.iter().all(|f| f & wire::data_flags::IMMEDIATE == 0), "{big:?}");
    // The receiver answered at once: the buffer is free again at the same instant.
    assert_eq!(a.buffered_amount(), 0);
    a.send(now, id, MessageKind::Binary, &[3; 16384]).unwrap();
}
