//! tinyrtc `Peer` data channels against headless Chromium (page served on
//! 127.0.0.1, see `host-tests/js/page.js`), loopback candidates only.
//!
//! Both directions of offer (a: tinyrtc offers, Chromium answers and opens
//! its channels afterwards; b: Chromium offers with its channels created up
//! front, tinyrtc answers). In each:
//! - tinyrtc opens `from-tinyrtc` (reliable, ordered, sub-protocol
//!   `tinyrtc-bulk`); Chromium opens `from-chromium` (reliable, protocol
//!   `chromium-bulk`) and `lossy` (unordered, maxRetransmits=0); both open
//!   `neg`, pre-negotiated on stream 42 (no DCEP). Each side checks what the
//!   other announced: label, protocol, ordering, reliability (RFC 8832).
//! - On `neg`: text, empty text, binary and empty binary messages each way
//!   keep their kind and content (PPIDs 51/56/53/57, RFC 8831 section 6.6).
//! - 1 MiB of pseudo-random bytes in 16 KiB binary messages crosses each way
//!   at the same time; tinyrtc compares what it got byte for byte, and the
//!   SHA-256 Chromium computes over what it got is compared with ours.
//! - `lossy` carries 200 numbered 1000-byte messages each way: the burst is
//!   handed over without stalling, at least 90% arrive (loopback: normally
//!   all), none twice.
//! - Chromium closes `from-chromium`, then tinyrtc closes `from-tinyrtc`:
//!   each close is seen on both sides (stream reset, RFC 8831 section 6.7)
//!   while the other channels stay open.
//! - tinyrtc then opens `timed` (unordered, max-packet-lifetime 2500 ms) on
//!   a freed slot: Chromium reports those options and gets a message.
//!
//! The default `Peer` receives into a 16 KiB buffer (one bulk message): the
//! test reads every message as soon as a datagram is handled.

use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant as StdInstant};

use host_tests::channels::{bulk_bytes, datachannel_only, hex, ChannelSide};
use host_tests::chromium::{json, selected_pair, Chromium, Value};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tinyrtc::peer::{ChannelConfig, PeerError, PeerEvent, Reliability};
use tinyrtc::sctp::SctpError;

const BULK: usize = 1 << 20;
const CHUNK: usize = 16 * 1024;
const BURST: usize = 200;
const BURST_SIZE: usize = 1000;
const SEED_US: u32 = 17;
const SEED_THEM: u32 = 19;
const NEG_ID: u16 = 42;

/// Both ends: the driven tinyrtc peer (reached through `Deref`) and the
/// Chromium page.
struct Run {
    s: ChannelSide,
    c: Chromium,
    page_events: Vec<Value>,
}

impl Deref for Run {
    type Target = ChannelSide;
    fn deref(&self) -> &ChannelSide {
        &self.s
    }
}

impl DerefMut for Run {
    fn deref_mut(&mut self) -> &mut ChannelSide {
        &mut self.s
    }
}

impl Run {
    fn new(test: &'static str, c: Chromium, seed: u64) -> Run {
        Run { s: ChannelSide::bind(test, datachannel_only(), seed), c, page_events: Vec::new() }
    }

    /// Drive the peer ~5 ms (see [`ChannelSide::pump`]); collect the page's
    /// events.
    fn pump(&mut self) {
        self.s.pump();
        self.page_events.extend(self.c.drain_events());
    }

    /// Call a page helper (`window.tr.<name>`), then catch up on the peer.
    fn call(&mut self, name: &str, args: Value) -> Value {
        let r = self.c.call(name, args);
        let v = r.unwrap_or_else(|e| panic!("{}: chromium {e}; ours: {}", self.test, self.describe()));
        self.pump();
        v
    }

    fn status(&mut self, digest: bool) -> Value {
        self.call("channelStatus", json!([digest]))
    }

    fn pump_until(&mut self, secs: u64, what: &str, mut done: impl FnMut(&Run) -> bool) {
        let deadline = StdInstant::now() + Duration::from_secs(secs);
        while !done(self) {
            assert!(StdInstant::now() < deadline, "{}: timed out waiting for {what}; {}", self.test, self.describe());
            self.pump();
        }
    }

