//! Two tinyrtc `Peer`s, each behind its own port-restricted NAT, in the
//! deterministic simulator: full ICE with server-reflexive candidates from
//! a STUN server (trickled as the peers surface them), DTLS-SRTP, then 60 s
//! (virtual) of the ffmpeg H.264 clip, looped, over links losing 10 % of
//! the datagrams each way with ~50 ms RTT. The camera answers NACKs from
//! its send history (RTX), the viewer reorders, NACKs and gives up; the
//! judge is the clip itself: each access unit the viewer reassembles must
//! equal the one sent, byte for byte.
//!
//! Also: a tampered fingerprint in the remote SDP makes the session fail
//! closed (no media flows), and malformed SDP gives a typed error.
//!
//! `NETSIM_SEED=<n>` replays a run; the seed is printed.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;

use host_tests::clips;
use host_tests::netsim::{run_with_seed, LinkConfig, NatConfig, NatType, Network, Node, NodeId, StunServer};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tinyrtc::dtls::DtlsFailure;
use tinyrtc::peer::{Peer, PeerConfig, PeerError, PeerEvent, PeerFailure, PeerState};
use tinyrtc::rtp::h264::H264Depacketizer;
use tinyrtc::rtp::packetizer::Depacketizer;
use tinyrtc::sdp::{self, CodecChoice, ErrorKind, Fingerprint, MediaKind};
use tinyrtc::{Duration, Instant, Transmit};

const STUN: &str = "203.0.113.10:3478";
const CAM_NAT: &str = "198.51.100.1";
const VIEW_NAT: &str = "198.51.100.2";
const CAM: &str = "192.168.1.10:5000";
const VIEW: &str = "10.0.0.20:6000";
/// Virtual seconds of video.
const SECONDS: u64 = 60;
/// The clip's frame rate.
const FPS: u64 = 15;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn clip_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("media-clips")
}

/// A received video packet (payload copied).
struct Got {
    seq: u16,
    timestamp: u32,
    marker: bool,
    payload: Vec<u8>,
}

/// A `Peer` as a simulator node: datagrams in, transmits out; media the
/// application sends waits in `outbox`; what it receives (in place or
/// held back after a gap) lands in `video`.
struct PeerHost {
    peer: Peer,
    outbox: VecDeque<(SocketAddr, Vec<u8>)>,
    events: Vec<(Instant, PeerEvent)>,
    video: Vec<Got>,
    receive_errors: u64,
}

impl PeerHost {
    fn new(peer: Peer) -> Self {
        PeerHost { peer, outbox: VecDeque::new(), events: Vec::new(), video: Vec::new(), receive_errors: 0 }
    }

    fn drain(&mut self, now: Instant) {
        let mut buf = [0u8; 1500];
        while let Some(m) = self.peer.poll_media(&mut buf) {
            self.video.push(Got {
                seq: m.sequence_number,
                timestamp: m.timestamp,
                marker: m.marker,
                payload: buf[m.payload_offset..][..m.payload_len].to_vec(),
            });
        }
        while let Some(e) = self.peer.poll_event() {
            self.events.push((now, e));
        }
    }

    /// Packetize and protect one frame into the outbox.
    fn send_frame(&mut self, now: Instant, frame: &[u8], timestamp: u32) -> Result<usize, PeerError> {
        let mut buf = [0u8; 1500];
        let mut w = self.peer.send_frame(now, MediaKind::Video, frame, timestamp)?;
        let mut n = 0;
        while let Some(t) = w.next_packet(&mut buf) {
            let t = t?;
            self.outbox.push_back((t.destination, buf[..t.len].to_vec()));
            n += 1;
        }
        Ok(n)
    }

    fn failed(&self) -> Option<PeerFailure> {
        self.events.iter().find_map(|(_, e)| match e {
            PeerEvent::Failed(f) => Some(*f),
            _ => None,
        })
    }
}

