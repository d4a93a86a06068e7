//! SRTP and SRTCP (RFC 3711, RFC 7714).

mod profile;

pub use profile::{SrtpKeyingMaterial, SrtpMasterKey, SrtpProfile};
