//! netcode 1.02 bytes on the wire: connect tokens (public and private parts),
//! challenge tokens and the seven packet types.
//!
//! Everything netcode writes is little-endian (unlike most IETF formats), so
//! the fields are read and written as byte arrays through [`Reader`] and
//! [`Writer`] and converted with `from_le_bytes` / `to_le_bytes` here.
//!
//! Layouts (STANDARD.md, "Connect Token", "Challenge Token", "Packet
//! Structure"):
//! - private connect token, 1024 bytes: client id u64, timeout seconds i32,
//!   address count u32, addresses, client-to-server key, server-to-client key,
//!   user data (256), zero padding to 1008, then the 16-byte Poly1305 tag.
//!   Sealed with XChaCha20-Poly1305 under the backend's private key, nonce =
//!   the token's 24-byte nonce, associated data = version info || protocol id
//!   || expire timestamp (29 bytes).
//! - public connect token, 2048 bytes: version info (13), protocol id, create
//!   and expire timestamps, nonce (24), private part (1024), timeout seconds,
//!   address count, addresses, the two keys, zero padding.
//! - challenge token, 300 bytes: client id, user data, zero padding to 284,
//!   tag; sealed with ChaCha20-Poly1305 under the server's challenge key with
//!   the challenge sequence as nonce and no associated data.
//! - connection request (packet type 0, not encrypted, exactly 1078 bytes):
//!   0x00, version info, protocol id, expire timestamp, nonce, private part.
//! - every other packet: prefix byte (type in the low nibble, number of
//!   sequence bytes 1..=8 in the high nibble), the sequence with high zero
//!   bytes dropped, low byte first, then the ChaCha20-Poly1305 ciphertext and
//!   tag of the per-type body. Nonce = 4 zero bytes || sequence (LE u64);
//!   associated data = version info || protocol id || prefix byte (22 bytes).

use core::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::bytes::{BufferTooSmall, Reader, Truncated, Writer};
use crate::crypto::{ChaCha20Poly1305, XChaCha20Poly1305, AEAD_TAG_LEN};

use super::replay::ReplayWindow;
use super::Error;

/// `"NETCODE 1.02"` and a terminating zero, at the start of every token and
/// in every packet's associated data.
pub const VERSION_INFO: [u8; VERSION_INFO_BYTES] = *b"NETCODE 1.02\0";
pub const VERSION_INFO_BYTES: usize = 13;
/// Size of a public connect token.
pub const CONNECT_TOKEN_BYTES: usize = 2048;
/// Size of the encrypted private part of a connect token (tag included).
pub const CONNECT_TOKEN_PRIVATE_BYTES: usize = 1024;
/// XChaCha20-Poly1305 nonce of a connect token.
pub const CONNECT_TOKEN_NONCE_BYTES: usize = 24;
/// Every key in netcode (private key, packet keys, challenge key).
pub const KEY_BYTES: usize = 32;
/// The Poly1305 tag ("HMAC" in the standard).
pub const MAC_BYTES: usize = AEAD_TAG_LEN;
/// Opaque user data carried from the backend to the server.
pub const USER_DATA_BYTES: usize = 256;
/// Most server addresses in one connect token.
pub const MAX_SERVERS_PER_CONNECT: usize = 32;
/// Size of a challenge token (tag included).
pub const CHALLENGE_TOKEN_BYTES: usize = 300;
/// Largest payload in one payload packet.
pub const MAX_PAYLOAD_BYTES: usize = 1200;
/// Largest netcode packet: buffers of this size hold any packet.
pub const MAX_PACKET_BYTES: usize = 1300;
/// The connection request is exactly this long.
pub const CONNECTION_REQUEST_BYTES: usize =
    1 + VERSION_INFO_BYTES + 8 + 8 + CONNECT_TOKEN_NONCE_BYTES + CONNECT_TOKEN_PRIVATE_BYTES;