impl Node for PeerHost {
    fn handle_receive(&mut self, now: Instant, from: SocketAddr, _to: SocketAddr, data: &[u8]) {
        let mut d = data.to_vec();
        match self.peer.handle_receive(now, from, &mut d) {
            Ok(Some(m)) if m.kind == MediaKind::Video => self.video.push(Got {
                seq: m.sequence_number,
                timestamp: m.timestamp,
                marker: m.marker,
                payload: d[m.payload_offset..][..m.payload_len].to_vec(),
            }),
            Ok(_) => {}
            Err(_) => self.receive_errors += 1,
        }
        self.drain(now);
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if let Some((destination, d)) = self.outbox.pop_front() {
            buf[..d.len()].copy_from_slice(&d);
            return Some(Transmit { source: None, destination, len: d.len() });
        }
        let t = self.peer.poll_transmit(now, buf);
        self.drain(now);
        t
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.peer.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.peer.handle_timeout(now);
        self.drain(now);
    }
}

fn config(camera: bool) -> PeerConfig {
    let base = if camera { PeerConfig::camera() } else { PeerConfig::viewer() };
    PeerConfig {
        video_codecs: &[CodecChoice::H264ConstrainedBaseline],
        audio_codecs: &[],
        datachannel: false,
        ice_lite: false,
        stun_servers: [Some(sa(STUN)), None],
        ..base
    }
}

struct World {
    net: Network,
    cam: NodeId,
    view: NodeId,
    /// Candidates already passed on, per side (cam, view).
    trickled: [usize; 2],
}

impl World {
    /// Two peers behind port-restricted NATs, a STUN server on the public
    /// side; each access link 12.5 ms +0..2 ms one way (RTT ~50 ms) and
    /// `loss` on each peer's uplink (so `loss` each way, end to end).
    /// `tamper` rewrites the offer before the viewer reads it.
    fn new(seed: u64, loss: f64, tamper: impl Fn(&str) -> String) -> World {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut net = Network::new(seed);
        let access = LinkConfig {
            delay: Duration::from_micros(12_500),
            jitter: Duration::from_millis(2),
            ..LinkConfig::default()
        };
        net.set_default_link(access);
        net.add_host(Network::PUBLIC, sa(STUN), StunServer::new());
        let cam_realm = net.add_nat(Network::PUBLIC, CAM_NAT.parse().unwrap(), NatConfig::new(NatType::PortRestricted));
        let view_realm =
            net.add_nat(Network::PUBLIC, VIEW_NAT.parse().unwrap(), NatConfig::new(NatType::PortRestricted));

        let mut cam = Peer::new(config(true), &mut rng);
        let mut view = Peer::new(config(false), &mut rng);
        cam.add_local_candidate(sa(CAM)).unwrap();
        view.add_local_candidate(sa(VIEW)).unwrap();
        let now = Instant::ZERO;
        let mut buf = vec![0u8; 8192];
        let n = cam.create_offer(&mut buf).unwrap();
        let offer = tamper(std::str::from_utf8(&buf[..n]).unwrap());
        let n = view.accept_offer(now, &offer, &mut buf, &mut rng).expect("viewer accepts the offer");
        let answer = std::str::from_utf8(&buf[..n]).unwrap().to_string();
        cam.set_remote_answer(now, &answer, &mut rng).expect("camera accepts the answer");

        let cam = net.add_host(cam_realm, sa(CAM), PeerHost::new(cam));
        let view = net.add_host(view_realm, sa(VIEW), PeerHost::new(view));
        for id in [cam, view] {
            net.set_uplink(id, access.with_loss(loss));
        }
        World { net, cam, view, trickled: [0, 0] }
    }

