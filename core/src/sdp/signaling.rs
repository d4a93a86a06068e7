//! Heap-free JSON for the signaling messages browsers exchange
//! (RTCSessionDescriptionInit and RTCIceCandidateInit, as produced by
//! `JSON.stringify(pc.localDescription)` / `candidate.toJSON()`):
//!
//! ```text
//! {"type":"offer","sdp":"v=0\r\n..."}          {"type":"answer","sdp":"..."}
//! {"candidate":"candidate:...","sdpMid":"0","sdpMLineIndex":0}
//! {"candidate":null} / null / {"candidate":""}   end of candidates
//! ```
//!
//! Writing escapes per RFC 8259 section 7. Parsing accepts any key order and
//! whitespace, skips unknown keys (including nested objects/arrays, up to
//! [`MAX_JSON_DEPTH`]), and unescapes string values into a caller scratch
//! buffer. It never panics and never recurses.

use core::fmt::Write as _;

use super::wire::BufWriter;
use super::BufferTooSmall;

/// Deepest nesting of skipped values accepted (a counter, not recursion).
pub const MAX_JSON_DEPTH: usize = 16;

/// Why a signaling message could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum JsonError {
    /// Not valid JSON at this byte offset.
    Syntax(usize),
    /// Nesting deeper than [`MAX_JSON_DEPTH`].
    TooDeep,
    /// The scratch buffer cannot hold the unescaped strings.
    BufferTooSmall,
    /// A description without `sdp`, or an object that is neither a
    /// description nor a candidate.
    MissingField,
    /// `type` is not `offer`, `answer`, `pranswer` or `rollback`.
    UnknownType,
}

/// `RTCSdpType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SdpType {
    Offer,
    Answer,
    Pranswer,
    Rollback,
}

impl SdpType {
    pub fn name(self) -> &'static str {
        match self {
            SdpType::Offer => "offer",
            SdpType::Answer => "answer",
            SdpType::Pranswer => "pranswer",
            SdpType::Rollback => "rollback",
        }
    }
}

/// A parsed signaling message; strings borrow the scratch buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Signal<'a> {
    Description {
        kind: SdpType,
        sdp: &'a str,
    },
    Candidate {
        /// `candidate:...` (parse with [`super::Candidate::parse`]).
        candidate: &'a str,
        sdp_mid: Option<&'a str>,
        sdp_mline_index: Option<u16>,
        username_fragment: Option<&'a str>,
    },
    /// The remote finished gathering (null or empty candidate).
    EndOfCandidates,
}

/// Write `{"type":"<kind>","sdp":"<escaped sdp>"}` into `out`.
pub fn write_description(kind: SdpType, sdp: &str, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let mut w = BufWriter::new(out);
    w.push_bytes(b"{\"type\":\"")?;
    w.push_bytes(kind.name().as_bytes())?;
    w.push_bytes(b"\",\"sdp\":")?;
    write_string(&mut w, sdp)?;
    w.push_bytes(b"}")?;
    Ok(w.len())
}

/// Write `{"candidate":"<candidate>","sdpMid":"<mid>","sdpMLineIndex":<i>}`,
/// or `{"candidate":null}` for end of candidates when `candidate` is `None`.
pub fn write_candidate(
    candidate: Option<&str>,
    sdp_mid: Option<&str>,
    sdp_mline_index: Option<u16>,
    out: &mut [u8],
) -> Result<usize, BufferTooSmall> {
    let mut w = BufWriter::new(out);
    w.push_bytes(b"{\"candidate\":")?;
    match candidate {
        Some(c) => write_string(&mut w, c)?,
        None => w.push_bytes(b"null")?,
    }
    if let Some(mid) = sdp_mid {
        w.push_bytes(b",\"sdpMid\":")?;
        write_string(&mut w, mid)?;
    }
    if let Some(i) = sdp_mline_index {
        write!(w, ",\"sdpMLineIndex\":{i}").map_err(|_| BufferTooSmall)?;
    }
    w.push_bytes(b"}")?;
    Ok(w.len())
}

/// Write a JSON string literal (quotes included).
fn write_string(w: &mut BufWriter<'_>, s: &str) -> Result<(), BufferTooSmall> {
    w.push_bytes(b"\"")?;
    let mut start = 0;
    let bytes = s.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let esc: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        w.push_bytes(&bytes[start..i])?;
        match esc {
            Some(e) => w.push_bytes(e)?,
            None => write!(w, "\\u{b:04x}").map_err(|_| BufferTooSmall)?,
        }
        start = i + 1;
    }
    w.push_bytes(&bytes[start..])?;
    w.push_bytes(b"\"")
}

