/* The hub's HTTP requests, through GDAL's CPLHTTPFetchEx (libgdal's own curl: proxies and CA
 * settings from GDAL_HTTP_* apply) with a write callback, so bodies stream straight to disk. */
#include "base/base.h"
#include "hub/hub_internal.h"

#include "gdal/gdal_util.h"
#include "status/status_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cpl_conv.h>
#include <cpl_http.h>
#include <cpl_string.h>

double rsclip__hub_time_left(const hub_req *q) {
    return q->deadline > 0 ? q->deadline - rsclip__mono_s() : 1e9;
}

static size_t write_cb(void *buf, size_t size, size_t nmemb, void *arg) {
    hub_sink *c = arg;
    const char *p = buf;
    size_t left = size * nmemb;
    if (c->start + c->written + left > c->q->max_bytes) {
        c->over_cap = 1;
        return 0; /* makes curl stop with a write error */
    }
    while (left > 0) {
        ssize_t w = pwrite(c->fd, p, left, (off_t)(c->start + c->written));
        if (w < 0) {
            if (errno == EINTR) continue;
            c->write_errno = errno;
            return 0;
        }
        p += w;
        left -= (size_t)w;
        c->written += (uint64_t)w;
    }
    return nmemb;
}

/* GDALProgressFunc: frac is this response's share; report the whole file's. Also where the
 * deadline is enforced while bytes trickle in. */
static int CPL_STDCALL progress_cb(double frac, const char *msg, void *arg) {
    hub_sink *c = arg;
    (void)msg;
    if (rsclip__hub_time_left(c->q) <= 0) {
        c->past_deadline = 1;
        return FALSE;
    }
    if (!c->q->progress) return TRUE;
    double f = 0.0, done = (double)c->start + (double)c->written;
    if (c->total != HUB_UNKNOWN && c->total > 0)
        f = done / (double)c->total;
    else if (frac > 0.0 && c->written > 0)
        f = done / ((double)c->start + (double)c->written / frac);
    if (f > 1.0) f = 1.0;
    if (!c->q->progress(f, c->file, c->q->user)) {
        c->cancelled = 1;
        return FALSE;
    }
    return TRUE;
}

/* Header `key` (case-insensitive): the first or the last occurrence. CPL HTTP keeps every header
 * line of every response, redirects included ("Key: value" or "Key=value"). */
static const char *find_header(char **headers, const char *key, int last) {
    const char *v = NULL;
    size_t kl = strlen(key);
    for (char **h = headers; h && *h; h++) {
        if (strncasecmp(*h, key, kl) == 0 && ((*h)[kl] == '=' || (*h)[kl] == ':')) {
            v = *h + kl + 1;
            while (*v == ' ') v++;
            if (!last) break;
        }
    }
    return v;
}

static int parse_u64(const char *s, uint64_t *out) {
    if (!s || *s < '0' || *s > '9') return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno) return 0;
    *out = v;
    return 1;
}

/* "bytes A-B/T", or "bytes *\/T" in a 416. Missing parts stay HUB_UNKNOWN. */
static void parse_content_range(const char *s, uint64_t *first, uint64_t *total) {
    *first = *total = HUB_UNKNOWN;
    if (!s || strncasecmp(s, "bytes", 5) != 0) return;
    s += 5;
    while (*s == ' ') s++;
    parse_u64(s, first);
    const char *slash = strchr(s, '/');
    if (slash) parse_u64(slash + 1, total);
}

/* A header value kept as a tag: trimmed, at most HUB_TAG_MAX - 1 printable bytes, else "". */
static void copy_tag(char *dst, const char *v) {
    dst[0] = '\0';
    if (!v) return;
    size_t n = strlen(v);
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\r' || v[n - 1] == '\n')) n--;
    if (n == 0 || n >= HUB_TAG_MAX) return;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) return;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

/* The SHA-256 inside an entity tag ("<64 hex>", W/"...", bare), lowercased; 0 if none. */
static int tag_sha256(const char *tag, char out[65]) {
    if (!tag) return 0;
    if (strncmp(tag, "W/", 2) == 0) tag += 2;
    if (*tag == '"') tag++;
    size_t n = 0;
    while (n < 65 && ((tag[n] >= '0' && tag[n] <= '9') || (tag[n] >= 'a' && tag[n] <= 'f') ||
                      (tag[n] >= 'A' && tag[n] <= 'F')))
        n++;
    if (n != 64 || (tag[64] != '"' && tag[64] != '\0' && tag[64] != ' ')) return 0;
    for (int i = 0; i < 64; i++) out[i] = (char)(tag[i] | 0x20);
    out[64] = '\0';
    return 1;
}

