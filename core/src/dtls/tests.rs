//! In-memory handshakes between our client and our server.

extern crate std;

use super::*;
use crate::time::{Duration, Instant};
use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::vec::Vec;

fn identities(seed: u64) -> (DtlsIdentity, DtlsIdentity) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (DtlsIdentity::generate(&mut rng), DtlsIdentity::generate(&mut rng))
}

struct Pair {
    client: DtlsEndpoint,
    server: DtlsEndpoint,
    now: Instant,
    client_events: Vec<DtlsEvent>,
    server_events: Vec<DtlsEvent>,
    /// Datagrams sent by (client, server).
    sent: (usize, usize),
    max_datagram: usize,
}

impl Pair {
    fn new(client_cfg: DtlsConfig, server_cfg: DtlsConfig, seed: u64) -> Self {
        let (ci, si) = identities(seed);
        let mut rng = ChaCha20Rng::seed_from_u64(seed + 1);
        let client = DtlsEndpoint::new(client_cfg, &ci, Some(si.fingerprint()), &mut rng);
        let server = DtlsEndpoint::new(server_cfg, &si, Some(ci.fingerprint()), &mut rng);
        Pair {
            client,
            server,
            now: Instant::ZERO,
            client_events: Vec::new(),
            server_events: Vec::new(),
            sent: (0, 0),
            max_datagram: 0,
        }
    }

    fn default_pair(seed: u64) -> Self {
        Pair::new(DtlsConfig::new(DtlsRole::Client), DtlsConfig::new(DtlsRole::Server), seed)
    }

    /// Exchange datagrams until nothing moves, advancing virtual time to the
    /// next timeout, up to `limit`. `drop(from_client, index, datagram)`
    /// decides losses.
    fn run(&mut self, limit: Duration, mut drop: impl FnMut(bool, usize, &[u8]) -> bool) {
        let end = self.now + limit;
        let mut buf = [0u8; 1500];
        loop {
            let mut moved = false;
            for from_client in [true, false] {
                loop {
                    let (src, dst) = if from_client {
                        (&mut self.client, &mut self.server)
                    } else {
                        (&mut self.server, &mut self.client)
                    };
                    let Some(n) = src.poll_transmit(self.now, &mut buf) else { break };
                    self.max_datagram = self.max_datagram.max(n);
                    let idx = if from_client { &mut self.sent.0 } else { &mut self.sent.1 };
                    let i = *idx;
                    *idx += 1;
                    moved = true;
                    if !drop(from_client, i, &buf[..n]) {
                        let _ = dst.handle_receive(self.now, &buf[..n]);
                    }
                }
            }
            while let Some(e) = self.client.poll_event() {
                self.client_events.push(e);
            }
            while let Some(e) = self.server.poll_event() {
                self.server_events.push(e);
            }
            if moved {
                continue;
            }
            let next = [self.client.poll_timeout(), self.server.poll_timeout()].into_iter().flatten().min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.client.handle_timeout(self.now);
                    self.server.handle_timeout(self.now);
                }
                _ => return,
            }
        }
    }

    fn connected(events: &[DtlsEvent]) -> Option<(Option<SrtpKeyingMaterial>, CipherSuite, NamedGroup, Fingerprint)> {
        events.iter().find_map(|e| match e {
            DtlsEvent::Connected { srtp, cipher_suite, group, peer_fingerprint } => {
                Some((*srtp, *cipher_suite, *group, *peer_fingerprint))
            }
            _ => None,
        })
    }

    fn exchange_app_data(&mut self) {
        let mut buf = [0u8; 1500];
        self.client.send_application_data(b"ping from client").unwrap();
        self.server.send_application_data(b"pong from server").unwrap();
        self.run(Duration::from_secs(1), |_, _, _| false);
        let n = self.server.read_application_data(&mut buf).unwrap().unwrap();
        assert_eq!(&buf[..n], b"ping from client");
        let n = self.client.read_application_data(&mut buf).unwrap().unwrap();
        assert_eq!(&buf[..n], b"pong from server");
        assert_eq!(self.client.read_application_data(&mut buf), Ok(None));
    }
}

