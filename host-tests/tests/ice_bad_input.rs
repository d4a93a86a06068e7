//! The ICE agent under hostile input: wrong credentials, missing or broken
//! integrity and fingerprint, unknown transactions, unknown
//! comprehension-required attributes, role conflicts, truncated, random and
//! mutated datagrams. The agent must never panic, must answer exactly as
//! RFC 8445 / RFC 8489 say (400, 401, 420, 487) or drop silently, and must
//! not change state because of input it rejected.

use std::net::SocketAddr;

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use tinyrtc::ice::{Candidate, CandidateKind, IceAgent, IceConfig, IceCredentials, IceError, IceState, PairState};
use tinyrtc::stun::{attr, Class, Message, MessageBuilder, Method, TransactionId};
use tinyrtc::Instant;

const LOCAL: &str = "10.0.0.1:4000";
const REMOTE: &str = "10.0.0.2:5000";
const REMOTE_UFRAG: &str = "peer";
const REMOTE_PWD: &str = "peerpasswordpeerpassword";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn agent(controlling: bool, seed: u64) -> IceAgent {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let creds = IceCredentials::new("ours", "ourpasswordourpassword12").unwrap();
    let mut a = IceAgent::new(IceConfig::default(), controlling, creds, &mut rng);
    a.add_local_candidate(addr(LOCAL)).unwrap();
    a.set_remote_credentials(REMOTE_UFRAG, REMOTE_PWD).unwrap();
    let c = Candidate::new(CandidateKind::Host, addr(REMOTE), 2130706431, "1", None);
    a.add_remote_candidate(c).unwrap();
    // Drain the setup events.
    while a.poll_event().is_some() {}
    a
}

/// An agent that has sent its first check (so that the check list is
/// settled), with that check's transaction ID.
fn agent_checking(controlling: bool, seed: u64) -> (IceAgent, TransactionId) {
    let mut a = agent(controlling, seed);
    let tid = first_check(&mut a, Instant::from_secs(1)).0;
    (a, tid)
}

/// How to build a check request from the peer.
#[derive(Clone)]
struct Check {
    username: Option<String>,
    key: Option<Vec<u8>>,
    priority: Option<u32>,
    controlling: Option<u64>,
    controlled: Option<u64>,
    use_candidate: bool,
    fingerprint: bool,
    extra: Option<(u16, Vec<u8>)>,
}

impl Default for Check {
    fn default() -> Self {
        Check {
            username: Some(format!("ours:{REMOTE_UFRAG}")),
            key: Some(b"ourpasswordourpassword12".to_vec()),
            priority: Some(1853824767),
            controlling: Some(1),
            controlled: None,
            use_candidate: false,
            fingerprint: true,
            extra: None,
        }
    }
}

impl Check {
    fn build(&self, tid: &TransactionId) -> Vec<u8> {
        let mut buf = [0u8; 512];
        let mut b = MessageBuilder::new(&mut buf, Method::BINDING, Class::Request, tid).unwrap();
        if let Some(u) = &self.username {
            b.username(u).unwrap();
        }
        if let Some(p) = self.priority {
            b.priority(p).unwrap();
        }
        if let Some(t) = self.controlling {
            b.ice_controlling(t).unwrap();
        }
        if let Some(t) = self.controlled {
            b.ice_controlled(t).unwrap();
        }
        if self.use_candidate {
            b.use_candidate().unwrap();
        }
        if let Some((t, v)) = &self.extra {
            b.raw(*t, v).unwrap();
        }
        if let Some(k) = &self.key {
            b.message_integrity(k).unwrap();
        }
        if self.fingerprint {
            b.fingerprint().unwrap();
        }
        let n = b.finish();
        buf[..n].to_vec()
    }
}

/// Everything the agent would send now.
fn drain(a: &mut IceAgent, now: Instant) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1500];
    while let Some(t) = a.poll_transmit(now, &mut buf) {
        assert_eq!(t.source, Some(addr(LOCAL)));
        out.push((t.destination, buf[..t.len].to_vec()));
    }
    out
}

