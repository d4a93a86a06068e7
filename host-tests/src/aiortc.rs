//! aiortc (PyPI, in `host-tests/.venv`) as an interop peer.
//!
//! [`Aiortc::launch`] starts `host-tests/py/aiortc_peer.py` under the venv's
//! Python and speaks its line-delimited JSON protocol on stdin/stdout (one
//! command, one reply; see the script's doc string). Every reply is awaited
//! with a timeout; dropping the value closes stdin and kills the process if
//! it does not exit promptly.
//!
//! Missing venv/aiortc: [`Aiortc::launch`] returns `None` after a SKIP line,
//! or panics when `CI` is set.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::json_child::JsonChild;

pub use serde_json::{json, Value};

/// The venv Python (`AIORTC_PYTHON` overrides).
pub fn python() -> PathBuf {
    std::env::var_os("AIORTC_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"))
}

/// The driving script.
pub fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("py/aiortc_peer.py")
}

/// Why aiortc cannot run here, if it cannot.
pub fn missing() -> Option<String> {
    let py = python();
    if !py.exists() {
        return Some(format!("{} not found (run ./scripts/setup.sh)", py.display()));
    }
    let ok = Command::new(&py)
        .args(["-c", "import aiortc, aioice, av"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        return Some(format!("{} cannot import aiortc (run ./scripts/setup.sh)", py.display()));
    }
    None
}

/// A running aiortc peer process.
#[derive(Debug)]
pub struct Aiortc {
    proc: JsonChild,
}

impl Aiortc {
    /// Start the script; `None` (after a SKIP line) if aiortc is missing and
    /// `CI` is unset; panics if it is missing and `CI` is set.
    pub fn launch(test: &str) -> Option<Aiortc> {
        if !crate::chromium::peer_available(test, missing()) {
            return None;
        }
        let mut cmd = Command::new(python());
        cmd.arg("-u").arg(script());
        Some(Aiortc { proc: JsonChild::spawn(cmd, "aiortc", Duration::from_secs(5)) })
    }

    /// Send one command (`{"cmd": name, ..args}`) and wait up to `timeout`
    /// for its reply, calling `idle` meanwhile (tests drive their own peer
    /// there: the reply may depend on it).
    pub fn call_with(
        &mut self,
        name: &str,
        args: Value,
        timeout: Duration,
        mut idle: impl FnMut(),
    ) -> Result<Value, String> {
        let mut req = match args {
            Value::Object(m) => m,
            Value::Null => Default::default(),
            other => return Err(format!("{name}: arguments must be an object, not {other}")),
        };
        req.insert("cmd".into(), Value::String(name.into()));
        self.proc.send(&Value::Object(req))?;
        let deadline = Instant::now() + timeout;
        let reply = loop {
            match self.proc.rx.try_recv() {
                Ok(v) => break v,
                Err(mpsc::TryRecvError::Disconnected) => return Err(format!("{name}: aiortc exited")),
                Err(mpsc::TryRecvError::Empty) if Instant::now() >= deadline => {
                    return Err(format!("{name}: no reply within {timeout:?}"))
                }
                Err(mpsc::TryRecvError::Empty) => idle(),
            }
        };
        match reply.get("err") {
            Some(e) => Err(format!("{name}: {}", e.as_str().unwrap_or("error"))),
            None => Ok(reply.get("ok").cloned().unwrap_or(Value::Null)),
        }
    }

    /// A command whose reply needs nothing from us (20 s limit).
    pub fn call(&mut self, name: &str, args: Value) -> Result<Value, String> {
        self.call_with(name, args, Duration::from_secs(20), || std::thread::sleep(Duration::from_millis(2)))
    }
}
