//! The camera: a [`FrameSource`] hands out encoded video frames, and a
//! [`FramePacer`] says when the next one is due.
//!
//! [`AnnexBClip`] plays a stored H.264 Annex-B elementary stream (ITU-T
//! H.264 Annex B byte stream) frame by frame, looping forever: it splits the
//! stream into access units (section 7.4.1.2.3: an access unit ends before an
//! AUD/SPS/PPS/SEI NAL unit or before a slice whose `first_mb_in_slice` is 0
//! that follows a slice). Each access unit goes out as one frame (the RTP
//! packetizer splits it into FU-A/single NAL packets). Streams with
//! arbitrary slice order or redundant pictures are not split correctly;
//! camera encoders and `ffmpeg -profile:v baseline` do not produce those.

use tinyrtc::time::{Duration, Instant};

/// How frames from a [`FrameSource`] are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameFormat {
    /// One H.264 access unit in Annex-B form (start codes before each NAL).
    H264AnnexB,
    /// One baseline JPEG image (for an RFC 2435 MJPEG track; the `Peer` does
    /// not negotiate MJPEG yet, so [`crate::Device`] refuses this format).
    Jpeg,
}

/// One encoded video frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub data: &'a [u8],
    /// RTP timestamp (90 kHz clock), increasing across loops.
    pub timestamp: u32,
    /// The frame can be decoded on its own (H.264: contains an IDR slice).
    pub keyframe: bool,
}

/// Anything that produces encoded frames: a stored clip, a camera driver.
pub trait FrameSource {
    fn format(&self) -> FrameFormat;
    /// Time between frames.
    fn frame_interval(&self) -> Duration;
    /// The next frame (`None`: nothing available now).
    fn next_frame(&mut self) -> Option<Frame<'_>>;
}

/// Where the next start code (`00 00 01`, or `00 00 00 01`) at or after
/// `from` begins, and its length.
fn find_start_code(data: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while let Some(w) = data.get(i..i + 3) {
        if w == [0, 0, 1] {
            if i > from && data.get(i - 1) == Some(&0) {
                return Some((i - 1, 4));
            }
            return Some((i, 3));
        }
        i += 1;
    }
    None
}

/// H.264 NAL unit types that matter for access-unit boundaries.
const NAL_SLICE: u8 = 1;
const NAL_IDR: u8 = 5;

/// The access unit starting at `start` (a start code position): returns its
/// end (exclusive) and whether it holds an IDR slice. `None` when no NAL
/// unit starts at or after `start`.
pub fn access_unit_at(data: &[u8], start: usize) -> Option<(usize, bool)> {
    let (mut sc, mut sc_len) = find_start_code(data, start)?;
    let mut seen_slice = false;
    let mut keyframe = false;
    loop {
        let header = sc + sc_len;
        let nal_type = data.get(header).map(|b| b & 0x1f);
        let is_slice = matches!(nal_type, Some(NAL_SLICE | NAL_IDR));
        // first_mb_in_slice is ue(v): its first bit is 1 exactly when it is 0.
        let first_mb_zero = data.get(header + 1).is_some_and(|b| b & 0x80 != 0);
        let starts_new = match nal_type {
            Some(6..=9 | 14..=18) => true,
            Some(NAL_SLICE | NAL_IDR) => first_mb_zero,
            _ => false,
        };
        if seen_slice && starts_new {
            return Some((sc, keyframe));
        }
        if is_slice {
            seen_slice = true;
            keyframe |= nal_type == Some(NAL_IDR);
        }
        match find_start_code(data, header + 1) {
            Some((next, len)) => {
                sc = next;
                sc_len = len;
            }
            None => return Some((data.len(), keyframe)),
        }
    }
}

/// A stored H.264 clip played as a camera, looping, at a fixed frame rate.
#[derive(Debug, Clone)]
pub struct AnnexBClip<'a> {
    data: &'a [u8],
    pos: usize,
    timestamp: u32,
    ticks_per_frame: u32,
    interval: Duration,
    frames: u64,
}

impl<'a> AnnexBClip<'a> {
    /// `fps` frames per second (at least 1). The clip should start with
    /// SPS/PPS and an IDR so each loop restarts decodably.
    pub fn new(data: &'a [u8], fps: u32) -> Self {
        let fps = fps.max(1);
        AnnexBClip {
            data,
            pos: 0,
            timestamp: 0,
            ticks_per_frame: 90_000 / fps,
            interval: Duration::from_micros(1_000_000 / u64::from(fps)),
            frames: 0,
        }
    }

    /// Frames handed out so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }
}

