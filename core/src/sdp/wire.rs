//! SDP text on the wire: a parsed representation borrowing `&str` slices of
//! the input ([`SessionDescription::parse`]) and a writer into a caller
//! buffer ([`SessionDescription::write`]).
//!
//! Parsing is line based (`<type>=<value>`, CRLF or LF). Lines this module
//! does not model (`c=`, `b=`, `a=rtcp:`, `a=msid-semantic`, `a=rtcp-xr`, ...)
//! are skipped; a malformed line of a kind it does model yields an [`Error`]
//! with its 1-based line number. Lists are bounded by the constants in
//! [`super`]; entries past a bound are ignored and flagged with
//! [`MediaDescription::truncated`] (more media sections than
//! [`MAX_MEDIA_SECTIONS`] is an error, since an answer must mirror them all).

use core::fmt::{self, Write as _};
use core::net::{IpAddr, SocketAddr};

use heapless::Vec;

use super::{
    BufferTooSmall, MAX_CANDIDATES, MAX_CODECS, MAX_EXTMAPS, MAX_FINGERPRINT_LEN, MAX_MEDIA_SECTIONS, MAX_SSRCS,
};

/// Why an SDP could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ErrorKind {
    /// A line is not of the form `<letter>=<value>`.
    Syntax,
    /// The description does not start with `v=0`.
    MissingVersion,
    /// `v=` is not 0.
    UnsupportedVersion,
    /// Malformed `o=` line.
    Origin,
    /// Malformed `m=` line.
    Media,
    /// Malformed `a=group:`.
    Group,
    /// Malformed `a=rtpmap:`.
    Rtpmap,
    /// Malformed `a=fmtp:`.
    Fmtp,
    /// Malformed `a=rtcp-fb:`.
    RtcpFeedback,
    /// Malformed `a=extmap:`.
    Extmap,
    /// Malformed `a=candidate:`.
    Candidate(CandidateError),
    /// Malformed or unsupported `a=fingerprint:`.
    Fingerprint,
    /// Unknown `a=setup:` value.
    Setup,
    /// Malformed `a=ssrc:`.
    Ssrc,
    /// Malformed `a=ssrc-group:`.
    SsrcGroup,
    /// Malformed `a=msid:`.
    Msid,
    /// Malformed `a=sctp-port:`.
    SctpPort,
    /// Malformed `a=max-message-size:`.
    MaxMessageSize,
    /// More than [`MAX_MEDIA_SECTIONS`] `m=` sections.
    TooManyMediaSections,
}

/// A parse error: what went wrong and on which line (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Error {
    pub line: u32,
    pub kind: ErrorKind,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SDP line {}: invalid {:?}", self.line, self.kind)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

/// Why a candidate attribute could not be parsed (RFC 8839 section 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CandidateError {
    /// Fewer than the eight mandatory fields.
    MissingField,
    Component,
    Transport,
    Priority,
    Port,
    /// `typ` missing or unknown.
    Type,
    /// `raddr`/`rport` malformed.
    Related,
}

/// `m=` media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MediaKind {
    Audio,
    Video,
    /// Data channels (`m=application ... webrtc-datachannel`).
    Application,
    /// Any other media type (kept so an answer can reject it).
    Other,
}

impl MediaKind {
    fn parse(s: &str) -> MediaKind {
        match s {
            "audio" => MediaKind::Audio,
            "video" => MediaKind::Video,
            "application" => MediaKind::Application,
            _ => MediaKind::Other,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
            MediaKind::Application => "application",
            MediaKind::Other => "unknown",
        }
    }
    /// Whether the section carries RTP (payload-type formats, codecs).
    pub fn is_rtp(self) -> bool {
        matches!(self, MediaKind::Audio | MediaKind::Video)
    }
}

/// Media direction attribute (RFC 8866 section 6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn parse(s: &str) -> Option<Direction> {
        Some(match s {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
    pub fn from_flags(send: bool, recv: bool) -> Direction {
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
    /// The direction as seen from the other side.
    pub fn reverse(self) -> Direction {
        Direction::from_flags(self.receives(), self.sends())
    }
}

/// DTLS role attribute (RFC 8842 section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Setup {
    ActPass,
    /// DTLS client.
    Active,
    /// DTLS server.
    Passive,
    HoldConn,
}

impl Setup {
    fn parse(s: &str) -> Option<Setup> {
        Some(match s {
            "actpass" => Setup::ActPass,
            "active" => Setup::Active,
            "passive" => Setup::Passive,
            "holdconn" => Setup::HoldConn,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            Setup::ActPass => "actpass",
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::HoldConn => "holdconn",
        }
    }
}

/// Hash function of a certificate fingerprint (RFC 8122 section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HashFunction {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl HashFunction {
    fn parse(s: &str) -> Option<HashFunction> {
        let h = [
            ("sha-1", HashFunction::Sha1),
            ("sha-224", HashFunction::Sha224),
            ("sha-256", HashFunction::Sha256),
            ("sha-384", HashFunction::Sha384),
            ("sha-512", HashFunction::Sha512),
        ];
        h.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)).map(|(_, h)| *h)
    }
    pub fn name(self) -> &'static str {
        match self {
            HashFunction::Sha1 => "sha-1",
            HashFunction::Sha224 => "sha-224",
            HashFunction::Sha256 => "sha-256",
            HashFunction::Sha384 => "sha-384",
            HashFunction::Sha512 => "sha-512",
        }
    }
    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            HashFunction::Sha1 => 20,
            HashFunction::Sha224 => 28,
            HashFunction::Sha256 => 32,
            HashFunction::Sha384 => 48,
            HashFunction::Sha512 => 64,
        }
    }
}

