//! tinyrtc `Peer` against str0m 0.24 (rust-crypto), both in this process on
//! the deterministic network simulator (virtual clock, seeded link
//! impairments). str0m is an independent sans-IO WebRTC stack: it judges our
//! SDP, ICE-lite answers, DTLS-SRTP, RTP packetization, RTCP reports and data
//! channels.
//!
//! 1. tinyrtc offers video (H.264, then VP8) + Opus + a data channel; str0m
//!    answers. str0m reassembles our video frames and they equal, byte for
//!    byte, the frames we sent; Opus both ways, frame for frame; data channel
//!    messages both ways; str0m asks for a keyframe and tinyrtc surfaces it;
//!    RTT from str0m's receiver reports (ours, from LSR/DLSR) and from ours
//!    (str0m's) matches the simulated link.
//! 2. str0m offers a data channel plus receive-only audio over a lossy WAN;
//!    tinyrtc answers.
//! 3. str0m offers send-only H.264 video and Opus; tinyrtc (a viewer)
//!    answers, depacketizes and gets str0m's frames back byte for byte.
//!
//! Two str0m behaviours shape the checks (str0m 0.24.1 source):
//! - Its receive register starts at the first packet that arrives
//!   (`register_nack.rs`: anything with a lower sequence number is "behind
//!   the window" and dropped as a duplicate). When link jitter lets a later
//!   packet of our first frame overtake its first packet, that frame is lost
//!   to str0m (and it waits its 2 s reordering timeout before emitting the
//!   rest). The test computes exactly which frames this must cost from the
//!   sequence number str0m saw first, and bounds it to one frame.
//! - It reports a receive stream without RTX at the audio report interval
//!   (5 s by default: `StreamRx::is_audio` is "no RTX SSRC"), so our video
//!   gets receiver reports only every 5 s; the tests set that interval to 1 s.
//!
//! `PEER_STR0M_TRACE=1` prints str0m's own `tracing` output.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant as StdInstant;

use host_tests::netsim::{run_with_seed, LinkConfig, Network, Node, NodeId};
use host_tests::str0m::Str0mIo;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::ChannelId as Str0mChannelId;
use str0m::media::{
    Direction as Str0mDirection, Frequency, KeyframeRequestKind, MediaKind as Str0mKind, MediaTime, Mid, Pt,
};
use str0m::{Candidate, Event as Str0mEvent, IceConnectionState, Rtc};
use tinyrtc::peer::{ChannelConfig, Peer, PeerConfig, PeerEvent, PeerState};
use tinyrtc::rtp::audio::AudioDepacketizer;
use tinyrtc::rtp::h264::H264Depacketizer;
use tinyrtc::rtp::packetizer::Depacketizer;
use tinyrtc::sdp::{CodecChoice, MediaKind};
use tinyrtc::{Duration, Instant, Transmit};

const TINY: &str = "10.0.0.1:5000";
const STR0M: &str = "10.0.0.2:6000";
/// Frames sent each way.
const FRAMES: u32 = 60;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Is this datagram RTP (not RTCP, RFC 5761 section 4)?
fn is_rtp(d: &[u8]) -> bool {
    d.len() >= 12 && (128..192).contains(&d[0]) && !(192..=223).contains(&d[1])
}

/// Sequence number and SSRC of an (S)RTP packet: the header is in clear.
fn rtp_seq_ssrc(d: &[u8]) -> (u16, u32) {
    (u16::from_be_bytes([d[2], d[3]]), u32::from_be_bytes([d[8], d[9], d[10], d[11]]))
}

/// An RTP packet tinyrtc received (payload decrypted).
#[derive(Debug, Clone)]
struct Received {
    kind: MediaKind,
    seq: u16,
    timestamp: u32,
    marker: bool,
    payload: Vec<u8>,
}

