/*
 * Encoder benchmark (built only with -DRSCLIP_BENCH=ON; not part of ctest).
 *
 * Writes random-weight F16 checkpoints with the real shapes of tests/fixtures/configs/<name>
 * (--models base,base-256,large: git-rsclip-base, -base-256, -large) into a work folder (reused
 * when already there), loads them, and measures images/s and texts/s at batch 1, 8, 32 with 1 and 2
 * OpenBLAS threads. FLOPs are computed from the shapes (a multiply-add counts 2). GFLOP/s is per
 * wall-clock second; GFLOP/cpu-s divides by the process CPU time instead (all threads), which stays
 * meaningful on a busy machine.
 *
 *   rsclip_bench_encoder [--workdir DIR] [--quick] [--models base,large] [--min-time SECONDS]
 *                        [--precision f32,bf16,int8,auto] [--threads 1,2] [--batches 1,8,32]
 *                        [--text-batches LIST] [--device cpu|cuda|cuda:N]
 *
 * --device cuda: the encoder runs on that GPU (threads are then irrelevant: one row per precision
 * and batch); cos-f32 still compares with the CPU's F32 embeddings. Batches may be any sizes there
 * (e.g. --batches 256 --text-batches 1,256: batch-1 texts = the latency of a text query).
 *
 * Each precision row also gives the worst cosine of its embeddings (8 images / 8 texts) to the
 * f32 ones ("cos-f32"), the precision the encoder actually ran (bf16 and int8 fall back to f32 on
 * CPUs without them; auto is resolved) and the path of its products ("isa"). The run starts with
 * the CPU report of `rsclip --version --verbose`: the paths this CPU has and why auto picks one.
 *
 * --quick: batches 1 and 8 only, one timed iteration each, no warm-up.
 */
#include "json/json.h"
#include "model/model_internal.h"
#include "rsclip/model.h"
#include "rsclip/status.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#ifndef RSCLIP_BENCH_FIXTURES
#define RSCLIP_BENCH_FIXTURES "tests/fixtures"
#endif

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU seconds of the whole process (all BLAS threads): robust against a busy machine. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *what) {
    fprintf(stderr, "rsclip_bench_encoder: %s: %s\n", what, rsclip_last_error());
    exit(1);
}

/* ----- shapes ----------------------------------------------------------------------------- */

typedef struct shapes {
    int64_t Dt, Ft, Lt, vocab, ctx; /* text */
    int64_t Dv, Fv, Lv, S, P;       /* vision */
} shapes;

static int64_t cfg_int(const rsclip_json *obj, const char *key, int64_t def) {
    int64_t v;
    return rsclip_json_get_int(obj, key, &v) ? v : def;
}

static shapes read_shapes(const char *config) {
    rsclip_json *root;
    if (rsclip_json_parse_file(config, 1 << 20, &root) != RSCLIP_OK) die(config);
    const rsclip_json *t = rsclip_json_get(root, "text_config");
    const rsclip_json *v = rsclip_json_get(root, "vision_config");
    shapes s = {cfg_int(t, "hidden_size", 768),
                cfg_int(t, "intermediate_size", 3072),
                cfg_int(t, "num_hidden_layers", 12),
                cfg_int(t, "vocab_size", 32000),
                cfg_int(t, "max_position_embeddings", 64),
                cfg_int(v, "hidden_size", 768),
                cfg_int(v, "intermediate_size", 3072),
                cfg_int(v, "num_hidden_layers", 12),
                cfg_int(v, "image_size", 224),
                cfg_int(v, "patch_size", 16)};
    rsclip_json_free(root);
    return s;
}

/* ----- a streaming F16 safetensors writer --------------------------------------------------- */

typedef struct tensor {
    char name[128];
    int nd;
    int64_t shape[4];
    int64_t n;
    int kind; /* 0 random small, 1 ones (LayerNorm weights), 2 zeros (biases of LayerNorm) */
} tensor;

typedef struct tlist {
    tensor *v;
    int n, cap;
} tlist;

