//! Two sessions in one process over a lossless in-memory link. Both are
//! ICE-lite, so the test plays the controlling agent's part by sending each
//! one a nominating Binding request "from" the other.

extern crate std;
use std::string::ToString;
use std::vec::Vec as StdVec;

use super::*;
use crate::stun::{Class, MessageBuilder, Method};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const CAM: &str = "10.0.0.1:5000";
const VIEW: &str = "10.0.0.2:6000";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A Binding request the way a controlling full agent checks `to`.
fn check(to: &Peer, from: &Peer, buf: &mut [u8]) -> usize {
    let mut user: String<64> = String::new();
    let _ = write!(user, "{}:{}", to.ice.local_ufrag, from.ice.local_ufrag);
    let mut b = MessageBuilder::new(buf, Method::BINDING, Class::Request, &[7; 12]).unwrap();
    b.username(&user).unwrap();
    b.priority(1 << 24).unwrap();
    b.ice_controlling(42).unwrap();
    b.raw(crate::stun::attr::USE_CANDIDATE, &[]).unwrap();
    b.message_integrity(to.ice.local_pwd.as_bytes()).unwrap();
    b.fingerprint().unwrap();
    b.finish()
}

struct Pair {
    cam: Peer,
    view: Peer,
    now: Instant,
    rng: ChaCha20Rng,
    /// RTP payloads the viewer received: (kind, seq, len).
    received: StdVec<(MediaKind, u16, usize)>,
    cam_events: StdVec<PeerEvent>,
    view_events: StdVec<PeerEvent>,
}

impl Pair {
    fn new(seed: u64, view_cfg: PeerConfig) -> Pair {
        Pair::with(seed, PeerConfig::camera(), view_cfg)
    }

    fn with(seed: u64, cam_cfg: PeerConfig, view_cfg: PeerConfig) -> Pair {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut cam = Peer::new(cam_cfg, &mut rng);
        let mut view = Peer::new(view_cfg, &mut rng);
        cam.add_local_candidate(addr(CAM)).unwrap();
        view.add_local_candidate(addr(VIEW)).unwrap();
        let now = Instant::from_secs(1);
        let mut offer = [0u8; 4096];
        let n = cam.create_offer(&mut offer).unwrap();
        let offer = core::str::from_utf8(&offer[..n]).unwrap();
        let mut answer = [0u8; 4096];
        let m = view.accept_offer(now, offer, &mut answer, &mut rng).unwrap();
        let answer = core::str::from_utf8(&answer[..m]).unwrap();
        cam.set_remote_answer(now, answer, &mut rng).unwrap();
        Pair { cam, view, now, rng, received: StdVec::new(), cam_events: StdVec::new(), view_events: StdVec::new() }
    }

    fn kick_ice(&mut self) {
        let mut buf = [0u8; 256];
        let n = check(&self.cam, &self.view, &mut buf);
        self.cam.handle_receive(self.now, addr(VIEW), &mut buf[..n]).unwrap();
        let n = check(&self.view, &self.cam, &mut buf);
        self.view.handle_receive(self.now, addr(CAM), &mut buf[..n]).unwrap();
    }

    /// Exchange datagrams until both are idle, then advance to the next timeout.
    fn step(&mut self) {
        let mut buf = [0u8; 1500];
        loop {
            let mut moved = false;
            while let Some(t) = self.cam.poll_transmit(self.now, &mut buf) {
                assert_eq!(t.destination, addr(VIEW));
                if let Ok(Some(p)) = self.view.handle_receive(self.now, addr(CAM), &mut buf[..t.len]) {
                    self.received.push((p.kind, p.sequence_number, p.payload_len));
                }
                self.drain_media();
                moved = true;
            }
            while let Some(t) = self.view.poll_transmit(self.now, &mut buf) {
                assert_eq!(t.destination, addr(CAM));
                let _ = self.cam.handle_receive(self.now, addr(VIEW), &mut buf[..t.len]);
                moved = true;
            }
            while let Some(e) = self.cam.poll_event() {
                self.cam_events.push(e);
            }
            while let Some(e) = self.view.poll_event() {
                self.view_events.push(e);
            }
            if !moved {
                break;
            }
        }
        let next = [self.cam.poll_timeout(), self.view.poll_timeout()].into_iter().flatten().min();
        if let Some(t) = next {
            self.now = self.now.max(t);
            self.cam.handle_timeout(self.now);
            self.view.handle_timeout(self.now);
            self.drain_media();
        }
    }

