//! ICE through every pair of NAT types (RFC 8445 with trickle, RFC 8838):
//! two agents, each on the public network or behind a full-cone,
//! address-restricted, port-restricted or symmetric NAT, a STUN server on
//! the public side, at 0 %, 10 % and 30 % loss. Hole punching must connect
//! wherever NAT theory says it can; where it cannot without a relay
//! (symmetric against port-restricted or symmetric) both agents must end in
//! a clean `Failed` state. Prints a table of outcomes and times.

use std::fmt::Write as _;
use std::net::SocketAddr;

use host_tests::netsim::ice::{trickle, IceNode};
use host_tests::netsim::{run_with_seed, LinkConfig, NatConfig, NatType, Network, NodeId, StunServer};
use tinyrtc::ice::{IceAgent, IceConfig, IceCredentials, IceState};
use tinyrtc::{Duration, Instant};

const STUN: &str = "192.0.2.1:3478";
/// Virtual time an agent gets to connect or fail.
const DEADLINE: Duration = Duration::from_secs(90);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Public,
    Behind(NatType),
}

const SIDES: [Side; 5] = [
    Side::Public,
    Side::Behind(NatType::FullCone),
    Side::Behind(NatType::AddressRestricted),
    Side::Behind(NatType::PortRestricted),
    Side::Behind(NatType::Symmetric),
];

fn name(s: Side) -> &'static str {
    match s {
        Side::Public => "public",
        Side::Behind(NatType::FullCone) => "full-cone",
        Side::Behind(NatType::AddressRestricted) => "addr-restr",
        Side::Behind(NatType::PortRestricted) => "port-restr",
        Side::Behind(NatType::Symmetric) => "symmetric",
    }
}

/// NAT theory: without a relay, a symmetric NAT cannot meet a
/// port-restricted or symmetric one; everything else hole-punches.
fn predicted(a: Side, b: Side) -> bool {
    let sym = |s| s == Side::Behind(NatType::Symmetric);
    let hard = |s| matches!(s, Side::Behind(NatType::PortRestricted) | Side::Behind(NatType::Symmetric));
    !((sym(a) && hard(b)) || (sym(b) && hard(a)))
}

#[derive(Debug)]
enum Outcome {
    /// Both agents connected (at this virtual time) and data crossed the
    /// selected pairs both ways.
    Connected(Instant),
    /// Both agents failed cleanly (nothing selected) at this time.
    Failed(Instant, String),
    /// Anything else, described.
    Broken(String),
}

fn add_agent(net: &mut Network, side: Side, i: u8, controlling: bool, link: LinkConfig) -> NodeId {
    let host: SocketAddr = match side {
        Side::Public => format!("203.0.113.{i}:5000").parse().unwrap(),
        Side::Behind(_) => format!("10.0.{i}.2:5000").parse().unwrap(),
    };
    let realm = match side {
        Side::Public => Network::PUBLIC,
        Side::Behind(t) => net.add_nat(Network::PUBLIC, format!("198.51.100.{i}").parse().unwrap(), NatConfig::new(t)),
    };
    let mut rng = net.rng(u64::from(i));
    let creds = IceCredentials::random(&mut rng);
    let mut agent = IceAgent::new(IceConfig::default(), controlling, creds, &mut rng);
    agent.add_local_candidate(host).unwrap();
    agent.add_stun_server(STUN.parse().unwrap()).unwrap();
    let id = net.add_host(realm, host, IceNode::new(agent));
    net.set_uplink(id, link);
    net.set_downlink(id, LinkConfig { loss: 0.0, ..link });
    id
}

fn state(net: &Network, id: NodeId) -> IceState {
    net.node::<IceNode>(id).agent.state()
}

fn run_cell(seed: u64, a: Side, b: Side, loss: f64) -> Outcome {
    let mut net = Network::new(seed);
    let link = LinkConfig {
        loss,
        delay: Duration::from_millis(15),
        jitter: Duration::from_millis(5),
        ..LinkConfig::default()
    };
    // The STUN server's own link is clean: loss applies to the agents'
    // uplinks, so agent <-> agent paths and agent -> server requests each
    // cross one lossy link.
    let stun = net.add_host(Network::PUBLIC, STUN.parse().unwrap(), StunServer::new());
    net.set_link(stun, LinkConfig { loss: 0.0, ..link });
    let ia = add_agent(&mut net, a, 1, true, link);
    let ib = add_agent(&mut net, b, 2, false, link);
    let (ca, cb) = {
        let ca = net.node::<IceNode>(ia).agent.local_credentials();
        let cb = net.node::<IceNode>(ib).agent.local_credentials();
        (ca.clone(), cb.clone())
    };
    net.node_mut::<IceNode>(ia).agent.set_remote_credentials(&cb.ufrag, &cb.pwd).unwrap();
    net.node_mut::<IceNode>(ib).agent.set_remote_credentials(&ca.ufrag, &ca.pwd).unwrap();

    let done = |net: &mut Network| {
        trickle(net, ia, ib);
        let (sa, sb) = (state(net, ia), state(net, ib));
        let conn = |s| matches!(s, IceState::Connected | IceState::Completed);
        (conn(sa) && conn(sb)) || (sa == IceState::Failed && sb == IceState::Failed)
    };
    let finished = net.run_until_cond(Instant::ZERO + DEADLINE, done);
    let (sa, sb) = (state(&net, ia), state(&net, ib));
    let time = net.now();
    let diagnose = |net: &Network| {
        let mut d = String::new();
        for id in [ia, ib] {
            let n = net.node::<IceNode>(id);
            writeln!(
                d,
                "  agent {id:?}: states {:?}\n    {:?}\n    selected {:?}",
                n.states,
                n.agent.stats(),
                n.agent.selected_pair()
            )
            .unwrap();
            for p in n.agent.pairs() {
                writeln!(d, "    {p:?}").unwrap();
            }
        }
        writeln!(d, "  {:?}", net.stats()).unwrap();
        d
    };
    if !finished {
        return Outcome::Broken(format!("after {DEADLINE:?}: A {sa:?}, B {sb:?}\n{}", diagnose(&net)));
    }
    if sa == IceState::Failed {
        // Clean failure: nothing selected on either side.
        for id in [ia, ib] {
            if let Some(p) = net.node::<IceNode>(id).agent.selected_pair() {
                return Outcome::Broken(format!("failed but {id:?} has a selected pair {p:?}"));
            }
        }
        return Outcome::Failed(time, diagnose(&net));
    }
    // The selected pairs carry application data both ways (a few tries:
    // the links are lossy).
    for _ in 0..10 {
        net.node_mut::<IceNode>(ia).send_app(b"\xffhello from a");
        net.node_mut::<IceNode>(ib).send_app(b"\xffhello from b");
        net.run_for(Duration::from_millis(100));
    }
    for (id, want) in [(ia, &b"\xffhello from b"[..]), (ib, &b"\xffhello from a"[..])] {
        if !net.node::<IceNode>(id).app_received.iter().any(|r| r.3 == want) {
            return Outcome::Broken(format!(
                "connected but no data reached {id:?} over the selected pair\n{}",
                diagnose(&net)
            ));
        }
    }
    Outcome::Connected(time)
}

