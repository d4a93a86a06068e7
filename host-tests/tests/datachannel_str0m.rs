//! tinyrtc `Peer` data channels against str0m 0.24 (rust-crypto), both in
//! this process on the deterministic network simulator (virtual clock,
//! seeded link impairments). str0m's SCTP (sctp-proto) and DCEP judge ours.
//!
//! - a/b: the exchange of `datachannel_chromium.rs`, with tinyrtc offering
//!   (a) and str0m offering with its channels in the offer (b), on a link
//!   of 1 ms each way (no jitter, see `exchange_link`):
//!   - tinyrtc opens `from-tinyrtc` (protocol `tinyrtc-bulk`); str0m opens
//!     `from-str0m` (protocol `str0m-bulk`) and `lossy` (unordered,
//!     max-retransmits 0); both open `neg` pre-negotiated on stream 42.
//!     Each side checks label, protocol, ordering and reliability.
//!   - text, empty text, binary, empty binary on `neg` from tinyrtc; text
//!     and binary from str0m (its empty messages stall its own stream, see
//!     `exchange`);
//!   - 1 MiB in 16 KiB binary messages each way at once, compared byte for
//!     byte on both sides;
//!   - 200 numbered 1000-byte messages each way on `lossy`;
//!   - str0m closes `from-str0m`, tinyrtc closes `from-tinyrtc`: both
//!     sides see both closes, the other channels stay open;
//!   - tinyrtc opens `timed` (unordered, max-packet-lifetime 2500 ms) on
//!     the freed slot; str0m reports those options.
//! - c: 50 ms and ~5% loss from host to host, each way: `lossy` (unordered,
//!   max-retransmits 0) carries one 200-byte message every 10 ms each way
//!   for 3 s, next to a reliable channel with one every 100 ms: lost lossy
//!   messages are not resent (85% to 99.7% arrive, none twice) nor waited
//!   for (median delay within 60 ms, none over 500 ms); the reliable
//!   channel delivers all of its messages in order.
//!
//! - d: as c, but the reliable channel also carries one 200-byte message
//!   every 10 ms each way: everything arrives in order exactly once, no
//!   chunk is dropped for want of a chunk slot, no message waits over 12 s.
//!
//! str0m draws its own randomness (ICE, DTLS, SCTP TSNs), so a seed replays
//! the link but not every byte.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant as StdInstant;

use host_tests::channels::bulk_bytes;
use host_tests::netsim::{run_seeds, run_with_seed, LinkConfig, Network, Node, NodeId};
use host_tests::str0m::Str0mIo;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use str0m::channel::{ChannelConfig as Str0mChannelConfig, ChannelId as Str0mChannelId, Reliability as Str0mRel};
use str0m::{Candidate, Event as Str0mEvent, IceConnectionState, Rtc};
use tinyrtc::peer::{ChannelConfig, Peer, PeerConfig, PeerError, PeerEvent, PeerState, Reliability};
use tinyrtc::sctp::SctpError;
use tinyrtc::{Duration, Instant, Transmit};

const TINY: &str = "10.0.0.1:5000";
const STR0M: &str = "10.0.0.2:6000";
const BULK: usize = 1 << 20;
const CHUNK: usize = 16 * 1024;
const BURST: usize = 200;
const BURST_SIZE: usize = 1000;
const SEED_US: u32 = 27;
const SEED_THEM: u32 = 29;
const NEG_ID: u16 = 42;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Messages to send on a channel: (bytes, binary), and the next index.
struct Outbox<Id> {
    id: Id,
    msgs: Vec<(Vec<u8>, bool)>,
    next: usize,
    /// Send message `i` no earlier than `start + i * pace` (zero: at once).
    start: Instant,
    pace: Duration,
    /// Stamp the send time (µs, u64 BE) into bytes 4..12 of each message.
    stamp: bool,
    /// The last send was refused (buffer full): retry on the next packet
    /// received rather than on a timer.
    blocked: bool,
}

impl<Id: Copy> Outbox<Id> {
    fn new(id: Id, msgs: Vec<(Vec<u8>, bool)>) -> Self {
        Outbox { id, msgs, next: 0, start: Instant::ZERO, pace: Duration::ZERO, stamp: false, blocked: false }
    }
    fn paced(id: Id, msgs: Vec<(Vec<u8>, bool)>, start: Instant, pace: Duration) -> Self {
        Outbox { id, msgs, next: 0, start, pace, stamp: true, blocked: false }
    }
    fn done(&self) -> bool {
        self.next == self.msgs.len()
    }
    /// When a paced outbox wants to send next (not while blocked).
    fn wake(&self) -> Option<Instant> {
        (!self.done() && !self.blocked && self.pace > Duration::ZERO)
            .then(|| self.start + Duration::from_micros(self.pace.as_micros() * self.next as u64))
    }
    /// The next message due at `now`, stamped if asked.
    fn due(&mut self, now: Instant) -> Option<(Id, Vec<u8>, bool)> {
        let (m, binary) = self.msgs.get(self.next)?;
        if now < self.start + Duration::from_micros(self.pace.as_micros() * self.next as u64) {
            return None;
        }
        let mut m = m.clone();
        if self.stamp {
            m[4..12].copy_from_slice(&now.as_micros().to_be_bytes());
        }
        Some((self.id, m, *binary))
    }
}