    /// Packets the viewer held back after a gap.
    fn drain_media(&mut self) {
        let mut buf = [0u8; 1500];
        while let Some(p) = self.view.poll_media(&mut buf) {
            self.received.push((p.kind, p.sequence_number, p.payload_len));
        }
    }

    /// Send one H.264 frame of `len` bytes; datagrams for which `lose`
    /// says true are dropped, the rest delivered at once.
    fn send_video(&mut self, ts: u32, len: usize, lose: &mut dyn FnMut() -> bool) {
        let mut au = StdVec::new();
        au.extend_from_slice(&[0, 0, 0, 1, 0x65]);
        au.extend((0..len).map(|i| (i as u32 ^ ts) as u8));
        let mut buf = [0u8; 1500];
        let mut datagrams = StdVec::new();
        let mut w = self.cam.send_frame(self.now, MediaKind::Video, &au, ts).unwrap();
        while let Some(t) = w.next_packet(&mut buf) {
            datagrams.push(buf[..t.unwrap().len].to_vec());
        }
        for mut d in datagrams {
            if lose() {
                continue;
            }
            if let Some(m) = self.view.handle_receive(self.now, addr(CAM), &mut d).unwrap() {
                self.received.push((m.kind, m.sequence_number, m.payload_len));
            }
            self.drain_media();
        }
    }

    fn connect(&mut self) {
        self.kick_ice();
        for _ in 0..50 {
            self.step();
            if self.cam.state() == PeerState::Connected && self.view.state() == PeerState::Connected {
                return;
            }
        }
        panic!("not connected: cam {:?} view {:?}", self.cam.stats(), self.view.stats());
    }
}

#[test]
fn camera_to_viewer_h264_and_opus() {
    let mut p = Pair::new(1, PeerConfig::viewer());
    p.connect();
    assert!(p.cam_events.contains(&PeerEvent::Connected));
    assert!(p.view_events.contains(&PeerEvent::Connected));
    assert_eq!(p.cam.codec(MediaKind::Video), Some((CodecChoice::H264ConstrainedBaseline, 102)));
    // A 5 KB H.264 access unit: SPS, PPS, IDR.
    let mut au = StdVec::new();
    for (nal, len) in [(0x67u8, 10usize), (0x68, 4), (0x65, 5000)] {
        au.extend_from_slice(&[0, 0, 0, 1, nal]);
        au.extend((0..len).map(|i| i as u8));
    }
    let mut buf = [0u8; 1500];
    for frame in 0..10u32 {
        let mut datagrams = StdVec::new();
        let mut w = p.cam.send_frame(p.now, MediaKind::Video, &au, frame * 3000).unwrap();
        while let Some(t) = w.next_packet(&mut buf) {
            let t = t.unwrap();
            assert!(t.len <= 1200);
            datagrams.push(buf[..t.len].to_vec());
        }
        let mut w = p.cam.send_frame(p.now, MediaKind::Audio, &[0xfc; 80], frame * 960).unwrap();
        while let Some(t) = w.next_packet(&mut buf) {
            datagrams.push(buf[..t.unwrap().len].to_vec());
        }
        for mut d in datagrams {
            if let Some(m) = p.view.handle_receive(p.now, addr(CAM), &mut d).unwrap() {
                p.received.push((m.kind, m.sequence_number, m.payload_len));
                if m.kind == MediaKind::Audio {
                    assert_eq!(&d[m.payload_offset..][..m.payload_len], &[0xfc; 80]);
                }
            }
        }
        p.step();
    }
    let video = p.received.iter().filter(|r| r.0 == MediaKind::Video).count();
    let audio = p.received.iter().filter(|r| r.0 == MediaKind::Audio).count();
    let cs = p.cam.stats();
    let vs = p.view.stats();
    assert_eq!(video as u64, cs.video.packets_sent);
    assert!(video >= 50, "{video} video packets");
    assert_eq!(audio, 10);
    assert_eq!(vs.video.packets_received, cs.video.packets_sent);
    assert_eq!(vs.video.bytes_received, cs.video.bytes_sent);
    assert_eq!(vs.video.packets_lost, 0);
    // Viewer asks for a keyframe; camera surfaces it.
    p.view.request_keyframe().unwrap();
    p.step();
    assert!(p.cam_events.contains(&PeerEvent::KeyframeRequest { kind: MediaKind::Video }));
    assert_eq!(p.cam.stats().video.keyframe_requests_received, 1);
    // Reports flowed both ways: RTT known on the camera's side.
    for _ in 0..5 {
        p.step();
    }
    assert!(p.cam.stats().video.rtt_us > 0, "{:?}", p.cam.stats());
    std::println!("size_of::<Peer>() = {} bytes", core::mem::size_of::<Peer>());
}

