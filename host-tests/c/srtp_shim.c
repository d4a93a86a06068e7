/*
 * A thin C layer over libsrtp2 used as an independent SRTP implementation
 * by the interop test and the benchmark: one session per direction with a
 * wildcard SSRC policy, in-place protect/unprotect.
 *
 * Profiles: 0 = AES_CM_128_HMAC_SHA1_80, 1 = AES_CM_128_HMAC_SHA1_32
 * (SRTCP keeps the 80-bit tag), 2 = AEAD_AES_128_GCM (16-byte tag).
 * Return values are libsrtp's srtp_err_status_t (0 = ok), or -1 for a bad
 * argument.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <srtp2/srtp.h>

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_status = -1;

static void do_init(void) { init_status = (int)srtp_init(); }

int tinyrtc_shim_init(void) {
    pthread_once(&init_once, do_init);
    return init_status;
}

/* `key` is master key || master salt (30 bytes for AES-CM, 28 for GCM).
 * `rtcp_encrypt` 0 selects authentication-only SRTCP (E flag clear), which
 * libsrtp then also requires of received SRTCP. */
void *tinyrtc_shim_create(int profile, const uint8_t *key, size_t key_len, int outbound,
                          int rtcp_encrypt) {
    srtp_policy_t policy;
    srtp_t session = NULL;
    uint8_t key_copy[SRTP_MAX_KEY_LEN];

    if (tinyrtc_shim_init() != 0) return NULL;
    memset(&policy, 0, sizeof policy);
    switch (profile) {
    case 0:
        if (key_len != 30) return NULL;
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtp);
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtcp);
        break;
    case 1:
        if (key_len != 30) return NULL;
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&policy.rtp);
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtcp);
        break;
    case 2:
        if (key_len != 28) return NULL;
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp);
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp);
        break;
    default:
        return NULL;
    }
    if (!rtcp_encrypt) policy.rtcp.sec_serv = sec_serv_auth;
    memcpy(key_copy, key, key_len);
    policy.ssrc.type = outbound ? ssrc_any_outbound : ssrc_any_inbound;
    policy.key = key_copy;
    policy.window_size = 128;
    policy.allow_repeat_tx = 0;
    policy.next = NULL;
    if (srtp_create(&session, &policy) != srtp_err_status_ok) return NULL;
    return session;
}

void tinyrtc_shim_dealloc(void *session) {
    if (session) srtp_dealloc((srtp_t)session);
}

/* `buf` must have SRTP_MAX_TRAILER_LEN bytes of room after `*len`. */
int tinyrtc_shim_protect_rtp(void *session, uint8_t *buf, int *len) {
    if (!session) return -1;
    return (int)srtp_protect((srtp_t)session, buf, len);
}

int tinyrtc_shim_unprotect_rtp(void *session, uint8_t *buf, int *len) {
    if (!session) return -1;
    return (int)srtp_unprotect((srtp_t)session, buf, len);
}

int tinyrtc_shim_protect_rtcp(void *session, uint8_t *buf, int *len) {
    if (!session) return -1;
    return (int)srtp_protect_rtcp((srtp_t)session, buf, len);
}

int tinyrtc_shim_unprotect_rtcp(void *session, uint8_t *buf, int *len) {
    if (!session) return -1;
    return (int)srtp_unprotect_rtcp((srtp_t)session, buf, len);
}

int tinyrtc_shim_max_trailer_len(void) { return SRTP_MAX_TRAILER_LEN; }