/// The responses (not requests) among `sent`, for transaction `tid`.
fn responses_to(sent: &[(SocketAddr, Vec<u8>)], tid: &TransactionId) -> Vec<Vec<u8>> {
    sent.iter()
        .filter(|(_, d)| {
            let m = Message::new_checked(d).unwrap();
            m.class() != Class::Request && &m.transaction_id() == tid
        })
        .map(|(_, d)| d.clone())
        .collect()
}

/// Observable state that rejected input must not change.
#[derive(Debug, PartialEq)]
struct Snapshot {
    state: IceState,
    selected: Option<(SocketAddr, SocketAddr)>,
    controlling: bool,
    checks_received: u64,
    responses_received: u64,
    remote_candidates: usize,
    pairs: Vec<(SocketAddr, SocketAddr, PairState, bool)>,
}

fn snapshot(a: &IceAgent) -> Snapshot {
    let s = a.stats();
    Snapshot {
        state: a.state(),
        selected: a.selected_pair(),
        controlling: a.is_controlling(),
        checks_received: s.checks_received,
        responses_received: s.responses_received,
        remote_candidates: a.remote_candidate_count(),
        pairs: a.pairs().map(|p| (p.local, p.remote, p.state, p.nominated)).collect(),
    }
}

/// Send `check` and return the agent's verdict and its single answer (if any).
fn send(a: &mut IceAgent, now: Instant, tid: TransactionId, data: &[u8]) -> (Result<(), IceError>, Option<Vec<u8>>) {
    let r = a.handle_receive(now, addr(LOCAL), addr(REMOTE), data);
    let sent = drain(a, now);
    let mut answers = responses_to(&sent, &tid);
    assert!(answers.len() <= 1, "one answer per request");
    (r, answers.pop())
}

fn error_code(resp: &[u8]) -> Option<u16> {
    Message::new_checked(resp).unwrap().error_code().unwrap().map(|(c, _)| c)
}

#[test]
fn valid_check_gets_an_authenticated_success() {
    let (mut a, _) = agent_checking(false, 1);
    let now = Instant::from_secs(1);
    let tid = [1; 12];
    let (r, resp) = send(&mut a, now, tid, &Check::default().build(&tid));
    assert_eq!(r, Ok(()));
    let resp = resp.expect("a success response");
    let m = Message::new_checked(&resp).unwrap();
    assert_eq!(m.class(), Class::SuccessResponse);
    assert_eq!(m.xor_mapped_address().unwrap(), Some(addr(REMOTE)));
    m.check_integrity(b"ourpasswordourpassword12").unwrap();
    m.check_fingerprint().unwrap();
    assert_eq!(a.stats().checks_received, 1);
}

#[test]
fn credential_errors_get_400_or_401_and_change_nothing() {
    let now = Instant::from_secs(1);
    let cases: Vec<(&str, Check, u16)> = vec![
        ("wrong password", Check { key: Some(b"ourpasswordourpassword13".to_vec()), ..Check::default() }, 401),
        ("wrong ufrag", Check { username: Some(format!("them:{REMOTE_UFRAG}")), ..Check::default() }, 401),
        ("username without colon", Check { username: Some("ours".into()), ..Check::default() }, 401),
        ("no MESSAGE-INTEGRITY", Check { key: None, ..Check::default() }, 400),
        ("no USERNAME", Check { username: None, ..Check::default() }, 400),
        ("no PRIORITY", Check { priority: None, ..Check::default() }, 400),
        ("no role attribute", Check { controlling: None, ..Check::default() }, 400),
    ];
    for (name, check, want) in cases {
        let (mut a, _) = agent_checking(false, 2);
        let before = snapshot(&a);
        let tid = [2; 12];
        let (r, resp) = send(&mut a, now, tid, &check.build(&tid));
        assert_eq!(r, Err(IceError::Rejected(want)), "{name}");
        let resp = resp.unwrap_or_else(|| panic!("{name}: no answer"));
        assert_eq!(error_code(&resp), Some(want), "{name}");
        let m = Message::new_checked(&resp).unwrap();
        m.check_fingerprint().unwrap();
        // 401 and the 400s for missing credentials cannot be authenticated;
        // a 400 for a missing ICE attribute of an authenticated request is.
        let authenticated = m.check_integrity(b"ourpasswordourpassword12").is_ok();
        assert_eq!(authenticated, name.starts_with("no PRIORITY") || name.starts_with("no role"), "{name}");
        assert_eq!(snapshot(&a), before, "{name}: state changed");
        assert_eq!(a.stats().error_responses_sent, 1, "{name}");
    }
}