/// Every 4th video datagram lost: the viewer NACKs, the camera resends
/// from its history (RTX when negotiated, plain when the answer had no
/// `rtx`), the viewer's reordering buffer hands everything out in order.
#[test]
fn lost_video_is_recovered_by_nack() {
    for rtx in [true, false] {
        let mut p = Pair::new(11, PeerConfig::viewer());
        if !rtx {
            // The camera reads an answer without rtx formats.
            let mut rng = ChaCha20Rng::seed_from_u64(12);
            let mut cam = Peer::new(PeerConfig::camera(), &mut rng);
            let mut view = Peer::new(PeerConfig::viewer(), &mut rng);
            cam.add_local_candidate(addr(CAM)).unwrap();
            view.add_local_candidate(addr(VIEW)).unwrap();
            let mut offer = [0u8; 4096];
            let n = cam.create_offer(&mut offer).unwrap();
            let mut answer = [0u8; 4096];
            let m =
                view.accept_offer(p.now, core::str::from_utf8(&offer[..n]).unwrap(), &mut answer, &mut rng).unwrap();
            let answer: std::string::String = core::str::from_utf8(&answer[..m])
                .unwrap()
                .split_inclusive("\r\n")
                .filter(|l| !l.contains("rtx/90000") && !l.contains("apt="))
                .collect();
            cam.set_remote_answer(p.now, &answer, &mut rng).unwrap();
            p.cam = cam;
            p.view = view;
        }
        p.connect();
        let mut n = 0u32;
        let mut lose = move || {
            n += 1;
            n % 4 == 0
        };
        for frame in 0..30u32 {
            p.kick_ice(); // consent (both sides are ICE-lite here)
            p.send_video(frame * 3000, 3000, &mut lose);
            let until = p.now + Duration::from_millis(66);
            let mut guard = 0;
            while p.now < until {
                p.step();
                guard += 1;
                assert!(
                    guard < 1000,
                    "stuck at {:?}: cam {:?} view {:?} / {:?} {:?}",
                    p.now,
                    p.cam_events,
                    p.view_events,
                    p.cam.stats(),
                    p.view.stats()
                );
            }
        }
        for _ in 0..5 {
            p.step();
        }
        let seqs: StdVec<u16> = p.received.iter().filter(|r| r.0 == MediaKind::Video).map(|r| r.1).collect();
        let (cs, vs) = (p.cam.stats(), p.view.stats());
        assert_eq!(seqs.len() as u64, cs.video.packets_sent, "rtx {rtx}: {cs:?} {vs:?}");
        assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)), "in order: {seqs:?}");
        assert!(cs.video.retransmissions_sent >= 20, "{cs:?}");
        // Plain retransmissions look like late originals to the receiver.
        let rtx_received = if rtx { cs.video.retransmissions_sent } else { 0 };
        assert_eq!(vs.video.retransmissions_received, rtx_received);
        assert!(vs.video.nacks_sent >= cs.video.retransmissions_sent);
        assert_eq!(cs.video.nacks_received, vs.video.nacks_sent);
        assert_eq!(vs.video.packets_given_up, 0);
    }
}

