//! The device against `tinyrtc::peer::Peer` viewers over an in-memory link:
//! slots and their bound, demultiplexing of one socket between viewers,
//! video to each, hang-up, timeouts and bad input.
//!
//! The `Peer` is an ICE-lite agent on both ends here, so the test plays the
//! controlling agent's part (what a browser does): it sends each side a
//! nominating Binding request with the credentials from the SDP.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;

use device_app::device::{CONNECT_TIMEOUT, MTU};
use device_app::{AnnexBClip, Device, DeviceError, DeviceEvent, LeaveReason, MAX_VIEWERS};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tinyrtc::dtls::DtlsIdentity;
use tinyrtc::peer::{ChannelConfig, Peer, PeerConfig, PeerEvent, PeerState};
use tinyrtc::sdp::{MediaKind, SessionDescription};
use tinyrtc::stun::{attr, Class, MessageBuilder, Method};
use tinyrtc::time::{Duration, Instant};

const CLIP: &[u8] = include_bytes!("../../host/assets/clip.h264");
const CHROMIUM_OFFER: &str = include_str!("../../../host-tests/fixtures/sdp/chromium-offer-av-dc.sdp");
const DEVICE_ADDR: &str = "10.0.0.1:5000";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

type TestDevice = Device<'static, AnnexBClip<'static>>;

fn device(rng: &mut ChaCha20Rng) -> Box<TestDevice> {
    let mut d = Box::new(Device::new(DtlsIdentity::generate(rng), AnnexBClip::new(CLIP, 15), CLIP, 7));
    d.add_local_address(addr(DEVICE_ADDR)).unwrap();
    d
}

fn creds(sdp: &str) -> (String, String) {
    let d = SessionDescription::parse(sdp).unwrap();
    let t = d.transport_for(0);
    (t.ice_ufrag.unwrap().to_string(), t.ice_pwd.unwrap().to_string())
}

/// A nominating Binding request to the agent with credentials `to`, from `from_ufrag`.
fn check(to: &(String, String), from_ufrag: &str, tid: u8) -> Vec<u8> {
    let mut buf = [0u8; 256];
    let mut user = String::new();
    write!(user, "{}:{}", to.0, from_ufrag).unwrap();
    let mut b = MessageBuilder::new(&mut buf, Method::BINDING, Class::Request, &[tid; 12]).unwrap();
    b.username(&user).unwrap();
    b.priority(1 << 24).unwrap();
    b.ice_controlling(42).unwrap();
    b.raw(attr::USE_CANDIDATE, &[]).unwrap();
    b.message_integrity(to.1.as_bytes()).unwrap();
    b.fingerprint().unwrap();
    let n = b.finish();
    buf[..n].to_vec()
}

struct Viewer {
    peer: Peer,
    addr: SocketAddr,
    /// (device credentials, our credentials)
    creds: ((String, String), (String, String)),
    video_packets: u64,
    video_frames: u64,
    /// Data channel ids we opened: sensor, files.
    channels: Option<(u16, u16)>,
    sensor_lines: Vec<String>,
    file_bytes: Vec<u8>,
    file_texts: Vec<String>,
}

struct World {
    dev: Box<TestDevice>,
    viewers: HashMap<u32, Viewer>,
    now: Instant,
    rng: ChaCha20Rng,
    events: Vec<DeviceEvent>,
}

impl World {
    fn new(seed: u64) -> World {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let dev = device(&mut rng);
        World { dev, viewers: HashMap::new(), now: Instant::from_secs(10), rng, events: Vec::new() }
    }