#[test]
fn fingerprint_problems_are_dropped_silently() {
    let now = Instant::from_secs(1);
    let tid = [3; 12];
    let (mut a, _) = agent_checking(false, 3);
    let before = snapshot(&a);
    let no_fp = Check { fingerprint: false, ..Check::default() }.build(&tid);
    assert_eq!(send(&mut a, now, tid, &no_fp), (Err(IceError::BadFingerprint), None));
    let mut bad_fp = Check::default().build(&tid);
    let n = bad_fp.len();
    bad_fp[n - 1] ^= 0x55;
    assert_eq!(send(&mut a, now, tid, &bad_fp), (Err(IceError::BadFingerprint), None));
    assert_eq!(snapshot(&a), before);
    assert_eq!(a.stats().dropped, 2);
    assert_eq!(a.stats().error_responses_sent, 0);
}

#[test]
fn unknown_comprehension_required_attribute_gets_420() {
    let now = Instant::from_secs(1);
    let tid = [4; 12];
    let (mut a, _) = agent_checking(false, 4);
    let before = snapshot(&a);
    let check = Check { extra: Some((0x7f01, vec![1, 2, 3])), ..Check::default() };
    let (r, resp) = send(&mut a, now, tid, &check.build(&tid));
    assert_eq!(r, Err(IceError::Rejected(420)));
    let resp = resp.unwrap();
    let m = Message::new_checked(&resp).unwrap();
    assert_eq!(error_code(&resp), Some(420));
    assert_eq!(m.unknown_attributes().unwrap().unwrap().collect::<Vec<_>>(), [0x7f01]);
    m.check_integrity(b"ourpasswordourpassword12").unwrap();
    assert_eq!(snapshot(&a), before);
    // A comprehension-optional unknown attribute is ignored.
    let tid = [5; 12];
    let check = Check { extra: Some((0xc001, vec![1])), ..Check::default() };
    assert_eq!(send(&mut a, now, tid, &check.build(&tid)).0, Ok(()));
}

#[test]
fn role_conflicts_follow_the_tie_breaker() {
    let now = Instant::from_secs(1);
    // Controlling agent, peer also controlling with a smaller tie-breaker: 487.
    let (mut a, _) = agent_checking(true, 5);
    let ours = a.tie_breaker();
    let before = snapshot(&a);
    let tid = [6; 12];
    let check = Check { controlling: Some(ours.saturating_sub(1)), ..Check::default() };
    let (r, resp) = send(&mut a, now, tid, &check.build(&tid));
    assert_eq!(r, Err(IceError::Rejected(487)));
    let resp = resp.unwrap();
    assert_eq!(error_code(&resp), Some(487));
    Message::new_checked(&resp).unwrap().check_integrity(b"ourpasswordourpassword12").unwrap();
    assert_eq!(snapshot(&a), before, "the agent keeps its role");
    // A larger tie-breaker: the agent switches to controlled and answers.
    let tid = [7; 12];
    let check = Check { controlling: Some(ours.saturating_add(1)), ..Check::default() };
    assert_eq!(send(&mut a, now, tid, &check.build(&tid)).0, Ok(()));
    assert!(!a.is_controlling());

    // Controlled agent, peer also controlled: larger tie-breaker on our side
    // means we switch to controlling; smaller means 487.
    let (mut b, _) = agent_checking(false, 6);
    let ours = b.tie_breaker();
    let tid = [8; 12];
    let check = Check { controlling: None, controlled: Some(ours.saturating_add(1)), ..Check::default() };
    let (r, resp) = send(&mut b, now, tid, &check.build(&tid));
    assert_eq!((r, error_code(&resp.unwrap())), (Err(IceError::Rejected(487)), Some(487)));
    assert!(!b.is_controlling());
    let tid = [9; 12];
    let check = Check { controlling: None, controlled: Some(ours.saturating_sub(1)), ..Check::default() };
    assert_eq!(send(&mut b, now, tid, &check.build(&tid)).0, Ok(()));
    assert!(b.is_controlling());
}