#[test]
fn wrong_fingerprint_fails_closed() {
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let mut cam = Peer::new(PeerConfig::camera(), &mut rng);
    let mut view = Peer::new(PeerConfig::viewer(), &mut rng);
    cam.add_local_candidate(addr(CAM)).unwrap();
    let now = Instant::from_secs(1);
    let mut offer = [0u8; 4096];
    let n = cam.create_offer(&mut offer).unwrap();
    // Tamper with the fingerprint in the offer.
    let text = std::string::String::from_utf8(offer[..n].to_vec()).unwrap();
    let fp = cam.local_fingerprint().to_string();
    let bad_fp = Fingerprint::sha256([0xee; 32]).to_string();
    let tampered = text.replace(&fp, &bad_fp);
    assert_ne!(tampered, text);
    let mut answer = [0u8; 4096];
    let m = view.accept_offer(now, &tampered, &mut answer, &mut rng).unwrap();
    cam.set_remote_answer(now, core::str::from_utf8(&answer[..m]).unwrap(), &mut rng).unwrap();
    let mut p =
        Pair { cam, view, now, rng, received: StdVec::new(), cam_events: StdVec::new(), view_events: StdVec::new() };
    p.kick_ice();
    for _ in 0..20 {
        p.step();
    }
    assert!(
        p.view_events
            .iter()
            .any(|e| matches!(e, PeerEvent::Failed(PeerFailure::Dtls(DtlsFailure::FingerprintMismatch)))),
        "{:?}",
        p.view_events
    );
    assert_ne!(p.cam.state(), PeerState::Connected);
    assert!(p.cam.send_frame(p.now, MediaKind::Video, &[0, 0, 0, 1, 0x65, 1], 0).is_err());
    let _ = &mut p.rng;
}

#[test]
fn malformed_sdp_is_a_clear_error() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let mut view = Peer::new(PeerConfig::viewer(), &mut rng);
    let mut out = [0u8; 4096];
    let e = view.accept_offer(Instant::ZERO, "v=0\r\nm=video x UDP/TLS/RTP/SAVPF 96\r\n", &mut out, &mut rng);
    assert_eq!(e, Err(PeerError::Sdp(sdp::Error { line: 2, kind: sdp::ErrorKind::Media })));
    let e = view.accept_offer(
        Instant::ZERO,
        "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n",
        &mut out,
        &mut rng,
    );
    assert_eq!(e, Err(PeerError::Negotiation(NegotiationError::MissingIceCredentials)));
    assert_eq!(view.state(), PeerState::New);
    // Garbage datagrams never panic.
    for first in [0u8, 4, 20, 64, 128, 200, 255] {
        let mut d = [first, 1, 2, 3, 4, 5, 6, 7];
        let _ = view.handle_receive(Instant::ZERO, addr(CAM), &mut d);
    }
}

#[test]
fn data_channel_both_ways() {
    let mut p = Pair::new(5, PeerConfig::viewer());
    p.connect();
    let id = p.cam.open_channel(p.now, "chat", "", ChannelConfig::default()).unwrap();
    p.cam.send_data(p.now, id, false, b"hello from the camera").unwrap();
    for _ in 0..10 {
        p.step();
    }
    let opened = p.view_events.iter().find_map(|e| match e {
        PeerEvent::ChannelOpen { id, by_remote: true } => Some(*id),
        _ => None,
    });
    assert_eq!(opened, Some(id), "{:?}", p.view_events);
    assert_eq!(p.view.channel_label(id), Some("chat"));
    assert!(p.cam_events.contains(&PeerEvent::ChannelOpen { id, by_remote: false }), "{:?}", p.cam_events);
    let len = p.view_events.iter().find_map(|e| match e {
        PeerEvent::ChannelData { id: i, binary: false, len } if *i == id => Some(*len),
        _ => None,
    });
    assert_eq!(len, Some(21));
    let mut out = [0u8; 64];
    assert_eq!(p.view.read_data(&mut out).unwrap(), (id, false, 21));
    assert_eq!(&out[..21], b"hello from the camera");
    // A 10 KB binary reply spans several SCTP chunks and DTLS records.
    let big: StdVec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
    p.view.send_data(p.now, id, true, &big).unwrap();
    for _ in 0..10 {
        p.step();
    }
    let mut out = std::vec![0u8; 16384];
    let (rid, binary, n) = p.cam.read_data(&mut out).unwrap();
    assert_eq!((rid, binary, n), (id, true, big.len()));
    assert_eq!(&out[..n], &big[..]);
}

