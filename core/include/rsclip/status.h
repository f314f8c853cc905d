/*
 * rsclip/status.h -- result codes, the per-thread last error, and the log sink.
 *
 * Every fallible rsclip function returns an int: RSCLIP_OK (0) on success, one of the negative
 * rsclip_status codes on failure. The human-readable detail of the most recent failure on the
 * calling thread is kept and can be fetched with rsclip_last_error() until the next failing call
 * on that thread. The library never prints to stdout, never exits and never aborts; diagnostics go
 * through one log sink (stderr-free by default: messages are dropped until a sink is installed).
 *
 *     if (rsclip_model_load("model/", NULL, &m) != RSCLIP_OK)
 *         fprintf(stderr, "rsclip: %s\n", rsclip_last_error());
 */
#ifndef RSCLIP_STATUS_H
#define RSCLIP_STATUS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rsclip_status {
    RSCLIP_OK = 0,
    RSCLIP_ERR_INVALID_ARG = -1, /* a caller passed something the API does not accept */
    RSCLIP_ERR_NOMEM = -2,       /* an allocation failed or a size would overflow */
    RSCLIP_ERR_IO = -3,          /* a file could not be opened, read, mapped or written */
    RSCLIP_ERR_FORMAT = -4,      /* a file's content is malformed (checkpoint, spiece.model, ...) */
    RSCLIP_ERR_UNSUPPORTED = -5, /* valid but not handled (dtype, band type, schema version) */
    RSCLIP_ERR_NOT_FOUND = -6,   /* a named thing (file, tensor, tile, scene) does not exist */
    RSCLIP_ERR_MISMATCH = -7,    /* two things that must agree do not (model vs index, shapes) */
    RSCLIP_ERR_NETWORK = -8,     /* an HTTP transfer failed */
    RSCLIP_ERR_DB = -9,          /* SQLite reported an error */
    RSCLIP_ERR_CANCELLED = -10,  /* a progress callback asked to stop */
    RSCLIP_ERR_GDAL = -11,       /* GDAL/OGR/PROJ reported an error */
    RSCLIP_ERR_INTERNAL = -12,   /* a bug: please report it */
    RSCLIP_ERR_EXISTS = -13      /* an output exists and replacing it was not asked for */
} rsclip_status;

/* Short constant name of a status code ("RSCLIP_ERR_IO"); never NULL. */
const char *rsclip_status_name(int code);

/* Detail message of the last failure on this thread ("" if none). The pointer stays valid until the
 * next rsclip call on this thread. */
const char *rsclip_last_error(void);

/* Status code of the last failure on this thread (RSCLIP_OK if none). */
int rsclip_last_status(void);

/* Forget the last error of this thread. */
void rsclip_clear_error(void);

typedef enum rsclip_log_level {
    RSCLIP_LOG_DEBUG = 0,
    RSCLIP_LOG_INFO = 1,
    RSCLIP_LOG_WARN = 2,
    RSCLIP_LOG_ERROR = 3
} rsclip_log_level;

typedef void (*rsclip_log_fn)(int level, const char *msg, void *user);

/* Install the process-wide log sink (NULL drops messages). Not thread-safe against concurrent
 * logging: install it once at start-up. Failures are also logged at RSCLIP_LOG_DEBUG. */
void rsclip_set_log(rsclip_log_fn fn, void *user);

/* Memory handed out by rsclip (strings, arrays) is released with rsclip_free. NULL is a no-op. */
void rsclip_free(void *p);

/* Library version, "MAJOR.MINOR.PATCH". */
const char *rsclip_version(void);

#ifdef __cplusplus
}
#endif
#endif
