//! The tinyrtc virtual device: the `device-app` application on Linux.
//!
//! One UDP socket carries every viewer's media; an HTTP server on
//! 127.0.0.1 serves the viewer page at `/` and WHEP-shaped signaling
//! (RFC 9725): `POST /whep` (SDP offer -> 201, `Location`, SDP answer),
//! `PATCH /whep/<id>` (trickle-ice-sdpfrag), `DELETE /whep/<id>`.
//! [`whip::Publisher`] publishes the camera to a WHIP server.
//!
//! The binary (`cargo run --release -p virtual-device`) wraps
//! [`VirtualDevice`]; tests run the same thing in-process.

/// `println!` that ignores a closed stdout (a pipe whose reader left must
/// not take the device down).
#[macro_export]
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

pub mod http;
pub mod server;
pub mod whip;

pub use server::{Options, Shared, VirtualDevice, CLIP};
