//! Server-reflexive candidates of a [`PeerN`](super::PeerN) in full-ICE
//! mode (RFC 8445 section 5.1.1.2): the ICE agent asks each
//! [`PeerConfig::stun_servers`](super::PeerConfig::stun_servers) entry for
//! our address as seen from outside (STUN Binding, RFC 8489), and each new
//! address becomes a local candidate the application trickles, announced by
//! [`PeerEvent::LocalCandidate`](super::PeerEvent::LocalCandidate) and read
//! with [`PeerN::local_candidate`](super::PeerN::local_candidate).

use core::fmt::Write as _;
use core::net::SocketAddr;

use heapless::String;

use crate::ice::{Candidate as IceCandidate, CandidateAddress, CandidateKind};
use crate::sdp::{Candidate, CandidateType};

/// Most server-reflexive candidates kept (one per STUN server and host
/// address; ~180 bytes each).
pub const MAX_REFLEXIVE_CANDIDATES: usize = 2;

/// A server-reflexive candidate, with the text its SDP form borrows.
#[derive(Debug, Clone)]
pub(crate) struct Reflexive {
    pub addr: SocketAddr,
    priority: u32,
    foundation: String<{ crate::ice::MAX_FOUNDATION_LEN }>,
    ip: String<48>,
    related_ip: String<48>,
    related_port: u16,
}

impl Reflexive {
    /// The agent's gathered candidate, if it is server-reflexive.
    pub fn from_gathered(c: &IceCandidate) -> Option<Reflexive> {
        if c.kind != CandidateKind::ServerReflexive {
            return None;
        }
        let CandidateAddress::Ip(ip) = c.address else { return None };
        let (rip, rport) = c.related?;
        let mut r = Reflexive {
            addr: SocketAddr::new(ip, c.port),
            priority: c.priority,
            foundation: c.foundation.clone(),
            ip: String::new(),
            related_ip: String::new(),
            related_port: rport,
        };
        write!(r.ip, "{ip}").ok()?;
        write!(r.related_ip, "{rip}").ok()?;
        Some(r)
    }

    /// The SDP form (`typ srflx raddr <base> rport <port>`).
    pub fn candidate(&self) -> Candidate<'_> {
        Candidate {
            priority: self.priority,
            kind: CandidateType::ServerReflexive,
            related_address: Some(self.related_ip.as_str()),
            related_port: Some(self.related_port),
            ..Candidate::host(self.foundation.as_str(), self.ip.as_str(), self.addr.port(), 0)
        }
    }
}
