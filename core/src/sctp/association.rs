//! One SCTP association carrying WebRTC data channels: the subset of
//! RFC 9260 that data channels use, partial reliability (RFC 3758), stream
//! reset (RFC 6525) and DCEP (RFC 8832), over whatever carries its packets
//! (DTLS application data in WebRTC, RFC 8261).
//!
//! Implemented:
//! - RFC 9260 5.1/5.2: four-way handshake with a stateless HMAC-SHA256 state
//!   cookie, simultaneous INIT (both WebRTC ends may initiate), 8.5 tag rules.
//!   DATA, SACK, HEARTBEAT or FORWARD-TSN from the peer imply a lost
//!   COOKIE-ACK; a cookie older than its 60 s lifetime is replaced by a new
//!   INIT instead of being echoed again.
//! - 6.1/6.2: DATA with fragmentation and reassembly, ordered and unordered
//!   delivery, SACK with gap blocks and duplicate TSNs, delayed ack (every
//!   second packet or 200 ms), receiver window (a_rwnd) both ways (ours
//!   counts free chunk slots as well as bytes), zero window probing;
//!   out-of-order chunks are kept only while the chunks still missing
//!   below them fit too, reneging is a last resort.
//! - RFC 7053: the I bit (immediate SACK) on the last queued chunk after a
//!   send was refused for lack of buffer; honoured when received.
//! - 6.3: RTO from SRTT/RTTVAR (Karn's rule: samples only from chunks sent
//!   once, timed on the newest one a SACK newly acknowledges), exponential
//!   backoff capped at RTO.Max (1 s by default, see [`DEFAULT_RTO_MAX`]),
//!   T3-rtx; 7.2.4 fast retransmit on three miss indications with fast
//!   recovery. A HEARTBEAT is sent on demand when backoff reaches the cap,
//!   so a path slower than RTO.Max still gets a valid RTT sample.
//! - 7.2: congestion control: cwnd, ssthresh, slow start, congestion
//!   avoidance (partial_bytes_acked).
//! - 8.1/8.3: HEARTBEAT on an idle path; the association ends after
//!   `max_retransmits` consecutive failures (T1, T3 or heartbeat).
//! - 9.2: graceful SHUTDOWN, and ABORT both ways.
//! - RFC 3758: FORWARD-TSN for messages abandoned by max-retransmits or
//!   lifetime (both sender and receiver side); until the peer acknowledges
//!   it, FORWARD-TSN rides ahead of the DATA in every packet (3.5 F2).
//! - RFC 6525: Outgoing SSN Reset Request / Response, used to close channels.
//! - RFC 8832: DATA_CHANNEL_OPEN / ACK; pre-negotiated channels (no DCEP).
//!
//! Left out: multi-homing (one path), restart of an established association
//! (a new INIT is ignored), the Stale Cookie ERROR (a stale cookie is
//! dropped silently), ECN, AUTH, I-DATA, ASCONF, stream priorities,
//! Incoming SSN reset requests (answered "nothing to do"), path MTU discovery
//! (the packet size is configured).
//!
//! # Memory
//!
//! [`SctpAssociationN`] owns all of its storage; see the const parameters.
//! `SEND`: bytes of user data queued or in flight; `RECV`: bytes of received
//! data being reassembled or waiting to be read (also the largest message we
//! accept, and our advertised window); `STREAMS`: open channels at once;
//! `CHUNKS`: DATA chunks tracked each way (in flight, and received out of
//! order or unread).

use rand_core::{CryptoRng, RngCore};

use super::dcep::{ppid, ChannelType, DcepMessage, Reliability};
use super::wire::{
    self, cause, data_flags, parse_packet, reconfig_result, Chunk, CommonHeader, DataChunk, ForwardTsnChunk, InitChunk,
    PacketWriter, ReconfigParam, ReconfigParams, SackChunk, WireError, COMMON_HEADER_LEN, DATA_HEADER_LEN,
};
use crate::bytes::{Reader, Writer};
use crate::crypto::{ct_eq, hmac_sha256};
use crate::time::{Duration, Instant};

/// Longest channel label we keep (bytes). A DATA_CHANNEL_OPEN with a longer
/// label is refused (the stream is reset). Costs this many bytes per channel.
pub const MAX_LABEL_LEN: usize = 64;
/// Longest sub-protocol name we keep (bytes), as for labels.
pub const MAX_PROTOCOL_LEN: usize = 32;
/// Largest state cookie we can echo (bytes; usrsctp's cookies hold a copy of
/// both INIT chunks). Costs this many bytes once per association.
pub const MAX_COOKIE_LEN: usize = 512;
/// Largest HEARTBEAT information we can echo back (bytes).
pub const MAX_HEARTBEAT_INFO_LEN: usize = 128;
/// TSNs beyond the cumulative ack point we track when received out of order
/// (a 256-bit map: 32 bytes). DATA further ahead is dropped.
pub const RX_TSN_WINDOW: u32 = 256;
/// Gap Ack Blocks reported per SACK (each costs 4 bytes of a stack buffer).
pub const MAX_GAP_BLOCKS: usize = 16;
/// Duplicate TSNs remembered for the next SACK (4 bytes each).
pub const MAX_DUP_TSNS: usize = 8;
/// Streams named in one stream reset request (2 bytes each).
pub const MAX_RESET_STREAMS: usize = 16;
/// Largest user data in one DATA chunk (bytes; a stack buffer of this size
/// is used while emitting). Packets are also bounded by `SctpConfig::mtu`.
pub const MAX_CHUNK_PAYLOAD: usize = 2048;
/// The SCTP port WebRTC uses on both sides (RFC 8841).
pub const DEFAULT_PORT: u16 = 5000;
/// The max-message-size assumed for a peer that does not announce one
/// (RFC 8841 section 6.1).
pub const DEFAULT_PEER_MAX_MESSAGE_SIZE: usize = 65536;

const STATE_COOKIE_LIFETIME: Duration = Duration::from_secs(60);
const COOKIE_BODY_LEN: usize = 36;
const COOKIE_LEN: usize = COOKIE_BODY_LEN + 32;
const NUM_STREAMS_ADVERTISED: u16 = 65535;

/// Default RTO.Max: how far exponential backoff (RFC 9260 6.3.3 E2) may
/// stretch a retransmission timer (T1, T2, T3, RE-CONFIG) beyond the RTO
/// computed from RTT samples.
///
/// RFC 9260 section 16 says 60 s. WebRTC stacks cut it because a few lost
/// retransmissions in a row then leave a data channel idle for up to a
/// minute after the path has recovered: Chromium's dcsctp caps backoff at
/// 3 s, libdatachannel and GStreamer set 10 s. We use 1 s: on a path losing
/// 30% each way, a retransmission round (a packet and its SACK) fails with
/// probability 0.26 to 0.51, so runs of several failed rounds are common.
/// With 3 s rounds, a partially reliable sender offering 10 KiB/s into a
/// 64 KiB buffer was blocked for 5 s or more in 22 of 300 one-minute runs
/// (the `datachannel_netsim` scenario), with 1 s never for more than 3.6 s.
/// The cost is small: on a dead path one packet per second until
/// `max_retransmits` ends the association (~10 s).
///
/// Backoff never shortens a timer below the computed RTO, so a path whose
/// RTT exceeds this (satellite, bufferbloat) still gets RTT-based timers
/// (the computed RTO itself is capped at [`RTO_CEILING`]).
pub const DEFAULT_RTO_MAX: Duration = Duration::from_secs(1);
/// Upper bound of the RTO computed from RTT samples: RFC 9260's RTO.Max
/// default, kept as a sanity bound for absurd measurements.
pub const RTO_CEILING: Duration = Duration::from_secs(60);
/// Default Max.Init.Retransmits. RFC 9260 says 8; on a path losing 30%
/// each way an attempt (the chunk and its answer) succeeds with probability
/// 0.49, so 9 attempts fail with probability 0.51^9 (one handshake in ~430).
/// With 16, each handshake phase (INIT, then COOKIE-ECHO) fails with
/// probability 0.51^17 (about 1e-5) and, with the 1 s RTO.Max, gives up
/// after ~16 s; that also stays far below the 60 s state cookie lifetime,
/// so retransmitted COOKIE-ECHOs never go stale.
pub const DEFAULT_MAX_INIT_RETRANSMITS: u32 = 16;

/// Association parameters. `Default` gives RFC 9260 section 16 values with a
/// 1200-byte packet (what fits in DTLS over IPv6 with any tunnel), except
/// the RTO bounds and the handshake retransmission limit: like Chromium's
/// data channel SCTP (dcsctp), RTO.Initial is 500 ms and RTO.Min 400 ms
/// instead of 1 s, because data channels carry latency-sensitive traffic;
/// RTO.Max is [`DEFAULT_RTO_MAX`] and Max.Init.Retransmits
/// [`DEFAULT_MAX_INIT_RETRANSMITS`] (see there why).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SctpConfig {
    pub local_port: u16,
    pub remote_port: u16,
    /// Largest SCTP packet we emit (bytes, common header included).
    pub mtu: usize,
    /// RTO.Initial: the retransmission timeout before any RTT sample.
    pub rto_initial: Duration,
    /// RTO.Min: lower bound of the computed RTO.
    pub rto_min: Duration,
    /// RTO.Max: the longest a retransmission timer grows by exponential
    /// backoff (RFC 9260 6.3.3 E2, 6.3.1 C7), unless the RTO computed from
    /// RTT samples is longer still: that one is used as is (a timer never
    /// fires before the measured RTO). See [`DEFAULT_RTO_MAX`].
    pub rto_max: Duration,
    /// Max.Init.Retransmits: INIT / COOKIE-ECHO retransmissions before
    /// giving up (counted per phase).
    pub max_init_retransmits: u32,
    /// Association.Max.Retrans: consecutive T3/heartbeat failures before the
    /// association is declared lost.
    pub max_retransmits: u32,
    /// HB.interval: heartbeat period on an idle path.
    pub heartbeat_interval: Duration,
    /// Delayed SACK timer.
    pub delayed_ack: Duration,
    /// The peer's `a=max-message-size` from SDP (0 means "no limit" in SDP:
    /// pass `usize::MAX`). `send` refuses larger messages.
    pub peer_max_message_size: usize,
}

impl Default for SctpConfig {
    fn default() -> Self {
        SctpConfig {
            local_port: DEFAULT_PORT,
            remote_port: DEFAULT_PORT,
            mtu: 1200,
            rto_initial: Duration::from_millis(500),
            rto_min: Duration::from_millis(400),
            rto_max: DEFAULT_RTO_MAX,
            max_init_retransmits: DEFAULT_MAX_INIT_RETRANSMITS,
            max_retransmits: 10,
            heartbeat_interval: Duration::from_secs(30),
            delayed_ack: Duration::from_millis(200),
            peer_max_message_size: DEFAULT_PEER_MAX_MESSAGE_SIZE,
        }
    }
}

/// Our DTLS role: it decides stream id parity for channels we open
/// (RFC 8832 section 6: the DTLS client uses even ids, the server odd ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Role {
    Client,
    Server,
}

/// A data channel, named by its SCTP stream identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ChannelId(pub u16);

/// How to open a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ChannelConfig {
    pub ordered: bool,
    pub reliability: Reliability,
    /// DCEP priority (carried, not used for scheduling).
    pub priority: u16,
    /// `Some(id)`: a pre-negotiated channel on stream `id`; no DCEP is sent
    /// and both ends must open it with the same id and parameters.
    pub negotiated: Option<u16>,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        ChannelConfig { ordered: true, reliability: Reliability::Reliable, priority: 256, negotiated: None }
    }
}

/// A message is UTF-8 text (PPID 51/56) or binary (PPID 53/57).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MessageKind {
    Text,
    Binary,
}

/// Why the association ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LostReason {
    /// Graceful SHUTDOWN completed (either side started it).
    Shutdown,
    /// The peer sent ABORT.
    PeerAbort,
    /// We aborted (`abort()` or a protocol violation by the peer).
    LocalAbort,
    /// INIT/COOKIE-ECHO went unanswered `max_init_retransmits` times.
    HandshakeTimeout,
    /// `max_retransmits` consecutive retransmission or heartbeat failures.
    Timeout,
    /// The peer broke the protocol (e.g. acknowledged data never sent, or
    /// sent a message larger than our max-message-size); we sent ABORT.
    ProtocolViolation,
}

/// A channel label (at most [`MAX_LABEL_LEN`] bytes).
pub type Label = heapless::String<MAX_LABEL_LEN>;

/// What happened, in order. Poll until `None` after every `handle_*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    AssociationEstablished,
    AssociationLost {
        reason: LostReason,
    },
    /// A channel is usable: opened by the peer (DATA_CHANNEL_OPEN received),
    /// by us (DATA_CHANNEL_ACK received), or pre-negotiated (once the
    /// association is up).
    ChannelOpened {
        id: ChannelId,
        label: Label,
        by_peer: bool,
    },
    /// Both directions of the channel's stream were reset.
    ChannelClosed {
        id: ChannelId,
    },
    /// A whole message is ready: read it with `read_message` (messages are
    /// read in the order of these events; unread ones hold receive space).
    MessageReceived {
        channel: ChannelId,
        kind: MessageKind,
        len: usize,
    },
}

/// Errors of the user-facing calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SctpError {
    /// The send buffer (bytes or chunk slots) is full: retry after acks.
    WouldBlock,
    /// Larger than the peer's max-message-size or than our send buffer.
    MessageTooLarge,
    /// No such channel, or it is closing.
    UnknownChannel,
    /// All `STREAMS` channel slots are in use, or no stream id is free.
    TooManyChannels,
    /// A label or protocol longer than [`MAX_LABEL_LEN`]/[`MAX_PROTOCOL_LEN`].
    LabelTooLong,
    /// The association is closed, closing or lost.
    NotConnected,
    /// No message has been announced by `MessageReceived`.
    NoMessage,
    /// The caller's buffer is smaller than the message (`needed` bytes); the
    /// message stays queued.
    BufferTooSmall { needed: usize },
    /// An incoming packet was malformed or failed its checksum.
    Malformed(WireError),
    /// An incoming packet carried the wrong verification tag.
    BadVerificationTag,
    /// A stream id already in use (pre-negotiated channel).
    ChannelIdInUse,
}