/// A certificate fingerprint (`a=fingerprint:sha-256 AB:CD:...`), decoded.
/// Costs [`MAX_FINGERPRINT_LEN`] + 2 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Fingerprint {
    pub hash: HashFunction,
    len: u8,
    bytes: [u8; MAX_FINGERPRINT_LEN],
}

impl Fingerprint {
    /// A SHA-256 fingerprint from its digest.
    pub fn sha256(digest: [u8; 32]) -> Fingerprint {
        let mut bytes = [0u8; MAX_FINGERPRINT_LEN];
        bytes[..32].copy_from_slice(&digest);
        Fingerprint { hash: HashFunction::Sha256, len: 32, bytes }
    }
    /// The digest bytes.
    pub fn value(&self) -> &[u8] {
        let n = usize::from(self.len).min(MAX_FINGERPRINT_LEN);
        &self.bytes[..n]
    }
    /// Parse the attribute value `sha-256 AB:CD:...`.
    pub fn parse(s: &str) -> Option<Fingerprint> {
        let (hash, hex) = s.trim().split_once(' ')?;
        let hash = HashFunction::parse(hash)?;
        let mut bytes = [0u8; MAX_FINGERPRINT_LEN];
        let mut n = 0;
        for octet in hex.trim().split(':') {
            let o = octet.as_bytes();
            if o.len() != 2 || n >= hash.digest_len() {
                return None;
            }
            bytes[n] = (hex_digit(o[0])? << 4) | hex_digit(o[1])?;
            n += 1;
        }
        if n != hash.digest_len() {
            return None;
        }
        Some(Fingerprint { hash, len: n as u8, bytes })
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hash.name())?;
        for (i, b) in self.value().iter().enumerate() {
            f.write_char(if i == 0 { ' ' } else { ':' })?;
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// RTCP feedback mechanisms of a codec (`a=rtcp-fb`, RFC 4585 / 5104 /
/// draft-holmer transport-cc / REMB), as bit flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Feedback(pub u8);

impl Feedback {
    pub const NONE: Feedback = Feedback(0);
    /// `nack`: generic NACK retransmission requests.
    pub const NACK: Feedback = Feedback(1);
    /// `nack pli`: picture loss indication (keyframe request).
    pub const PLI: Feedback = Feedback(2);
    /// `ccm fir`: full intra request (keyframe request).
    pub const FIR: Feedback = Feedback(4);
    /// `goog-remb`: receiver estimated max bitrate.
    pub const REMB: Feedback = Feedback(8);
    /// `transport-cc`: transport-wide congestion control feedback.
    pub const TRANSPORT_CC: Feedback = Feedback(16);
    pub const ALL: Feedback = Feedback(31);

    const NAMES: [(Feedback, &'static str); 5] = [
        (Feedback::REMB, "goog-remb"),
        (Feedback::TRANSPORT_CC, "transport-cc"),
        (Feedback::FIR, "ccm fir"),
        (Feedback::NACK, "nack"),
        (Feedback::PLI, "nack pli"),
    ];

    pub fn contains(self, other: Feedback) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn union(self, other: Feedback) -> Feedback {
        Feedback(self.0 | other.0)
    }
    pub fn intersection(self, other: Feedback) -> Feedback {
        Feedback(self.0 & other.0)
    }
    fn parse(s: &str) -> Feedback {
        let s = s.trim();
        Feedback::NAMES.iter().find(|(_, n)| *n == s).map(|(f, _)| *f).unwrap_or(Feedback::NONE)
    }
}

/// One RTP payload format of a media section: `m=` payload type plus its
/// `a=rtpmap`, `a=fmtp` and `a=rtcp-fb` lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Codec<'a> {
    pub payload_type: u8,
    /// Encoding name as written (`opus`, `H264`, `VP8`, ...); empty if the
    /// payload type had no `a=rtpmap` and is not a static one.
    pub name: &'a str,
    pub clock_rate: u32,
    /// Audio channels; 0 when not given.
    pub channels: u8,
    /// The raw `a=fmtp` parameters (`key=value;key=value`), if any.
    pub fmtp: Option<&'a str>,
    pub feedback: Feedback,
}

impl<'a> Codec<'a> {
    /// A payload type with only what the `m=` line says (static types 0 and
    /// 8 get their RFC 3551 names).
    fn from_payload_type(pt: u8) -> Codec<'a> {
        let (name, clock_rate) = match pt {
            0 => ("PCMU", 8000),
            8 => ("PCMA", 8000),
            _ => ("", 0),
        };
        Codec { payload_type: pt, name, clock_rate, channels: 0, fmtp: None, feedback: Feedback::NONE }
    }
    /// The value of one `a=fmtp` parameter (keys compare case-insensitively).
    pub fn fmtp_param(&self, key: &str) -> Option<&'a str> {
        fmtp_param(self.fmtp?, key)
    }
}