    /// Pass newly surfaced local candidates to the other side (signaling).
    fn trickle(&mut self) {
        for (i, (from, to)) in [(self.cam, self.view), (self.view, self.cam)].into_iter().enumerate() {
            let lines: Vec<String> = {
                let h = self.net.node::<PeerHost>(from);
                let announced: Vec<usize> = h
                    .events
                    .iter()
                    .filter_map(|(_, e)| match e {
                        PeerEvent::LocalCandidate { index } => Some(*index),
                        _ => None,
                    })
                    .collect();
                announced[self.trickled[i]..]
                    .iter()
                    .map(|&k| h.peer.local_candidate(k).expect("announced candidate").to_string())
                    .collect()
            };
            self.trickled[i] += lines.len();
            for line in lines {
                self.net.node_mut::<PeerHost>(to).peer.add_remote_candidate(&line).expect("trickled candidate");
            }
        }
    }

    fn host(&self, id: NodeId) -> &PeerHost {
        self.net.node::<PeerHost>(id)
    }

    /// Run until both are connected (trickling on the way).
    fn connect(&mut self, deadline: Instant) -> bool {
        while self.net.now() < deadline {
            let t = self.net.now() + Duration::from_millis(10);
            self.net.run_until(t);
            self.trickle();
            let (c, v) = (self.host(self.cam).peer.state(), self.host(self.view).peer.state());
            if c == PeerState::Connected && v == PeerState::Connected {
                return true;
            }
            if c == PeerState::Closed || v == PeerState::Closed {
                return false;
            }
        }
        false
    }
}

