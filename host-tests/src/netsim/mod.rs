//! A deterministic network simulator for sans-IO endpoints.
//!
//! Many [`Node`]s run in one process on a virtual clock ([`tinyrtc::Instant`]).
//! Hosts sit on the public network or on private networks ("realms") behind
//! NAT boxes of the four classic types ([`NatType`]). Each host has an access
//! link whose two directions apply seeded loss, delay, jitter, reordering,
//! duplication, an MTU and optionally a bottleneck rate with a drop-tail
//! queue ([`LinkConfig`]). Everything random comes from one
//! ChaCha8 stream seeded by [`Network::new`]: the same seed and the same nodes
//! give the same run, which [`Network::trace_hash`] fingerprints.
//!
//! ```
//! use host_tests::netsim::{LinkConfig, Mailbox, NatConfig, NatType, Network};
//! use tinyrtc::{Duration, Instant};
//!
//! let mut net = Network::new(7);
//! net.set_default_link(LinkConfig::wan().with_loss(0.01));
//! let server = net.add_host(Network::PUBLIC, "203.0.113.1:3478".parse().unwrap(), Mailbox::new());
//! let home = net.add_nat(Network::PUBLIC, "198.51.100.7".parse().unwrap(), NatConfig::new(NatType::PortRestricted));
//! let client = net.add_host(home, "192.168.1.10:5000".parse().unwrap(), Mailbox::new());
//!
//! let to = net.addr(server);
//! net.node_mut::<Mailbox>(client).send_to(to, b"hello");
//! net.run_until(Instant::from_secs(1));
//! let got = &net.node::<Mailbox>(server).received;
//! // The server sees the NAT's public address, not 192.168.1.10.
//! if let Some(d) = got.first() {
//!     assert_eq!(d.from.ip(), "198.51.100.7".parse::<std::net::IpAddr>().unwrap());
//! }
//! println!("{:?}", net.stats());
//! ```
//!
//! Routing: a datagram leaves its sender through the sender's uplink into
//! the sender's realm. There it goes to the host or NAT owning the
//! destination IP; if none does and the realm is behind a NAT, the NAT maps
//! the source and passes it to the parent realm (which gives hairpinning for
//! free). A NAT receiving on its external IP filters and translates inward.
//! The final host's downlink applies before delivery. NATs add no delay.
//!
//! Tests wrap their body in [`run_with_seed`] (or [`run_seeds`]) so a failure
//! prints `netsim seed = N`; `NETSIM_SEED=N` replays it.

pub mod ice;
mod link;
mod nat;
mod node;
mod seed;
mod stun_server;

pub use link::{LinkConfig, IPV4_UDP_OVERHEAD, IPV6_UDP_OVERHEAD};
pub use nat::{NatConfig, NatStats, NatType};
pub use node::{Mailbox, Node, Received};
pub use seed::{run_seeds, run_with_seed, seed_from_env, SEED_ENV};
pub use stun_server::StunServer;

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, SocketAddr};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tinyrtc::{Duration, Instant, Transmit};

use link::Crossing;
use nat::{InboundDrop, Nat};
use node::AnyNode;

/// Largest datagram a node may emit (the `buf` given to `poll_transmit`).
pub const MAX_DATAGRAM: usize = 65_535;

/// Handle of a node in a [`Network`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(u32);

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Handle of a network segment: [`Network::PUBLIC`] or the private side of a NAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RealmId(u32);

/// Network-wide counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Datagrams emitted by nodes (from a valid source address).
    pub sent: u64,
    /// Datagrams handed to a node's `handle_receive` (duplicates included).
    pub delivered: u64,
    /// Lost on a link (`LinkConfig::loss`).
    pub lost: u64,
    /// Dropped for exceeding a link MTU.
    pub too_big: u64,
    /// Dropped by a full bottleneck queue (`LinkConfig::rate_bps`).
    pub queue_dropped: u64,
    /// Extra copies made by `LinkConfig::duplicate`.
    pub duplicated: u64,
    /// Copies held back by `LinkConfig::reorder`.
    pub reordered: u64,
    /// Dropped by a NAT's filtering rule.
    pub nat_filtered: u64,
    /// Dropped by a NAT: no live mapping for the destination port (or no port
    /// left, or hairpinning off).
    pub nat_no_mapping: u64,
    /// No host or NAT owns the destination IP.
    pub unroutable: u64,
    /// A node sent from an address it does not own.
    pub bad_source: u64,
}

