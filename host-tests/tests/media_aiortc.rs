//! aiortc (an independent Python WebRTC stack) as the judge of our wire
//! formats, both ways:
//! - H.264 (ffmpeg clip) and VP8 (ffmpeg clip) payloads we packetize are
//!   depacketized by aiortc into the same access units / frames, and
//!   aiortc's packetizer output is depacketized by ours into the input;
//! - an RTCP compound we build (SR with report blocks, SDES, BYE, NACK,
//!   PLI, REMB) is parsed by aiortc to the same values, and one aiortc
//!   builds is parsed by us;
//! - RTP headers with mid / abs-send-time / transport-cc extensions, one
//!   and two-byte forms, parsed by aiortc; aiortc's serialization parsed by us.
//!
//! Needs ffmpeg and the aiortc venv of `scripts/setup.sh`
//! (`host-tests/.venv`): missing, the test fails in CI and skips otherwise.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use host_tests::clips;
use serde_json::{json, Value};
use tinyrtc::rtcp::wire::{CompoundIter, CompoundWriter, NackItem, ReportBlock, RtcpPacket, SenderInfo};
use tinyrtc::rtp::h264::{H264Depacketizer, H264Payloader};
use tinyrtc::rtp::packetizer::{Depacketizer, Payloader};
use tinyrtc::rtp::vp8::{Vp8Depacketizer, Vp8Payloader};
use tinyrtc::rtp::wire::{abs_send_time_from_micros, Extension, RtpHeader, RtpPacket};

const SCRIPT: &str = r#"
import json, sys
from aiortc.codecs.h264 import H264Encoder, h264_depayload
from aiortc.codecs.vpx import Vp8Encoder, vp8_depayload
from aiortc import rtp
from aiortc.rtcrtpparameters import RTCRtpParameters, RTCRtpHeaderExtensionParameters

inp = json.load(sys.stdin)
out = {}
h = bytes.fromhex
out["h264_depay"] = [b"".join(h264_depayload(h(p)) for p in au).hex() for au in inp["h264_ours"]]
out["h264_theirs"] = [[p.hex() for p in H264Encoder._packetize(list(H264Encoder._split_bitstream(h(au))))]
                      for au in inp["h264_aus"]]
out["vp8_depay"] = [b"".join(vp8_depayload(h(p)) for p in f).hex() for f in inp["vp8_ours"]]
out["vp8_theirs"] = [[p.hex() for p in Vp8Encoder._packetize(h(f), i)] for i, f in enumerate(inp["vp8_frames"])]

def pkt(p):
    if isinstance(p, rtp.RtcpSrPacket):
        return {"t": "sr", "ssrc": p.ssrc, "ntp": p.sender_info.ntp_timestamp, "rtp": p.sender_info.rtp_timestamp,
                "pc": p.sender_info.packet_count, "oc": p.sender_info.octet_count,
                "reports": [[r.ssrc, r.fraction_lost, r.packets_lost, r.highest_sequence, r.jitter, r.lsr, r.dlsr]
                            for r in p.reports]}
    if isinstance(p, rtp.RtcpSdesPacket):
        return {"t": "sdes", "chunks": [[c.ssrc, [[t, v.hex()] for t, v in c.items]] for c in p.chunks]}
    if isinstance(p, rtp.RtcpByePacket):
        return {"t": "bye", "sources": p.sources}
    if isinstance(p, rtp.RtcpRtpfbPacket):
        return {"t": "rtpfb", "fmt": p.fmt, "ssrc": p.ssrc, "media": p.media_ssrc, "lost": p.lost}
    if isinstance(p, rtp.RtcpPsfbPacket):
        d = {"t": "psfb", "fmt": p.fmt, "ssrc": p.ssrc, "media": p.media_ssrc}
        if p.fmt == 15:
            d["remb"] = list(rtp.unpack_remb_fci(p.fci))
        return d
    return {"t": type(p).__name__}
out["rtcp_parsed"] = [pkt(p) for p in rtp.RtcpPacket.parse(h(inp["rtcp_ours"]))]