#[test]
fn h264_through_nats_at_10_percent_loss() {
    let test = "peer_netsim::h264_through_nats_at_10_percent_loss";
    if !clips::require_ffmpeg(test) {
        return;
    }
    let clip = clips::generate(&clip_dir(), "testsrc-320x240-15fps.h264", clips::TESTSRC_H264);
    let clip = clips::h264_access_units(&std::fs::read(clip).unwrap());
    assert_eq!(clip.len(), 75, "5 s at 15 fps");
    run_with_seed(0x6e65_7473, |seed| {
        let mut w = World::new(seed, 0.10, |o| o.to_string());
        assert!(
            w.connect(Instant::from_secs(20)),
            "not connected: cam {:?} view {:?}",
            w.host(w.cam).peer.stats(),
            w.host(w.view).peer.stats()
        );
        let connected_at = w.net.now();
        // ICE went through both NATs: each side sees the other's public address.
        let (cs, vs) = (w.host(w.cam).peer.stats(), w.host(w.view).peer.stats());
        assert_eq!(cs.selected_remote.map(|a| a.ip()), Some(VIEW_NAT.parse().unwrap()), "{cs:?}");
        assert_eq!(vs.selected_remote.map(|a| a.ip()), Some(CAM_NAT.parse().unwrap()), "{vs:?}");
        assert!(w.trickled[0] >= 1 && w.trickled[1] >= 1, "srflx candidates trickled: {:?}", w.trickled);
        for (id, nat) in [(w.cam, CAM_NAT), (w.view, VIEW_NAT)] {
            let k = w.host(id).peer.local_candidate(1).unwrap();
            assert_eq!((k.kind, k.address), (sdp::CandidateType::ServerReflexive, nat));
        }

        // 60 s of the clip, looped; frame i at connected_at + i/15 s.
        let frames = (SECONDS * FPS) as usize;
        let mut sent: HashMap<u32, &[u8]> = HashMap::new();
        let mut packets = 0;
        for i in 0..frames {
            let at = connected_at + Duration::from_micros(i as u64 * 1_000_000 / FPS);
            w.net.run_until(at);
            let au = &clip[i % clip.len()];
            let ts = (i as u32).wrapping_mul(6000);
            let now = w.net.now();
            packets += w.net.node_mut::<PeerHost>(w.cam).send_frame(now, au, ts).expect("camera sends");
            sent.insert(ts, au);
        }
        // Time for the last retransmissions.
        let end = w.net.now() + Duration::from_secs(2);
        w.net.run_until(end);

        // Reassemble in delivery order (the reordering buffer's order) and
        // compare each access unit with the one sent under its timestamp.
        let view = w.host(w.view);
        let mut dep = H264Depacketizer::new(vec![0u8; 256 * 1024]);
        let mut complete = 0usize;
        let mut got_ts = std::collections::HashSet::new();
        let mut wrong = 0usize;
        let mut last_seq: Option<u16> = None;
        let mut out_of_order = 0;
        for g in &view.video {
            if let Some(l) = last_seq {
                if g.seq.wrapping_sub(l) == 0 || g.seq.wrapping_sub(l) > 0x8000 {
                    out_of_order += 1;
                }
            }
            last_seq = Some(g.seq);
            if let Ok(Some(f)) = dep.push(g.seq, g.timestamp, g.marker, &g.payload) {
                match sent.get(&f.timestamp) {
                    Some(au) if *au == &dep.frame()[..f.len] => {
                        complete += 1;
                        got_ts.insert(f.timestamp);
                    }
                    _ => wrong += 1,
                }
            }
        }
        let (cs, vs) = (w.host(w.cam).peer.stats(), view.peer.stats());
        let net = w.net.stats();
        let missing: Vec<u32> =
            (0..frames as u32).filter(|i| !got_ts.contains(&i.wrapping_mul(6000))).take(10).collect();
        let pct = complete as f64 * 100.0 / frames as f64;
        eprintln!("{test}: size_of::<Peer>() = {} bytes", std::mem::size_of::<Peer>());
        eprintln!(
            "{test}: seed {seed}: {complete} of {frames} frames complete and byte-equal ({pct:.2} %), {wrong} wrong, \
             {} broken; {packets} packets sent, NACKed {} seqs, {} retransmissions ({} RTX received, {} misses), \
             {} given up, {} PLI; rtt {} us; frames missing (first 10) {missing:?}; net {net:?}",
            dep.dropped_frames(),
            vs.video.nacks_sent,
            cs.video.retransmissions_sent,
            vs.video.retransmissions_received,
            cs.video.retransmit_misses,
            vs.video.packets_given_up,
            vs.video.keyframe_requests_sent,
            cs.video.rtt_us,
        );
        assert_eq!(out_of_order, 0, "the viewer hands packets out in sequence order");
        assert_eq!(wrong, 0, "a reassembled frame differs from the one sent");
        assert!(complete * 100 >= frames * 99, "only {complete} of {frames} frames ({pct:.2} %)");
        // Loss was real and recovery did the work.
        assert!(vs.video.nacks_sent as usize >= packets / 20, "{vs:?}");
        assert!(cs.video.retransmissions_sent as usize >= packets / 20, "{cs:?}");
        assert!(vs.video.retransmissions_received > 0, "RTX negotiated and used: {vs:?}");
        // Some NACKs are lost on the way too (10 %), never more arrive than left.
        assert!(cs.video.nacks_received > 0 && cs.video.nacks_received <= vs.video.nacks_sent, "{cs:?} {vs:?}");
        assert_eq!(w.host(w.cam).peer.state(), PeerState::Connected);
        assert_eq!(view.peer.state(), PeerState::Connected);
    });
}

