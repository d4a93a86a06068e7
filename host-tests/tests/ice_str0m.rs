//! Interop: our ICE agent against str0m's independent ICE agent (the `is`
//! crate behind `str0m::ice`), in one process with a virtual clock and no
//! loss. Candidates cross as `candidate:` text in both directions, so the
//! line formats are checked too. Both roles, and consent kept alive.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use rand::SeedableRng;
use str0m::ice::{IceAgent as Str0mAgent, IceAgentEvent, IceCreds, StunMessage, StunPacket};
use str0m::net::Protocol;
use tinyrtc::ice::{Candidate, IceAgent, IceConfig, IceCredentials, IceEvent, IceState};
use tinyrtc::{Duration, Instant};

const OURS: &str = "10.0.0.1:4000";
const THEIRS: &str = "10.0.0.2:5000";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

struct Pair {
    ours: IceAgent,
    theirs: Str0mAgent,
    base: StdInstant,
    now: Instant,
    /// (deliver at, to ours?, source, destination, bytes)
    in_flight: VecDeque<(Instant, bool, SocketAddr, SocketAddr, Vec<u8>)>,
    our_events: Vec<IceEvent>,
    their_nominated: Option<(SocketAddr, SocketAddr)>,
    their_states: Vec<String>,
}

impl Pair {
    fn new(we_control: bool, seed: u64) -> Pair {
        Self::with_roles(we_control, !we_control, seed)
    }

    fn with_roles(we_control: bool, they_control: bool, seed: u64) -> Pair {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let mut ours = IceAgent::new(IceConfig::default(), we_control, IceCredentials::random(&mut rng), &mut rng);
        let their_creds = IceCreds::new();
        let provider = str0m::crypto::from_feature_flags();
        let mut theirs = Str0mAgent::with_hmac(their_creds.clone(), provider.sha1_hmac_provider);
        theirs.set_controlling(they_control);

        // Credentials.
        ours.set_remote_credentials(&their_creds.ufrag, &their_creds.pass).unwrap();
        let oc = ours.local_credentials().clone();
        theirs.set_remote_credentials(IceCreds { ufrag: oc.ufrag.to_string(), pass: oc.pwd.to_string() });

        // Their host candidate, as text, into our agent.
        let c = str0m::Candidate::host(addr(THEIRS), "udp").unwrap();
        let line = theirs.add_local_candidate(c).unwrap().to_sdp_string();
        println!("str0m candidate: {line}");
        ours.add_remote_candidate(Candidate::parse(&line).unwrap()).unwrap();

        ours.add_local_candidate(addr(OURS)).unwrap();
        let mut p = Pair {
            ours,
            theirs,
            base: StdInstant::now(),
            now: Instant::from_secs(1),
            in_flight: VecDeque::new(),
            our_events: Vec::new(),
            their_nominated: None,
            their_states: Vec::new(),
        };
        p.theirs.handle_timeout(p.std_now());
        p
    }

    fn std_now(&self) -> StdInstant {
        self.base + StdDuration::from_micros(self.now.as_micros())
    }

    fn pump(&mut self) {
        let mut buf = [0u8; 1500];
        let latency = Duration::from_millis(10);
        while let Some(t) = self.ours.poll_transmit(self.now, &mut buf) {
            let src = t.source.unwrap();
            self.in_flight.push_back((self.now + latency, false, src, t.destination, buf[..t.len].to_vec()));
        }
        while let Some(e) = self.ours.poll_event() {
            if let IceEvent::CandidateGathered(c) = &e {
                // Our line, parsed by str0m.
                let line = c.to_string();
                println!("our candidate: {line}");
                let theirs = str0m::Candidate::from_sdp_string(&line).expect("str0m parses our candidate line");
                self.theirs.add_remote_candidate(theirs);
            }
            self.our_events.push(e);
        }
        while let Some(t) = self.theirs.poll_transmit() {
            let data: Vec<u8> = t.contents.into();
            self.in_flight.push_back((self.now + latency, true, t.source, t.destination, data));
        }
        while let Some(e) = self.theirs.poll_event() {
            match e {
                IceAgentEvent::NominatedSend { source, destination, .. } => {
                    self.their_nominated = Some((source, destination))
                }
                IceAgentEvent::IceConnectionStateChange(s) => self.their_states.push(format!("{s:?}")),
                _ => {}
            }
        }
    }

