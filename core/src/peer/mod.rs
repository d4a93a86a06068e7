//! A WebRTC session (`Peer`): ICE + DTLS-SRTP + RTP/RTCP + SCTP over one 5-tuple.
