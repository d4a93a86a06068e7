//! Live Chromium judges tinyrtc's SDP: it must accept our offers and
//! answers (`setRemoteDescription`), and we must negotiate what it answers.
//! No media flows here (see `peer_chromium.rs` for that).

use host_tests::chromium::{json, Chromium};
use tinyrtc::sdp::*;

fn transport<'a>(cands: &'a [Candidate<'a>]) -> LocalTransport<'a> {
    LocalTransport {
        ice_ufrag: "tinyU",
        ice_pwd: "tinyrtc-ice-password-0123",
        fingerprint: Fingerprint::sha256([0x5a; 32]),
        candidates: cands,
        end_of_candidates: true,
        session_id: 123456789,
        ice_lite: false,
    }
}

fn camera_policy(video: &'static [CodecChoice]) -> MediaPolicy<'static> {
    MediaPolicy {
        video_codecs: video,
        video_direction: Direction::SendOnly,
        audio_direction: Direction::SendRecv,
        video_source: Some(LocalSource { ssrc: 0x1111_2222, cname: "tinyrtc", stream_id: "cam", track_id: "video" }),
        audio_source: Some(LocalSource { ssrc: 0x3333_4444, cname: "tinyrtc", stream_id: "cam", track_id: "audio" }),
        ..MediaPolicy::default()
    }
}

fn offer_to_chromium(chromium: &mut Chromium, video: &'static [CodecChoice], want: CodecChoice) {
    let cands = [Candidate::host("1", "127.0.0.1", 40000, 65535)];
    let policy = camera_policy(video);
    let offer = build_offer(&transport(&cands), &policy);
    let mut buf = vec![0u8; 8192];
    let text = offer.write_str(&mut buf).unwrap().to_string();
    let answer = chromium
        .call("answer", json!([text, {"audio": true}]))
        .unwrap_or_else(|e| panic!("Chromium rejected our offer: {e}\n{text}"));
    let answer = answer.as_str().expect("answer sdp").to_string();
    let parsed = SessionDescription::parse(&answer).unwrap();
    let neg = accept_answer(&offer, &parsed, &policy).unwrap();
    let v = neg.media_of(MediaKind::Video).expect("video accepted");
    assert_eq!(v.codec, Some((want, want.default_payload_type())), "{answer}");
    assert_eq!(v.direction, Direction::SendOnly);
    assert!(v.feedback.contains(Feedback::PLI), "Chromium asks for PLI");
    let a = neg.media_of(MediaKind::Audio).expect("audio accepted");
    assert_eq!(a.codec, Some((CodecChoice::Opus, 111)));
    assert_eq!(a.direction, Direction::SendRecv, "Chromium sends its fake microphone");
    assert!(a.remote_ssrc.is_some());
    assert!(neg.media_of(MediaKind::Application).is_some());
    // Chromium answering actpass takes the DTLS client role.
    assert_eq!(neg.local_setup, Setup::Passive);
    assert!(neg.remote_ice_pwd.len() >= 22);
}

#[test]
fn chromium_accepts_tinyrtc_h264_offer() {
    let Some(mut chromium) = Chromium::launch("sdp_chromium::h264_offer") else { return };
    offer_to_chromium(
        &mut chromium,
        &[CodecChoice::H264ConstrainedBaseline, CodecChoice::H264Baseline, CodecChoice::Vp8],
        CodecChoice::H264ConstrainedBaseline,
    );
}

#[test]
fn chromium_accepts_tinyrtc_vp8_offer() {
    let Some(mut chromium) = Chromium::launch("sdp_chromium::vp8_offer") else { return };
    offer_to_chromium(&mut chromium, &[CodecChoice::Vp8], CodecChoice::Vp8);
}

#[test]
fn chromium_accepts_tinyrtc_answer() {
    let Some(mut chromium) = Chromium::launch("sdp_chromium::answer") else { return };
    let offer = chromium
        .call("offer", json!([{"video": "sendrecv", "audio": "sendrecv", "datachannel": "chat", "gather": false}]))
        .unwrap();
    let offer = offer.as_str().unwrap().to_string();
    let parsed = SessionDescription::parse(&offer).unwrap();
    let cands = [Candidate::host("1", "127.0.0.1", 40000, 65535)];
    let policy = MediaPolicy {
        video_direction: Direction::RecvOnly,
        audio_source: Some(LocalSource { ssrc: 77, cname: "tinyrtc", stream_id: "s", track_id: "a" }),
        ..MediaPolicy::default()
    };
    let (answer, neg) = build_answer(&parsed, &transport(&cands), &policy).unwrap();
    let v = neg.media_of(MediaKind::Video).unwrap();
    assert_eq!(v.codec.map(|c| c.0), Some(CodecChoice::H264ConstrainedBaseline));
    assert_eq!(v.direction, Direction::RecvOnly);
    let mut buf = vec![0u8; 8192];
    let text = answer.write_str(&mut buf).unwrap().to_string();
    chromium
        .call("remoteAnswer", json!([text]))
        .unwrap_or_else(|e| panic!("Chromium rejected our answer: {e}\n{text}"));
    // A trickled candidate in tinyrtc's JSON form is accepted too.
    let c = Candidate::host("2", "127.0.0.1", 40001, 65534).to_string();
    let mut out = vec![0u8; 512];
    let n = signaling::write_candidate(Some(&c), Some("0"), Some(0), &mut out).unwrap();
    let init: serde_json::Value = serde_json::from_slice(&out[..n]).unwrap();
    chromium.call("addCandidate", json!([init])).unwrap();
}
