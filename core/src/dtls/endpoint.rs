//! The DTLS 1.2 state machine: one [`DtlsEndpointN`] per peer, client or
//! server, driven through the crate's sans-IO contract.
//!
//! Flights (RFC 6347 4.2.4), with the server's optional cookie exchange:
//!
//! ```text
//! client                                   server
//! 1 ClientHello                     -->
//!                                   <--    HelloVerifyRequest (stateless)
//! 3 ClientHello (cookie)            -->
//!                                   <--    4 ServerHello, Certificate,
//!                                            ServerKeyExchange,
//!                                            CertificateRequest, ServerHelloDone
//! 5 Certificate, ClientKeyExchange,
//!   CertificateVerify, [CCS], Finished -->
//!                                   <--    6 [CCS], Finished
//! ```
//!
//! Each flight is kept whole (unfragmented) in the flight buffer and cut
//! into records that fit the MTU every time it is (re)sent. Received
//! fragments are reassembled one message at a time; fragments that arrive
//! ahead of their turn wait in a bounded buffer of pending fragments.

use core::net::SocketAddr;

use heapless::Deque;
use rand_core::{CryptoRng, RngCore};

use super::cert::{certificate_p256_key, DtlsIdentity, Fingerprint};
use super::prf::{extended_master_secret, prf_sha256, verify_data, EXPORTER_LABEL_DTLS_SRTP};
use super::queue::ByteQueue;
use super::record::{write_record, CipherSuite, RecordCipher, ReplayWindow, DTLS10, DTLS12, RECORD_HEADER_LEN};
use super::wire::{
    content, ext, hs, u16_list, AlertDescription, ClientHello, Extensions, Fragment, NamedGroup, Record, ServerHello,
    CERT_TYPE_ECDSA_SIGN, CURVE_TYPE_NAMED, EMPTY_RENEGOTIATION_SCSV, HS_HEADER_LEN, SIG_ECDSA_P256_SHA256,
};
use crate::bytes::{BufferTooSmall, Reader, Writer};
use crate::crypto::{
    ct_eq, ecdsa_p256_verify_digest, hmac_sha256, InvalidKey, P256Ecdh, Rng, Sha256, AEAD_TAG_LEN, P256_PUBLIC_LEN,
    X25519,
};
use crate::srtp::{SrtpKeyingMaterial, SrtpProfile};
use crate::time::{Duration, Instant};

/// Default path MTU for outgoing datagrams (bytes of UDP payload).
pub const DEFAULT_MTU: u16 = 1200;
/// Smallest MTU accepted in [`DtlsConfig::mtu`] (smaller values are raised).
pub const MIN_MTU: u16 = 256;
/// Default handshake reassembly size `HS`: the largest handshake message we
/// accept from the peer (its Certificate message above all). Costs `2 * HS`
/// bytes: the message being reassembled plus fragments waiting their turn.
pub const DEFAULT_HANDSHAKE_BUFFER: usize = 2048;
/// Default outgoing flight buffer `FLIGHT`: our largest flight kept whole for
/// retransmission (about 700 bytes with a generated certificate).
pub const DEFAULT_FLIGHT_BUFFER: usize = 2048;
/// Default application data queue `APP`, bytes per direction (received
/// records waiting to be read; records waiting to be sent). Costs `2 * APP`.
pub const DEFAULT_APP_BUFFER: usize = 2048;
/// Largest protected record (ciphertext) we decrypt: a stack buffer of this
/// size is used while opening a record. Longer records are dropped.
pub const MAX_RECORD_PLAINTEXT: usize = 1536;
/// Longest retransmission timeout the back-off grows to (RFC 6347 4.2.4.1).
pub const MAX_RETRANSMIT_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest HelloVerifyRequest cookie we keep (RFC 6347 allows 255).
const MAX_COOKIE_LEN: usize = 255;
/// Events waiting for `poll_event`.
const EVENT_QUEUE_LEN: usize = 8;
/// A retransmitted flight from the peer makes us resend ours at most this often.
const PEER_RETRANSMIT_GAP: Duration = Duration::from_millis(100);

/// Which side of the handshake this endpoint plays (WebRTC: the
/// `a=setup:active` side is the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DtlsRole {
    Client,
    Server,
}

/// Endpoint configuration: plain data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtlsConfig {
    pub role: DtlsRole,
    /// Largest datagram `poll_transmit` writes (default [`DEFAULT_MTU`]).
    pub mtu: u16,
    /// First retransmission timeout, doubled at each retry (default 1 s).
    pub initial_retransmit_timeout: Duration,
    /// Retransmissions of one flight before the handshake fails (default 6:
    /// with the default timeout the flight is sent at 0, 1, 3, 7, 15, 31
    /// and 63 s and the handshake fails at 123 s).
    pub max_retransmissions: u8,
    /// Offer/accept TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 (preferred).
    pub aes128_gcm: bool,
    /// Offer/accept TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256.
    pub chacha20_poly1305: bool,
    /// Offer/accept the x25519 group (preferred).
    pub x25519: bool,
    /// Offer/accept the secp256r1 group for ECDHE. (A client lists it in
    /// supported_groups anyway, as the curve of its certificate.)
    pub secp256r1: bool,
    /// SRTP profiles for `use_srtp`, in order of preference (`None` slots are
    /// skipped; all `None`: no `use_srtp`).
    pub srtp_profiles: [Option<SrtpProfile>; 3],
    /// Server: answer a ClientHello without a valid cookie with a
    /// HelloVerifyRequest (default true).
    pub cookie_exchange: bool,
}

impl DtlsConfig {
    /// Defaults: both suites, both groups, every SRTP profile, cookies on.
    pub const fn new(role: DtlsRole) -> Self {
        DtlsConfig {
            role,
            mtu: DEFAULT_MTU,
            initial_retransmit_timeout: Duration::from_secs(1),
            max_retransmissions: 6,
            aes128_gcm: true,
            chacha20_poly1305: true,
            x25519: true,
            secp256r1: true,
            srtp_profiles: [Some(SrtpProfile::ALL[0]), Some(SrtpProfile::ALL[1]), Some(SrtpProfile::ALL[2])],
            cookie_exchange: true,
        }
    }

    fn suites(&self) -> impl Iterator<Item = CipherSuite> + '_ {
        [
            (self.aes128_gcm, CipherSuite::EcdheEcdsaAes128GcmSha256),
            (self.chacha20_poly1305, CipherSuite::EcdheEcdsaChaCha20Poly1305Sha256),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, s)| s)
    }

    fn groups(&self) -> impl Iterator<Item = NamedGroup> + '_ {
        [(self.x25519, NamedGroup::X25519), (self.secp256r1, NamedGroup::Secp256r1)]
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, g)| g)
    }

    fn profiles(&self) -> impl Iterator<Item = SrtpProfile> + '_ {
        self.srtp_profiles.iter().flatten().copied()
    }
}

/// Why a handshake or connection failed (stable meanings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum DtlsFailure {
    /// A flight was retransmitted `max_retransmissions` times unanswered.
    Timeout,
    /// The peer's certificate fingerprint is not the expected one.
    FingerprintMismatch,
    /// The peer sent no certificate, or one we cannot read (not ECDSA P-256).
    BadCertificate,
    /// ServerKeyExchange or CertificateVerify signature did not verify.
    BadSignature,
    /// The peer's Finished did not match the handshake.
    BadFinished,
    /// No cipher suite, group or signature scheme in common.
    NoCommonParameters,
    /// The peer does not support extended_master_secret (RFC 7627).
    MissingExtendedMasterSecret,
    /// The peer's ECDHE public key is invalid.
    BadKeyShare,
    /// A handshake message arrived out of place.
    UnexpectedMessage,
    /// A handshake message could not be decoded.
    Malformed,
    /// A peer handshake message is larger than the reassembly buffer (`HS`).
    MessageTooLarge,
    /// Our flight does not fit the flight buffer (`FLIGHT`).
    FlightTooLarge,
    /// The peer sent a fatal alert with this description.
    PeerAlert(u8),
}

/// Something the caller should know about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsEvent {
    /// The handshake completed; application data may flow.
    Connected {
        /// SRTP master keys from the exporter, if `use_srtp` was negotiated.
        srtp: Option<SrtpKeyingMaterial>,
        cipher_suite: CipherSuite,
        group: NamedGroup,
        /// The peer certificate's fingerprint (check it here if no expected
        /// fingerprint was given).
        peer_fingerprint: Fingerprint,
    },
    /// A record of `len` bytes of application data is ready to read.
    ApplicationData { len: usize },
    /// The peer sent close_notify.
    PeerClosed,
    /// The endpoint failed and is closed.
    Failed(DtlsFailure),
}