    fn join(&mut self, port: u16) -> Result<u32, DeviceError> {
        let mut peer = Peer::new(PeerConfig::viewer(), &mut self.rng);
        let va = addr(&format!("10.0.0.2:{port}"));
        peer.add_local_candidate(va).unwrap();
        let mut offer = vec![0u8; 8192];
        let n = peer.create_offer(&mut offer).unwrap();
        let offer = std::str::from_utf8(&offer[..n]).unwrap().to_string();
        let mut answer = vec![0u8; 8192];
        let (id, m) = self.dev.add_viewer(self.now, &offer, &mut answer, &mut self.rng)?;
        let answer = std::str::from_utf8(&answer[..m]).unwrap().to_string();
        assert!(answer.contains("a=sendonly"), "{answer}");
        assert!(answer.contains("a=ice-lite"), "{answer}");
        assert!(answer.contains(&format!("{} {} typ host", "10.0.0.1", 5000)), "{answer}");
        peer.set_remote_answer(self.now, &answer, &mut self.rng).unwrap();
        let creds = (creds(&answer), creds(&offer));
        self.viewers.insert(
            id,
            Viewer {
                peer,
                addr: va,
                creds,
                video_packets: 0,
                video_frames: 0,
                channels: None,
                sensor_lines: vec![],
                file_bytes: vec![],
                file_texts: vec![],
            },
        );
        Ok(id)
    }

    /// The controlling agent's checks, both ways.
    fn kick(&mut self, id: u32) {
        let v = self.viewers.get_mut(&id).unwrap();
        let mut req = check(&v.creds.0, &v.creds.1 .0, 1);
        self.dev.handle_receive(self.now, v.addr, &mut req).unwrap();
        let mut req = check(&v.creds.1, &v.creds.0 .0, 2);
        v.peer.handle_receive(self.now, addr(DEVICE_ADDR), &mut req).unwrap();
    }

    /// Deliver everything queued, both ways, then advance to the next timeout.
    fn step(&mut self) {
        let mut buf = vec![0u8; 1500];
        loop {
            let mut moved = false;
            while let Some(t) = self.dev.poll_transmit(self.now, &mut buf) {
                assert!(t.len <= MTU);
                moved = true;
                let Some(v) = self.viewers.values_mut().find(|v| v.addr == t.destination) else { continue };
                if let Ok(Some(p)) = v.peer.handle_receive(self.now, addr(DEVICE_ADDR), &mut buf[..t.len]) {
                    assert_eq!(p.kind, MediaKind::Video);
                    v.video_packets += 1;
                    v.video_frames += u64::from(p.marker);
                }
                // Video the viewer held back (start of the stream, gaps).
                while let Some(p) = v.peer.poll_media(&mut buf) {
                    v.video_packets += 1;
                    v.video_frames += u64::from(p.marker);
                }
            }
            for v in self.viewers.values_mut() {
                while let Some(t) = v.peer.poll_transmit(self.now, &mut buf) {
                    assert_eq!(t.destination, addr(DEVICE_ADDR));
                    let _ = self.dev.handle_receive(self.now, v.addr, &mut buf[..t.len]);
                    moved = true;
                }
                while let Some(e) = v.peer.poll_event() {
                    if let PeerEvent::ChannelData { .. } = e {
                        let mut out = vec![0u8; 20000];
                        let (ch, binary, n) = v.peer.read_data(&mut out).unwrap();
                        let (sensor, files) = v.channels.unwrap();
                        if ch == sensor {
                            assert!(!binary);
                            v.sensor_lines.push(String::from_utf8(out[..n].to_vec()).unwrap());
                        } else if ch == files && binary {
                            v.file_bytes.extend_from_slice(&out[..n]);
                        } else if ch == files {
                            v.file_texts.push(String::from_utf8(out[..n].to_vec()).unwrap());
                        }
                    }
                }
            }
            while let Some(e) = self.dev.poll_event() {
                self.events.push(e);
            }
            if !moved {
                break;
            }
        }
        let next = self.viewers.values().filter_map(|v| v.peer.poll_timeout()).chain(self.dev.poll_timeout()).min();
        if let Some(t) = next {
            self.now = self.now.max(t);
            self.dev.handle_timeout(self.now);
            for v in self.viewers.values_mut() {
                v.peer.handle_timeout(self.now);
                while let Some(p) = v.peer.poll_media(&mut buf) {
                    v.video_packets += 1;
                    v.video_frames += u64::from(p.marker);
                }
            }
        }
    }

    /// Open the "sensor" and "files" channels from the viewer's side.
    fn open_channels(&mut self, id: u32) {
        let now = self.now;
        let v = self.viewers.get_mut(&id).unwrap();
        let sensor = v.peer.open_channel(now, "sensor", "", ChannelConfig::default()).unwrap();
        let files = v.peer.open_channel(now, "files", "", ChannelConfig::default()).unwrap();
        v.channels = Some((sensor, files));
    }

