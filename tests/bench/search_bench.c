/* Benchmark of the search core on N random unit vectors (seeded), dim 768 by default:
 *   - the int8 scan + exact rerank (rsclip_vecset_search), 1 and 2 threads, every kernel;
 *   - baseline (c): exact float32 sgemv over all vectors in RAM + top-k;
 *   - baseline (a): a naive row-by-row SQLite BLOB scan (table t(id INTEGER PRIMARY KEY, vec
 * BLOB));
 *   - the .rsvec cache: save, load (mmap) / read (copy) and first-query times.
 * Recall@k is measured against the exact ranking (sgemv, then double re-scoring of the top k+64).
 * With --dump DIR it writes DIR/vecs.f32, DIR/queries.f32, DIR/truth.i64 and DIR/rsclip.txt for
 * search_bench_faiss.py (baseline (b), FAISS IndexFlatIP on the same vectors).
 *
 *   search_bench [--n N] [--dim D] [--queries Q] [--k K] [--sqlite-queries S] [--tmp DIR]
 *                [--dump DIR]
 */
#include "rsclip/search.h"
#include "rsclip/status.h"

#include <cblas.h>
#include <math.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double min_of(const double *v, int n) {
    double m = v[0];
    for (int i = 1; i < n; i++)
        if (v[i] < m) m = v[i];
    return m;
}

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_u(uint64_t *s) {
    return ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
}

/* n unit vectors: Gaussian components (Box-Muller, both outputs used), normalised. */
static void unit_vectors(uint64_t seed, size_t n, int dim, float *out) {
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        float *v = out + i * (size_t)dim;
        double nn = 0;
        for (int t = 0; t < dim; t += 2) {
            float r = sqrtf(-2.0f * logf((float)rng_u(&s))), a = 6.2831853f * (float)rng_u(&s);
            v[t] = r * cosf(a);
            if (t + 1 < dim) v[t + 1] = r * sinf(a);
        }
        for (int t = 0; t < dim; t++) nn += (double)v[t] * v[t];
        nn = sqrt(nn);
        for (int t = 0; t < dim; t++) v[t] = (float)(v[t] / nn);
    }
}

typedef struct sc {
    float s;
    int64_t id;
} sc;

/* Keep the best k of a stream in a small sorted array (k is small). */
static void topk_push(sc *top, int *n, int k, float s, int64_t id) {
    if (*n == k && !(s > top[k - 1].s)) return;
    int i = *n < k ? (*n)++ : k - 1;
    while (i > 0 && top[i - 1].s < s) {
        top[i] = top[i - 1];
        i--;
    }
    top[i].s = s;
    top[i].id = id;
}

static int cmp_dsc(const void *a, const void *b) {
    const double *x = a, *y = b;
    return x[0] > y[0] ? -1 : x[0] < y[0] ? 1 : (x[1] < y[1] ? -1 : 1);
}

typedef struct fetch_ctx {
    const float *vecs;
    int dim;
} fetch_ctx;

static int fetch_ram(void *user, size_t n, const int64_t *ids, float *out) {
    fetch_ctx *f = user;
    for (size_t i = 0; i < n; i++)
        memcpy(out + i * (size_t)f->dim, f->vecs + (size_t)ids[i] * f->dim, sizeof(float) * f->dim);
    return RSCLIP_OK;
}

static int recall(const rsclip_vecset_hit *h, int nh, const int64_t *truth, int k) {
    int c = 0;
    for (int i = 0; i < nh; i++)
        for (int j = 0; j < k; j++)
            if (h[i].id == truth[j]) {
                c++;
                break;
            }
    return c;
}

static double median(double *v, int n) {
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n ? (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2])) : 0;
}

/* Wall-clock median and minimum, and median process CPU time (both threads), of n runs: the
 * machine may be shared, and the minimum is the least disturbed figure. */
typedef struct timing {
    double med, min, cpu;
} timing;

static timing summarize(double *wall, double *cpu, int n) {
    timing t;
    t.min = min_of(wall, n);
    t.med = median(wall, n);
    t.cpu = median(cpu, n);
    return t;
}

static const char *fmt_t(char *buf, timing t) {
    snprintf(buf, 128, "%.2f ms/query (median; min %.2f, cpu %.2f)", t.med, t.min, t.cpu);
    return buf;
}

