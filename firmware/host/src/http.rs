//! A small HTTP/1.1 server for signaling on a trusted host: one request per
//! connection (`Connection: close`), bounded header and body sizes, and
//! clear status codes for everything it refuses. It carries the viewer page
//! and the WHEP-shaped endpoints (RFC 9725): nothing here is on the media path.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Largest request head (request line + headers) accepted.
pub const MAX_HEAD: usize = 8 * 1024;
/// Largest request body accepted (an SDP offer is a few KiB).
pub const MAX_BODY: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Response { status, headers: vec![("Content-Type".into(), content_type.into())], body: body.into() }
    }
    /// A plain-text error whose body says what went wrong.
    pub fn error(status: u16, message: &str) -> Self {
        Response::new(status, "text/plain; charset=utf-8", format!("{message}\n"))
    }
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", self.body.len()));
        out.write_all(head.as_bytes())?;
        out.write_all(&self.body)?;
        out.flush()
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Why a request could not be read; each maps to the status sent back.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// Not HTTP/1.x, or a malformed line or header (400).
    Malformed(&'static str),
    /// The head exceeds [`MAX_HEAD`] (431).
    HeadTooLarge,
    /// The body exceeds [`MAX_BODY`] (413).
    BodyTooLarge,
    /// The connection closed or timed out mid-request (no answer is sent).
    Io,
}

impl ReadError {
    pub fn response(&self) -> Option<Response> {
        match self {
            ReadError::Malformed(why) => Some(Response::error(400, why)),
            ReadError::HeadTooLarge => Some(Response::error(431, "request head too large")),
            ReadError::BodyTooLarge => Some(Response::error(413, "request body too large")),
            ReadError::Io => None,
        }
    }
}

/// Parse one request from `input` (head and, per Content-Length, the body).
pub fn read_request(input: &mut impl Read) -> Result<Request, ReadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(ReadError::HeadTooLarge);
        }
        let n = input.read(&mut chunk).map_err(|_| ReadError::Io)?;
        if n == 0 {
            return Err(if buf.is_empty() { ReadError::Io } else { ReadError::Malformed("incomplete request head") });
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    if head_end > MAX_HEAD {
        return Err(ReadError::HeadTooLarge);
    }
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| ReadError::Malformed("request head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (method, path, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(p), Some(v), None) if !m.is_empty() && p.starts_with('/') => (m, p, v),
        _ => return Err(ReadError::Malformed("malformed request line")),
    };
    if !version.starts_with("HTTP/1.") {
        return Err(ReadError::Malformed("only HTTP/1.x is spoken here"));
    }
    let mut headers = Vec::new();
    for line in lines {
        let (k, v) = line.split_once(':').ok_or(ReadError::Malformed("malformed header line"))?;
        if k.is_empty() || k.contains(' ') {
            return Err(ReadError::Malformed("malformed header name"));
        }
        headers.push((k.to_string(), v.trim().to_string()));
    }
    let mut req = Request { method: method.to_string(), path: path.to_string(), headers, body: Vec::new() };
    if req.header("Transfer-Encoding").is_some() {
        return Err(ReadError::Malformed("chunked bodies are not accepted; send Content-Length"));
    }
    let len = match req.header("Content-Length") {
        None => 0,
        Some(v) => v.parse::<usize>().map_err(|_| ReadError::Malformed("bad Content-Length"))?,
    };
    if len > MAX_BODY {
        return Err(ReadError::BodyTooLarge);
    }
    let mut body = buf.split_off(head_end + 4);
    if body.len() > len {
        body.truncate(len);
    }
    while body.len() < len {
        let n = input.read(&mut chunk).map_err(|_| ReadError::Io)?;
        if n == 0 {
            return Err(ReadError::Malformed("body shorter than Content-Length"));
        }
        let take = n.min(len - body.len());
        body.extend_from_slice(&chunk[..take]);
    }
    req.body = body;
    Ok(req)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Serve one connection with `handler`: read, answer, close.
pub fn serve_connection(mut stream: TcpStream, handler: impl FnOnce(Request) -> Response) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let response = match read_request(&mut stream) {
        Ok(req) => handler(req),
        Err(e) => match e.response() {
            Some(r) => r,
            None => return,
        },
    };
    let _ = response.write_to(&mut stream);
}

/// Largest response body a client call reads.
pub const MAX_RESPONSE_BODY: usize = 256 * 1024;

/// A one-shot HTTP/1.1 client request to `addr` (`host:port`), for WHIP.
pub fn client_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    let mut raw = Vec::new();
    (&mut stream).take((MAX_HEAD + MAX_RESPONSE_BODY) as u64).read_to_end(&mut raw)?;
    let head_end = find(&raw, b"\r\n\r\n").ok_or_else(|| bad("incomplete response head"))?;
    let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| bad("response head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = match status_line.split(' ').collect::<Vec<_>>().as_slice() {
        [v, code, ..] if v.starts_with("HTTP/1.") => code.parse::<u16>().map_err(|_| bad("bad status code"))?,
        _ => return Err(bad("malformed status line")),
    };
    let mut resp_headers = Vec::new();
    for line in lines {
        let (k, v) = line.split_once(':').ok_or_else(|| bad("malformed header line"))?;
        resp_headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut body = raw.split_off(head_end + 4);
    let len =
        resp_headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("Content-Length")).map(|(_, v)| v.parse::<usize>());
    match len {
        Some(Ok(n)) if n <= body.len() => body.truncate(n),
        Some(Ok(_)) => return Err(bad("response body shorter than Content-Length")),
        Some(Err(_)) => return Err(bad("bad Content-Length")),
        None => {}
    }
    Ok(Response { status, headers: resp_headers, body })
}

impl Response {
    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> Result<Request, ReadError> {
        read_request(&mut &raw[..])
    }

    #[test]
    fn reads_request_with_body() {
        let r = parse(
            b"POST /whep HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\nextra",
        )
        .unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/whep");
        assert_eq!(r.header("content-type"), Some("application/sdp"));
        assert_eq!(r.body, b"v=0\r\n");
    }

    #[test]
    fn refuses_bad_requests_with_the_right_status() {
        let status = |raw: &[u8]| parse(raw).unwrap_err().response().map(|r| r.status);
        assert_eq!(status(b"GARBAGE\r\n\r\n"), Some(400));
        assert_eq!(status(b"GET / SPDY/3\r\n\r\n"), Some(400));
        assert_eq!(status(b"GET / HTTP/1.1\r\nnocolon\r\n\r\n"), Some(400));
        assert_eq!(status(b"POST / HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n"), Some(413));
        assert_eq!(status(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n"), Some(400));
        assert_eq!(status(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort"), Some(400));
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.extend(std::iter::repeat(b'a').take(MAX_HEAD + 10));
        assert_eq!(status(&big), Some(431));
        assert_eq!(parse(b"").unwrap_err(), ReadError::Io);
    }

    #[test]
    fn writes_response_with_length() {
        let mut out = Vec::new();
        Response::new(201, "application/sdp", "v=0\r\n").with_header("Location", "/whep/1").write_to(&mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("HTTP/1.1 201 Created\r\n"));
        assert!(s.contains("Location: /whep/1\r\n"));
        assert!(s.contains("Content-Length: 5\r\n"));
        assert!(s.ends_with("\r\n\r\nv=0\r\n"));
    }
}
