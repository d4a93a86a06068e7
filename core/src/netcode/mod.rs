//! netcode.io 1.02: connect tokens, client and server, byte-compatible with
//! the standard (`STANDARD.md` of the reference implementation) and its
//! reference implementations.
//!
//! - [`wire`]: connect tokens (public 2048 bytes, private 1024 bytes sealed
//!   with XChaCha20-Poly1305), challenge tokens and the seven packet types
//!   (ChaCha20-Poly1305 IETF, sequence nonce, 22-byte associated data).
//! - [`replay`]: the 256-entry replay window.
//! - [`client`]: [`NetcodeClient`], every client state of the standard.
//! - [`server`]: [`NetcodeServerN`] with client slots in static storage.
//! - [`base64`]: heap-free base64 for handing tokens over REST.
//!
//! Time: the caller passes its monotonic [`Instant`](crate::Instant) to every
//! call, and the Unix time in seconds where the standard compares against
//! wall-clock timestamps (token creation and expiry).
//!
//! Deliberate choices where the standard leaves room, or where this
//! implementation is stricter (the wire format is never changed):
//! - Connect tokens are single-use on a server: the token history records
//!   each token (keyed by its tag) as *pending* from its first valid request,
//!   and as *consumed* once it produced a connected client. A consumed token
//!   is refused even from the same address, so a token cannot connect twice.
//! - Payloads are delivered in arrival order with replay protection only, as
//!   the standard says: an authentic packet that arrives late (but inside the
//!   256-packet window) is still delivered. The sequence number is returned
//!   with each payload for callers that want to drop late packets.
//! - Nothing a server keeps (slot, token-history entry, pending handshake) is
//!   created before the input authenticated: requests must decrypt with the
//!   private key, responses with the client's key and the challenge key.
//!
//! Layouts follow the reference implementations and their golden vectors
//! (24-byte XChaCha20 token nonce, 1078-byte connection request, address
//! types 1 = IPv4 and 2 = IPv6); some text of STANDARD.md still describes the
//! older 8-byte token sequence (1062-byte request) and address types 0/1.
//!
//! Left out: the loopback ("local") client mode of the reference
//! implementation, which is not part of the standard.

pub mod base64;
pub mod client;
pub mod replay;
pub mod server;
pub mod wire;

pub use client::{ClientState, NetcodeClient};
pub use server::{DisconnectReason, NetcodeServer, NetcodeServerN, ServerConfig, ServerEvent};
pub use wire::{generate_connect_token, ConnectToken, ConnectTokenParams, Key, UserData};

use crate::bytes::{BufferTooSmall, Truncated};

/// Packets per second for request/response resends and keep-alives.
pub const PACKET_SEND_RATE_HZ: u64 = 10;
/// Redundant disconnect packets sent when a side disconnects on purpose.
pub const NUM_DISCONNECT_PACKETS: u8 = 10;

/// Why a packet or call was refused. Input errors only tell the caller what
/// was dropped; they never change state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    // ---- packet input, all silently ignorable (the standard drops them)
    /// Empty, or shorter than the smallest packet of its type (18 bytes for
    /// encrypted packets).
    PacketTooSmall,
    /// The body length is wrong for the packet type (after decryption), or a
    /// connection request is not exactly 1078 bytes.
    WrongPacketSize,
    /// Unknown packet type in the prefix byte.
    InvalidPacketType,
    /// A packet type this side never accepts (e.g. a challenge at a server).
    PacketTypeNotAllowed,
    /// The prefix byte announces 0 or more than 8 sequence bytes.
    InvalidSequenceBytes,
    /// Version info is not `NETCODE 1.02`.
    VersionMismatch,
    /// The packet or token is for another protocol id.
    ProtocolIdMismatch,
    /// The connect token's expire timestamp is not after the current Unix time.
    TokenExpired,
    /// AEAD verification failed (forged, corrupted, wrong key).
    DecryptFailed,
    /// Sequence already received or older than the replay window.
    Replayed,
    /// A field of a connect token is invalid (address type or count, ...).
    InvalidConnectToken,
    /// Structurally malformed input.
    Malformed,
    /// No handshake or connection is known for the source address.
    UnknownAddress,
    /// A packet from an address other than the server's.
    WrongSource,
    /// The packet is valid but not expected in the current state.
    UnexpectedPacket,
    // ---- server decisions on authenticated requests
    /// This server's address is not in the token's server list.
    ServerAddressNotInToken,
    /// A client is already connected from this address.
    AddressAlreadyConnected,
    /// A client with this client id is already connected.
    ClientIdAlreadyConnected,
    /// The token was used from another address, or already produced a connection.
    TokenAlreadyUsed,
    /// Every slot is taken: a connection denied packet was queued.
    ServerFull,
    /// The pending-handshake table is full of live handshakes (retry later).
    PendingTableFull,
    /// The token history is full of unexpired tokens (fails closed).
    TokenHistoryFull,
    // ---- caller errors
    /// The caller's buffer is too small.
    BufferTooSmall,
    /// A payload must be 1 to 1200 bytes.
    InvalidPayloadSize,
    /// The slot index is out of range or not connected.
    InvalidSlot,
    /// The call needs a connected client.
    NotConnected,
    /// 1 to 32 server addresses, and as many internal as public ones.
    InvalidServerAddresses,
}

impl From<Truncated> for Error {
    fn from(_: Truncated) -> Self {
        Error::Malformed
    }
}

impl From<BufferTooSmall> for Error {
    fn from(_: BufferTooSmall) -> Self {
        Error::BufferTooSmall
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self, f)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}
