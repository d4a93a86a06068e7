//! The tinyrtc device application, independent of board and network stack:
//! a camera, a sensor and a file store served to a bounded number of
//! WebRTC viewers over one UDP socket, in the core's sans-IO shape.
//!
//! - [`frames`]: the camera ([`frames::FrameSource`], a looping H.264 clip,
//!   frame pacing).
//! - [`sensor`]: temperature/humidity readings as JSON lines.
//! - [`files`]: the stored clip, sent in chunks with a SHA-256 check.
//! - [`device`]: the viewers ([`MAX_VIEWERS`] slots, each a
//!   `tinyrtc::peer::Peer`) and the demultiplexing of the socket.
//!
//! `no_std`, no allocator: every buffer is a field or the caller's. The
//! same [`Device`] runs under `firmware/host` (std UDP socket, HTTP
//! signaling) and on embassy-net firmware.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_debug_implementations)]

pub mod device;
pub mod files;
pub mod frames;
pub mod sensor;

pub use device::{Device, DeviceError, DeviceEvent, DeviceStats, LeaveReason, ViewerId, ViewerStats, MAX_VIEWERS};
pub use files::{FileTransfer, StoredFile};
pub use frames::{AnnexBClip, Frame, FrameFormat, FramePacer, FrameSource};
pub use sensor::{Reading, SensorModel};
