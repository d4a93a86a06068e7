//! Real Chromium SDP (captured by `host-tests/js/capture-sdp.mjs`) parsed by
//! tinyrtc: key fields, write -> parse round trips, answering the offer, and
//! Chromium's trickled-candidate JSON.

use std::path::PathBuf;

use tinyrtc::sdp::signaling::{self, Signal};
use tinyrtc::sdp::*;

fn fixture(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/sdp").join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn check_common(sd: &SessionDescription<'_>, setup: Setup) {
    assert!(!sd.bundle.is_empty(), "BUNDLE group");
    for (i, m) in sd.media.iter().enumerate() {
        assert!(!m.truncated, "section {i} truncated");
        assert_eq!(m.mid, Some(sd.bundle[i]), "mids in bundle order");
        let t = sd.transport_for(i);
        let ufrag = t.ice_ufrag.expect("ice-ufrag");
        assert!(ufrag.len() >= 4, "ufrag {ufrag}");
        assert!(t.ice_pwd.expect("ice-pwd").len() >= 22);
        assert!(t.ice_trickle);
        let fp = t.fingerprint.expect("fingerprint");
        assert_eq!(fp.hash, HashFunction::Sha256);
        assert_eq!(fp.value().len(), 32);
        assert_eq!(t.setup, Some(setup));
        if m.kind.is_rtp() {
            assert!(m.rtcp_mux);
            assert!(m.codecs.iter().all(|c| !c.name.is_empty()), "every payload type has an rtpmap");
        }
    }
}

#[test]
fn every_fixture_parses_and_round_trips() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/sdp");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("sdp") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let sd = SessionDescription::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!sd.media.is_empty());
        let mut buf = vec![0u8; 16384];
        let written = sd.write_str(&mut buf).unwrap();
        let again = SessionDescription::parse(written).unwrap();
        assert_eq!(again, sd, "{} round trip", path.display());
        n += 1;
    }
    assert!(n >= 3, "expected the captured fixtures, found {n}");
}

#[test]
fn chromium_offer_key_fields() {
    let text = fixture("chromium-offer-av-dc.sdp");
    let sd = SessionDescription::parse(&text).unwrap();
    check_common(&sd, Setup::ActPass);
    assert_eq!(sd.bundle.as_slice(), &["0", "1", "2"]);
    let kinds: Vec<_> = sd.media.iter().map(|m| m.kind).collect();
    assert_eq!(kinds, [MediaKind::Audio, MediaKind::Video, MediaKind::Application]);

    let audio = &sd.media[0];
    assert_eq!(audio.direction, Direction::SendRecv);
    let opus = audio.codec(111).unwrap();
    assert_eq!((opus.name, opus.clock_rate, opus.channels), ("opus", 48000, 2));
    assert!(opus.feedback.contains(Feedback::TRANSPORT_CC));
    assert_eq!(opus.fmtp_param("useinbandfec"), Some("1"));
    assert!(audio.codecs.iter().any(|c| CodecChoice::Pcmu.matches(c)));
    assert!(audio.extmaps.iter().any(|e| e.uri == "urn:ietf:params:rtp-hdrext:sdes:mid"));
    assert!(audio.ssrcs[0].cname.is_some());
    assert!(audio.msid.is_some());

    let video = &sd.media[1];
    assert_eq!(video.codecs.len(), 23);
    let h264: Vec<_> = video.codecs.iter().filter(|c| CodecChoice::H264ConstrainedBaseline.matches(c)).collect();
    assert_eq!(h264.len(), 1, "one 42e01f packetization-mode=1 format");
    let fb = h264[0].feedback;
    for f in [Feedback::NACK, Feedback::PLI, Feedback::FIR, Feedback::REMB, Feedback::TRANSPORT_CC] {
        assert!(fb.contains(f));
    }
    assert!(video.codecs.iter().any(|c| CodecChoice::H264Baseline.matches(c)));
    assert!(video.codecs.iter().any(|c| CodecChoice::Vp8.matches(c)));
    let (primary, rtx) = video.ssrc_group_fid.expect("ssrc-group FID");
    assert!(video.ssrcs.iter().any(|s| s.ssrc == primary) && video.ssrcs.iter().any(|s| s.ssrc == rtx));
    assert!(video.extmaps.len() >= 10);

    let dc = &sd.media[2];
    assert!(dc.is_datachannel());
    assert_eq!(dc.sctp_port, Some(5000));
    assert_eq!(dc.max_message_size, Some(262144));
    // Gathered offer: loopback UDP candidates in every section.
    for m in &sd.media {
        let lo = m.candidates.iter().filter(|c| c.socket_addr().is_some_and(|a| a.ip().is_loopback())).count();
        assert!(lo >= 1, "loopback candidate in {:?}", m.kind);
    }
}

