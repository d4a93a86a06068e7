//! STUN client transactions over UDP (RFC 8489 6.2.1): retransmission
//! timing and a bounded transaction table.
//!
//! The table keeps no request bytes: the owner re-encodes a request (same
//! transaction ID, same attributes) when [`Transactions::poll_due`] says it
//! is due. That costs one HMAC per retransmission and saves a request
//! buffer per transaction.
//!
//! Timing: the first request is sent at once; the k-th retransmission waits
//! `RTO * 2^(k-1)` after the previous send; after the `Rc`-th send the
//! transaction waits `Rm * RTO` for a response, then fails. With the
//! defaults (RTO 500 ms, Rc 7, Rm 16) requests go out at 0, 0.5, 1.5, 3.5,
//! 7.5, 15.5 and 31.5 s and the transaction fails at 39.5 s.

use crate::stun::TransactionId;
use crate::time::{Duration, Instant};

/// Retransmission parameters (RFC 8489 6.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RetransmitConfig {
    /// Initial retransmission timeout (default 500 ms).
    pub rto: Duration,
    /// Total number of requests sent (default 7).
    pub rc: u8,
    /// Multiple of RTO waited after the last request (default 16).
    pub rm: u8,
}

impl Default for RetransmitConfig {
    fn default() -> Self {
        RetransmitConfig { rto: Duration::from_millis(500), rc: 7, rm: 16 }
    }
}

/// The transaction table is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TableFull;

#[derive(Debug, Clone, Copy)]
struct Entry<T> {
    id: TransactionId,
    ctx: T,
    /// When the next send (or the failure, once `sent == rc`) is due.
    next: Instant,
    sent: u8,
    rc: u8,
    rto: Duration,
}

/// Up to `N` outstanding client transactions, each with caller context `T`
/// (what the owner needs to re-encode the request and to route the answer).
///
/// Memory: `N * (size_of::<T>() + 40)` bytes, roughly.
#[derive(Debug, Clone)]
pub struct Transactions<T: Copy, const N: usize> {
    entries: heapless::Vec<Entry<T>, N>,
    config: RetransmitConfig,
}

impl<T: Copy, const N: usize> Transactions<T, N> {
    pub fn new(config: RetransmitConfig) -> Self {
        Transactions { entries: heapless::Vec::new(), config }
    }

    pub fn config(&self) -> &RetransmitConfig {
        &self.config
    }

    /// Register a transaction whose first request is due at `now`, with the
    /// configured RTO or `rto` if given (ICE computes its own, RFC 8445 14.3).
    pub fn start(&mut self, now: Instant, id: TransactionId, ctx: T, rto: Option<Duration>) -> Result<(), TableFull> {
        self.start_with(now, id, ctx, rto, self.config.rc)
    }

    /// Like [`Self::start`] with its own request count `rc` (e.g. consent
    /// checks, which are not worth retransmitting as long).
    pub fn start_with(
        &mut self,
        now: Instant,
        id: TransactionId,
        ctx: T,
        rto: Option<Duration>,
        rc: u8,
    ) -> Result<(), TableFull> {
        let rto = rto.unwrap_or(self.config.rto);
        self.entries.push(Entry { id, ctx, next: now, sent: 0, rc: rc.max(1), rto }).map_err(|_| TableFull)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn is_full(&self) -> bool {
        self.entries.is_full()
    }

    /// The context of an outstanding transaction.
    pub fn get(&self, id: &TransactionId) -> Option<&T> {
        self.entries.iter().find(|e| &e.id == id).map(|e| &e.ctx)
    }

    /// Outstanding transactions.
    pub fn iter(&self) -> impl Iterator<Item = (&TransactionId, &T)> {
        self.entries.iter().map(|e| (&e.id, &e.ctx))
    }

    /// Remove a transaction (its response arrived, or it was abandoned) and
    /// return its context.
    pub fn take(&mut self, id: &TransactionId) -> Option<T> {
        let i = self.entries.iter().position(|e| &e.id == id)?;
        Some(self.entries.swap_remove(i).ctx)
    }

    /// Send no more retransmissions for `id`, but keep waiting for a
    /// response until its current timer runs out (RFC 8445 7.3.1.4
    /// "cancellation"). Returns whether the transaction exists.
    pub fn stop_retransmitting(&mut self, id: &TransactionId) -> bool {
        match self.entries.iter_mut().find(|e| &e.id == id) {
            Some(e) => {
                e.rc = e.sent.max(1);
                true
            }
            None => false,
        }
    }

    /// Remove every transaction whose context matches `f`.
    pub fn retain(&mut self, mut f: impl FnMut(&T) -> bool) {
        self.entries.retain(|e| f(&e.ctx));
    }

    /// A request due for (re)transmission at `now`: the caller encodes and
    /// sends it. Its next deadline is scheduled as if it was sent at `now`.
    pub fn poll_due(&mut self, now: Instant) -> Option<(TransactionId, T)> {
        let rm = u64::from(self.config.rm);
        let e = self.entries.iter_mut().filter(|e| e.next <= now && e.sent < e.rc).min_by_key(|e| e.next)?;
        e.sent += 1;
        let wait =
            if e.sent < e.rc { e.rto.saturating_mul(1u64 << (e.sent - 1).min(32)) } else { e.rto.saturating_mul(rm) };
        e.next = now + wait;
        Some((e.id, e.ctx))
    }

    /// A transaction that timed out at `now` (removed from the table).
    pub fn poll_expired(&mut self, now: Instant) -> Option<(TransactionId, T)> {
        let i = self.entries.iter().position(|e| e.next <= now && e.sent >= e.rc)?;
        let e = self.entries.swap_remove(i);
        Some((e.id, e.ctx))
    }

    /// The earliest send or expiry deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.entries.iter().map(|e| e.next).min()
    }