/// A tinyrtc session as a simulator node.
struct TinyHost {
    peer: Peer,
    events: Vec<PeerEvent>,
    media: Vec<Received>,
    /// Media datagrams written by `send`, sent before anything else.
    outbox: VecDeque<(SocketAddr, Vec<u8>)>,
    /// Per frame sent: kind, SSRC, first and last sequence number.
    sent: Vec<(MediaKind, u32, u16, u16)>,
}

impl TinyHost {
    fn new(peer: Peer) -> Self {
        TinyHost { peer, events: vec![], media: vec![], outbox: VecDeque::new(), sent: vec![] }
    }
    /// Packetize and protect one frame into the outbox.
    fn send(&mut self, now: Instant, kind: MediaKind, frame: &[u8], ts: u32) {
        let mut buf = vec![0u8; 1500];
        let mut w = self.peer.send_frame(now, kind, frame, ts).expect("send_frame");
        let mut seqs = None;
        while let Some(tx) = w.next_packet(&mut buf) {
            let tx = tx.expect("packet");
            let (seq, ssrc) = rtp_seq_ssrc(&buf[..tx.len]);
            seqs = Some(seqs.map_or((ssrc, seq, seq), |(s, first, _)| (s, first, seq)));
            self.outbox.push_back((tx.destination, buf[..tx.len].to_vec()));
        }
        let (ssrc, first, last) = seqs.expect("a frame makes packets");
        self.sent.push((kind, ssrc, first, last));
    }
    /// The payloads of the received packets of `kind`, in sequence order.
    fn received_in_order(&self, kind: MediaKind) -> Vec<&Received> {
        let mut v: Vec<&Received> = self.media.iter().filter(|m| m.kind == kind).collect();
        // Unwrap around the first arrival (reordering is far below 2^15).
        if let Some(first) = v.first().map(|m| m.seq) {
            v.sort_by_key(|m| m.seq.wrapping_sub(first) as i16);
        }
        v
    }
    /// Video the peer held back after a gap (filled or given up since).
    fn drain_media(&mut self) {
        let mut buf = [0u8; 1500];
        while let Some(m) = self.peer.poll_media(&mut buf) {
            self.media.push(Received {
                kind: m.kind,
                seq: m.sequence_number,
                timestamp: m.timestamp,
                marker: m.marker,
                payload: buf[m.payload_offset..][..m.payload_len].to_vec(),
            });
        }
    }
    fn drain_events(&mut self) {
        while let Some(e) = self.peer.poll_event() {
            self.events.push(e);
        }
    }
}

impl Node for TinyHost {
    fn handle_receive(&mut self, now: Instant, from: SocketAddr, _to: SocketAddr, data: &[u8]) {
        let mut d = data.to_vec();
        if let Ok(Some(m)) = self.peer.handle_receive(now, from, &mut d) {
            self.media.push(Received {
                kind: m.kind,
                seq: m.sequence_number,
                timestamp: m.timestamp,
                marker: m.marker,
                payload: d[m.payload_offset..][..m.payload_len].to_vec(),
            });
        }
        self.drain_media();
        self.drain_events();
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if let Some((destination, d)) = self.outbox.pop_front() {
            buf[..d.len()].copy_from_slice(&d);
            return Some(Transmit { source: None, destination, len: d.len() });
        }
        let t = self.peer.poll_transmit(now, buf);
        self.drain_events();
        t
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.peer.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.peer.handle_timeout(now);
        self.drain_media();
        self.drain_events();
    }
}

/// str0m's `Rtc` as a simulator node.
struct Str0mHost {
    io: Str0mIo,
    connected: bool,
    /// (mid, payload type, frame bytes) of every reassembled frame.
    frames: Vec<(Mid, u8, Vec<u8>)>,
    channel_open: Option<(Str0mChannelId, String)>,
    channel_data: Vec<(bool, Vec<u8>)>,
    /// Latest ingress counters per mid: (packets, bytes).
    ingress: HashMap<Mid, (u64, u64)>,
    /// Latest RTT str0m measured for what it sends, per mid.
    egress_rtt: HashMap<Mid, std::time::Duration>,
    /// Sequence number of the first RTP packet that arrived, per SSRC.
    first_seq: HashMap<u32, u16>,
}

