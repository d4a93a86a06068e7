//! H.264 packetizing throughput: a 100 KB access unit (SPS, PPS, one large
//! IDR slice) cut into complete RTP packets (12-byte header, FU-A) at MTU
//! 1200, written one after the other into a 1200-byte caller buffer;
//! against a plain memcpy of the same 100 KB into the same buffer in
//! 1200-byte pieces, measured in the same run. Two inputs: an Annex-B access
//! unit (the start codes must be found by scanning it, and that scan is
//! counted) and the same NAL units already split (what many encoders hand
//! out). The start-code scan alone, and memcpy to where FU-A payloads go
//! (offset 14, unaligned), are printed too, for reference.
//!
//! Method: every figure is the time of one whole access unit, taken as the
//! fastest of many batches of `BATCH` access units (the same warm cache for
//! all methods, `black_box` on every input and output), in `ROUNDS`
//! interleaved rounds so machine load hits all methods alike. Printed: the
//! best round and the median round, in ns per access unit and GB/s, and the
//! ratio packetizer time / memcpy time (2.0 means half the speed of memcpy).
//! Run: `cargo bench -p host-tests --bench packetize`.

use std::hint::black_box;
use std::time::{Duration, Instant};
use tinyrtc::rtp::h264::{H264Payloader, NalUnits};
use tinyrtc::rtp::packetizer::RtpPacketizer;

const AU_LEN: usize = 100 * 1024;
const MTU: usize = 1200;
/// Interleaved rounds; the best and the median of each method are printed.
const ROUNDS: usize = 7;
/// Time spent per method per round.
const SLICE: Duration = Duration::from_millis(250);
/// Access units per timed batch (a batch is ~10-40 us: clock reads cost < 0.5%).
const BATCH: usize = 8;

/// An Annex-B access unit with slice-like bytes: random, with emulation
/// prevention so no start code appears inside a NAL unit.
fn access_unit() -> Vec<u8> {
    let mut x = 0x1234_5678u32;
    let mut au = vec![0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8];
    au.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80]);
    au.extend_from_slice(&[0, 0, 0, 1, 0x65]);
    while au.len() < AU_LEN {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let mut b = (x >> 24) as u8;
        let n = au.len();
        if au[n - 1] == 0 && au[n - 2] == 0 && b <= 3 {
            b = 3;
        }
        au.push(b);
    }
    if au[AU_LEN - 1] == 0 {
        au[AU_LEN - 1] = 0x80;
    }
    au
}

/// All RTP packets of one access unit, each written into `buf`; returns the
/// bytes written.
fn packetize(p: H264Payloader<'_>, stream: &mut RtpPacketizer, buf: &mut [u8]) -> usize {
    let mut total = 0;
    let mut packets = stream.frame(p, 0);
    while let Some(r) = packets.next_packet(buf) {
        let n = r.expect("packetize");
        black_box(&buf[..n]);
        total += n;
    }
    total
}

/// The reference: the access unit copied into `buf` one MTU-sized piece at a time.
fn memcpy(au: &[u8], buf: &mut [u8]) -> usize {
    let mut total = 0;
    for chunk in au.chunks(MTU) {
        buf[..chunk.len()].copy_from_slice(chunk);
        black_box(&buf[..chunk.len()]);
        total += chunk.len();
    }
    total
}

/// For reference only (not the ratio's denominator): the access unit copied
/// the way FU-A packets carry it, 1186-byte pieces at offset 14 of `buf`
/// (after the 12-byte RTP header and 2 FU bytes), so the cost of an
/// unaligned destination is told apart from the packetizer's own work.
fn memcpy_at_payload(au: &[u8], buf: &mut [u8]) -> usize {
    let mut total = 0;
    for chunk in au.chunks(MTU - 14) {
        buf[14..14 + chunk.len()].copy_from_slice(chunk);
        black_box(&buf[..14 + chunk.len()]);
        total += chunk.len();
    }
    total
}