static void add(tlist *l, int kind, int nd, int64_t a, int64_t b, int64_t c, int64_t d,
                const char *fmt, ...) {
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->v = realloc(l->v, sizeof(tensor) * (size_t)l->cap);
        if (!l->v) exit(1);
    }
    tensor *t = &l->v[l->n++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof(t->name), fmt, ap);
    va_end(ap);
    int64_t sh[4] = {a, b, c, d};
    t->nd = nd;
    t->n = 1;
    for (int i = 0; i < nd; i++) t->shape[i] = sh[i], t->n *= sh[i];
    t->kind = kind;
}

static void add_layers(tlist *l, const char *p, int64_t L, int64_t D, int64_t F) {
    for (int64_t i = 0; i < L; i++) {
        const char *pr[4] = {"q_proj", "k_proj", "v_proj", "out_proj"};
        add(l, 1, 1, D, 0, 0, 0, "%s.encoder.layers.%lld.layer_norm1.weight", p, (long long)i);
        add(l, 2, 1, D, 0, 0, 0, "%s.encoder.layers.%lld.layer_norm1.bias", p, (long long)i);
        for (int k = 0; k < 4; k++) {
            add(l, 0, 2, D, D, 0, 0, "%s.encoder.layers.%lld.self_attn.%s.weight", p, (long long)i,
                pr[k]);
            add(l, 0, 1, D, 0, 0, 0, "%s.encoder.layers.%lld.self_attn.%s.bias", p, (long long)i,
                pr[k]);
        }
        add(l, 1, 1, D, 0, 0, 0, "%s.encoder.layers.%lld.layer_norm2.weight", p, (long long)i);
        add(l, 2, 1, D, 0, 0, 0, "%s.encoder.layers.%lld.layer_norm2.bias", p, (long long)i);
        add(l, 0, 2, F, D, 0, 0, "%s.encoder.layers.%lld.mlp.fc1.weight", p, (long long)i);
        add(l, 0, 1, F, 0, 0, 0, "%s.encoder.layers.%lld.mlp.fc1.bias", p, (long long)i);
        add(l, 0, 2, D, F, 0, 0, "%s.encoder.layers.%lld.mlp.fc2.weight", p, (long long)i);
        add(l, 0, 1, D, 0, 0, 0, "%s.encoder.layers.%lld.mlp.fc2.bias", p, (long long)i);
    }
}

static tlist siglip_tensors(const shapes *s) {
    tlist l = {0};
    int64_t G = s->S / s->P;
    add(&l, 0, 1, 1, 0, 0, 0, "logit_scale");
    add(&l, 0, 1, 1, 0, 0, 0, "logit_bias");
    add(&l, 0, 2, s->vocab, s->Dt, 0, 0, "text_model.embeddings.token_embedding.weight");
    add(&l, 0, 2, s->ctx, s->Dt, 0, 0, "text_model.embeddings.position_embedding.weight");
    add_layers(&l, "text_model", s->Lt, s->Dt, s->Ft);
    add(&l, 1, 1, s->Dt, 0, 0, 0, "text_model.final_layer_norm.weight");
    add(&l, 2, 1, s->Dt, 0, 0, 0, "text_model.final_layer_norm.bias");
    add(&l, 0, 2, s->Dt, s->Dt, 0, 0, "text_model.head.weight");
    add(&l, 0, 1, s->Dt, 0, 0, 0, "text_model.head.bias");
    add(&l, 0, 4, s->Dv, 3, s->P, s->P, "vision_model.embeddings.patch_embedding.weight");
    add(&l, 0, 1, s->Dv, 0, 0, 0, "vision_model.embeddings.patch_embedding.bias");
    add(&l, 0, 2, G * G, s->Dv, 0, 0, "vision_model.embeddings.position_embedding.weight");
    add_layers(&l, "vision_model", s->Lv, s->Dv, s->Fv);
    add(&l, 1, 1, s->Dv, 0, 0, 0, "vision_model.post_layernorm.weight");
    add(&l, 2, 1, s->Dv, 0, 0, 0, "vision_model.post_layernorm.bias");
    add(&l, 0, 3, 1, 1, s->Dv, 0, "vision_model.head.probe");
    add(&l, 0, 2, 3 * s->Dv, s->Dv, 0, 0, "vision_model.head.attention.in_proj_weight");
    add(&l, 0, 1, 3 * s->Dv, 0, 0, 0, "vision_model.head.attention.in_proj_bias");
    add(&l, 0, 2, s->Dv, s->Dv, 0, 0, "vision_model.head.attention.out_proj.weight");
    add(&l, 0, 1, s->Dv, 0, 0, 0, "vision_model.head.attention.out_proj.bias");
    add(&l, 1, 1, s->Dv, 0, 0, 0, "vision_model.head.layernorm.weight");
    add(&l, 2, 1, s->Dv, 0, 0, 0, "vision_model.head.layernorm.bias");
    add(&l, 0, 2, s->Fv, s->Dv, 0, 0, "vision_model.head.mlp.fc1.weight");
    add(&l, 0, 1, s->Fv, 0, 0, 0, "vision_model.head.mlp.fc1.bias");
    add(&l, 0, 2, s->Dv, s->Fv, 0, 0, "vision_model.head.mlp.fc2.weight");
    add(&l, 0, 1, s->Dv, 0, 0, 0, "vision_model.head.mlp.fc2.bias");
    return l;
}

