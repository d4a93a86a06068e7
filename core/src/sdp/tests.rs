use super::signaling::{self, JsonError, SdpType, Signal};
use super::*;

const FIREFOX_LIKE: &str = "v=0\r\n\
o=mozilla...THIS_IS_SDPARTA-99.0 4711 0 IN IP4 0.0.0.0\r\n\
s=-\r\n\
t=0 0\r\n\
a=fingerprint:sha-256 6A:2C:9B:1E:0D:3F:4A:5B:6C:7D:8E:9F:A0:B1:C2:D3:E4:F5:06:17:28:39:4A:5B:6C:7D:8E:9F:A0:B1:C2:D3\r\n\
a=group:BUNDLE 0 1\r\n\
a=ice-options:trickle\r\n\
a=msid-semantic:WMS *\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 109 9 0 8 101\r\n\
c=IN IP4 0.0.0.0\r\n\
a=sendrecv\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=extmap:3/recvonly urn:ietf:params:rtp-hdrext:csrc-audio-level\r\n\
a=fmtp:109 maxplaybackrate=48000;stereo=1;useinbandfec=1\r\n\
a=ice-pwd:cf6a8fa5c46cc11b0af2ab1ab5bbe8a4\r\n\
a=ice-ufrag:8f6a1a3b\r\n\
a=mid:0\r\n\
a=msid:{7a4f} {3b2e}\r\n\
a=rtcp-mux\r\n\
a=rtpmap:109 opus/48000/2\r\n\
a=rtpmap:9 G722/8000/1\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=setup:actpass\r\n\
a=ssrc:2655508255 cname:{735484ea}\r\n\
a=x-unknown-attribute:with stuff\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 120 126\r\n\
c=IN IP4 0.0.0.0\r\n\
a=recvonly\r\n\
a=fmtp:126 profile-level-id=42e01f;level-asymmetry-allowed=1;packetization-mode=1\r\n\
a=fmtp:120 max-fs=12288;max-fr=60\r\n\
a=ice-pwd:cf6a8fa5c46cc11b0af2ab1ab5bbe8a4\r\n\
a=ice-ufrag:8f6a1a3b\r\n\
a=mid:1\r\n\
a=rtcp-fb:* nack\r\n\
a=rtcp-fb:126 nack pli\r\n\
a=rtcp-fb:126 ccm fir\r\n\
a=rtcp-mux\r\n\
a=rtpmap:120 VP8/90000\r\n\
a=rtpmap:126 H264/90000\r\n\
a=setup:actpass\r\n";

#[test]
fn parses_firefox_style_offer() {
    let sd = SessionDescription::parse(FIREFOX_LIKE).unwrap();
    assert_eq!(sd.origin.session_id, 4711);
    assert_eq!(sd.bundle.as_slice(), &["0", "1"]);
    assert!(sd.transport.ice_trickle);
    let fp = sd.transport.fingerprint.unwrap();
    assert_eq!(fp.hash, HashFunction::Sha256);
    assert_eq!(fp.value()[..3], [0x6a, 0x2c, 0x9b]);
    assert_eq!(sd.media.len(), 2);
    let a = &sd.media[0];
    assert_eq!(a.kind, MediaKind::Audio);
    assert_eq!(a.codecs.len(), 5);
    assert_eq!(a.codec(109).unwrap().name, "opus");
    assert_eq!(a.codec(109).unwrap().channels, 2);
    assert_eq!(a.codec(109).unwrap().fmtp_param("stereo"), Some("1"));
    // Static payload types without rtpmap get their RFC 3551 names.
    assert_eq!(a.codec(0).unwrap().name, "PCMU");
    assert_eq!(a.extmaps[1].direction, Some(Direction::RecvOnly));
    assert_eq!(a.ssrcs[0].cname, Some("{735484ea}"));
    assert_eq!(a.msid, Some(Msid { stream: "{7a4f}", track: "{3b2e}" }));
    let v = &sd.media[1];
    assert_eq!(v.direction, Direction::RecvOnly);
    // `rtcp-fb:*` applies to every format.
    assert!(v.codec(120).unwrap().feedback.contains(Feedback::NACK));
    let h = v.codec(126).unwrap();
    assert!(h.feedback.contains(Feedback::NACK.union(Feedback::PLI).union(Feedback::FIR)));
    assert!(CodecChoice::H264ConstrainedBaseline.matches(h));
    assert!(!CodecChoice::H264Baseline.matches(h));
    let t = sd.transport_for(1);
    assert_eq!(t.ice_ufrag, Some("8f6a1a3b"));
    assert_eq!(t.setup, Some(Setup::ActPass));
    assert!(t.fingerprint.is_some());
}

