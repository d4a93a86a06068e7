//! SCTP over DTLS (RFC 8261) for WebRTC data channels: the association
//! subset of RFC 9260 that data channels need, partial reliability
//! (RFC 3758), stream reset (RFC 6525) and DCEP (RFC 8832).
//!
//! - `wire`: packets and chunks (zero-copy parse, emit into caller buffers).
//! - `dcep`: DATA_CHANNEL_OPEN / ACK and the WebRTC PPIDs.
//! - `association`: the sans-IO state machine ([`SctpAssociation`]) that
//!   consumes and produces SCTP packets; the caller carries them (in DTLS
//!   application data for WebRTC).
//!
//! See `association` for what is implemented and what is left out.

pub mod association;
pub mod dcep;
pub mod wire;

#[cfg(test)]
mod tests;

pub use association::{
    ChannelConfig, ChannelId, Event, Label, LostReason, MessageKind, Role, SctpAssociation, SctpAssociationN,
    SctpConfig, SctpError, SctpStats,
};
pub use dcep::Reliability;
