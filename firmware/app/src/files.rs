//! File transfer: a stored clip sent over the reliable "files" data channel
//! on request.
//!
//! Protocol (text requests, binary data): the viewer sends the string
//! `GET clip`; the device answers with the clip as binary messages of at
//! most [`CHUNK_LEN`] bytes, in order, then one string message
//! `{"done":true,"size":N,"sha256":"<hex>"}` so the viewer can check what it
//! got. An unknown request gets `{"error":"..."}`. The channel is reliable
//! and ordered (RFC 8831 default), so no sequence numbers are needed.

use core::fmt::Write as _;

use tinyrtc::bytes::BufferTooSmall;
use tinyrtc::crypto::sha256;

/// Largest binary message sent (16 KiB: what every browser accepts without
/// the EOR-interleaving extension, RFC 8831 section 6.6).
pub const CHUNK_LEN: usize = 16 * 1024;

/// Longest end or error message written (buffer sizing).
pub const MAX_CONTROL_LEN: usize = 128;

/// The request a viewer sends to get the clip.
pub const REQUEST_CLIP: &str = "GET clip";

/// A stored file and its digest (computed once).
#[derive(Debug, Clone, Copy)]
pub struct StoredFile<'a> {
    pub data: &'a [u8],
    pub sha256: [u8; 32],
}

impl<'a> StoredFile<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        StoredFile { data, sha256: sha256(&[data]) }
    }
}

/// One message of a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileMessage<'a> {
    /// Binary data (send as a binary message).
    Chunk(&'a [u8]),
    /// The closing JSON text (send as a string message); `len` bytes were
    /// written into the caller's buffer.
    Text { len: usize },
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRequest {
    Clip,
    Unknown,
}

impl FileRequest {
    pub fn parse(msg: &[u8]) -> FileRequest {
        if msg.trim_ascii() == REQUEST_CLIP.as_bytes() {
            FileRequest::Clip
        } else {
            FileRequest::Unknown
        }
    }
}

/// Write the error answer to an unknown request.
pub fn write_error(out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let msg = b"{\"error\":\"unknown request; send GET clip\"}";
    out.get_mut(..msg.len()).ok_or(BufferTooSmall)?.copy_from_slice(msg);
    Ok(msg.len())
}

/// The state of one transfer of a [`StoredFile`].
#[derive(Debug, Clone, Copy)]
pub struct FileTransfer<'a> {
    file: StoredFile<'a>,
    offset: usize,
    done: bool,
}

impl<'a> FileTransfer<'a> {
    pub fn new(file: StoredFile<'a>) -> Self {
        FileTransfer { file, offset: 0, done: false }
    }

    /// Bytes of data handed out so far.
    pub fn sent(&self) -> usize {
        self.offset
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The next message to send, or `None` when finished. The end message
    /// is written into `text_buf` (at least [`MAX_CONTROL_LEN`] bytes).
    pub fn next_message(&mut self, text_buf: &mut [u8]) -> Option<Result<FileMessage<'a>, BufferTooSmall>> {
        if self.done {
            return None;
        }
        let data = self.file.data;
        if self.offset < data.len() {
            let end = data.len().min(self.offset + CHUNK_LEN);
            let chunk = data.get(self.offset..end)?;
            self.offset = end;
            return Some(Ok(FileMessage::Chunk(chunk)));
        }
        Some(write_end(&self.file, text_buf).map(|len| {
            self.done = true;
            FileMessage::Text { len }
        }))
    }

    /// Step back: the message just returned by [`Self::next_message`]
    /// could not be sent (the channel's buffer is full); it is handed out
    /// again next time.
    pub fn unsend(&mut self, msg: &FileMessage<'_>) {
        match msg {
            FileMessage::Chunk(c) => self.offset = self.offset.saturating_sub(c.len()),
            FileMessage::Text { .. } => self.done = false,
        }
    }
}

struct SliceWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl core::fmt::Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(core::fmt::Error)?;
        self.buf.get_mut(self.len..end).ok_or(core::fmt::Error)?.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

