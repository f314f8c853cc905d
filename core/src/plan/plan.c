/* The plan of an indexing run: scenes with their tile counts, the shard split, the plan file
 * (JSON Lines, read in bounded memory). See rsclip/plan.h. */
#include "base/base.h"
#include "rsclip/plan.h"
#include "json/json.h"
#include "status/status_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PLAN_MAX_LINE (1 << 20) /* a scene line never needs more; a header at most 4 KiB */

/* ---- building ------------------------------------------------------------------------------ */

typedef struct plan_priv {
    rsclip_plan pub;
    size_t cap;
} plan_priv;

static void scene_strings_free(rsclip_plan_scene *s) {
    free((char *)s->path);
    free((char *)s->datetime);
    free((char *)s->stac_item);
    free((char *)s->stac_collection);
    free((char *)s->stac_asset);
}

void rsclip_plan_free(rsclip_plan *p) {
    if (!p) return;
    for (int i = 0; i < p->n_scenes; i++) scene_strings_free(&p->scenes[i]);
    free(p->scenes);
    free(p);
}

static char *dup_opt(const char *s, int *bad) {
    char *d = rsclip__strdup_opt(s);
    if (s && !d) *bad = 1;
    return d;
}

static int push_scene(plan_priv *pp, const rsclip_plan_scene *s) {
    rsclip_plan *p = &pp->pub;
    if ((size_t)p->n_scenes == pp->cap) {
        if (pp->cap > (size_t)0x3fffffff) /* n_scenes is an int */
            return rsclip__error(RSCLIP_ERR_NOMEM, "plan: too many scenes");
        if (rsclip__grow(&p->scenes, &pp->cap, sizeof *p->scenes, 64))
            return rsclip__error(RSCLIP_ERR_NOMEM, "plan: out of memory");
    }
    rsclip_plan_scene *d = &p->scenes[p->n_scenes];
    *d = *s;
    int bad = 0;
    d->path = dup_opt(s->path, &bad);
    d->datetime = dup_opt(s->datetime, &bad);
    d->stac_item = dup_opt(s->stac_item, &bad);
    d->stac_collection = dup_opt(s->stac_collection, &bad);
    d->stac_asset = dup_opt(s->stac_asset, &bad);
    if (bad || !d->path) {
        scene_strings_free(d);
        return rsclip__error(RSCLIP_ERR_NOMEM, "plan: out of memory");
    }
    p->n_scenes++;
    return RSCLIP_OK;
}

/* FNV-1a over the settings and every (path, tile count): the plan's identity. */

static uint64_t digest_scene(uint64_t h, const char *path, int64_t n_tiles) {
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)((uint64_t)n_tiles >> (8 * i));
    h = rsclip__fnv1a(h, path, strlen(path) + 1);
    return rsclip__fnv1a(h, le, 8);
}

int rsclip_plan_make(const char *const *paths, int n_paths, const rsclip_tiler_params *params,
                     void (*on_error)(const char *path, const char *message, void *user),
                     void *user, rsclip_plan **out) {
    if (!out || (n_paths > 0 && !paths) || n_paths < 0)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_plan_make: bad arguments");
    rsclip_input *in = rsclip__calloc((size_t)(n_paths ? n_paths : 1), sizeof *in);
    if (!in) return rsclip__error(RSCLIP_ERR_NOMEM, "plan: out of memory");
    for (int i = 0; i < n_paths; i++) in[i].path = paths[i];
    int rc = rsclip_plan_make_inputs(in, n_paths, params, on_error, user, out);
    free(in);
    return rc;
}

