//! tinyrtc `Peer` data channels against aiortc (PyPI, `host-tests/.venv`)
//! on 127.0.0.1, SDP over the script's stdin/stdout
//! (`host-tests/py/aiortc_peer.py`).
//!
//! Both directions of offer (a: tinyrtc offers; b: aiortc offers with its
//! channels in place before the offer). In each (the exchange of
//! `datachannel_chromium.rs`):
//! - tinyrtc opens `from-tinyrtc` (protocol `tinyrtc-bulk`); aiortc opens
//!   `from-aiortc` (reliable, ordered, protocol `aiortc-bulk`) and `lossy`
//!   (unordered, maxRetransmits=0); both open `neg`, pre-negotiated on stream
//!   42. All open on both sides (DCEP, RFC 8832), each side checks the
//!   options the other announced.
//! - On `neg`: text, empty text, binary and empty binary each way keep their
//!   kind and content.
//! - 1 MiB of pseudo-random bytes in 16 KiB binary messages crosses each way
//!   at the same time; tinyrtc compares what it got byte for byte, aiortc's
//!   SHA-256 of what it got is compared with ours.
//! - `lossy` carries 200 numbered 1000-byte messages each way: sends never
//!   stall, at least 90% arrive (loopback: normally all), no duplicates.
//! - aiortc closes `from-aiortc`: tinyrtc reports the channel closed (stream
//!   reset, RFC 8831 section 6.7), aiortc sees it closed too; then tinyrtc
//!   closes `from-tinyrtc`, seen closed on both sides; `neg` and `lossy`
//!   stay open.
//! - tinyrtc opens `timed` (unordered, max-packet-lifetime 2500 ms, protocol
//!   `t`) on the freed slot: aiortc reports those options and the message.
//!
//! aiortc's SCTP sender does not honour the receiver's advertised window
//! (a_rwnd, see `send_paced` in the script) and the default `Peer` receives
//! into a 16 KiB buffer: the test reads every message as soon as a datagram
//! is handled. aiortc's sends are not paced here.

use std::time::{Duration, Instant as StdInstant};

use host_tests::aiortc::{json, Aiortc, Value};
use host_tests::channels::{bulk_bytes, datachannel_only, hex, ChannelSide};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tinyrtc::peer::{ChannelConfig, PeerError, PeerEvent, Reliability};
use tinyrtc::sctp::SctpError;

const BULK: usize = 1 << 20;
const CHUNK: usize = 16 * 1024;
const BURST: usize = 200;
const BURST_SIZE: usize = 1000;
const SEED_US: u32 = 7;
const SEED_THEM: u32 = 9;
const NEG_ID: u16 = 42;

fn call(a: &mut Aiortc, s: &mut ChannelSide, name: &str, args: Value, secs: u64) -> Value {
    match a.call_with(name, args, Duration::from_secs(secs), || s.pump()) {
        Ok(v) => v,
        Err(e) => {
            let st = a.call("stats", Value::Null).unwrap_or_default();
            panic!("aiortc {e}; ours: {}; aiortc: {st}", s.describe())
        }
    }
}

fn wait(a: &mut Aiortc, s: &mut ChannelSide, what: &str, at_least: usize, secs: u64) -> Value {
    call(a, s, "wait", json!({"what": what, "at_least": at_least, "timeout": secs}), secs + 10)
}

fn aiortc_channels() -> Value {
    json!([
        {"label": "from-aiortc", "ordered": true, "protocol": "aiortc-bulk"},
        {"label": "lossy", "ordered": false, "max_retransmits": 0},
        {"label": "neg", "negotiated": true, "id": NEG_ID},
    ])
}

/// Our channels: `from-tinyrtc` by DCEP and `neg` pre-negotiated (both may
/// be opened before DTLS is up).
fn open_ours(s: &mut ChannelSide) -> u16 {
    let now = s.d.now();
    let ours = s.d.peer.open_channel(now, "from-tinyrtc", "tinyrtc-bulk", ChannelConfig::default()).unwrap();
    s.labels.insert(ours, "from-tinyrtc".into());
    let neg = ChannelConfig { negotiated: Some(NEG_ID), ..ChannelConfig::default() };
    assert_eq!(s.d.peer.open_channel(now, "neg", "", neg), Ok(NEG_ID));
    s.labels.insert(NEG_ID, "neg".into());
    ours
}