impl NetStats {
    /// All NAT drops.
    pub fn nat_dropped(&self) -> u64 {
        self.nat_filtered + self.nat_no_mapping
    }
}

/// Per-node counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeStats {
    pub sent: u64,
    pub received: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

/// What happened to a datagram, as recorded in the trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TraceKind {
    Sent,
    Delivered,
    Lost,
    TooBig,
    QueueDropped,
    NatFiltered,
    NatNoMapping,
    Unroutable,
    BadSource,
}

/// One trace record (see [`Network::enable_trace_log`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceEntry {
    pub time: Instant,
    pub kind: TraceKind,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub len: usize,
}

impl fmt::Display for TraceEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.time.as_micros();
        write!(
            f,
            "{:>6}.{:06} {:<12} {} -> {} ({} B)",
            us / 1_000_000,
            us % 1_000_000,
            format!("{:?}", self.kind),
            self.src,
            self.dst,
            self.len
        )
    }
}

/// A fast non-cryptographic hasher (FxHash's mixing) for the simulator's
/// maps and the trace fingerprint; deterministic across runs.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

const FX_K: u64 = 0x517c_c1b7_2722_0a95;

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(FX_K);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;

fn hash_addr(h: &mut FxHasher, a: &SocketAddr) {
    match a.ip() {
        IpAddr::V4(ip) => h.add(u64::from(u32::from(ip))),
        IpAddr::V6(ip) => {
            let v = u128::from(ip);
            h.add(v as u64);
            h.add((v >> 64) as u64);
        }
    }
    h.add(u64::from(a.port()));
}

#[derive(Debug, Clone, Copy)]
enum EventKind {
    /// A datagram reaches the router of a realm.
    Route { realm: u32, pkt: u32 },
    /// A datagram reaches a node.
    Deliver { node: u32, pkt: u32 },
    /// A node's timeout.
    Timer { node: u32 },
}

#[derive(Debug, Clone, Copy)]
struct Event {
    time: Instant,
    seq: u64,
    kind: EventKind,
}

