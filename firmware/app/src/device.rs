//! The device: up to `N` viewers (one [`Peer`] each) on one UDP socket,
//! fed by one camera ([`FrameSource`]), one sensor and one stored clip.
//!
//! Sans-IO like the core: the caller owns the socket, the clock and the
//! randomness. After [`Device::handle_receive`], [`Device::handle_timeout`]
//! or a signaling call, drain [`Device::poll_transmit`] and
//! [`Device::poll_event`] until `None`, then sleep until
//! [`Device::poll_timeout`] or the next datagram.
//!
//! Demultiplexing (one socket for all viewers): a STUN message goes to the
//! viewer whose ICE ufrag is the first half of its USERNAME (RFC 8445
//! section 7.2.2); anything else goes to the viewer whose selected remote
//! address sent it (ICE authenticated that address first).
//!
//! Video: every frame interval the next frame is packetized and protected
//! once per connected viewer into a staging area ([`STAGING_LEN`] bytes)
//! and handed out by `poll_transmit`. A viewer that joins mid-stream starts
//! at the next keyframe.
//!
//! Data: the viewer opens data channels (RFC 8831) labelled
//! [`SENSOR_CHANNEL`] and [`FILES_CHANNEL`]. Every [`SENSOR_INTERVAL`] one
//! reading goes to each viewer's sensor channel as a JSON line (a reading
//! that does not fit the channel's send buffer is skipped for that viewer).
//! On the files channel a viewer asks for the clip ([`crate::files`]); the
//! transfer advances as the channel's send buffer drains.

use core::net::SocketAddr;

use heapless::{Deque, String, Vec};
use rand_core::{CryptoRng, RngCore};
use tinyrtc::dtls::DtlsIdentity;
use tinyrtc::peer::{PeerConfig, PeerError, PeerEvent, PeerFailure, PeerState, PeerStats, DEFAULT_CHANNEL_BUFFER};
use tinyrtc::sctp::SctpError;
use tinyrtc::sdp::{MediaKind, SessionDescription};
use tinyrtc::stun::Message;
use tinyrtc::time::{Duration, Instant};
use tinyrtc::Transmit;

use crate::files::{self, FileMessage, FileRequest, FileTransfer, StoredFile};
use crate::frames::{FrameFormat, FramePacer, FrameSource};
use crate::sensor::{self, Reading, SensorModel};

/// One viewer's session: the default `tinyrtc::peer::Peer` bounds without
/// its video loss-recovery buffers (send history and reordering buffer,
/// 78 KB): the device keeps each viewer at its earlier size.
pub type Peer = tinyrtc::peer::PeerN<
    { tinyrtc::dtls::DEFAULT_HANDSHAKE_BUFFER },
    { tinyrtc::dtls::DEFAULT_FLIGHT_BUFFER },
    { tinyrtc::dtls::DEFAULT_APP_BUFFER },
    { tinyrtc::srtp::DEFAULT_STREAMS },
    DEFAULT_CHANNEL_BUFFER,
    { tinyrtc::peer::DEFAULT_CHANNELS },
    { tinyrtc::peer::DEFAULT_SCTP_CHUNKS },
    0,
    0,
>;

/// Default bound on simultaneous viewers. Each viewer is one [`Peer`]
/// (`size_of::<Peer>()` is about 61 KB on 64-bit hosts with data channels;
/// the whole `Device` with 2 viewers about 159 KB, printed by
/// `cargo test -p device-app --test device sizes -- --nocapture`).
pub const MAX_VIEWERS: usize = 2;

/// Bytes staged for one frame to all viewers (SRTP datagrams of up to the
/// MTU each; a frame needs its size plus ~2 % plus one MTU of room per viewer).
pub const STAGING_LEN: usize = 16 * 1024;

/// Most datagrams staged at once (8 bytes of bookkeeping each).
pub const MAX_STAGED: usize = 32;

/// Events waiting for `poll_event`.
pub const DEVICE_EVENTS: usize = 16;

/// A viewer that has not connected (ICE + DTLS) this long after its offer
/// is dropped, freeing its slot.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Interval between sensor readings.
pub const SENSOR_INTERVAL: Duration = Duration::from_secs(1);

/// Label of the data channel carrying sensor readings.
pub const SENSOR_CHANNEL: &str = "sensor";
/// Label of the data channel carrying file transfers.
pub const FILES_CHANNEL: &str = "files";

