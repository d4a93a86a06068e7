//! A minimal, stateless STUN Binding server (RFC 8489 6.3, 7.3): answers a
//! Binding request with the source address it came from.
//!
//! Processing: non-STUN and malformed datagrams, indications and responses
//! are dropped; a request with a FINGERPRINT that does not verify is
//! dropped; a request for another method gets 400; unknown
//! comprehension-required attributes get 420 with UNKNOWN-ATTRIBUTES;
//! otherwise a success response with XOR-MAPPED-ADDRESS (and SOFTWARE if
//! configured). Responses carry FINGERPRINT when the request did. No
//! authentication (a public STUN server), no ALTERNATE-SERVER, no
//! RFC 5780 behaviour discovery.

use crate::stun::{attr, code, write_error_response, Class, Message, MessageBuilder, Method, StunError};
use core::net::SocketAddr;

/// Counters of a [`BindingServer`] (plain data).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BindingServerStats {
    /// Success responses written.
    pub success: u64,
    /// Error responses written (400, 420).
    pub errors: u64,
    /// Datagrams dropped without an answer.
    pub dropped: u64,
}

/// Answers Binding requests. Keeps only its configuration and counters.
#[derive(Debug, Clone, Default)]
pub struct BindingServer {
    /// Sent in SOFTWARE when set.
    pub software: Option<&'static str>,
    pub stats: BindingServerStats,
}

impl BindingServer {
    pub fn new(software: Option<&'static str>) -> Self {
        BindingServer { software, stats: BindingServerStats::default() }
    }

    /// Process `request` received from `source`. Returns the length of the
    /// response written at the start of `buf` (to send back to `source`),
    /// `Ok(None)` when the datagram is silently dropped, or an error (the
    /// datagram is not STUN, or `buf` is too small).
    pub fn respond(&mut self, request: &[u8], source: SocketAddr, buf: &mut [u8]) -> Result<Option<usize>, StunError> {
        let r = self.respond_inner(request, source, buf);
        match r {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => self.stats.dropped += 1,
        }
        r
    }

    fn respond_inner(
        &mut self,
        request: &[u8],
        source: SocketAddr,
        buf: &mut [u8],
    ) -> Result<Option<usize>, StunError> {
        let msg = Message::new_checked(request)?;
        if msg.class() != Class::Request {
            return Ok(None);
        }
        if msg.has_fingerprint() && msg.check_fingerprint().is_err() {
            return Ok(None);
        }
        let fp = msg.has_fingerprint();
        if msg.method() != Method::BINDING {
            self.stats.errors += 1;
            return write_error_response(buf, &msg, code::BAD_REQUEST, &[], None, fp).map(Some);
        }
        let unknown = msg.unknown_comprehension_required(attr::is_known_binding);
        if !unknown.is_empty() {
            self.stats.errors += 1;
            return write_error_response(buf, &msg, code::UNKNOWN_ATTRIBUTE, &unknown, None, fp).map(Some);
        }
        let mut b = MessageBuilder::new(buf, Method::BINDING, Class::SuccessResponse, &msg.transaction_id())?;
        b.xor_mapped_address(source)?;
        if let Some(s) = self.software {
            b.software(s)?;
        }
        if fp {
            b.fingerprint()?;
        }
        self.stats.success += 1;
        Ok(Some(b.finish()))
    }
}
