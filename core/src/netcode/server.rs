//! The netcode 1.02 server (STANDARD.md, "Server-Side Connection Process"),
//! sans-IO, with every table in static storage sized by const generics.
//!
//! A connection request is processed in the standard's order: exact size,
//! version info, protocol id, token not expired (caller's Unix time), private
//! token decrypts with the private key, this server's address is in the
//! token, no client connected from that address or with that client id, the
//! token's tag is not in the history from another address, then either a
//! denial (server full) or a challenge. The challenge token is sealed with a
//! key drawn at construction and a global challenge sequence; the challenge
//! packet (at most 333 bytes) is always smaller than the 1078-byte request,
//! so the server cannot be used as an amplifier. A valid response (client
//! key, then challenge key) takes a free slot; the client is *confirmed* by
//! its first keep-alive or payload, and until then every payload the server
//! sends is preceded by a keep-alive carrying the slot index.
//!
//! Stricter than the standard: tokens are single-use (see the module docs of
//! [`super`]). Global packets (challenge, denied) use a sequence counter
//! starting at 2^63 so their nonces never meet the per-slot sequences under
//! the same server-to-client key.
//!
//! Caller contract: after every `handle_*` call drain `poll_transmit` and
//! `poll_event` until `None`. Events are kept per slot, so none can be lost;
//! a slot is reused only after its disconnect event was polled.

use core::net::SocketAddr;

use crate::time::{Duration, Instant};
use crate::Transmit;

use super::replay::ReplayWindow;
use super::wire::{
    self, Allowed, Body, ChallengeToken, Key, PacketType, PrivateConnectToken, RequestPacket, UserData,
    CHALLENGE_TOKEN_BYTES, CONNECT_TOKEN_PRIVATE_BYTES, MAC_BYTES, MAX_CHALLENGE_PACKET_BYTES, MAX_PAYLOAD_BYTES,
    USER_DATA_BYTES,
};
use super::{Error, NUM_DISCONNECT_PACKETS, PACKET_SEND_RATE_HZ};

/// The server with default capacities: 64 client slots, 64 pending
/// handshakes, 256 token-history entries. Memory: see the README (netcode
/// section), measured by `server_memory` in the unit tests.
pub type NetcodeServer = NetcodeServerN<64, 64, 256>;

/// Most client slots a netcode server may have (the standard's limit).
pub const MAX_CLIENTS: usize = 256;

/// Replies (challenge or denied packets) held until `poll_transmit`; each
/// holds one packet of at most 333 bytes (~380 bytes per entry).
pub const REPLY_QUEUE: usize = 4;

/// What a server needs to know about itself.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The application's protocol id (must match the tokens').
    pub protocol_id: u64,
    /// The key shared with the web backend that seals connect tokens.
    pub private_key: Key,
    /// This server's address as written in the tokens (the "internal"
    /// address list). Requests for tokens that do not list it are ignored.
    pub public_address: SocketAddr,
}

/// Why a client left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DisconnectReason {
    /// Nothing received for the token's timeout.
    TimedOut,
    /// The client sent a disconnect packet.
    ClientDisconnect,
    /// [`NetcodeServerN::disconnect`] was called.
    ServerDisconnect,
}

/// Connection events, from [`NetcodeServerN::poll_event`]. Plain data: the
/// connected event carries the token's 256 bytes of user data by value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum ServerEvent {
    ClientConnected { slot: usize, client_id: u64, address: SocketAddr, user_data: UserData },
    ClientDisconnected { slot: usize, client_id: u64, reason: DisconnectReason },
}

/// A payload delivered by [`NetcodeServerN::handle_receive`]: a view into the
/// caller's buffer, where it was decrypted in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerPayload<'a> {
    pub slot: usize,
    /// The client's packet sequence number.
    pub sequence: u64,
    pub data: &'a [u8],
}