impl PartialEq for Event {
    fn eq(&self, o: &Self) -> bool {
        self.time == o.time && self.seq == o.seq
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Event {
    // Reversed: BinaryHeap is a max-heap, we want the earliest (then FIFO).
    fn cmp(&self, o: &Self) -> Ordering {
        o.time.cmp(&self.time).then(o.seq.cmp(&self.seq))
    }
}

#[derive(Debug)]
struct Packet {
    src: SocketAddr,
    dst: SocketAddr,
    /// Fingerprint of the payload, mixed into the trace.
    fp: u64,
    data: Vec<u8>,
}

/// Packets in flight; slots and their buffers are reused.
#[derive(Debug, Default)]
struct Slab {
    slots: Vec<Packet>,
    free: Vec<u32>,
}

impl Slab {
    fn alloc(&mut self, src: SocketAddr, dst: SocketAddr, fp: u64, bytes: &[u8]) -> u32 {
        if let Some(i) = self.free.pop() {
            let p = &mut self.slots[i as usize];
            p.src = src;
            p.dst = dst;
            p.fp = fp;
            p.data.clear();
            p.data.extend_from_slice(bytes);
            i
        } else {
            self.slots.push(Packet { src, dst, fp, data: bytes.to_vec() });
            (self.slots.len() - 1) as u32
        }
    }
    /// A second slot holding a copy of slot `i`.
    fn duplicate(&mut self, i: u32) -> u32 {
        let (src, dst, fp) = {
            let p = &self.slots[i as usize];
            (p.src, p.dst, p.fp)
        };
        let j = self.alloc(src, dst, fp, &[]);
        let (a, b) = (i as usize, j as usize);
        let (from, to) = if a < b {
            let (l, r) = self.slots.split_at_mut(b);
            (&l[a], &mut r[0])
        } else {
            let (l, r) = self.slots.split_at_mut(a);
            (&r[0], &mut l[b])
        };
        to.data.extend_from_slice(&from.data);
        j
    }
    fn release(&mut self, i: u32) {
        self.free.push(i);
    }
}

struct Realm {
    nat: Option<Nat>,
}

#[derive(Debug, Clone, Copy)]
enum Target {
    Host(u32),
    Nat(u32),
}

struct NodeEntry {
    node: Box<dyn AnyNode>,
    primary: SocketAddr,
    addrs: Vec<(IpAddr, RealmId)>,
    uplink: LinkConfig,
    downlink: LinkConfig,
    /// When each direction's bottleneck is next idle.
    up_free_at: Instant,
    down_free_at: Instant,
    next_timer: Option<Instant>,
    dirty: bool,
    stats: NodeStats,
}

impl NodeEntry {
    fn realm_of(&self, ip: IpAddr) -> Option<RealmId> {
        self.addrs.iter().find(|(a, _)| *a == ip).map(|(_, r)| *r)
    }
}

/// Everything but the nodes, so a node can be borrowed while the network
/// schedules what it sends.
struct Core {
    seed: u64,
    rng: ChaCha8Rng,
    now: Instant,
    seq: u64,
    heap: BinaryHeap<Event>,
    packets: Slab,
    realms: Vec<Realm>,
    routes: HashMap<(u32, IpAddr), Target, FxBuild>,
    stats: NetStats,
    trace_hash: FxHasher,
    trace_log: Option<Vec<TraceEntry>>,
    scratch: Vec<u8>,
    default_link: LinkConfig,
    events_processed: u64,
    same_instant_events: u64,
}

/// Upper bound on events at one virtual instant before the run is declared
/// a livelock (e.g. a node whose `poll_timeout` never moves past `now`).
const LIVELOCK_LIMIT: u64 = 5_000_000;
/// Upper bound on NAT/realm hops of one datagram.
const MAX_HOPS: usize = 16;

/// The simulated network. See the module docs for an example.
pub struct Network {
    core: Core,
    nodes: Vec<NodeEntry>,
    dirty: Vec<u32>,
}

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Network")
            .field("seed", &self.core.seed)
            .field("now", &self.core.now)
            .field("nodes", &self.nodes.len())
            .field("stats", &self.core.stats)
            .finish()
    }
}

impl Network {
    /// The public network (the Internet).
    pub const PUBLIC: RealmId = RealmId(0);

    /// An empty network at virtual time zero; `seed` drives every random choice.
    pub fn new(seed: u64) -> Self {
        let mut h = FxHasher::default();
        h.add(seed);
        Network {
            core: Core {
                seed,
                rng: ChaCha8Rng::seed_from_u64(seed),
                now: Instant::ZERO,
                seq: 0,
                heap: BinaryHeap::new(),
                packets: Slab::default(),
                realms: vec![Realm { nat: None }],
                routes: HashMap::default(),
                stats: NetStats::default(),
                trace_hash: h,
                trace_log: None,
                scratch: vec![0; MAX_DATAGRAM],
                default_link: LinkConfig::default(),
                events_processed: 0,
                same_instant_events: 0,
            },
            nodes: Vec::new(),
            dirty: Vec::new(),
        }
    }

    pub fn seed(&self) -> u64 {
        self.core.seed
    }

    /// Current virtual time.
    pub fn now(&self) -> Instant {
        self.core.now
    }

    /// An RNG for a node, derived from the network seed and `stream` (use a
    /// different stream per node) without disturbing the network's own stream.
    pub fn rng(&self, stream: u64) -> ChaCha8Rng {
        let mut r = ChaCha8Rng::seed_from_u64(self.core.seed);
        r.set_stream(stream.wrapping_add(1));
        r
    }

    /// Link config for hosts added from now on (both directions).
    pub fn set_default_link(&mut self, link: LinkConfig) {
        self.core.default_link = link;
    }