/// The value of `key` in an `a=fmtp` parameter string `k=v;k=v`.
pub fn fmtp_param<'a>(fmtp: &'a str, key: &str) -> Option<&'a str> {
    fmtp.split(';').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        k.trim().eq_ignore_ascii_case(key).then(|| v.trim())
    })
}

/// RTP header extension mapping (`a=extmap`, RFC 8285).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Extmap<'a> {
    pub id: u16,
    pub direction: Option<Direction>,
    pub uri: &'a str,
}

/// `a=ssrc:<ssrc> cname:<cname>` (RFC 5576); other ssrc attributes are
/// skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SsrcInfo<'a> {
    pub ssrc: u32,
    pub cname: Option<&'a str>,
}

/// `a=msid:<stream id> <track id>` (RFC 8830).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Msid<'a> {
    pub stream: &'a str,
    /// Empty when absent.
    pub track: &'a str,
}

/// ICE candidate type (RFC 8445 section 5.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CandidateType {
    Host,
    ServerReflexive,
    PeerReflexive,
    Relayed,
}

impl CandidateType {
    pub fn name(self) -> &'static str {
        match self {
            CandidateType::Host => "host",
            CandidateType::ServerReflexive => "srflx",
            CandidateType::PeerReflexive => "prflx",
            CandidateType::Relayed => "relay",
        }
    }
}

/// Candidate transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CandidateTransport {
    Udp,
    Tcp,
}

/// An ICE candidate (`a=candidate:` / trickled `candidate:`, RFC 8839
/// section 5.1). Extension attributes other than `tcptype`, `generation`
/// and `ufrag` are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Candidate<'a> {
    pub foundation: &'a str,
    pub component: u16,
    pub transport: CandidateTransport,
    pub priority: u32,
    /// IP address or, for browser mDNS candidates, a `*.local` host name.
    pub address: &'a str,
    pub port: u16,
    pub kind: CandidateType,
    pub related_address: Option<&'a str>,
    pub related_port: Option<u16>,
    /// `tcptype` (`active`, `passive`, `so`) for TCP candidates.
    pub tcp_type: Option<&'a str>,
    pub generation: Option<u32>,
    pub ufrag: Option<&'a str>,
}

impl<'a> Candidate<'a> {
    /// A UDP host candidate for a local address (RFC 8445 priority with
    /// type preference 126 and local preference `local_pref`).
    pub fn host(foundation: &'a str, address: &'a str, port: u16, local_pref: u16) -> Self {
        Candidate {
            foundation,
            component: 1,
            transport: CandidateTransport::Udp,
            priority: (126u32 << 24) | (u32::from(local_pref) << 8) | 255,
            address,
            port,
            kind: CandidateType::Host,
            related_address: None,
            related_port: None,
            tcp_type: None,
            generation: None,
            ufrag: None,
        }
    }

    /// Parse a candidate attribute value, with or without the `a=` and
    /// `candidate:` prefixes.
    pub fn parse(s: &'a str) -> Result<Self, CandidateError> {
        let s = s.trim();
        let s = s.strip_prefix("a=").unwrap_or(s);
        let s = s.strip_prefix("candidate:").unwrap_or(s);
        let mut it = s.split_ascii_whitespace();
        let mut next = || it.next().ok_or(CandidateError::MissingField);
        let foundation = next()?;
        let component = next()?.parse().map_err(|_| CandidateError::Component)?;
        let transport = match next()? {
            t if t.eq_ignore_ascii_case("udp") => CandidateTransport::Udp,
            t if t.eq_ignore_ascii_case("tcp") => CandidateTransport::Tcp,
            _ => return Err(CandidateError::Transport),
        };
        let priority = next()?.parse().map_err(|_| CandidateError::Priority)?;
        let address = next()?;
        let port = next()?.parse().map_err(|_| CandidateError::Port)?;
        if next()? != "typ" {
            return Err(CandidateError::Type);
        }
        let kind = match next()? {
            "host" => CandidateType::Host,
            "srflx" => CandidateType::ServerReflexive,
            "prflx" => CandidateType::PeerReflexive,
            "relay" => CandidateType::Relayed,
            _ => return Err(CandidateError::Type),
        };
        let mut c = Candidate {
            foundation,
            component,
            transport,
            priority,
            address,
            port,
            kind,
            related_address: None,
            related_port: None,
            tcp_type: None,
            generation: None,
            ufrag: None,
        };
        while let Some(key) = it.next() {
            let Some(value) = it.next() else { break };
            match key {
                "raddr" => c.related_address = Some(value),
                "rport" => c.related_port = Some(value.parse().map_err(|_| CandidateError::Related)?),
                "tcptype" => c.tcp_type = Some(value),
                "generation" => c.generation = value.parse().ok(),
                "ufrag" => c.ufrag = Some(value),
                _ => {}
            }
        }
        Ok(c)
    }