/// What one side received: per label, (binary, bytes, arrival time).
type Received = HashMap<String, Vec<(bool, Vec<u8>, Instant)>>;

fn rx_bytes(rx: &Received, label: &str) -> usize {
    rx.get(label).map(|v| v.iter().map(|m| m.1.len()).sum()).unwrap_or(0)
}

/// A tinyrtc session as a simulator node that reads every message as soon
/// as it is announced and sends from its outboxes whenever there is room.
struct TinyHost {
    peer: Peer,
    events: Vec<PeerEvent>,
    labels: HashMap<u16, String>,
    rx: Received,
    closed: Vec<String>,
    outbox: Vec<Outbox<u16>>,
    would_block: u64,
    buf: Vec<u8>,
}

impl TinyHost {
    fn new(peer: Peer) -> Self {
        TinyHost {
            peer,
            events: vec![],
            labels: HashMap::new(),
            rx: HashMap::new(),
            closed: vec![],
            outbox: vec![],
            would_block: 0,
            buf: vec![0; 64 * 1024],
        }
    }

    fn drain(&mut self, now: Instant) {
        while let Some(e) = self.peer.poll_event() {
            match e {
                PeerEvent::ChannelOpen { id, .. } => {
                    let label = self.peer.channel_label(id).unwrap_or("?").to_string();
                    self.labels.insert(id, label);
                }
                PeerEvent::ChannelData { id, binary, len } => {
                    let (rid, rbinary, n) = self.peer.read_data(&mut self.buf).expect("read_data");
                    assert_eq!((rid, rbinary, n), (id, binary, len), "read_data order");
                    let label = self.labels.get(&id).cloned().unwrap_or_else(|| format!("#{id}"));
                    self.rx.entry(label).or_default().push((binary, self.buf[..n].to_vec(), now));
                }
                PeerEvent::ChannelClosed { id } => {
                    self.closed.push(self.labels.get(&id).cloned().unwrap_or_else(|| format!("#{id}")));
                }
                PeerEvent::Failed(f) => panic!("tinyrtc failed: {f:?}"),
                PeerEvent::DataTransportLost(r) => panic!("tinyrtc SCTP lost: {r:?}"),
                _ => {}
            }
            self.events.push(e);
        }
        for o in &mut self.outbox {
            o.blocked = false;
            while let Some((id, m, binary)) = o.due(now) {
                match self.peer.send_data(now, id, binary, &m) {
                    Ok(()) => o.next += 1,
                    Err(PeerError::Sctp(SctpError::WouldBlock)) => {
                        self.would_block += 1;
                        o.blocked = true;
                        break;
                    }
                    Err(e) => panic!("send_data: {e:?}"),
                }
            }
        }
    }

    fn outbox_done(&self) -> bool {
        self.outbox.iter().all(Outbox::done)
    }

    fn id_of(&self, label: &str) -> Option<u16> {
        self.labels.iter().find(|(_, l)| l.as_str() == label).map(|(id, _)| *id)
    }
}

impl Node for TinyHost {
    fn handle_receive(&mut self, now: Instant, from: SocketAddr, _to: SocketAddr, data: &[u8]) {
        let mut d = data.to_vec();
        let _ = self.peer.handle_receive(now, from, &mut d);
        self.drain(now);
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        self.drain(now);
        self.peer.poll_transmit(now, buf)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        // Paced outboxes wake the node when their next message is due.
        let pace = self.outbox.iter().filter_map(Outbox::wake).min();
        [self.peer.poll_timeout(), pace].into_iter().flatten().min()
    }
    fn handle_timeout(&mut self, now: Instant) {
        if self.peer.poll_timeout().is_some_and(|t| t <= now) {
            self.peer.handle_timeout(now);
        }
        self.drain(now);
    }
}

/// str0m's `Rtc` as a simulator node, same habits as [`TinyHost`].
struct Str0mHost {
    io: Str0mIo,
    now: Instant,
    connected: bool,
    labels: HashMap<Str0mChannelId, String>,
    rx: Received,
    closed: Vec<String>,
    outbox: Vec<Outbox<Str0mChannelId>>,
    refused: u64,
}