/// Smallest possible encrypted packet: prefix, one sequence byte, tag.
pub const MIN_ENCRYPTED_PACKET_BYTES: usize = 1 + 1 + MAC_BYTES;
/// Largest challenge packet (8 sequence bytes): well under the request size,
/// so a server never answers with more bytes than it received.
pub const MAX_CHALLENGE_PACKET_BYTES: usize = 1 + 8 + 8 + CHALLENGE_TOKEN_BYTES + MAC_BYTES;
const _: () = assert!(MAX_CHALLENGE_PACKET_BYTES < CONNECTION_REQUEST_BYTES);

/// A 256-bit key.
pub type Key = [u8; KEY_BYTES];
/// The user data block of a connect token.
pub type UserData = [u8; USER_DATA_BYTES];
/// The server addresses of a connect token (1 to 32). 32 bytes each.
pub type ServerAddresses = heapless::Vec<SocketAddr, MAX_SERVERS_PER_CONNECT>;

const ADDRESS_IPV4: u8 = 1;
const ADDRESS_IPV6: u8 = 2;
const PRIVATE_PLAINTEXT_BYTES: usize = CONNECT_TOKEN_PRIVATE_BYTES - MAC_BYTES;
const CHALLENGE_PLAINTEXT_BYTES: usize = CHALLENGE_TOKEN_BYTES - MAC_BYTES;

/// The seven packet types (low nibble of the prefix byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum PacketType {
    Request = 0,
    Denied = 1,
    Challenge = 2,
    Response = 3,
    KeepAlive = 4,
    Payload = 5,
    Disconnect = 6,
}

impl PacketType {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Request,
            1 => Self::Denied,
            2 => Self::Challenge,
            3 => Self::Response,
            4 => Self::KeepAlive,
            5 => Self::Payload,
            6 => Self::Disconnect,
            _ => return None,
        })
    }
    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// The packet types one side accepts: a server never takes challenge or
/// denied packets, a client never takes requests or responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowed(u8);

impl Allowed {
    pub const SERVER: Allowed = Allowed(
        PacketType::Request.bit()
            | PacketType::Response.bit()
            | PacketType::KeepAlive.bit()
            | PacketType::Payload.bit()
            | PacketType::Disconnect.bit(),
    );
    pub const CLIENT: Allowed = Allowed(
        PacketType::Denied.bit()
            | PacketType::Challenge.bit()
            | PacketType::KeepAlive.bit()
            | PacketType::Payload.bit()
            | PacketType::Disconnect.bit(),
    );
    pub fn allows(self, t: PacketType) -> bool {
        self.0 & t.bit() != 0
    }
}

// ---------------------------------------------------------------- LE fields

fn rd_u16(r: &mut Reader<'_>) -> Result<u16, Truncated> {
    Ok(u16::from_le_bytes(r.array()?))
}
fn rd_u32(r: &mut Reader<'_>) -> Result<u32, Truncated> {
    Ok(u32::from_le_bytes(r.array()?))
}
fn rd_u64(r: &mut Reader<'_>) -> Result<u64, Truncated> {
    Ok(u64::from_le_bytes(r.array()?))
}
fn wr_u16(w: &mut Writer<'_>, v: u16) -> Result<(), BufferTooSmall> {
    w.bytes(&v.to_le_bytes())
}
fn wr_u32(w: &mut Writer<'_>, v: u32) -> Result<(), BufferTooSmall> {
    w.bytes(&v.to_le_bytes())
}
fn wr_u64(w: &mut Writer<'_>, v: u64) -> Result<(), BufferTooSmall> {
    w.bytes(&v.to_le_bytes())
}

fn rd_address(r: &mut Reader<'_>) -> Result<SocketAddr, Error> {
    match r.u8()? {
        ADDRESS_IPV4 => {
            let ip: [u8; 4] = r.array()?;
            let port = rd_u16(r)?;
            Ok(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
        }
        ADDRESS_IPV6 => {
            let mut seg = [0u16; 8];
            for s in &mut seg {
                *s = rd_u16(r)?;
            }
            let port = rd_u16(r)?;
            Ok(SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(seg), port, 0, 0)))
        }
        _ => Err(Error::InvalidConnectToken),
    }
}

