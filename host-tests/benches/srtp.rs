//! SRTP throughput: packets per second protecting and unprotecting 1200-byte
//! RTP packets with tinyrtc and with libsrtp2, measured in the same run and
//! printed side by side with the ratio tinyrtc / libsrtp2.
//!
//! Each figure is the best of several short interleaved rounds, so that
//! both implementations see the same machine load. Run:
//! `cargo bench -p host-tests --bench srtp`.

use std::hint::black_box;
use std::time::{Duration, Instant};
use tinyrtc::srtp::{SrtpContext, SrtpMasterKey, SrtpProfile};

/// Total RTP packet length (12-byte header and payload) before protection.
const PACKET_LEN: usize = 1200;
/// Room after the packet for the trailer (libsrtp asks for its
/// `SRTP_MAX_TRAILER_LEN`, tag plus largest MKI).
const ROOM: usize = 160;
/// Packets protected ahead of time for one unprotect batch.
const BATCH: usize = 512;
/// Interleaved rounds per figure; the best is kept.
const ROUNDS: usize = 3;
/// Measuring time per implementation, operation and round.
const SLICE: Duration = Duration::from_millis(300);

fn master() -> SrtpMasterKey {
    SrtpMasterKey { key: core::array::from_fn(|i| i as u8 ^ 0x5a), salt: core::array::from_fn(|i| 0x30 + i as u8) }
}

fn rtp_packet(seq: u16) -> [u8; PACKET_LEN + ROOM] {
    let mut p = [0u8; PACKET_LEN + ROOM];
    p[0] = 0x80;
    p[1] = 96;
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&(u32::from(seq) * 3000).to_be_bytes());
    p[8..12].copy_from_slice(&0x1122_3344u32.to_be_bytes());
    for (i, b) in p[12..PACKET_LEN].iter_mut().enumerate() {
        *b = i as u8;
    }
    p
}

/// One SRTP implementation under test: a sender for the protect figure,
/// and a sender/receiver pair (started together, so the receiver's rollover
/// counter matches) for the unprotect figure.
trait Srtp {
    fn protect(&mut self, buf: &mut [u8], len: usize) -> usize;
    fn feed(&mut self, buf: &mut [u8], len: usize) -> usize;
    fn unprotect(&mut self, buf: &mut [u8], len: usize) -> usize;
}

struct Tinyrtc {
    tx: SrtpContext,
    feed: SrtpContext,
    rx: SrtpContext,
}

impl Srtp for Tinyrtc {
    fn protect(&mut self, buf: &mut [u8], len: usize) -> usize {
        self.tx.protect_rtp(buf, len).expect("tinyrtc protect")
    }
    fn feed(&mut self, buf: &mut [u8], len: usize) -> usize {
        self.feed.protect_rtp(buf, len).expect("tinyrtc protect")
    }
    fn unprotect(&mut self, buf: &mut [u8], len: usize) -> usize {
        self.rx.unprotect_rtp(&mut buf[..len]).expect("tinyrtc unprotect")
    }
}

#[cfg(have_libsrtp)]
struct Libsrtp {
    tx: host_tests::libsrtp::LibsrtpSession,
    feed: host_tests::libsrtp::LibsrtpSession,
    rx: host_tests::libsrtp::LibsrtpSession,
}

#[cfg(have_libsrtp)]
impl Srtp for Libsrtp {
    fn protect(&mut self, buf: &mut [u8], len: usize) -> usize {
        self.tx.protect_rtp(buf, len).expect("libsrtp protect")
    }
    fn feed(&mut self, buf: &mut [u8], len: usize) -> usize {
        self.feed.protect_rtp(buf, len).expect("libsrtp protect")
    }
    fn unprotect(&mut self, buf: &mut [u8], len: usize) -> usize {
        self.rx.unprotect_rtp(buf, len).expect("libsrtp unprotect")
    }
}

