//! The netcode 1.02 client state machine (STANDARD.md, "Client State
//! Machine"), sans-IO.
//!
//! The client reads a public connect token, then for each server address of
//! the token in order: sends connection requests at 10 Hz until a challenge
//! arrives, sends responses at 10 Hz until the first keep-alive arrives, and
//! is then connected (keep-alives at 10 Hz when no payload went out). Each
//! step times out after the token's timeout; a denial or a timeout moves on
//! to the next server address, and after the last one the client lands in
//! the matching error state. The whole attempt fails with
//! [`ClientState::ConnectTokenExpired`] once the token's lifetime
//! (expire - create) has elapsed on the caller's monotonic clock.
//!
//! Differences from the reference implementation, none visible on the wire:
//! the response and the first keep-alive go out as soon as the state changes
//! (instead of at the next 10 Hz tick), and a disconnect packet from a
//! connected server ends in [`ClientState::Disconnected`] without trying the
//! remaining server addresses.

use core::net::SocketAddr;

use crate::time::{Duration, Instant};
use crate::Transmit;

use super::replay::ReplayWindow;
use super::wire::{self, Allowed, Body, ConnectToken, CHALLENGE_TOKEN_BYTES, MAX_PAYLOAD_BYTES};
use super::{Error, NUM_DISCONNECT_PACKETS, PACKET_SEND_RATE_HZ};

/// Every state of the standard, with its standard number (`as i8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(i8)]
pub enum ClientState {
    ConnectTokenExpired = -6,
    InvalidConnectToken = -5,
    ConnectionTimedOut = -4,
    ConnectionResponseTimedOut = -3,
    ConnectionRequestTimedOut = -2,
    ConnectionDenied = -1,
    Disconnected = 0,
    SendingConnectionRequest = 1,
    SendingConnectionResponse = 2,
    Connected = 3,
}

impl ClientState {
    /// One of the negative (failure) states.
    pub fn is_error(self) -> bool {
        (self as i8) < 0
    }
    /// Requesting or responding.
    pub fn is_connecting(self) -> bool {
        matches!(self, ClientState::SendingConnectionRequest | ClientState::SendingConnectionResponse)
    }
}

/// What the client reports through [`NetcodeClient::poll_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ClientEvent {
    /// The state changed to this one.
    StateChanged(ClientState),
}

/// A payload delivered by [`NetcodeClient::handle_receive`]: a view into the
/// caller's buffer, where it was decrypted in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientPayload<'a> {
    /// The server's packet sequence number.
    pub sequence: u64,
    pub data: &'a [u8],
}

/// Redundant disconnect packets still to send after leaving a connection.
#[derive(Debug, Clone)]
struct Farewell {
    destination: SocketAddr,
    key: wire::Key,
    protocol_id: u64,
    sequence: u64,
    remaining: u8,
}

/// Events held between two `poll_event` calls.
const EVENT_QUEUE: usize = 8;

/// A netcode client. About 4 KiB (the parsed connect token is 3.2 KiB).
#[derive(Debug)]
pub struct NetcodeClient {
    state: ClientState,
    token: Option<ConnectToken>,
    server_index: usize,
    connect_start: Instant,
    last_send: Option<Instant>,
    last_recv: Instant,
    sequence: u64,
    replay: ReplayWindow,
    client_index: u32,
    max_clients: u32,
    challenge_sequence: u64,
    challenge_token: [u8; CHALLENGE_TOKEN_BYTES],
    farewell: Option<Farewell>,
    events: heapless::Deque<ClientEvent, EVENT_QUEUE>,
}

impl Default for NetcodeClient {
    fn default() -> Self {
        Self::new()
    }
}

const SEND_INTERVAL: Duration = Duration::from_micros(1_000_000 / PACKET_SEND_RATE_HZ);

impl NetcodeClient {
    pub fn new() -> Self {
        NetcodeClient {
            state: ClientState::Disconnected,
            token: None,
            server_index: 0,
            connect_start: Instant::ZERO,
            last_send: None,
            last_recv: Instant::ZERO,
            sequence: 0,
            replay: ReplayWindow::new(),
            client_index: 0,
            max_clients: 0,
            challenge_sequence: 0,
            challenge_token: [0; CHALLENGE_TOKEN_BYTES],
            farewell: None,
            events: heapless::Deque::new(),
        }
    }