fn wr_address(w: &mut Writer<'_>, a: &SocketAddr) -> Result<(), BufferTooSmall> {
    match a {
        SocketAddr::V4(a) => {
            w.u8(ADDRESS_IPV4)?;
            w.bytes(&a.ip().octets())?;
            wr_u16(w, a.port())
        }
        SocketAddr::V6(a) => {
            w.u8(ADDRESS_IPV6)?;
            for s in a.ip().segments() {
                wr_u16(w, s)?;
            }
            wr_u16(w, a.port())
        }
    }
}

fn rd_addresses(r: &mut Reader<'_>) -> Result<ServerAddresses, Error> {
    let n = rd_u32(r)? as usize;
    if n == 0 || n > MAX_SERVERS_PER_CONNECT {
        return Err(Error::InvalidConnectToken);
    }
    let mut v = ServerAddresses::new();
    for _ in 0..n {
        v.push(rd_address(r)?).map_err(|_| Error::InvalidConnectToken)?;
    }
    Ok(v)
}

fn wr_addresses(w: &mut Writer<'_>, a: &[SocketAddr]) -> Result<(), Error> {
    if a.is_empty() || a.len() > MAX_SERVERS_PER_CONNECT {
        return Err(Error::InvalidServerAddresses);
    }
    wr_u32(w, a.len() as u32)?;
    for x in a {
        wr_address(w, x)?;
    }
    Ok(())
}

/// The AEAD nonce for packets and challenge tokens: 4 zero bytes, then the
/// sequence as a little-endian u64.
pub fn sequence_nonce(sequence: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&sequence.to_le_bytes());
    n
}

fn token_aad(protocol_id: u64, expire_timestamp: u64) -> [u8; VERSION_INFO_BYTES + 16] {
    let mut a = [0u8; VERSION_INFO_BYTES + 16];
    a[..VERSION_INFO_BYTES].copy_from_slice(&VERSION_INFO);
    a[13..21].copy_from_slice(&protocol_id.to_le_bytes());
    a[21..29].copy_from_slice(&expire_timestamp.to_le_bytes());
    a
}

fn packet_aad(protocol_id: u64, prefix: u8) -> [u8; VERSION_INFO_BYTES + 9] {
    let mut a = [0u8; VERSION_INFO_BYTES + 9];
    a[..VERSION_INFO_BYTES].copy_from_slice(&VERSION_INFO);
    a[13..21].copy_from_slice(&protocol_id.to_le_bytes());
    a[21] = prefix;
    a
}

// ---------------------------------------------------------------- tokens

/// The private part of a connect token, in the clear (only the backend and
/// the servers, who share the private key, ever see it like this). ~1.9 KiB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateConnectToken {
    pub client_id: u64,
    /// Seconds without packets before either side times out; negative: never.
    pub timeout_seconds: i32,
    /// The addresses the servers compare their own address against.
    pub server_addresses: ServerAddresses,
    pub client_to_server_key: Key,
    pub server_to_client_key: Key,
    pub user_data: UserData,
}

impl PrivateConnectToken {
    /// Write the 1008 plaintext bytes (zero padded) followed by 16 zero bytes
    /// where the tag goes.
    pub fn emit(&self, out: &mut [u8; CONNECT_TOKEN_PRIVATE_BYTES]) -> Result<(), Error> {
        out.fill(0);
        let mut w = Writer::new(&mut out[..PRIVATE_PLAINTEXT_BYTES]);
        wr_u64(&mut w, self.client_id)?;
        wr_u32(&mut w, self.timeout_seconds as u32)?;
        wr_addresses(&mut w, &self.server_addresses)?;
        w.bytes(&self.client_to_server_key)?;
        w.bytes(&self.server_to_client_key)?;
        w.bytes(&self.user_data)?;
        Ok(())
    }