/// Protected packets per second over one slice (the plaintext copy into the
/// buffer is included, the same for both implementations).
fn measure_protect(s: &mut dyn Srtp, seq: &mut u16) -> f64 {
    let template = rtp_packet(0);
    let mut buf = template;
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < SLICE {
        for _ in 0..64 {
            buf[..PACKET_LEN].copy_from_slice(&template[..PACKET_LEN]);
            buf[2..4].copy_from_slice(&seq.to_be_bytes());
            black_box(s.protect(&mut buf, PACKET_LEN));
            *seq = seq.wrapping_add(1);
            n += 1;
        }
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Unprotected packets per second over one slice: batches are protected
/// untimed, then each packet is unprotected once (timed).
fn measure_unprotect(s: &mut dyn Srtp, seq: &mut u16) -> f64 {
    let mut batch = vec![[0u8; PACKET_LEN + ROOM]; BATCH];
    let mut lens = [0usize; BATCH];
    let mut timed = Duration::ZERO;
    let mut n = 0u64;
    while timed < SLICE {
        for (p, len) in batch.iter_mut().zip(lens.iter_mut()) {
            *p = rtp_packet(*seq);
            *len = s.feed(p, PACKET_LEN);
            *seq = seq.wrapping_add(1);
        }
        let start = Instant::now();
        for (p, len) in batch.iter_mut().zip(lens.iter()) {
            black_box(s.unprotect(p, *len));
        }
        timed += start.elapsed();
        n += BATCH as u64;
    }
    n as f64 / timed.as_secs_f64()
}

fn profile_name(p: SrtpProfile) -> &'static str {
    match p {
        SrtpProfile::Aes128CmSha1_80 => "AES_CM_128_HMAC_SHA1_80",
        SrtpProfile::Aes128CmSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        SrtpProfile::AeadAes128Gcm => "AEAD_AES_128_GCM",
    }
}

fn srtp_section() {
    println!("SRTP, {PACKET_LEN}-byte RTP packets, packets per second (best of {ROUNDS} interleaved rounds)");
    println!("{:<25} {:<10} {:>12} {:>12} {:>7}", "profile", "operation", "tinyrtc", "libsrtp2", "ratio");
    #[cfg(not(have_libsrtp))]
    println!("(libsrtp2 not found at build time: reference column unavailable)");
    for profile in [SrtpProfile::Aes128CmSha1_80, SrtpProfile::AeadAes128Gcm] {
        let key = master();
        let mut ours = Tinyrtc {
            tx: SrtpContext::new(profile, &key),
            feed: SrtpContext::new(profile, &key),
            rx: SrtpContext::new(profile, &key),
        };
        #[cfg(have_libsrtp)]
        let mut theirs = {
            use host_tests::libsrtp::LibsrtpSession;
            Libsrtp {
                tx: LibsrtpSession::outbound(profile, &key).expect("libsrtp session"),
                feed: LibsrtpSession::outbound(profile, &key).expect("libsrtp session"),
                rx: LibsrtpSession::inbound(profile, &key).expect("libsrtp session"),
            }
        };
        for (op, f) in [
            ("protect", measure_protect as fn(&mut dyn Srtp, &mut u16) -> f64),
            ("unprotect", measure_unprotect as fn(&mut dyn Srtp, &mut u16) -> f64),
        ] {
            // Separate sequence counters: each sender/receiver pair sees its own stream.
            let (mut seq_ours, mut seq_theirs) = (0u16, 0u16);
            #[cfg(have_libsrtp)]
            let mut theirs_round = |seq: &mut u16| Some(f(&mut theirs, seq));
            #[cfg(not(have_libsrtp))]
            let theirs_round = |_: &mut u16| None::<f64>;
            let (mut best_ours, mut best_theirs) = (0f64, 0f64);
            for _ in 0..ROUNDS {
                best_ours = best_ours.max(f(&mut ours, &mut seq_ours));
                if let Some(v) = theirs_round(&mut seq_theirs) {
                    best_theirs = best_theirs.max(v);
                }
            }
            if best_theirs > 0.0 {
                println!(
                    "{:<25} {:<10} {:>12.0} {:>12.0} {:>7.2}",
                    profile_name(profile),
                    op,
                    best_ours,
                    best_theirs,
                    best_ours / best_theirs
                );
            } else {
                println!("{:<25} {:<10} {:>12.0} {:>12} {:>7}", profile_name(profile), op, best_ours, "-", "-");
            }
        }
    }
}

// ---------------------------------------------------------------- DTLS

/// Handshakes per configuration and round in the DTLS section.
const HANDSHAKES: u32 = 10;
/// Interleaved rounds per DTLS figure; the best is kept (a shared machine is noisy).
const DTLS_ROUNDS: usize = 15;

/// Total CPU time of `HANDSHAKES` in-memory handshakes, per side
/// `[client, server]` (each side's calls timed separately).
fn dtls_handshakes(
    cc: tinyrtc::dtls::DtlsConfig,
    sc: tinyrtc::dtls::DtlsConfig,
    ci: &tinyrtc::dtls::DtlsIdentity,
    si: &tinyrtc::dtls::DtlsIdentity,
    rng: &mut rand_chacha::ChaCha20Rng,
) -> [Duration; 2] {
    use std::time::Instant as Clock;
    use tinyrtc::dtls::{DtlsEndpoint, DtlsEvent};
    let mut spent = [Duration::ZERO; 2];
    let mut buf = [0u8; 1500];
    let now = tinyrtc::Instant::ZERO;
    for _ in 0..HANDSHAKES {
        let t = Clock::now();
        let mut c = DtlsEndpoint::new(cc, ci, Some(si.fingerprint()), rng);
        spent[0] += t.elapsed();
        let t = Clock::now();
        let mut s = DtlsEndpoint::new(sc, si, Some(ci.fingerprint()), rng);
        spent[1] += t.elapsed();
        let mut connected = 0;
        for _ in 0..20 {
            for from in [0usize, 1] {
                let (src, dst) = if from == 0 { (&mut c, &mut s) } else { (&mut s, &mut c) };
                loop {
                    let t = Clock::now();
                    let n = src.poll_transmit(now, &mut buf);
                    spent[from] += t.elapsed();
                    let Some(n) = n else { break };
                    let t = Clock::now();
                    let _ = dst.handle_receive(now, &buf[..n]);
                    while let Some(e) = dst.poll_event() {
                        connected += matches!(e, DtlsEvent::Connected { .. }) as u32;
                    }
                    spent[1 - from] += t.elapsed();
                }
                while let Some(e) = src.poll_event() {
                    connected += matches!(e, DtlsEvent::Connected { .. }) as u32;
                }
            }
            if connected == 2 {
                break;
            }
        }
        assert_eq!(connected, 2, "handshake did not complete");
    }
    spent
}

/// Time of `HANDSHAKES` times the public-key work one side cannot avoid:
/// ECDSA P-256 sign and verify, one ephemeral key generation and one
/// agreement with a fixed peer key.
fn dtls_crypto_floor(x25519: bool, rng: &mut rand_chacha::ChaCha20Rng) -> Duration {
    use tinyrtc::crypto::{ecdsa_p256_verify_digest, EcdsaP256, P256Ecdh, X25519};
    let key = EcdsaP256::generate(rng);
    let public = key.public_key();
    let peer_x = X25519::generate(rng).public_key();
    let peer_p = P256Ecdh::generate(rng).public_key();
    let t = Instant::now();
    for i in 0..HANDSHAKES {
        let digest = [i as u8; 32];
        let sig = key.sign_digest(&digest);
        black_box(ecdsa_p256_verify_digest(&public, &digest, sig.as_bytes())).expect("verify");
        if x25519 {
            black_box(X25519::generate(rng).diffie_hellman(&peer_x)).expect("x25519");
        } else {
            black_box(P256Ecdh::generate(rng).diffie_hellman(&peer_p)).expect("p256");
        }
    }
    t.elapsed()
}

/// CPU time of full DTLS 1.2 handshakes (cookie exchange, mutual ECDSA
/// certificates, use_srtp) between our client and our server in memory.
/// Reference, measured in the same run and interleaved: the public-key
/// floor of one side through the same crypto provider; the ratio is the
/// mean side's time over that floor (protocol overhead = ratio - 1).
fn dtls_handshake_section() {
    use rand::SeedableRng;
    use tinyrtc::dtls::{DtlsConfig, DtlsIdentity, DtlsRole};

    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let ci = DtlsIdentity::generate(&mut rng);
    let si = DtlsIdentity::generate(&mut rng);
    println!();
    println!(
        "DTLS 1.2 handshake CPU time per side, in memory (microseconds per handshake, best of {DTLS_ROUNDS} rounds of {HANDSHAKES})"
    );
    println!("{:<28} {:>8} {:>8} {:>13} {:>7}", "configuration", "client", "server", "crypto floor", "ratio");
    for (name, x25519, gcm) in [
        ("x25519, AES-128-GCM", true, true),
        ("P-256, AES-128-GCM", false, true),
        ("x25519, ChaCha20-Poly1305", true, false),
    ] {
        let mut cc = DtlsConfig::new(DtlsRole::Client);
        (cc.x25519, cc.secp256r1, cc.aes128_gcm, cc.chacha20_poly1305) = (x25519, !x25519, gcm, !gcm);
        let sc = DtlsConfig::new(DtlsRole::Server);
        let (mut best, mut best_floor) = ([Duration::MAX; 2], Duration::MAX);
        for _ in 0..DTLS_ROUNDS {
            let [c, s] = dtls_handshakes(cc, sc, &ci, &si, &mut rng);
            best = [best[0].min(c), best[1].min(s)];
            best_floor = best_floor.min(dtls_crypto_floor(x25519, &mut rng));
        }
        let us = |d: Duration| d.as_secs_f64() * 1e6 / HANDSHAKES as f64;
        let (c, s, f) = (us(best[0]), us(best[1]), us(best_floor));
        println!("{:<28} {:>8.0} {:>8.0} {:>13.0} {:>7.2}", name, c, s, f, (c + s) / (2.0 * f));
    }
}

fn main() {
    srtp_section();
    dtls_handshake_section();
}