/// Errors returned to the caller (stable meanings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum DtlsError {
    /// The datagram does not start with a DTLS record.
    Malformed,
    /// The endpoint failed or was closed.
    Closed,
    /// Application data before the handshake completed.
    NotConnected,
    /// More application data than fits one record at this MTU.
    TooLarge,
    /// The application data queue is full; poll_transmit first.
    WouldBlock,
    /// The caller's buffer is too small for the next record.
    BufferTooSmall,
}

/// Counters: plain data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DtlsStats {
    pub records_received: u64,
    pub records_sent: u64,
    /// Protected records already seen or older than the replay window.
    pub dropped_replayed: u64,
    /// Protected records whose AEAD tag did not verify.
    pub dropped_bad_tag: u64,
    /// Records of an epoch we cannot read (yet).
    pub dropped_bad_epoch: u64,
    /// Records or fragments that do not parse.
    pub dropped_malformed: u64,
    /// Records valid but out of place (application data before connection).
    pub dropped_unexpected: u64,
    /// Received application data dropped because the receive queue was full.
    pub dropped_app_overflow: u64,
    /// Handshake fragments dropped because the pending buffer was full.
    pub dropped_fragments: u64,
    /// Flights we retransmitted (timeouts and peer retransmissions).
    pub retransmissions: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    ClientWaitServerHello,
    ClientWaitCertificate,
    ClientWaitKeyExchange,
    ClientWaitCertRequestOrDone,
    ClientWaitHelloDone,
    ClientWaitFinished,
    ServerWaitClientHello,
    ServerWaitCertificate,
    ServerWaitKeyExchange,
    ServerWaitCertificateVerify,
    ServerWaitFinished,
    Connected,
    Closed,
    Failed,
}

enum Ephemeral {
    X25519(X25519),
    P256(P256Ecdh),
}

impl core::fmt::Debug for Ephemeral {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Ephemeral(..)")
    }
}

impl Ephemeral {
    fn generate(group: NamedGroup, rng: &mut Rng) -> Self {
        match group {
            NamedGroup::X25519 => Ephemeral::X25519(X25519::generate(rng)),
            NamedGroup::Secp256r1 => Ephemeral::P256(P256Ecdh::generate(rng)),
        }
    }
    /// The public key into `out`; returns its length.
    fn public(&self, out: &mut [u8; P256_PUBLIC_LEN]) -> usize {
        match self {
            Ephemeral::X25519(k) => {
                out[..32].copy_from_slice(&k.public_key());
                32
            }
            Ephemeral::P256(k) => {
                *out = k.public_key();
                P256_PUBLIC_LEN
            }
        }
    }
    fn agree(&self, peer: &[u8]) -> Result<[u8; 32], InvalidKey> {
        match self {
            Ephemeral::X25519(k) => k.diffie_hellman(&peer.try_into().map_err(|_| InvalidKey)?),
            Ephemeral::P256(k) => k.diffie_hellman(peer),
        }
    }
}

type Fail = (DtlsFailure, AlertDescription);

fn decode<T, E>(r: Result<T, E>) -> Result<T, Fail> {
    r.map_err(|_| (DtlsFailure::Malformed, AlertDescription::DecodeError))
}

fn flight_full(_: BufferTooSmall) -> Fail {
    (DtlsFailure::FlightTooLarge, AlertDescription::InternalError)
}

