//! tinyrtc `Peer` against str0m 0.24 (rust-crypto), both in this process on
//! the deterministic network simulator (virtual clock, seeded link
//! impairments). str0m is an independent sans-IO WebRTC stack: it judges our
//! SDP, ICE-lite answers, DTLS-SRTP, RTP packetization and data channels.
//!
//! 1. tinyrtc (camera) offers H.264 + Opus + data channel; str0m answers,
//!    authenticates our SRTP video (its ingress counters) and reassembles our
//!    Opus frames; data channel messages both ways; str0m asks for a keyframe
//!    and tinyrtc surfaces it. (str0m 0.24 counts our video packets in but
//!    emits no reassembled video frames for them, H.264 or VP8; Chromium
//!    decodes the same stream, see `peer_chromium.rs`. Not explained yet.)
//! 2. str0m offers a data channel plus receive-only audio; tinyrtc answers.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant as StdInstant;

use host_tests::netsim::{run_with_seed, LinkConfig, Network, Node};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use str0m::channel::ChannelId as Str0mChannelId;
use str0m::media::{Direction as Str0mDirection, KeyframeRequestKind, MediaKind as Str0mKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event as Str0mEvent, IceConnectionState, Input, Output, Rtc};
use tinyrtc::peer::{ChannelConfig, Peer, PeerConfig, PeerEvent, PeerState};
use tinyrtc::sdp::{CodecChoice, MediaKind};
use tinyrtc::{Duration, Instant, Transmit};

const TINY: &str = "10.0.0.1:5000";
const STR0M: &str = "10.0.0.2:6000";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A tinyrtc session as a simulator node.
struct TinyHost {
    peer: Peer,
    events: Vec<PeerEvent>,
    media: Vec<(MediaKind, u16, usize)>,
    /// Media datagrams written by `send`, sent before anything else.
    outbox: VecDeque<(SocketAddr, Vec<u8>)>,
}

impl TinyHost {
    fn new(peer: Peer) -> Self {
        TinyHost { peer, events: vec![], media: vec![], outbox: VecDeque::new() }
    }
    /// Packetize and protect one frame into the outbox.
    fn send(&mut self, now: Instant, kind: MediaKind, frame: &[u8], ts: u32) {
        let mut buf = vec![0u8; 1500];
        let mut w = self.peer.send_frame(now, kind, frame, ts).expect("send_frame");
        while let Some(tx) = w.next_packet(&mut buf) {
            let tx = tx.expect("packet");
            self.outbox.push_back((tx.destination, buf[..tx.len].to_vec()));
        }
    }
}

impl Node for TinyHost {
    fn handle_receive(&mut self, now: Instant, from: SocketAddr, _to: SocketAddr, data: &[u8]) {
        let mut d = data.to_vec();
        if let Ok(Some(m)) = self.peer.handle_receive(now, from, &mut d) {
            self.media.push((m.kind, m.sequence_number, m.payload_len));
        }
        while let Some(e) = self.peer.poll_event() {
            self.events.push(e);
        }
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if let Some((destination, d)) = self.outbox.pop_front() {
            buf[..d.len()].copy_from_slice(&d);
            return Some(Transmit { source: None, destination, len: d.len() });
        }
        let t = self.peer.poll_transmit(now, buf);
        while let Some(e) = self.peer.poll_event() {
            self.events.push(e);
        }
        t
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.peer.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.peer.handle_timeout(now);
        while let Some(e) = self.peer.poll_event() {
            self.events.push(e);
        }
    }
}

/// str0m's `Rtc` as a simulator node.
struct Str0mHost {
    rtc: Rtc,
    base: StdInstant,
    timeout: Option<Instant>,
    out: VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>,
    connected: bool,
    /// (mid, payload type, frame bytes) of every reassembled frame.
    frames: Vec<(Mid, u8, Vec<u8>)>,
    channel_open: Option<(Str0mChannelId, String)>,
    channel_data: Vec<(bool, Vec<u8>)>,
    /// Latest ingress counters per mid: (packets, bytes).
    ingress: std::collections::HashMap<Mid, (u64, u64)>,
}