    /// How many requests have been sent for a transaction.
    pub fn sent_count(&self, id: &TransactionId) -> Option<u8> {
        self.entries.iter().find(|e| &e.id == id).map(|e| e.sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    #[test]
    fn rfc8489_default_schedule() {
        let mut t: Transactions<u8, 2> = Transactions::new(RetransmitConfig::default());
        t.start(Instant::ZERO, [1; 12], 9, None).unwrap();
        let mut sends = Vec::new();
        let mut now = Instant::ZERO;
        let failed_at = loop {
            while let Some((id, ctx)) = t.poll_due(now) {
                assert_eq!((id, ctx), ([1; 12], 9));
                sends.push(now.as_millis());
            }
            if let Some((id, _)) = t.poll_expired(now) {
                assert_eq!(id, [1; 12]);
                break now.as_millis();
            }
            now = t.poll_timeout().unwrap();
        };
        // RFC 8489 6.2.1: 0, 500, 1500, 3500, 7500, 15500, 31500; fail at 39500.
        assert_eq!(sends, [0, 500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(failed_at, 39500);
        assert!(t.is_empty());
        assert_eq!(t.poll_timeout(), None);
    }

    #[test]
    fn table_is_bounded_and_take_removes() {
        let mut t: Transactions<u8, 2> =
            Transactions::new(RetransmitConfig { rto: Duration::from_millis(100), rc: 2, rm: 1 });
        t.start(Instant::ZERO, [1; 12], 1, None).unwrap();
        t.start(Instant::ZERO, [2; 12], 2, Some(Duration::from_millis(50))).unwrap();
        assert_eq!(t.start(Instant::ZERO, [3; 12], 3, None), Err(TableFull));
        assert_eq!(t.take(&[1; 12]), Some(1));
        assert_eq!(t.take(&[1; 12]), None);
        assert_eq!(t.poll_due(Instant::ZERO), Some(([2; 12], 2)));
        assert_eq!(t.poll_due(Instant::ZERO), None);
        assert_eq!(t.poll_timeout(), Some(Instant::from_millis(50)));
        assert_eq!(t.poll_due(Instant::from_millis(50)), Some(([2; 12], 2)));
        assert_eq!(t.sent_count(&[2; 12]), Some(2));
        assert_eq!(t.poll_expired(Instant::from_millis(99)), None);
        assert_eq!(t.poll_expired(Instant::from_millis(100)), Some(([2; 12], 2)));
    }

    #[test]
    fn stopped_transactions_wait_without_retransmitting() {
        let mut t: Transactions<u8, 2> = Transactions::new(RetransmitConfig::default());
        t.start(Instant::ZERO, [1; 12], 1, None).unwrap();
        assert!(t.poll_due(Instant::ZERO).is_some());
        assert!(t.stop_retransmitting(&[1; 12]));
        assert!(!t.stop_retransmitting(&[2; 12]));
        // Due at 500 ms: no retransmission, the wait is over (Rm * RTO).
        assert_eq!(t.poll_due(Instant::from_millis(500)), None);
        assert_eq!(t.poll_expired(Instant::from_millis(499)), None);
        assert_eq!(t.poll_expired(Instant::from_millis(500)), Some(([1; 12], 1)));
    }
}