    /// Parse decrypted private data (the trailing tag, if present, is ignored).
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        Self::parse_fields(data).map_err(|_| Error::InvalidConnectToken)
    }

    fn parse_fields(data: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(data.get(..PRIVATE_PLAINTEXT_BYTES).ok_or(Error::InvalidConnectToken)?);
        let client_id = rd_u64(&mut r)?;
        let timeout_seconds = rd_u32(&mut r)? as i32;
        let server_addresses = rd_addresses(&mut r)?;
        Ok(PrivateConnectToken {
            client_id,
            timeout_seconds,
            server_addresses,
            client_to_server_key: r.array()?,
            server_to_client_key: r.array()?,
            user_data: r.array()?,
        })
    }

    /// Emit and seal into the 1024-byte encrypted form.
    pub fn seal(
        &self,
        protocol_id: u64,
        expire_timestamp: u64,
        nonce: &[u8; CONNECT_TOKEN_NONCE_BYTES],
        private_key: &Key,
        out: &mut [u8; CONNECT_TOKEN_PRIVATE_BYTES],
    ) -> Result<(), Error> {
        self.emit(out)?;
        seal_private(out, protocol_id, expire_timestamp, nonce, private_key);
        Ok(())
    }
}

/// Encrypt the first 1008 bytes in place and write the tag into the last 16.
pub fn seal_private(
    buf: &mut [u8; CONNECT_TOKEN_PRIVATE_BYTES],
    protocol_id: u64,
    expire_timestamp: u64,
    nonce: &[u8; CONNECT_TOKEN_NONCE_BYTES],
    private_key: &Key,
) {
    let (data, tag) = buf.split_at_mut(PRIVATE_PLAINTEXT_BYTES);
    let t = XChaCha20Poly1305::new(private_key).seal(nonce, &token_aad(protocol_id, expire_timestamp), data);
    tag.copy_from_slice(&t);
}

/// Verify and decrypt the first 1008 bytes in place. The tag is left where it
/// is: servers key their token history by it.
pub fn open_private(
    buf: &mut [u8; CONNECT_TOKEN_PRIVATE_BYTES],
    protocol_id: u64,
    expire_timestamp: u64,
    nonce: &[u8; CONNECT_TOKEN_NONCE_BYTES],
    private_key: &Key,
) -> Result<(), Error> {
    let (data, tag) = buf.split_at_mut(PRIVATE_PLAINTEXT_BYTES);
    XChaCha20Poly1305::new(private_key)
        .open(nonce, &token_aad(protocol_id, expire_timestamp), data, tag)
        .map_err(|_| Error::DecryptFailed)
}

/// A public connect token: what the backend hands the client (~3.2 KiB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectToken {
    pub protocol_id: u64,
    pub create_timestamp: u64,
    pub expire_timestamp: u64,
    pub nonce: [u8; CONNECT_TOKEN_NONCE_BYTES],
    /// The sealed private part, forwarded untouched in connection requests.
    pub private_data: [u8; CONNECT_TOKEN_PRIVATE_BYTES],
    pub timeout_seconds: i32,
    /// The addresses the client tries, in order.
    pub server_addresses: ServerAddresses,
    pub client_to_server_key: Key,
    pub server_to_client_key: Key,
}

impl ConnectToken {
    pub fn emit(&self, out: &mut [u8; CONNECT_TOKEN_BYTES]) -> Result<(), Error> {
        out.fill(0);
        let mut w = Writer::new(out);
        w.bytes(&VERSION_INFO)?;
        wr_u64(&mut w, self.protocol_id)?;
        wr_u64(&mut w, self.create_timestamp)?;
        wr_u64(&mut w, self.expire_timestamp)?;
        w.bytes(&self.nonce)?;
        w.bytes(&self.private_data)?;
        wr_u32(&mut w, self.timeout_seconds as u32)?;
        wr_addresses(&mut w, &self.server_addresses)?;
        w.bytes(&self.client_to_server_key)?;
        w.bytes(&self.server_to_client_key)?;
        Ok(())
    }