/// Where [`NetcodeServerN::send_payload`] wrote its datagrams: until the
/// client is confirmed, a keep-alive at `buf[..keep_alive_len]` that must be
/// sent first, then the payload packet at
/// `buf[keep_alive_len..keep_alive_len + payload_len]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentPayload {
    pub destination: SocketAddr,
    /// 0 once the client is confirmed.
    pub keep_alive_len: usize,
    pub payload_len: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Free,
    Connected,
    /// Left; sending disconnect packets and/or waiting for its events to be polled.
    Closing,
}

#[derive(Debug, Clone)]
struct Slot {
    state: SlotState,
    confirmed: bool,
    client_id: u64,
    address: SocketAddr,
    send_key: Key,
    recv_key: Key,
    timeout_seconds: i32,
    sequence: u64,
    last_send: Instant,
    keep_alive_now: bool,
    last_recv: Instant,
    replay: ReplayWindow,
    user_data: UserData,
    connected_event: bool,
    disconnected_event: Option<DisconnectReason>,
    disconnects_left: u8,
}

const UNSPECIFIED: SocketAddr = SocketAddr::V4(core::net::SocketAddrV4::new(core::net::Ipv4Addr::UNSPECIFIED, 0));

impl Slot {
    const EMPTY: Slot = Slot {
        state: SlotState::Free,
        confirmed: false,
        client_id: 0,
        address: UNSPECIFIED,
        send_key: [0; 32],
        recv_key: [0; 32],
        timeout_seconds: 0,
        sequence: 0,
        last_send: Instant::ZERO,
        keep_alive_now: false,
        last_recv: Instant::ZERO,
        replay: ReplayWindow::new(),
        user_data: [0; USER_DATA_BYTES],
        connected_event: false,
        disconnected_event: None,
        disconnects_left: 0,
    };
    fn timed_out_at(&self) -> Option<Instant> {
        (self.timeout_seconds > 0).then(|| self.last_recv + Duration::from_secs(self.timeout_seconds as u64))
    }
}

/// A handshake in progress: an address whose request carried a valid token.
#[derive(Debug, Clone)]
struct Pending {
    in_use: bool,
    address: SocketAddr,
    send_key: Key,
    recv_key: Key,
    timeout_seconds: i32,
    last_access: Instant,
    token_mac: [u8; MAC_BYTES],
}

