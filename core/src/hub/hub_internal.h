/* Private declarations of the hub module: one fetch's settings, the HTTP layer (hub_http.c, over
 * GDAL's CPL HTTP = libcurl) and the download of one verified file (hub_file.c). */
#ifndef RSCLIP_HUB_INTERNAL_H
#define RSCLIP_HUB_INTERNAL_H

#include "rsclip/hub.h"

#include <stddef.h>
#include <stdint.h>

#define HUB_PATH_MAX 4096
#define HUB_TAG_MAX 256
#define HUB_UNKNOWN UINT64_MAX

/* One fetch: where from, where to, and its bounds. */
typedef struct hub_req {
    const char *endpoint; /* without a trailing '/' */
    const char *repo;
    const char *dir;
    rsclip_progress_fn progress;
    void *user;
    uint64_t max_bytes; /* size cap of one file */
    double deadline;    /* rsclip__mono_s() seconds; 0 = none */
    double timeout_s;   /* the deadline's length, for messages */
} hub_req;

/* What one request's answer said (judged after the fact: CPL HTTP reports the status and headers
 * only once the body is written). Headers of redirects are collected too: the hub's own answer
 * (X-Linked-*, its ETag) comes first, the server that sent the bytes (a CDN) last. */
typedef struct http_outcome {
    int code;                   /* HTTP status when >= 400 (GDAL reports no other), else 0 */
    int failed;                 /* the transfer itself failed (connection, timeout, write, abort) */
    uint64_t length;            /* last Content-Length, HUB_UNKNOWN if none */
    uint64_t range_first;       /* last Content-Range, HUB_UNKNOWN if none (no 206) */
    uint64_t range_total;       /* total of the last Content-Range, HUB_UNKNOWN if none */
    uint64_t linked_size;       /* X-Linked-Size, HUB_UNKNOWN if none */
    char sha256[65];            /* announced SHA-256 (X-Linked-Etag, or an ETag of 64 hex), or "" */
    char identity[HUB_TAG_MAX]; /* the version the hub lists: X-Linked-Etag, else its ETag */
    char validator[HUB_TAG_MAX]; /* ETag of the server that sent the bytes: for If-Range */
    char err[512];               /* curl's or GDAL's message, one line */
} http_outcome;

/* Where a GET body goes: pwrite at start + written on fd; stops (the transfer then fails) at the
 * size cap, at the deadline, on a write error or when progress asks to cancel. */
typedef struct hub_sink {
    int fd;
    uint64_t start;   /* offset of the first body byte in the file */
    uint64_t written; /* body bytes written so far */
    uint64_t total;   /* expected file size (progress), HUB_UNKNOWN if unknown */
    int write_errno, cancelled, over_cap, past_deadline;
    const char *file;
    const hub_req *q;
} hub_sink;

/* One request through GDAL's curl: sink NULL = HEAD; else GET into sink, with "Range: bytes=
 * <start>-" and "If-Range: <if_range>" when sink->start > 0. $HF_TOKEN goes as a bearer token. */
void rsclip__hub_http(const hub_req *q, const char *url, hub_sink *sink, const char *if_range,
                      http_outcome *o);

/* Seconds left before q's deadline (a large number when there is none). */
double rsclip__hub_time_left(const hub_req *q);

/* Download dir/file from the hub, verified, unless a valid copy is already there.
 * RSCLIP_ERR_NOT_FOUND when the hub answers 404 (nothing is written then). */
int rsclip__hub_fetch_file(const hub_req *q, const char *file);

#endif