    /// Pump until the page status satisfies `pred` (polled every ~50 ms).
    fn until_page(&mut self, secs: u64, what: &str, mut pred: impl FnMut(&Value) -> bool) -> Value {
        let deadline = StdInstant::now() + Duration::from_secs(secs);
        loop {
            let st = self.status(false);
            if pred(&st) {
                return st;
            }
            assert!(
                StdInstant::now() < deadline,
                "{}: timed out waiting for Chromium: {what}; page {st}; ours: {}",
                self.test,
                self.describe()
            );
            for _ in 0..10 {
                self.pump();
            }
        }
    }

    fn page_saw(&self, event: &str, label: &str) -> bool {
        self.page_events.iter().any(|e| e["event"] == event && e["label"] == label)
    }
}

fn chromium_channels() -> Value {
    json!([
        {"label": "from-chromium", "init": {"protocol": "chromium-bulk"}},
        {"label": "lossy", "init": {"ordered": false, "maxRetransmits": 0}},
        {"label": "neg", "init": {"negotiated": true, "id": NEG_ID}},
    ])
}

fn open_ours(r: &mut Run) -> u16 {
    let now = r.d.now();
    let ours = r.d.peer.open_channel(now, "from-tinyrtc", "tinyrtc-bulk", ChannelConfig::default()).unwrap();
    r.labels.insert(ours, "from-tinyrtc".into());
    let neg = ChannelConfig { negotiated: Some(NEG_ID), ..ChannelConfig::default() };
    assert_eq!(r.d.peer.open_channel(now, "neg", "", neg), Ok(NEG_ID));
    r.labels.insert(NEG_ID, "neg".into());
    ours
}