#[test]
fn full_ice_between_two_peers() {
    let cam = PeerConfig { ice_lite: false, ..PeerConfig::camera() };
    let view = PeerConfig { ice_lite: false, ..PeerConfig::viewer() };
    let mut p = Pair::with(7, cam, view);
    // No help from the test: the agents check and nominate by themselves.
    for _ in 0..200 {
        p.step();
        if p.cam.state() == PeerState::Connected && p.view.state() == PeerState::Connected {
            break;
        }
    }
    assert_eq!(p.cam.state(), PeerState::Connected, "{:?}", p.cam.stats());
    assert_eq!(p.view.state(), PeerState::Connected, "{:?}", p.view.stats());
    assert_eq!(p.cam.stats().selected_remote, Some(addr(VIEW)));
    assert_eq!(p.view.stats().selected_remote, Some(addr(CAM)));
    let mut buf = [0u8; 1500];
    let mut datagrams = StdVec::new();
    let mut w = p.cam.send_frame(p.now, MediaKind::Video, &[0, 0, 0, 1, 0x65, 1, 2, 3], 0).unwrap();
    while let Some(t) = w.next_packet(&mut buf) {
        datagrams.push(buf[..t.unwrap().len].to_vec());
    }
    for mut d in datagrams {
        // The first video packet is held for the start hold, then handed out.
        assert_eq!(p.view.handle_receive(p.now, addr(CAM), &mut d).unwrap(), None);
    }
    let mut out = [0u8; 1500];
    assert_eq!(p.view.poll_media(&mut out), None);
    p.view.handle_timeout(p.now + recovery::START_HOLD);
    let m = p.view.poll_media(&mut out).unwrap();
    assert_eq!(&out[m.payload_offset..][..m.payload_len], &[0x65, 1, 2, 3]);
    // Consent keeps running: a minute of idle time does not fail the session.
    let end = p.now + Duration::from_secs(60);
    while p.now < end {
        p.step();
    }
    assert_eq!(p.cam.state(), PeerState::Connected);
    assert_eq!(p.view.state(), PeerState::Connected);
}

impl Pair {
    /// Move datagrams both ways until idle without polling any event (an
    /// application that is slow to poll).
    fn pump_without_events(&mut self) {
        let mut buf = [0u8; 1500];
        for _ in 0..1000 {
            let mut moved = false;
            while let Some(t) = self.cam.poll_transmit(self.now, &mut buf) {
                let _ = self.view.handle_receive(self.now, addr(CAM), &mut buf[..t.len]);
                moved = true;
            }
            while let Some(t) = self.view.poll_transmit(self.now, &mut buf) {
                let _ = self.cam.handle_receive(self.now, addr(VIEW), &mut buf[..t.len]);
                moved = true;
            }
            if !moved {
                return;
            }
        }
    }

    fn opened(events: &[PeerEvent], remote: bool) -> StdVec<u16> {
        events
            .iter()
            .filter_map(|e| match e {
                PeerEvent::ChannelOpen { id, by_remote } if *by_remote == remote => Some(*id),
                _ => None,
            })
            .collect()
    }

    fn steps(&mut self, n: usize) {
        for _ in 0..n {
            self.step();
        }
    }
}

