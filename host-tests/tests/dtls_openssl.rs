//! Interop: our DTLS client against `openssl s_server` and our DTLS server
//! against `openssl s_client`, on loopback UDP, with mutual ECDSA P-256
//! certificates, for every SRTP profile, both groups and both cipher suites.
//!
//! OpenSSL is the judge: the keying material it prints for
//! `EXTRACTOR-dtls_srtp` must equal ours, the certificate we generate must
//! load in `openssl x509` with the fingerprint we compute, the fingerprint
//! OpenSSL computes for its own certificate must be the one our handshake
//! verifies, and application data must cross both ways.

use std::io::{BufRead, BufReader, Write};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use rand::SeedableRng;
use tinyrtc::dtls::{
    CipherSuite, DtlsConfig, DtlsEndpoint, DtlsEvent, DtlsIdentity, DtlsRole, Fingerprint, NamedGroup, SrtpProfile,
    EXPORTER_LABEL_DTLS_SRTP,
};
use tinyrtc::Instant;

const TIMEOUT: StdDuration = StdDuration::from_secs(15);

fn openssl_available() -> bool {
    let ok = Command::new("openssl").arg("version").stdout(Stdio::null()).status().is_ok_and(|s| s.success());
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "openssl is missing and CI is set");
        eprintln!("SKIP: openssl not found (install it, see scripts/setup.sh)");
    }
    ok
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run openssl");
    assert!(out.status.success(), "{:?}: {}", cmd, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A temporary directory with OpenSSL's key and certificate and ours.
struct Certs {
    dir: PathBuf,
    openssl_fp: Fingerprint,
    ours: DtlsIdentity,
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Certs {
    fn new(tag: &str) -> Certs {
        let dir = std::env::temp_dir().join(format!("tinyrtc-dtls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        run(Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
            .arg("-keyout")
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem"))
            .args(["-days", "30", "-subj", "/CN=openssl-peer"])
            .stderr(Stdio::null()));
        let openssl_fp = openssl_fingerprint(&dir.join("cert.pem"), "PEM");
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(tag.bytes().fold(7, |h, b| h * 31 + b as u64));
        let ours = DtlsIdentity::generate(&mut rng);
        std::fs::write(dir.join("ours.der"), ours.certificate_der()).unwrap();
        // OpenSSL must accept our certificate and agree on its fingerprint.
        assert_eq!(openssl_fingerprint(&dir.join("ours.der"), "DER"), ours.fingerprint());
        run(Command::new("openssl")
            .args(["x509", "-inform", "DER", "-in"])
            .arg(dir.join("ours.der"))
            .arg("-out")
            .arg(dir.join("ours.pem")));
        let text = run(Command::new("openssl").args(["x509", "-noout", "-text", "-in"]).arg(dir.join("ours.pem")));
        assert!(text.contains("Version: 3"), "{text}");
        assert!(text.contains("ecdsa-with-SHA256") && text.contains("prime256v1"), "{text}");
        // The certificate's own signature verifies (it is its own issuer).
        let verify = Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(dir.join("ours.pem"))
            .arg(dir.join("ours.pem"))
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&verify.stdout).contains(": OK"), "{verify:?}");
        Certs { dir, openssl_fp, ours }
    }
}

fn openssl_fingerprint(path: &Path, form: &str) -> Fingerprint {
    let out = run(Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-inform", form, "-in"])
        .arg(path));
    // "sha256 Fingerprint=AB:CD:..."
    let hex = out.trim().split('=').nth(1).expect("fingerprint line");
    Fingerprint::parse(&format!("sha-256 {hex}")).unwrap()
}

/// An OpenSSL child with its stdout lines collected by a thread; killed on
/// drop however the test ends.
struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Peer {
    fn spawn(cmd: &mut Command) -> Peer {
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let (tx, rx) = channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx2.send(format!("stderr: {line}"));
            }
        });
        let stdin = child.stdin.take();
        Peer { child, stdin, lines: rx, seen: Vec::new() }
    }

    /// Collect lines until one satisfies `f` (returned) or the deadline.
    fn wait_line(&mut self, deadline: StdInstant, f: impl Fn(&str) -> bool) -> Option<String> {
        if let Some(l) = self.seen.iter().find(|l| f(l)) {
            return Some(l.clone());
        }
        while let Some(left) = deadline.checked_duration_since(StdInstant::now()) {
            match self.lines.recv_timeout(left.min(StdDuration::from_millis(50))) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if f(&line) {
                        return Some(line);
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(_) => return None,
            }
        }
        None
    }

    fn keying_material(&mut self, deadline: StdInstant) -> Vec<u8> {
        let line = self
            .wait_line(deadline, |l| l.contains("Keying material:"))
            .unwrap_or_else(|| panic!("no keying material from openssl: {:#?}", self.seen));
        hex::decode(line.split(':').nth(1).unwrap().trim()).unwrap()
    }

    fn write_line(&mut self, s: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(s.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }
}

