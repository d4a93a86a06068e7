//! Self-tests of the network simulator: link impairments, routing errors,
//! determinism, and throughput.

use std::collections::VecDeque;
use std::net::SocketAddr;

use host_tests::netsim::{run_with_seed, LinkConfig, Mailbox, NatConfig, NatType, Network, Node, NodeId};
use tinyrtc::{Duration, Instant, Transmit};

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Sends `count` numbered datagrams of `size` bytes, one every `interval`.
struct Sender {
    dst: SocketAddr,
    size: usize,
    count: u32,
    sent: u32,
    interval: Duration,
    next: Instant,
    due: bool,
}

impl Sender {
    fn new(dst: SocketAddr, count: u32, size: usize, interval: Duration) -> Self {
        Sender { dst, size, count, sent: 0, interval, next: Instant::ZERO, due: false }
    }
}

impl Node for Sender {
    fn handle_receive(&mut self, _: Instant, _: SocketAddr, _: SocketAddr, _: &[u8]) {}
    fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if !self.due {
            return None;
        }
        self.due = false;
        buf[..4].copy_from_slice(&self.sent.to_be_bytes());
        buf[4..self.size].fill(0xab);
        self.sent += 1;
        Some(Transmit { source: None, destination: self.dst, len: self.size })
    }
    fn poll_timeout(&self) -> Option<Instant> {
        (self.sent < self.count).then_some(self.next)
    }
    fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next && self.sent < self.count {
            self.due = true;
            self.next += self.interval;
        }
    }
}

/// Records (arrival time, sequence number) of what arrives.
#[derive(Default)]
struct Sink {
    got: Vec<(Instant, u32)>,
}

impl Node for Sink {
    fn handle_receive(&mut self, now: Instant, _: SocketAddr, _: SocketAddr, data: &[u8]) {
        let n = u32::from_be_bytes(data[..4].try_into().unwrap());
        self.got.push((now, n));
    }
    fn poll_transmit(&mut self, _: Instant, _: &mut [u8]) -> Option<Transmit> {
        None
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn handle_timeout(&mut self, _: Instant) {}
}

/// One sender -> one sink across `link` (sender uplink) on the public net.
fn one_way(seed: u64, link: LinkConfig, count: u32, size: usize) -> (Network, NodeId) {
    let mut net = Network::new(seed);
    let sink = net.add_host(Network::PUBLIC, sa("192.0.2.2:9"), Sink::default());
    let tx = net.add_host(
        Network::PUBLIC,
        sa("192.0.2.1:9"),
        Sender::new(sa("192.0.2.2:9"), count, size, Duration::from_millis(1)),
    );
    net.set_uplink(tx, link);
    net.run_until(Instant::from_secs(u64::from(count) / 1000 + 10));
    (net, sink)
}

#[test]
fn loss_rate_matches_config() {
    run_with_seed(1, |seed| {
        for loss in [0.01, 0.1, 0.3] {
            let n = 20_000u32;
            let (net, sink) = one_way(seed, LinkConfig::default().with_loss(loss), n, 64);
            let got = net.node::<Sink>(sink).got.len() as f64;
            let s = net.stats();
            assert_eq!(s.sent, u64::from(n));
            assert_eq!(s.lost + s.delivered, s.sent, "{s:?}");
            let measured = 1.0 - got / f64::from(n);
            // 4 standard deviations of a binomial proportion.
            let tol = 4.0 * (loss * (1.0 - loss) / f64::from(n)).sqrt();
            assert!((measured - loss).abs() < tol, "loss {loss}: measured {measured}, tolerance {tol}");
            println!("loss {loss:.2}: measured {measured:.4} over {n} datagrams");
        }
        // Loss on both sides compounds: 1 - 0.9 * 0.9 = 0.19.
        let mut net = Network::new(seed);
        let sink = net.add_host(Network::PUBLIC, sa("192.0.2.2:9"), Sink::default());
        let tx = net.add_host(
            Network::PUBLIC,
            sa("192.0.2.1:9"),
            Sender::new(sa("192.0.2.2:9"), 20_000, 64, Duration::from_millis(1)),
        );
        net.set_uplink(tx, LinkConfig::default().with_loss(0.1));
        net.set_downlink(sink, LinkConfig::default().with_loss(0.1));
        net.run_until(Instant::from_secs(30));
        let measured = 1.0 - net.node::<Sink>(sink).got.len() as f64 / 20_000.0;
        assert!((measured - 0.19).abs() < 0.012, "compound loss {measured}");
    });
}

#[test]
fn cut_link_drops_everything_and_ideal_link_nothing() {
    run_with_seed(2, |seed| {
        let (net, sink) = one_way(seed, LinkConfig::cut(), 1000, 64);
        assert!(net.node::<Sink>(sink).got.is_empty());
        assert_eq!(net.stats().lost, 1000);
        let (net, sink) = one_way(seed, LinkConfig::ideal(), 1000, 64);
        let got = &net.node::<Sink>(sink).got;
        assert_eq!(got.len(), 1000);
        // Ideal link: no delay, in order.
        for (i, (t, n)) in got.iter().enumerate() {
            assert_eq!(*n, i as u32);
            assert_eq!(t.as_micros(), i as u64 * 1000);
        }
    });
}

#[test]
fn mtu_drops_oversized_datagrams_and_counts_them() {
    run_with_seed(3, |seed| {
        let link = LinkConfig { mtu: 576, ..LinkConfig::default() };
        // 548 + 28 (IPv4 + UDP) = 576 fits; 549 does not.
        let (net, sink) = one_way(seed, link, 100, 548);
        assert_eq!(net.node::<Sink>(sink).got.len(), 100);
        assert_eq!(net.stats().too_big, 0);
        let (net, sink) = one_way(seed, link, 100, 549);
        assert!(net.node::<Sink>(sink).got.is_empty());
        assert_eq!(net.stats().too_big, 100);

        // IPv6 headers count 48 bytes; the receiver's downlink MTU applies too.
        let mut net = Network::new(seed);
        let rx = net.add_host(Network::PUBLIC, sa("[2001:db8::2]:9"), Mailbox::new());
        let tx = net.add_host(Network::PUBLIC, sa("[2001:db8::1]:9"), Mailbox::new());
        net.set_downlink(rx, LinkConfig { mtu: 1280, ..LinkConfig::default() });
        net.node_mut::<Mailbox>(tx).send_to(sa("[2001:db8::2]:9"), &[0; 1232]);
        net.node_mut::<Mailbox>(tx).send_to(sa("[2001:db8::2]:9"), &[0; 1233]);
        net.run_until(Instant::from_secs(1));
        let got = &net.node::<Mailbox>(rx).received;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data.len(), 1232);
        assert_eq!(net.stats().too_big, 1);
    });
}

