//! A WebRTC session over one 5-tuple: SDP offer/answer ([`crate::sdp`]),
//! ICE ([`ice_lite`], or the full agent of [`crate::ice`] with
//! [`PeerConfig::ice_lite`] off), DTLS-SRTP ([`crate::dtls`], [`crate::srtp`]) and
//! RTP/RTCP ([`crate::rtp`], [`crate::rtcp`]), in the crate's sans-IO shape.
//!
//! - Demultiplexing per RFC 7983 section 7: first byte 0-3 STUN, 20-63 DTLS,
//!   128-191 RTP/RTCP (RTCP by payload type 192-223, RFC 5761 section 4).
//! - Offerer ([`PeerN::create_offer`] then [`PeerN::set_remote_answer`]) or
//!   answerer ([`PeerN::accept_offer`]); BUNDLE with rtcp-mux only.
//! - Codecs: H.264 (packetization-mode 1), VP8, Opus, PCMU/PCMA; one video
//!   and one audio section; send-only video (camera), send/receive audio,
//!   receive video. Sending: [`PeerN::send_frame`] packetizes and protects
//!   one frame into caller buffers. Receiving: [`PeerN::handle_receive`]
//!   decrypts in place and returns where the RTP payload is.
//! - RTCP: sender/receiver reports every [`PeerConfig::rtcp_interval`] (RTT
//!   and loss in [`PeerStats`]), PLI on request, PLI/FIR received surface
//!   as [`PeerEvent::KeyframeRequest`].
//! - Video loss recovery ([`recovery`]): a send history of `TXH` bytes
//!   answers NACKs (RTX per RFC 4588 when negotiated, plain otherwise); the
//!   received video goes through a reordering buffer of `RXB` bytes, with
//!   NACKs (backoff, give-up) and a PLI when a frame cannot be recovered.
//!   Packets held (after a gap, and the first ones for
//!   [`recovery::START_HOLD`]) come out of [`PeerN::poll_media`]: drain it
//!   after every `handle_receive` and `handle_timeout`.
//! - DTLS role from `a=setup` (RFC 8842); the peer's certificate must match
//!   the SDP fingerprint or the session fails closed.
//! - Data channels (RFC 8831/8832): SCTP ([`crate::sctp`]) in DTLS
//!   application data once DTLS is up. [`PeerN::open_channel`] takes a
//!   label, a sub-protocol and a [`ChannelConfig`] (ordered or unordered;
//!   reliable, max-retransmits or max-lifetime; DCEP or pre-negotiated by
//!   stream id); either side may open channels. [`PeerN::send_data`] sends
//!   text or binary messages (empty ones too), [`PeerN::read_data`] reads
//!   what [`PeerEvent::ChannelData`] announced, [`PeerN::close_channel`]
//!   resets the stream and [`PeerEvent::ChannelClosed`] reports a close
//!   started by either side. Data channel events wait in the association
//!   until polled, so none is dropped when the application is slow.
//!
//! - Full-ICE mode: host candidates from [`PeerN::add_local_candidate`],
//!   server-reflexive ones from [`PeerConfig::stun_servers`] (surfaced as
//!   [`PeerEvent::LocalCandidate`] for trickling), peer-reflexive ones
//!   learned from checks.
//!
//! Left out for now: TURN (relayed candidates), loss recovery for audio,
//! RTX for anything but the one video section, renegotiation.
//!
//! Memory: [`Peer`] is one value (`size_of::<Peer>()` is printed by the
//! tests and stated in the README); the DTLS buffers, SRTP stream tables,
//! data channel buffers and the video send history / reordering buffer
//! ([`DEFAULT_SEND_HISTORY`], [`DEFAULT_REORDER_BUFFER`]) are its const
//! parameters.

mod gather;
pub mod ice_lite;
pub mod recovery;
mod track;

use core::fmt::Write as _;
use core::net::SocketAddr;

use heapless::{Deque, String, Vec};
use rand_core::{CryptoRng, RngCore};

use crate::dtls::MAX_RECORD_PLAINTEXT;
use crate::dtls::{
    DtlsConfig, DtlsEndpointN, DtlsEvent, DtlsFailure, DtlsIdentity, DtlsRole, DEFAULT_APP_BUFFER,
    DEFAULT_FLIGHT_BUFFER, DEFAULT_HANDSHAKE_BUFFER,
};
use crate::rtcp::wire::{CompoundIter, CompoundWriter, RtcpPacket, SenderInfo};
use crate::rtp::audio::{G711Payloader, OpusPayloader};
use crate::rtp::h264::H264Payloader;
use crate::rtp::packetizer::{Chunk, FramePackets, Payloader, RtpPacketizer};
use crate::rtp::vp8::Vp8Payloader;
use crate::rtp::wire::RtpPacket;
use crate::sctp::{self, ChannelId, MessageKind, SctpAssociationN, SctpConfig, SctpError};
use crate::sdp::{
    self, accept_answer, build_answer, build_offer, Candidate, CodecChoice, Direction, Feedback, Fingerprint,
    HashFunction, LocalSource, LocalTransport, MediaKind, MediaPolicy, NegotiationError, SessionDescription, Setup,
};
use crate::srtp::{SrtpContextN, SrtpError, DEFAULT_STREAMS, SRTCP_MAX_OVERHEAD, SRTP_MAX_OVERHEAD};
use crate::stun::StunError;
use crate::time::{Duration, Instant};
use crate::Transmit;

pub use gather::MAX_REFLEXIVE_CANDIDATES;
pub use ice_lite::{IceStats, MAX_PWD_LEN, MAX_UFRAG_LEN};
pub use track::{ntp_from_instant, TrackStats};

use ice_lite::{IceLite, Selection};
use track::Track;

/// Most local host candidates announced (each ~80 bytes).
pub const MAX_LOCAL_CANDIDATES: usize = 4;
/// Events waiting for `poll_event`.
pub const EVENT_QUEUE_LEN: usize = 8;

/// Session configuration (plain data).
#[derive(Debug, Clone, Copy)]
pub struct PeerConfig {
    /// Video codecs in preference order (empty: no video).
    pub video_codecs: &'static [CodecChoice],
    /// Audio codecs in preference order (empty: no audio).
    pub audio_codecs: &'static [CodecChoice],
    pub video_direction: Direction,
    pub audio_direction: Direction,
    /// Offer/accept a data channel section (SCTP over DTLS).
    pub datachannel: bool,
    /// Largest datagram written (default 1200).
    pub mtu: u16,
    /// Interval of sender/receiver reports (default 1 s).
    pub rtcp_interval: Duration,
    /// Session fails when no authenticated ICE check arrived for this long
    /// after connecting (RFC 7675 uses 30 s).
    pub consent_timeout: Duration,
    /// Put local candidates in the SDP (false: trickle them only).
    pub candidates_in_sdp: bool,
    /// `true`: ICE-lite (answer checks only; the remote must be a full
    /// agent, as browsers are). `false`: full ICE through [`crate::ice`]
    /// (checks, nomination, consent), needed between two tinyrtc peers.
    pub ice_lite: bool,
    /// STUN servers asked for server-reflexive candidates in full-ICE mode
    /// (gathering starts once the descriptions are exchanged; the
    /// candidates come as [`PeerEvent::LocalCandidate`] for trickling).
    pub stun_servers: [Option<SocketAddr>; crate::ice::MAX_STUN_SERVERS],
}