/// Buffer for reading a viewer's data channel message: the `Peer`'s
/// receive buffer, so any message it accepts fits (16 KiB in the device).
pub const RX_BUFFER: usize = DEFAULT_CHANNEL_BUFFER;

/// Largest datagram the device writes (the `Peer` default MTU).
pub const MTU: usize = 1200;

/// Identifies a viewer for signaling (WHEP resource) and stats.
pub type ViewerId = u32;

/// Why a signaling call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceError {
    /// All viewer slots are taken (HTTP 503).
    Full,
    /// No viewer with this id.
    UnknownViewer,
    /// The frame source's format cannot be sent by the `Peer` yet.
    UnsupportedFormat,
    /// The offer or answer was refused by the session (HTTP 400).
    Peer(PeerError),
}

impl From<PeerError> for DeviceError {
    fn from(e: PeerError) -> Self {
        DeviceError::Peer(e)
    }
}

/// Why a viewer left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveReason {
    /// Hung up by signaling ([`Device::remove_viewer`]).
    HungUp,
    /// Never connected within [`CONNECT_TIMEOUT`].
    ConnectTimeout,
    /// The session failed (DTLS error, consent lost, remote closed).
    Failed(PeerFailure),
}

/// What happened, for the caller's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceEvent {
    ViewerConnected {
        id: ViewerId,
        remote: SocketAddr,
    },
    ViewerLeft {
        id: ViewerId,
        reason: LeaveReason,
    },
    /// A sensor reading was taken (delivered to viewers with a data channel).
    Reading(Reading),
}

/// Device-wide counters (plain data).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceStats {
    /// Frames taken from the source.
    pub frames: u64,
    /// Frames (or their tails) not sent to a viewer because the staging
    /// area was full.
    pub frames_truncated: u64,
    /// Sensor readings taken.
    pub readings: u64,
    /// Datagrams that matched no viewer.
    pub datagrams_unmatched: u64,
    /// Offers refused because every slot was taken.
    pub viewers_refused: u64,
    /// Data channels opened by viewers (any label).
    pub channels_opened: u64,
    /// Data channel messages received from viewers.
    pub channel_messages: u64,
}

/// One viewer's numbers, for printing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewerStats {
    pub id: ViewerId,
    /// Since the offer was accepted.
    pub age: Duration,
    pub peer: PeerStats,
    /// Sensor readings queued on the viewer's sensor channel.
    pub readings_sent: u64,
    /// Readings skipped because the channel's send buffer was full.
    pub readings_skipped: u64,
    /// File bytes queued on the files channel, and completed transfers.
    pub file_bytes_sent: u64,
    pub files_sent: u32,
}

#[derive(Debug)]
struct Viewer<'a> {
    id: ViewerId,
    peer: Peer,
    ufrag: String<{ tinyrtc::peer::MAX_UFRAG_LEN }>,
    remote: Option<SocketAddr>,
    created: Instant,
    connected: bool,
    /// Waiting for a keyframe before sending video.
    needs_keyframe: bool,
    /// Hung up: drain what the peer still sends (close_notify), then free.
    closing: Option<LeaveReason>,
    sensor_channel: Option<u16>,
    files_channel: Option<u16>,
    transfer: Option<FileTransfer<'a>>,
    /// An error answer to send on the files channel.
    files_error: bool,
    readings_sent: u64,
    readings_skipped: u64,
    file_bytes_sent: u64,
    files_sent: u32,
}

#[derive(Debug, Clone, Copy)]
struct Staged {
    destination: SocketAddr,
    start: u16,
    len: u16,
}

/// The device application with `N` viewer slots.
pub struct Device<'a, S: FrameSource, const N: usize = MAX_VIEWERS> {
    viewers: [Option<Viewer<'a>>; N],
    identity: DtlsIdentity,
    local: Vec<SocketAddr, { tinyrtc::peer::MAX_LOCAL_CANDIDATES }>,
    config: PeerConfig,
    source: S,
    pacer: FramePacer,
    sensor: SensorModel,
    next_reading: Option<Instant>,
    started: Option<Instant>,
    clip: StoredFile<'a>,
    next_id: ViewerId,
    staging: [u8; STAGING_LEN],
    rx: [u8; RX_BUFFER],
    staged: Deque<Staged, MAX_STAGED>,
    staged_end: usize,
    events: Deque<DeviceEvent, DEVICE_EVENTS>,
    stats: DeviceStats,
}

