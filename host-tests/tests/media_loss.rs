//! Video over a lossy network: a 30 s (virtual) H.264 stream, the ffmpeg
//! clip looped at 30 fps, from an `RtpSender` to an `RtpReceiver` over the
//! network simulator with 50 ms RTT.
//!
//! - 10% loss: NACK + RTX retransmission deliver >= 99% of the frames
//!   complete and byte-identical.
//! - 30% loss: some packets cannot be recovered in time; the receiver sends
//!   PLI, the sender answers with a keyframe, and decoding resumes (every
//!   broken stretch ends at a keyframe).
//! - 20 receivers sending FIR at once (and repeatedly): the sender surfaces
//!   at most one keyframe request per 500 ms.
//!
//! ffmpeg missing: fails in CI (`CI` set), skips otherwise.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;

use host_tests::clips;
use host_tests::netsim::{run_with_seed, LinkConfig, Network, Node};
use tinyrtc::rtcp::wire::{is_rtcp, CompoundWriter};
use tinyrtc::rtp::h264::{H264Depacketizer, H264Payloader};
use tinyrtc::rtp::packetizer::{Depacketizer, RtpPacketizer};
use tinyrtc::rtp::receiver::{KeyframeDetect, ReceiverConfig, RtpReceiver};
use tinyrtc::rtp::sender::{RtpSender, RtxConfig, SenderConfig, SenderEvent};
use tinyrtc::rtp::wire::RtpPacket;
use tinyrtc::{Duration, Instant, Transmit};

const MEDIA_SSRC: u32 = 0x1000;
const RTX_SSRC: u32 = 0x1001;
const RECEIVER_SSRC: u32 = 0x2000;
const FPS: u64 = 30;
const MTU: usize = 1200;
const SLOT: usize = MTU + 18;

/// The looped clip (one IDR every 10 s) and an all-intra clip whose frames
/// the sender uses when asked for a keyframe.
struct Clips {
    normal: Vec<Vec<u8>>,
    intra: Vec<Vec<u8>>,
}

fn load_clips() -> Rc<Clips> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("media-clips");
    let common = |keyint: &str| {
        [
            "-f".to_string(),
            "lavfi".into(),
            "-i".into(),
            "testsrc=size=320x240:rate=30".into(),
            "-t".into(),
            "10".into(),
            "-c:v".into(),
            "libx264".into(),
            "-preset".into(),
            "veryfast".into(),
            "-profile:v".into(),
            "baseline".into(),
            "-pix_fmt".into(),
            "yuv420p".into(),
            "-bf".into(),
            "0".into(),
            "-b:v".into(),
            "800k".into(),
            "-x264-params".into(),
            format!("keyint={keyint}:scenecut=0:repeat-headers=1"),
            "-f".into(),
            "h264".into(),
        ]
    };
    let args_n = common("300");
    let args_i = common("1");
    let n = clips::generate(&dir, "loop-30fps.h264", &args_n.iter().map(String::as_str).collect::<Vec<_>>());
    let i = clips::generate(&dir, "intra-30fps.h264", &args_i.iter().map(String::as_str).collect::<Vec<_>>());
    let normal = clips::h264_access_units(&std::fs::read(n).unwrap());
    let intra = clips::h264_access_units(&std::fs::read(i).unwrap());
    assert_eq!(normal.len(), 300);
    assert_eq!(intra.len(), 300);
    assert!(intra.iter().all(|au| tinyrtc::rtp::h264::is_keyframe(au)));
    Rc::new(Clips { normal, intra })
}

fn frame_time(i: u64) -> Instant {
    Instant::from_micros(1_000_000 + i * 1_000_000 / FPS)
}

struct MediaSender {
    sender: RtpSender<Vec<u8>>,
    stream: RtpPacketizer,
    clips: Rc<Clips>,
    peer: SocketAddr,
    frames_total: u64,
    next_frame: u64,
    queue: VecDeque<Vec<u8>>,
    keyframe_pending: bool,
    /// Frame indices sent as keyframes because a receiver asked.
    keyframes_on_request: Vec<u64>,
    /// Times the sender surfaced a keyframe request.
    request_events: Vec<Instant>,
    sent: Vec<Vec<u8>>,
}