struct Case {
    profile: SrtpProfile,
    group: NamedGroup,
    suite: CipherSuite,
}

impl Case {
    fn openssl_args(&self) -> Vec<String> {
        let profile = match self.profile {
            SrtpProfile::Aes128CmSha1_80 => "SRTP_AES128_CM_SHA1_80",
            SrtpProfile::Aes128CmSha1_32 => "SRTP_AES128_CM_SHA1_32",
            SrtpProfile::AeadAes128Gcm => "SRTP_AEAD_AES_128_GCM",
        };
        let group = match self.group {
            // In TLS 1.2 supported_groups also names the curves ECDSA
            // certificates may use: OpenSSL refuses a P-256 certificate
            // from a peer whose group list lacks P-256.
            NamedGroup::X25519 => "X25519:P-256",
            NamedGroup::Secp256r1 => "P-256",
        };
        let cipher = match self.suite {
            CipherSuite::EcdheEcdsaAes128GcmSha256 => "ECDHE-ECDSA-AES128-GCM-SHA256",
            CipherSuite::EcdheEcdsaChaCha20Poly1305Sha256 => "ECDHE-ECDSA-CHACHA20-POLY1305",
        };
        let len = self.profile.keying_material_len().to_string();
        ["-dtls1_2", "-use_srtp", profile, "-keymatexport"]
            .into_iter()
            .map(String::from)
            .chain([std::str::from_utf8(EXPORTER_LABEL_DTLS_SRTP).unwrap().to_string()])
            .chain(["-keymatexportlen", &len, "-groups", group, "-cipher", cipher, "-mtu", "1200"].map(String::from))
            .chain(std::env::var("DTLS_OPENSSL_DEBUG").ok().map(|_| "-msg".to_string()))
            .collect()
    }

    fn label(&self) -> String {
        format!("{:?}/{:?}/{:?}", self.profile, self.group, self.suite)
    }
}

fn cases() -> Vec<Case> {
    use CipherSuite::*;
    use NamedGroup::*;
    vec![
        Case { profile: SrtpProfile::Aes128CmSha1_80, group: X25519, suite: EcdheEcdsaAes128GcmSha256 },
        Case { profile: SrtpProfile::Aes128CmSha1_32, group: Secp256r1, suite: EcdheEcdsaAes128GcmSha256 },
        Case { profile: SrtpProfile::AeadAes128Gcm, group: X25519, suite: EcdheEcdsaAes128GcmSha256 },
        Case { profile: SrtpProfile::AeadAes128Gcm, group: Secp256r1, suite: EcdheEcdsaChaCha20Poly1305Sha256 },
    ]
}

/// Our side of a run: the socket (connected to the peer), the origin of our
/// clock and the deadline of the whole run.
struct Link<'a> {
    socket: &'a UdpSocket,
    origin: StdInstant,
    deadline: StdInstant,
}

/// Drive our endpoint over the link with the wall clock until `done` says
/// so or the deadline passes.
fn drive(
    ep: &mut DtlsEndpoint,
    link: &Link<'_>,
    events: &mut Vec<DtlsEvent>,
    mut done: impl FnMut(&mut DtlsEndpoint, &[DtlsEvent]) -> bool,
) {
    let (socket, origin, deadline) = (link.socket, link.origin, link.deadline);
    let now = || Instant::from_micros(origin.elapsed().as_micros() as u64);
    let mut buf = vec![0u8; 65536];
    while StdInstant::now() < deadline {
        while let Some(n) = ep.poll_transmit(now(), &mut buf) {
            socket.send(&buf[..n]).unwrap();
        }
        while let Some(e) = ep.poll_event() {
            events.push(e);
        }
        if done(ep, events) {
            return;
        }
        socket.set_read_timeout(Some(StdDuration::from_millis(20))).unwrap();
        if let Ok(n) = socket.recv(&mut buf) {
            let _ = ep.handle_receive(now(), &buf[..n]);
        }
        ep.handle_timeout(now());
    }
}

