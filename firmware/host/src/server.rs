//! The host side of the device: the UDP socket, the clock, the HTTP/WHEP
//! signaling routes and the stats printer around one `device_app::Device`.

use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use device_app::{AnnexBClip, Device, DeviceError, DeviceEvent, MAX_VIEWERS};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tinyrtc::dtls::DtlsIdentity;
use tinyrtc::time::Instant;

use crate::http::{self, Request, Response};

/// The clip the camera plays and the "files" channel serves (4 s, 320x240,
/// 15 fps H.264 Constrained Baseline, SPS/PPS before each IDR every 15 frames).
pub const CLIP: &[u8] = include_bytes!("../assets/clip.h264");
/// The viewer page served at `/`.
pub const VIEWER_PAGE: &str = include_str!("viewer.html");
/// Frame rate of [`CLIP`].
pub const CLIP_FPS: u32 = 15;
/// Largest SDP answer/offer written.
pub const MAX_SDP: usize = 8 * 1024;
/// HTTP connections served at once; more get 503.
pub const MAX_HTTP_CONNECTIONS: usize = 16;
/// Longest sleep of the network loop (so signaling changes are picked up).
const MAX_SLEEP: Duration = Duration::from_millis(20);

pub type AppDevice = Device<'static, AnnexBClip<'static>>;

/// Command-line options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub http_port: u16,
    pub udp_port: u16,
    pub stats_every: Option<Duration>,
    pub whip: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options { http_port: 8080, udp_port: 0, stats_every: Some(Duration::from_secs(5)), whip: None }
    }
}

pub struct Core {
    pub device: Box<AppDevice>,
    pub rng: StdRng,
}

/// Everything the network loop and the HTTP handlers share.
pub struct Shared {
    core: Mutex<Core>,
    socket: UdpSocket,
    epoch: std::time::Instant,
    stop: Arc<AtomicBool>,
    http_connections: AtomicUsize,
    loopback_only: bool,
}

impl Shared {
    pub fn new(udp_port: u16) -> io::Result<Shared> {
        let socket = UdpSocket::bind(("127.0.0.1", udp_port))?;
        let mut rng = StdRng::from_entropy();
        let identity = DtlsIdentity::generate(&mut rng);
        let mut device =
            Box::new(Device::new(identity, AnnexBClip::new(CLIP, CLIP_FPS), CLIP, rand::Rng::gen(&mut rng)));
        device.add_local_address(socket.local_addr()?).map_err(|e| io::Error::other(format!("{e:?}")))?;
        let loopback_only = socket.local_addr()?.ip().is_loopback();
        Ok(Shared {
            core: Mutex::new(Core { device, rng }),
            socket,
            epoch: std::time::Instant::now(),
            stop: Arc::new(AtomicBool::new(false)),
            http_connections: AtomicUsize::new(0),
            loopback_only,
        })
    }

