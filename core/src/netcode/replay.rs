//! The 256-entry replay window of netcode 1.02 ("Replay Protection").
//!
//! The standard keeps, for each of 256 slots, the last sequence number that
//! landed in slot `sequence % 256`, and rejects a packet when it is older than
//! `most_recent - 256` or when its slot already holds a sequence `>=` its own.
//! Inside the window a slot can only hold that exact sequence or an older lap,
//! so one bit per slot decides the same thing: this window stores 256 bits and
//! the most recent sequence (40 bytes instead of 2 KiB per connection) and
//! accepts and rejects exactly the packets the standard's table does.
//!
//! Every comparison is written subtraction-side so that sequences near
//! `u64::MAX` cannot overflow.

/// Number of sequence numbers the window remembers (the standard's
/// `NETCODE_REPLAY_PROTECTION_BUFFER_SIZE`).
pub const REPLAY_WINDOW: u64 = 256;

/// Replay protection for one direction of one connection. 40 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayWindow {
    most_recent: u64,
    bits: [u64; 4],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplayWindow {
    pub const fn new() -> Self {
        ReplayWindow { most_recent: 0, bits: [0; 4] }
    }

    fn bit(sequence: u64) -> (usize, u64) {
        let i = (sequence % REPLAY_WINDOW) as usize;
        (i / 64, 1u64 << (i % 64))
    }

    /// Whether a packet with this sequence must be ignored as a replay (or as
    /// too old to tell).
    pub fn already_received(&self, sequence: u64) -> bool {
        if self.most_recent >= REPLAY_WINDOW && sequence <= self.most_recent - REPLAY_WINDOW {
            return true;
        }
        if sequence > self.most_recent {
            return false;
        }
        let (w, m) = Self::bit(sequence);
        self.bits.get(w).is_some_and(|word| word & m != 0)
    }

    /// Record a sequence. Call only after the packet authenticated, so that
    /// forged headers cannot move the window.
    pub fn advance(&mut self, sequence: u64) {
        if sequence > self.most_recent {
            let gap = sequence - self.most_recent;
            if gap >= REPLAY_WINDOW {
                self.bits = [0; 4];
            } else {
                // Forget the slots the window slides over (they now stand for
                // sequences not yet received).
                let mut s = self.most_recent;
                for _ in 0..gap {
                    s += 1;
                    let (w, m) = Self::bit(s);
                    if let Some(word) = self.bits.get_mut(w) {
                        *word &= !m;
                    }
                }
            }
            self.most_recent = sequence;
        } else if self.most_recent >= REPLAY_WINDOW && sequence <= self.most_recent - REPLAY_WINDOW {
            return;
        }
        let (w, m) = Self::bit(sequence);
        if let Some(word) = self.bits.get_mut(w) {
            *word |= m;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The standard's table, as the reference implementations keep it.
    struct Table {
        most_recent: u64,
        received: [u64; 256],
    }
    impl Table {
        fn already_received(&self, s: u64) -> bool {
            if self.most_recent >= 256 && s <= self.most_recent - 256 {
                return true;
            }
            let e = self.received[(s % 256) as usize];
            e != u64::MAX && e >= s
        }
        fn advance(&mut self, s: u64) {
            if s > self.most_recent {
                self.most_recent = s;
            }
            self.received[(s % 256) as usize] = s;
        }
    }

    #[test]
    fn matches_the_standard_table_on_random_traffic() {
        use rand::{Rng, SeedableRng};
        for seed in 0..20u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let base: u64 = if seed % 2 == 0 { 0 } else { u64::MAX - 100_000 };
            let mut t = Table { most_recent: 0, received: [u64::MAX; 256] };
            let mut w = ReplayWindow::new();
            let mut next = base;
            for _ in 0..5000 {
                let s = match rng.gen_range(0..10) {
                    0..=5 => {
                        next = next.saturating_add(rng.gen_range(0..4));
                        next
                    }
                    6..=8 => next.saturating_sub(rng.gen_range(0..300)),
                    _ => next.saturating_add(rng.gen_range(0..600)),
                };
                assert_eq!(w.already_received(s), t.already_received(s), "seed {seed} seq {s}");
                if !t.already_received(s) {
                    t.advance(s);
                    w.advance(s);
                }
            }
        }
    }

    #[test]
    fn replays_and_old_packets_rejected() {
        let mut w = ReplayWindow::new();
        for s in 0..512 {
            assert!(!w.already_received(s));
            w.advance(s);
        }
        assert!(w.already_received(511));
        assert!(w.already_received(256)); // == most_recent - 255: in window, received
        assert!(w.already_received(255)); // too old
        assert!(!w.already_received(512));
        let top = u64::MAX - 1;
        w.advance(top);
        assert!(w.already_received(top));
        assert!(!w.already_received(u64::MAX));
    }
}