#[test]
fn duplication_delivers_extra_identical_copies() {
    run_with_seed(4, |seed| {
        let n = 10_000u32;
        let (net, sink) = one_way(seed, LinkConfig { duplicate: 0.2, ..LinkConfig::default() }, n, 32);
        let got = &net.node::<Sink>(sink).got;
        let extra = got.len() as f64 - f64::from(n);
        assert_eq!(net.stats().duplicated as f64, extra);
        let rate = extra / f64::from(n);
        assert!((rate - 0.2).abs() < 0.02, "duplicate rate {rate}");
        // Every datagram arrives at least once, some exactly twice.
        let mut count = vec![0u8; n as usize];
        for (_, s) in got {
            count[*s as usize] += 1;
        }
        assert!(count.iter().all(|c| (1..=2).contains(c)));
        println!("duplicate 0.20: measured {rate:.4}");
    });
}

fn inversions(got: &[(Instant, u32)]) -> usize {
    got.windows(2).filter(|w| w[1].1 < w[0].1).count()
}

#[test]
fn reorder_and_jitter_reorder_fifo_otherwise() {
    run_with_seed(5, |seed| {
        let base = LinkConfig { delay: Duration::from_millis(10), ..LinkConfig::default() };
        let (net, sink) = one_way(seed, base, 5000, 32);
        let got = &net.node::<Sink>(sink).got;
        assert_eq!(inversions(got), 0, "a fixed-delay link keeps order");
        for (t, n) in got {
            assert_eq!(t.as_micros(), u64::from(*n) * 1000 + 10_000);
        }

        let re = LinkConfig { reorder: 0.1, reorder_delay: Duration::from_millis(5), ..base };
        let (net, sink) = one_way(seed, re, 5000, 32);
        let got = &net.node::<Sink>(sink).got;
        let inv = inversions(got);
        let reordered = net.stats().reordered;
        assert!((400..600).contains(&reordered), "reordered {reordered}");
        assert!(inv > 300, "reorder produced only {inv} inversions");
        assert_eq!(got.len(), 5000);
        println!("reorder 0.10: {reordered} held back, {inv} inversions");

        // Jitter bigger than the send interval reorders too, within bounds.
        let jit = LinkConfig { jitter: Duration::from_millis(3), ..base };
        let (net, sink) = one_way(seed, jit, 5000, 32);
        let got = &net.node::<Sink>(sink).got;
        assert!(inversions(got) > 100);
        for (t, n) in got {
            let d = t.as_micros() - u64::from(*n) * 1000;
            assert!((10_000..=13_000).contains(&d), "delay {d} us outside 10..13 ms");
        }
    });
}