/// Seconds per access unit: the fastest batch within `SLICE`.
fn time_per_au(mut f: impl FnMut() -> usize) -> f64 {
    let start = Instant::now();
    let mut best = f64::MAX;
    while start.elapsed() < SLICE {
        let t = Instant::now();
        for _ in 0..BATCH {
            black_box(f());
        }
        best = best.min(t.elapsed().as_secs_f64() / BATCH as f64);
    }
    best
}

fn main() {
    let au = access_unit();
    let mut stream = RtpPacketizer::new(0x1234, 96, 0, MTU);
    let mut buf = vec![0u8; MTU];
    let nals: Vec<&[u8]> = NalUnits::new(&au).collect();
    let (mut n_annexb, mut n_list) = (0, 0);
    let mut p = stream.frame(H264Payloader::new(&au), 0);
    while let Some(r) = p.next_packet(&mut buf) {
        n_annexb += r.map(|_| 1).expect("packetize");
    }
    let mut p = stream.frame(H264Payloader::from_nal_units(&nals), 0);
    while let Some(r) = p.next_packet(&mut buf) {
        n_list += r.map(|_| 1).expect("packetize");
    }
    assert_eq!(n_annexb, n_list);

    let (mut pk, mut list, mut mc, mut scan, mut mc14) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        mc.push(time_per_au(|| memcpy(black_box(&au), &mut buf)));
        pk.push(time_per_au(|| packetize(H264Payloader::new(black_box(&au)), &mut stream, &mut buf)));
        list.push(time_per_au(|| packetize(H264Payloader::from_nal_units(black_box(&nals)), &mut stream, &mut buf)));
        scan.push(time_per_au(|| NalUnits::new(black_box(&au)).map(|n| n.len()).sum()));
        mc14.push(time_per_au(|| memcpy_at_payload(black_box(&au), &mut buf)));
    }
    let (pk, list, mc, scan, mc14) = (stats(pk), stats(list), stats(mc), stats(scan), stats(mc14));
    println!("H.264 packetize, {} byte access unit, MTU {MTU}, {n_annexb} packets, {ROUNDS} rounds", au.len());
    println!("  (whole RTP packets written into a caller buffer; the Annex-B figure includes the start-code scan)");
    println!(
        "  (this binary compiled for {}; glibc memcpy and memchr's search pick their vector width at run time)",
        compiled_for()
    );
    println!("  time per access unit            best ns  median ns   best GB/s");
    let row = |name: &str, (best, median): (f64, f64)| {
        println!("  {name:<30} {:>8.0} {:>10.0} {:>11.1}", best * 1e9, median * 1e9, AU_LEN as f64 / best / 1e9);
    };
    row("packetizer, Annex-B in", pk);
    row("packetizer, NAL units given", list);
    row("memcpy, 1200-byte pieces", mc);
    row("(start-code scan alone)", scan);
    row("(memcpy at payload offset 14)", mc14);
    println!(
        "  ratio packetizer/memcpy (best, median): Annex-B in {:.2}x {:.2}x, NAL units given {:.2}x {:.2}x (target <= 2x)",
        pk.0 / mc.0,
        pk.1 / mc.1,
        list.0 / mc.0,
        list.1 / mc.1
    );
}

/// The vector extensions this binary's own code may use (from the build's
/// target features, e.g. `RUSTFLAGS="-C target-cpu=native"`), so every
/// printed figure carries the conditions it was measured under.
fn compiled_for() -> &'static str {
    if cfg!(target_feature = "avx512bw") {
        "AVX-512"
    } else if cfg!(target_feature = "avx2") {
        "AVX2"
    } else if cfg!(target_arch = "x86_64") {
        "baseline x86-64, SSE2"
    } else {
        std::env::consts::ARCH
    }
}

/// Best (smallest) and median of the rounds' times.
fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2])
}
