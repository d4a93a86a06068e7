//! tinyrtc `Peer` against headless Chromium on 127.0.0.1 (page served on
//! loopback, fake camera/microphone), media judged by Chromium's getStats().
//!
//! A: tinyrtc offers send-only H.264 video (an ffmpeg testsrc clip) and
//!    Opus audio; Chromium answers and decodes.
//! B: Chromium offers video+audio; tinyrtc answers; candidates trickled both
//!    ways; tinyrtc receives Chromium's camera.
//! C: as A with VP8.
//! E: as A, dropping every 10th video packet we send: Chromium NACKs, our
//!    send history answers with RTX, every frame decodes.
//! F: as B, dropping every 10th of Chromium's video packets before the
//!    peer sees them: we NACK, Chromium's RTX fills the holes.
//!
//! Chromium also gathers on the machine's other interfaces; the driver only
//! accepts loopback sources, so the pair ICE selects is a loopback pair.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant as StdInstant};

use host_tests::chromium::{self, json, selected_pair, stats_of, Chromium, Value};
use host_tests::clips::{self, h264_access_units, ivf_frames};
use host_tests::driver::{loopback_v4, PeerDriver};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tinyrtc::peer::{ChannelConfig, Peer, PeerConfig, PeerEvent};
use tinyrtc::sdp::signaling::{self, Signal};
use tinyrtc::sdp::{Candidate, CodecChoice, MediaKind};

const FPS: u32 = 15;
/// An Opus packet that decodes to 20 ms of silence (TOC: CELT FB 20 ms, one frame).
const OPUS_SILENCE: [u8; 3] = [0xf8, 0xff, 0xfe];

fn ffmpeg_missing() -> Option<String> {
    (!clips::ffmpeg_available()).then(|| "ffmpeg not found".into())
}

fn clip(dir: &Path, vp8: bool) -> Vec<Vec<u8>> {
    let out = if vp8 {
        clips::generate(dir, "clip.ivf", clips::TESTSRC_VP8)
    } else {
        clips::generate(dir, "clip.h264", clips::TESTSRC_H264)
    };
    let data = std::fs::read(&out).unwrap();
    let frames: Vec<Vec<u8>> =
        if vp8 { ivf_frames(&data).into_iter().map(<[u8]>::to_vec).collect() } else { h264_access_units(&data) };
    assert_eq!(frames.len(), 75, "5 s at 15 fps");
    frames
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tinyrtc-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn driver(config: PeerConfig, seed: u64) -> PeerDriver {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let peer = Peer::new(config, &mut rng);
    let mut d = PeerDriver::bind(peer, "127.0.0.1:0".parse().unwrap()).unwrap();
    d.accept_source = loopback_v4;
    d
}

/// Send `frames` at 15 fps (with 20 ms Opus packets between), driving the
/// peer meanwhile.
fn stream(d: &mut PeerDriver, frames: &[Vec<u8>]) {
    let start = StdInstant::now();
    let mut audio_seq = 0u32;
    for (i, f) in frames.iter().enumerate() {
        let due = start + Duration::from_millis(1000 * i as u64 / u64::from(FPS));
        while StdInstant::now() < due {
            let audio_due = start + Duration::from_millis(20 * u64::from(audio_seq));
            if StdInstant::now() >= audio_due {
                d.send_frame(MediaKind::Audio, &OPUS_SILENCE, audio_seq * 960).unwrap();
                audio_seq += 1;
            }
            d.turn(Duration::from_millis(5)).unwrap();
        }
        if i + 1 == frames.len() {
            // The last frame goes out whole: a packet lost at the very end
            // has no later one to reveal it, so nobody can ask for it.
            d.drop_video_every = 0;
        }
        d.send_frame(MediaKind::Video, f, i as u32 * (90_000 / FPS)).unwrap();
    }
}

fn inbound<'a>(stats: &'a [Value], kind: &str) -> Option<&'a Value> {
    stats_of(stats, "inbound-rtp").find(|s| s["kind"] == kind)
}

fn assert_loopback_pair(stats: &[Value]) {
    let (local, remote) = selected_pair(stats).expect("a selected candidate pair");
    for c in [&local, &remote] {
        let a = c["address"].as_str().or(c["ip"].as_str()).unwrap_or_default();
        assert_eq!(a, "127.0.0.1", "selected pair not loopback: {local} / {remote}");
    }
}

