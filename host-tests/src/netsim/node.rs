//! The endpoint trait the simulator drives, and a simple mailbox endpoint.

use std::any::Any;
use std::collections::VecDeque;
use std::net::SocketAddr;

use tinyrtc::{Instant, Transmit};

/// One sans-IO endpoint attached to the simulated network.
///
/// The simulator follows the core's contract: after every `handle_*` call
/// (and after the test touched the node through [`Network::node_mut`]) it
/// drains `poll_transmit` until `None` and then asks `poll_timeout`. A node
/// that has events for the test keeps them itself (the test reads them via
/// [`Network::node_mut`]).
///
/// [`Network::node_mut`]: super::Network::node_mut
pub trait Node {
    /// A datagram from `from` arrived at the node's local address `to`.
    fn handle_receive(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, data: &[u8]);
    /// Writes the next datagram into `buf`. `Transmit::source == None` sends
    /// from the node's primary address; `Some(addr)` must be one of the
    /// node's addresses (its IP; any port) or the datagram is dropped and
    /// counted as `bad_source`.
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit>;
    /// When the node next wants `handle_timeout` (a past instant means "now").
    fn poll_timeout(&self) -> Option<Instant>;
    fn handle_timeout(&mut self, now: Instant);
}

/// `Node` plus downcasting, so tests get their concrete type back.
pub(crate) trait AnyNode: Node {
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn type_name(&self) -> &'static str;
}

impl<T: Node + 'static> AnyNode for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }
}

/// A datagram a [`Mailbox`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub time: Instant,
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub data: Vec<u8>,
}

/// A plain UDP-socket-like endpoint for tests: queue datagrams with
/// [`send_to`](Mailbox::send_to), read what arrived in
/// [`received`](Mailbox::received). Allocates per datagram; fine for tests,
/// not for soak runs.
#[derive(Debug, Default)]
pub struct Mailbox {
    outbox: VecDeque<(Option<SocketAddr>, SocketAddr, Vec<u8>)>,
    pub received: Vec<Received>,
}

impl Mailbox {
    pub fn new() -> Self {
        Self::default()
    }
    /// Queues a datagram from the primary address.
    pub fn send_to(&mut self, dst: SocketAddr, data: &[u8]) {
        self.outbox.push_back((None, dst, data.to_vec()));
    }
    /// Queues a datagram from a chosen local address.
    pub fn send_from(&mut self, src: SocketAddr, dst: SocketAddr, data: &[u8]) {
        self.outbox.push_back((Some(src), dst, data.to_vec()));
    }
    /// Takes everything received so far.
    pub fn take_received(&mut self) -> Vec<Received> {
        std::mem::take(&mut self.received)
    }
}

impl Node for Mailbox {
    fn handle_receive(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, data: &[u8]) {
        self.received.push(Received { time: now, from, to, data: data.to_vec() });
    }
    fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let (source, destination, data) = self.outbox.pop_front()?;
        let len = data.len().min(buf.len());
        buf[..len].copy_from_slice(&data[..len]);
        Some(Transmit { source, destination, len })
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn handle_timeout(&mut self, _now: Instant) {}
}
