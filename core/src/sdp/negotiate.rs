//! Offer/answer (RFC 3264, JSEP RFC 8829 sections 5.2-5.3, 5.10) for the
//! codecs the media stack implements: building a camera offer, answering a
//! browser offer (codec choice = our preference order intersected with
//! theirs, keeping their payload types) and reading the answer to our offer.
//!
//! RTX (RFC 4588 section 8): with [`MediaPolicy::video_rtx_ssrc`] set, each
//! offered video codec is followed by an `rtx` format (`a=fmtp:<pt>
//! apt=<codec pt>`), an answer keeps the offer's `rtx` format of the chosen
//! codec, and a sending section announces `a=ssrc-group:FID <ssrc> <rtx
//! ssrc>`; the outcome is [`NegotiatedMedia::rtx_payload_type`] and
//! [`NegotiatedMedia::remote_rtx_ssrc`].
//!
//! Left out: renegotiation, simulcast/RID, RED/FEC negotiation, more
//! than one codec per section in answers (besides its `rtx`), non-BUNDLE
//! transports.

use super::wire::{
    Candidate, Codec, Direction, Feedback, Fingerprint, MediaDescription, MediaKind, Msid, Origin, SessionDescription,
    Setup, SsrcInfo, TransportAttrs,
};
use super::{MAX_CANDIDATES, MAX_MEDIA_SECTIONS};

/// A codec the media stack can send/receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CodecChoice {
    /// H.264 Constrained Baseline (profile-level-id 42e01f), packetization-mode=1.
    H264ConstrainedBaseline,
    /// H.264 Baseline (profile-level-id 42001f), packetization-mode=1.
    H264Baseline,
    Vp8,
    Opus,
    Pcmu,
    Pcma,
}

impl CodecChoice {
    /// The media kind this codec belongs to.
    pub fn kind(self) -> MediaKind {
        match self {
            CodecChoice::H264ConstrainedBaseline | CodecChoice::H264Baseline | CodecChoice::Vp8 => MediaKind::Video,
            _ => MediaKind::Audio,
        }
    }

    /// Whether `codec` (from a remote description) is this codec. H.264
    /// compares profile_idc and profile-iop (not the level) and requires
    /// packetization-mode=1.
    pub fn matches(self, codec: &Codec<'_>) -> bool {
        let name = codec.name;
        match self {
            CodecChoice::H264ConstrainedBaseline | CodecChoice::H264Baseline => {
                if !name.eq_ignore_ascii_case("H264") || codec.clock_rate != 90000 {
                    return false;
                }
                if codec.fmtp_param("packetization-mode") != Some("1") {
                    return false;
                }
                let want: u16 = if self == CodecChoice::H264ConstrainedBaseline { 0x42e0 } else { 0x4200 };
                codec
                    .fmtp_param("profile-level-id")
                    .filter(|p| p.len() == 6)
                    .and_then(|p| u16::from_str_radix(p.get(..4)?, 16).ok())
                    == Some(want)
            }
            CodecChoice::Vp8 => name.eq_ignore_ascii_case("VP8") && codec.clock_rate == 90000,
            CodecChoice::Opus => name.eq_ignore_ascii_case("opus") && codec.clock_rate == 48000,
            CodecChoice::Pcmu => {
                (name.is_empty() && codec.payload_type == 0)
                    || (name.eq_ignore_ascii_case("PCMU") && codec.clock_rate == 8000)
            }
            CodecChoice::Pcma => {
                (name.is_empty() && codec.payload_type == 8)
                    || (name.eq_ignore_ascii_case("PCMA") && codec.clock_rate == 8000)
            }
        }
    }