/// `openssl <tool>` (`s_server` or `s_client`) with the case's options and
/// the OpenSSL side's certificate and key.
fn openssl(tool: &str, case: &Case, certs: &Certs) -> Command {
    let mut cmd = Command::new("openssl");
    cmd.arg(tool)
        .args(case.openssl_args())
        .arg("-cert")
        .arg(certs.dir.join("cert.pem"))
        .arg("-key")
        .arg(certs.dir.join("key.pem"));
    cmd
}

/// Our end of a run against OpenSSL: a loopback socket connected to it.
struct OpenSslRun {
    socket: UdpSocket,
    peer: Peer,
    deadline: StdInstant,
    /// Our port (s_client) or OpenSSL's (s_server).
    port: u16,
}

/// Start `s_server` (from [`openssl`]) for one connection on a free
/// loopback port, wait until it accepts, and connect our socket to it.
fn start_s_server(mut cmd: Command) -> OpenSslRun {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut peer = Peer::spawn(cmd.args(["-accept", &format!("127.0.0.1:{port}"), "-naccept", "1"]));
    let deadline = StdInstant::now() + TIMEOUT;
    assert!(peer.wait_line(deadline, |l| l.contains("ACCEPT")).is_some(), "s_server: {:#?}", peer.seen);
    socket.connect(("127.0.0.1", port)).unwrap();
    OpenSslRun { socket, peer, deadline, port }
}

/// Start `s_client` (from [`openssl`]) towards a fresh loopback socket and
/// wait for its ClientHello, which tells where it is: the socket is then
/// connected to it. Returns that first datagram too.
fn start_s_client(mut cmd: Command) -> (OpenSslRun, Vec<u8>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    let peer = Peer::spawn(cmd.args(["-connect", &format!("127.0.0.1:{port}")]));
    let deadline = StdInstant::now() + TIMEOUT;
    socket.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut first = vec![0u8; 65536];
    let (n, from) = socket.recv_from(&mut first).expect("s_client sends a ClientHello");
    socket.connect(from).unwrap();
    first.truncate(n);
    (OpenSslRun { socket, peer, deadline, port }, first)
}

fn our_config(role: DtlsRole, case: &Case) -> DtlsConfig {
    let mut cfg = DtlsConfig::new(role);
    cfg.srtp_profiles = [Some(case.profile), None, None];
    cfg.initial_retransmit_timeout = tinyrtc::Duration::from_millis(300);
    cfg
}

fn connected(events: &[DtlsEvent]) -> Option<DtlsEvent> {
    events.iter().copied().find(|e| matches!(e, DtlsEvent::Connected { .. }))
}