impl Str0mHost {
    fn new(rtc: Rtc, base: StdInstant) -> Self {
        Str0mHost {
            io: Str0mIo::new(rtc, base),
            connected: false,
            frames: Vec::new(),
            channel_open: None,
            channel_data: Vec::new(),
            ingress: HashMap::new(),
            egress_rtt: HashMap::new(),
            first_seq: HashMap::new(),
        }
    }
    fn pump(&mut self) {
        for e in self.io.pump() {
            match e {
                Str0mEvent::IceConnectionStateChange(IceConnectionState::Connected) | Str0mEvent::Connected => {
                    self.connected = true
                }
                Str0mEvent::MediaData(d) => self.frames.push((d.mid, *d.pt, d.data.to_vec())),
                Str0mEvent::ChannelOpen(id, label) => self.channel_open = Some((id, label)),
                Str0mEvent::ChannelData(d) => self.channel_data.push((d.binary, d.data.clone())),
                Str0mEvent::MediaIngressStats(st) => {
                    self.ingress.insert(st.mid, (st.packets, st.bytes));
                }
                Str0mEvent::MediaEgressStats(st) => {
                    if let Some(rtt) = st.rtt {
                        self.egress_rtt.insert(st.mid, rtt);
                    }
                }
                _ => {}
            }
        }
    }
    /// Write one frame on `mid` (str0m packetizes it at its next timeout).
    fn write(&mut self, now: Instant, mid: Mid, pt: u8, rtp_time: MediaTime, frame: &[u8]) {
        let wallclock = self.io.std(now);
        let writer = self.io.rtc.writer(mid).expect("str0m writer");
        writer.write(Pt::new_with_value(pt), wallclock, rtp_time, frame.to_vec()).expect("str0m write");
        self.pump();
    }
    /// str0m's reassembled frames on `mid`.
    fn frames_of(&self, mid: Mid) -> Vec<&[u8]> {
        self.frames.iter().filter(|f| f.0 == mid).map(|f| f.2.as_slice()).collect()
    }
}

impl Node for Str0mHost {
    fn handle_receive(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, data: &[u8]) {
        if is_rtp(data) {
            let (seq, ssrc) = rtp_seq_ssrc(data);
            self.first_seq.entry(ssrc).or_insert(seq);
        }
        self.io.receive(now, from, to, data);
        self.pump();
    }
    fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        self.io.poll_transmit(buf)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.io.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.io.handle_timeout(now);
        self.pump();
    }
}

/// A tinyrtc `Peer` with `config` on `TINY` answers str0m's offer, and
/// str0m takes the answer.
fn tinyrtc_answers(
    rtc: &mut Rtc,
    offer: SdpOffer,
    pending: SdpPendingOffer,
    config: PeerConfig,
    rng: &mut ChaCha20Rng,
) -> Peer {
    let mut peer = Peer::new(config, rng);
    peer.add_local_candidate(addr(TINY)).unwrap();
    let mut sdp = vec![0u8; 8192];
    let n = peer.accept_offer(Instant::ZERO, &offer.to_sdp_string(), &mut sdp, rng).expect("we accept str0m's offer");
    let answer = SdpAnswer::from_sdp_string(std::str::from_utf8(&sdp[..n]).unwrap()).expect("str0m parses our answer");
    rtc.sdp_api().accept_answer(pending, answer).expect("str0m accepts our answer");
    peer
}

/// Both hosts on the network; runs until tinyrtc is connected and `ready`
/// holds for str0m (20 s of virtual time at most).
fn connect(net: &mut Network, peer: Peer, str0m: Str0mHost, ready: impl Fn(&Str0mHost) -> bool) -> (NodeId, NodeId) {
    let t = net.add_host(Network::PUBLIC, addr(TINY), TinyHost::new(peer));
    let s = net.add_host(Network::PUBLIC, addr(STR0M), str0m);
    let up = net.run_until_cond(Instant::from_secs(20), |n| {
        n.node::<TinyHost>(t).peer.state() == PeerState::Connected && ready(n.node::<Str0mHost>(s))
    });
    assert!(up, "not connected: tinyrtc {:?}", net.node::<TinyHost>(t).peer.stats());
    (t, s)
}