    fn run_until(&mut self, until: Instant, stop: impl Fn(&Pair) -> bool) {
        for _ in 0..100_000 {
            self.pump();
            if stop(self) || self.now >= until {
                return;
            }
            let mut next = until;
            if let Some(t) = self.in_flight.iter().map(|p| p.0).min() {
                next = next.min(t);
            }
            if let Some(t) = self.ours.poll_timeout() {
                next = next.min(t.max(self.now));
            }
            if let Some(t) = self.theirs.poll_timeout() {
                let t = Instant::from_micros(t.saturating_duration_since(self.base).as_micros() as u64);
                next = next.min(t.max(self.now));
            }
            // Never stand still: str0m's timeouts can be "now" for a while.
            self.now = next.max(self.now + Duration::from_micros(100));
            let now = self.now;
            let due: Vec<_> = {
                let (d, rest): (Vec<_>, Vec<_>) = self.in_flight.drain(..).partition(|p| p.0 <= now);
                self.in_flight = rest.into();
                d
            };
            for (_, to_ours, src, dst, data) in due {
                if to_ours {
                    assert_eq!(dst, addr(OURS));
                    if let Err(e) = self.ours.handle_receive(now, dst, src, &data) {
                        panic!("our agent rejected str0m's datagram: {e}");
                    }
                } else {
                    assert_eq!(dst, addr(THEIRS));
                    let message = StunMessage::parse(&data).expect("str0m parses our STUN");
                    let packet = StunPacket { proto: Protocol::Udp, source: src, destination: dst, message };
                    assert!(self.theirs.handle_packet(self.std_now(), packet), "str0m rejected our datagram");
                }
            }
            if self.ours.poll_timeout().is_some_and(|t| t <= now) {
                self.ours.handle_timeout(now);
            }
            let sn = self.std_now();
            self.theirs.handle_timeout(sn);
        }
        panic!("simulation did not finish");
    }
}

fn connect(we_control: bool, seed: u64) -> Pair {
    connect_with(Pair::new(we_control, seed))
}

fn connect_with(mut p: Pair) -> Pair {
    let until = p.now + Duration::from_secs(10);
    p.run_until(until, |p| p.ours.selected_pair().is_some() && p.their_nominated.is_some());
    assert_eq!(p.ours.selected_pair(), Some((addr(OURS), addr(THEIRS))), "our state {:?}", p.ours.state());
    assert_eq!(p.their_nominated, Some((addr(THEIRS), addr(OURS))), "str0m states {:?}", p.their_states);
    assert!(matches!(p.ours.state(), IceState::Connected | IceState::Completed));
    p
}

#[test]
fn we_control_str0m_is_controlled() {
    let mut p = connect(true, 1);
    assert!(p.ours.is_controlling());
    // Consent keeps both sides up well past the 30 s consent timeout.
    let until = p.now + Duration::from_secs(45);
    p.run_until(until, |_| false);
    assert!(matches!(p.ours.state(), IceState::Connected | IceState::Completed), "{:?}", p.ours.state());
    assert!(p.ours.stats().consent_sent >= 6, "{:?}", p.ours.stats());
    assert!(p.theirs.state().is_connected(), "str0m {:?}", p.theirs.state());
}

#[test]
fn str0m_controls_we_are_controlled() {
    let mut p = connect(false, 2);
    assert!(!p.ours.is_controlling());
    let until = p.now + Duration::from_secs(45);
    p.run_until(until, |_| false);
    assert!(matches!(p.ours.state(), IceState::Connected | IceState::Completed), "{:?}", p.ours.state());
    assert!(p.theirs.state().is_connected(), "str0m {:?}", p.theirs.state());
}

#[test]
fn role_conflicts_resolve_with_str0m() {
    for (both_controlling, ours_larger, seed) in
        [(true, true, 3), (true, false, 4), (false, true, 5), (false, false, 6)]
    {
        let mut p = Pair::with_roles(both_controlling, both_controlling, seed);
        let tb = p.ours.tie_breaker();
        let theirs = if ours_larger { tb - 1 } else { tb + 1 };
        p.theirs.set_control_tie_breaker(theirs);
        let p = connect_with(p);
        let case = format!("both controlling {both_controlling}, ours larger {ours_larger}");
        assert_ne!(p.ours.is_controlling(), p.theirs.controlling(), "exactly one controlling agent: {case}");
        // RFC 8445 7.3.1.1: with two controlling agents the larger
        // tie-breaker stays controlling. (With two controlled agents the RFC
        // makes the larger one switch to controlling, but str0m keeps the
        // larger one controlled, so the outcome depends on who receives a
        // check first; only "exactly one controlling" is checked there.)
        if both_controlling {
            assert_eq!(p.ours.is_controlling(), ours_larger, "{case}");
        }
    }
}