fn exchange(r: &mut Run, ours: u16, connect_ms: u128) {
    let test = r.test;
    // Every channel open on both sides, with the options its opener chose.
    r.pump_until(10, "channels open", |r| {
        r.d.events.contains(&PeerEvent::ChannelOpen { id: ours, by_remote: false })
            && r.d.events.contains(&PeerEvent::ChannelOpen { id: NEG_ID, by_remote: false })
            && r.id_of("from-chromium").is_some()
            && r.id_of("lossy").is_some()
    });
    let page = r.until_page(10, "all channels open", |st| {
        ["from-tinyrtc", "from-chromium", "lossy", "neg"].iter().all(|l| st[l]["state"] == "open")
    });
    let theirs = r.id_of("from-chromium").unwrap();
    let lossy = r.id_of("lossy").unwrap();
    assert!(r.d.events.contains(&PeerEvent::ChannelOpen { id: theirs, by_remote: true }));
    assert!(r.d.events.contains(&PeerEvent::ChannelOpen { id: lossy, by_remote: true }));
    // DTLS client uses even stream ids, the server odd ones (RFC 8832 section 6).
    assert_ne!(ours % 2, theirs % 2, "stream id parity: ours {ours}, Chromium's {theirs}");
    assert_eq!(page["from-tinyrtc"]["id"].as_u64(), Some(u64::from(ours)));
    assert_eq!(page["from-chromium"]["id"].as_u64(), Some(u64::from(theirs)));
    assert_eq!(page["from-tinyrtc"]["protocol"], "tinyrtc-bulk");
    assert_eq!(page["from-tinyrtc"]["ordered"], true);
    assert_eq!(page["from-tinyrtc"]["maxRetransmits"], Value::Null);
    assert_eq!(page["from-tinyrtc"]["maxPacketLifeTime"], Value::Null);
    assert_eq!(r.d.peer.channel_protocol(theirs), Some("chromium-bulk"));
    let cfg = r.d.peer.channel_config(theirs).unwrap();
    assert_eq!((cfg.ordered, cfg.reliability), (true, Reliability::Reliable));
    assert_eq!(r.d.peer.channel_protocol(lossy), Some(""));
    let cfg = r.d.peer.channel_config(lossy).unwrap();
    assert_eq!((cfg.ordered, cfg.reliability), (false, Reliability::MaxRetransmits(0)));
    assert_eq!(page["neg"]["negotiated"], true);

    // Message kinds on the pre-negotiated channel, both ways.
    let now = r.d.now();
    for (binary, m) in [(false, &b"hello chromium"[..]), (false, b""), (true, &[1, 2, 3][..]), (true, b"")] {
        r.d.peer.send_data(now, NEG_ID, binary, m).unwrap();
    }
    r.call("send", json!(["neg", "hello tinyrtc"]));
    r.call("send", json!(["neg", ""]));
    r.call("sendBinary", json!(["neg", [4, 5]]));
    r.call("sendBinary", json!(["neg", []]));
    r.pump_until(10, "4 messages on neg", |r| r.rx.get("neg").map_or(0, Vec::len) >= 4);
    let got = &r.rx["neg"];
    let want: Vec<(bool, Vec<u8>)> =
        vec![(false, b"hello tinyrtc".to_vec()), (false, vec![]), (true, vec![4, 5]), (true, vec![])];
    assert_eq!(got, &want, "kinds and bytes from Chromium");
    let deadline = StdInstant::now() + Duration::from_secs(10);
    let page_msgs = loop {
        let msgs: Vec<Value> = r.page_events.iter().filter(|e| e["event"] == "dc-message").cloned().collect();
        if msgs.len() >= 4 || StdInstant::now() > deadline {
            break msgs;
        }
        r.pump();
    };
    let page_msgs: Vec<(Value, Value)> = page_msgs.iter().map(|e| (e["text"].clone(), e["bytes"].clone())).collect();
    assert_eq!(
        page_msgs,
        vec![
            (json!("hello chromium"), Value::Null),
            (json!(""), Value::Null),
            (Value::Null, json!([1, 2, 3])),
            (Value::Null, json!([])),
        ],
        "kinds and bytes Chromium got"
    );

    // 1 MiB each way at once.
    r.call("setQuiet", json!(["from-tinyrtc"]));
    r.call("setQuiet", json!(["lossy"]));
    let mine = bulk_bytes(BULK, SEED_US);
    r.outbox.push((ours, mine.chunks(CHUNK).map(<[u8]>::to_vec).collect(), 0));
    let t0 = StdInstant::now();
    r.call("sendBulk", json!(["from-chromium", BULK, CHUNK, SEED_THEM, 256 * 1024]));
    r.pump_until(60, "1 MiB from Chromium and ours sent", |r| r.rx_bytes("from-chromium") >= BULK && r.outbox_done());
    let ours_in = t0.elapsed();
    r.until_page(60, "1 MiB from tinyrtc", |st| st["from-tinyrtc"]["bytes"].as_u64() >= Some(BULK as u64));
    let secs = t0.elapsed().as_secs_f64();
    let st = r.status(true);
    let got: Vec<u8> = r.rx["from-chromium"].iter().flat_map(|m| m.1.clone()).collect();
    let sizes_ok = r.rx["from-chromium"].iter().all(|m| m.0 && m.1.len() == CHUNK);
    let theirs_rx = &st["from-tinyrtc"];
    eprintln!(
        "{test}: connected in {connect_ms} ms; 1 MiB each way in {secs:.2} s ({:.1} Mbit/s total; tinyrtc's \
         receive and send done after {:.2} s); tinyrtc got {} bytes in {} messages, Chromium got {} bytes in {} \
         messages; send WouldBlock {} times",
        2.0 * BULK as f64 * 8.0 / secs / 1e6,
        ours_in.as_secs_f64(),
        got.len(),
        r.rx["from-chromium"].len(),
        theirs_rx["bytes"],
        theirs_rx["messages"],
        r.would_block,
    );
    assert!(got == bulk_bytes(BULK, SEED_THEM), "bytes from Chromium differ");
    assert!(sizes_ok, "message boundaries kept (all {CHUNK}-byte binary messages)");
    assert_eq!(theirs_rx["bytes"].as_u64(), Some(BULK as u64));
    assert_eq!(theirs_rx["messages"].as_u64(), Some((BULK / CHUNK) as u64));
    assert_eq!(theirs_rx["sizes"], json!([CHUNK]));
    assert_eq!(theirs_rx["sha256"].as_str().unwrap(), hex(&tinyrtc::crypto::sha256(&[&mine])), "bytes differ");

    // Unordered, no retransmissions: numbered messages each way.
    let burst: Vec<Vec<u8>> = (0..BURST as u32)
        .map(|i| {
            let mut m = vec![0u8; BURST_SIZE];
            m[..4].copy_from_slice(&i.to_be_bytes());
            m
        })
        .collect();
    r.outbox.push((lossy, burst, 0));
    let t1 = StdInstant::now();
    let sent = r.call("sendBurst", json!(["lossy", BURST, BURST_SIZE]));
    r.pump_until(10, "lossy burst sent", |r| r.outbox_done());
    let queued_in = t1.elapsed();
    let st = r.until_page(5, "lossy burst", |st| st["lossy"]["messages"].as_u64() >= Some(BURST as u64));
    let deadline = StdInstant::now() + Duration::from_secs(3);
    while StdInstant::now() < deadline && r.rx.get("lossy").map_or(0, Vec::len) < BURST {
        r.pump();
    }
    let ids: Vec<u32> =
        r.rx.get("lossy")
            .map(|v| v.iter().map(|m| u32::from_be_bytes([m.1[0], m.1[1], m.1[2], m.1[3]])).collect())
            .unwrap_or_default();
    let mut uniq = ids.clone();
    uniq.sort_unstable();
    uniq.dedup();
    let theirs_ids: Vec<u64> = st["lossy"]["ids"].as_array().unwrap().iter().filter_map(Value::as_u64).collect();
    let mut theirs_uniq = theirs_ids.clone();
    theirs_uniq.sort_unstable();
    theirs_uniq.dedup();
    eprintln!(
        "{test}: lossy channel: {BURST} x {BURST_SIZE} B each way; tinyrtc queued its burst in {queued_in:?}, \
         Chromium in {} ms; tinyrtc got {} ({} out of order), Chromium got {}",
        sent["ms"],
        ids.len(),
        ids.windows(2).filter(|w| w[1] < w[0]).count(),
        theirs_ids.len()
    );
    assert_eq!(uniq.len(), ids.len(), "duplicates on the lossy channel");
    assert!(uniq.iter().all(|&i| (i as usize) < BURST));
    assert!(ids.len() * 10 >= BURST * 9, "tinyrtc got only {} of {BURST}", ids.len());
    assert!(r.rx["lossy"].iter().all(|m| m.0 && m.1.len() == BURST_SIZE && m.1[4..].iter().all(|&b| b == 0)));
    assert_eq!(theirs_uniq.len(), theirs_ids.len(), "Chromium got duplicates");
    assert!(theirs_ids.len() * 10 >= BURST * 9, "Chromium got only {} of {BURST}", theirs_ids.len());
    assert_eq!(st["lossy"]["sizes"], json!([BURST_SIZE]));

    // Chromium closes its channel: both sides see it closed.
    r.call("closeChannel", json!(["from-chromium"]));
    r.pump_until(10, "from-chromium closed here", |r| r.closed.iter().any(|l| l == "from-chromium"));
    r.pump_until(10, "from-chromium closed in Chromium", |r| r.page_saw("dc-close", "from-chromium"));
    // tinyrtc closes its channel: both sides see it closed.
    let now = r.d.now();
    r.d.peer.close_channel(now, ours).unwrap();
    assert_eq!(r.d.peer.send_data(now, ours, true, b"x"), Err(PeerError::Sctp(SctpError::UnknownChannel)));
    r.pump_until(10, "from-tinyrtc closed in Chromium", |r| r.page_saw("dc-close", "from-tinyrtc"));
    r.pump_until(10, "from-tinyrtc closed here", |r| r.closed.iter().any(|l| l == "from-tinyrtc"));
    let st = r.status(false);
    assert_eq!(st["from-chromium"]["state"], "closed");
    assert_eq!(st["from-tinyrtc"]["state"], "closed");
    assert_eq!(st["neg"]["state"], "open");
    assert_eq!(st["lossy"]["state"], "open");
    assert!(!r.closed.iter().any(|l| l == "neg" || l == "lossy"), "{:?}", r.closed);

    // A new channel on the freed slot, with options Chromium reports back.
    let now = r.d.now();
    let timed_cfg =
        ChannelConfig { ordered: false, reliability: Reliability::MaxLifetimeMs(2500), ..ChannelConfig::default() };
    let timed = r.d.peer.open_channel(now, "timed", "t", timed_cfg).unwrap();
    r.labels.insert(timed, "timed".into());
    r.d.peer.send_data(now, timed, false, b"on time").unwrap();
    r.d.peer.send_data(now, NEG_ID, false, b"neg still open").unwrap();
    r.pump_until(10, "timed open", |r| r.d.events.contains(&PeerEvent::ChannelOpen { id: timed, by_remote: false }));
    let st = r.until_page(10, "timed message", |st| st["timed"]["messages"].as_u64() == Some(1));
    assert_eq!(st["timed"]["protocol"], "t");
    assert_eq!(st["timed"]["ordered"], false);
    assert_eq!(st["timed"]["maxPacketLifeTime"].as_u64(), Some(2500));
    assert_eq!(st["timed"]["maxRetransmits"], Value::Null);
    assert_eq!(st["neg"]["texts"].as_u64(), Some(3));
    assert!(r.page_events.iter().any(|e| e["event"] == "dc-message" && e["text"] == "on time"));

    let stats = r.c.stats().unwrap();
    let (local, remote) = selected_pair(&stats).expect("a selected candidate pair");
    for c in [&local, &remote] {
        let a = c["address"].as_str().or(c["ip"].as_str()).unwrap_or_default();
        assert_eq!(a, "127.0.0.1", "selected pair not loopback: {local} / {remote}");
    }
}

