//! Bounds-checked big-endian readers and writers over caller buffers.
//!
//! Every wire format in the crate parses with [`Reader`] and emits with
//! [`Writer`], so that no input can index out of bounds and no output can
//! overrun the caller's buffer: both return [`Truncated`] / [`BufferTooSmall`]
//! instead of panicking.

/// Input ended before the field being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Truncated;

/// The caller's output buffer cannot hold what must be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BufferTooSmall;

/// A cursor reading big-endian fields from a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }
    /// The unread bytes, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Truncated> {
        let end = self.pos.checked_add(n).ok_or(Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(Truncated)?;
        self.pos = end;
        Ok(s)
    }
    /// Consume everything that is left.
    pub fn take_rest(&mut self) -> &'a [u8] {
        let s = self.rest();
        self.pos = self.buf.len();
        s
    }
    pub fn skip(&mut self, n: usize) -> Result<(), Truncated> {
        self.take(n).map(|_| ())
    }
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], Truncated> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    pub fn u8(&mut self) -> Result<u8, Truncated> {
        Ok(self.array::<1>()?[0])
    }
    pub fn u16(&mut self) -> Result<u16, Truncated> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    pub fn u24(&mut self) -> Result<u32, Truncated> {
        let [a, b, c] = self.array()?;
        Ok(u32::from_be_bytes([0, a, b, c]))
    }
    pub fn u32(&mut self) -> Result<u32, Truncated> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    pub fn u48(&mut self) -> Result<u64, Truncated> {
        let [a, b, c, d, e, f] = self.array()?;
        Ok(u64::from_be_bytes([0, 0, a, b, c, d, e, f]))
    }
    pub fn u64(&mut self) -> Result<u64, Truncated> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    /// A field prefixed by a one-byte length.
    pub fn vec8(&mut self) -> Result<&'a [u8], Truncated> {
        let n = self.u8()? as usize;
        self.take(n)
    }
    /// A field prefixed by a two-byte length.
    pub fn vec16(&mut self) -> Result<&'a [u8], Truncated> {
        let n = self.u16()? as usize;
        self.take(n)
    }
    /// A field prefixed by a three-byte length.
    pub fn vec24(&mut self) -> Result<&'a [u8], Truncated> {
        let n = self.u24()? as usize;
        self.take(n)
    }
}

/// A cursor writing big-endian fields into a caller buffer.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    pub fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }
    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.pos
    }
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    /// What has been written so far.
    pub fn written(&self) -> &[u8] {
        &self.buf[..self.pos]
    }
    /// Mutable access to what has been written (to patch lengths, MACs...).
    pub fn written_mut(&mut self) -> &mut [u8] {
        &mut self.buf[..self.pos]
    }
    /// Give back the underlying buffer and the number of bytes written.
    pub fn finish(self) -> (&'a mut [u8], usize) {
        (self.buf, self.pos)
    }
    /// Reserve `n` bytes and return them for the caller to fill.
    pub fn reserve(&mut self, n: usize) -> Result<&mut [u8], BufferTooSmall> {
        let end = self.pos.checked_add(n).ok_or(BufferTooSmall)?;
        if end > self.buf.len() {
            return Err(BufferTooSmall);
        }
        let start = self.pos;
        self.pos = end;
        Ok(&mut self.buf[start..end])
    }
    pub fn bytes(&mut self, b: &[u8]) -> Result<(), BufferTooSmall> {
        self.reserve(b.len())?.copy_from_slice(b);
        Ok(())
    }
    pub fn zeros(&mut self, n: usize) -> Result<(), BufferTooSmall> {
        self.reserve(n)?.fill(0);
        Ok(())
    }
    pub fn u8(&mut self, v: u8) -> Result<(), BufferTooSmall> {
        self.bytes(&[v])
    }
    pub fn u16(&mut self, v: u16) -> Result<(), BufferTooSmall> {
        self.bytes(&v.to_be_bytes())
    }
    pub fn u24(&mut self, v: u32) -> Result<(), BufferTooSmall> {
        self.bytes(&v.to_be_bytes()[1..])
    }
    pub fn u32(&mut self, v: u32) -> Result<(), BufferTooSmall> {
        self.bytes(&v.to_be_bytes())
    }
    pub fn u48(&mut self, v: u64) -> Result<(), BufferTooSmall> {
        self.bytes(&v.to_be_bytes()[2..])
    }
    pub fn u64(&mut self, v: u64) -> Result<(), BufferTooSmall> {
        self.bytes(&v.to_be_bytes())
    }
    /// Overwrite a big-endian u16 at an absolute offset already written.
    pub fn patch_u16(&mut self, at: usize, v: u16) -> Result<(), BufferTooSmall> {
        let dst = self.written_mut().get_mut(at..at + 2).ok_or(BufferTooSmall)?;
        dst.copy_from_slice(&v.to_be_bytes());
        Ok(())
    }
    /// Overwrite a big-endian u24 at an absolute offset already written.
    pub fn patch_u24(&mut self, at: usize, v: u32) -> Result<(), BufferTooSmall> {
        let dst = self.written_mut().get_mut(at..at + 3).ok_or(BufferTooSmall)?;
        dst.copy_from_slice(&v.to_be_bytes()[1..]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_never_overruns() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16(), Ok(0x0102));
        assert_eq!(r.u16(), Err(Truncated));
        assert_eq!(r.u8(), Ok(3));
        assert_eq!(r.take(usize::MAX), Err(Truncated));
        assert!(r.is_empty());
    }

    #[test]
    fn writer_reports_full_buffer() {
        let mut buf = [0u8; 5];
        let mut w = Writer::new(&mut buf);
        w.u32(0xdeadbeef).unwrap();
        assert_eq!(w.u16(1), Err(BufferTooSmall));
        w.u8(7).unwrap();
        w.patch_u16(0, 0x0102).unwrap();
        assert_eq!(w.written(), &[1, 2, 0xbe, 0xef, 7]);
    }
}