impl Str0mHost {
    fn new(rtc: Rtc, base: StdInstant) -> Self {
        Str0mHost {
            io: Str0mIo::new(rtc, base),
            now: Instant::ZERO,
            connected: false,
            labels: HashMap::new(),
            rx: HashMap::new(),
            closed: vec![],
            outbox: vec![],
            refused: 0,
        }
    }
    fn feed(&mut self) {
        let now = self.now;
        for o in &mut self.outbox {
            o.blocked = false;
            while let Some((id, m, binary)) = o.due(now) {
                let Some(mut ch) = self.io.rtc.channel(id) else {
                    o.blocked = true;
                    break;
                };
                if ch.write(binary, &m).expect("str0m write") {
                    o.next += 1;
                } else {
                    self.refused += 1;
                    o.blocked = true;
                    break;
                }
            }
        }
    }
    /// Feed the outboxes and run str0m until it waits (again whenever it
    /// reports room in a channel's buffer).
    fn pump(&mut self) {
        loop {
            self.feed();
            let mut room = false;
            for e in self.io.pump() {
                match e {
                    Str0mEvent::IceConnectionStateChange(IceConnectionState::Connected) | Str0mEvent::Connected => {
                        self.connected = true
                    }
                    Str0mEvent::ChannelOpen(id, label) => {
                        self.labels.insert(id, label);
                    }
                    Str0mEvent::ChannelData(d) => {
                        let label = self.labels.get(&d.id).cloned().unwrap_or_else(|| format!("{:?}", d.id));
                        self.rx.entry(label).or_default().push((d.binary, d.data, self.now));
                    }
                    Str0mEvent::ChannelClose(id) => {
                        self.closed.push(self.labels.get(&id).cloned().unwrap_or_else(|| format!("{id:?}")));
                    }
                    Str0mEvent::ChannelBufferedAmountLow(_) => room = true,
                    _ => {}
                }
            }
            if !room {
                return;
            }
        }
    }
    fn outbox_done(&self) -> bool {
        self.outbox.iter().all(Outbox::done)
    }
    fn id_of(&self, label: &str) -> Option<Str0mChannelId> {
        self.labels.iter().find(|(_, l)| l.as_str() == label).map(|(id, _)| *id)
    }
}

impl Node for Str0mHost {
    fn handle_receive(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, data: &[u8]) {
        self.now = now;
        self.io.receive(now, from, to, data);
        self.pump();
    }
    fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        self.io.poll_transmit(buf)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        let pace = self.outbox.iter().filter_map(Outbox::wake).min();
        [self.io.poll_timeout(), pace].into_iter().flatten().min()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        self.io.handle_timeout(now);
        self.pump();
    }
}

/// The simulation with both hosts.
struct Sim {
    net: Network,
    t: NodeId,
    s: NodeId,
    test: &'static str,
}

impl Sim {
    fn tiny(&mut self) -> &mut TinyHost {
        self.net.node_mut::<TinyHost>(self.t)
    }
    fn str0m(&mut self) -> &mut Str0mHost {
        self.net.node_mut::<Str0mHost>(self.s)
    }
    fn describe(&self) -> String {
        let th = self.net.node::<TinyHost>(self.t);
        let sh = self.net.node::<Str0mHost>(self.s);
        let sum = |rx: &Received| -> Vec<(String, usize, usize)> {
            rx.iter().map(|(l, v)| (l.clone(), v.len(), v.iter().map(|m| m.1.len()).sum())).collect()
        };
        format!(
            "at {:?}: tinyrtc received {:?} closed {:?} labels {:?} sctp {:?}; str0m received {:?} closed {:?} labels {:?}",
            self.net.now(),
            sum(&th.rx),
            th.closed,
            th.labels,
            th.peer.data_stats(),
            sum(&sh.rx),
            sh.closed,
            sh.labels.values().collect::<Vec<_>>()
        )
    }
    fn run_until(&mut self, secs: u64, what: &str, cond: impl Fn(&TinyHost, &Str0mHost) -> bool) {
        let (t, s) = (self.t, self.s);
        let deadline = self.net.now() + Duration::from_secs(secs);
        let ok = self.net.run_until_cond(deadline, |n| cond(n.node::<TinyHost>(t), n.node::<Str0mHost>(s)));
        assert!(ok, "{}: timed out waiting for {what}; {}", self.test, self.describe());
    }
}

fn tiny_config() -> PeerConfig {
    PeerConfig { video_codecs: &[], audio_codecs: &[], datachannel: true, ..PeerConfig::camera() }
}