#[test]
fn handshake_every_suite_group_and_profile() {
    let suites = [
        (true, false, CipherSuite::EcdheEcdsaAes128GcmSha256),
        (false, true, CipherSuite::EcdheEcdsaChaCha20Poly1305Sha256),
    ];
    let groups = [(true, false, NamedGroup::X25519), (false, true, NamedGroup::Secp256r1)];
    let mut seed = 100;
    for (gcm, chacha, suite) in suites {
        for (x, p, group) in groups {
            for profile in SrtpProfile::ALL {
                seed += 1;
                let mut cc = DtlsConfig::new(DtlsRole::Client);
                (cc.aes128_gcm, cc.chacha20_poly1305, cc.x25519, cc.secp256r1) = (gcm, chacha, x, p);
                cc.srtp_profiles = [Some(profile), None, None];
                let sc = DtlsConfig::new(DtlsRole::Server);
                let mut pair = Pair::new(cc, sc, seed);
                pair.run(Duration::from_secs(5), |_, _, _| false);
                let c = Pair::connected(&pair.client_events).expect("client connected");
                let s = Pair::connected(&pair.server_events).expect("server connected");
                assert_eq!((c.1, c.2), (suite, group));
                assert_eq!((s.1, s.2), (suite, group));
                let (ck, sk) = (c.0.unwrap(), s.0.unwrap());
                assert_eq!(ck.profile, profile);
                assert_eq!(ck, sk, "both sides derive the same SRTP keys");
                assert_ne!(ck.client.key, ck.server.key);
                let mut a = [0u8; 60];
                let mut b = [0u8; 60];
                let n = profile.keying_material_len();
                pair.client.export_keying_material(EXPORTER_LABEL_DTLS_SRTP, &mut a[..n]).unwrap();
                pair.server.export_keying_material(EXPORTER_LABEL_DTLS_SRTP, &mut b[..n]).unwrap();
                assert_eq!(a, b);
                assert_eq!(SrtpKeyingMaterial::split(profile, &a[..n]), Some(ck));
                pair.server.export_keying_material(b"other label", &mut b[..n]).unwrap();
                assert_ne!(a[..n], b[..n]);
                pair.exchange_app_data();
                // Cookie exchange (default) + 3 more flights from the client side.
                assert_eq!(pair.client.stats().retransmissions, 0);
            }
        }
    }
}

#[test]
fn srtp_profile_preference_and_absence() {
    // Server prefers its own order among what the client offers.
    let mut cc = DtlsConfig::new(DtlsRole::Client);
    cc.srtp_profiles = [Some(SrtpProfile::Aes128CmSha1_32), Some(SrtpProfile::Aes128CmSha1_80), None];
    let mut sc = DtlsConfig::new(DtlsRole::Server);
    sc.srtp_profiles = [Some(SrtpProfile::Aes128CmSha1_80), Some(SrtpProfile::Aes128CmSha1_32), None];
    let mut pair = Pair::new(cc, sc, 7);
    pair.run(Duration::from_secs(5), |_, _, _| false);
    assert_eq!(Pair::connected(&pair.client_events).unwrap().0.unwrap().profile, SrtpProfile::Aes128CmSha1_80);
    // No use_srtp at all: connected without SRTP keys.
    let mut cc = DtlsConfig::new(DtlsRole::Client);
    cc.srtp_profiles = [None; 3];
    let mut pair = Pair::new(cc, DtlsConfig::new(DtlsRole::Server), 8);
    pair.run(Duration::from_secs(5), |_, _, _| false);
    assert_eq!(Pair::connected(&pair.client_events).unwrap().0, None);
    assert_eq!(Pair::connected(&pair.server_events).unwrap().0, None);
    pair.exchange_app_data();
}

#[test]
fn handshake_without_cookie_exchange() {
    let mut sc = DtlsConfig::new(DtlsRole::Server);
    sc.cookie_exchange = false;
    let mut pair = Pair::new(DtlsConfig::new(DtlsRole::Client), sc, 9);
    pair.run(Duration::from_secs(5), |_, _, _| false);
    assert!(pair.client.is_connected() && pair.server.is_connected());
    // Client: ClientHello, flight 5; with cookies it would send one more.
    let mut pair2 = Pair::default_pair(9);
    pair2.run(Duration::from_secs(5), |_, _, _| false);
    assert!(pair2.sent.0 > pair.sent.0);
}