fn str0m_rtc(base: StdInstant) -> Rtc {
    let one_second = std::time::Duration::from_secs(1);
    let mut rtc = Rtc::builder()
        .set_stats_interval(Some(one_second))
        // str0m takes a receive stream without RTX for audio (5 s reports).
        .set_rtcp_report_interval_audio(one_second)
        .build(base);
    rtc.add_local_candidate(Candidate::host(addr(STR0M), "udp").unwrap());
    rtc
}

/// An H.264 access unit (Annex-B) of `size` bytes: SPS + PPS + IDR for
/// keyframes, one non-IDR slice otherwise. The slice bodies are filler: no
/// one decodes them here, both sides only (de)packetize.
fn access_unit(n: u32, size: usize) -> Vec<u8> {
    let mut au = Vec::new();
    if n.is_multiple_of(15) {
        au.extend_from_slice(&[0, 0, 0, 1, 0x67, 0x42, 0xe0, 0x1f, 0xda, 0x02, 0x80, 0xf6, 0x40]);
        au.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80]);
        au.extend_from_slice(&[0, 0, 0, 1, 0x65]);
    } else {
        au.extend_from_slice(&[0, 0, 0, 1, 0x41]);
    }
    au.extend((0..size).map(|i| (i as u32 * 31 + n) as u8 | 1));
    au
}

/// A VP8 frame of `size` bytes: an RFC 6386 section 9.1 frame tag (key frame
/// with start code and 320x240 every 15th, inter frame otherwise), then filler.
fn vp8_frame(n: u32, size: usize) -> Vec<u8> {
    let mut f = if n.is_multiple_of(15) {
        vec![0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00]
    } else {
        vec![0x11, 0x02, 0x00]
    };
    f.extend((0..size).map(|i| (i as u32 * 7 + n) as u8));
    f
}

/// Opus-shaped frame `n` (TOC byte of a 20 ms CELT frame, then a counter).
fn opus_frame(tag: u8, n: u32) -> Vec<u8> {
    vec![0xfc, tag, n as u8, (n >> 8) as u8]
}

fn tiny_rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// `a` before `b` in RTP sequence space.
fn seq_before(a: u16, b: u16) -> bool {
    a != b && b.wrapping_sub(a) < 0x8000
}

/// One-way delay of the default link is uplink + downlink, each
/// `LinkConfig::lan()`: 1 ms + 0..0.2 ms; so RTT is 4.0..4.8 ms. LSR/DLSR
/// count 1/65536 s (15 us); allow that on both ends.
const RTT_RANGE_US: std::ops::RangeInclusive<u64> = 3_950..=4_850;

