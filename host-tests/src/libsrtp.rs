//! libsrtp2 as an independent SRTP implementation (the oracle of the SRTP
//! interop test and the reference of the SRTP benchmark), through the C shim
//! in `c/srtp_shim.c`. Present when the build script found libsrtp2
//! (`cfg(have_libsrtp)`).

use std::os::raw::{c_int, c_void};
use tinyrtc::srtp::{SrtpMasterKey, SrtpProfile};

extern "C" {
    fn tinyrtc_shim_init() -> c_int;
    fn tinyrtc_shim_create(
        profile: c_int,
        key: *const u8,
        key_len: usize,
        outbound: c_int,
        rtcp_encrypt: c_int,
    ) -> *mut c_void;
    fn tinyrtc_shim_dealloc(session: *mut c_void);
    fn tinyrtc_shim_protect_rtp(session: *mut c_void, buf: *mut u8, len: *mut c_int) -> c_int;
    fn tinyrtc_shim_unprotect_rtp(session: *mut c_void, buf: *mut u8, len: *mut c_int) -> c_int;
    fn tinyrtc_shim_protect_rtcp(session: *mut c_void, buf: *mut u8, len: *mut c_int) -> c_int;
    fn tinyrtc_shim_unprotect_rtcp(session: *mut c_void, buf: *mut u8, len: *mut c_int) -> c_int;
    fn tinyrtc_shim_max_trailer_len() -> c_int;
}

/// A libsrtp error status (`srtp_err_status_t`; 0 is success, -1 a bad argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LibsrtpError(pub i32);

/// One libsrtp session for one direction, any SSRC.
#[derive(Debug)]
pub struct LibsrtpSession {
    raw: *mut c_void,
}

// The session is only ever used through `&mut self`.
unsafe impl Send for LibsrtpSession {}

impl LibsrtpSession {
    /// Bytes libsrtp may append to a packet: leave this much room.
    pub fn max_trailer_len() -> usize {
        unsafe { tinyrtc_shim_max_trailer_len() as usize }
    }

    fn new(
        profile: SrtpProfile,
        master: &SrtpMasterKey,
        outbound: bool,
        rtcp_encrypt: bool,
    ) -> Result<Self, LibsrtpError> {
        let code = match profile {
            SrtpProfile::Aes128CmSha1_80 => 0,
            SrtpProfile::Aes128CmSha1_32 => 1,
            SrtpProfile::AeadAes128Gcm => 2,
        };
        let status = unsafe { tinyrtc_shim_init() };
        if status != 0 {
            return Err(LibsrtpError(status));
        }
        let salt_len = profile.master_salt_len();
        let mut key = [0u8; 30];
        key[..16].copy_from_slice(&master.key);
        key[16..16 + salt_len].copy_from_slice(&master.salt[..salt_len]);
        let raw = unsafe {
            tinyrtc_shim_create(code, key.as_ptr(), 16 + salt_len, c_int::from(outbound), c_int::from(rtcp_encrypt))
        };
        if raw.is_null() {
            return Err(LibsrtpError(-1));
        }
        Ok(LibsrtpSession { raw })
    }

    /// A sending session (`ssrc_any_outbound`).
    pub fn outbound(profile: SrtpProfile, master: &SrtpMasterKey) -> Result<Self, LibsrtpError> {
        Self::new(profile, master, true, true)
    }

    /// A receiving session (`ssrc_any_inbound`).
    pub fn inbound(profile: SrtpProfile, master: &SrtpMasterKey) -> Result<Self, LibsrtpError> {
        Self::new(profile, master, false, true)
    }

    /// Like [`Self::outbound`] or [`Self::inbound`], with SRTCP
    /// authenticated but not encrypted (libsrtp `sec_serv_auth`; libsrtp
    /// then insists on the matching E flag when receiving AES-CM SRTCP).
    pub fn with_rtcp_unencrypted(
        profile: SrtpProfile,
        master: &SrtpMasterKey,
        outbound: bool,
    ) -> Result<Self, LibsrtpError> {
        Self::new(profile, master, outbound, false)
    }

    fn call(
        &mut self,
        f: unsafe extern "C" fn(*mut c_void, *mut u8, *mut c_int) -> c_int,
        buf: &mut [u8],
        len: usize,
        needs_room: bool,
    ) -> Result<usize, LibsrtpError> {
        if len > buf.len() || (needs_room && buf.len() - len < Self::max_trailer_len()) {
            return Err(LibsrtpError(-1));
        }
        let mut n = c_int::try_from(len).map_err(|_| LibsrtpError(-1))?;
        // SAFETY: `buf` is valid for `buf.len()` bytes, which covers `len`
        // plus the largest trailer libsrtp may write when protecting.
        let status = unsafe { f(self.raw, buf.as_mut_ptr(), &mut n) };
        if status != 0 {
            return Err(LibsrtpError(status));
        }
        Ok(n as usize)
    }

    /// Protect `buf[..len]` in place; returns the new length.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, LibsrtpError> {
        self.call(tinyrtc_shim_protect_rtp, buf, len, true)
    }

    /// Unprotect `buf[..len]` in place; returns the plaintext length.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, LibsrtpError> {
        self.call(tinyrtc_shim_unprotect_rtp, buf, len, false)
    }

    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, LibsrtpError> {
        self.call(tinyrtc_shim_protect_rtcp, buf, len, true)
    }

    pub fn unprotect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, LibsrtpError> {
        self.call(tinyrtc_shim_unprotect_rtcp, buf, len, false)
    }
}

impl Drop for LibsrtpSession {
    fn drop(&mut self) {
        unsafe { tinyrtc_shim_dealloc(self.raw) }
    }
}
