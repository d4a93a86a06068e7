//! ICE candidates: the `candidate:` attribute (RFC 8839 5.1) as browsers
//! write it, priorities (RFC 8445 5.1.2) and pair priorities (6.1.2.3).
//!
//! Parsing accepts `candidate:...` with or without a leading `a=`, UDP and
//! TCP transports (TCP ones are parsed so they can be ignored), IP addresses
//! and hostnames (mDNS `*.local` names are kept unresolved), the `raddr`,
//! `rport`, `tcptype`, `generation`, `ufrag`, `network-id` and
//! `network-cost` extensions; unknown extension pairs are skipped.
//! Formatting writes the same fields in the browsers' order, so a browser
//! line round-trips byte for byte.

use core::fmt::{self, Write as _};
use core::net::{IpAddr, SocketAddr};

/// Longest foundation (RFC 8839: 1 to 32 ice-chars).
pub const MAX_FOUNDATION_LEN: usize = 32;
/// Longest hostname kept for an unresolved (mDNS) candidate address.
pub const MAX_HOSTNAME_LEN: usize = 64;
/// Longest `ufrag` extension value.
pub const MAX_UFRAG_LEN: usize = 32;

/// Candidate type (RFC 8445 5.1.1) with its type preference (5.1.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CandidateKind {
    Host,
    ServerReflexive,
    PeerReflexive,
    Relayed,
}

impl CandidateKind {
    /// Recommended type preference (RFC 8445 5.1.2.2).
    pub const fn type_preference(self) -> u32 {
        match self {
            CandidateKind::Host => 126,
            CandidateKind::PeerReflexive => 110,
            CandidateKind::ServerReflexive => 100,
            CandidateKind::Relayed => 0,
        }
    }
    /// The `typ` token.
    pub const fn as_str(self) -> &'static str {
        match self {
            CandidateKind::Host => "host",
            CandidateKind::ServerReflexive => "srflx",
            CandidateKind::PeerReflexive => "prflx",
            CandidateKind::Relayed => "relay",
        }
    }
}

/// Transport protocol of a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CandidateTransport {
    Udp,
    /// Parsed, never paired (no ICE-TCP, RFC 6544).
    Tcp,
}

/// TCP candidate type (RFC 6544), kept only to format lines back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TcpType {
    Active,
    Passive,
    So,
}

/// The connection address: an IP, or a hostname left unresolved (mDNS).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CandidateAddress {
    Ip(IpAddr),
    Hostname(heapless::String<MAX_HOSTNAME_LEN>),
}

/// One ICE candidate as signaled (plain data; about 200 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Candidate {
    pub foundation: heapless::String<MAX_FOUNDATION_LEN>,
    /// Component ID (1 = RTP, or the only component with rtcp-mux/data).
    pub component: u16,
    pub transport: CandidateTransport,
    pub priority: u32,
    pub address: CandidateAddress,
    pub port: u16,
    pub kind: CandidateKind,
    /// `raddr`/`rport`: the base (srflx/prflx) or mapped address (relay).
    pub related: Option<(IpAddr, u16)>,
    pub tcp_type: Option<TcpType>,
    pub generation: Option<u32>,
    pub ufrag: Option<heapless::String<MAX_UFRAG_LEN>>,
    pub network_id: Option<u32>,
    pub network_cost: Option<u32>,
}

/// Why a `candidate:` line did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CandidateParseError {
    /// Does not start with `candidate:`.
    NotACandidate,
    /// A mandatory field is missing.
    MissingField,
    /// Foundation empty, too long, or not ice-chars.
    BadFoundation,
    BadComponent,
    /// Transport other than UDP or TCP.
    UnsupportedTransport,
    BadPriority,
    /// Neither an IP address nor a hostname that fits.
    BadAddress,
    BadPort,
    /// `typ` missing or an unknown candidate type.
    BadType,
    /// A known extension (raddr, rport, generation, ...) with a bad value.
    BadExtension,
}

