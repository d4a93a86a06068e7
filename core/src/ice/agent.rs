//! The ICE agent: one data stream, one component (RTP/RTCP mux or data
//! channels), UDP. See the module documentation of [`crate::ice`].

use crate::crypto;
use crate::ice::candidate::{
    candidate_priority, foundation_string, pair_priority, Candidate, CandidateAddress, CandidateKind,
    CandidateTransport,
};
use crate::stun::client::{BindingClient, BindingEvent};
use crate::stun::{
    attr, code, Class, Message, MessageBuilder, Method, RetransmitConfig, StunError, TransactionId, Transactions,
};
use crate::time::{Duration, Instant};
use crate::Transmit;
use core::net::SocketAddr;
use rand_core::{CryptoRng, RngCore};

/// Most STUN servers used for server-reflexive gathering.
pub const MAX_STUN_SERVERS: usize = 2;
/// Most concurrent gathering transactions (host candidates x STUN servers);
/// about 120 bytes each.
pub const MAX_GATHER_TRANSACTIONS: usize = 8;
/// Events queued between two `poll_event` drains (2 bytes each).
pub const EVENT_QUEUE_LEN: usize = 32;
/// Responses to incoming checks queued between two `poll_transmit` drains
/// (about 100 bytes each). When full, further requests are dropped
/// unanswered (the peer retransmits).
pub const RESPONSE_QUEUE_LEN: usize = 8;
/// Triggered-check queue (RFC 8445 6.1.4.1), 3 bytes each.
pub const TRIGGERED_QUEUE_LEN: usize = 16;
/// Smallest buffer `poll_transmit` writes into (a check is at most 160 bytes).
pub const MIN_TRANSMIT_BUFFER: usize = 256;
/// Longest local/remote username fragment.
pub const MAX_UFRAG_LEN: usize = 32;
/// Longest local/remote password.
pub const MAX_PWD_LEN: usize = 64;
/// Requests per consent-freshness transaction (RFC 7675): retransmitted
/// with the configured RTO, so one lost packet does not cost consent.
pub const CONSENT_REQUESTS: u8 = 4;

/// Timers and limits of an ICE agent. Plain data; `Default` gives the RFC
/// recommendations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct IceConfig {
    /// Pacing of new checks and gathering requests, Ta (RFC 8445 14.2): 50 ms.
    pub ta: Duration,
    /// STUN retransmissions (RTO 500 ms, Rc 7, Rm 16). For checks the RTO
    /// is `max(rto, Ta * pairs waiting or in progress)` (RFC 8445 14.3).
    pub retransmit: RetransmitConfig,
    /// Consent freshness interval (RFC 7675 5.1): 5 s, each one randomized
    /// to 0.8-1.2 times this.
    pub consent_interval: Duration,
    /// Consent is lost, and the agent fails, after this long without a
    /// consent response (RFC 7675: 30 s).
    pub consent_timeout: Duration,
    /// State `Disconnected` after this long without a consent response:
    /// 10 s (two consent intervals with retransmissions).
    pub disconnected_timeout: Duration,
    /// The controlling agent nominates the best valid pair once no
    /// higher-priority pair is still being checked, or this long after the
    /// first valid pair: 500 ms.
    pub nomination_timeout: Duration,
    /// State `Failed` if no pair is selected this long after checking
    /// started: 30 s. (Without end-of-candidates there is no other way to
    /// know that no better candidate will come.)
    pub checking_timeout: Duration,
}

impl Default for IceConfig {
    fn default() -> Self {
        IceConfig {
            ta: Duration::from_millis(50),
            retransmit: RetransmitConfig::default(),
            consent_interval: Duration::from_secs(5),
            consent_timeout: Duration::from_secs(30),
            disconnected_timeout: Duration::from_secs(10),
            nomination_timeout: Duration::from_millis(500),
            checking_timeout: Duration::from_secs(30),
        }
    }
}

/// A username fragment and password (RFC 8445 5.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IceCredentials {
    pub ufrag: heapless::String<MAX_UFRAG_LEN>,
    pub pwd: heapless::String<MAX_PWD_LEN>,
}

const ICE_CHARS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

impl IceCredentials {
    /// Random credentials: an 8-character ufrag and a 24-character password
    /// (RFC 8445 5.3 asks for at least 24 and 128 bits of randomness).
    pub fn random(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut c = IceCredentials { ufrag: heapless::String::new(), pwd: heapless::String::new() };
        for _ in 0..8 {
            let _ = c.ufrag.push(ICE_CHARS[(rng.next_u32() & 63) as usize] as char);
        }
        for _ in 0..24 {
            let _ = c.pwd.push(ICE_CHARS[(rng.next_u32() & 63) as usize] as char);
        }
        c
    }

    /// Credentials from strings: non-empty ice-chars (letters, digits, `+`,
    /// `/`), at most [`MAX_UFRAG_LEN`] / [`MAX_PWD_LEN`] bytes.
    pub fn new(ufrag: &str, pwd: &str) -> Result<Self, IceError> {
        let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| ICE_CHARS.contains(&b));
        if !ok(ufrag) || !ok(pwd) {
            return Err(IceError::InvalidCredentials);
        }
        let mut c = IceCredentials { ufrag: heapless::String::new(), pwd: heapless::String::new() };
        c.ufrag.push_str(ufrag).map_err(|_| IceError::InvalidCredentials)?;
        c.pwd.push_str(pwd).map_err(|_| IceError::InvalidCredentials)?;
        Ok(c)
    }
}

/// Connection state, as WebRTC's `RTCIceConnectionState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum IceState {
    /// Waiting for remote credentials and candidates.
    New,
    /// Checks in progress, no pair selected yet.
    Checking,
    /// A pair is selected (nominated and valid).
    Connected,
    /// Connected, the remote sent end-of-candidates, gathering is complete
    /// and no check is left.
    Completed,
    /// Selected pair has not answered consent checks for
    /// `disconnected_timeout`; back to `Connected` when it does.
    Disconnected,
    /// No pair could be selected, or consent was lost. `restart` recovers.
    Failed,
    /// `close` was called.
    Closed,
}

/// What the agent tells its owner (drain with `poll_event`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IceEvent {
    /// A local candidate to signal to the peer (host or server-reflexive).
    CandidateGathered(Candidate),
    /// Gathering finished: signal end-of-candidates.
    GatheringComplete,
    StateChanged(IceState),
    /// Traffic now goes from `local` (our socket, the candidate's base) to
    /// `remote`.
    SelectedPairChanged {
        local: SocketAddr,
        remote: SocketAddr,
    },
}

/// Errors of agent calls. For `handle_receive`, the error says why a
/// datagram was not accepted; the agent's state is unchanged unless the
/// variant says an answer was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum IceError {
    /// Not a STUN message: not the agent's business (RFC 7983 demux).
    NotStun,
    /// A STUN message that does not parse; dropped.
    Malformed(StunError),
    /// FINGERPRINT missing or wrong; dropped silently.
    BadFingerprint,
    /// A response whose MESSAGE-INTEGRITY does not verify; dropped.
    BadIntegrity,
    /// The request was answered with this error code (400, 401, 420, 487).
    Rejected(u16),
    /// A response to no outstanding transaction; dropped.
    UnknownTransaction,
    /// The datagram arrived on an address that is not a local candidate.
    UnknownLocalAddress,
    /// A STUN method or class ICE does not use; dropped.
    UnexpectedMessage,
    /// The response queue is full; the request was dropped unanswered.
    QueueFull,
    /// No room for another candidate.
    TooManyCandidates,
    /// The candidate is already known.
    DuplicateCandidate,
    /// No room for another STUN server.
    TooManyServers,
    /// Credentials empty, too long, or not ice-chars.
    InvalidCredentials,
    /// The agent is closed.
    Closed,
}

