//! ICE consent freshness (RFC 7675) and ICE restart (RFC 8445 9): after
//! connecting, cut the path both ways; the agents must go `Disconnected`
//! and then `Failed` within the 30 s consent window. Restore the path,
//! restart ICE with new credentials on both sides, re-exchange candidates:
//! they must connect again.

use std::net::SocketAddr;

use host_tests::netsim::ice::{trickle, IceNode};
use host_tests::netsim::{run_with_seed, LinkConfig, NatConfig, NatType, Network, NodeId, StunServer};
use tinyrtc::ice::{IceAgent, IceConfig, IceCredentials, IceState};
use tinyrtc::Duration;

const STUN: &str = "192.0.2.1:3478";
/// RFC 7675 5.1: consent expires 30 s after the last authenticated response.
const CONSENT_TIMEOUT: Duration = Duration::from_secs(30);
/// RFC 7675 5.1: consent checks every 5 s, randomized to 0.8-1.2 times that.
const MAX_CONSENT_INTERVAL: Duration = Duration::from_secs(6);
const MAPPING_TIMEOUT: Duration = Duration::from_secs(20);

fn state(net: &Network, id: NodeId) -> IceState {
    net.node::<IceNode>(id).agent.state()
}

fn connected(s: IceState) -> bool {
    matches!(s, IceState::Connected | IceState::Completed)
}

fn exchange_credentials(net: &mut Network, a: NodeId, b: NodeId) {
    let ca = net.node::<IceNode>(a).agent.local_credentials().clone();
    let cb = net.node::<IceNode>(b).agent.local_credentials().clone();
    net.node_mut::<IceNode>(a).agent.set_remote_credentials(&cb.ufrag, &cb.pwd).unwrap();
    net.node_mut::<IceNode>(b).agent.set_remote_credentials(&ca.ufrag, &ca.pwd).unwrap();
}

fn wait_connected(net: &mut Network, a: NodeId, b: NodeId, within: Duration) -> bool {
    let deadline = net.now() + within;
    net.run_until_cond(deadline, |net| {
        trickle(net, a, b);
        connected(state(net, a)) && connected(state(net, b))
    })
}

#[test]
fn consent_expires_when_path_is_cut_and_restart_recovers() {
    run_with_seed(0xc0_5e47, |seed| {
        let mut net = Network::new(seed);
        let link =
            LinkConfig { delay: Duration::from_millis(20), jitter: Duration::from_millis(3), ..LinkConfig::default() };
        net.set_default_link(link);
        net.add_host(Network::PUBLIC, STUN.parse().unwrap(), StunServer::new());
        let mut agents = Vec::new();
        for (i, t) in [(1u8, NatType::PortRestricted), (2, NatType::AddressRestricted)] {
            // Short NAT timeouts: only consent traffic keeps the mappings alive.
            let nat = NatConfig::new(t).with_timeout(MAPPING_TIMEOUT);
            let realm = net.add_nat(Network::PUBLIC, format!("198.51.100.{i}").parse().unwrap(), nat);
            let host: SocketAddr = format!("10.0.{i}.2:5000").parse().unwrap();
            let mut rng = net.rng(u64::from(i));
            let creds = IceCredentials::random(&mut rng);
            let mut agent = IceAgent::new(IceConfig::default(), i == 1, creds, &mut rng);
            agent.add_local_candidate(host).unwrap();
            agent.add_stun_server(STUN.parse().unwrap()).unwrap();
            agents.push(net.add_host(realm, host, IceNode::new(agent)));
        }
        let (a, b) = (agents[0], agents[1]);
        exchange_credentials(&mut net, a, b);
        assert!(
            wait_connected(&mut net, a, b, Duration::from_secs(20)),
            "initial connect: {:?} / {:?}",
            state(&net, a),
            state(&net, b)
        );
        println!("connected at {:?}", net.now());
        // A healthy path for three NAT timeouts: consent checks keep both
        // consent and the NAT mappings alive.
        let consent_before = net.node::<IceNode>(a).agent.stats().consent_sent;
        // (Checks filtered while punching holes do not count.)
        let nat_dropped_before = net.stats().nat_dropped();
        let healthy_until = net.now() + MAPPING_TIMEOUT.saturating_mul(3);
        let dropped = net.run_until_cond(healthy_until, |net| !(connected(state(net, a)) && connected(state(net, b))));
        assert!(!dropped, "lost the connection on a healthy path: {:?} / {:?}", state(&net, a), state(&net, b));
        let consent_sent = net.node::<IceNode>(a).agent.stats().consent_sent - consent_before;
        assert!(consent_sent >= 9, "only {consent_sent} consent checks in 60 s");
        assert_eq!(net.stats().nat_dropped(), nat_dropped_before, "NAT mappings expired under consent traffic");

        // Cut both directions of both access links.
        let cut_at = net.now();
        for id in [a, b] {
            net.set_link(id, LinkConfig::cut());
        }
        let failed = net.run_until_cond(cut_at + CONSENT_TIMEOUT + Duration::from_secs(5), |net| {
            state(net, a) == IceState::Failed && state(net, b) == IceState::Failed
        });
        for id in [a, b] {
            let n = net.node::<IceNode>(id);
            let disc = n.reached_since(IceState::Disconnected, cut_at);
            let fail = n.reached_since(IceState::Failed, cut_at);
            println!(
                "agent {id:?}: disconnected after {:?}, failed after {:?} (cut at {:?})",
                disc.map(|t| t - cut_at),
                fail.map(|t| t - cut_at),
                cut_at
            );
            let disc = disc.expect("went disconnected");
            let fail = fail.expect("went failed");
            assert!(disc <= fail, "disconnected before failed");
            // Consent expires 30 s after the last response, which came at most
            // one consent interval before the cut.
            assert!(
                fail - cut_at <= CONSENT_TIMEOUT,
                "failed {:?} after the cut, consent window is 30 s",
                fail - cut_at
            );
            assert!(
                fail - cut_at >= CONSENT_TIMEOUT - MAX_CONSENT_INTERVAL - Duration::from_secs(1),
                "failed only {:?} after the cut: consent expired early",
                fail - cut_at
            );
            assert_eq!(n.agent.selected_pair(), None, "no selected pair once consent is lost");
        }
        assert!(failed);

        // Restore, restart with fresh credentials, trickle again.
        for id in [a, b] {
            net.set_link(id, link);
        }
        let restart_at = net.now();
        for (i, id) in [(11u64, a), (12, b)] {
            let mut rng = net.rng(i);
            let creds = IceCredentials::random(&mut rng);
            net.node_mut::<IceNode>(id).agent.restart(creds);
        }
        exchange_credentials(&mut net, a, b);
        assert!(
            wait_connected(&mut net, a, b, Duration::from_secs(20)),
            "after restart: {:?} / {:?}",
            state(&net, a),
            state(&net, b)
        );
        println!("reconnected {:?} after restart", net.now() - restart_at);
        net.node_mut::<IceNode>(a).send_app(b"\xffafter restart");
        net.run_for(Duration::from_secs(1));
        assert!(net.node::<IceNode>(b).app_received.iter().any(|r| r.3 == b"\xffafter restart"));
    });
}
