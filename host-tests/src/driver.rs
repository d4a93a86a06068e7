//! A std driver for a [`Peer`]: one UDP socket, the real monotonic clock,
//! and the sans-IO loop (feed datagrams and timeouts in, drain transmits
//! and events out).
//!
//! ```no_run
//! use host_tests::driver::PeerDriver;
//! use rand::SeedableRng;
//! use tinyrtc::peer::{Peer, PeerConfig};
//! let mut rng = rand_chacha::ChaCha20Rng::from_entropy();
//! let peer = Peer::new(PeerConfig::camera(), &mut rng);
//! let mut d = PeerDriver::bind(peer, "127.0.0.1:0".parse().unwrap()).unwrap();
//! // ... exchange SDP, then:
//! d.run_for(std::time::Duration::from_millis(100));
//! ```

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant as StdInstant};

use tinyrtc::peer::{MediaPacket, Peer, PeerEvent, PeerState};
use tinyrtc::sdp::MediaKind;
use tinyrtc::Instant;

/// A received media packet with its payload copied out.
#[derive(Debug, Clone)]
pub struct ReceivedMedia {
    pub info: MediaPacket,
    pub payload: Vec<u8>,
}

/// Owns a [`Peer`] and the socket it talks through.
#[derive(Debug)]
pub struct PeerDriver {
    pub peer: Peer,
    pub socket: UdpSocket,
    pub local: SocketAddr,
    start: StdInstant,
    /// Datagrams from sources this returns `false` for are dropped before
    /// the peer sees them (tests use it to keep to loopback).
    pub accept_source: fn(SocketAddr) -> bool,
    /// Events seen so far.
    pub events: Vec<PeerEvent>,
    /// Media received so far (payloads copied).
    pub received: Vec<ReceivedMedia>,
    /// Datagrams dropped by `accept_source`.
    pub foreign_dropped: u64,
    /// Drop every n-th video datagram [`send_frame`](Self::send_frame)
    /// writes (0: none), to make the remote ask for retransmissions.
    pub drop_video_every: u64,
    /// Video datagrams dropped that way.
    pub video_dropped: u64,
    video_written: u64,
    /// Drop every n-th received RTP datagram of the negotiated video
    /// payload type (0: none; retransmissions in RTX form pass), to make
    /// the peer NACK.
    pub drop_received_video_every: u64,
    /// Received video datagrams dropped that way.
    pub received_video_dropped: u64,
    video_arrived: u64,
    buf: Vec<u8>,
}

fn any_source(_: SocketAddr) -> bool {
    true
}

impl PeerDriver {
    /// Bind `addr` and announce it as the peer's host candidate.
    pub fn bind(mut peer: Peer, addr: SocketAddr) -> io::Result<PeerDriver> {
        let socket = UdpSocket::bind(addr)?;
        let local = socket.local_addr()?;
        peer.add_local_candidate(local).map_err(|e| io::Error::other(format!("{e:?}")))?;
        Ok(PeerDriver {
            peer,
            socket,
            local,
            start: StdInstant::now(),
            accept_source: any_source,
            events: Vec::new(),
            received: Vec::new(),
            foreign_dropped: 0,
            drop_video_every: 0,
            video_dropped: 0,
            video_written: 0,
            drop_received_video_every: 0,
            received_video_dropped: 0,
            video_arrived: 0,
            buf: vec![0u8; 2048],
        })
    }

    /// The peer's clock: microseconds since the driver started.
    pub fn now(&self) -> Instant {
        Instant::from_micros(self.start.elapsed().as_micros() as u64)
    }

    /// Send everything the peer has queued.
    pub fn flush(&mut self) -> io::Result<()> {
        let now = self.now();
        while let Some(t) = self.peer.poll_transmit(now, &mut self.buf) {
            self.socket.send_to(&self.buf[..t.len], t.destination)?;
        }
        while let Some(e) = self.peer.poll_event() {
            self.events.push(e);
        }
        Ok(())
    }