#[test]
fn bad_fingerprint_fails_closed() {
    run_with_seed(0xf1f1, |seed| {
        // The viewer gets an offer whose fingerprint is not the camera's.
        let mut w = World::new(seed, 0.0, |offer| {
            let i = offer.find("a=fingerprint:sha-256 ").expect("fingerprint line") + "a=fingerprint:sha-256 ".len();
            let end = offer[i..].find("\r\n").unwrap() + i;
            let bad = Fingerprint::sha256([0xee; 32]).to_string();
            let bad = bad.trim_start_matches("sha-256 ");
            offer.replace(&offer[i..end], bad)
        });
        assert!(!w.connect(Instant::from_secs(30)), "a session with a wrong fingerprint connected");
        let view = w.host(w.view);
        assert_eq!(view.peer.state(), PeerState::Closed);
        assert_eq!(view.failed(), Some(PeerFailure::Dtls(DtlsFailure::FingerprintMismatch)), "{:?}", view.events);
        assert!(!view.events.iter().any(|(_, e)| *e == PeerEvent::Connected));
        // The camera never gets SRTP keys: it cannot send, nothing arrives.
        let now = w.net.now();
        let cam = w.net.node_mut::<PeerHost>(w.cam);
        assert_ne!(cam.peer.state(), PeerState::Connected);
        assert_eq!(cam.send_frame(now, &[0, 0, 0, 1, 0x65, 0x88, 1, 2], 0), Err(PeerError::NotSending));
        let end = w.net.now() + Duration::from_secs(5);
        w.net.run_until(end);
        assert!(w.host(w.view).video.is_empty());
        assert_eq!(w.host(w.view).peer.stats().video.packets_received, 0);
    });
}

#[test]
fn malformed_sdp_is_a_typed_error() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut cam = Peer::new(config(true), &mut rng);
    let mut view = Peer::new(config(false), &mut rng);
    cam.add_local_candidate(sa(CAM)).unwrap();
    let mut buf = vec![0u8; 8192];
    let n = cam.create_offer(&mut buf).unwrap();
    let offer = std::str::from_utf8(&buf[..n]).unwrap().to_string();

    // A media line whose port is not a number, on line 4.
    let broken = offer.replacen("m=video 9 ", "m=video nine ", 1);
    let line = broken.lines().position(|l| l.starts_with("m=video")).unwrap() as u32 + 1;
    let mut out = vec![0u8; 8192];
    let e = view.accept_offer(Instant::ZERO, &broken, &mut out, &mut rng).unwrap_err();
    assert_eq!(e, PeerError::Sdp(sdp::Error { line, kind: ErrorKind::Media }));
    assert_eq!(e.to_string(), format!("SDP line {line}: invalid Media"));
    // Not SDP at all.
    let e = view.accept_offer(Instant::ZERO, "hello", &mut out, &mut rng).unwrap_err();
    assert!(matches!(e, PeerError::Sdp(sdp::Error { line: 1, .. })), "{e:?}");
    // Parses, but without ICE credentials it cannot be used.
    let no_ice: String = offer.split_inclusive("\r\n").filter(|l| !l.starts_with("a=ice-")).collect();
    let e = view.accept_offer(Instant::ZERO, &no_ice, &mut out, &mut rng).unwrap_err();
    assert_eq!(e, PeerError::Negotiation(sdp::NegotiationError::MissingIceCredentials));
    // A SHA-1 fingerprint is refused by name.
    let sha1 = offer.replace("a=fingerprint:sha-256 ", "a=fingerprint:sha-1 ");
    let e = view.accept_offer(Instant::ZERO, &sha1, &mut out, &mut rng).unwrap_err();
    assert!(matches!(e, PeerError::UnsupportedFingerprint | PeerError::Sdp(_)), "{e:?}");
    // None of it changed the viewer: the real offer still works.
    assert_eq!(view.state(), PeerState::New);
    let n = view.accept_offer(Instant::ZERO, &offer, &mut out, &mut rng).unwrap();
    let answer = std::str::from_utf8(&out[..n]).unwrap().to_string();
    // A truncated answer is an error for the offerer, which keeps waiting.
    let cut = &answer[..answer.len() / 3];
    let cut = &cut[..cut.rfind("\r\n").unwrap()];
    let e = cam.set_remote_answer(Instant::ZERO, &format!("{cut}\r\nm=audio"), &mut rng).unwrap_err();
    assert!(matches!(e, PeerError::Sdp(sdp::Error { kind: ErrorKind::Media, .. })), "{e:?}");
    assert_eq!(cam.state(), PeerState::HaveLocalOffer);
    cam.set_remote_answer(Instant::ZERO, &answer, &mut rng).unwrap();
    assert_eq!(cam.state(), PeerState::Connecting);
}
