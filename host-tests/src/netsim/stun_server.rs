//! A public STUN server node: `tinyrtc::stun::BindingServer` on the
//! simulated network.

use std::collections::VecDeque;
use std::net::SocketAddr;

use tinyrtc::stun::{BindingServer, BindingServerStats};
use tinyrtc::{Instant, Transmit};

use super::Node;

/// Largest response the node queues (Binding success responses are < 100 B).
const MAX_RESPONSE: usize = 512;

/// Answers Binding requests on every port of its address with the source
/// address it saw (after any NAT): the server-reflexive address.
#[derive(Debug, Default)]
pub struct StunServer {
    server: BindingServer,
    queue: VecDeque<(SocketAddr, SocketAddr, [u8; MAX_RESPONSE], usize)>,
    /// Datagrams that were not STUN or could not be answered.
    pub errors: u64,
}

impl StunServer {
    pub fn new() -> Self {
        StunServer { server: BindingServer::new(Some("tinyrtc netsim")), ..Default::default() }
    }
    pub fn stats(&self) -> BindingServerStats {
        self.server.stats
    }
}

impl Node for StunServer {
    fn handle_receive(&mut self, _now: Instant, from: SocketAddr, to: SocketAddr, data: &[u8]) {
        let mut buf = [0u8; MAX_RESPONSE];
        match self.server.respond(data, from, &mut buf) {
            Ok(Some(len)) => self.queue.push_back((to, from, buf, len)),
            Ok(None) => {}
            Err(_) => self.errors += 1,
        }
    }
    fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let (source, destination, data, len) = self.queue.pop_front()?;
        buf[..len].copy_from_slice(&data[..len]);
        Some(Transmit { source: Some(source), destination, len })
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn handle_timeout(&mut self, _now: Instant) {}
}