impl fmt::Display for CandidateParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            CandidateParseError::NotACandidate => "not a candidate line",
            CandidateParseError::MissingField => "candidate field missing",
            CandidateParseError::BadFoundation => "bad candidate foundation",
            CandidateParseError::BadComponent => "bad candidate component",
            CandidateParseError::UnsupportedTransport => "unsupported candidate transport",
            CandidateParseError::BadPriority => "bad candidate priority",
            CandidateParseError::BadAddress => "bad candidate address",
            CandidateParseError::BadPort => "bad candidate port",
            CandidateParseError::BadType => "bad candidate type",
            CandidateParseError::BadExtension => "bad candidate extension",
        };
        f.write_str(s)
    }
}

fn is_ice_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '+' || c == '/'
}

impl Candidate {
    /// A UDP candidate on component 1 with no extensions.
    pub fn new(
        kind: CandidateKind,
        addr: SocketAddr,
        priority: u32,
        foundation: &str,
        related: Option<SocketAddr>,
    ) -> Self {
        let mut f = heapless::String::new();
        for c in foundation.chars().take(MAX_FOUNDATION_LEN) {
            let _ = f.push(c);
        }
        Candidate {
            foundation: f,
            component: 1,
            transport: CandidateTransport::Udp,
            priority,
            address: CandidateAddress::Ip(addr.ip()),
            port: addr.port(),
            kind,
            related: related.map(|r| (r.ip(), r.port())),
            tcp_type: None,
            generation: None,
            ufrag: None,
            network_id: None,
            network_cost: None,
        }
    }

    /// The transport address, if it is an IP address (not an mDNS name).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self.address {
            CandidateAddress::Ip(ip) => Some(SocketAddr::new(ip, self.port)),
            CandidateAddress::Hostname(_) => None,
        }
    }

    /// Whether the address is an unresolved mDNS name (`*.local`).
    pub fn is_mdns(&self) -> bool {
        matches!(&self.address, CandidateAddress::Hostname(h) if h.ends_with(".local"))
    }

    /// Parse a `candidate:` attribute value (with or without `a=`).
    pub fn parse(line: &str) -> Result<Candidate, CandidateParseError> {
        let line = line.trim();
        let line = line.strip_prefix("a=").unwrap_or(line);
        let rest = line.strip_prefix("candidate:").ok_or(CandidateParseError::NotACandidate)?;
        let mut it = rest.split_ascii_whitespace();
        let mut next = || it.next().ok_or(CandidateParseError::MissingField);

        let foundation_s = next()?;
        if foundation_s.is_empty() || foundation_s.len() > MAX_FOUNDATION_LEN || !foundation_s.chars().all(is_ice_char)
        {
            return Err(CandidateParseError::BadFoundation);
        }
        let mut foundation = heapless::String::new();
        foundation.push_str(foundation_s).map_err(|_| CandidateParseError::BadFoundation)?;
        let component: u16 = next()?.parse().map_err(|_| CandidateParseError::BadComponent)?;
        if component == 0 || component > 256 {
            return Err(CandidateParseError::BadComponent);
        }
        let transport = match next()? {
            t if t.eq_ignore_ascii_case("udp") => CandidateTransport::Udp,
            t if t.eq_ignore_ascii_case("tcp") => CandidateTransport::Tcp,
            _ => return Err(CandidateParseError::UnsupportedTransport),
        };
        let priority: u32 = next()?.parse().map_err(|_| CandidateParseError::BadPriority)?;
        let addr_s = next()?;
        let address = match addr_s.parse::<IpAddr>() {
            Ok(ip) => CandidateAddress::Ip(ip),
            Err(_) => {
                let ok = !addr_s.is_empty()
                    && addr_s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
                if !ok {
                    return Err(CandidateParseError::BadAddress);
                }
                let mut h = heapless::String::new();
                h.push_str(addr_s).map_err(|_| CandidateParseError::BadAddress)?;
                CandidateAddress::Hostname(h)
            }
        };
        let port: u16 = next()?.parse().map_err(|_| CandidateParseError::BadPort)?;
        if next()? != "typ" {
            return Err(CandidateParseError::BadType);
        }
        let kind = match next()? {
            "host" => CandidateKind::Host,
            "srflx" => CandidateKind::ServerReflexive,
            "prflx" => CandidateKind::PeerReflexive,
            "relay" => CandidateKind::Relayed,
            _ => return Err(CandidateParseError::BadType),
        };
        let mut c = Candidate {
            foundation,
            component,
            transport,
            priority,
            address,
            port,
            kind,
            related: None,
            tcp_type: None,
            generation: None,
            ufrag: None,
            network_id: None,
            network_cost: None,
        };
        let bad = CandidateParseError::BadExtension;
        let (mut raddr, mut rport) = (None, None);
        while let Some(name) = it.next() {
            let value = it.next().ok_or(bad)?;
            match name {
                "raddr" => raddr = Some(value.parse::<IpAddr>().map_err(|_| bad)?),
                "rport" => rport = Some(value.parse::<u16>().map_err(|_| bad)?),
                "tcptype" => {
                    c.tcp_type = Some(match value {
                        "active" => TcpType::Active,
                        "passive" => TcpType::Passive,
                        "so" => TcpType::So,
                        _ => return Err(bad),
                    })
                }
                "generation" => c.generation = Some(value.parse().map_err(|_| bad)?),
                "ufrag" => {
                    let mut u = heapless::String::new();
                    u.push_str(value).map_err(|_| bad)?;
                    c.ufrag = Some(u);
                }
                "network-id" => c.network_id = Some(value.parse().map_err(|_| bad)?),
                "network-cost" => c.network_cost = Some(value.parse().map_err(|_| bad)?),
                _ => {} // unknown extensions are ignored (RFC 8839 5.1)
            }
        }
        match (raddr, rport) {
            (Some(a), Some(p)) => c.related = Some((a, p)),
            (None, None) => {}
            _ => return Err(bad),
        }
        Ok(c)
    }
}