    pub fn state(&self) -> ClientState {
        self.state
    }
    /// The slot the server gave this client (valid when connected).
    pub fn client_index(&self) -> u32 {
        self.client_index
    }
    /// The server's number of slots (valid when connected).
    pub fn max_clients(&self) -> u32 {
        self.max_clients
    }
    /// The server being tried or connected to.
    pub fn server_address(&self) -> Option<SocketAddr> {
        self.token.as_ref().and_then(|t| t.server_addresses.get(self.server_index).copied())
    }
    /// Sequence number of the next packet this client sends.
    pub fn next_sequence(&self) -> u64 {
        self.sequence
    }

    fn set_state(&mut self, s: ClientState) {
        if self.state != s {
            self.state = s;
            if self.events.is_full() {
                self.events.pop_front();
            }
            let _ = self.events.push_back(ClientEvent::StateChanged(s));
        }
    }

    /// Start connecting with a 2048-byte public connect token (disconnecting
    /// first if needed). A token that does not parse puts the client in
    /// [`ClientState::InvalidConnectToken`] and is returned as an error.
    pub fn connect(&mut self, now: Instant, token: &[u8]) -> Result<(), Error> {
        self.disconnect(now);
        let token = match ConnectToken::parse(token) {
            Ok(t) => t,
            Err(e) => {
                self.set_state(ClientState::InvalidConnectToken);
                return Err(e);
            }
        };
        self.token = Some(token);
        self.server_index = 0;
        self.sequence = 0;
        self.reset_attempt(now);
        self.set_state(ClientState::SendingConnectionRequest);
        Ok(())
    }

    fn reset_attempt(&mut self, now: Instant) {
        self.connect_start = now;
        self.last_send = None;
        self.last_recv = now;
        self.challenge_sequence = 0;
        self.challenge_token = [0; CHALLENGE_TOKEN_BYTES];
        self.replay = ReplayWindow::new();
        self.client_index = 0;
        self.max_clients = 0;
    }

    /// Try the token's next server address; false if there is none.
    fn next_server(&mut self, now: Instant) -> bool {
        let n = self.token.as_ref().map_or(0, |t| t.server_addresses.len());
        if self.server_index + 1 >= n {
            return false;
        }
        self.server_index += 1;
        self.reset_attempt(now);
        self.set_state(ClientState::SendingConnectionRequest);
        true
    }

    /// Leave for a terminal state (no disconnect packets).
    fn fail(&mut self, s: ClientState) {
        self.token = None;
        self.set_state(s);
    }

    /// Disconnect on purpose: queues 10 disconnect packets to the server if
    /// connecting or connected, and goes to [`ClientState::Disconnected`].
    pub fn disconnect(&mut self, _now: Instant) {
        if !(self.state.is_connecting() || self.state == ClientState::Connected) {
            return;
        }
        if let (Some(t), Some(dst)) = (self.token.as_ref(), self.server_address()) {
            self.farewell = Some(Farewell {
                destination: dst,
                key: t.client_to_server_key,
                protocol_id: t.protocol_id,
                sequence: self.sequence,
                remaining: NUM_DISCONNECT_PACKETS,
            });
        }
        self.fail(ClientState::Disconnected);
    }