impl PeerConfig {
    /// A camera: send-only video (H.264 Constrained Baseline, H.264
    /// Baseline, VP8), send/receive Opus/PCMU/PCMA audio, data channel.
    pub const fn camera() -> Self {
        PeerConfig {
            video_codecs: &[CodecChoice::H264ConstrainedBaseline, CodecChoice::H264Baseline, CodecChoice::Vp8],
            audio_codecs: &[CodecChoice::Opus, CodecChoice::Pcmu, CodecChoice::Pcma],
            video_direction: Direction::SendOnly,
            audio_direction: Direction::SendRecv,
            datachannel: true,
            mtu: 1200,
            rtcp_interval: Duration::from_secs(1),
            consent_timeout: Duration::from_secs(30),
            candidates_in_sdp: true,
            ice_lite: true,
            stun_servers: [None; crate::ice::MAX_STUN_SERVERS],
        }
    }
    /// A viewer: receive-only video, send/receive audio.
    pub const fn viewer() -> Self {
        PeerConfig { video_direction: Direction::RecvOnly, ..PeerConfig::camera() }
    }
}

/// Where the session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PeerState {
    /// No description exchanged yet.
    New,
    /// Our offer is out; waiting for the answer.
    HaveLocalOffer,
    /// Negotiated; waiting for ICE/DTLS.
    Connecting,
    /// DTLS done, SRTP keys in place: media flows.
    Connected,
    /// Failed or closed; see [`PeerEvent::Failed`].
    Closed,
}

/// Why a session failed (stable meanings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PeerFailure {
    /// The DTLS handshake failed (fingerprint mismatch, timeout, alert...).
    Dtls(DtlsFailure),
    /// DTLS completed without an SRTP profile.
    NoSrtpProfile,
    /// The remote stopped answering consent checks.
    ConsentLost,
    /// Full ICE found no working candidate pair (or lost it).
    IceFailed,
    /// The remote closed DTLS.
    RemoteClosed,
}

/// Why the data channel transport (SCTP association) ended.
pub use crate::sctp::LostReason as DataLostReason;
/// Data channel options for [`PeerN::open_channel`].
pub use crate::sctp::{ChannelConfig, Reliability};

/// Something the application should know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PeerEvent {
    /// A new local candidate (server-reflexive, full-ICE mode) to trickle:
    /// [`PeerN::local_candidate`] with this index.
    LocalCandidate {
        index: usize,
    },
    /// ICE selected (or re-selected) the remote address.
    IceConnected {
        remote: SocketAddr,
    },
    /// DTLS-SRTP is up: media can be sent.
    Connected,
    /// The remote asked for a keyframe (PLI or FIR) of our stream.
    KeyframeRequest {
        kind: MediaKind,
    },
    /// A data channel is open (label: [`PeerN::channel_label`]).
    ChannelOpen {
        id: u16,
        by_remote: bool,
    },
    /// A data channel message of `len` bytes is ready for [`PeerN::read_data`].
    ChannelData {
        id: u16,
        binary: bool,
        len: usize,
    },
    /// Data channel `id` is closed: its stream was reset both ways, after
    /// [`PeerN::close_channel`] here or a close by the remote. The id may
    /// be reused by a later channel.
    ChannelClosed {
        id: u16,
    },
    /// The SCTP association ended (data channels are gone; media may go on).
    DataTransportLost(DataLostReason),
    Failed(PeerFailure),
}

/// Errors returned to the caller (stable meanings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PeerError {
    /// The remote SDP does not parse (line number inside).
    Sdp(sdp::Error),
    /// The remote SDP parses but cannot be used.
    Negotiation(NegotiationError),
    /// The remote fingerprint is not SHA-256.
    UnsupportedFingerprint,
    /// Remote ICE ufrag/pwd longer than [`MAX_UFRAG_LEN`]/[`MAX_PWD_LEN`].
    CredentialsTooLong,
    /// The call does not fit the signaling state (e.g. answer before offer).
    WrongState,
    /// Media cannot be sent yet (not connected) or no such sending track.
    NotSending,
    /// More than [`MAX_LOCAL_CANDIDATES`].
    TooManyCandidates,
    /// A trickled candidate does not parse or does not fit.
    BadCandidate,
    /// The full ICE agent refused a call.
    Ice(crate::ice::IceError),
    /// The caller's buffer is too small.
    BufferTooSmall,
    /// A datagram none of the protocols claims (RFC 7983).
    UnknownPacket,
    Stun(StunError),
    Srtp(SrtpError),
    Rtp(crate::rtp::Error),
    Rtcp(crate::rtcp::Error),
    /// A data channel call failed (no data channel negotiated: `NotConnected`).
    Sctp(SctpError),
}

impl From<sdp::BufferTooSmall> for PeerError {
    fn from(_: sdp::BufferTooSmall) -> Self {
        PeerError::BufferTooSmall
    }
}

impl core::fmt::Display for PeerError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PeerError::Sdp(e) => write!(f, "{e}"),
            other => write!(f, "{other:?}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for PeerError {}

/// Session counters (plain data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PeerStats {
    pub state: PeerState,
    /// The selected remote address (ICE).
    pub selected_remote: Option<SocketAddr>,
    /// Whether the selected address was nominated by the controlling agent.
    pub nominated: bool,
    pub ice: IceStats,
    pub video: TrackStats,
    pub audio: TrackStats,
    /// SRTP/SRTCP packets that failed authentication or replay checks.
    pub srtp_dropped: u64,
    /// Datagrams dropped as unknown, malformed or early.
    pub datagrams_dropped: u64,
}

/// A received RTP packet, decrypted in place in the caller's datagram
/// buffer: the payload is `datagram[payload_offset..][..payload_len]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MediaPacket {
    pub kind: MediaKind,
    pub codec: CodecChoice,
    pub payload_type: u8,
    pub ssrc: u32,
    pub sequence_number: u16,
    pub timestamp: u32,
    pub marker: bool,
    pub payload_offset: usize,
    pub payload_len: usize,
}

/// Video send history of the default [`Peer`]: 32 packets of the default
/// 1200-byte MTU (+18 bytes bookkeeping each) = 38,976 bytes, about 1.5 s
/// of 250 kbit/s video (NACKs come within an RTT or two). Packets NACKed
/// after they left it are not resent.
pub const DEFAULT_SEND_HISTORY: usize = 32 * (1200 + crate::rtp::SLOT_OVERHEAD);
/// Video reordering buffer of the default [`Peer`]: 32 packets of 1200
/// bytes (+18) = 38,976 bytes. Packets after a gap wait here for the
/// retransmission; keep it above [`recovery::GIVE_UP_AFTER`] worth of
/// packets (1 s of video), or a long wait pushes received packets out.
pub const DEFAULT_REORDER_BUFFER: usize = 32 * (1200 + crate::rtp::SLOT_OVERHEAD);

/// Data channel send and receive buffer of the default [`Peer`] (bytes
/// each; also the largest message).
pub const DEFAULT_CHANNEL_BUFFER: usize = 16384;
/// Data channels open at once in the default [`Peer`] (~160 bytes each).
pub const DEFAULT_CHANNELS: usize = 4;
/// SCTP DATA chunks tracked each way in the default [`Peer`] (~72 bytes each).
pub const DEFAULT_SCTP_CHUNKS: usize = 32;