/// Append a handshake message to a flight: entry = content type, epoch,
/// 12-byte DTLS handshake header (unfragmented form), body written by `f`.
fn push_handshake<const F: usize>(
    flight: &mut ByteQueue<F>,
    epoch: u8,
    msg_type: u8,
    msg_seq: u16,
    f: impl FnOnce(&mut Writer<'_>) -> Result<(), BufferTooSmall>,
) -> Result<usize, BufferTooSmall> {
    flight.push_with(|w| {
        w.u8(content::HANDSHAKE)?;
        w.u8(epoch)?;
        w.u8(msg_type)?;
        w.u24(0)?;
        w.u16(msg_seq)?;
        w.u24(0)?;
        w.u24(0)?;
        f(w)?;
        let body = (w.len() - 2 - HS_HEADER_LEN) as u32;
        w.patch_u24(3, body)?;
        w.patch_u24(11, body)
    })
}

/// Everything but the receive-side buffers (so a reassembled message can be
/// borrowed while the handshake state changes).
struct Core<const FLIGHT: usize> {
    config: DtlsConfig,
    identity: DtlsIdentity,
    remote_fingerprint: Option<Fingerprint>,
    peer_addr: Option<SocketAddr>,
    rng: Rng,
    cookie_secret: [u8; 32],
    state: State,

    client_random: [u8; 32],
    server_random: [u8; 32],
    cookie: [u8; MAX_COOKIE_LEN],
    cookie_len: usize,
    suite: Option<CipherSuite>,
    group: Option<NamedGroup>,
    srtp: Option<SrtpProfile>,
    client_point_formats: bool,
    cert_requested: bool,
    peer_key: [u8; P256_PUBLIC_LEN],
    peer_fingerprint: Option<Fingerprint>,
    peer_share: [u8; P256_PUBLIC_LEN],
    peer_share_len: usize,
    ephemeral: Option<Ephemeral>,
    master: [u8; 48],
    transcript: Sha256,
    /// Hash of the messages before CertificateVerify (server side).
    verify_hash: [u8; 32],
    next_send_msg_seq: u16,
    next_recv_msg_seq: u16,

    write_epoch: u16,
    write_seq: [u64; 2],
    /// Epoch we read; `read_cipher` is the epoch-1 key, derived before the
    /// peer's ChangeCipherSpec switches `read_epoch` to 1.
    read_epoch: u16,
    read_cipher: Option<RecordCipher>,
    /// Epoch we write application data and alerts in; `write_cipher` is the
    /// epoch-1 key (flight entries carry their own epoch).
    write_cipher: Option<RecordCipher>,
    replay: ReplayWindow,

    flight: ByteQueue<FLIGHT>,
    flight_sending: bool,
    /// Where the next datagram of the flight starts: entry offset, byte offset
    /// in that message's body.
    cursor: (usize, usize),
    last_flight_sent: Option<Instant>,
    retransmit_at: Option<Instant>,
    rto: Duration,
    retransmits: u8,
    /// A HelloVerifyRequest to send: cookie and the ClientHello's message_seq.
    pending_hvr: Option<([u8; 32], u16)>,
    pending_alert: Option<(u8, AlertDescription)>,
    close_sent: bool,

    events: Deque<DtlsEvent, EVENT_QUEUE_LEN>,
    stats: DtlsStats,
}

impl<const FLIGHT: usize> Core<FLIGHT> {
    fn event(&mut self, e: DtlsEvent) {
        let _ = self.events.push_back(e);
    }

    fn is_handshaking(&self) -> bool {
        !matches!(self.state, State::Connected | State::Closed | State::Failed)
    }

    fn fail(&mut self, reason: DtlsFailure, alert: Option<AlertDescription>) {
        if matches!(self.state, State::Failed | State::Closed) {
            return;
        }
        net_debug!("dtls: failed: {:?}", reason);
        self.state = State::Failed;
        self.flight.clear();
        self.flight_sending = false;
        self.retransmit_at = None;
        self.pending_hvr = None;
        self.pending_alert = alert.map(|a| (2, a));
        self.event(DtlsEvent::Failed(reason));
    }

    /// A new flight was put in the buffer: send it from the start.
    fn start_flight(&mut self) {
        self.flight_sending = true;
        self.cursor = (0, 0);
        self.retransmit_at = None;
        self.retransmits = 0;
        self.rto = self.config.initial_retransmit_timeout;
    }

    fn handle_timeout(&mut self, now: Instant) {
        let Some(at) = self.retransmit_at else { return };
        if now < at {
            return;
        }
        if self.retransmits >= self.config.max_retransmissions {
            self.fail(DtlsFailure::Timeout, None);
            return;
        }
        self.retransmits += 1;
        self.rto = self.rto.saturating_mul(2).min(MAX_RETRANSMIT_TIMEOUT);
        self.retransmit_at = None;
        self.flight_sending = true;
        self.cursor = (0, 0);
        self.stats.retransmissions += 1;
    }

    /// The peer resent a message we already processed: it lost (part of) our
    /// last flight. Resend it (RFC 6347 4.2.4), not more often than
    /// `PEER_RETRANSMIT_GAP`.
    fn peer_retransmitted(&mut self, now: Instant) {
        let ours_last =
            self.is_handshaking() || (self.state == State::Connected && self.config.role == DtlsRole::Server);
        if !ours_last || self.flight.is_empty() || self.flight_sending {
            return;
        }
        if self.last_flight_sent.is_some_and(|t| now < t + PEER_RETRANSMIT_GAP) {
            return;
        }
        self.flight_sending = true;
        self.cursor = (0, 0);
        self.stats.retransmissions += 1;
    }

    // ------------------------------------------------------------ keys

    fn derive_keys(&self) -> (RecordCipher, RecordCipher) {
        let suite = self.suite.unwrap_or(CipherSuite::EcdheEcdsaAes128GcmSha256);
        let (k, iv) = (suite.key_len(), suite.iv_len());
        let mut kb = [0u8; 2 * 32 + 2 * 12];
        prf_sha256(
            &self.master,
            b"key expansion",
            &[&self.server_random, &self.client_random],
            &mut kb[..2 * (k + iv)],
        );
        let client = RecordCipher::new(suite, &kb[..k], &kb[2 * k..2 * k + iv]);
        let server = RecordCipher::new(suite, &kb[k..2 * k], &kb[2 * k + iv..2 * k + 2 * iv]);
        (client, server)
    }

    fn export(&self, label: &[u8], out: &mut [u8]) {
        prf_sha256(&self.master, label, &[&self.client_random, &self.server_random], out);
    }

    fn connected(&mut self) {
        self.state = State::Connected;
        self.retransmit_at = None;
        let srtp = self.srtp.and_then(|p| {
            let mut km = [0u8; 60];
            let n = p.keying_material_len();
            self.export(EXPORTER_LABEL_DTLS_SRTP, &mut km[..n]);
            SrtpKeyingMaterial::split(p, &km[..n])
        });
        net_debug!("dtls: connected");
        self.event(DtlsEvent::Connected {
            srtp,
            cipher_suite: self.suite.unwrap_or(CipherSuite::EcdheEcdsaAes128GcmSha256),
            group: self.group.unwrap_or(NamedGroup::Secp256r1),
            peer_fingerprint: self.peer_fingerprint.unwrap_or(Fingerprint { sha256: [0; 32] }),
        });
    }

    // ------------------------------------------------------------ messages

    /// Process one complete handshake message (`msg` = 12-byte header in
    /// unfragmented form + body) received in `epoch`.
    fn on_message(&mut self, epoch: u16, msg: &[u8]) {
        let msg_type = msg[0];
        let body = &msg[HS_HEADER_LEN..];
        if let Err((reason, alert)) = self.dispatch(epoch, msg_type, msg, body) {
            self.fail(reason, Some(alert));
        }
    }

    fn dispatch(&mut self, epoch: u16, msg_type: u8, msg: &[u8], body: &[u8]) -> Result<(), Fail> {
        let unexpected = Err((DtlsFailure::UnexpectedMessage, AlertDescription::UnexpectedMessage));
        // Finished must be protected; nothing else may be before Connected.
        if (msg_type == hs::FINISHED) != (epoch == 1) && self.is_handshaking() {
            return unexpected;
        }
        match (self.state, msg_type) {
            (State::ClientWaitServerHello, hs::HELLO_VERIFY_REQUEST) => self.on_hello_verify_request(body),
            (State::ClientWaitServerHello, hs::SERVER_HELLO) => self.on_server_hello(msg, body),
            (State::ClientWaitCertificate, hs::CERTIFICATE) | (State::ServerWaitCertificate, hs::CERTIFICATE) => {
                self.on_certificate(msg, body)
            }
            (State::ClientWaitKeyExchange, hs::SERVER_KEY_EXCHANGE) => self.on_server_key_exchange(msg, body),
            (State::ClientWaitCertRequestOrDone, hs::CERTIFICATE_REQUEST) => self.on_certificate_request(msg, body),
            (State::ClientWaitCertRequestOrDone, hs::SERVER_HELLO_DONE)
            | (State::ClientWaitHelloDone, hs::SERVER_HELLO_DONE) => self.on_server_hello_done(msg, body),
            (State::ClientWaitFinished, hs::FINISHED) => self.on_finished(msg, body),
            (State::ServerWaitClientHello, hs::CLIENT_HELLO) => self.on_client_hello(msg, body),
            (State::ServerWaitKeyExchange, hs::CLIENT_KEY_EXCHANGE) => self.on_client_key_exchange(msg, body),
            (State::ServerWaitCertificateVerify, hs::CERTIFICATE_VERIFY) => self.on_certificate_verify(msg, body),
            (State::ServerWaitFinished, hs::FINISHED) => self.on_finished(msg, body),
            (State::Connected, _) => Ok(()),
            _ => unexpected,
        }
    }

    fn start_client(&mut self) -> Result<(), Fail> {
        self.rng.fill_bytes(&mut self.client_random);
        self.write_client_hello()
    }

    fn write_client_hello(&mut self) -> Result<(), Fail> {
        self.flight.clear();
        self.transcript = Sha256::new();
        let seq = self.next_send_msg_seq;
        let config = &self.config;
        let random = &self.client_random;
        let cookie = &self.cookie[..self.cookie_len];
        let off = push_handshake(&mut self.flight, 0, hs::CLIENT_HELLO, seq, |w| {
            w.u16(DTLS12)?;
            w.bytes(random)?;
            w.u8(0)?; // session_id
            w.u8(cookie.len() as u8)?;
            w.bytes(cookie)?;
            let n = config.suites().count() as u16;
            w.u16(2 * n)?;
            for s in config.suites() {
                w.u16(s.id())?;
            }
            w.u8(1)?;
            w.u8(0)?; // null compression
            let ext_at = w.len();
            w.u16(0)?;
            // secp256r1 is always listed: in TLS 1.2 the list also names
            // the curves certificates may use (RFC 8422 5.1.1), and ours are
            // P-256. Disabled for ECDHE, it is still refused in
            // ServerKeyExchange.
            let cert_curve = (!config.secp256r1).then_some(NamedGroup::Secp256r1);
            let n = config.groups().count() as u16 + cert_curve.is_some() as u16;
            w.u16(ext::SUPPORTED_GROUPS)?;
            w.u16(2 + 2 * n)?;
            w.u16(2 * n)?;
            for g in config.groups().chain(cert_curve) {
                w.u16(g.id())?;
            }
            w.bytes(&[0, ext::EC_POINT_FORMATS as u8, 0, 2, 1, 0])?;
            w.u16(ext::SIGNATURE_ALGORITHMS)?;
            w.bytes(&[0, 4, 0, 2])?;
            w.u16(SIG_ECDSA_P256_SHA256)?;
            let n = config.profiles().count() as u16;
            if n > 0 {
                w.u16(ext::USE_SRTP)?;
                w.u16(2 + 2 * n + 1)?;
                w.u16(2 * n)?;
                for p in config.profiles() {
                    w.u16(p.id())?;
                }
                w.u8(0)?; // no MKI
            }
            w.u16(ext::EXTENDED_MASTER_SECRET)?;
            w.u16(0)?;
            w.u16(ext::RENEGOTIATION_INFO)?;
            w.bytes(&[0, 1, 0])?;
            let ext_len = (w.len() - ext_at - 2) as u16;
            w.patch_u16(ext_at, ext_len)
        })
        .map_err(flight_full)?;
        self.next_send_msg_seq += 1;
        self.hash_flight_entry(off);
        self.start_flight();
        Ok(())
    }

    fn hash_flight_entry(&mut self, off: usize) {
        if let Some((e, _)) = self.flight.entry_at(off) {
            self.transcript.update(&e[2..]);
        }
    }

    fn on_hello_verify_request(&mut self, body: &[u8]) -> Result<(), Fail> {
        let mut r = Reader::new(body);
        let _version = decode(r.u16())?;
        let cookie = decode(r.vec8())?;
        if cookie.is_empty() || cookie.len() > MAX_COOKIE_LEN {
            return Err((DtlsFailure::Malformed, AlertDescription::IllegalParameter));
        }
        self.cookie[..cookie.len()].copy_from_slice(cookie);
        self.cookie_len = cookie.len();
        // The second ClientHello starts the transcript (RFC 6347 4.2.1).
        self.write_client_hello()
    }

    fn on_server_hello(&mut self, msg: &[u8], body: &[u8]) -> Result<(), Fail> {
        let sh = decode(ServerHello::parse(body))?;
        let none = (DtlsFailure::NoCommonParameters, AlertDescription::HandshakeFailure);
        let illegal = (DtlsFailure::NoCommonParameters, AlertDescription::IllegalParameter);
        if sh.version != DTLS12 {
            return Err(none);
        }
        let suite = CipherSuite::from_id(sh.cipher_suite).filter(|s| self.config.suites().any(|o| o == *s));
        let Some(suite) = suite else { return Err(illegal) };
        if sh.compression != 0 {
            return Err(illegal);
        }
        let mut ems = false;
        for e in Extensions::new(sh.extensions) {
            let (t, data) = decode(e)?;
            match t {
                ext::EXTENDED_MASTER_SECRET => ems = true,
                ext::RENEGOTIATION_INFO if data != [0] => return Err(none),
                ext::USE_SRTP => {
                    let mut r = Reader::new(data);
                    let list = decode(r.vec16())?;
                    let _mki = decode(r.vec8())?;
                    let chosen = match list {
                        [a, b] => SrtpProfile::from_id(u16::from_be_bytes([*a, *b])),
                        _ => None,
                    };
                    match chosen.filter(|p| self.config.profiles().any(|o| o == *p)) {
                        Some(p) => self.srtp = Some(p),
                        None => return Err(illegal),
                    }
                }
                _ => {}
            }
        }
        if !ems {
            return Err((DtlsFailure::MissingExtendedMasterSecret, AlertDescription::HandshakeFailure));
        }
        self.suite = Some(suite);
        self.server_random = sh.random;
        self.transcript.update(msg);
        self.state = State::ClientWaitCertificate;
        Ok(())
    }

    /// Check the peer's Certificate message against the expected fingerprint
    /// and keep its public key.
    fn on_certificate(&mut self, msg: &[u8], body: &[u8]) -> Result<(), Fail> {
        let mut r = Reader::new(body);
        let list = decode(r.vec24())?;
        let mut l = Reader::new(list);
        if l.is_empty() {
            return Err((DtlsFailure::BadCertificate, AlertDescription::HandshakeFailure));
        }
        let der = decode(l.vec24())?;
        let fp = Fingerprint::of_certificate(der);
        if let Some(expected) = self.remote_fingerprint {
            if !expected.matches(&fp) {
                return Err((DtlsFailure::FingerprintMismatch, AlertDescription::BadCertificate));
            }
        }
        self.peer_key = certificate_p256_key(der)
            .map_err(|_| (DtlsFailure::BadCertificate, AlertDescription::UnsupportedCertificate))?;
        self.peer_fingerprint = Some(fp);
        self.transcript.update(msg);
        self.state = match self.config.role {
            DtlsRole::Client => State::ClientWaitKeyExchange,
            DtlsRole::Server => State::ServerWaitKeyExchange,
        };
        Ok(())
    }

    fn on_server_key_exchange(&mut self, msg: &[u8], body: &[u8]) -> Result<(), Fail> {
        let mut r = Reader::new(body);
        let curve_type = decode(r.u8())?;
        let group_id = decode(r.u16())?;
        let point = decode(r.vec8())?;
        let params = &body[..r.position()];
        let sig_alg = decode(r.u16())?;
        let sig = decode(r.vec16())?;
        let group = NamedGroup::from_id(group_id).filter(|g| self.config.groups().any(|o| o == *g));
        let Some(group) = group else {
            return Err((DtlsFailure::NoCommonParameters, AlertDescription::IllegalParameter));
        };
        if curve_type != CURVE_TYPE_NAMED || sig_alg != SIG_ECDSA_P256_SHA256 || point.len() > P256_PUBLIC_LEN {
            return Err((DtlsFailure::NoCommonParameters, AlertDescription::IllegalParameter));
        }
        let digest = crate::crypto::sha256(&[&self.client_random, &self.server_random, params]);
        ecdsa_p256_verify_digest(&self.peer_key, &digest, sig)
            .map_err(|_| (DtlsFailure::BadSignature, AlertDescription::DecryptError))?;
        self.group = Some(group);
        self.peer_share[..point.len()].copy_from_slice(point);
        self.peer_share_len = point.len();
        self.transcript.update(msg);
        self.state = State::ClientWaitCertRequestOrDone;
        Ok(())
    }

    fn on_certificate_request(&mut self, msg: &[u8], body: &[u8]) -> Result<(), Fail> {
        let mut r = Reader::new(body);
        let types = decode(r.vec8())?;
        let algs = decode(r.vec16())?;
        let _authorities = decode(r.vec16())?;
        if !types.contains(&CERT_TYPE_ECDSA_SIGN) || !u16_list(algs).any(|a| a == SIG_ECDSA_P256_SHA256) {
            return Err((DtlsFailure::NoCommonParameters, AlertDescription::HandshakeFailure));
        }
        self.cert_requested = true;
        self.transcript.update(msg);
        self.state = State::ClientWaitHelloDone;
        Ok(())
    }

    /// Client flight 5: [Certificate], ClientKeyExchange, [CertificateVerify],
    /// ChangeCipherSpec, Finished.
    fn on_server_hello_done(&mut self, msg: &[u8], body: &[u8]) -> Result<(), Fail> {
        if !body.is_empty() {
            return Err((DtlsFailure::Malformed, AlertDescription::DecodeError));
        }
        self.transcript.update(msg);
        let group = self.group.unwrap_or(NamedGroup::Secp256r1);
        let eph = Ephemeral::generate(group, &mut self.rng);
        let premaster = eph
            .agree(&self.peer_share[..self.peer_share_len])
            .map_err(|_| (DtlsFailure::BadKeyShare, AlertDescription::IllegalParameter))?;
        self.flight.clear();
        if self.cert_requested {
            self.write_certificate()?;
        }
        let mut public = [0u8; P256_PUBLIC_LEN];
        let n = eph.public(&mut public);
        let seq = self.next_send_msg_seq;
        let off = push_handshake(&mut self.flight, 0, hs::CLIENT_KEY_EXCHANGE, seq, |w| {
            w.u8(n as u8)?;
            w.bytes(&public[..n])
        })
        .map_err(flight_full)?;
        self.next_send_msg_seq += 1;
        self.hash_flight_entry(off);
        let session_hash = self.transcript.peek();
        self.master = extended_master_secret(&premaster, &session_hash);
        if self.cert_requested {
            let sig = self.identity.key.sign_digest(&session_hash);
            let seq = self.next_send_msg_seq;
            let off = push_handshake(&mut self.flight, 0, hs::CERTIFICATE_VERIFY, seq, |w| {
                w.u16(SIG_ECDSA_P256_SHA256)?;
                w.u16(sig.as_bytes().len() as u16)?;
                w.bytes(sig.as_bytes())
            })
            .map_err(flight_full)?;
            self.next_send_msg_seq += 1;
            self.hash_flight_entry(off);
        }
        let (client, server) = self.derive_keys();
        self.write_cipher = Some(client);
        self.write_epoch = 1;
        self.read_cipher = Some(server);
        self.write_ccs_and_finished(true)?;
        self.state = State::ClientWaitFinished;
        self.start_flight();
        Ok(())
    }

    fn write_certificate(&mut self) -> Result<(), Fail> {
        let seq = self.next_send_msg_seq;
        let der = self.identity.certificate_der();
        let off = push_handshake(&mut self.flight, 0, hs::CERTIFICATE, seq, |w| {
            w.u24(der.len() as u32 + 3)?;
            w.u24(der.len() as u32)?;
            w.bytes(der)
        })
        .map_err(flight_full)?;
        self.next_send_msg_seq += 1;
        self.hash_flight_entry(off);
        Ok(())
    }

    fn write_ccs_and_finished(&mut self, client: bool) -> Result<(), Fail> {
        if !self.flight.push(&[&[content::CHANGE_CIPHER_SPEC, 0, 1]]) {
            return Err(flight_full(BufferTooSmall));
        }
        let vd = verify_data(&self.master, client, &self.transcript.peek());
        let seq = self.next_send_msg_seq;
        let off = push_handshake(&mut self.flight, 1, hs::FINISHED, seq, |w| w.bytes(&vd)).map_err(flight_full)?;
        self.next_send_msg_seq += 1;
        self.hash_flight_entry(off);
        Ok(())
    }

    fn on_finished(&mut self, msg: &[u8], body: &[u8]) -> Result<(), Fail> {
        let client_sent = self.config.role == DtlsRole::Server;
        let expected = verify_data(&self.master, client_sent, &self.transcript.peek());
        if !ct_eq(&expected, body) {
            return Err((DtlsFailure::BadFinished, AlertDescription::DecryptError));
        }
        self.transcript.update(msg);
        if self.config.role == DtlsRole::Server {
            self.flight.clear();
            self.write_epoch = 1;
            self.write_ccs_and_finished(false)?;
            self.start_flight();
        }
        self.connected();
        Ok(())
    }

    fn cookie_for(&self, ch: &ClientHello<'_>) -> [u8; 32] {
        let mut addr = [0u8; 18];
        let alen = match self.peer_addr {
            Some(SocketAddr::V4(a)) => {
                addr[..4].copy_from_slice(&a.ip().octets());
                addr[4..6].copy_from_slice(&a.port().to_be_bytes());
                6
            }
            Some(SocketAddr::V6(a)) => {
                addr[..16].copy_from_slice(&a.ip().octets());
                addr[16..18].copy_from_slice(&a.port().to_be_bytes());
                18
            }
            None => 0,
        };
        hmac_sha256(
            &self.cookie_secret,
            &[
                &ch.version.to_be_bytes(),
                &ch.random,
                ch.session_id,
                ch.cipher_suites,
                ch.compression,
                ch.extensions,
                &addr[..alen],
            ],
        )
    }

    /// Server: flight 4 (or a stateless HelloVerifyRequest).
    fn on_client_hello(&mut self, msg: &[u8], body: &[u8]) -> Result<(), Fail> {
        let ch = decode(ClientHello::parse(body))?;
        if self.config.cookie_exchange {
            let cookie = self.cookie_for(&ch);
            if !ct_eq(&cookie, ch.cookie) {
                self.pending_hvr = Some((cookie, u16::from_be_bytes([msg[4], msg[5]])));
                return Ok(());
            }
        }
        let none = (DtlsFailure::NoCommonParameters, AlertDescription::HandshakeFailure);
        if ch.version > DTLS12 {
            // Numerically larger is older in DTLS: 0xfeff is DTLS 1.0.
            return Err(none);
        }
        let suite = self.config.suites().find(|s| u16_list(ch.cipher_suites).any(|o| o == s.id()));
        let Some(suite) = suite else { return Err(none) };
        if !ch.compression.contains(&0) {
            return Err(none);
        }
        let mut ems = false;
        let mut secure_reneg = u16_list(ch.cipher_suites).any(|s| s == EMPTY_RENEGOTIATION_SCSV);
        let mut group = None;
        let mut sig_ok = true;
        for e in Extensions::new(ch.extensions) {
            let (t, data) = decode(e)?;
            match t {
                ext::EXTENDED_MASTER_SECRET => ems = true,
                ext::RENEGOTIATION_INFO => {
                    if data != [0] {
                        return Err(none);
                    }
                    secure_reneg = true;
                }
                ext::SUPPORTED_GROUPS => {
                    let list = decode(Reader::new(data).vec16())?;
                    group = self.config.groups().find(|g| u16_list(list).any(|o| o == g.id()));
                    if group.is_none() {
                        return Err(none);
                    }
                }
                ext::SIGNATURE_ALGORITHMS => {
                    let list = decode(Reader::new(data).vec16())?;
                    sig_ok = u16_list(list).any(|a| a == SIG_ECDSA_P256_SHA256);
                }
                ext::EC_POINT_FORMATS => self.client_point_formats = true,
                ext::USE_SRTP => {
                    let list = decode(Reader::new(data).vec16())?;
                    self.srtp = self.config.profiles().find(|p| u16_list(list).any(|o| o == p.id()));
                }
                _ => {}
            }
        }
        if !ems {
            return Err((DtlsFailure::MissingExtendedMasterSecret, AlertDescription::HandshakeFailure));
        }
        let group = match group {
            Some(g) => g,
            None if self.config.secp256r1 => NamedGroup::Secp256r1,
            None => return Err(none),
        };
        if !sig_ok {
            return Err(none);
        }
        let _ = secure_reneg; // initial handshake: either signal is fine, or none
        self.suite = Some(suite);
        self.group = Some(group);
        self.client_random = ch.random;
        self.rng.fill_bytes(&mut self.server_random);
        self.transcript = Sha256::new();
        self.transcript.update(msg);
        // Our message_seq follows the ClientHello's (RFC 6347 4.2.2).
        self.next_send_msg_seq = u16::from_be_bytes([msg[4], msg[5]]);
        self.flight.clear();

        let seq = self.next_send_msg_seq;
        let (random, srtp, pf) = (&self.server_random, self.srtp, self.client_point_formats);
        let off = push_handshake(&mut self.flight, 0, hs::SERVER_HELLO, seq, |w| {
            w.u16(DTLS12)?;
            w.bytes(random)?;
            w.u8(0)?;
            w.u16(suite.id())?;
            w.u8(0)?;
            let ext_at = w.len();
            w.u16(0)?;
            w.u16(ext::RENEGOTIATION_INFO)?;
            w.bytes(&[0, 1, 0])?;
            w.u16(ext::EXTENDED_MASTER_SECRET)?;
            w.u16(0)?;
            if pf {
                w.bytes(&[0, ext::EC_POINT_FORMATS as u8, 0, 2, 1, 0])?;
            }
            if let Some(p) = srtp {
                w.u16(ext::USE_SRTP)?;
                w.u16(5)?;
                w.u16(2)?;
                w.u16(p.id())?;
                w.u8(0)?;
            }
            let ext_len = (w.len() - ext_at - 2) as u16;
            w.patch_u16(ext_at, ext_len)
        })
        .map_err(flight_full)?;
        self.next_send_msg_seq += 1;
        self.hash_flight_entry(off);
        self.write_certificate()?;

        let eph = Ephemeral::generate(group, &mut self.rng);
        let mut public = [0u8; P256_PUBLIC_LEN];
        let n = eph.public(&mut public);
        self.ephemeral = Some(eph);
        let mut params = [0u8; 4 + P256_PUBLIC_LEN];
        params[0] = CURVE_TYPE_NAMED;
        params[1..3].copy_from_slice(&group.id().to_be_bytes());
        params[3] = n as u8;
        params[4..4 + n].copy_from_slice(&public[..n]);
        let params = &params[..4 + n];
        let sig = self.identity.key.sign_sha256(&[&self.client_random, &self.server_random, params]);
        let seq = self.next_send_msg_seq;
        let off = push_handshake(&mut self.flight, 0, hs::SERVER_KEY_EXCHANGE, seq, |w| {
            w.bytes(params)?;
            w.u16(SIG_ECDSA_P256_SHA256)?;
            w.u16(sig.as_bytes().len() as u16)?;
            w.bytes(sig.as_bytes())
        })
        .map_err(flight_full)?;
        self.next_send_msg_seq += 1;
        self.hash_flight_entry(off);

        let seq = self.next_send_msg_seq;
        let off = push_handshake(&mut self.flight, 0, hs::CERTIFICATE_REQUEST, seq, |w| {
            w.bytes(&[1, CERT_TYPE_ECDSA_SIGN])?;
            w.u16(2)?;
            w.u16(SIG_ECDSA_P256_SHA256)?;
            w.u16(0) // no certificate authorities
        })
        .map_err(flight_full)?;
        self.next_send_msg_seq += 1;
        self.hash_flight_entry(off);

        let seq = self.next_send_msg_seq;
        let off = push_handshake(&mut self.flight, 0, hs::SERVER_HELLO_DONE, seq, |_| Ok(())).map_err(flight_full)?;
        self.next_send_msg_seq += 1;
        self.hash_flight_entry(off);
        self.state = State::ServerWaitCertificate;
        self.start_flight();
        Ok(())
    }

    fn on_client_key_exchange(&mut self, msg: &[u8], body: &[u8]) -> Result<(), Fail> {
        let point = decode(Reader::new(body).vec8())?;
        let eph = self.ephemeral.take().ok_or((DtlsFailure::UnexpectedMessage, AlertDescription::InternalError))?;
        let premaster = eph.agree(point).map_err(|_| (DtlsFailure::BadKeyShare, AlertDescription::IllegalParameter))?;
        self.transcript.update(msg);
        let session_hash = self.transcript.peek();
        self.verify_hash = session_hash;
        self.master = extended_master_secret(&premaster, &session_hash);
        let (client, server) = self.derive_keys();
        self.read_cipher = Some(client);
        self.write_cipher = Some(server);
        self.state = State::ServerWaitCertificateVerify;
        Ok(())
    }

    fn on_certificate_verify(&mut self, msg: &[u8], body: &[u8]) -> Result<(), Fail> {
        let mut r = Reader::new(body);
        let alg = decode(r.u16())?;
        let sig = decode(r.vec16())?;
        if alg != SIG_ECDSA_P256_SHA256 {
            return Err((DtlsFailure::NoCommonParameters, AlertDescription::IllegalParameter));
        }
        ecdsa_p256_verify_digest(&self.peer_key, &self.verify_hash, sig)
            .map_err(|_| (DtlsFailure::BadSignature, AlertDescription::DecryptError))?;
        self.transcript.update(msg);
        self.state = State::ServerWaitFinished;
        Ok(())
    }

    /// ChangeCipherSpec: switch reading to epoch 1 once its keys exist.
    fn on_change_cipher_spec(&mut self, payload: &[u8]) {
        if payload != [1] {
            self.stats.dropped_malformed += 1;
            return;
        }
        if self.read_epoch == 0 && self.read_cipher.is_some() {
            self.activate_read_epoch();
        } else if self.read_epoch == 0 {
            // Keys not derived yet (reordered): the peer will retransmit.
            self.stats.dropped_unexpected += 1;
        }
    }

    fn activate_read_epoch(&mut self) {
        self.read_epoch = 1;
        self.replay = ReplayWindow::default();
    }

    fn on_alert(&mut self, payload: &[u8]) {
        let [level, desc] = payload else {
            self.stats.dropped_malformed += 1;
            return;
        };
        if *desc == AlertDescription::CloseNotify as u8 {
            if matches!(self.state, State::Failed | State::Closed) {
                return;
            }
            self.state = State::Closed;
            self.flight_sending = false;
            self.retransmit_at = None;
            if !self.close_sent {
                self.pending_alert = Some((1, AlertDescription::CloseNotify));
            }
            self.event(DtlsEvent::PeerClosed);
        } else if *level == 2 {
            self.fail(DtlsFailure::PeerAlert(*desc), None);
        }
    }

    /// Write records from the flight into `out[at..limit]`; returns the new
    /// end. Clears `flight_sending` when the whole flight has gone out.
    fn write_flight(&mut self, now: Instant, out: &mut [u8], mut at: usize, limit: usize) -> usize {
        const MIN_FRAGMENT: usize = 32;
        while let Some((entry, next)) = self.flight.entry_at(self.cursor.0) {
            let (ctype, epoch, msg) = (entry[0], entry[1] as u16, &entry[2..]);
            let cipher = if epoch == 1 { self.write_cipher.as_ref() } else { None };
            let overhead = RECORD_HEADER_LEN + cipher.map_or(0, |c| c.overhead());
            if ctype == content::CHANGE_CIPHER_SPEC {
                if limit - at < overhead + 1 {
                    return at;
                }
                let seq = self.write_seq[0];
                match write_record(&mut out[at..limit], ctype, 0, seq, None, &[msg]) {
                    Some(n) => at += n,
                    None => return at,
                }
                self.write_seq[0] += 1;
                self.stats.records_sent += 1;
                self.cursor = (next, 0);
                continue;
            }
            let body = &msg[HS_HEADER_LEN..];
            loop {
                let off = self.cursor.1;
                let left = body.len() - off;
                let room = (limit - at).saturating_sub(overhead + HS_HEADER_LEN);
                if room < left.min(MIN_FRAGMENT) || (room == 0 && left > 0) {
                    return at;
                }
                let n = left.min(room);
                let mut hdr = [0u8; HS_HEADER_LEN];
                hdr[..6].copy_from_slice(&msg[..6]);
                hdr[6..9].copy_from_slice(&(off as u32).to_be_bytes()[1..]);
                hdr[9..12].copy_from_slice(&(n as u32).to_be_bytes()[1..]);
                let seq = self.write_seq[epoch as usize & 1];
                let parts: [&[u8]; 2] = [&hdr, &body[off..off + n]];
                match write_record(&mut out[at..limit], content::HANDSHAKE, epoch, seq, cipher, &parts) {
                    Some(len) => at += len,
                    None => return at,
                }
                self.write_seq[epoch as usize & 1] += 1;
                self.stats.records_sent += 1;
                self.cursor.1 += n;
                if self.cursor.1 >= body.len() {
                    self.cursor = (next, 0);
                    break;
                }
            }
        }
        // Whole flight sent.
        self.flight_sending = false;
        self.last_flight_sent = Some(now);
        if self.is_handshaking() {
            self.retransmit_at = Some(now + self.rto);
        }
        at
    }

    fn write_alert(&mut self, out: &mut [u8], at: usize, limit: usize) -> usize {
        let Some((level, desc)) = self.pending_alert else { return at };
        let (epoch, cipher) = match &self.write_cipher {
            Some(c) if self.write_epoch == 1 => (1u16, Some(c)),
            _ => (0, None),
        };
        let seq = self.write_seq[epoch as usize];
        match write_record(&mut out[at..limit], content::ALERT, epoch, seq, cipher, &[&[level, desc as u8]]) {
            Some(n) => {
                self.write_seq[epoch as usize] += 1;
                self.stats.records_sent += 1;
                self.pending_alert = None;
                if desc == AlertDescription::CloseNotify {
                    self.close_sent = true;
                }
                at + n
            }
            None => at,
        }
    }
}

/// Longest early epoch-1 handshake record kept (a Finished is 48-52 bytes).
const EARLY_RECORD_LEN: usize = 96;

/// One protected handshake record (the peer's Finished) that arrived before
/// the messages its keys come from.
struct EarlyRecord {
    fragment: [u8; EARLY_RECORD_LEN],
    len: usize,
    seq: u64,
    stored: bool,
}

enum Applied {
    Partial,
    Complete,
    Inconsistent,
    TooLarge,
}

/// The handshake message being reassembled: its header (in unfragmented
/// form, as the transcript hashes it) then its body, received as a growing
/// prefix; fragments beyond the prefix wait in the pending buffer.
struct Reassembly<const HS: usize> {
    msg: [u8; HS],
    active: bool,
    epoch: u16,
    len: usize,
    have: usize,
}

impl<const HS: usize> Reassembly<HS> {
    /// `frag` (of the expected message) starts within the received prefix.
    fn applies(&self, frag: &Fragment<'_>) -> bool {
        if self.active {
            frag.offset as usize <= self.have
        } else {
            frag.offset == 0
        }
    }

    fn apply(&mut self, epoch: u16, frag: &Fragment<'_>) -> Applied {
        let len = frag.length as usize;
        if !self.active {
            if HS_HEADER_LEN + len > HS {
                return Applied::TooLarge;
            }
            self.msg[0] = frag.msg_type;
            self.msg[1..4].copy_from_slice(&frag.length.to_be_bytes()[1..]);
            self.msg[4..6].copy_from_slice(&frag.msg_seq.to_be_bytes());
            self.msg[6..9].fill(0);
            self.msg[9..12].copy_from_slice(&frag.length.to_be_bytes()[1..]);
            self.active = true;
            self.epoch = epoch;
            self.len = len;
            self.have = 0;
        } else if frag.msg_type != self.msg[0] || len != self.len || epoch != self.epoch {
            return Applied::Inconsistent;
        }
        // `is_consistent` was checked: offset + body <= length <= HS - 12.
        let off = frag.offset as usize;
        let end = off + frag.body.len();
        self.msg[HS_HEADER_LEN + off..HS_HEADER_LEN + end].copy_from_slice(frag.body);
        self.have = self.have.max(end);
        if self.have >= self.len {
            self.active = false;
            Applied::Complete
        } else {
            Applied::Partial
        }
    }

    fn message(&self) -> &[u8] {
        &self.msg[..HS_HEADER_LEN + self.len]
    }
}

/// A DTLS 1.2 endpoint (client or server) for one peer, with capacities:
/// - `HS`: handshake reassembly (largest peer handshake message), costs `2 * HS` bytes;
/// - `FLIGHT`: our outgoing flight kept for retransmission, costs `FLIGHT` bytes;
/// - `APP`: application data queue per direction, costs `2 * APP` bytes.
///
/// Use [`DtlsEndpoint`] for the defaults. Call [`DtlsEndpointN::handle_receive`]
/// with every datagram whose first byte is 20..=63 (RFC 7983), then drain
/// `poll_transmit` and `poll_event`, and arm a timer at `poll_timeout`.
pub struct DtlsEndpointN<const HS: usize, const FLIGHT: usize, const APP: usize> {
    core: Core<FLIGHT>,
    reasm: Reassembly<HS>,
    early: EarlyRecord,
    /// Fragments ahead of their turn: `[epoch (2)][fragment as received]`.
    pending: ByteQueue<HS>,
    app_rx: ByteQueue<APP>,
    app_tx: ByteQueue<APP>,
}

/// A DTLS endpoint with the default capacities
/// ([`DEFAULT_HANDSHAKE_BUFFER`], [`DEFAULT_FLIGHT_BUFFER`], [`DEFAULT_APP_BUFFER`]).
pub type DtlsEndpoint = DtlsEndpointN<DEFAULT_HANDSHAKE_BUFFER, DEFAULT_FLIGHT_BUFFER, DEFAULT_APP_BUFFER>;

impl<const HS: usize, const FLIGHT: usize, const APP: usize> core::fmt::Debug for DtlsEndpointN<HS, FLIGHT, APP> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DtlsEndpoint")
            .field("role", &self.core.config.role)
            .field("state", &self.core.state)
            .field("stats", &self.core.stats)
            .finish()
    }
}

