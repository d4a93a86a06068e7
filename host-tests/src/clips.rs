//! Test clips made by `ffmpeg` and the container splitting the media tests
//! need: H.264 Annex-B into access units, IVF into VP8 frames, Ogg pages
//! into Opus packets, an MJPEG stream into JPEG files.
//!
//! Clips are generated once into cargo's per-target temp dir
//! (`CARGO_TARGET_TMPDIR`-like path given by the caller) and reused.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether `ffmpeg` runs here.
pub fn ffmpeg_available() -> bool {
    Command::new("ffmpeg").arg("-version").output().map(|o| o.status.success()).unwrap_or(false)
}

/// `true` if the test can go on; `false` (after printing SKIP) when ffmpeg
/// is missing outside CI. Panics when it is missing in CI.
pub fn require_ffmpeg(test: &str) -> bool {
    if ffmpeg_available() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: ffmpeg is required in CI but was not found");
    }
    eprintln!("SKIP {test}: ffmpeg not found (install it: scripts/setup.sh)");
    false
}

/// `ffmpeg` arguments for the clips the tests share (commands from
/// PEERS.md), for [`generate`]: 5 s of 320x240 `testsrc` at 15 fps as H.264
/// Constrained Baseline Annex-B with SPS/PPS before every IDR (one a second).
pub const TESTSRC_H264: &[&str] = &[
    "-f",
    "lavfi",
    "-i",
    "testsrc=size=320x240:rate=15",
    "-t",
    "5",
    "-c:v",
    "libx264",
    "-profile:v",
    "baseline",
    "-level",
    "3.1",
    "-pix_fmt",
    "yuv420p",
    "-bf",
    "0",
    "-x264-params",
    "keyint=15:scenecut=0:repeat-headers=1",
    "-f",
    "h264",
];

/// 1 s of 640x480 `testsrc` at 30 fps as H.264 baseline at 2 Mbit/s: access
/// units large enough to need FU-A at MTU 1200.
#[rustfmt::skip]
pub const TESTSRC_H264_640: &[&str] = &[
    "-f", "lavfi", "-i", "testsrc=size=640x480:rate=30", "-t", "1",
    "-c:v", "libx264", "-profile:v", "baseline", "-pix_fmt", "yuv420p", "-bf", "0", "-b:v", "2M",
    "-x264-params", "keyint=10:scenecut=0:repeat-headers=1", "-f", "h264",
];

/// 5 s of 320x240 `testsrc` at 15 fps as VP8 in IVF.
#[rustfmt::skip]
pub const TESTSRC_VP8: &[&str] = &[
    "-f", "lavfi", "-i", "testsrc=size=320x240:rate=15", "-t", "5",
    "-c:v", "libvpx", "-b:v", "300k", "-g", "15", "-deadline", "realtime", "-cpu-used", "8", "-f", "ivf",
];

/// Generate `dir/name` with `ffmpeg -y <args> dir/name` unless it exists.
pub fn generate(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    // Tests of one binary run on several threads: one generates, the others wait.
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    std::fs::create_dir_all(dir).expect("create clip dir");
    let out = dir.join(name);
    if out.exists() && std::fs::metadata(&out).map(|m| m.len() > 0).unwrap_or(false) {
        return out;
    }
    // Unique per process: test binaries may run at the same time.
    let tmp = dir.join(format!("{}.{name}.part", std::process::id()));
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .arg(&tmp)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg failed generating {name}: {args:?}");
    std::fs::rename(&tmp, &out).expect("rename clip");
    out
}

/// Decode `file` with ffmpeg (`-v error`): `Ok(())` if it exits 0 and
/// prints no error, else the error text.
pub fn ffmpeg_decodes(file: &Path, format: &str) -> Result<(), String> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-f", format, "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output()
        .map_err(|e| e.to_string())?;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() && err.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("exit {:?}: {err}", out.status.code()))
    }
}

/// NAL units of an Annex-B stream (start codes and trailing zeros removed).
pub fn nal_units(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 2 < data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let mut e = if k + 1 < starts.len() { starts[k + 1] - 3 } else { data.len() };
        while e > s && data[e - 1] == 0 {
            e -= 1;
        }
        if e > s {
            out.push(&data[s..e]);
        }
    }
    out
}