    /// The codec as we offer it, with payload type `pt` and feedback `fb`
    /// (video only).
    pub fn offer_codec(self, pt: u8, fb: Feedback) -> Codec<'static> {
        let (name, clock_rate, channels, fmtp) = match self {
            CodecChoice::H264ConstrainedBaseline => {
                ("H264", 90000, 0, Some("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"))
            }
            CodecChoice::H264Baseline => {
                ("H264", 90000, 0, Some("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"))
            }
            CodecChoice::Vp8 => ("VP8", 90000, 0, None),
            CodecChoice::Opus => ("opus", 48000, 2, Some("minptime=10;useinbandfec=1")),
            CodecChoice::Pcmu => ("PCMU", 8000, 0, None),
            CodecChoice::Pcma => ("PCMA", 8000, 0, None),
        };
        let feedback = if self.kind() == MediaKind::Video { fb } else { Feedback::NONE };
        Codec { payload_type: pt, name, clock_rate, channels, fmtp, feedback }
    }

    /// Payload type of the `rtx` format we offer for this codec (video).
    pub fn default_rtx_payload_type(self) -> u8 {
        match self {
            CodecChoice::H264ConstrainedBaseline => 107,
            CodecChoice::H264Baseline => 108,
            CodecChoice::Vp8 => 97,
            _ => 0,
        }
    }

    /// The `rtx` format we offer for this codec (RFC 4588 section 8.6).
    fn offer_rtx_codec(self) -> Codec<'static> {
        let fmtp = match self {
            CodecChoice::H264ConstrainedBaseline => "apt=102",
            CodecChoice::H264Baseline => "apt=103",
            _ => "apt=96",
        };
        Codec {
            payload_type: self.default_rtx_payload_type(),
            name: "rtx",
            clock_rate: 90000,
            channels: 0,
            fmtp: Some(fmtp),
            feedback: Feedback::NONE,
        }
    }

    /// Conventional payload type for offers (static ones for G.711).
    pub fn default_payload_type(self) -> u8 {
        match self {
            CodecChoice::H264ConstrainedBaseline => 102,
            CodecChoice::H264Baseline => 103,
            CodecChoice::Vp8 => 96,
            CodecChoice::Opus => 111,
            CodecChoice::Pcmu => 0,
            CodecChoice::Pcma => 8,
        }
    }
}

/// Why negotiation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum NegotiationError {
    /// The remote description has no ICE ufrag/pwd.
    MissingIceCredentials,
    /// The remote description has no (usable) fingerprint.
    MissingFingerprint,
    /// Remote `a=setup` is incompatible with ours (e.g. both active).
    SetupConflict,
    /// The answer does not mirror the offer's sections.
    SectionMismatch,
    /// The answer picked a codec we did not offer.
    UnknownCodec,
    /// Nothing usable was accepted (no media, no data channel).
    NothingAccepted,
}

/// Our transport parameters, common to offers and answers.
#[derive(Debug, Clone, Copy)]
pub struct LocalTransport<'a> {
    pub ice_ufrag: &'a str,
    pub ice_pwd: &'a str,
    /// SHA-256 of our DTLS certificate.
    pub fingerprint: Fingerprint,
    /// Candidates to include (may be empty with trickle).
    pub candidates: &'a [Candidate<'a>],
    pub end_of_candidates: bool,
    pub session_id: u64,
    /// `a=ice-lite`.
    pub ice_lite: bool,
}

/// One media source we send: SSRC, CNAME and msid.
#[derive(Debug, Clone, Copy)]
pub struct LocalSource<'a> {
    pub ssrc: u32,
    pub cname: &'a str,
    pub stream_id: &'a str,
    pub track_id: &'a str,
}

/// What we want in each kind of section.
#[derive(Debug, Clone, Copy)]
pub struct MediaPolicy<'a> {
    /// Video codecs in preference order (empty: reject/omit video).
    pub video_codecs: &'a [CodecChoice],
    /// Audio codecs in preference order (empty: reject/omit audio).
    pub audio_codecs: &'a [CodecChoice],
    /// Desired video direction (e.g. `SendOnly` for a camera).
    pub video_direction: Direction,
    pub audio_direction: Direction,
    /// RTCP feedback we implement (answers keep theirs ∩ this).
    pub feedback: Feedback,
    /// Data channel: offer / accept one.
    pub datachannel: bool,
    /// `a=max-message-size` we accept.
    pub max_message_size: u32,
    pub video_source: Option<LocalSource<'a>>,
    pub audio_source: Option<LocalSource<'a>>,
    /// DTLS role when the remote says `actpass` (answers only):
    /// `Active` (client, the JSEP recommendation) or `Passive`.
    pub preferred_setup: Setup,
    /// Offer/accept RTX (RFC 4588) for video; our retransmissions use this
    /// SSRC. `None`: no `rtx` formats (retransmissions, if any, are plain).
    pub video_rtx_ssrc: Option<u32>,
}