impl<const HS: usize, const FLIGHT: usize, const APP: usize> DtlsEndpointN<HS, FLIGHT, APP> {
    /// A new endpoint. A client starts its handshake at once (its first
    /// datagram is ready in `poll_transmit`). With `remote_fingerprint` the
    /// peer must present exactly that certificate; with `None` any
    /// certificate whose key signs the handshake is accepted and its
    /// fingerprint is reported in [`DtlsEvent::Connected`].
    pub fn new<R: RngCore + CryptoRng>(
        config: DtlsConfig,
        identity: &DtlsIdentity,
        remote_fingerprint: Option<Fingerprint>,
        rng: &mut R,
    ) -> Self {
        let mut config = config;
        config.mtu = config.mtu.max(MIN_MTU);
        let mut rng = Rng::from_rng(rng);
        let mut cookie_secret = [0u8; 32];
        rng.fill_bytes(&mut cookie_secret);
        let core = Core {
            config,
            identity: identity.clone(),
            remote_fingerprint,
            peer_addr: None,
            rng,
            cookie_secret,
            state: match config.role {
                DtlsRole::Client => State::ClientWaitServerHello,
                DtlsRole::Server => State::ServerWaitClientHello,
            },
            client_random: [0; 32],
            server_random: [0; 32],
            cookie: [0; MAX_COOKIE_LEN],
            cookie_len: 0,
            suite: None,
            group: None,
            srtp: None,
            client_point_formats: false,
            cert_requested: false,
            peer_key: [0; P256_PUBLIC_LEN],
            peer_fingerprint: None,
            peer_share: [0; P256_PUBLIC_LEN],
            peer_share_len: 0,
            ephemeral: None,
            master: [0; 48],
            transcript: Sha256::new(),
            verify_hash: [0; 32],
            next_send_msg_seq: 0,
            next_recv_msg_seq: 0,
            write_epoch: 0,
            write_seq: [0; 2],
            read_epoch: 0,
            read_cipher: None,
            write_cipher: None,
            replay: ReplayWindow::default(),
            flight: ByteQueue::new(),
            flight_sending: false,
            cursor: (0, 0),
            last_flight_sent: None,
            retransmit_at: None,
            rto: config.initial_retransmit_timeout,
            retransmits: 0,
            pending_hvr: None,
            pending_alert: None,
            close_sent: false,
            events: Deque::new(),
            stats: DtlsStats::default(),
        };
        let mut ep = DtlsEndpointN {
            core,
            reasm: Reassembly { msg: [0; HS], active: false, epoch: 0, len: 0, have: 0 },
            early: EarlyRecord { fragment: [0; EARLY_RECORD_LEN], len: 0, seq: 0, stored: false },
            pending: ByteQueue::new(),
            app_rx: ByteQueue::new(),
            app_tx: ByteQueue::new(),
        };
        if config.role == DtlsRole::Client {
            if let Err((reason, alert)) = ep.core.start_client() {
                ep.core.fail(reason, Some(alert));
            }
        }
        ep
    }