fn str0m_channels() -> [Str0mChannelConfig; 3] {
    [
        Str0mChannelConfig { label: "from-str0m".into(), protocol: "str0m-bulk".into(), ..Default::default() },
        Str0mChannelConfig {
            label: "lossy".into(),
            ordered: false,
            reliability: Str0mRel::MaxRetransmits { retransmits: 0 },
            ..Default::default()
        },
        Str0mChannelConfig { label: "neg".into(), negotiated: Some(NEG_ID), ..Default::default() },
    ]
}

fn open_ours(peer: &mut Peer) -> u16 {
    let now = Instant::ZERO;
    let ours = peer.open_channel(now, "from-tinyrtc", "tinyrtc-bulk", ChannelConfig::default()).unwrap();
    let neg = ChannelConfig { negotiated: Some(NEG_ID), ..ChannelConfig::default() };
    assert_eq!(peer.open_channel(now, "neg", "", neg), Ok(NEG_ID));
    ours
}

fn rtc(base: StdInstant) -> Rtc {
    let mut rtc = Rtc::builder().build(base);
    rtc.add_local_candidate(Candidate::host(addr(STR0M), "udp").unwrap());
    rtc
}

/// tinyrtc offers; str0m answers, then creates its channels once connected.
fn setup_tinyrtc_offers(test: &'static str, seed: u64, link: LinkConfig) -> (Sim, u16) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut net = Network::new(seed);
    net.set_default_link(link);
    let base = StdInstant::now();
    let mut peer = Peer::new(tiny_config(), &mut rng);
    peer.add_local_candidate(addr(TINY)).unwrap();
    let mut sdp = vec![0u8; 8192];
    let n = peer.create_offer(&mut sdp).unwrap();
    let offer = str0m::change::SdpOffer::from_sdp_string(std::str::from_utf8(&sdp[..n]).unwrap()).unwrap();
    let mut rtc = rtc(base);
    let answer = rtc.sdp_api().accept_offer(offer).expect("str0m accepts our offer").to_sdp_string();
    peer.set_remote_answer(Instant::ZERO, &answer, &mut rng).expect("we accept str0m's answer");
    let ours = open_ours(&mut peer);
    let t = net.add_host(Network::PUBLIC, addr(TINY), TinyHost::new(peer));
    let s = net.add_host(Network::PUBLIC, addr(STR0M), Str0mHost::new(rtc, base));
    let mut sim = Sim { net, t, s, test };
    sim.run_until(20, "connected", |t, s| t.peer.state() == PeerState::Connected && s.connected);
    for c in str0m_channels() {
        sim.str0m().io.rtc.direct_api().create_data_channel(c);
    }
    sim.str0m().pump();
    (sim, ours)
}

/// str0m offers with its channels; tinyrtc answers and opens its own
/// channels before DTLS is up.
fn setup_str0m_offers(test: &'static str, seed: u64, link: LinkConfig) -> (Sim, u16) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut net = Network::new(seed);
    net.set_default_link(link);
    let base = StdInstant::now();
    let mut rtc = rtc(base);
    let mut change = rtc.sdp_api();
    for c in str0m_channels() {
        change.add_channel_with_config(c);
    }
    let (offer, pending) = change.apply().unwrap();
    let mut peer = Peer::new(tiny_config(), &mut rng);
    peer.add_local_candidate(addr(TINY)).unwrap();
    let mut sdp = vec![0u8; 8192];
    let n = peer.accept_offer(Instant::ZERO, &offer.to_sdp_string(), &mut sdp, &mut rng).expect("we accept the offer");
    let answer = str0m::change::SdpAnswer::from_sdp_string(std::str::from_utf8(&sdp[..n]).unwrap()).unwrap();
    rtc.sdp_api().accept_answer(pending, answer).expect("str0m accepts our answer");
    let ours = open_ours(&mut peer);
    let t = net.add_host(Network::PUBLIC, addr(TINY), TinyHost::new(peer));
    let s = net.add_host(Network::PUBLIC, addr(STR0M), Str0mHost::new(rtc, base));
    let mut sim = Sim { net, t, s, test };
    sim.run_until(20, "connected", |t, s| t.peer.state() == PeerState::Connected && s.connected);
    (sim, ours)
}

fn numbered(count: usize, size: usize) -> Vec<(Vec<u8>, bool)> {
    (0..count as u32)
        .map(|i| {
            let mut m = vec![0u8; size];
            m[..4].copy_from_slice(&i.to_be_bytes());
            (m, true)
        })
        .collect()
}

fn ids(msgs: Option<&Vec<(bool, Vec<u8>, Instant)>>) -> Vec<u32> {
    msgs.map(|v| v.iter().map(|m| u32::from_be_bytes([m.1[0], m.1[1], m.1[2], m.1[3]])).collect()).unwrap_or_default()
}