#[test]
fn errors_name_the_line() {
    let bad = FIREFOX_LIKE.replace("a=rtpmap:109 opus/48000/2", "a=rtpmap:109 opus/fast");
    let e = SessionDescription::parse(&bad).unwrap_err();
    assert_eq!(e, Error { line: 20, kind: ErrorKind::Rtpmap });
    let bad = FIREFOX_LIKE.replace("a=setup:actpass", "a=setup:sideways");
    assert_eq!(SessionDescription::parse(&bad).unwrap_err().kind, ErrorKind::Setup);
    let bad = FIREFOX_LIKE.replace("6A:2C", "6A:2");
    assert_eq!(SessionDescription::parse(&bad).unwrap_err(), Error { line: 5, kind: ErrorKind::Fingerprint });
    assert_eq!(SessionDescription::parse("o=x\r\n").unwrap_err().kind, ErrorKind::MissingVersion);
    assert_eq!(SessionDescription::parse("v=1\r\n").unwrap_err().kind, ErrorKind::UnsupportedVersion);
    assert_eq!(SessionDescription::parse("").unwrap_err().kind, ErrorKind::MissingVersion);
    assert_eq!(SessionDescription::parse("v=0\nhello\n").unwrap_err(), Error { line: 2, kind: ErrorKind::Syntax });
    let e = SessionDescription::parse("v=0\nm=audio 9 RTP/AVP 0\na=candidate:1 1 udp x 1.2.3.4 5 typ host\n");
    assert_eq!(e.unwrap_err(), Error { line: 3, kind: ErrorKind::Candidate(CandidateError::Priority) });
    let e = SessionDescription::parse("v=0\nm=audio nine RTP/AVP 0\n").unwrap_err();
    assert_eq!(e, Error { line: 2, kind: ErrorKind::Media });
    let many = "v=0\nm=audio 9 RTP/AVP 0\nm=audio 9 RTP/AVP 0\nm=audio 9 RTP/AVP 0\nm=audio 9 RTP/AVP 0\nm=audio 9 RTP/AVP 0\n";
    let e = SessionDescription::parse(many).unwrap_err();
    assert_eq!(e, Error { line: 6, kind: ErrorKind::TooManyMediaSections });
}

#[test]
fn unknown_lines_are_skipped_and_write_round_trips() {
    let sd = SessionDescription::parse(FIREFOX_LIKE).unwrap();
    let mut buf = [0u8; 4096];
    let text = sd.write_str(&mut buf).unwrap();
    assert!(!text.contains("x-unknown"));
    let again = SessionDescription::parse(text).unwrap();
    assert_eq!(again, sd);
    // Too small a buffer is an error at every size, never a panic.
    let n = text.len();
    for size in [0, 1, 10, n / 2, n - 1] {
        let mut small = [0u8; 4096];
        assert_eq!(sd.write(&mut small[..size]), Err(BufferTooSmall));
    }
}

#[test]
fn never_panics_on_prefixes_and_garbage() {
    for end in 0..FIREFOX_LIKE.len() {
        let _ = SessionDescription::parse(&FIREFOX_LIKE[..end]);
        let _ = SessionDescription::parse_bytes(&FIREFOX_LIKE.as_bytes()[end..]);
    }
    let _ = SessionDescription::parse_bytes(&[b'v', b'=', b'0', b'\n', 0xff, 0xfe]);
    let e = SessionDescription::parse_bytes(b"v=0\ns=\xff\n").unwrap_err();
    assert_eq!(e, Error { line: 2, kind: ErrorKind::Syntax });
}

#[test]
fn candidates_parse_and_print() {
    let s = "candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 10.0.0.2 rport 46154 generation 0 ufrag EsAw network-cost 999";
    let c = Candidate::parse(s).unwrap();
    assert_eq!(c.kind, CandidateType::ServerReflexive);
    assert_eq!(c.priority, 1677729535);
    assert_eq!(c.related_address, Some("10.0.0.2"));
    assert_eq!(c.related_port, Some(46154));
    assert_eq!(c.ufrag, Some("EsAw"));
    assert_eq!(c.socket_addr(), Some("203.0.113.7:46154".parse().unwrap()));
    let mut buf = [0u8; 256];
    let mut w = wire::BufWriter::new(&mut buf);
    core::fmt::Write::write_fmt(&mut w, format_args!("{c}")).unwrap();
    let n = w.len();
    let printed = core::str::from_utf8(&buf[..n]).unwrap();
    assert_eq!(Candidate::parse(printed).unwrap(), c);
    let mdns = Candidate::parse("a=candidate:1 1 UDP 2122260223 9b36e2a6-4a3c.local 52103 typ host").unwrap();
    assert_eq!(mdns.socket_addr(), None);
    assert_eq!(Candidate::parse("candidate:1 1 udp 5 ::1 9").unwrap_err(), CandidateError::MissingField);
    assert_eq!(Candidate::parse("candidate:1 1 sctp 5 ::1 9 typ host").unwrap_err(), CandidateError::Transport);
    assert_eq!(Candidate::parse("candidate:1 1 udp 5 ::1 9 typ tunnel").unwrap_err(), CandidateError::Type);
    // Host candidate priority per RFC 8445 section 5.1.2.1.
    assert_eq!(Candidate::host("1", "127.0.0.1", 5000, 65535).priority, 2130706431);
}