#[test]
fn bottleneck_rate_paces_and_tail_drops() {
    run_with_seed(10, |seed| {
        // 1000 B payloads (1028 B on the wire) every 4 ms = 2.06 Mbit/s
        // offered into a 1 Mbit/s bottleneck with a 50 ms queue.
        let link = LinkConfig {
            rate_bps: 1_000_000,
            queue_limit: Duration::from_millis(50),
            delay: Duration::from_millis(10),
            ..LinkConfig::default()
        };
        let mut net = Network::new(seed);
        let sink = net.add_host(Network::PUBLIC, sa("192.0.2.2:9"), Sink::default());
        let tx = net.add_host(
            Network::PUBLIC,
            sa("192.0.2.1:9"),
            Sender::new(sa("192.0.2.2:9"), 1000, 1000, Duration::from_millis(4)),
        );
        net.set_uplink(tx, link);
        net.run_until(Instant::from_secs(10));
        let got = &net.node::<Sink>(sink).got;
        let s = net.stats();
        assert_eq!(s.queue_dropped + got.len() as u64, 1000);
        // Serialization time of 1028 B at 1 Mbit/s: 8224 us; once the queue
        // is full, arrivals are spaced by exactly that.
        let tail: Vec<u64> = got[100..].windows(2).map(|w| (w[1].0 - w[0].0).as_micros()).collect();
        assert!(tail.iter().all(|&d| d == 8224), "spacing {:?}", &tail[..10]);
        let rate = (got.len() - 1) as f64 * 1028.0 * 8.0 / (got[got.len() - 1].0 - got[0].0).as_micros() as f64;
        assert!((rate - 1.0).abs() < 0.01, "delivered {rate} Mbit/s");
        // Queueing delay never exceeds the limit (+ one serialization + propagation).
        for (t, n) in got {
            let delay = t.as_micros() - u64::from(*n) * 4000;
            assert!(delay <= 50_000 + 8224 + 10_000, "datagram {n} delayed {delay} us");
        }
        println!("bottleneck 1 Mbit/s: {} delivered, {} tail-dropped", got.len(), s.queue_dropped);
    });
}

#[test]
fn delays_of_both_links_add_up() {
    run_with_seed(6, |seed| {
        let mut net = Network::new(seed);
        let a = net.add_host(Network::PUBLIC, sa("192.0.2.1:1"), Mailbox::new());
        let b = net.add_host(Network::PUBLIC, sa("192.0.2.2:2"), Mailbox::new());
        net.set_link(a, LinkConfig::default().with_delay(Duration::from_millis(7)));
        net.set_link(b, LinkConfig::default().with_delay(Duration::from_millis(20)));
        let to = net.addr(b);
        net.node_mut::<Mailbox>(a).send_to(to, b"x");
        assert!(net.run_until_cond(Instant::from_secs(1), |n| !n.node::<Mailbox>(b).received.is_empty()));
        assert_eq!(net.now(), Instant::from_millis(27));
        let r = &net.node::<Mailbox>(b).received[0];
        assert_eq!((r.from, r.to, r.data.as_slice()), (sa("192.0.2.1:1"), sa("192.0.2.2:2"), &b"x"[..]));
    });
}

#[test]
fn unroutable_and_bad_source_are_counted() {
    run_with_seed(7, |seed| {
        let mut net = Network::new(seed);
        let a = net.add_host(Network::PUBLIC, sa("192.0.2.1:1"), Mailbox::new());
        net.add_address(a, Network::PUBLIC, "192.0.2.11".parse().unwrap());
        let b = net.add_host(Network::PUBLIC, sa("192.0.2.2:2"), Mailbox::new());
        let m = net.node_mut::<Mailbox>(a);
        m.send_to(sa("198.51.100.99:1"), b"nobody");
        m.send_from(sa("203.0.113.5:1"), sa("192.0.2.2:2"), b"spoofed");
        m.send_from(sa("192.0.2.11:7"), sa("192.0.2.2:2"), b"second address");
        net.run_until(Instant::from_secs(1));
        let s = net.stats();
        assert_eq!((s.unroutable, s.bad_source, s.delivered), (1, 1, 1));
        assert_eq!(net.node::<Mailbox>(b).received[0].from, sa("192.0.2.11:7"));
        assert_eq!(net.node_stats(a).sent, 2);
        assert_eq!(net.node_stats(b).received, 1);
    });
}