    /// Parse a public token. Checks the version info, that creation is not
    /// after expiry, and the address list; the private part stays sealed.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        Self::parse_fields(data).map_err(|_| Error::InvalidConnectToken)
    }

    fn parse_fields(data: &[u8]) -> Result<Self, Error> {
        if data.len() != CONNECT_TOKEN_BYTES {
            return Err(Error::InvalidConnectToken);
        }
        let mut r = Reader::new(data);
        if r.array::<VERSION_INFO_BYTES>()? != VERSION_INFO {
            return Err(Error::InvalidConnectToken);
        }
        let protocol_id = rd_u64(&mut r)?;
        let create_timestamp = rd_u64(&mut r)?;
        let expire_timestamp = rd_u64(&mut r)?;
        if create_timestamp > expire_timestamp {
            return Err(Error::InvalidConnectToken);
        }
        let nonce = r.array()?;
        let private_data = r.array()?;
        let timeout_seconds = rd_u32(&mut r)? as i32;
        let server_addresses = rd_addresses(&mut r)?;
        Ok(ConnectToken {
            protocol_id,
            create_timestamp,
            expire_timestamp,
            nonce,
            private_data,
            timeout_seconds,
            server_addresses,
            client_to_server_key: r.array()?,
            server_to_client_key: r.array()?,
        })
    }
}

/// What the web backend decides for one client.
#[derive(Debug, Clone)]
pub struct ConnectTokenParams<'a> {
    pub protocol_id: u64,
    pub client_id: u64,
    /// Unix time (seconds) now.
    pub create_timestamp: u64,
    /// Lifetime in seconds; negative: never expires (development only).
    pub expire_seconds: i32,
    /// Connection timeout in seconds; negative: never times out.
    pub timeout_seconds: i32,
    /// Addresses the client connects to, in order.
    pub public_addresses: &'a [SocketAddr],
    /// Addresses the servers see themselves as (same length; often the same
    /// list, different behind NAT or a load balancer).
    pub internal_addresses: &'a [SocketAddr],
    pub user_data: &'a UserData,
}

/// Make a connect token (web backend side): fresh random packet keys and
/// nonce from `rng`, private part sealed with `private_key`.
pub fn generate_connect_token<R: rand_core::RngCore + rand_core::CryptoRng>(
    params: &ConnectTokenParams<'_>,
    private_key: &Key,
    rng: &mut R,
    out: &mut [u8; CONNECT_TOKEN_BYTES],
) -> Result<(), Error> {
    let mut nonce = [0u8; CONNECT_TOKEN_NONCE_BYTES];
    let mut c2s = [0u8; KEY_BYTES];
    let mut s2c = [0u8; KEY_BYTES];
    rng.fill_bytes(&mut nonce);
    rng.fill_bytes(&mut c2s);
    rng.fill_bytes(&mut s2c);
    let token = build_connect_token(params, private_key, nonce, c2s, s2c)?;
    token.emit(out)
}