int rsclip_plan_make_inputs(const rsclip_input *inputs, int n_paths,
                            const rsclip_tiler_params *params,
                            void (*on_error)(const char *path, const char *message, void *user),
                            void *user, rsclip_plan **out) {
    if (!out || (n_paths > 0 && !inputs) || n_paths < 0 || !params)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_plan_make: bad arguments");
    *out = NULL;
    plan_priv *pp = rsclip__calloc(1, sizeof *pp);
    if (!pp) return rsclip__error(RSCLIP_ERR_NOMEM, "plan: out of memory");
    rsclip_plan *p = &pp->pub;
    rsclip_tiler_params tp = *params;
    tp.defer_stats = 1;
    if (tp.stride <= 0) tp.stride = tp.tile_size;
    int rc = rsclip_tiler_settings(&tp, p->settings, sizeof p->settings);
    uint64_t h = RSCLIP__FNV_OFFSET;
    h = rsclip__fnv1a(h, p->settings, strlen(p->settings) + 1);
    for (int i = 0; i < n_paths && !rc; i++) {
        const rsclip_input *in = &inputs[i];
        rsclip_tiler *t = NULL;
        if (rsclip_tiler_open(in->path, &tp, &t) != RSCLIP_OK) {
            p->n_failed++;
            if (on_error) on_error(in->path, rsclip_last_error(), user);
            rsclip_clear_error();
            continue;
        }
        const rsclip_raster_info *si = rsclip_tiler_scene(t);
        rsclip_plan_scene s = {in->path,      si->fingerprint.size, si->fingerprint.mtime_ns,
                               si->width,     si->height,           si->n_tiles,
                               p->n_tiles,    p->n_scenes,          in->datetime,
                               in->stac_item, in->stac_collection,  in->stac_asset};
        rc = push_scene(pp, &s);
        if (!rc) {
            p->n_tiles += si->n_tiles;
            h = digest_scene(h, in->path, si->n_tiles);
        }
        rsclip_tiler_close(t);
    }
    if (rc) {
        rsclip_plan_free(p);
        return rc;
    }
    p->n_scenes_total = p->n_scenes;
    snprintf(p->digest, sizeof p->digest, "%016llx", (unsigned long long)h);
    *out = p;
    return RSCLIP_OK;
}

int rsclip_plan_shard(const rsclip_plan *p, int index, int count, int64_t *first, int64_t *end) {
    if (!p || !first || !end || count < 1 || index < 0 || index >= count)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "shard %d/%d: need 0 <= I < N", index, count);
    /* floor(i T / N) without overflow: T < 2^63 and N < 2^31 */
    __int128 t = p->n_tiles;
    *first = (int64_t)(t * index / count);
    *end = (int64_t)(t * (index + 1) / count);
    return RSCLIP_OK;
}

/* ---- the file ------------------------------------------------------------------------------ */

static void put_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(f, "\\%c", *c);
        else if (*c < 0x20)
            fprintf(f, "\\u%04x", *c);
        else
            fputc(*c, f);
    }
    fputc('"', f);
}