#[test]
fn data_channel_options_label_protocol_and_both_openers() {
    let cfg = PeerConfig { video_codecs: &[], audio_codecs: &[], ..PeerConfig::camera() };
    let mut p = Pair::with(11, cfg, cfg);
    p.connect();
    let lossy =
        ChannelConfig { ordered: false, reliability: Reliability::MaxRetransmits(0), ..ChannelConfig::default() };
    let timed = ChannelConfig { reliability: Reliability::MaxLifetimeMs(1500), ..ChannelConfig::default() };
    let a = p.cam.open_channel(p.now, "lossy", "telemetry-v1", lossy).unwrap();
    let b = p.view.open_channel(p.now, "timed", "", timed).unwrap();
    // DTLS client (the camera offers with setup:actpass, the viewer answers
    // active) and server use stream ids of opposite parity (RFC 8832 6).
    assert_ne!(a % 2, b % 2);
    p.steps(10);
    assert_eq!(Pair::opened(&p.view_events, true), [a]);
    assert_eq!(Pair::opened(&p.cam_events, true), [b]);
    assert_eq!(Pair::opened(&p.cam_events, false), [a]);
    assert_eq!(Pair::opened(&p.view_events, false), [b]);
    // The remote learned label, protocol and options through DCEP.
    assert_eq!(p.view.channel_label(a), Some("lossy"));
    assert_eq!(p.view.channel_protocol(a), Some("telemetry-v1"));
    let seen = p.view.channel_config(a).unwrap();
    assert_eq!((seen.ordered, seen.reliability), (false, Reliability::MaxRetransmits(0)));
    assert_eq!(p.cam.channel_label(b), Some("timed"));
    assert_eq!(p.cam.channel_protocol(b), Some(""));
    let seen = p.cam.channel_config(b).unwrap();
    assert_eq!((seen.ordered, seen.reliability), (true, Reliability::MaxLifetimeMs(1500)));
    // Text, binary and both empty kinds cross with their kind kept.
    let msgs: [(bool, &[u8]); 4] = [(false, b"text"), (true, &[0, 1, 2]), (false, b""), (true, b"")];
    for (binary, m) in msgs {
        p.cam.send_data(p.now, a, binary, m).unwrap();
        p.view.send_data(p.now, b, binary, m).unwrap();
    }
    p.steps(10);
    let mut out = [0u8; 64];
    for (peer, id) in [(&mut p.view, a), (&mut p.cam, b)] {
        for (binary, m) in msgs {
            let (rid, rbin, n) = peer.read_data(&mut out).unwrap();
            assert_eq!((rid, rbin, &out[..n]), (id, binary, m));
        }
        assert_eq!(peer.read_data(&mut out), Err(PeerError::Sctp(SctpError::NoMessage)));
    }
    let data = p.view_events.iter().filter(|e| matches!(e, PeerEvent::ChannelData { id, .. } if *id == a)).count();
    assert_eq!(data, 4);
    assert!(p.view_events.contains(&PeerEvent::ChannelData { id: a, binary: true, len: 0 }));
    assert!(p.view_events.contains(&PeerEvent::ChannelData { id: a, binary: false, len: 0 }));
}

#[test]
fn pre_negotiated_channel_opened_before_dtls() {
    let cfg = PeerConfig { video_codecs: &[], audio_codecs: &[], ..PeerConfig::camera() };
    let mut p = Pair::with(12, cfg, cfg);
    let neg = ChannelConfig { negotiated: Some(7), ..ChannelConfig::default() };
    // Both open stream 7 right after the SDP exchange, before ICE and DTLS.
    let a = p.cam.open_channel(p.now, "side", "", neg).unwrap();
    let b = p.view.open_channel(p.now, "side", "", neg).unwrap();
    assert_eq!((a, b), (7, 7));
    assert_eq!(p.cam.open_channel(p.now, "again", "", neg), Err(PeerError::Sctp(SctpError::ChannelIdInUse)));
    // Not before the association is up.
    assert_eq!(p.cam.send_data(p.now, 7, false, b"early"), Err(PeerError::Sctp(SctpError::NotConnected)));
    p.connect();
    p.steps(5);
    assert!(p.cam_events.contains(&PeerEvent::ChannelOpen { id: 7, by_remote: false }), "{:?}", p.cam_events);
    assert!(p.view_events.contains(&PeerEvent::ChannelOpen { id: 7, by_remote: false }), "{:?}", p.view_events);
    p.cam.send_data(p.now, 7, false, b"no DCEP needed").unwrap();
    p.steps(5);
    let mut out = [0u8; 64];
    assert_eq!(p.view.read_data(&mut out).unwrap(), (7, false, 14));
    assert_eq!(&out[..14], b"no DCEP needed");
}