impl MediaSender {
    fn new(clips: Rc<Clips>, peer: SocketAddr, frames_total: u64) -> Self {
        let mut cfg = SenderConfig::new(MEDIA_SSRC, 90_000);
        cfg.rtx = Some(RtxConfig { ssrc: RTX_SSRC, payload_type: 97 });
        cfg.cname.extend_from_slice(b"camera").unwrap();
        MediaSender {
            sender: RtpSender::new(cfg, vec![0u8; 1024 * SLOT]),
            stream: RtpPacketizer::new(MEDIA_SSRC, 96, 31_000, MTU),
            clips,
            peer,
            frames_total,
            next_frame: 0,
            queue: VecDeque::new(),
            keyframe_pending: false,
            keyframes_on_request: Vec::new(),
            request_events: Vec::new(),
            sent: Vec::new(),
        }
    }

    fn drain_events(&mut self, now: Instant) {
        while let Some(e) = self.sender.poll_event() {
            if let SenderEvent::KeyframeRequested { .. } = e {
                self.keyframe_pending = true;
                self.request_events.push(now);
            }
        }
    }
}

impl Node for MediaSender {
    fn handle_receive(&mut self, now: Instant, _from: SocketAddr, _to: SocketAddr, data: &[u8]) {
        self.sender.handle_rtcp(now, data).expect("valid RTCP from the receiver");
        self.drain_events(now);
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let len = match self.queue.pop_front() {
            Some(p) => {
                buf[..p.len()].copy_from_slice(&p);
                p.len()
            }
            None => self.sender.poll_transmit(now, buf)?.len,
        };
        Some(Transmit { source: None, destination: self.peer, len })
    }
    fn poll_timeout(&self) -> Option<Instant> {
        let next = (self.next_frame < self.frames_total).then(|| frame_time(self.next_frame));
        match (next, self.sender.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.sender.handle_timeout(now);
        while self.next_frame < self.frames_total && frame_time(self.next_frame) <= now {
            let i = self.next_frame;
            let idx = (i % 300) as usize;
            let au = if self.keyframe_pending && i > 0 {
                self.keyframe_pending = false;
                self.keyframes_on_request.push(i);
                self.clips.intra[idx].clone()
            } else {
                self.clips.normal[idx].clone()
            };
            let mut buf = [0u8; 1500];
            let mut pk = self.stream.frame(H264Payloader::new(&au), (i * 3000) as u32);
            while let Some(r) = pk.next_packet(&mut buf) {
                let n = r.expect("packetize");
                self.sender.handle_sent(now, &buf[..n]).expect("record sent packet");
                self.queue.push_back(buf[..n].to_vec());
            }
            self.sent.push(au);
            self.next_frame += 1;
        }
    }
}

struct MediaReceiver {
    receiver: RtpReceiver<Vec<u8>>,
    depack: H264Depacketizer<Vec<u8>>,
    peer: SocketAddr,
    /// (frame index, keyframe, bytes) of each complete frame.
    frames: Vec<(u64, bool, Vec<u8>)>,
    lost_events: u32,
    decoder: DecoderModel,
}

/// What a decoder would do with the frames: it needs SPS/PPS before an
/// IDR, and every frame after the last IDR; when it cannot go on it asks
/// for a keyframe (as a WebRTC video receiver does).
#[derive(Default)]
struct DecoderModel {
    have_params: bool,
    ok: bool,
    last: Option<u64>,
}

impl DecoderModel {
    /// Returns false if the frame cannot be decoded.
    fn push(&mut self, idx: u64, au: &[u8]) -> bool {
        let nals: Vec<u8> = tinyrtc::rtp::h264::NalUnits::new(au).map(|n| n[0] & 0x1f).collect();
        if nals.contains(&7) && nals.contains(&8) {
            self.have_params = true;
        }
        if self.last.is_some_and(|l| l + 1 != idx) {
            self.ok = false;
        }
        self.last = Some(idx);
        if nals.contains(&5) {
            self.ok = self.have_params;
        }
        self.ok
    }
}

impl MediaReceiver {
    fn drain(&mut self) {
        let mut buf = [0u8; 1500];
        while let Some(r) = self.receiver.poll_packet(&mut buf) {
            let n = r.unwrap();
            let p = RtpPacket::new_checked(&buf[..n]).unwrap();
            if let Ok(Some(f)) = self.depack.push_packet(&p) {
                let idx = f.timestamp as u64 / 3000;
                if !self.decoder.push(idx, self.depack.frame()) {
                    self.receiver.request_keyframe();
                }
                self.frames.push((idx, f.keyframe, self.depack.frame().to_vec()));
            }
        }
        while self.receiver.poll_event().is_some() {
            self.lost_events += 1;
        }
    }
}

impl MediaReceiver {
    fn new(peer: SocketAddr) -> Self {
        let mut cfg = ReceiverConfig::new(RECEIVER_SSRC, MEDIA_SSRC, 90_000);
        cfg.rtx = Some(RtxConfig { ssrc: RTX_SSRC, payload_type: 97 });
        cfg.rtx_original_payload_type = 96;
        cfg.initial_rtt = Duration::from_millis(50);
        cfg.keyframe_detect = KeyframeDetect::H264;
        cfg.cname.extend_from_slice(b"viewer").unwrap();
        MediaReceiver {
            receiver: RtpReceiver::new(cfg, vec![0u8; 1024 * SLOT]),
            depack: H264Depacketizer::new(vec![0u8; 512 * 1024]),
            peer,
            frames: Vec::new(),
            lost_events: 0,
            decoder: DecoderModel::default(),
        }
    }
}

impl Node for MediaReceiver {
    fn handle_receive(&mut self, now: Instant, _from: SocketAddr, _to: SocketAddr, data: &[u8]) {
        if is_rtcp(data) {
            self.receiver.handle_rtcp(now, data).expect("valid RTCP from the sender");
        } else {
            self.receiver.handle_rtp(now, data).expect("valid RTP from the sender");
        }
        self.drain();
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let o = self.receiver.poll_transmit(now, buf)?;
        Some(Transmit { source: None, destination: self.peer, len: o.len })
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.receiver.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.receiver.handle_timeout(now);
        // Packets given up let the in-order queue move on.
        self.drain();
    }
}

struct Outcome {
    frames_sent: u64,
    complete: u64,
    decodable: u64,
    /// Broken stretches: (first undecodable frame, first decodable again or None).
    stretches: Vec<(u64, Option<u64>)>,
    keyframes_on_request: usize,
    plis: u32,
    nacks: u32,
    retransmitted: u32,
    given_up: u32,
    packets: u64,
}

/// Run the 30 s stream with `loss` on the receiver's access link (both
/// directions) and 12.5 ms one-way delay on each access link (50 ms RTT).
fn run_stream(seed: u64, clips: Rc<Clips>, loss: f64) -> Outcome {
    let mut net = Network::new(seed);
    let s_addr: SocketAddr = "198.51.100.1:5004".parse().unwrap();
    let r_addr: SocketAddr = "203.0.113.9:6004".parse().unwrap();
    let frames_total = 30 * FPS;
    let s = net.add_host(Network::PUBLIC, s_addr, MediaSender::new(clips, r_addr, frames_total));
    let r = net.add_host(Network::PUBLIC, r_addr, MediaReceiver::new(s_addr));
    let link =
        LinkConfig { delay: Duration::from_micros(12_500), jitter: Duration::from_millis(2), ..LinkConfig::default() };
    net.set_link(s, link);
    net.set_link(r, link.with_loss(loss));
    net.run_until(frame_time(frames_total) + Duration::from_secs(3));

    let sender = net.node::<MediaSender>(s);
    let receiver = net.node::<MediaReceiver>(r);
    let sent = &sender.sent;
    let mut got: Vec<Option<&(u64, bool, Vec<u8>)>> = vec![None; sent.len()];
    for f in &receiver.frames {
        let i = f.0 as usize;
        assert!(i < sent.len(), "frame index {i} out of range");
        assert!(got[i].is_none(), "frame {i} delivered twice");
        if i == 0 && f.2 != sent[0] {
            // A receiver cannot see the loss of the stream's very first
            // packet (nothing precedes it): the first access unit may come
            // out without its leading NAL units, but only as a tail of it.
            assert!(sent[0].ends_with(&f.2), "frame 0 delivered corrupt");
            continue;
        }
        assert_eq!(f.2, sent[i], "frame {i} delivered corrupt");
        got[i] = Some(f);
    }
    let complete = got.iter().filter(|g| g.is_some()).count() as u64;
    // Decoder model: a frame decodes if complete and it is a keyframe or the
    // previous frame decoded.
    let (mut ok, mut decodable, mut stretches) = (false, 0u64, Vec::new());
    for (i, g) in got.iter().enumerate() {
        let i = i as u64;
        match g {
            Some((_, key, _)) if *key || ok => {
                if !ok {
                    if let Some(last) = stretches.last_mut() {
                        let (_, end): &mut (u64, Option<u64>) = last;
                        *end = Some(i);
                    }
                }
                ok = true;
                decodable += 1;
            }
            _ => {
                if ok || i == 0 {
                    stretches.push((i, None));
                }
                ok = false;
            }
        }
    }
    let rs = receiver.receiver.stats();
    let ss = sender.sender.stats();
    Outcome {
        frames_sent: sent.len() as u64,
        complete,
        decodable,
        stretches,
        keyframes_on_request: sender.keyframes_on_request.len(),
        plis: rs.plis_sent,
        nacks: rs.nacks_sent,
        retransmitted: ss.retransmitted,
        given_up: rs.lost_given_up,
        packets: ss.packets_sent as u64,
    }
}

fn print(label: &str, o: &Outcome) {
    println!(
        "{label}: {} frames sent ({} packets), {} complete ({:.2}%), {} decodable ({:.2}%); \
         NACK packets {}, retransmitted {}, given up {}, PLIs {}, keyframes on request {}, broken stretches {:?}",
        o.frames_sent,
        o.packets,
        o.complete,
        100.0 * o.complete as f64 / o.frames_sent as f64,
        o.decodable,
        100.0 * o.decodable as f64 / o.frames_sent as f64,
        o.nacks,
        o.retransmitted,
        o.given_up,
        o.plis,
        o.keyframes_on_request,
        o.stretches
    );
}

#[test]
fn ten_percent_loss_nack_delivers_99_percent() {
    if !clips::require_ffmpeg("ten_percent_loss_nack_delivers_99_percent") {
        return;
    }
    let clips = load_clips();
    run_with_seed(10, |seed| {
        let o = run_stream(seed, clips, 0.10);
        print("10% loss, 50 ms RTT", &o);
        assert_eq!(o.frames_sent, 900);
        assert!(o.complete * 100 >= o.frames_sent * 99, "only {} of {} frames complete", o.complete, o.frames_sent);
        assert!(o.retransmitted > 0 && o.nacks > 0);
    });
}

#[test]
fn thirty_percent_loss_recovers_with_keyframes() {
    if !clips::require_ffmpeg("thirty_percent_loss_recovers_with_keyframes") {
        return;
    }
    let clips = load_clips();
    run_with_seed(30, |seed| {
        let o = run_stream(seed, clips, 0.30);
        print("30% loss, 50 ms RTT", &o);
        assert!(o.given_up > 0, "expected some packets beyond recovery at 30% loss");
        assert!(o.plis > 0, "the receiver never asked for a keyframe");
        assert!(o.keyframes_on_request > 0, "the sender never answered with a keyframe");
        // Every broken stretch ends at a keyframe: frames after it decode
        // again (one still open at the very end is allowed: nothing follows it).
        let end = o.frames_sent;
        for (k, (from, to)) in o.stretches.iter().enumerate() {
            match to {
                Some(to) => assert!(to - from <= 3 * FPS, "stretch {from}..{to} longer than 3 s"),
                None => assert!(k == o.stretches.len() - 1 && end - from <= 2 * FPS, "never recovered from {from}"),
            }
        }
        assert!(o.decodable * 100 >= o.frames_sent * 50, "only {} decodable", o.decodable);
    });
}

/// Sends a FIR for `target` every `every`, from `start` to `stop`.
struct FirRequester {
    ssrc: u32,
    sender: SocketAddr,
    next: Instant,
    every: Duration,
    stop: Instant,
    seq: u8,
    sent: u32,
}

impl Node for FirRequester {
    fn handle_receive(&mut self, _: Instant, _: SocketAddr, _: SocketAddr, _: &[u8]) {}
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if now < self.next || now >= self.stop {
            return None;
        }
        self.next += self.every;
        self.seq = self.seq.wrapping_add(1);
        let mut w = CompoundWriter::new(buf);
        w.fir(self.ssrc, &[(MEDIA_SSRC, self.seq)]).unwrap();
        self.sent += 1;
        Some(Transmit { source: None, destination: self.sender, len: w.len() })
    }
    fn poll_timeout(&self) -> Option<Instant> {
        (self.next < self.stop).then_some(self.next)
    }
    fn handle_timeout(&mut self, _: Instant) {}
}