/// The agent's first check to the remote, as (transaction ID, bytes).
fn first_check(a: &mut IceAgent, now: Instant) -> (TransactionId, Vec<u8>) {
    let sent = drain(a, now);
    let (dst, data) = sent.into_iter().next().expect("a check");
    assert_eq!(dst, addr(REMOTE));
    let m = Message::new_checked(&data).unwrap();
    assert_eq!(m.class(), Class::Request);
    assert_eq!(m.username().unwrap(), Some("peer:ours"));
    m.check_integrity(REMOTE_PWD.as_bytes()).unwrap();
    m.check_fingerprint().unwrap();
    (m.transaction_id(), data)
}

fn success_response(tid: &TransactionId, key: &[u8], mapped: SocketAddr) -> Vec<u8> {
    let mut buf = [0u8; 256];
    let mut b = MessageBuilder::new(&mut buf, Method::BINDING, Class::SuccessResponse, tid).unwrap();
    b.xor_mapped_address(mapped).unwrap();
    b.message_integrity(key).unwrap();
    b.fingerprint().unwrap();
    let n = b.finish();
    buf[..n].to_vec()
}

#[test]
fn responses_must_match_a_transaction_and_authenticate() {
    let now = Instant::from_secs(1);
    let (mut a, tid) = agent_checking(true, 7);
    let before = snapshot(&a);
    assert_eq!(before.pairs[0].2, PairState::InProgress);
    let mapped = addr(LOCAL);
    // Unknown transaction ID.
    let r =
        a.handle_receive(now, addr(LOCAL), addr(REMOTE), &success_response(&[0xee; 12], REMOTE_PWD.as_bytes(), mapped));
    assert_eq!(r, Err(IceError::UnknownTransaction));
    // Signed with the wrong key, or not signed at all.
    let r = a.handle_receive(now, addr(LOCAL), addr(REMOTE), &success_response(&tid, b"wrong", mapped));
    assert_eq!(r, Err(IceError::BadIntegrity));
    let mut unsigned = [0u8; 128];
    let mut b = MessageBuilder::new(&mut unsigned, Method::BINDING, Class::SuccessResponse, &tid).unwrap();
    b.xor_mapped_address(mapped).unwrap();
    b.fingerprint().unwrap();
    let n = b.finish();
    assert_eq!(a.handle_receive(now, addr(LOCAL), addr(REMOTE), &unsigned[..n]), Err(IceError::BadIntegrity));
    // Broken fingerprint.
    let mut bad = success_response(&tid, REMOTE_PWD.as_bytes(), mapped);
    let len = bad.len();
    bad[len - 2] ^= 1;
    assert_eq!(a.handle_receive(now, addr(LOCAL), addr(REMOTE), &bad), Err(IceError::BadFingerprint));
    // On an address that is not ours.
    let good = success_response(&tid, REMOTE_PWD.as_bytes(), mapped);
    assert_eq!(a.handle_receive(now, addr("10.0.0.1:4001"), addr(REMOTE), &good), Err(IceError::UnknownLocalAddress));
    assert_eq!(snapshot(&a), before);
    assert!(drain(&mut a, now).is_empty(), "responses are never answered");
    assert_eq!(a.stats().dropped, 5);
    // The genuine response still counts afterwards.
    assert_eq!(a.handle_receive(now, addr(LOCAL), addr(REMOTE), &good), Ok(()));
    assert_eq!(a.pairs().next().unwrap().state, PairState::Succeeded);
    // And a replay of it is an unknown transaction.
    assert_eq!(a.handle_receive(now, addr(LOCAL), addr(REMOTE), &good), Err(IceError::UnknownTransaction));
}

