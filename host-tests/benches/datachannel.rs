//! Reliable data channel throughput over the network simulator: tinyrtc to
//! tinyrtc next to str0m to str0m, on the same simulated path, in one run.
//!
//! The path: 5 ms one-way delay on each host's access link (20 ms RTT), a
//! 100 Mbit/s bottleneck with a 50 ms drop-tail queue, and 0% or 1% random
//! loss on one host's link (both directions). Each stack moves the same
//! amount of data in 16 KiB messages on one reliable ordered channel; the
//! figure is goodput in simulated time (what the protocol achieves on that
//! path) plus the wall-clock CPU time the simulation took.
//!
//! Note: tinyrtc runs SCTP directly over the simulated UDP here (DTLS is a
//! separate layer of the `Peer`), while str0m runs SCTP inside DTLS with
//! ICE; the str0m wall time therefore includes its DTLS encryption.

use std::net::SocketAddr;
use std::time::Instant as StdInstant;

use host_tests::netsim::{LinkConfig, Network, Node};
use host_tests::str0m::Str0mIo;
use rand::SeedableRng;
use str0m::channel::ChannelId as Str0mChannelId;
use str0m::{Candidate, Event as Str0mEvent, Rtc};
use tinyrtc::sctp::{ChannelConfig, Event, MessageKind, Role, SctpAssociationN, SctpConfig};
use tinyrtc::{Duration, Instant, Transmit};

const MESSAGE: usize = 16 * 1024;
const TOTAL: usize = 8 * 1024 * 1024;
const A_ADDR: &str = "10.0.0.1:5000";
const B_ADDR: &str = "10.0.0.2:5000";

fn link(loss: f64) -> LinkConfig {
    LinkConfig {
        loss,
        delay: Duration::from_millis(5),
        rate_bps: 100_000_000,
        queue_limit: Duration::from_millis(50),
        ..LinkConfig::default()
    }
}

// ------------------------------------------------------------------ tinyrtc

struct TinyHost<const S: usize, const R: usize, const C: usize> {
    assoc: Box<SctpAssociationN<S, R, 4, C>>,
    peer: SocketAddr,
    received: usize,
    opened: bool,
    buf: Vec<u8>,
}

impl<const S: usize, const R: usize, const C: usize> TinyHost<S, R, C> {
    fn drain(&mut self) {
        while let Some(ev) = self.assoc.poll_event() {
            match ev {
                Event::MessageReceived { .. } => {
                    let (_, _, n) = self.assoc.read_message(&mut self.buf).expect("read");
                    self.received += n;
                }
                Event::ChannelOpened { .. } => self.opened = true,
                _ => {}
            }
        }
    }
}

impl<const S: usize, const R: usize, const C: usize> Node for TinyHost<S, R, C> {
    fn handle_receive(&mut self, now: Instant, _from: SocketAddr, _to: SocketAddr, data: &[u8]) {
        let _ = self.assoc.handle_receive(now, data);
        self.drain();
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        self.drain();
        let len = self.assoc.poll_transmit(now, buf)?;
        Some(Transmit { source: None, destination: self.peer, len })
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.assoc.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.assoc.handle_timeout(now);
        self.drain();
    }
}

struct Figures {
    goodput_mbps: f64,
    sim_secs: f64,
    wall_ms: f64,
    extra: String,
}

fn run_tinyrtc<const S: usize, const R: usize, const C: usize>(seed: u64, loss: f64) -> Figures {
    let wall = StdInstant::now();
    let mut net = Network::new(seed);
    let (a_addr, b_addr): (SocketAddr, SocketAddr) = (A_ADDR.parse().unwrap(), B_ADDR.parse().unwrap());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let config = SctpConfig::default();
    let mk = |rng: &mut rand_chacha::ChaCha8Rng, role, peer| TinyHost::<S, R, C> {
        assoc: Box::new(SctpAssociationN::new(config, role, rng)),
        peer,
        received: 0,
        opened: false,
        buf: vec![0; MESSAGE],
    };
    let a = net.add_host(Network::PUBLIC, a_addr, mk(&mut rng, Role::Client, b_addr));
    let b = net.add_host(Network::PUBLIC, b_addr, mk(&mut rng, Role::Server, a_addr));
    net.set_link(a, link(loss));
    net.set_link(b, link(0.0));
    let now = net.now();
    net.node_mut::<TinyHost<S, R, C>>(a).assoc.connect(now);
    let now = net.now();
    let ch =
        net.node_mut::<TinyHost<S, R, C>>(a).assoc.open_channel(now, "bulk", "", ChannelConfig::default()).unwrap();
    let deadline = net.now() + Duration::from_secs(30);
    assert!(net
        .run_until_cond(deadline, |n| n.node::<TinyHost<S, R, C>>(a).opened && n.node::<TinyHost<S, R, C>>(b).opened));
    let msg = vec![0x5a; MESSAGE];
    let mut sent = 0;
    let start = net.now();
    let deadline = start + Duration::from_secs(600);
    let done = net.run_until_cond(deadline, |n| {
        let now = n.now();
        let host = n.node_mut::<TinyHost<S, R, C>>(a);
        while sent < TOTAL && host.assoc.send(now, ch, MessageKind::Binary, &msg).is_ok() {
            sent += MESSAGE;
        }
        n.node::<TinyHost<S, R, C>>(b).received >= TOTAL
    });
    assert!(done, "tinyrtc transfer did not finish");
    let secs = (net.now() - start).as_micros() as f64 / 1e6;
    let s = net.node::<TinyHost<S, R, C>>(a).assoc.stats();
    Figures {
        goodput_mbps: TOTAL as f64 * 8.0 / secs / 1e6,
        sim_secs: secs,
        wall_ms: wall.elapsed().as_secs_f64() * 1e3,
        extra: format!("rtx {} fast-rtx {} T3 {}", s.retransmitted_chunks, s.fast_retransmits, s.t3_timeouts),
    }
}