impl Str0mHost {
    fn new(rtc: Rtc, base: StdInstant) -> Self {
        Str0mHost {
            rtc,
            base,
            timeout: Some(Instant::ZERO),
            out: VecDeque::new(),
            connected: false,
            frames: Vec::new(),
            channel_open: None,
            channel_data: Vec::new(),
            ingress: std::collections::HashMap::new(),
        }
    }
    fn std(&self, t: Instant) -> StdInstant {
        self.base + std::time::Duration::from_micros(t.as_micros())
    }
    fn pump(&mut self) {
        loop {
            match self.rtc.poll_output().expect("str0m poll_output") {
                Output::Transmit(t) => self.out.push_back((t.source, t.destination, t.contents.to_vec())),
                Output::Event(e) => match e {
                    Str0mEvent::IceConnectionStateChange(IceConnectionState::Connected) | Str0mEvent::Connected => {
                        self.connected = true
                    }
                    Str0mEvent::MediaData(d) => self.frames.push((d.mid, *d.pt, d.data.to_vec())),
                    Str0mEvent::ChannelOpen(id, label) => self.channel_open = Some((id, label)),
                    Str0mEvent::ChannelData(d) => self.channel_data.push((d.binary, d.data.clone())),
                    Str0mEvent::MediaIngressStats(st) => {
                        self.ingress.insert(st.mid, (st.packets, st.bytes));
                    }
                    _ => {}
                },
                Output::Timeout(t) => {
                    let us = t.saturating_duration_since(self.base).as_micros() as u64;
                    self.timeout = Some(Instant::from_micros(us));
                    return;
                }
            }
        }
    }
}

impl Node for Str0mHost {
    fn handle_receive(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, data: &[u8]) {
        let Ok(contents) = data.try_into() else { return };
        let input =
            Input::Receive(self.std(now), Receive { proto: Protocol::Udp, source: from, destination: to, contents });
        self.rtc.handle_input(input).expect("str0m handle_input");
        self.pump();
    }
    fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let (src, dst, data) = self.out.pop_front()?;
        buf[..data.len()].copy_from_slice(&data);
        Some(Transmit { source: Some(src), destination: dst, len: data.len() })
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.timeout
    }
    fn handle_timeout(&mut self, now: Instant) {
        let t = self.std(now);
        self.rtc.handle_input(Input::Timeout(t)).expect("str0m timeout");
        self.pump();
    }
}

/// An H.264 access unit (Annex-B) of `size` bytes: SPS + PPS + IDR for
/// keyframes, one non-IDR slice otherwise. The slice bodies are filler: no
/// one decodes them here, str0m only depacketizes.
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

fn tiny_rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