#[test]
fn chromium_answer_key_fields() {
    let offer_text = fixture("chromium-offer-av-dc.sdp");
    let answer_text = fixture("chromium-answer-av-dc.sdp");
    let offer = SessionDescription::parse(&offer_text).unwrap();
    let answer = SessionDescription::parse(&answer_text).unwrap();
    check_common(&answer, Setup::Active);
    assert_eq!(answer.media.len(), offer.media.len());
    // tinyrtc reading Chromium's answer to Chromium's offer, with the
    // default policy: Opus for audio; for video, Chromium answered all
    // formats and the first one (VP8) is what it will use.
    let policy = MediaPolicy::default();
    let neg = accept_answer(&offer, &answer, &policy).unwrap();
    assert_eq!(neg.local_setup, Setup::Passive);
    assert_eq!(neg.media_of(MediaKind::Audio).unwrap().codec, Some((CodecChoice::Opus, 111)));
    assert_eq!(neg.media_of(MediaKind::Video).unwrap().codec, Some((CodecChoice::Vp8, 96)));
    assert_eq!(neg.media_of(MediaKind::Application).unwrap().remote_sctp_port, Some(5000));
}

#[test]
fn tinyrtc_answers_chromium_offer() {
    let text = fixture("chromium-offer-av-dc.sdp");
    let offer = SessionDescription::parse(&text).unwrap();
    let cands = [Candidate::host("1", "127.0.0.1", 40000, 65535)];
    let transport = LocalTransport {
        ice_ufrag: "tiny",
        ice_pwd: "tinyrtc-password-012345",
        fingerprint: Fingerprint::sha256([7; 32]),
        candidates: &cands,
        end_of_candidates: true,
        session_id: 1,
        ice_lite: false,
    };
    let policy = MediaPolicy::default();
    let (answer, neg) = build_answer(&offer, &transport, &policy).unwrap();
    // Our preference (H.264 CB first) intersected with theirs, their PTs.
    assert_eq!(neg.media_of(MediaKind::Video).unwrap().codec, Some((CodecChoice::H264ConstrainedBaseline, 108)));
    assert_eq!(neg.media_of(MediaKind::Audio).unwrap().codec, Some((CodecChoice::Opus, 111)));
    assert_eq!(neg.remote_ice_ufrag, offer.transport_for(0).ice_ufrag.unwrap());
    // Chromium's loopback + interface candidates, deduplicated by address.
    assert!(neg.remote_candidates.iter().any(|c| c.address == "127.0.0.1"));
    let mut buf = vec![0u8; 8192];
    let text = answer.write_str(&mut buf).unwrap();
    assert!(text.contains("a=rtpmap:108 H264/90000\r\n"), "{text}");
    assert!(text.contains("a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n"));
    assert!(text.contains("a=setup:active\r\n"));
    // Only what we implement is answered: no transport-cc / remb.
    assert!(!text.contains("transport-cc"));
    assert!(text.contains("a=rtcp-fb:108 nack pli\r\n"));
}