static uint64_t g_rng = 0x2545f4914f6cdd1dULL;

/* A random half in +-[2^-11, 2^-4): small weights keep activations finite through 24 layers. */
static uint16_t rand_half(void) {
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    uint16_t sign = (uint16_t)((g_rng >> 20) & 1) << 15;
    uint16_t exp = (uint16_t)(4 + (g_rng >> 21) % 7) << 10;
    return sign | exp | (uint16_t)((g_rng >> 32) & 0x3ff);
}

static void write_checkpoint(const char *path, const tlist *l) {
    char tmp[4500];
    snprintf(tmp, sizeof(tmp), "%s.partial", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        fprintf(stderr, "cannot write %s: %s\n", tmp, strerror(errno));
        exit(1);
    }
    size_t cap = 4096 + (size_t)l->n * 200, len = 0;
    char *hdr = malloc(cap);
    if (!hdr) exit(1);
    len += (size_t)snprintf(hdr, cap, "{\"__metadata__\":{\"format\":\"pt\"}");
    int64_t off = 0;
    for (int i = 0; i < l->n; i++) {
        const tensor *t = &l->v[i];
        len += (size_t)snprintf(hdr + len, cap - len, ",\"%s\":{\"dtype\":\"F16\",\"shape\":[",
                                t->name);
        for (int d = 0; d < t->nd; d++)
            len += (size_t)snprintf(hdr + len, cap - len, "%s%lld", d ? "," : "",
                                    (long long)t->shape[d]);
        len += (size_t)snprintf(hdr + len, cap - len, "],\"data_offsets\":[%lld,%lld]}",
                                (long long)off, (long long)(off + 2 * t->n));
        off += 2 * t->n;
    }
    len += (size_t)snprintf(hdr + len, cap - len, "}");
    while (len % 8) hdr[len++] = ' ';
    uint64_t hl = len;
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(hl >> (8 * i));
    int ok = fwrite(le, 1, 8, f) == 8 && fwrite(hdr, 1, len, f) == len;
    free(hdr);
    enum { CHUNK = 1 << 20 };
    uint16_t *buf = malloc(sizeof(uint16_t) * CHUNK);
    if (!buf) exit(1);
    for (int i = 0; i < l->n && ok; i++) {
        for (int64_t done = 0; done < l->v[i].n && ok; done += CHUNK) {
            int64_t k = l->v[i].n - done < CHUNK ? l->v[i].n - done : CHUNK;
            for (int64_t j = 0; j < k; j++)
                buf[j] = l->v[i].kind == 1 ? 0x3c00 : l->v[i].kind == 2 ? 0 : rand_half();
            ok = fwrite(buf, 2, (size_t)k, f) == (size_t)k;
        }
    }
    free(buf);
    if (fclose(f) != 0 || !ok || rename(tmp, path) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static void copy_file(const char *src, const char *dst) {
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    if (!in || !out) {
        fprintf(stderr, "cannot copy %s -> %s\n", src, dst);
        exit(1);
    }
    char b[65536];
    size_t k;
    while ((k = fread(b, 1, sizeof(b), in)) > 0) fwrite(b, 1, k, out);
    fclose(in);
    if (fclose(out) != 0) exit(1);
}

/* ----- FLOPs from shapes (multiply-add = 2) --------------------------------------------------- */

static double layer_flops(double T, double D, double F) {
    return 2 * T * D * D * 4 /* q k v o */ + 2 * T * D * F * 2 /* fc1 fc2 */ +
           2 * T * T * D * 2 /* q k^T and p v */;
}

static double vision_flops(const shapes *s) {
    double G = (double)(s->S / s->P), T = G * G, D = (double)s->Dv, F = (double)s->Fv;
    double K = 3.0 * s->P * s->P;
    return 2 * T * K * D + s->Lv * layer_flops(T, D, F) + 2 * T * D * D * 2 /* head k v */ +
           2 * D * D * 2 /* probe q, out_proj */ + 2 * T * D * 2 + 2 * D * F * 2;
}

/* The part of a pass that self-attention's two products hold (the rest runs in the GEMM stage). */
static double attention_flops(const shapes *s, int text) {
    const double G = (double)(s->S / s->P), T = text ? (double)s->ctx : G * G;
    return text ? s->Lt * 4 * T * T * s->Dt : s->Lv * 4 * T * T * s->Dv;
}

static double text_flops(const shapes *s) {
    double T = (double)s->ctx, D = (double)s->Dt, F = (double)s->Ft;
    return s->Lt * layer_flops(T, D, F) + 2 * D * D;
}

/* ----- benchmark ------------------------------------------------------------------------------ */

static double worst_cos(const float *a, const float *b, int n, int d) {
    double w = 1.0;
    for (int i = 0; i < n; i++) {
        double ab = 0, aa = 0, bb = 0;
        for (int k = 0; k < d; k++) {
            double x = a[(size_t)i * d + k], y = b[(size_t)i * d + k];
            ab += x * y, aa += x * x, bb += y * y;
        }
        double c = ab / sqrt(aa * bb);
        w = c < w ? c : w;
    }
    return w;
}

static const char *g_precisions = "f32,bf16", *g_threads = "1,2", *g_batches = "1,8,32";
static const char *g_text_batches = NULL; /* NULL: g_batches */
static rsclip_device g_device;            /* zero: the CPU */

/* Parse a comma list of positive ints into v (at most cap); returns the count. */
static int int_list(const char *list, int *v, int cap) {
    int n = 0;
    for (const char *p = list; *p && n < cap;) {
        char *end;
        long x = strtol(p, &end, 10);
        if (end == p || x < 1 || x > 65536) {
            fprintf(stderr, "bad list '%s'\n", list);
            exit(2);
        }
        v[n++] = (int)x;
        p = *end == ',' ? end + 1 : end;
    }
    return n;
}

static int in_list(const char *list, const char *item) {
    size_t n = strlen(item);
    for (const char *p = list; (p = strstr(p, item)) != NULL; p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == 0)) return 1;
    return 0;
}

static void bench_model(const char *name, const char *workdir, int quick, double min_time) {
    char src[4200], dir[4200], path[4400];
    snprintf(src, sizeof(src), "%s/configs/%s", RSCLIP_BENCH_FIXTURES, name);
    snprintf(dir, sizeof(dir), "%s/%s", workdir, name);
    mkdir(workdir, 0755);
    mkdir(dir, 0755);
    const char *from_cfg[] = {"config.json", "preprocessor_config.json"};
    const char *from_tiny[] = {"spiece.model", "tokenizer_config.json"};
    for (int i = 0; i < 2; i++) {
        char a[4400];
        snprintf(a, sizeof(a), "%s/%s", src, from_cfg[i]);
        snprintf(path, sizeof(path), "%s/%s", dir, from_cfg[i]);
        copy_file(a, path);
        snprintf(a, sizeof(a), "%s/siglip-tiny/%s", RSCLIP_BENCH_FIXTURES, from_tiny[i]);
        snprintf(path, sizeof(path), "%s/%s", dir, from_tiny[i]);
        copy_file(a, path);
    }
    snprintf(path, sizeof(path), "%s/config.json", dir);
    shapes s = read_shapes(path);
    snprintf(path, sizeof(path), "%s/model.safetensors", dir);
    struct stat st;
    if (stat(path, &st) != 0) {
        tlist l = siglip_tensors(&s);
        double t0 = now();
        write_checkpoint(path, &l);
        printf("wrote %s (%d tensors) in %.1f s\n", path, l.n, now() - t0);
        free(l.v);
    }

    double t0 = now(), c0 = cpu_now();
    rsclip_model *m;
    if (rsclip_model_load(dir, NULL, &m) != RSCLIP_OK) die(dir);
    const rsclip_model_info *mi = rsclip_model_get_info(m);
    printf("\n%s: loaded in %.2f s wall, %.2f s CPU (%s -> F32), text %d/%d/%d, vision %d/%d/%d, "
           "image %d, %d "
           "patches\n",
           name, now() - t0, cpu_now() - c0, mi->weights_dtype, mi->text.hidden,
           mi->text.intermediate, mi->text.layers, mi->vision.hidden, mi->vision.intermediate,
           mi->vision.layers, mi->image_size, mi->n_patches);
    double vf = vision_flops(&s), tf = text_flops(&s);
    printf("FLOPs: %.1f GFLOP per image, %.1f GFLOP per text\n", vf * 1e-9, tf * 1e-9);

    int vb[16], tb[16];
    const int n_vb = int_list(g_batches, vb, 16);
    const int n_tb = int_list(g_text_batches ? g_text_batches : g_batches, tb, 16);
    int max_b = 8;
    for (int i = 0; i < n_vb; i++) max_b = vb[i] > max_b ? vb[i] : max_b;
    for (int i = 0; i < n_tb; i++) max_b = tb[i] > max_b ? tb[i] : max_b;
    const size_t per_img = 3 * (size_t)mi->image_size * mi->image_size;
    float *px = malloc(sizeof(float) * per_img * max_b);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)mi->text_ctx * max_b);
    float *emb = malloc(sizeof(float) * (size_t)mi->embed_dim * max_b);
    if (!px || !ids || !emb) exit(1);
    for (size_t i = 0; i < per_img * max_b; i++)
        px[i] = (float)((i * 2654435761u) % 2001) / 1000 - 1;
    for (int b = 0; b < max_b; b++)
        for (int t = 0; t < mi->text_ctx; t++)
            ids[b * mi->text_ctx + t] = t < 12 ? 3 + (b * 131 + t * 17) % 900 : 1;

    /* f32 reference embeddings of the first 8 images and texts, for the cos-f32 column */
    const int E = mi->embed_dim;
    float *ref = malloc(sizeof(float) * (size_t)E * 16), *chk = malloc(sizeof(float) * E * 16);
    if (!ref || !chk) exit(1);
    {
        rsclip_encoder_params ep = rsclip_encoder_default_params();
        ep.precision = RSCLIP_PRECISION_F32;
        rsclip_encoder *e;
        if (rsclip_encoder_new(m, &ep, &e) != RSCLIP_OK) die("encoder_new");
        if (rsclip_encode_images(e, 8, px, ref, NULL) ||
            rsclip_encode_texts(e, 8, ids, ref + 8 * E, NULL))
            die("reference");
        rsclip_encoder_free(e);
    }

    const int gpu = g_device.kind != RSCLIP_DEVICE_CPU;
    printf("%-18s %-6s %-5s %7s %5s %9s %9s %9s %13s %9s %-10s %s\n", "model", "tower", "prec",
           gpu ? "device" : "threads", "batch", "items/s", "ms/item", "GFLOP/s", "GFLOP/cpu-s",
           "cos-f32", "isa", "items/s-by-cpu");
    int batches[32], in_v[32], in_t[32], nb = 0;
    for (int i = 0; i < n_vb + n_tb && nb < 32; i++) {
        const int b = i < n_vb ? vb[i] : tb[i - n_vb];
        int k = 0;
        while (k < nb && batches[k] != b) k++;
        if (k == nb) batches[nb] = b, in_v[nb] = in_t[nb] = 0, nb++;
        (i < n_vb ? in_v : in_t)[k] = 1;
    }
    if (quick && nb > 2) nb = 2;
    const rsclip_precision precs[4] = {RSCLIP_PRECISION_F32, RSCLIP_PRECISION_BF16,
                                       RSCLIP_PRECISION_INT8, RSCLIP_PRECISION_AUTO};
    for (int pi = 0; pi < 4; pi++) {
        const rsclip_precision prec = precs[pi];
        if (!in_list(g_precisions, rsclip_precision_name(prec))) continue;
        for (int th = 1; th <= (gpu ? 1 : 2); th++) {
            char ths[8];
            snprintf(ths, sizeof(ths), "%d", th);
            if (!gpu && !in_list(g_threads, ths)) continue;
            for (int bi = 0; bi < nb; bi++) {
                int b = batches[bi];
                rsclip_encoder_params ep = rsclip_encoder_default_params();
                ep.max_batch = b;
                ep.n_threads = th;
                ep.precision = prec;
                ep.device = g_device;
                rsclip_encoder *e;
                if (rsclip_encoder_new(m, &ep, &e) != RSCLIP_OK) die("encoder_new");
                for (int tower = 0; tower < 2; tower++) {
                    if (!(tower ? in_t : in_v)[bi]) continue;
                    if ((tower ? rsclip_encode_texts(e, 8, ids, chk + 8 * E, NULL)
                               : rsclip_encode_images(e, 8, px, chk, NULL)) != RSCLIP_OK)
                        die("fidelity");
                    double wc =
                        worst_cos(ref + (tower ? 8 * E : 0), chk + (tower ? 8 * E : 0), 8, E);
                    const int nw = gpu ? b : 1; /* a GPU warms up on the timed shape */
                    if (!quick && (b == 1 || gpu) &&
                        (tower ? rsclip_encode_texts(e, nw, ids, emb, NULL)
                               : rsclip_encode_images(e, nw, px, emb, NULL)) != RSCLIP_OK)
                        die("warm-up");
                    int iters = 0;
                    rsclip__stage_profile(1);
                    double start = now(), cstart = cpu_now(), el;
                    do {
                        int rc = tower ? rsclip_encode_texts(e, b, ids, emb, NULL)
                                       : rsclip_encode_images(e, b, px, emb, NULL);
                        if (rc != RSCLIP_OK) die("encode");
                        iters++;
                        el = now() - start;
                    } while (!quick && el < min_time);
                    double cpu = cpu_now() - cstart, flops = (double)iters * b * (tower ? tf : vf);
                    double per_s = iters * b / el;
                    /* items/s-by-cpu: items per CPU second times the thread count, the
                     * baselines' per_s_cpu: what the run would give with its threads never
                     * preempted (robust on a busy machine; a thread that spins counts) */
                    printf("%-18s %-6s %-5s %7s %5d %9.2f %9.3f %9.1f %13.1f %9.6f %-10s %.2f\n",
                           name, tower ? "text" : "vision",
                           rsclip_precision_name(rsclip_encoder_precision(e)), gpu ? "gpu" : ths, b,
                           per_s, 1e3 / per_s, flops / el * 1e-9, flops / cpu * 1e-9, wc,
                           gpu ? "cuda" : rsclip_isa_name(rsclip_encoder_isa(e, NULL)),
                           (double)iters * b * th / cpu);
                    if (gpu) {
                        printf("    on %s; %s: %.3f ms per batch of %d\n",
                               rsclip_encoder_device_name(e), tower ? "texts" : "images",
                               1e3 * el / iters, b);
                        rsclip__stage_profile(0);
                        fflush(stdout);
                        continue;
                    }
                    double sg[RSCLIP__STAGE_N], sum = 0;
                    rsclip__stage_times(sg);
                    rsclip__stage_profile(0);
                    for (int k = 0; k < RSCLIP__STAGE_N; k++) sum += sg[k];
                    printf(
                        "    split: gemm %.1f%%  attention %.1f%%  layernorm %.1f%%  gelu %.1f%%  "
                        "copies %.1f%%  other %.1f%%\n",
                        100 * sg[0] / el, 100 * sg[1] / el, 100 * sg[2] / el, 100 * sg[3] / el,
                        100 * sg[4] / el, 100 * (el - sum) / el);
                    /* the rate inside the Linear layers' GEMMs (compare with rsclip_bench_gemm's
                     * measured peak of the instruction) and inside attention */
                    const double fa = (double)iters * b * attention_flops(&s, tower);
                    printf("    inside: Linear GEMMs %.0f GFLOP/s, attention %.0f GFLOP/s\n",
                           (flops - fa) / sg[0] * 1e-9, fa / sg[1] * 1e-9);
                    fflush(stdout);
                }
                rsclip_encoder_free(e);
            }
        }
    }
    free(px), free(ids), free(emb), free(ref), free(chk);
    rsclip_model_free(m);
}

