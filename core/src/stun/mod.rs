//! STUN (RFC 8489, RFC 5389): wire format, transactions, binding client and server.
