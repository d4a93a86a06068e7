//! Self-tests of the simulator's NAT boxes: mapping and filtering per
//! type (RFC 4787 terms), mapping timeouts, hairpinning, hole punching.

use std::net::{IpAddr, SocketAddr};

use host_tests::netsim::{run_with_seed, Mailbox, NatConfig, NatType, Network, NodeId, RealmId};
use tinyrtc::{Duration, Instant};

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const NAT_IP: &str = "198.51.100.1";
const S1: &str = "192.0.2.1:3478";
const S1_OTHER_PORT: &str = "192.0.2.1:3479";
const S2: &str = "192.0.2.2:3478";

struct World {
    net: Network,
    nat: RealmId,
    host: NodeId,
    s1: NodeId,
    s2: NodeId,
}

fn world(seed: u64, config: NatConfig) -> World {
    let mut net = Network::new(seed);
    let nat = net.add_nat(Network::PUBLIC, NAT_IP.parse().unwrap(), config);
    let host = net.add_host(nat, sa("10.0.0.2:5000"), Mailbox::new());
    let s1 = net.add_host(Network::PUBLIC, sa(S1), Mailbox::new());
    let s2 = net.add_host(Network::PUBLIC, sa(S2), Mailbox::new());
    World { net, nat, host, s1, s2 }
}

impl World {
    fn send(&mut self, from: NodeId, src: Option<&str>, dst: SocketAddr, data: &[u8]) {
        let m = self.net.node_mut::<Mailbox>(from);
        match src {
            Some(s) => m.send_from(sa(s), dst, data),
            None => m.send_to(dst, data),
        }
        let t = self.net.now() + Duration::from_millis(1);
        self.net.run_until(t);
    }
    /// Source address of the last datagram `node` received, if it got `data`.
    fn last_from(&mut self, node: NodeId, data: &[u8]) -> Option<SocketAddr> {
        let got = self.net.node_mut::<Mailbox>(node).take_received();
        got.iter().rev().find(|r| r.data == data).map(|r| r.from)
    }
    fn host_got(&mut self, data: &[u8]) -> bool {
        self.last_from(self.host, data).is_some()
    }
}

#[test]
fn mapping_behaviour_per_type() {
    run_with_seed(11, |seed| {
        for t in NatType::ALL {
            let mut w = world(seed, NatConfig::new(t));
            w.send(w.host, None, sa(S1), b"to s1");
            let m1 = w.last_from(w.s1, b"to s1").expect("s1 reached");
            w.send(w.host, None, sa(S2), b"to s2");
            let m2 = w.last_from(w.s2, b"to s2").expect("s2 reached");
            w.send(w.host, None, sa(S1_OTHER_PORT), b"to s1b");
            let m3 = w.last_from(w.s1, b"to s1b").expect("s1 other port reached");
            w.send(w.host, None, sa(S1), b"again");
            let m4 = w.last_from(w.s1, b"again").unwrap();
            assert_eq!(m1.ip(), NAT_IP.parse::<IpAddr>().unwrap());
            assert_eq!(m1, m4, "{t:?}: same destination, same mapping");
            if t == NatType::Symmetric {
                assert_ne!(m1, m2, "symmetric: new mapping per destination address");
                assert_ne!(m1, m3, "symmetric: new mapping per destination port");
                assert_ne!(m2, m3);
                assert_eq!(w.net.nat_mappings(w.nat), 3);
            } else {
                assert_eq!(m1, m2, "{t:?}: endpoint-independent mapping");
                assert_eq!(m1, m3);
                assert_eq!(w.net.nat_mappings(w.nat), 1);
            }
            // Another internal port gets another mapping.
            w.send(w.host, Some("10.0.0.2:5001"), sa(S1), b"other port");
            let m5 = w.last_from(w.s1, b"other port").unwrap();
            assert_ne!(m5, m1);
        }
    });
}