    /// The candidate's transport address, if `address` is an IP literal
    /// (not an mDNS name).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        let ip: IpAddr = self.address.parse().ok()?;
        Some(SocketAddr::new(ip, self.port))
    }
}

impl fmt::Display for Candidate<'_> {
    /// Writes the attribute value without `a=`, starting with `candidate:`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = match self.transport {
            CandidateTransport::Udp => "udp",
            CandidateTransport::Tcp => "tcp",
        };
        write!(
            f,
            "candidate:{} {} {} {} {} {} typ {}",
            self.foundation,
            self.component,
            transport,
            self.priority,
            self.address,
            self.port,
            self.kind.name()
        )?;
        if let Some(a) = self.related_address {
            write!(f, " raddr {a}")?;
        }
        if let Some(p) = self.related_port {
            write!(f, " rport {p}")?;
        }
        if let Some(t) = self.tcp_type {
            write!(f, " tcptype {t}")?;
        }
        if let Some(g) = self.generation {
            write!(f, " generation {g}")?;
        }
        if let Some(u) = self.ufrag {
            write!(f, " ufrag {u}")?;
        }
        Ok(())
    }
}

/// `o=` line (RFC 8866 section 5.2); nettype/addrtype are always `IN IP4`/`IP6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Origin<'a> {
    pub username: &'a str,
    pub session_id: u64,
    pub session_version: u64,
    pub address: &'a str,
}

impl Default for Origin<'_> {
    fn default() -> Self {
        Origin { username: "-", session_id: 0, session_version: 2, address: "127.0.0.1" }
    }
}

/// The transport attributes of a section (ICE, DTLS) or of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TransportAttrs<'a> {
    pub ice_ufrag: Option<&'a str>,
    pub ice_pwd: Option<&'a str>,
    /// `a=ice-options:trickle`.
    pub ice_trickle: bool,
    pub fingerprint: Option<Fingerprint>,
    pub setup: Option<Setup>,
}

/// One `m=` section. Memory: dominated by `codecs`
/// ([`MAX_CODECS`] x ~48 bytes on 64-bit hosts, ~28 on 32-bit MCUs) and
/// `candidates` ([`MAX_CANDIDATES`] x ~96 / ~52 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription<'a> {
    pub kind: MediaKind,
    /// The media type as written (matters for [`MediaKind::Other`]).
    pub kind_name: &'a str,
    /// Port; 0 means the section is rejected / disabled.
    pub port: u16,
    /// `UDP/TLS/RTP/SAVPF`, `UDP/DTLS/SCTP`, ...
    pub proto: &'a str,
    /// The `m=` format list as written. For RTP sections the writer uses
    /// `codecs` instead.
    pub formats: &'a str,
    pub transport: TransportAttrs<'a>,
    pub mid: Option<&'a str>,
    pub direction: Direction,
    pub rtcp_mux: bool,
    pub rtcp_rsize: bool,
    /// Payload formats in `m=` order (preference order).
    pub codecs: Vec<Codec<'a>, MAX_CODECS>,
    pub extmaps: Vec<Extmap<'a>, MAX_EXTMAPS>,
    pub msid: Option<Msid<'a>>,
    pub ssrcs: Vec<SsrcInfo<'a>, MAX_SSRCS>,
    /// `a=ssrc-group:FID <primary> <retransmission>` (RFC 5576 / 4588).
    pub ssrc_group_fid: Option<(u32, u32)>,
    pub candidates: Vec<Candidate<'a>, MAX_CANDIDATES>,
    pub end_of_candidates: bool,
    pub sctp_port: Option<u16>,
    pub max_message_size: Option<u32>,
    /// Some codec/extmap/ssrc/candidate entries did not fit and were ignored.
    pub truncated: bool,
}