    /// The peer's transport address, bound into the server's cookie.
    pub fn set_peer_address(&mut self, addr: SocketAddr) {
        self.core.peer_addr = Some(addr);
    }

    /// Set (or replace) the expected peer fingerprint before the peer's
    /// certificate arrives (e.g. when the SDP answer comes after the offer).
    pub fn set_remote_fingerprint(&mut self, fingerprint: Fingerprint) {
        self.core.remote_fingerprint = Some(fingerprint);
    }

    pub fn role(&self) -> DtlsRole {
        self.core.config.role
    }

    pub fn is_connected(&self) -> bool {
        self.core.state == State::Connected
    }

    /// Failed or closed: nothing more will happen.
    pub fn is_closed(&self) -> bool {
        matches!(self.core.state, State::Closed | State::Failed)
    }

    pub fn stats(&self) -> DtlsStats {
        self.core.stats
    }

    /// The largest application data record `send_application_data` takes.
    pub fn max_application_data_len(&self) -> usize {
        let overhead = self.core.suite.map_or(8 + AEAD_TAG_LEN, |s| s.record_overhead());
        (self.core.config.mtu as usize).saturating_sub(RECORD_HEADER_LEN + overhead)
    }

    /// Process one received datagram (one or more records).
    pub fn handle_receive(&mut self, now: Instant, datagram: &[u8]) -> Result<(), DtlsError> {
        if self.is_closed() {
            return Err(DtlsError::Closed);
        }
        let mut r = Reader::new(datagram);
        let mut first = true;
        while !r.is_empty() {
            let rec = match Record::parse(&mut r) {
                Ok(rec) => rec,
                Err(_) => {
                    self.core.stats.dropped_malformed += 1;
                    return if first { Err(DtlsError::Malformed) } else { Ok(()) };
                }
            };
            first = false;
            self.on_record(now, &rec);
            if self.is_closed() {
                return Ok(());
            }
        }
        if self.early.stored && self.core.read_cipher.is_some() {
            self.early.stored = false;
            let early = self.early.fragment;
            let rec = Record {
                ctype: content::HANDSHAKE,
                version: DTLS12,
                epoch: 1,
                seq: self.early.seq,
                fragment: &early[..self.early.len],
            };
            self.on_record(now, &rec);
        }
        Ok(())
    }