#[test]
fn fragments_to_a_small_mtu() {
    let mut cc = DtlsConfig::new(DtlsRole::Client);
    let mut sc = DtlsConfig::new(DtlsRole::Server);
    cc.mtu = MIN_MTU;
    sc.mtu = MIN_MTU;
    let mut pair = Pair::new(cc, sc, 11);
    pair.run(Duration::from_secs(5), |_, _, _| false);
    assert!(pair.client.is_connected() && pair.server.is_connected());
    assert!(pair.max_datagram <= MIN_MTU as usize);
    // Certificates (~330 bytes) cannot fit: both flights were fragmented.
    assert!(pair.sent.1 >= 4, "server datagrams {}", pair.sent.1);
    pair.exchange_app_data();
    assert_eq!(pair.client.max_application_data_len(), MIN_MTU as usize - 13 - 24);
    assert_eq!(pair.client.send_application_data(&[0; MIN_MTU as usize]), Err(DtlsError::TooLarge));
}

#[test]
fn fragments_reassemble_in_any_order() {
    // Deliver every datagram of each burst in reverse order.
    let mut cc = DtlsConfig::new(DtlsRole::Client);
    let mut sc = DtlsConfig::new(DtlsRole::Server);
    cc.mtu = MIN_MTU;
    sc.mtu = MIN_MTU;
    let mut pair = Pair::new(cc, sc, 12);
    let mut buf = [0u8; 1500];
    let mut now = Instant::ZERO;
    for _ in 0..20 {
        for from_client in [true, false] {
            let mut burst: Vec<Vec<u8>> = Vec::new();
            let src = if from_client { &mut pair.client } else { &mut pair.server };
            while let Some(n) = src.poll_transmit(now, &mut buf) {
                burst.push(buf[..n].to_vec());
            }
            let dst = if from_client { &mut pair.server } else { &mut pair.client };
            for d in burst.iter().rev() {
                let _ = dst.handle_receive(now, d);
            }
        }
        if pair.client.is_connected() && pair.server.is_connected() {
            break;
        }
        now += Duration::from_millis(1500);
        pair.client.handle_timeout(now);
        pair.server.handle_timeout(now);
    }
    let ce: Vec<_> = core::iter::from_fn(|| pair.client.poll_event()).collect();
    let se: Vec<_> = core::iter::from_fn(|| pair.server.poll_event()).collect();
    assert!(pair.client.is_connected() && pair.server.is_connected(), "{ce:?} {se:?}");
}

#[test]
fn retransmits_after_dropped_flights() {
    // Drop the first datagram of every flight in both directions, and the
    // server's whole final flight once.
    let mut pair = Pair::default_pair(13);
    pair.run(
        Duration::from_secs(60),
        |from_client, i, _| if from_client { i == 0 || i == 3 } else { i == 0 || i == 2 },
    );
    let ce: Vec<_> = core::iter::from_fn(|| pair.client.poll_event()).collect();
    let se: Vec<_> = core::iter::from_fn(|| pair.server.poll_event()).collect();
    assert!(pair.client.is_connected() && pair.server.is_connected(), "{ce:?} {se:?}");
    assert!(pair.client.stats().retransmissions + pair.server.stats().retransmissions >= 2);
    assert!(pair.now >= Instant::from_secs(1));
    pair.exchange_app_data();
}

#[test]
fn gives_up_after_max_retransmissions() {
    let mut cc = DtlsConfig::new(DtlsRole::Client);
    cc.max_retransmissions = 3;
    cc.initial_retransmit_timeout = Duration::from_millis(100);
    let mut pair = Pair::new(cc, DtlsConfig::new(DtlsRole::Server), 14);
    pair.run(Duration::from_secs(60), |from_client, _, _| !from_client);
    assert!(pair.client_events.contains(&DtlsEvent::Failed(DtlsFailure::Timeout)));
    // 100 + 200 + 400 + 800 ms of back-off.
    assert_eq!(pair.now, Instant::from_millis(1500));
    assert_eq!(pair.client.stats().retransmissions, 3);
    assert!(pair.client.is_closed());
}

