/* Private helpers of the status module, shared by every module of the library. */
#ifndef RSCLIP_STATUS_INTERNAL_H
#define RSCLIP_STATUS_INTERNAL_H

#include "rsclip/status.h"

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define RSCLIP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define RSCLIP_PRINTF(a, b)
#endif

/* Record code + formatted message as this thread's last error; returns code so that callers can
 * write `return rsclip__error(RSCLIP_ERR_IO, "%s: cannot open", path);`. */
int rsclip__error(int code, const char *fmt, ...) RSCLIP_PRINTF(2, 3);
int rsclip__verror(int code, const char *fmt, va_list ap);

/* Prefix this thread's last error with "prefix: " (keeps the code); returns the code. Used to add
 * context (a file name) to an error raised deeper down. */
int rsclip__error_prefix(const char *prefix);

/* Send a message to the log sink. */
void rsclip__log(int level, const char *fmt, ...) RSCLIP_PRINTF(2, 3);

/* Overflow-checked size arithmetic: return 0 on success, non-zero on overflow. */
static inline int rsclip__mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > (size_t)-1 / a) return 1;
    *out = a * b;
    return 0;
}
static inline int rsclip__add_size(size_t a, size_t b, size_t *out) {
    if (b > (size_t)-1 - a) return 1;
    *out = a + b;
    return 0;
}

#define RSCLIP_VERSION_STRING "0.1.0"

#ifdef __cplusplus
}
#endif
#endif
