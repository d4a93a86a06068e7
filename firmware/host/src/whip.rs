//! Publishing the camera to a WHIP server (RFC 9725): POST our send-only
//! video offer, apply the answer, PATCH an end-of-candidates fragment (our
//! host candidates are all in the offer: the device is an ICE-lite agent),
//! DELETE the session resource on exit.
//!
//! Only `http://` URLs (no TLS in this host tool); no bearer token.

use crate::http::{self, Response};
use crate::server::{VirtualDevice, MAX_SDP};

/// A WHIP URL split into what the client needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhipUrl {
    /// `host:port`
    pub authority: String,
    /// `/path?query`
    pub path: String,
}

impl WhipUrl {
    pub fn parse(url: &str) -> Result<WhipUrl, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| format!("only http:// URLs are supported: {url}"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("bad host in {url}"));
        }
        let authority = if authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Ok(WhipUrl { authority, path: path.to_string() })
    }

    /// Resolve a `Location` header: absolute `http://` URL, absolute path,
    /// or a path relative to the endpoint.
    pub fn resolve(&self, location: &str) -> Result<WhipUrl, String> {
        if location.starts_with("http://") {
            return WhipUrl::parse(location);
        }
        if location.starts_with('/') {
            return Ok(WhipUrl { authority: self.authority.clone(), path: location.to_string() });
        }
        let base = self.path.split('?').next().unwrap_or("/");
        let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
        Ok(WhipUrl { authority: self.authority.clone(), path: format!("{dir}{location}") })
    }
}

fn refused(what: &str, r: &Response) -> String {
    format!("{what}: HTTP {} {}", r.status, String::from_utf8_lossy(&r.body).trim())
}

/// A live WHIP session.
#[derive(Debug)]
pub struct Publisher {
    id: u32,
    resource: WhipUrl,
}

impl Publisher {
    pub fn start(dev: &VirtualDevice, url: &str) -> Result<Publisher, String> {
        let endpoint = WhipUrl::parse(url)?;
        let mut offer = vec![0u8; MAX_SDP];
        let (id, n) = dev
            .shared()
            .with_device(|d, now, rng| d.start_publish(now, &mut offer, rng))
            .map_err(|e| format!("cannot make an offer: {e:?}"))?;
        offer.truncate(n);
        let drop_session = || {
            let _ = dev.shared().with_device(|d, _, _| d.remove_viewer(id));
        };
        let r = http::client_request(
            &endpoint.authority,
            "POST",
            &endpoint.path,
            &[("Content-Type", "application/sdp")],
            &offer,
        )
        .map_err(|e| {
            drop_session();
            format!("POST {url}: {e}")
        })?;
        if r.status != 201 {
            drop_session();
            return Err(refused("offer refused", &r));
        }
        let Some(location) = r.header("Location") else {
            drop_session();
            return Err("201 without a Location header".into());
        };
        let resource = endpoint.resolve(location).inspect_err(|_| drop_session())?;
        let answer = String::from_utf8_lossy(&r.body).into_owned();
        if let Err(e) = dev.shared().with_device(|d, now, rng| d.set_publish_answer(now, id, &answer, rng)) {
            let _ = http::client_request(&resource.authority, "DELETE", &resource.path, &[], b"");
            drop_session();
            return Err(format!("answer refused: {e:?}"));
        }
        // Trickle: everything we have was in the offer; say so (servers
        // without trickle answer 405/501, which is fine).
        let frag = b"a=end-of-candidates\r\n";
        match http::client_request(
            &resource.authority,
            "PATCH",
            &resource.path,
            &[("Content-Type", "application/trickle-ice-sdpfrag")],
            frag,
        ) {
            Ok(r) if matches!(r.status, 200 | 204 | 405 | 501) => {}
            Ok(r) => eprintln!("whip: {}", refused("PATCH", &r)),
            Err(e) => eprintln!("whip: PATCH failed: {e}"),
        }
        Ok(Publisher { id, resource })
    }

    /// The session resource (`Location`).
    pub fn resource(&self) -> String {
        format!("http://{}{}", self.resource.authority, self.resource.path)
    }

    /// DELETE the resource and close the session.
    pub fn stop(self, dev: &VirtualDevice) {
        match http::client_request(&self.resource.authority, "DELETE", &self.resource.path, &[], b"") {
            Ok(r) if r.status < 300 => {}
            Ok(r) => eprintln!("whip: {}", refused("DELETE", &r)),
            Err(e) => eprintln!("whip: DELETE failed: {e}"),
        }
        let _ = dev.shared().with_device(|d, _, _| d.remove_viewer(self.id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = WhipUrl::parse("http://127.0.0.1:8889/cam/whip?x=1").unwrap();
        assert_eq!((u.authority.as_str(), u.path.as_str()), ("127.0.0.1:8889", "/cam/whip?x=1"));
        assert_eq!(WhipUrl::parse("http://localhost").unwrap().authority, "localhost:80");
        assert!(WhipUrl::parse("https://x/whip").is_err());
        assert!(WhipUrl::parse("http:///whip").is_err());
        assert_eq!(u.resolve("/res/1").unwrap().path, "/res/1");
        assert_eq!(u.resolve("res/1").unwrap().path, "/cam/res/1");
        assert_eq!(u.resolve("http://10.0.0.1:9/r").unwrap().authority, "10.0.0.1:9");
    }
}