impl<S: FrameSource, const N: usize> core::fmt::Debug for Device<'_, S, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Device").field("viewers", &self.viewer_count()).field("stats", &self.stats).finish()
    }
}

/// The session configuration for a camera viewer: send-only video, a data
/// channel, no audio.
pub const VIEWER_CONFIG: PeerConfig = PeerConfig { audio_codecs: &[], ..PeerConfig::camera() };

/// For publishing (WHIP): send-only video only.
pub const PUBLISH_CONFIG: PeerConfig = PeerConfig { audio_codecs: &[], datachannel: false, ..PeerConfig::camera() };

impl<'a, S: FrameSource, const N: usize> Device<'a, S, N> {
    /// A device with one DTLS identity for all its sessions (making a
    /// certificate is slow on an MCU), the camera `source`, the stored
    /// `clip` and a sensor seed.
    pub fn new(identity: DtlsIdentity, source: S, clip: &'a [u8], sensor_seed: u32) -> Self {
        let pacer = FramePacer::new(source.frame_interval());
        Device {
            viewers: core::array::from_fn(|_| None),
            identity,
            local: Vec::new(),
            config: VIEWER_CONFIG,
            source,
            pacer,
            sensor: SensorModel::new(sensor_seed),
            next_reading: None,
            started: None,
            clip: StoredFile::new(clip),
            next_id: 1,
            staging: [0; STAGING_LEN],
            rx: [0; RX_BUFFER],
            staged: Deque::new(),
            staged_end: 0,
            events: Deque::new(),
            stats: DeviceStats::default(),
        }
    }

    /// Announce the address of the UDP socket (a host candidate). Call once
    /// per local address before taking viewers.
    pub fn add_local_address(&mut self, addr: SocketAddr) -> Result<(), DeviceError> {
        self.local.push(addr).map_err(|_| DeviceError::Peer(PeerError::TooManyCandidates))
    }