    fn on_record(&mut self, now: Instant, rec: &Record<'_>) {
        let c = &mut self.core;
        c.stats.records_received += 1;
        if rec.version != DTLS12 && !(rec.version == DTLS10 && rec.epoch == 0) {
            c.stats.dropped_malformed += 1;
            return;
        }
        if rec.epoch == 0 {
            match rec.ctype {
                content::HANDSHAKE => self.on_handshake_payload(now, 0, rec.fragment),
                content::CHANGE_CIPHER_SPEC => c.on_change_cipher_spec(rec.fragment),
                content::ALERT if c.read_epoch == 0 => c.on_alert(rec.fragment),
                content::ALERT => c.stats.dropped_bad_epoch += 1,
                _ => c.stats.dropped_unexpected += 1,
            }
            return;
        }
        // The peer's next epoch before its ChangeCipherSpec (reordered): if
        // the keys exist, a record that authenticates switches the epoch.
        let early_epoch = rec.epoch == 1 && c.read_epoch == 0 && c.read_cipher.is_some();
        if rec.epoch == 1
            && c.read_epoch == 0
            && !early_epoch
            && rec.ctype == content::HANDSHAKE
            && !self.early.stored
            && rec.fragment.len() <= EARLY_RECORD_LEN
        {
            // Its Finished before the messages giving the keys: keep it
            // until they arrive.
            self.early.stored = true;
            self.early.seq = rec.seq;
            self.early.len = rec.fragment.len();
            self.early.fragment[..rec.fragment.len()].copy_from_slice(rec.fragment);
            return;
        }
        let cipher = match &c.read_cipher {
            Some(cipher) if rec.epoch == c.read_epoch || early_epoch => cipher,
            _ => {
                c.stats.dropped_bad_epoch += 1;
                return;
            }
        };
        if !early_epoch && !c.replay.check(rec.seq) {
            c.stats.dropped_replayed += 1;
            return;
        }
        let mut plain = [0u8; MAX_RECORD_PLAINTEXT];
        let Some(n) = cipher.open(rec.ctype, rec.version, rec.epoch, rec.seq, rec.fragment, &mut plain) else {
            c.stats.dropped_bad_tag += 1;
            return;
        };
        if early_epoch {
            c.activate_read_epoch();
        }
        c.replay.mark(rec.seq);
        let payload = &plain[..n];
        match rec.ctype {
            content::HANDSHAKE => self.on_handshake_payload(now, 1, payload),
            content::ALERT => c.on_alert(payload),
            content::APPLICATION_DATA if c.state == State::Connected => {
                if self.app_rx.push(&[payload]) {
                    c.event(DtlsEvent::ApplicationData { len: n });
                } else {
                    c.stats.dropped_app_overflow += 1;
                }
            }
            content::CHANGE_CIPHER_SPEC => {}
            _ => c.stats.dropped_unexpected += 1,
        }
    }