int rsclip_plan_write(const rsclip_plan *p, const char *path) {
    if (!p || !path || !*path)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_plan_write: bad arguments");
    size_t n = strlen(path);
    char *tmp = rsclip__malloc(n + 16);
    if (!tmp) return rsclip__error(RSCLIP_ERR_NOMEM, "plan: out of memory");
    snprintf(tmp, n + 16, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int rc = rsclip__error(RSCLIP_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        free(tmp);
        return rc;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        free(tmp);
        return rsclip__error(RSCLIP_ERR_IO, "%s: %s", path, strerror(errno));
    }
    fprintf(f, "{\"rsclip_plan\": %d, \"digest\": \"%s\", \"settings\": ", RSCLIP_PLAN_VERSION,
            p->digest);
    put_json_string(f, p->settings);
    fprintf(f, ", \"scenes\": %lld, \"tiles\": %lld, \"failed\": %lld}\n",
            (long long)p->n_scenes_total, (long long)p->n_tiles, (long long)p->n_failed);
    for (int i = 0; i < p->n_scenes; i++) {
        const rsclip_plan_scene *s = &p->scenes[i];
        fputs("{\"path\": ", f);
        put_json_string(f, s->path);
        fprintf(f,
                ", \"size\": %lld, \"mtime_ns\": %lld, \"width\": %d, \"height\": %d, "
                "\"tiles\": %lld, \"first\": %lld",
                (long long)s->file_size, (long long)s->mtime_ns, s->width, s->height,
                (long long)s->n_tiles, (long long)s->first_tile);
        const char *const extra[4][2] = {{"datetime", s->datetime},
                                         {"stac_item", s->stac_item},
                                         {"stac_collection", s->stac_collection},
                                         {"stac_asset", s->stac_asset}};
        for (int k = 0; k < 4; k++)
            if (extra[k][1]) {
                fprintf(f, ", \"%s\": ", extra[k][0]);
                put_json_string(f, extra[k][1]);
            }
        fputs("}\n", f);
    }
    int bad = ferror(f) != 0;
    bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    int rc = RSCLIP_OK;
    if (bad || rename(tmp, path) != 0) {
        rc = rsclip__error(RSCLIP_ERR_IO, "%s: cannot write the plan: %s", path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return rc;
}

/* One line into a JSON object; errors name file and line. */
static int parse_line(const char *path, long lineno, const char *text, size_t len,
                      rsclip_json **out) {
    int rc = rsclip_json_parse(text, len, out);
    if (!rc && (*out)->type != RSCLIP_JSON_OBJECT) {
        rsclip_json_free(*out);
        *out = NULL;
        rc = rsclip__error(RSCLIP_ERR_FORMAT, "not a JSON object");
    }
    if (rc) {
        char where[64];
        snprintf(where, sizeof where, "line %ld", lineno);
        rsclip__error_prefix(where);
        rsclip__error_prefix(path);
    }
    return rc;
}

static int header_of(const char *path, const rsclip_json *j, rsclip_plan *p) {
    int64_t v = 0;
    const char *settings = rsclip_json_get_str(j, "settings");
    const char *digest = rsclip_json_get_str(j, "digest");
    if (!rsclip_json_get_int(j, "rsclip_plan", &v) || !settings || !digest)
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: not an rsclip plan (line 1)", path);
    if (v > RSCLIP_PLAN_VERSION)
        return rsclip__error(RSCLIP_ERR_UNSUPPORTED, "%s: plan version %lld is newer than %d", path,
                             (long long)v, RSCLIP_PLAN_VERSION);
    if (strlen(settings) >= sizeof p->settings || strlen(digest) != 16)
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: bad settings or digest", path);
    snprintf(p->settings, sizeof p->settings, "%s", settings);
    snprintf(p->digest, sizeof p->digest, "%s", digest);
    if (!rsclip_json_get_int(j, "scenes", &p->n_scenes_total) ||
        !rsclip_json_get_int(j, "tiles", &p->n_tiles) || p->n_scenes_total < 0 || p->n_tiles < 0)
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: bad scene or tile count", path);
    if (!rsclip_json_get_int(j, "failed", &p->n_failed)) p->n_failed = 0;
    return RSCLIP_OK;
}

static int scene_of(const char *path, long lineno, const rsclip_json *j, rsclip_plan_scene *s) {
    int64_t w = 0, h = 0;
    s->path = rsclip_json_get_str(j, "path");
    if (!s->path || !*s->path || !rsclip_json_get_int(j, "size", &s->file_size) ||
        !rsclip_json_get_int(j, "mtime_ns", &s->mtime_ns) || !rsclip_json_get_int(j, "width", &w) ||
        !rsclip_json_get_int(j, "height", &h) || !rsclip_json_get_int(j, "tiles", &s->n_tiles) ||
        !rsclip_json_get_int(j, "first", &s->first_tile) || w < 1 || h < 1 || w > 0x7fffffff ||
        h > 0x7fffffff || s->n_tiles < 1 || s->first_tile < 0)
        return rsclip__error(RSCLIP_ERR_FORMAT, "%s: line %ld: not a plan scene", path, lineno);
    s->width = (int)w;
    s->height = (int)h;
    s->datetime = rsclip_json_get_str(j, "datetime");
    s->stac_item = rsclip_json_get_str(j, "stac_item");
    s->stac_collection = rsclip_json_get_str(j, "stac_collection");
    s->stac_asset = rsclip_json_get_str(j, "stac_asset");
    return RSCLIP_OK;
}

int rsclip_plan_read(const char *path, int shard_index, int shard_count, rsclip_plan **out) {
    if (!path || !out || shard_count < 0 ||
        (shard_count > 0 && (shard_index < 0 || shard_index >= shard_count)))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "rsclip_plan_read: bad arguments");
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f)
        return rsclip__error(errno == ENOENT ? RSCLIP_ERR_NOT_FOUND : RSCLIP_ERR_IO,
                             "%s: cannot open the plan: %s", path, strerror(errno));
    plan_priv *pp = rsclip__calloc(1, sizeof *pp);
    rsclip_plan *p = &pp->pub;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = pp ? RSCLIP_OK : rsclip__error(RSCLIP_ERR_NOMEM, "plan: out of memory");
    int64_t first = 0, end = 0, next_first = 0, ordinal = 0;
    uint64_t h = RSCLIP__FNV_OFFSET; /* the digest, recomputed over every line */
    while (!rc && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (len > PLAN_MAX_LINE) {
            rc = rsclip__error(RSCLIP_ERR_FORMAT, "%s: line %ld is too long", path, lineno);
            break;
        }
        rsclip_json *j = NULL;
        if ((rc = parse_line(path, lineno, line, (size_t)len, &j))) break;
        if (lineno == 1) {
            rc = header_of(path, j, p);
            if (!rc && shard_count)
                rc = rsclip_plan_shard(p, shard_index, shard_count, &first, &end);
            if (!rc && !shard_count) end = p->n_tiles;
            if (!rc) h = rsclip__fnv1a(h, p->settings, strlen(p->settings) + 1);
        } else {
            rsclip_plan_scene s;
            rc = scene_of(path, lineno, j, &s);
            /* scenes follow each other without gaps: a damaged file cannot shift the split */
            if (!rc && s.first_tile != next_first)
                rc =
                    rsclip__error(RSCLIP_ERR_FORMAT, "%s: line %ld: first tile %lld, expected %lld",
                                  path, lineno, (long long)s.first_tile, (long long)next_first);
            if (!rc) {
                h = digest_scene(h, s.path, s.n_tiles);
                s.ordinal = ordinal++;
                next_first = s.first_tile + s.n_tiles;
                if (next_first > p->n_tiles)
                    rc = rsclip__error(RSCLIP_ERR_FORMAT,
                                       "%s: line %ld: more tiles than the header", path, lineno);
                else if (s.first_tile < end && next_first > first)
                    rc = push_scene(pp, &s);
            }
        }
        rsclip_json_free(j);
    }
    if (!rc && ferror(f)) rc = rsclip__error(RSCLIP_ERR_IO, "%s: read error", path);
    if (!rc && lineno == 0) rc = rsclip__error(RSCLIP_ERR_FORMAT, "%s: empty plan", path);
    if (!rc && (ordinal != p->n_scenes_total || next_first != p->n_tiles))
        rc = rsclip__error(RSCLIP_ERR_FORMAT,
                           "%s: truncated: %lld scenes and %lld tiles, the header says %lld and "
                           "%lld",
                           path, (long long)ordinal, (long long)next_first,
                           (long long)p->n_scenes_total, (long long)p->n_tiles);
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    if (!rc && strcmp(hex, p->digest) != 0)
        rc = rsclip__error(RSCLIP_ERR_FORMAT,
                           "%s: the scenes do not match the plan's digest %s (edited or damaged?)",
                           path, p->digest);
    free(line);
    fclose(f);
    if (rc) {
        rsclip_plan_free(p);
        return rc;
    }
    *out = p;
    return RSCLIP_OK;
}