// -------------------------------------------------------------------- str0m

struct Str0mHost {
    io: Str0mIo,
    received: usize,
    open: Option<Str0mChannelId>,
}

impl Str0mHost {
    fn pump(&mut self) {
        for e in self.io.pump() {
            match e {
                Str0mEvent::ChannelData(d) => self.received += d.data.len(),
                Str0mEvent::ChannelOpen(id, _) => self.open = Some(id),
                _ => {}
            }
        }
    }
}

impl Node for Str0mHost {
    fn handle_receive(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, data: &[u8]) {
        self.io.receive(now, from, to, data);
        self.pump();
    }
    fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        self.io.poll_transmit(buf)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.io.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.io.handle_timeout(now);
        self.pump();
    }
}

fn run_str0m(seed: u64, loss: f64) -> Figures {
    let wall = StdInstant::now();
    let mut net = Network::new(seed);
    let (a_addr, b_addr): (SocketAddr, SocketAddr) = (A_ADDR.parse().unwrap(), B_ADDR.parse().unwrap());
    let base = StdInstant::now();
    let mut l = Rtc::builder().build(base);
    let mut r = Rtc::builder().build(base);
    l.add_local_candidate(Candidate::host(a_addr, "udp").unwrap());
    r.add_local_candidate(Candidate::host(b_addr, "udp").unwrap());
    let mut change = l.sdp_api();
    let cid = change.add_channel("bulk".into());
    let (offer, pending) = change.apply().unwrap();
    let answer = r.sdp_api().accept_offer(offer).unwrap();
    l.sdp_api().accept_answer(pending, answer).unwrap();
    let mk = |rtc| Str0mHost { io: Str0mIo::new(rtc, base), received: 0, open: None };
    let a = net.add_host(Network::PUBLIC, a_addr, mk(l));
    let b = net.add_host(Network::PUBLIC, b_addr, mk(r));
    net.set_link(a, link(loss));
    net.set_link(b, link(0.0));
    let deadline = net.now() + Duration::from_secs(30);
    let up = net.run_until_cond(deadline, |n| {
        n.node::<Str0mHost>(a).open == Some(cid) && n.node::<Str0mHost>(b).open.is_some()
    });
    assert!(up, "str0m channel did not open");
    let msg = vec![0x5a; MESSAGE];
    let mut sent = 0;
    let start = net.now();
    let deadline = start + Duration::from_secs(600);
    let done = net.run_until_cond(deadline, |n| {
        let host = n.node_mut::<Str0mHost>(a);
        let mut wrote = false;
        if let Some(mut chan) = host.io.rtc.channel(cid) {
            while sent < TOTAL && chan.write(true, &msg).unwrap_or(false) {
                sent += MESSAGE;
                wrote = true;
            }
        }
        if wrote {
            host.pump();
        }
        n.node::<Str0mHost>(b).received >= TOTAL
    });
    assert!(done, "str0m transfer did not finish ({} of {TOTAL})", net.node::<Str0mHost>(b).received);
    let secs = (net.now() - start).as_micros() as f64 / 1e6;
    Figures {
        goodput_mbps: TOTAL as f64 * 8.0 / secs / 1e6,
        sim_secs: secs,
        wall_ms: wall.elapsed().as_secs_f64() * 1e3,
        extra: "SCTP in DTLS 1.2 (rust-crypto)".into(),
    }
}

fn row(name: &str, f: &Figures) {
    println!(
        "  {name:<46} {:>7.1} Mbit/s goodput  ({:>5.2} s simulated, {:>7.1} ms wall)  {}",
        f.goodput_mbps, f.sim_secs, f.wall_ms, f.extra
    );
}

fn main() {
    str0m::crypto::from_feature_flags().install_process_default();
    println!(
        "datachannel: {} MiB in 16 KiB messages, reliable ordered channel, 20 ms RTT, 100 Mbit/s bottleneck",
        TOTAL >> 20
    );
    println!("  (tinyrtc: raw SCTP over simulated UDP, no DTLS underneath; str0m: full ICE + DTLS + SCTP)");
    for loss in [0.0, 0.01] {
        println!("loss {:.0}%:", loss * 100.0);
        let tiny = run_tinyrtc::<65536, 65536, 128>(11, loss);
        row("tinyrtc SctpAssociation (64 KiB windows)", &tiny);
        let big = run_tinyrtc::<{ 1 << 20 }, { 1 << 20 }, 1024>(11, loss);
        row("tinyrtc SctpAssociationN<1 MiB, 1 MiB, 4, 1024>", &big);
        let s = run_str0m(11, loss);
        row("str0m 0.24", &s);
        println!(
            "  ratio tinyrtc/str0m goodput: default {:.2}, 1 MiB windows {:.2}; wall time ratio (1 MiB windows): {:.2}",
            tiny.goodput_mbps / s.goodput_mbps,
            big.goodput_mbps / s.goodput_mbps,
            big.wall_ms / s.wall_ms
        );
    }
}
