//! Access links: the impairments a datagram meets between a host and the
//! network it is attached to.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tinyrtc::{Duration, Instant};

/// IPv4 + UDP header bytes counted against the MTU.
pub const IPV4_UDP_OVERHEAD: usize = 28;
/// IPv6 + UDP header bytes counted against the MTU.
pub const IPV6_UDP_OVERHEAD: usize = 48;

/// Impairments of one direction of a host's access link.
///
/// A datagram from host A to host B crosses A's uplink and then B's
/// downlink; each applies its own config independently (so loss set on one
/// side only is the end-to-end loss, and delays add up).
///
/// Order of application per crossing: MTU check, loss, the bottleneck queue
/// (when `rate_bps` is set), duplication, then a delay of
/// `delay + uniform(0..=jitter)` for each copy, plus `reorder_delay` for the
/// copies picked (probability `reorder`) to be overtaken by later ones.
/// Jitter alone can also reorder.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkConfig {
    /// Probability in `0.0..=1.0` that a datagram is lost.
    pub loss: f64,
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Extra delay drawn uniformly from `0..=jitter` for each datagram.
    pub jitter: Duration,
    /// Probability that a datagram is held back by `reorder_delay` more.
    pub reorder: f64,
    /// How long a reordered datagram is held back.
    pub reorder_delay: Duration,
    /// Probability that a datagram is delivered twice (independent delays).
    pub duplicate: f64,
    /// IP MTU in bytes; a datagram whose payload plus IP/UDP headers
    /// ([`IPV4_UDP_OVERHEAD`], [`IPV6_UDP_OVERHEAD`]) exceeds it is dropped and
    /// counted as `too_big` (no fragmentation, like a DF-marked datagram).
    pub mtu: usize,
    /// Bottleneck rate in bits per second (IP + UDP headers included);
    /// 0 = unlimited. Datagrams queue behind each other (FIFO) and wait
    /// their serialization time.
    pub rate_bps: u64,
    /// With `rate_bps`: a datagram that would wait longer than this in the
    /// queue is dropped (tail drop) and counted as `queue_dropped`.
    pub queue_limit: Duration,
}

impl Default for LinkConfig {
    /// An ideal link: no loss, no delay, MTU 1500.
    fn default() -> Self {
        LinkConfig {
            loss: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(20),
            duplicate: 0.0,
            mtu: 1500,
            rate_bps: 0,
            queue_limit: Duration::from_millis(100),
        }
    }
}

impl LinkConfig {
    /// An ideal link (same as `Default`).
    pub fn ideal() -> Self {
        Self::default()
    }
    /// A LAN-like link: 1 ms +0..0.2 ms.
    pub fn lan() -> Self {
        LinkConfig { delay: Duration::from_millis(1), jitter: Duration::from_micros(200), ..Self::default() }
    }
    /// A WAN-like link: 25 ms +0..5 ms.
    pub fn wan() -> Self {
        LinkConfig { delay: Duration::from_millis(25), jitter: Duration::from_millis(5), ..Self::default() }
    }
    /// A link that drops everything (a cut cable).
    pub fn cut() -> Self {
        LinkConfig { loss: 1.0, ..Self::default() }
    }
    /// This config with `loss` replaced.
    pub fn with_loss(self, loss: f64) -> Self {
        LinkConfig { loss, ..self }
    }
    /// This config with `delay` replaced.
    pub fn with_delay(self, delay: Duration) -> Self {
        LinkConfig { delay, ..self }
    }
}

/// What a link crossing does to one datagram.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Crossing {
    TooBig,
    Lost,
    QueueFull,
    /// Delay of the first copy, and of the duplicate if any; whether each
    /// copy was picked for reordering.
    Pass {
        first: (Duration, bool),
        second: Option<(Duration, bool)>,
    },
}

fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    // No draw for the common p == 0 case: keeps ideal links cheap.
    p > 0.0 && (p >= 1.0 || rng.gen::<f64>() < p)
}

impl LinkConfig {
    /// One datagram crossing at `now`; `free_at` is the link's queue state
    /// (when its bottleneck is next idle).
    pub(crate) fn cross(
        &self,
        rng: &mut ChaCha8Rng,
        payload_len: usize,
        ipv6: bool,
        now: Instant,
        free_at: &mut Instant,
    ) -> Crossing {
        let overhead = if ipv6 { IPV6_UDP_OVERHEAD } else { IPV4_UDP_OVERHEAD };
        let wire_len = payload_len + overhead;
        if wire_len > self.mtu {
            return Crossing::TooBig;
        }
        if chance(rng, self.loss) {
            return Crossing::Lost;
        }
        let mut queued = Duration::ZERO;
        if self.rate_bps > 0 {
            let start = (*free_at).max(now);
            if start - now > self.queue_limit {
                return Crossing::QueueFull;
            }
            let bits = wire_len as u64 * 8;
            let tx = Duration::from_micros((bits * 1_000_000).div_ceil(self.rate_bps));
            *free_at = start + tx;
            queued = *free_at - now;
        }
        let dup = chance(rng, self.duplicate);
        let first = self.one_delay(rng, queued);
        let second = if dup { Some(self.one_delay(rng, queued)) } else { None };
        Crossing::Pass { first, second }
    }

    fn one_delay(&self, rng: &mut ChaCha8Rng, queued: Duration) -> (Duration, bool) {
        let mut d = self.delay + queued;
        let j = self.jitter.as_micros();
        if j > 0 {
            d = d + Duration::from_micros(rng.gen_range(0..=j));
        }
        let re = chance(rng, self.reorder);
        if re {
            d = d + self.reorder_delay;
        }
        (d, re)
    }
}
