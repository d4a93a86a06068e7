//! The `virtual-device` binary as a user runs it: it prints the URL, serves
//! the page and WHEP, prints stats, and stops cleanly on Ctrl-C (SIGINT).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn get(addr: &str, path: &str) -> String {
    let mut c = TcpStream::connect(addr).unwrap();
    write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn runs_serves_and_stops_on_ctrl_c() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_virtual-device"))
        .args(["--port", "0", "--stats", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = vec![];
    let addr = loop {
        let line = rx.recv_timeout(Duration::from_secs(20)).expect("virtual-device printed no URL");
        lines.push(line.clone());
        if let Some(rest) = line.trim().strip_prefix("open http://") {
            break rest.split('/').next().unwrap().to_string();
        }
    };
    let page = get(&addr, "/");
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert!(page.contains("tinyrtc virtual device"));
    assert!(get(&addr, "/nope").starts_with("HTTP/1.1 404"));
    // Stats lines every second.
    let stats = loop {
        let l = rx.recv_timeout(Duration::from_secs(5)).expect("no stats line");
        if l.starts_with("device:") {
            break l;
        }
    };
    assert!(stats.starts_with("device: 0 viewer(s) of 2"), "{stats}");
    // Ctrl-C.
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let mut rest = vec![];
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(10)) {
        rest.push(l);
    }
    let code = child.wait().unwrap();
    assert!(code.success(), "exit status {code:?}; output {lines:?} {rest:?}");
    assert_eq!(rest.last().map(String::as_str), Some("stopped"), "{rest:?}");
}

#[test]
fn bad_arguments_exit_with_usage() {
    let out = Command::new(env!("CARGO_BIN_EXE_virtual-device")).arg("--port").arg("x").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: virtual-device"));
}
