//! SDP (RFC 8866) offer/answer as browsers use it (the JSEP subset of
//! RFC 8829), plus the JSON signaling messages browsers exchange.
//!
//! - [`wire`]: parse in place ([`SessionDescription::parse`] borrows `&str`
//!   slices of the input) and write into a caller buffer
//!   ([`SessionDescription::write`]). Session lines, `a=group:BUNDLE`,
//!   `rtcp-mux`/`rtcp-rsize`, ICE (`ice-ufrag`, `ice-pwd`,
//!   `ice-options:trickle`, `ice-lite`, candidates, `end-of-candidates`,
//!   RFC 8839), DTLS (`fingerprint` RFC 8122, `setup` RFC 8842), `mid`,
//!   direction, `rtpmap`/`fmtp`/`rtcp-fb`, `extmap` (RFC 8285), `msid`
//!   (RFC 8830), `ssrc` cname and `ssrc-group:FID` (RFC 5576), and the data
//!   channel section (`sctp-port`, `max-message-size`, RFC 8841).
//! - [`negotiate`]: building an offer, answering an offer, reading an answer
//!   (H.264 packetization-mode=1 profiles 42e01f/42001f, VP8, Opus,
//!   PCMU/PCMA).
//! - [`signaling`]: `{"type":"offer","sdp":...}` and
//!   `{"candidate":...,"sdpMid":...,"sdpMLineIndex":...}` JSON.
//!
//! Left out: `b=`/`k=`/`z=`/`r=` semantics, multiple transports without
//! BUNDLE, simulcast (`rid`/`simulcast`), `a=rtcp` (rtcp-mux is assumed),
//! renegotiation.
//!
//! Memory: a [`SessionDescription`] is a value on the caller's stack (or in
//! a static), sized by the constants below; a test prints its size.

pub mod negotiate;
pub mod signaling;
pub mod wire;

pub use crate::bytes::BufferTooSmall;
pub use negotiate::{
    accept_answer, build_answer, build_offer, CodecChoice, LocalSource, LocalTransport, MediaPolicy, Negotiated,
    NegotiatedMedia, NegotiationError,
};
pub use wire::{
    Candidate, CandidateError, CandidateTransport, CandidateType, Codec, Direction, Error, ErrorKind, Extmap, Feedback,
    Fingerprint, HashFunction, MediaDescription, MediaKind, Msid, Origin, SessionDescription, Setup, SsrcInfo,
    TransportAttrs,
};

/// Most `m=` sections in one description (audio, video, data channel and
/// one spare). Each costs one [`MediaDescription`] (~3.5 KB on 64-bit
/// hosts, about half on 32-bit MCUs, with the defaults below).
pub const MAX_MEDIA_SECTIONS: usize = 4;

/// Most payload formats kept per section. Chromium offers 23 video formats
/// for sendrecv and 34 for recvonly (VP8, VP9 x4, H.264 x12, AV1, RTX, RED,
/// ULPFEC); later ones are ignored (and the section marked `truncated`).
/// ~48 bytes each on 64-bit hosts, ~28 on 32-bit.
pub const MAX_CODECS: usize = 40;

/// Most `a=extmap` entries kept per section (Chromium: 11 for video).
/// ~24 bytes each on 64-bit.
pub const MAX_EXTMAPS: usize = 16;

/// Most candidates kept per section (Chromium gathers 8: UDP/TCP x IPv4/IPv6
/// x loopback/interface). ~112 bytes each on 64-bit, ~60 on 32-bit.
pub const MAX_CANDIDATES: usize = 12;

/// Most distinct SSRCs kept per section (media + RTX). ~24 bytes each.
pub const MAX_SSRCS: usize = 4;

/// Longest certificate fingerprint digest (SHA-512).
pub const MAX_FINGERPRINT_LEN: usize = 64;

#[cfg(test)]
mod tests;
