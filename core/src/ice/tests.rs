//! ICE tests: candidate lines, priorities, and two agents wired back to
//! back in memory with a virtual clock.
extern crate std;

use super::*;
use crate::stun::BindingServer;
use crate::time::{Duration, Instant};
use core::net::SocketAddr;
use rand::SeedableRng;
use std::collections::VecDeque;
use std::string::{String, ToString};
use std::vec::Vec;

// ---------------------------------------------------------------- candidates

const BROWSER_LINES: &[&str] = &[
    // Chromium on loopback (PEERS.md).
    "candidate:2133758521 1 udp 2122194687 127.0.0.1 55032 typ host generation 0 network-id 3 network-cost 50",
    // Chromium server-reflexive, with ufrag.
    "candidate:842163049 1 udp 1677729535 203.0.113.7 45123 typ srflx raddr 192.168.1.10 rport 45123 generation 0 ufrag EsAw network-id 1 network-cost 10",
    // Chromium mDNS host candidate.
    "candidate:1052214416 1 udp 2122260223 4e2a1b3c-5d6e-4f70-8192-a3b4c5d6e7f8.local 54321 typ host generation 0 ufrag EsAw network-id 1",
    // Chromium TCP candidate.
    "candidate:3442447574 1 tcp 1518280447 192.168.1.10 9 typ host tcptype active generation 0 ufrag EsAw network-id 1",
    // IPv6 host and a relay.
    "candidate:1 1 udp 2122262783 2001:db8::1 50000 typ host generation 0",
    "candidate:3 1 udp 41885439 198.51.100.1 3478 typ relay raddr 203.0.113.7 rport 45123 generation 0",
    // Firefox style (no extensions).
    "candidate:0 1 udp 2122252543 192.168.1.10 53956 typ host",
];