fn exchange(sim: &mut Sim, ours: u16) {
    let test = sim.test;
    sim.run_until(10, "channels open", |t, s| {
        ["from-tinyrtc", "neg", "from-str0m", "lossy"].iter().all(|l| t.id_of(l).is_some() && s.id_of(l).is_some())
    });
    let connected_at = sim.net.now();
    let th = sim.tiny();
    assert!(th.events.contains(&PeerEvent::ChannelOpen { id: ours, by_remote: false }));
    assert!(th.events.contains(&PeerEvent::ChannelOpen { id: NEG_ID, by_remote: false }));
    let theirs = th.id_of("from-str0m").unwrap();
    let lossy = th.id_of("lossy").unwrap();
    assert!(th.events.contains(&PeerEvent::ChannelOpen { id: theirs, by_remote: true }));
    assert!(th.events.contains(&PeerEvent::ChannelOpen { id: lossy, by_remote: true }));
    assert_ne!(ours % 2, theirs % 2, "stream id parity (RFC 8832 section 6)");
    assert_eq!(th.peer.channel_protocol(theirs), Some("str0m-bulk"));
    let cfg = th.peer.channel_config(theirs).unwrap();
    assert_eq!((cfg.ordered, cfg.reliability), (true, Reliability::Reliable));
    let cfg = th.peer.channel_config(lossy).unwrap();
    assert_eq!((cfg.ordered, cfg.reliability), (false, Reliability::MaxRetransmits(0)));
    let sh = sim.str0m();
    let mine_id = sh.id_of("from-tinyrtc").unwrap();
    let cfg = sh.io.rtc.channel(mine_id).expect("str0m channel").config().cloned().expect("DCEP config");
    assert_eq!(
        (cfg.label.as_str(), cfg.protocol.as_str(), cfg.ordered, cfg.reliability),
        ("from-tinyrtc", "tinyrtc-bulk", true, Str0mRel::Reliable)
    );
    let (s_theirs, s_lossy, s_neg) =
        (sh.id_of("from-str0m").unwrap(), sh.id_of("lossy").unwrap(), sh.id_of("neg").unwrap());

    // Message kinds on the pre-negotiated channel, both ways.
    let kinds = |text: &[u8], bin: &[u8]| -> Vec<(Vec<u8>, bool)> {
        vec![(text.to_vec(), false), (vec![], false), (bin.to_vec(), true), (vec![], true)]
    };
    sim.tiny().outbox.push(Outbox::new(NEG_ID, kinds(b"hello str0m", &[1, 2, 3])));
    // str0m 0.24 (sctp-proto 0.10) sends nothing for an empty message but
    // still takes a stream sequence number, which stalls its ordered stream:
    // it sends text and binary only.
    let str0m_kinds = vec![(b"hello tinyrtc".to_vec(), false), (vec![4, 5], true)];
    sim.str0m().outbox.push(Outbox::new(s_neg, str0m_kinds.clone()));
    sim.str0m().pump();
    sim.run_until(5, "messages each way on neg", |t, s| {
        t.rx.get("neg").map_or(0, Vec::len) >= 2 && s.rx.get("neg").map_or(0, Vec::len) >= 4
    });
    let strip = |v: &Vec<(bool, Vec<u8>, Instant)>| v.iter().map(|m| (m.1.clone(), m.0)).collect::<Vec<_>>();
    assert_eq!(strip(&sim.tiny().rx["neg"]), str0m_kinds, "what tinyrtc got");
    assert_eq!(strip(&sim.str0m().rx["neg"]), kinds(b"hello str0m", &[1, 2, 3]), "what str0m got");

    // 1 MiB each way at once.
    let chunks = |seed| bulk_bytes(BULK, seed).chunks(CHUNK).map(|c| (c.to_vec(), true)).collect::<Vec<_>>();
    sim.tiny().outbox.push(Outbox::new(ours, chunks(SEED_US)));
    sim.str0m().outbox.push(Outbox::new(s_theirs, chunks(SEED_THEM)));
    sim.str0m().pump();
    let t0 = sim.net.now();
    let wall = StdInstant::now();
    sim.run_until(60, "1 MiB each way", |t, s| {
        rx_bytes(&t.rx, "from-str0m") >= BULK && rx_bytes(&s.rx, "from-tinyrtc") >= BULK
    });
    let secs = (sim.net.now() - t0).as_micros() as f64 / 1e6;
    let (th_wb, sh_refused) = (sim.tiny().would_block, sim.str0m().refused);
    for (who, rx, label, seed) in [
        ("tinyrtc", &sim.net.node::<TinyHost>(sim.t).rx, "from-str0m", SEED_THEM),
        ("str0m", &sim.net.node::<Str0mHost>(sim.s).rx, "from-tinyrtc", SEED_US),
    ] {
        let msgs = &rx[label];
        assert_eq!(msgs.len(), BULK / CHUNK, "{who}: message count");
        assert!(msgs.iter().all(|m| m.0 && m.1.len() == CHUNK), "{who}: message boundaries");
        let got: Vec<u8> = msgs.iter().flat_map(|m| m.1.iter().copied()).collect();
        assert!(got == bulk_bytes(BULK, seed), "{who}: bytes differ");
    }
    eprintln!(
        "{test}: 1 MiB each way in {secs:.2} s simulated ({:.1} Mbit/s total), {:.2} s wall; tinyrtc send \
         WouldBlock {th_wb} times, str0m refused {sh_refused} writes",
        2.0 * BULK as f64 * 8.0 / secs / 1e6,
        wall.elapsed().as_secs_f64()
    );

    // Unordered, no retransmissions: numbered messages each way.
    sim.tiny().outbox.push(Outbox::new(lossy, numbered(BURST, BURST_SIZE)));
    sim.str0m().outbox.push(Outbox::new(s_lossy, numbered(BURST, BURST_SIZE)));
    sim.str0m().pump();
    sim.run_until(10, "lossy bursts", |t, s| {
        t.outbox_done()
            && s.outbox_done()
            && t.rx.get("lossy").map_or(0, Vec::len) >= BURST
            && s.rx.get("lossy").map_or(0, Vec::len) >= BURST
    });
    for (who, got) in [("tinyrtc", ids(sim.tiny().rx.get("lossy"))), ("str0m", ids(sim.str0m().rx.get("lossy")))] {
        let mut uniq = got.clone();
        uniq.sort_unstable();
        uniq.dedup();
        assert_eq!(uniq, (0..BURST as u32).collect::<Vec<_>>(), "{who}: lossless link, every message once");
    }

    // str0m closes its channel, then tinyrtc closes its own.
    sim.str0m().io.rtc.direct_api().close_data_channel(s_theirs);
    sim.str0m().pump();
    sim.run_until(5, "from-str0m closed on both sides", |t, s| {
        t.closed.iter().any(|l| l == "from-str0m") && s.closed.iter().any(|l| l == "from-str0m")
    });
    let now = sim.net.now();
    sim.tiny().peer.close_channel(now, ours).unwrap();
    assert_eq!(sim.tiny().peer.send_data(now, ours, true, b"x"), Err(PeerError::Sctp(SctpError::UnknownChannel)));
    sim.run_until(5, "from-tinyrtc closed on both sides", |t, s| {
        t.closed.iter().any(|l| l == "from-tinyrtc") && s.closed.iter().any(|l| l == "from-tinyrtc")
    });
    let (tc, sc) = (sim.tiny().closed.clone(), sim.str0m().closed.clone());
    assert!(!tc.iter().chain(&sc).any(|l| l == "neg" || l == "lossy"), "{tc:?} {sc:?}");

    // A new channel on the freed slot, with options str0m reports back.
    let now = sim.net.now();
    let timed_cfg =
        ChannelConfig { ordered: false, reliability: Reliability::MaxLifetimeMs(2500), ..ChannelConfig::default() };
    let timed = sim.tiny().peer.open_channel(now, "timed", "t", timed_cfg).unwrap();
    sim.tiny().outbox.push(Outbox::new(timed, vec![(b"on time".to_vec(), false)]));
    sim.tiny().outbox.push(Outbox::new(NEG_ID, vec![(b"neg still open".to_vec(), false)]));
    sim.run_until(5, "timed message", |_, s| {
        s.rx.get("timed").is_some_and(|v| !v.is_empty()) && s.rx["neg"].len() == 5
    });
    let sh = sim.str0m();
    let id = sh.id_of("timed").unwrap();
    let cfg = sh.io.rtc.channel(id).expect("timed").config().cloned().expect("DCEP config");
    assert_eq!(
        (cfg.protocol.as_str(), cfg.ordered, cfg.reliability),
        ("t", false, Str0mRel::MaxPacketLifetime { lifetime: 2500 })
    );
    assert_eq!(sh.rx["timed"][0].1, b"on time");
    eprintln!("{test}: exchange done {:?} after the channels opened", sim.net.now() - connected_at);
}