impl Pending {
    const EMPTY: Pending = Pending {
        in_use: false,
        address: UNSPECIFIED,
        send_key: [0; 32],
        recv_key: [0; 32],
        timeout_seconds: 0,
        last_access: Instant::ZERO,
        token_mac: [0; MAC_BYTES],
    };
    /// Live while requests or the response keep arriving within the timeout.
    fn live(&self, now: Instant) -> bool {
        self.in_use
            && (self.timeout_seconds < 0 || now <= self.last_access + Duration::from_secs(self.timeout_seconds as u64))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenUse {
    Empty,
    /// Seen in a valid request; may be retried from the same address.
    Pending,
    /// Produced a connected client: refused from now on.
    Consumed,
}

#[derive(Debug, Clone)]
struct TokenEntry {
    state: TokenUse,
    mac: [u8; MAC_BYTES],
    address: SocketAddr,
    first_seen: Instant,
    /// The token's expire timestamp (Unix seconds): past it, the entry can go.
    expire_timestamp: u64,
}

impl TokenEntry {
    const EMPTY: TokenEntry = TokenEntry {
        state: TokenUse::Empty,
        mac: [0; MAC_BYTES],
        address: UNSPECIFIED,
        first_seen: Instant::ZERO,
        expire_timestamp: 0,
    };
}

#[derive(Debug, Clone)]
struct Reply {
    destination: SocketAddr,
    len: usize,
    bytes: [u8; MAX_CHALLENGE_PACKET_BYTES],
}

const SEND_INTERVAL: Duration = Duration::from_micros(1_000_000 / PACKET_SEND_RATE_HZ);

/// A netcode server with `CLIENTS` slots (1..=256), `PENDING` concurrent
/// handshakes and a `HISTORY`-entry connect-token history, all inline (no
/// heap). Per slot ~500 bytes (256 of them user data), per pending handshake
/// ~130 bytes, per history entry ~80 bytes; [`NetcodeServer`] is the default.
#[derive(Debug)]
pub struct NetcodeServerN<const CLIENTS: usize, const PENDING: usize, const HISTORY: usize> {
    config: ServerConfig,
    challenge_key: Key,
    challenge_sequence: u64,
    global_sequence: u64,
    slots: [Slot; CLIENTS],
    pending: [Pending; PENDING],
    history: [TokenEntry; HISTORY],
    replies: heapless::Deque<Reply, REPLY_QUEUE>,
    connected: usize,
    events_pending: usize,
    farewells_pending: usize,
    keep_alive_cursor: usize,
    next_keep_alive: Option<Instant>,
    next_timeout: Option<Instant>,
}

fn min_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

impl<const CLIENTS: usize, const PENDING: usize, const HISTORY: usize> NetcodeServerN<CLIENTS, PENDING, HISTORY> {
    const VALID: () = assert!(CLIENTS >= 1 && CLIENTS <= MAX_CLIENTS && PENDING >= 1 && HISTORY >= 1);

    /// A running server. The challenge key is drawn from `rng` here: each
    /// server start has its own.
    pub fn new<R: rand_core::RngCore + rand_core::CryptoRng>(config: ServerConfig, rng: &mut R) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::VALID;
        let mut challenge_key = [0u8; 32];
        rng.fill_bytes(&mut challenge_key);
        NetcodeServerN {
            config,
            challenge_key,
            challenge_sequence: 0,
            global_sequence: 1 << 63,
            slots: [Slot::EMPTY; CLIENTS],
            pending: [Pending::EMPTY; PENDING],
            history: [TokenEntry::EMPTY; HISTORY],
            replies: heapless::Deque::new(),
            connected: 0,
            events_pending: 0,
            farewells_pending: 0,
            keep_alive_cursor: 0,
            next_keep_alive: None,
            next_timeout: None,
        }
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }
    /// Number of slots.
    pub const fn max_clients(&self) -> usize {
        CLIENTS
    }
    /// Connected clients.
    pub fn num_connected(&self) -> usize {
        self.connected
    }
    pub fn is_connected(&self, slot: usize) -> bool {
        self.slots.get(slot).is_some_and(|s| s.state == SlotState::Connected)
    }
    pub fn client_id(&self, slot: usize) -> Option<u64> {
        self.connected_slot(slot).map(|s| s.client_id)
    }
    pub fn client_address(&self, slot: usize) -> Option<SocketAddr> {
        self.connected_slot(slot).map(|s| s.address)
    }
    pub fn client_user_data(&self, slot: usize) -> Option<&UserData> {
        self.connected_slot(slot).map(|s| &s.user_data)
    }
    /// Handshakes in progress (for tests and monitoring).
    pub fn num_pending(&self, now: Instant) -> usize {
        self.pending.iter().filter(|p| p.live(now)).count()
    }
    /// Token-history entries in use (for tests and monitoring).
    pub fn num_tokens_seen(&self) -> usize {
        self.history.iter().filter(|h| h.state != TokenUse::Empty).count()
    }
    fn connected_slot(&self, slot: usize) -> Option<&Slot> {
        self.slots.get(slot).filter(|s| s.state == SlotState::Connected)
    }

    /// Slots are placed by a hash of the client's address (open addressing
    /// with linear probing over the slot array), so finding the slot of a
    /// connected client's packet usually takes a few comparisons even with
    /// 256 clients. Misses (handshake traffic) scan every slot.
    fn home_slot(a: &SocketAddr) -> usize {
        // FNV-1a over the address bytes: spreads ports and hosts; not keyed,
        // which is fine: colliding addresses only cost probe steps.
        let mut h: u32 = 0x811c_9dc5;
        let mut eat = |b: u8| h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        match a {
            SocketAddr::V4(v) => v.ip().octets().iter().for_each(|&b| eat(b)),
            SocketAddr::V6(v) => v.ip().octets().iter().for_each(|&b| eat(b)),
        }
        a.port().to_le_bytes().iter().for_each(|&b| eat(b));
        (h as usize) % CLIENTS
    }

    fn find_slot_by_address(&self, a: &SocketAddr) -> Option<usize> {
        let home = Self::home_slot(a);
        (0..CLIENTS).map(|k| (home + k) % CLIENTS).find(|&i| {
            let s = &self.slots[i];
            s.state == SlotState::Connected && s.address == *a
        })
    }

    fn find_free_slot(&self, a: &SocketAddr) -> Option<usize> {
        let home = Self::home_slot(a);
        (0..CLIENTS).map(|k| (home + k) % CLIENTS).find(|&i| self.slots[i].state == SlotState::Free)
    }

    /// Process one datagram. Payloads come back as a view into `buf` (they are
    /// decrypted in place); everything else is applied to the server and may
    /// queue datagrams and events. An error says why the datagram was dropped.
    pub fn handle_receive<'a>(
        &mut self,
        now: Instant,
        unix_time: u64,
        from: SocketAddr,
        buf: &'a mut [u8],
    ) -> Result<Option<ServerPayload<'a>>, Error> {
        let prefix = *buf.first().ok_or(Error::PacketTooSmall)?;
        if prefix == PacketType::Request as u8 {
            self.handle_request(now, unix_time, from, buf)?;
            return Ok(None);
        }
        // Cheap checks before any table lookup.
        wire::peek_encrypted(buf, Allowed::SERVER)?;
        if let Some(i) = self.find_slot_by_address(&from) {
            let slot = &mut self.slots[i];
            let (sequence, body) = wire::open_encrypted(
                buf,
                &slot.recv_key,
                self.config.protocol_id,
                Allowed::SERVER,
                Some(&mut slot.replay),
            )?;
            return match body {
                Body::KeepAlive { .. } => {
                    slot.last_recv = now;
                    slot.confirmed = true;
                    Ok(None)
                }
                Body::Payload(data) => {
                    slot.last_recv = now;
                    slot.confirmed = true;
                    Ok(Some(ServerPayload { slot: i, sequence, data }))
                }
                Body::Disconnect => {
                    self.close(i, DisconnectReason::ClientDisconnect, false);
                    Ok(None)
                }
                _ => Err(Error::UnexpectedPacket),
            };
        }
        let p = self.pending.iter().position(|p| p.live(now) && p.address == from).ok_or(Error::UnknownAddress)?;
        let (_, body) =
            wire::open_encrypted(buf, &self.pending[p].recv_key, self.config.protocol_id, Allowed::SERVER, None)?;
        let Body::Response { token_sequence, token } = body else { return Err(Error::UnexpectedPacket) };
        self.pending[p].last_access = now;
        let mut sealed: [u8; CHALLENGE_TOKEN_BYTES] = *token;
        let challenge = ChallengeToken::open(token_sequence, &self.challenge_key, &mut sealed)?;
        self.handle_response(now, p, from, challenge)?;
        Ok(None)
    }

    fn handle_request(&mut self, now: Instant, unix_time: u64, from: SocketAddr, buf: &mut [u8]) -> Result<(), Error> {
        let packet = RequestPacket::new_checked(&*buf, self.config.protocol_id)?;
        let expire = packet.expire_timestamp();
        if expire <= unix_time {
            return Err(Error::TokenExpired);
        }
        let nonce = packet.nonce();
        let mut private = packet.private_data();
        wire::open_private(&mut private, self.config.protocol_id, expire, &nonce, &self.config.private_key)?;
        let token = PrivateConnectToken::parse(&private)?;
        if !token.server_addresses.contains(&self.config.public_address) {
            return Err(Error::ServerAddressNotInToken);
        }
        if self.find_slot_by_address(&from).is_some() {
            return Err(Error::AddressAlreadyConnected);
        }
        if self.slots.iter().any(|s| s.state == SlotState::Connected && s.client_id == token.client_id) {
            return Err(Error::ClientIdAlreadyConnected);
        }
        let mut mac = [0u8; MAC_BYTES];
        mac.copy_from_slice(&private[CONNECT_TOKEN_PRIVATE_BYTES - MAC_BYTES..]);
        self.record_token(now, unix_time, from, &mac, expire)?;

        if !self.slots.iter().any(|s| s.state == SlotState::Free) {
            self.queue_reply(from, &Body::Denied, &token.server_to_client_key);
            return Err(Error::ServerFull);
        }
        // Find (refresh) or add the pending handshake for this address.
        let idx = match self.pending.iter().position(|p| p.live(now) && p.address == from) {
            Some(i) => i,
            None => self.pending.iter().position(|p| !p.live(now)).ok_or(Error::PendingTableFull)?,
        };
        self.pending[idx] = Pending {
            in_use: true,
            address: from,
            send_key: token.server_to_client_key,
            recv_key: token.client_to_server_key,
            timeout_seconds: token.timeout_seconds,
            last_access: now,
            token_mac: mac,
        };
        let mut sealed = [0u8; CHALLENGE_TOKEN_BYTES];
        ChallengeToken { client_id: token.client_id, user_data: token.user_data }.seal(
            self.challenge_sequence,
            &self.challenge_key,
            &mut sealed,
        );
        let body = Body::Challenge { token_sequence: self.challenge_sequence, token: &sealed };
        self.challenge_sequence += 1;
        self.queue_reply(from, &body, &token.server_to_client_key);
        Ok(())
    }

    /// The token history: a token may be retried from the address that first
    /// used it until it connects; never from another address; never again
    /// once consumed.
    fn record_token(
        &mut self,
        now: Instant,
        unix_time: u64,
        from: SocketAddr,
        mac: &[u8; MAC_BYTES],
        expire: u64,
    ) -> Result<(), Error> {
        let mut victim: Option<usize> = None;
        let mut victim_rank = (u8::MAX, Instant::ZERO);
        for (i, e) in self.history.iter().enumerate() {
            if e.state != TokenUse::Empty && crate::crypto::ct_eq(&e.mac, mac) {
                if e.state == TokenUse::Consumed || e.address != from {
                    return Err(Error::TokenAlreadyUsed);
                }
                return Ok(());
            }
            // Reuse order: empty, expired token, oldest pending. Consumed live
            // tokens are never evicted (that would make them usable again).
            let rank = match e.state {
                TokenUse::Empty => (0, Instant::ZERO),
                _ if e.expire_timestamp <= unix_time => (1, e.first_seen),
                TokenUse::Pending => (2, e.first_seen),
                TokenUse::Consumed => continue,
            };
            if victim.is_none() || rank < victim_rank {
                victim = Some(i);
                victim_rank = rank;
            }
        }
        let v = victim.ok_or(Error::TokenHistoryFull)?;
        self.history[v] = TokenEntry {
            state: TokenUse::Pending,
            mac: *mac,
            address: from,
            first_seen: now,
            expire_timestamp: expire,
        };
        Ok(())
    }

    fn handle_response(
        &mut self,
        now: Instant,
        p: usize,
        from: SocketAddr,
        challenge: ChallengeToken,
    ) -> Result<(), Error> {
        if self.slots.iter().any(|s| s.state == SlotState::Connected && s.client_id == challenge.client_id) {
            return Err(Error::ClientIdAlreadyConnected);
        }
        let pending = self.pending[p].clone();
        let h = self
            .history
            .iter()
            .position(|e| {
                e.state == TokenUse::Pending && e.address == from && crate::crypto::ct_eq(&e.mac, &pending.token_mac)
            })
            .ok_or(Error::TokenAlreadyUsed)?;
        let Some(i) = self.find_free_slot(&from) else {
            self.queue_reply(from, &Body::Denied, &pending.send_key);
            return Err(Error::ServerFull);
        };
        self.history[h].state = TokenUse::Consumed;
        self.pending[p] = Pending::EMPTY;
        self.slots[i] = Slot {
            state: SlotState::Connected,
            confirmed: false,
            client_id: challenge.client_id,
            address: from,
            send_key: pending.send_key,
            recv_key: pending.recv_key,
            timeout_seconds: pending.timeout_seconds,
            sequence: 0,
            last_send: now,
            keep_alive_now: true,
            last_recv: now,
            replay: ReplayWindow::new(),
            user_data: challenge.user_data,
            connected_event: true,
            disconnected_event: None,
            disconnects_left: 0,
        };
        self.connected += 1;
        self.events_pending += 1;
        self.next_keep_alive = Some(now);
        self.next_timeout = min_opt(self.next_timeout, self.slots[i].timed_out_at());
        Ok(())
    }

    fn queue_reply(&mut self, to: SocketAddr, body: &Body<'_>, key: &Key) {
        let mut r = Reply { destination: to, len: 0, bytes: [0; MAX_CHALLENGE_PACKET_BYTES] };
        if let Ok(n) = wire::emit_encrypted(body, self.global_sequence, key, self.config.protocol_id, &mut r.bytes) {
            self.global_sequence += 1;
            r.len = n;
            // A full queue drops the reply, like a lost datagram: the client resends.
            let _ = self.replies.push_back(r);
        }
    }

    fn close(&mut self, i: usize, reason: DisconnectReason, send_packets: bool) {
        let s = &mut self.slots[i];
        s.state = SlotState::Closing;
        s.disconnected_event = Some(reason);
        s.disconnects_left = if send_packets { NUM_DISCONNECT_PACKETS } else { 0 };
        self.connected -= 1;
        self.events_pending += 1;
        if send_packets {
            self.farewells_pending += 1;
        }
    }

    fn maybe_free(&mut self, i: usize) {
        let s = &mut self.slots[i];
        if s.state == SlotState::Closing
            && s.disconnects_left == 0
            && s.disconnected_event.is_none()
            && !s.connected_event
        {
            *s = Slot::EMPTY;
        }
    }

    /// Disconnect a client: 10 disconnect packets go out through `poll_transmit`.
    pub fn disconnect(&mut self, slot: usize) -> Result<(), Error> {
        if !self.is_connected(slot) {
            return Err(Error::InvalidSlot);
        }
        self.close(slot, DisconnectReason::ServerDisconnect, true);
        Ok(())
    }

    /// Disconnect every connected client.
    pub fn disconnect_all(&mut self) {
        for i in 0..CLIENTS {
            if self.is_connected(i) {
                self.close(i, DisconnectReason::ServerDisconnect, true);
            }
        }
    }

    /// Encrypt a payload (1 to 1200 bytes) for the client in `slot` into
    /// `buf`; see [`SentPayload`] for the keep-alive sent before it until the
    /// client is confirmed. `buf` must hold both (1300 bytes always do).
    pub fn send_payload(
        &mut self,
        now: Instant,
        slot: usize,
        payload: &[u8],
        buf: &mut [u8],
    ) -> Result<SentPayload, Error> {
        if payload.is_empty() || payload.len() > MAX_PAYLOAD_BYTES {
            return Err(Error::InvalidPayloadSize);
        }
        let pid = self.config.protocol_id;
        let s = self.slots.get_mut(slot).filter(|s| s.state == SlotState::Connected).ok_or(Error::InvalidSlot)?;
        let mut keep_alive_len = 0;
        if !s.confirmed {
            let ka = Body::KeepAlive { client_index: slot as u32, max_clients: CLIENTS as u32 };
            keep_alive_len = wire::emit_encrypted(&ka, s.sequence, &s.send_key, pid, buf)?;
        }
        let out = buf.get_mut(keep_alive_len..).ok_or(Error::BufferTooSmall)?;
        let seq = s.sequence + u64::from(keep_alive_len > 0);
        let payload_len = wire::emit_encrypted(&Body::Payload(payload), seq, &s.send_key, pid, out)?;
        s.sequence = seq + 1;
        s.last_send = now;
        s.keep_alive_now = false;
        Ok(SentPayload { destination: s.address, keep_alive_len, payload_len })
    }

    /// Time out silent clients.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !matches!(self.next_timeout, Some(t) if now > t) {
            return;
        }
        let mut next = None;
        for i in 0..CLIENTS {
            if self.slots[i].state != SlotState::Connected {
                continue;
            }
            match self.slots[i].timed_out_at() {
                Some(t) if now > t => self.close(i, DisconnectReason::TimedOut, false),
                t => next = min_opt(next, t),
            }
        }
        self.next_timeout = next;
    }

    /// The next datagram to send (replies, disconnect packets, keep-alives),
    /// written into `buf` (1300 bytes hold any).
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        while let Some(r) = self.replies.pop_front() {
            if let Some(dst) = buf.get_mut(..r.len) {
                dst.copy_from_slice(&r.bytes[..r.len]);
                return Some(Transmit { source: None, destination: r.destination, len: r.len });
            }
        }
        let pid = self.config.protocol_id;
        if self.farewells_pending > 0 {
            for i in 0..CLIENTS {
                let s = &mut self.slots[i];
                if s.state != SlotState::Closing || s.disconnects_left == 0 {
                    continue;
                }
                let r = wire::emit_encrypted(&Body::Disconnect, s.sequence, &s.send_key, pid, buf);
                s.sequence += 1;
                s.disconnects_left -= 1;
                let dst = s.address;
                if s.disconnects_left == 0 {
                    self.farewells_pending -= 1;
                    self.maybe_free(i);
                }
                if let Ok(len) = r {
                    return Some(Transmit { source: None, destination: dst, len });
                }
            }
        }
        if !matches!(self.next_keep_alive, Some(t) if now >= t) {
            return None;
        }
        let mut next: Option<Instant> = None;
        for k in 0..CLIENTS {
            let i = (self.keep_alive_cursor + k) % CLIENTS;
            let s = &mut self.slots[i];
            if s.state != SlotState::Connected {
                continue;
            }
            let due = if s.keep_alive_now { now } else { s.last_send + SEND_INTERVAL };
            if due > now {
                next = min_opt(next, Some(due));
                continue;
            }
            let ka = Body::KeepAlive { client_index: i as u32, max_clients: CLIENTS as u32 };
            let r = wire::emit_encrypted(&ka, s.sequence, &s.send_key, pid, buf);
            s.sequence += 1;
            s.last_send = now;
            s.keep_alive_now = false;
            self.keep_alive_cursor = (i + 1) % CLIENTS;
            if let Ok(len) = r {
                return Some(Transmit { source: None, destination: s.address, len });
            }
        }
        self.next_keep_alive = next;
        None
    }

    /// Connection events (connected before disconnected for one slot; slots
    /// in index order).
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        if self.events_pending == 0 {
            return None;
        }
        for i in 0..CLIENTS {
            let s = &mut self.slots[i];
            if s.connected_event {
                s.connected_event = false;
                self.events_pending -= 1;
                let ev = ServerEvent::ClientConnected {
                    slot: i,
                    client_id: s.client_id,
                    address: s.address,
                    user_data: s.user_data,
                };
                self.maybe_free(i);
                return Some(ev);
            }
            if let Some(reason) = s.disconnected_event.take() {
                self.events_pending -= 1;
                let ev = ServerEvent::ClientDisconnected { slot: i, client_id: s.client_id, reason };
                self.maybe_free(i);
                return Some(ev);
            }
        }
        None
    }

    /// The next keep-alive or timeout deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.replies.is_empty() || self.farewells_pending > 0 {
            return Some(Instant::ZERO);
        }
        min_opt(self.next_keep_alive, self.next_timeout.map(|t| t + Duration::from_micros(1)))
    }
}

#[cfg(test)]
mod tests;