/// Formats the attribute value: `candidate:<foundation> <component> ...`
/// (no `a=`).
impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = match self.transport {
            CandidateTransport::Udp => "udp",
            CandidateTransport::Tcp => "tcp",
        };
        write!(f, "candidate:{} {} {} {} ", self.foundation, self.component, transport, self.priority)?;
        match &self.address {
            CandidateAddress::Ip(ip) => write!(f, "{ip}")?,
            CandidateAddress::Hostname(h) => f.write_str(h)?,
        }
        write!(f, " {} typ {}", self.port, self.kind.as_str())?;
        if let Some((ip, port)) = self.related {
            write!(f, " raddr {ip} rport {port}")?;
        }
        if let Some(t) = self.tcp_type {
            let t = match t {
                TcpType::Active => "active",
                TcpType::Passive => "passive",
                TcpType::So => "so",
            };
            write!(f, " tcptype {t}")?;
        }
        if let Some(g) = self.generation {
            write!(f, " generation {g}")?;
        }
        if let Some(u) = &self.ufrag {
            write!(f, " ufrag {u}")?;
        }
        if let Some(n) = self.network_id {
            write!(f, " network-id {n}")?;
        }
        if let Some(n) = self.network_cost {
            write!(f, " network-cost {n}")?;
        }
        Ok(())
    }
}

/// Candidate priority (RFC 8445 5.1.2.1).
pub const fn candidate_priority(kind: CandidateKind, local_preference: u16, component: u16) -> u32 {
    (kind.type_preference() << 24) | ((local_preference as u32) << 8) | (256 - (component as u32 & 0xff))
}

/// Pair priority (RFC 8445 6.1.2.3): `2^32*MIN(G,D) + 2*MAX(G,D) + (G>D?1:0)`
/// with G the controlling agent's candidate priority, D the controlled's.
/// Saturates at `u64::MAX` for priorities above the legal 2^31 - 1.
pub const fn pair_priority(controlling: u32, controlled: u32) -> u64 {
    let (g, d) = (controlling as u64, controlled as u64);
    let (min, max) = if g < d { (g, d) } else { (d, g) };
    (min << 32).saturating_add(2 * max).saturating_add(if g > d { 1 } else { 0 })
}

/// A foundation string from a 32-bit value (decimal, as browsers do).
pub(crate) fn foundation_string(v: u32) -> heapless::String<MAX_FOUNDATION_LEN> {
    let mut s = heapless::String::new();
    let _ = write!(s, "{v}");
    s
}