    pub fn now(&self) -> Instant {
        Instant::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `f` on the device, then send what it queued.
    pub fn with_device<T>(&self, f: impl FnOnce(&mut AppDevice, Instant, &mut StdRng) -> T) -> T {
        let now = self.now();
        let mut core = self.lock();
        let Core { device, rng } = &mut *core;
        let r = f(device, now, rng);
        self.flush(device, now);
        r
    }

    fn flush(&self, device: &mut AppDevice, now: Instant) {
        let mut buf = [0u8; 1500];
        while let Some(t) = device.poll_transmit(now, &mut buf) {
            let _ = self.socket.send_to(&buf[..t.len], t.destination);
        }
        while let Some(e) = device.poll_event() {
            match e {
                DeviceEvent::ViewerConnected { id, remote } => say!("viewer {id}: connected from {remote}"),
                DeviceEvent::ViewerLeft { id, reason } => say!("viewer {id}: left ({reason:?})"),
                DeviceEvent::Reading(_) => {}
            }
        }
    }

    /// One turn of the network loop: wait for a datagram or the next
    /// deadline (at most [`MAX_SLEEP`]), then feed the device.
    pub fn turn(&self) {
        let now = self.now();
        let wait = self
            .lock()
            .device
            .poll_timeout()
            .map(|t| Duration::from_micros(t.as_micros().saturating_sub(now.as_micros())))
            .unwrap_or(MAX_SLEEP)
            .clamp(Duration::from_millis(1), MAX_SLEEP);
        let _ = self.socket.set_read_timeout(Some(wait));
        let mut buf = [0u8; 2048];
        let received = self.socket.recv_from(&mut buf);
        let now = self.now();
        let mut core = self.lock();
        let device = &mut core.device;
        if let Ok((n, from)) = received {
            // Bound to loopback: talk to loopback peers only (a browser on
            // this machine also checks from its other interfaces).
            if from.ip().is_loopback() || !self.loopback_only {
                let _ = device.handle_receive(now, from, &mut buf[..n]);
            }
        }
        if device.poll_timeout().is_some_and(|t| t <= now) {
            device.handle_timeout(now);
        }
        self.flush(device, now);
    }

    /// Per-viewer stats lines.
    pub fn stats_lines(&self) -> Vec<String> {
        let now = self.now();
        let core = self.lock();
        let d = core.device.stats();
        let mut lines = vec![format!(
            "device: {} viewer(s) of {MAX_VIEWERS}, {} frames, {} readings, {} refused, {} stray datagrams, {} channels opened, {} messages received",
            core.device.viewer_count(),
            d.frames,
            d.readings,
            d.viewers_refused,
            d.datagrams_unmatched,
            d.channels_opened,
            d.channel_messages
        )];
        for v in core.device.viewer_stats(now) {
            let p = v.peer;
            let remote = p.selected_remote.map(|a| a.to_string()).unwrap_or_else(|| "-".into());
            lines.push(format!(
                "  viewer {}: {:?} {remote}, {} s, video {} frames / {} packets / {} KB, rtt {:.1} ms, lost {}, nacks {}, plis {}; sensor {} readings; files {} sent ({} KB)",
                v.id,
                p.state,
                v.age.as_secs(),
                p.video.frames_sent,
                p.video.packets_sent,
                p.video.bytes_sent / 1024,
                p.video.rtt_us as f64 / 1000.0,
                p.video.remote_packets_lost,
                p.video.nacks_received,
                p.video.keyframe_requests_received,
                v.readings_sent,
                v.files_sent,
                v.file_bytes_sent / 1024,
            ));
        }
        lines
    }

    /// `GET /stats`: the same numbers as JSON.
    fn stats_json(&self) -> String {
        let now = self.now();
        let core = self.lock();
        let d = core.device.stats();
        let viewers: Vec<String> = core
            .device
            .viewer_stats(now)
            .map(|v| {
                format!(
                    "{{\"id\":{},\"state\":\"{:?}\",\"frames_sent\":{},\"packets_sent\":{},\"readings_sent\":{},\"files_sent\":{}}}",
                    v.id,
                    v.peer.state,
                    v.peer.video.frames_sent,
                    v.peer.video.packets_sent,
                    v.readings_sent,
                    v.files_sent
                )
            })
            .collect();
        format!(
            "{{\"max_viewers\":{MAX_VIEWERS},\"frames\":{},\"readings\":{},\"viewers_refused\":{},\"viewers\":[{}]}}\n",
            d.frames,
            d.readings,
            d.viewers_refused,
            viewers.join(",")
        )
    }
}

fn path_id(rest: &str) -> Option<u32> {
    if rest.is_empty() || rest.len() > 9 || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

fn content_type_is(req: &Request, want: &str) -> bool {
    req.header("Content-Type").and_then(|v| v.split(';').next()).is_some_and(|v| v.trim().eq_ignore_ascii_case(want))
}

fn device_error(e: DeviceError) -> Response {
    match e {
        DeviceError::Full => Response::error(
            503,
            &format!("device busy: all {MAX_VIEWERS} viewer slots are in use; try again when a viewer leaves"),
        )
        .with_header("Retry-After", "5"),
        DeviceError::UnknownViewer => Response::error(404, "no such session"),
        DeviceError::UnsupportedFormat => Response::error(500, "the camera's format cannot be sent"),
        DeviceError::Peer(p) => Response::error(400, &format!("offer refused: {p}")),
        _ => Response::error(500, &format!("{e:?}")),
    }
}

/// Answer one HTTP request.
pub fn route(shared: &Shared, req: Request) -> Response {
    let path = req.path.split('?').next().unwrap_or("");
    match (req.method.as_str(), path) {
        ("GET", "/" | "/index.html") => Response::new(200, "text/html; charset=utf-8", VIEWER_PAGE),
        (_, "/" | "/index.html") => Response::error(405, "use GET").with_header("Allow", "GET"),
        ("GET", "/favicon.ico") => Response::new(204, "text/plain", ""),
        ("GET", "/stats") => Response::new(200, "application/json", shared.stats_json()),
        ("POST", "/whep") => {
            if !content_type_is(&req, "application/sdp") {
                return Response::error(415, "send the offer as Content-Type: application/sdp");
            }
            let Ok(offer) = std::str::from_utf8(&req.body) else {
                return Response::error(400, "offer is not UTF-8");
            };
            let mut answer = vec![0u8; MAX_SDP];
            let r = shared.with_device(|d, now, rng| d.add_viewer(now, offer, &mut answer, rng));
            match r {
                Ok((id, n)) => {
                    answer.truncate(n);
                    say!("viewer {id}: offer accepted");
                    Response::new(201, "application/sdp", answer).with_header("Location", &format!("/whep/{id}"))
                }
                Err(e) => {
                    if e == DeviceError::Full {
                        say!("offer refused: all {MAX_VIEWERS} viewer slots in use");
                    }
                    device_error(e)
                }
            }
        }
        ("OPTIONS", "/whep") => Response::new(204, "text/plain", "")
            .with_header("Allow", "POST, OPTIONS")
            .with_header("Accept-Post", "application/sdp"),
        (_, "/whep") => Response::error(405, "use POST with an SDP offer").with_header("Allow", "POST, OPTIONS"),
        (method, p) if p.starts_with("/whep/") => {
            let Some(id) = path_id(&p["/whep/".len()..]) else { return Response::error(404, "no such session") };
            match method {
                "PATCH" => {
                    if !content_type_is(&req, "application/trickle-ice-sdpfrag") {
                        return Response::error(415, "send candidates as application/trickle-ice-sdpfrag");
                    }
                    let Ok(frag) = std::str::from_utf8(&req.body) else {
                        return Response::error(400, "fragment is not UTF-8");
                    };
                    shared.with_device(|d, _, _| {
                        if !d.has_viewer(id) {
                            return Response::error(404, "no such session");
                        }
                        for line in frag.lines().map(str::trim).filter(|l| l.starts_with("a=candidate:")) {
                            if let Err(e) = d.add_remote_candidate(id, line) {
                                return match e {
                                    DeviceError::Peer(_) => {
                                        Response::error(400, &format!("bad candidate line: {line}"))
                                    }
                                    e => device_error(e),
                                };
                            }
                        }
                        Response::new(204, "text/plain", "")
                    })
                }
                "DELETE" => match shared.with_device(|d, _, _| d.remove_viewer(id)) {
                    Ok(()) => {
                        say!("viewer {id}: hung up");
                        Response::new(200, "text/plain", "")
                    }
                    Err(e) => device_error(e),
                },
                _ => Response::error(405, "use PATCH or DELETE").with_header("Allow", "PATCH, DELETE"),
            }
        }
        (_, p) => Response::error(404, &format!("not found: {p}")),
    }
}

/// The running device: network loop on the caller's thread ([`Self::run`]),
/// HTTP server on its own. Clones share the device.
#[derive(Clone)]
pub struct VirtualDevice {
    shared: Arc<Shared>,
    http_addr: SocketAddr,
}

impl VirtualDevice {
    pub fn start(opts: &Options) -> io::Result<VirtualDevice> {
        let shared = Arc::new(Shared::new(opts.udp_port)?);
        let listener = TcpListener::bind(("127.0.0.1", opts.http_port)).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot listen on 127.0.0.1:{}: {e} (try --port)", opts.http_port))
        })?;
        let http_addr = listener.local_addr()?;
        let s = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                if s.http_connections.fetch_add(1, Ordering::SeqCst) >= MAX_HTTP_CONNECTIONS {
                    s.http_connections.fetch_sub(1, Ordering::SeqCst);
                    let _ = Response::error(503, "too many connections").write_to(&mut &stream);
                    continue;
                }
                let s2 = s.clone();
                std::thread::spawn(move || {
                    http::serve_connection(stream, |req| route(&s2, req));
                    s2.http_connections.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Ok(VirtualDevice { shared, http_addr })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn udp_addr(&self) -> SocketAddr {
        self.shared.socket.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.shared.stop.clone()
    }

    /// Serve until the stop flag is set (Ctrl-C).
    pub fn run(&self, opts: &Options) {
        let mut next_stats = opts.stats_every.map(|d| std::time::Instant::now() + d);
        while !self.shared.stop.load(Ordering::SeqCst) {
            self.shared.turn();
            if let (Some(at), Some(every)) = (next_stats, opts.stats_every) {
                if std::time::Instant::now() >= at {
                    for line in self.shared.stats_lines() {
                        say!("{line}");
                    }
                    next_stats = Some(at + every);
                }
            }
        }
    }

    /// Hang up every viewer (DTLS close_notify goes out) and stop the HTTP server.
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.with_device(|d, _, _| {
            let ids: Vec<u32> = d.viewer_stats(Instant::ZERO).map(|v| v.id).collect();
            for id in ids {
                let _ = d.remove_viewer(id);
            }
        });
        // Wake the accept loop so the HTTP thread sees the flag.
        let _ = std::net::TcpStream::connect_timeout(&self.http_addr, Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = include_str!("../../../host-tests/fixtures/sdp/chromium-offer-av-dc.sdp");

    fn req(method: &str, path: &str, ctype: Option<&str>, body: &str) -> Request {
        let mut headers = vec![];
        if let Some(c) = ctype {
            headers.push(("Content-Type".to_string(), c.to_string()));
        }
        Request { method: method.into(), path: path.into(), headers, body: body.as_bytes().to_vec() }
    }

    fn text(r: &Response) -> String {
        String::from_utf8_lossy(&r.body).into_owned()
    }

    fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        r.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    #[test]
    fn whep_routes_and_errors() {
        let s = Shared::new(0).unwrap();
        let page = route(&s, req("GET", "/", None, ""));
        assert_eq!(page.status, 200);
        assert!(text(&page).contains("window.viewer"));
        assert_eq!(route(&s, req("GET", "/nope", None, "")).status, 404);
        assert_eq!(route(&s, req("POST", "/", None, "")).status, 405);
        let r = route(&s, req("GET", "/whep", None, ""));
        assert_eq!((r.status, header(&r, "Allow")), (405, Some("POST, OPTIONS")));
        assert_eq!(route(&s, req("POST", "/whep", Some("text/plain"), OFFER)).status, 415);
        let bad = route(&s, req("POST", "/whep", Some("application/sdp"), "v=0\r\nm=video x\r\n"));
        assert_eq!(bad.status, 400);
        assert!(text(&bad).starts_with("offer refused"), "{}", text(&bad));
        let bin = Request { body: vec![0xff, 0xfe], ..req("POST", "/whep", Some("application/sdp"), "") };
        assert_eq!(route(&s, bin).status, 400);

        // Two viewers fit, the third is refused with 503 and a message.
        let mut ids = vec![];
        for _ in 0..MAX_VIEWERS {
            let r = route(&s, req("POST", "/whep", Some("application/sdp; charset=utf-8"), OFFER));
            assert_eq!(r.status, 201, "{}", text(&r));
            assert_eq!(header(&r, "Content-Type"), Some("application/sdp"));
            assert!(text(&r).starts_with("v=0\r\n"));
            ids.push(header(&r, "Location").unwrap().to_string());
        }
        let full = route(&s, req("POST", "/whep", Some("application/sdp"), OFFER));
        assert_eq!(full.status, 503);
        assert!(text(&full).contains("device busy"), "{}", text(&full));
        assert_eq!(header(&full, "Retry-After"), Some("5"));
        let stats = route(&s, req("GET", "/stats", None, ""));
        assert!(text(&stats).contains("\"viewers_refused\":1"), "{}", text(&stats));

        // Trickle.
        let frag = "a=mid:0\r\na=candidate:1 1 udp 2122194687 127.0.0.1 55032 typ host generation 0\r\n";
        let loc = &ids[0];
        assert_eq!(route(&s, req("PATCH", loc, Some("application/trickle-ice-sdpfrag"), frag)).status, 204);
        assert_eq!(route(&s, req("PATCH", loc, Some("application/sdp"), frag)).status, 415);
        let badc = route(&s, req("PATCH", loc, Some("application/trickle-ice-sdpfrag"), "a=candidate:zzz\r\n"));
        assert_eq!(badc.status, 400);
        assert_eq!(route(&s, req("PATCH", "/whep/999", Some("application/trickle-ice-sdpfrag"), frag)).status, 404);
        assert_eq!(route(&s, req("PATCH", "/whep/abc", Some("application/trickle-ice-sdpfrag"), frag)).status, 404);
        assert_eq!(route(&s, req("PUT", loc, None, "")).status, 405);

        // Hang up frees a slot (once the close has gone out).
        assert_eq!(route(&s, req("DELETE", loc, None, "")).status, 200);
        assert_eq!(route(&s, req("DELETE", loc, None, "")).status, 404);
        let again = route(&s, req("POST", "/whep", Some("application/sdp"), OFFER));
        assert_eq!(again.status, 201, "{}", text(&again));
    }

    #[test]
    fn http_server_end_to_end() {
        let opts = Options { http_port: 0, stats_every: None, ..Options::default() };
        let dev = VirtualDevice::start(&opts).unwrap();
        let addr = dev.http_addr().to_string();
        let r = http::client_request(&addr, "GET", "/", &[], b"").unwrap();
        assert_eq!(r.status, 200);
        assert!(String::from_utf8_lossy(&r.body).contains("<video"));
        let r = http::client_request(&addr, "POST", "/whep", &[("Content-Type", "application/sdp")], OFFER.as_bytes())
            .unwrap();
        assert_eq!(r.status, 201);
        // Garbage on the wire gets a 400, not a hang or a crash.
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(&addr).unwrap();
        c.write_all(b"BLAH\r\n\r\n").unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 400"), "{out}");
        dev.shutdown();
    }
}