struct Cursor<'j> {
    b: &'j [u8],
    pos: usize,
}

impl<'j> Cursor<'j> {
    fn ws(&mut self) {
        while matches!(self.b.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }
    fn err(&self) -> JsonError {
        JsonError::Syntax(self.pos)
    }
    fn expect(&mut self, c: u8) -> Result<(), JsonError> {
        self.ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err())
        }
    }
    fn literal(&mut self, word: &[u8]) -> Result<(), JsonError> {
        let end = self.pos.checked_add(word.len()).ok_or(self.err())?;
        if self.b.get(self.pos..end) == Some(word) {
            self.pos = end;
            Ok(())
        } else {
            Err(self.err())
        }
    }
    /// The raw bytes of a string literal (between the quotes, escapes
    /// untouched); the cursor must be on the opening quote.
    fn raw_string(&mut self) -> Result<&'j [u8], JsonError> {
        self.expect(b'"')?;
        let start = self.pos;
        loop {
            match self.peek() {
                None => return Err(self.err()),
                Some(b'"') => break,
                Some(b'\\') => self.pos += 2,
                Some(0..=0x1f) => return Err(self.err()),
                Some(_) => self.pos += 1,
            }
        }
        let b: &'j [u8] = self.b;
        let raw = b.get(start..self.pos).ok_or(self.err())?;
        self.pos += 1;
        Ok(raw)
    }
    fn number(&mut self) -> Result<Option<u64>, JsonError> {
        let start = self.pos;
        while matches!(self.peek(), Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.err());
        }
        let s = core::str::from_utf8(&self.b[start..self.pos]).map_err(|_| JsonError::Syntax(start))?;
        Ok(s.parse().ok())
    }
    /// Skip any value without recursion.
    fn skip_value(&mut self) -> Result<(), JsonError> {
        self.ws();
        match self.peek() {
            Some(b'"') => self.raw_string().map(|_| ()),
            Some(b'{' | b'[') => {
                let mut depth = 0usize;
                loop {
                    self.ws();
                    match self.peek() {
                        Some(b'{' | b'[') => {
                            depth += 1;
                            if depth > MAX_JSON_DEPTH {
                                return Err(JsonError::TooDeep);
                            }
                            self.pos += 1;
                        }
                        Some(b'}' | b']') => {
                            depth = depth.saturating_sub(1);
                            self.pos += 1;
                            if depth == 0 {
                                return Ok(());
                            }
                        }
                        Some(b'"') => {
                            self.raw_string()?;
                        }
                        Some(b',' | b':') => self.pos += 1,
                        Some(b't') => self.literal(b"true")?,
                        Some(b'f') => self.literal(b"false")?,
                        Some(b'n') => self.literal(b"null")?,
                        Some(_) => {
                            self.number()?;
                        }
                        None => return Err(self.err()),
                    }
                }
            }
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            _ => self.number().map(|_| ()),
        }
    }
}

/// Unescape a raw JSON string into `out[*used..]`; returns the range.
fn unescape(raw: &[u8], out: &mut [u8], used: &mut usize) -> Result<(usize, usize), JsonError> {
    let start = *used;
    let mut put = |bytes: &[u8], used: &mut usize| -> Result<(), JsonError> {
        let end = used.checked_add(bytes.len()).ok_or(JsonError::BufferTooSmall)?;
        out.get_mut(*used..end).ok_or(JsonError::BufferTooSmall)?.copy_from_slice(bytes);
        *used = end;
        Ok(())
    };
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' {
            put(&[b], used)?;
            i += 1;
            continue;
        }
        let e = raw.get(i + 1).copied().ok_or(JsonError::Syntax(i))?;
        i += 2;
        let simple = match e {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let hex4 = |at: usize| -> Result<u32, JsonError> {
                    let h = raw.get(at..at + 4).ok_or(JsonError::Syntax(at))?;
                    let s = core::str::from_utf8(h).map_err(|_| JsonError::Syntax(at))?;
                    u32::from_str_radix(s, 16).map_err(|_| JsonError::Syntax(at))
                };
                let mut cp = hex4(i)?;
                i += 4;
                if (0xd800..0xdc00).contains(&cp) {
                    // A high surrogate must be followed by \uDC00-\uDFFF.
                    if raw.get(i..i + 2) != Some(b"\\u") {
                        return Err(JsonError::Syntax(i));
                    }
                    let lo = hex4(i + 2)?;
                    if !(0xdc00..0xe000).contains(&lo) {
                        return Err(JsonError::Syntax(i));
                    }
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    i += 6;
                }
                let ch = char::from_u32(cp).ok_or(JsonError::Syntax(i))?;
                let mut tmp = [0u8; 4];
                put(ch.encode_utf8(&mut tmp).as_bytes(), used)?;
                continue;
            }
            _ => return Err(JsonError::Syntax(i)),
        };
        put(&[simple], used)?;
    }
    Ok((start, *used))
}