impl core::fmt::Display for IceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            IceError::NotStun => f.write_str("not a STUN message"),
            IceError::Malformed(e) => write!(f, "malformed STUN message: {e}"),
            IceError::BadFingerprint => f.write_str("FINGERPRINT missing or wrong"),
            IceError::BadIntegrity => f.write_str("MESSAGE-INTEGRITY does not verify"),
            IceError::Rejected(c) => write!(f, "request answered with error {c}"),
            IceError::UnknownTransaction => f.write_str("response to an unknown transaction"),
            IceError::UnknownLocalAddress => f.write_str("datagram on an unknown local address"),
            IceError::UnexpectedMessage => f.write_str("unexpected STUN method or class"),
            IceError::QueueFull => f.write_str("response queue full"),
            IceError::TooManyCandidates => f.write_str("too many candidates"),
            IceError::DuplicateCandidate => f.write_str("duplicate candidate"),
            IceError::TooManyServers => f.write_str("too many STUN servers"),
            IceError::InvalidCredentials => f.write_str("invalid ICE credentials"),
            IceError::Closed => f.write_str("ICE agent closed"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for IceError {}

/// Counters (plain data).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct IceStats {
    /// Connectivity-check requests sent (retransmissions included).
    pub checks_sent: u64,
    /// Authenticated check requests accepted.
    pub checks_received: u64,
    /// Success responses sent.
    pub responses_sent: u64,
    /// Error responses sent (400, 401, 420, 487).
    pub error_responses_sent: u64,
    /// Authenticated responses to our checks received.
    pub responses_received: u64,
    /// STUN datagrams dropped (malformed, bad fingerprint or integrity,
    /// unknown transaction, unknown local address).
    pub dropped: u64,
    /// Role conflicts resolved (487 sent or received, or role switched).
    pub role_conflicts: u64,
    /// Consent requests sent.
    pub consent_sent: u64,
    /// Gathering requests sent to STUN servers.
    pub gather_sent: u64,
    /// Events lost because the owner did not drain `poll_event`.
    pub events_dropped: u64,
}

/// State of a candidate pair (RFC 8445 6.1.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PairState {
    Frozen,
    Waiting,
    InProgress,
    Succeeded,
    Failed,
}

/// A candidate pair as reported by [`IceAgentN::pairs`] (plain data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PairInfo {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub priority: u64,
    pub state: PairState,
    pub nominated: bool,
}

#[derive(Debug, Clone, Copy)]
struct LocalCand {
    kind: CandidateKind,
    addr: SocketAddr,
    base: SocketAddr,
    priority: u32,
    foundation: u32,
    local_pref: u16,
}

#[derive(Debug, Clone, Copy)]
struct RemoteCand {
    /// `None`: an mDNS hostname kept unresolved (never paired).
    addr: Option<SocketAddr>,
    kind: CandidateKind,
    priority: u32,
    foundation: u32,
}

#[derive(Debug, Clone, Copy)]
struct Pair {
    local: u8,
    remote: u8,
    priority: u64,
    state: PairState,
    /// In the valid list (a check on it succeeded).
    valid: bool,
    nominated: bool,
    /// Controlled side: USE-CANDIDATE arrived before our own check succeeded.
    nominate_on_success: bool,
    foundation: (u32, u32),
}

#[derive(Debug, Clone, Copy)]
struct TxCtx {
    local: u8,
    remote: u8,
    use_candidate: bool,
    /// Role announced in the request (for 487 handling).
    controlling: bool,
    /// A consent check on the selected pair (`local`/`remote` unused).
    consent: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Triggered {
    local: u8,
    remote: u8,
    use_candidate: bool,
}

#[derive(Debug, Clone)]
struct PendingResponse {
    local: SocketAddr,
    remote: SocketAddr,
    tid: TransactionId,
    /// `None`: success. Otherwise the error code, with MESSAGE-INTEGRITY
    /// when `authenticated`.
    error: Option<u16>,
    authenticated: bool,
    unknown: heapless::Vec<u16, { crate::stun::wire::MAX_UNKNOWN_ATTRIBUTES }>,
}

#[derive(Debug, Clone, Copy)]
enum PendingEvent {
    Gathered(u8),
    State(IceState),
    /// The selection changed; the event reports the pair selected when it
    /// is polled.
    Selected,
}

#[derive(Debug, Clone, Copy)]
struct Selected {
    local: SocketAddr,
    remote: SocketAddr,
    /// Local preference of the base (for PRIORITY in consent checks).
    local_pref: u16,
}

#[derive(Debug, Clone, Copy)]
struct Consent {
    next_send: Instant,
    last_response: Instant,
    disconnected: bool,
}

/// A full ICE agent with capacities as const generics:
///
/// - `L`: local candidates (host + server-reflexive), at most 255; 64 bytes each.
/// - `R`: remote candidates (signaled + peer-reflexive + unresolved mDNS),
///   at most 255; 48 bytes each.
/// - `P`: candidate pairs; 40 bytes each. When full, a new pair replaces
///   the lowest-priority pair not yet checked, if it ranks higher.
/// - `T`: outstanding check and consent transactions; about 48 bytes each.
///
/// [`IceAgent`] picks defaults; its size is documented in [`crate::ice`].
#[derive(Debug)]
pub struct IceAgentN<const L: usize, const R: usize, const P: usize, const T: usize> {
    config: IceConfig,
    rng: crypto::Rng,
    controlling: bool,
    tie_breaker: u64,
    local_creds: IceCredentials,
    remote_creds: Option<IceCredentials>,
    locals: heapless::Vec<LocalCand, L>,
    remotes: heapless::Vec<RemoteCand, R>,
    pairs: heapless::Vec<Pair, P>,
    tx: Transactions<TxCtx, T>,
    triggered: heapless::Deque<Triggered, TRIGGERED_QUEUE_LEN>,
    responses: heapless::Deque<PendingResponse, RESPONSE_QUEUE_LEN>,
    events: heapless::Deque<PendingEvent, EVENT_QUEUE_LEN>,
    gather: BindingClient<MAX_GATHER_TRANSACTIONS>,
    stun_servers: heapless::Vec<SocketAddr, MAX_STUN_SERVERS>,
    gathering_complete_sent: bool,
    state: IceState,
    selected: Option<Selected>,
    consent: Option<Consent>,
    /// A pair was selected in this ICE generation: no more pairs are formed
    /// and no more nominations made until `restart`.
    nominated_done: bool,
    nomination_in_flight: bool,
    first_valid_at: Option<Instant>,
    checking_started: Option<Instant>,
    remote_end_of_candidates: bool,
    failed: bool,
    closed: bool,
    next_check_at: Instant,
    last_now: Instant,
    stats: IceStats,
}

/// The agent with default capacities: 8 local candidates, 16 remote
/// candidates, 32 pairs, 16 transactions.
pub type IceAgent = IceAgentN<8, 16, 32, 16>;

fn crc_foundation(parts: &[&[u8]]) -> u32 {
    let mut buf = [0u8; 64];
    let mut n = 0;
    for p in parts {
        for &b in p.iter() {
            if n < buf.len() {
                buf[n] = b;
                n += 1;
            }
        }
    }
    crypto::crc32(&buf[..n])
}

fn ip_bytes(addr: &SocketAddr) -> ([u8; 16], usize) {
    let mut b = [0u8; 16];
    match addr.ip() {
        core::net::IpAddr::V4(ip) => {
            b[..4].copy_from_slice(&ip.octets());
            (b, 4)
        }
        core::net::IpAddr::V6(ip) => {
            b.copy_from_slice(&ip.octets());
            (b, 16)
        }
    }
}

impl<const L: usize, const R: usize, const P: usize, const T: usize> IceAgentN<L, R, P, T> {
    const INDEX_FITS_U8: () = assert!(L <= 255 && R <= 255, "candidate indices are u8");