fn tinyrtc_offers(seed: u64, video_codec: CodecChoice) {
    let _trace = std::env::var_os("PEER_STR0M_TRACE").map(|_| tracing::subscriber::set_default(trace::Stderr));
    let mut rng = tiny_rng(seed);
    let mut net = Network::new(seed);
    net.set_default_link(LinkConfig::lan());
    let base = StdInstant::now();
    // One video codec: str0m would pick its own preference otherwise.
    let codecs: &'static [CodecChoice] = match video_codec {
        CodecChoice::Vp8 => &[CodecChoice::Vp8],
        _ => &[CodecChoice::H264ConstrainedBaseline],
    };
    let config = PeerConfig { video_codecs: codecs, ..PeerConfig::camera() };
    let mut peer = Peer::new(config, &mut rng);
    peer.add_local_candidate(addr(TINY)).unwrap();
    let mut sdp = vec![0u8; 8192];
    let n = peer.create_offer(&mut sdp).unwrap();
    let offer_text = std::str::from_utf8(&sdp[..n]).unwrap().to_string();
    let mut rtc = str0m_rtc(base);
    let offer = SdpOffer::from_sdp_string(&offer_text).expect("str0m parses our offer");
    let answer = rtc.sdp_api().accept_offer(offer).expect("str0m accepts our offer").to_sdp_string();
    if std::env::var_os("PEER_STR0M_DEBUG").is_some() {
        eprintln!("OFFER\n{offer_text}\nANSWER\n{answer}");
    }
    peer.set_remote_answer(Instant::ZERO, &answer, &mut rng).expect("we accept str0m's answer");
    assert_eq!(peer.codec(MediaKind::Video).map(|c| c.0), Some(codecs[0]));
    let (_, opus_pt) = peer.codec(MediaKind::Audio).expect("audio negotiated");
    let (t, s) = connect(&mut net, peer, Str0mHost::new(rtc, base), |h| h.connected);
    // str0m's mids are ours (offer order: video 0, audio 1).
    let (video_mid, audio_mid) = (Mid::from("0"), Mid::from("1"));

    // 60 frames at 30 fps, 4 KB each (several packets), plus Opus both ways.
    let mut sent_video = Vec::new();
    let mut sent_audio = Vec::new();
    let mut str0m_audio = Vec::new();
    for i in 0..FRAMES {
        let frame = match video_codec {
            CodecChoice::Vp8 => vp8_frame(i, 4000),
            _ => access_unit(i, 4000),
        };
        let now = net.now();
        let host = net.node_mut::<TinyHost>(t);
        host.send(now, MediaKind::Video, &frame, i * 3000);
        let opus = opus_frame(0x01, i);
        host.send(now, MediaKind::Audio, &opus, i * 1600);
        sent_video.push(frame);
        sent_audio.push(opus);
        let theirs = opus_frame(0x02, i);
        net.node_mut::<Str0mHost>(s).write(
            now,
            audio_mid,
            opus_pt,
            MediaTime::new(u64::from(i) * 1600, Frequency::FORTY_EIGHT_KHZ),
            &theirs,
        );
        str0m_audio.push(theirs);
        net.run_for(Duration::from_millis(33));
    }
    // Data channel: tinyrtc opens and writes; str0m answers on it.
    let now = net.now();
    let host = net.node_mut::<TinyHost>(t);
    let id = host.peer.open_channel(now, "telemetry", "", ChannelConfig::default()).unwrap();
    host.peer.send_data(now, id, false, b"temperature=21.5").unwrap();
    let opened =
        net.run_until_cond(net.now() + Duration::from_secs(5), |n| !n.node::<Str0mHost>(s).channel_data.is_empty());
    assert!(opened, "str0m got no data channel message");
    let sh = net.node_mut::<Str0mHost>(s);
    let (cid, label) = sh.channel_open.clone().expect("str0m saw the channel open");
    assert_eq!(label, "telemetry");
    assert_eq!(sh.channel_data[0], (false, b"temperature=21.5".to_vec()));
    sh.io.rtc.channel(cid).expect("str0m channel").write(true, &[1, 2, 3, 4]).unwrap();
    // str0m asks for a keyframe of our video.
    sh.io
        .rtc
        .direct_api()
        .stream_rx_by_mid(video_mid, None)
        .expect("rx stream")
        .request_keyframe(KeyframeRequestKind::Pli);
    sh.pump();
    // Past str0m's 2 s reordering timeout and a few 1 s report intervals.
    net.run_for(Duration::from_secs(4));

    let sh = net.node::<Str0mHost>(s);
    let th = net.node::<TinyHost>(t);
    let stats = th.peer.stats();

    // Video: which leading frames str0m's register must have refused (see
    // the module docs), then exactly the rest, byte for byte, in order.
    let sent_video_seqs: Vec<_> = th.sent.iter().filter(|f| f.0 == MediaKind::Video).collect();
    let video_ssrc = sent_video_seqs[0].1;
    let first_in = sh.first_seq[&video_ssrc];
    let refused = sent_video_seqs.iter().take_while(|f| seq_before(f.2, first_in)).count();
    let all_video = sh.frames_of(video_mid);
    let (video_packets, video_bytes) = sh.ingress[&video_mid];
    eprintln!(
        "peer_str0m ({video_codec:?}): tinyrtc sent {} video frames as {} packets / {} payload bytes; str0m counted \
         {video_packets} packets / {video_bytes} bytes in and reassembled {} frames (first packet in: seq {first_in}, \
         frames before it: {refused}); Opus to str0m {}/{}, from str0m {}; rtt tinyrtc video {} us audio {} us, \
         str0m {:?}",
        sent_video.len(),
        stats.video.packets_sent,
        stats.video.bytes_sent,
        all_video.len(),
        sh.frames_of(audio_mid).len(),
        sent_audio.len(),
        th.received_in_order(MediaKind::Audio).len(),
        stats.video.rtt_us,
        stats.audio.rtt_us,
        sh.egress_rtt.get(&audio_mid),
    );
    assert!(refused <= 1, "link jitter (<= 0.4 ms) cannot reorder across frames 33 ms apart: {refused}");
    let mut got_video = all_video.as_slice();
    if refused == 1 && got_video.len() == sent_video.len() {
        // The refused packets held whole NAL units (the H.264 STAP-A with
        // SPS and PPS): str0m emits the rest of the access unit.
        let (first, sent) = (got_video[0], &sent_video[0]);
        assert!(video_codec != CodecChoice::Vp8, "a VP8 frame without its first packet has no start");
        assert!(first.len() < sent.len() && sent.ends_with(first) && first.starts_with(&[0, 0, 0, 1]));
        got_video = &got_video[1..];
    }
    let expected: Vec<&[u8]> = sent_video[refused..].iter().map(|f| f.as_slice()).collect();
    assert_eq!(got_video.len(), expected.len(), "str0m's frame count");
    for (i, (got, want)) in got_video.iter().zip(&expected).enumerate() {
        assert!(got == want, "frame {}: str0m has {} bytes, we sent {}", i + refused, got.len(), want.len());
    }
    // str0m's own counters: every packet authenticated (lossless link) but
    // those before its first arrival.
    let refused_packets = u64::from(first_in.wrapping_sub(sent_video_seqs[0].2));
    assert_eq!(video_packets, stats.video.packets_sent - refused_packets);

    // Opus to str0m: every frame.
    let sent_audio: Vec<&[u8]> = sent_audio.iter().map(|f| f.as_slice()).collect();
    assert_eq!(sh.frames_of(audio_mid), sent_audio, "Opus frames str0m reassembled");
    // Opus from str0m: tinyrtc depacketizes every frame.
    let mut dep = AudioDepacketizer::new(vec![0u8; 1500]);
    let mut got_audio = Vec::new();
    for m in th.received_in_order(MediaKind::Audio) {
        if let Some(f) = dep.push(m.seq, m.timestamp, m.marker, &m.payload).unwrap() {
            got_audio.push(dep.frame()[..f.len].to_vec());
        }
    }
    assert_eq!(got_audio, str0m_audio, "Opus frames tinyrtc received");
    assert_eq!(dep.dropped_frames(), 0);

    // RTT both ways: ours from str0m's report blocks (LSR/DLSR of our SRs),
    // str0m's from ours (LSR/DLSR of its SRs).
    assert!(RTT_RANGE_US.contains(&stats.video.rtt_us), "video rtt {} us", stats.video.rtt_us);
    assert!(RTT_RANGE_US.contains(&stats.audio.rtt_us), "audio rtt {} us", stats.audio.rtt_us);
    let theirs = sh.egress_rtt.get(&audio_mid).expect("str0m measured an RTT from our receiver reports");
    assert!(RTT_RANGE_US.contains(&(theirs.as_micros() as u64)), "str0m's rtt {theirs:?}");

    assert!(
        th.events.iter().any(|e| matches!(e, PeerEvent::KeyframeRequest { kind: MediaKind::Video })),
        "{:?}",
        th.events
    );
    let reply = th.events.iter().find_map(|e| match e {
        PeerEvent::ChannelData { id: i, binary: true, len } if *i == id => Some(*len),
        _ => None,
    });
    assert_eq!(reply, Some(4), "str0m's reply on the channel");
}