/// Parse one signaling message; unescaped strings are stored in `scratch`
/// (an SDP needs about its own length).
pub fn parse<'s>(json: &str, scratch: &'s mut [u8]) -> Result<Signal<'s>, JsonError> {
    let mut c = Cursor { b: json.as_bytes(), pos: 0 };
    c.ws();
    if c.peek() == Some(b'n') {
        c.literal(b"null")?;
        c.ws();
        return if c.peek().is_none() { Ok(Signal::EndOfCandidates) } else { Err(c.err()) };
    }
    c.expect(b'{')?;
    let mut used = 0usize;
    type Range = Option<(usize, usize)>;
    let (mut ty, mut sdp, mut cand, mut mid, mut ufrag): (Range, Range, Range, Range, Range) =
        (None, None, None, None, None);
    let mut has_candidate_key = false;
    let mut mline: Option<u16> = None;
    c.ws();
    if c.peek() == Some(b'}') {
        c.pos += 1;
    } else {
        loop {
            c.ws();
            let key = c.raw_string()?;
            c.expect(b':')?;
            c.ws();
            let slot = match key {
                b"type" => Some(&mut ty),
                b"sdp" => Some(&mut sdp),
                b"candidate" => {
                    has_candidate_key = true;
                    Some(&mut cand)
                }
                b"sdpMid" => Some(&mut mid),
                b"usernameFragment" => Some(&mut ufrag),
                _ => None,
            };
            match (slot, c.peek()) {
                (Some(slot), Some(b'"')) => {
                    let raw = c.raw_string()?;
                    *slot = Some(unescape(raw, scratch, &mut used)?);
                }
                _ if key == b"sdpMLineIndex" && matches!(c.peek(), Some(b'0'..=b'9')) => {
                    mline = c.number()?.and_then(|n| u16::try_from(n).ok());
                }
                _ => c.skip_value()?,
            }
            c.ws();
            match c.peek() {
                Some(b',') => c.pos += 1,
                Some(b'}') => {
                    c.pos += 1;
                    break;
                }
                _ => return Err(c.err()),
            }
        }
    }
    c.ws();
    if c.peek().is_some() {
        return Err(c.err());
    }
    let scratch: &'s [u8] = scratch;
    let get = |r: Range| -> Result<Option<&'s str>, JsonError> {
        match r {
            None => Ok(None),
            Some((a, b)) => {
                let bytes = scratch.get(a..b).ok_or(JsonError::BufferTooSmall)?;
                core::str::from_utf8(bytes).map(Some).map_err(|_| JsonError::Syntax(0))
            }
        }
    };
    if let Some(t) = get(ty)? {
        let kind = match t {
            "offer" => SdpType::Offer,
            "answer" => SdpType::Answer,
            "pranswer" => SdpType::Pranswer,
            "rollback" => SdpType::Rollback,
            "candidate" if has_candidate_key => return candidate(get(cand)?, get(mid)?, mline, get(ufrag)?),
            _ => return Err(JsonError::UnknownType),
        };
        let sdp = match (get(sdp)?, kind) {
            (Some(s), _) => s,
            (None, SdpType::Rollback) => "",
            (None, _) => return Err(JsonError::MissingField),
        };
        return Ok(Signal::Description { kind, sdp });
    }
    if has_candidate_key {
        return candidate(get(cand)?, get(mid)?, mline, get(ufrag)?);
    }
    Err(JsonError::MissingField)
}

fn candidate<'s>(
    cand: Option<&'s str>,
    sdp_mid: Option<&'s str>,
    sdp_mline_index: Option<u16>,
    username_fragment: Option<&'s str>,
) -> Result<Signal<'s>, JsonError> {
    match cand {
        None | Some("") => Ok(Signal::EndOfCandidates),
        Some(candidate) => Ok(Signal::Candidate { candidate, sdp_mid, sdp_mline_index, username_fragment }),
    }
}
