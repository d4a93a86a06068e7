//! A helper process that speaks line-delimited JSON on stdin/stdout: the
//! Chromium harness (`host-tests/js/harness.mjs`) and the aiortc script
//! (`host-tests/py/aiortc_peer.py`). Lines it prints that are not JSON are
//! echoed to stderr with a tag; dropping the value closes its stdin (the
//! helper's cue to shut down) and kills it if it does not exit in time.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::Value;

#[derive(Debug)]
pub struct JsonChild {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Every JSON value the helper printed, in order.
    pub rx: Receiver<Value>,
    tag: &'static str,
    /// How long a dropped helper may take to exit before it is killed.
    grace: Duration,
}

impl JsonChild {
    /// Start `cmd` with piped stdin/stdout (stderr inherited). Panics if it
    /// cannot be started: callers check the helper is installed first.
    pub fn spawn(mut cmd: Command, tag: &'static str, grace: Duration) -> JsonChild {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {tag}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => {
                        if tx.send(v).is_err() {
                            break;
                        }
                    }
                    Err(_) => eprintln!("[{tag}] {line}"),
                }
            }
        });
        let stdin = child.stdin.take();
        JsonChild { child, stdin, rx, tag, grace }
    }

    /// Write one JSON line to the helper.
    pub fn send(&mut self, v: &Value) -> Result<(), String> {
        let tag = self.tag;
        let stdin = self.stdin.as_mut().ok_or_else(|| format!("{tag} closed"))?;
        writeln!(stdin, "{v}").map_err(|e| format!("write to {tag}: {e}"))?;
        stdin.flush().map_err(|e| format!("flush {tag}: {e}"))
    }
}

impl Drop for JsonChild {
    fn drop(&mut self) {
        // EOF on stdin: the helper closes its peer connection or browser and exits.
        self.stdin.take();
        let deadline = Instant::now() + self.grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