impl<'a> MediaDescription<'a> {
    /// An empty section of `kind` with the WebRTC defaults (port 9, rtcp-mux).
    pub fn new(kind: MediaKind) -> Self {
        let (proto, formats) = match kind {
            MediaKind::Application => ("UDP/DTLS/SCTP", "webrtc-datachannel"),
            _ => ("UDP/TLS/RTP/SAVPF", ""),
        };
        MediaDescription {
            kind,
            kind_name: kind.name(),
            port: 9,
            proto,
            formats,
            transport: TransportAttrs::default(),
            mid: None,
            direction: Direction::SendRecv,
            rtcp_mux: kind.is_rtp(),
            rtcp_rsize: false,
            codecs: Vec::new(),
            extmaps: Vec::new(),
            msid: None,
            ssrcs: Vec::new(),
            ssrc_group_fid: None,
            candidates: Vec::new(),
            end_of_candidates: false,
            sctp_port: None,
            max_message_size: None,
            truncated: false,
        }
    }

    /// The codec with payload type `pt`.
    pub fn codec(&self, pt: u8) -> Option<&Codec<'a>> {
        self.codecs.iter().find(|c| c.payload_type == pt)
    }
    fn codec_mut(&mut self, pt: u8) -> Option<&mut Codec<'a>> {
        self.codecs.iter_mut().find(|c| c.payload_type == pt)
    }
    /// Whether this is a WebRTC data channel section.
    pub fn is_datachannel(&self) -> bool {
        self.kind == MediaKind::Application && self.proto.contains("SCTP")
    }
}

/// A parsed (or to-be-written) session description. Lists are bounded by
/// [`MAX_MEDIA_SECTIONS`] and the per-section constants; see
/// `size_of::<SessionDescription>()` (printed by the tests) for its cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription<'a> {
    pub origin: Origin<'a>,
    pub session_name: &'a str,
    /// Mids of the `a=group:BUNDLE` group (empty: no bundle group).
    pub bundle: Vec<&'a str, MAX_MEDIA_SECTIONS>,
    pub ice_lite: bool,
    /// Session-level transport attributes (browsers put them per section).
    pub transport: TransportAttrs<'a>,
    pub media: Vec<MediaDescription<'a>, MAX_MEDIA_SECTIONS>,
}

impl Default for SessionDescription<'_> {
    fn default() -> Self {
        SessionDescription {
            origin: Origin::default(),
            session_name: "-",
            bundle: Vec::new(),
            ice_lite: false,
            transport: TransportAttrs::default(),
            media: Vec::new(),
        }
    }
}

fn err(line: u32, kind: ErrorKind) -> Error {
    Error { line, kind }
}

fn parse_num<T: core::str::FromStr>(s: &str, line: u32, kind: ErrorKind) -> Result<T, Error> {
    s.trim().parse().map_err(|_| err(line, kind))
}

impl<'a> SessionDescription<'a> {
    /// Parse an SDP, borrowing from `sdp`.
    pub fn parse(sdp: &'a str) -> Result<Self, Error> {
        let mut sd = SessionDescription::default();
        let mut lineno = 0u32;
        let mut saw_version = false;
        for raw in sdp.split('\n') {
            lineno = lineno.saturating_add(1);
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.trim().is_empty() {
                continue;
            }
            let b = line.as_bytes();
            if b.len() < 2 || b[1] != b'=' || !b[0].is_ascii_alphabetic() {
                return Err(err(lineno, ErrorKind::Syntax));
            }
            let (ty, value) = (b[0], &line[2..]);
            if !saw_version {
                if ty != b'v' {
                    return Err(err(lineno, ErrorKind::MissingVersion));
                }
                if value.trim() != "0" {
                    return Err(err(lineno, ErrorKind::UnsupportedVersion));
                }
                saw_version = true;
                continue;
            }
            match ty {
                b'o' => sd.origin = parse_origin(value).ok_or(err(lineno, ErrorKind::Origin))?,
                b's' => sd.session_name = value,
                b'm' => {
                    let m = parse_media_line(value).ok_or(err(lineno, ErrorKind::Media))?;
                    sd.media.push(m).map_err(|_| err(lineno, ErrorKind::TooManyMediaSections))?;
                }
                b'a' => {
                    let (name, arg) = match value.split_once(':') {
                        Some((n, a)) => (n, a),
                        None => (value, ""),
                    };
                    if let Some(m) = sd.media.last_mut() {
                        parse_media_attr(m, name, arg, lineno)?;
                    } else {
                        parse_session_attr(&mut sd, name, arg, lineno)?;
                    }
                }
                _ => {}
            }
        }
        if !saw_version {
            return Err(err(lineno.max(1), ErrorKind::MissingVersion));
        }
        Ok(sd)
    }

    /// Parse from bytes (must be UTF-8; SDP is ASCII in practice).
    pub fn parse_bytes(sdp: &'a [u8]) -> Result<Self, Error> {
        let s = core::str::from_utf8(sdp).map_err(|e| {
            let line = sdp[..e.valid_up_to()].iter().filter(|&&c| c == b'\n').count() + 1;
            err(u32::try_from(line).unwrap_or(u32::MAX), ErrorKind::Syntax)
        })?;
        Self::parse(s)
    }