    /// A new agent. `controlling` is the initial role (the offerer's agent
    /// is controlling in WebRTC); conflicts are resolved on the wire.
    pub fn new(
        config: IceConfig,
        controlling: bool,
        local: IceCredentials,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::INDEX_FITS_U8;
        let mut own = crypto::Rng::from_rng(rng);
        let tie_breaker = own.next_u64();
        let gather = BindingClient::new(config.retransmit, &mut own);
        IceAgentN {
            config,
            rng: own,
            controlling,
            tie_breaker,
            local_creds: local,
            remote_creds: None,
            locals: heapless::Vec::new(),
            remotes: heapless::Vec::new(),
            pairs: heapless::Vec::new(),
            tx: Transactions::new(config.retransmit),
            triggered: heapless::Deque::new(),
            responses: heapless::Deque::new(),
            events: heapless::Deque::new(),
            gather,
            stun_servers: heapless::Vec::new(),
            gathering_complete_sent: false,
            state: IceState::New,
            selected: None,
            consent: None,
            nominated_done: false,
            nomination_in_flight: false,
            first_valid_at: None,
            checking_started: None,
            remote_end_of_candidates: false,
            failed: false,
            closed: false,
            next_check_at: Instant::ZERO,
            last_now: Instant::ZERO,
            stats: IceStats::default(),
        }
    }

    // ------------------------------------------------------------ accessors