/// [`generate_connect_token`] with the random parts given (test vectors).
pub fn build_connect_token(
    params: &ConnectTokenParams<'_>,
    private_key: &Key,
    nonce: [u8; CONNECT_TOKEN_NONCE_BYTES],
    client_to_server_key: Key,
    server_to_client_key: Key,
) -> Result<ConnectToken, Error> {
    let n = params.public_addresses.len();
    if n == 0 || n > MAX_SERVERS_PER_CONNECT || params.internal_addresses.len() != n {
        return Err(Error::InvalidServerAddresses);
    }
    let expire_timestamp = if params.expire_seconds >= 0 {
        params.create_timestamp.saturating_add(params.expire_seconds as u64)
    } else {
        u64::MAX
    };
    let mut internal = ServerAddresses::new();
    let mut public = ServerAddresses::new();
    for (i, p) in params.internal_addresses.iter().zip(params.public_addresses) {
        internal.push(*i).map_err(|_| Error::InvalidServerAddresses)?;
        public.push(*p).map_err(|_| Error::InvalidServerAddresses)?;
    }
    let private = PrivateConnectToken {
        client_id: params.client_id,
        timeout_seconds: params.timeout_seconds,
        server_addresses: internal,
        client_to_server_key,
        server_to_client_key,
        user_data: *params.user_data,
    };
    let mut private_data = [0u8; CONNECT_TOKEN_PRIVATE_BYTES];
    private.seal(params.protocol_id, expire_timestamp, &nonce, private_key, &mut private_data)?;
    Ok(ConnectToken {
        protocol_id: params.protocol_id,
        create_timestamp: params.create_timestamp,
        expire_timestamp,
        nonce,
        private_data,
        timeout_seconds: params.timeout_seconds,
        server_addresses: public,
        client_to_server_key,
        server_to_client_key,
    })
}

/// The challenge token a server hands out and gets back in the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeToken {
    pub client_id: u64,
    pub user_data: UserData,
}

impl ChallengeToken {
    /// Emit and seal with the server's challenge key and sequence.
    pub fn seal(&self, sequence: u64, key: &Key, out: &mut [u8; CHALLENGE_TOKEN_BYTES]) {
        out.fill(0);
        out[..8].copy_from_slice(&self.client_id.to_le_bytes());
        out[8..8 + USER_DATA_BYTES].copy_from_slice(&self.user_data);
        let (data, tag) = out.split_at_mut(CHALLENGE_PLAINTEXT_BYTES);
        let t = ChaCha20Poly1305::new(key).seal(&sequence_nonce(sequence), &[], data);
        tag.copy_from_slice(&t);
    }

    /// Verify and decrypt a sealed challenge token (in place).
    pub fn open(sequence: u64, key: &Key, buf: &mut [u8; CHALLENGE_TOKEN_BYTES]) -> Result<Self, Error> {
        let (data, tag) = buf.split_at_mut(CHALLENGE_PLAINTEXT_BYTES);
        ChaCha20Poly1305::new(key).open(&sequence_nonce(sequence), &[], data, tag).map_err(|_| Error::DecryptFailed)?;
        let mut r = Reader::new(data);
        Ok(ChallengeToken { client_id: rd_u64(&mut r)?, user_data: r.array()? })
    }
}

// ---------------------------------------------------------------- packets

/// A zero-copy view of a connection request (not encrypted; checked for size,
/// version info and protocol id by [`RequestPacket::new_checked`]).
#[derive(Debug)]
pub struct RequestPacket<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> RequestPacket<T> {
    const EXPIRE: usize = 1 + VERSION_INFO_BYTES + 8;
    const NONCE: usize = Self::EXPIRE + 8;
    const PRIVATE: usize = Self::NONCE + CONNECT_TOKEN_NONCE_BYTES;

    /// Check the exact length, the version info and the protocol id.
    pub fn new_checked(buf: T, protocol_id: u64) -> Result<Self, Error> {
        let b = buf.as_ref();
        if b.len() != CONNECTION_REQUEST_BYTES {
            return Err(Error::WrongPacketSize);
        }
        let mut r = Reader::new(b);
        if r.u8()? != PacketType::Request as u8 {
            return Err(Error::InvalidPacketType);
        }
        if r.array::<VERSION_INFO_BYTES>()? != VERSION_INFO {
            return Err(Error::VersionMismatch);
        }
        if rd_u64(&mut r)? != protocol_id {
            return Err(Error::ProtocolIdMismatch);
        }
        Ok(RequestPacket { buf })
    }
    fn field<const N: usize>(&self, at: usize) -> [u8; N] {
        let mut a = [0u8; N];
        if let Some(s) = self.buf.as_ref().get(at..at + N) {
            a.copy_from_slice(s);
        }
        a
    }
    pub fn expire_timestamp(&self) -> u64 {
        u64::from_le_bytes(self.field(Self::EXPIRE))
    }
    pub fn nonce(&self) -> [u8; CONNECT_TOKEN_NONCE_BYTES] {
        self.field(Self::NONCE)
    }
    /// The sealed private connect token.
    pub fn private_data(&self) -> [u8; CONNECT_TOKEN_PRIVATE_BYTES] {
        self.field(Self::PRIVATE)
    }
}