#[test]
fn closing_a_channel_closes_it_on_both_sides() {
    let cfg = PeerConfig { video_codecs: &[], audio_codecs: &[], ..PeerConfig::camera() };
    let mut p = Pair::with(13, cfg, cfg);
    p.connect();
    let a = p.cam.open_channel(p.now, "one", "", ChannelConfig::default()).unwrap();
    let b = p.cam.open_channel(p.now, "two", "", ChannelConfig::default()).unwrap();
    let c = p.view.open_channel(p.now, "three", "", ChannelConfig::default()).unwrap();
    p.steps(10);
    // Closed by its opener: queued data still arrives, then both see it closed.
    p.cam.send_data(p.now, a, false, b"last words").unwrap();
    p.cam.close_channel(p.now, a).unwrap();
    assert_eq!(p.cam.send_data(p.now, a, false, b"too late"), Err(PeerError::Sctp(SctpError::UnknownChannel)));
    p.steps(10);
    assert!(p.cam_events.contains(&PeerEvent::ChannelClosed { id: a }), "{:?}", p.cam_events);
    assert!(p.view_events.contains(&PeerEvent::ChannelClosed { id: a }), "{:?}", p.view_events);
    let mut out = [0u8; 64];
    assert_eq!(p.view.read_data(&mut out).unwrap(), (a, false, 10));
    assert_eq!(p.view.channel_label(a), None);
    // Closed by the side that did not open it.
    p.cam.close_channel(p.now, c).unwrap();
    p.steps(10);
    assert!(p.view_events.contains(&PeerEvent::ChannelClosed { id: c }), "{:?}", p.view_events);
    assert!(p.cam_events.contains(&PeerEvent::ChannelClosed { id: c }), "{:?}", p.cam_events);
    // The other channel is untouched and still carries data.
    assert!(!p.view_events.contains(&PeerEvent::ChannelClosed { id: b }));
    p.cam.send_data(p.now, b, true, &[9; 100]).unwrap();
    p.steps(5);
    let mut big = [0u8; 128];
    assert_eq!(p.view.read_data(&mut big).map(|r| (r.0, r.2)), Ok((b, 100)));
    assert_eq!(p.cam.close_channel(p.now, 999), Err(PeerError::Sctp(SctpError::UnknownChannel)));
    // A closed id can be used again.
    let again = p.cam.open_channel(p.now, "again", "", ChannelConfig::default()).unwrap();
    p.steps(10);
    assert!(p.view_events.contains(&PeerEvent::ChannelOpen { id: again, by_remote: true }));
}

#[test]
fn no_data_channel_event_is_lost_when_the_application_is_slow() {
    let cfg = PeerConfig { video_codecs: &[], audio_codecs: &[], ..PeerConfig::camera() };
    let mut p = Pair::with(14, cfg, cfg);
    p.connect();
    // More channels and messages than the event queue holds, all before
    // the viewer polls a single event.
    let n_msgs = 3 * EVENT_QUEUE_LEN;
    let ids: StdVec<u16> =
        (0..3).map(|i| p.cam.open_channel(p.now, ["a", "b", "c"][i], "", ChannelConfig::default()).unwrap()).collect();
    for i in 0..n_msgs {
        p.cam.send_data(p.now, ids[i % 3], true, &[i as u8; 40]).unwrap();
    }
    for _ in 0..10 {
        p.pump_without_events();
        let next = [p.cam.poll_timeout(), p.view.poll_timeout()].into_iter().flatten().min();
        if let Some(t) = next {
            p.now = p.now.max(t);
            p.cam.handle_timeout(p.now);
            p.view.handle_timeout(p.now);
        }
    }
    let mut events = StdVec::new();
    while let Some(e) = p.view.poll_event() {
        events.push(e);
    }
    let opens: StdVec<u16> = Pair::opened(&events, true);
    assert_eq!(opens, ids, "{events:?}");
    let data: StdVec<(u16, usize)> = events
        .iter()
        .filter_map(|e| match e {
            PeerEvent::ChannelData { id, len, .. } => Some((*id, *len)),
            _ => None,
        })
        .collect();
    assert_eq!(data.len(), n_msgs, "{events:?}");
    let mut out = [0u8; 64];
    for (i, (id, len)) in data.into_iter().enumerate() {
        assert_eq!((id, len), (ids[i % 3], 40));
        assert_eq!(p.view.read_data(&mut out).unwrap(), (id, true, 40));
        assert_eq!(out[..40], [i as u8; 40]);
    }
}