/// Runs the matrix at `loss`, prints its table, returns the cells that
/// disagree with NAT theory.
fn matrix(seed: u64, loss: f64) -> Vec<String> {
    let mut table = String::new();
    let mut wrong = Vec::new();
    writeln!(
        table,
        "\nICE NAT matrix, loss {:.0} %, seed {seed} (A controlling: rows; B controlled: columns)",
        loss * 100.0
    )
    .unwrap();
    write!(table, "{:>11}", "").unwrap();
    for b in SIDES {
        write!(table, " {:>14}", name(b)).unwrap();
    }
    writeln!(table).unwrap();
    for (i, a) in SIDES.into_iter().enumerate() {
        write!(table, "{:>11}", name(a)).unwrap();
        for (j, b) in SIDES.into_iter().enumerate() {
            if j < i {
                write!(table, " {:>14}", "").unwrap();
                continue;
            }
            let cell_seed = seed ^ ((i as u64) << 8 | (j as u64) << 16 | ((loss * 100.0) as u64) << 24);
            let o = run_cell(cell_seed, a, b, loss);
            let cell = match &o {
                Outcome::Connected(t) => format!("conn {:.2}s", t.as_millis() as f64 / 1000.0),
                Outcome::Failed(t, _) => format!("failed {:.1}s", t.as_millis() as f64 / 1000.0),
                Outcome::Broken(_) => "BROKEN".to_string(),
            };
            let ok = match o {
                Outcome::Connected(_) => predicted(a, b),
                Outcome::Failed(..) => !predicted(a, b),
                Outcome::Broken(ref why) => {
                    wrong.push(format!("{} x {} at {loss}: {why}", name(a), name(b)));
                    false
                }
            };
            if !ok && !matches!(o, Outcome::Broken(_)) {
                let why = if let Outcome::Failed(_, d) = &o { d.as_str() } else { "" };
                wrong.push(format!(
                    "{} x {} at {loss}: {cell}, NAT theory says {}\n{why}",
                    name(a),
                    name(b),
                    if predicted(a, b) { "connect" } else { "fail" }
                ));
            }
            write!(table, " {:>14}", format!("{}{cell}", if ok { "" } else { "!" })).unwrap();
        }
        writeln!(table).unwrap();
    }
    println!("{table}");
    wrong
}

#[test]
fn ice_nat_matrix_no_loss() {
    run_with_seed(0x1ce, |seed| {
        let wrong = matrix(seed, 0.0);
        assert!(wrong.is_empty(), "cells disagreeing with NAT theory:\n{}", wrong.join("\n"));
    });
}

#[test]
fn ice_nat_matrix_10_percent_loss() {
    run_with_seed(0x1ce, |seed| {
        let wrong = matrix(seed, 0.1);
        assert!(wrong.is_empty(), "cells disagreeing with NAT theory:\n{}", wrong.join("\n"));
    });
}

/// At 30 % loss some hole-punchable cells fail: when a check arrives for a
/// pair whose own check is still In-Progress, the agent answers but sends no
/// triggered check (RFC 8445 7.3.1.4 says cancel and re-check at once), so
/// the pair waits on exponential retransmission backoff and the agent hits
/// its 30 s checking timeout; with the controlled side failed and the
/// controlling side Completed, the failed agent keeps answering consent.
/// Run with `cargo test -p host-tests --test ice_nat_matrix -- --ignored`.
#[test]
#[ignore = "ICE agent: no triggered check for In-Progress pairs (RFC 8445 7.3.1.4); cells fail at 30 % loss"]
fn ice_nat_matrix_30_percent_loss() {
    run_with_seed(0x1ce, |seed| {
        let wrong = matrix(seed, 0.3);
        assert!(wrong.is_empty(), "cells disagreeing with NAT theory:\n{}", wrong.join("\n"));
    });
}
