//! Base64 (RFC 4648 section 4: standard alphabet, `=` padding) into caller
//! buffers, for handing a 2048-byte connect token over a REST/JSON API
//! (2732 characters). Decoding accepts only canonical padded input.

use crate::bytes::BufferTooSmall;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Base64 of a 2048-byte connect token is this long.
pub const CONNECT_TOKEN_BASE64_LEN: usize = encoded_len(super::wire::CONNECT_TOKEN_BYTES);

/// Length of the encoding of `n` bytes.
pub const fn encoded_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Why a base64 string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Base64Error {
    /// Length not a multiple of 4, a character outside the alphabet, misplaced
    /// padding, or non-zero bits in the last character.
    Invalid,
    /// The output buffer is too small.
    BufferTooSmall,
}

/// Encode `input` into `out`; returns the number of characters written.
pub fn encode(input: &[u8], out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let n = encoded_len(input.len());
    let out = out.get_mut(..n).ok_or(BufferTooSmall)?;
    for (chunk, o) in input.chunks(3).zip(out.chunks_mut(4)) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, c) in o.iter_mut().enumerate() {
            *c = if i <= chunk.len() { ALPHABET[((v >> (18 - 6 * i)) & 63) as usize] } else { b'=' };
        }
    }
    Ok(n)
}

fn value(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    } as u32)
}

/// Decode `input` into `out`; returns the number of bytes written.
pub fn decode(input: &[u8], out: &mut [u8]) -> Result<usize, Base64Error> {
    if input.len() % 4 != 0 {
        return Err(Base64Error::Invalid);
    }
    let groups = input.len() / 4;
    let mut written = 0;
    for (g, q) in input.chunks(4).enumerate() {
        let last = g + 1 == groups;
        let pad = q.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return Err(Base64Error::Invalid);
        }
        let mut v = 0u32;
        for (i, &c) in q.iter().enumerate() {
            let d = if i < 4 - pad { value(c).ok_or(Base64Error::Invalid)? } else { 0 };
            v |= d << (18 - 6 * i);
        }
        let n = 3 - pad;
        // Canonical form: the bits dropped by padding must be zero.
        if (pad == 1 && v & 0xff != 0) || (pad == 2 && v & 0xffff != 0) {
            return Err(Base64Error::Invalid);
        }
        let bytes = [(v >> 16) as u8, (v >> 8) as u8, v as u8];
        let dst = out.get_mut(written..written + n).ok_or(Base64Error::BufferTooSmall)?;
        dst.copy_from_slice(&bytes[..n]);
        written += n;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors() {
        let cases: [(&[u8], &[u8]); 7] = [
            (b"", b""),
            (b"f", b"Zg=="),
            (b"fo", b"Zm8="),
            (b"foo", b"Zm9v"),
            (b"foob", b"Zm9vYg=="),
            (b"fooba", b"Zm9vYmE="),
            (b"foobar", b"Zm9vYmFy"),
        ];
        for (raw, enc) in cases {
            let mut o = [0u8; 16];
            let n = encode(raw, &mut o).unwrap();
            assert_eq!(&o[..n], enc);
            let mut d = [0u8; 16];
            let m = decode(enc, &mut d).unwrap();
            assert_eq!(&d[..m], raw);
        }
    }

    #[test]
    fn rejects_bad_input_and_small_buffers() {
        let mut d = [0u8; 16];
        for bad in [&b"Zg="[..], b"Z===", b"Zh==", b"Zg==Zg==", b"Zm9!", b"=Zm9"] {
            assert_eq!(decode(bad, &mut d), Err(Base64Error::Invalid), "{bad:?}");
        }
        assert_eq!(decode(b"Zm9vYmFy", &mut d[..5]), Err(Base64Error::BufferTooSmall));
        assert_eq!(encode(b"foo", &mut d[..3]), Err(BufferTooSmall));
    }

    #[test]
    fn all_byte_values_round_trip() {
        let mut raw = [0u8; 256];
        for (i, b) in raw.iter_mut().enumerate() {
            *b = i as u8;
        }
        for len in 0..raw.len() {
            let mut e = [0u8; 344];
            let n = encode(&raw[..len], &mut e).unwrap();
            let mut d = [0u8; 256];
            let m = decode(&e[..n], &mut d).unwrap();
            assert_eq!(&d[..m], &raw[..len]);
        }
    }
}
