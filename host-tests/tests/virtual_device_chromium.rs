//! The virtual device (`firmware/host`, run in-process) judged by headless
//! Chromium loading its viewer page on 127.0.0.1, as a user would:
//!
//! - two viewers at once decode the camera's video (getStats framesDecoded)
//!   and receive sensor readings;
//!   a third, past `MAX_VIEWERS`, is refused with HTTP 503 and the page
//!   shows why;
//! - sensor readings arrive and are drawn, and the clip downloads over the
//!   "files" data channel with the right bytes; a screenshot of the page is
//!   saved (`$CARGO_TARGET_DIR/virtual-device.png`; with
//!   `UPDATE_SCREENSHOT=1` also `docs/virtual-device.png`, the README's);
//! - WHIP: the device publishes to a WHIP endpoint (written here) whose
//!   receiving side is Chromium.
//!
//! Missing chromium/node/playwright: SKIP, or a failure when `CI` is set.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use host_tests::channels::hex;
use host_tests::chromium::{self, json, stats_of, Chromium, Value};
use virtual_device::http::{self, Response};
use virtual_device::{whip, Options, VirtualDevice, CLIP};

fn start_device() -> VirtualDevice {
    let opts = Options { http_port: 0, stats_every: None, ..Options::default() };
    let dev = VirtualDevice::start(&opts).expect("start the virtual device");
    let d = dev.clone();
    std::thread::spawn(move || d.run(&opts));
    dev
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// Run host-tests/js/viewer.mjs with `opts`; returns its per-page reports.
fn open_pages(test: &str, opts: Value) -> Option<Vec<Value>> {
    if !chromium::peer_available(test, chromium::missing()) {
        return None;
    }
    let out = Command::new("node")
        .arg(chromium::js_dir().join("viewer.mjs"))
        .arg(opts.to_string())
        .current_dir(chromium::js_dir())
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run node viewer.mjs");
    assert!(out.status.success(), "viewer.mjs failed: {}", String::from_utf8_lossy(&out.stdout));
    let report: Value = serde_json::from_slice(&out.stdout).expect("viewer.mjs report");
    eprintln!("{test}: {report}");
    Some(report["pages"].as_array().expect("pages").clone())
}

fn stats(dev: &VirtualDevice) -> Value {
    let r = http::client_request(&dev.http_addr().to_string(), "GET", "/stats", &[], b"").unwrap();
    serde_json::from_slice(&r.body).unwrap()
}

#[test]
fn two_viewers_get_video_third_is_refused() {
    let test = "virtual_device_chromium::two_viewers";
    let dev = start_device();
    let opts = json!({
        "url": format!("http://{}/", dev.http_addr()),
        "pages": 3, "frames": 30, "readings": 2, "timeoutMs": 40000,
    });
    let Some(pages) = open_pages(test, opts) else { return };
    assert_eq!(pages.len(), 3);
    for (i, p) in pages[..2].iter().enumerate() {
        assert_eq!(p["connected"], true, "viewer {i}: {p}");
        let frames = p["framesDecoded"].as_u64().unwrap_or(0);
        assert!(frames >= 30, "viewer {i} decoded {frames} frames: {p}");
        assert!(p["readings"].as_u64().unwrap_or(0) >= 2, "viewer {i} got no readings: {p}");
        assert_eq!(p["error"], Value::Null);
    }
    // The third is refused, clearly, and the page says so.
    let third = &pages[2];
    assert_eq!(third["connected"], false);
    let err = third["error"].as_str().unwrap_or_default();
    assert!(err.starts_with("503: device busy: all 2 viewer slots are in use"), "{third}");
    assert!(third["status"].as_str().unwrap_or_default().starts_with("refused: 503"), "{third}");
    assert_eq!(third["framesDecoded"], 0);
    let s = stats(&dev);
    assert_eq!(s["viewers_refused"], 1, "{s}");
    assert!(s["frames"].as_u64().unwrap() >= 30, "{s}");
    dev.shutdown();
}

#[test]
fn sensor_readings_and_clip_download() {
    let test = "virtual_device_chromium::sensor_and_clip";
    let dev = start_device();
    let shot = target_dir().join("virtual-device.png");
    let _ = std::fs::remove_file(&shot);
    let opts = json!({
        "url": format!("http://{}/", dev.http_addr()),
        "pages": 1, "frames": 30, "readings": 5, "fetchClip": true, "timeoutMs": 40000,
        "screenshot": shot.to_str().unwrap(),
    });
    let Some(pages) = open_pages(test, opts) else { return };
    let p = &pages[0];
    assert!(p["readings"].as_u64().unwrap_or(0) >= 5, "{p}");
    let r = &p["lastReading"];
    let t = r["temperature_c"].as_f64().expect("temperature");
    let h = r["humidity_pct"].as_f64().expect("humidity");
    assert!((15.0..30.0).contains(&t) && (30.0..60.0).contains(&h), "{r}");
    // Rendered in the page.
    assert!(p["latestText"].as_str().unwrap_or_default().contains("°C"), "{p}");
    // The clip arrived whole: Chromium's WebCrypto digest of what it
    // received equals ours of the committed file.
    let clip = &p["clip"];
    assert_eq!(clip["size"].as_u64(), Some(CLIP.len() as u64), "{p}");
    assert_eq!(clip["sha256"].as_str(), Some(hex(&tinyrtc::crypto::sha256(&[CLIP])).as_str()), "{p}");
    assert_eq!(clip["ok"], true);
    assert!(p["clipText"].as_str().unwrap_or_default().contains("verified"));
    let s = stats(&dev);
    assert_eq!(s["viewers"][0]["files_sent"], 1, "{s}");
    assert!(s["viewers"][0]["readings_sent"].as_u64().unwrap() >= 5, "{s}");
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{} bytes", png.len());
    if std::env::var_os("UPDATE_SCREENSHOT").is_some() {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/virtual-device.png");
        std::fs::create_dir_all(docs.parent().unwrap()).unwrap();
        std::fs::copy(&shot, &docs).unwrap();
        eprintln!("{test}: screenshot copied to {}", docs.display());
    }
    dev.shutdown();
}

/// What the test's WHIP endpoint saw.
#[derive(Default)]
struct WhipLog {
    requests: Vec<(String, String, Option<String>, String)>,
}

#[test]
fn whip_publish_to_chromium() {
    let test = "virtual_device_chromium::whip";
    let Some(chromium) = Chromium::launch(test) else { return };
    let chromium = Arc::new(Mutex::new(chromium));
    let log = Arc::new(Mutex::new(WhipLog::default()));
    // A small WHIP endpoint: the offer goes to Chromium, its answer comes back.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}/live/whip", listener.local_addr().unwrap());
    {
        let (chromium, log) = (chromium.clone(), log.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                http::serve_connection(stream, |req| {
                    let body = String::from_utf8_lossy(&req.body).into_owned();
                    let ctype = req.header("Content-Type").map(str::to_string);
                    log.lock().unwrap().requests.push((req.method.clone(), req.path.clone(), ctype, body.clone()));
                    match (req.method.as_str(), req.path.as_str()) {
                        ("POST", "/live/whip") => {
                            let answer = chromium.lock().unwrap().call("answer", json!([body, {"gather": true}]));
                            match answer {
                                Ok(a) => Response::new(201, "application/sdp", a.as_str().unwrap_or_default())
                                    .with_header("Location", "session/1"),
                                Err(e) => Response::error(400, &e),
                            }
                        }
                        ("PATCH", "/live/session/1") => Response::new(204, "text/plain", ""),
                        ("DELETE", "/live/session/1") => Response::new(200, "text/plain", ""),
                        _ => Response::error(404, "no"),
                    }
                });
            }
        });
    }
    let dev = start_device();
    let publisher = whip::Publisher::start(&dev, &endpoint).expect("publish");
    assert_eq!(publisher.resource(), endpoint.replace("/live/whip", "/live/session/1"));
    // Let Chromium decode for a while.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut decoded = 0;
    while Instant::now() < deadline && decoded < 30 {
        std::thread::sleep(Duration::from_millis(500));
        let stats = chromium.lock().unwrap().stats().unwrap();
        decoded = stats_of(&stats, "inbound-rtp")
            .find(|s| s["kind"] == "video")
            .and_then(|s| s["framesDecoded"].as_u64())
            .unwrap_or(0);
    }
    assert!(decoded >= 30, "Chromium decoded {decoded} frames of the published camera");
    publisher.stop(&dev);
    let log = log.lock().unwrap();
    let methods: BTreeMap<&str, usize> = log.requests.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.0.as_str()).or_default() += 1;
        m
    });
    assert_eq!(methods, BTreeMap::from([("DELETE", 1), ("PATCH", 1), ("POST", 1)]), "{:?}", log.requests);
    let post = log.requests.iter().find(|r| r.0 == "POST").unwrap();
    assert_eq!(post.2.as_deref(), Some("application/sdp"));
    assert!(post.3.contains("a=sendonly") && post.3.contains("m=video"), "{}", post.3);
    assert!(!post.3.contains("m=audio"), "video only: {}", post.3);
    let patch = log.requests.iter().find(|r| r.0 == "PATCH").unwrap();
    assert_eq!(patch.2.as_deref(), Some("application/trickle-ice-sdpfrag"));
    assert!(patch.3.contains("a=end-of-candidates"));
    dev.shutdown();
}