    /// Adds a host in `realm` whose primary address is `addr`. Datagrams to
    /// any port of `addr.ip()` in that realm go to this node.
    ///
    /// Panics if the IP is already taken in that realm (a test bug).
    pub fn add_host<N: Node + 'static>(&mut self, realm: RealmId, addr: SocketAddr, node: N) -> NodeId {
        let id = self.nodes.len() as u32;
        self.claim_ip(realm, addr.ip(), Target::Host(id));
        let link = self.core.default_link;
        self.nodes.push(NodeEntry {
            node: Box::new(node),
            primary: addr,
            addrs: vec![(addr.ip(), realm)],
            uplink: link,
            downlink: link,
            up_free_at: Instant::ZERO,
            down_free_at: Instant::ZERO,
            next_timer: None,
            dirty: false,
            stats: NodeStats::default(),
        });
        self.mark_dirty(id);
        NodeId(id)
    }

    /// Gives a node another IP, in any realm (multi-homed hosts).
    pub fn add_address(&mut self, id: NodeId, realm: RealmId, ip: IpAddr) {
        self.claim_ip(realm, ip, Target::Host(id.0));
        self.nodes[id.index()].addrs.push((ip, realm));
    }

    fn claim_ip(&mut self, realm: RealmId, ip: IpAddr, t: Target) {
        assert!((realm.0 as usize) < self.core.realms.len(), "netsim: unknown realm {realm:?}");
        let prev = self.core.routes.insert((realm.0, ip), t);
        assert!(prev.is_none(), "netsim: IP {ip} already in use in realm {realm:?}");
    }

    /// Adds a NAT whose external address `external_ip` is in `parent`;
    /// returns the private realm behind it (add hosts there).
    pub fn add_nat(&mut self, parent: RealmId, external_ip: IpAddr, config: NatConfig) -> RealmId {
        let inner = self.core.realms.len() as u32;
        self.claim_ip(parent, external_ip, Target::Nat(inner));
        // Deterministic but seed-dependent first port, like real NATs' random allocation.
        let first_port = self.core.rng.gen_range(20_000..60_000);
        self.core.realms.push(Realm { nat: Some(Nat::new(config, parent, external_ip, first_port)) });
        RealmId(inner)
    }

    /// Counters of the NAT in front of `realm` (`None` for the public realm).
    pub fn nat_stats(&self, realm: RealmId) -> Option<NatStats> {
        self.core.realms.get(realm.0 as usize)?.nat.as_ref().map(|n| n.stats)
    }

    /// Live mappings of the NAT in front of `realm` at the current time.
    pub fn nat_mappings(&self, realm: RealmId) -> usize {
        let now = self.core.now;
        self.core.realms.get(realm.0 as usize).and_then(|r| r.nat.as_ref()).map_or(0, |n| n.live_mappings(now))
    }

    /// Sets both directions of a host's access link.
    pub fn set_link(&mut self, id: NodeId, link: LinkConfig) {
        let e = &mut self.nodes[id.index()];
        e.uplink = link;
        e.downlink = link;
    }
    /// Sets the host -> network direction.
    pub fn set_uplink(&mut self, id: NodeId, link: LinkConfig) {
        self.nodes[id.index()].uplink = link;
    }
    /// Sets the network -> host direction.
    pub fn set_downlink(&mut self, id: NodeId, link: LinkConfig) {
        self.nodes[id.index()].downlink = link;
    }
    /// `(uplink, downlink)` of a host.
    pub fn link(&self, id: NodeId) -> (LinkConfig, LinkConfig) {
        let e = &self.nodes[id.index()];
        (e.uplink, e.downlink)
    }

    /// Primary address of a node.
    pub fn addr(&self, id: NodeId) -> SocketAddr {
        self.nodes[id.index()].primary
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The node as its concrete type. Panics on a wrong type (a test bug).
    pub fn node<T: Node + 'static>(&self, id: NodeId) -> &T {
        let e = &self.nodes[id.index()];
        match e.node.as_any().downcast_ref::<T>() {
            Some(n) => n,
            None => panic!("netsim: node {id:?} is a {}, not a {}", e.node.type_name(), std::any::type_name::<T>()),
        }
    }

    /// The node as its concrete type, mutably. The network polls it again
    /// (transmits, timeout) before the next event is processed.
    pub fn node_mut<T: Node + 'static>(&mut self, id: NodeId) -> &mut T {
        self.mark_dirty(id.0);
        let e = &mut self.nodes[id.index()];
        let name = e.node.type_name();
        match e.node.as_any_mut().downcast_mut::<T>() {
            Some(n) => n,
            None => panic!("netsim: node {id:?} is a {name}, not a {}", std::any::type_name::<T>()),
        }
    }

    fn mark_dirty(&mut self, id: u32) {
        let e = &mut self.nodes[id as usize];
        if !e.dirty {
            e.dirty = true;
            self.dirty.push(id);
        }
    }

    pub fn stats(&self) -> NetStats {
        self.core.stats
    }

    pub fn node_stats(&self, id: NodeId) -> NodeStats {
        self.nodes[id.index()].stats
    }

    /// Events processed so far (datagram hops and timers).
    pub fn events_processed(&self) -> u64 {
        self.core.events_processed
    }

    /// Fingerprint of everything that happened so far: every send, delivery
    /// and drop with its time, addresses, length and payload. Equal seeds
    /// and nodes give equal hashes.
    pub fn trace_hash(&self) -> u64 {
        self.core.trace_hash.finish()
    }

    /// Starts recording every trace record (memory grows with the run; for
    /// small tests and debugging).
    pub fn enable_trace_log(&mut self) {
        if self.core.trace_log.is_none() {
            self.core.trace_log = Some(Vec::new());
        }
    }

    /// The records since [`enable_trace_log`](Self::enable_trace_log).
    pub fn trace_log(&self) -> &[TraceEntry] {
        self.core.trace_log.as_deref().unwrap_or(&[])
    }

    /// Processes every event up to and including `deadline`; the clock then
    /// reads `deadline`.
    pub fn run_until(&mut self, deadline: Instant) {
        self.flush_dirty();
        while self.step_before(deadline) {
            self.flush_dirty();
        }
        self.core.advance_to(deadline);
    }

    /// [`run_until`](Self::run_until) `now + d`.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.core.now + d);
    }

    /// Processes events until `cond` holds (checked before the first event
    /// and after each one) or `deadline` passes. Returns whether `cond` held;
    /// the clock is then at the event that made it hold, or at `deadline`.
    /// `cond` may touch nodes (e.g. move candidates from one to another).
    pub fn run_until_cond(&mut self, deadline: Instant, mut cond: impl FnMut(&mut Network) -> bool) -> bool {
        loop {
            self.flush_dirty();
            if cond(self) {
                self.flush_dirty();
                return true;
            }
            self.flush_dirty();
            if !self.step_before(deadline) {
                self.core.advance_to(deadline);
                let ok = cond(self);
                self.flush_dirty();
                return ok;
            }
        }
    }

    /// Time of the next pending event, if any.
    pub fn next_event_time(&self) -> Option<Instant> {
        self.core.heap.peek().map(|e| e.time)
    }

    /// Polls the nodes the test touched, in the order it touched them.
    fn flush_dirty(&mut self) {
        while !self.dirty.is_empty() {
            let dirty = std::mem::take(&mut self.dirty);
            for &id in &dirty {
                let e = &mut self.nodes[id as usize];
                e.dirty = false;
                self.core.drain(id, e);
            }
            if self.dirty.is_empty() {
                // Keep the allocation.
                self.dirty = dirty;
                self.dirty.clear();
            }
        }
    }

    /// Processes one event if it is due by `deadline`.
    fn step_before(&mut self, deadline: Instant) -> bool {
        let Some(ev) = self.core.heap.peek().copied() else { return false };
        if ev.time > deadline {
            return false;
        }
        self.core.heap.pop();
        if ev.time > self.core.now {
            self.core.now = ev.time;
            self.core.same_instant_events = 0;
        }
        self.core.same_instant_events += 1;
        if self.core.same_instant_events > LIVELOCK_LIMIT {
            panic!("netsim: livelock: more than {LIVELOCK_LIMIT} events at {:?}", self.core.now);
        }
        self.core.events_processed += 1;
        match ev.kind {
            EventKind::Route { realm, pkt } => self.core.route(realm, pkt, &mut self.nodes),
            EventKind::Deliver { node, pkt } => {
                let core = &mut self.core;
                let e = &mut self.nodes[node as usize];
                let p = &core.packets.slots[pkt as usize];
                let (src, dst, len) = (p.src, p.dst, p.data.len());
                core.stats.delivered += 1;
                e.stats.received += 1;
                e.stats.bytes_received += len as u64;
                core.trace(TraceKind::Delivered, src, dst, len, None);
                e.node.handle_receive(core.now, src, dst, &core.packets.slots[pkt as usize].data);
                core.packets.release(pkt);
                core.drain(node, e);
            }
            EventKind::Timer { node } => {
                let core = &mut self.core;
                let e = &mut self.nodes[node as usize];
                if e.next_timer == Some(ev.time) {
                    e.next_timer = None;
                    e.node.handle_timeout(core.now);
                    core.drain(node, e);
                }
            }
        }
        true
    }
}