theirs = b"".join(bytes(p) for p in [
    rtp.RtcpSrPacket(ssrc=0x11223344, sender_info=rtp.RtcpSenderInfo(
        ntp_timestamp=0xe1234567_89abcdef, rtp_timestamp=123456, packet_count=77, octet_count=88888),
        reports=[rtp.RtcpReceiverInfo(ssrc=5, fraction_lost=12, packets_lost=-2, highest_sequence=70000,
                                      jitter=33, lsr=0x45678, dlsr=0x1000)]),
    rtp.RtcpSdesPacket(chunks=[rtp.RtcpSourceInfo(ssrc=0x11223344, items=[(1, b"aiortc-cname")])]),
    rtp.RtcpRtpfbPacket(fmt=1, ssrc=9, media_ssrc=10, lost=[100, 101, 105, 130, 131]),
    rtp.RtcpPsfbPacket(fmt=1, ssrc=9, media_ssrc=10),
    rtp.RtcpPsfbPacket(fmt=15, ssrc=9, media_ssrc=0, fci=rtp.pack_remb_fci(2_500_000, [10, 11])),
    rtp.RtcpByePacket(sources=[0x11223344]),
])
out["rtcp_theirs"] = theirs.hex()

params = RTCRtpParameters(headerExtensions=[
    RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
    RTCRtpHeaderExtensionParameters(id=2, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"),
    RTCRtpHeaderExtensionParameters(id=3, uri="http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"),
])
m = rtp.HeaderExtensionsMap()
m.configure(params)
parsed = []
for x in inp["rtp_ours"]:
    p = rtp.RtpPacket.parse(h(x), m)
    parsed.append({"pt": p.payload_type, "m": p.marker, "seq": p.sequence_number, "ts": p.timestamp,
                   "ssrc": p.ssrc, "csrc": p.csrc, "mid": p.extensions.mid, "abs": p.extensions.abs_send_time,
                   "twcc": p.extensions.transport_sequence_number, "payload": p.payload.hex()})
out["rtp_parsed"] = parsed
p = rtp.RtpPacket(payload_type=96, marker=1, sequence_number=4321, timestamp=987654, ssrc=0xabcdef01,
                  payload=b"\x01\x02\x03")
p.extensions.mid = "video0"
p.extensions.abs_send_time = 0x123456
p.extensions.transport_sequence_number = 777
out["rtp_theirs"] = p.serialize(m).hex()
json.dump(out, sys.stdout)
"#;

fn python() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let ok = Command::new(&p).args(["-c", "import aiortc"]).output().map(|o| o.status.success()).unwrap_or(false);
    ok.then_some(p)
}

fn hex_list(v: &Value) -> Vec<Vec<u8>> {
    v.as_array().unwrap().iter().map(|x| hex::decode(x.as_str().unwrap()).unwrap()).collect()
}

/// Our payloads (no RTP header) for each frame.
fn payloads<P: Payloader>(mut p: P) -> Vec<String> {
    let mut buf = [0u8; 1200 - 12];
    let mut out = Vec::new();
    while let Some(c) = p.next_payload(&mut buf) {
        let c = c.unwrap();
        out.push(hex::encode(&buf[..c.len]));
    }
    out
}

fn depacketize<D: Depacketizer>(d: &mut D, frames: &[Vec<Vec<u8>>], seq: &mut u16) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        for (k, p) in f.iter().enumerate() {
            *seq = seq.wrapping_add(1);
            let got = d.push(*seq, i as u32 * 3000, k + 1 == f.len(), p).expect("depacketize aiortc's payload");
            if let Some(_frame) = got {
                out.push(d.frame().to_vec());
            }
        }
    }
    out
}