#[test]
fn fingerprint_mismatch_fails_closed_on_both_sides() {
    let (ci, si) = identities(15);
    let (other, _) = identities(16);
    let mut rng = ChaCha20Rng::seed_from_u64(17);
    let mut pair = Pair::default_pair(15);
    pair.client = DtlsEndpoint::new(DtlsConfig::new(DtlsRole::Client), &ci, Some(other.fingerprint()), &mut rng);
    pair.server = DtlsEndpoint::new(DtlsConfig::new(DtlsRole::Server), &si, Some(ci.fingerprint()), &mut rng);
    pair.run(Duration::from_secs(10), |_, _, _| false);
    assert!(pair.client_events.contains(&DtlsEvent::Failed(DtlsFailure::FingerprintMismatch)));
    assert!(pair.server_events.contains(&DtlsEvent::Failed(DtlsFailure::PeerAlert(42))));
    assert!(Pair::connected(&pair.client_events).is_none() && Pair::connected(&pair.server_events).is_none());

    // The server checks the client's certificate the same way.
    let mut pair = Pair::default_pair(15);
    pair.client = DtlsEndpoint::new(DtlsConfig::new(DtlsRole::Client), &ci, Some(si.fingerprint()), &mut rng);
    pair.server = DtlsEndpoint::new(DtlsConfig::new(DtlsRole::Server), &si, Some(other.fingerprint()), &mut rng);
    pair.run(Duration::from_secs(10), |_, _, _| false);
    assert!(pair.server_events.contains(&DtlsEvent::Failed(DtlsFailure::FingerprintMismatch)));
    assert!(pair.client_events.contains(&DtlsEvent::Failed(DtlsFailure::PeerAlert(42))));
    assert!(!pair.client.is_connected());
}

#[test]
fn no_expected_fingerprint_reports_the_peers() {
    let (ci, si) = identities(18);
    let mut rng = ChaCha20Rng::seed_from_u64(19);
    let mut pair = Pair::default_pair(18);
    pair.client = DtlsEndpoint::new(DtlsConfig::new(DtlsRole::Client), &ci, None, &mut rng);
    pair.server = DtlsEndpoint::new(DtlsConfig::new(DtlsRole::Server), &si, None, &mut rng);
    pair.run(Duration::from_secs(10), |_, _, _| false);
    assert_eq!(Pair::connected(&pair.client_events).unwrap().3, si.fingerprint());
    assert_eq!(Pair::connected(&pair.server_events).unwrap().3, ci.fingerprint());
}

/// Connected pair and one captured client application data datagram.
fn connected_with_capture(seed: u64) -> (Pair, Vec<u8>) {
    let mut pair = Pair::default_pair(seed);
    pair.run(Duration::from_secs(5), |_, _, _| false);
    assert!(pair.client.is_connected() && pair.server.is_connected());
    pair.client.send_application_data(b"secret").unwrap();
    let mut buf = [0u8; 1500];
    let n = pair.client.poll_transmit(pair.now, &mut buf).unwrap();
    (pair, buf[..n].to_vec())
}

#[test]
fn replayed_and_tampered_records_are_dropped_and_counted() {
    let (mut pair, rec) = connected_with_capture(20);
    let mut out = [0u8; 64];
    pair.server.handle_receive(pair.now, &rec).unwrap();
    assert_eq!(pair.server.read_application_data(&mut out).unwrap(), Some(6));
    assert_eq!(&out[..6], b"secret");
    pair.server.handle_receive(pair.now, &rec).unwrap();
    assert_eq!(pair.server.stats().dropped_replayed, 1);
    assert_eq!(pair.server.read_application_data(&mut out).unwrap(), None);
    for i in [13usize, 20, rec.len() - 1] {
        let (mut pair, rec) = connected_with_capture(21);
        let mut bad = rec.clone();
        bad[i] ^= 1;
        pair.server.handle_receive(pair.now, &bad).unwrap();
        assert_eq!(pair.server.stats().dropped_bad_tag, 1, "byte {i}");
        assert_eq!(pair.server.read_application_data(&mut out).unwrap(), None);
        // The genuine record still goes through afterwards.
        pair.server.handle_receive(pair.now, &rec).unwrap();
        assert_eq!(pair.server.read_application_data(&mut out).unwrap(), Some(6));
    }
    // A sequence number far in the past (header changed: tag fails first, so
    // check the window directly).
    let mut w = super::record::ReplayWindow::default();
    w.mark(100);
    assert!(!w.check(100) && w.check(99) && w.check(101) && !w.check(36) && w.check(37));
    w.mark(200);
    assert!(!w.check(100) && !w.check(200) && w.check(199));
}

