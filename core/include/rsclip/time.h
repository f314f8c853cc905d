/*
 * rsclip/time.h -- when a scene was taken: instants and periods in UTC, parsed from ISO 8601 /
 * RFC 3339 text, from raster metadata and from file names, and written back as text.
 *
 * A time is a closed span [start, end] of UTC milliseconds since 1970. An instant has
 * start == end. Text with less precision than a second names the whole period it spans:
 * "2021" is all of 2021 (2021-01-01T00:00:00Z .. 2021-12-31T23:59:59.999Z), "2021-05" all of May
 * 2021, "2021-05-27" that day; so a filter `--after 2019 --before 2020` means 2019-01-01 ..
 * 2020-12-31 (both periods included).
 *
 *     rsclip_time t;
 *     rsclip_time_parse("2021-05-27T11:21:21.5+02:00", &t);   // instant, 09:21:21.500 UTC
 *     rsclip_time_parse("2019/2023", &t);                       // 2019-01-01 .. 2023-12-31
 *     char buf[RSCLIP_TIME_TEXT_MAX];
 *     rsclip_time_format(&t, buf, sizeof buf);                  // "2019-01-01T00:00:00Z/2024-..."
 */
#ifndef RSCLIP_TIME_H
#define RSCLIP_TIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RSCLIP_TIME_TEXT_MAX 64 /* an interval "start/end" with milliseconds, and the NUL */

typedef struct rsclip_time {
    int64_t start_ms; /* UTC milliseconds since 1970-01-01 */
    int64_t end_ms;   /* == start_ms for an instant; else the last millisecond of the span */
} rsclip_time;

/* Parse one time: "YYYY", "YYYY-MM", "YYYY-MM-DD" (periods), "YYYY-MM-DDTHH:MM[:SS[.fff]]" with
 * "Z", "+hh:mm", "-hh:mm" or no zone (UTC) (instants; "T" may be a space; TIFF's
 * "YYYY:MM:DD HH:MM:SS" too), or an interval "A/B" of two of these (from the start of A to the
 * end of B, so "2019/2023" is 2019-01-01 .. 2023-12-31; ".." or "" leaves a side open). Years
 * 0001..9999. RSCLIP_ERR_INVALID_ARG, naming the
 * text, for anything else (a month 13, a 30 February, trailing text). */
int rsclip_time_parse(const char *text, rsclip_time *out);

/* ISO 8601 UTC: "YYYY-MM-DDTHH:MM:SS[.fff]Z" for an instant, "start/end" for a span (its first
 * and last millisecond; an open side written ".."). RSCLIP_ERR_INVALID_ARG if cap is too
 * small. */
int rsclip_time_format(const rsclip_time *t, char *buf, size_t cap);

/* The time a file name carries, by a pattern with named groups (Perl/Python syntax through
 * PCRE2: (?<year>...) or (?P<year>...), and month, day, hour, minute, second; year is required,
 * the others default to the start of the period: a name with only year, month and day gives
 * that day). pattern may also be one of the presets "sentinel2" (S2A_MSIL2A_20210527T112121_...)
 * and "landsat" (LC08_L2SP_023036_20200905_...). Returns 1 and *out when the name matches, 0
 * when it does not, or a negative status for a bad pattern (RSCLIP_ERR_INVALID_ARG: the message
 * says where). Only the base name of path is matched. */
int rsclip_time_from_name(const char *path, const char *pattern, rsclip_time *out);

/* Check a --datetime-from-name pattern without a name: RSCLIP_OK or INVALID_ARG. */
int rsclip_time_pattern_check(const char *pattern);

/* Do a and b overlap? (closed spans: an instant on a span's last millisecond is inside) */
int rsclip_time_overlaps(const rsclip_time *a, const rsclip_time *b);

#ifdef __cplusplus
}
#endif
#endif