    /// One turn of the loop: flush, wait for a datagram (at most until the
    /// peer's next timeout or `max_wait`), handle it or the timeout, flush.
    pub fn turn(&mut self, max_wait: Duration) -> io::Result<()> {
        self.flush()?;
        let now = self.now();
        let wait = match self.peer.poll_timeout() {
            Some(t) => Duration::from_micros(t.as_micros().saturating_sub(now.as_micros())).min(max_wait),
            None => max_wait,
        };
        self.socket.set_read_timeout(Some(wait.max(Duration::from_micros(200))))?;
        let mut rx = [0u8; 2048];
        match self.socket.recv_from(&mut rx) {
            Ok((n, from)) => {
                if self.drop_received(&rx[..n]) {
                    self.received_video_dropped += 1;
                } else if (self.accept_source)(from) {
                    let now = self.now();
                    if let Ok(Some(m)) = self.peer.handle_receive(now, from, &mut rx[..n]) {
                        let payload = rx[m.payload_offset..][..m.payload_len].to_vec();
                        self.received.push(ReceivedMedia { info: m, payload });
                    }
                    // Video held back after a gap (now filled or given up).
                    while let Some(m) = self.peer.poll_media(&mut rx) {
                        let payload = rx[m.payload_offset..][..m.payload_len].to_vec();
                        self.received.push(ReceivedMedia { info: m, payload });
                    }
                } else {
                    self.foreign_dropped += 1;
                }
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) => return Err(e),
        }
        let now = self.now();
        if self.peer.poll_timeout().is_some_and(|t| t <= now) {
            self.peer.handle_timeout(now);
            while let Some(m) = self.peer.poll_media(&mut rx) {
                let payload = rx[m.payload_offset..][..m.payload_len].to_vec();
                self.received.push(ReceivedMedia { info: m, payload });
            }
        }
        self.flush()
    }

    /// Whether to drop this received datagram (`drop_received_video_every`):
    /// RTP (RFC 5761 demultiplexing) of the video payload type.
    fn drop_received(&mut self, d: &[u8]) -> bool {
        let Some((_, video_pt)) = self.peer.codec(MediaKind::Video) else { return false };
        let rtp = d.len() >= 12 && (128..192).contains(&d[0]) && !(192..=223).contains(&d[1]);
        if self.drop_received_video_every == 0 || !rtp || d[1] & 0x7f != video_pt {
            return false;
        }
        self.video_arrived += 1;
        self.video_arrived.is_multiple_of(self.drop_received_video_every)
    }

    /// Run the loop for `d` of real time.
    pub fn run_for(&mut self, d: Duration) {
        let end = StdInstant::now() + d;
        while StdInstant::now() < end {
            let left = end.saturating_duration_since(StdInstant::now());
            if let Err(e) = self.turn(left.min(Duration::from_millis(20))) {
                panic!("driver socket error: {e}");
            }
        }
    }

    /// Run until the peer is connected; panics with its stats and events if
    /// it fails or `timeout` passes first.
    pub fn connect(&mut self, timeout: Duration) {
        let end = StdInstant::now() + timeout;
        while self.peer.state() != PeerState::Connected
            && self.peer.state() != PeerState::Closed
            && StdInstant::now() < end
        {
            self.run_for(Duration::from_millis(10));
        }
        assert_eq!(
            self.peer.state(),
            PeerState::Connected,
            "not connected within {timeout:?}: {:?} events {:?}",
            self.peer.stats(),
            self.events
        );
    }

    /// Packetize, protect and send one frame.
    pub fn send_frame(&mut self, kind: MediaKind, frame: &[u8], rtp_timestamp: u32) -> io::Result<usize> {
        let now = self.now();
        let mut out = vec![0u8; 2048];
        let mut sent = 0;
        let mut w = self
            .peer
            .send_frame(now, kind, frame, rtp_timestamp)
            .map_err(|e| io::Error::other(format!("send_frame: {e:?}")))?;
        while let Some(t) = w.next_packet(&mut out) {
            let t = t.map_err(|e| io::Error::other(format!("packet: {e:?}")))?;
            if kind == MediaKind::Video {
                self.video_written += 1;
                if self.drop_video_every > 0 && self.video_written.is_multiple_of(self.drop_video_every) {
                    self.video_dropped += 1;
                    continue;
                }
            }
            self.socket.send_to(&out[..t.len], t.destination)?;
            sent += 1;
        }
        Ok(sent)
    }
}

/// Keep only 127.0.0.1 sources.
pub fn loopback_v4(addr: SocketAddr) -> bool {
    match addr {
        SocketAddr::V4(a) => a.ip().is_loopback(),
        SocketAddr::V6(_) => false,
    }
}