#[test]
fn a_tinyrtc_offers() {
    let test = "datachannel_chromium::a_tinyrtc_offers";
    let Some(c) = Chromium::launch(test) else { return };
    let mut r = Run::new(test, c, 501);
    let mut sdp = vec![0u8; 8192];
    let n = r.d.peer.create_offer(&mut sdp).unwrap();
    let offer = std::str::from_utf8(&sdp[..n]).unwrap().to_string();
    assert!(offer.contains("m=application"));
    let answer = r.call("answer", json!([offer, {"gather": true}]));
    let answer = answer.as_str().expect("answer SDP").to_string();
    assert!(answer.contains("m=application"), "Chromium accepted the data channel section");
    let mut rng = ChaCha20Rng::seed_from_u64(502);
    let now = r.d.now();
    r.d.peer.set_remote_answer(now, &answer, &mut rng).unwrap();
    let t0 = StdInstant::now();
    r.d.connect(Duration::from_secs(20));
    let connect_ms = t0.elapsed().as_millis();
    let ours = open_ours(&mut r);
    for ch in chromium_channels().as_array().unwrap() {
        r.call("createChannel", json!([ch["label"], ch["init"]]));
    }
    exchange(&mut r, ours, connect_ms);
}

#[test]
fn b_chromium_offers() {
    let test = "datachannel_chromium::b_chromium_offers";
    let Some(c) = Chromium::launch(test) else { return };
    let mut r = Run::new(test, c, 601);
    let offer =
        r.call("offer", json!([{"video": null, "audio": null, "channels": chromium_channels(), "gather": true}]));
    let offer = offer.as_str().expect("offer SDP").to_string();
    assert!(offer.contains("m=application"));
    let mut rng = ChaCha20Rng::seed_from_u64(602);
    let mut sdp = vec![0u8; 8192];
    let now = r.d.now();
    let n = r.d.peer.accept_offer(now, &offer, &mut sdp, &mut rng).unwrap();
    let answer = std::str::from_utf8(&sdp[..n]).unwrap().to_string();
    // Our channels exist before DTLS is up: the DCEP OPEN waits, the
    // pre-negotiated one opens with the association.
    let ours = open_ours(&mut r);
    let t0 = StdInstant::now();
    r.call("remoteAnswer", json!([answer]));
    r.d.connect(Duration::from_secs(20));
    let connect_ms = t0.elapsed().as_millis();
    exchange(&mut r, ours, connect_ms);
}