    /// The stored clip served on the "files" channel.
    pub fn clip(&self) -> &StoredFile<'a> {
        &self.clip
    }

    pub fn stats(&self) -> DeviceStats {
        self.stats
    }

    /// Viewers in a slot (connecting, connected or closing).
    pub fn viewer_count(&self) -> usize {
        self.viewers.iter().flatten().count()
    }

    /// Per-viewer numbers at `now`.
    pub fn viewer_stats(&self, now: Instant) -> impl Iterator<Item = ViewerStats> + '_ {
        self.viewers.iter().flatten().map(move |v| ViewerStats {
            id: v.id,
            age: now.saturating_duration_since(v.created),
            peer: v.peer.stats(),
            readings_sent: v.readings_sent,
            readings_skipped: v.readings_skipped,
            file_bytes_sent: v.file_bytes_sent,
            files_sent: v.files_sent,
        })
    }

    fn start_clock(&mut self, now: Instant) {
        if self.started.is_none() {
            self.started = Some(now);
            self.pacer.start(now);
            self.next_reading = Some(now);
        }
    }

    fn free_slot(&mut self) -> Result<usize, DeviceError> {
        match self.viewers.iter().position(Option::is_none) {
            Some(i) => Ok(i),
            None => {
                self.stats.viewers_refused += 1;
                Err(DeviceError::Full)
            }
        }
    }

    fn new_peer(&self, config: PeerConfig, rng: &mut (impl RngCore + CryptoRng)) -> Result<Peer, DeviceError> {
        if self.source.format() != FrameFormat::H264AnnexB {
            return Err(DeviceError::UnsupportedFormat);
        }
        let mut peer = Peer::with_identity(config, self.identity.clone(), rng);
        for a in &self.local {
            peer.add_local_candidate(*a)?;
        }
        Ok(peer)
    }

    fn insert(&mut self, slot: usize, now: Instant, peer: Peer, sdp: &[u8]) -> ViewerId {
        let ufrag = core::str::from_utf8(sdp)
            .ok()
            .and_then(|s| SessionDescription::parse(s).ok())
            .and_then(|d| d.transport_for(0).ice_ufrag.and_then(|u| String::try_from(u).ok()))
            .unwrap_or_default();
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        if let Some(s) = self.viewers.get_mut(slot) {
            *s = Some(Viewer {
                id,
                peer,
                ufrag,
                remote: None,
                created: now,
                connected: false,
                needs_keyframe: true,
                closing: None,
                sensor_channel: None,
                files_channel: None,
                transfer: None,
                files_error: false,
                readings_sent: 0,
                readings_skipped: 0,
                file_bytes_sent: 0,
                files_sent: 0,
            });
        }
        id
    }

    /// A viewer's offer (WHEP POST): on success writes the answer into
    /// `answer` and returns the new viewer's id and the answer's length.
    pub fn add_viewer(
        &mut self,
        now: Instant,
        offer: &str,
        answer: &mut [u8],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(ViewerId, usize), DeviceError> {
        let slot = self.free_slot()?;
        let mut peer = self.new_peer(self.config, rng)?;
        let n = peer.accept_offer(now, offer, answer, rng)?;
        if peer.codec(MediaKind::Video).is_none() {
            // The viewer offered no video we can send: refuse rather than
            // hold a slot for a session without the camera.
            return Err(DeviceError::Peer(PeerError::Negotiation(tinyrtc::sdp::NegotiationError::NothingAccepted)));
        }
        self.start_clock(now);
        let id = self.insert(slot, now, peer, answer.get(..n).unwrap_or(&[]));
        Ok((id, n))
    }

    /// Start publishing (WHIP): writes our send-only video offer into
    /// `offer`; returns the session id and the offer's length. Complete it
    /// with [`Device::set_publish_answer`].
    pub fn start_publish(
        &mut self,
        now: Instant,
        offer: &mut [u8],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(ViewerId, usize), DeviceError> {
        let slot = self.free_slot()?;
        let mut peer = self.new_peer(PUBLISH_CONFIG, rng)?;
        let n = peer.create_offer(offer)?;
        self.start_clock(now);
        let id = self.insert(slot, now, peer, offer.get(..n).unwrap_or(&[]));
        Ok((id, n))
    }

    /// The WHIP server's answer to our offer.
    pub fn set_publish_answer(
        &mut self,
        now: Instant,
        id: ViewerId,
        answer: &str,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(), DeviceError> {
        let v = self.viewer_mut(id)?;
        v.peer.set_remote_answer(now, answer, rng)?;
        Ok(())
    }

    fn viewer_mut(&mut self, id: ViewerId) -> Result<&mut Viewer<'a>, DeviceError> {
        self.viewers.iter_mut().flatten().find(|v| v.id == id && v.closing.is_none()).ok_or(DeviceError::UnknownViewer)
    }

    /// A trickled remote candidate (`candidate:...` or `a=candidate:...`).
    pub fn add_remote_candidate(&mut self, id: ViewerId, candidate: &str) -> Result<(), DeviceError> {
        let c = candidate.strip_prefix("a=").unwrap_or(candidate);
        self.viewer_mut(id)?.peer.add_remote_candidate(c)?;
        Ok(())
    }

    /// Hang up (WHEP DELETE): the session is closed (DTLS close_notify) and
    /// its slot freed once that went out.
    pub fn remove_viewer(&mut self, id: ViewerId) -> Result<(), DeviceError> {
        let v = self.viewer_mut(id)?;
        v.peer.close();
        v.closing = Some(LeaveReason::HungUp);
        Ok(())
    }

    /// Whether viewer `id` exists (and is not hanging up).
    pub fn has_viewer(&self, id: ViewerId) -> bool {
        self.viewers.iter().flatten().any(|v| v.id == id && v.closing.is_none())
    }

    fn push_event(&mut self, e: DeviceEvent) {
        if self.events.is_full() {
            self.events.pop_front();
        }
        let _ = self.events.push_back(e);
    }

    /// Which slot a datagram from `source` belongs to.
    fn route(&self, source: SocketAddr, datagram: &[u8]) -> Option<usize> {
        if datagram.first().is_some_and(|b| *b < 4) {
            let msg = Message::new_checked(datagram).ok()?;
            let user = msg.username().ok()??;
            let local = user.split(':').next()?;
            return self
                .viewers
                .iter()
                .position(|v| v.as_ref().is_some_and(|v| !v.ufrag.is_empty() && v.ufrag == local));
        }
        self.viewers.iter().position(|v| v.as_ref().is_some_and(|v| v.remote == Some(source)))
    }

    /// Feed one datagram received on the socket.
    pub fn handle_receive(&mut self, now: Instant, source: SocketAddr, datagram: &mut [u8]) -> Result<(), DeviceError> {
        let Some(slot) = self.route(source, datagram) else {
            self.stats.datagrams_unmatched += 1;
            return Ok(());
        };
        let result = match self.viewers.get_mut(slot).and_then(Option::as_mut) {
            // Received media (the viewers send none) is dropped by the peer.
            Some(v) => v.peer.handle_receive(now, source, datagram).map(|_| ()),
            None => Ok(()),
        };
        self.drain_peer_events(now, slot);
        result.map_err(DeviceError::Peer)
    }

    fn drain_peer_events(&mut self, now: Instant, slot: usize) {
        let mut out: Vec<DeviceEvent, 4> = Vec::new();
        let clip = self.clip;
        if let Some(v) = self.viewers.get_mut(slot).and_then(Option::as_mut) {
            while let Some(e) = v.peer.poll_event() {
                match e {
                    PeerEvent::ChannelOpen { id, .. } => {
                        self.stats.channels_opened += 1;
                        match v.peer.channel_label(id) {
                            Some(SENSOR_CHANNEL) => v.sensor_channel = Some(id),
                            Some(FILES_CHANNEL) => v.files_channel = Some(id),
                            _ => {}
                        }
                    }
                    PeerEvent::ChannelClosed { id } => {
                        if v.sensor_channel == Some(id) {
                            v.sensor_channel = None;
                        }
                        if v.files_channel == Some(id) {
                            v.files_channel = None;
                            v.transfer = None;
                        }
                    }
                    PeerEvent::DataTransportLost(_) => {
                        v.sensor_channel = None;
                        v.files_channel = None;
                        v.transfer = None;
                    }
                    PeerEvent::ChannelData { .. } => match v.peer.read_data(&mut self.rx).inspect(|_| {
                        self.stats.channel_messages += 1;
                    }) {
                        Ok((id, _, n)) if Some(id) == v.files_channel => {
                            match FileRequest::parse(self.rx.get(..n).unwrap_or(&[])) {
                                // A new request restarts the transfer.
                                FileRequest::Clip => v.transfer = Some(FileTransfer::new(clip)),
                                FileRequest::Unknown => v.files_error = true,
                            }
                        }
                        // Anything else a viewer sends is not for us.
                        _ => {}
                    },
                    PeerEvent::IceConnected { remote } => v.remote = Some(remote),
                    PeerEvent::Connected => {
                        v.connected = true;
                        if let Some(remote) = v.remote {
                            let _ = out.push(DeviceEvent::ViewerConnected { id: v.id, remote });
                        }
                    }
                    // A stored clip cannot make a keyframe on demand; the
                    // next one comes within the clip's GOP (1 s here).
                    PeerEvent::KeyframeRequest { .. } => {}
                    PeerEvent::Failed(f) if v.closing.is_none() => v.closing = Some(LeaveReason::Failed(f)),
                    #[allow(unreachable_patterns)]
                    _ => {}
                }
            }
        }
        for e in out {
            self.push_event(e);
        }
        if let Some(v) = self.viewers.get_mut(slot).and_then(Option::as_mut) {
            pump_files(v, now);
        }
    }

    /// The next datagram to send, written into `buf` (at least [`MTU`] bytes).
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        for slot in 0..N {
            let Some(v) = self.viewers.get_mut(slot).and_then(Option::as_mut) else { continue };
            if let Some(t) = v.peer.poll_transmit(now, buf) {
                return Some(t);
            }
            if let Some(reason) = v.closing {
                // Nothing more to send: free the slot.
                let id = v.id;
                self.viewers[slot] = None;
                self.push_event(DeviceEvent::ViewerLeft { id, reason });
            }
        }
        if let Some(s) = self.staged.pop_front() {
            let (start, len) = (usize::from(s.start), usize::from(s.len));
            if self.staged.is_empty() {
                self.staged_end = 0;
            }
            let src = self.staging.get(start..start + len)?;
            let dst = buf.get_mut(..len)?;
            dst.copy_from_slice(src);
            return Some(Transmit { source: None, destination: s.destination, len });
        }
        None
    }

    pub fn poll_event(&mut self) -> Option<DeviceEvent> {
        self.events.pop_front()
    }

    /// When [`Device::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let peers = self.viewers.iter().flatten().filter_map(|v| {
            let connect = (!v.connected).then_some(v.created + CONNECT_TIMEOUT);
            [v.peer.poll_timeout(), connect].into_iter().flatten().min()
        });
        peers.chain([self.pacer.poll_timeout(), self.next_reading].into_iter().flatten()).min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        for slot in 0..N {
            if let Some(v) = self.viewers.get_mut(slot).and_then(Option::as_mut) {
                if v.peer.poll_timeout().is_some_and(|t| t <= now) {
                    v.peer.handle_timeout(now);
                }
                if !v.connected && v.closing.is_none() && now >= v.created + CONNECT_TIMEOUT {
                    v.peer.close();
                    v.closing = Some(LeaveReason::ConnectTimeout);
                }
            }
            self.drain_peer_events(now, slot);
        }
        if self.next_reading.is_some_and(|t| now >= t) {
            let started = self.started.unwrap_or(now);
            let reading = self.sensor.read(now.saturating_duration_since(started).as_millis());
            self.stats.readings += 1;
            self.next_reading = Some(now + SENSOR_INTERVAL);
            let mut line = [0u8; sensor::MAX_LINE_LEN];
            if let Ok(n) = reading.write_json_line(&mut line) {
                for v in self.viewers.iter_mut().flatten().filter(|v| v.closing.is_none()) {
                    let Some(ch) = v.sensor_channel else { continue };
                    match v.peer.send_data(now, ch, false, line.get(..n).unwrap_or(&[])) {
                        Ok(()) => v.readings_sent += 1,
                        Err(_) => v.readings_skipped += 1,
                    }
                }
            }
            self.push_event(DeviceEvent::Reading(reading));
        }
        if self.pacer.take_due(now) {
            self.send_frame(now);
        }
    }

    /// Take the next frame and stage it for every connected viewer.
    fn send_frame(&mut self, now: Instant) {
        let Some(frame) = self.source.next_frame() else { return };
        self.stats.frames += 1;
        let (data, timestamp, keyframe) = (frame.data, frame.timestamp, frame.keyframe);
        for v in self.viewers.iter_mut().flatten() {
            if !v.connected || v.closing.is_some() || !v.peer.stats().state.eq(&PeerState::Connected) {
                continue;
            }
            if v.needs_keyframe && !keyframe {
                continue;
            }
            v.needs_keyframe = false;
            let Ok(mut w) = v.peer.send_frame(now, MediaKind::Video, data, timestamp) else { continue };
            loop {
                let room = self.staging.get_mut(self.staged_end..).unwrap_or(&mut []);
                if room.len() < MTU || self.staged.is_full() {
                    // Out of room: the rest of this frame is lost for this
                    // viewer; restart it at the next keyframe.
                    self.stats.frames_truncated += 1;
                    v.needs_keyframe = true;
                    break;
                }
                match w.next_packet(room) {
                    Some(Ok(t)) => {
                        let s = Staged { destination: t.destination, start: self.staged_end as u16, len: t.len as u16 };
                        self.staged_end += t.len;
                        let _ = self.staged.push_back(s);
                    }
                    Some(Err(_)) => break,
                    None => break,
                }
            }
        }
    }
}

