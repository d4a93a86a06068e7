//! The Data Channel Establishment Protocol messages (RFC 8832 section 5)
//! and the WebRTC payload protocol identifiers (RFC 8831 section 8).
//!
//! DATA_CHANNEL_OPEN and DATA_CHANNEL_ACK travel as SCTP user messages with
//! PPID 50 on the channel's own stream. Priority is parsed and carried but
//! not used for scheduling.

use crate::bytes::{Reader, Writer};

use super::wire::WireError;

/// Payload Protocol Identifiers used by WebRTC data channels.
pub mod ppid {
    /// DCEP control message.
    pub const DCEP: u32 = 50;
    /// UTF-8 string message.
    pub const STRING: u32 = 51;
    /// Binary message.
    pub const BINARY: u32 = 53;
    /// Empty string message (sent as one ignored byte).
    pub const STRING_EMPTY: u32 = 56;
    /// Empty binary message (sent as one ignored byte).
    pub const BINARY_EMPTY: u32 = 57;
}

/// DCEP message type codes.
pub const MSG_OPEN: u8 = 0x03;
pub const MSG_ACK: u8 = 0x02;

/// How a channel delivers messages (the DCEP Channel Type and Reliability
/// Parameter together).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Reliability {
    /// Every message is retransmitted until acknowledged.
    Reliable,
    /// A message is given up after this many retransmissions (RFC 3758).
    MaxRetransmits(u32),
    /// A message is given up when it is older than this many milliseconds.
    MaxLifetimeMs(u32),
}

/// The channel parameters carried in DATA_CHANNEL_OPEN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ChannelType {
    pub ordered: bool,
    pub reliability: Reliability,
}

impl ChannelType {
    /// RFC 8832 section 5.1 channel type byte and reliability parameter.
    pub fn to_wire(self) -> (u8, u32) {
        let (base, param) = match self.reliability {
            Reliability::Reliable => (0x00, 0),
            Reliability::MaxRetransmits(n) => (0x01, n),
            Reliability::MaxLifetimeMs(ms) => (0x02, ms),
        };
        (base | if self.ordered { 0 } else { 0x80 }, param)
    }

    pub fn from_wire(ty: u8, param: u32) -> Option<Self> {
        let reliability = match ty & 0x7f {
            0x00 => Reliability::Reliable,
            0x01 => Reliability::MaxRetransmits(param),
            0x02 => Reliability::MaxLifetimeMs(param),
            _ => return None,
        };
        Some(ChannelType { ordered: ty & 0x80 == 0, reliability })
    }
}

/// A parsed DCEP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DcepMessage<'a> {
    Open { channel_type: ChannelType, priority: u16, label: &'a [u8], protocol: &'a [u8] },
    Ack,
}

impl<'a> DcepMessage<'a> {
    pub fn parse(buf: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(buf);
        match r.u8()? {
            MSG_ACK => Ok(DcepMessage::Ack),
            MSG_OPEN => {
                let ty = r.u8()?;
                let priority = r.u16()?;
                let param = r.u32()?;
                let label_len = r.u16()? as usize;
                let protocol_len = r.u16()? as usize;
                let label = r.take(label_len)?;
                let protocol = r.take(protocol_len)?;
                let channel_type = ChannelType::from_wire(ty, param).ok_or(WireError::BadLength)?;
                Ok(DcepMessage::Open { channel_type, priority, label, protocol })
            }
            _ => Err(WireError::BadLength),
        }
    }

    /// Emit into `buf`; returns the length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let mut w = Writer::new(buf);
        match *self {
            DcepMessage::Ack => w.u8(MSG_ACK)?,
            DcepMessage::Open { channel_type, priority, label, protocol } => {
                let (ty, param) = channel_type.to_wire();
                w.u8(MSG_OPEN)?;
                w.u8(ty)?;
                w.u16(priority)?;
                w.u32(param)?;
                w.u16(u16::try_from(label.len()).map_err(|_| WireError::BadLength)?)?;
                w.u16(u16::try_from(protocol.len()).map_err(|_| WireError::BadLength)?)?;
                w.bytes(label)?;
                w.bytes(protocol)?;
            }
        }
        Ok(w.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_hand_checked_bytes() {
        // RFC 8832 5.1: type 0x03, channel type 0x81 (partial reliable rexmit,
        // unordered), priority 256, reliability 3, label "chat" (4), protocol "" (0).
        let m = DcepMessage::Open {
            channel_type: ChannelType { ordered: false, reliability: Reliability::MaxRetransmits(3) },
            priority: 256,
            label: b"chat",
            protocol: b"",
        };
        let mut buf = [0u8; 32];
        let n = m.emit(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[3, 0x81, 1, 0, 0, 0, 0, 3, 0, 4, 0, 0, b'c', b'h', b'a', b't']);
        assert_eq!(DcepMessage::parse(&buf[..n]).unwrap(), m);
        assert_eq!(DcepMessage::parse(&[2]).unwrap(), DcepMessage::Ack);
    }

    #[test]
    fn channel_types_round_trip_and_reject_unknown() {
        for ordered in [true, false] {
            for rel in [Reliability::Reliable, Reliability::MaxRetransmits(0), Reliability::MaxLifetimeMs(1500)] {
                let t = ChannelType { ordered, reliability: rel };
                let (b, p) = t.to_wire();
                assert_eq!(ChannelType::from_wire(b, p), Some(t));
            }
        }
        assert_eq!(ChannelType::from_wire(0x03, 0), None);
        assert!(DcepMessage::parse(&[3, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        // Label length past the end.
        assert!(DcepMessage::parse(&[3, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, b'x']).is_err());
    }
}
