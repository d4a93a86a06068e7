//! An ICE agent as a simulator node, plus trickle helpers for tests.

use std::collections::VecDeque;
use std::net::SocketAddr;

use tinyrtc::ice::{IceAgent, IceEvent, IceState};
use tinyrtc::stun::is_stun;
use tinyrtc::{Instant, Transmit};

use super::{Network, Node, NodeId};

/// Largest application datagram [`IceNode::send_app`] queues.
const MAX_APP: usize = 1200;

/// Wraps a [`IceAgent`]: STUN goes to the agent, other datagrams are
/// application data (RFC 7983 demultiplexing). Events are collected with
/// their virtual time for the test to read.
#[derive(Debug)]
pub struct IceNode {
    pub agent: IceAgent,
    /// Events not yet taken by the test, oldest first.
    pub events: VecDeque<(Instant, IceEvent)>,
    /// Every state change, with its time.
    pub states: Vec<(Instant, IceState)>,
    /// Application datagrams received: (time, from, to, bytes).
    pub app_received: Vec<(Instant, SocketAddr, SocketAddr, Vec<u8>)>,
    /// `handle_receive` errors returned by the agent.
    pub receive_errors: u64,
    /// `add_remote_candidate` errors in [`trickle`].
    pub remote_candidate_errors: u64,
    app_outbox: VecDeque<Vec<u8>>,
    now: Instant,
}

impl IceNode {
    pub fn new(agent: IceAgent) -> Self {
        IceNode {
            agent,
            events: VecDeque::new(),
            states: Vec::new(),
            app_received: Vec::new(),
            receive_errors: 0,
            remote_candidate_errors: 0,
            app_outbox: VecDeque::new(),
            now: Instant::ZERO,
        }
    }

    /// Queues an application datagram for the selected pair (sent when
    /// there is one, dropped otherwise). Must not look like STUN.
    pub fn send_app(&mut self, data: &[u8]) {
        assert!(data.len() <= MAX_APP && !is_stun(data));
        self.app_outbox.push_back(data.to_vec());
    }

    /// Time of the first change to `state`, if any.
    pub fn reached(&self, state: IceState) -> Option<Instant> {
        self.states.iter().find(|(_, s)| *s == state).map(|(t, _)| *t)
    }

    /// Time of the first change to `state` at or after `since`.
    pub fn reached_since(&self, state: IceState, since: Instant) -> Option<Instant> {
        self.states.iter().find(|(t, s)| *s == state && *t >= since).map(|(t, _)| *t)
    }

    fn collect_events(&mut self) {
        while let Some(e) = self.agent.poll_event() {
            if let IceEvent::StateChanged(s) = &e {
                self.states.push((self.now, *s));
            }
            self.events.push_back((self.now, e));
        }
    }
}

impl Node for IceNode {
    fn handle_receive(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, data: &[u8]) {
        self.now = now;
        if is_stun(data) {
            if self.agent.handle_receive(now, to, from, data).is_err() {
                self.receive_errors += 1;
            }
        } else {
            self.app_received.push((now, from, to, data.to_vec()));
        }
        self.collect_events();
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        self.now = now;
        self.collect_events();
        if let Some(t) = self.agent.poll_transmit(now, buf) {
            return Some(t);
        }
        self.collect_events();
        while let Some(data) = self.app_outbox.pop_front() {
            if let Some((local, remote)) = self.agent.selected_pair() {
                buf[..data.len()].copy_from_slice(&data);
                return Some(Transmit { source: Some(local), destination: remote, len: data.len() });
            }
        }
        None
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.agent.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        self.agent.handle_timeout(now);
        self.collect_events();
    }
}

/// Moves trickled candidates (and end-of-candidates) between two agents,
/// as a signalling channel would. Call it from a `run_until_cond` closure.
/// Drains both nodes' `events` (state changes stay in `states`). Returns
/// how many candidates were moved.
pub fn trickle(net: &mut Network, a: NodeId, b: NodeId) -> usize {
    let mut moved = 0;
    for (from, to) in [(a, b), (b, a)] {
        let events: Vec<_> = net.node_mut::<IceNode>(from).events.drain(..).collect();
        for (_, e) in events {
            match e {
                IceEvent::CandidateGathered(c) => {
                    let n = net.node_mut::<IceNode>(to);
                    if n.agent.add_remote_candidate(c).is_err() {
                        n.remote_candidate_errors += 1;
                    }
                    moved += 1;
                }
                IceEvent::GatheringComplete => net.node_mut::<IceNode>(to).agent.end_of_remote_candidates(),
                _ => {}
            }
        }
    }
    moved
}
