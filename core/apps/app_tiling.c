/* The tiling options shared by `rsclip index` and `rsclip plan`, and the shard a worker of an
 * array job indexes (--shard I/N, auto from Slurm, Kubernetes or AWS Batch). */
#include "app.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int parse_fraction(const char *s, double lo_excl, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v) || !(v > lo_excl)) return -1;
    *out = v;
    return 0;
}

int app_tiling_option(const char *cmd, int opt, const char *arg, rsclip_tiler_params *tp) {
    switch (opt) {
    case APP_O_STRIDE:
        return app_parse_int(cmd, "--stride", arg, 1, 1 << 20, &tp->stride) ? APP_USAGE : 0;
    case APP_O_BANDS:
        if (rsclip_tiler_parse_bands(arg, tp))
            return app_usage_error(cmd, "--bands wants R,G,B or one band, e.g. 4,3,2");
        return 0;
    case APP_O_MIN_VALID:
        if (parse_fraction(arg, -1.0, &tp->min_valid) || tp->min_valid > 1)
            return app_usage_error(cmd, "--min-valid wants a fraction in 0..1");
        return 0;
    case APP_O_SCALE:
        if (rsclip_tiler_parse_scale(arg, tp))
            return app_usage_error(cmd, "--scale wants auto, none, MIN,MAX or "
                                        "MIN1,MAX1,MIN2,MAX2,MIN3,MAX3 (MAX > MIN)");
        return 0;
    case APP_O_GSD:
        if (parse_fraction(arg, 0.0, &tp->gsd))
            return app_usage_error(cmd, "--gsd wants a resolution in metres");
        return 0;
    case APP_O_RESAMPLING:
        tp->resampling = arg;
        return 0;
    case APP_O_ALLOW_PIXEL:
        tp->allow_pixel_coords = 1;
        return 0;
    case APP_O_MAX_TILES: {
        char *end;
        errno = 0;
        long long v = strtoll(arg, &end, 10);
        if (errno || end == arg || *end || v < 1)
            return app_usage_error(cmd, "--max-tiles wants a positive number of tiles");
        tp->max_tiles = v;
        return 0;
    }
    }
    return app_usage_error(cmd, "internal: unknown tiling option %d", opt);
}

/* ---- --shard ----------------------------------------------------------------------------- */

/* A non-negative integer from the environment: 1 and *v, 0 if unset, -1 if set but not one. */
static int env_int(const char *name, long long *v) {
    const char *s = getenv(name);
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    *v = strtoll(s, &end, 10);
    return errno || *end || *v < 0 ? -1 : 1;
}

static int shard_from_env(int want_n, int *index, int *count) {
    long long id, min, n, step = 1;
    int has_id = env_int("SLURM_ARRAY_TASK_ID", &id);
    if (has_id) {
        if (has_id < 0 || env_int("SLURM_ARRAY_TASK_MIN", &min) != 1 ||
            env_int("SLURM_ARRAY_TASK_COUNT", &n) != 1 ||
            env_int("SLURM_ARRAY_TASK_STEP", &step) < 0)
            return app_error("--shard auto: the Slurm array variables (SLURM_ARRAY_TASK_ID, _MIN, "
                             "_COUNT) are missing or not numbers");
        if (step < 1) step = 1;
        if (id < min || (id - min) % step != 0 || (id - min) / step >= n || n > 1000000)
            return app_error("--shard auto: Slurm task %lld is not one of %lld tasks from %lld by "
                             "%lld (use --array=A-B or A-B:S)",
                             id, n, min, step);
        if (want_n && want_n != n)
            return app_error("--shard auto/%d, but the Slurm array has %lld tasks", want_n, n);
        *index = (int)((id - min) / step);
        *count = (int)n;
        return APP_OK;
    }
    static const char *const vars[] = {"JOB_COMPLETION_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX"};
    for (int k = 0; k < 2; k++) {
        int r = env_int(vars[k], &id);
        if (r == 0) continue;
        if (r < 0) return app_error("--shard auto: %s is not a number", vars[k]);
        if (!want_n)
            return app_error("--shard auto: %s gives the index but not the count: use "
                             "--shard auto/N with N the job's parallelism/array size",
                             vars[k]);
        if (id >= want_n)
            return app_error("--shard auto/%d: %s is %lld, not below %d", want_n, vars[k], id,
                             want_n);
        *index = (int)id;
        *count = want_n;
        return APP_OK;
    }
    return app_error("--shard auto: no array job here (none of SLURM_ARRAY_TASK_ID, "
                     "JOB_COMPLETION_INDEX, AWS_BATCH_JOB_ARRAY_INDEX is set): give --shard I/N");
}

int app_parse_shard(const char *cmd, const char *arg, int *index, int *count) {
    if (strncmp(arg, "auto", 4) == 0) {
        int want = 0;
        if (arg[4] == '/') {
            if (app_parse_int(cmd, "--shard auto/N", arg + 5, 1, 1000000, &want)) return APP_USAGE;
        } else if (arg[4]) {
            return app_usage_error(cmd, "--shard wants I/N, auto or auto/N, not '%s'", arg);
        }
        return shard_from_env(want, index, count);
    }
    char *end;
    errno = 0;
    long i = strtol(arg, &end, 10);
    if (errno || end == arg || *end != '/')
        return app_usage_error(cmd, "--shard wants I/N (0 <= I < N), auto or auto/N, not '%s'",
                               arg);
    const char *ns = end + 1;
    long n = strtol(ns, &end, 10);
    if (errno || end == ns || *end || n < 1 || n > 1000000 || i < 0 || i >= n)
        return app_usage_error(cmd, "--shard wants I/N with 0 <= I < N <= 1000000, not '%s'", arg);
    *index = (int)i;
    *count = (int)n;
    return APP_OK;
}