fn write_end(file: &StoredFile<'_>, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let mut w = SliceWriter { buf: out, len: 0 };
    let mut r = write!(w, "{{\"done\":true,\"size\":{},\"sha256\":\"", file.data.len());
    for b in file.sha256 {
        r = r.and_then(|_| write!(w, "{b:02x}"));
    }
    r.and_then(|_| w.write_str("\"}")).map_err(|_| BufferTooSmall)?;
    Ok(w.len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_then_end_message() {
        let data: [u8; 40000] = core::array::from_fn(|i| (i * 7) as u8);
        let file = StoredFile::new(&data);
        let mut t = FileTransfer::new(file);
        let mut buf = [0u8; MAX_CONTROL_LEN];
        let mut got = [0u8; 40000];
        let mut off = 0;
        let mut chunks = 0;
        let end = loop {
            match t.next_message(&mut buf).unwrap().unwrap() {
                FileMessage::Chunk(c) => {
                    assert!(c.len() <= CHUNK_LEN);
                    got[off..off + c.len()].copy_from_slice(c);
                    off += c.len();
                    chunks += 1;
                }
                FileMessage::Text { len } => break core::str::from_utf8(&buf[..len]).unwrap().to_owned_fixed(),
            }
        };
        assert_eq!(chunks, 3);
        assert_eq!(off, data.len());
        assert_eq!(&got[..], &data[..]);
        assert!(t.next_message(&mut buf).is_none());
        assert!(t.is_done());
        // The digest in the end message is SHA-256 of the data (hex).
        let digest = sha256(&[&data]);
        let mut hex = heapless::String::<64>::new();
        for b in digest {
            write!(hex, "{b:02x}").unwrap();
        }
        let want = heapless::String::<128>::try_from("{\"done\":true,\"size\":40000,\"sha256\":\"").unwrap();
        assert!(end.starts_with(want.as_str()), "{end}");
        assert!(end.ends_with("\"}"));
        assert!(end.contains(hex.as_str()));
    }

    #[test]
    fn unsend_repeats_the_message() {
        let data = [1u8; CHUNK_LEN + 5];
        let mut t = FileTransfer::new(StoredFile::new(&data));
        let mut buf = [0u8; MAX_CONTROL_LEN];
        let m = t.next_message(&mut buf).unwrap().unwrap();
        t.unsend(&m);
        assert_eq!(t.sent(), 0);
        assert_eq!(t.next_message(&mut buf).unwrap().unwrap(), m);
        assert_eq!(t.next_message(&mut buf).unwrap().unwrap(), FileMessage::Chunk(&data[CHUNK_LEN..]));
        let end = t.next_message(&mut buf).unwrap().unwrap();
        t.unsend(&end);
        assert!(!t.is_done());
        assert_eq!(t.next_message(&mut buf).unwrap().unwrap(), end);
        // Too small a text buffer is an error, not a panic, and is retried.
        let mut t = FileTransfer::new(StoredFile::new(&[]));
        assert_eq!(t.next_message(&mut buf[..10]), Some(Err(BufferTooSmall)));
        assert!(matches!(t.next_message(&mut buf), Some(Ok(FileMessage::Text { .. }))));
    }

    #[test]
    fn requests() {
        assert_eq!(FileRequest::parse(b"GET clip"), FileRequest::Clip);
        assert_eq!(FileRequest::parse(b"GET clip\n"), FileRequest::Clip);
        assert_eq!(FileRequest::parse(b"GET /etc/passwd"), FileRequest::Unknown);
        assert_eq!(FileRequest::parse(&[0xff, 0]), FileRequest::Unknown);
        let mut buf = [0u8; MAX_CONTROL_LEN];
        let n = write_error(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"{\"error\""));
    }

    trait ToOwnedFixed {
        fn to_owned_fixed(&self) -> heapless::String<128>;
    }
    impl ToOwnedFixed for str {
        fn to_owned_fixed(&self) -> heapless::String<128> {
            heapless::String::try_from(self).unwrap()
        }
    }
}