/// `drop_every`: drop every n-th video datagram we send (0: none); then
/// Chromium must NACK and our retransmissions (RTX) must fill the holes.
fn offer_case(test: &str, config: PeerConfig, vp8: bool, seed: u64, drop_every: u64) {
    if !chromium::peer_available(test, ffmpeg_missing()) {
        return;
    }
    let Some(mut chromium) = Chromium::launch(test) else { return };
    let dir = tempdir(test);
    let frames = clip(&dir, vp8);
    let mut d = driver(config, seed);
    d.drop_video_every = drop_every;
    let mut sdp = vec![0u8; 8192];
    let n = d.peer.create_offer(&mut sdp).unwrap();
    let offer = std::str::from_utf8(&sdp[..n]).unwrap().to_string();
    let answer = chromium.call("answer", json!([offer, {"audio": false, "gather": true}])).unwrap();
    let answer = answer.as_str().unwrap().to_string();
    let mut rng = ChaCha20Rng::seed_from_u64(seed + 1);
    let now = d.now();
    d.peer.set_remote_answer(now, &answer, &mut rng).unwrap();
    let want = if vp8 { CodecChoice::Vp8 } else { CodecChoice::H264ConstrainedBaseline };
    assert_eq!(d.peer.codec(MediaKind::Video).map(|c| c.0), Some(want));
    d.connect(Duration::from_secs(20));
    stream(&mut d, &frames);
    d.run_for(Duration::from_millis(1500));
    let stats = chromium.stats().unwrap();
    let video = inbound(&stats, "video").expect("inbound video stats");
    let decoded = video["framesDecoded"].as_u64().unwrap_or(0);
    let ours = d.peer.stats();
    eprintln!(
        "{test}: frames sent {} decoded {decoded}; video packets sent {} received {}; rtt {} us; pair {:?}",
        ours.video.frames_sent,
        ours.video.packets_sent,
        video["packetsReceived"],
        ours.video.rtt_us,
        ours.selected_remote
    );
    assert_eq!(ours.video.frames_sent, 75);
    assert!(decoded * 10 >= 75 * 9, "framesDecoded {decoded} < 90% of 75");
    if drop_every > 0 {
        let nacks = video["nackCount"].as_u64().unwrap_or(0);
        let plis = video["pliCount"].as_u64().unwrap_or(0);
        eprintln!(
            "{test}: dropped {} of our video packets; Chromium sent {nacks} NACKs, {plis} PLIs, lost {}; we got {} \
             NACKed seqs, retransmitted {} ({} misses)",
            d.video_dropped,
            video["packetsLost"],
            ours.video.nacks_received,
            ours.video.retransmissions_sent,
            ours.video.retransmit_misses
        );
        assert!(d.video_dropped >= 5);
        assert!(nacks > 0, "Chromium asked for the dropped packets");
        assert!(u64::from(ours.video.retransmissions_sent) >= d.video_dropped, "{:?}", ours.video);
        // Every frame decodes: the holes were filled (by RTX: negotiated).
        assert_eq!(decoded, 75, "frames decoded with the drops repaired");
        // Chromium counts the recovered packets as received (its packetsLost
        // stays at the primary stream's holes, repaired over the RTX SSRC).
        assert_eq!(video["packetsReceived"].as_u64(), Some(ours.video.packets_sent), "every packet arrived");
    }
    let audio = inbound(&stats, "audio").expect("inbound audio stats");
    let audio_rx = audio["packetsReceived"].as_u64().unwrap_or(0);
    assert!(audio_rx >= 100, "audio packets received {audio_rx}");
    assert_loopback_pair(&stats);
    assert!(ours.video.rtt_us > 0, "RTT from Chromium's receiver reports");
    assert!(d.events.iter().any(|e| matches!(e, PeerEvent::Connected)));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_tinyrtc_offers_h264_and_opus() {
    offer_case("peer_chromium::a_h264", PeerConfig::camera(), false, 11, 0);
}

#[test]
fn e_tinyrtc_h264_drops_repaired_by_rtx() {
    offer_case("peer_chromium::e_h264_rtx", PeerConfig::camera(), false, 55, 10);
}

#[test]
fn c_tinyrtc_offers_vp8() {
    let config = PeerConfig { video_codecs: &[CodecChoice::Vp8], ..PeerConfig::camera() };
    offer_case("peer_chromium::c_vp8", config, true, 33, 0);
}

#[test]
fn b_chromium_offers_tinyrtc_answers_with_trickle() {
    answer_case("peer_chromium::b_answer", 22, 0);
}

#[test]
fn f_chromium_video_drops_repaired_by_our_nacks() {
    answer_case("peer_chromium::f_nack", 66, 10);
}

/// Chromium offers, we answer and receive its camera; `drop_every`: drop
/// every n-th of its video packets before the peer sees them (0: none).
fn answer_case(test: &str, seed: u64, drop_every: u64) {
    let Some(mut chromium) = Chromium::launch(test) else { return };
    let config = PeerConfig { candidates_in_sdp: false, ..PeerConfig::viewer() };
    let mut d = driver(config, seed);
    d.drop_received_video_every = drop_every;
    // Chromium offers without waiting for candidates: they trickle.
    let offer = chromium
        .call("offer", json!([{"video": "sendrecv", "audio": "sendrecv", "datachannel": null, "gather": false}]))
        .unwrap();
    let offer = offer.as_str().unwrap().to_string();
    let mut rng = ChaCha20Rng::seed_from_u64(seed + 1);
    let mut sdp = vec![0u8; 8192];
    let now = d.now();
    let n = d.peer.accept_offer(now, &offer, &mut sdp, &mut rng).unwrap();
    let answer = std::str::from_utf8(&sdp[..n]).unwrap().to_string();
    assert!(!answer.contains("a=candidate"), "candidates must trickle");
    chromium.call("remoteAnswer", json!([answer])).unwrap();
    // Our candidate, trickled as JSON, then the end marker.
    let mut json_buf = vec![0u8; 1024];
    let cand = d.peer.local_candidate(0).unwrap().to_string();
    let n = signaling::write_candidate(Some(&cand), Some("0"), Some(0), &mut json_buf).unwrap();
    let init: Value = serde_json::from_slice(&json_buf[..n]).unwrap();
    chromium.call("addCandidate", json!([init])).unwrap();
    // Chromium's candidates, through tinyrtc's JSON parser.
    let mut trickled = 0;
    let deadline = StdInstant::now() + Duration::from_secs(20);
    while StdInstant::now() < deadline && d.peer.state() != tinyrtc::peer::PeerState::Connected {
        for ev in chromium.drain_events() {
            if ev["event"] != "candidate" {
                continue;
            }
            let text = ev["candidate"].to_string();
            let mut scratch = vec![0u8; 1024];
            match signaling::parse(&text, &mut scratch).unwrap() {
                Signal::Candidate { candidate, .. } => {
                    assert!(Candidate::parse(candidate).is_ok());
                    if chromium::loopback_only(candidate) {
                        d.peer.add_remote_candidate(candidate).unwrap();
                        trickled += 1;
                    }
                }
                Signal::EndOfCandidates => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        d.run_for(Duration::from_millis(20));
    }
    assert!(d.peer.state() == tinyrtc::peer::PeerState::Connected, "not connected: {:?}", d.peer.stats());
    assert!(trickled >= 1, "Chromium trickled a loopback candidate");
    // Receive Chromium's fake camera and microphone for 3.5 s; ask for a keyframe once.
    d.run_for(Duration::from_millis(1500));
    d.peer.request_keyframe().unwrap();
    d.run_for(Duration::from_millis(1500));
    // Stop dropping and receive a little longer, so the last dropped packet
    // has later ones that reveal it (a lost tail is never NACKed).
    d.drop_received_video_every = 0;
    d.run_for(Duration::from_millis(500));
    let ours = d.peer.stats();
    let stats = chromium.stats().unwrap();
    let out_video = stats_of(&stats, "outbound-rtp").find(|s| s["kind"] == "video").cloned().unwrap_or_default();
    eprintln!(
        "{test}: video rx {} packets / {} bytes, lost {}; audio rx {}; chromium sent {} video packets, pli {}",
        ours.video.packets_received,
        ours.video.bytes_received,
        ours.video.packets_lost,
        ours.audio.packets_received,
        out_video["packetsSent"],
        out_video["pliCount"]
    );
    assert!(ours.video.packets_received >= 50, "{ours:?}");
    assert!(ours.audio.packets_received >= 50, "{ours:?}");
    assert_eq!(d.peer.codec(MediaKind::Video).map(|c| c.0), Some(CodecChoice::H264ConstrainedBaseline));
    assert!(out_video["pliCount"].as_u64().unwrap_or(0) >= 1, "Chromium counted our PLI");
    assert_loopback_pair(&stats);
    // The H.264 payloads are real: some carry SPS NAL units (type 7, directly or in STAP-A).
    let sps = d.received.iter().filter(|m| m.info.kind == MediaKind::Video).any(|m| {
        m.payload.first().map(|b| b & 0x1f) == Some(7)
            || (m.payload.first().map(|b| b & 0x1f) == Some(24) && m.payload.get(3).map(|b| b & 0x1f) == Some(7))
    });
    assert!(sps, "an SPS was received");
    if drop_every > 0 {
        // Every hole was NACKed and filled by Chromium's RTX: the video we
        // handed out is in sequence order without gaps, and reassembles.
        let seqs: Vec<u16> =
            d.received.iter().filter(|m| m.info.kind == MediaKind::Video).map(|m| m.info.sequence_number).collect();
        let gaps = seqs.windows(2).filter(|w| w[1] != w[0].wrapping_add(1)).count();
        use tinyrtc::rtp::packetizer::Depacketizer;
        let mut dep = tinyrtc::rtp::h264::H264Depacketizer::new(vec![0u8; 512 * 1024]);
        let mut frames = 0;
        for m in d.received.iter().filter(|m| m.info.kind == MediaKind::Video) {
            if let Ok(Some(_)) = dep.push(m.info.sequence_number, m.info.timestamp, m.info.marker, &m.payload) {
                frames += 1;
            }
        }
        eprintln!(
            "{test}: dropped {} of Chromium's video packets; we NACKed {} seqs, got {} RTX, gave up {}; Chromium \
             counted {} NACKs, retransmitted {}; {} frames reassembled, {} broken, {gaps} gaps",
            d.received_video_dropped,
            ours.video.nacks_sent,
            ours.video.retransmissions_received,
            ours.video.packets_given_up,
            out_video["nackCount"],
            out_video["retransmittedPacketsSent"],
            frames,
            dep.dropped_frames()
        );
        assert!(d.received_video_dropped >= 5);
        assert!(out_video["nackCount"].as_u64().unwrap_or(0) > 0, "Chromium counted our NACKs");
        assert!(u64::from(ours.video.retransmissions_received) >= d.received_video_dropped, "{:?}", ours.video);
        assert_eq!(ours.video.packets_given_up, 0);
        assert_eq!(gaps, 0, "video handed out in order without holes");
        assert_eq!(dep.dropped_frames(), 0);
        assert!(frames >= 30, "{frames} frames");
    }
}

#[test]
fn d_data_channel_with_chromium() {
    let test = "peer_chromium::d_datachannel";
    let Some(mut chromium) = Chromium::launch(test) else { return };
    let config = PeerConfig { video_codecs: &[], audio_codecs: &[], ..PeerConfig::camera() };
    let mut d = driver(config, 44);
    let mut sdp = vec![0u8; 8192];
    let n = d.peer.create_offer(&mut sdp).unwrap();
    let offer = std::str::from_utf8(&sdp[..n]).unwrap().to_string();
    assert!(offer.contains("m=application"));
    let answer = chromium.call("answer", json!([offer, {"gather": true}])).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(45);
    let now = d.now();
    d.peer.set_remote_answer(now, answer.as_str().unwrap(), &mut rng).unwrap();
    d.connect(Duration::from_secs(20));
    let now = d.now();
    let id = d.peer.open_channel(now, "chat", "", ChannelConfig::default()).unwrap();
    d.peer.send_data(now, id, false, "ping from tinyrtc".as_bytes()).unwrap();
    let big: Vec<u8> = (0..12_000u32).map(|i| (i % 251) as u8).collect();
    d.peer.send_data(now, id, true, &big).unwrap();
    let mut texts = Vec::new();
    let mut binaries = Vec::new();
    let deadline = StdInstant::now() + Duration::from_secs(15);
    while StdInstant::now() < deadline && (texts.is_empty() || binaries.is_empty()) {
        d.run_for(Duration::from_millis(20));
        for ev in chromium.drain_events() {
            if ev["event"] == "dc-message" {
                if let Some(t) = ev["text"].as_str() {
                    texts.push(t.to_string());
                } else if let Some(b) = ev["bytes"].as_array() {
                    binaries.push(b.iter().map(|x| x.as_u64().unwrap_or(0) as u8).collect::<Vec<u8>>());
                }
            }
        }
    }
    assert_eq!(texts, ["ping from tinyrtc"]);
    assert_eq!(binaries.len(), 1);
    assert_eq!(binaries[0], big);
    // Chromium answers on the same channel.
    chromium.call("send", json!(["chat", "pong from chromium"])).unwrap();
    let deadline = StdInstant::now() + Duration::from_secs(10);
    let mut got = None;
    while StdInstant::now() < deadline && got.is_none() {
        d.run_for(Duration::from_millis(20));
        if let Some(PeerEvent::ChannelData { id: cid, binary: false, len }) =
            d.events.iter().find(|e| matches!(e, PeerEvent::ChannelData { .. })).copied()
        {
            let mut out = vec![0u8; 1024];
            let (rid, _, n) = d.peer.read_data(&mut out).unwrap();
            assert_eq!((rid, n), (cid, len));
            got = Some(String::from_utf8(out[..n].to_vec()).unwrap());
        }
    }
    assert_eq!(got.as_deref(), Some("pong from chromium"));
    assert!(d.events.contains(&PeerEvent::ChannelOpen { id, by_remote: false }), "{:?}", d.events);
}
