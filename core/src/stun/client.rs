//! A sans-IO STUN Binding client (RFC 8489 3, 6.2, 6.3.3, 7): discovers
//! server-reflexive addresses through STUN servers.
//!
//! Requests carry FINGERPRINT and no credentials (a public STUN server
//! needs none). Responses are matched by transaction ID and by the server
//! address they come from; a FINGERPRINT, when present, must verify. A
//! success response yields XOR-MAPPED-ADDRESS (MAPPED-ADDRESS from RFC 3489
//! servers is accepted as a fallback). Left out: ALTERNATE-SERVER (300) and
//! authenticated Binding requests.

use crate::crypto;
use crate::stun::transaction::{RetransmitConfig, Transactions};
use crate::stun::{attr, Class, Message, MessageBuilder, Method, StunError, TransactionId};
use crate::time::Instant;
use crate::Transmit;
use core::net::SocketAddr;
use rand_core::{CryptoRng, RngCore};

/// Length of the Binding requests this client writes (header + FINGERPRINT).
pub const BINDING_REQUEST_LEN: usize = 28;

/// Why a Binding transaction failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BindingFailure {
    /// No response after all retransmissions.
    Timeout,
    /// The server answered with this error code.
    ErrorResponse(u16),
    /// A success response with unknown comprehension-required attributes or
    /// without a usable mapped address.
    BadResponse,
}

/// The outcome of a Binding transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BindingEvent {
    /// The server saw our request coming from `reflexive`.
    Success {
        id: TransactionId,
        source: Option<SocketAddr>,
        server: SocketAddr,
        reflexive: SocketAddr,
    },
    Failed {
        id: TransactionId,
        source: Option<SocketAddr>,
        server: SocketAddr,
        reason: BindingFailure,
    },
}

/// Errors of [`BindingClient`] calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum BindingError {
    /// The datagram is not a valid STUN message (or fails its FINGERPRINT).
    Stun(StunError),
    /// A STUN message that is not a Binding response.
    NotBindingResponse,
    /// No outstanding transaction has this ID and server address.
    UnknownTransaction,
    /// All transaction slots are in use.
    TableFull,
}

impl From<StunError> for BindingError {
    fn from(e: StunError) -> Self {
        BindingError::Stun(e)
    }
}

impl core::fmt::Display for BindingError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BindingError::Stun(e) => write!(f, "{e}"),
            BindingError::NotBindingResponse => f.write_str("not a Binding response"),
            BindingError::UnknownTransaction => f.write_str("unknown STUN transaction"),
            BindingError::TableFull => f.write_str("STUN transaction table full"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    source: Option<SocketAddr>,
    server: SocketAddr,
}

/// A Binding client with up to `N` concurrent transactions.
///
/// Memory: about `N * 120` bytes (transactions and queued events) plus 140
/// bytes of generator state.
#[derive(Debug, Clone)]
pub struct BindingClient<const N: usize> {
    transactions: Transactions<Pending, N>,
    events: heapless::Deque<BindingEvent, N>,
    rng: crypto::Rng,
}

/// A Binding client with 4 concurrent transactions.
pub type StunBindingClient = BindingClient<4>;

impl<const N: usize> BindingClient<N> {
    pub fn new(config: RetransmitConfig, rng: &mut (impl RngCore + CryptoRng)) -> Self {
        BindingClient {
            transactions: Transactions::new(config),
            events: heapless::Deque::new(),
            rng: crypto::Rng::from_rng(rng),
        }
    }

    /// Start a Binding transaction to `server`, sent from the local socket
    /// `source` (`None`: the only socket). The request goes out on the next
    /// `poll_transmit`.
    pub fn start(
        &mut self,
        now: Instant,
        source: Option<SocketAddr>,
        server: SocketAddr,
    ) -> Result<TransactionId, BindingError> {
        let mut id = [0u8; 12];
        self.rng.fill_bytes(&mut id);
        self.transactions.start(now, id, Pending { source, server }, None).map_err(|_| BindingError::TableFull)?;
        Ok(id)
    }

    /// Abandon a transaction; no event will be produced for it.
    pub fn cancel(&mut self, id: &TransactionId) {
        self.transactions.take(id);
    }

    /// Number of transactions in progress.
    pub fn in_progress(&self) -> usize {
        self.transactions.len()
    }

    /// Whether `id` is an outstanding transaction of this client.
    pub fn owns(&self, id: &TransactionId) -> bool {
        self.transactions.get(id).is_some()
    }

    /// Feed a datagram received from `from`. Errors say why it was ignored.
    pub fn handle_receive(&mut self, _now: Instant, from: SocketAddr, data: &[u8]) -> Result<(), BindingError> {
        let msg = Message::new_checked(data)?;
        self.handle_message(from, &msg)
    }

    /// Like [`Self::handle_receive`] for a message already parsed.
    pub fn handle_message(&mut self, from: SocketAddr, msg: &Message<'_>) -> Result<(), BindingError> {
        if msg.method() != Method::BINDING || !matches!(msg.class(), Class::SuccessResponse | Class::ErrorResponse) {
            return Err(BindingError::NotBindingResponse);
        }
        let id = msg.transaction_id();
        let pending = *self.transactions.get(&id).ok_or(BindingError::UnknownTransaction)?;
        if pending.server != from {
            return Err(BindingError::UnknownTransaction);
        }
        if msg.has_fingerprint() {
            msg.check_fingerprint()?;
        }
        let reason = if msg.class() == Class::ErrorResponse {
            match msg.error_code() {
                Ok(Some((code, _))) => BindingFailure::ErrorResponse(code),
                _ => BindingFailure::BadResponse,
            }
        } else if !msg.unknown_comprehension_required(attr::is_known_binding).is_empty() {
            BindingFailure::BadResponse
        } else {
            let mapped = match msg.xor_mapped_address() {
                Ok(Some(a)) => Some(a),
                Ok(None) => msg.mapped_address().ok().flatten(),
                Err(_) => None,
            };
            match mapped {
                Some(reflexive) => {
                    self.transactions.take(&id);
                    self.push(BindingEvent::Success { id, source: pending.source, server: from, reflexive });
                    return Ok(());
                }
                None => BindingFailure::BadResponse,
            }
        };
        self.transactions.take(&id);
        self.push(BindingEvent::Failed { id, source: pending.source, server: from, reason });
        Ok(())
    }

    fn push(&mut self, ev: BindingEvent) {
        if self.events.is_full() {
            // The caller did not drain events; keep the newest.
            self.events.pop_front();
        }
        let _ = self.events.push_back(ev);
    }

    /// The next request to send, written into `buf` (at least
    /// [`BINDING_REQUEST_LEN`] bytes; a smaller buffer yields `None`).
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if buf.len() < BINDING_REQUEST_LEN {
            return None;
        }
        let (id, p) = self.transactions.poll_due(now)?;
        let len = write_binding_request(buf, &id).ok()?;
        Some(Transmit { source: p.source, destination: p.server, len })
    }

    pub fn poll_event(&mut self) -> Option<BindingEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.transactions.poll_timeout()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((id, p)) = self.transactions.poll_expired(now) {
            self.push(BindingEvent::Failed { id, source: p.source, server: p.server, reason: BindingFailure::Timeout });
        }
    }
}

/// A Binding request with FINGERPRINT and no other attribute.
pub fn write_binding_request(buf: &mut [u8], id: &TransactionId) -> Result<usize, StunError> {
    let mut b = MessageBuilder::new(buf, Method::BINDING, Class::Request, id)?;
    b.fingerprint()?;
    Ok(b.finish())
}