impl Core {
    fn advance_to(&mut self, t: Instant) {
        if t > self.now {
            self.now = t;
            self.same_instant_events = 0;
        }
    }

    fn push(&mut self, time: Instant, kind: EventKind) {
        self.seq += 1;
        self.heap.push(Event { time, seq: self.seq, kind });
    }

    fn trace(&mut self, kind: TraceKind, src: SocketAddr, dst: SocketAddr, len: usize, fp: Option<u64>) {
        let h = &mut self.trace_hash;
        h.add(self.now.as_micros());
        h.add(kind as u64);
        hash_addr(h, &src);
        hash_addr(h, &dst);
        h.add(len as u64);
        if let Some(fp) = fp {
            h.add(fp);
        }
        if let Some(log) = &mut self.trace_log {
            log.push(TraceEntry { time: self.now, kind, src, dst, len });
        }
    }

    /// Sends everything the node has queued, then (re)arms its timer.
    fn drain(&mut self, id: u32, e: &mut NodeEntry) {
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut n = 0u64;
        while let Some(t) = e.node.poll_transmit(self.now, &mut scratch) {
            n += 1;
            assert!(n <= LIVELOCK_LIMIT, "netsim: node {id} never stops transmitting");
            assert!(t.len <= scratch.len(), "netsim: node {id} reported len {} > buffer", t.len);
            self.send(e, t, &scratch[..t.len]);
        }
        self.scratch = scratch;
        let next = e.node.poll_timeout().map(|t| t.max(self.now));
        if next != e.next_timer {
            e.next_timer = next;
            if let Some(t) = next {
                self.push(t, EventKind::Timer { node: id });
            }
        }
    }

