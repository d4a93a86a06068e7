//! tinyrtc: a `no_std`, heap-free, sans-IO protocol core for real-time
//! peer-to-peer media and data on microcontrollers.
//!
//! # The sans-IO contract
//!
//! Nothing in this crate opens a socket, reads a clock, sleeps or allocates.
//! Every state machine has the same shape:
//!
//! ```text
//! fn handle_receive(&mut self, now: Instant, ...datagram...) -> Result<(), Error>;
//! fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit>;
//! fn poll_event(&mut self) -> Option<Event>;
//! fn poll_timeout(&self) -> Option<Instant>;
//! fn handle_timeout(&mut self, now: Instant);
//! ```
//!
//! After any `handle_*` call the caller drains `poll_transmit` and
//! `poll_event` until both return `None`, then sleeps until `poll_timeout`
//! (or until a datagram arrives) and calls `handle_timeout`. Time is the
//! caller's: [`time::Instant`] counts microseconds of the caller's monotonic
//! clock. Randomness is the caller's too (`rand_core::RngCore + CryptoRng`).
//! Output goes into caller buffers; a buffer that is too small is an error
//! the caller can act on, never a panic.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_debug_implementations)]

#[cfg(feature = "std")]
extern crate std;

#[macro_use]
mod log;

pub mod bytes;
pub mod crypto;
pub mod time;

pub mod dtls;
pub mod ice;
pub mod netcode;
pub mod peer;
pub mod rtcp;
pub mod rtp;
pub mod sctp;
pub mod sdp;
pub mod srtp;
pub mod stun;

pub use time::{Duration, Instant};

use core::net::SocketAddr;

/// A datagram written by `poll_transmit` into the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Local address to send from (`None`: any / the only socket).
    pub source: Option<SocketAddr>,
    /// Where to send it.
    pub destination: SocketAddr,
    /// Number of bytes written at the start of the caller's buffer.
    pub len: usize,
}