    /// The section with mid `mid`.
    pub fn media_by_mid(&self, mid: &str) -> Option<&MediaDescription<'a>> {
        self.media.iter().find(|m| m.mid == Some(mid))
    }

    /// The transport attributes that apply to section `index`: the
    /// section's own, falling back to the session level, and (with BUNDLE)
    /// to the first section of the bundle.
    pub fn transport_for(&self, index: usize) -> TransportAttrs<'a> {
        let own = self.media.get(index).map(|m| m.transport).unwrap_or_default();
        let first = self.media.first().map(|m| m.transport).unwrap_or_default();
        let s = &self.transport;
        TransportAttrs {
            ice_ufrag: own.ice_ufrag.or(s.ice_ufrag).or(first.ice_ufrag),
            ice_pwd: own.ice_pwd.or(s.ice_pwd).or(first.ice_pwd),
            ice_trickle: own.ice_trickle || s.ice_trickle || first.ice_trickle,
            fingerprint: own.fingerprint.or(s.fingerprint).or(first.fingerprint),
            setup: own.setup.or(s.setup).or(first.setup),
        }
    }

    /// Write the description into `out`; returns the number of bytes
    /// written (all ASCII/UTF-8).
    pub fn write(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut w = BufWriter::new(out);
        self.write_fmt_to(&mut w).map_err(|_| BufferTooSmall)?;
        Ok(w.len)
    }

    /// Write into `out` and return the text.
    pub fn write_str<'b>(&self, out: &'b mut [u8]) -> Result<&'b str, BufferTooSmall> {
        let n = self.write(out)?;
        core::str::from_utf8(&out[..n]).map_err(|_| BufferTooSmall)
    }

    fn write_fmt_to(&self, w: &mut impl fmt::Write) -> fmt::Result {
        let o = &self.origin;
        let ip = if o.address.contains(':') { "IP6" } else { "IP4" };
        write!(w, "v=0\r\no={} {} {} IN {} {}\r\n", o.username, o.session_id, o.session_version, ip, o.address)?;
        write!(w, "s={}\r\nt=0 0\r\n", self.session_name)?;
        if !self.bundle.is_empty() {
            w.write_str("a=group:BUNDLE")?;
            for mid in &self.bundle {
                write!(w, " {mid}")?;
            }
            w.write_str("\r\n")?;
        }
        if self.ice_lite {
            w.write_str("a=ice-lite\r\n")?;
        }
        write_transport(w, &self.transport)?;
        for m in &self.media {
            write_media(w, m)?;
        }
        Ok(())
    }
}

fn write_transport(w: &mut impl fmt::Write, t: &TransportAttrs<'_>) -> fmt::Result {
    if let Some(u) = t.ice_ufrag {
        write!(w, "a=ice-ufrag:{u}\r\n")?;
    }
    if let Some(p) = t.ice_pwd {
        write!(w, "a=ice-pwd:{p}\r\n")?;
    }
    if t.ice_trickle {
        w.write_str("a=ice-options:trickle\r\n")?;
    }
    if let Some(f) = &t.fingerprint {
        write!(w, "a=fingerprint:{f}\r\n")?;
    }
    if let Some(s) = t.setup {
        write!(w, "a=setup:{}\r\n", s.name())?;
    }
    Ok(())
}

fn write_media(w: &mut impl fmt::Write, m: &MediaDescription<'_>) -> fmt::Result {
    write!(w, "m={} {} {}", m.kind_name, m.port, m.proto)?;
    if m.kind.is_rtp() {
        for c in &m.codecs {
            write!(w, " {}", c.payload_type)?;
        }
    } else if !m.formats.is_empty() {
        write!(w, " {}", m.formats)?;
    }
    w.write_str("\r\nc=IN IP4 0.0.0.0\r\n")?;
    for c in &m.candidates {
        write!(w, "a={c}\r\n")?;
    }
    if m.end_of_candidates {
        w.write_str("a=end-of-candidates\r\n")?;
    }
    write_transport(w, &m.transport)?;
    if let Some(mid) = m.mid {
        write!(w, "a=mid:{mid}\r\n")?;
    }
    for e in &m.extmaps {
        write!(w, "a=extmap:{}", e.id)?;
        if let Some(d) = e.direction {
            write!(w, "/{}", d.name())?;
        }
        write!(w, " {}\r\n", e.uri)?;
    }
    if m.kind.is_rtp() || m.direction != Direction::SendRecv {
        write!(w, "a={}\r\n", m.direction.name())?;
    }
    if let Some(ms) = m.msid {
        write!(w, "a=msid:{}", ms.stream)?;
        if !ms.track.is_empty() {
            write!(w, " {}", ms.track)?;
        }
        w.write_str("\r\n")?;
    }
    if m.rtcp_mux {
        w.write_str("a=rtcp-mux\r\n")?;
    }
    if m.rtcp_rsize {
        w.write_str("a=rtcp-rsize\r\n")?;
    }
    for c in &m.codecs {
        if !c.name.is_empty() {
            write!(w, "a=rtpmap:{} {}/{}", c.payload_type, c.name, c.clock_rate)?;
            if c.channels > 0 {
                write!(w, "/{}", c.channels)?;
            }
            w.write_str("\r\n")?;
        }
        for (f, name) in Feedback::NAMES {
            if c.feedback.contains(f) {
                write!(w, "a=rtcp-fb:{} {}\r\n", c.payload_type, name)?;
            }
        }
        if let Some(p) = c.fmtp {
            write!(w, "a=fmtp:{} {}\r\n", c.payload_type, p)?;
        }
    }
    if let Some((a, b)) = m.ssrc_group_fid {
        write!(w, "a=ssrc-group:FID {a} {b}\r\n")?;
    }
    for s in &m.ssrcs {
        if let Some(c) = s.cname {
            write!(w, "a=ssrc:{} cname:{}\r\n", s.ssrc, c)?;
        }
    }
    if let Some(p) = m.sctp_port {
        write!(w, "a=sctp-port:{p}\r\n")?;
    }
    if let Some(s) = m.max_message_size {
        write!(w, "a=max-message-size:{s}\r\n")?;
    }
    Ok(())
}