#[test]
fn a_tinyrtc_offers() {
    str0m::crypto::from_feature_flags().install_process_default();
    run_with_seed(0xdc01, |seed| {
        let (mut sim, ours) = setup_tinyrtc_offers("datachannel_str0m::a_tinyrtc_offers", seed, exchange_link());
        exchange(&mut sim, ours);
    });
}

#[test]
fn b_str0m_offers() {
    str0m::crypto::from_feature_flags().install_process_default();
    run_with_seed(0xdc02, |seed| {
        let (mut sim, ours) = setup_str0m_offers("datachannel_str0m::b_str0m_offers", seed, exchange_link());
        exchange(&mut sim, ours);
    });
}

/// The c/d exchange: tinyrtc offers; each host's access link has 25 ms
/// and half of `loss`, so 50 ms and ~`loss` from one host to the other.
/// Once the channels are open each side sends `lossy.0` numbered, stamped
/// 200-byte messages on `lossy`, one every `lossy.1`, and `reliable.0` on
/// its reliable channel, one every `reliable.1`; it runs until every
/// reliable message arrived each way, then 1 s more.
fn paced_exchange(
    test: &'static str,
    seed: u64,
    loss: f64,
    lossy: (usize, Duration),
    reliable: (usize, Duration),
) -> Sim {
    let link = LinkConfig { loss: loss / 2.0, ..LinkConfig::default().with_delay(Duration::from_millis(25)) };
    let (mut sim, ours) = setup_tinyrtc_offers(test, seed, link);
    sim.run_until(20, "channels open", |t, s| {
        ["from-tinyrtc", "from-str0m", "lossy"].iter().all(|l| t.id_of(l).is_some() && s.id_of(l).is_some())
    });
    let t_lossy = sim.tiny().id_of("lossy").unwrap();
    let (s_lossy, s_theirs) = (sim.str0m().id_of("lossy").unwrap(), sim.str0m().id_of("from-str0m").unwrap());
    let start = sim.net.now();
    sim.tiny().outbox.push(Outbox::paced(t_lossy, numbered(lossy.0, 200), start, lossy.1));
    sim.tiny().outbox.push(Outbox::paced(ours, numbered(reliable.0, 200), start, reliable.1));
    sim.str0m().outbox.push(Outbox::paced(s_lossy, numbered(lossy.0, 200), start, lossy.1));
    sim.str0m().outbox.push(Outbox::paced(s_theirs, numbered(reliable.0, 200), start, reliable.1));
    sim.str0m().pump();
    sim.run_until(60, "every reliable message each way", |t, s| {
        t.outbox_done()
            && s.outbox_done()
            && t.rx.get("from-str0m").map_or(0, Vec::len) >= reliable.0
            && s.rx.get("from-tinyrtc").map_or(0, Vec::len) >= reliable.0
    });
    sim.net.run_for(Duration::from_secs(1));
    sim
}

