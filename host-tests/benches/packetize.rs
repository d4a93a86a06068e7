//! H.264 packetizing throughput: a 100 KB access unit (SPS, PPS, one large
//! IDR slice) cut into RTP packets at MTU 1200 (FU-A), against a plain
//! memcpy of the same bytes into 1200-byte buffers, measured in the same
//! run; prints both in bytes/s and the ratio (memcpy / packetizer: 2.0
//! means the packetizer runs at half the speed of memcpy). Two inputs:
//! an Annex-B access unit (start codes must be found by scanning it) and
//! the same NAL units already split (what many encoders hand out).
//! Run: `cargo bench -p host-tests --bench packetize`.

use std::hint::black_box;
use std::time::{Duration, Instant};
use tinyrtc::rtp::h264::{H264Payloader, NalUnits};
use tinyrtc::rtp::packetizer::RtpPacketizer;

const AU_LEN: usize = 100 * 1024;
const MTU: usize = 1200;
/// Interleaved rounds; the best and the median of each are printed.
const ROUNDS: usize = 5;
const SLICE: Duration = Duration::from_millis(400);

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

fn packetize(au: &[u8], stream: &mut RtpPacketizer, buf: &mut [u8]) -> usize {
    let mut total = 0;
    let mut packets = stream.frame(H264Payloader::new(au), 0);
    while let Some(r) = packets.next_packet(buf) {
        let n = r.expect("packetize");
        black_box(&buf[..n]);
        total += n;
    }
    total
}

fn packetize_list(nals: &[&[u8]], stream: &mut RtpPacketizer, buf: &mut [u8]) -> usize {
    let mut total = 0;
    let mut packets = stream.frame(H264Payloader::from_nal_units(nals), 0);
    while let Some(r) = packets.next_packet(buf) {
        let n = r.expect("packetize");
        black_box(&buf[..n]);
        total += n;
    }
    total
}

fn memcpy(au: &[u8], buf: &mut [u8]) -> usize {
    let mut total = 0;
    for chunk in au.chunks(MTU) {
        buf[..chunk.len()].copy_from_slice(chunk);
        black_box(&buf[..chunk.len()]);
        total += chunk.len();
    }
    total
}

/// Bytes of access unit processed per second over `SLICE`.
fn rate(mut f: impl FnMut() -> usize) -> f64 {
    let start = Instant::now();
    let mut iters = 0u64;
    while start.elapsed() < SLICE {
        black_box(f());
        iters += 1;
    }
    (iters as f64 * AU_LEN as f64) / start.elapsed().as_secs_f64()
}

fn main() {
    let au = access_unit();
    let mut stream = RtpPacketizer::new(0x1234, 96, 0, MTU);
    let mut buf = vec![0u8; MTU];
    let packets = {
        let mut n = 0;
        let mut p = stream.frame(H264Payloader::new(&au), 0);
        while let Some(r) = p.next_packet(&mut buf) {
            r.unwrap();
            n += 1;
        }
        n
    };
    let nals: Vec<&[u8]> = NalUnits::new(&au).collect();
    // Per method, one figure per round; rounds interleave the methods so
    // machine load hits them alike.
    let (mut pk, mut mc, mut scan, mut list) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        list.push(rate(|| packetize_list(black_box(&nals), &mut stream, &mut buf)));
        pk.push(rate(|| packetize(black_box(&au), &mut stream, &mut buf)));
        mc.push(rate(|| memcpy(black_box(&au), &mut buf)));
        scan.push(rate(|| NalUnits::new(black_box(&au)).map(|n| n.len()).sum()));
    }
    let (pk, mc, scan, list) = (stats(pk), stats(mc), stats(scan), stats(list));
    println!("H.264 packetize, {} byte access unit, MTU {MTU}, {packets} packets, {ROUNDS} rounds", au.len());
    println!("                                     best   median (GB/s)");
    println!("  packetizer, Annex-B in:         {:>7.2}  {:>7.2}", pk.0 / 1e9, pk.1 / 1e9);
    println!("  packetizer, NAL units given:    {:>7.2}  {:>7.2}", list.0 / 1e9, list.1 / 1e9);
    println!("  memcpy into {MTU}-byte buffers:  {:>7.2}  {:>7.2}", mc.0 / 1e9, mc.1 / 1e9);
    println!("  (start-code scan alone:         {:>7.2}  {:>7.2})", scan.0 / 1e9, scan.1 / 1e9);
    println!(
        "  ratio memcpy/packetizer (best, median): Annex-B in {:.2}x {:.2}x, NAL units in {:.2}x {:.2}x (target <= 2x)",
        mc.0 / pk.0,
        mc.1 / pk.1,
        mc.0 / list.0,
        mc.1 / list.1
    );
}

/// Best and median of the rounds' figures.
fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() - 1], v[v.len() / 2])
}