fn parse_origin(v: &str) -> Option<Origin<'_>> {
    let mut it = v.split_ascii_whitespace();
    let username = it.next()?;
    let session_id = it.next()?.parse().ok()?;
    let session_version = it.next()?.parse().ok()?;
    let (_net, _addrtype) = (it.next()?, it.next()?);
    let address = it.next()?;
    Some(Origin { username, session_id, session_version, address })
}

fn parse_media_line(v: &str) -> Option<MediaDescription<'_>> {
    let mut it = v.splitn(4, ' ');
    let kind_name = it.next()?;
    let port_s = it.next()?;
    // `<port>/<number of ports>` is allowed; only the port matters.
    let port = port_s.split('/').next()?.parse().ok()?;
    let proto = it.next()?;
    let formats = it.next().unwrap_or("").trim();
    let kind = MediaKind::parse(kind_name);
    let mut m = MediaDescription::new(kind);
    m.kind_name = kind_name;
    m.port = port;
    m.proto = proto;
    m.formats = formats;
    m.rtcp_mux = false;
    m.direction = Direction::SendRecv;
    if kind.is_rtp() {
        for f in formats.split_ascii_whitespace() {
            let pt: u8 = f.parse().ok()?;
            if pt > 127 {
                return None;
            }
            if m.codecs.push(Codec::from_payload_type(pt)).is_err() {
                m.truncated = true;
            }
        }
    }
    Some(m)
}

fn parse_session_attr<'a>(
    sd: &mut SessionDescription<'a>,
    name: &'a str,
    arg: &'a str,
    line: u32,
) -> Result<(), Error> {
    match name {
        "group" => {
            let mut it = arg.split_ascii_whitespace();
            if it.next() == Some("BUNDLE") {
                sd.bundle.clear();
                for mid in it {
                    sd.bundle.push(mid).map_err(|_| err(line, ErrorKind::Group))?;
                }
            }
        }
        "ice-lite" => sd.ice_lite = true,
        _ => parse_transport_attr(&mut sd.transport, name, arg, line)?,
    }
    Ok(())
}

fn parse_transport_attr<'a>(t: &mut TransportAttrs<'a>, name: &'a str, arg: &'a str, line: u32) -> Result<(), Error> {
    match name {
        "ice-ufrag" => t.ice_ufrag = Some(arg.trim()),
        "ice-pwd" => t.ice_pwd = Some(arg.trim()),
        "ice-options" => t.ice_trickle |= arg.split_ascii_whitespace().any(|o| o == "trickle"),
        "fingerprint" => {
            let f = Fingerprint::parse(arg).ok_or(err(line, ErrorKind::Fingerprint))?;
            // Keep the first SHA-256 one if several are given.
            if t.fingerprint.map_or(true, |old| old.hash != HashFunction::Sha256) {
                t.fingerprint = Some(f);
            }
        }
        "setup" => t.setup = Some(Setup::parse(arg.trim()).ok_or(err(line, ErrorKind::Setup))?),
        _ => {}
    }
    Ok(())
}