fn exchange(test: &str, a: &mut Aiortc, s: &mut ChannelSide, ours: u16, connect_ms: u128) {
    // Every channel open on both sides, with the options its opener chose.
    s.pump_until(10, "channels open", |s| {
        s.d.events.contains(&PeerEvent::ChannelOpen { id: ours, by_remote: false })
            && s.d.events.contains(&PeerEvent::ChannelOpen { id: NEG_ID, by_remote: false })
            && s.id_of("from-aiortc").is_some()
            && s.id_of("lossy").is_some()
    });
    let st = wait(a, s, "opened:from-tinyrtc", 1, 10);
    let theirs = s.id_of("from-aiortc").unwrap();
    let lossy = s.id_of("lossy").unwrap();
    assert!(s.d.events.contains(&PeerEvent::ChannelOpen { id: theirs, by_remote: true }));
    // DTLS client uses even stream ids, the server odd ones (RFC 8832 section 6).
    assert_ne!(ours % 2, theirs % 2, "stream id parity: ours {ours}, aiortc's {theirs}");
    let opts = &st["options"];
    assert_eq!(opts["from-tinyrtc"]["id"].as_u64(), Some(u64::from(ours)));
    assert_eq!(opts["from-tinyrtc"]["protocol"], "tinyrtc-bulk");
    assert_eq!(opts["from-tinyrtc"]["ordered"], true);
    assert_eq!(opts["from-tinyrtc"]["max_retransmits"], Value::Null);
    assert_eq!(opts["neg"]["negotiated"], true);
    assert_eq!(s.d.peer.channel_protocol(theirs), Some("aiortc-bulk"));
    let cfg = s.d.peer.channel_config(lossy).unwrap();
    assert_eq!((cfg.ordered, cfg.reliability), (false, Reliability::MaxRetransmits(0)));

    // Message kinds on the pre-negotiated channel, both ways.
    let now = s.d.now();
    for (binary, m) in [(false, &b"hello aiortc"[..]), (false, b""), (true, &[1, 2, 3][..]), (true, b"")] {
        s.d.peer.send_data(now, NEG_ID, binary, m).unwrap();
    }
    for args in [
        json!({"label": "neg", "text": "hello tinyrtc"}),
        json!({"label": "neg", "text": ""}),
        json!({"label": "neg", "bytes": [4, 5]}),
        json!({"label": "neg", "bytes": []}),
    ] {
        call(a, s, "send", args, 10);
    }
    s.pump_until(10, "4 messages on neg", |s| s.rx.get("neg").map_or(0, Vec::len) >= 4);
    let kinds: Vec<(bool, Vec<u8>)> = s.rx["neg"].iter().map(|m| (m.0, m.1.clone())).collect();
    assert_eq!(
        kinds,
        vec![(false, b"hello tinyrtc".to_vec()), (false, vec![]), (true, vec![4, 5]), (true, vec![])],
        "kinds and bytes from aiortc"
    );
    let st = wait(a, s, "rx_messages:neg", 4, 10);
    assert_eq!(
        st["received"]["neg"]["first"],
        json!([{"text": "hello aiortc"}, {"text": ""}, {"bytes": [1, 2, 3]}, {"bytes": []}]),
        "kinds and bytes aiortc got"
    );

    // 1 MiB each way at once.
    let mine = bulk_bytes(BULK, SEED_US);
    s.outbox.push((ours, mine.chunks(CHUNK).map(<[u8]>::to_vec).collect(), 0));
    let t0 = StdInstant::now();
    let r =
        call(a, s, "send_bulk", json!({"label": "from-aiortc", "total": BULK, "chunk": CHUNK, "seed": SEED_THEM}), 40);
    s.pump_until(30, "1 MiB from aiortc", |s| s.rx_bytes("from-aiortc") >= BULK && s.outbox_done());
    let st = wait(a, s, "rx_bytes:from-tinyrtc", BULK, 30);
    let secs = t0.elapsed().as_secs_f64();
    let got: Vec<u8> = s.rx["from-aiortc"].iter().flat_map(|m| m.1.iter().copied()).collect();
    let sizes_ok = s.rx["from-aiortc"].iter().all(|m| m.0 && m.1.len() == CHUNK);
    let theirs_rx = &st["received"]["from-tinyrtc"];
    eprintln!(
        "{test}: connected in {connect_ms} ms; 1 MiB each way in {secs:.2} s ({:.1} Mbit/s total); \
         tinyrtc got {} bytes in {} messages, aiortc got {} bytes in {} messages; send WouldBlock {} times",
        2.0 * BULK as f64 * 8.0 / secs / 1e6,
        got.len(),
        s.rx["from-aiortc"].len(),
        theirs_rx["bytes"],
        theirs_rx["messages"],
        s.would_block,
    );
    assert!(got == bulk_bytes(BULK, SEED_THEM), "bytes from aiortc differ");
    assert!(sizes_ok, "message boundaries kept (all {CHUNK} bytes)");
    assert_eq!(r["sha256"].as_str().unwrap(), hex(&tinyrtc::crypto::sha256(&[&got])));
    assert_eq!(theirs_rx["bytes"].as_u64(), Some(BULK as u64));
    assert_eq!(theirs_rx["messages"].as_u64(), Some((BULK / CHUNK) as u64));
    assert_eq!(
        theirs_rx["sha256"].as_str().unwrap(),
        hex(&tinyrtc::crypto::sha256(&[&mine])),
        "bytes aiortc got from tinyrtc differ"
    );

    // Unordered, no retransmissions: numbered messages each way.
    let burst: Vec<Vec<u8>> = (0..BURST as u32)
        .map(|i| {
            let mut m = vec![0xa5u8; BURST_SIZE];
            m[..4].copy_from_slice(&i.to_be_bytes());
            m
        })
        .collect();
    s.outbox.push((lossy, burst, 0));
    let t1 = StdInstant::now();
    call(a, s, "send_burst", json!({"label": "lossy", "count": BURST, "size": BURST_SIZE}), 20);
    s.pump_until(10, "lossy burst sent", ChannelSide::outbox_done);
    let sent_in = t1.elapsed();
    let st = wait(a, s, "rx_messages:lossy", BURST, 3);
    // Give stragglers a moment on our side too.
    let deadline = StdInstant::now() + Duration::from_secs(3);
    while StdInstant::now() < deadline && s.rx.get("lossy").map_or(0, Vec::len) < BURST {
        s.pump();
    }
    let ids: Vec<u32> =
        s.rx.get("lossy")
            .map(|v| v.iter().map(|m| u32::from_be_bytes([m.1[0], m.1[1], m.1[2], m.1[3]])).collect())
            .unwrap_or_default();
    let mut uniq = ids.clone();
    uniq.sort_unstable();
    uniq.dedup();
    let theirs_ids: Vec<u64> =
        st["received"]["lossy"]["ids"].as_array().unwrap().iter().filter_map(Value::as_u64).collect();
    let mut theirs_uniq = theirs_ids.clone();
    theirs_uniq.sort_unstable();
    theirs_uniq.dedup();
    let reordered = ids.windows(2).filter(|w| w[1] < w[0]).count();
    eprintln!(
        "{test}: lossy channel: {BURST} x {BURST_SIZE} B each way, queued in {sent_in:?}; tinyrtc got {} ({} out of order), \
         aiortc got {}",
        ids.len(),
        reordered,
        theirs_ids.len()
    );
    assert_eq!(uniq.len(), ids.len(), "duplicates on the lossy channel");
    assert!(uniq.iter().all(|&i| (i as usize) < BURST));
    assert!(ids.len() * 10 >= BURST * 9, "tinyrtc got only {} of {BURST}", ids.len());
    assert_eq!(theirs_uniq.len(), theirs_ids.len(), "aiortc got duplicates");
    assert!(theirs_ids.len() * 10 >= BURST * 9, "aiortc got only {} of {BURST}", theirs_ids.len());
    assert!(s.rx["lossy"].iter().all(|m| m.0 && m.1.len() == BURST_SIZE && m.1[4..].iter().all(|&b| b == 0)));

    // aiortc closes its channel: both sides see it closed.
    call(a, s, "close_channel", json!({"label": "from-aiortc"}), 10);
    s.pump_until(10, "from-aiortc closed", |s| s.closed.iter().any(|l| l == "from-aiortc"));
    let st = wait(a, s, "closed:from-aiortc", 1, 10);
    assert_eq!(st["states"]["from-aiortc"], "closed");
    assert!(!s.closed.iter().any(|l| l == "from-tinyrtc"), "our channel must stay open");
    // Our channel still works after the other one closed.
    let now = s.d.now();
    s.d.peer.send_data(now, ours, true, b"still open").unwrap();
    let st = wait(a, s, "rx_messages:from-tinyrtc", BULK / CHUNK + 1, 10);
    assert_eq!(st["received"]["from-tinyrtc"]["messages"].as_u64(), Some((BULK / CHUNK + 1) as u64));
    assert_eq!(st["states"]["from-tinyrtc"], "open");

    // tinyrtc closes its channel: both sides see it closed.
    let now = s.d.now();
    s.d.peer.close_channel(now, ours).unwrap();
    assert_eq!(s.d.peer.send_data(now, ours, true, b"x"), Err(PeerError::Sctp(SctpError::UnknownChannel)));
    s.pump_until(10, "from-tinyrtc closed", |s| s.closed.iter().any(|l| l == "from-tinyrtc"));
    let st = wait(a, s, "closed:from-tinyrtc", 1, 10);
    assert_eq!(st["states"]["from-tinyrtc"], "closed");
    assert_eq!(st["states"]["neg"], "open");
    assert_eq!(st["states"]["lossy"], "open");
    assert!(!s.closed.iter().any(|l| l == "neg" || l == "lossy"), "{:?}", s.closed);

    // A new channel on the freed slot, with options aiortc reports back.
    let now = s.d.now();
    let timed_cfg =
        ChannelConfig { ordered: false, reliability: Reliability::MaxLifetimeMs(2500), ..ChannelConfig::default() };
    let timed = s.d.peer.open_channel(now, "timed", "t", timed_cfg).unwrap();
    s.labels.insert(timed, "timed".into());
    s.d.peer.send_data(now, timed, false, b"on time").unwrap();
    let st = wait(a, s, "rx_messages:timed", 1, 10);
    let opts = &st["options"]["timed"];
    assert_eq!(
        (&opts["protocol"], &opts["ordered"], &opts["max_packet_lifetime"], &opts["max_retransmits"]),
        (&json!("t"), &json!(false), &json!(2500), &Value::Null)
    );
    assert_eq!(st["received"]["timed"]["first"], json!([{"text": "on time"}]));
}