impl Default for MediaPolicy<'_> {
    fn default() -> Self {
        MediaPolicy {
            video_codecs: &[CodecChoice::H264ConstrainedBaseline, CodecChoice::H264Baseline, CodecChoice::Vp8],
            audio_codecs: &[CodecChoice::Opus, CodecChoice::Pcmu, CodecChoice::Pcma],
            video_direction: Direction::SendRecv,
            audio_direction: Direction::SendRecv,
            feedback: Feedback::NACK.union(Feedback::PLI).union(Feedback::FIR),
            datachannel: true,
            max_message_size: 262144,
            video_source: None,
            audio_source: None,
            preferred_setup: Setup::Active,
            video_rtx_ssrc: None,
        }
    }
}

/// The outcome of negotiation for one section, as plain data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NegotiatedMedia<'a> {
    /// Index of the `m=` section.
    pub index: u8,
    pub kind: MediaKind,
    pub mid: &'a str,
    /// Chosen codec and its payload type (RTP sections).
    pub codec: Option<(CodecChoice, u8)>,
    /// Our direction.
    pub direction: Direction,
    /// Feedback both sides agreed on.
    pub feedback: Feedback,
    /// The remote's SSRC for this section if it announced one.
    pub remote_ssrc: Option<u32>,
    /// Remote SCTP port (data channel).
    pub remote_sctp_port: Option<u16>,
    pub remote_max_message_size: Option<u32>,
    /// Payload type of the negotiated `rtx` format of `codec` (RFC 4588).
    pub rtx_payload_type: Option<u8>,
    /// The remote's RTX SSRC (`a=ssrc-group:FID <remote_ssrc> <rtx>`).
    pub remote_rtx_ssrc: Option<u32>,
}

/// Everything the session needs from a completed offer/answer.
#[derive(Debug, Clone)]
pub struct Negotiated<'a> {
    pub remote_ice_ufrag: &'a str,
    pub remote_ice_pwd: &'a str,
    pub remote_fingerprint: Fingerprint,
    /// Our DTLS role: `Active` = DTLS client.
    pub local_setup: Setup,
    /// Remote candidates from the description (all sections).
    pub remote_candidates: heapless::Vec<Candidate<'a>, MAX_CANDIDATES>,
    pub remote_ice_lite: bool,
    /// Accepted sections (rejected ones are absent).
    pub media: heapless::Vec<NegotiatedMedia<'a>, MAX_MEDIA_SECTIONS>,
}

impl<'a> Negotiated<'a> {
    /// The first accepted section of `kind`.
    pub fn media_of(&self, kind: MediaKind) -> Option<&NegotiatedMedia<'a>> {
        self.media.iter().find(|m| m.kind == kind)
    }
}

const MIDS: [&str; MAX_MEDIA_SECTIONS] = ["0", "1", "2", "3"];

fn transport_attrs<'a>(t: &LocalTransport<'a>, setup: Setup) -> TransportAttrs<'a> {
    TransportAttrs {
        ice_ufrag: Some(t.ice_ufrag),
        ice_pwd: Some(t.ice_pwd),
        ice_trickle: true,
        fingerprint: Some(t.fingerprint),
        setup: Some(setup),
    }
}

fn add_candidates<'a>(m: &mut MediaDescription<'a>, t: &LocalTransport<'a>) {
    for c in t.candidates {
        if m.candidates.push(*c).is_err() {
            m.truncated = true;
        }
    }
    m.end_of_candidates = t.end_of_candidates;
}

/// Our SSRC (and with `rtx`, the RTX SSRC in an FID group) of a sending section.
fn add_source<'a>(m: &mut MediaDescription<'a>, src: Option<LocalSource<'a>>, rtx: Option<u32>) {
    if let (Some(s), true) = (src, m.direction.sends()) {
        m.msid = Some(Msid { stream: s.stream_id, track: s.track_id });
        let _ = m.ssrcs.push(SsrcInfo { ssrc: s.ssrc, cname: Some(s.cname) });
        if let Some(r) = rtx {
            m.ssrc_group_fid = Some((s.ssrc, r));
            let _ = m.ssrcs.push(SsrcInfo { ssrc: r, cname: Some(s.cname) });
        }
    }
}