#[test]
fn filtering_behaviour_per_type() {
    run_with_seed(12, |seed| {
        for t in NatType::ALL {
            let mut w = world(seed, NatConfig::new(t));
            w.send(w.host, None, sa(S1), b"open");
            let m = w.last_from(w.s1, b"open").unwrap();
            // The contacted endpoint may always answer.
            w.send(w.s1, None, m, b"reply");
            assert!(w.host_got(b"reply"), "{t:?}: reply from contacted endpoint");
            // Same IP, other port.
            w.send(w.s1, Some(S1_OTHER_PORT), m, b"same ip");
            let same_ip = w.host_got(b"same ip");
            // A third party never contacted.
            w.send(w.s2, None, m, b"third party");
            let third = w.host_got(b"third party");
            let (want_same_ip, want_third) = match t {
                NatType::FullCone => (true, true),
                NatType::AddressRestricted => (true, false),
                NatType::PortRestricted | NatType::Symmetric => (false, false),
            };
            assert_eq!((same_ip, third), (want_same_ip, want_third), "{t:?}: (same ip other port, third party)");
            let dropped = u64::from(!same_ip) + u64::from(!third);
            assert_eq!(w.net.stats().nat_filtered, dropped, "{t:?}");
            assert_eq!(w.net.nat_stats(w.nat).unwrap().filtered, dropped);
            // Nothing maps an unused external port.
            let unused = SocketAddr::new(m.ip(), m.port().wrapping_add(1000));
            w.send(w.s1, None, unused, b"unused port");
            assert!(!w.host_got(b"unused port"));
            assert_eq!(w.net.stats().nat_no_mapping, 1);
        }
    });
}

#[test]
fn mappings_time_out_and_outbound_refreshes_them() {
    run_with_seed(13, |seed| {
        for t in NatType::ALL {
            let cfg = NatConfig::new(t).with_timeout(Duration::from_secs(30));
            let mut w = world(seed, cfg);
            w.send(w.host, None, sa(S1), b"open");
            let m = w.last_from(w.s1, b"open").unwrap();
            // Inbound traffic does not refresh: replies at 10 s and 20 s pass...
            for s in [10, 20] {
                w.net.run_until(Instant::from_secs(s));
                w.send(w.s1, None, m, b"in");
                assert!(w.host_got(b"in"), "{t:?}: reply at {s} s");
            }
            // ...but at 31 s the mapping made at 0 s is gone.
            w.net.run_until(Instant::from_secs(31));
            w.send(w.s1, None, m, b"late");
            assert!(!w.host_got(b"late"), "{t:?}: mapping expired");
            assert_eq!(w.net.nat_mappings(w.nat), 0);

            // Outbound traffic every 20 s keeps a new mapping alive for minutes.
            w.send(w.host, None, sa(S1), b"reopen");
            let m2 = w.last_from(w.s1, b"reopen").unwrap();
            assert_ne!(m2, m, "{t:?}: an expired mapping is not revived");
            for k in 1..=6u64 {
                w.net.run_until(Instant::from_secs(31 + 20 * k));
                w.send(w.host, None, sa(S1), b"keepalive");
                assert_eq!(w.last_from(w.s1, b"keepalive"), Some(m2), "{t:?}: refreshed mapping keeps its port");
            }
            w.net.run_until(Instant::from_secs(31 + 120 + 25));
            w.send(w.s1, None, m2, b"still open");
            assert!(w.host_got(b"still open"), "{t:?}");
            assert!(w.net.nat_stats(w.nat).unwrap().mappings_expired >= 1);
        }
    });
}