    fn send(&mut self, e: &mut NodeEntry, t: Transmit, data: &[u8]) {
        let src = match t.source {
            None => e.primary,
            Some(s) => s,
        };
        let dst = t.destination;
        let Some(realm) = e.realm_of(src.ip()) else {
            self.stats.bad_source += 1;
            self.trace(TraceKind::BadSource, src, dst, data.len(), None);
            return;
        };
        let mut h = FxHasher::default();
        h.write(data);
        let fp = h.finish();
        self.stats.sent += 1;
        e.stats.sent += 1;
        e.stats.bytes_sent += data.len() as u64;
        self.trace(TraceKind::Sent, src, dst, data.len(), Some(fp));
        let crossing = e.uplink.cross(&mut self.rng, data.len(), dst.is_ipv6(), self.now, &mut e.up_free_at);
        match crossing {
            Crossing::TooBig | Crossing::Lost | Crossing::QueueFull => self.link_drop(crossing, src, dst, data.len()),
            Crossing::Pass { first, second } => {
                self.stats.duplicated += u64::from(second.is_some());
                for (delay, reordered) in std::iter::once(first).chain(second) {
                    self.stats.reordered += u64::from(reordered);
                    let pkt = self.packets.alloc(src, dst, fp, data);
                    self.push(self.now + delay, EventKind::Route { realm: realm.0, pkt });
                }
            }
        }
    }

