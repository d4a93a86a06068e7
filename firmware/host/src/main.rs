//! `virtual-device`: run the tinyrtc device application on this machine.
//! `cargo run --release -p virtual-device`, then open the printed URL.
//! With `--whip URL` it also publishes its camera to a WHIP server.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use virtual_device::{say, whip, Options, VirtualDevice};

const USAGE: &str = "\
usage: virtual-device [--port N] [--udp-port N] [--stats SECS] [--whip URL]

  --port N       HTTP port on 127.0.0.1 for the viewer page and WHEP (default 8080; 0 = any)
  --udp-port N   UDP port for media (default 0 = any)
  --stats SECS   print per-viewer stats every SECS seconds (default 5; 0 = never)
  --whip URL     also publish the camera to this WHIP endpoint (http:// only)
";

fn parse_args(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut o = Options::default();
    let mut args = args.peekable();
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--port" => o.http_port = value("--port")?.parse().map_err(|_| "--port: not a port number")?,
            "--udp-port" => o.udp_port = value("--udp-port")?.parse().map_err(|_| "--udp-port: not a port number")?,
            "--stats" => {
                let s: u64 = value("--stats")?.parse().map_err(|_| "--stats: not a number of seconds")?;
                o.stats_every = (s > 0).then(|| Duration::from_secs(s));
            }
            "--whip" => o.whip = Some(value("--whip")?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("virtual-device: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let dev = match VirtualDevice::start(&opts) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("virtual-device: {e}");
            return ExitCode::FAILURE;
        }
    };
    let http: SocketAddr = dev.http_addr();
    say!("tinyrtc virtual device");
    say!("  open http://{http}/ in a browser (viewers: at most {})", device_app::MAX_VIEWERS);
    say!("  WHEP endpoint: http://{http}/whep   media on udp {}", dev.udp_addr());
    let stop = dev.stop_flag();
    if let Err(e) = ctrlc::set_handler(move || stop.store(true, std::sync::atomic::Ordering::SeqCst)) {
        eprintln!("virtual-device: cannot install the Ctrl-C handler: {e}");
    }
    let whip = match &opts.whip {
        Some(url) => match whip::Publisher::start(&dev, url) {
            Ok(p) => {
                say!("  publishing to {url} (resource {})", p.resource());
                Some(p)
            }
            Err(e) => {
                eprintln!("virtual-device: WHIP publish to {url} failed: {e}");
                dev.shutdown();
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    dev.run(&opts);
    if let Some(p) = whip {
        p.stop(&dev);
    }
    dev.shutdown();
    say!("stopped");
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Options, String> {
        parse_args(s.split_whitespace().map(String::from))
    }

    #[test]
    fn arguments() {
        let o = args("").unwrap();
        assert_eq!(o.http_port, 8080);
        assert_eq!(o.stats_every, Some(Duration::from_secs(5)));
        let o = args("--port 0 --udp-port 5000 --stats 0 --whip http://127.0.0.1:1/whip").unwrap();
        assert_eq!((o.http_port, o.udp_port, o.stats_every), (0, 5000, None));
        assert_eq!(o.whip.as_deref(), Some("http://127.0.0.1:1/whip"));
        assert!(args("--port").unwrap_err().contains("needs a value"));
        assert!(args("--port x").unwrap_err().contains("not a port"));
        assert!(args("--bogus").unwrap_err().contains("unknown argument"));
        assert_eq!(args("--help").unwrap_err(), "");
    }
}
