//! A packet store indexed by extended sequence number, over caller storage
//! cut into equal slots: the sender's retransmission history and the
//! receiver's reordering buffer. No allocation; slot `i` holds the packet
//! whose extended sequence number is congruent to `i` modulo the slot count.

/// Per-slot bookkeeping bytes: extended sequence (8), length (2), time (8).
pub const SLOT_OVERHEAD: usize = 18;

/// Caller storage of `slots * (max_packet + SLOT_OVERHEAD)` bytes.
#[derive(Debug)]
pub(crate) struct PacketStore<B> {
    buf: B,
    slot_size: usize,
    slots: usize,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> PacketStore<B> {
    /// `max_packet`: largest packet to keep (the MTU).
    pub(crate) fn new(mut buf: B, max_packet: usize) -> Self {
        let slot_size = max_packet + SLOT_OVERHEAD;
        let slots = buf.as_ref().len() / slot_size;
        buf.as_mut().fill(0);
        PacketStore { buf, slot_size, slots }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.slots
    }

    pub(crate) fn max_packet(&self) -> usize {
        self.slot_size - SLOT_OVERHEAD
    }

    fn slot(&self, ext: u64) -> Option<&[u8]> {
        if self.slots == 0 {
            return None;
        }
        let i = (ext % self.slots as u64) as usize;
        self.buf.as_ref().get(i * self.slot_size..(i + 1) * self.slot_size)
    }

    fn slot_mut(&mut self, ext: u64) -> Option<&mut [u8]> {
        if self.slots == 0 {
            return None;
        }
        let i = (ext % self.slots as u64) as usize;
        let size = self.slot_size;
        self.buf.as_mut().get_mut(i * size..(i + 1) * size)
    }

    /// Reserve the slot for `ext` (evicting what was there) and return the
    /// room for the packet; call [`commit`](Self::commit) with its length.
    pub(crate) fn slot_for(&mut self, ext: u64) -> Option<&mut [u8]> {
        let s = self.slot_mut(ext)?;
        s[..SLOT_OVERHEAD].fill(0);
        Some(&mut s[SLOT_OVERHEAD..])
    }

    pub(crate) fn commit(&mut self, ext: u64, len: usize, time_us: u64) {
        if let Some(s) = self.slot_mut(ext) {
            // Stored +1 so that zero means empty.
            s[0..8].copy_from_slice(&(ext + 1).to_be_bytes());
            s[8..10].copy_from_slice(&(len as u16).to_be_bytes());
            s[10..18].copy_from_slice(&time_us.to_be_bytes());
        }
    }

    fn header(s: &[u8]) -> (u64, usize, u64) {
        let mut e = [0u8; 8];
        e.copy_from_slice(&s[0..8]);
        let mut t = [0u8; 8];
        t.copy_from_slice(&s[10..18]);
        (u64::from_be_bytes(e), u16::from_be_bytes([s[8], s[9]]) as usize, u64::from_be_bytes(t))
    }

    /// The packet stored for `ext` and its time value.
    pub(crate) fn get(&self, ext: u64) -> Option<(&[u8], u64)> {
        let s = self.slot(ext)?;
        let (e, len, t) = Self::header(s);
        if e != ext + 1 {
            return None;
        }
        Some((s.get(SLOT_OVERHEAD..SLOT_OVERHEAD + len)?, t))
    }

    pub(crate) fn contains(&self, ext: u64) -> bool {
        self.get(ext).is_some()
    }

    pub(crate) fn set_time(&mut self, ext: u64, time_us: u64) {
        if self.contains(ext) {
            if let Some(s) = self.slot_mut(ext) {
                s[10..18].copy_from_slice(&time_us.to_be_bytes());
            }
        }
    }

    pub(crate) fn remove(&mut self, ext: u64) {
        if self.contains(ext) {
            if let Some(s) = self.slot_mut(ext) {
                s[..SLOT_OVERHEAD].fill(0);
            }
        }
    }
}
