/* Helpers shared by the rsclip commands (see app.h). */
#include "app.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int app_error(const char *fmt, ...) {
    va_list ap;
    fputs("rsclip: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return APP_ERROR;
}

int app_fail(void) {
    const char *msg = rsclip_last_error();
    return app_error("%s", msg[0] ? msg : rsclip_status_name(rsclip_last_status()));
}

int app_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "rsclip %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'rsclip %s --help'.\n", cmd);
    return APP_USAGE;
}

static void log_sink(int level, const char *msg, void *user) {
    int threshold = (int)(intptr_t)user;
    if (level < threshold) return;
    const char *tag = level >= RSCLIP_LOG_ERROR  ? "error: "
                      : level >= RSCLIP_LOG_WARN ? "warning: "
                                                 : "";
    fprintf(stderr, "rsclip: %s%s\n", tag, msg);
}

void app_install_log(void) {
    int threshold = RSCLIP_LOG_WARN;
    const char *env = getenv("RSCLIP_LOG");
    if (env && strcmp(env, "info") == 0) threshold = RSCLIP_LOG_INFO;
    if (env && strcmp(env, "debug") == 0) threshold = RSCLIP_LOG_DEBUG;
    rsclip_set_log(log_sink, (void *)(intptr_t)threshold);
}

int app_bad_option(const char *cmd, int ch, char **argv) {
    extern int optind, optopt;
    const char *arg = optind > 0 ? argv[optind - 1] : "?";
    if (ch == ':') return app_usage_error(cmd, "option '%s' needs a value", arg);
    if (optopt && arg[0] == '-' && arg[1] != '-')
        return app_usage_error(cmd, "unknown option '-%c'", optopt);
    return app_usage_error(cmd, "unknown option '%s'", arg);
}

int app_parse_int(const char *cmd, const char *opt, const char *s, int min, int max, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return app_usage_error(cmd, "%s: expected an integer in [%d, %d], got '%s'", opt, min, max,
                               s);
    *out = (int)v;
    return 0;
}

int app_parse_device(const char *cmd, const char *s, rsclip_device *out) {
    if (rsclip_device_parse(s, out) != RSCLIP_OK)
        return app_usage_error(cmd, "--device: %s", rsclip_last_error());
    return 0;
}

int app_load_model(const char *name, rsclip_model **out) {
    char dir[4096];
    *out = NULL;
    if (rsclip_hub_resolve(name, dir, sizeof dir) != RSCLIP_OK) return app_fail();
    if (rsclip_model_load(dir, NULL, out) != RSCLIP_OK) return app_fail();
    /* A model found in the hub cache is known by its repo id, not by its folder's name. */
    if (strcmp(dir, name) != 0 &&
        rsclip_model_set_name(*out, rsclip_hub_repo_id(name)) != RSCLIP_OK) {
        rsclip_model_free(*out);
        *out = NULL;
        return app_fail();
    }
    return APP_OK;
}

/* Length of the valid UTF-8 sequence at s (1..4), 0 if invalid. */
static int utf8_len(const unsigned char *s) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    int n;
    unsigned min;
    if ((c & 0xE0) == 0xC0) {
        n = 2;
        min = 0x80;
        c &= 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3;
        min = 0x800;
        c &= 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4;
        min = 0x10000;
        c &= 0x07;
    } else {
        return 0;
    }
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    return n;
}

void app_json_string(FILE *f, const char *str) {
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', f);
    while (*s) {
        unsigned c = *s;
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc((int)c, f);
            s++;
        } else if (c == '\n') {
            fputs("\\n", f);
            s++;
        } else if (c == '\t') {
            fputs("\\t", f);
            s++;
        } else if (c == '\r') {
            fputs("\\r", f);
            s++;
        } else if (c < 0x20 || c == 0x7F) {
            fprintf(f, "\\u%04x", c);
            s++;
        } else {
            int n = utf8_len(s);
            if (n == 0) {
                fputs("\\ufffd", f);
                s++;
            } else {
                fwrite(s, 1, (size_t)n, f);
                s += n;
            }
        }
    }
    fputc('"', f);
}

void app_json_float(FILE *f, float v) {
    if (!isfinite(v))
        fputs("null", f);
    else
        fprintf(f, "%.9g", (double)v);
}

int app_image_pixels(const rsclip_model *m, const char *path, float *px) {
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    if (rsclip_image_read_rgb8(path, &rgb, &w, &h) != RSCLIP_OK) return app_fail();
    int rc = rsclip_preprocess_rgb8(m, rgb, w, h, (size_t)w * 3, px);
    rsclip_free(rgb);
    if (rc != RSCLIP_OK) return app_error("%s: %s", path, rsclip_last_error());
    return APP_OK;
}

void app_progress_update(app_progress *p, const char *label, double frac) {
    if (!p->f) return;
    if (label && strcmp(label, p->label) != 0) {
        if (p->open) fputc('\n', p->f);
        snprintf(p->label, sizeof p->label, "%s", label);
        fprintf(p->f, "%s ", p->label);
        p->ticks = -1;
        p->open = 1;
    }
    if (!p->open) return; /* this label is done */
    if (frac < 0) frac = 0;
    if (frac > 1) frac = 1;
    int target = (int)(frac * 40.0 + 1e-9);
    while (p->ticks < target) {
        p->ticks++;
        if (p->ticks % 4 == 0)
            fprintf(p->f, "%d", p->ticks * 10 / 4);
        else
            fputc('.', p->f);
    }
    if (p->ticks == 40) {
        fputs(" - done.\n", p->f);
        p->open = 0;
    }
    fflush(p->f);
}

void app_progress_finish(app_progress *p) {
    if (p->f && p->open) {
        fputc('\n', p->f);
        fflush(p->f);
    }
    p->open = 0;
}

/* app.h */
int app_parse_numbers(const char *s, double *v, int n) {
    const char *p = s;
    for (int i = 0; i < n; i++) {
        char *end;
        v[i] = strtod(p, &end);
        if (end == p || !isfinite(v[i])) return -1;
        p = end;
        if (i < n - 1) {
            if (*p != ',') return -1;
            p++;
        }
    }
    return *p == '\0' ? 0 : -1;
}

int app_parse_threads(const char *cmd, const char *arg, int *out) {
    return app_parse_int(cmd, "-j/--threads", arg, 1, 1024, out);
}

app_common app_common_default(void) {
    app_common c = {NULL, 0, RSCLIP_PRECISION_AUTO, 0, 0};
    return c;
}

int app_common_option(const char *cmd, int ch, const char *arg, app_common *c) {
    switch (ch) {
    case 'm':
        if (!*arg) {
            app_usage_error(cmd, "-m wants a model");
            return -1;
        }
        c->model = arg;
        return 1;
    case 'j':
        return app_parse_threads(cmd, arg, &c->threads) ? -1 : 1;
    case APP_O_PRECISION:
        if (rsclip_precision_parse(arg, &c->precision) == RSCLIP_OK) return 1;
        app_usage_error(cmd, "--precision: %s", rsclip_last_error());
        return -1;
    case 'b':
        return app_parse_int(cmd, "--batch", arg, 1, APP_BATCH_MAX, &c->batch) ? -1 : 1;
    case 'q':
        c->quiet = 1;
        return 1;
    default:
        return 0;
    }
}
