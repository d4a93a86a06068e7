//! STUN (RFC 8489, RFC 5389): wire format, client transactions, a binding
//! client and a binding server responder.
//!
//! - [`wire`]: the message view ([`Message`]) and builder ([`MessageBuilder`]);
//!   attributes MAPPED-ADDRESS, XOR-MAPPED-ADDRESS (IPv4/IPv6), USERNAME,
//!   MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256, FINGERPRINT, ERROR-CODE,
//!   UNKNOWN-ATTRIBUTES, SOFTWARE, REALM, NONCE and the ICE attributes
//!   PRIORITY, USE-CANDIDATE, ICE-CONTROLLED, ICE-CONTROLLING (RFC 8445 16.1);
//!   any other attribute (e.g. TURN's) through [`RawAttribute`] and
//!   [`MessageBuilder::raw`] / [`MessageBuilder::xor_address`].
//!   Short-term keys are the password; long-term keys come from
//!   [`long_term_key`] (MD5) or [`long_term_key_sha256`].
//! - [`transaction`]: RFC 8489 6.2.1 retransmission (RTO 500 ms, Rc 7,
//!   Rm 16, configurable) and a bounded transaction table.
//! - [`client`]: a sans-IO Binding client that learns server-reflexive
//!   addresses.
//! - [`server`]: a stateless Binding responder (XOR-MAPPED-ADDRESS, 400, 420).
//!
//! Left out: SASLprep/OpaqueString processing of passwords (callers pass
//! prepared strings), USERHASH computation, PASSWORD-ALGORITHMS negotiation,
//! ALTERNATE-SERVER redirection, STUN over TCP/TLS framing, DNS discovery.

pub mod client;
pub mod server;
pub mod transaction;
pub mod wire;

pub use client::{BindingClient, BindingError, BindingEvent, BindingFailure, StunBindingClient};
pub use server::{BindingServer, BindingServerStats};
pub use transaction::{RetransmitConfig, TableFull, Transactions};

pub use wire::{
    attr, code, is_stun, long_term_key, long_term_key_sha256, message_type, split_message_type, write_error_response,
    Class, Message, MessageBuilder, Method, RawAttribute, StunError, TransactionId, HEADER_LEN, MAGIC_COOKIE,
};

#[cfg(test)]
mod tests;