#[test]
fn tinyrtc_offers_h264_str0m_answers() {
    str0m::crypto::from_feature_flags().install_process_default();
    run_with_seed(0x5707, |seed| tinyrtc_offers(seed, CodecChoice::H264ConstrainedBaseline));
}

#[test]
fn tinyrtc_offers_vp8_str0m_answers() {
    str0m::crypto::from_feature_flags().install_process_default();
    run_with_seed(0x5709, |seed| tinyrtc_offers(seed, CodecChoice::Vp8));
}

#[test]
fn str0m_offers_tinyrtc_answers() {
    str0m::crypto::from_feature_flags().install_process_default();
    run_with_seed(0x5708, |seed| {
        let mut rng = tiny_rng(seed);
        let mut net = Network::new(seed);
        net.set_default_link(LinkConfig::wan().with_loss(0.02));
        let base = StdInstant::now();
        let mut rtc = str0m_rtc(base);
        let mut change = rtc.sdp_api();
        let audio_mid = change.add_media(Str0mKind::Audio, Str0mDirection::RecvOnly, None, None, None);
        let cid = change.add_channel("control".into());
        let (offer, pending) = change.apply().unwrap();
        let peer = tinyrtc_answers(&mut rtc, offer, pending, PeerConfig::camera(), &mut rng);
        let (t, s) = connect(&mut net, peer, Str0mHost::new(rtc, base), |h| h.channel_open.is_some());
        // Our send-only audio (str0m receives only): 100 Opus packets.
        for i in 0..100u32 {
            let now = net.now();
            net.node_mut::<TinyHost>(t).send(now, MediaKind::Audio, &[0xf8, 0xff, 0xfe], i * 960);
            net.run_for(Duration::from_millis(20));
        }
        let sh = net.node_mut::<Str0mHost>(s);
        sh.io.rtc.channel(cid).expect("channel").write(false, b"reboot please").unwrap();
        sh.pump();
        // A lost DATA chunk waits for str0m's SCTP retransmission timeout.
        let sent_at = net.now();
        net.run_until_cond(sent_at + Duration::from_secs(10), |n| {
            n.node::<TinyHost>(t).events.iter().any(|e| matches!(e, PeerEvent::ChannelData { .. }))
        });
        let message_ms = (net.now() - sent_at).as_micros() / 1000;
        net.run_for(Duration::from_secs(1));
        let sh = net.node::<Str0mHost>(s);
        let th = net.node::<TinyHost>(t);
        let audio = sh.frames_of(audio_mid).len();
        eprintln!(
            "peer_str0m (answerer): audio frames received by str0m {audio} of 100 at 2% loss; its message took \
             {message_ms} ms"
        );
        assert!(audio >= 90, "{audio} of 100 audio packets");
        let got = th.events.iter().find_map(|e| match e {
            PeerEvent::ChannelData { binary: false, len, .. } => Some(*len),
            _ => None,
        });
        assert_eq!(got, Some(13));
        assert!(th.events.iter().any(|e| matches!(e, PeerEvent::ChannelOpen { by_remote: true, .. })));
    });
}