/// Emit a connection request from a connect token. Returns its length (1078).
pub fn emit_request(token: &ConnectToken, out: &mut [u8]) -> Result<usize, Error> {
    let mut w = Writer::new(out);
    w.u8(PacketType::Request as u8)?;
    w.bytes(&VERSION_INFO)?;
    wr_u64(&mut w, token.protocol_id)?;
    wr_u64(&mut w, token.expire_timestamp)?;
    w.bytes(&token.nonce)?;
    w.bytes(&token.private_data)?;
    Ok(w.len())
}

/// The body of an encrypted packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body<'a> {
    Denied,
    Challenge { token_sequence: u64, token: &'a [u8; CHALLENGE_TOKEN_BYTES] },
    Response { token_sequence: u64, token: &'a [u8; CHALLENGE_TOKEN_BYTES] },
    KeepAlive { client_index: u32, max_clients: u32 },
    Payload(&'a [u8]),
    Disconnect,
}

impl Body<'_> {
    pub fn packet_type(&self) -> PacketType {
        match self {
            Body::Denied => PacketType::Denied,
            Body::Challenge { .. } => PacketType::Challenge,
            Body::Response { .. } => PacketType::Response,
            Body::KeepAlive { .. } => PacketType::KeepAlive,
            Body::Payload(_) => PacketType::Payload,
            Body::Disconnect => PacketType::Disconnect,
        }
    }
}

/// Bytes needed for a sequence number: high zero bytes dropped, at least one.
pub fn sequence_bytes(sequence: u64) -> usize {
    (8 - sequence.leading_zeros() as usize / 8).max(1)
}

/// Emit an encrypted packet (every type but the request) and return its length.
pub fn emit_encrypted(
    body: &Body<'_>,
    sequence: u64,
    key: &Key,
    protocol_id: u64,
    out: &mut [u8],
) -> Result<usize, Error> {
    let n = sequence_bytes(sequence);
    let prefix = body.packet_type() as u8 | ((n as u8) << 4);
    let mut w = Writer::new(out);
    w.u8(prefix)?;
    w.bytes(&sequence.to_le_bytes()[..n])?;
    let start = w.len();
    match body {
        Body::Denied | Body::Disconnect => {}
        Body::Challenge { token_sequence, token } | Body::Response { token_sequence, token } => {
            wr_u64(&mut w, *token_sequence)?;
            w.bytes(&token[..])?;
        }
        Body::KeepAlive { client_index, max_clients } => {
            wr_u32(&mut w, *client_index)?;
            wr_u32(&mut w, *max_clients)?;
        }
        Body::Payload(p) => {
            if p.is_empty() || p.len() > MAX_PAYLOAD_BYTES {
                return Err(Error::InvalidPayloadSize);
            }
            w.bytes(p)?;
        }
    }
    let end = w.len();
    w.zeros(MAC_BYTES)?;
    let (buf, total) = w.finish();
    let (data, tag) = buf.get_mut(start..total).ok_or(Error::BufferTooSmall)?.split_at_mut(end - start);
    let t = ChaCha20Poly1305::new(key).seal(&sequence_nonce(sequence), &packet_aad(protocol_id, prefix), data);
    tag.copy_from_slice(&t);
    Ok(total)
}

/// Read the prefix byte and sequence number of an encrypted packet and check
/// type and sizes that can be checked before decryption, in the order of the
/// standard ("Reading Encrypted Packets", steps 1-5).
pub fn peek_encrypted(buf: &[u8], allowed: Allowed) -> Result<(PacketType, u64, usize), Error> {
    if buf.len() < MIN_ENCRYPTED_PACKET_BYTES {
        return Err(Error::PacketTooSmall);
    }
    let prefix = buf[0];
    let t = PacketType::from_u8(prefix & 0x0f).ok_or(Error::InvalidPacketType)?;
    if t == PacketType::Request {
        return Err(Error::InvalidPacketType);
    }
    if !allowed.allows(t) {
        return Err(Error::PacketTypeNotAllowed);
    }
    let n = (prefix >> 4) as usize;
    if !(1..=8).contains(&n) {
        return Err(Error::InvalidSequenceBytes);
    }
    if buf.len() < 1 + n + MAC_BYTES {
        return Err(Error::PacketTooSmall);
    }
    let mut s = [0u8; 8];
    s[..n].copy_from_slice(&buf[1..1 + n]);
    Ok((t, u64::from_le_bytes(s), 1 + n))
}

/// Verify, replay-check and decrypt an encrypted packet in place, and parse
/// its body (a view into `buf`). The replay window (for keep-alive, payload
/// and disconnect packets) is consulted before decryption and advanced only
/// after the tag verified.
pub fn open_encrypted<'a>(
    buf: &'a mut [u8],
    key: &Key,
    protocol_id: u64,
    allowed: Allowed,
    replay: Option<&mut ReplayWindow>,
) -> Result<(u64, Body<'a>), Error> {
    let (t, sequence, header) = peek_encrypted(buf, allowed)?;
    let protected = matches!(t, PacketType::KeepAlive | PacketType::Payload | PacketType::Disconnect);
    if protected {
        if let Some(r) = replay.as_deref() {
            if r.already_received(sequence) {
                return Err(Error::Replayed);
            }
        }
    }
    let prefix = buf[0];
    let body_len = buf.len() - header - MAC_BYTES;
    let (data, tag) = buf[header..].split_at_mut(body_len);
    ChaCha20Poly1305::new(key)
        .open(&sequence_nonce(sequence), &packet_aad(protocol_id, prefix), data, tag)
        .map_err(|_| Error::DecryptFailed)?;
    if protected {
        if let Some(r) = replay {
            r.advance(sequence);
        }
    }
    let data: &'a [u8] = data;
    let body = match t {
        PacketType::Denied | PacketType::Disconnect => {
            if !data.is_empty() {
                return Err(Error::WrongPacketSize);
            }
            if t == PacketType::Denied {
                Body::Denied
            } else {
                Body::Disconnect
            }
        }
        PacketType::Challenge | PacketType::Response => {
            if data.len() != 8 + CHALLENGE_TOKEN_BYTES {
                return Err(Error::WrongPacketSize);
            }
            let (s, tok) = data.split_at(8);
            let token_sequence = u64::from_le_bytes(s.try_into().map_err(|_| Error::WrongPacketSize)?);
            let token: &[u8; CHALLENGE_TOKEN_BYTES] = tok.try_into().map_err(|_| Error::WrongPacketSize)?;
            if t == PacketType::Challenge {
                Body::Challenge { token_sequence, token }
            } else {
                Body::Response { token_sequence, token }
            }
        }
        PacketType::KeepAlive => {
            if data.len() != 8 {
                return Err(Error::WrongPacketSize);
            }
            let mut r = Reader::new(data);
            Body::KeepAlive { client_index: rd_u32(&mut r)?, max_clients: rd_u32(&mut r)? }
        }
        PacketType::Payload => {
            if data.is_empty() || data.len() > MAX_PAYLOAD_BYTES {
                return Err(Error::WrongPacketSize);
            }
            Body::Payload(data)
        }
        PacketType::Request => return Err(Error::InvalidPacketType),
    };
    Ok((sequence, body))
}

#[cfg(test)]
mod tests;