    fn send_files(&mut self, id: u32, msg: &str) {
        let now = self.now;
        let v = self.viewers.get_mut(&id).unwrap();
        let files = v.channels.unwrap().1;
        v.peer.send_data(now, files, false, msg.as_bytes()).unwrap();
    }

    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.step();
        }
    }
}

#[test]
fn sizes() {
    println!("size_of::<Device<AnnexBClip, {MAX_VIEWERS}>>() = {} bytes", std::mem::size_of::<TestDevice>());
    println!("size_of::<Peer>() = {} bytes", std::mem::size_of::<Peer>());
}

#[test]
fn two_viewers_get_video_third_is_refused() {
    let mut w = World::new(1);
    let a = w.join(6000).unwrap();
    let b = w.join(6001).unwrap();
    assert_ne!(a, b);
    // Past the bound: a clear refusal, nothing else changes.
    assert_eq!(w.join(6002), Err(DeviceError::Full));
    assert_eq!(w.dev.stats().viewers_refused, 1);
    assert_eq!(w.dev.viewer_count(), 2);
    w.kick(a);
    w.kick(b);
    w.run_for(Duration::from_secs(3));
    for id in [a, b] {
        let v = &w.viewers[&id];
        assert_eq!(v.peer.state(), PeerState::Connected);
        assert!(w.events.contains(&DeviceEvent::ViewerConnected { id, remote: v.addr }), "{:?}", w.events);
        // ~45 frames in 3 s; a viewer starts at the first keyframe.
        assert!(v.video_frames >= 30, "viewer {id}: {} frames", v.video_frames);
        assert_eq!(v.peer.stats().video.packets_lost, 0);
    }
    println!("frames: a {} b {}", w.viewers[&a].video_frames, w.viewers[&b].video_frames);
    let stats: Vec<_> = w.dev.viewer_stats(w.now).collect();
    assert_eq!(stats.len(), 2);
    for s in &stats {
        assert_eq!(s.peer.video.packets_sent, w.viewers[&s.id].video_packets);
    }
    assert_eq!(w.dev.stats().frames_truncated, 0);
    // One sensor reading a second.
    let readings = w.events.iter().filter(|e| matches!(e, DeviceEvent::Reading(_))).count();
    assert!((3..=4).contains(&readings), "{readings}");
    // A hang-up frees a slot for the third viewer.
    w.dev.remove_viewer(a).unwrap();
    assert_eq!(w.dev.remove_viewer(a), Err(DeviceError::UnknownViewer));
    w.step();
    assert!(w.events.contains(&DeviceEvent::ViewerLeft { id: a, reason: LeaveReason::HungUp }));
    assert_eq!(w.dev.viewer_count(), 1);
    let c = w.join(6002).unwrap();
    w.kick(c);
    w.run_for(Duration::from_secs(2));
    assert!(w.viewers[&c].video_frames >= 10);
}

#[test]
fn chromium_offer_is_answered_and_slot_times_out() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let mut dev = device(&mut rng);
    let now = Instant::from_secs(1);
    let mut answer = vec![0u8; 8192];
    let (id, n) = dev.add_viewer(now, CHROMIUM_OFFER, &mut answer, &mut rng).unwrap();
    let answer = std::str::from_utf8(&answer[..n]).unwrap();
    let parsed = SessionDescription::parse(answer).unwrap();
    let kinds: Vec<_> = parsed.media.iter().map(|m| (m.kind, m.port != 0)).collect();
    assert_eq!(
        kinds,
        [(MediaKind::Audio, false), (MediaKind::Video, true), (MediaKind::Application, true)],
        "{answer}"
    );
    assert!(answer.contains("H264/90000"), "{answer}");
    // Nobody connects: the slot is freed after CONNECT_TIMEOUT.
    let later = now + CONNECT_TIMEOUT;
    dev.handle_timeout(later);
    let mut buf = [0u8; 1500];
    while dev.poll_transmit(later, &mut buf).is_some() {}
    let events: Vec<_> = std::iter::from_fn(|| dev.poll_event()).collect();
    assert!(events.contains(&DeviceEvent::ViewerLeft { id, reason: LeaveReason::ConnectTimeout }), "{events:?}");
    assert_eq!(dev.viewer_count(), 0);
}

