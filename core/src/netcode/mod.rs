//! netcode.io 1.02: connect tokens, client and server.