/// The `rtx` format of `codecs` restoring payload type `apt`.
fn rtx_for<'c, 'a>(codecs: &'c [Codec<'a>], apt: u8) -> Option<&'c Codec<'a>> {
    codecs.iter().find(|c| {
        c.name.eq_ignore_ascii_case("rtx") && c.fmtp_param("apt").and_then(|v| v.parse::<u8>().ok()) == Some(apt)
    })
}

/// The remote RTX SSRC paired with `primary` by `a=ssrc-group:FID`.
fn remote_rtx_ssrc(m: &MediaDescription<'_>, primary: Option<u32>) -> Option<u32> {
    m.ssrc_group_fid.filter(|(p, _)| Some(*p) == primary).map(|(_, r)| r)
}

/// Build an offer: one video section (if `policy.video_codecs` is not
/// empty), one audio section (if `audio_codecs` is not empty), one data
/// channel (if `datachannel`), all in one BUNDLE group, `a=setup:actpass`.
pub fn build_offer<'a>(transport: &LocalTransport<'a>, policy: &MediaPolicy<'a>) -> SessionDescription<'a> {
    let mut sd = SessionDescription {
        origin: Origin { session_id: transport.session_id, ..Origin::default() },
        ice_lite: transport.ice_lite,
        ..SessionDescription::default()
    };
    let sections = [
        (MediaKind::Video, policy.video_codecs, policy.video_direction, policy.video_source),
        (MediaKind::Audio, policy.audio_codecs, policy.audio_direction, policy.audio_source),
    ];
    for (kind, codecs, direction, source) in sections {
        if codecs.is_empty() {
            continue;
        }
        let mut m = MediaDescription::new(kind);
        m.direction = direction;
        m.rtcp_rsize = true;
        let rtx = if kind == MediaKind::Video { policy.video_rtx_ssrc } else { None };
        for c in codecs.iter().filter(|c| c.kind() == kind) {
            if m.codecs.push(c.offer_codec(c.default_payload_type(), policy.feedback)).is_err() {
                m.truncated = true;
            }
            if rtx.is_some() && m.codecs.push(c.offer_rtx_codec()).is_err() {
                m.truncated = true;
            }
        }
        add_source(&mut m, source, rtx);
        let _ = sd.media.push(m);
    }
    if policy.datachannel {
        let mut m = MediaDescription::new(MediaKind::Application);
        m.sctp_port = Some(5000);
        m.max_message_size = Some(policy.max_message_size);
        let _ = sd.media.push(m);
    }
    for (i, m) in sd.media.iter_mut().enumerate() {
        let mid = MIDS.get(i).copied().unwrap_or("x");
        m.mid = Some(mid);
        m.transport = transport_attrs(transport, Setup::ActPass);
        add_candidates(m, transport);
        let _ = sd.bundle.push(mid);
    }
    sd
}

fn remote_common<'a>(remote: &SessionDescription<'a>) -> Result<Negotiated<'a>, NegotiationError> {
    let t = remote.transport_for(0);
    let mut remote_candidates = heapless::Vec::new();
    // With BUNDLE every section shares one transport; gather from all and
    // drop duplicates of the same address.
    for m in &remote.media {
        for c in &m.candidates {
            if !remote_candidates.iter().any(|o: &Candidate<'_>| o.address == c.address && o.port == c.port) {
                let _ = remote_candidates.push(*c);
            }
        }
    }
    Ok(Negotiated {
        remote_ice_ufrag: t.ice_ufrag.ok_or(NegotiationError::MissingIceCredentials)?,
        remote_ice_pwd: t.ice_pwd.ok_or(NegotiationError::MissingIceCredentials)?,
        remote_fingerprint: t.fingerprint.ok_or(NegotiationError::MissingFingerprint)?,
        local_setup: Setup::Active,
        remote_candidates,
        remote_ice_lite: remote.ice_lite,
        media: heapless::Vec::new(),
    })
}