/// Delivery delays (µs, sorted) of messages a paced `Outbox` stamped.
fn delays(v: &[(bool, Vec<u8>, Instant)]) -> Vec<u64> {
    let mut d: Vec<u64> =
        v.iter().map(|m| m.2.as_micros() - u64::from_be_bytes(m.1[4..12].try_into().unwrap())).collect();
    d.sort_unstable();
    d
}

#[test]
fn c_unreliable_channel_under_loss() {
    const MSGS: usize = 300;
    const PACE: Duration = Duration::from_millis(10);
    /// The reliable control channel: one message every 100 ms.
    const REL_MSGS: usize = 30;
    const REL_PACE: Duration = Duration::from_millis(100);
    const LOSS: f64 = 0.05;
    str0m::crypto::from_feature_flags().install_process_default();
    run_with_seed(0xdc03, |seed| {
        let test = "datachannel_str0m::c_lossy";
        let sim = paced_exchange(test, seed, LOSS, (MSGS, PACE), (REL_MSGS, REL_PACE));
        // Percentile of sorted microseconds, in ms.
        let pct = |d: &[u64], p: usize| d.get(d.len().saturating_sub(1) * p / 100).copied().unwrap_or(0) / 1000;
        let mut checks = Vec::new();
        for (who, rx, reliable) in [
            ("str0m", &sim.net.node::<Str0mHost>(sim.s).rx, "from-tinyrtc"),
            ("tinyrtc", &sim.net.node::<TinyHost>(sim.t).rx, "from-str0m"),
        ] {
            let rel = &rx[reliable];
            assert_eq!(ids(Some(rel)), (0..REL_MSGS as u32).collect::<Vec<_>>(), "{who}: reliable, in order, complete");
            let mut seen = ids(rx.get("lossy"));
            let n = seen.len();
            seen.sort_unstable();
            seen.dedup();
            let d_lossy = delays(rx.get("lossy").map(Vec::as_slice).unwrap_or_default());
            let d_rel = delays(rel);
            eprintln!(
                "{test}: {who} got {n} of {MSGS} lossy messages (one per {} ms; 50 ms and {:.0}% loss from host to \
                 host): delay p50 {} ms, p99 {} ms, max {} ms; reliable control channel: {REL_MSGS} of {REL_MSGS}, \
                 delay p50 {} ms, max {} ms",
                PACE.as_micros() / 1000,
                LOSS * 100.0,
                pct(&d_lossy, 50),
                pct(&d_lossy, 99),
                pct(&d_lossy, 100),
                pct(&d_rel, 50),
                pct(&d_rel, 100),
            );
            checks.push((who, n, seen.len(), pct(&d_lossy, 50), pct(&d_lossy, 100)));
        }
        for (who, n, uniq, p50, max) in checks {
            assert_eq!(uniq, n, "{who}: duplicates on the lossy channel");
            // ~95% expected at 5% loss; retransmissions would give 100%.
            assert!(n * 100 >= MSGS * 85, "{who}: only {n} of {MSGS}");
            assert!(n < MSGS, "{who}: every lossy message arrived at 5% loss: were they retransmitted?");
            // Lost messages are not waited for: most arrive after the one-way
            // delay; congestion control after a loss may hold a few back.
            assert!(p50 <= 60, "{who}: median lossy delay {p50} ms");
            assert!(max <= 500, "{who}: a lossy message took {max} ms");
        }
    });
}