/// The default session: DTLS buffers of 2 KB each, 8 SRTP streams per
/// direction, data channels with 16 KB send/receive buffers, 4 channels and
/// 32 chunks, a 32-packet video send history and a 32-packet reordering
/// buffer (see `size_of::<Peer>()`, printed by the `peer` tests).
pub type Peer = PeerN<
    DEFAULT_HANDSHAKE_BUFFER,
    DEFAULT_FLIGHT_BUFFER,
    DEFAULT_APP_BUFFER,
    DEFAULT_STREAMS,
    DEFAULT_CHANNEL_BUFFER,
    DEFAULT_CHANNELS,
    DEFAULT_SCTP_CHUNKS,
    DEFAULT_SEND_HISTORY,
    DEFAULT_REORDER_BUFFER,
>;

/// A WebRTC session. `HS`, `FLIGHT`, `APP`: DTLS reassembly, flight and
/// application buffers; `STREAMS`: SRTP streams per direction; `CHBUF`:
/// data channel send and receive buffer bytes (each); `CHANNELS`: data
/// channels; `CHUNKS`: SCTP chunks tracked each way; `TXH`: video send
/// history bytes, `RXB`: video reordering buffer bytes (each holds
/// `bytes / (mtu + 18)` packets; 0 turns that side of recovery off).
pub struct PeerN<
    const HS: usize,
    const FLIGHT: usize,
    const APP: usize,
    const STREAMS: usize,
    const CHBUF: usize,
    const CHANNELS: usize,
    const CHUNKS: usize,
    const TXH: usize,
    const RXB: usize,
> {
    config: PeerConfig,
    state: PeerState,
    identity: DtlsIdentity,
    ice: IceLite,
    /// Full ICE agent (when `config.ice_lite` is false), made once the
    /// roles are known.
    agent: Option<crate::ice::IceAgent>,
    session_id: u64,
    cname: String<16>,
    local_candidates: Vec<(SocketAddr, String<48>), MAX_LOCAL_CANDIDATES>,
    /// Server-reflexive candidates gathered by the full ICE agent.
    reflexive: Vec<gather::Reflexive, MAX_REFLEXIVE_CANDIDATES>,
    remote_fingerprint: Option<crate::dtls::Fingerprint>,
    local_setup: Setup,
    dtls: Option<DtlsEndpointN<HS, FLIGHT, APP>>,
    srtp_tx: Option<SrtpContextN<STREAMS>>,
    srtp_rx: Option<SrtpContextN<STREAMS>>,
    sctp: Option<SctpAssociationN<CHBUF, CHBUF, CHANNELS, CHUNKS>>,
    /// Negotiated data channel: (remote SCTP port, remote max-message-size).
    datachannel: Option<(u16, usize)>,
    video: Option<Track>,
    audio: Option<Track>,
    video_ssrc: u32,
    audio_ssrc: u32,
    /// Our RTX SSRC for video retransmissions (RFC 4588).
    video_rtx_ssrc: u32,
    recovery: recovery::Recovery<TXH, RXB>,
    seq_seeds: [u16; 2],
    next_rtcp: Option<Instant>,
    connected_at: Option<Instant>,
    events: Deque<PeerEvent, EVENT_QUEUE_LEN>,
    /// Randomness for what starts later (SCTP tags and TSNs).
    rng: crate::crypto::Rng,
    srtp_dropped: u64,
    datagrams_dropped: u64,
}

impl<
        const HS: usize,
        const FLIGHT: usize,
        const APP: usize,
        const STREAMS: usize,
        const CHBUF: usize,
        const CHANNELS: usize,
        const CHUNKS: usize,
        const TXH: usize,
        const RXB: usize,
    > core::fmt::Debug for PeerN<HS, FLIGHT, APP, STREAMS, CHBUF, CHANNELS, CHUNKS, TXH, RXB>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Peer").field("state", &self.state).field("selected", &self.ice.selected).finish()
    }
}

const ICE_CHARS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn random_string<const N: usize>(rng: &mut impl RngCore, len: usize) -> String<N> {
    let mut s = String::new();
    for _ in 0..len.min(N) {
        let c = ICE_CHARS[(rng.next_u32() & 63) as usize];
        let _ = s.push(c as char);
    }
    s
}

fn to_dtls_fingerprint(f: &Fingerprint) -> Result<crate::dtls::Fingerprint, PeerError> {
    if f.hash != HashFunction::Sha256 {
        return Err(PeerError::UnsupportedFingerprint);
    }
    let mut sha256 = [0u8; 32];
    sha256.copy_from_slice(f.value().get(..32).ok_or(PeerError::UnsupportedFingerprint)?);
    Ok(crate::dtls::Fingerprint { sha256 })
}

