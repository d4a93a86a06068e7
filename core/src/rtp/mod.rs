//! RTP (RFC 3550, RFC 8285) and payload packetizers.
