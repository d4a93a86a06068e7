//! A bounded queue of variable-length byte entries in one fixed array
//! (`[len: u16][bytes]` each), used for the outgoing flight, out-of-order
//! handshake fragments and application data in both directions.

use crate::bytes::{BufferTooSmall, Writer};

/// Entries packed back to back in `N` bytes; each costs two bytes of header.
#[derive(Clone)]
pub(crate) struct ByteQueue<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> core::fmt::Debug for ByteQueue<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "ByteQueue({}/{} bytes)", self.len, N)
    }
}

impl<const N: usize> ByteQueue<N> {
    pub(crate) const fn new() -> Self {
        ByteQueue { buf: [0; N], len: 0 }
    }

    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Append one entry made of the concatenation of `parts`; `false` (and
    /// nothing written) if it does not fit.
    pub(crate) fn push(&mut self, parts: &[&[u8]]) -> bool {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total > u16::MAX as usize || self.len + 2 + total > N {
            return false;
        }
        self.buf[self.len..self.len + 2].copy_from_slice(&(total as u16).to_be_bytes());
        let mut at = self.len + 2;
        for p in parts {
            self.buf[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        self.len = at;
        true
    }

    /// Append one entry written by `f` through a [`Writer`] over the free
    /// space; returns the entry's offset.
    pub(crate) fn push_with(
        &mut self,
        f: impl FnOnce(&mut Writer<'_>) -> Result<(), BufferTooSmall>,
    ) -> Result<usize, BufferTooSmall> {
        let start = self.len;
        let space = self.buf.get_mut(start + 2..).ok_or(BufferTooSmall)?;
        let mut w = Writer::new(space);
        f(&mut w)?;
        let n = w.len();
        if n > u16::MAX as usize {
            return Err(BufferTooSmall);
        }
        self.buf[start..start + 2].copy_from_slice(&(n as u16).to_be_bytes());
        self.len = start + 2 + n;
        Ok(start)
    }

    /// The entry starting at byte offset `off` and the offset of the next.
    pub(crate) fn entry_at(&self, off: usize) -> Option<(&[u8], usize)> {
        if off + 2 > self.len {
            return None;
        }
        let n = u16::from_be_bytes([self.buf[off], self.buf[off + 1]]) as usize;
        let end = off + 2 + n;
        Some((self.buf.get(off + 2..end)?, end))
    }

    /// Remove the entry at `off`; later entries move down.
    pub(crate) fn remove_at(&mut self, off: usize) {
        if let Some((_, next)) = self.entry_at(off) {
            self.buf.copy_within(next..self.len, off);
            self.len -= next - off;
        }
    }

    pub(crate) fn front(&self) -> Option<&[u8]> {
        self.entry_at(0).map(|(e, _)| e)
    }

    pub(crate) fn pop_front(&mut self) {
        self.remove_at(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_iterate_remove() {
        let mut q = ByteQueue::<16>::new();
        assert!(q.push(&[b"ab", b"c"]));
        assert!(q.push(&[b"defg"]));
        assert!(!q.push(&[b"0123456789"]));
        assert_eq!(q.front(), Some(&b"abc"[..]));
        let (_, next) = q.entry_at(0).unwrap();
        assert_eq!(q.entry_at(next).unwrap().0, b"defg");
        q.pop_front();
        assert_eq!(q.front(), Some(&b"defg"[..]));
        q.pop_front();
        assert!(q.is_empty());
        assert_eq!(q.front(), None);
    }
}