/// Answer a remote offer. Each offered section is accepted with one codec
/// (our preference ∩ theirs, their payload type) or rejected (port 0).
/// Returns the answer to write and send, and the negotiated parameters.
pub fn build_answer<'a>(
    offer: &SessionDescription<'a>,
    transport: &LocalTransport<'a>,
    policy: &MediaPolicy<'a>,
) -> Result<(SessionDescription<'a>, Negotiated<'a>), NegotiationError> {
    let mut neg = remote_common(offer)?;
    let local_setup = match offer.transport_for(0).setup {
        Some(Setup::Active) => Setup::Passive,
        Some(Setup::Passive) => Setup::Active,
        Some(Setup::HoldConn) => return Err(NegotiationError::SetupConflict),
        Some(Setup::ActPass) | None => match policy.preferred_setup {
            Setup::Passive => Setup::Passive,
            _ => Setup::Active,
        },
    };
    neg.local_setup = local_setup;
    let mut sd = SessionDescription {
        origin: Origin { session_id: transport.session_id, ..Origin::default() },
        ice_lite: transport.ice_lite,
        ..SessionDescription::default()
    };
    let mut first_accepted = true;
    let mut video_used = false;
    let mut audio_used = false;
    let mut dc_used = false;
    for (i, om) in offer.media.iter().enumerate() {
        let mut m = MediaDescription::new(om.kind);
        m.kind_name = om.kind_name;
        m.proto = om.proto;
        m.formats = om.formats;
        m.mid = om.mid;
        m.rtcp_mux = om.rtcp_mux;
        m.rtcp_rsize = om.rtcp_rsize;
        let mut accepted = None;
        match om.kind {
            MediaKind::Video | MediaKind::Audio if om.port != 0 => {
                let (prefs, want, used, source) = if om.kind == MediaKind::Video {
                    (policy.video_codecs, policy.video_direction, &mut video_used, policy.video_source)
                } else {
                    (policy.audio_codecs, policy.audio_direction, &mut audio_used, policy.audio_source)
                };
                let pick = prefs.iter().find_map(|p| om.codecs.iter().find(|c| p.matches(c)).map(|c| (*p, *c)));
                if let (Some((choice, theirs)), false) = (pick, *used) {
                    *used = true;
                    let fb = theirs.feedback.intersection(policy.feedback);
                    let codec = Codec { feedback: fb, ..theirs };
                    let _ = m.codecs.push(codec);
                    let rtx = if om.kind == MediaKind::Video { policy.video_rtx_ssrc } else { None };
                    let rtx_codec = rtx.and(rtx_for(&om.codecs, theirs.payload_type)).copied();
                    if let Some(r) = rtx_codec {
                        let _ = m.codecs.push(r);
                    }
                    let dir = om.direction.reverse();
                    m.direction = Direction::from_flags(dir.sends() && want.sends(), dir.receives() && want.receives());
                    add_source(&mut m, source, rtx.filter(|_| rtx_codec.is_some()));
                    let remote_ssrc = om.ssrcs.first().map(|s| s.ssrc);
                    accepted = Some(NegotiatedMedia {
                        index: i as u8,
                        kind: om.kind,
                        mid: om.mid.unwrap_or(""),
                        codec: Some((choice, theirs.payload_type)),
                        direction: m.direction,
                        feedback: fb,
                        remote_ssrc,
                        remote_sctp_port: None,
                        remote_max_message_size: None,
                        rtx_payload_type: rtx_codec.map(|c| c.payload_type),
                        remote_rtx_ssrc: rtx_codec.and(remote_rtx_ssrc(om, remote_ssrc)),
                    });
                }
            }
            MediaKind::Application if om.port != 0 && policy.datachannel && om.is_datachannel() && !dc_used => {
                dc_used = true;
                m.sctp_port = Some(5000);
                m.max_message_size = Some(policy.max_message_size);
                accepted = Some(NegotiatedMedia {
                    index: i as u8,
                    kind: MediaKind::Application,
                    mid: om.mid.unwrap_or(""),
                    codec: None,
                    direction: Direction::SendRecv,
                    feedback: Feedback::NONE,
                    remote_ssrc: None,
                    remote_sctp_port: Some(om.sctp_port.unwrap_or(5000)),
                    remote_max_message_size: om.max_message_size,
                    rtx_payload_type: None,
                    remote_rtx_ssrc: None,
                });
            }
            _ => {}
        }
        if let Some(a) = accepted {
            m.transport = transport_attrs(transport, local_setup);
            if first_accepted {
                add_candidates(&mut m, transport);
                first_accepted = false;
            }
            if let Some(mid) = om.mid {
                let _ = sd.bundle.push(mid);
            }
            let _ = neg.media.push(a);
        } else {
            // Rejected: port 0, keep the first offered format so the line
            // stays well formed.
            m.port = 0;
            m.direction = Direction::Inactive;
            if let Some(c) = om.codecs.first() {
                let bare = Codec {
                    payload_type: c.payload_type,
                    name: "",
                    clock_rate: 0,
                    channels: 0,
                    fmtp: None,
                    feedback: Feedback::NONE,
                };
                let _ = m.codecs.push(bare);
            }
        }
        let _ = sd.media.push(m);
    }
    if neg.media.is_empty() {
        return Err(NegotiationError::NothingAccepted);
    }
    Ok((sd, neg))
}

