/* Result codes and the per-thread last error (never a process-global buffer). */
#include "status_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RSCLIP_ERRMSG_MAX 1024

static _Thread_local char tl_msg[RSCLIP_ERRMSG_MAX];
static _Thread_local int tl_code;

static rsclip_log_fn g_log_fn;
static void *g_log_user;

const char *rsclip_status_name(int code) {
    switch (code) {
    case RSCLIP_OK:
        return "RSCLIP_OK";
    case RSCLIP_ERR_INVALID_ARG:
        return "RSCLIP_ERR_INVALID_ARG";
    case RSCLIP_ERR_NOMEM:
        return "RSCLIP_ERR_NOMEM";
    case RSCLIP_ERR_IO:
        return "RSCLIP_ERR_IO";
    case RSCLIP_ERR_FORMAT:
        return "RSCLIP_ERR_FORMAT";
    case RSCLIP_ERR_UNSUPPORTED:
        return "RSCLIP_ERR_UNSUPPORTED";
    case RSCLIP_ERR_NOT_FOUND:
        return "RSCLIP_ERR_NOT_FOUND";
    case RSCLIP_ERR_MISMATCH:
        return "RSCLIP_ERR_MISMATCH";
    case RSCLIP_ERR_NETWORK:
        return "RSCLIP_ERR_NETWORK";
    case RSCLIP_ERR_DB:
        return "RSCLIP_ERR_DB";
    case RSCLIP_ERR_CANCELLED:
        return "RSCLIP_ERR_CANCELLED";
    case RSCLIP_ERR_GDAL:
        return "RSCLIP_ERR_GDAL";
    case RSCLIP_ERR_INTERNAL:
        return "RSCLIP_ERR_INTERNAL";
    case RSCLIP_ERR_EXISTS:
        return "RSCLIP_ERR_EXISTS";
    default:
        return "RSCLIP_ERR_UNKNOWN";
    }
}

const char *rsclip_last_error(void) {
    return tl_msg;
}

int rsclip_last_status(void) {
    return tl_code;
}

void rsclip_clear_error(void) {
    tl_msg[0] = '\0';
    tl_code = RSCLIP_OK;
}

int rsclip__verror(int code, const char *fmt, va_list ap) {
    vsnprintf(tl_msg, sizeof tl_msg, fmt, ap);
    tl_code = code;
    if (g_log_fn) g_log_fn(RSCLIP_LOG_DEBUG, tl_msg, g_log_user);
    return code;
}

int rsclip__error(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    rsclip__verror(code, fmt, ap);
    va_end(ap);
    return code;
}

int rsclip__error_prefix(const char *prefix) {
    char tmp[RSCLIP_ERRMSG_MAX];
    size_t n = strlen(prefix);
    if (n > sizeof tmp - 3) n = sizeof tmp - 3;
    memcpy(tmp, prefix, n);
    tmp[n] = ':';
    tmp[n + 1] = ' ';
    size_t rest = sizeof tmp - n - 3, m = strlen(tl_msg);
    if (m > rest) m = rest;
    memcpy(tmp + n + 2, tl_msg, m);
    tmp[n + 2 + m] = '\0';
    memcpy(tl_msg, tmp, sizeof tl_msg);
    return tl_code;
}

void rsclip__log(int level, const char *fmt, ...) {
    char buf[RSCLIP_ERRMSG_MAX];
    va_list ap;
    if (!g_log_fn) return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    g_log_fn(level, buf, g_log_user);
}

void rsclip_set_log(rsclip_log_fn fn, void *user) {
    g_log_fn = fn;
    g_log_user = user;
}

void rsclip_free(void *p) {
    free(p);
}

const char *rsclip_version(void) {
    return RSCLIP_VERSION_STRING;
}