    fn on_handshake_payload(&mut self, now: Instant, epoch: u16, payload: &[u8]) {
        let mut r = Reader::new(payload);
        while !r.is_empty() && !self.is_closed() {
            let start = r.position();
            let Ok(frag) = Fragment::parse(&mut r) else {
                self.core.stats.dropped_malformed += 1;
                return;
            };
            if !frag.is_consistent() {
                self.core.stats.dropped_malformed += 1;
                continue;
            }
            self.on_fragment(now, epoch, &frag, &payload[start..r.position()]);
        }
    }

    fn on_fragment(&mut self, now: Instant, epoch: u16, frag: &Fragment<'_>, raw: &[u8]) {
        let c = &mut self.core;
        // A server without state accepts a ClientHello at any message_seq
        // (the cookie exchange makes the client count up).
        if c.state == State::ServerWaitClientHello
            && frag.msg_type == hs::CLIENT_HELLO
            && frag.msg_seq != c.next_recv_msg_seq
        {
            c.next_recv_msg_seq = frag.msg_seq;
            self.reasm.active = false;
            self.pending.clear();
        }
        // A protected hello after the handshake starts a renegotiation (its
        // message_seq restarts at 0): refused (RFC 5746 4.2, 4.4).
        if c.state == State::Connected && epoch == 1 && matches!(frag.msg_type, hs::CLIENT_HELLO | hs::HELLO_REQUEST) {
            if frag.offset == 0 && c.pending_alert.is_none() {
                c.pending_alert = Some((1, AlertDescription::NoRenegotiation));
            }
            return;
        }
        if frag.msg_seq < c.next_recv_msg_seq {
            if frag.offset == 0 {
                c.peer_retransmitted(now);
            }
            return;
        }
        if frag.msg_seq > c.next_recv_msg_seq || !self.reasm.applies(frag) {
            if !self.pending.push(&[&epoch.to_be_bytes(), raw]) {
                c.stats.dropped_fragments += 1;
            }
            return;
        }
        let result = self.reasm.apply(epoch, frag);
        self.after_apply(result);
        self.drain_pending();
    }