impl<
        const HS: usize,
        const FLIGHT: usize,
        const APP: usize,
        const STREAMS: usize,
        const CHBUF: usize,
        const CHANNELS: usize,
        const CHUNKS: usize,
        const TXH: usize,
        const RXB: usize,
    > PeerN<HS, FLIGHT, APP, STREAMS, CHBUF, CHANNELS, CHUNKS, TXH, RXB>
{
    /// A new session with a freshly generated DTLS identity (ECDSA P-256).
    pub fn new<R: RngCore + CryptoRng>(config: PeerConfig, rng: &mut R) -> Self {
        let identity = DtlsIdentity::generate(rng);
        Self::with_identity(config, identity, rng)
    }

    /// A new session using an existing DTLS identity (certificates are
    /// costly to make on a microcontroller; reuse one across sessions).
    pub fn with_identity<R: RngCore + CryptoRng>(config: PeerConfig, identity: DtlsIdentity, rng: &mut R) -> Self {
        let ufrag = random_string::<8>(rng, 8);
        let pwd = random_string::<24>(rng, 24);
        let cname = random_string::<16>(rng, 16);
        PeerN {
            config,
            state: PeerState::New,
            identity,
            ice: IceLite::new(ufrag, pwd),
            agent: None,
            session_id: rng.next_u64() >> 2,
            cname,
            local_candidates: Vec::new(),
            reflexive: Vec::new(),
            remote_fingerprint: None,
            local_setup: Setup::Active,
            dtls: None,
            srtp_tx: None,
            srtp_rx: None,
            sctp: None,
            datachannel: None,
            video: None,
            audio: None,
            video_ssrc: rng.next_u32() | 1,
            audio_ssrc: rng.next_u32() | 2,
            video_rtx_ssrc: rng.next_u32() | 4,
            recovery: recovery::Recovery::new(),
            seq_seeds: [rng.next_u32() as u16 & 0x7fff, rng.next_u32() as u16 & 0x7fff],
            next_rtcp: None,
            connected_at: None,
            events: Deque::new(),
            rng: crate::crypto::Rng::from_rng(rng),
            srtp_dropped: 0,
            datagrams_dropped: 0,
        }
    }

    pub fn state(&self) -> PeerState {
        self.state
    }

    /// Our DTLS certificate fingerprint (as sent in SDP).
    pub fn local_fingerprint(&self) -> Fingerprint {
        Fingerprint::sha256(self.identity.fingerprint().sha256)
    }

    /// Announce a local host address (the socket the caller receives on).
    pub fn add_local_candidate(&mut self, addr: SocketAddr) -> Result<(), PeerError> {
        let mut ip: String<48> = String::new();
        write!(ip, "{}", addr.ip()).map_err(|_| PeerError::BufferTooSmall)?;
        self.local_candidates.push((addr, ip)).map_err(|_| PeerError::TooManyCandidates)
    }

    /// Local candidate `i` in SDP form (for trickling with
    /// [`sdp::signaling::write_candidate`]): the host candidates in the
    /// order added, then the server-reflexive ones as gathered.
    pub fn local_candidate(&self, i: usize) -> Option<Candidate<'_>> {
        let Some((addr, ip)) = self.local_candidates.get(i) else {
            return self.reflexive.get(i - self.local_candidates.len()).map(|r| r.candidate());
        };
        const FOUNDATIONS: [&str; MAX_LOCAL_CANDIDATES] = ["1", "2", "3", "4"];
        let pref = 65535u16.saturating_sub(i as u16);
        Some(Candidate::host(FOUNDATIONS.get(i).copied().unwrap_or("9"), ip.as_str(), addr.port(), pref))
    }

    /// A trickled remote candidate (`candidate:...`). An ICE-lite agent
    /// does not send checks, so this only validates it.
    pub fn add_remote_candidate(&mut self, candidate: &str) -> Result<(), PeerError> {
        Candidate::parse(candidate).map_err(|_| PeerError::BadCandidate)?;
        if let Some(a) = self.agent.as_mut() {
            let c = crate::ice::Candidate::parse(candidate).map_err(|_| PeerError::BadCandidate)?;
            a.add_remote_candidate(c).map_err(PeerError::Ice)?;
        }
        Ok(())
    }

    fn policy(&self) -> MediaPolicy<'_> {
        MediaPolicy {
            video_codecs: self.config.video_codecs,
            audio_codecs: self.config.audio_codecs,
            video_direction: self.config.video_direction,
            audio_direction: self.config.audio_direction,
            feedback: Feedback::NACK.union(Feedback::PLI).union(Feedback::FIR),
            datachannel: self.config.datachannel,
            max_message_size: u32::try_from(CHBUF).unwrap_or(u32::MAX),
            video_source: Some(LocalSource {
                ssrc: self.video_ssrc,
                cname: self.cname.as_str(),
                stream_id: "tinyrtc",
                track_id: "video",
            }),
            audio_source: Some(LocalSource {
                ssrc: self.audio_ssrc,
                cname: self.cname.as_str(),
                stream_id: "tinyrtc",
                track_id: "audio",
            }),
            preferred_setup: Setup::Active,
            video_rtx_ssrc: Some(self.video_rtx_ssrc).filter(|_| TXH > 0 || RXB > 0),
        }
    }

    fn with_local_transport<T>(&self, f: impl FnOnce(&LocalTransport<'_>, &MediaPolicy<'_>) -> T) -> T {
        let mut cands: Vec<Candidate<'_>, MAX_LOCAL_CANDIDATES> = Vec::new();
        if self.config.candidates_in_sdp {
            for i in 0..self.local_candidates.len() {
                if let Some(c) = self.local_candidate(i) {
                    let _ = cands.push(c);
                }
            }
        }
        let t = LocalTransport {
            ice_ufrag: self.ice.local_ufrag.as_str(),
            ice_pwd: self.ice.local_pwd.as_str(),
            fingerprint: self.local_fingerprint(),
            candidates: &cands,
            end_of_candidates: self.config.candidates_in_sdp && !cands.is_empty(),
            session_id: self.session_id,
            ice_lite: self.config.ice_lite,
        };
        f(&t, &self.policy())
    }

    /// Write our offer into `out`; returns its length.
    pub fn create_offer(&mut self, out: &mut [u8]) -> Result<usize, PeerError> {
        if !matches!(self.state, PeerState::New | PeerState::HaveLocalOffer) {
            return Err(PeerError::WrongState);
        }
        let n = self.with_local_transport(|t, p| build_offer(t, p).write(out))?;
        self.state = PeerState::HaveLocalOffer;
        Ok(n)
    }

    /// Apply the remote answer to our offer.
    pub fn set_remote_answer(
        &mut self,
        now: Instant,
        sdp: &str,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(), PeerError> {
        if self.state != PeerState::HaveLocalOffer {
            return Err(PeerError::WrongState);
        }
        let answer = SessionDescription::parse(sdp).map_err(PeerError::Sdp)?;
        let neg = self.with_local_transport(|t, p| {
            let offer = build_offer(t, p);
            accept_answer(&offer, &answer, p).map_err(PeerError::Negotiation).and_then(|n| Outcome::of(&n, true))
        })?;
        self.apply(now, &neg, rng)
    }

    /// Apply a remote offer and write our answer into `out`; returns its length.
    pub fn accept_offer(
        &mut self,
        now: Instant,
        sdp: &str,
        out: &mut [u8],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<usize, PeerError> {
        if self.state != PeerState::New {
            return Err(PeerError::WrongState);
        }
        let offer = SessionDescription::parse(sdp).map_err(PeerError::Sdp)?;
        let (n, neg) = self.with_local_transport(|t, p| {
            let (answer, neg) = build_answer(&offer, t, p).map_err(PeerError::Negotiation)?;
            let n = answer.write(out)?;
            Ok::<_, PeerError>((n, Outcome::of(&neg, false)?))
        })?;
        self.apply(now, &neg, rng)?;
        Ok(n)
    }

    fn apply(&mut self, _now: Instant, neg: &Outcome, rng: &mut (impl RngCore + CryptoRng)) -> Result<(), PeerError> {
        let fp = neg.fingerprint;
        self.ice.remote_ufrag = neg.ufrag.clone();
        self.ice.remote_pwd = neg.pwd.clone();
        self.remote_fingerprint = Some(fp);
        self.local_setup = neg.local_setup;
        let media_mtu = usize::from(self.config.mtu).saturating_sub(SRTP_MAX_OVERHEAD);
        self.datachannel = neg.media.iter().find(|m| m.kind == MediaKind::Application).map(|m| {
            (
                m.remote_sctp_port.unwrap_or(5000),
                m.remote_max_message_size.map_or(65536, |s| if s == 0 { usize::MAX } else { s as usize }),
            )
        });
        for m in &neg.media {
            let Some((codec, pt)) = m.codec else { continue };
            // Room for the RTX original sequence number in retransmissions.
            let mtu = media_mtu.saturating_sub(if m.rtx_payload_type.is_some() { recovery::RTX_OVERHEAD } else { 0 });
            let (slot, ssrc, seed) = match m.kind {
                MediaKind::Video => (&mut self.video, self.video_ssrc, self.seq_seeds[0]),
                MediaKind::Audio => (&mut self.audio, self.audio_ssrc, self.seq_seeds[1]),
                _ => continue,
            };
            *slot = Some(Track {
                kind: m.kind,
                codec,
                payload_type: pt,
                direction: m.direction,
                feedback: m.feedback,
                local_ssrc: ssrc,
                remote_ssrc: m.remote_ssrc,
                packetizer: RtpPacketizer::new(ssrc, pt, seed, mtu),
                last_rtp: None,
                vp8_picture_id: seed,
                recv: Default::default(),
                stats: TrackStats { active: true, ..TrackStats::default() },
                pli_pending: false,
            });
            if m.kind == MediaKind::Video {
                if let Some(t) = self.video.as_ref() {
                    self.recovery.configure(
                        t,
                        m.rtx_payload_type,
                        self.video_rtx_ssrc,
                        m.remote_rtx_ssrc,
                        rng.next_u32() as u16 & 0x7fff,
                        usize::from(self.config.mtu),
                    );
                }
            }
        }
        if !self.config.ice_lite {
            let creds =
                crate::ice::IceCredentials::new(&self.ice.local_ufrag, &self.ice.local_pwd).map_err(PeerError::Ice)?;
            let controlling = neg.offerer || neg.remote_ice_lite;
            let mut agent = crate::ice::IceAgent::new(crate::ice::IceConfig::default(), controlling, creds, rng);
            for (addr, _) in &self.local_candidates {
                agent.add_local_candidate(*addr).map_err(PeerError::Ice)?;
            }
            for server in self.config.stun_servers.into_iter().flatten() {
                agent.add_stun_server(server).map_err(PeerError::Ice)?;
            }
            agent.set_remote_credentials(&neg.ufrag, &neg.pwd).map_err(PeerError::Ice)?;
            for c in &neg.candidates {
                let _ = agent.add_remote_candidate(c.clone());
            }
            self.agent = Some(agent);
        }
        let role = if self.local_setup == Setup::Active { DtlsRole::Client } else { DtlsRole::Server };
        self.sctp = self.new_association(role == DtlsRole::Client);
        let mut cfg = DtlsConfig::new(role);
        cfg.mtu = self.config.mtu;
        let mut dtls = DtlsEndpointN::new(cfg, &self.identity, Some(fp), rng);
        if let Some(addr) = self.ice.selected {
            dtls.set_peer_address(addr);
        }
        self.dtls = Some(dtls);
        self.state = PeerState::Connecting;
        Ok(())
    }

    /// Feed one datagram received from `source`. SRTP packets are decrypted
    /// in place; a received RTP packet is returned with the position of its
    /// payload in `datagram`.
    pub fn handle_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        datagram: &mut [u8],
    ) -> Result<Option<MediaPacket>, PeerError> {
        let Some(&first) = datagram.first() else {
            self.datagrams_dropped += 1;
            return Err(PeerError::UnknownPacket);
        };
        match first {
            0..=3 if self.agent.is_some() => {
                let local = self.local_candidates.first().map(|c| c.0).unwrap_or(source);
                let r = self.agent.as_mut().map(|a| a.handle_receive(now, local, source, datagram));
                self.drain_agent(now);
                match r {
                    Some(Err(e)) => {
                        self.datagrams_dropped += 1;
                        Err(PeerError::Ice(e))
                    }
                    _ => Ok(None),
                }
            }
            0..=3 => {
                match self.ice.handle(now, source, datagram) {
                    Ok(Selection::Selected(addr)) => {
                        if let Some(d) = self.dtls.as_mut() {
                            d.set_peer_address(addr);
                        }
                        self.push_event(PeerEvent::IceConnected { remote: addr });
                    }
                    Ok(Selection::Unchanged) => {}
                    Err(e) => {
                        self.datagrams_dropped += 1;
                        return Err(PeerError::Stun(e));
                    }
                }
                Ok(None)
            }
            20..=63 => {
                // DTLS only from the selected address (ICE authenticates it).
                if self.ice.selected != Some(source) {
                    self.datagrams_dropped += 1;
                    return Ok(None);
                }
                let Some(d) = self.dtls.as_mut() else {
                    self.datagrams_dropped += 1;
                    return Ok(None);
                };
                if d.handle_receive(now, datagram).is_err() {
                    self.datagrams_dropped += 1;
                }
                self.drain_dtls(now);
                Ok(None)
            }
            128..=191 => {
                if self.ice.selected != Some(source) {
                    self.datagrams_dropped += 1;
                    return Ok(None);
                }
                if crate::rtcp::wire::is_rtcp(datagram) {
                    self.receive_rtcp(now, datagram)?;
                    Ok(None)
                } else {
                    self.receive_rtp(now, datagram)
                }
            }
            _ => {
                self.datagrams_dropped += 1;
                Err(PeerError::UnknownPacket)
            }
        }
    }

    fn drain_agent(&mut self, _now: Instant) {
        let Some(a) = self.agent.as_mut() else { return };
        let mut selected = None;
        let mut failed = false;
        let mut gathered: Vec<usize, MAX_REFLEXIVE_CANDIDATES> = Vec::new();
        while let Some(e) = a.poll_event() {
            match e {
                crate::ice::IceEvent::SelectedPairChanged { remote, .. } => selected = Some(remote),
                crate::ice::IceEvent::StateChanged(crate::ice::IceState::Failed) => failed = true,
                crate::ice::IceEvent::CandidateGathered(c) => {
                    if let Some(r) = gather::Reflexive::from_gathered(&c) {
                        if !self.reflexive.iter().any(|o| o.addr == r.addr) && self.reflexive.push(r).is_ok() {
                            let _ = gathered.push(self.local_candidates.len() + self.reflexive.len() - 1);
                        }
                    }
                }
                _ => {}
            }
        }
        for index in gathered {
            self.push_event(PeerEvent::LocalCandidate { index });
        }
        if let Some(remote) = selected {
            if self.ice.selected != Some(remote) {
                self.ice.selected = Some(remote);
                self.ice.nominated = true;
                if let Some(d) = self.dtls.as_mut() {
                    d.set_peer_address(remote);
                }
                self.push_event(PeerEvent::IceConnected { remote });
            }
        }
        if failed {
            self.fail(PeerFailure::IceFailed);
        }
    }

    fn push_event(&mut self, e: PeerEvent) {
        if self.events.is_full() {
            self.events.pop_front();
        }
        let _ = self.events.push_back(e);
    }

    fn fail(&mut self, f: PeerFailure) {
        if self.state != PeerState::Closed {
            self.state = PeerState::Closed;
            self.push_event(PeerEvent::Failed(f));
        }
    }

    fn drain_dtls(&mut self, now: Instant) {
        let Some(d) = self.dtls.as_mut() else { return };
        let mut evs: Vec<DtlsEvent, 4> = Vec::new();
        while let Some(e) = d.poll_event() {
            if evs.push(e).is_err() {
                break;
            }
        }
        let is_client = d.role() == DtlsRole::Client;
        for e in evs {
            match e {
                DtlsEvent::Connected { srtp: Some(km), .. } => {
                    let (local, remote) = km.local_remote(is_client);
                    self.srtp_tx = Some(SrtpContextN::new(km.profile, local));
                    self.srtp_rx = Some(SrtpContextN::new(km.profile, remote));
                    self.state = PeerState::Connected;
                    self.connected_at = Some(now);
                    self.next_rtcp = Some(now);
                    self.push_event(PeerEvent::Connected);
                    if let Some(a) = self.sctp.as_mut() {
                        a.connect(now);
                    }
                }
                DtlsEvent::Connected { srtp: None, .. } => self.fail(PeerFailure::NoSrtpProfile),
                DtlsEvent::ApplicationData { .. } => {
                    let mut record = [0u8; MAX_RECORD_PLAINTEXT];
                    while let Some(Ok(Some(n))) = self.dtls.as_mut().map(|d| d.read_application_data(&mut record)) {
                        match self.sctp.as_mut() {
                            Some(a) => {
                                let _ = a.handle_receive(now, &record[..n]);
                            }
                            None => self.datagrams_dropped += 1,
                        }
                    }
                }
                DtlsEvent::PeerClosed => self.fail(PeerFailure::RemoteClosed),
                DtlsEvent::Failed(f) => self.fail(PeerFailure::Dtls(f)),
            }
        }
    }

    fn receive_rtp(&mut self, now: Instant, datagram: &mut [u8]) -> Result<Option<MediaPacket>, PeerError> {
        let Some(rx) = self.srtp_rx.as_mut() else {
            self.datagrams_dropped += 1;
            return Ok(None);
        };
        let len = match rx.unprotect_rtp(datagram) {
            Ok(n) => n,
            Err(e) => {
                self.srtp_dropped += 1;
                return Err(PeerError::Srtp(e));
            }
        };
        let pkt =
            RtpPacket::new_checked(datagram.get(..len).ok_or(PeerError::UnknownPacket)?).map_err(PeerError::Rtp)?;
        let (ssrc, pt) = (pkt.ssrc(), pkt.payload_type());
        if self.video.as_ref().is_some_and(|t| t.remote_ssrc != Some(ssrc)) && self.recovery.is_remote_rtx(pt) {
            return Ok(self.receive_video(now, pkt, true));
        }
        let track = [self.video.as_mut(), self.audio.as_mut()]
            .into_iter()
            .flatten()
            .find(|t| t.remote_ssrc == Some(ssrc) || (t.remote_ssrc.is_none() && t.payload_type == pt));
        let Some(track) = track else {
            self.datagrams_dropped += 1;
            return Ok(None);
        };
        if track.payload_type != pt {
            // RTX or another format we did not negotiate.
            self.datagrams_dropped += 1;
            return Ok(None);
        }
        track.remote_ssrc = Some(ssrc);
        if track.kind == MediaKind::Video {
            return Ok(self.receive_video(now, pkt, false));
        }
        let payload_offset = pkt.header_len();
        let payload_len = pkt.payload().len();
        track.on_rtp(pkt.sequence_number(), payload_len);
        Ok(Some(MediaPacket {
            kind: track.kind,
            codec: track.codec,
            payload_type: pt,
            ssrc,
            sequence_number: pkt.sequence_number(),
            timestamp: pkt.timestamp(),
            marker: pkt.marker(),
            payload_offset,
            payload_len,
        }))
    }

    fn receive_rtcp(&mut self, now: Instant, datagram: &mut [u8]) -> Result<(), PeerError> {
        let Some(rx) = self.srtp_rx.as_mut() else {
            self.datagrams_dropped += 1;
            return Ok(());
        };
        let len = match rx.unprotect_rtcp(datagram) {
            Ok(n) => n,
            Err(e) => {
                self.srtp_dropped += 1;
                return Err(PeerError::Srtp(e));
            }
        };
        self.recovery.on_rtcp(now, datagram.get(..len).unwrap_or(&[]));
        let mut keyframe: [bool; 2] = [false; 2];
        for p in CompoundIter::new(datagram.get(..len).unwrap_or(&[])) {
            let Ok(p) = p else { break };
            match p {
                RtcpPacket::SenderReport { ssrc, info, reports } => {
                    for t in [self.video.as_mut(), self.audio.as_mut()].into_iter().flatten() {
                        if t.remote_ssrc == Some(ssrc) {
                            t.on_sender_report(now, info.ntp_time);
                        }
                    }
                    self.on_reports(now, reports);
                }
                RtcpPacket::ReceiverReport { reports, .. } => self.on_reports(now, reports),
                RtcpPacket::Pli { media_ssrc, .. } => self.on_keyframe_request(media_ssrc, &mut keyframe),
                RtcpPacket::Fir { entries, .. } => {
                    for (ssrc, _) in entries {
                        self.on_keyframe_request(ssrc, &mut keyframe);
                    }
                }
                RtcpPacket::Nack { media_ssrc, items, .. } => {
                    if let Some(t) = self.video.as_mut().filter(|t| t.local_ssrc == media_ssrc) {
                        t.stats.nacks_received += items.map(|i| i.lost().count() as u32).sum::<u32>();
                    }
                }
                _ => {}
            }
        }
        if keyframe[0] {
            self.push_event(PeerEvent::KeyframeRequest { kind: MediaKind::Video });
        }
        if keyframe[1] {
            self.push_event(PeerEvent::KeyframeRequest { kind: MediaKind::Audio });
        }
        Ok(())
    }

    fn on_reports(&mut self, now: Instant, reports: crate::rtcp::wire::ReportBlocks<'_>) {
        for rb in reports {
            for t in [self.video.as_mut(), self.audio.as_mut()].into_iter().flatten() {
                if t.local_ssrc == rb.ssrc {
                    t.on_report_block(now, &rb);
                }
            }
        }
    }

    fn on_keyframe_request(&mut self, ssrc: u32, flags: &mut [bool; 2]) {
        for (i, t) in [self.video.as_mut(), self.audio.as_mut()].into_iter().enumerate() {
            if let Some(t) = t.filter(|t| t.local_ssrc == ssrc) {
                t.stats.keyframe_requests_received += 1;
                flags[i] = true;
            }
        }
    }

    /// The association for a negotiated data channel section, made as soon
    /// as the DTLS role is known so channels can be opened before DTLS is up.
    fn new_association(&mut self, is_client: bool) -> Option<SctpAssociationN<CHBUF, CHBUF, CHANNELS, CHUNKS>> {
        let (remote_port, max_message) = self.datachannel?;
        let config = SctpConfig {
            remote_port,
            // DTLS record overhead: 13-byte header + up to 24 bytes of AEAD nonce and tag.
            mtu: usize::from(self.config.mtu).saturating_sub(48),
            peer_max_message_size: max_message,
            ..SctpConfig::default()
        };
        let role = if is_client { sctp::Role::Client } else { sctp::Role::Server };
        Some(SctpAssociationN::new(config, role, &mut self.rng))
    }

    /// The next data channel event, taken from the association only when
    /// asked for: it keeps its events (per channel and per message) until
    /// then, so none is lost however many arrive between two polls.
    fn poll_sctp_event(&mut self) -> Option<PeerEvent> {
        let a = self.sctp.as_mut()?;
        loop {
            return Some(match a.poll_event()? {
                sctp::Event::AssociationEstablished => continue,
                sctp::Event::AssociationLost { reason } => PeerEvent::DataTransportLost(reason),
                sctp::Event::ChannelOpened { id, by_peer, .. } => {
                    PeerEvent::ChannelOpen { id: id.0, by_remote: by_peer }
                }
                sctp::Event::ChannelClosed { id } => PeerEvent::ChannelClosed { id: id.0 },
                sctp::Event::MessageReceived { channel, kind, len } => {
                    PeerEvent::ChannelData { id: channel.0, binary: kind == MessageKind::Binary, len }
                }
            });
        }
    }

    fn association(&mut self) -> Result<&mut SctpAssociationN<CHBUF, CHBUF, CHANNELS, CHUNKS>, PeerError> {
        self.sctp.as_mut().ok_or(PeerError::Sctp(SctpError::NotConnected))
    }

    /// Open a data channel (RFC 8832) with a `label`, a sub-protocol
    /// (`""` for none) and delivery options: ordered or not, reliable or
    /// partially reliable (max retransmits or max lifetime), and
    /// `negotiated: Some(id)` for a channel both sides open on stream `id`
    /// without DCEP. Possible once the SDP exchange is done (before that:
    /// `Sctp(NotConnected)`). A channel opened by DCEP is usable when
    /// [`PeerEvent::ChannelOpen`] arrives (messages sent before are queued
    /// and sent ordered, RFC 8832 section 6); a pre-negotiated one once the
    /// association is up (its `ChannelOpen` says so).
    pub fn open_channel(
        &mut self,
        now: Instant,
        label: &str,
        protocol: &str,
        config: ChannelConfig,
    ) -> Result<u16, PeerError> {
        let id = self.association()?.open_channel(now, label, protocol, config).map_err(PeerError::Sctp)?;
        Ok(id.0)
    }

    /// Close channel `id`: its outgoing stream is reset (RFC 8831 section
    /// 6.7), the remote resets its side, then [`PeerEvent::ChannelClosed`]
    /// follows on both sides (also when the remote starts the close).
    /// Sending on the channel fails from now on; queued messages still go.
    pub fn close_channel(&mut self, now: Instant, id: u16) -> Result<(), PeerError> {
        self.association()?.close_channel(now, ChannelId(id)).map_err(PeerError::Sctp)
    }

    /// Queue a message on channel `id` (text or binary; empty messages are
    /// sent with the empty-message PPIDs). `Sctp(WouldBlock)`: the send
    /// buffer is full, retry after the next datagrams were handled.
    pub fn send_data(&mut self, now: Instant, id: u16, binary: bool, data: &[u8]) -> Result<(), PeerError> {
        let kind = if binary { MessageKind::Binary } else { MessageKind::Text };
        self.association()?.send(now, ChannelId(id), kind, data).map_err(PeerError::Sctp)
    }

    /// Read the oldest message announced by [`PeerEvent::ChannelData`]:
    /// (channel id, binary, length written into `out`).
    pub fn read_data(&mut self, out: &mut [u8]) -> Result<(u16, bool, usize), PeerError> {
        let (id, kind, n) = self.association()?.read_message(out).map_err(PeerError::Sctp)?;
        Ok((id.0, kind == MessageKind::Binary, n))
    }

    /// The label of data channel `id` (until its `ChannelClosed` is polled).
    pub fn channel_label(&self, id: u16) -> Option<&str> {
        self.sctp.as_ref()?.channel_label(ChannelId(id))
    }

    /// The sub-protocol of data channel `id` (`""` for none).
    pub fn channel_protocol(&self, id: u16) -> Option<&str> {
        self.sctp.as_ref()?.channel_protocol(ChannelId(id))
    }

    /// The options of data channel `id` (as its opener asked for).
    pub fn channel_config(&self, id: u16) -> Option<ChannelConfig> {
        self.sctp.as_ref()?.channel_config(ChannelId(id))
    }

    /// Bytes of data channel messages queued or in flight (all channels).
    pub fn buffered_amount(&self) -> usize {
        self.sctp.as_ref().map_or(0, |a| a.buffered_amount())
    }

    /// Counters of the data channel transport (SCTP), once negotiated.
    pub fn data_stats(&self) -> Option<sctp::SctpStats> {
        self.sctp.as_ref().map(|a| a.stats())
    }

    /// Ask the remote for a keyframe of the video we receive (PLI).
    pub fn request_keyframe(&mut self) -> Result<(), PeerError> {
        let t = self
            .video
            .as_mut()
            .filter(|t| t.direction.receives() && t.feedback.contains(Feedback::PLI))
            .ok_or(PeerError::NotSending)?;
        t.pli_pending = true;
        Ok(())
    }

    /// Start sending one frame of `kind` with RTP timestamp `timestamp`
    /// (90 kHz for video, the codec clock for audio). H.264 frames are
    /// Annex-B access units; VP8 frames are raw; Opus one packet; G.711
    /// samples. Drain the returned writer with
    /// [`MediaWriter::next_packet`] to get the SRTP datagrams.
    pub fn send_frame<'p, 'f>(
        &'p mut self,
        now: Instant,
        kind: MediaKind,
        frame: &'f [u8],
        timestamp: u32,
    ) -> Result<MediaWriter<'p, 'f, STREAMS, TXH>, PeerError> {
        let destination = self.ice.selected.ok_or(PeerError::NotSending)?;
        let srtp = self.srtp_tx.as_mut().ok_or(PeerError::NotSending)?;
        let track = match kind {
            MediaKind::Video => self.video.as_mut(),
            MediaKind::Audio => self.audio.as_mut(),
            _ => None,
        };
        let track = track.filter(|t| t.direction.sends()).ok_or(PeerError::NotSending)?;
        track.last_rtp = Some((now, timestamp));
        track.stats.frames_sent += 1;
        let payloader = match track.codec {
            CodecChoice::H264ConstrainedBaseline | CodecChoice::H264Baseline => {
                AnyPayloader::H264(H264Payloader::new(frame))
            }
            CodecChoice::Vp8 => {
                track.vp8_picture_id = track.vp8_picture_id.wrapping_add(1) & 0x7fff;
                AnyPayloader::Vp8(Vp8Payloader::new(frame, track.vp8_picture_id))
            }
            CodecChoice::Opus => AnyPayloader::Opus(OpusPayloader::new(frame)),
            CodecChoice::Pcmu | CodecChoice::Pcma => AnyPayloader::G711(G711Payloader::new(frame, 160)),
        };
        let history = if kind == MediaKind::Video { self.recovery.history() } else { None };
        Ok(MediaWriter {
            packets: track.packetizer.frame(payloader, timestamp),
            srtp,
            stats: &mut track.stats,
            history,
            now,
            destination,
        })
    }

    /// Write the next datagram to send into `buf` (at least the MTU).
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if let Some(a) = self.agent.as_mut() {
            let t = a.poll_transmit(now, buf);
            self.drain_agent(now);
            if let Some(t) = t {
                return Some(Transmit { source: None, ..t });
            }
        }
        while let Some(r) = self.ice.poll_transmit(buf) {
            if let Ok((destination, len)) = r {
                return Some(Transmit { source: None, destination, len });
            }
        }
        let destination = self.ice.selected?;
        if let Some(d) = self.dtls.as_mut() {
            if let Some(len) = d.poll_transmit(now, buf) {
                return Some(Transmit { source: None, destination, len });
            }
            // One SCTP packet into one DTLS record.
            if let (Some(a), true) = (self.sctp.as_mut(), d.is_connected()) {
                if let Some(n) = a.poll_transmit(now, buf) {
                    let sent = d.send_application_data(buf.get(..n).unwrap_or(&[]));
                    if sent.is_ok() {
                        if let Some(len) = d.poll_transmit(now, buf) {
                            return Some(Transmit { source: None, destination, len });
                        }
                    }
                }
            }
        }
        if self.state == PeerState::Connected {
            if let Some(len) = self.write_recovery(now, buf) {
                return Some(Transmit { source: None, destination, len });
            }
            if let Some(len) = self.write_rtcp(now, buf) {
                return Some(Transmit { source: None, destination, len });
            }
        }
        None
    }

    fn write_rtcp(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let due = self.next_rtcp.is_some_and(|t| now >= t);
        let pli = self.video.as_ref().is_some_and(|t| t.pli_pending && t.remote_ssrc.is_some());
        if !due && !pli {
            return None;
        }
        let limit = usize::from(self.config.mtu).min(buf.len()).checked_sub(SRTCP_MAX_OVERHEAD)?;
        let mut w = CompoundWriter::new(buf.get_mut(..limit)?);
        let ntp = ntp_from_instant(now);
        if due {
            self.next_rtcp = Some(now + self.config.rtcp_interval);
            let mut blocks: Vec<crate::rtcp::wire::ReportBlock, 2> = Vec::new();
            for t in [self.video.as_mut(), self.audio.as_mut()].into_iter().flatten() {
                if let Some(b) = t.report_block(now) {
                    let _ = blocks.push(b);
                }
            }
            let mut first = true;
            let mut reporter = self.audio_ssrc;
            for t in [self.video.as_ref(), self.audio.as_ref()].into_iter().flatten() {
                if !t.direction.sends() || t.last_rtp.is_none() {
                    continue;
                }
                let info = SenderInfo {
                    ntp_time: ntp,
                    rtp_time: t.rtp_time_at(now),
                    packet_count: t.stats.packets_sent as u32,
                    octet_count: t.stats.bytes_sent as u32,
                };
                let rbs: &[_] = if first { &blocks } else { &[] };
                w.sender_report(t.local_ssrc, &info, rbs).ok()?;
                if first {
                    reporter = t.local_ssrc;
                }
                first = false;
            }
            if first {
                w.receiver_report(reporter, &blocks).ok()?;
            }
            w.sdes_cname(reporter, self.cname.as_bytes()).ok()?;
        }
        if let Some(t) = self.video.as_mut().filter(|t| t.pli_pending) {
            if let Some(remote) = t.remote_ssrc {
                w.pli(t.local_ssrc, remote).ok()?;
                t.pli_pending = false;
                t.stats.keyframe_requests_sent += 1;
            }
        }
        let len = w.len();
        if len == 0 {
            return None;
        }
        self.srtp_tx.as_mut()?.protect_rtcp(buf, len).ok()
    }

    pub fn poll_event(&mut self) -> Option<PeerEvent> {
        self.events.pop_front().or_else(|| self.poll_sctp_event())
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == PeerState::Closed {
            return None;
        }
        let dtls = self.dtls.as_ref().and_then(|d| d.poll_timeout());
        let sctp = self.sctp.as_ref().and_then(|a| a.poll_timeout());
        let agent = self.agent.as_ref().and_then(|a| a.poll_timeout());
        // Lite mode watches consent itself; the full agent does its own.
        let consent = self
            .ice
            .last_check
            .filter(|_| self.connected_at.is_some() && self.agent.is_none())
            .map(|t| t + self.config.consent_timeout);
        let recovery = self.recovery.poll_timeout().filter(|_| self.state == PeerState::Connected);
        [agent, dtls, sctp, self.next_rtcp, consent, recovery].into_iter().flatten().min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(a) = self.agent.as_mut() {
            a.handle_timeout(now);
        }
        self.drain_agent(now);
        if let Some(d) = self.dtls.as_mut() {
            d.handle_timeout(now);
        }
        self.drain_dtls(now);
        if let Some(a) = self.sctp.as_mut() {
            a.handle_timeout(now);
        }
        self.recovery.handle_timeout(now);
        if self.connected_at.is_some() && self.agent.is_none() {
            if let Some(last) = self.ice.last_check {
                if now >= last + self.config.consent_timeout {
                    self.fail(PeerFailure::ConsentLost);
                }
            }
        }
    }

    /// Close the session (DTLS close_notify is queued for `poll_transmit`).
    pub fn close(&mut self) {
        if let Some(d) = self.dtls.as_mut() {
            d.close();
        }
        self.state = PeerState::Closed;
    }

    pub fn stats(&self) -> PeerStats {
        PeerStats {
            state: self.state,
            selected_remote: self.ice.selected,
            nominated: self.ice.nominated,
            ice: self.ice.stats,
            video: self.video.as_ref().map(|t| self.recovery.add_counters(t.stats)).unwrap_or_default(),
            audio: self.audio.as_ref().map(|t| t.stats).unwrap_or_default(),
            srtp_dropped: self.srtp_dropped,
            datagrams_dropped: self.datagrams_dropped,
        }
    }

    /// The negotiated codec and payload type of `kind`, if any.
    pub fn codec(&self, kind: MediaKind) -> Option<(CodecChoice, u8)> {
        let t = match kind {
            MediaKind::Video => self.video.as_ref(),
            MediaKind::Audio => self.audio.as_ref(),
            _ => None,
        };
        t.map(|t| (t.codec, t.payload_type))
    }
}

