/* UTF-8 helpers and lookups in the generated Unicode tables (unicode_tables.c). */
#include "tokenizer/tokenizer_internal.h"
#include "tokenizer/unicode_tables.h"

size_t rsclip__utf8_check(const char *str, size_t len) {
    const uint8_t *s = (const uint8_t *)str;
    size_t i = 0;
    while (i < len) {
        uint8_t b = s[i];
        size_t n;
        uint32_t cp, min;
        if (b < 0x80) {
            i++;
            continue;
        } else if ((b & 0xE0) == 0xC0) {
            n = 2, cp = b & 0x1F, min = 0x80;
        } else if ((b & 0xF0) == 0xE0) {
            n = 3, cp = b & 0x0F, min = 0x800;
        } else if ((b & 0xF8) == 0xF0) {
            n = 4, cp = b & 0x07, min = 0x10000;
        } else {
            return i;
        }
        if (len - i < n) return i;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += n;
    }
    return len;
}

size_t rsclip__utf8_decode(const char *str, uint32_t *cp) {
    const uint8_t *s = (const uint8_t *)str;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if ((s[0] & 0xE0) == 0xC0) {
        *cp = ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if ((s[0] & 0xF0) == 0xE0) {
        *cp = ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    *cp = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
          ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    return 4;
}

size_t rsclip__utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int rsclip__unicode_lower(uint32_t cp, uint32_t out[3]) {
    for (int i = 0; i < rsclip__n_lower_multis; i++) {
        if (rsclip__lower_multis[i].cp == cp) {
            for (int k = 0; k < rsclip__lower_multis[i].n; k++)
                out[k] = rsclip__lower_multis[i].to[k];
            return rsclip__lower_multis[i].n;
        }
    }
    /* last run with first <= cp */
    int lo = 0, hi = rsclip__n_lower_runs;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (rsclip__lower_runs[mid].first <= cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    out[0] = cp;
    if (lo > 0) {
        const rsclip__lower_run *r = &rsclip__lower_runs[lo - 1];
        if (cp <= r->last && (cp - r->first) % (uint32_t)r->stride == 0)
            out[0] = (uint32_t)((int32_t)cp + r->delta);
    }
    return 1;
}

int rsclip__unicode_isspace(uint32_t cp) {
    int lo = 0, hi = rsclip__n_space_ranges;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (rsclip__space_ranges[mid].first <= cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo > 0 && cp <= rsclip__space_ranges[lo - 1].last;
}
