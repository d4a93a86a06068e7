//! SDP (RFC 8866) offer/answer as browsers use it (RFC 8829).