static void read_outcome(CPLHTTPResult *r, http_outcome *o) {
    if (r->pszErrBuf && sscanf(r->pszErrBuf, "HTTP error code : %d", &o->code) != 1) o->code = 0;
    o->failed = r->nStatus != 0 && o->code == 0;
    char **h = r->papszHeaders;
    parse_u64(find_header(h, "Content-Length", 1), &o->length);
    parse_content_range(find_header(h, "Content-Range", 1), &o->range_first, &o->range_total);
    parse_u64(find_header(h, "X-Linked-Size", 0), &o->linked_size);
    const char *linked = find_header(h, "X-Linked-Etag", 0), *etag = find_header(h, "ETag", 0);
    copy_tag(o->identity, linked ? linked : etag);
    copy_tag(o->validator, find_header(h, "ETag", 1));
    if (!tag_sha256(linked, o->sha256) && !tag_sha256(etag, o->sha256)) o->sha256[0] = '\0';
}

void rsclip__hub_http(const hub_req *q, const char *url, hub_sink *sink, const char *if_range,
                      http_outcome *o) {
    const char *token = getenv("HF_TOKEN");
    for (const char *t = token; t && *t; t++)
        if ((unsigned char)*t < 0x21 || *t == 0x7f) token = NULL; /* no header injection */
    if (token && !token[0]) token = NULL;
    const int ranged = sink && sink->start > 0;
    size_t cap = (token ? strlen(token) : 0) + (ranged ? strlen(if_range) : 0) + 128;
    char *headers = CPLMalloc(cap);
    size_t hl = 0;
    headers[0] = '\0';
    if (token) hl = (size_t)snprintf(headers, cap, "Authorization: Bearer %s", token);
    if (ranged)
        snprintf(headers + hl, cap - hl, "%sRange: bytes=%llu-\r\nIf-Range: %s", hl ? "\r\n" : "",
                 (unsigned long long)sink->start, if_range);
    char **opts = NULL;
    if (headers[0]) opts = CSLSetNameValue(opts, "HEADERS", headers);
    CPLFree(headers);
    if (!sink) opts = CSLSetNameValue(opts, "NO_BODY", "YES");
    /* A failed attempt must not be retried inside GDAL: its body would follow the bytes already
     * written. Stalls and trickles end the transfer instead of hanging it. */
    opts = CSLSetNameValue(opts, "MAX_RETRY", "0");
    if (!CPLGetConfigOption("GDAL_HTTP_CONNECTTIMEOUT", NULL))
        opts = CSLSetNameValue(opts, "CONNECTTIMEOUT", "30");
    if (!CPLGetConfigOption("GDAL_HTTP_LOW_SPEED_TIME", NULL)) {
        opts = CSLSetNameValue(opts, "LOW_SPEED_TIME", "60");
        opts = CSLSetNameValue(opts, "LOW_SPEED_LIMIT", "1024");
    }
    double left = rsclip__hub_time_left(q);
    if (q->deadline > 0) {
        char t[32];
        snprintf(t, sizeof t, "%d", left < 1 ? 1 : left > 1e8 ? 100000000 : (int)ceil(left));
        opts = CSLSetNameValue(opts, "TIMEOUT", t); /* curl's bound on the whole request */
    }

    /* Byte counts must be the file's: no transparent gzip. */
    char *old_gzip = NULL;
    const char *g = CPLGetThreadLocalConfigOption("CPL_CURL_GZIP", NULL);
    if (g) old_gzip = CPLStrdup(g);
    CPLSetThreadLocalConfigOption("CPL_CURL_GZIP", "NO");
    rsclip__gdal_errors errs;
    rsclip__gdal_errors_push(&errs);
    CPLHTTPResult *r = sink ? CPLHTTPFetchEx(url, opts, progress_cb, sink, write_cb, sink)
                            : CPLHTTPFetch(url, opts);
    rsclip__gdal_errors_pop(&errs);
    CPLSetThreadLocalConfigOption("CPL_CURL_GZIP", old_gzip);
    CPLFree(old_gzip);
    CSLDestroy(opts);

    memset(o, 0, sizeof *o);
    o->length = o->range_first = o->range_total = o->linked_size = HUB_UNKNOWN;
    if (!r) {
        o->failed = 1;
        snprintf(o->err, sizeof o->err, "%s", errs.msg[0] ? errs.msg : "HTTP is not available");
        return;
    }
    read_outcome(r, o);
    snprintf(o->err, sizeof o->err, "%s", r->pszErrBuf ? r->pszErrBuf : errs.msg);
    for (char *p = o->err; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    CPLHTTPDestroyResult(r);
    if (q->deadline > 0 && rsclip__hub_time_left(q) <= 0 && (o->failed || o->code)) {
        o->failed = 1;
        if (sink) sink->past_deadline = 1;
    }
}