#[test]
fn str0m_sends_video_tinyrtc_receives() {
    str0m::crypto::from_feature_flags().install_process_default();
    run_with_seed(0x570a, |seed| {
        let _trace = std::env::var_os("PEER_STR0M_TRACE").map(|_| tracing::subscriber::set_default(trace::Stderr));
        let mut rng = tiny_rng(seed);
        let mut net = Network::new(seed);
        net.set_default_link(LinkConfig::lan());
        let base = StdInstant::now();
        let mut rtc = str0m_rtc(base);
        let mut change = rtc.sdp_api();
        let video_mid = change.add_media(Str0mKind::Video, Str0mDirection::SendOnly, None, None, None);
        let audio_mid = change.add_media(Str0mKind::Audio, Str0mDirection::SendOnly, None, None, None);
        let (offer, pending) = change.apply().unwrap();
        let codecs: &'static [CodecChoice] = &[CodecChoice::H264ConstrainedBaseline];
        let config = PeerConfig { video_codecs: codecs, datachannel: false, ..PeerConfig::viewer() };
        let peer = tinyrtc_answers(&mut rtc, offer, pending, config, &mut rng);
        let (_, h264_pt) = peer.codec(MediaKind::Video).expect("video negotiated");
        let (_, opus_pt) = peer.codec(MediaKind::Audio).expect("audio negotiated");
        let (t, s) = connect(&mut net, peer, Str0mHost::new(rtc, base), |h| h.connected);
        let mut sent_video = Vec::new();
        let mut sent_audio = Vec::new();
        for i in 0..FRAMES {
            let au = access_unit(i, 3000);
            let opus = opus_frame(0x03, i);
            let now = net.now();
            let sh = net.node_mut::<Str0mHost>(s);
            sh.write(now, video_mid, h264_pt, MediaTime::from_90khz(u64::from(i) * 3000), &au);
            sh.write(now, audio_mid, opus_pt, MediaTime::new(u64::from(i) * 1600, Frequency::FORTY_EIGHT_KHZ), &opus);
            sent_video.push(au);
            sent_audio.push(opus);
            net.run_for(Duration::from_millis(33));
        }
        net.run_for(Duration::from_secs(1));
        let th = net.node::<TinyHost>(t);
        let mut dep = H264Depacketizer::new(vec![0u8; 64 * 1024]);
        let mut got_video = Vec::new();
        let video = th.received_in_order(MediaKind::Video);
        for m in &video {
            if let Some(f) = dep.push(m.seq, m.timestamp, m.marker, &m.payload).unwrap() {
                got_video.push((f.timestamp, f.keyframe, dep.frame()[..f.len].to_vec()));
            }
        }
        let mut adep = AudioDepacketizer::new(vec![0u8; 1500]);
        let mut got_audio = Vec::new();
        for m in th.received_in_order(MediaKind::Audio) {
            if let Some(f) = adep.push(m.seq, m.timestamp, m.marker, &m.payload).unwrap() {
                got_audio.push(adep.frame()[..f.len].to_vec());
            }
        }
        eprintln!(
            "peer_str0m (str0m sends): str0m wrote {} H.264 frames, tinyrtc received {} packets and depacketized {} \
             frames ({} key), dropped {}; Opus {} of {}",
            sent_video.len(),
            video.len(),
            got_video.len(),
            got_video.iter().filter(|f| f.1).count(),
            dep.dropped_frames(),
            got_audio.len(),
            sent_audio.len(),
        );
        assert_eq!(got_video.len(), sent_video.len(), "frame count");
        for (i, ((ts, key, got), want)) in got_video.iter().zip(&sent_video).enumerate() {
            assert!(got == want, "frame {i}: {} bytes, str0m was given {}", got.len(), want.len());
            assert_eq!(*key, (i as u32).is_multiple_of(15), "frame {i} keyframe flag");
            assert_eq!(ts.wrapping_sub(got_video[0].0), i as u32 * 3000, "frame {i} timestamp");
        }
        assert_eq!(dep.dropped_frames(), 0);
        assert_eq!(got_audio, sent_audio, "Opus frames");
    });
}

/// A minimal `tracing` subscriber printing str0m's events to stderr.
mod trace {
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    pub struct Stderr;
    struct Line(String);
    impl Visit for Line {
        fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
            self.0.push_str(&format!(" {}={v:?}", f.name()));
        }
    }
    impl Subscriber for Stderr {
        fn enabled(&self, m: &Metadata<'_>) -> bool {
            m.target().starts_with("str0m")
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, e: &Event<'_>) {
            let mut line = Line(String::new());
            e.record(&mut line);
            eprintln!("[{} {}]{}", e.metadata().level(), e.metadata().target(), line.0);
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
}