#[test]
fn aiortc_agrees_on_payloads_rtcp_and_rtp_headers() {
    if !clips::require_ffmpeg("aiortc_agrees_on_payloads_rtcp_and_rtp_headers") {
        return;
    }
    let Some(py) = python() else {
        if std::env::var_os("CI").is_some() {
            panic!("aiortc venv (host-tests/.venv) is required in CI; run scripts/setup.sh");
        }
        eprintln!("SKIP aiortc_agrees_on_payloads_rtcp_and_rtp_headers: no host-tests/.venv with aiortc");
        return;
    };
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("media-clips");
    let h264 = clips::generate(&dir, "clip-640.h264", clips::TESTSRC_H264_640);
    let aus = clips::h264_access_units(&std::fs::read(h264).unwrap());
    let vp8_file = clips::generate(&dir, "clip.ivf", clips::TESTSRC_VP8);
    let vp8_data = std::fs::read(vp8_file).unwrap();
    let vp8: Vec<Vec<u8>> = clips::ivf_frames(&vp8_data).into_iter().take(30).map(<[u8]>::to_vec).collect();

    // RTCP compound of ours.
    let mut rtcp = [0u8; 1024];
    let mut w = CompoundWriter::new(&mut rtcp);
    let info =
        SenderInfo { ntp_time: 0xe000_0001_8000_0000, rtp_time: 90_000, packet_count: 1000, octet_count: 1_000_000 };
    let blocks = [
        ReportBlock {
            ssrc: 7,
            fraction_lost: 25,
            cumulative_lost: -5,
            extended_highest_seq: 0x1_0005,
            jitter: 120,
            last_sr: 0x1234,
            delay_since_last_sr: 65536,
        },
        ReportBlock {
            ssrc: 8,
            fraction_lost: 0,
            cumulative_lost: 300,
            extended_highest_seq: 42,
            jitter: 0,
            last_sr: 0,
            delay_since_last_sr: 0,
        },
    ];
    w.sender_report(0xcafe, &info, &blocks).unwrap();
    w.sdes_cname(0xcafe, b"tinyrtc-camera").unwrap();
    w.nack(0xcafe, 7, &[65534, 65535, 0, 2, 40]).unwrap();
    w.pli(0xcafe, 7).unwrap();
    w.remb(0xcafe, 1_500_000, &[7, 8]).unwrap();
    w.bye(&[0xcafe], None).unwrap();
    let rtcp_len = w.len();

    // RTP headers of ours: one-byte form, then two-byte form (a long mid).
    let mut rtp_ours = Vec::new();
    let abs = abs_send_time_from_micros(2_500_000);
    let tw = 4242u16.to_be_bytes();
    let long_mid = [b'm'; 20];
    for mid in [&b"v0"[..], &long_mid[..]] {
        let exts = [Extension { id: 1, data: mid }, Extension { id: 2, data: &abs }, Extension { id: 3, data: &tw }];
        let h = RtpHeader {
            marker: true,
            payload_type: 100,
            sequence_number: 65000,
            timestamp: 0xfedc_ba98,
            ssrc: 0x0102_0304,
            csrcs: &[0x0a0b_0c0d],
            extensions: &exts,
        };
        let mut b = [0u8; 200];
        let n = h.emit(&mut b).unwrap();
        b[n..n + 3].copy_from_slice(&[9, 8, 7]);
        rtp_ours.push(hex::encode(&b[..n + 3]));
    }

    let input = json!({
        "h264_ours": aus.iter().map(|au| payloads(H264Payloader::new(au))).collect::<Vec<_>>(),
        "h264_aus": aus.iter().map(hex::encode).collect::<Vec<_>>(),
        "vp8_ours": vp8.iter().enumerate().map(|(i, f)| payloads(Vp8Payloader::new(f, i as u16))).collect::<Vec<_>>(),
        "vp8_frames": vp8.iter().map(hex::encode).collect::<Vec<_>>(),
        "rtcp_ours": hex::encode(&rtcp[..rtcp_len]),
        "rtp_ours": rtp_ours,
    });
    let mut child = Command::new(py)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let res = child.wait_with_output().unwrap();
    assert!(res.status.success(), "aiortc script failed: {}", String::from_utf8_lossy(&res.stderr));
    let out: Value = serde_json::from_slice(&res.stdout).unwrap();

    // H.264 both ways.
    assert_eq!(hex_list(&out["h264_depay"]), aus, "aiortc depacketizes our H.264 into the input AUs");
    let theirs: Vec<Vec<Vec<u8>>> = out["h264_theirs"].as_array().unwrap().iter().map(hex_list).collect();
    let mut seq = 100;
    let mut d = H264Depacketizer::new(vec![0u8; 1 << 20]);
    assert_eq!(depacketize(&mut d, &theirs, &mut seq), aus, "we depacketize aiortc's H.264 into the input AUs");
    // VP8 both ways.
    assert_eq!(hex_list(&out["vp8_depay"]), vp8);
    let theirs: Vec<Vec<Vec<u8>>> = out["vp8_theirs"].as_array().unwrap().iter().map(hex_list).collect();
    let mut d = Vp8Depacketizer::new(vec![0u8; 1 << 20]);
    assert_eq!(depacketize(&mut d, &theirs, &mut seq), vp8);

    // Our RTCP as aiortc reads it.
    let expected = json!([
        {"t": "sr", "ssrc": 0xcafe, "ntp": 0xe000_0001_8000_0000u64, "rtp": 90_000, "pc": 1000, "oc": 1_000_000,
         "reports": [[7, 25, -5, 0x1_0005, 120, 0x1234, 65536], [8, 0, 300, 42, 0, 0, 0]]},
        {"t": "sdes", "chunks": [[0xcafe, [[1, hex::encode(b"tinyrtc-camera")]]]]},
        {"t": "rtpfb", "fmt": 1, "ssrc": 0xcafe, "media": 7, "lost": [65534, 65535, 65536, 65538, 40]},
        {"t": "psfb", "fmt": 1, "ssrc": 0xcafe, "media": 7},
        {"t": "psfb", "fmt": 15, "ssrc": 0xcafe, "media": 0, "remb": [1_500_000, [7, 8]]},
        {"t": "bye", "sources": [0xcafe]},
    ]);
    assert_eq!(out["rtcp_parsed"], expected);

    // aiortc's RTCP as we read it.
    let theirs = hex::decode(out["rtcp_theirs"].as_str().unwrap()).unwrap();
    let mut kinds = Vec::new();
    for p in CompoundIter::new(&theirs) {
        match p.expect("we parse aiortc's RTCP") {
            RtcpPacket::SenderReport { ssrc, info, reports } => {
                assert_eq!(ssrc, 0x1122_3344);
                assert_eq!(
                    info,
                    SenderInfo {
                        ntp_time: 0xe123_4567_89ab_cdef,
                        rtp_time: 123_456,
                        packet_count: 77,
                        octet_count: 88_888
                    }
                );
                let r: Vec<ReportBlock> = reports.collect();
                assert_eq!(
                    r,
                    [ReportBlock {
                        ssrc: 5,
                        fraction_lost: 12,
                        cumulative_lost: -2,
                        extended_highest_seq: 70_000,
                        jitter: 33,
                        last_sr: 0x45678,
                        delay_since_last_sr: 0x1000
                    }]
                );
                kinds.push("sr");
            }
            RtcpPacket::Sdes(items) => {
                let v: Vec<_> = items.map(|i| (i.ssrc, i.kind, i.value.to_vec())).collect();
                assert_eq!(v, [(0x1122_3344, 1, b"aiortc-cname".to_vec())]);
                kinds.push("sdes");
            }
            RtcpPacket::Nack { sender_ssrc: 9, media_ssrc: 10, items } => {
                assert_eq!(items.flat_map(NackItem::lost).collect::<Vec<_>>(), [100, 101, 105, 130, 131]);
                kinds.push("nack");
            }
            RtcpPacket::Pli { sender_ssrc: 9, media_ssrc: 10 } => kinds.push("pli"),
            RtcpPacket::Remb { sender_ssrc: 9, bitrate_bps, ssrcs } => {
                // 2.5 Mbit/s = 156250 << 4: exact in 18 bits of mantissa.
                assert_eq!(bitrate_bps, 2_500_000);
                assert_eq!(ssrcs.collect::<Vec<_>>(), [10, 11]);
                kinds.push("remb");
            }
            RtcpPacket::Bye { sources, reason: None } => {
                assert_eq!(sources.collect::<Vec<_>>(), [0x1122_3344]);
                kinds.push("bye");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(kinds, ["sr", "sdes", "nack", "pli", "remb", "bye"]);

    // RTP headers.
    let abs_v = u32::from_be_bytes([0, abs[0], abs[1], abs[2]]);
    for (k, p) in out["rtp_parsed"].as_array().unwrap().iter().enumerate() {
        let mid = if k == 0 { "v0".to_string() } else { "m".repeat(20) };
        assert_eq!(
            *p,
            json!({"pt": 100, "m": 1, "seq": 65000, "ts": 0xfedc_ba98u32, "ssrc": 0x0102_0304, "csrc": [0x0a0b_0c0d],
                   "mid": mid, "abs": abs_v, "twcc": 4242, "payload": "090807"}),
            "aiortc reads our RTP header {k}"
        );
    }
    let theirs = hex::decode(out["rtp_theirs"].as_str().unwrap()).unwrap();
    let p = RtpPacket::new_checked(&theirs[..]).expect("we parse aiortc's RTP");
    assert_eq!(
        (p.payload_type(), p.marker(), p.sequence_number(), p.timestamp(), p.ssrc()),
        (96, true, 4321, 987_654, 0xabcd_ef01)
    );
    assert_eq!(p.extension(1), Some(&b"video0"[..]));
    assert_eq!(p.extension(2), Some(&[0x12, 0x34, 0x56][..]));
    assert_eq!(p.extension(3), Some(&777u16.to_be_bytes()[..]));
    assert_eq!(p.payload(), &[1, 2, 3]);
    println!(
        "aiortc: {} H.264 AUs and {} VP8 frames identical both ways; RTCP (SR, SDES, NACK, PLI, REMB, BYE) and RTP extensions agree both ways",
        aus.len(),
        vp8.len()
    );
}
