//! ICE (RFC 8445 full ICE, RFC 8838 trickle, RFC 7675 consent freshness):
//! a sans-IO agent for one data stream with one component over UDP.
//!
//! Implemented:
//! - candidates: host (sockets the owner binds), server-reflexive (RFC 8445
//!   5.1.1.2, through up to [`MAX_STUN_SERVERS`] STUN servers) and
//!   peer-reflexive remote candidates (7.3.1.3); priorities (5.1.2) and
//!   foundations (5.1.1.3); `candidate:` lines as browsers write them
//!   ([`Candidate::parse`], `Display`), TCP candidates parsed and ignored,
//!   mDNS `*.local` hostnames kept unresolved and not paired.
//! - check list (6.1.2): pairing with each host base (server-reflexive local
//!   candidates are replaced by their base, so pairs always send from a
//!   socket), pair priority (6.1.2.3), pruning to `P` pairs, Frozen/Waiting
//!   per foundation, unfreezing on success, triggered checks (7.3.1.4),
//!   pacing by Ta (14.2), check RTO `max(RTO, Ta * N)` (14.3).
//! - checks authenticated on every request and response: USERNAME
//!   `local:remote`, MESSAGE-INTEGRITY (short-term), FINGERPRINT,
//!   transaction ID and symmetric addresses; 400/401/420/487 answers.
//! - both roles; role conflicts by tie-breaker (7.3.1.1) and on 487
//!   (7.2.5.1); regular nomination by the controlling agent (8.1.1), with
//!   USE-CANDIDATE on any pair accepted by the controlled agent (so
//!   aggressive nomination by the peer works).
//! - trickle: remote candidates at any time, end-of-candidates.
//! - consent freshness (RFC 7675): checks on the selected pair every
//!   `consent_interval` (randomized 0.8-1.2x), `Disconnected` after
//!   `disconnected_timeout`, `Failed` after `consent_timeout`.
//! - ICE restart (9).
//!
//! Left out: multiple components or data streams, TCP candidates (RFC
//! 6544), relayed candidates (TURN is a separate module), local
//! peer-reflexive candidates (the valid pair is the pair checked: the base
//! is what the owner sends from), renomination, lite mode, keepalive
//! indications (consent checks keep NAT bindings alive), mDNS resolution.
//!
//! # Driving it
//!
//! Sans-IO as every machine here: after `new` and each `handle_*` or setup
//! call, drain `poll_transmit` (send each datagram from `Transmit::source`)
//! and `poll_event`, then wait until `poll_timeout` or the next datagram.
//! All randomness (transaction IDs, tie-breaker, jitter) comes from a
//! generator seeded once from the caller's, so a seeded run is repeatable.
//!
//! # Memory
//!
//! [`IceAgent`] (8 local, 16 remote candidates, 32 pairs, 16 transactions)
//! is 6784 bytes on x86_64 (`ice::tests::agent_size` prints it) and 6616
//! bytes on `thumbv6m-none-eabi` (measured with `size_of` in a build for
//! that target). Scale with [`IceAgentN`]'s bounds.

mod agent;
mod candidate;

pub use agent::{
    IceAgent, IceAgentN, IceConfig, IceCredentials, IceError, IceEvent, IceState, IceStats, PairInfo, PairState,
    CONSENT_REQUESTS, EVENT_QUEUE_LEN, MAX_GATHER_TRANSACTIONS, MAX_PWD_LEN, MAX_STUN_SERVERS, MAX_UFRAG_LEN,
    MIN_TRANSMIT_BUFFER, RESPONSE_QUEUE_LEN, TRIGGERED_QUEUE_LEN,
};
pub use candidate::{
    candidate_priority, pair_priority, Candidate, CandidateAddress, CandidateKind, CandidateParseError,
    CandidateTransport, TcpType, MAX_FOUNDATION_LEN, MAX_HOSTNAME_LEN,
};

#[cfg(test)]
mod tests;