fn parse_media_attr<'a>(m: &mut MediaDescription<'a>, name: &'a str, arg: &'a str, line: u32) -> Result<(), Error> {
    if let Some(d) = Direction::parse(name) {
        m.direction = d;
        return Ok(());
    }
    match name {
        "mid" => m.mid = Some(arg.trim()),
        "rtcp-mux" => m.rtcp_mux = true,
        "rtcp-rsize" => m.rtcp_rsize = true,
        "rtpmap" => {
            let e = err(line, ErrorKind::Rtpmap);
            let (pt, enc) = arg.split_once(' ').ok_or(e)?;
            let pt: u8 = parse_num(pt, line, ErrorKind::Rtpmap)?;
            let mut parts = enc.trim().split('/');
            let name = parts.next().filter(|n| !n.is_empty()).ok_or(e)?;
            let clock_rate = parse_num(parts.next().ok_or(e)?, line, ErrorKind::Rtpmap)?;
            let channels = match parts.next() {
                Some(c) => parse_num(c, line, ErrorKind::Rtpmap)?,
                None => 0,
            };
            if let Some(c) = m.codec_mut(pt) {
                c.name = name;
                c.clock_rate = clock_rate;
                c.channels = channels;
            }
        }
        "fmtp" => {
            let (pt, params) = arg.split_once(' ').ok_or(err(line, ErrorKind::Fmtp))?;
            let pt: u8 = parse_num(pt, line, ErrorKind::Fmtp)?;
            if let Some(c) = m.codec_mut(pt) {
                c.fmtp = Some(params.trim());
            }
        }
        "rtcp-fb" => {
            let (pt, fb) = arg.split_once(' ').ok_or(err(line, ErrorKind::RtcpFeedback))?;
            let f = Feedback::parse(fb);
            if pt == "*" {
                m.codecs.iter_mut().for_each(|c| c.feedback = c.feedback.union(f));
            } else {
                let pt: u8 = parse_num(pt, line, ErrorKind::RtcpFeedback)?;
                if let Some(c) = m.codec_mut(pt) {
                    c.feedback = c.feedback.union(f);
                }
            }
        }
        "extmap" => {
            let e = err(line, ErrorKind::Extmap);
            let mut it = arg.split_ascii_whitespace();
            let idd = it.next().ok_or(e)?;
            let uri = it.next().ok_or(e)?;
            let (id, direction) = match idd.split_once('/') {
                Some((id, d)) => (id, Some(Direction::parse(d).ok_or(e)?)),
                None => (idd, None),
            };
            let id: u16 = parse_num(id, line, ErrorKind::Extmap)?;
            if id == 0 || id > 255 {
                return Err(e);
            }
            if m.extmaps.push(Extmap { id, direction, uri }).is_err() {
                m.truncated = true;
            }
        }
        "msid" => {
            let mut it = arg.split_ascii_whitespace();
            let stream = it.next().ok_or(err(line, ErrorKind::Msid))?;
            m.msid = Some(Msid { stream, track: it.next().unwrap_or("") });
        }
        "ssrc" => {
            let (ssrc, attr) = arg.split_once(' ').ok_or(err(line, ErrorKind::Ssrc))?;
            let ssrc: u32 = parse_num(ssrc, line, ErrorKind::Ssrc)?;
            let cname = attr.trim().strip_prefix("cname:");
            if let Some(s) = m.ssrcs.iter_mut().find(|s| s.ssrc == ssrc) {
                s.cname = s.cname.or(cname);
            } else if m.ssrcs.push(SsrcInfo { ssrc, cname }).is_err() {
                m.truncated = true;
            }
        }
        "ssrc-group" => {
            let mut it = arg.split_ascii_whitespace();
            if it.next() == Some("FID") {
                let a = parse_num(it.next().unwrap_or(""), line, ErrorKind::SsrcGroup)?;
                let b = parse_num(it.next().unwrap_or(""), line, ErrorKind::SsrcGroup)?;
                m.ssrc_group_fid = Some((a, b));
            }
        }
        "candidate" => {
            let c = Candidate::parse(arg).map_err(|e| err(line, ErrorKind::Candidate(e)))?;
            if m.candidates.push(c).is_err() {
                m.truncated = true;
            }
        }
        "end-of-candidates" => m.end_of_candidates = true,
        "sctp-port" => m.sctp_port = Some(parse_num(arg, line, ErrorKind::SctpPort)?),
        "max-message-size" => m.max_message_size = Some(parse_num(arg, line, ErrorKind::MaxMessageSize)?),
        _ => parse_transport_attr(&mut m.transport, name, arg, line)?,
    }
    Ok(())
}

/// `core::fmt::Write` over a caller buffer; fails (instead of truncating
/// silently) when the buffer is full.
#[derive(Debug)]
pub struct BufWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> BufWriter<'b> {
    pub fn new(buf: &'b mut [u8]) -> Self {
        BufWriter { buf, len: 0 }
    }
    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Append raw bytes.
    pub fn push_bytes(&mut self, b: &[u8]) -> Result<(), BufferTooSmall> {
        let end = self.len.checked_add(b.len()).ok_or(BufferTooSmall)?;
        self.buf.get_mut(self.len..end).ok_or(BufferTooSmall)?.copy_from_slice(b);
        self.len = end;
        Ok(())
    }
}

impl fmt::Write for BufWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_bytes(s.as_bytes()).map_err(|_| fmt::Error)
    }
}
