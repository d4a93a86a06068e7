//! NAT boxes after RFC 4787's vocabulary (mapping and filtering behaviour).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use tinyrtc::{Duration, Instant};

use super::{FxBuild, RealmId};

/// The four classic NAT types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NatType {
    /// Endpoint-independent mapping and filtering: once an internal address
    /// has a mapping, anyone may send to it.
    FullCone,
    /// Endpoint-independent mapping, address-dependent filtering: inbound
    /// allowed from an IP the internal host has sent to.
    AddressRestricted,
    /// Endpoint-independent mapping, address-and-port-dependent filtering:
    /// inbound allowed from an IP:port the internal host has sent to.
    PortRestricted,
    /// Address-and-port-dependent mapping and filtering: a new external port
    /// for every destination; only that destination may answer on it.
    Symmetric,
}

impl NatType {
    /// All four types, for test matrices.
    pub const ALL: [NatType; 4] =
        [NatType::FullCone, NatType::AddressRestricted, NatType::PortRestricted, NatType::Symmetric];
}

/// Configuration of one NAT box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatConfig {
    pub nat_type: NatType,
    /// A mapping (and each filtering permission) expires this long after
    /// the last outbound datagram that used it. Inbound traffic does not
    /// refresh it (RFC 4787 REQ-6 requires outbound refresh only).
    pub mapping_timeout: Duration,
    /// Whether a datagram from inside to the NAT's own external address is
    /// looped back in (hairpinning, RFC 4787 REQ-9). Filtering still applies.
    pub hairpin: bool,
}

impl NatConfig {
    /// `nat_type` with a 120 s mapping timeout (RFC 4787 REQ-5 minimum) and hairpinning.
    pub fn new(nat_type: NatType) -> Self {
        NatConfig { nat_type, mapping_timeout: Duration::from_secs(120), hairpin: true }
    }
    pub fn with_timeout(self, mapping_timeout: Duration) -> Self {
        NatConfig { mapping_timeout, ..self }
    }
}

/// Counters of one NAT box.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NatStats {
    pub mappings_created: u64,
    pub mappings_expired: u64,
    pub translated_out: u64,
    pub translated_in: u64,
    /// Inbound datagrams dropped by the filtering rule.
    pub filtered: u64,
    /// Inbound datagrams to an external port with no live mapping.
    pub no_mapping: u64,
    /// Datagrams to the NAT's own address from inside with hairpinning off.
    pub hairpin_dropped: u64,
}

/// Why the NAT dropped an inbound datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InboundDrop {
    NoMapping,
    Filtered,
}

type MappingKey = (SocketAddr, Option<SocketAddr>);

#[derive(Debug)]
struct Mapping {
    key: MappingKey,
    last_out: Instant,
    /// Remote endpoints the internal host sent to, with the last time.
    permits: Vec<(SocketAddr, Instant)>,
}

#[derive(Debug)]
pub(crate) struct Nat {
    pub(crate) config: NatConfig,
    pub(crate) parent: RealmId,
    pub(crate) external_ip: IpAddr,
    next_port: u16,
    by_key: HashMap<MappingKey, u16, FxBuild>,
    by_port: HashMap<u16, Mapping, FxBuild>,
    pub(crate) stats: NatStats,
}

const PORT_MIN: u16 = 1024;

impl Nat {
    pub(crate) fn new(config: NatConfig, parent: RealmId, external_ip: IpAddr, first_port: u16) -> Self {
        Nat {
            config,
            parent,
            external_ip,
            next_port: first_port.max(PORT_MIN),
            by_key: HashMap::default(),
            by_port: HashMap::default(),
            stats: NatStats::default(),
        }
    }

    fn expired(&self, last: Instant, now: Instant) -> bool {
        now.saturating_duration_since(last) >= self.config.mapping_timeout
    }

    /// Number of live mappings at `now`.
    pub(crate) fn live_mappings(&self, now: Instant) -> usize {
        self.by_port.values().filter(|m| !self.expired(m.last_out, now)).count()
    }

    /// Translates an outbound datagram's source; `None` when no port is free.
    pub(crate) fn outbound(&mut self, now: Instant, src: SocketAddr, dst: SocketAddr) -> Option<SocketAddr> {
        let key = (src, if self.config.nat_type == NatType::Symmetric { Some(dst) } else { None });
        let mut port = None;
        if let Some(&p) = self.by_key.get(&key) {
            let live = self.by_port.get(&p).is_some_and(|m| !self.expired(m.last_out, now));
            if live {
                port = Some(p);
            } else {
                self.by_key.remove(&key);
                self.by_port.remove(&p);
                self.stats.mappings_expired += 1;
            }
        }
        let port = match port {
            Some(p) => p,
            None => {
                let p = self.allocate_port(now)?;
                self.by_key.insert(key, p);
                self.by_port.insert(p, Mapping { key, last_out: now, permits: Vec::new() });
                self.stats.mappings_created += 1;
                p
            }
        };
        let m = self.by_port.get_mut(&port)?;
        m.last_out = now;
        match m.permits.iter_mut().find(|(a, _)| *a == dst) {
            Some(p) => p.1 = now,
            None => m.permits.push((dst, now)),
        }
        self.stats.translated_out += 1;
        Some(SocketAddr::new(self.external_ip, port))
    }

    fn allocate_port(&mut self, now: Instant) -> Option<u16> {
        for _ in 0..=(u16::MAX - PORT_MIN) {
            let p = self.next_port;
            self.next_port = if p == u16::MAX { PORT_MIN } else { p + 1 };
            match self.by_port.get(&p) {
                None => return Some(p),
                Some(m) if self.expired(m.last_out, now) => {
                    let key = m.key;
                    self.by_port.remove(&p);
                    self.by_key.remove(&key);
                    self.stats.mappings_expired += 1;
                    return Some(p);
                }
                Some(_) => {}
            }
        }
        None
    }

    /// Translates an inbound datagram's destination to the internal address.
    pub(crate) fn inbound(
        &mut self,
        now: Instant,
        src: SocketAddr,
        dst: SocketAddr,
    ) -> Result<SocketAddr, InboundDrop> {
        let port = dst.port();
        let Some(m) = self.by_port.get(&port) else {
            self.stats.no_mapping += 1;
            return Err(InboundDrop::NoMapping);
        };
        if self.expired(m.last_out, now) {
            let key = m.key;
            self.by_port.remove(&port);
            self.by_key.remove(&key);
            self.stats.mappings_expired += 1;
            self.stats.no_mapping += 1;
            return Err(InboundDrop::NoMapping);
        }
        let allowed = match self.config.nat_type {
            NatType::FullCone => true,
            NatType::AddressRestricted => m.permits.iter().any(|(a, t)| a.ip() == src.ip() && !self.expired(*t, now)),
            NatType::PortRestricted | NatType::Symmetric => {
                m.permits.iter().any(|(a, t)| *a == src && !self.expired(*t, now))
            }
        };
        if !allowed {
            self.stats.filtered += 1;
            return Err(InboundDrop::Filtered);
        }
        self.stats.translated_in += 1;
        Ok(m.key.0)
    }
}