/// What negotiation decided, copied out of the borrowed descriptions.
struct Outcome {
    ufrag: String<MAX_UFRAG_LEN>,
    pwd: String<MAX_PWD_LEN>,
    fingerprint: crate::dtls::Fingerprint,
    local_setup: Setup,
    media: Vec<sdp::NegotiatedMedia<'static>, { sdp::MAX_MEDIA_SECTIONS }>,
    offerer: bool,
    remote_ice_lite: bool,
    /// Remote candidates for the full ICE agent (mDNS and TCP ones are kept
    /// by the agent unpaired).
    candidates: Vec<crate::ice::Candidate, { sdp::MAX_CANDIDATES }>,
}

impl Outcome {
    fn of(neg: &sdp::Negotiated<'_>, offerer: bool) -> Result<Outcome, PeerError> {
        let mut media = Vec::new();
        for m in &neg.media {
            let _ = media.push(sdp::NegotiatedMedia { mid: "", ..*m });
        }
        let mut candidates = Vec::new();
        for c in &neg.remote_candidates {
            let mut line: String<256> = String::new();
            if write!(line, "{c}").is_ok() {
                if let Ok(ic) = crate::ice::Candidate::parse(&line) {
                    let _ = candidates.push(ic);
                }
            }
        }
        Ok(Outcome {
            offerer,
            remote_ice_lite: neg.remote_ice_lite,
            candidates,
            ufrag: String::try_from(neg.remote_ice_ufrag).map_err(|_| PeerError::CredentialsTooLong)?,
            pwd: String::try_from(neg.remote_ice_pwd).map_err(|_| PeerError::CredentialsTooLong)?,
            fingerprint: to_dtls_fingerprint(&neg.remote_fingerprint)?,
            local_setup: neg.local_setup,
            media,
        })
    }
}

