//! tinyrtc `Peer` against aiortc (PyPI, `host-tests/.venv`) on 127.0.0.1.
//! SDP crosses over the script's stdin/stdout (`host-tests/py/aiortc_peer.py`).
//!
//! A: tinyrtc offers send-only H.264 video (an ffmpeg testsrc clip, 75
//!    frames at 15 fps); aiortc answers, receives and decodes it (PyAV's
//!    H.264 decoder): at least 90% of the frames must come out decoded.
//! B: aiortc offers send-only VP8 video from a synthetic track (90 frames at
//!    30 fps, 320x240); tinyrtc answers, receives and depacketizes it. The
//!    frames must start with a keyframe, number at least 90% of what
//!    aiortc's encoder produced, advance by 3000+-1 ticks, carry 320x240 key
//!    frame headers, answer our PLI with a new keyframe, and decode cleanly
//!    with ffmpeg.

use std::path::PathBuf;
use std::time::{Duration, Instant as StdInstant};

use host_tests::aiortc::{json, Aiortc, Value};
use host_tests::clips;
use host_tests::driver::{loopback_v4, PeerDriver};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tinyrtc::peer::{Peer, PeerConfig, PeerEvent};
use tinyrtc::rtp::packetizer::Depacketizer;
use tinyrtc::rtp::vp8::Vp8Depacketizer;
use tinyrtc::sdp::{CodecChoice, Direction, MediaKind};

const H264_FPS: u32 = 15;
const H264_FRAMES: u64 = 75;
const VP8_FRAMES: u64 = 90;

fn driver(config: PeerConfig, seed: u64) -> PeerDriver {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let peer = Peer::new(config, &mut rng);
    let mut d = PeerDriver::bind(peer, "127.0.0.1:0".parse().unwrap()).unwrap();
    d.accept_source = loopback_v4;
    d
}

fn clip_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("aiortc-clips")
}