#[test]
fn fir_from_twenty_receivers_is_rate_limited() {
    if !clips::require_ffmpeg("fir_from_twenty_receivers_is_rate_limited") {
        return;
    }
    let clips = load_clips();
    run_with_seed(20, |seed| {
        let mut net = Network::new(seed);
        net.set_default_link(LinkConfig {
            delay: Duration::from_millis(10),
            jitter: Duration::from_millis(5),
            ..LinkConfig::default()
        });
        let s_addr: SocketAddr = "198.51.100.1:5004".parse().unwrap();
        let viewer: SocketAddr = "203.0.113.9:6004".parse().unwrap();
        let frames = 5 * FPS;
        let s = net.add_host(Network::PUBLIC, s_addr, MediaSender::new(clips, viewer, frames));
        net.add_host(Network::PUBLIC, viewer, MediaReceiver::new(s_addr));
        let start = Instant::from_secs(2);
        let stop = Instant::from_secs(5);
        let mut ids = Vec::new();
        for k in 0..20u32 {
            let addr: SocketAddr = format!("203.0.113.{}:7000", 20 + k).parse().unwrap();
            let node = FirRequester {
                ssrc: 0x3000 + k,
                sender: s_addr,
                next: start,
                every: Duration::from_millis(100),
                stop,
                seq: 0,
                sent: 0,
            };
            ids.push(net.add_host(Network::PUBLIC, addr, node));
        }
        net.run_until(frame_time(frames) + Duration::from_secs(1));
        let requests: u32 = ids.iter().map(|id| net.node::<FirRequester>(*id).sent).sum();
        let sender = net.node::<MediaSender>(s);
        let ev = &sender.request_events;
        let stats = sender.sender.stats();
        println!(
            "FIR storm: {requests} FIRs from 20 receivers over 3 s -> {} keyframe requests surfaced at {:?} ms, {} keyframes sent",
            ev.len(),
            ev.iter().map(|t| t.as_millis()).collect::<Vec<_>>(),
            sender.keyframes_on_request.len()
        );
        assert_eq!(requests, 20 * 30);
        // The viewer's own PLIs (if any) come on top of the FIRs.
        assert!(stats.keyframe_requests_received >= requests);
        for w in ev.windows(2) {
            assert!(w[1] - w[0] >= Duration::from_millis(500), "two keyframe requests within 500 ms: {w:?}");
        }
        // 3 s of requests: at most one per 500 ms interval.
        let in_storm = ev.iter().filter(|t| **t >= start && **t < stop + Duration::from_millis(100)).count();
        assert!((5..=6).contains(&in_storm), "{in_storm} keyframe requests surfaced during the storm");
        assert!(sender.keyframes_on_request.len() <= ev.len());
    });
}
