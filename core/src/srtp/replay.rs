//! Packet index estimation (RFC 3711 3.3.1 and appendix A) and the replay
//! list as a sliding bitmap (RFC 3711 3.3.2).

use super::SrtpError;

/// Size of the replay window in packets (RFC 3711 3.3.2 asks for at least
/// 64). A packet whose index is this far or more behind the highest index
/// authenticated so far is rejected as [`SrtpError::Replayed`]. The bitmap
/// costs 16 bytes per stream and direction (RTP and RTCP each).
pub const REPLAY_WINDOW: u64 = 128;

/// Highest index authenticated so far and the bitmap of the
/// [`REPLAY_WINDOW`] indices at and below it (bit `d` = index `top - d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReplayWindow {
    /// `None` until the first packet of the stream.
    top: Option<u64>,
    bits: u128,
}

impl ReplayWindow {
    pub(crate) const EMPTY: ReplayWindow = ReplayWindow { top: None, bits: 0 };

    /// The highest index recorded so far.
    pub(crate) fn top(&self) -> Option<u64> {
        self.top
    }

    /// Whether `index` may still be accepted (not seen, not too old).
    pub(crate) fn check(&self, index: u64) -> Result<(), SrtpError> {
        let Some(top) = self.top else { return Ok(()) };
        if index > top {
            return Ok(());
        }
        let delta = top - index;
        if delta >= REPLAY_WINDOW || (self.bits >> delta) & 1 == 1 {
            return Err(SrtpError::Replayed);
        }
        Ok(())
    }

    /// Record `index` as received (call only after authentication).
    pub(crate) fn record(&mut self, index: u64) {
        match self.top {
            None => {
                self.top = Some(index);
                self.bits = 1;
            }
            Some(top) if index > top => {
                let shift = index - top;
                self.bits = if shift >= 128 { 0 } else { self.bits << shift };
                self.bits |= 1;
                self.top = Some(index);
            }
            Some(top) => {
                let delta = top - index;
                if delta < REPLAY_WINDOW {
                    self.bits |= 1u128 << delta;
                }
            }
        }
    }

    /// Move the highest index forward without touching replay state (the
    /// sending side only tracks the rollover counter).
    pub(crate) fn advance(&mut self, index: u64) {
        match self.top {
            Some(t) if t >= index => {}
            _ => self.top = Some(index),
        }
    }
}

/// The 48-bit packet index `ROC * 2^16 + SEQ` for sequence number `seq`,
/// guessing the rollover counter from the highest index so far (RFC 3711
/// appendix A). `None` when the guess falls before index 0 or past 2^48 - 1.
pub(crate) fn estimate_index(top: Option<u64>, seq: u16) -> Option<u64> {
    let Some(top) = top else { return Some(u64::from(seq)) };
    let roc = (top >> 16) as i64;
    let s_l = i64::from(top as u16);
    let seq_i = i64::from(seq);
    let v = if s_l < 32768 {
        if seq_i - s_l > 32768 {
            roc - 1
        } else {
            roc
        }
    } else if s_l - 32768 > seq_i {
        roc + 1
    } else {
        roc
    };
    if !(0..=i64::from(u32::MAX)).contains(&v) {
        return None;
    }
    Some(((v as u64) << 16) | u64::from(seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_estimation_follows_appendix_a() {
        assert_eq!(estimate_index(None, 7), Some(7));
        // Wrap forward: 65535 then 0 is ROC 1.
        assert_eq!(estimate_index(Some(65535), 0), Some(65536));
        assert_eq!(estimate_index(Some(65000), 100), Some(65536 + 100));
        // Late packet from before the wrap: ROC - 1.
        assert_eq!(estimate_index(Some(65536 + 10), 65530), Some(65530));
        // Before index 0: no valid guess.
        assert_eq!(estimate_index(Some(10), 65530), None);
        // Ordinary progress.
        assert_eq!(estimate_index(Some((5 << 16) | 40000), 40001), Some((5 << 16) | 40001));
        // ROC cannot pass 2^32 - 1.
        assert_eq!(estimate_index(Some(0xffff_ffff_ffff), 1), None);
    }

    #[test]
    fn window_rejects_duplicates_and_old_packets() {
        let mut w = ReplayWindow::EMPTY;
        assert_eq!(w.check(1000), Ok(()));
        w.record(1000);
        assert_eq!(w.check(1000), Err(SrtpError::Replayed));
        assert_eq!(w.check(999), Ok(()));
        w.record(999);
        assert_eq!(w.check(999), Err(SrtpError::Replayed));
        w.record(1003);
        assert_eq!(w.check(1000), Err(SrtpError::Replayed));
        assert_eq!(w.check(1001), Ok(()));
        assert_eq!(w.check(1003 - (REPLAY_WINDOW - 1)), Ok(()));
        assert_eq!(w.check(1003 - REPLAY_WINDOW), Err(SrtpError::Replayed));
        w.record(1003 + 500);
        assert_eq!(w.check(1003), Err(SrtpError::Replayed));
        assert_eq!(w.check(1503 - 1), Ok(()));
        assert_eq!(w.top(), Some(1503));
    }
}