#[test]
fn browser_candidate_lines_round_trip() {
    for line in BROWSER_LINES {
        let c = Candidate::parse(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(c.to_string(), *line);
        // With the SDP prefix too.
        assert_eq!(Candidate::parse(&std::format!("a={line}")).unwrap(), c);
    }
    let c = Candidate::parse(BROWSER_LINES[0]).unwrap();
    assert_eq!(c.foundation.as_str(), "2133758521");
    assert_eq!(c.priority, 2122194687);
    assert_eq!(c.socket_addr(), Some("127.0.0.1:55032".parse().unwrap()));
    assert_eq!((c.kind, c.generation, c.network_id, c.network_cost), (CandidateKind::Host, Some(0), Some(3), Some(50)));
    let s = Candidate::parse(BROWSER_LINES[1]).unwrap();
    assert_eq!(s.kind, CandidateKind::ServerReflexive);
    assert_eq!(s.related, Some(("192.168.1.10".parse().unwrap(), 45123)));
    assert_eq!(s.ufrag.as_deref(), Some("EsAw"));
    let m = Candidate::parse(BROWSER_LINES[2]).unwrap();
    assert!(m.is_mdns());
    assert_eq!(m.socket_addr(), None);
    let t = Candidate::parse(BROWSER_LINES[3]).unwrap();
    assert_eq!((t.transport, t.tcp_type), (CandidateTransport::Tcp, Some(TcpType::Active)));
    // Firefox writes the transport in capitals.
    let f = Candidate::parse("candidate:0 1 UDP 2122252543 192.168.1.10 53956 typ host").unwrap();
    assert_eq!(f.transport, CandidateTransport::Udp);
}

#[test]
fn bad_candidate_lines() {
    use CandidateParseError::*;
    let cases: &[(&str, CandidateParseError)] = &[
        ("", NotACandidate),
        ("cand:1 1 udp 1 1.2.3.4 5 typ host", NotACandidate),
        ("candidate:1 1 udp 1 1.2.3.4 5", MissingField),
        ("candidate:1 1 udp 1 1.2.3.4 5 host", BadType),
        ("candidate:1 1 udp 1 1.2.3.4 5 typ nat", BadType),
        ("candidate:1 1 sctp 1 1.2.3.4 5 typ host", UnsupportedTransport),
        ("candidate:1 0 udp 1 1.2.3.4 5 typ host", BadComponent),
        ("candidate:1 1 udp 4294967296 1.2.3.4 5 typ host", BadPriority),
        ("candidate:1 1 udp 1 1.2.3.4 70000 typ host", BadPort),
        ("candidate:1 1 udp 1 1.2.3.4:5 5 typ host", BadAddress),
        ("candidate:a-b 1 udp 1 1.2.3.4 5 typ host", BadFoundation),
        ("candidate:1 1 udp 1 1.2.3.4 5 typ srflx raddr 1.2.3.4", BadExtension),
        ("candidate:1 1 udp 1 1.2.3.4 5 typ srflx raddr 1.2.3.4 generation 0", BadExtension),
        ("candidate:1 1 udp 1 1.2.3.4 5 typ host generation x", BadExtension),
    ];
    for (line, want) in cases {
        assert_eq!(Candidate::parse(line), Err(*want), "{line}");
    }
    // Unknown extensions are skipped.
    let c = Candidate::parse("candidate:1 1 udp 1 1.2.3.4 5 typ host foo bar generation 2").unwrap();
    assert_eq!(c.generation, Some(2));
}

#[test]
fn priority_formulas() {
    // RFC 8445 5.1.2.1 with the recommended type preferences.
    assert_eq!(candidate_priority(CandidateKind::Host, 65535, 1), 2130706431);
    assert_eq!(candidate_priority(CandidateKind::ServerReflexive, 65535, 1), (100 << 24) + (65535 << 8) + 255);
    assert_eq!(candidate_priority(CandidateKind::PeerReflexive, 0, 1), 110 << 24 | 255);
    assert_eq!(candidate_priority(CandidateKind::Relayed, 10, 2), (10 << 8) + 254);
    // RFC 8445 6.1.2.3: 2^32*MIN(G,D) + 2*MAX(G,D) + (G>D?1:0).
    assert_eq!(pair_priority(10, 20), (10u64 << 32) + 40);
    assert_eq!(pair_priority(20, 10), (10u64 << 32) + 41);
    let (g, d) = (2130706431u64, 1694498815u64);
    assert_eq!(pair_priority(g as u32, d as u32), d * (1 << 32) + 2 * g + 1);
    let legal_max = (1u64 << 31) - 1;
    assert_eq!(pair_priority(legal_max as u32, legal_max as u32), legal_max * (1 << 32) + 2 * legal_max);
    // Out-of-range priorities from the network saturate instead of overflowing.
    assert_eq!(pair_priority(u32::MAX, u32::MAX), u64::MAX);
}

#[test]
fn agent_size() {
    let size = core::mem::size_of::<IceAgent>();
    std::println!("size_of::<IceAgent>() = {size} bytes");
    // Keep the documented figure honest (module docs and README).
    assert!(size <= 8192, "IceAgent grew to {size} bytes; update the docs");
}

// ---------------------------------------------------------------- harness

fn rng(seed: u64) -> rand_chacha::ChaCha20Rng {
    rand_chacha::ChaCha20Rng::seed_from_u64(seed)
}

fn creds(seed: u64) -> IceCredentials {
    IceCredentials::random(&mut rng(seed))
}

struct Side {
    agent: IceAgent,
    host: SocketAddr,
    /// A full-cone NAT mapping: the address others see and reach.
    public: Option<SocketAddr>,
    events: Vec<IceEvent>,
    /// Forward gathered candidates / end-of-candidates to the peer.
    signal_candidates: bool,
    /// The NAT is port-restricted: only addresses this side sent to get in.
    restricted: bool,
    opened: Vec<SocketAddr>,
}

impl Side {
    fn new(controlling: bool, host: &str, seed: u64) -> Side {
        let agent = IceAgent::new(IceConfig::default(), controlling, creds(seed), &mut rng(seed + 100));
        Side {
            agent,
            host: host.parse().unwrap(),
            public: None,
            events: Vec::new(),
            signal_candidates: true,
            restricted: false,
            opened: Vec::new(),
        }
    }
    fn seen_as(&self) -> SocketAddr {
        self.public.unwrap_or(self.host)
    }
    fn states(&self) -> Vec<IceState> {
        self.events
            .iter()
            .filter_map(|e| match e {
                IceEvent::StateChanged(s) => Some(*s),
                _ => None,
            })
            .collect()
    }
}

struct Net {
    sides: [Side; 2],
    now: Instant,
    in_flight: VecDeque<(Instant, usize, SocketAddr, SocketAddr, Vec<u8>)>,
    stun: Option<(SocketAddr, BindingServer)>,
    latency: Duration,
    /// Drop every packet between the two sides.
    blocked: bool,
    /// Candidates signaled later (trickle): (to side, line).
    held: Vec<(usize, String)>,
    hold_candidates: bool,
    /// Hold only the candidates going to this side.
    hold_to: Option<usize>,
    delivered: u64,
}

impl Net {
    fn new(a: Side, b: Side) -> Net {
        Net {
            sides: [a, b],
            now: Instant::from_secs(1),
            in_flight: VecDeque::new(),
            stun: None,
            latency: Duration::from_millis(5),
            blocked: false,
            held: Vec::new(),
            hold_candidates: false,
            hold_to: None,
            delivered: 0,
        }
    }

    fn exchange_credentials(&mut self) {
        let c0 = self.sides[0].agent.local_credentials().clone();
        let c1 = self.sides[1].agent.local_credentials().clone();
        self.sides[0].agent.set_remote_credentials(&c1.ufrag, &c1.pwd).unwrap();
        self.sides[1].agent.set_remote_credentials(&c0.ufrag, &c0.pwd).unwrap();
    }

    fn start(&mut self) {
        for s in self.sides.iter_mut() {
            let h = s.host;
            s.agent.add_local_candidate(h).unwrap();
        }
        self.exchange_credentials();
    }

    /// Which side owns (or sits behind) `dst`, and its socket address.
    fn route(&self, dst: SocketAddr) -> Option<(usize, SocketAddr)> {
        self.sides.iter().enumerate().find_map(|(i, s)| {
            let reachable = s.public == Some(dst) || (s.public.is_none() && s.host == dst);
            reachable.then_some((i, s.host))
        })
    }

    fn pump(&mut self) {
        let mut buf = [0u8; 1500];
        for i in 0..2 {
            while let Some(t) = self.sides[i].agent.poll_transmit(self.now, &mut buf) {
                assert_eq!(t.source, Some(self.sides[i].host), "sent from the wrong socket");
                let data = buf[..t.len].to_vec();
                let from = self.sides[i].seen_as();
                if !self.sides[i].opened.contains(&t.destination) {
                    self.sides[i].opened.push(t.destination);
                }
                if let Some((saddr, server)) = self.stun.as_mut() {
                    if t.destination == *saddr {
                        let mut out = [0u8; 256];
                        if let Ok(Some(n)) = server.respond(&data, from, &mut out) {
                            let at = self.now + self.latency;
                            self.in_flight.push_back((at, i, self.sides[i].host, *saddr, out[..n].to_vec()));
                        }
                        continue;
                    }
                }
                if self.blocked {
                    continue;
                }
                if let Some((j, local)) = self.route(t.destination) {
                    if self.sides[j].restricted && !self.sides[j].opened.contains(&from) {
                        continue; // the NAT drops unsolicited packets
                    }
                    let at = self.now + self.latency;
                    self.in_flight.push_back((at, j, local, from, data));
                }
            }
            while let Some(e) = self.sides[i].agent.poll_event() {
                let other = 1 - i;
                match &e {
                    IceEvent::CandidateGathered(c) if self.sides[i].signal_candidates => {
                        // Through the text form, as signaling would carry it.
                        let line = c.to_string();
                        if self.hold_candidates || self.hold_to == Some(other) {
                            self.held.push((other, line));
                        } else {
                            let parsed = Candidate::parse(&line).unwrap();
                            let _ = self.sides[other].agent.add_remote_candidate(parsed);
                        }
                    }
                    IceEvent::GatheringComplete if self.sides[i].signal_candidates && !self.hold_candidates => {
                        self.sides[other].agent.end_of_remote_candidates();
                    }
                    _ => {}
                }
                self.sides[i].events.push(e);
            }
        }
    }

    fn release_held(&mut self) {
        self.hold_candidates = false;
        self.hold_to = None;
        for (to, line) in std::mem::take(&mut self.held) {
            self.sides[to].agent.add_remote_candidate(Candidate::parse(&line).unwrap()).unwrap();
        }
    }

    /// Run until `until`, or until `stop` holds.
    fn run_until(&mut self, until: Instant, mut stop: impl FnMut(&Net) -> bool) {
        let mut steps = 0u32;
        loop {
            self.pump();
            if stop(self) {
                return;
            }
            let mut next = until;
            if let Some(p) = self.in_flight.iter().map(|p| p.0).min() {
                next = next.min(p);
            }
            for s in &self.sides {
                if let Some(t) = s.agent.poll_timeout() {
                    next = next.min(t.max(self.now));
                }
            }
            if next >= until && self.in_flight.iter().all(|p| p.0 > until) {
                self.now = until;
                for s in self.sides.iter_mut() {
                    s.agent.handle_timeout(until);
                }
                self.pump();
                return;
            }
            self.now = next;
            let due: Vec<_> = {
                let (d, rest): (Vec<_>, Vec<_>) = self.in_flight.drain(..).partition(|p| p.0 <= self.now);
                self.in_flight = rest.into();
                d
            };
            for (_, j, local, from, data) in due {
                self.delivered += 1;
                let _ = self.sides[j].agent.handle_receive(self.now, local, from, &data);
            }
            for s in self.sides.iter_mut() {
                if s.agent.poll_timeout().is_some_and(|t| t <= self.now) {
                    s.agent.handle_timeout(self.now);
                }
            }
            steps += 1;
            assert!(steps < 200_000, "no progress (busy loop?) at {:?}", self.now);
        }
    }

    fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until, |_| false);
    }

    fn connect(&mut self, within: Duration) {
        let until = self.now + within;
        self.run_until(until, |n| n.sides.iter().all(|s| s.agent.selected_pair().is_some()));
        for s in &self.sides {
            assert!(s.agent.selected_pair().is_some(), "not connected: {:?}", s.agent.state());
        }
    }
}

