/* sipcli's pjproject configuration (copied to pjlib/include/pj/config_site.h by engine/build.py).
 *
 * Each value lifts a limit of the pjsua2-python wheel; sipcli reads them back at run time
 * (sipcli/pjsua/capabilities.py), so a change here shows in `sipcli engine`.
 */

/* No sound card and no video: sipcli plays and records files through the null audio device. */
#define PJMEDIA_HAS_VIDEO                   0

/* IPv6 transports, URIs and media (the wheel has 0: an IPv6 offer gets 488). */
#define PJ_HAS_IPV6                         1

/* 256 concurrent calls (the wheel has 4; UaConfig.maxCalls above this is clamped silently). */
#define PJSUA_MAX_CALLS                     256
/* One conference port per call plus players and recorders. */
#define PJSUA_MAX_CONF_PORTS                (PJSUA_MAX_CALLS + 64)
#define PJSUA_MAX_PLAYERS                   32
#define PJSUA_MAX_RECORDERS                 32
/* Every call holds a dialog and a few transactions at once (INVITE, re-INVITE, BYE, MESSAGE...). */
#define PJSIP_MAX_DIALOG_COUNT              (PJSUA_MAX_CALLS * 4 - 1)
#define PJSIP_MAX_TSX_COUNT                 (PJSUA_MAX_CALLS * 16 - 1)

/* engine/build.py configures with --enable-epoll: the select() ioqueue caps handles at FD_SETSIZE.
 * Each call holds two sockets (RTP and RTCP); SIP TCP/TLS connections take one each.
 * PJSIP_MAX_TRANSPORTS defaults to this value.
 */
#define PJ_IOQUEUE_MAX_HANDLES              4096

/* SDP text handed to Python (onCallSdpCreated, onCallRxOffer): the wheel's 1024 bytes make a longer
 * SDP arrive empty, so chat had to trim the codec list.
 */
#define PJSUA2_MAX_SDP_BUF_LEN              16384

/* Largest SIP message sent or received, on every transport (the default is 4000). 32 KiB holds a
 * full 16 KiB SDP with its headers; a longer message over TCP/TLS is answered 413/513
 * (patches/0003).
 */
#define PJSIP_MAX_PKT_LEN                   32768
#define PJ_LOG_MAX_SIZE                     (PJSIP_MAX_PKT_LEN + 500)

/* TLS 1.2 and 1.3 by default (TlsConfig.method is ignored while proto is non-zero). */
#define PJSIP_SSL_DEFAULT_PROTO             (PJ_SSL_SOCK_PROTO_TLS1_2 | PJ_SSL_SOCK_PROTO_TLS1_3)

/* DTLS-SRTP next to SDES (needs OpenSSL, which the build links). */
#define PJMEDIA_SRTP_HAS_DTLS               1