    fn link_drop(&mut self, crossing: Crossing, src: SocketAddr, dst: SocketAddr, len: usize) {
        let kind = match crossing {
            Crossing::TooBig => {
                self.stats.too_big += 1;
                TraceKind::TooBig
            }
            Crossing::QueueFull => {
                self.stats.queue_dropped += 1;
                TraceKind::QueueDropped
            }
            _ => {
                self.stats.lost += 1;
                TraceKind::Lost
            }
        };
        self.trace(kind, src, dst, len, None);
    }

    /// Routes the datagram in slot `pkt`, arriving in `realm` now.
    fn route(&mut self, realm: u32, pkt: u32, nodes: &mut [NodeEntry]) {
        let mut realm = realm;
        let (mut src, mut dst) = {
            let p = &self.packets.slots[pkt as usize];
            (p.src, p.dst)
        };
        let len = self.packets.slots[pkt as usize].data.len();
        for _ in 0..MAX_HOPS {
            match self.routes.get(&(realm, dst.ip())).copied() {
                Some(Target::Host(node)) => {
                    let p = &mut self.packets.slots[pkt as usize];
                    p.src = src;
                    p.dst = dst;
                    let n = &mut nodes[node as usize];
                    let crossing = n.downlink.cross(&mut self.rng, len, dst.is_ipv6(), self.now, &mut n.down_free_at);
                    match crossing {
                        Crossing::TooBig | Crossing::Lost | Crossing::QueueFull => {
                            self.link_drop(crossing, src, dst, len);
                            self.packets.release(pkt);
                        }
                        Crossing::Pass { first, second } => {
                            if let Some((d2, re2)) = second {
                                let dup = self.packets.duplicate(pkt);
                                self.stats.duplicated += 1;
                                self.stats.reordered += u64::from(re2);
                                self.push(self.now + d2, EventKind::Deliver { node, pkt: dup });
                            }
                            self.stats.reordered += u64::from(first.1);
                            self.push(self.now + first.0, EventKind::Deliver { node, pkt });
                        }
                    }
                    return;
                }
                Some(Target::Nat(inner)) => {
                    let now = self.now;
                    let Some(nat) = self.realms[inner as usize].nat.as_mut() else { break };
                    match nat.inbound(now, src, dst) {
                        Ok(internal) => {
                            dst = internal;
                            realm = inner;
                        }
                        Err(InboundDrop::Filtered) => {
                            self.stats.nat_filtered += 1;
                            self.trace(TraceKind::NatFiltered, src, dst, len, None);
                            self.packets.release(pkt);
                            return;
                        }
                        Err(InboundDrop::NoMapping) => {
                            self.stats.nat_no_mapping += 1;
                            self.trace(TraceKind::NatNoMapping, src, dst, len, None);
                            self.packets.release(pkt);
                            return;
                        }
                    }
                }
                None => {
                    let now = self.now;
                    let Some(nat) = self.realms[realm as usize].nat.as_mut() else { break };
                    if dst.is_ipv4() != nat.external_ip.is_ipv4() {
                        break;
                    }
                    if dst.ip() == nat.external_ip && !nat.config.hairpin {
                        nat.stats.hairpin_dropped += 1;
                        self.stats.nat_no_mapping += 1;
                        self.trace(TraceKind::NatNoMapping, src, dst, len, None);
                        self.packets.release(pkt);
                        return;
                    }
                    match nat.outbound(now, src, dst) {
                        Some(mapped) => {
                            src = mapped;
                            realm = nat.parent.0;
                        }
                        None => {
                            self.stats.nat_no_mapping += 1;
                            self.trace(TraceKind::NatNoMapping, src, dst, len, None);
                            self.packets.release(pkt);
                            return;
                        }
                    }
                }
            }
        }
        self.stats.unroutable += 1;
        self.trace(TraceKind::Unroutable, src, dst, len, None);
        self.packets.release(pkt);
    }
}