fn assert_mirrored(net: &Net) {
    let (a, b) = (net.sides[0].agent.selected_pair().unwrap(), net.sides[1].agent.selected_pair().unwrap());
    assert_eq!(a.0, net.sides[0].host);
    assert_eq!(b.0, net.sides[1].host);
    assert_eq!(a.1, net.sides[1].seen_as());
    assert_eq!(b.1, net.sides[0].seen_as());
}

// ---------------------------------------------------------------- agents

#[test]
fn both_roles_connect_and_complete() {
    let mut net = Net::new(Side::new(true, "10.0.0.1:4000", 1), Side::new(false, "10.0.0.2:5000", 2));
    net.start();
    let t0 = net.now;
    net.connect(Duration::from_secs(5));
    std::println!("connected after {} ms", (net.now - t0).as_millis());
    assert_mirrored(&net);
    net.run_for(Duration::from_millis(500));
    for s in &net.sides {
        assert_eq!(s.agent.state(), IceState::Completed);
        assert_eq!(s.states(), [IceState::Checking, IceState::Connected, IceState::Completed]);
        let selected: Vec<_> = s.events.iter().filter(|e| matches!(e, IceEvent::SelectedPairChanged { .. })).collect();
        assert_eq!(selected.len(), 1);
        assert!(s.events.contains(&IceEvent::GatheringComplete));
    }
    assert!(net.sides[0].agent.is_controlling());
    assert!(!net.sides[1].agent.is_controlling());
    // Nothing pathological: a handful of checks, no errors.
    for s in &net.sides {
        let st = s.agent.stats();
        assert!(st.checks_sent >= 1 && st.checks_sent < 10, "{st:?}");
        assert_eq!(st.error_responses_sent, 0);
        assert_eq!(st.dropped, 0);
    }
}

