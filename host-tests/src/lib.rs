//! Host-side test support for tinyrtc: the deterministic network simulator
//! (`netsim`) and helpers for interop tests against independent peers.

pub mod aiortc;
pub mod channels;
pub mod chromium;
pub mod clips;
pub mod netsim;
pub mod str0m;

pub mod driver;
pub mod json_child;
/// libsrtp2 through a small C shim (when the build found libsrtp2).
#[cfg(have_libsrtp)]
pub mod libsrtp;