fn local<'a>(ufrag: &'a str, cands: &'a [Candidate<'a>], fp: u8) -> LocalTransport<'a> {
    LocalTransport {
        ice_ufrag: ufrag,
        ice_pwd: "0123456789abcdefghijklmn",
        fingerprint: Fingerprint::sha256([fp; 32]),
        candidates: cands,
        end_of_candidates: true,
        session_id: 42,
        ice_lite: false,
    }
}

#[test]
fn camera_offer_answer_round() {
    let cands = [Candidate::host("1", "127.0.0.1", 40000, 65535)];
    let cam_policy = MediaPolicy {
        video_direction: Direction::SendOnly,
        audio_direction: Direction::SendRecv,
        video_source: Some(LocalSource { ssrc: 1111, cname: "cam", stream_id: "s", track_id: "v" }),
        audio_source: Some(LocalSource { ssrc: 2222, cname: "cam", stream_id: "s", track_id: "a" }),
        ..MediaPolicy::default()
    };
    let offer = build_offer(&local("camu", &cands, 1), &cam_policy);
    let mut buf = [0u8; 4096];
    let text = offer.write_str(&mut buf).unwrap();
    assert!(text.contains("m=video 9 UDP/TLS/RTP/SAVPF 102 103 96\r\n"), "{text}");
    assert!(text.contains("a=sendonly\r\n"));
    assert!(text.contains("m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"));
    assert!(text.contains("a=group:BUNDLE 0 1 2\r\n"));
    assert!(text.contains("a=ssrc:1111 cname:cam\r\n"));
    assert!(text.contains("a=setup:actpass\r\n"));
    let parsed_offer = SessionDescription::parse(text).unwrap();

    // The viewer answers: receive-only video, VP8 preferred over H.264.
    let view_policy = MediaPolicy {
        video_codecs: &[CodecChoice::Vp8, CodecChoice::H264ConstrainedBaseline],
        video_direction: Direction::RecvOnly,
        datachannel: true,
        ..MediaPolicy::default()
    };
    let vc = [Candidate::host("2", "127.0.0.1", 50000, 65535)];
    let (answer, neg) = build_answer(&parsed_offer, &local("view", &vc, 2), &view_policy).unwrap();
    assert_eq!(neg.remote_ice_ufrag, "camu");
    assert_eq!(neg.remote_fingerprint, Fingerprint::sha256([1; 32]));
    assert_eq!(neg.local_setup, Setup::Active);
    assert_eq!(neg.remote_candidates.len(), 1);
    let v = neg.media_of(MediaKind::Video).unwrap();
    assert_eq!(v.codec, Some((CodecChoice::Vp8, 96)));
    assert_eq!(v.direction, Direction::RecvOnly);
    assert_eq!(v.remote_ssrc, Some(1111));
    assert_eq!(neg.media_of(MediaKind::Application).unwrap().remote_sctp_port, Some(5000));
    let mut abuf = [0u8; 4096];
    let atext = answer.write_str(&mut abuf).unwrap();
    let parsed_answer = SessionDescription::parse(atext).unwrap();

    // The camera reads the answer.
    let cam_neg = accept_answer(&parsed_offer, &parsed_answer, &cam_policy).unwrap();
    assert_eq!(cam_neg.local_setup, Setup::Passive);
    assert_eq!(cam_neg.remote_ice_ufrag, "view");
    let v = cam_neg.media_of(MediaKind::Video).unwrap();
    assert_eq!(v.codec, Some((CodecChoice::Vp8, 96)));
    assert_eq!(v.direction, Direction::SendOnly);
    let a = cam_neg.media_of(MediaKind::Audio).unwrap();
    assert_eq!(a.codec, Some((CodecChoice::Opus, 111)));
    assert_eq!(a.direction, Direction::SendRecv);
    assert!(cam_neg.media_of(MediaKind::Application).is_some());
}