#[test]
fn record_protection_round_trip_and_tamper() {
    use super::record::{write_record, RecordCipher};
    for suite in [CipherSuite::EcdheEcdsaAes128GcmSha256, CipherSuite::EcdheEcdsaChaCha20Poly1305Sha256] {
        let c = RecordCipher::new(suite, &[7u8; 32], &[9u8; 12]);
        let mut out = [0u8; 128];
        let n = write_record(&mut out, 23, 1, 5, Some(&c), &[b"hello ", b"world"]).unwrap();
        assert_eq!(n, 13 + 11 + suite.record_overhead());
        let mut plain = [0u8; 64];
        let frag = &out[13..n];
        assert_eq!(c.open(23, 0xfefd, 1, 5, frag, &mut plain), Some(11));
        assert_eq!(&plain[..11], b"hello world");
        // Wrong sequence number, type or epoch: the AAD/nonce differ.
        assert_eq!(c.open(23, 0xfefd, 1, 6, frag, &mut plain), None);
        assert_eq!(c.open(22, 0xfefd, 1, 5, frag, &mut plain), None);
        assert_eq!(c.open(23, 0xfefd, 2, 5, frag, &mut plain), None);
        let mut bad = out;
        bad[20] ^= 0x80;
        assert_eq!(c.open(23, 0xfefd, 1, 5, &bad[13..n], &mut plain), None);
        assert_eq!(c.open(23, 0xfefd, 1, 5, &frag[..3], &mut plain), None);
        assert!(write_record(&mut out[..20], 23, 1, 5, Some(&c), &[b"hello world"]).is_none());
    }
}

#[test]
fn close_notify_reaches_the_peer() {
    let mut pair = Pair::default_pair(22);
    pair.run(Duration::from_secs(5), |_, _, _| false);
    pair.client.send_application_data(b"last words").unwrap();
    pair.client.close();
    pair.run(Duration::from_secs(1), |_, _, _| false);
    assert!(pair.server_events.contains(&DtlsEvent::PeerClosed));
    let mut out = [0u8; 32];
    assert_eq!(pair.server.read_application_data(&mut out).unwrap(), Some(10));
    assert!(pair.server.is_closed() && pair.client.is_closed());
    assert_eq!(pair.client.send_application_data(b"x"), Err(DtlsError::Closed));
}

#[test]
fn not_connected_yet() {
    let pair = Pair::default_pair(23);
    let mut c = pair.client;
    assert_eq!(c.send_application_data(b"x"), Err(DtlsError::NotConnected));
    let mut out = [0u8; 16];
    assert_eq!(c.export_keying_material(b"x", &mut out), Err(DtlsError::NotConnected));
}

#[test]
fn garbage_and_mutated_records_never_panic() {
    let mut rng = ChaCha20Rng::seed_from_u64(24);
    // Record every datagram of a good handshake, then replay mutated copies
    // into fresh endpoints at each step.
    let mut pair = Pair::default_pair(25);
    let mut log: Vec<(bool, Vec<u8>)> = Vec::new();
    pair.run(Duration::from_secs(5), |from_client, _, d| {
        log.push((from_client, d.to_vec()));
        false
    });
    assert!(pair.client.is_connected());
    for round in 0..300 {
        let mut p = Pair::default_pair(25);
        for (from_client, d) in &log {
            let mut m = d.clone();
            match rng.gen_range(0..4) {
                0 => {
                    let i = rng.gen_range(0..m.len());
                    m[i] ^= 1 << rng.gen_range(0..8);
                }
                1 => m.truncate(rng.gen_range(0..m.len())),
                2 => {
                    let i = rng.gen_range(0..m.len());
                    m[i] = rng.gen();
                }
                _ => {}
            }
            let dst = if *from_client { &mut p.server } else { &mut p.client };
            let _ = dst.handle_receive(Instant::from_millis(round), &m);
            let mut buf = [0u8; 1500];
            while p.client.poll_transmit(Instant::ZERO, &mut buf).is_some() {}
            while p.server.poll_transmit(Instant::ZERO, &mut buf).is_some() {}
        }
        let mut junk = [0u8; 300];
        for _ in 0..20 {
            let n = rng.gen_range(0..junk.len());
            rng.fill(&mut junk[..n]);
            if n > 0 {
                junk[0] = rng.gen_range(20..64);
            }
            let _ = p.client.handle_receive(Instant::ZERO, &junk[..n]);
            let _ = p.server.handle_receive(Instant::ZERO, &junk[..n]);
        }
    }
}

#[test]
fn endpoint_size_with_default_bounds() {
    let size = core::mem::size_of::<DtlsEndpoint>();
    std::println!("size_of::<DtlsEndpoint>() = {size} bytes");
    assert!(size < 16 * 1024, "{size}");
}
