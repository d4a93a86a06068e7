//! The sensor: a deterministic temperature/humidity model and its JSON-line
//! wire format, written into a caller buffer (no heap).
//!
//! Readings are plausible indoor values: temperature drifts slowly around
//! 21.5 °C (a triangle wave of ±1.5 °C over [`CYCLE_SECS`] seconds plus a
//! small seeded jitter) and relative humidity moves against it around 45 %.
//! A real board replaces [`SensorModel`] with its driver and keeps
//! [`Reading::write_json_line`].

use core::fmt::Write;

use tinyrtc::bytes::BufferTooSmall;

/// Period of the model's slow drift, in seconds.
pub const CYCLE_SECS: u64 = 120;

/// Longest JSON line [`Reading::write_json_line`] writes (for buffer sizing).
pub const MAX_LINE_LEN: usize = 112;

/// One reading. Fixed-point so no float formatting is needed on an MCU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// Counts readings from 1.
    pub seq: u32,
    /// Milliseconds since the device started.
    pub uptime_ms: u64,
    /// Hundredths of a degree Celsius.
    pub centi_celsius: i32,
    /// Hundredths of a percent relative humidity (0..=10000).
    pub centi_percent_rh: u16,
}

/// Writes into a byte slice through `core::fmt::Write`.
struct SliceWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(core::fmt::Error)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(core::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Formats a hundredths fixed-point value as a decimal (`-3.05`, `21.50`).
struct Centi(i64);

impl core::fmt::Display for Centi {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", a / 100, a % 100)
    }
}

impl Reading {
    /// Write `{"seq":..,"uptime_ms":..,"temperature_c":..,"humidity_pct":..}\n`
    /// into `out`; returns the length.
    pub fn write_json_line(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut w = SliceWriter { buf: out, len: 0 };
        writeln!(
            w,
            "{{\"seq\":{},\"uptime_ms\":{},\"temperature_c\":{},\"humidity_pct\":{}}}",
            self.seq,
            self.uptime_ms,
            Centi(i64::from(self.centi_celsius)),
            Centi(i64::from(self.centi_percent_rh))
        )
        .map_err(|_| BufferTooSmall)?;
        Ok(w.len)
    }
}

/// Deterministic readings from a seed (same seed, same series).
#[derive(Debug, Clone)]
pub struct SensorModel {
    state: u32,
    seq: u32,
}

impl SensorModel {
    pub fn new(seed: u32) -> Self {
        SensorModel { state: seed | 1, seq: 0 }
    }

    /// xorshift32: jitter only, not security.
    fn next_u32(&mut self) -> u32 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.state = x;
        x
    }

    /// The reading at `uptime_ms`.
    pub fn read(&mut self, uptime_ms: u64) -> Reading {
        self.seq = self.seq.wrapping_add(1);
        let cycle_ms = CYCLE_SECS * 1000;
        let phase = (uptime_ms % cycle_ms) as i64; // 0..cycle
        let half = (cycle_ms / 2) as i64;
        // Triangle wave in -150..=150 hundredths.
        let tri = if phase < half { phase * 300 / half - 150 } else { 150 - (phase - half) * 300 / half };
        let jitter = i64::from(self.next_u32() % 21) - 10; // ±0.10
        let centi_celsius = (2150 + tri + jitter) as i32;
        let hjitter = i64::from(self.next_u32() % 41) - 20; // ±0.20
        let rh = (4500 - tri * 2 + hjitter).clamp(0, 10000) as u16;
        Reading { seq: self.seq, uptime_ms, centi_celsius, centi_percent_rh: rh }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_format() {
        let r = Reading { seq: 7, uptime_ms: 7000, centi_celsius: 2153, centi_percent_rh: 4507 };
        let mut buf = [0u8; MAX_LINE_LEN];
        let n = r.write_json_line(&mut buf).unwrap();
        assert_eq!(
            core::str::from_utf8(&buf[..n]).unwrap(),
            "{\"seq\":7,\"uptime_ms\":7000,\"temperature_c\":21.53,\"humidity_pct\":45.07}\n"
        );
        let r = Reading { seq: 1, uptime_ms: 0, centi_celsius: -305, centi_percent_rh: 10000 };
        let n = r.write_json_line(&mut buf).unwrap();
        assert!(core::str::from_utf8(&buf[..n]).unwrap().contains("\"temperature_c\":-3.05,\"humidity_pct\":100.00}"));
        // The longest possible line fits MAX_LINE_LEN.
        let r = Reading { seq: u32::MAX, uptime_ms: u64::MAX, centi_celsius: i32::MIN, centi_percent_rh: u16::MAX };
        assert!(r.write_json_line(&mut buf).is_ok());
        assert_eq!(r.write_json_line(&mut buf[..20]), Err(BufferTooSmall));
    }

    #[test]
    fn model_is_plausible_and_deterministic() {
        let mut a = SensorModel::new(42);
        let mut b = SensorModel::new(42);
        let mut prev: Option<Reading> = None;
        for s in 0..600u64 {
            let r = a.read(s * 1000);
            assert_eq!(r, b.read(s * 1000));
            assert_eq!(r.seq as u64, s + 1);
            assert!((1990..=2310).contains(&r.centi_celsius), "{r:?}");
            assert!((4180..=4820).contains(&r.centi_percent_rh), "{r:?}");
            if let Some(p) = prev {
                // At most ~5 hundredths of drift per second plus jitter.
                assert!((r.centi_celsius - p.centi_celsius).abs() <= 30, "{p:?} -> {r:?}");
            }
            prev = Some(r);
        }
        // The series is not constant.
        let mut c = SensorModel::new(42);
        assert_ne!(c.read(0).centi_celsius, c.read(30_000).centi_celsius);
    }
}