    pub fn state(&self) -> IceState {
        self.state
    }
    /// The selected pair as (local socket address, remote address).
    pub fn selected_pair(&self) -> Option<(SocketAddr, SocketAddr)> {
        self.selected.map(|s| (s.local, s.remote))
    }
    pub fn local_credentials(&self) -> &IceCredentials {
        &self.local_creds
    }
    pub fn remote_credentials(&self) -> Option<&IceCredentials> {
        self.remote_creds.as_ref()
    }
    pub fn is_controlling(&self) -> bool {
        self.controlling
    }
    pub fn tie_breaker(&self) -> u64 {
        self.tie_breaker
    }
    pub fn stats(&self) -> IceStats {
        self.stats
    }
    pub fn config(&self) -> &IceConfig {
        &self.config
    }
    /// The local candidates gathered so far.
    pub fn local_candidates(&self) -> impl Iterator<Item = Candidate> + '_ {
        (0..self.locals.len()).filter_map(|i| self.local_candidate(i))
    }
    /// Number of remote candidates kept (mDNS ones included).
    pub fn remote_candidate_count(&self) -> usize {
        self.remotes.len()
    }
    /// The check list.
    pub fn pairs(&self) -> impl Iterator<Item = PairInfo> + '_ {
        self.pairs.iter().filter_map(|p| {
            let (local, remote) = self.pair_addrs(p)?;
            Some(PairInfo { local, remote, priority: p.priority, state: p.state, nominated: p.nominated })
        })
    }

    fn local_candidate(&self, i: usize) -> Option<Candidate> {
        let l = self.locals.get(i)?;
        let related = (l.kind != CandidateKind::Host).then_some(l.base);
        Some(Candidate::new(l.kind, l.addr, l.priority, &foundation_string(l.foundation), related))
    }

    fn pair_addrs(&self, p: &Pair) -> Option<(SocketAddr, SocketAddr)> {
        let l = self.locals.get(p.local as usize)?;
        let r = self.remotes.get(p.remote as usize)?.addr?;
        Some((l.base, r))
    }

    // ------------------------------------------------------------ setup

    /// Add a host candidate: a socket the owner has bound to `addr`.
    pub fn add_local_candidate(&mut self, addr: SocketAddr) -> Result<(), IceError> {
        if self.closed {
            return Err(IceError::Closed);
        }
        if self.locals.iter().any(|l| l.addr == addr) {
            return Err(IceError::DuplicateCandidate);
        }
        let hosts = self.locals.iter().filter(|l| l.kind == CandidateKind::Host).count();
        let local_pref = 65535u16.saturating_sub(hosts as u16);
        let (ip, n) = ip_bytes(&addr);
        let cand = LocalCand {
            kind: CandidateKind::Host,
            addr,
            base: addr,
            priority: candidate_priority(CandidateKind::Host, local_pref, 1),
            foundation: crc_foundation(&[b"host udp ", &ip[..n]]),
            local_pref,
        };
        self.locals.push(cand).map_err(|_| IceError::TooManyCandidates)?;
        let li = self.locals.len() - 1;
        self.push_event(PendingEvent::Gathered(li as u8));
        for ri in 0..self.remotes.len() {
            self.add_pair(li, ri);
        }
        for si in 0..self.stun_servers.len() {
            let server = self.stun_servers[si];
            self.start_gather(addr, server);
        }
        self.gathering_complete_sent = false;
        self.update_state(self.last_now);
        Ok(())
    }

    /// Gather a server-reflexive candidate through `server` from every host
    /// candidate of the same address family.
    pub fn add_stun_server(&mut self, server: SocketAddr) -> Result<(), IceError> {
        if self.closed {
            return Err(IceError::Closed);
        }
        if self.stun_servers.contains(&server) {
            return Ok(());
        }
        self.stun_servers.push(server).map_err(|_| IceError::TooManyServers)?;
        for li in 0..self.locals.len() {
            let l = self.locals[li];
            if l.kind == CandidateKind::Host {
                self.start_gather(l.addr, server);
            }
        }
        self.gathering_complete_sent = false;
        Ok(())
    }

    fn start_gather(&mut self, base: SocketAddr, server: SocketAddr) {
        if base.is_ipv4() != server.is_ipv4() {
            return;
        }
        if self.gather.start(self.last_now, Some(base), server).is_err() {
            net_debug!("ice: gathering table full, skipping a STUN server");
        }
    }

    pub fn set_remote_credentials(&mut self, ufrag: &str, pwd: &str) -> Result<(), IceError> {
        if self.closed {
            return Err(IceError::Closed);
        }
        let creds = IceCredentials::new(ufrag, pwd)?;
        if self.remote_creds.as_ref() == Some(&creds) {
            return Ok(());
        }
        self.remote_creds = Some(creds);
        if let Some(c) = self.consent.as_mut() {
            // After a restart consent restarts with the new credentials.
            c.last_response = self.last_now;
            c.disconnected = false;
        }
        let now = self.last_now;
        self.tick(now);
        self.update_state(now);
        Ok(())
    }

    /// Add a remote candidate (trickled at any time). TCP candidates and
    /// components other than 1 are ignored (`Ok`); mDNS hostnames are kept
    /// unresolved and never paired.
    pub fn add_remote_candidate(&mut self, c: Candidate) -> Result<(), IceError> {
        if self.closed {
            return Err(IceError::Closed);
        }
        if c.transport != CandidateTransport::Udp || c.component != 1 {
            return Ok(());
        }
        let foundation = crypto::crc32(c.foundation.as_bytes());
        let addr = match &c.address {
            CandidateAddress::Ip(_) => c.socket_addr(),
            CandidateAddress::Hostname(_) => None,
        };
        if let Some(a) = addr {
            if let Some(ri) = self.remotes.iter().position(|r| r.addr == Some(a)) {
                let r = &mut self.remotes[ri];
                if r.kind == CandidateKind::PeerReflexive && c.kind != CandidateKind::PeerReflexive {
                    // Signaling caught up with a peer-reflexive candidate.
                    r.kind = c.kind;
                    r.priority = c.priority;
                    r.foundation = foundation;
                    self.recompute_priorities();
                    return Ok(());
                }
                return Err(IceError::DuplicateCandidate);
            }
        }
        self.remotes
            .push(RemoteCand { addr, kind: c.kind, priority: c.priority, foundation })
            .map_err(|_| IceError::TooManyCandidates)?;
        let ri = self.remotes.len() - 1;
        for li in 0..self.locals.len() {
            self.add_pair(li, ri);
        }
        let now = self.last_now;
        self.tick(now);
        self.update_state(now);
        Ok(())
    }

    /// The peer signaled end-of-candidates (RFC 8838 8.2).
    pub fn end_of_remote_candidates(&mut self) {
        self.remote_end_of_candidates = true;
        let now = self.last_now;
        self.check_failure(now);
        self.update_state(now);
    }

    /// ICE restart (RFC 8445 9): new local credentials, remote credentials
    /// and candidates forgotten, host candidates re-announced and
    /// server-reflexive ones gathered again. The selected pair keeps
    /// carrying traffic until a new one is selected.
    pub fn restart(&mut self, new_local: IceCredentials) {
        if self.closed {
            return;
        }
        self.local_creds = new_local;
        self.remote_creds = None;
        self.remotes.clear();
        self.pairs.clear();
        self.tx = Transactions::new(self.config.retransmit);
        self.triggered.clear();
        self.responses.clear();
        self.locals.retain(|l| l.kind == CandidateKind::Host);
        // Candidate indices changed: forget undelivered announcements (all
        // host candidates are announced again below).
        let mut kept: heapless::Deque<PendingEvent, EVENT_QUEUE_LEN> = heapless::Deque::new();
        while let Some(e) = self.events.pop_front() {
            if !matches!(e, PendingEvent::Gathered(_)) {
                let _ = kept.push_back(e);
            }
        }
        self.events = kept;
        self.nominated_done = false;
        self.nomination_in_flight = false;
        self.first_valid_at = None;
        self.checking_started = None;
        self.remote_end_of_candidates = false;
        self.failed = false;
        self.gathering_complete_sent = false;
        let gather = BindingClient::new(self.config.retransmit, &mut self.rng);
        self.gather = gather;
        for li in 0..self.locals.len() {
            self.push_event(PendingEvent::Gathered(li as u8));
            let base = self.locals[li].addr;
            for si in 0..self.stun_servers.len() {
                let server = self.stun_servers[si];
                self.start_gather(base, server);
            }
        }
        self.update_state(self.last_now);
    }

    /// Stop: no more datagrams, state `Closed`.
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.tx = Transactions::new(self.config.retransmit);
        self.triggered.clear();
        self.responses.clear();
        self.selected = None;
        self.consent = None;
        self.update_state(self.last_now);
    }

    // ------------------------------------------------------------ pairs

    fn add_pair(&mut self, li: usize, ri: usize) {
        if self.nominated_done {
            return;
        }
        let (Some(l), Some(r)) = (self.locals.get(li), self.remotes.get(ri)) else { return };
        let Some(raddr) = r.addr else { return };
        if l.kind != CandidateKind::Host
            || l.addr.is_ipv4() != raddr.is_ipv4()
            || raddr.port() == 0
            || raddr.ip().is_unspecified()
        {
            return;
        }
        if self.find_pair(li as u8, ri as u8).is_some() {
            return;
        }
        let foundation = (l.foundation, r.foundation);
        let priority = self.priority_of(l.priority, r.priority);
        // One Waiting pair per foundation; the others wait Frozen (6.1.2.6).
        let busy = self
            .pairs
            .iter()
            .any(|p| p.foundation == foundation && matches!(p.state, PairState::Waiting | PairState::InProgress));
        let state = if busy { PairState::Frozen } else { PairState::Waiting };
        let pair = Pair {
            local: li as u8,
            remote: ri as u8,
            priority,
            state,
            valid: false,
            nominated: false,
            nominate_on_success: false,
            foundation,
        };
        if self.pairs.push(pair).is_err() {
            // Full: replace the lowest-priority pair that is not being used.
            let victim = self
                .pairs
                .iter()
                .enumerate()
                .filter(|(_, p)| {
                    !p.valid && matches!(p.state, PairState::Frozen | PairState::Waiting | PairState::Failed)
                })
                .min_by_key(|(_, p)| p.priority)
                .map(|(i, p)| (i, p.priority));
            if let Some((i, prio)) = victim {
                if prio < priority {
                    self.pairs[i] = pair;
                }
            }
        }
    }

    fn priority_of(&self, local: u32, remote: u32) -> u64 {
        if self.controlling {
            pair_priority(local, remote)
        } else {
            pair_priority(remote, local)
        }
    }

    fn recompute_priorities(&mut self) {
        for i in 0..self.pairs.len() {
            let p = self.pairs[i];
            let (Some(l), Some(r)) = (self.locals.get(p.local as usize), self.remotes.get(p.remote as usize)) else {
                continue;
            };
            let prio = self.priority_of(l.priority, r.priority);
            self.pairs[i].priority = prio;
        }
    }

    fn find_pair(&self, local: u8, remote: u8) -> Option<usize> {
        self.pairs.iter().position(|p| p.local == local && p.remote == remote)
    }

    fn switch_role(&mut self, controlling: bool) {
        if self.controlling == controlling {
            return;
        }
        net_debug!("ice: switching role, controlling = {}", controlling);
        self.controlling = controlling;
        self.stats.role_conflicts += 1;
        self.nomination_in_flight = false;
        self.recompute_priorities();
    }

    fn enqueue_triggered(&mut self, t: Triggered, front: bool) {
        if self.triggered.iter().any(|q| *q == t) {
            return;
        }
        let r = if front { self.triggered.push_front(t) } else { self.triggered.push_back(t) };
        if r.is_err() {
            // Full: the pair stays Waiting and is checked in order anyway.
            net_debug!("ice: triggered-check queue full");
        }
    }

    /// The next check to start: (pair index, USE-CANDIDATE, position in the
    /// triggered queue). The same function decides `poll_timeout`, so the
    /// two cannot disagree.
    fn pick_check(&self) -> Option<(usize, bool, Option<usize>)> {
        if self.closed || self.failed || self.remote_creds.is_none() || self.tx.is_full() {
            return None;
        }
        for (qi, t) in self.triggered.iter().enumerate() {
            if let Some(pi) = self.find_pair(t.local, t.remote) {
                let p = &self.pairs[pi];
                if p.state == PairState::Waiting || (t.use_candidate && p.state == PairState::Succeeded && p.valid) {
                    return Some((pi, t.use_candidate, Some(qi)));
                }
            }
        }
        if self.nominated_done {
            return None;
        }
        let best = |s: PairState| {
            self.pairs.iter().enumerate().filter(|(_, p)| p.state == s).max_by_key(|(_, p)| p.priority).map(|(i, _)| i)
        };
        best(PairState::Waiting).or_else(|| best(PairState::Frozen)).map(|pi| (pi, false, None))
    }

    fn check_rto(&self) -> Duration {
        let n = self.pairs.iter().filter(|p| matches!(p.state, PairState::Waiting | PairState::InProgress)).count();
        let paced = self.config.ta.saturating_mul(n as u64);
        if paced > self.config.retransmit.rto {
            paced
        } else {
            self.config.retransmit.rto
        }
    }

    fn start_check(&mut self, now: Instant, pi: usize, use_candidate: bool, queue_pos: Option<usize>) {
        if let Some(qi) = queue_pos {
            // Drop this entry and the stale ones before it.
            for _ in 0..=qi {
                self.triggered.pop_front();
            }
        }
        let rto = self.check_rto();
        let p = &mut self.pairs[pi];
        if p.state != PairState::Succeeded {
            p.state = PairState::InProgress;
        }
        let ctx =
            TxCtx { local: p.local, remote: p.remote, use_candidate, controlling: self.controlling, consent: false };
        let mut tid = [0u8; 12];
        self.rng.fill_bytes(&mut tid);
        if self.tx.start(now, tid, ctx, Some(rto)).is_err() {
            // pick_check made sure there was room.
            self.pairs[pi].state = PairState::Waiting;
        }
    }

    fn unfreeze_foundation(&mut self, foundation: (u32, u32)) {
        for p in self.pairs.iter_mut() {
            if p.state == PairState::Frozen && p.foundation == foundation {
                p.state = PairState::Waiting;
            }
        }
    }

    // ------------------------------------------------------------ receive

    /// Feed a datagram that arrived on our socket `local` from `remote`.
    /// Non-STUN datagrams return [`IceError::NotStun`] (demultiplex them to
    /// DTLS/SRTP before calling this, RFC 7983).
    pub fn handle_receive(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        data: &[u8],
    ) -> Result<(), IceError> {
        if self.closed {
            return Err(IceError::Closed);
        }
        self.tick(now);
        let msg = match Message::new_checked(data) {
            Ok(m) => m,
            Err(StunError::NotStun) => return Err(IceError::NotStun),
            Err(e) => return self.drop_msg(IceError::Malformed(e)),
        };
        let Some(li) = self.locals.iter().position(|l| l.kind == CandidateKind::Host && l.addr == local) else {
            return self.drop_msg(IceError::UnknownLocalAddress);
        };
        if msg.method() != Method::BINDING {
            return self.drop_msg(IceError::UnexpectedMessage);
        }
        let r = match msg.class() {
            Class::Request => self.handle_request(now, li, remote, &msg),
            // Keepalive (RFC 8445 11): nothing to do, but only a genuine one is Ok.
            Class::Indication if msg.check_fingerprint().is_ok() => Ok(()),
            Class::Indication => self.drop_msg(IceError::BadFingerprint),
            Class::SuccessResponse | Class::ErrorResponse => {
                if self.gather.owns(&msg.transaction_id()) {
                    match self.gather.handle_message(remote, &msg) {
                        Ok(()) => {
                            self.process_gather_events();
                            Ok(())
                        }
                        Err(crate::stun::BindingError::Stun(_)) => self.drop_msg(IceError::BadFingerprint),
                        Err(_) => self.drop_msg(IceError::UnknownTransaction),
                    }
                } else {
                    self.handle_response(now, li, remote, &msg)
                }
            }
        };
        self.maybe_nominate(now);
        self.check_failure(now);
        self.update_state(now);
        r
    }

    fn drop_msg(&mut self, e: IceError) -> Result<(), IceError> {
        self.stats.dropped += 1;
        Err(e)
    }

    fn queue_response(&mut self, r: PendingResponse) -> Result<(), IceError> {
        self.responses.push_back(r).map_err(|_| IceError::QueueFull)
    }

    fn reject(
        &mut self,
        li: usize,
        remote: SocketAddr,
        tid: TransactionId,
        code: u16,
        authenticated: bool,
        unknown: &[u16],
    ) -> Result<(), IceError> {
        let mut list = heapless::Vec::new();
        for &u in unknown {
            let _ = list.push(u);
        }
        let local = self.locals[li].addr;
        self.queue_response(PendingResponse { local, remote, tid, error: Some(code), authenticated, unknown: list })?;
        Err(IceError::Rejected(code))
    }

    fn handle_request(
        &mut self,
        now: Instant,
        li: usize,
        remote: SocketAddr,
        msg: &Message<'_>,
    ) -> Result<(), IceError> {
        // ICE checks always carry FINGERPRINT (RFC 8445 7.2.2).
        if !msg.has_fingerprint() || msg.check_fingerprint().is_err() {
            return self.drop_msg(IceError::BadFingerprint);
        }
        let tid = msg.transaction_id();
        // Short-term credentials (RFC 8489 9.1.3): 400 without USERNAME or
        // MESSAGE-INTEGRITY, 401 if either is wrong.
        let username = match msg.username() {
            Ok(Some(u)) if msg.has_integrity() => u,
            _ => return self.reject(li, remote, tid, code::BAD_REQUEST, false, &[]),
        };
        let user_ok = username.split_once(':').map(|(ours, _)| ours == self.local_creds.ufrag.as_str());
        if user_ok != Some(true) || msg.check_integrity(self.local_creds.pwd.as_bytes()).is_err() {
            return self.reject(li, remote, tid, code::UNAUTHENTICATED, false, &[]);
        }
        let unknown = msg.unknown_comprehension_required(attr::is_known_binding);
        if !unknown.is_empty() {
            return self.reject(li, remote, tid, code::UNKNOWN_ATTRIBUTE, true, &unknown);
        }
        let (Ok(Some(priority)), Ok(controlling), Ok(controlled)) =
            (msg.priority(), msg.ice_controlling(), msg.ice_controlled())
        else {
            return self.reject(li, remote, tid, code::BAD_REQUEST, true, &[]);
        };
        // Role conflicts (RFC 8445 7.3.1.1).
        match (controlling, controlled) {
            (Some(theirs), _) if self.controlling => {
                if self.tie_breaker >= theirs {
                    self.stats.role_conflicts += 1;
                    return self.reject(li, remote, tid, code::ROLE_CONFLICT, true, &[]);
                }
                self.switch_role(false);
            }
            (None, Some(theirs)) if !self.controlling => {
                if self.tie_breaker >= theirs {
                    self.switch_role(true);
                } else {
                    self.stats.role_conflicts += 1;
                    return self.reject(li, remote, tid, code::ROLE_CONFLICT, true, &[]);
                }
            }
            (None, None) => return self.reject(li, remote, tid, code::BAD_REQUEST, true, &[]),
            _ => {}
        }
        let local = self.locals[li].addr;
        self.queue_response(PendingResponse {
            local,
            remote,
            tid,
            error: None,
            authenticated: true,
            unknown: heapless::Vec::new(),
        })?;
        self.stats.checks_received += 1;

        // Peer-reflexive remote candidate (7.3.1.3).
        let ri = match self.remotes.iter().position(|r| r.addr == Some(remote)) {
            Some(ri) => ri,
            None => {
                let (ip, n) = ip_bytes(&remote);
                let foundation = crc_foundation(&[b"prflx ", &ip[..n], &remote.port().to_be_bytes()]);
                let c = RemoteCand { addr: Some(remote), kind: CandidateKind::PeerReflexive, priority, foundation };
                if self.remotes.push(c).is_err() {
                    return Ok(()); // answered, but no room to pair it
                }
                self.remotes.len() - 1
            }
        };
        // Triggered check (7.3.1.4).
        if self.find_pair(li as u8, ri as u8).is_none() {
            self.add_pair(li, ri);
        }
        let Some(pi) = self.find_pair(li as u8, ri as u8) else { return Ok(()) };
        let use_candidate = msg.use_candidate() && !self.controlling;
        let p = &mut self.pairs[pi];
        let (pl, pr) = (p.local, p.remote);
        match p.state {
            PairState::Succeeded => {}
            PairState::InProgress => {
                // Cancel the check in flight (no more retransmissions, but a
                // late response still counts) and check again at once: the
                // peer's request just opened the path.
                p.state = PairState::Waiting;
                let mut ids: heapless::Vec<TransactionId, T> = heapless::Vec::new();
                for (id, c) in self.tx.iter() {
                    if !c.consent && !c.use_candidate && c.local == pl && c.remote == pr {
                        let _ = ids.push(*id);
                    }
                }
                for id in &ids {
                    self.tx.stop_retransmitting(id);
                }
                self.enqueue_triggered(Triggered { local: pl, remote: pr, use_candidate: false }, false);
            }
            PairState::Frozen | PairState::Waiting | PairState::Failed => {
                p.state = PairState::Waiting;
                self.enqueue_triggered(Triggered { local: pl, remote: pr, use_candidate: false }, false);
            }
        }
        // Nomination by the controlling peer (7.3.1.5).
        if use_candidate {
            let p = &mut self.pairs[pi];
            if p.state == PairState::Succeeded && p.valid {
                p.nominated = true;
            } else {
                p.nominate_on_success = true;
            }
            self.update_selected(now);
        }
        Ok(())
    }

    fn handle_response(
        &mut self,
        now: Instant,
        li: usize,
        remote: SocketAddr,
        msg: &Message<'_>,
    ) -> Result<(), IceError> {
        let tid = msg.transaction_id();
        let Some(ctx) = self.tx.get(&tid).copied() else {
            return self.drop_msg(IceError::UnknownTransaction);
        };
        if !msg.has_fingerprint() || msg.check_fingerprint().is_err() {
            return self.drop_msg(IceError::BadFingerprint);
        }
        let authentic = match &self.remote_creds {
            Some(rc) => msg.check_integrity(rc.pwd.as_bytes()).is_ok(),
            None => false,
        };
        if !authentic {
            return self.drop_msg(IceError::BadIntegrity);
        }
        self.tx.take(&tid);
        self.stats.responses_received += 1;
        let success = msg.class() == Class::SuccessResponse;

        if ctx.consent {
            if let (Some(sel), Some(c)) = (self.selected, self.consent.as_mut()) {
                if success && sel.local == self.locals[li].addr && sel.remote == remote {
                    c.last_response = now;
                    c.disconnected = false;
                }
            }
            return Ok(());
        }
        let Some(pi) = self.find_pair(ctx.local, ctx.remote) else { return Ok(()) };
        let Some((pl, pr)) = self.pair_addrs(&self.pairs[pi]) else { return Ok(()) };
        // Addresses must be symmetric (7.2.5.2.1).
        if pl != self.locals[li].addr || pr != remote {
            self.pairs[pi].state = PairState::Failed;
            if ctx.use_candidate {
                self.nomination_in_flight = false;
            }
            return Ok(());
        }
        if !success {
            let code = msg.error_code().ok().flatten().map(|(c, _)| c);
            if code == Some(code::ROLE_CONFLICT) {
                // 7.2.5.1: take the role opposite to the one we claimed, and retry.
                if self.controlling == ctx.controlling {
                    self.switch_role(!ctx.controlling);
                } else {
                    self.stats.role_conflicts += 1;
                }
                let p = &mut self.pairs[pi];
                if p.state != PairState::Succeeded {
                    p.state = PairState::Waiting;
                }
                let t = Triggered {
                    local: p.local,
                    remote: p.remote,
                    use_candidate: ctx.use_candidate && self.controlling,
                };
                self.enqueue_triggered(t, true);
            } else {
                let p = &mut self.pairs[pi];
                p.state = PairState::Failed;
                if ctx.use_candidate {
                    p.valid = false;
                }
            }
            if ctx.use_candidate {
                self.nomination_in_flight = false;
            }
            return Ok(());
        }
        // Success (7.2.5.3). The valid pair is the pair checked: its local
        // side is the base the request was sent from.
        let controlling = self.controlling;
        let p = &mut self.pairs[pi];
        p.state = PairState::Succeeded;
        p.valid = true;
        if ctx.use_candidate && ctx.controlling && controlling {
            p.nominated = true;
            self.nomination_in_flight = false;
        }
        if !controlling && p.nominate_on_success {
            p.nominated = true;
        }
        let foundation = p.foundation;
        self.first_valid_at.get_or_insert(now);
        self.unfreeze_foundation(foundation);
        if let (Some(sel), Some(c)) = (self.selected, self.consent.as_mut()) {
            if sel.local == pl && sel.remote == pr {
                c.last_response = now;
                c.disconnected = false;
            }
        }
        self.update_selected(now);
        Ok(())
    }

    fn process_gather_events(&mut self) {
        while let Some(ev) = self.gather.poll_event() {
            let BindingEvent::Success { source: Some(base), reflexive, server, .. } = ev else { continue };
            let Some(host) = self.locals.iter().find(|l| l.kind == CandidateKind::Host && l.addr == base).copied()
            else {
                continue;
            };
            if reflexive == base || self.locals.iter().any(|l| l.addr == reflexive) {
                continue; // redundant with a candidate we have
            }
            let (ip, n) = ip_bytes(&base);
            let (sip, sn) = ip_bytes(&server);
            let cand = LocalCand {
                kind: CandidateKind::ServerReflexive,
                addr: reflexive,
                base,
                priority: candidate_priority(CandidateKind::ServerReflexive, host.local_pref, 1),
                foundation: crc_foundation(&[b"srflx udp ", &ip[..n], &sip[..sn]]),
                local_pref: host.local_pref,
            };
            if self.locals.push(cand).is_ok() {
                let li = self.locals.len() - 1;
                self.push_event(PendingEvent::Gathered(li as u8));
            }
        }
    }

    fn update_selected(&mut self, now: Instant) {
        let best = self
            .pairs
            .iter()
            .filter(|p| p.nominated && p.valid && p.state == PairState::Succeeded)
            .max_by_key(|p| p.priority)
            .copied();
        let Some(b) = best else { return };
        let Some((local, remote)) = self.pair_addrs(&b) else { return };
        let same = self.selected.map(|s| (s.local, s.remote)) == Some((local, remote));
        if same && self.nominated_done {
            return;
        }
        if !same {
            let local_pref = self.locals[b.local as usize].local_pref;
            self.selected = Some(Selected { local, remote, local_pref });
            let next_send = now + self.consent_jitter();
            self.consent = Some(Consent { next_send, last_response: now, disconnected: false });
            self.push_event(PendingEvent::Selected);
        }
        self.nominated_done = true;
        // 8.1.2: stop checking: remove Waiting/Frozen pairs, cancel
        // lower-priority checks in progress.
        let mut cancel: heapless::Vec<(u8, u8), P> = heapless::Vec::new();
        for p in self.pairs.iter_mut() {
            match p.state {
                PairState::Waiting | PairState::Frozen => p.state = PairState::Failed,
                PairState::InProgress if p.priority < b.priority => {
                    p.state = PairState::Failed;
                    let _ = cancel.push((p.local, p.remote));
                }
                _ => {}
            }
        }
        self.tx.retain(|c| c.consent || c.use_candidate || !cancel.contains(&(c.local, c.remote)));
        self.triggered.clear();
    }

    fn consent_jitter(&mut self) -> Duration {
        // RFC 7675 5.1: uniformly 0.8..1.2 times the interval.
        let base = self.config.consent_interval.as_micros();
        let span = base / 5 * 2;
        let r = if span == 0 { 0 } else { self.rng.next_u64() % (span + 1) };
        Duration::from_micros(base - base / 5 + r)
    }

    fn maybe_nominate(&mut self, now: Instant) {
        if !self.controlling
            || self.nominated_done
            || self.nomination_in_flight
            || self.closed
            || self.failed
            || self.remote_creds.is_none()
        {
            return;
        }
        let Some((bi, best)) = self
            .pairs
            .iter()
            .enumerate()
            .filter(|(_, p)| p.valid && p.state == PairState::Succeeded)
            .max_by_key(|(_, p)| p.priority)
            .map(|(i, p)| (i, *p))
        else {
            return;
        };
        let pending_better = self.pairs.iter().any(|p| {
            p.priority > best.priority
                && matches!(p.state, PairState::Frozen | PairState::Waiting | PairState::InProgress)
        });
        let deadline = self.first_valid_at.map(|t| t + self.config.nomination_timeout);
        if pending_better && deadline.is_some_and(|d| now < d) {
            return;
        }
        let _ = bi;
        self.nomination_in_flight = true;
        self.enqueue_triggered(Triggered { local: best.local, remote: best.remote, use_candidate: true }, true);
    }

    fn nomination_deadline(&self) -> Option<Instant> {
        if !self.controlling || self.nominated_done || self.nomination_in_flight || self.remote_creds.is_none() {
            return None;
        }
        if !self.pairs.iter().any(|p| p.valid && p.state == PairState::Succeeded) {
            return None;
        }
        self.first_valid_at.map(|t| t + self.config.nomination_timeout)
    }

    fn checks_exhausted(&self) -> bool {
        self.pick_check().is_none()
            && !self
                .pairs
                .iter()
                .any(|p| matches!(p.state, PairState::Frozen | PairState::Waiting | PairState::InProgress))
    }

    fn check_failure(&mut self, now: Instant) {
        if self.failed || self.closed || self.selected.is_some() {
            return;
        }
        let Some(start) = self.checking_started else { return };
        let no_valid = !self.pairs.iter().any(|p| p.valid);
        let exhausted = self.checks_exhausted() && self.remote_end_of_candidates && no_valid;
        if exhausted || now >= start + self.config.checking_timeout {
            net_debug!("ice: failed (exhausted = {})", exhausted);
            self.failed = true;
            self.tx = Transactions::new(self.config.retransmit);
            self.triggered.clear();
        }
    }

    fn tick(&mut self, now: Instant) {
        if now > self.last_now {
            self.last_now = now;
        }
        if self.checking_started.is_none() && self.remote_creds.is_some() && !self.remotes.is_empty() {
            self.checking_started = Some(now);
        }
    }

    fn compute_state(&self) -> IceState {
        if self.closed {
            return IceState::Closed;
        }
        if self.failed {
            return IceState::Failed;
        }
        if self.selected.is_some() {
            if self.consent.is_some_and(|c| c.disconnected) {
                return IceState::Disconnected;
            }
            let done = self.nominated_done
                && self.remote_end_of_candidates
                && self.gather.in_progress() == 0
                && !self
                    .pairs
                    .iter()
                    .any(|p| matches!(p.state, PairState::Frozen | PairState::Waiting | PairState::InProgress));
            return if done { IceState::Completed } else { IceState::Connected };
        }
        if self.checking_started.is_some() {
            IceState::Checking
        } else {
            IceState::New
        }
    }

    fn update_state(&mut self, _now: Instant) {
        let s = self.compute_state();
        if s == IceState::Completed && matches!(self.state, IceState::New | IceState::Checking) {
            // Report the step through Connected, as browsers do.
            self.state = IceState::Connected;
            self.push_event(PendingEvent::State(IceState::Connected));
        }
        if s != self.state {
            net_debug!("ice: state {:?} -> {:?}", self.state, s);
            self.state = s;
            self.push_event(PendingEvent::State(s));
        }
    }

    fn push_event(&mut self, e: PendingEvent) {
        if self.events.push_back(e).is_err() {
            self.stats.events_dropped += 1;
        }
    }

    // ------------------------------------------------------------ output

    /// The next datagram to send, written into `buf` (at least
    /// [`MIN_TRANSMIT_BUFFER`] bytes; smaller buffers get `None`).
    /// `Transmit::source` is the local socket to send from.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if self.closed || buf.len() < MIN_TRANSMIT_BUFFER {
            return None;
        }
        self.tick(now);
        while let Some(r) = self.responses.pop_front() {
            match self.write_response(buf, &r) {
                Ok(len) => {
                    if r.error.is_some() {
                        self.stats.error_responses_sent += 1;
                    } else {
                        self.stats.responses_sent += 1;
                    }
                    return Some(Transmit { source: Some(r.local), destination: r.remote, len });
                }
                Err(_) => continue,
            }
        }
        if self.failed {
            return None;
        }
        if let Some(t) = self.gather.poll_transmit(now, buf) {
            self.stats.gather_sent += 1;
            return Some(t);
        }
        if let Some(t) = self.transmit_due(now, buf) {
            return Some(t);
        }
        if now >= self.next_check_at {
            if let Some((pi, uc, qi)) = self.pick_check() {
                self.start_check(now, pi, uc, qi);
                self.next_check_at = now + self.config.ta;
                if let Some(t) = self.transmit_due(now, buf) {
                    return Some(t);
                }
            }
        }
        if self.consent_due(now) {
            let mut tid = [0u8; 12];
            self.rng.fill_bytes(&mut tid);
            let ctx = TxCtx { local: 0, remote: 0, use_candidate: false, controlling: self.controlling, consent: true };
            if self.tx.start_with(now, tid, ctx, None, CONSENT_REQUESTS).is_ok() {
                let next = now + self.consent_jitter();
                if let Some(c) = self.consent.as_mut() {
                    c.next_send = next;
                }
                if let Some(t) = self.transmit_due(now, buf) {
                    return Some(t);
                }
            }
        }
        None
    }

    fn consent_due(&self, now: Instant) -> bool {
        self.selected.is_some()
            && self.remote_creds.is_some()
            && !self.tx.is_full()
            && self.consent.is_some_and(|c| now >= c.next_send)
    }

    fn transmit_due(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        while let Some((tid, ctx)) = self.tx.poll_due(now) {
            let (local, remote, local_pref) = if ctx.consent {
                match self.selected {
                    Some(s) => (s.local, s.remote, s.local_pref),
                    None => continue,
                }
            } else {
                let Some(pi) = self.find_pair(ctx.local, ctx.remote) else { continue };
                let Some((l, r)) = self.pair_addrs(&self.pairs[pi]) else { continue };
                (l, r, self.locals[ctx.local as usize].local_pref)
            };
            let Ok(len) = self.write_check(buf, &tid, local_pref, ctx) else { continue };
            if ctx.consent {
                self.stats.consent_sent += 1;
            } else {
                self.stats.checks_sent += 1;
            }
            return Some(Transmit { source: Some(local), destination: remote, len });
        }
        None
    }

    fn write_check(
        &self,
        buf: &mut [u8],
        tid: &TransactionId,
        local_pref: u16,
        ctx: TxCtx,
    ) -> Result<usize, StunError> {
        let rc = self.remote_creds.as_ref().ok_or(StunError::InvalidValue)?;
        let mut username: heapless::String<{ 2 * MAX_UFRAG_LEN + 1 }> = heapless::String::new();
        let _ = username.push_str(&rc.ufrag);
        let _ = username.push(':');
        let _ = username.push_str(&self.local_creds.ufrag);
        let mut b = MessageBuilder::new(buf, Method::BINDING, Class::Request, tid)?;
        b.username(&username)?;
        b.priority(candidate_priority(CandidateKind::PeerReflexive, local_pref, 1))?;
        if ctx.controlling {
            b.ice_controlling(self.tie_breaker)?;
        } else {
            b.ice_controlled(self.tie_breaker)?;
        }
        if ctx.use_candidate {
            b.use_candidate()?;
        }
        b.message_integrity(rc.pwd.as_bytes())?;
        b.fingerprint()?;
        Ok(b.finish())
    }

    fn write_response(&self, buf: &mut [u8], r: &PendingResponse) -> Result<usize, StunError> {
        let class = if r.error.is_some() { Class::ErrorResponse } else { Class::SuccessResponse };
        let mut b = MessageBuilder::new(buf, Method::BINDING, class, &r.tid)?;
        match r.error {
            None => b.xor_mapped_address(r.remote)?,
            Some(c) => {
                b.error_code(c, code::reason(c))?;
                if c == code::UNKNOWN_ATTRIBUTE {
                    b.unknown_attributes(&r.unknown)?;
                }
            }
        }
        if r.authenticated {
            b.message_integrity(self.local_creds.pwd.as_bytes())?;
        }
        b.fingerprint()?;
        Ok(b.finish())
    }

    pub fn poll_event(&mut self) -> Option<IceEvent> {
        if let Some(e) = self.events.pop_front() {
            return Some(match e {
                PendingEvent::Gathered(i) => match self.local_candidate(i as usize) {
                    Some(c) => IceEvent::CandidateGathered(c),
                    None => return self.poll_event(),
                },
                PendingEvent::State(s) => IceEvent::StateChanged(s),
                PendingEvent::Selected => match self.selected {
                    Some(s) => IceEvent::SelectedPairChanged { local: s.local, remote: s.remote },
                    None => return self.poll_event(),
                },
            });
        }
        if !self.gathering_complete_sent && !self.closed && !self.locals.is_empty() && self.gather.in_progress() == 0 {
            self.gathering_complete_sent = true;
            return Some(IceEvent::GatheringComplete);
        }
        None
    }

    /// When to call `handle_timeout` (and `poll_transmit`) next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let mut t: Option<Instant> = None;
        let mut add = |x: Instant| t = Some(t.map_or(x, |t: Instant| t.min(x)));
        if !self.responses.is_empty() {
            add(self.last_now);
        }
        if self.failed {
            return t;
        }
        if let Some(x) = self.gather.poll_timeout() {
            add(x);
        }
        if let Some(x) = self.tx.poll_timeout() {
            add(x);
        }
        if self.pick_check().is_some() {
            add(self.next_check_at);
        }
        if let (Some(_), Some(c)) = (self.selected, self.consent) {
            if self.remote_creds.is_some() {
                if !self.tx.is_full() {
                    add(c.next_send);
                }
                if !c.disconnected {
                    add(c.last_response + self.config.disconnected_timeout);
                }
                add(c.last_response + self.config.consent_timeout);
            }
        }
        if let Some(x) = self.nomination_deadline() {
            add(x);
        }
        if self.selected.is_none() {
            if let Some(s) = self.checking_started {
                add(s + self.config.checking_timeout);
            }
        }
        t
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        self.tick(now);
        self.gather.handle_timeout(now);
        self.process_gather_events();
        while let Some((_, ctx)) = self.tx.poll_expired(now) {
            if ctx.consent {
                continue;
            }
            // A cancelled check expiring while its replacement is pending or
            // in flight does not fail the pair.
            let other_check = self
                .tx
                .iter()
                .any(|(_, c)| !c.consent && !c.use_candidate && c.local == ctx.local && c.remote == ctx.remote);
            if let Some(pi) = self.find_pair(ctx.local, ctx.remote) {
                let p = &mut self.pairs[pi];
                if ctx.use_candidate {
                    self.nomination_in_flight = false;
                    p.valid = false;
                    p.state = PairState::Failed;
                } else if p.state == PairState::InProgress && !other_check {
                    p.state = PairState::Failed;
                }
            }
        }
        if self.selected.is_some() && self.remote_creds.is_some() {
            if let Some(c) = self.consent.as_mut() {
                if now >= c.last_response + self.config.consent_timeout {
                    net_debug!("ice: consent lost");
                    self.failed = true;
                    self.selected = None;
                    self.consent = None;
                    self.tx = Transactions::new(self.config.retransmit);
                } else if now >= c.last_response + self.config.disconnected_timeout {
                    c.disconnected = true;
                }
            }
        }
        self.maybe_nominate(now);
        self.check_failure(now);
        self.update_state(now);
    }
}