#[test]
fn a_response_from_the_wrong_address_fails_the_pair() {
    let now = Instant::from_secs(1);
    let (mut a, tid) = agent_checking(true, 8);
    let good = success_response(&tid, REMOTE_PWD.as_bytes(), addr(LOCAL));
    // Non-symmetric: RFC 8445 7.2.5.2.1 says the check failed.
    assert_eq!(a.handle_receive(now, addr(LOCAL), addr("10.0.0.9:5000"), &good), Ok(()));
    assert_eq!(a.pairs().next().unwrap().state, PairState::Failed);
    assert_eq!(a.selected_pair(), None);
}

#[test]
fn non_stun_and_other_methods_are_not_ours() {
    let now = Instant::from_secs(1);
    let (mut a, _) = agent_checking(false, 9);
    let before = snapshot(&a);
    // A DTLS record and an RTP packet (RFC 7983 ranges).
    assert_eq!(a.handle_receive(now, addr(LOCAL), addr(REMOTE), &[22, 254, 253, 0, 0]), Err(IceError::NotStun));
    assert_eq!(a.handle_receive(now, addr(LOCAL), addr(REMOTE), &[0x80; 40]), Err(IceError::NotStun));
    assert_eq!(a.handle_receive(now, addr(LOCAL), addr(REMOTE), &[]), Err(IceError::NotStun));
    assert_eq!(a.stats().dropped, 0, "non-STUN is not counted as a drop");
    // An Allocate request (TURN): not ICE.
    let mut buf = [0u8; 64];
    let mut b = MessageBuilder::new(&mut buf, Method::ALLOCATE, Class::Request, &[1; 12]).unwrap();
    b.fingerprint().unwrap();
    let n = b.finish();
    assert_eq!(a.handle_receive(now, addr(LOCAL), addr(REMOTE), &buf[..n]), Err(IceError::UnexpectedMessage));
    assert!(drain(&mut a, now).iter().all(|(_, d)| Message::new_checked(d).unwrap().class() == Class::Request));
    assert_eq!(snapshot(&a), before);
}