/// A scenario using every random feature: impaired links, a NAT, echo.
fn busy_scenario(seed: u64) -> Network {
    let mut net = Network::new(seed);
    net.enable_trace_log();
    net.set_default_link(LinkConfig {
        loss: 0.1,
        delay: Duration::from_millis(5),
        jitter: Duration::from_millis(4),
        reorder: 0.05,
        duplicate: 0.05,
        ..LinkConfig::default()
    });
    let nat = net.add_nat(Network::PUBLIC, "198.51.100.1".parse().unwrap(), NatConfig::new(NatType::PortRestricted));
    let server = net.add_host(Network::PUBLIC, sa("192.0.2.2:9"), Echo::default());
    for i in 0..4 {
        let a = sa(&format!("10.0.0.{}:9", i + 1));
        net.add_host(nat, a, Sender::new(net.addr(server), 200, 100, Duration::from_millis(3)));
    }
    net.run_until(Instant::from_secs(3));
    net
}

#[test]
fn same_seed_same_trace_different_seed_different_trace() {
    run_with_seed(8, |seed| {
        let a = busy_scenario(seed);
        let b = busy_scenario(seed);
        let c = busy_scenario(seed + 1);
        assert!(a.stats().delivered > 500);
        assert_eq!(a.trace_log(), b.trace_log());
        assert_eq!(a.trace_hash(), b.trace_hash());
        assert_eq!(a.stats(), b.stats());
        assert_ne!(a.trace_hash(), c.trace_hash());
        assert_ne!(a.trace_log(), c.trace_log());
        println!("trace hash seed {seed}: {:#018x}, seed {}: {:#018x}", a.trace_hash(), seed + 1, c.trace_hash());
        for e in a.trace_log().iter().take(5) {
            println!("  {e}");
        }
    });
}

#[test]
fn run_with_seed_reraises_failures() {
    let r = std::panic::catch_unwind(|| run_with_seed(99, |_| panic!("expected failure")));
    assert!(r.is_err());
    assert_eq!(run_with_seed(5, |s| s + 1), host_tests::netsim::seed_from_env().unwrap_or(5) + 1);
}

/// Echoes every datagram back to its source without allocating.
#[derive(Default)]
struct Echo {
    queue: VecDeque<(SocketAddr, SocketAddr, [u8; 128], usize)>,
}

impl Node for Echo {
    fn handle_receive(&mut self, _: Instant, from: SocketAddr, to: SocketAddr, data: &[u8]) {
        let mut b = [0u8; 128];
        let n = data.len().min(128);
        b[..n].copy_from_slice(&data[..n]);
        self.queue.push_back((from, to, b, n));
    }
    fn poll_transmit(&mut self, _: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let (from, to, b, n) = self.queue.pop_front()?;
        buf[..n].copy_from_slice(&b[..n]);
        Some(Transmit { source: Some(to), destination: from, len: n })
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn handle_timeout(&mut self, _: Instant) {}
}

#[test]
fn throughput_many_clients_behind_nats() {
    run_with_seed(9, |seed| {
        // 256 clients at 60 Hz behind 16 NATs talking to one echo server.
        let clients = 256u32;
        let secs = 10u64;
        let mut net = Network::new(seed);
        net.set_default_link(LinkConfig {
            loss: 0.01,
            delay: Duration::from_millis(20),
            jitter: Duration::from_millis(2),
            ..LinkConfig::default()
        });
        let server = net.add_host(Network::PUBLIC, sa("192.0.2.2:40000"), Echo::default());
        let mut realms = Vec::new();
        for i in 0..16 {
            realms.push(net.add_nat(
                Network::PUBLIC,
                format!("198.51.100.{}", i + 1).parse().unwrap(),
                NatConfig::new(NatType::PortRestricted),
            ));
        }
        for i in 0..clients {
            let a = sa(&format!("10.0.{}.{}:5000", i / 200, i % 200 + 1));
            let n = u32::try_from(secs * 60).unwrap();
            net.add_host(
                realms[i as usize % 16],
                a,
                Sender::new(net.addr(server), n, 100, Duration::from_micros(16_667)),
            );
        }
        let start = std::time::Instant::now();
        net.run_until(Instant::from_secs(secs + 1));
        let wall = start.elapsed().as_secs_f64();
        let s = net.stats();
        assert_eq!(s.sent, u64::from(clients) * secs * 60 + net.node_stats(server).sent);
        assert_eq!(net.node_stats(server).sent, net.node_stats(server).received);
        assert_eq!(s.nat_dropped(), 0, "replies pass port-restricted NATs");
        println!(
            "netsim throughput: {} datagrams sent, {} delivered, {} events in {:.2} s wall = {:.0} datagrams/s ({:.0} events/s)",
            s.sent,
            s.delivered,
            net.events_processed(),
            wall,
            s.sent as f64 / wall,
            net.events_processed() as f64 / wall
        );
    });
}