#[test]
fn data_channel_calls_fail_with_typed_errors() {
    let cfg = PeerConfig { video_codecs: &[], audio_codecs: &[], ..PeerConfig::camera() };
    let mut rng = ChaCha20Rng::seed_from_u64(15);
    // Before the SDP exchange there is no association yet.
    let mut early = Peer::new(cfg, &mut rng);
    let no = Err(PeerError::Sctp(SctpError::NotConnected));
    assert_eq!(early.open_channel(Instant::ZERO, "x", "", ChannelConfig::default()), no);
    assert_eq!(early.close_channel(Instant::ZERO, 0), Err(PeerError::Sctp(SctpError::NotConnected)));
    assert_eq!(early.send_data(Instant::ZERO, 0, true, b"x"), Err(PeerError::Sctp(SctpError::NotConnected)));
    assert_eq!(early.read_data(&mut [0u8; 8]), Err(PeerError::Sctp(SctpError::NotConnected)));
    assert!(early.data_stats().is_none());
    // No data channel negotiated: still NotConnected after connecting.
    let media_only = PeerConfig { datachannel: false, ..PeerConfig::camera() };
    let mut p = Pair::with(16, media_only, media_only);
    p.connect();
    assert_eq!(p.cam.open_channel(p.now, "x", "", ChannelConfig::default()), no);
    // With data channels: label/protocol limits, channel slots, unknown ids,
    // messages above the remote's max-message-size, short read buffers.
    let mut p = Pair::with(17, cfg, cfg);
    p.connect();
    let long = "l".repeat(crate::sctp::association::MAX_LABEL_LEN + 1);
    let too_long = Err(PeerError::Sctp(SctpError::LabelTooLong));
    assert_eq!(p.cam.open_channel(p.now, &long, "", ChannelConfig::default()), too_long);
    let proto = "p".repeat(crate::sctp::association::MAX_PROTOCOL_LEN + 1);
    assert_eq!(p.cam.open_channel(p.now, "x", &proto, ChannelConfig::default()), too_long);
    let ids: StdVec<u16> = (0..DEFAULT_CHANNELS)
        .map(|i| p.cam.open_channel(p.now, ["a", "b", "c", "d"][i], "", ChannelConfig::default()).unwrap())
        .collect();
    assert_eq!(
        p.cam.open_channel(p.now, "e", "", ChannelConfig::default()),
        Err(PeerError::Sctp(SctpError::TooManyChannels))
    );
    assert_eq!(p.cam.send_data(p.now, 999, true, b"x"), Err(PeerError::Sctp(SctpError::UnknownChannel)));
    let big = std::vec![0u8; DEFAULT_CHANNEL_BUFFER + 1];
    assert_eq!(p.cam.send_data(p.now, ids[0], true, &big), Err(PeerError::Sctp(SctpError::MessageTooLarge)));
    p.steps(10);
    p.cam.send_data(p.now, ids[0], true, &[7; 100]).unwrap();
    p.steps(5);
    let mut small = [0u8; 10];
    assert_eq!(p.view.read_data(&mut small), Err(PeerError::Sctp(SctpError::BufferTooSmall { needed: 100 })));
    let mut out = [0u8; 100];
    assert_eq!(p.view.read_data(&mut out), Ok((ids[0], true, 100)));
    assert!(p.view.data_stats().is_some_and(|s| s.messages_received == 1));
}