#[test]
fn bad_input_is_refused_without_taking_a_slot() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let mut dev = device(&mut rng);
    let now = Instant::from_secs(1);
    let mut out = vec![0u8; 8192];
    for bad in ["", "hello", "v=0\r\nm=video x\r\n", &CHROMIUM_OFFER.replace("a=ice-pwd", "a=x-pwd")] {
        assert!(matches!(dev.add_viewer(now, bad, &mut out, &mut rng), Err(DeviceError::Peer(_))), "{bad:?}");
    }
    // An offer with only audio: no camera to give, refused.
    let audio_only =
        CHROMIUM_OFFER.split("m=video").next().unwrap().replace("a=group:BUNDLE 0 1 2", "a=group:BUNDLE 0");
    assert!(dev.add_viewer(now, &audio_only, &mut out, &mut rng).is_err());
    assert_eq!(dev.viewer_count(), 0);
    // Answer buffer too small: an error, no slot taken.
    assert!(dev.add_viewer(now, CHROMIUM_OFFER, &mut out[..100], &mut rng).is_err());
    assert_eq!(dev.viewer_count(), 0);
    // Garbage datagrams from anywhere: dropped and counted, never a panic.
    let src = addr("10.9.9.9:1");
    for first in [0u8, 1, 3, 20, 63, 128, 200, 255] {
        let mut d = [first, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19];
        let _ = dev.handle_receive(now, src, &mut d);
    }
    let mut empty = [];
    let _ = dev.handle_receive(now, src, &mut empty);
    assert_eq!(dev.stats().datagrams_unmatched, 9);
    assert_eq!(
        dev.add_remote_candidate(99, "candidate:1 1 udp 1 127.0.0.1 1 typ host"),
        Err(DeviceError::UnknownViewer)
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn sensor_readings_and_clip_over_data_channels() {
    let mut w = World::new(4);
    let a = w.join(6000).unwrap();
    let b = w.join(6001).unwrap();
    w.kick(a);
    w.kick(b);
    w.run_for(Duration::from_millis(500));
    w.open_channels(a);
    w.open_channels(b);
    w.run_for(Duration::from_secs(4));
    for id in [a, b] {
        let v = &w.viewers[&id];
        assert!((3..=5).contains(&v.sensor_lines.len()), "viewer {id}: {:?}", v.sensor_lines);
        for line in &v.sensor_lines {
            assert!(line.starts_with("{\"seq\":") && line.ends_with("}\n"), "{line:?}");
            assert!(line.contains("\"temperature_c\":2") && line.contains("\"humidity_pct\":4"), "{line:?}");
        }
    }
    // Both viewers see the same reading sequence (one sensor).
    assert_eq!(w.viewers[&a].sensor_lines[..3], w.viewers[&b].sensor_lines[..3]);
    // The clip, on request, to one viewer; an unknown request gets an error.
    w.send_files(a, "GET clip");
    w.send_files(b, "GET /etc/passwd");
    w.run_for(Duration::from_secs(2));
    let va = &w.viewers[&a];
    assert_eq!(va.file_bytes.len(), CLIP.len());
    assert!(va.file_bytes == CLIP, "clip bytes differ");
    let want =
        format!("{{\"done\":true,\"size\":{},\"sha256\":\"{}\"}}", CLIP.len(), hex(&tinyrtc::crypto::sha256(&[CLIP])));
    assert_eq!(va.file_texts, [want]);
    let vb = &w.viewers[&b];
    assert!(vb.file_bytes.is_empty());
    assert_eq!(vb.file_texts.len(), 1);
    assert!(vb.file_texts[0].starts_with("{\"error\""), "{:?}", vb.file_texts);
    let stats: Vec<_> = w.dev.viewer_stats(w.now).collect();
    let sa = stats.iter().find(|s| s.id == a).unwrap();
    assert_eq!((sa.files_sent, sa.file_bytes_sent), (1, CLIP.len() as u64));
    assert_eq!(sa.readings_skipped, 0);
    // Video kept flowing meanwhile.
    assert!(w.viewers[&a].video_frames >= 60, "{}", w.viewers[&a].video_frames);
}
