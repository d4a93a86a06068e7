//! The simulator's STUN server node (`tinyrtc::stun::BindingServer`) seen
//! through each NAT type by `tinyrtc::stun::BindingClient`: reflexive
//! addresses must match NAT theory, survive loss through retransmission,
//! and time out per RFC 8489 when the server is unreachable.

use std::net::SocketAddr;

use host_tests::netsim::{run_with_seed, LinkConfig, NatConfig, NatType, Network, Node, NodeId, StunServer};
use tinyrtc::stun::{BindingEvent, BindingFailure, RetransmitConfig, StunBindingClient};
use tinyrtc::{Duration, Instant, Transmit};

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const S1: &str = "192.0.2.1:3478";
const S2: &str = "192.0.2.2:3478";

/// A STUN Binding client as a node; records its events with their time.
struct Client {
    client: StunBindingClient,
    events: Vec<(Instant, BindingEvent)>,
}

impl Client {
    fn collect(&mut self, now: Instant) {
        while let Some(e) = self.client.poll_event() {
            self.events.push((now, e));
        }
    }
}

impl Node for Client {
    fn handle_receive(&mut self, now: Instant, from: SocketAddr, _to: SocketAddr, data: &[u8]) {
        let _ = self.client.handle_receive(now, from, data);
        self.collect(now);
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        self.client.poll_transmit(now, buf)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.client.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.client.handle_timeout(now);
        self.collect(now);
    }
}

struct World {
    net: Network,
    s1: NodeId,
    realm: host_tests::netsim::RealmId,
    client: NodeId,
    host: SocketAddr,
}

fn world(seed: u64, nat: Option<NatType>) -> World {
    let mut net = Network::new(seed);
    net.set_default_link(LinkConfig {
        delay: Duration::from_millis(10),
        jitter: Duration::from_millis(2),
        ..LinkConfig::default()
    });
    let s1 = net.add_host(Network::PUBLIC, sa(S1), StunServer::new());
    net.add_host(Network::PUBLIC, sa(S2), StunServer::new());
    let mut rng = net.rng(1);
    let node = Client { client: StunBindingClient::new(RetransmitConfig::default(), &mut rng), events: Vec::new() };
    let (realm, host) = match nat {
        None => (Network::PUBLIC, sa("203.0.113.5:5000")),
        Some(t) => {
            (net.add_nat(Network::PUBLIC, "198.51.100.1".parse().unwrap(), NatConfig::new(t)), sa("10.0.0.2:5000"))
        }
    };
    let client = net.add_host(realm, host, node);
    World { net, s1, realm, client, host }
}

impl World {
    fn bind(&mut self, server: &str) -> (Instant, BindingEvent) {
        let now = self.net.now();
        let c = self.net.node_mut::<Client>(self.client);
        let n = c.events.len();
        c.client.start(now, None, sa(server)).unwrap();
        let client = self.client;
        let done =
            self.net.run_until_cond(now + Duration::from_secs(60), |net| net.node::<Client>(client).events.len() > n);
        assert!(done, "no Binding outcome within 60 s");
        self.net.node::<Client>(self.client).events[n]
    }
    fn reflexive(&mut self, server: &str) -> SocketAddr {
        match self.bind(server).1 {
            BindingEvent::Success { reflexive, server: s, .. } => {
                assert_eq!(s, sa(server));
                reflexive
            }
            e => panic!("binding to {server} failed: {e:?}"),
        }
    }
}

#[test]
fn reflexive_addresses_follow_nat_mapping_behaviour() {
    run_with_seed(21, |seed| {
        let mut w = world(seed, None);
        assert_eq!(w.reflexive(S1), w.host, "no NAT: reflexive = host address");
        for t in NatType::ALL {
            let mut w = world(seed, Some(t));
            let r1 = w.reflexive(S1);
            let r2 = w.reflexive(S2);
            let r1_again = w.reflexive(S1);
            assert_eq!(r1.ip(), "198.51.100.1".parse::<std::net::IpAddr>().unwrap(), "{t:?}");
            assert_eq!(r1, r1_again, "{t:?}: stable mapping");
            if t == NatType::Symmetric {
                assert_ne!(r1, r2, "symmetric NAT: reflexive address depends on the server");
            } else {
                assert_eq!(r1, r2, "{t:?}: endpoint-independent mapping");
            }
            let s1 = w.net.node::<StunServer>(w.s1).stats();
            assert_eq!((s1.success, s1.errors), (2, 0), "{t:?}: {s1:?}");
            assert_eq!(w.net.nat_stats(w.realm).unwrap().mappings_created, if t == NatType::Symmetric { 2 } else { 1 });
        }
    });
}

#[test]
fn binding_survives_loss_and_times_out_without_server() {
    run_with_seed(22, |seed| {
        let mut w = world(seed, Some(NatType::PortRestricted));
        w.net.set_uplink(w.client, LinkConfig { loss: 0.3, delay: Duration::from_millis(10), ..LinkConfig::default() });
        let mut first = None;
        for _ in 0..20 {
            let r = w.reflexive(S1);
            assert_eq!(*first.get_or_insert(r), r);
        }
        assert!(w.net.stats().lost > 0);

        // Unreachable server: RFC 8489 6.2.1 gives up after Rc = 7 sends and
        // Rm * RTO more: 39.5 s with RTO = 500 ms.
        let mut w = world(seed, Some(NatType::FullCone));
        w.net.set_uplink(w.client, LinkConfig::cut());
        let start = w.net.now();
        let (t, e) = w.bind(S1);
        assert!(matches!(e, BindingEvent::Failed { reason: BindingFailure::Timeout, .. }), "{e:?}");
        assert_eq!(t - start, Duration::from_millis(39_500), "timeout after {:?}", t - start);
        assert_eq!(w.net.stats().lost, 7, "Rc = 7 transmissions");
    });
}
