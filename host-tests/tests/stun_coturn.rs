//! Interop: our sans-IO Binding client against coturn's `turnserver` on
//! loopback. The reflexive address coturn reports must be our socket's own
//! address (no NAT on loopback).

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use rand::SeedableRng;
use tinyrtc::stun::{BindingClient, BindingEvent, RetransmitConfig, StunBindingClient};
use tinyrtc::{Duration, Instant};

/// Kills the server and removes its directory however the test ends.
struct Turnserver {
    child: Child,
    dir: PathBuf,
}

impl Drop for Turnserver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn turnserver_available() -> bool {
    Command::new("turnserver").arg("--help").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

fn start_turnserver(port: u16) -> Turnserver {
    let dir = std::env::temp_dir().join(format!("tinyrtc-coturn-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let child = Command::new("turnserver")
        .args(["-n", "-L", "127.0.0.1", "-E", "127.0.0.1", "-p", &port.to_string()])
        .args(["--lt-cred-mech", "-u", "test:secret", "-r", "test.local"])
        .args(["--no-tls", "--no-dtls", "--no-cli", "--allow-loopback-peers", "--fingerprint"])
        .args(["--min-port", "49200", "--max-port", "49300"])
        .arg("--userdb")
        .arg(dir.join("turndb"))
        .arg("--pidfile")
        .arg(dir.join("turn.pid"))
        .arg("--log-file")
        .arg(dir.join("turn.log"))
        .args(["--simple-log", "--no-stdout-log"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn turnserver");
    Turnserver { child, dir }
}

/// Run one Binding transaction over a real socket, driving the sans-IO
/// client with the wall clock.
fn binding(socket: &UdpSocket, server: SocketAddr, seed: u64) -> BindingEvent {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let cfg = RetransmitConfig { rto: Duration::from_millis(100), rc: 7, rm: 16 };
    let mut client: StunBindingClient = BindingClient::new(cfg, &mut rng);
    let origin = StdInstant::now();
    let now = || Instant::from_micros(origin.elapsed().as_micros() as u64);
    client.start(now(), Some(socket.local_addr().unwrap()), server).unwrap();
    let mut buf = [0u8; 1500];
    loop {
        while let Some(t) = client.poll_transmit(now(), &mut buf) {
            socket.send_to(&buf[..t.len], t.destination).unwrap();
        }
        if let Some(ev) = client.poll_event() {
            return ev;
        }
        let deadline = client.poll_timeout().expect("a transaction is in progress");
        let wait = deadline.saturating_duration_since(now()).as_micros().max(1000);
        socket.set_read_timeout(Some(StdDuration::from_micros(wait))).unwrap();
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                if let Err(e) = client.handle_receive(now(), from, &buf[..n]) {
                    eprintln!("ignored datagram from {from}: {e}");
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => panic!("recv: {e}"),
        }
        client.handle_timeout(now());
    }
}

#[test]
fn binding_against_coturn() {
    if !turnserver_available() {
        if std::env::var_os("CI").is_some() {
            panic!("turnserver (coturn) is not installed; scripts/setup.sh installs it");
        }
        println!("SKIP: turnserver (coturn) not installed");
        return;
    }
    let port = free_udp_port();
    let server: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let turn = start_turnserver(port);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let local = socket.local_addr().unwrap();

    // coturn takes a moment to listen: the retransmissions cover that, and
    // a timed-out transaction is retried a few times.
    let mut result = None;
    for attempt in 0..5 {
        match binding(&socket, server, attempt) {
            BindingEvent::Success { reflexive, server: from, source, .. } => {
                result = Some((reflexive, from, source));
                break;
            }
            other => eprintln!("attempt {attempt}: {other:?}"),
        }
    }
    let log = std::fs::read_to_string(turn.dir.join("turn.log")).unwrap_or_default();
    let (reflexive, from, source) = result.unwrap_or_else(|| panic!("no Binding success from coturn; its log:\n{log}"));
    assert_eq!(reflexive, local, "coturn saw us at {reflexive}, socket is {local}");
    assert_eq!(from, server);
    assert_eq!(source, Some(local));

    // A second socket gets its own, different mapping.
    let socket2 = UdpSocket::bind("127.0.0.1:0").unwrap();
    match binding(&socket2, server, 99) {
        BindingEvent::Success { reflexive, .. } => assert_eq!(reflexive, socket2.local_addr().unwrap()),
        other => panic!("second binding failed: {other:?}"),
    }
    drop(turn);
}
