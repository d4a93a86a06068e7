//! Host-side test support for tinyrtc: the deterministic network simulator
//! (`netsim`) and helpers for interop tests against independent peers.

pub mod chromium;
pub mod netsim;