/// Queue as much of a viewer's file transfer (or error answer) as its files
/// channel's send buffer takes; the rest goes when acknowledgements free
/// room (this runs after every datagram and timeout of that viewer).
fn pump_files(v: &mut Viewer<'_>, now: Instant) {
    let Some(ch) = v.files_channel.filter(|_| v.closing.is_none()) else { return };
    let mut text = [0u8; files::MAX_CONTROL_LEN];
    if v.files_error {
        if let Ok(n) = files::write_error(&mut text) {
            match v.peer.send_data(now, ch, false, text.get(..n).unwrap_or(&[])) {
                Err(PeerError::Sctp(SctpError::WouldBlock)) => return,
                _ => v.files_error = false,
            }
        }
    }
    let Some(t) = v.transfer.as_mut() else { return };
    while let Some(msg) = t.next_message(&mut text) {
        let (binary, data) = match msg {
            Ok(FileMessage::Chunk(c)) => (true, c),
            Ok(FileMessage::Text { len }) => (false, text.get(..len).unwrap_or(&[])),
            Err(_) => break,
        };
        match v.peer.send_data(now, ch, binary, data) {
            Ok(()) => {
                if binary {
                    v.file_bytes_sent += data.len() as u64;
                }
            }
            Err(PeerError::Sctp(SctpError::WouldBlock)) => {
                if let Ok(m) = msg {
                    t.unsend(&m);
                }
                return;
            }
            Err(_) => {
                // The channel cannot take it (closed, too large): give up.
                v.transfer = None;
                return;
            }
        }
    }
    if t.is_done() {
        v.files_sent += 1;
        v.transfer = None;
    }
}
