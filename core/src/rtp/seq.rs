//! Sequence-number arithmetic (RFC 3550 appendix A.1): 16-bit RTP sequence
//! numbers compared modulo 2^16 and extended to 64 bits by counting wraps.

/// `a` comes after `b` in modulo-2^16 order (within half the space).
pub fn seq_after(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

/// Extends 16-bit sequence numbers to a monotonic 64-bit index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqUnwrapper {
    last: Option<u64>,
}

impl SeqUnwrapper {
    pub const fn new() -> Self {
        SeqUnwrapper { last: None }
    }

    /// The extended value of `seq`, taken as the one closest to the last
    /// value unwrapped (never below zero).
    pub fn unwrap(&mut self, seq: u16) -> u64 {
        let ext = match self.last {
            None => seq as u64 + 0x1_0000,
            Some(last) => {
                let delta = seq.wrapping_sub(last as u16) as i16 as i64;
                let v = last as i64 + delta;
                if v < 0 {
                    seq as u64
                } else {
                    v as u64
                }
            }
        };
        match self.last {
            Some(last) if ext <= last => {}
            _ => self.last = Some(ext),
        }
        ext
    }

    /// The highest extended value seen so far.
    pub fn highest(&self) -> Option<u64> {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwraps_across_wrap_and_reorder() {
        let mut u = SeqUnwrapper::new();
        let a = u.unwrap(65534);
        assert_eq!(u.unwrap(65535), a + 1);
        assert_eq!(u.unwrap(1), a + 3);
        assert_eq!(u.unwrap(0), a + 2);
        assert_eq!(u.highest(), Some(a + 3));
        assert!(seq_after(1, 65535));
        assert!(!seq_after(65535, 1));
        assert!(!seq_after(7, 7));
    }
}