/// Split an Annex-B stream into access units (H.264 7.4.1.2.3: an AUD,
/// SEI, SPS or PPS, or a slice with first_mb_in_slice = 0, after a slice
/// starts a new one). Each is returned with 4-byte start codes.
pub fn h264_access_units(data: &[u8]) -> Vec<Vec<u8>> {
    let mut aus = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    let mut seen_slice = false;
    for nal in nal_units(data) {
        let ty = nal[0] & 0x1f;
        let is_slice = ty == 1 || ty == 5;
        // first_mb_in_slice is ue(v): 0 is coded as a single '1' bit.
        let first_mb_zero = is_slice && nal.get(1).is_some_and(|b| b & 0x80 != 0);
        let starts_au = matches!(ty, 6..=9) || first_mb_zero;
        if seen_slice && starts_au {
            aus.push(std::mem::take(&mut cur));
            seen_slice = false;
        }
        cur.extend_from_slice(&[0, 0, 0, 1]);
        cur.extend_from_slice(nal);
        seen_slice |= is_slice;
    }
    if !cur.is_empty() {
        aus.push(cur);
    }
    aus
}

/// Frames of an IVF file (32-byte header, then 12-byte frame headers).
pub fn ivf_frames(data: &[u8]) -> Vec<&[u8]> {
    assert_eq!(&data[..4], b"DKIF", "not an IVF file");
    let mut pos = u16::from_le_bytes([data[6], data[7]]) as usize;
    let mut out = Vec::new();
    while pos + 12 <= data.len() {
        let len = u32::from_le_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]) as usize;
        pos += 12;
        out.push(&data[pos..pos + len]);
        pos += len;
    }
    out
}

/// Write VP8 frames as an IVF file (for ffmpeg to decode).
pub fn write_ivf(frames: &[Vec<u8>], width: u16, height: u16, fps: u32) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(b"DKIF");
    v.extend_from_slice(&0u16.to_le_bytes());
    v.extend_from_slice(&32u16.to_le_bytes());
    v.extend_from_slice(b"VP80");
    v.extend_from_slice(&width.to_le_bytes());
    v.extend_from_slice(&height.to_le_bytes());
    v.extend_from_slice(&fps.to_le_bytes());
    v.extend_from_slice(&1u32.to_le_bytes());
    v.extend_from_slice(&(frames.len() as u32).to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        v.extend_from_slice(&(f.len() as u32).to_le_bytes());
        v.extend_from_slice(&(i as u64).to_le_bytes());
        v.extend_from_slice(f);
    }
    v
}

/// Packets of the first logical stream of an Ogg file (RFC 3533 pages,
/// lacing values of 255 continue a packet).
pub fn ogg_packets(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut pos = 0;
    while pos + 27 <= data.len() {
        assert_eq!(&data[pos..pos + 4], b"OggS", "bad Ogg page at {pos}");
        let nseg = data[pos + 26] as usize;
        let table = &data[pos + 27..pos + 27 + nseg];
        let mut body = pos + 27 + nseg;
        for &lace in table {
            cur.extend_from_slice(&data[body..body + lace as usize]);
            body += lace as usize;
            if lace < 255 {
                out.push(std::mem::take(&mut cur));
            }
        }
        pos = body;
    }
    out
}

/// Opus packets of an Ogg Opus file (RFC 7845: skips OpusHead and OpusTags).
pub fn ogg_opus_packets(data: &[u8]) -> Vec<Vec<u8>> {
    let packets = ogg_packets(data);
    assert!(packets.first().is_some_and(|p| p.starts_with(b"OpusHead")), "not Ogg Opus");
    assert!(packets.get(1).is_some_and(|p| p.starts_with(b"OpusTags")), "no OpusTags");
    packets.into_iter().skip(2).collect()
}

/// JPEG files of an MJPEG stream (SOI .. EOI, scanning segment lengths, so
/// FF D9 inside headers cannot confuse it).
pub fn jpeg_frames(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 4 <= data.len() {
        assert_eq!(&data[pos..pos + 2], [0xff, 0xd8], "no SOI at {pos}");
        let start = pos;
        let mut i = pos + 2;
        // Header segments until SOS.
        loop {
            assert_eq!(data[i], 0xff);
            let m = data[i + 1];
            let len = u16::from_be_bytes([data[i + 2], data[i + 3]]) as usize;
            i += 2 + len;
            if m == 0xda {
                break;
            }
        }
        // Scan: FF 00 and FF D0..D7 are inside it; FF D9 ends the image.
        while !(data[i] == 0xff && data[i + 1] == 0xd9) {
            i += 1;
        }
        pos = i + 2;
        out.push(&data[start..pos]);
    }
    out
}