#[test]
fn a_tinyrtc_offers() {
    let test = "datachannel_aiortc::a_tinyrtc_offers";
    let Some(mut a) = Aiortc::launch(test) else { return };
    let mut s = ChannelSide::bind(test, datachannel_only(), 301);
    let mut sdp = vec![0u8; 8192];
    let n = s.d.peer.create_offer(&mut sdp).unwrap();
    let offer = std::str::from_utf8(&sdp[..n]).unwrap().to_string();
    assert!(offer.contains("m=application"));
    let answer = a.call("answer", json!({"sdp": offer})).unwrap();
    let answer = answer.as_str().expect("answer SDP").to_string();
    assert!(answer.contains("m=application"), "aiortc accepted the data channel section");
    let mut rng = ChaCha20Rng::seed_from_u64(302);
    let now = s.d.now();
    s.d.peer.set_remote_answer(now, &answer, &mut rng).unwrap();
    let t0 = StdInstant::now();
    s.d.connect(Duration::from_secs(20));
    let connect_ms = t0.elapsed().as_millis();
    let ours = open_ours(&mut s);
    for ch in aiortc_channels().as_array().unwrap() {
        let args = ch.clone();
        call(&mut a, &mut s, "open_channel", args, 10);
    }
    exchange(test, &mut a, &mut s, ours, connect_ms);
}

#[test]
fn b_aiortc_offers() {
    let test = "datachannel_aiortc::b_aiortc_offers";
    let Some(mut a) = Aiortc::launch(test) else { return };
    let offer = a.call("offer", json!({"channels": aiortc_channels()})).unwrap();
    let offer = offer.as_str().expect("offer SDP").to_string();
    assert!(offer.contains("m=application"));
    let mut s = ChannelSide::bind(test, datachannel_only(), 401);
    let mut rng = ChaCha20Rng::seed_from_u64(402);
    let mut sdp = vec![0u8; 8192];
    let now = s.d.now();
    let n = s.d.peer.accept_offer(now, &offer, &mut sdp, &mut rng).unwrap();
    let answer = std::str::from_utf8(&sdp[..n]).unwrap().to_string();
    // Our channels exist before DTLS is up.
    let ours = open_ours(&mut s);
    let t0 = StdInstant::now();
    call(&mut a, &mut s, "remote_answer", json!({"sdp": answer}), 20);
    s.d.connect(Duration::from_secs(20));
    let connect_ms = t0.elapsed().as_millis();
    exchange(test, &mut a, &mut s, ours, connect_ms);
}