/// Read the remote answer to `offer` (which we built with `policy`).
pub fn accept_answer<'a>(
    offer: &SessionDescription<'_>,
    answer: &SessionDescription<'a>,
    policy: &MediaPolicy<'_>,
) -> Result<Negotiated<'a>, NegotiationError> {
    let mut neg = remote_common(answer)?;
    neg.local_setup = match answer.transport_for(0).setup {
        Some(Setup::Active) => Setup::Passive,
        Some(Setup::Passive) => Setup::Active,
        _ => return Err(NegotiationError::SetupConflict),
    };
    if answer.media.len() != offer.media.len() {
        return Err(NegotiationError::SectionMismatch);
    }
    for (i, (om, am)) in offer.media.iter().zip(answer.media.iter()).enumerate() {
        if om.kind != am.kind || om.mid != am.mid {
            return Err(NegotiationError::SectionMismatch);
        }
        if am.port == 0 {
            continue;
        }
        let mut nm = NegotiatedMedia {
            index: i as u8,
            kind: am.kind,
            mid: am.mid.unwrap_or(""),
            codec: None,
            direction: am.direction.reverse(),
            feedback: Feedback::NONE,
            remote_ssrc: am.ssrcs.first().map(|s| s.ssrc),
            remote_sctp_port: None,
            remote_max_message_size: None,
            rtx_payload_type: None,
            remote_rtx_ssrc: None,
        };
        if am.kind.is_rtp() {
            let ac = am.codecs.first().ok_or(NegotiationError::UnknownCodec)?;
            let oc = om.codec(ac.payload_type).ok_or(NegotiationError::UnknownCodec)?;
            let prefs = if am.kind == MediaKind::Video { policy.video_codecs } else { policy.audio_codecs };
            let choice = prefs.iter().find(|p| p.matches(oc)).ok_or(NegotiationError::UnknownCodec)?;
            nm.codec = Some((*choice, ac.payload_type));
            nm.feedback = ac.feedback.intersection(policy.feedback);
            if am.kind == MediaKind::Video && policy.video_rtx_ssrc.is_some() {
                // Their rtx format for the codec, one we offered too.
                let rtx = rtx_for(&am.codecs, ac.payload_type)
                    .filter(|r| rtx_for(&om.codecs, ac.payload_type).is_some_and(|o| o.payload_type == r.payload_type));
                nm.rtx_payload_type = rtx.map(|r| r.payload_type);
                nm.remote_rtx_ssrc = rtx.and(remote_rtx_ssrc(am, nm.remote_ssrc));
            }
            // Our direction: what we offered, limited by what they accepted.
            let theirs = am.direction.reverse();
            nm.direction = Direction::from_flags(
                om.direction.sends() && theirs.sends(),
                om.direction.receives() && theirs.receives(),
            );
        } else if am.is_datachannel() {
            nm.direction = Direction::SendRecv;
            nm.remote_sctp_port = Some(am.sctp_port.unwrap_or(5000));
            nm.remote_max_message_size = am.max_message_size;
        } else {
            continue;
        }
        let _ = neg.media.push(nm);
    }
    if neg.media.is_empty() {
        return Err(NegotiationError::NothingAccepted);
    }
    Ok(neg)
}