    /// Process one datagram from `from`. Payloads are decrypted in place and
    /// returned as a view into `buf`. Errors say why a datagram was dropped;
    /// they never change the state.
    pub fn handle_receive<'a>(
        &mut self,
        now: Instant,
        from: SocketAddr,
        buf: &'a mut [u8],
    ) -> Result<Option<ClientPayload<'a>>, Error> {
        let Some(token) = self.token.as_ref() else { return Err(Error::UnexpectedPacket) };
        if Some(from) != token.server_addresses.get(self.server_index).copied() {
            return Err(Error::WrongSource);
        }
        let (sequence, body) = wire::open_encrypted(
            buf,
            &token.server_to_client_key,
            token.protocol_id,
            Allowed::CLIENT,
            Some(&mut self.replay),
        )?;
        match (body, self.state) {
            (Body::Denied, s) if s.is_connecting() => {
                if !self.next_server(now) {
                    self.fail(ClientState::ConnectionDenied);
                }
                Ok(None)
            }
            (Body::Challenge { token_sequence, token }, ClientState::SendingConnectionRequest) => {
                self.challenge_sequence = token_sequence;
                self.challenge_token = *token;
                self.last_recv = now;
                self.last_send = None;
                self.set_state(ClientState::SendingConnectionResponse);
                Ok(None)
            }
            (Body::KeepAlive { client_index, max_clients }, ClientState::SendingConnectionResponse) => {
                self.last_recv = now;
                self.client_index = client_index;
                self.max_clients = max_clients;
                self.set_state(ClientState::Connected);
                Ok(None)
            }
            (Body::KeepAlive { .. }, ClientState::Connected) => {
                self.last_recv = now;
                Ok(None)
            }
            (Body::Payload(data), ClientState::Connected) => {
                self.last_recv = now;
                Ok(Some(ClientPayload { sequence, data }))
            }
            (Body::Disconnect, ClientState::Connected) => {
                self.fail(ClientState::Disconnected);
                Ok(None)
            }
            _ => Err(Error::UnexpectedPacket),
        }
    }

    /// Apply the token expiry and the timeouts.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(t) = self.token.as_ref() else { return };
        if self.state.is_connecting() {
            let lifetime = Duration::from_secs(t.expire_timestamp.saturating_sub(t.create_timestamp));
            if now - self.connect_start >= lifetime {
                self.fail(ClientState::ConnectTokenExpired);
                return;
            }
        }
        if t.timeout_seconds <= 0 || now <= self.last_recv + Duration::from_secs(t.timeout_seconds as u64) {
            return;
        }
        let failure = match self.state {
            ClientState::SendingConnectionRequest => ClientState::ConnectionRequestTimedOut,
            ClientState::SendingConnectionResponse => ClientState::ConnectionResponseTimedOut,
            ClientState::Connected => ClientState::ConnectionTimedOut,
            _ => return,
        };
        if self.state == ClientState::Connected || !self.next_server(now) {
            self.fail(failure);
        }
    }

    /// The next datagram to send, written into `buf` (1300 bytes hold any).
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if let Some(f) = self.farewell.as_mut() {
            let r = wire::emit_encrypted(&Body::Disconnect, f.sequence, &f.key, f.protocol_id, buf);
            f.sequence += 1;
            f.remaining -= 1;
            let dst = f.destination;
            if f.remaining == 0 {
                self.farewell = None;
            }
            if let Ok(len) = r {
                return Some(Transmit { source: None, destination: dst, len });
            }
        }
        if !(self.state.is_connecting() || self.state == ClientState::Connected) {
            return None;
        }
        if self.last_send.is_some_and(|t| now < t + SEND_INTERVAL) {
            return None;
        }
        let token = self.token.as_ref()?;
        let dst = token.server_addresses.get(self.server_index).copied()?;
        let r = match self.state {
            ClientState::SendingConnectionRequest => wire::emit_request(token, buf),
            ClientState::SendingConnectionResponse => {
                let body = Body::Response { token_sequence: self.challenge_sequence, token: &self.challenge_token };
                wire::emit_encrypted(&body, self.sequence, &token.client_to_server_key, token.protocol_id, buf)
            }
            _ => {
                let body = Body::KeepAlive { client_index: 0, max_clients: 0 };
                wire::emit_encrypted(&body, self.sequence, &token.client_to_server_key, token.protocol_id, buf)
            }
        };
        let len = r.ok()?;
        self.sequence += 1;
        self.last_send = Some(now);
        Some(Transmit { source: None, destination: dst, len })
    }

    /// Encrypt a payload (1 to 1200 bytes) for the server into `buf`.
    pub fn send_payload(&mut self, now: Instant, payload: &[u8], buf: &mut [u8]) -> Result<Transmit, Error> {
        if payload.is_empty() || payload.len() > MAX_PAYLOAD_BYTES {
            return Err(Error::InvalidPayloadSize);
        }
        if self.state != ClientState::Connected {
            return Err(Error::NotConnected);
        }
        let token = self.token.as_ref().ok_or(Error::NotConnected)?;
        let dst = token.server_addresses.get(self.server_index).copied().ok_or(Error::NotConnected)?;
        let len = wire::emit_encrypted(
            &Body::Payload(payload),
            self.sequence,
            &token.client_to_server_key,
            token.protocol_id,
            buf,
        )?;
        self.sequence += 1;
        self.last_send = Some(now);
        Ok(Transmit { source: None, destination: dst, len })
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) / `poll_transmit` next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.farewell.is_some() {
            return Some(Instant::ZERO);
        }
        let t = self.token.as_ref()?;
        if !(self.state.is_connecting() || self.state == ClientState::Connected) {
            return None;
        }
        let mut next = self.last_send.map_or(Instant::ZERO, |s| s + SEND_INTERVAL);
        if t.timeout_seconds > 0 {
            // Strictly after the deadline (the standard's `<`): one microsecond later.
            let d = self.last_recv + Duration::from_secs(t.timeout_seconds as u64) + Duration::from_micros(1);
            next = next.min(d);
        }
        if self.state.is_connecting() {
            let lifetime = Duration::from_secs(t.expire_timestamp.saturating_sub(t.create_timestamp));
            next = next.min(self.connect_start + lifetime);
        }
        Some(next)
    }
}

#[cfg(test)]
mod tests;
