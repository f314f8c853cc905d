/* Times of scenes: ISO 8601 text in and out, periods for partial dates, file-name patterns with
 * named groups (PCRE2, the regular expressions GDAL itself links). See rsclip/time.h. */
#include "rsclip/time.h"
#include "status/status_internal.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS_PER_DAY 86400000LL

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d) {
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)((int64_t)yoe + era * 400 + (*m <= 2));
}

static int days_in_month(int y, int m) {
    static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : d[m - 1];
}

/* n digits at *p into *v; advances. */
static int digits(const char **p, int n, int *v) {
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i])) return -1;
        x = x * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *v = x;
    return 0;
}

/* One time text [p, end) into a span. */
static int parse_one(const char *p, const char *end, rsclip_time *t) {
    int y, mo = 1, d = 1, h = 0, mi = 0, s = 0, ms = 0, prec = 0; /* 0 y, 1 m, 2 d, 3 instant */
    if (digits(&p, 4, &y) || y < 1) return -1;
    if (p < end && (*p == '-' || *p == ':')) {
        char sep = *p++;
        if (digits(&p, 2, &mo) || mo < 1 || mo > 12) return -1;
        prec = 1;
        if (p < end && *p == sep) {
            p++;
            if (digits(&p, 2, &d) || d < 1 || d > days_in_month(y, mo)) return -1;
            prec = 2;
        }
    }
    if (prec == 2 && p < end && (*p == 'T' || *p == 't' || *p == ' ')) {
        p++;
        if (digits(&p, 2, &h) || h > 23 || p >= end || *p++ != ':' || digits(&p, 2, &mi) || mi > 59)
            return -1;
        if (p < end && *p == ':') {
            p++;
            if (digits(&p, 2, &s) || s > 59) return -1;
            if (p < end && (*p == '.' || *p == ',')) {
                p++;
                int n = 0, scale = 100;
                while (p < end && isdigit((unsigned char)*p)) {
                    if (n++ < 3) ms += (*p - '0') * scale, scale /= 10;
                    p++;
                }
                if (n == 0) return -1;
            }
        }
        prec = 3;
    }
    int64_t off_min = 0;
    if (prec == 3 && p < end && (*p == 'Z' || *p == 'z')) {
        p++;
    } else if (prec == 3 && p < end && (*p == '+' || *p == '-')) {
        int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
        if (digits(&p, 2, &oh) || oh > 23) return -1;
        if (p < end && *p == ':') p++;
        if (p < end && digits(&p, 2, &om)) return -1;
        if (om > 59) return -1;
        off_min = sign * (oh * 60 + om);
    }
    if (p != end) return -1;
    int64_t day = days_from_civil(y, (unsigned)mo, (unsigned)d);
    t->start_ms =
        day * MS_PER_DAY + ((int64_t)h * 3600 + mi * 60 + s) * 1000 + ms - off_min * 60000;
    /* a period is closed: it ends one millisecond before the next one starts */
    if (prec == 3) {
        t->end_ms = t->start_ms;
    } else if (prec == 2) {
        t->end_ms = t->start_ms + MS_PER_DAY - 1;
    } else if (prec == 1) {
        t->end_ms = (day + days_in_month(y, mo)) * MS_PER_DAY - 1;
    } else {
        t->end_ms = days_from_civil(y + 1, 1, 1) * MS_PER_DAY - 1;
    }
    return 0;
}

int rsclip_time_parse(const char *text, rsclip_time *out) {
    if (!text || !out) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "time: no text");
    const char *slash = strchr(text, '/'), *end = text + strlen(text);
    rsclip_time a, b;
    int bad;
    if (!slash) {
        bad = parse_one(text, end, &a);
        if (!bad) *out = a;
    } else {
        const char *bs = slash + 1;
        int open_a = slash == text || (slash - text == 2 && text[0] == '.' && text[1] == '.');
        int open_b = bs == end || strcmp(bs, "..") == 0;
        bad = (open_a && open_b) || strchr(bs, '/') != NULL;
        if (!bad && !open_a) bad = parse_one(text, slash, &a);
        if (!bad && !open_b) bad = parse_one(bs, end, &b);
        if (!bad) {
            out->start_ms = open_a ? INT64_MIN : a.start_ms;
            out->end_ms = open_b ? INT64_MAX : b.end_ms;
            bad = out->end_ms < out->start_ms;
        }
    }
    if (bad)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "'%s' is not a time: want ISO 8601 such as 2021, 2021-05, 2021-05-27, "
                             "2021-05-27T11:21:21Z or an interval 2019/2023",
                             text);
    return RSCLIP_OK;
}

static int format_ms(int64_t ms, char *buf, size_t cap) {
    if (ms == INT64_MIN || ms == INT64_MAX) return snprintf(buf, cap, "..");
    int64_t day = ms >= 0 ? ms / MS_PER_DAY : -((-ms + MS_PER_DAY - 1) / MS_PER_DAY);
    int64_t rest = ms - day * MS_PER_DAY;
    int y, m, d;
    civil_from_days(day, &y, &m, &d);
    int h = (int)(rest / 3600000), mi = (int)(rest / 60000 % 60), s = (int)(rest / 1000 % 60),
        f = (int)(rest % 1000);
    if (f) return snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, m, d, h, mi, s, f);
    return snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d, h, mi, s);
}