int main(int argc, char **argv) {
    const char *tmp = getenv("TMPDIR");
    char defdir[4096];
    snprintf(defdir, sizeof(defdir), "%s/rsclip_bench", tmp ? tmp : "/tmp");
    const char *workdir = defdir, *models = "base,large";
    int quick = 0;
    double min_time = 2.0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--workdir") && i + 1 < argc)
            workdir = argv[++i];
        else if (!strcmp(argv[i], "--models") && i + 1 < argc)
            models = argv[++i];
        else if (!strcmp(argv[i], "--min-time") && i + 1 < argc)
            min_time = atof(argv[++i]);
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc)
            g_precisions = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            g_threads = argv[++i];
        else if (!strcmp(argv[i], "--batches") && i + 1 < argc)
            g_batches = argv[++i];
        else if (!strcmp(argv[i], "--text-batches") && i + 1 < argc)
            g_text_batches = argv[++i];
        else if (!strcmp(argv[i], "--device") && i + 1 < argc) {
            if (rsclip_device_parse(argv[++i], &g_device) != RSCLIP_OK) die("--device");
        } else if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else {
            fprintf(stderr,
                    "usage: %s [--workdir DIR] [--quick] [--models base,large] "
                    "[--min-time SECONDS] [--precision f32,bf16,int8,auto] [--threads 1,2] "
                    "[--batches 1,8,32] [--text-batches LIST] [--device cpu|cuda|cuda:N]\n",
                    argv[0]);
            return 2;
        }
    }
    printf("rsclip encoder benchmark: workdir %s%s\n", workdir, quick ? " (quick)" : "");
    char report[4096];
    rsclip_cpu_report(report, sizeof report);
    fputs(report, stdout);
    /* base, base-256, large (or the full folder names of tests/fixtures/configs) */
    char list[1024];
    snprintf(list, sizeof(list), "%s", models);
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char name[96];
        snprintf(name, sizeof(name), "%s%s", strncmp(tok, "git-rsclip-", 11) ? "git-rsclip-" : "",
                 tok);
        bench_model(name, workdir, quick, min_time);
    }
    return 0;
}