impl FrameSource for AnnexBClip<'_> {
    fn format(&self) -> FrameFormat {
        FrameFormat::H264AnnexB
    }

    fn frame_interval(&self) -> Duration {
        self.interval
    }

    fn next_frame(&mut self) -> Option<Frame<'_>> {
        let (start, (end, keyframe)) = match access_unit_at(self.data, self.pos) {
            Some(au) => (self.pos, au),
            None => (0, access_unit_at(self.data, 0)?),
        };
        self.pos = end;
        let frame = Frame { data: self.data.get(start..end)?, timestamp: self.timestamp, keyframe };
        self.timestamp = self.timestamp.wrapping_add(self.ticks_per_frame);
        self.frames += 1;
        Some(frame)
    }
}

/// Fixed-rate schedule for frames: due every `interval`; after a stall it
/// skips ahead instead of bursting the missed frames.
#[derive(Debug, Clone, Copy)]
pub struct FramePacer {
    interval: Duration,
    next: Option<Instant>,
}

impl FramePacer {
    pub fn new(interval: Duration) -> Self {
        FramePacer { interval, next: None }
    }

    /// Start (or restart) the schedule: the first frame is due at `now`.
    pub fn start(&mut self, now: Instant) {
        self.next = Some(now);
    }

    pub fn stop(&mut self) {
        self.next = None;
    }

    /// When the next frame is due (`None`: stopped).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next
    }

    /// Whether a frame is due at `now`; if so, schedules the following one.
    pub fn take_due(&mut self, now: Instant) -> bool {
        let Some(next) = self.next else { return false };
        if now < next {
            return false;
        }
        let mut following = next + self.interval;
        if following <= now {
            following = now + self.interval;
        }
        self.next = Some(following);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic stream: SPS, PPS, IDR (two slices), P, P (4-byte and
    /// 3-byte start codes mixed), then SPS/PPS/IDR again.
    const STREAM: &[u8] = &[
        0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, // SPS
        0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, // PPS
        0, 0, 0, 1, 0x65, 0x88, 0x84, 0x00, // IDR slice, first_mb 0
        0, 0, 1, 0x65, 0x40, 0x11, // IDR slice, first_mb != 0 (same picture)
        0, 0, 0, 1, 0x41, 0x9a, 0x22, // P slice, first_mb 0
        0, 0, 1, 0x41, 0x9a, 0x33, 0x44, // P slice, first_mb 0
        0, 0, 0, 1, 0x67, 0x42, // SPS
        0, 0, 0, 1, 0x68, 0xce, // PPS
        0, 0, 0, 1, 0x65, 0x88, 0x99, // IDR
    ];

    #[test]
    fn splits_access_units() {
        let mut clip = AnnexBClip::new(STREAM, 15);
        let f = clip.next_frame().unwrap();
        assert!(f.keyframe);
        assert_eq!(f.data, &STREAM[..30]);
        assert_eq!(f.timestamp, 0);
        let f = clip.next_frame().unwrap();
        assert!(!f.keyframe);
        assert_eq!(f.data, &STREAM[30..37]);
        assert_eq!(f.timestamp, 6000);
        let f = clip.next_frame().unwrap();
        assert_eq!(f.data, &STREAM[37..44]);
        let f = clip.next_frame().unwrap();
        assert!(f.keyframe);
        assert_eq!(f.data, &STREAM[44..]);
        // Loops back to the first access unit; timestamps keep increasing.
        let f = clip.next_frame().unwrap();
        assert_eq!(f.data, &STREAM[..30]);
        assert_eq!(f.timestamp, 4 * 6000);
        assert_eq!(clip.frames(), 5);
    }

    #[test]
    fn empty_or_garbage_gives_no_frame() {
        assert!(AnnexBClip::new(&[], 15).next_frame().is_none());
        assert!(AnnexBClip::new(&[1, 2, 3, 4, 5], 15).next_frame().is_none());
        // A lone start code at the end: one (empty-bodied) unit, no panic.
        let mut c = AnnexBClip::new(&[0, 0, 1], 15);
        assert!(c.next_frame().is_some());
    }

    #[test]
    fn pacer_keeps_rate_and_skips_after_stall() {
        let mut p = FramePacer::new(Duration::from_millis(100));
        let t0 = Instant::from_micros(1_000_000);
        assert!(!p.take_due(t0));
        p.start(t0);
        assert!(p.take_due(t0));
        assert!(!p.take_due(t0 + Duration::from_millis(50)));
        assert_eq!(p.poll_timeout(), Some(t0 + Duration::from_millis(100)));
        assert!(p.take_due(t0 + Duration::from_millis(105)));
        assert_eq!(p.poll_timeout(), Some(t0 + Duration::from_millis(200)));
        // Stalled for a second: one frame now, the next one interval later.
        assert!(p.take_due(t0 + Duration::from_millis(1200)));
        assert!(!p.take_due(t0 + Duration::from_millis(1250)));
        assert_eq!(p.poll_timeout(), Some(t0 + Duration::from_millis(1300)));
    }
}
