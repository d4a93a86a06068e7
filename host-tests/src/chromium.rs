//! Headless Chromium as an interop peer.
//!
//! [`Chromium::launch`] starts `host-tests/js/harness.mjs` under node: it
//! serves a blank page (with `page.js`) on 127.0.0.1, opens it in Debian's
//! `/usr/bin/chromium` through npm `playwright-core` (headless, fake camera
//! and microphone, `--allow-loopback-in-peer-connection`), and speaks
//! line-delimited JSON on its stdin/stdout. [`Chromium::call`] runs one of the
//! page helpers (`window.tr.offer`, `answer`, `remoteAnswer`, `addCandidate`,
//! `stats`, `send`, ...) and returns its JSON result; page events (trickled
//! candidates, connection state, data channel messages) queue up for
//! [`Chromium::wait_event`].
//!
//! Chromium also gathers candidates on the machine's other interfaces; tests
//! keep only loopback ones ([`loopback_only`]).
//!
//! Missing chromium/node/playwright: [`Chromium::launch`] returns `None`
//! after printing a SKIP line, or panics when `CI` is set.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use crate::json_child::JsonChild;

pub use serde_json::{json, Value};

/// Where the node scripts live.
pub fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("js")
}

/// The Chromium binary (`CHROMIUM` overrides).
pub fn chromium_path() -> PathBuf {
    std::env::var_os("CHROMIUM").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Why Chromium cannot run here, if it cannot.
pub fn missing() -> Option<String> {
    if !chromium_path().exists() {
        return Some(format!("{} not found", chromium_path().display()));
    }
    if Command::new("node").arg("--version").stdout(Stdio::null()).status().map(|s| !s.success()).unwrap_or(true) {
        return Some("node not found".into());
    }
    if !js_dir().join("node_modules/playwright-core").exists() {
        return Some("host-tests/js/node_modules/playwright-core missing (run ./scripts/setup.sh)".into());
    }
    None
}

/// For interop tests: `true` if the peer can run. If not: panics under
/// `CI`, otherwise prints a SKIP line and returns `false`.
pub fn peer_available(test: &str, why_missing: Option<String>) -> bool {
    match why_missing {
        None => true,
        Some(why) if std::env::var_os("CI").is_some() => panic!("{test}: required peer missing in CI: {why}"),
        Some(why) => {
            eprintln!("SKIP {test}: {why}");
            false
        }
    }
}

/// A running Chromium page driven over the harness protocol.
#[derive(Debug)]
pub struct Chromium {
    proc: JsonChild,
    next_id: u64,
    events: VecDeque<Value>,
    /// The page's URL (http://127.0.0.1:port/).
    pub url: String,
}

/// How long one page call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

impl Chromium {
    /// Start node + Chromium; `None` (after a SKIP line) if unavailable and
    /// `CI` is unset.
    pub fn launch(test: &str) -> Option<Chromium> {
        if !peer_available(test, missing()) {
            return None;
        }
        let mut cmd = Command::new("node");
        cmd.arg(js_dir().join("harness.mjs")).current_dir(js_dir());
        let proc = JsonChild::spawn(cmd, "harness", Duration::from_secs(10));
        let mut c = Chromium { proc, next_id: 1, events: VecDeque::new(), url: String::new() };
        let ready = c.recv_until(Duration::from_secs(60), |v| v.get("ready").is_some());
        match ready {
            Some(v) => c.url = v["url"].as_str().unwrap_or_default().to_string(),
            None => panic!("{test}: Chromium harness did not start"),
        }
        Some(c)
    }

    fn recv_until(&mut self, timeout: Duration, mut pred: impl FnMut(&Value) -> bool) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.proc.rx.recv_timeout(left) {
                Ok(v) if pred(&v) => return Some(v),
                Ok(v) => {
                    if v.get("event").is_some() {
                        self.events.push_back(v);
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Call `window.tr.<name>(...args)` in the page and return its result.
    pub fn call(&mut self, name: &str, args: Value) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        let req = json!({"id": id, "call": name, "args": args});
        self.proc.send(&req)?;
        let reply = self
            .recv_until(CALL_TIMEOUT, |v| v.get("id").and_then(Value::as_u64) == Some(id))
            .ok_or_else(|| format!("{name}: no reply within {CALL_TIMEOUT:?}"))?;
        match reply.get("err") {
            Some(e) => Err(format!("{name}: {}", e.as_str().unwrap_or("error"))),
            None => Ok(reply.get("ok").cloned().unwrap_or(Value::Null)),
        }
    }

    /// Take every queued page event (and any that arrived meanwhile).
    pub fn drain_events(&mut self) -> Vec<Value> {
        while let Ok(v) = self.proc.rx.try_recv() {
            if v.get("event").is_some() {
                self.events.push_back(v);
            }
        }
        self.events.drain(..).collect()
    }

    /// Wait for a page event matching `pred` (earlier non-matching events
    /// stay queued).
    pub fn wait_event(&mut self, timeout: Duration, mut pred: impl FnMut(&Value) -> bool) -> Option<Value> {
        if let Some(i) = self.events.iter().position(&mut pred) {
            return self.events.remove(i);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.proc.rx.recv_timeout(left) {
                Ok(v) if v.get("event").is_some() && pred(&v) => return Some(v),
                Ok(v) => {
                    if v.get("event").is_some() {
                        self.events.push_back(v);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// `pc.getStats()` as a list of stats objects.
    pub fn stats(&mut self) -> Result<Vec<Value>, String> {
        match self.call("stats", json!([]))? {
            Value::Array(a) => Ok(a),
            other => Err(format!("stats: unexpected {other}")),
        }
    }
}

/// Whether a candidate line (`candidate:...` or `a=candidate:...`) is a UDP
/// candidate on 127.0.0.1.
pub fn loopback_only(candidate: &str) -> bool {
    tinyrtc::sdp::Candidate::parse(candidate)
        .ok()
        .filter(|c| c.transport == tinyrtc::sdp::CandidateTransport::Udp)
        .and_then(|c| c.socket_addr())
        .is_some_and(|a| a.ip().is_loopback() && a.is_ipv4())
}

/// Stats objects of one `type` (`inbound-rtp`, `candidate-pair`, ...).
pub fn stats_of<'a>(stats: &'a [Value], ty: &str) -> impl Iterator<Item = &'a Value> + 'a {
    let ty = ty.to_string();
    stats.iter().filter(move |s| s.get("type").and_then(Value::as_str) == Some(ty.as_str()))
}

/// The selected (nominated, succeeded) candidate pair's local and remote
/// candidate stats, if any.
pub fn selected_pair(stats: &[Value]) -> Option<(Value, Value)> {
    let transport = stats_of(stats, "transport").next()?;
    let pair_id = transport.get("selectedCandidatePairId")?.as_str()?;
    let pair = stats.iter().find(|s| s.get("id").and_then(Value::as_str) == Some(pair_id))?;
    let find = |key: &str| {
        let id = pair.get(key)?.as_str()?;
        stats.iter().find(|s| s.get("id").and_then(Value::as_str) == Some(id)).cloned()
    };
    Some((find("localCandidateId")?, find("remoteCandidateId")?))
}