#[test]
fn tinyrtc_offers_str0m_answers() {
    str0m::crypto::from_feature_flags().install_process_default();
    run_with_seed(0x5707, |seed| {
        let mut rng = tiny_rng(seed);
        let mut net = Network::new(seed);
        net.set_default_link(LinkConfig::lan());
        let base = StdInstant::now();
        // H.264 only: str0m prefers VP8 when given the choice.
        let codecs: &'static [CodecChoice] = &[CodecChoice::H264ConstrainedBaseline];
        let config = PeerConfig { video_codecs: codecs, ..PeerConfig::camera() };
        let mut peer = Peer::new(config, &mut rng);
        peer.add_local_candidate(addr(TINY)).unwrap();
        let mut sdp = vec![0u8; 8192];
        let n = peer.create_offer(&mut sdp).unwrap();
        let offer_text = std::str::from_utf8(&sdp[..n]).unwrap().to_string();
        let mut rtc = Rtc::builder().set_stats_interval(Some(std::time::Duration::from_secs(1))).build(base);
        rtc.add_local_candidate(Candidate::host(addr(STR0M), "udp").unwrap());
        let offer = str0m::change::SdpOffer::from_sdp_string(&offer_text).expect("str0m parses our offer");
        let answer = rtc.sdp_api().accept_offer(offer).expect("str0m accepts our offer").to_sdp_string();
        if std::env::var_os("PEER_STR0M_DEBUG").is_some() {
            eprintln!("OFFER\n{offer_text}\nANSWER\n{answer}");
        }
        peer.set_remote_answer(Instant::ZERO, &answer, &mut rng).expect("we accept str0m's answer");
        assert_eq!(peer.codec(MediaKind::Video).map(|c| c.0), Some(codecs[0]));
        let t = net.add_host(Network::PUBLIC, addr(TINY), TinyHost::new(peer));
        let s = net.add_host(Network::PUBLIC, addr(STR0M), Str0mHost::new(rtc, base));
        let up = net.run_until_cond(Instant::from_secs(20), |n| {
            n.node::<TinyHost>(t).peer.state() == PeerState::Connected && n.node::<Str0mHost>(s).connected
        });
        assert!(up, "not connected: tinyrtc {:?}", net.node::<TinyHost>(t).peer.stats());

        // 60 frames at 30 fps, 4 KB each (several packets), plus Opus.
        let mut sent = Vec::new();
        for i in 0..60u32 {
            let au = access_unit(i, 4000);
            let now = net.now();
            let host = net.node_mut::<TinyHost>(t);
            host.send(now, MediaKind::Video, &au, i * 3000);
            host.send(now, MediaKind::Audio, &[0xf8, 0xff, 0xfe], i * 1600);
            sent.push(au);
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
        sh.rtc.channel(cid).expect("str0m channel").write(true, &[1, 2, 3, 4]).unwrap();
        // str0m asks for a keyframe of our video (the mid with the most bytes in).
        let video_mid = sh.ingress.iter().max_by_key(|(_, v)| v.1).map(|(m, _)| *m).expect("str0m ingress stats");
        sh.rtc
            .direct_api()
            .stream_rx_by_mid(video_mid, None)
            .expect("rx stream")
            .request_keyframe(KeyframeRequestKind::Pli);
        sh.pump();
        net.run_for(Duration::from_secs(2));

        let sh = net.node::<Str0mHost>(s);
        let th = net.node::<TinyHost>(t);
        let stats = th.peer.stats();
        let (video_packets, video_bytes) = sh.ingress[&video_mid];
        let audio = sh.frames.iter().filter(|f| f.0 != video_mid).count();
        eprintln!(
            "peer_str0m: video frames sent {} as {} packets / {} payload bytes; str0m counted {video_packets} packets / {video_bytes} bytes in; audio frames reassembled {audio}; rtt {} us",
            sent.len(),
            stats.video.packets_sent,
            stats.video.bytes_sent,
            stats.video.rtt_us
        );
        // Lossless LAN: str0m authenticated and accepted (nearly) every video
        // packet; its counters are a periodic snapshot, so allow 1%.
        assert!(
            video_packets * 100 >= stats.video.packets_sent * 99,
            "{video_packets} of {}",
            stats.video.packets_sent
        );
        assert!(video_packets <= stats.video.packets_sent);
        assert!(audio >= 55, "{audio} audio frames");
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
    });
}

#[test]
fn str0m_offers_tinyrtc_answers() {
    str0m::crypto::from_feature_flags().install_process_default();
    run_with_seed(0x5708, |seed| {
        let mut rng = tiny_rng(seed);
        let mut net = Network::new(seed);
        net.set_default_link(LinkConfig::wan().with_loss(0.02));
        let base = StdInstant::now();
        let mut rtc = Rtc::builder().set_stats_interval(Some(std::time::Duration::from_secs(1))).build(base);
        rtc.add_local_candidate(Candidate::host(addr(STR0M), "udp").unwrap());
        let mut change = rtc.sdp_api();
        let audio_mid = change.add_media(Str0mKind::Audio, Str0mDirection::RecvOnly, None, None, None);
        let cid = change.add_channel("control".into());
        let (offer, pending) = change.apply().unwrap();
        let mut peer = Peer::new(PeerConfig::camera(), &mut rng);
        peer.add_local_candidate(addr(TINY)).unwrap();
        let mut sdp = vec![0u8; 8192];
        let n = peer
            .accept_offer(Instant::ZERO, &offer.to_sdp_string(), &mut sdp, &mut rng)
            .expect("we accept str0m's offer");
        let answer = str0m::change::SdpAnswer::from_sdp_string(std::str::from_utf8(&sdp[..n]).unwrap())
            .expect("str0m parses our answer");
        rtc.sdp_api().accept_answer(pending, answer).expect("str0m accepts our answer");
        let t = net.add_host(Network::PUBLIC, addr(TINY), TinyHost::new(peer));
        let s = net.add_host(Network::PUBLIC, addr(STR0M), Str0mHost::new(rtc, base));
        let up = net.run_until_cond(Instant::from_secs(20), |n| {
            n.node::<TinyHost>(t).peer.state() == PeerState::Connected && n.node::<Str0mHost>(s).channel_open.is_some()
        });
        assert!(up, "not connected: tinyrtc {:?}", net.node::<TinyHost>(t).peer.stats());
        // Our send-only audio (str0m receives only): 100 Opus packets.
        for i in 0..100u32 {
            let now = net.now();
            net.node_mut::<TinyHost>(t).send(now, MediaKind::Audio, &[0xf8, 0xff, 0xfe], i * 960);
            net.run_for(Duration::from_millis(20));
        }
        let sh = net.node_mut::<Str0mHost>(s);
        sh.rtc.channel(cid).expect("channel").write(false, b"reboot please").unwrap();
        sh.pump();
        net.run_for(Duration::from_secs(2));
        let sh = net.node::<Str0mHost>(s);
        let th = net.node::<TinyHost>(t);
        let audio = sh.frames.iter().filter(|f| f.0 == audio_mid).count();
        eprintln!("peer_str0m (answerer): audio frames received by str0m {audio} of 100 at 2% loss");
        assert!(audio >= 90, "{audio} of 100 audio packets");
        let got = th.events.iter().find_map(|e| match e {
            PeerEvent::ChannelData { binary: false, len, .. } => Some(*len),
            _ => None,
        });
        assert_eq!(got, Some(13));
        assert!(th.events.iter().any(|e| matches!(e, PeerEvent::ChannelOpen { by_remote: true, .. })));
    });
}