#[test]
fn rtx_offer_answer_round() {
    let src = |ssrc| Some(LocalSource { ssrc, cname: "c", stream_id: "s", track_id: "v" });
    let cam = MediaPolicy {
        video_direction: Direction::SendOnly,
        video_source: src(1111),
        video_rtx_ssrc: Some(1112),
        ..MediaPolicy::default()
    };
    let offer = build_offer(&local("camu", &[], 1), &cam);
    let mut buf = [0u8; 4096];
    let text = offer.write_str(&mut buf).unwrap();
    assert!(text.contains("m=video 9 UDP/TLS/RTP/SAVPF 102 107 103 108 96 97\r\n"), "{text}");
    assert!(text.contains("a=rtpmap:107 rtx/90000\r\na=fmtp:107 apt=102\r\n"), "{text}");
    assert!(text.contains("a=ssrc-group:FID 1111 1112\r\n"), "{text}");
    assert!(!text.contains("a=rtpmap:111 rtx"), "no RTX for audio");
    let parsed_offer = SessionDescription::parse(text).unwrap();
    // A receive-only viewer that does RTX: keeps the rtx of its pick (VP8).
    let viewer = MediaPolicy {
        video_codecs: &[CodecChoice::Vp8],
        video_direction: Direction::RecvOnly,
        video_rtx_ssrc: Some(2222),
        ..MediaPolicy::default()
    };
    let (answer, neg) = build_answer(&parsed_offer, &local("view", &[], 2), &viewer).unwrap();
    let v = neg.media_of(MediaKind::Video).unwrap();
    assert_eq!((v.codec, v.rtx_payload_type), (Some((CodecChoice::Vp8, 96)), Some(97)));
    assert_eq!((v.remote_ssrc, v.remote_rtx_ssrc), (Some(1111), Some(1112)));
    let mut abuf = [0u8; 4096];
    let atext = answer.write_str(&mut abuf).unwrap();
    assert!(atext.contains("m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n"), "{atext}");
    assert!(!atext.contains("ssrc-group"), "a receive-only section announces no SSRC");
    let cam_neg = accept_answer(&parsed_offer, &SessionDescription::parse(atext).unwrap(), &cam).unwrap();
    let v = cam_neg.media_of(MediaKind::Video).unwrap();
    assert_eq!((v.codec, v.rtx_payload_type), (Some((CodecChoice::Vp8, 96)), Some(97)));
    // An answer without rtx: plain retransmission.
    let plain = MediaPolicy { video_rtx_ssrc: None, ..viewer };
    let (answer, _) = build_answer(&parsed_offer, &local("view", &[], 2), &plain).unwrap();
    let mut pbuf = [0u8; 4096];
    let atext = answer.write_str(&mut pbuf).unwrap();
    let cam_neg = accept_answer(&parsed_offer, &SessionDescription::parse(atext).unwrap(), &cam).unwrap();
    assert_eq!(cam_neg.media_of(MediaKind::Video).unwrap().rtx_payload_type, None);
}

#[test]
fn answer_rejects_what_it_cannot_do() {
    let sd = SessionDescription::parse(FIREFOX_LIKE).unwrap();
    let policy = MediaPolicy { audio_codecs: &[CodecChoice::Pcma], ..MediaPolicy::default() };
    let (answer, neg) = build_answer(&sd, &local("u", &[], 3), &policy).unwrap();
    // Audio offered PCMA (static 8): accepted with it.
    assert_eq!(neg.media_of(MediaKind::Audio).unwrap().codec, Some((CodecChoice::Pcma, 8)));
    let policy = MediaPolicy { audio_codecs: &[], ..MediaPolicy::default() };
    let (answer2, neg2) = build_answer(&sd, &local("u", &[], 3), &policy).unwrap();
    assert!(neg2.media_of(MediaKind::Audio).is_none());
    assert_eq!(answer2.media[0].port, 0);
    assert_eq!(answer2.bundle.as_slice(), &["1"]);
    assert_eq!(answer.media[0].port, 9);
    let nothing = MediaPolicy { audio_codecs: &[], video_codecs: &[], ..MediaPolicy::default() };
    assert_eq!(build_answer(&sd, &local("u", &[], 3), &nothing).unwrap_err(), NegotiationError::NothingAccepted);
    let no_fp = FIREFOX_LIKE.replace("a=fingerprint", "a=x-fingerprint");
    let sd = SessionDescription::parse(&no_fp).unwrap();
    assert_eq!(build_answer(&sd, &local("u", &[], 3), &policy).unwrap_err(), NegotiationError::MissingFingerprint);
}

