//! The ICE-lite side of a session (RFC 8445 sections 2.5, 7.3 and 8.2 for
//! lite implementations; RFC 7675 consent as seen from the responder).
//!
//! A lite agent only answers connectivity checks: every Binding request
//! whose USERNAME starts with our ufrag and whose MESSAGE-INTEGRITY verifies
//! with our password gets a success response (XOR-MAPPED-ADDRESS,
//! MESSAGE-INTEGRITY, FINGERPRINT). The full agent on the other side (a
//! browser) is controlling and nominates with USE-CANDIDATE; the source of
//! the nominated check becomes the selected remote address. Until a
//! nomination arrives, the first authenticated source is used. Consent is
//! considered lost when no authenticated check arrived for
//! [`super::PeerConfig::consent_timeout`].
//!
//! Left out (the full agent in [`crate::ice`] covers it): sending checks,
//! candidate pairs and priorities, role conflicts, gathering.

use core::net::SocketAddr;

use heapless::{Deque, String};

use crate::stun::{Class, Message, MessageBuilder, Method, StunError};
use crate::time::Instant;

/// Longest remote ufrag kept (RFC 8839 allows 256; browsers use 4-16).
pub const MAX_UFRAG_LEN: usize = 32;
/// Longest remote password kept (RFC 8839 allows 256; browsers use 22-32).
pub const MAX_PWD_LEN: usize = 64;
/// STUN responses waiting for `poll_transmit`: each costs
/// [`STUN_RESPONSE_MAX`] + 32 bytes.
pub const PENDING_RESPONSES: usize = 4;
/// Largest response we write (IPv6 XOR-MAPPED-ADDRESS + integrity + fingerprint
/// is 80 bytes).
pub const STUN_RESPONSE_MAX: usize = 128;

/// ICE counters (plain data).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct IceStats {
    /// Authenticated Binding requests answered.
    pub requests_answered: u64,
    /// Requests dropped: wrong ufrag, bad integrity or fingerprint, malformed.
    pub requests_dropped: u64,
    /// Nominations (USE-CANDIDATE) seen.
    pub nominations: u64,
    /// Responses dropped because the queue was full.
    pub responses_dropped: u64,
}

#[derive(Debug, Clone)]
struct PendingResponse {
    destination: SocketAddr,
    len: usize,
    buf: [u8; STUN_RESPONSE_MAX],
}

/// ICE-lite responder state.
#[derive(Debug, Clone)]
pub(crate) struct IceLite {
    pub local_ufrag: String<8>,
    pub local_pwd: String<24>,
    pub remote_ufrag: String<MAX_UFRAG_LEN>,
    pub remote_pwd: String<MAX_PWD_LEN>,
    pub selected: Option<SocketAddr>,
    pub nominated: bool,
    pub last_check: Option<Instant>,
    pending: Deque<PendingResponse, PENDING_RESPONSES>,
    pub stats: IceStats,
}

/// What an accepted check changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Selection {
    Unchanged,
    /// A (new) remote address is selected.
    Selected(SocketAddr),
}

impl IceLite {
    pub fn new(local_ufrag: String<8>, local_pwd: String<24>) -> Self {
        IceLite {
            local_ufrag,
            local_pwd,
            remote_ufrag: String::new(),
            remote_pwd: String::new(),
            selected: None,
            nominated: false,
            last_check: None,
            pending: Deque::new(),
            stats: IceStats::default(),
        }
    }

    /// Handle a STUN datagram from `source`.
    pub fn handle(&mut self, now: Instant, source: SocketAddr, data: &[u8]) -> Result<Selection, StunError> {
        let msg = Message::new_checked(data)?;
        if msg.class() != Class::Request || msg.method() != Method::BINDING {
            // A lite agent sends no requests, so responses are not ours.
            return Ok(Selection::Unchanged);
        }
        if !self.authentic(&msg) {
            self.stats.requests_dropped += 1;
            return Ok(Selection::Unchanged);
        }
        let mut resp = PendingResponse { destination: source, len: 0, buf: [0; STUN_RESPONSE_MAX] };
        let mut b = MessageBuilder::new(&mut resp.buf, Method::BINDING, Class::SuccessResponse, &msg.transaction_id())?;
        b.xor_mapped_address(source)?;
        b.message_integrity(self.local_pwd.as_bytes())?;
        b.fingerprint()?;
        resp.len = b.finish();
        if self.pending.push_back(resp).is_err() {
            self.stats.responses_dropped += 1;
        }
        self.stats.requests_answered += 1;
        self.last_check = Some(now);
        let nominate = msg.use_candidate();
        if nominate {
            self.stats.nominations += 1;
        }
        let change = match (self.selected, nominate, self.nominated) {
            (None, _, _) => true,
            (Some(cur), true, _) => cur != source || !self.nominated,
            _ => false,
        };
        if nominate {
            self.nominated = true;
        }
        if change && self.selected != Some(source) {
            self.selected = Some(source);
            return Ok(Selection::Selected(source));
        }
        Ok(Selection::Unchanged)
    }

    fn authentic(&self, msg: &Message<'_>) -> bool {
        if msg.has_fingerprint() && msg.check_fingerprint().is_err() {
            return false;
        }
        let Ok(Some(user)) = msg.username() else { return false };
        let Some((local, remote)) = user.split_once(':') else { return false };
        if local != self.local_ufrag.as_str() {
            return false;
        }
        // Checks may arrive before the remote description; once it is
        // known, the remote part must match too.
        if !self.remote_ufrag.is_empty() && remote != self.remote_ufrag.as_str() {
            return false;
        }
        msg.has_integrity() && msg.check_integrity(self.local_pwd.as_bytes()).is_ok()
    }

    /// The next queued response: (destination, length written into `buf`).
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Result<(SocketAddr, usize), StunError>> {
        let r = self.pending.pop_front()?;
        let Some(dst) = buf.get_mut(..r.len) else { return Some(Err(StunError::BufferTooSmall)) };
        dst.copy_from_slice(&r.buf[..r.len]);
        Some(Ok((r.destination, r.len)))
    }
}