int main(int argc, char **argv) {
    char tb[128];
    size_t n = 100000;
    int dim = 768, nq = 50, k = 10, nsql = 3;
    const char *tmp = "/tmp", *dump = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--n"))
            n = (size_t)atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--dim"))
            dim = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--queries"))
            nq = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--k"))
            k = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--sqlite-queries"))
            nsql = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--tmp"))
            tmp = argv[i + 1];
        else if (!strcmp(argv[i], "--dump"))
            dump = argv[i + 1];
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (k > 64 || k < 1 || nq < 1 || dim < 1) return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("search_bench: N=%zu dim=%d queries=%d k=%d\n", n, dim, nq, k);
    double t0 = now_ms();
    float *vecs = malloc(n * (size_t)dim * sizeof(float));
    float *qs = malloc((size_t)nq * dim * sizeof(float));
    if (!vecs || !qs) return 1;
    /* generated in chunks with their own seeds (reproducible regardless of N) */
    for (size_t b = 0; b < n; b += 65536)
        unit_vectors(1000 + b / 65536, n - b < 65536 ? n - b : 65536, dim, vecs + b * dim);
    unit_vectors(7, (size_t)nq, dim, qs);
    printf("generate: %.0f ms\n", now_ms() - t0);

    /* (c) exact float32 sgemv over all vectors, + ground truth (double re-score of the top k+64) */
    float *scores = malloc(n * sizeof(float));
    int64_t *truth = malloc((size_t)nq * k * sizeof(int64_t));
    double *sg_ms = malloc((size_t)nq * sizeof(double));
    double *cpu = malloc((size_t)nq * sizeof(double));
    int kk = k + 64;
    sc *top = malloc((size_t)kk * sizeof(sc));
    for (int q = 0; q < nq; q++) {
        const float *qv = qs + (size_t)q * dim;
        double a = now_ms(), c0 = cpu_ms();
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, dim, 1.0f, vecs, dim, qv, 1, 0.0f, scores,
                    1);
        int nt = 0;
        for (size_t i = 0; i < n; i++) topk_push(top, &nt, k, scores[i], (int64_t)i);
        sg_ms[q] = now_ms() - a;
        cpu[q] = cpu_ms() - c0;
        nt = 0;
        for (size_t i = 0; i < n; i++) topk_push(top, &nt, kk, scores[i], (int64_t)i);
        double rs[128][2];
        for (int i = 0; i < nt; i++) {
            double s = 0;
            const float *v = vecs + (size_t)top[i].id * dim;
            for (int t = 0; t < dim; t++) s += (double)qv[t] * v[t];
            rs[i][0] = s;
            rs[i][1] = (double)top[i].id;
        }
        qsort(rs, (size_t)nt, sizeof rs[0], cmp_dsc);
        for (int i = 0; i < k; i++) truth[(size_t)q * k + i] = (int64_t)rs[i][1];
    }
    timing t_sgemv = summarize(sg_ms, cpu, nq);
    double ms_sgemv = t_sgemv.min;
    printf("(c) exact float32 sgemv + top-%d (OpenBLAS threads): %s\n", k, fmt_t(tb, t_sgemv));

    /* build the set */
    t0 = now_ms();
    rsclip_vecset_params vp = rsclip_vecset_default_params();
    vp.capacity_hint = n;
    rsclip_vecset *vs;
    if (rsclip_vecset_new(dim, &vp, &vs) != RSCLIP_OK) return 1;
    int64_t *ids = malloc(n * sizeof(int64_t));
    for (size_t i = 0; i < n; i++) ids[i] = (int64_t)i;
    for (size_t b = 0; b < n; b += 4096)
        if (rsclip_vecset_add(vs, n - b < 4096 ? n - b : 4096, ids + b, vecs + b * dim) !=
            RSCLIP_OK) {
            fprintf(stderr, "%s\n", rsclip_last_error());
            return 1;
        }
    rsclip_vecset_finalize(vs);
    printf("build (quantise %zu vectors): %.0f ms\n", n, now_ms() - t0);

    fetch_ctx fc = {vecs, dim};
    rsclip_vecset_hit hits[64];
    double *ms = malloc((size_t)nq * sizeof(double));
    double ms_best = 0;
    int best_threads = 1;
    const char *kname[] = {"", "scalar", "avx2", "avx512vnni"};
    /* kernel, threads, int4 first pass (1) or int8 scan only (0) */
    static const int cfg[][3] = {{3, 1, 1}, {3, 2, 1}, {3, 1, 0}, {3, 2, 0},
                                 {2, 1, 1}, {2, 2, 1}, {1, 1, 1}};
    for (size_t ci = 0; ci < sizeof cfg / sizeof cfg[0]; ci++) {
        int kern = cfg[ci][0], nt = cfg[ci][1];
        rsclip_search_params sp = rsclip_search_default_params();
        sp.k = k;
        sp.fetch = fetch_ram;
        sp.fetch_user = &fc;
        sp.kernel = kern;
        sp.n_threads = nt;
        sp.mode = RSCLIP_SEARCH_QUANT;
        sp.n_prefilter = cfg[ci][2] ? 0 : -1;
        int found = 0, nh, ok = 1;
        int runs = kern == 1 ? (nq < 5 ? nq : 5) : nq;
        for (int q = 0; q < runs && ok; q++) {
            double a = now_ms(), c0 = cpu_ms();
            int rc = rsclip_vecset_search(vs, qs + (size_t)q * dim, &sp, hits, &nh);
            ms[q] = now_ms() - a;
            cpu[q] = cpu_ms() - c0;
            if (rc != RSCLIP_OK) {
                printf("  kernel %s: %s\n", kname[kern], rsclip_last_error());
                ok = 0;
            }
            found += recall(hits, nh, truth + (size_t)q * k, k);
        }
        if (!ok) continue;
        timing tm = summarize(ms, cpu, runs);
        double m = tm.min;
        printf("rsclip %s + rerank [%s, %d thread%s]: %s over %d, recall@%d = %.4f\n",
               cfg[ci][2] ? "int4 pass + int8" : "int8 scan", kname[kern], nt, nt > 1 ? "s" : "",
               fmt_t(tb, tm), runs, k, (double)found / (runs * k));
        if (ci < 2 && (ms_best == 0 || m < ms_best)) { /* the default configuration */
            ms_best = m;
            best_threads = nt;
        }
    }
    printf("ratio (minimum times): exact sgemv / rsclip = %.1fx\n", ms_sgemv / ms_best);

    /* cache: save, load (mmap), first and warm queries */
    char path[1024];
    snprintf(path, sizeof path, "%s/search_bench_%d.rsvec", tmp, (int)getpid());
    t0 = now_ms();
    if (rsclip_vecset_save(vs, path, 42) != RSCLIP_OK) {
        fprintf(stderr, "%s\n", rsclip_last_error());
        return 1;
    }
    printf("cache save: %.0f ms (%s)\n", now_ms() - t0, path);
    rsclip_vecset_free(vs);
    /* load = mmap (one-shot searches), read = copy into huge pages (long-lived processes) */
    for (int copy = 0; copy < 2; copy++) {
        double w0 = now_ms(), c0 = cpu_ms();
        int rc = copy ? rsclip_vecset_read(path, &vs) : rsclip_vecset_load(path, &vs);
        double load_w = now_ms() - w0, load_c = cpu_ms() - c0;
        if (rc != RSCLIP_OK) {
            fprintf(stderr, "%s\n", rsclip_last_error());
            return 1;
        }
        rsclip_search_params sp = rsclip_search_default_params();
        sp.k = k;
        sp.fetch = fetch_ram;
        sp.fetch_user = &fc;
        sp.n_threads = best_threads;
        int nh, found = 0;
        w0 = now_ms(), c0 = cpu_ms();
        rsclip_vecset_search(vs, qs, &sp, hits, &nh);
        double first_w = now_ms() - w0, first_c = cpu_ms() - c0;
        for (int q = 0; q < nq; q++) {
            double a = now_ms(), c1 = cpu_ms();
            rsclip_vecset_search(vs, qs + (size_t)q * dim, &sp, hits, &nh);
            ms[q] = now_ms() - a;
            cpu[q] = cpu_ms() - c1;
            found += recall(hits, nh, truth + (size_t)q * k, k);
        }
        printf("cache %s (file in page cache): %.1f ms (cpu %.1f); first query %.1f ms (cpu %.1f); "
               "then %s, recall@%d = %.4f\n",
               copy ? "read into memory" : "load (mmap)", load_w, load_c, first_w, first_c,
               fmt_t(tb, summarize(ms, cpu, nq)), k, (double)found / (nq * k));
        rsclip_vecset_free(vs);
    }
    unlink(path);

    /* (a) naive SQLite BLOB scan */
    if (nsql > 0) {
        char db[1024];
        snprintf(db, sizeof db, "%s/search_bench_%d.sqlite", tmp, (int)getpid());
        unlink(db);
        sqlite3 *h;
        if (sqlite3_open(db, &h) != SQLITE_OK) return 1;
        sqlite3_exec(h, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;", 0, 0, 0);
        sqlite3_exec(h, "CREATE TABLE t(id INTEGER PRIMARY KEY, vec BLOB)", 0, 0, 0);
        t0 = now_ms();
        sqlite3_exec(h, "BEGIN", 0, 0, 0);
        sqlite3_stmt *ins;
        sqlite3_prepare_v2(h, "INSERT INTO t(id, vec) VALUES(?, ?)", -1, &ins, 0);
        for (size_t i = 0; i < n; i++) {
            sqlite3_bind_int64(ins, 1, (sqlite3_int64)i);
            sqlite3_bind_blob(ins, 2, vecs + i * dim, dim * 4, SQLITE_STATIC);
            sqlite3_step(ins);
            sqlite3_reset(ins);
        }
        sqlite3_finalize(ins);
        sqlite3_exec(h, "COMMIT", 0, 0, 0);
        printf("sqlite insert: %.0f ms\n", now_ms() - t0);
        double sql_ms[16];
        int ns = nsql > 16 ? 16 : nsql, sfound = 0;
        for (int q = 0; q < ns; q++) {
            const float *qv = qs + (size_t)q * dim;
            double a = now_ms(), c0 = cpu_ms();
            sqlite3_stmt *st;
            sqlite3_prepare_v2(h, "SELECT id, vec FROM t", -1, &st, 0);
            sc tk[64];
            int ntk = 0;
            while (sqlite3_step(st) == SQLITE_ROW) {
                const float *v = sqlite3_column_blob(st, 1);
                if (sqlite3_column_bytes(st, 1) != dim * 4) continue;
                float s = cblas_sdot(dim, qv, 1, v, 1);
                topk_push(tk, &ntk, k, s, sqlite3_column_int64(st, 0));
            }
            sqlite3_finalize(st);
            sql_ms[q] = now_ms() - a;
            cpu[q] = cpu_ms() - c0;
            for (int i = 0; i < ntk; i++)
                for (int j = 0; j < k; j++)
                    if (tk[i].id == truth[(size_t)q * k + j]) sfound++;
        }
        timing tsq = summarize(sql_ms, cpu, ns);
        double ms_sql = tsq.min;
        printf("(a) naive SQLite BLOB scan (warm page cache): %s over %d, recall@%d = %.4f\n",
               fmt_t(tb, tsq), ns, k, (double)sfound / (ns * k));
        printf("ratio (minimum times): sqlite scan / rsclip = %.0fx\n", ms_sql / ms_best);
        sqlite3_close(h);
        unlink(db);
    }

    if (dump) {
        char p[1024];
        mkdir(dump, 0755);
        snprintf(p, sizeof p, "%s/vecs.f32", dump);
        FILE *f = fopen(p, "wb");
        fwrite(vecs, sizeof(float), n * (size_t)dim, f);
        fclose(f);
        snprintf(p, sizeof p, "%s/queries.f32", dump);
        f = fopen(p, "wb");
        fwrite(qs, sizeof(float), (size_t)nq * dim, f);
        fclose(f);
        snprintf(p, sizeof p, "%s/truth.i64", dump);
        f = fopen(p, "wb");
        fwrite(truth, sizeof(int64_t), (size_t)nq * k, f);
        fclose(f);
        snprintf(p, sizeof p, "%s/rsclip.txt", dump);
        f = fopen(p, "w");
        fprintf(f, "%zu %d %d %d %.4f %.4f\n", n, dim, nq, k, ms_best, ms_sgemv);
        fclose(f);
    }
    free(vecs);
    free(qs);
    free(scores);
    free(truth);
    free(sg_ms);
    free(ms);
    free(cpu);
    free(top);
    free(ids);
    return 0;
}