#[test]
fn json_descriptions_round_trip() {
    let sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=\"quoted\" \\ tab\t\u{1}\r\n";
    let mut out = [0u8; 256];
    let n = signaling::write_description(SdpType::Offer, sdp, &mut out).unwrap();
    let json = core::str::from_utf8(&out[..n]).unwrap();
    assert_eq!(
        json,
        "{\"type\":\"offer\",\"sdp\":\"v=0\\r\\no=- 1 2 IN IP4 127.0.0.1\\r\\ns=\\\"quoted\\\" \\\\ tab\\t\\u0001\\r\\n\"}"
    );
    let mut scratch = [0u8; 256];
    assert_eq!(signaling::parse(json, &mut scratch), Ok(Signal::Description { kind: SdpType::Offer, sdp }));
    // Key order, whitespace, unknown keys, \/ and \u escapes (with a
    // surrogate pair).
    let j =
        " { \"sdp\" : \"a\\/b \\u00e9 \\ud83d\\ude00\" ,\n \"x\": {\"y\":[1,2,{\"z\":null}]}, \"type\":\"answer\" } ";
    let mut scratch = [0u8; 64];
    assert_eq!(
        signaling::parse(j, &mut scratch),
        Ok(Signal::Description { kind: SdpType::Answer, sdp: "a/b \u{e9} \u{1f600}" })
    );
    let mut tiny = [0u8; 4];
    assert_eq!(signaling::parse(j, &mut tiny), Err(JsonError::BufferTooSmall));
    assert_eq!(signaling::write_description(SdpType::Answer, sdp, &mut out[..20]), Err(BufferTooSmall));
}

#[test]
fn json_candidates() {
    let mut out = [0u8; 256];
    let c = "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host";
    let n = signaling::write_candidate(Some(c), Some("0"), Some(0), &mut out).unwrap();
    let json = core::str::from_utf8(&out[..n]).unwrap();
    assert_eq!(
        json,
        "{\"candidate\":\"candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\",\"sdpMid\":\"0\",\"sdpMLineIndex\":0}"
    );
    let mut scratch = [0u8; 256];
    assert_eq!(
        signaling::parse(json, &mut scratch),
        Ok(Signal::Candidate { candidate: c, sdp_mid: Some("0"), sdp_mline_index: Some(0), username_fragment: None })
    );
    let n = signaling::write_candidate(None, None, None, &mut out).unwrap();
    assert_eq!(&out[..n], b"{\"candidate\":null}");
    for end in [
        "null",
        "{\"candidate\":null}",
        "{\"candidate\":\"\",\"sdpMid\":\"0\"}",
        " {\"candidate\" : null , \"sdpMLineIndex\":null} ",
    ] {
        assert_eq!(signaling::parse(end, &mut scratch), Ok(Signal::EndOfCandidates), "{end}");
    }
}

#[test]
fn json_rejects_garbage_without_panicking() {
    let mut scratch = [0u8; 64];
    for bad in [
        "",
        "{",
        "}",
        "[]",
        "{\"type\":\"offer\"}",
        "{\"type\":\"bogus\",\"sdp\":\"\"}",
        "{\"sdp\":\"x\\q\"}",
        "{\"sdp\":\"\\ud800\"}",
        "{\"a\":1,}",
        "{\"type\":\"offer\",\"sdp\":\"x\"} extra",
        "{\"sdp\":\"\\u12\"}",
        "{\"x\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]}",
        "{\"candidate\":\"a\nb\"}",
        "nul",
        "{\"x\":tru}",
    ] {
        assert!(signaling::parse(bad, &mut scratch).is_err(), "{bad:?}");
    }
    let deep = "{\"x\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]}";
    assert_eq!(signaling::parse(deep, &mut scratch), Err(JsonError::TooDeep));
    let long = "{\"type\":\"offer\",\"sdp\":\"v=0\\r\\n\\\"\\u00e9\\ud83d\\ude00\",\"candidate\":null}";
    for end in 0..long.len() {
        if let Some(s) = long.get(..end) {
            let _ = signaling::parse(s, &mut scratch);
        }
    }
}

#[test]
fn sizes_are_bounded() {
    extern crate std;
    let sd = core::mem::size_of::<SessionDescription<'_>>();
    let md = core::mem::size_of::<MediaDescription<'_>>();
    std::println!("size_of SessionDescription = {sd} bytes, MediaDescription = {md} bytes");
    assert!(sd < 32 * 1024);
}