/// d: the c link (50 ms and ~5% loss each way), with the reliable channel
/// as busy as the lossy one: one 200-byte message every 10 ms on each, each
/// way, for 3 s. Small chunks fill our 32 chunk slots long before our
/// 16 KiB of bytes, so a window in bytes alone let str0m send chunks we had
/// no slot for; each one dropped waited for str0m's retransmission timer
/// (RTO.Min 1 s, doubling), and messages from str0m stalled for up to 6 s.
/// Checked over several seeds: the reliable channel delivers everything in
/// order exactly once both ways and we drop no chunk for lack of room
/// (14-52 per run before). The stall bound is str0m's: when chunks lost
/// together leave holes, our window keeps their slots, str0m sends no new
/// data to trigger its fast retransmission, and resends by its T3 timer
/// (RTO.Min 1 s, doubling: 1 + 2 + 4 s for a chunk lost three times), on
/// top of the 3 s of messages queued meanwhile. str0m's randomness is not
/// seeded, so runs differ: of ~800 directions measured, 99% waited 3.3 s
/// or less, the worst 8.1 s; drops made 6 s within these 3 s runs.
#[test]
fn d_busy_reliable_channel_under_loss() {
    const MSGS: usize = 300;
    const PACE: Duration = Duration::from_millis(10);
    const LOSS: f64 = 0.05;
    const MAX_STALL_MS: u64 = 12000;
    str0m::crypto::from_feature_flags().install_process_default();
    run_seeds(0xdd00..0xdd08, |seed| {
        let test = "datachannel_str0m::d_busy";
        let mut sim = paced_exchange(test, seed, LOSS, (MSGS, PACE), (MSGS, PACE));
        let stats = sim.tiny().peer.data_stats().unwrap();
        for (who, rx, reliable) in [
            ("str0m", &sim.net.node::<Str0mHost>(sim.s).rx, "from-tinyrtc"),
            ("tinyrtc", &sim.net.node::<TinyHost>(sim.t).rx, "from-str0m"),
        ] {
            let rel = &rx[reliable];
            assert_eq!(ids(Some(rel)), (0..MSGS as u32).collect::<Vec<_>>(), "{who}: reliable, in order, once each");
            let max = delays(rel).last().copied().unwrap_or(0) / 1000;
            eprintln!(
                "{test} seed {seed}: {who} got {MSGS} reliable messages (one per {} ms; 50 ms and {:.0}% loss from \
                 host to host), longest delay {max} ms; tinyrtc dropped {} received chunks for lack of room",
                PACE.as_micros() / 1000,
                LOSS * 100.0,
                stats.rx_chunks_dropped,
            );
            assert!(max <= MAX_STALL_MS, "{who}: a reliable message took {max} ms");
        }
        assert_eq!(stats.rx_chunks_dropped, 0, "tinyrtc dropped chunks its window had admitted");
    });
}

/// The link of the a/b exchange: 1 ms, no jitter. With `LinkConfig::lan()`
/// (whose jitter reorders back-to-back packets) the exchange also completes,
/// at 3-5 Mbit/s instead of ~60 (spurious fast retransmits halve both
/// congestion windows), except that str0m at times never reports `timed`:
/// it reuses the stream id just reset, and when our DCEP OPEN overtakes our
/// answer to str0m's own reset request, str0m drops the OPEN.
fn exchange_link() -> LinkConfig {
    LinkConfig::default().with_delay(Duration::from_millis(1))
}