#[test]
fn hairpinning_and_private_traffic() {
    run_with_seed(14, |seed| {
        let mut w = world(seed, NatConfig::new(NatType::FullCone));
        let peer = w.net.add_host(w.nat, sa("10.0.0.3:6000"), Mailbox::new());
        // Same private network: direct, untranslated.
        w.send(w.host, None, sa("10.0.0.3:6000"), b"lan");
        assert_eq!(w.last_from(peer, b"lan"), Some(sa("10.0.0.2:5000")));
        // Through the NAT's public address (hairpin): the peer sees the mapped source.
        w.send(w.host, None, sa(S1), b"open");
        let m = w.last_from(w.s1, b"open").unwrap();
        w.send(peer, None, sa(S1), b"open peer");
        let mp = w.last_from(w.s1, b"open peer").unwrap();
        w.send(w.host, None, mp, b"hairpin");
        assert_eq!(w.last_from(peer, b"hairpin"), Some(m));

        let mut w = world(seed, NatConfig { hairpin: false, ..NatConfig::new(NatType::FullCone) });
        let peer = w.net.add_host(w.nat, sa("10.0.0.3:6000"), Mailbox::new());
        w.send(peer, None, sa(S1), b"open peer");
        let mp = w.last_from(w.s1, b"open peer").unwrap();
        w.send(w.host, None, mp, b"hairpin");
        assert_eq!(w.last_from(peer, b"hairpin"), None);
        assert_eq!(w.net.nat_stats(w.nat).unwrap().hairpin_dropped, 1);

        // Public hosts cannot reach private addresses.
        w.send(w.s1, None, sa("10.0.0.2:5000"), b"private");
        assert!(!w.host_got(b"private"));
        assert_eq!(w.net.stats().unroutable, 1);
    });
}

/// Two hosts behind NATs learn their reflexive address from a server, then
/// both send to the other's, and answer and probe back whatever probe
/// reaches them (ICE's peer-reflexive candidates and triggered checks). Returns whether both directions worked.
fn hole_punch(seed: u64, a: Option<NatType>, b: Option<NatType>) -> bool {
    let mut net = Network::new(seed);
    let server = net.add_host(Network::PUBLIC, sa(S1), Mailbox::new());
    let add = |net: &mut Network, t: Option<NatType>, i: u8| match t {
        Some(t) => {
            let r = net.add_nat(Network::PUBLIC, format!("198.51.100.{i}").parse().unwrap(), NatConfig::new(t));
            net.add_host(r, sa("10.0.0.2:5000"), Mailbox::new())
        }
        None => net.add_host(Network::PUBLIC, format!("203.0.113.{i}:5000").parse().unwrap(), Mailbox::new()),
    };
    let ha = add(&mut net, a, 1);
    let hb = add(&mut net, b, 2);
    let mut reflexive = Vec::new();
    for h in [ha, hb] {
        net.node_mut::<Mailbox>(h).send_to(sa(S1), b"what is my address");
        net.run_for(Duration::from_millis(10));
        let r = net.node_mut::<Mailbox>(server).take_received();
        reflexive.push(r[0].from);
    }
    for _ in 0..3 {
        net.node_mut::<Mailbox>(ha).send_to(reflexive[1], b"probe");
        net.node_mut::<Mailbox>(hb).send_to(reflexive[0], b"probe");
        net.run_for(Duration::from_millis(10));
        for h in [ha, hb] {
            let got = net.node_mut::<Mailbox>(h).take_received();
            for r in got.iter().filter(|r| r.data == b"probe") {
                // Answer, and probe back (ICE's triggered check).
                net.node_mut::<Mailbox>(h).send_to(r.from, b"answer");
                net.node_mut::<Mailbox>(h).send_to(r.from, b"probe");
            }
            net.node_mut::<Mailbox>(h).received = got;
        }
        net.run_for(Duration::from_millis(10));
    }
    let answered = |n: &Network, h| n.node::<Mailbox>(h).received.iter().any(|r| r.data == b"answer");
    answered(&net, ha) && answered(&net, hb)
}

#[test]
fn hole_punching_matrix_matches_nat_theory() {
    run_with_seed(15, |seed| {
        let kinds = [
            None,
            Some(NatType::FullCone),
            Some(NatType::AddressRestricted),
            Some(NatType::PortRestricted),
            Some(NatType::Symmetric),
        ];
        for a in kinds {
            for b in kinds {
                let hard = |t| matches!(t, Some(NatType::PortRestricted) | Some(NatType::Symmetric));
                let sym = |t| t == Some(NatType::Symmetric);
                let expect = !((sym(a) && hard(b)) || (sym(b) && hard(a)));
                let got = hole_punch(seed, a, b);
                println!("{a:?} x {b:?}: {}", if got { "connected" } else { "no path" });
                assert_eq!(got, expect, "{a:?} x {b:?}");
            }
        }
    });
}