int rsclip_time_format(const rsclip_time *t, char *buf, size_t cap) {
    if (!t || !buf || cap == 0) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "time: no buffer");
    int n = format_ms(t->start_ms, buf, cap);
    if (n >= 0 && (size_t)n < cap && t->end_ms != t->start_ms) {
        buf[n++] = '/';
        int m = (size_t)n < cap ? format_ms(t->end_ms, buf + n, cap - (size_t)n) : -1;
        n = m < 0 ? -1 : n + m;
    }
    if (n < 0 || (size_t)n >= cap)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "time: %zu bytes are too few", cap);
    return RSCLIP_OK;
}

int rsclip_time_overlaps(const rsclip_time *a, const rsclip_time *b) {
    if (!a || !b) return 0;
    return a->start_ms <= b->end_ms && b->start_ms <= a->end_ms; /* closed spans */
}

/* ---- file names ------------------------------------------------------------------------------ */

static const char *preset(const char *pattern) {
    if (strcmp(pattern, "sentinel2") == 0) /* S2A_MSIL2A_20210527T112121_N0300_R037_... */
        return "^S2[A-D]_MSI(?:L1C|L2A)_(?<year>\\d{4})(?<month>\\d{2})(?<day>\\d{2})T"
               "(?<hour>\\d{2})(?<minute>\\d{2})(?<second>\\d{2})_";
    if (strcmp(pattern, "landsat") == 0) /* LC08_L2SP_023036_20200905_20200918_02_T1 */
        return "^L[COTEM]0\\d_L\\w{3}_\\d{6}_(?<year>\\d{4})(?<month>\\d{2})(?<day>\\d{2})_";
    return pattern;
}

static pcre2_code *compile(const char *pattern) {
    int err = 0;
    PCRE2_SIZE off = 0;
    const char *p = preset(pattern);
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)p, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &err, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        rsclip__error(RSCLIP_ERR_INVALID_ARG, "name pattern '%s': %s at offset %zu", pattern,
                      (const char *)msg, (size_t)off);
        return NULL;
    }
    if (pcre2_substring_number_from_name(re, (PCRE2_SPTR) "year") < 0) {
        pcre2_code_free(re);
        rsclip__error(RSCLIP_ERR_INVALID_ARG,
                      "name pattern '%s' has no (?<year>...) group (and month, day, hour, minute, "
                      "second as it can)",
                      pattern);
        return NULL;
    }
    return re;
}

int rsclip_time_pattern_check(const char *pattern) {
    if (!pattern) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "name pattern: none");
    pcre2_code *re = compile(pattern);
    if (!re) return RSCLIP_ERR_INVALID_ARG;
    pcre2_code_free(re);
    return RSCLIP_OK;
}

/* The named group's digits as a number; -1 when the group is absent or did not take part. */
static int group(pcre2_code *re, pcre2_match_data *md, const char *subject, const char *name) {
    int n = pcre2_substring_number_from_name(re, (PCRE2_SPTR)name);
    if (n < 0) return -1;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    if (ov[2 * n] == PCRE2_UNSET) return -1;
    int v = 0;
    for (PCRE2_SIZE i = ov[2 * n]; i < ov[2 * n + 1]; i++) {
        if (!isdigit((unsigned char)subject[i]) || v > 99999) return -2;
        v = v * 10 + (subject[i] - '0');
    }
    return ov[2 * n + 1] > ov[2 * n] ? v : -2;
}

int rsclip_time_from_name(const char *path, const char *pattern, rsclip_time *out) {
    if (!path || !pattern || !out)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_time_from_name: NULL argument");
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    pcre2_code *re = compile(pattern);
    if (!re) return RSCLIP_ERR_INVALID_ARG;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = 0;
    if (!md) {
        rc = rsclip__error(RSCLIP_ERR_NOMEM, "out of memory");
    } else if (pcre2_match(re, (PCRE2_SPTR)base, strlen(base), 0, 0, md, NULL) >= 0) {
        static const char *const names[] = {"year", "month", "day", "hour", "minute", "second"};
        int v[6];
        for (int k = 0; k < 6; k++) v[k] = group(re, md, base, names[k]);
        char text[96];
        int bad = v[0] < 0;
        for (int k = 0; k < 6; k++) bad |= v[k] == -2;
        if (!bad) {
            /* the text of the precision the name has: a day without a time is that day */
            if (v[3] >= 0)
                snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02dZ", v[0],
                         v[1] < 0 ? 1 : v[1], v[2] < 0 ? 1 : v[2], v[3], v[4] < 0 ? 0 : v[4],
                         v[5] < 0 ? 0 : v[5]);
            else if (v[2] >= 0)
                snprintf(text, sizeof text, "%04d-%02d-%02d", v[0], v[1] < 0 ? 1 : v[1], v[2]);
            else if (v[1] >= 0)
                snprintf(text, sizeof text, "%04d-%02d", v[0], v[1]);
            else
                snprintf(text, sizeof text, "%04d", v[0]);
            rc = rsclip_time_parse(text, out) == RSCLIP_OK ? 1 : 0;
            rsclip_clear_error(); /* a match that is no date (month 13): no time, not an error */
        }
    }
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return rc;
}
