//! Runs pieces of tinyrtc's core on a Cortex-M3 under QEMU (mps2-an385)
//! with no global allocator linked: a STUN check built and verified, SRTP
//! protect/unprotect for every profile, and the handshake crypto (ECDSA
//! P-256, X25519). Reports the sizes of the core's state objects and the
//! instructions each step took (SysTick under `-icount shift=0`), then exits
//! through semihosting with status 0 only if every check passed.
#![no_std]
#![no_main]

use cortex_m::peripheral::{syst::SystClkSource, SYST};
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use tinyrtc::crypto::{self, EcdsaP256, Rng, X25519};
use tinyrtc::srtp::{SrtpContext, SrtpMasterKey, SrtpProfile};
use tinyrtc::stun::{Class, Message, MessageBuilder, Method};

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    hprintln!("PANIC: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    loop {}
}

/// SysTick counting down from 2^24 - 1 at the 25 MHz core clock of the
/// mps2 board. Under `-icount shift=0` QEMU retires one instruction per
/// virtual nanosecond, so one tick is 40 instructions and the figures repeat
/// run to run.
struct Ticks {
    syst: SYST,
    wraps: u32,
}

impl Ticks {
    fn new(mut syst: SYST) -> Self {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(0x00ff_ffff);
        syst.clear_current();
        syst.enable_counter();
        Ticks { syst, wraps: 0 }
    }
    /// Instructions retired since start (ticks x 40). Must be read at least
    /// once per 2^24 ticks (0.67 s virtual) to see every wrap.
    fn now(&mut self) -> u64 {
        if self.syst.has_wrapped() {
            self.wraps += 1;
        }
        let ticks = (self.wraps as u64) * 0x0100_0000 + (0x00ff_ffff - SYST::get_current()) as u64;
        ticks * 40
    }
}

fn check(ok: bool, what: &str) {
    if ok {
        hprintln!("ok   {}", what);
    } else {
        hprintln!("FAIL {}", what);
        debug::exit(debug::EXIT_FAILURE);
    }
}

#[entry]
fn main() -> ! {
    let p = cortex_m::Peripherals::take().unwrap();
    let mut ticks = Ticks::new(p.SYST);
    let mut rng = Rng::from_seed([7; 32]);

    hprintln!("tinyrtc core on Cortex-M3, no allocator");
    hprintln!("size_of SrtpContext = {} bytes", core::mem::size_of::<SrtpContext>());

    // STUN: a Binding request with short-term credentials, then verified.
    let t0 = ticks.now();
    let mut buf = [0u8; 256];
    let tid = [3u8; 12];
    let len = {
        let mut b = MessageBuilder::new(&mut buf, Method::BINDING, Class::Request, &tid).unwrap();
        b.username("remote:local").unwrap();
        b.priority(0x6e00_01ff).unwrap();
        b.ice_controlling(42).unwrap();
        b.message_integrity(b"password-of-local").unwrap();
        b.fingerprint().unwrap();
        b.finish()
    };
    let msg = Message::new_checked(&buf[..len]).unwrap();
    check(
        msg.check_fingerprint().is_ok() && msg.check_integrity(b"password-of-local").is_ok(),
        "STUN binding request: integrity and fingerprint",
    );
    check(msg.check_integrity(b"wrong").is_err(), "STUN: wrong key rejected");
    let t1 = ticks.now();
    hprintln!("     STUN build+verify: {} instructions", t1 - t0);

    // SRTP: protect and unprotect a 1200-byte packet in every profile.
    for profile in SrtpProfile::ALL {
        let master = SrtpMasterKey { key: [0x11; 16], salt: [0x22; 14] };
        let mut tx = SrtpContext::new(profile, &master);
        let mut rx = SrtpContext::new(profile, &master);
        let mut pkt = [0u8; 1240];
        pkt[0] = 0x80;
        pkt[1] = 96;
        pkt[2..4].copy_from_slice(&1234u16.to_be_bytes());
        pkt[8..12].copy_from_slice(&0xcafe_f00du32.to_be_bytes());
        for (i, b) in pkt[12..1200].iter_mut().enumerate() {
            *b = i as u8;
        }
        let t0 = ticks.now();
        let n = tx.protect_rtp(&mut pkt, 1200).unwrap();
        let t1 = ticks.now();
        let m = rx.unprotect_rtp(&mut pkt[..n]).unwrap();
        let t2 = ticks.now();
        let intact = m == 1200 && pkt[12..1200].iter().enumerate().all(|(i, b)| *b == i as u8);
        check(intact, "SRTP round trip");
        hprintln!("     {:?}: protect {} instructions, unprotect {} instructions", profile, t1 - t0, t2 - t1);
        pkt[20] ^= 1;
        check(rx.unprotect_rtp(&mut pkt[..n]).is_err(), "SRTP tampered packet rejected");
    }

    // Handshake crypto: ECDSA P-256 and X25519 as a DTLS handshake uses them.
    let t0 = ticks.now();
    let key = EcdsaP256::generate(&mut rng);
    let sig = key.sign_sha256(&[b"client random", b"server random", b"params"]);
    let t1 = ticks.now();
    let ok =
        crypto::ecdsa_p256_verify_sha256(&key.public_key(), &[b"client randomserver randomparams"], sig.as_bytes());
    let t2 = ticks.now();
    check(ok.is_ok(), "ECDSA P-256 sign/verify");
    hprintln!("     ECDSA P-256: keygen+sign {} instructions, verify {} instructions", t1 - t0, t2 - t1);
    let t0 = ticks.now();
    let a = X25519::generate(&mut rng);
    let b = X25519::generate(&mut rng);
    let ab = a.diffie_hellman(&b.public_key());
    let ba = b.diffie_hellman(&a.public_key());
    let t1 = ticks.now();
    check(ab.is_ok() && ab == ba, "X25519 agreement");
    hprintln!("     X25519 (2 keygens + 2 agreements): {} instructions", t1 - t0);

    hprintln!("all checks passed");
    debug::exit(debug::EXIT_SUCCESS);
    loop {}
}