/// Counters and current transport figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SctpStats {
    pub packets_sent: u64,
    pub packets_received: u64,
    /// Packets dropped: checksum, malformed, wrong tag, out of the blue.
    pub packets_dropped: u64,
    pub data_chunks_sent: u64,
    pub data_chunks_received: u64,
    pub retransmitted_chunks: u64,
    pub fast_retransmits: u64,
    pub t3_timeouts: u64,
    /// Chunks given up (partial reliability) by us as sender.
    pub chunks_abandoned: u64,
    /// Received DATA chunks dropped for lack of reassembly space/window.
    pub rx_chunks_dropped: u64,
    pub duplicate_chunks_received: u64,
    pub messages_sent: u64,
    pub messages_received: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub cwnd: u32,
    pub ssthresh: u32,
    pub peer_rwnd: u32,
    pub flight_size: u32,
    pub srtt_ms: u32,
    pub rto_ms: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    CookieWait,
    CookieEchoed,
    Established,
    ShutdownPending,
    ShutdownSent,
    ShutdownReceived,
    ShutdownAckSent,
    /// Ended; `lost` holds the reason.
    Dead,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxState {
    /// Never sent.
    Pending,
    /// Sent, not acknowledged.
    Sent,
    /// Acknowledged by a gap block (may be reneged).
    GapAcked,
    /// Given up (partial reliability): covered by FORWARD-TSN.
    Abandoned,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pr {
    None,
    Rtx(u32),
    Expiry(Instant),
}

#[derive(Debug, Clone, Copy)]
struct TxChunk {
    stream: u16,
    ssn: u16,
    ppid: u32,
    flags: u8,
    len: u16,
    off: u32,
    state: TxState,
    /// Marked for retransmission.
    rtx: bool,
    fast_rtx_done: bool,
    miss: u8,
    tx_count: u32,
    sent_at: Instant,
    pr: Pr,
}

const EMPTY_TX: TxChunk = TxChunk {
    stream: 0,
    ssn: 0,
    ppid: 0,
    flags: 0,
    len: 0,
    off: 0,
    state: TxState::Pending,
    rtx: false,
    fast_rtx_done: false,
    miss: 0,
    tx_count: 0,
    sent_at: Instant::ZERO,
    pr: Pr::None,
};

#[derive(Debug, Clone, Copy)]
struct RxChunk {
    tsn: u32,
    stream: u16,
    ssn: u16,
    ppid: u32,
    flags: u8,
    len: u16,
    off: u32,
    /// Delivery order number (0: not delivered yet).
    ready: u32,
    announced: bool,
}

const EMPTY_RX: RxChunk =
    RxChunk { tsn: 0, stream: 0, ssn: 0, ppid: 0, flags: 0, len: 0, off: 0, ready: 0, announced: false };

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChannelState {
    /// We sent DATA_CHANNEL_OPEN; waiting for the ACK.
    Opening,
    Open,
    /// `close_channel` was called, or the peer reset its stream.
    Closing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutReset {
    None,
    Requested,
    InFlight,
    Done,
}

#[derive(Debug, Clone)]
struct Channel {
    id: u16,
    label: Label,
    protocol: heapless::String<MAX_PROTOCOL_LEN>,
    config: ChannelConfig,
    state: ChannelState,
    by_peer: bool,
    next_ssn_out: u16,
    next_ssn_in: u16,
    out_reset: OutReset,
    in_reset: bool,
    open_event: Option<u32>,
    close_event: Option<u32>,
}

#[derive(Debug, Clone, Copy)]
struct PeerInit {
    tag: u32,
    initial_tsn: u32,
    a_rwnd: u32,
    forward_tsn: bool,
    reconfig: bool,
}

/// An SCTP association with data channels; see the module docs.
///
/// Const parameters and their memory cost (add ~1.5 KiB of fixed state):
/// - `SEND`: send buffer bytes (costs `SEND` bytes). Bounds the data queued
///   plus in flight, and the largest message we can send.
/// - `RECV`: receive buffer bytes (costs `RECV` bytes). Bounds reassembly and
///   unread messages, and is our advertised window and max-message-size.
/// - `STREAMS`: channels open at once (about 160 bytes each).
/// - `CHUNKS`: DATA chunks tracked in each direction (about 48 bytes sent +
///   24 bytes received each); at least `SEND` / 1172 and `RECV` / 1172.
///   Our advertised window is capped at the free slots times the peer's
///   usual chunk size, so with small messages `CHUNKS` rather than `RECV`
///   bounds what the peer may have in flight.
#[derive(Debug)]
pub struct SctpAssociationN<const SEND: usize, const RECV: usize, const STREAMS: usize, const CHUNKS: usize> {
    config: SctpConfig,
    role: Role,
    state: State,
    lost: Option<LostReason>,
    cookie_key: [u8; 32],
    my_tag: u32,
    my_initial_tsn: u32,
    peer: Option<PeerInit>,
    cookie: heapless::Vec<u8, MAX_COOKIE_LEN>,

    // Pending control output.
    send_init: bool,
    send_cookie_echo: bool,
    init_ack_reply: Option<PeerInit>,
    send_cookie_ack: bool,
    send_shutdown: bool,
    send_shutdown_ack: bool,
    send_shutdown_complete: Option<bool>,
    send_abort: Option<u16>,
    send_heartbeat: bool,
    heartbeat_ack: heapless::Vec<u8, MAX_HEARTBEAT_INFO_LEN>,
    send_heartbeat_ack: bool,
    send_forward_tsn: bool,
    /// A FORWARD-TSN was bundled but no DATA followed; bundle no more until
    /// DATA goes out (a guard, see `poll_transmit`).
    forward_tsn_alone: bool,
    /// The last new DATA chunk went out as a zero window probe (RFC 9260
    /// 6.1): the peer's window was closed.
    zero_window_probing: bool,
    sack_now: bool,
    packets_since_sack: u32,

    // Timers.
    t1: Option<Instant>,
    t1_count: u32,
    /// When the (first) COOKIE-ECHO left: the handshake gives an RTT sample.
    cookie_echo_sent: Option<Instant>,
    /// When the INIT-ACK carrying `cookie` arrived.
    cookie_at: Instant,
    t3: Option<Instant>,
    t2: Option<Instant>,
    hb_timer: Option<Instant>,
    hb_outstanding: bool,
    hb_nonce: u64,
    ack_timer: Option<Instant>,
    reconfig_timer: Option<Instant>,
    error_count: u32,

    // RTT and congestion state.
    srtt: Option<Duration>,
    rttvar: Duration,
    rto: Duration,
    cwnd: usize,
    ssthresh: usize,
    partial_bytes_acked: usize,
    fast_recovery_exit: Option<u32>,
    peer_rwnd: usize,
    /// Starts an RTT measurement round (RFC 9260 6.3.1 C4): the first TSN
    /// sent since the last sample. The next SACK that newly acknowledges a
    /// chunk at or after it, sent only once (Karn, C5), gives one sample,
    /// timed on the most recently sent such chunk: timing the probe itself
    /// would count every SACK lost in between as round-trip time.
    rtt_probe: Option<u32>,
    /// One packet may ignore cwnd (after a T3 or fast retransmit).
    rtx_burst: bool,

    // Send side: a ring of chunks (TSN order) over a ring of bytes.
    tx: [TxChunk; CHUNKS],
    tx_first: usize,
    tx_count: usize,
    /// Chunks at the front that have been sent at least once.
    tx_sent: usize,
    /// TSN of `tx[tx_first]` (cumulative ack point + 1).
    tx_base_tsn: u32,
    tx_buf: [u8; SEND],
    tx_head: usize,
    tx_used: usize,
    adv_peer_ack: u32,
    /// A send was refused for lack of buffer since the last I bit.
    send_blocked: bool,

    // Receive side: chunks sorted by TSN; payloads contiguous in that order.
    rx: [RxChunk; CHUNKS],
    rx_len: usize,
    rx_buf: [u8; RECV],
    rx_used: usize,
    rx_cum_tsn: u32,
    rx_bits: [u64; 4],
    rx_dups: heapless::Vec<u32, MAX_DUP_TSNS>,
    rx_highest: u32,
    /// Running estimate of the payload size of the peer's DATA chunks
    /// (bytes): our window in chunk slots is this many bytes per free slot.
    rx_chunk_size: usize,

    // Stream reset (RFC 6525).
    my_next_req_seq: u32,
    reconfig_outstanding: Option<u32>,
    peer_next_req_seq: u32,
    reconfig_response: Option<(u32, u32)>,
    send_reconfig_response: bool,

    channels: [Option<Channel>; STREAMS],
    seq: u32,
    established_event: Option<u32>,
    lost_event: Option<u32>,
    stats: SctpStats,
}

/// An association with the default capacities: 64 KiB send and receive
/// buffers (so 64 KiB messages), 16 channels, 128 chunks each way; about
/// 145 KiB in total (`size_of` is printed by a test and in the README).
pub type SctpAssociation = SctpAssociationN<65536, 65536, 16, 128>;

fn tsn_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}
fn tsn_le(a: u32, b: u32) -> bool {
    a == b || tsn_lt(a, b)
}

impl<const SEND: usize, const RECV: usize, const STREAMS: usize, const CHUNKS: usize>
    SctpAssociationN<SEND, RECV, STREAMS, CHUNKS>
{
    /// A new association, not yet connected. Call [`connect`](Self::connect)
    /// to send INIT, or wait for the peer's INIT. In WebRTC both ends may
    /// connect at the same time; that is handled.
    /// Capacities of zero would make the rings meaningless.
    const NONZERO: () = assert!(SEND > 0 && RECV > 0 && STREAMS > 0 && CHUNKS > 0, "SCTP capacities must be non-zero");

    pub fn new<R: RngCore + CryptoRng>(config: SctpConfig, role: Role, rng: &mut R) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::NONZERO;
        let mut cookie_key = [0u8; 32];
        rng.fill_bytes(&mut cookie_key);
        let my_tag = loop {
            let t = rng.next_u32();
            if t != 0 {
                break t;
            }
        };
        let my_initial_tsn = rng.next_u32();
        let mtu = config.mtu;
        SctpAssociationN {
            config,
            role,
            state: State::Closed,
            lost: None,
            cookie_key,
            my_tag,
            my_initial_tsn,
            peer: None,
            cookie: heapless::Vec::new(),
            send_init: false,
            send_cookie_echo: false,
            init_ack_reply: None,
            send_cookie_ack: false,
            send_shutdown: false,
            send_shutdown_ack: false,
            send_shutdown_complete: None,
            send_abort: None,
            send_heartbeat: false,
            heartbeat_ack: heapless::Vec::new(),
            send_heartbeat_ack: false,
            send_forward_tsn: false,
            forward_tsn_alone: false,
            zero_window_probing: false,
            sack_now: false,
            packets_since_sack: 0,
            t1: None,
            t1_count: 0,
            cookie_echo_sent: None,
            cookie_at: Instant::ZERO,
            t3: None,
            t2: None,
            hb_timer: None,
            hb_outstanding: false,
            hb_nonce: rng.next_u64(),
            ack_timer: None,
            reconfig_timer: None,
            error_count: 0,
            srtt: None,
            rttvar: Duration::ZERO,
            rto: config.rto_initial,
            cwnd: (4 * mtu).min((2 * mtu).max(4380)),
            ssthresh: usize::MAX,
            partial_bytes_acked: 0,
            fast_recovery_exit: None,
            peer_rwnd: 0,
            rtt_probe: None,
            rtx_burst: false,
            tx: [EMPTY_TX; CHUNKS],
            tx_first: 0,
            tx_count: 0,
            tx_sent: 0,
            tx_base_tsn: my_initial_tsn,
            tx_buf: [0; SEND],
            tx_head: 0,
            tx_used: 0,
            adv_peer_ack: my_initial_tsn.wrapping_sub(1),
            send_blocked: false,
            rx: [EMPTY_RX; CHUNKS],
            rx_len: 0,
            rx_buf: [0; RECV],
            rx_used: 0,
            rx_cum_tsn: 0,
            rx_bits: [0; 4],
            rx_dups: heapless::Vec::new(),
            rx_highest: 0,
            rx_chunk_size: (RECV / CHUNKS).max(1),
            my_next_req_seq: my_initial_tsn,
            reconfig_outstanding: None,
            peer_next_req_seq: 0,
            reconfig_response: None,
            send_reconfig_response: false,
            channels: core::array::from_fn(|_| None),
            seq: 0,
            established_event: None,
            lost_event: None,
            stats: SctpStats::default(),
        }
    }

    /// Start the handshake (send INIT).
    pub fn connect(&mut self, now: Instant) {
        if self.state == State::Closed {
            self.state = State::CookieWait;
            self.send_init = true;
            self.t1 = Some(now + self.rto);
            self.t1_count = 0;
        }
    }

    /// True once the handshake completed (and until shutdown/loss).
    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Established | State::ShutdownPending | State::ShutdownReceived)
    }

    /// Why the association ended, once it has.
    pub fn lost_reason(&self) -> Option<LostReason> {
        self.lost
    }

    /// Our max-message-size to announce in SDP (`a=max-message-size`): the
    /// largest message our receive buffer can reassemble.
    pub fn max_message_size(&self) -> usize {
        RECV
    }

    /// Set the peer's max-message-size from its SDP.
    pub fn set_peer_max_message_size(&mut self, size: usize) {
        self.config.peer_max_message_size = size;
    }

    pub fn stats(&self) -> SctpStats {
        let mut s = self.stats;
        s.cwnd = self.cwnd.min(u32::MAX as usize) as u32;
        s.ssthresh = self.ssthresh.min(u32::MAX as usize) as u32;
        s.peer_rwnd = self.peer_rwnd.min(u32::MAX as usize) as u32;
        s.flight_size = self.flight_size() as u32;
        s.srtt_ms = self.srtt.map(|d| d.as_millis() as u32).unwrap_or(0);
        s.rto_ms = self.rto.as_millis() as u32;
        s
    }

    /// Bytes of user data queued or in flight (not yet acknowledged).
    pub fn buffered_amount(&self) -> usize {
        self.tx_used
    }

    fn next_seq(&mut self) -> u32 {
        self.seq += 1;
        self.seq
    }

    fn max_payload(&self) -> usize {
        self.config.mtu.saturating_sub(COMMON_HEADER_LEN + DATA_HEADER_LEN).min(MAX_CHUNK_PAYLOAD) & !3
    }

    // ------------------------------------------------------------ channels

    fn channel(&self, id: u16) -> Option<&Channel> {
        self.channels.iter().flatten().find(|c| c.id == id)
    }

    fn channel_mut(&mut self, id: u16) -> Option<&mut Channel> {
        self.channels.iter_mut().flatten().find(|c| c.id == id)
    }

    /// The label of an open channel.
    pub fn channel_label(&self, id: ChannelId) -> Option<&str> {
        self.channel(id.0).map(|c| c.label.as_str())
    }

    /// The sub-protocol of an open channel.
    pub fn channel_protocol(&self, id: ChannelId) -> Option<&str> {
        self.channel(id.0).map(|c| c.protocol.as_str())
    }

    /// The configuration of an open channel (as the opener asked for).
    pub fn channel_config(&self, id: ChannelId) -> Option<ChannelConfig> {
        self.channel(id.0).map(|c| c.config)
    }

    /// Open a data channel. With `config.negotiated = Some(id)` no DCEP is
    /// sent; otherwise DATA_CHANNEL_OPEN goes out on a free stream of our
    /// parity. Messages may be sent at once (before `ChannelOpened`).
    pub fn open_channel(
        &mut self,
        now: Instant,
        label: &str,
        protocol: &str,
        config: ChannelConfig,
    ) -> Result<ChannelId, SctpError> {
        if matches!(
            self.state,
            State::Dead
                | State::ShutdownPending
                | State::ShutdownSent
                | State::ShutdownReceived
                | State::ShutdownAckSent
        ) {
            return Err(SctpError::NotConnected);
        }
        let label_s = Label::try_from(label).map_err(|_| SctpError::LabelTooLong)?;
        let proto_s = heapless::String::try_from(protocol).map_err(|_| SctpError::LabelTooLong)?;
        let slot = self.channels.iter().position(|c| c.is_none()).ok_or(SctpError::TooManyChannels)?;
        let id = match config.negotiated {
            Some(id) => {
                if self.channel(id).is_some() {
                    return Err(SctpError::ChannelIdInUse);
                }
                id
            }
            None => {
                let mut id: u16 = if self.role == Role::Client { 0 } else { 1 };
                loop {
                    if self.channel(id).is_none() {
                        break id;
                    }
                    id = id.checked_add(2).filter(|&i| i < u16::MAX).ok_or(SctpError::TooManyChannels)?;
                }
            }
        };
        // Check the DCEP OPEN fits before creating anything.
        if config.negotiated.is_none() {
            let need = 12 + label.len() + protocol.len();
            let frags = need.div_ceil(self.max_payload().max(1));
            if SEND - self.tx_used < need || CHUNKS - self.tx_count < frags {
                return Err(SctpError::WouldBlock);
            }
        }
        let negotiated = config.negotiated.is_some();
        let mut ch = Channel {
            id,
            label: label_s,
            protocol: proto_s,
            config,
            state: if negotiated { ChannelState::Open } else { ChannelState::Opening },
            by_peer: false,
            next_ssn_out: 0,
            next_ssn_in: 0,
            out_reset: OutReset::None,
            in_reset: false,
            open_event: None,
            close_event: None,
        };
        if negotiated && self.is_established() {
            ch.open_event = Some(self.next_seq());
        }
        if let Some(s) = self.channels.get_mut(slot) {
            *s = Some(ch);
        }
        if !negotiated {
            let mut buf = [0u8; 12 + MAX_LABEL_LEN + MAX_PROTOCOL_LEN];
            let msg = DcepMessage::Open {
                channel_type: ChannelType { ordered: config.ordered, reliability: config.reliability },
                priority: config.priority,
                label: label.as_bytes(),
                protocol: protocol.as_bytes(),
            };
            let n = msg.emit(&mut buf).map_err(|_| SctpError::LabelTooLong)?;
            self.enqueue(now, id, ppid::DCEP, buf.get(..n).unwrap_or(&[]), false, Pr::None)?;
        }
        Ok(ChannelId(id))
    }

    /// Close a channel: its outgoing stream is reset (RFC 8831 6.7); the
    /// peer resets its side and `ChannelClosed` follows.
    pub fn close_channel(&mut self, _now: Instant, id: ChannelId) -> Result<(), SctpError> {
        let ch = self.channel_mut(id.0).ok_or(SctpError::UnknownChannel)?;
        if ch.out_reset == OutReset::None {
            ch.out_reset = OutReset::Requested;
        }
        ch.state = ChannelState::Closing;
        Ok(())
    }

    /// Queue a message on a channel. `WouldBlock` when the send buffer is
    /// full (retry once `buffered_amount` drops); `MessageTooLarge` above the
    /// peer's max-message-size or our send buffer.
    pub fn send(&mut self, now: Instant, id: ChannelId, kind: MessageKind, data: &[u8]) -> Result<(), SctpError> {
        if !matches!(self.state, State::CookieWait | State::CookieEchoed | State::Established) {
            return Err(SctpError::NotConnected);
        }
        if data.len() > self.config.peer_max_message_size || data.len() > SEND {
            return Err(SctpError::MessageTooLarge);
        }
        let ch = self.channel(id.0).ok_or(SctpError::UnknownChannel)?;
        if ch.state == ChannelState::Closing {
            return Err(SctpError::UnknownChannel);
        }
        // RFC 8832 6: until the ACK arrives, send ordered.
        let ordered = ch.config.ordered || ch.state == ChannelState::Opening;
        let pr = match ch.config.reliability {
            Reliability::Reliable => Pr::None,
            Reliability::MaxRetransmits(n) => Pr::Rtx(n),
            Reliability::MaxLifetimeMs(ms) => Pr::Expiry(now + Duration::from_millis(ms as u64)),
        };
        let (p, payload): (u32, &[u8]) = match (kind, data.is_empty()) {
            (MessageKind::Text, false) => (ppid::STRING, data),
            (MessageKind::Binary, false) => (ppid::BINARY, data),
            (MessageKind::Text, true) => (ppid::STRING_EMPTY, &[0]),
            (MessageKind::Binary, true) => (ppid::BINARY_EMPTY, &[0]),
        };
        self.enqueue(now, id.0, p, payload, !ordered, pr)?;
        self.stats.messages_sent += 1;
        self.stats.bytes_sent += data.len() as u64;
        Ok(())
    }

    fn enqueue(
        &mut self,
        _now: Instant,
        stream: u16,
        p: u32,
        data: &[u8],
        unordered: bool,
        pr: Pr,
    ) -> Result<(), SctpError> {
        let maxp = self.max_payload().max(4);
        let frags = data.len().div_ceil(maxp).max(1);
        if frags > CHUNKS || data.len() > SEND {
            return Err(SctpError::MessageTooLarge);
        }
        if CHUNKS - self.tx_count < frags || SEND - self.tx_used < data.len() {
            self.send_blocked = true;
            return Err(SctpError::WouldBlock);
        }
        let ssn = if unordered {
            0
        } else {
            let ch = self.channel_mut(stream).ok_or(SctpError::UnknownChannel)?;
            let s = ch.next_ssn_out;
            ch.next_ssn_out = s.wrapping_add(1);
            s
        };
        for (i, part) in data.chunks(maxp).enumerate() {
            let mut flags = 0;
            if i == 0 {
                flags |= data_flags::BEGIN;
            }
            if i == frags - 1 {
                flags |= data_flags::END;
            }
            if unordered {
                flags |= data_flags::UNORDERED;
            }
            let off = (self.tx_head + self.tx_used) % SEND.max(1);
            self.ring_write(off, part);
            self.tx_used += part.len();
            let idx = (self.tx_first + self.tx_count) % CHUNKS;
            if let Some(slot) = self.tx.get_mut(idx) {
                *slot =
                    TxChunk { stream, ssn, ppid: p, flags, len: part.len() as u16, off: off as u32, pr, ..EMPTY_TX };
            }
            self.tx_count += 1;
        }
        Ok(())
    }

    fn ring_write(&mut self, off: usize, data: &[u8]) {
        let first = data.len().min(SEND - off);
        if let (Some(dst), Some(src)) = (self.tx_buf.get_mut(off..off + first), data.get(..first)) {
            dst.copy_from_slice(src);
        }
        let rest = data.len() - first;
        if let (Some(dst), Some(src)) = (self.tx_buf.get_mut(..rest), data.get(first..)) {
            dst.copy_from_slice(src);
        }
    }

    fn ring_read(&self, off: usize, len: usize, out: &mut [u8]) {
        let first = len.min(SEND - off.min(SEND));
        if let (Some(dst), Some(src)) = (out.get_mut(..first), self.tx_buf.get(off..off + first)) {
            dst.copy_from_slice(src);
        }
        if let (Some(dst), Some(src)) = (out.get_mut(first..len), self.tx_buf.get(..len - first)) {
            dst.copy_from_slice(src);
        }
    }

    fn tx_at(&self, i: usize) -> &TxChunk {
        &self.tx[(self.tx_first + i) % CHUNKS]
    }

    fn tx_at_mut(&mut self, i: usize) -> &mut TxChunk {
        &mut self.tx[(self.tx_first + i) % CHUNKS]
    }

    /// Start a graceful shutdown: queued data is delivered first.
    pub fn shutdown(&mut self, now: Instant) {
        match self.state {
            State::Established => {
                self.state = State::ShutdownPending;
                self.try_shutdown(now);
            }
            State::Closed | State::CookieWait | State::CookieEchoed => self.die(LostReason::LocalAbort),
            _ => {}
        }
    }

    /// End the association at once; ABORT is sent.
    pub fn abort(&mut self, _now: Instant) {
        if self.state != State::Dead {
            if self.peer.is_some() {
                self.send_abort = Some(cause::USER_INITIATED_ABORT);
            }
            self.die(LostReason::LocalAbort);
        }
    }

    fn die(&mut self, reason: LostReason) {
        if self.state == State::Dead {
            return;
        }
        self.state = State::Dead;
        self.lost = Some(reason);
        self.lost_event = Some(self.next_seq());
        self.t1 = None;
        self.t2 = None;
        self.t3 = None;
        self.hb_timer = None;
        self.ack_timer = None;
        self.reconfig_timer = None;
    }

    fn try_shutdown(&mut self, now: Instant) {
        let drained = self.tx_count == 0;
        match self.state {
            State::ShutdownPending if drained => {
                self.state = State::ShutdownSent;
                self.send_shutdown = true;
                self.t2 = Some(now + self.rto);
            }
            State::ShutdownReceived if drained => {
                self.state = State::ShutdownAckSent;
                self.send_shutdown_ack = true;
                self.t2 = Some(now + self.rto);
            }
            _ => {}
        }
    }

    // -------------------------------------------------------------- events

    /// Next event; see [`Event`].
    pub fn poll_event(&mut self) -> Option<Event> {
        #[derive(Clone, Copy)]
        enum Pick {
            Established,
            Lost,
            Open(usize),
            Close(usize),
            Message(usize),
        }
        let mut best: Option<(u32, Pick)> = None;
        let mut consider = |seq: Option<u32>, p: Pick| {
            if let Some(s) = seq {
                if best.map_or(true, |(b, _)| s < b) {
                    best = Some((s, p));
                }
            }
        };
        consider(self.established_event, Pick::Established);
        consider(self.lost_event, Pick::Lost);
        for (i, c) in self.channels.iter().enumerate() {
            if let Some(c) = c {
                consider(c.open_event, Pick::Open(i));
                consider(c.close_event, Pick::Close(i));
            }
        }
        for (i, c) in self.rx.iter().take(self.rx_len).enumerate() {
            if c.ready != 0 && !c.announced && c.flags & data_flags::BEGIN != 0 {
                consider(Some(c.ready), Pick::Message(i));
            }
        }
        let (_, pick) = best?;
        match pick {
            Pick::Established => {
                self.established_event = None;
                Some(Event::AssociationEstablished)
            }
            Pick::Lost => {
                self.lost_event = None;
                Some(Event::AssociationLost { reason: self.lost.unwrap_or(LostReason::LocalAbort) })
            }
            Pick::Open(i) => {
                let c = self.channels.get_mut(i)?.as_mut()?;
                c.open_event = None;
                Some(Event::ChannelOpened { id: ChannelId(c.id), label: c.label.clone(), by_peer: c.by_peer })
            }
            Pick::Close(i) => {
                let slot = self.channels.get_mut(i)?;
                let id = slot.as_ref()?.id;
                *slot = None;
                Some(Event::ChannelClosed { id: ChannelId(id) })
            }
            Pick::Message(i) => {
                let (end, len) = self.rx_message_span(i)?;
                let first = self.rx.get(i)?;
                let (stream, p) = (first.stream, first.ppid);
                for c in self.rx.get_mut(i..end)? {
                    c.announced = true;
                }
                let (kind, len) = match p {
                    ppid::STRING => (MessageKind::Text, len),
                    ppid::STRING_EMPTY => (MessageKind::Text, 0),
                    ppid::BINARY_EMPTY => (MessageKind::Binary, 0),
                    _ => (MessageKind::Binary, len),
                };
                Some(Event::MessageReceived { channel: ChannelId(stream), kind, len })
            }
        }
    }

    /// If a complete message starts at rx index `i`, its end index and length.
    fn rx_message_span(&self, i: usize) -> Option<(usize, usize)> {
        let first = self.rx.get(i)?;
        if first.flags & data_flags::BEGIN == 0 {
            return None;
        }
        let mut len = 0usize;
        let mut j = i;
        loop {
            let c = self.rx.get(j).filter(|_| j < self.rx_len)?;
            if c.tsn != first.tsn.wrapping_add((j - i) as u32) || c.stream != first.stream {
                return None;
            }
            if j > i && c.flags & data_flags::BEGIN != 0 {
                return None;
            }
            if first.flags & data_flags::UNORDERED == 0 && c.ssn != first.ssn {
                return None;
            }
            len += c.len as usize;
            j += 1;
            if c.flags & data_flags::END != 0 {
                return Some((j, len));
            }
        }
    }

    /// Copy the oldest announced message into `buf`; returns its channel,
    /// kind and length. Frees its receive space.
    pub fn read_message(&mut self, buf: &mut [u8]) -> Result<(ChannelId, MessageKind, usize), SctpError> {
        let mut best: Option<(u32, usize)> = None;
        for (i, c) in self.rx.iter().take(self.rx_len).enumerate() {
            if c.announced && c.flags & data_flags::BEGIN != 0 && best.map_or(true, |(s, _)| c.ready < s) {
                best = Some((c.ready, i));
            }
        }
        let (_, i) = best.ok_or(SctpError::NoMessage)?;
        let (end, len) = self.rx_message_span(i).ok_or(SctpError::NoMessage)?;
        let first = self.rx[i];
        let (kind, len) = match first.ppid {
            ppid::STRING => (MessageKind::Text, len),
            ppid::STRING_EMPTY => (MessageKind::Text, 0),
            ppid::BINARY_EMPTY => (MessageKind::Binary, 0),
            _ => (MessageKind::Binary, len),
        };
        if buf.len() < len {
            return Err(SctpError::BufferTooSmall { needed: len });
        }
        if len > 0 {
            let start = first.off as usize;
            if let (Some(dst), Some(src)) = (buf.get_mut(..len), self.rx_buf.get(start..start + len)) {
                dst.copy_from_slice(src);
            }
        }
        let before = self.rx_window();
        self.rx_remove(i, end);
        self.stats.messages_received += 1;
        self.stats.bytes_received += len as u64;
        // Window update: tell the peer when the window reopens.
        let update = self.rx_window_update();
        if before < update && self.rx_window() >= update {
            self.sack_now = true;
        }
        Ok((ChannelId(first.stream), kind, len))
    }

    /// Remove rx entries `i..end` and their payload bytes (contiguous).
    fn rx_remove(&mut self, i: usize, end: usize) {
        if i >= end || end > self.rx_len {
            return;
        }
        let start = self.rx[i].off as usize;
        let stop = self.rx[end - 1].off as usize + self.rx[end - 1].len as usize;
        let removed = stop - start;
        self.rx_buf.copy_within(stop..self.rx_used, start);
        self.rx_used -= removed;
        self.rx.copy_within(end..self.rx_len, i);
        self.rx_len -= end - i;
        for c in self.rx.iter_mut().take(self.rx_len).skip(i) {
            c.off -= removed as u32;
        }
    }

    /// Our advertised receiver window (a_rwnd): free buffer bytes, but no
    /// more than the free chunk slots hold at the peer's usual chunk size.
    /// The peer counts only bytes against it, so a window in bytes alone
    /// lets a sender of small messages send more chunks than we have slots;
    /// the excess is dropped and waits for the sender's retransmission
    /// timer (seconds, with its backoff). The slots the holes below our
    /// highest TSN need (see `on_data`) are not offered: a sender stops
    /// counting a hole it abandoned (partial reliability) long before its
    /// FORWARD-TSN reaches us. The peer subtracts its outstanding bytes
    /// from this, so what it may add fits in the slots left.
    fn rx_window(&self) -> usize {
        let slots = CHUNKS.saturating_sub(self.rx_len + self.rx_missing());
        (RECV - self.rx_used).min(slots.saturating_mul(self.rx_chunk_size))
    }

    /// TSNs not received between the cumulative ack point and the highest
    /// TSN received.
    fn rx_missing(&self) -> usize {
        let high = self.rx_highest.wrapping_sub(self.rx_cum_tsn);
        let present = self.rx_bits.iter().map(|w| w.count_ones() as usize).sum::<usize>();
        if high < RX_TSN_WINDOW {
            (high as usize).saturating_sub(present)
        } else {
            0
        }
    }

    /// The window a SACK must announce once it reopens (see `read_message`):
    /// two packets, or half of what an empty buffer advertises.
    fn rx_window_update(&self) -> usize {
        (2 * self.config.mtu).min(RECV.min(CHUNKS.saturating_mul(self.rx_chunk_size)) / 2)
    }

    /// Track the peer's chunk size: falls quickly towards small chunks
    /// (a quarter of the difference per chunk) and rises slowly (an
    /// eighth), so a run of small messages shrinks the window in a few
    /// chunks while one large chunk among small ones barely widens it.
    fn track_chunk_size(&mut self, len: usize) {
        let est = self.rx_chunk_size;
        self.rx_chunk_size = if len < est { est - (est - len).div_ceil(4) } else { est + (len - est) / 8 }.max(1);
    }

    // ------------------------------------------------------------- timers

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.t1, self.t2, self.t3, self.hb_timer, self.ack_timer, self.reconfig_timer].into_iter().flatten().min()
    }

    /// Run the timers that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Dead {
            return;
        }
        if self.t1.is_some_and(|t| t <= now) {
            self.t1_count += 1;
            if self.t1_count > self.config.max_init_retransmits {
                self.die(LostReason::HandshakeTimeout);
                return;
            }
            self.back_off_rto();
            match self.state {
                State::CookieWait => self.send_init = true,
                State::CookieEchoed if now - self.cookie_at >= STATE_COOKIE_LIFETIME => {
                    // The peer now drops our cookie as stale (Valid.Cookie.Life,
                    // 60 s by default; we do not act on its Stale Cookie ERROR):
                    // fetch a fresh one with a new INIT (RFC 9260 5.2.6).
                    self.state = State::CookieWait;
                    self.peer = None;
                    self.cookie.clear();
                    self.send_init = true;
                }
                State::CookieEchoed => self.send_cookie_echo = true,
                _ => {}
            }
            self.t1 = Some(now + self.rto);
        }
        if self.t2.is_some_and(|t| t <= now) {
            self.error_count += 1;
            if self.error_count > self.config.max_retransmits {
                self.send_abort = Some(cause::PROTOCOL_VIOLATION);
                self.die(LostReason::Timeout);
                return;
            }
            self.back_off_rto();
            match self.state {
                State::ShutdownSent => self.send_shutdown = true,
                State::ShutdownAckSent => self.send_shutdown_ack = true,
                _ => {}
            }
            self.t2 = Some(now + self.rto);
        }
        if self.t3.is_some_and(|t| t <= now) {
            self.on_t3_timeout(now);
            if self.state == State::Dead {
                return;
            }
        }
        if self.hb_timer.is_some_and(|t| t <= now) {
            if self.hb_outstanding {
                self.error_count += 1;
                self.back_off_rto();
                if self.error_count > self.config.max_retransmits {
                    self.die(LostReason::Timeout);
                    return;
                }
            }
            self.send_heartbeat = true;
            self.hb_timer = None;
        }
        if self.ack_timer.is_some_and(|t| t <= now) {
            self.ack_timer = None;
            self.sack_now = true;
        }
        if self.reconfig_timer.is_some_and(|t| t <= now) {
            // Retransmit the outstanding request (same sequence number).
            self.reconfig_timer = None;
            if self.reconfig_outstanding.is_some() {
                for c in self.channels.iter_mut().flatten() {
                    if c.out_reset == OutReset::InFlight {
                        c.out_reset = OutReset::Requested;
                    }
                }
            }
        }
        self.expire_pending(now);
        self.arm_heartbeat(now);
    }

    fn on_t3_timeout(&mut self, now: Instant) {
        self.stats.t3_timeouts += 1;
        self.error_count += 1;
        if self.error_count > self.config.max_retransmits {
            self.send_abort = Some(cause::PROTOCOL_VIOLATION);
            self.die(LostReason::Timeout);
            return;
        }
        if self.back_off_rto() && self.is_established() {
            // The RTO can grow no further. If the path's RTT now exceeds
            // it, every chunk is retransmitted before its SACK returns and
            // Karn's rule never yields a sample; a HEARTBEAT (RFC 9260 8.3,
            // on demand) is timed unambiguously and repairs the estimate.
            self.send_heartbeat = true;
        }
        self.rtt_probe = None;
        self.ssthresh = (self.cwnd / 2).max(4 * self.config.mtu);
        self.cwnd = self.config.mtu;
        self.partial_bytes_acked = 0;
        self.fast_recovery_exit = None;
        for i in 0..self.tx_sent {
            let c = self.tx_at_mut(i);
            if c.state == TxState::Sent {
                c.rtx = true;
            }
        }
        self.abandon_due(now, true);
        if self.adv_peer_ack != self.tx_base_tsn.wrapping_sub(1) {
            self.send_forward_tsn = true;
        }
        self.rtx_burst = true;
        self.t3 = Some(now + self.rto);
    }

    /// Apply partial-reliability policies: abandon messages whose lifetime
    /// ended, or which are marked for retransmission beyond their limit.
    fn abandon_due(&mut self, now: Instant, marking: bool) {
        let forward_ok = self.peer.is_some_and(|p| p.forward_tsn);
        if !forward_ok {
            return;
        }
        let mut i = 0;
        while i < self.tx_count {
            let c = *self.tx_at(i);
            let due = c.state != TxState::Abandoned
                && c.state != TxState::GapAcked
                && match c.pr {
                    Pr::None => false,
                    Pr::Rtx(max) => marking && c.rtx && c.tx_count > max,
                    Pr::Expiry(t) => now >= t,
                };
            if due {
                self.abandon_message(i);
            }
            i += 1;
        }
        self.advance_ack_point();
    }

    /// Abandon the whole message the chunk at index `i` belongs to.
    fn abandon_message(&mut self, i: usize) {
        let c = *self.tx_at(i);
        // Walk back to the first fragment, then forward to the last.
        let mut start = i;
        while start > 0 && self.tx_at(start).flags & data_flags::BEGIN == 0 {
            let p = self.tx_at(start - 1);
            if p.stream != c.stream || p.ssn != c.ssn {
                break;
            }
            start -= 1;
        }
        let mut j = start;
        while j < self.tx_count {
            let was_pending = self.tx_at(j).state == TxState::Pending;
            let e = self.tx_at_mut(j);
            let last = e.flags & data_flags::END != 0;
            if e.state != TxState::Abandoned {
                e.state = TxState::Abandoned;
                e.rtx = false;
                self.stats.chunks_abandoned += 1;
            }
            if was_pending && j == self.tx_sent {
                self.tx_sent += 1;
            }
            j += 1;
            if last {
                break;
            }
        }
    }

    /// RFC 3758 3.5 C1: move the Advanced.Peer.Ack.Point over abandoned chunks.
    fn advance_ack_point(&mut self) {
        let cum = self.tx_base_tsn.wrapping_sub(1);
        if tsn_lt(self.adv_peer_ack, cum) {
            self.adv_peer_ack = cum;
        }
        // Never-sent abandoned chunks right after tx_sent count as sent.
        while self.tx_sent < self.tx_count && self.tx_at(self.tx_sent).state == TxState::Abandoned {
            self.tx_sent += 1;
        }
        // One FORWARD-TSN names at most MAX_RESET_STREAMS ordered streams:
        // stop before a chunk of one more (it follows once this is acked).
        let mut streams = self.forward_tsn_streams();
        loop {
            let i = self.adv_peer_ack.wrapping_sub(cum) as usize;
            if i >= self.tx_sent {
                break;
            }
            let c = *self.tx_at(i);
            if c.state != TxState::Abandoned {
                break;
            }
            let ordered = c.flags & data_flags::UNORDERED == 0;
            if ordered && !streams.iter().any(|e| e.0 == c.stream) && streams.push((c.stream, c.ssn)).is_err() {
                break;
            }
            self.adv_peer_ack = self.adv_peer_ack.wrapping_add(1);
        }
        if self.adv_peer_ack != cum {
            self.send_forward_tsn = true;
        }
    }

    /// Abandon never-sent chunks whose lifetime ended.
    fn expire_pending(&mut self, now: Instant) {
        if (self.tx_sent..self.tx_count).any(|i| matches!(self.tx_at(i).pr, Pr::Expiry(t) if now >= t)) {
            self.abandon_due(now, false);
        }
    }

    // ------------------------------------------------------------ receive

    /// Process one SCTP packet from the peer.
    pub fn handle_receive(&mut self, now: Instant, packet: &[u8]) -> Result<(), SctpError> {
        let (header, chunks) = match parse_packet(packet) {
            Ok(p) => p,
            Err(e) => {
                self.stats.packets_dropped += 1;
                return Err(SctpError::Malformed(e));
            }
        };
        if header.dst_port != self.config.local_port || header.src_port != self.config.remote_port {
            self.stats.packets_dropped += 1;
            return Err(SctpError::BadVerificationTag);
        }
        // Verification tag rules (RFC 9260 8.5, 8.5.1).
        let first = chunks.clone().next();
        let tag_ok = match first {
            Some(Ok(Chunk::Init(_))) => header.verification_tag == 0,
            Some(Ok(Chunk::Abort { t_bit, .. })) | Some(Ok(Chunk::ShutdownComplete { t_bit })) => {
                let peer_tag = self.peer.map(|p| p.tag);
                if t_bit {
                    Some(header.verification_tag) == peer_tag
                } else {
                    header.verification_tag == self.my_tag
                }
            }
            Some(Ok(Chunk::ShutdownAck)) => header.verification_tag == self.my_tag || self.peer.is_none(),
            Some(Ok(_)) => header.verification_tag == self.my_tag,
            Some(Err(e)) => {
                self.stats.packets_dropped += 1;
                return Err(SctpError::Malformed(e));
            }
            None => false,
        };
        if !tag_ok {
            self.stats.packets_dropped += 1;
            return Err(SctpError::BadVerificationTag);
        }
        if self.state == State::Dead {
            self.stats.packets_dropped += 1;
            return Ok(());
        }
        self.stats.packets_received += 1;
        let mut had_data = false;
        let mut result = Ok(());
        for chunk in chunks {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    result = Err(SctpError::Malformed(e));
                    break;
                }
            };
            // A lost COOKIE-ACK (RFC 9260 5.1 E): DATA, SACK, HEARTBEAT or
            // FORWARD-TSN carrying our tag come only from a peer that has
            // accepted our cookie, so they imply it (as the KAME/usrsctp
            // stack does) instead of waiting for the next COOKIE-ECHO.
            if self.state == State::CookieEchoed
                && matches!(chunk, Chunk::Data(_) | Chunk::Sack(_) | Chunk::Heartbeat { .. } | Chunk::ForwardTsn(_))
            {
                self.on_cookie_ack(now, true);
            }
            match chunk {
                Chunk::Init(init) => self.on_init(&init),
                Chunk::InitAck(init) => self.on_init_ack(now, &init),
                Chunk::CookieEcho { cookie } => self.on_cookie_echo(now, cookie),
                Chunk::CookieAck => self.on_cookie_ack(now, false),
                Chunk::Data(d) => {
                    if self.is_established() || matches!(self.state, State::ShutdownSent) {
                        had_data = true;
                        self.on_data(&d);
                    }
                }
                Chunk::Sack(s) => self.on_sack(now, &s),
                Chunk::Heartbeat { info } => {
                    if info.len() <= MAX_HEARTBEAT_INFO_LEN && self.peer.is_some() {
                        self.heartbeat_ack.clear();
                        let _ = self.heartbeat_ack.extend_from_slice(info);
                        self.send_heartbeat_ack = true;
                    }
                }
                Chunk::HeartbeatAck { info } => self.on_heartbeat_ack(now, info),
                Chunk::Abort { .. } => {
                    self.die(LostReason::PeerAbort);
                    break;
                }
                Chunk::Shutdown { cum_tsn_ack } => {
                    self.on_cum_ack_only(now, cum_tsn_ack);
                    if matches!(self.state, State::Established | State::ShutdownPending) {
                        self.state = State::ShutdownReceived;
                    }
                    if self.state == State::ShutdownSent {
                        // Both sides shut down at once: answer with SHUTDOWN-ACK.
                        self.state = State::ShutdownAckSent;
                        self.send_shutdown_ack = true;
                    }
                    self.try_shutdown(now);
                }
                Chunk::ShutdownAck => {
                    if matches!(self.state, State::ShutdownSent | State::ShutdownAckSent) || self.peer.is_none() {
                        self.send_shutdown_complete = Some(self.peer.is_none());
                        if self.peer.is_some() {
                            self.die(LostReason::Shutdown);
                        }
                    }
                }
                Chunk::ShutdownComplete { .. } => {
                    if self.state == State::ShutdownAckSent {
                        self.die(LostReason::Shutdown);
                    }
                }
                Chunk::ForwardTsn(f) => {
                    if self.is_established() {
                        had_data = true;
                        self.on_forward_tsn(&f);
                    }
                }
                Chunk::Reconfig { params } => self.on_reconfig(now, params),
                Chunk::Error { .. } => {}
                Chunk::Unknown { chunk_type, .. } => {
                    // RFC 9260 3.2: upper bits 00/01 stop processing the packet.
                    if chunk_type & 0x80 == 0 {
                        break;
                    }
                }
            }
            if self.state == State::Dead {
                break;
            }
        }
        if had_data {
            self.packets_since_sack += 1;
            if self.packets_since_sack >= 2 {
                self.sack_now = true;
            } else if self.ack_timer.is_none() {
                self.ack_timer = Some(now + self.config.delayed_ack);
            }
            self.deliver(now);
            if self.state == State::ShutdownSent {
                self.sack_now = true;
            }
        }
        self.arm_heartbeat(now);
        result
    }

    /// COOKIE-ACK received, or `implied` by other chunks from the peer.
    fn on_cookie_ack(&mut self, now: Instant, implied: bool) {
        if self.state != State::CookieEchoed {
            return;
        }
        self.t1 = None;
        // Only a COOKIE-ACK answering a COOKIE-ECHO sent once is an RTT sample.
        if let Some(at) = self.cookie_echo_sent.take().filter(|_| !implied) {
            self.rtt_sample(now - at);
        }
        self.on_established(now);
    }

    fn on_init(&mut self, init: &InitChunk<'_>) {
        if init.initiate_tag == 0 {
            return;
        }
        match self.state {
            State::Closed | State::CookieWait | State::CookieEchoed => {
                let f = init.features();
                self.init_ack_reply = Some(PeerInit {
                    tag: init.initiate_tag,
                    initial_tsn: init.initial_tsn,
                    a_rwnd: init.a_rwnd,
                    forward_tsn: f.forward_tsn,
                    reconfig: f.reconfig,
                });
            }
            // Restart of an established association is not supported.
            _ => {}
        }
    }

    fn on_init_ack(&mut self, now: Instant, init: &InitChunk<'_>) {
        if self.state != State::CookieWait || init.initiate_tag == 0 {
            return;
        }
        let f = init.features();
        let Some(cookie) = f.cookie else { return };
        self.cookie.clear();
        if self.cookie.extend_from_slice(cookie).is_err() {
            return;
        }
        self.peer = Some(PeerInit {
            tag: init.initiate_tag,
            initial_tsn: init.initial_tsn,
            a_rwnd: init.a_rwnd,
            forward_tsn: f.forward_tsn,
            reconfig: f.reconfig,
        });
        self.state = State::CookieEchoed;
        self.send_cookie_echo = true;
        self.cookie_at = now;
        self.t1 = Some(now + self.rto);
        self.t1_count = 0;
    }

    /// The state cookie: everything needed to set up the association,
    /// authenticated with our secret key, so nothing is kept before
    /// COOKIE-ECHO (RFC 9260 5.1.3).
    fn make_cookie(&self, now: Instant, peer: &PeerInit) -> [u8; COOKIE_LEN] {
        let mut c = [0u8; COOKIE_LEN];
        {
            let mut w = Writer::new(&mut c);
            let _ = w.u32(self.my_tag);
            let _ = w.u32(peer.tag);
            let _ = w.u32(self.my_initial_tsn);
            let _ = w.u32(peer.initial_tsn);
            let _ = w.u32(peer.a_rwnd);
            let _ = w.u8(peer.forward_tsn as u8 | (peer.reconfig as u8) << 1);
            let _ = w.zeros(3);
            let _ = w.u64(now.as_micros());
            let _ = w.u32(0x7463_6b31); // format marker "tck1"
        }
        let (body, mac) = c.split_at_mut(COOKIE_BODY_LEN);
        mac.copy_from_slice(&hmac_sha256(&self.cookie_key, &[body]));
        c
    }

    fn on_cookie_echo(&mut self, now: Instant, cookie: &[u8]) {
        if cookie.len() != COOKIE_LEN {
            return;
        }
        let (body, mac) = cookie.split_at(COOKIE_BODY_LEN);
        if !ct_eq(&hmac_sha256(&self.cookie_key, &[body]), mac) {
            return;
        }
        let mut r = Reader::new(body);
        let parsed = (|| -> Result<(u32, PeerInit, u32, u64), crate::bytes::Truncated> {
            let my_tag = r.u32()?;
            let tag = r.u32()?;
            let my_tsn = r.u32()?;
            let initial_tsn = r.u32()?;
            let a_rwnd = r.u32()?;
            let feat = r.u8()?;
            r.skip(3)?;
            let ts = r.u64()?;
            Ok((
                my_tag,
                PeerInit { tag, initial_tsn, a_rwnd, forward_tsn: feat & 1 != 0, reconfig: feat & 2 != 0 },
                my_tsn,
                ts,
            ))
        })();
        let Ok((my_tag, peer, my_tsn, ts)) = parsed else { return };
        if my_tag != self.my_tag || my_tsn != self.my_initial_tsn {
            return;
        }
        if Instant::from_micros(ts) + STATE_COOKIE_LIFETIME < now {
            // Stale cookie: RFC 9260 5.2.6 would send an ERROR; we stay silent.
            return;
        }
        match self.state {
            State::Closed | State::CookieWait | State::CookieEchoed => {
                self.peer = Some(peer);
                self.t1 = None;
                self.send_cookie_ack = true;
                self.on_established(now);
            }
            _ => {
                // Retransmitted COOKIE-ECHO from the same peer: ack again.
                if self.peer.map(|p| p.tag) == Some(peer.tag) {
                    self.send_cookie_ack = true;
                }
            }
        }
    }

    fn on_established(&mut self, now: Instant) {
        let Some(peer) = self.peer else { return };
        self.state = State::Established;
        self.rx_cum_tsn = peer.initial_tsn.wrapping_sub(1);
        self.rx_highest = self.rx_cum_tsn;
        self.peer_next_req_seq = peer.initial_tsn;
        self.peer_rwnd = peer.a_rwnd as usize;
        self.ssthresh = peer.a_rwnd as usize;
        self.error_count = 0;
        self.established_event = Some(self.next_seq());
        for i in 0..self.channels.len() {
            let negotiated_open =
                matches!(&self.channels[i], Some(c) if c.config.negotiated.is_some() && c.open_event.is_none());
            if negotiated_open {
                let s = self.next_seq();
                if let Some(c) = self.channels[i].as_mut() {
                    c.open_event = Some(s);
                }
            }
        }
        self.hb_timer = Some(now + self.config.heartbeat_interval + self.rto);
    }

    fn on_heartbeat_ack(&mut self, now: Instant, info: &[u8]) {
        let mut r = Reader::new(info);
        let (Ok(sent), Ok(nonce)) = (r.u64(), r.u64()) else { return };
        if nonce != self.hb_nonce || !self.hb_outstanding {
            return;
        }
        self.hb_outstanding = false;
        self.error_count = 0;
        self.rtt_sample(now - Instant::from_micros(sent));
    }

    fn rtt_sample(&mut self, r: Duration) {
        let r = r.as_micros();
        let (srtt, rttvar) = match self.srtt {
            None => (r, r / 2),
            Some(s) => {
                let s = s.as_micros();
                let var = self.rttvar.as_micros();
                let rttvar = (3 * var + s.abs_diff(r)) / 4;
                (((7 * s) + r) / 8, rttvar)
            }
        };
        self.srtt = Some(Duration::from_micros(srtt));
        self.rttvar = Duration::from_micros(rttvar);
        self.rto = self.computed_rto();
    }

    /// Double the RTO after a retransmission timer expired (RFC 9260 6.3.3
    /// E2), at most to RTO.Max (C7) or the computed RTO if that is longer.
    /// Returns whether the cap stopped the doubling.
    fn back_off_rto(&mut self) -> bool {
        let cap = self.config.rto_max.max(self.computed_rto());
        let doubled = self.rto.saturating_mul(2);
        self.rto = doubled.min(cap);
        doubled > cap
    }

    /// RTO from SRTT and RTTVAR (RFC 9260 6.3.1 C2/C3), without backoff.
    fn computed_rto(&self) -> Duration {
        match self.srtt {
            None => self.config.rto_initial,
            Some(s) => {
                let rto = Duration::from_micros(s.as_micros() + 4 * self.rttvar.as_micros().max(1));
                rto.max(self.config.rto_min).min(RTO_CEILING)
            }
        }
    }

    fn rx_bit(&self, tsn: u32) -> bool {
        let b = (tsn % RX_TSN_WINDOW) as usize;
        self.rx_bits[b / 64] & (1 << (b % 64)) != 0
    }

    fn set_rx_bit(&mut self, tsn: u32, v: bool) {
        let b = (tsn % RX_TSN_WINDOW) as usize;
        if v {
            self.rx_bits[b / 64] |= 1 << (b % 64);
        } else {
            self.rx_bits[b / 64] &= !(1 << (b % 64));
        }
    }

    fn on_data(&mut self, d: &DataChunk<'_>) {
        self.stats.data_chunks_received += 1;
        let tsn = d.tsn;
        let off = tsn.wrapping_sub(self.rx_cum_tsn);
        if tsn_le(tsn, self.rx_cum_tsn) || (off < RX_TSN_WINDOW && self.rx_bit(tsn)) {
            self.stats.duplicate_chunks_received += 1;
            let _ = self.rx_dups.push(tsn);
            self.sack_now = true;
            return;
        }
        if off >= RX_TSN_WINDOW {
            self.stats.rx_chunks_dropped += 1;
            return;
        }
        let len = d.payload.len();
        if len > u16::MAX as usize {
            return;
        }
        self.track_chunk_size(len);
        // Out-of-order data never takes the room that the chunks still
        // missing below the highest TSN (each estimated at the largest chunk
        // held) need to complete the cumulative ack point: otherwise a full
        // buffer could only be unblocked by reneging, which peers such as
        // sctp-proto (str0m) and pion never recover from (they do not resend
        // a chunk once gap-acknowledged). A peer that overruns our window
        // gets its chunk dropped here unacknowledged, so it sends it again.
        if tsn != self.rx_cum_tsn.wrapping_add(1) {
            let present = self.rx_bits.iter().map(|w| w.count_ones() as usize).sum::<usize>() + 1;
            let high = self.rx_highest.wrapping_sub(self.rx_cum_tsn);
            let top = off.max(if high < RX_TSN_WINDOW { high } else { 0 }) as usize;
            let missing = top.saturating_sub(present);
            let est = self.rx.iter().take(self.rx_len).map(|c| c.len as usize).fold(len, usize::max);
            if RECV - self.rx_used < len + missing * est || CHUNKS - self.rx_len.min(CHUNKS) < 1 + missing {
                self.stats.rx_chunks_dropped += 1;
                self.sack_now = true;
                return;
            }
        }
        // Find the insert position (sorted by TSN).
        let pos = self.rx.iter().take(self.rx_len).position(|c| tsn_lt(tsn, c.tsn)).unwrap_or(self.rx_len);
        if self.rx_len >= CHUNKS || RECV - self.rx_used < len {
            // Renege on the highest out-of-order chunk only to make room for
            // the chunk that unblocks the cumulative ack point.
            let can_renege = tsn == self.rx_cum_tsn.wrapping_add(1)
                && self.rx_len > 0
                && self.rx[self.rx_len - 1].ready == 0
                && tsn_lt(self.rx_cum_tsn, self.rx[self.rx_len - 1].tsn);
            let mut freed = false;
            if can_renege {
                while self.rx_len > pos && (self.rx_len >= CHUNKS || RECV - self.rx_used < len) {
                    let last = self.rx[self.rx_len - 1];
                    if last.ready != 0 || tsn_le(last.tsn, self.rx_cum_tsn) {
                        break;
                    }
                    self.set_rx_bit(last.tsn, false);
                    self.rx_remove(self.rx_len - 1, self.rx_len);
                    freed = true;
                }
            }
            if self.rx_len >= CHUNKS || RECV - self.rx_used < len {
                // A message that cannot fit even in an empty buffer can never
                // be delivered: the peer ignored our max-message-size
                // (RFC 8841 6.1). End the association rather than stall.
                if self.partial_message_len(pos, d).is_some_and(|have| have + len > RECV) {
                    self.send_abort = Some(cause::PROTOCOL_VIOLATION);
                    self.die(LostReason::ProtocolViolation);
                    return;
                }
                self.stats.rx_chunks_dropped += 1;
                self.sack_now = true;
                return;
            }
            let _ = freed;
        }
        let pos = self.rx.iter().take(self.rx_len).position(|c| tsn_lt(tsn, c.tsn)).unwrap_or(self.rx_len);
        let byte_off = if pos < self.rx_len { self.rx[pos].off as usize } else { self.rx_used };
        self.rx_buf.copy_within(byte_off..self.rx_used, byte_off + len);
        if let Some(dst) = self.rx_buf.get_mut(byte_off..byte_off + len) {
            dst.copy_from_slice(d.payload);
        }
        self.rx_used += len;
        self.rx.copy_within(pos..self.rx_len, pos + 1);
        self.rx_len += 1;
        for c in self.rx.iter_mut().take(self.rx_len).skip(pos + 1) {
            c.off += len as u32;
        }
        self.rx[pos] = RxChunk {
            tsn,
            stream: d.stream_id,
            ssn: d.ssn,
            ppid: d.ppid,
            flags: d.flags,
            len: len as u16,
            off: byte_off as u32,
            ready: 0,
            announced: false,
        };
        self.set_rx_bit(tsn, true);
        if tsn_lt(self.rx_highest, tsn) {
            self.rx_highest = tsn;
        }
        let before = self.rx_cum_tsn;
        while self.rx_bit(self.rx_cum_tsn.wrapping_add(1)) {
            self.rx_cum_tsn = self.rx_cum_tsn.wrapping_add(1);
            self.set_rx_bit(self.rx_cum_tsn, false);
        }
        // Out of order (a gap) or a gap just filled: acknowledge at once.
        if self.rx_cum_tsn != self.rx_highest
            || self.rx_cum_tsn.wrapping_sub(before) > 1
            || d.flags & data_flags::IMMEDIATE != 0
        {
            self.sack_now = true;
        }
    }

    /// Bytes already stored of the message `d` continues, if its fragments
    /// from the first one up to `d` are all present just before rx index `pos`.
    fn partial_message_len(&self, pos: usize, d: &DataChunk<'_>) -> Option<usize> {
        if d.flags & data_flags::BEGIN != 0 {
            return None;
        }
        let ordered = d.flags & data_flags::UNORDERED == 0;
        let mut sum = 0usize;
        let mut expect = d.tsn.wrapping_sub(1);
        for c in self.rx.get(..pos)?.iter().rev() {
            if c.tsn != expect
                || c.stream != d.stream_id
                || (ordered && c.ssn != d.ssn)
                || c.flags & data_flags::END != 0
            {
                return None;
            }
            sum += c.len as usize;
            if c.flags & data_flags::BEGIN != 0 {
                return Some(sum);
            }
            expect = expect.wrapping_sub(1);
        }
        None
    }

    fn on_forward_tsn(&mut self, f: &ForwardTsnChunk<'_>) {
        let new = f.new_cum_tsn;
        if tsn_le(new, self.rx_cum_tsn) {
            self.sack_now = true;
            return;
        }
        if new.wrapping_sub(self.rx_cum_tsn) > 1 << 30 {
            return;
        }
        // Clear the bitmap up to `new`.
        let n = new.wrapping_sub(self.rx_cum_tsn);
        if n >= RX_TSN_WINDOW {
            self.rx_bits = [0; 4];
        } else {
            for k in 1..=n {
                self.set_rx_bit(self.rx_cum_tsn.wrapping_add(k), false);
            }
        }
        self.rx_cum_tsn = new;
        if tsn_lt(self.rx_highest, new) {
            self.rx_highest = new;
        }
        while self.rx_bit(self.rx_cum_tsn.wrapping_add(1)) {
            self.rx_cum_tsn = self.rx_cum_tsn.wrapping_add(1);
            self.set_rx_bit(self.rx_cum_tsn, false);
        }
        // Drop fragments of abandoned messages: not-yet-delivered chunks at or
        // below the new point whose message cannot complete any more.
        let mut i = 0;
        while i < self.rx_len {
            let c = self.rx[i];
            if c.ready == 0 && tsn_le(c.tsn, new) {
                if let Some((end, _)) = self.rx_message_span(i) {
                    i = end;
                    continue;
                }
                // Incomplete: remove this chunk and any continuation up to `new`.
                self.rx_remove(i, i + 1);
                continue;
            }
            i += 1;
        }
        // Ordered streams: skip the abandoned SSNs, delivering complete
        // messages up to them first (RFC 3758 3.6).
        for (stream, ssn) in f.stream_ssns() {
            self.deliver_ordered_up_to(stream, ssn);
            if let Some(ch) = self.channel_mut(stream) {
                if (ssn.wrapping_sub(ch.next_ssn_in) as i16) >= 0 {
                    ch.next_ssn_in = ssn.wrapping_add(1);
                }
            }
        }
        self.sack_now = true;
    }

    /// Deliver complete ordered messages of `stream` with SSN <= `ssn` in order.
    fn deliver_ordered_up_to(&mut self, stream: u16, ssn: u16) {
        loop {
            let Some(next) = self.channel(stream).map(|c| c.next_ssn_in) else { return };
            if (ssn.wrapping_sub(next) as i16) < 0 {
                return;
            }
            // Find the complete message with the smallest SSN >= next.
            let mut best: Option<(u16, usize, usize)> = None;
            for i in 0..self.rx_len {
                let c = self.rx[i];
                if c.stream != stream
                    || c.ready != 0
                    || c.flags & data_flags::UNORDERED != 0
                    || c.flags & data_flags::BEGIN == 0
                {
                    continue;
                }
                let d = c.ssn.wrapping_sub(next);
                if (ssn.wrapping_sub(c.ssn) as i16) < 0 {
                    continue;
                }
                if let Some((end, _)) = self.rx_message_span(i) {
                    if best.map_or(true, |(bd, _, _)| d < bd) {
                        best = Some((d, i, end));
                    }
                }
            }
            let Some((_, i, end)) = best else { return };
            let s = self.rx[i].ssn;
            if let Some(ch) = self.channel_mut(stream) {
                ch.next_ssn_in = s.wrapping_add(1);
            }
            self.deliver_message(i, end);
        }
    }

    /// Mark deliverable messages ready (and handle DCEP), in TSN order.
    fn deliver(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.rx_len {
            let c = self.rx[i];
            if c.ready != 0 || c.flags & data_flags::BEGIN == 0 {
                i += 1;
                continue;
            }
            let Some((end, _)) = self.rx_message_span(i) else {
                i += 1;
                continue;
            };
            let unordered = c.flags & data_flags::UNORDERED != 0;
            let known = self.channel(c.stream).is_some();
            let deliverable = if unordered {
                true
            } else if let Some(ch) = self.channel(c.stream) {
                ch.next_ssn_in == c.ssn
            } else {
                // A new stream starts with SSN 0 (normally DATA_CHANNEL_OPEN).
                c.ssn == 0
            };
            if !deliverable {
                i = end;
                continue;
            }
            if !unordered {
                if let Some(ch) = self.channel_mut(c.stream) {
                    ch.next_ssn_in = c.ssn.wrapping_add(1);
                }
            }
            if c.ppid == ppid::DCEP {
                let mut buf = [0u8; 12 + MAX_LABEL_LEN + MAX_PROTOCOL_LEN];
                let total: usize = (i..end).map(|k| self.rx[k].len as usize).sum();
                let start = c.off as usize;
                let n = total.min(buf.len());
                if let (Some(dst), Some(src)) = (buf.get_mut(..n), self.rx_buf.get(start..start + n)) {
                    dst.copy_from_slice(src);
                }
                self.rx_remove(i, end);
                let too_long = total > buf.len();
                self.on_dcep(now, c.stream, c.ssn, buf.get(..n).unwrap_or(&[]), too_long);
                // Restart: a channel may now exist for later messages.
                i = 0;
                continue;
            }
            if !known || self.channel(c.stream).is_some_and(|ch| ch.in_reset) {
                // No channel on this stream: drop the message.
                self.rx_remove(i, end);
                continue;
            }
            self.deliver_message(i, end);
            i = end;
        }
    }

    fn deliver_message(&mut self, i: usize, end: usize) {
        let s = self.next_seq();
        for c in self.rx.iter_mut().take(end).skip(i) {
            c.ready = s;
        }
    }

    fn on_dcep(&mut self, now: Instant, stream: u16, ssn: u16, msg: &[u8], too_long: bool) {
        let parsed = if too_long { Err(WireError::BadLength) } else { DcepMessage::parse(msg) };
        match parsed {
            Ok(DcepMessage::Open { channel_type, priority, label, protocol }) => {
                if self.channel(stream).is_some() {
                    return;
                }
                let label = core::str::from_utf8(label).ok().and_then(|s| Label::try_from(s).ok());
                let protocol = core::str::from_utf8(protocol).ok().and_then(|s| heapless::String::try_from(s).ok());
                let slot = self.channels.iter().position(|c| c.is_none());
                let (Some(label), Some(protocol), Some(slot)) = (label, protocol, slot) else {
                    self.refuse_stream(stream, ssn);
                    return;
                };
                let seq = self.next_seq();
                self.channels[slot] = Some(Channel {
                    id: stream,
                    label,
                    protocol,
                    config: ChannelConfig {
                        ordered: channel_type.ordered,
                        reliability: channel_type.reliability,
                        priority,
                        negotiated: None,
                    },
                    state: ChannelState::Open,
                    by_peer: true,
                    next_ssn_out: 0,
                    next_ssn_in: ssn.wrapping_add(1),
                    out_reset: OutReset::None,
                    in_reset: false,
                    open_event: Some(seq),
                    close_event: None,
                });
                let mut ack = [0u8; 1];
                if let Ok(n) = DcepMessage::Ack.emit(&mut ack) {
                    let _ = self.enqueue(now, stream, ppid::DCEP, &ack[..n], false, Pr::None);
                }
            }
            Ok(DcepMessage::Ack) => {
                let seq = self.next_seq();
                if let Some(ch) = self.channel_mut(stream) {
                    if ch.state == ChannelState::Opening {
                        ch.state = ChannelState::Open;
                        ch.open_event = Some(seq);
                    }
                }
            }
            Err(_) => {
                if self.channel(stream).is_none() {
                    self.refuse_stream(stream, ssn);
                }
            }
        }
    }

    /// A DATA_CHANNEL_OPEN we cannot accept: reset the stream (RFC 8832 6).
    fn refuse_stream(&mut self, stream: u16, ssn: u16) {
        let slot = self.channels.iter().position(|c| c.is_none());
        if let Some(slot) = slot {
            self.channels[slot] = Some(Channel {
                id: stream,
                label: Label::new(),
                protocol: heapless::String::new(),
                config: ChannelConfig::default(),
                state: ChannelState::Closing,
                by_peer: true,
                next_ssn_out: 0,
                next_ssn_in: ssn.wrapping_add(1),
                out_reset: OutReset::Requested,
                in_reset: false,
                open_event: None,
                close_event: None,
            });
        }
    }

    fn on_cum_ack_only(&mut self, now: Instant, cum: u32) {
        let s = SackChunk {
            cum_tsn_ack: cum,
            a_rwnd: self.peer_rwnd as u32 + self.flight_size() as u32,
            gap_blocks: &[],
            dup_tsns: &[],
        };
        self.on_sack(now, &s);
    }

    fn flight_size(&self) -> usize {
        (0..self.tx_sent)
            .map(|i| self.tx_at(i))
            .filter(|c| c.state == TxState::Sent && !c.rtx)
            .map(|c| c.len as usize)
            .sum()
    }

    fn outstanding_bytes(&self) -> usize {
        (0..self.tx_sent).map(|i| self.tx_at(i)).filter(|c| c.state == TxState::Sent).map(|c| c.len as usize).sum()
    }

    fn on_sack(&mut self, now: Instant, s: &SackChunk<'_>) {
        if !matches!(
            self.state,
            State::Established | State::ShutdownPending | State::ShutdownReceived | State::ShutdownSent
        ) {
            return;
        }
        let cum_point = self.tx_base_tsn.wrapping_sub(1);
        let cum = s.cum_tsn_ack;
        if tsn_lt(cum, cum_point) {
            return;
        }
        let highest_sent = self.tx_base_tsn.wrapping_add(self.tx_sent as u32).wrapping_sub(1);
        if tsn_lt(highest_sent, cum) {
            // Acks something never sent: a protocol violation.
            self.send_abort = Some(cause::PROTOCOL_VIOLATION);
            self.die(LostReason::ProtocolViolation);
            return;
        }
        let flight_before = self.flight_size();
        let mut bytes_acked = 0usize;
        // The most recently sent chunk this SACK newly acknowledges that was
        // sent only once: (TSN, sent at).
        let mut newest_once: Option<(u32, Instant)> = None;
        // Cumulative part.
        let n_cum = cum.wrapping_sub(cum_point) as usize;
        for _ in 0..n_cum {
            let c = *self.tx_at(0);
            if c.state == TxState::Sent {
                bytes_acked += c.len as usize;
                if c.tx_count == 1 {
                    newest_once = Some((self.tx_base_tsn, c.sent_at));
                }
            }
            self.tx_head = (self.tx_head + c.len as usize) % SEND.max(1);
            self.tx_used -= c.len as usize;
            self.tx_first = (self.tx_first + 1) % CHUNKS;
            self.tx_count -= 1;
            self.tx_sent = self.tx_sent.saturating_sub(1);
            self.tx_base_tsn = self.tx_base_tsn.wrapping_add(1);
        }
        if n_cum > 0 {
            self.error_count = 0;
        }
        // Gap blocks: recompute which chunks beyond cum are acked.
        let mut highest_acked: Option<usize> = None;
        let mut acked_flags = [false; CHUNKS];
        for (start, end) in s.gaps() {
            if start == 0 || end < start {
                continue;
            }
            // Offsets past what was sent are bogus: clamp (bounds the work).
            let end = end.min(self.tx_sent.min(u16::MAX as usize) as u16);
            for off in start..=end {
                let i = off as usize - 1;
                if i < self.tx_sent {
                    if let Some(f) = acked_flags.get_mut(i) {
                        *f = true;
                    }
                    highest_acked = Some(highest_acked.map_or(i, |h| h.max(i)));
                }
            }
        }
        for (i, &gap) in acked_flags.iter().enumerate().take(self.tx_sent) {
            let c = *self.tx_at(i);
            match (c.state, gap) {
                (TxState::Sent, true) => {
                    bytes_acked += c.len as usize;
                    if c.tx_count == 1 {
                        newest_once = Some((self.tx_base_tsn.wrapping_add(i as u32), c.sent_at));
                    }
                    let e = self.tx_at_mut(i);
                    e.state = TxState::GapAcked;
                    e.rtx = false;
                }
                (TxState::GapAcked, false) => {
                    // Reneged: back to outstanding, retransmit on T3.
                    self.tx_at_mut(i).state = TxState::Sent;
                }
                _ => {}
            }
        }
        let rtt = match (self.rtt_probe, newest_once) {
            (Some(probe), Some((tsn, sent_at))) if tsn_le(probe, tsn) => Some(now - sent_at),
            _ => None,
        };
        // Only a valid sample resets a backed-off RTO (Karn, RFC 9260 6.3.1
        // C5, 6.3.3 E2): an acknowledgement of retransmitted data says
        // nothing about the RTT, and resetting on it would keep a path whose
        // RTT exceeds the computed RTO retransmitting every chunk forever.
        if let Some(r) = rtt {
            self.rtt_probe = None;
            self.rtt_sample(r);
        }
        // RFC 9260 6.1: SACKs answering zero window probes show the peer is
        // alive; the unacknowledged probes must not end the association.
        if self.zero_window_probing {
            self.error_count = 0;
        }
        // Exit fast recovery once its point is acknowledged.
        if let Some(exit) = self.fast_recovery_exit {
            if tsn_le(exit, cum) {
                self.fast_recovery_exit = None;
            }
        }
        // Miss indications (RFC 9260 7.2.4) below the highest gap-acked TSN.
        let mut fast = false;
        if let Some(h) = highest_acked {
            for i in 0..h {
                let in_recovery = self.fast_recovery_exit.is_some();
                let c = self.tx_at_mut(i);
                if c.state == TxState::Sent && !c.rtx {
                    c.miss = c.miss.saturating_add(1);
                    if c.miss >= 3 && !c.fast_rtx_done {
                        c.miss = 0;
                        c.rtx = true;
                        c.fast_rtx_done = true;
                        fast = true;
                        let _ = in_recovery;
                    }
                }
            }
        }
        // Congestion control (RFC 9260 7.2.1, 7.2.2).
        let mtu = self.config.mtu;
        if n_cum > 0 && self.fast_recovery_exit.is_none() {
            if self.cwnd <= self.ssthresh {
                if flight_before + mtu >= self.cwnd {
                    self.cwnd += bytes_acked.min(mtu);
                }
            } else {
                self.partial_bytes_acked += bytes_acked;
                if self.partial_bytes_acked >= self.cwnd && flight_before + mtu >= self.cwnd {
                    self.partial_bytes_acked -= self.cwnd;
                    self.cwnd += mtu;
                }
            }
        }
        if fast {
            self.stats.fast_retransmits += 1;
            if self.fast_recovery_exit.is_none() {
                self.ssthresh = (self.cwnd / 2).max(4 * mtu);
                self.cwnd = self.ssthresh;
                self.partial_bytes_acked = 0;
                self.fast_recovery_exit = Some(highest_sent);
            }
            self.rtx_burst = true;
        }
        // Peer window (RFC 9260 6.2.1).
        self.peer_rwnd = (s.a_rwnd as usize).saturating_sub(self.outstanding_bytes());
        // Partial reliability: retransmission limits and lifetimes.
        self.abandon_due(now, true);
        // T3 (RFC 9260 6.3.2 R2, R3).
        if self.outstanding_bytes() == 0 && self.adv_peer_ack == self.tx_base_tsn.wrapping_sub(1) {
            self.t3 = None;
        } else if n_cum > 0 || self.t3.is_none() {
            self.t3 = Some(now + self.rto);
        }
        self.try_shutdown(now);
    }

    fn on_reconfig(&mut self, now: Instant, params: &[u8]) {
        if !self.is_established() {
            return;
        }
        for p in ReconfigParams::new(params).flatten() {
            match p {
                ReconfigParam::OutgoingReset { req_seq, last_tsn, streams, .. } => {
                    let result = if req_seq == self.peer_next_req_seq {
                        if tsn_le(last_tsn, self.rx_cum_tsn) {
                            self.deliver(now);
                            let all = streams.is_empty();
                            let ids: heapless::Vec<u16, 64> = ReconfigParam::stream_ids(streams).take(64).collect();
                            let mut events = heapless::Vec::<usize, 64>::new();
                            for (slot, c) in self.channels.iter_mut().enumerate() {
                                if let Some(c) = c {
                                    if all || ids.contains(&c.id) {
                                        c.next_ssn_in = 0;
                                        c.in_reset = true;
                                        c.state = ChannelState::Closing;
                                        if c.out_reset == OutReset::None {
                                            c.out_reset = OutReset::Requested;
                                        }
                                        let _ = events.push(slot);
                                    }
                                }
                            }
                            // Drop unread data of streams that will never deliver.
                            self.peer_next_req_seq = self.peer_next_req_seq.wrapping_add(1);
                            for slot in events {
                                self.maybe_closed(slot);
                            }
                            reconfig_result::SUCCESS_PERFORMED
                        } else {
                            reconfig_result::IN_PROGRESS
                        }
                    } else if req_seq == self.peer_next_req_seq.wrapping_sub(1) {
                        self.reconfig_response
                            .filter(|r| r.0 == req_seq)
                            .map_or(reconfig_result::SUCCESS_PERFORMED, |r| r.1)
                    } else {
                        reconfig_result::ERROR_BAD_SEQUENCE
                    };
                    self.reconfig_response = Some((req_seq, result));
                    self.send_reconfig_response = true;
                }
                ReconfigParam::IncomingReset { req_seq, .. } => {
                    self.reconfig_response = Some((req_seq, reconfig_result::SUCCESS_NOTHING_TO_DO));
                    self.send_reconfig_response = true;
                    if req_seq == self.peer_next_req_seq {
                        self.peer_next_req_seq = self.peer_next_req_seq.wrapping_add(1);
                    }
                }
                ReconfigParam::Response { resp_seq, result } => {
                    if self.reconfig_outstanding != Some(resp_seq) {
                        continue;
                    }
                    if result == reconfig_result::IN_PROGRESS {
                        // Ask again after an RTO with the same sequence number.
                        self.reconfig_timer = Some(now + self.rto);
                        continue;
                    }
                    self.reconfig_outstanding = None;
                    self.reconfig_timer = None;
                    self.my_next_req_seq = self.my_next_req_seq.wrapping_add(1);
                    for slot in 0..STREAMS {
                        if let Some(c) = self.channels[slot].as_mut() {
                            if c.out_reset == OutReset::InFlight {
                                c.out_reset = OutReset::Done;
                                c.next_ssn_out = 0;
                                self.maybe_closed(slot);
                            }
                        }
                    }
                }
                ReconfigParam::Unknown { .. } => {}
            }
        }
    }

    fn maybe_closed(&mut self, slot: usize) {
        let seq = self.seq + 1;
        let mut fire = false;
        if let Some(c) = self.channels.get_mut(slot).and_then(|c| c.as_mut()) {
            if c.in_reset && c.out_reset == OutReset::Done && c.close_event.is_none() {
                c.close_event = Some(seq);
                fire = true;
            }
        }
        if fire {
            self.seq = seq;
        }
    }

    // ----------------------------------------------------------- transmit

    /// Write the next packet into `buf` (at most `config.mtu` bytes are
    /// used); returns its length, or `None` when there is nothing to send.
    /// Call until `None` after every `handle_*` and `send`.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let limit = buf.len().min(self.config.mtu);
        let buf = buf.get_mut(..limit)?;
        self.expire_pending(now);
        // Packets that are not for an established association.
        if let Some(reply) = self.init_ack_reply.take() {
            return self.emit_init_ack(now, buf, &reply);
        }
        if let Some(t_bit) = self.send_shutdown_complete.take() {
            let tag = self.peer.map(|p| p.tag).unwrap_or(0);
            return self.emit_single(buf, tag, &Chunk::ShutdownComplete { t_bit });
        }
        if let Some(c) = self.send_abort.take() {
            let tag = self.peer.map(|p| p.tag)?;
            let mut causes = [0u8; 4];
            causes[..2].copy_from_slice(&c.to_be_bytes());
            causes[3] = 4;
            return self.emit_single(buf, tag, &Chunk::Abort { t_bit: false, causes: &causes });
        }
        match self.state {
            State::CookieWait if self.send_init => {
                self.send_init = false;
                let mut params = [0u8; 32];
                let n = wire::write_init_params(&mut params, None).ok()?;
                let init = InitChunk {
                    initiate_tag: self.my_tag,
                    a_rwnd: RECV as u32,
                    outbound_streams: NUM_STREAMS_ADVERTISED,
                    inbound_streams: NUM_STREAMS_ADVERTISED,
                    initial_tsn: self.my_initial_tsn,
                    params: params.get(..n)?,
                };
                return self.emit_single(buf, 0, &Chunk::Init(init));
            }
            State::CookieEchoed if self.send_cookie_echo => {
                self.send_cookie_echo = false;
                // Karn: only a COOKIE-ECHO sent once gives an RTT sample.
                self.cookie_echo_sent = if self.t1_count == 0 { Some(now) } else { None };
                let tag = self.peer.map(|p| p.tag)?;
                let cookie = self.cookie.clone();
                return self.emit_single(buf, tag, &Chunk::CookieEcho { cookie: &cookie });
            }
            State::Closed | State::CookieWait | State::CookieEchoed | State::Dead => return None,
            _ => {}
        }
        let peer_tag = self.peer.map(|p| p.tag)?;
        let header = CommonHeader {
            src_port: self.config.local_port,
            dst_port: self.config.remote_port,
            verification_tag: peer_tag,
        };
        let mut pw = PacketWriter::new(buf, header).ok()?;
        if self.send_cookie_ack && pw.push(&Chunk::CookieAck).is_ok() {
            self.send_cookie_ack = false;
        }
        if self.send_shutdown {
            let c = Chunk::Shutdown { cum_tsn_ack: self.rx_cum_tsn };
            if pw.push(&c).is_ok() {
                self.send_shutdown = false;
                self.sack_now = false;
                self.ack_timer = None;
            }
        }
        if self.send_shutdown_ack && pw.push(&Chunk::ShutdownAck).is_ok() {
            self.send_shutdown_ack = false;
        }
        if self.sack_now || (self.ack_timer.is_some() && self.tx_has_new_data()) {
            // Bundle a pending SACK with outgoing data.
            if self.push_sack(&mut pw).is_ok() {
                self.sack_now = false;
                self.ack_timer = None;
                self.packets_since_sack = 0;
            }
        }
        if self.send_heartbeat_ack {
            let info = self.heartbeat_ack.clone();
            if pw.push(&Chunk::HeartbeatAck { info: &info }).is_ok() {
                self.send_heartbeat_ack = false;
            }
        }
        if self.send_heartbeat {
            let mut info = [0u8; 16];
            info[..8].copy_from_slice(&now.as_micros().to_be_bytes());
            info[8..].copy_from_slice(&self.hb_nonce.to_be_bytes());
            if pw.push(&Chunk::Heartbeat { info: &info }).is_ok() {
                self.send_heartbeat = false;
                self.hb_outstanding = true;
                self.hb_timer = Some(now + self.config.heartbeat_interval + self.rto);
            }
        }
        self.push_reconfig(now, &mut pw);
        // RFC 3758 3.5 F2: while the peer has not acknowledged the
        // Advanced.Peer.Ack.Point, every packet carrying DATA also carries
        // FORWARD-TSN (control chunks go first, RFC 9260 6.10), so a lost
        // FORWARD-TSN costs one packet, not a retransmission timeout.
        let forward_due = self.adv_peer_ack != self.tx_base_tsn.wrapping_sub(1);
        let mut bundled = false;
        if forward_due && !self.send_forward_tsn && !self.forward_tsn_alone {
            let room = pw.remaining().saturating_sub(self.forward_tsn_len());
            bundled = self.data_sendable(room);
            self.send_forward_tsn = bundled;
        }
        if self.send_forward_tsn {
            let _ = self.push_forward_tsn(&mut pw);
        }
        let sent_data = self.push_data(now, &mut pw);
        // `data_sendable` predicts `push_data`; should they ever disagree,
        // stop bundling until data goes out, so this cannot loop.
        if sent_data {
            self.forward_tsn_alone = false;
        } else if bundled {
            debug_assert!(false, "FORWARD-TSN bundled without DATA");
            self.forward_tsn_alone = true;
        }
        if pw.is_empty() {
            return None;
        }
        self.arm_heartbeat(now);
        self.stats.packets_sent += 1;
        Some(pw.finish())
    }

    /// Heartbeats run only on an idle path (RFC 9260 8.3): while T3 runs,
    /// data is the liveness probe.
    fn arm_heartbeat(&mut self, now: Instant) {
        if self.t3.is_some() || !self.is_established() {
            if !self.hb_outstanding {
                self.hb_timer = None;
            }
        } else if self.hb_timer.is_none() && !self.send_heartbeat {
            self.hb_timer = Some(now + self.config.heartbeat_interval + self.rto);
        }
    }

    fn tx_has_new_data(&self) -> bool {
        self.tx_sent < self.tx_count
    }

    fn emit_single(&mut self, buf: &mut [u8], tag: u32, chunk: &Chunk<'_>) -> Option<usize> {
        let header =
            CommonHeader { src_port: self.config.local_port, dst_port: self.config.remote_port, verification_tag: tag };
        let mut pw = PacketWriter::new(buf, header).ok()?;
        pw.push(chunk).ok()?;
        self.stats.packets_sent += 1;
        Some(pw.finish())
    }

    fn emit_init_ack(&mut self, now: Instant, buf: &mut [u8], peer: &PeerInit) -> Option<usize> {
        let cookie = self.make_cookie(now, peer);
        let mut params = [0u8; 32 + COOKIE_LEN];
        let n = wire::write_init_params(&mut params, Some(&cookie)).ok()?;
        let ack = InitChunk {
            initiate_tag: self.my_tag,
            a_rwnd: RECV as u32,
            outbound_streams: NUM_STREAMS_ADVERTISED,
            inbound_streams: NUM_STREAMS_ADVERTISED,
            initial_tsn: self.my_initial_tsn,
            params: params.get(..n)?,
        };
        self.emit_single(buf, peer.tag, &Chunk::InitAck(ack))
    }

    fn push_sack(&mut self, pw: &mut PacketWriter<'_>) -> Result<(), WireError> {
        let mut gaps = [0u8; 4 * MAX_GAP_BLOCKS];
        let mut ngaps = 0;
        let mut k = 1u32;
        let span = self.rx_highest.wrapping_sub(self.rx_cum_tsn).min(RX_TSN_WINDOW - 1);
        while k <= span && ngaps < MAX_GAP_BLOCKS {
            if self.rx_bit(self.rx_cum_tsn.wrapping_add(k)) {
                let start = k;
                while k < span && self.rx_bit(self.rx_cum_tsn.wrapping_add(k + 1)) {
                    k += 1;
                }
                let g = &mut gaps[4 * ngaps..4 * ngaps + 4];
                g[..2].copy_from_slice(&(start as u16).to_be_bytes());
                g[2..].copy_from_slice(&(k as u16).to_be_bytes());
                ngaps += 1;
            }
            k += 1;
        }
        let mut dups = [0u8; 4 * MAX_DUP_TSNS];
        for (i, d) in self.rx_dups.iter().enumerate() {
            dups[4 * i..4 * i + 4].copy_from_slice(&d.to_be_bytes());
        }
        let nd = self.rx_dups.len();
        let sack = SackChunk {
            cum_tsn_ack: self.rx_cum_tsn,
            a_rwnd: self.rx_window() as u32,
            gap_blocks: &gaps[..4 * ngaps],
            dup_tsns: &dups[..4 * nd],
        };
        pw.push(&Chunk::Sack(sack))?;
        self.rx_dups.clear();
        Ok(())
    }

    /// For each ordered stream among the chunks a FORWARD-TSN skips, its
    /// highest SSN (RFC 3758 3.2).
    fn forward_tsn_streams(&self) -> heapless::Vec<(u16, u16), MAX_RESET_STREAMS> {
        let cum = self.tx_base_tsn.wrapping_sub(1);
        let mut streams: heapless::Vec<(u16, u16), MAX_RESET_STREAMS> = heapless::Vec::new();
        let n = self.adv_peer_ack.wrapping_sub(cum) as usize;
        for i in 0..n.min(self.tx_count) {
            let c = *self.tx_at(i);
            if c.flags & data_flags::UNORDERED != 0 {
                continue;
            }
            if let Some(e) = streams.iter_mut().find(|e| e.0 == c.stream) {
                if (c.ssn.wrapping_sub(e.1) as i16) > 0 {
                    e.1 = c.ssn;
                }
            } else {
                let _ = streams.push((c.stream, c.ssn));
            }
        }
        streams
    }

    /// Bytes the FORWARD-TSN chunk due now takes in a packet.
    fn forward_tsn_len(&self) -> usize {
        8 + 4 * self.forward_tsn_streams().len()
    }

    fn push_forward_tsn(&mut self, pw: &mut PacketWriter<'_>) -> Result<(), WireError> {
        let cum = self.tx_base_tsn.wrapping_sub(1);
        if self.adv_peer_ack == cum {
            self.send_forward_tsn = false;
            return Ok(());
        }
        let streams = self.forward_tsn_streams();
        let mut raw = [0u8; 4 * MAX_RESET_STREAMS];
        for (i, (s, q)) in streams.iter().enumerate() {
            raw[4 * i..4 * i + 2].copy_from_slice(&s.to_be_bytes());
            raw[4 * i + 2..4 * i + 4].copy_from_slice(&q.to_be_bytes());
        }
        pw.push(&Chunk::ForwardTsn(ForwardTsnChunk {
            new_cum_tsn: self.adv_peer_ack,
            streams: &raw[..4 * streams.len()],
        }))?;
        self.send_forward_tsn = false;
        Ok(())
    }

    fn push_reconfig(&mut self, now: Instant, pw: &mut PacketWriter<'_>) {
        let mut params = [0u8; 16 + 12 + 2 * MAX_RESET_STREAMS + 12];
        let mut w = Writer::new(&mut params);
        let mut any = false;
        if self.send_reconfig_response {
            if let Some((resp_seq, result)) = self.reconfig_response {
                if (ReconfigParam::Response { resp_seq, result }).emit(&mut w).is_ok() {
                    any = true;
                }
            }
        }
        // A new or repeated Outgoing SSN Reset Request (one outstanding at a time).
        let peer_reconfig = self.peer.is_some_and(|p| p.reconfig);
        let mut streams = [0u8; 2 * MAX_RESET_STREAMS];
        let mut ns = 0;
        let can_request = peer_reconfig && self.reconfig_timer.is_none();
        if can_request {
            for c in self.channels.iter().flatten() {
                let want = c.out_reset == OutReset::Requested
                    || (c.out_reset == OutReset::InFlight && self.reconfig_outstanding.is_some());
                if want && ns < MAX_RESET_STREAMS {
                    streams[2 * ns..2 * ns + 2].copy_from_slice(&c.id.to_be_bytes());
                    ns += 1;
                }
            }
            // Only when a request is due (new streams, or a retransmission).
            let due = self.channels.iter().flatten().any(|c| c.out_reset == OutReset::Requested);
            if ns > 0 && due {
                let req = ReconfigParam::OutgoingReset {
                    req_seq: self.my_next_req_seq,
                    resp_seq: self.peer_next_req_seq.wrapping_sub(1),
                    last_tsn: self.tx_base_tsn.wrapping_add(self.tx_count as u32).wrapping_sub(1),
                    streams: &streams[..2 * ns],
                };
                if req.emit(&mut w).is_ok() {
                    any = true;
                } else {
                    ns = 0;
                }
            } else {
                ns = 0;
            }
        } else if !peer_reconfig {
            // The peer cannot reset streams: close locally.
            for slot in 0..STREAMS {
                if let Some(c) = self.channels[slot].as_mut() {
                    if c.out_reset == OutReset::Requested {
                        c.out_reset = OutReset::Done;
                        c.in_reset = true;
                        self.maybe_closed(slot);
                    }
                }
            }
        }
        if !any {
            return;
        }
        let n = w.len();
        if pw.push(&Chunk::Reconfig { params: &params[..n] }).is_ok() {
            self.send_reconfig_response = false;
            if ns > 0 {
                self.reconfig_outstanding = Some(self.my_next_req_seq);
                self.reconfig_timer = Some(now + self.rto);
                for c in self.channels.iter_mut().flatten() {
                    if c.out_reset == OutReset::Requested
                        && streams[..2 * ns].chunks_exact(2).any(|s| s == c.id.to_be_bytes())
                    {
                        c.out_reset = OutReset::InFlight;
                    }
                }
            }
        }
    }

    /// Whether [`push_data`](Self::push_data) would put at least one DATA
    /// chunk into a packet with `room` bytes left: the same checks, in the
    /// same order, for its first chunk.
    fn data_sendable(&self, room: usize) -> bool {
        if !matches!(self.state, State::Established | State::ShutdownPending | State::ShutdownReceived) {
            return false;
        }
        let flight = self.flight_size();
        let fits = |len: usize| room >= wire::pad4(DATA_HEADER_LEN + len) && len <= MAX_CHUNK_PAYLOAD;
        let first_rtx = (0..self.tx_sent).map(|i| self.tx_at(i)).find(|c| c.rtx && c.state == TxState::Sent);
        if let Some(c) = first_rtx {
            if (self.rtx_burst || flight < self.cwnd) && fits(c.len as usize) {
                return true;
            }
        }
        let next_new = (self.tx_sent..self.tx_count).map(|i| self.tx_at(i)).find(|c| c.state != TxState::Abandoned);
        match next_new {
            Some(c) => {
                let len = c.len as usize;
                flight < self.cwnd && (self.peer_rwnd >= len || flight == 0) && fits(len)
            }
            None => false,
        }
    }

    /// Retransmissions, then new DATA, as cwnd and the peer's window allow.
    /// Returns whether any DATA chunk was written.
    fn push_data(&mut self, now: Instant, pw: &mut PacketWriter<'_>) -> bool {
        if !matches!(self.state, State::Established | State::ShutdownPending | State::ShutdownReceived) {
            return false;
        }
        let mtu = self.config.mtu;
        let mut flight = self.flight_size();
        let burst = core::mem::replace(&mut self.rtx_burst, false);
        let mut sent_any = false;
        let mut payload = [0u8; MAX_CHUNK_PAYLOAD];
        // Retransmissions first (RFC 9260 6.3.3 E3, 7.2.4).
        for i in 0..self.tx_sent {
            let c = *self.tx_at(i);
            if !c.rtx || c.state != TxState::Sent {
                continue;
            }
            if !burst && flight >= self.cwnd {
                break;
            }
            let len = c.len as usize;
            if pw.remaining() < wire::pad4(DATA_HEADER_LEN + len) || len > payload.len() {
                break;
            }
            self.ring_read(c.off as usize, len, &mut payload);
            let d = DataChunk {
                flags: c.flags,
                tsn: self.tx_base_tsn.wrapping_add(i as u32),
                stream_id: c.stream,
                ssn: c.ssn,
                ppid: c.ppid,
                payload: &payload[..len],
            };
            if pw.push(&Chunk::Data(d)).is_err() {
                break;
            }
            let e = self.tx_at_mut(i);
            e.rtx = false;
            e.tx_count += 1;
            e.sent_at = now;
            e.miss = 0;
            flight += len;
            sent_any = true;
            self.stats.retransmitted_chunks += 1;
            self.stats.data_chunks_sent += 1;
        }
        // New data, within cwnd and the peer's window.
        while self.tx_sent < self.tx_count {
            let i = self.tx_sent;
            let c = *self.tx_at(i);
            if c.state == TxState::Abandoned {
                // Its lifetime ended before it was ever sent: FORWARD-TSN
                // covers it; never put it on the wire.
                self.tx_sent += 1;
                continue;
            }
            let len = c.len as usize;
            if flight >= self.cwnd {
                break;
            }
            let zero_window_probe = self.peer_rwnd < len && flight == 0;
            if self.peer_rwnd < len && !zero_window_probe {
                break;
            }
            self.zero_window_probing = zero_window_probe;
            if pw.remaining() < wire::pad4(DATA_HEADER_LEN + len) || len > payload.len() {
                break;
            }
            self.ring_read(c.off as usize, len, &mut payload);
            // RFC 7053: after a send was refused for lack of buffer, the last
            // queued chunk asks for an immediate SACK: the application waits
            // for it to queue more (a delayed SACK would idle the association
            // for up to 200 ms).
            let immediate = i + 1 == self.tx_count && self.send_blocked;
            let d = DataChunk {
                flags: c.flags | if immediate { data_flags::IMMEDIATE } else { 0 },
                tsn: self.tx_base_tsn.wrapping_add(i as u32),
                stream_id: c.stream,
                ssn: c.ssn,
                ppid: c.ppid,
                payload: &payload[..len],
            };
            if pw.push(&Chunk::Data(d)).is_err() {
                break;
            }
            self.send_blocked &= !immediate;
            let e = self.tx_at_mut(i);
            e.state = TxState::Sent;
            e.tx_count = 1;
            e.sent_at = now;
            if self.rtt_probe.is_none() {
                self.rtt_probe = Some(self.tx_base_tsn.wrapping_add(i as u32));
            }
            self.tx_sent += 1;
            flight += len;
            self.peer_rwnd = self.peer_rwnd.saturating_sub(len);
            sent_any = true;
            self.stats.data_chunks_sent += 1;
            if zero_window_probe {
                break;
            }
        }
        let _ = mtu;
        if sent_any && self.t3.is_none() {
            self.t3 = Some(now + self.rto);
        }
        sent_any
    }
}