#[test]
fn connects_through_a_nat_via_peer_reflexive_candidates() {
    // B sits behind a full-cone NAT and signals only its private host
    // candidate: A learns B's public address from B's checks.
    let mut b = Side::new(false, "192.168.1.20:5000", 4);
    b.public = Some("203.0.113.9:62000".parse().unwrap());
    let mut net = Net::new(Side::new(true, "198.51.100.1:4000", 3), b);
    net.start();
    net.connect(Duration::from_secs(5));
    assert_mirrored(&net);
    // A paired with a peer-reflexive candidate.
    assert!(net.sides[0]
        .agent
        .pairs()
        .any(|p| p.remote == "203.0.113.9:62000".parse().unwrap() && p.state == PairState::Succeeded));
}

#[test]
fn gathers_server_reflexive_candidates() {
    let stun: SocketAddr = "192.0.2.1:3478".parse().unwrap();
    let mut b = Side::new(false, "192.168.1.20:5000", 6);
    b.public = Some("203.0.113.9:62000".parse().unwrap());
    let mut net = Net::new(Side::new(true, "198.51.100.1:4000", 5), b);
    net.stun = Some((stun, BindingServer::default()));
    net.sides[1].agent.add_stun_server(stun).unwrap();
    net.start();
    net.connect(Duration::from_secs(5));
    let srflx: Vec<_> = net.sides[1]
        .events
        .iter()
        .filter_map(|e| match e {
            IceEvent::CandidateGathered(c) if c.kind == CandidateKind::ServerReflexive => Some(c.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(srflx.len(), 1);
    assert_eq!(srflx[0].socket_addr(), Some("203.0.113.9:62000".parse().unwrap()));
    assert_eq!(srflx[0].related, Some(("192.168.1.20".parse().unwrap(), 5000)));
    // The srflx candidate came before GatheringComplete.
    let pos = |f: &dyn Fn(&IceEvent) -> bool| net.sides[1].events.iter().position(f).unwrap();
    assert!(
        pos(&|e| matches!(e, IceEvent::CandidateGathered(c) if c.kind == CandidateKind::ServerReflexive))
            < pos(&|e| *e == IceEvent::GatheringComplete)
    );
    assert_mirrored(&net);
    net.run_for(Duration::from_secs(1));
    assert_eq!(net.sides[1].agent.state(), IceState::Completed);
}

#[test]
fn a_peer_check_on_an_in_progress_pair_triggers_a_new_check_at_once() {
    // B is behind a port-restricted NAT: A's first check to B's
    // server-reflexive address is dropped and left retransmitting. When B's
    // own check opens the NAT, A cancels that check and sends a triggered
    // one at once (RFC 8445 7.3.1.4) instead of waiting for the next
    // retransmission 500 ms later.
    let stun: SocketAddr = "192.0.2.1:3478".parse().unwrap();
    let mut b = Side::new(false, "192.168.1.20:5000", 31);
    b.public = Some("203.0.113.9:62000".parse().unwrap());
    b.restricted = true;
    let mut net = Net::new(Side::new(true, "198.51.100.1:4000", 32), b);
    net.stun = Some((stun, BindingServer::default()));
    net.sides[1].agent.add_stun_server(stun).unwrap();
    net.hold_to = Some(1); // A's candidates reach B late
    net.start();
    net.run_for(Duration::from_millis(200));
    let a_pairs: Vec<_> = net.sides[0].agent.pairs().collect();
    assert!(
        a_pairs.iter().any(|p| p.remote == "203.0.113.9:62000".parse().unwrap() && p.state == PairState::InProgress),
        "{a_pairs:?}"
    );
    net.release_held();
    let t0 = net.now;
    let public: SocketAddr = "203.0.113.9:62000".parse().unwrap();
    net.run_until(t0 + Duration::from_secs(5), |n| {
        n.sides[0].agent.pairs().any(|p| p.remote == public && p.state == PairState::Succeeded)
    });
    let took = net.now - t0;
    assert!(took < Duration::from_millis(100), "pair valid {took:?} after the NAT opened");
    // Nomination then waits for the better host pair (unreachable) up to
    // the nomination timeout.
    net.connect(Duration::from_secs(5));
    assert_mirrored(&net);
}

#[test]
fn role_conflict_both_controlling_and_both_controlled() {
    for controlling in [true, false] {
        let mut net = Net::new(Side::new(controlling, "10.0.0.1:4000", 7), Side::new(controlling, "10.0.0.2:5000", 8));
        net.start();
        net.connect(Duration::from_secs(5));
        assert_mirrored(&net);
        let roles = [net.sides[0].agent.is_controlling(), net.sides[1].agent.is_controlling()];
        assert_ne!(roles[0], roles[1], "exactly one controlling agent");
        // The agent with the larger tie-breaker is controlling.
        let tb = [net.sides[0].agent.tie_breaker(), net.sides[1].agent.tie_breaker()];
        assert_eq!(roles[0], tb[0] > tb[1]);
        let conflicts: u64 = net.sides.iter().map(|s| s.agent.stats().role_conflicts).sum();
        assert!(conflicts >= 1);
    }
}

#[test]
fn trickle_after_start() {
    let mut net = Net::new(Side::new(true, "10.0.0.1:4000", 9), Side::new(false, "10.0.0.2:5000", 10));
    net.hold_candidates = true;
    net.start();
    net.run_for(Duration::from_secs(2));
    for s in &net.sides {
        assert_eq!(s.agent.state(), IceState::New, "no remote candidates yet");
        assert!(s.agent.selected_pair().is_none());
    }
    net.release_held();
    net.connect(Duration::from_secs(5));
    assert_mirrored(&net);
    for s in net.sides.iter_mut() {
        s.agent.end_of_remote_candidates();
    }
    net.run_for(Duration::from_secs(1));
    for s in &net.sides {
        assert_eq!(s.agent.state(), IceState::Completed);
    }
}

#[test]
fn one_side_trickles_late_peer_reflexive_then_signaled() {
    // A learns B's address from B's checks before B's candidate arrives.
    let mut net = Net::new(Side::new(true, "10.0.0.1:4000", 11), Side::new(false, "10.0.0.2:5000", 12));
    net.sides[1].signal_candidates = false;
    net.start();
    net.connect(Duration::from_secs(5));
    assert_mirrored(&net);
    let line = net.sides[1].agent.local_candidates().next().unwrap().to_string();
    // The signaled candidate now matches the peer-reflexive one.
    assert_eq!(
        net.sides[0].agent.add_remote_candidate(Candidate::parse(&line).unwrap()),
        Ok(()),
        "replaces the peer-reflexive candidate"
    );
    assert_eq!(net.sides[0].agent.remote_candidate_count(), 1);
}

#[test]
fn consent_loss_disconnects_then_fails() {
    let mut net = Net::new(Side::new(true, "10.0.0.1:4000", 13), Side::new(false, "10.0.0.2:5000", 14));
    net.start();
    net.connect(Duration::from_secs(5));
    net.run_for(Duration::from_secs(20));
    // Consent checks keep it alive for a long time.
    for s in &net.sides {
        assert!(matches!(s.agent.state(), IceState::Completed), "{:?}", s.agent.state());
        assert!(s.agent.stats().consent_sent >= 3, "{:?}", s.agent.stats());
    }
    net.blocked = true;
    let cut = net.now;
    let until = cut + Duration::from_secs(60);
    net.run_until(until, |n| n.sides[0].agent.state() == IceState::Disconnected);
    let d = net.now - cut;
    // 10 s after the last consent response, which came 0-6 s before the cut.
    assert!(d >= Duration::from_secs(4) && d <= Duration::from_secs(11), "disconnected after {d:?}");
    net.run_until(until, |n| n.sides[0].agent.state() == IceState::Failed);
    let f = net.now - cut;
    assert!(f >= Duration::from_secs(24) && f <= Duration::from_secs(31), "failed after {f:?}");
    assert_eq!(f - d, Duration::from_secs(20), "30 s vs 10 s after the same last response");
    assert_eq!(net.sides[0].agent.selected_pair(), None);
    // A failed agent stays quiet.
    let mut buf = [0u8; 512];
    assert!(net.sides[0].agent.poll_transmit(net.now + Duration::from_secs(10), &mut buf).is_none());
}

#[test]
fn disconnected_recovers_when_consent_returns() {
    let mut net = Net::new(Side::new(true, "10.0.0.1:4000", 15), Side::new(false, "10.0.0.2:5000", 16));
    net.start();
    net.connect(Duration::from_secs(5));
    net.blocked = true;
    let until = net.now + Duration::from_secs(25);
    net.run_until(until, |n| n.sides[0].agent.state() == IceState::Disconnected);
    assert_eq!(net.sides[0].agent.state(), IceState::Disconnected);
    net.blocked = false;
    net.run_for(Duration::from_secs(8));
    assert!(matches!(net.sides[0].agent.state(), IceState::Connected | IceState::Completed));
    assert!(net.sides[0].states().contains(&IceState::Disconnected));
}

#[test]
fn ice_restart_reconnects_with_new_credentials() {
    let mut net = Net::new(Side::new(true, "10.0.0.1:4000", 17), Side::new(false, "10.0.0.2:5000", 18));
    net.start();
    net.connect(Duration::from_secs(5));
    net.run_for(Duration::from_secs(1));
    let old = net.sides[0].agent.local_credentials().clone();
    for (i, s) in net.sides.iter_mut().enumerate() {
        s.agent.restart(creds(50 + i as u64));
        s.events.clear();
    }
    assert_ne!(net.sides[0].agent.local_credentials(), &old);
    // Traffic keeps flowing on the old pair meanwhile.
    assert!(net.sides[0].agent.selected_pair().is_some());
    net.exchange_credentials();
    let until = net.now + Duration::from_secs(5);
    net.run_until(until, |n| n.sides.iter().all(|s| s.agent.state() == IceState::Completed));
    for s in &net.sides {
        assert_eq!(s.agent.state(), IceState::Completed);
        assert!(s.events.iter().any(|e| matches!(e, IceEvent::CandidateGathered(_))), "host re-announced");
    }
    assert_mirrored(&net);
    // Old credentials are rejected now.
    let st = net.sides[0].agent.stats();
    assert_eq!(st.dropped, 0, "{st:?}");
}

#[test]
fn fails_when_checks_are_exhausted_and_no_more_candidates() {
    let mut net = Net::new(Side::new(true, "10.0.0.1:4000", 19), Side::new(false, "10.0.0.2:5000", 20));
    net.blocked = true;
    net.start();
    let t0 = net.now;
    net.run_until(t0 + Duration::from_secs(120), |n| n.sides.iter().all(|s| s.agent.state() == IceState::Failed));
    for s in &net.sides {
        assert_eq!(s.agent.state(), IceState::Failed);
        assert_eq!(s.states(), [IceState::Checking, IceState::Failed]);
    }
    // Failure came at the checking timeout at the latest.
    assert!(net.now - t0 <= Duration::from_secs(31), "{:?}", net.now - t0);
}

#[test]
fn close_stops_everything() {
    let mut net = Net::new(Side::new(true, "10.0.0.1:4000", 21), Side::new(false, "10.0.0.2:5000", 22));
    net.start();
    net.connect(Duration::from_secs(5));
    net.sides[0].agent.close();
    assert_eq!(net.sides[0].agent.state(), IceState::Closed);
    assert_eq!(net.sides[0].agent.selected_pair(), None);
    assert_eq!(net.sides[0].agent.poll_timeout(), None);
    let mut buf = [0u8; 512];
    assert!(net.sides[0].agent.poll_transmit(net.now, &mut buf).is_none());
    assert_eq!(
        net.sides[0].agent.handle_receive(net.now, net.sides[0].host, net.sides[1].host, &[0; 20]),
        Err(IceError::Closed)
    );
    assert!(
        std::iter::from_fn(|| net.sides[0].agent.poll_event()).any(|e| e == IceEvent::StateChanged(IceState::Closed))
    );
}

#[test]
fn deterministic_given_a_seed() {
    let run = || {
        let mut net = Net::new(Side::new(true, "10.0.0.1:4000", 23), Side::new(false, "10.0.0.2:5000", 24));
        net.start();
        net.connect(Duration::from_secs(5));
        net.run_for(Duration::from_secs(12));
        (net.now, net.delivered, net.sides[0].agent.stats(), net.sides[1].agent.stats(), net.sides[0].events.clone())
    };
    assert_eq!(run(), run());
}

#[test]
fn mdns_and_tcp_candidates_are_kept_or_ignored_not_paired() {
    let mut a = IceAgent::new(IceConfig::default(), true, creds(1), &mut rng(1));
    a.add_local_candidate("10.0.0.1:4000".parse().unwrap()).unwrap();
    a.add_remote_candidate(Candidate::parse(BROWSER_LINES[2]).unwrap()).unwrap();
    a.add_remote_candidate(Candidate::parse(BROWSER_LINES[3]).unwrap()).unwrap();
    assert_eq!(a.remote_candidate_count(), 1, "mDNS kept, TCP ignored");
    assert_eq!(a.pairs().count(), 0);
    a.add_remote_candidate(Candidate::parse(BROWSER_LINES[6]).unwrap()).unwrap();
    assert_eq!(a.pairs().count(), 1);
    assert_eq!(a.add_remote_candidate(Candidate::parse(BROWSER_LINES[6]).unwrap()), Err(IceError::DuplicateCandidate));
    // IPv6 remote, IPv4 local: not paired.
    a.add_remote_candidate(Candidate::parse(BROWSER_LINES[4]).unwrap()).unwrap();
    assert_eq!(a.pairs().count(), 1);
}

#[test]
fn capacities_are_enforced() {
    let mut a: IceAgentN<2, 2, 2, 2> = IceAgentN::new(IceConfig::default(), true, creds(1), &mut rng(1));
    a.add_local_candidate("10.0.0.1:1".parse().unwrap()).unwrap();
    a.add_local_candidate("10.0.0.1:2".parse().unwrap()).unwrap();
    assert_eq!(a.add_local_candidate("10.0.0.1:3".parse().unwrap()), Err(IceError::TooManyCandidates));
    for p in 1..=2 {
        let c =
            Candidate::new(CandidateKind::Host, SocketAddr::new([10, 0, 0, 2].into(), p), 100 + p as u32, "x", None);
        a.add_remote_candidate(c).unwrap();
    }
    let c = Candidate::new(CandidateKind::Host, "10.0.0.2:3".parse().unwrap(), 1, "x", None);
    assert_eq!(a.add_remote_candidate(c), Err(IceError::TooManyCandidates));
    // 4 possible pairs, room for 2: the highest-priority ones are kept.
    let pairs: Vec<_> = a.pairs().collect();
    assert_eq!(pairs.len(), 2);
    assert!(IceCredentials::new("", "x").is_err());
    assert!(IceCredentials::new("a b", "x").is_err());
    assert!(a.set_remote_credentials("abcd", &"p".repeat(65)).is_err());
}

#[test]
fn restart_with_undrained_events_announces_current_candidates_only() {
    // host, srflx, host: the restart drops the srflx and renumbers.
    let stun: SocketAddr = "192.0.2.1:3478".parse().unwrap();
    let mut a = IceAgent::new(IceConfig::default(), true, creds(1), &mut rng(1));
    a.add_stun_server(stun).unwrap();
    a.add_local_candidate("10.0.0.1:1000".parse().unwrap()).unwrap();
    let mut server = BindingServer::default();
    let mut buf = [0u8; 512];
    let t = a.poll_transmit(Instant::ZERO, &mut buf).unwrap();
    let mut out = [0u8; 256];
    let n = server.respond(&buf[..t.len], "203.0.113.1:2000".parse().unwrap(), &mut out).unwrap().unwrap();
    a.handle_receive(Instant::ZERO, t.source.unwrap(), stun, &out[..n]).unwrap();
    a.add_local_candidate("10.0.0.1:1001".parse().unwrap()).unwrap();
    assert_eq!(a.local_candidates().count(), 3);
    a.restart(creds(2));
    let gathered: Vec<_> = std::iter::from_fn(|| a.poll_event())
        .filter_map(|e| match e {
            IceEvent::CandidateGathered(c) => Some(c.socket_addr().unwrap()),
            _ => None,
        })
        .collect();
    let hosts: Vec<SocketAddr> = ["10.0.0.1:1000".parse().unwrap(), "10.0.0.1:1001".parse().unwrap()].into();
    assert_eq!(gathered, hosts);
}

type Small = IceAgentN<3, 4, 6, 4>;

/// Deliver everything `x` sends to `y` (both live on the same addresses).
fn deliver(x: &mut Small, y: &mut Small, now: Instant, seed: u64) {
    let mut buf = [0u8; 600];
    let mut sent = 0;
    while let Some(t) = x.poll_transmit(now, &mut buf) {
        sent += 1;
        assert!(sent < 100, "seed {seed}: endless transmits");
        let data = buf[..t.len].to_vec();
        let _ = y.handle_receive(now, t.destination, t.source.unwrap(), &data);
    }
}

#[test]
fn random_api_sequences_never_panic_or_stall() {
    // Two small agents driven by random calls: setup in any order, trickle,
    // restarts, closes, garbage, time jumps, undrained queues. Nothing may
    // panic, and a due poll_timeout is always cleared by handle_timeout +
    // poll_transmit (no busy loop).
    use rand::Rng;
    let mut connected_steps = 0;
    for seed in 0..200u64 {
        let mut r = rng(1000 + seed);
        let mut a: Small = IceAgentN::new(IceConfig::default(), r.gen(), creds(seed), &mut r);
        let mut b: Small = IceAgentN::new(IceConfig::default(), r.gen(), creds(seed + 1), &mut r);
        let addrs: [SocketAddr; 3] =
            ["10.0.0.1:1".parse().unwrap(), "10.0.0.2:2".parse().unwrap(), "[::1]:3".parse().unwrap()];
        let mut now = Instant::from_secs(1);
        for step in 0..400 {
            let flip: bool = r.gen();
            let (x, y) = if flip { (&mut a, &mut b) } else { (&mut b, &mut a) };
            match r.gen_range(0..12) {
                0 => {
                    let _ = x.add_local_candidate(addrs[r.gen_range(0..3)]);
                }
                1 => {
                    let c = y.local_credentials().clone();
                    let _ = x.set_remote_credentials(&c.ufrag, &c.pwd);
                }
                2 => {
                    if let Some(c) = y.local_candidates().nth(r.gen_range(0..3)) {
                        let _ = x.add_remote_candidate(Candidate::parse(&c.to_string()).unwrap());
                    }
                }
                3 => x.end_of_remote_candidates(),
                4 if r.gen_range(0..10) == 0 => x.restart(creds(seed * 1000 + step)),
                5 if r.gen_range(0..40) == 0 => x.close(),
                6 => {
                    let mut d = [0u8; 64];
                    r.fill(&mut d[..]);
                    d[0] &= 1;
                    d[4..8].copy_from_slice(&0x2112_a442u32.to_be_bytes());
                    let n = r.gen_range(0..64);
                    let _ = x.handle_receive(now, addrs[r.gen_range(0..3)], addrs[r.gen_range(0..3)], &d[..n]);
                }
                7 => now += Duration::from_millis(r.gen_range(0..3000)),
                8 => while x.poll_event().is_some() {},
                _ => {
                    deliver(x, y, now, seed);
                    x.handle_timeout(now);
                }
            }
            // A due timeout is cleared by handling it.
            for _ in 0..3 {
                let due = |ag: &Small| matches!(ag.poll_timeout(), Some(t) if t <= now);
                if due(&a) {
                    a.handle_timeout(now);
                    deliver(&mut a, &mut b, now, seed);
                }
                if due(&b) {
                    b.handle_timeout(now);
                    deliver(&mut b, &mut a, now, seed);
                }
            }
            for ag in [&a, &b] {
                assert!(!matches!(ag.poll_timeout(), Some(t) if t <= now), "seed {seed} step {step}: stuck timeout");
            }
            if a.selected_pair().is_some() {
                connected_steps += 1;
            }
        }
    }
    // The random calls do reach connections, not only error paths.
    std::println!("{connected_steps} steps with a selected pair");
    assert!(connected_steps > 1000);
}