#[test]
fn tinyrtc_answers_chromium_offer_with_rtx() {
    let text = fixture("chromium-offer-av-dc.sdp");
    let offer = SessionDescription::parse(&text).unwrap();
    let transport = LocalTransport {
        ice_ufrag: "tiny",
        ice_pwd: "tinyrtc-password-012345",
        fingerprint: Fingerprint::sha256([7; 32]),
        candidates: &[],
        end_of_candidates: false,
        session_id: 1,
        ice_lite: false,
    };
    let src = LocalSource { ssrc: 0x1234, cname: "cam", stream_id: "s", track_id: "v" };
    let policy = MediaPolicy { video_source: Some(src), video_rtx_ssrc: Some(0x5678), ..MediaPolicy::default() };
    let (answer, neg) = build_answer(&offer, &transport, &policy).unwrap();
    let v = neg.media_of(MediaKind::Video).unwrap();
    assert_eq!(v.codec, Some((CodecChoice::H264ConstrainedBaseline, 108)));
    // The offer pairs 109 with 108 ("a=fmtp:109 apt=108") and its FID group.
    assert_eq!(v.rtx_payload_type, Some(109));
    let (primary, rtx) = offer.media[1].ssrc_group_fid.unwrap();
    assert_eq!((v.remote_ssrc, v.remote_rtx_ssrc), (Some(primary), Some(rtx)));
    let mut buf = vec![0u8; 8192];
    let text = answer.write_str(&mut buf).unwrap();
    assert!(text.contains("a=rtpmap:109 rtx/90000\r\na=fmtp:109 apt=108\r\n"), "{text}");
    assert!(text.contains("a=ssrc-group:FID 4660 22136\r\n"), "{text}");
    assert!(text.contains("a=ssrc:22136 cname:cam\r\n"), "{text}");
    // Without RTX in the policy the answer has none.
    let (answer, neg) = build_answer(&offer, &transport, &MediaPolicy::default()).unwrap();
    assert_eq!(neg.media_of(MediaKind::Video).unwrap().rtx_payload_type, None);
    let text = answer.write_str(&mut buf).unwrap();
    assert!(!text.contains("rtx/90000"), "{text}");
}

#[test]
fn chromium_candidate_json() {
    let text = fixture("chromium-candidates.jsonl");
    let mut scratch = vec![0u8; 1024];
    let (mut cands, mut ends) = (0, 0);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match signaling::parse(line, &mut scratch).unwrap_or_else(|e| panic!("{line}: {e:?}")) {
            Signal::Candidate { candidate, sdp_mid, sdp_mline_index, username_fragment } => {
                let c = Candidate::parse(candidate).unwrap_or_else(|e| panic!("{candidate}: {e:?}"));
                assert_eq!(c.ufrag, username_fragment);
                assert_eq!(sdp_mid.map(|m| m.parse::<u16>().unwrap()), sdp_mline_index);
                // serde_json is the independent judge of the JSON escaping.
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!(v["candidate"].as_str(), Some(candidate));
                let mut out = vec![0u8; 1024];
                let n = signaling::write_candidate(Some(candidate), sdp_mid, sdp_mline_index, &mut out).unwrap();
                let w: serde_json::Value = serde_json::from_slice(&out[..n]).unwrap();
                assert_eq!(w["candidate"], v["candidate"]);
                assert_eq!(w["sdpMid"], v["sdpMid"]);
                assert_eq!(w["sdpMLineIndex"], v["sdpMLineIndex"]);
                cands += 1;
            }
            Signal::EndOfCandidates => ends += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(cands >= 8);
    assert_eq!(ends, 1);
}

#[test]
fn description_json_agrees_with_serde() {
    let text = fixture("chromium-offer-av-dc.sdp");
    let mut out = vec![0u8; 16384];
    let n = signaling::write_description(signaling::SdpType::Offer, &text, &mut out).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out[..n]).unwrap();
    assert_eq!(v["type"], "offer");
    assert_eq!(v["sdp"].as_str(), Some(text.as_str()));
    let theirs = serde_json::json!({"sdp": text, "type": "offer"}).to_string();
    let mut scratch = vec![0u8; 16384];
    assert_eq!(
        signaling::parse(&theirs, &mut scratch).unwrap(),
        Signal::Description { kind: signaling::SdpType::Offer, sdp: &text }
    );
}