enum AnyPayloader<'f> {
    H264(H264Payloader<'f>),
    Vp8(Vp8Payloader<'f>),
    Opus(OpusPayloader<'f>),
    G711(G711Payloader<'f>),
}

impl core::fmt::Debug for AnyPayloader<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("AnyPayloader")
    }
}

impl Payloader for AnyPayloader<'_> {
    fn next_payload(&mut self, buf: &mut [u8]) -> Option<Result<Chunk, crate::rtp::Error>> {
        match self {
            AnyPayloader::H264(p) => p.next_payload(buf),
            AnyPayloader::Vp8(p) => p.next_payload(buf),
            AnyPayloader::Opus(p) => p.next_payload(buf),
            AnyPayloader::G711(p) => p.next_payload(buf),
        }
    }
}

/// The SRTP datagrams of one frame, written one at a time.
#[allow(private_interfaces)]
#[derive(Debug)]
pub struct MediaWriter<'p, 'f, const STREAMS: usize, const TXH: usize> {
    packets: FramePackets<'p, AnyPayloader<'f>>,
    srtp: &'p mut SrtpContextN<STREAMS>,
    stats: &'p mut TrackStats,
    /// The video send history (NACK answers), when recovery is on.
    history: Option<&'p mut crate::rtp::sender::RtpSender<[u8; TXH]>>,
    now: Instant,
    destination: SocketAddr,
}

impl<const STREAMS: usize, const TXH: usize> MediaWriter<'_, '_, STREAMS, TXH> {
    /// Write the next protected packet into `buf` (at least the MTU);
    /// `None` when the frame is done.
    pub fn next_packet(&mut self, buf: &mut [u8]) -> Option<Result<Transmit, PeerError>> {
        let len = match self.packets.next_packet(buf)? {
            Ok(n) => n,
            Err(e) => return Some(Err(PeerError::Rtp(e))),
        };
        let payload = RtpPacket::new_checked(&buf[..len]).map(|p| p.payload().len()).unwrap_or(0);
        if let Some(h) = self.history.as_mut() {
            let _ = h.handle_sent(self.now, &buf[..len]);
        }
        match self.srtp.protect_rtp(buf, len) {
            Ok(n) => {
                self.stats.packets_sent += 1;
                self.stats.bytes_sent += payload as u64;
                Some(Ok(Transmit { source: None, destination: self.destination, len: n }))
            }
            Err(e) => Some(Err(PeerError::Srtp(e))),
        }
    }
}

#[cfg(test)]
mod tests;