fn stat(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

/// Run the driver while asking aiortc to wait for `what >= at_least`.
fn wait_aiortc(a: &mut Aiortc, d: &mut PeerDriver, what: &str, at_least: u64, secs: u64) -> Value {
    a.call_with(
        "wait",
        json!({"what": what, "at_least": at_least, "timeout": secs}),
        Duration::from_secs(secs + 10),
        || d.run_for(Duration::from_millis(10)),
    )
    .unwrap()
}

#[test]
fn a_tinyrtc_offers_h264_aiortc_decodes() {
    let test = "peer_aiortc::a_h264";
    if !clips::require_ffmpeg(test) {
        return;
    }
    let Some(mut a) = Aiortc::launch(test) else { return };
    let clip = clips::generate(&clip_dir(), "testsrc-320x240-15fps.h264", clips::TESTSRC_H264);
    let frames = clips::h264_access_units(&std::fs::read(clip).unwrap());
    assert_eq!(frames.len() as u64, H264_FRAMES, "5 s at 15 fps");

    let config = PeerConfig {
        video_codecs: &[CodecChoice::H264ConstrainedBaseline, CodecChoice::H264Baseline],
        audio_codecs: &[],
        datachannel: false,
        ..PeerConfig::camera()
    };
    let mut d = driver(config, 101);
    let mut sdp = vec![0u8; 8192];
    let n = d.peer.create_offer(&mut sdp).unwrap();
    let offer = std::str::from_utf8(&sdp[..n]).unwrap().to_string();
    let answer = a.call("answer", json!({"sdp": offer})).unwrap();
    let answer = answer.as_str().expect("answer SDP").to_string();
    assert!(answer.contains("a=candidate:") && answer.contains("127.0.0.1"), "aiortc answer lacks loopback candidate");
    let mut rng = ChaCha20Rng::seed_from_u64(102);
    let now = d.now();
    d.peer.set_remote_answer(now, &answer, &mut rng).unwrap();
    let codec = d.peer.codec(MediaKind::Video).map(|c| c.0);
    assert!(
        matches!(codec, Some(CodecChoice::H264ConstrainedBaseline | CodecChoice::H264Baseline)),
        "negotiated {codec:?}"
    );
    let t0 = StdInstant::now();
    d.connect(Duration::from_secs(20));
    let connect_ms = t0.elapsed().as_millis();

    // 75 frames at 15 fps.
    let start = StdInstant::now();
    for (i, f) in frames.iter().enumerate() {
        let due = start + Duration::from_millis(1000 * i as u64 / u64::from(H264_FPS));
        while StdInstant::now() < due {
            d.turn(Duration::from_millis(5)).unwrap();
        }
        d.send_frame(MediaKind::Video, f, i as u32 * (90_000 / H264_FPS)).unwrap();
    }
    // aiortc's jitter buffer releases a frame when the next one starts: the
    // last frame may stay inside.
    let s = wait_aiortc(&mut a, &mut d, "frames_decoded", H264_FRAMES, 5);
    d.run_for(Duration::from_millis(500));
    let ours = d.peer.stats();
    let decoded = stat(&s, "frames_decoded");
    eprintln!(
        "{test}: connected in {connect_ms} ms; frames sent {} ({} packets, {} bytes); aiortc decoded {decoded} \
         at {:?}; rtt {} us; keyframe requests {}",
        ours.video.frames_sent,
        ours.video.packets_sent,
        ours.video.bytes_sent,
        s["decoded_size"],
        ours.video.rtt_us,
        d.events.iter().filter(|e| matches!(e, PeerEvent::KeyframeRequest { .. })).count(),
    );
    assert_eq!(ours.video.frames_sent, H264_FRAMES);
    assert!(decoded * 10 >= H264_FRAMES * 9, "aiortc decoded {decoded} < 90% of {H264_FRAMES}");
    assert!(decoded <= H264_FRAMES, "aiortc decoded more frames ({decoded}) than sent");
    assert_eq!(s["decoded_size"], json!([320, 240]), "decoded picture size");
    assert_eq!(s["connection"], "connected");
    assert!(ours.video.rtt_us > 0, "RTT from aiortc's receiver reports");
    assert!(ours.selected_remote.is_some_and(|a| a.ip().is_loopback()));
}

#[test]
fn b_aiortc_offers_vp8_tinyrtc_receives() {
    let test = "peer_aiortc::b_vp8";
    let ffmpeg = clips::require_ffmpeg(test);
    let Some(mut a) = Aiortc::launch(test) else { return };
    let offer = a.call("offer", json!({"video_frames": VP8_FRAMES, "width": 320, "height": 240})).unwrap();
    let offer = offer.as_str().expect("offer SDP").to_string();
    assert!(offer.contains("VP8/90000"));

    let config = PeerConfig {
        video_codecs: &[CodecChoice::Vp8],
        audio_codecs: &[],
        video_direction: Direction::RecvOnly,
        datachannel: false,
        ..PeerConfig::camera()
    };
    let mut d = driver(config, 201);
    let mut rng = ChaCha20Rng::seed_from_u64(202);
    let mut sdp = vec![0u8; 8192];
    let now = d.now();
    let n = d.peer.accept_offer(now, &offer, &mut sdp, &mut rng).unwrap();
    let answer = std::str::from_utf8(&sdp[..n]).unwrap().to_string();
    assert_eq!(d.peer.codec(MediaKind::Video).map(|c| c.0), Some(CodecChoice::Vp8));
    let t0 = StdInstant::now();
    a.call_with("remote_answer", json!({"sdp": answer}), Duration::from_secs(20), || {
        d.run_for(Duration::from_millis(10))
    })
    .unwrap();
    d.connect(Duration::from_secs(20));
    let connect_ms = t0.elapsed().as_millis();

    // Half-way, ask for a keyframe (aiortc's first frame is one; this must make another).
    let s = wait_aiortc(&mut a, &mut d, "frames_encoded", VP8_FRAMES / 2, 10);
    let pli_after_packets = d.received.len();
    d.peer.request_keyframe().unwrap();
    let s2 = wait_aiortc(&mut a, &mut d, "frames_encoded", VP8_FRAMES, 10);
    d.run_for(Duration::from_millis(700));
    let s3 = a.call("stats", Value::Null).unwrap();
    let encoded = stat(&s3, "frames_encoded");
    let keyframes_encoded = stat(&s3, "keyframes_encoded");
    assert_eq!(stat(&s2, "frames_produced"), VP8_FRAMES, "{s2}");
    assert!(stat(&s, "frames_encoded") >= VP8_FRAMES / 2);

    // Depacketize what arrived.
    let mut dep = Vp8Depacketizer::new(vec![0u8; 256 * 1024]);
    let mut got: Vec<(u32, bool, Vec<u8>)> = Vec::new();
    let mut keyframe_after_pli = false;
    let mut packets = 0;
    for (i, m) in d.received.iter().enumerate() {
        if m.info.kind != MediaKind::Video {
            continue;
        }
        packets += 1;
        assert_eq!(m.info.codec, CodecChoice::Vp8);
        if let Some(f) = dep.push(m.info.sequence_number, m.info.timestamp, m.info.marker, &m.payload).unwrap() {
            got.push((f.timestamp, f.keyframe, dep.frame()[..f.len].to_vec()));
            keyframe_after_pli |= f.keyframe && i >= pli_after_packets;
        }
    }
    let ours = d.peer.stats();
    let keyframes = got.iter().filter(|f| f.1).count();
    let bytes: usize = got.iter().map(|f| f.2.len()).sum();
    eprintln!(
        "{test}: connected in {connect_ms} ms; aiortc encoded {encoded} frames ({keyframes_encoded} key, {} bytes); \
         tinyrtc received {packets} packets, {} frames ({keyframes} key, {bytes} bytes), dropped {}, lost {}",
        stat(&s3, "bytes_encoded"),
        got.len(),
        dep.dropped_frames(),
        ours.video.packets_lost,
    );
    assert!(encoded >= VP8_FRAMES * 9 / 10, "aiortc encoded only {encoded}");
    assert!(got.len() as u64 * 10 >= encoded * 9, "{} complete frames < 90% of {encoded}", got.len());
    assert!(got.len() as u64 <= encoded, "more frames than aiortc encoded");
    assert!(got.first().is_some_and(|f| f.1), "first complete frame is not a keyframe");
    assert!(keyframe_after_pli, "no keyframe after our PLI");
    assert!(keyframes_encoded >= 2, "aiortc encoded {keyframes_encoded} keyframes");
    // RTP timestamps advance 3000 ticks (30 fps at 90 kHz) per frame, +-1
    // (aiortc converts 1/30 s through a rounded time base).
    let steady = got.windows(2).filter(|w| (2999..=3001).contains(&w[1].0.wrapping_sub(w[0].0))).count();
    let steps: Vec<u32> = got.windows(2).map(|w| w[1].0.wrapping_sub(w[0].0)).collect();
    assert!(steady * 10 >= (got.len() - 1) * 9, "timestamps: only {steady} steps of 3000+-1: {steps:?}");
    // Key frame headers (RFC 6386 9.1): start code 9d 01 2a, then 14-bit width and height.
    for (_, key, f) in got.iter().filter(|f| f.1) {
        assert!(*key && f.len() >= 10 && f[3..6] == [0x9d, 0x01, 0x2a], "bad keyframe header");
        let w = u16::from_le_bytes([f[6], f[7]]) & 0x3fff;
        let h = u16::from_le_bytes([f[8], f[9]]) & 0x3fff;
        assert_eq!((w, h), (320, 240));
    }
    // ffmpeg decodes what we reassembled.
    if ffmpeg {
        let frames: Vec<Vec<u8>> = got.into_iter().map(|f| f.2).collect();
        let dir = clip_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("from-aiortc-{}.ivf", std::process::id()));
        std::fs::write(&path, clips::write_ivf(&frames, 320, 240, 30)).unwrap();
        let r = clips::ffmpeg_decodes(&path, "ivf");
        let _ = std::fs::remove_file(&path);
        r.expect("ffmpeg decodes the VP8 frames tinyrtc reassembled");
    }
}