#[test]
fn truncated_random_and_mutated_inputs() {
    let seed: u64 = std::env::var("ICE_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x1ce);
    println!("seed {seed} (set ICE_FUZZ_SEED to replay)");
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let now = Instant::from_secs(1);
    // The agent's own check gives responses something to hit.
    let (mut a, own_tid) = agent_checking(false, 10);
    let before = snapshot(&a);

    let tid = [0x42; 12];
    let valid_check = Check::default().build(&tid);
    let valid_resp = success_response(&own_tid, REMOTE_PWD.as_bytes(), addr(LOCAL));
    let mut accepted = 0;
    let mut inputs = 0;

    // Every truncation of a valid check and a valid response.
    for v in [&valid_check, &valid_resp] {
        for n in 0..v.len() {
            inputs += 1;
            assert!(a.handle_receive(now, addr(LOCAL), addr(REMOTE), &v[..n]).is_err(), "prefix {n} accepted");
        }
    }
    // Random bytes, some with a STUN-looking header.
    for i in 0..2000 {
        let len = rng.gen_range(0..200);
        let mut d = vec![0u8; len];
        rng.fill_bytes(&mut d);
        if i % 2 == 0 && len >= 20 {
            d[0] &= 0x01;
            d[2..4].copy_from_slice(&((len - 20) as u16 & !3).to_be_bytes());
            d[4..8].copy_from_slice(&0x2112_a442u32.to_be_bytes());
            d.truncate(20 + ((len - 20) & !3));
        }
        inputs += 1;
        assert!(a.handle_receive(now, addr(LOCAL), addr(REMOTE), &d).is_err(), "random input {i} accepted: {d:02x?}");
        drain(&mut a, now);
    }
    // Mutations of valid messages: flipped bits, overwritten bytes, changed
    // lengths. FINGERPRINT and MESSAGE-INTEGRITY catch every one.
    for i in 0..3000 {
        let base = if i % 3 == 0 { &valid_resp } else { &valid_check };
        let mut d = base.clone();
        match rng.gen_range(0..4) {
            0 => {
                let bit = rng.gen_range(0..d.len() * 8);
                d[bit / 8] ^= 1 << (bit % 8);
            }
            1 => {
                let at = rng.gen_range(0..d.len());
                d[at] = rng.gen();
            }
            2 => {
                let at = rng.gen_range(20..d.len());
                d.insert(at, rng.gen());
            }
            _ => {
                let at = rng.gen_range(0..d.len());
                d.remove(at);
            }
        }
        if d == *base {
            continue;
        }
        inputs += 1;
        let r = a.handle_receive(now, addr(LOCAL), addr(REMOTE), &d);
        if r.is_ok() {
            println!("accepted mutation {i}: {d:02x?}");
            accepted += 1;
        }
        drain(&mut a, now);
    }
    println!("{inputs} bad inputs, {accepted} accepted");
    assert_eq!(accepted, 0);
    assert_eq!(snapshot(&a), before, "bad input changed the agent");
    // The agent still works: the genuine check and response are accepted.
    assert_eq!(a.handle_receive(now, addr(LOCAL), addr(REMOTE), &valid_check), Ok(()));
    assert_eq!(a.handle_receive(now, addr(LOCAL), addr(REMOTE), &valid_resp), Ok(()));
    assert_eq!(a.stats().checks_received, 1);
    assert_eq!(a.stats().responses_received, 1);
}

#[test]
fn nomination_requires_authentication() {
    // A USE-CANDIDATE in a request that fails authentication selects nothing.
    let now = Instant::from_secs(1);
    let (mut a, own_tid) = agent_checking(false, 11);
    let good = success_response(&own_tid, REMOTE_PWD.as_bytes(), addr(LOCAL));
    assert_eq!(a.handle_receive(now, addr(LOCAL), addr(REMOTE), &good), Ok(()));
    let tid = [0x11; 12];
    let forged = Check { use_candidate: true, key: Some(b"guess".to_vec()), ..Check::default() };
    assert_eq!(send(&mut a, now, tid, &forged.build(&tid)).0, Err(IceError::Rejected(401)));
    assert_eq!(a.selected_pair(), None);
    let tid = [0x12; 12];
    let genuine = Check { use_candidate: true, ..Check::default() };
    assert_eq!(send(&mut a, now, tid, &genuine.build(&tid)).0, Ok(()));
    assert_eq!(a.selected_pair(), Some((addr(LOCAL), addr(REMOTE))));
    assert!(matches!(a.state(), IceState::Connected | IceState::Completed));
}

#[test]
fn attributes_known_to_the_agent() {
    // Every comprehension-required attribute in a check the agent really
    // sends is one it would itself accept (so two tinyrtc agents never answer
    // each other with 420),
    // and the attribute the 420 tests use is really unknown to it.
    for controlling in [true, false] {
        let mut a = agent(controlling, 7);
        let (_, data) = first_check(&mut a, Instant::from_secs(1));
        let m = Message::new_checked(&data).unwrap();
        let types: Vec<u16> = m.attributes().map(|at| at.typ).collect();
        assert!(types.contains(&attr::USERNAME) && types.contains(&attr::PRIORITY), "{types:x?}");
        assert!(types.contains(if controlling { &attr::ICE_CONTROLLING } else { &attr::ICE_CONTROLLED }));
        // Comprehension-required attributes (below 0x8000) are the ones an
        // unknown type of would draw a 420.
        for t in types.into_iter().filter(|t| *t < 0x8000) {
            assert!(attr::is_known_binding(t), "agent sent attribute 0x{t:04x} it does not know");
        }
    }
    assert!(!attr::is_known_binding(0x0077));
}
