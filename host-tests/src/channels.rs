//! The tinyrtc side of the data-channel interop tests: a [`PeerDriver`] on
//! 127.0.0.1 that reads every message as soon as it arrives, keeps what it
//! got per channel label, and feeds queued messages as the association
//! takes them. Shared by the Chromium and aiortc exchanges (and the byte
//! sequence their scripts generate).

use std::collections::HashMap;
use std::time::{Duration, Instant as StdInstant};

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tinyrtc::peer::{Peer, PeerConfig, PeerError, PeerEvent};
use tinyrtc::sctp::SctpError;

use crate::driver::{loopback_v4, PeerDriver};

/// The pseudo-random byte sequence the page's `bulkBytes` and the aiortc
/// script's `bulk_bytes` make (a 32-bit LCG, top byte of each step).
pub fn bulk_bytes(total: usize, seed: u32) -> Vec<u8> {
    let mut x = seed;
    (0..total)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 24) as u8
        })
        .collect()
}

/// Lower-case hex, as the page's and the script's SHA-256 digests are given.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A data-channel-only `PeerConfig` (no audio or video sections).
pub fn datachannel_only() -> PeerConfig {
    PeerConfig { video_codecs: &[], audio_codecs: &[], datachannel: true, ..PeerConfig::camera() }
}

/// tinyrtc's side of an exchange.
pub struct ChannelSide {
    /// Named in every failure message.
    pub test: &'static str,
    pub d: PeerDriver,
    /// Channel id to label, for every channel seen open (ours too).
    pub labels: HashMap<u16, String>,
    /// Messages received per label: (binary, bytes).
    pub rx: HashMap<String, Vec<(bool, Vec<u8>)>>,
    /// Labels of the channels reported closed, in order.
    pub closed: Vec<String>,
    /// Per channel: (channel id, messages, index of the next one to send).
    pub outbox: Vec<(u16, Vec<Vec<u8>>, usize)>,
    /// How often a send was refused for lack of room (and retried later).
    pub would_block: u64,
    seen_events: usize,
}

impl ChannelSide {
    /// A `Peer` with `config` bound to 127.0.0.1 that accepts loopback
    /// sources only.
    pub fn bind(test: &'static str, config: PeerConfig, seed: u64) -> ChannelSide {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let peer = Peer::new(config, &mut rng);
        let mut d = PeerDriver::bind(peer, "127.0.0.1:0".parse().unwrap()).unwrap();
        d.accept_source = loopback_v4;
        ChannelSide {
            test,
            d,
            labels: HashMap::new(),
            rx: HashMap::new(),
            closed: Vec::new(),
            outbox: Vec::new(),
            would_block: 0,
            seen_events: 0,
        }
    }

    /// Drive the peer ~5 ms, reading every message as soon as it arrives
    /// (the default `Peer` holds one 16 KiB message) and feeding the outbox.
    pub fn pump(&mut self) {
        let end = StdInstant::now() + Duration::from_millis(5);
        while StdInstant::now() < end {
            self.d.turn(Duration::from_millis(1)).unwrap();
            self.process();
        }
    }

    fn process(&mut self) {
        let mut buf = vec![0u8; 64 * 1024];
        for i in self.seen_events..self.d.events.len() {
            match self.d.events[i] {
                PeerEvent::ChannelOpen { id, .. } => {
                    let label = self.d.peer.channel_label(id).unwrap_or("?").to_string();
                    self.labels.insert(id, label);
                }
                PeerEvent::ChannelData { id, binary, len } => {
                    let (rid, rbinary, n) = self.d.peer.read_data(&mut buf).expect("read_data");
                    assert_eq!((rid, rbinary, n), (id, binary, len), "{}: read_data order", self.test);
                    let label = self.label(id);
                    self.rx.entry(label).or_default().push((binary, buf[..n].to_vec()));
                }
                PeerEvent::ChannelClosed { id } => {
                    let label = self.label(id);
                    self.closed.push(label);
                }
                PeerEvent::Failed(f) => panic!("{}: peer failed: {f:?}", self.test),
                PeerEvent::DataTransportLost(r) => panic!("{}: SCTP lost: {r:?}", self.test),
                _ => {}
            }
        }
        self.seen_events = self.d.events.len();
        let now = self.d.now();
        for (id, msgs, next) in &mut self.outbox {
            while *next < msgs.len() {
                match self.d.peer.send_data(now, *id, true, &msgs[*next]) {
                    Ok(()) => *next += 1,
                    Err(PeerError::Sctp(SctpError::WouldBlock)) => {
                        self.would_block += 1;
                        break;
                    }
                    Err(e) => panic!("{}: send_data: {e:?}", self.test),
                }
            }
        }
        self.d.flush().unwrap();
    }

    fn label(&self, id: u16) -> String {
        self.labels.get(&id).cloned().unwrap_or_else(|| format!("#{id}"))
    }

    /// What was received, sent and closed so far, for failure messages.
    pub fn describe(&self) -> String {
        let rx: Vec<(&String, usize, usize)> =
            self.rx.iter().map(|(l, v)| (l, v.len(), v.iter().map(|m| m.1.len()).sum())).collect();
        let tx: Vec<(u16, usize, usize)> = self.outbox.iter().map(|(id, m, n)| (*id, *n, m.len())).collect();
        format!(
            "received {rx:?}, sent {tx:?}, closed {:?}, labels {:?}, stats {:?}",
            self.closed,
            self.labels,
            self.d.peer.stats()
        )
    }

    /// Every queued message was taken by the association.
    pub fn outbox_done(&self) -> bool {
        self.outbox.iter().all(|(_, m, n)| *n == m.len())
    }

    /// Bytes received on the channel labelled `label`.
    pub fn rx_bytes(&self, label: &str) -> usize {
        self.rx.get(label).map(|v| v.iter().map(|m| m.1.len()).sum()).unwrap_or(0)
    }

    /// The id of the open channel labelled `label`.
    pub fn id_of(&self, label: &str) -> Option<u16> {
        self.labels.iter().find(|(_, l)| l.as_str() == label).map(|(id, _)| *id)
    }

    /// Pump until `done`, failing after `secs` seconds with what we have.
    pub fn pump_until(&mut self, secs: u64, what: &str, mut done: impl FnMut(&ChannelSide) -> bool) {
        let deadline = StdInstant::now() + Duration::from_secs(secs);
        while !done(self) {
            assert!(StdInstant::now() < deadline, "{}: timed out waiting for {what}; {}", self.test, self.describe());
            self.pump();
        }
    }
}