    fn after_apply(&mut self, result: Applied) {
        match result {
            Applied::Partial => {}
            Applied::Inconsistent => self.core.stats.dropped_malformed += 1,
            Applied::TooLarge => self.core.fail(DtlsFailure::MessageTooLarge, Some(AlertDescription::InternalError)),
            Applied::Complete => {
                self.core.next_recv_msg_seq = self.core.next_recv_msg_seq.wrapping_add(1);
                self.core.on_message(self.reasm.epoch, self.reasm.message());
            }
        }
    }

    /// Apply waiting fragments that have become usable; drop stale ones.
    fn drain_pending(&mut self) {
        let mut off = 0;
        while !self.is_closed() {
            let Some((entry, next)) = self.pending.entry_at(off) else { break };
            let epoch = u16::from_be_bytes([entry[0], entry[1]]);
            let frag = match Fragment::parse(&mut Reader::new(&entry[2..])) {
                Ok(f) if f.msg_seq >= self.core.next_recv_msg_seq => f,
                _ => {
                    self.pending.remove_at(off);
                    continue;
                }
            };
            if frag.msg_seq != self.core.next_recv_msg_seq || !self.reasm.applies(&frag) {
                off = next;
                continue;
            }
            let result = self.reasm.apply(epoch, &frag);
            self.pending.remove_at(off);
            self.after_apply(result);
            off = 0; // the state changed: rescan from the start
        }
    }

    /// Write the next datagram (at most the MTU, several records packed) into
    /// `buf`; returns its length, or `None` if there is nothing to send.
    /// `buf` should hold at least the configured MTU.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let limit = buf.len().min(self.core.config.mtu as usize);
        let c = &mut self.core;
        let mut at = 0;
        if let Some((cookie, msg_seq)) = c.pending_hvr {
            let mut body = [0u8; HS_HEADER_LEN + 3 + 32];
            body[0] = hs::HELLO_VERIFY_REQUEST;
            body[1..4].copy_from_slice(&35u32.to_be_bytes()[1..]);
            body[4..6].copy_from_slice(&msg_seq.to_be_bytes());
            body[9..12].copy_from_slice(&35u32.to_be_bytes()[1..]);
            body[12..14].copy_from_slice(&DTLS10.to_be_bytes());
            body[14] = 32;
            body[15..].copy_from_slice(&cookie);
            if let Some(n) = write_record(&mut buf[..limit], content::HANDSHAKE, 0, c.write_seq[0], None, &[&body]) {
                c.write_seq[0] += 1;
                c.stats.records_sent += 1;
                c.pending_hvr = None;
                return Some(n);
            }
            return None;
        }
        if c.flight_sending {
            at = c.write_flight(now, buf, at, limit);
        }
        let app_ok = matches!(c.state, State::Connected | State::Closed) && c.write_epoch == 1;
        if app_ok && !c.flight_sending {
            while let Some(data) = self.app_tx.front() {
                let seq = c.write_seq[1];
                match write_record(
                    &mut buf[at..limit],
                    content::APPLICATION_DATA,
                    1,
                    seq,
                    c.write_cipher.as_ref(),
                    &[data],
                ) {
                    Some(n) => {
                        at += n;
                        c.write_seq[1] += 1;
                        c.stats.records_sent += 1;
                        self.app_tx.pop_front();
                    }
                    None => break,
                }
            }
        }
        if !c.flight_sending {
            at = c.write_alert(buf, at, limit);
        }
        (at > 0).then_some(at)
    }

    pub fn poll_event(&mut self) -> Option<DtlsEvent> {
        self.core.events.pop_front()
    }

    /// When `handle_timeout` should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.core.flight_sending {
            return None;
        }
        self.core.retransmit_at
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.core.handle_timeout(now);
    }

    /// Queue one record of application data (sent by `poll_transmit`).
    pub fn send_application_data(&mut self, data: &[u8]) -> Result<(), DtlsError> {
        match self.core.state {
            State::Connected => {}
            State::Closed | State::Failed => return Err(DtlsError::Closed),
            _ => return Err(DtlsError::NotConnected),
        }
        if data.len() > self.max_application_data_len() {
            return Err(DtlsError::TooLarge);
        }
        if self.app_tx.push(&[data]) {
            Ok(())
        } else {
            Err(DtlsError::WouldBlock)
        }
    }

    /// Read the next received application data record into `out`:
    /// `Ok(None)` when there is none, `BufferTooSmall` (record kept) if `out`
    /// cannot hold it.
    pub fn read_application_data(&mut self, out: &mut [u8]) -> Result<Option<usize>, DtlsError> {
        let Some(data) = self.app_rx.front() else { return Ok(None) };
        let n = data.len();
        out.get_mut(..n).ok_or(DtlsError::BufferTooSmall)?.copy_from_slice(data);
        self.app_rx.pop_front();
        Ok(Some(n))
    }

    /// RFC 5705 exporter without context: `out.len()` bytes for `label`.
    pub fn export_keying_material(&self, label: &[u8], out: &mut [u8]) -> Result<(), DtlsError> {
        if self.core.state != State::Connected {
            return Err(DtlsError::NotConnected);
        }
        self.core.export(label, out);
        Ok(())
    }

    /// Send close_notify and close. Queued application data goes first.
    pub fn close(&mut self) {
        if self.core.state == State::Connected {
            self.core.pending_alert = Some((1, AlertDescription::CloseNotify));
        }
        if !matches!(self.core.state, State::Failed) {
            self.core.state = State::Closed;
            self.core.retransmit_at = None;
        }
    }
}