/// Check the Connected event against OpenSSL's exported keying material
/// and the negotiated parameters, then exchange application data.
fn check_session(
    ep: &mut DtlsEndpoint,
    peer: &mut Peer,
    link: &Link<'_>,
    events: &mut Vec<DtlsEvent>,
    case: &Case,
    openssl_fp: Fingerprint,
) {
    let deadline = link.deadline;
    let Some(DtlsEvent::Connected { srtp, cipher_suite, group, peer_fingerprint }) = connected(events) else {
        peer.wait_line(StdInstant::now() + StdDuration::from_millis(500), |_| false);
        panic!("{}: not connected: {events:?} {:?}; openssl: {:#?}", case.label(), ep, peer.seen);
    };
    assert_eq!((cipher_suite, group), (case.suite, case.group), "{}", case.label());
    assert_eq!(peer_fingerprint, openssl_fp);
    let theirs = peer.keying_material(deadline);
    let n = case.profile.keying_material_len();
    assert_eq!(theirs.len(), n);
    let mut ours = vec![0u8; n];
    ep.export_keying_material(EXPORTER_LABEL_DTLS_SRTP, &mut ours).unwrap();
    assert_eq!(hex::encode(&ours), hex::encode(&theirs), "{}: exporter output", case.label());
    let srtp = srtp.expect("use_srtp negotiated");
    assert_eq!(srtp.profile, case.profile);
    assert_eq!(Some(srtp), tinyrtc::srtp::SrtpKeyingMaterial::split(case.profile, &theirs));

    // Ours -> OpenSSL (it prints what it receives).
    let msg = format!("hello from tinyrtc {}", case.label());
    ep.send_application_data(format!("{msg}\n").as_bytes()).unwrap();
    drive(ep, link, events, |_, _| true);
    assert!(peer.wait_line(deadline, |l| l.contains(&msg)).is_some(), "{}: {:#?}", case.label(), peer.seen);
    // OpenSSL -> ours (it sends what it reads on stdin).
    peer.write_line("hello from openssl");
    let mut got = Vec::new();
    drive(ep, link, events, |ep, _| {
        let mut buf = [0u8; 2048];
        while let Ok(Some(n)) = ep.read_application_data(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        got.windows(18).any(|w| w == b"hello from openssl")
    });
    assert!(
        got.windows(18).any(|w| w == b"hello from openssl"),
        "{}: got {:?}",
        case.label(),
        String::from_utf8_lossy(&got)
    );
}

#[test]
fn our_client_against_openssl_s_server() {
    if !openssl_available() {
        return;
    }
    let certs = Certs::new("client");
    for case in cases() {
        let mut cmd = openssl("s_server", &case, &certs);
        cmd.args(["-Verify", "1", "-CAfile"]).arg(certs.dir.join("ours.pem"));
        let OpenSslRun { socket, mut peer, deadline, port } = start_s_server(cmd);
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(port as u64);
        let mut ep =
            DtlsEndpoint::new(our_config(DtlsRole::Client, &case), &certs.ours, Some(certs.openssl_fp), &mut rng);
        let link = Link { socket: &socket, origin: StdInstant::now(), deadline };
        let mut events = Vec::new();
        drive(&mut ep, &link, &mut events, |_, ev| {
            ev.iter().any(|e| matches!(e, DtlsEvent::Connected { .. } | DtlsEvent::Failed(_)))
        });
        check_session(&mut ep, &mut peer, &link, &mut events, &case, certs.openssl_fp);
        // OpenSSL verified our certificate against ours.pem.
        assert!(!peer.seen.iter().any(|l| l.contains("verify error")), "{:#?}", peer.seen);
        eprintln!("client vs s_server ok: {}", case.label());
    }
}

#[test]
fn our_server_against_openssl_s_client() {
    if !openssl_available() {
        return;
    }
    let certs = Certs::new("server");
    for case in cases() {
        let mut cmd = openssl("s_client", &case, &certs);
        cmd.arg("-CAfile").arg(certs.dir.join("ours.pem")).args(["-verify", "1", "-verify_return_error"]);
        let (OpenSslRun { socket, mut peer, deadline, port }, first) = start_s_client(cmd);
        let from = socket.peer_addr().unwrap();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(port as u64);
        let mut ep =
            DtlsEndpoint::new(our_config(DtlsRole::Server, &case), &certs.ours, Some(certs.openssl_fp), &mut rng);
        ep.set_peer_address(from);
        let link = Link { socket: &socket, origin: StdInstant::now(), deadline };
        ep.handle_receive(Instant::ZERO, &first).unwrap();
        let mut events = Vec::new();
        drive(&mut ep, &link, &mut events, |_, ev| {
            ev.iter().any(|e| matches!(e, DtlsEvent::Connected { .. } | DtlsEvent::Failed(_)))
        });
        check_session(&mut ep, &mut peer, &link, &mut events, &case, certs.openssl_fp);
        // s_client verified our certificate (with -verify_return_error it
        // would have aborted otherwise).
        assert!(peer.seen.iter().any(|l| l.contains("Verify return code: 0")), "{:#?}", peer.seen);
        assert!(peer.seen.iter().any(|l| l.contains("Extended master secret: yes")), "{:#?}", peer.seen);
        eprintln!("server vs s_client ok: {}", case.label());
    }
}

#[test]
fn wrong_fingerprint_fails_with_bad_certificate_alert() {
    if !openssl_available() {
        return;
    }
    let certs = Certs::new("mismatch");
    let case = &cases()[0];
    let OpenSslRun { socket, mut peer, deadline, .. } = start_s_server(openssl("s_server", case, &certs));
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let mut wrong = certs.openssl_fp;
    wrong.sha256[31] ^= 1;
    let mut ep = DtlsEndpoint::new(our_config(DtlsRole::Client, case), &certs.ours, Some(wrong), &mut rng);
    let link = Link { socket: &socket, origin: StdInstant::now(), deadline };
    let mut events = Vec::new();
    drive(&mut ep, &link, &mut events, |_, ev| ev.iter().any(|e| matches!(e, DtlsEvent::Failed(_))));
    assert_eq!(events, [DtlsEvent::Failed(tinyrtc::dtls::DtlsFailure::FingerprintMismatch)]);
    // Our bad_certificate alert reached OpenSSL.
    assert!(peer.wait_line(deadline, |l| l.contains("bad certificate")).is_some(), "{:#?}", peer.seen);
}

/// An OpenSSL configuration file turning extended_master_secret off.
fn no_ems_config(dir: &Path) -> PathBuf {
    let path = dir.join("no-ems.cnf");
    std::fs::write(
        &path,
        "openssl_conf = default_conf\n[default_conf]\nssl_conf = ssl_sect\n[ssl_sect]\n\
         system_default = system_default_sect\n[system_default_sect]\nOptions = -ExtendedMasterSecret\n",
    )
    .unwrap();
    path
}

#[test]
fn peers_without_extended_master_secret_are_refused() {
    if !openssl_available() {
        return;
    }
    let certs = Certs::new("noems");
    let conf = no_ems_config(&certs.dir);
    let case = &cases()[0];

    // Our client, OpenSSL server without EMS.
    let mut cmd = openssl("s_server", case, &certs);
    cmd.env("OPENSSL_CONF", &conf);
    let OpenSslRun { socket, mut peer, deadline, .. } = start_s_server(cmd);
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
    let mut ep = DtlsEndpoint::new(our_config(DtlsRole::Client, case), &certs.ours, Some(certs.openssl_fp), &mut rng);
    let link = Link { socket: &socket, origin: StdInstant::now(), deadline };
    let mut events = Vec::new();
    drive(&mut ep, &link, &mut events, |_, ev| ev.iter().any(|e| matches!(e, DtlsEvent::Failed(_))));
    assert_eq!(events, [DtlsEvent::Failed(tinyrtc::dtls::DtlsFailure::MissingExtendedMasterSecret)]);
    assert!(peer.wait_line(deadline, |l| l.contains("handshake failure")).is_some(), "{:#?}", peer.seen);
    drop(peer);

    // Our server, OpenSSL client without EMS.
    let mut cmd = openssl("s_client", case, &certs);
    cmd.env("OPENSSL_CONF", &conf);
    let (OpenSslRun { socket, mut peer, deadline, .. }, first) = start_s_client(cmd);
    let mut ep = DtlsEndpoint::new(our_config(DtlsRole::Server, case), &certs.ours, Some(certs.openssl_fp), &mut rng);
    let link = Link { socket: &socket, origin: StdInstant::now(), deadline };
    ep.handle_receive(Instant::ZERO, &first).unwrap();
    let mut events = Vec::new();
    drive(&mut ep, &link, &mut events, |_, ev| ev.iter().any(|e| matches!(e, DtlsEvent::Failed(_))));
    assert_eq!(events, [DtlsEvent::Failed(tinyrtc::dtls::DtlsFailure::MissingExtendedMasterSecret)]);
    assert!(peer.wait_line(deadline, |l| l.contains("handshake failure")).is_some(), "{:#?}", peer.seen);
}

#[test]
fn renegotiation_is_refused() {
    if !openssl_available() {
        return;
    }
    let certs = Certs::new("reneg");
    let case = &cases()[0];
    let mut cmd = openssl("s_client", case, &certs);
    cmd.arg("-state");
    let (OpenSslRun { socket, mut peer, deadline, .. }, first) = start_s_client(cmd);
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
    let mut ep = DtlsEndpoint::new(our_config(DtlsRole::Server, case), &certs.ours, Some(certs.openssl_fp), &mut rng);
    let link = Link { socket: &socket, origin: StdInstant::now(), deadline };
    ep.handle_receive(Instant::ZERO, &first).unwrap();
    let mut events = Vec::new();
    drive(&mut ep, &link, &mut events, |ep, _| ep.is_connected());
    assert!(peer.wait_line(deadline, |l| l.contains("Keying material:")).is_some(), "{:#?}", peer.seen);
    // "R" on s_client's stdin starts a renegotiation: a ClientHello in epoch 1.
    peer.write_line("R");
    let until = StdInstant::now() + StdDuration::from_secs(1);
    drive(&mut ep, &link, &mut events, |_, _| StdInstant::now() > until);
    assert!(
        peer.wait_line(deadline, |l| l.contains("no renegotiation")).is_some(),
        "no_renegotiation alert not seen: {:?} {:#?}",
        ep,
        peer.seen
    );
    drive(&mut ep, &link, &mut events, |_, _| true);
    // No second handshake took place; OpenSSL gives up on the connection
    // with a fatal handshake_failure, which we report.
    assert_eq!(events.iter().filter(|e| matches!(e, DtlsEvent::Connected { .. })).count(), 1);
    assert!(
        events[1..].iter().all(|e| *e == DtlsEvent::Failed(tinyrtc::dtls::DtlsFailure::PeerAlert(40))),
        "{events:?}"
    );
}
