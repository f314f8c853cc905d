/* GEMM driver: weight packing, blocking, the thread pool, CPU dispatch and the portable kernels.
 *
 * Blocking (BLIS order, W packed once so no W packing inside the call):
 *   for each k block (ks steps; one block for the encoder's K)
 *     for each block of MC rows of A       -- packed A block (MC x ks) stays in L2
 *       pack A rows (f32 -> bf16 for BF16)
 *       for each NR panel of W             -- W panel (ks x NR) reused by the MC / MR kernels
 *         for each MR panel of the A block: micro-kernel (MR x NR tile in registers)
 * Threads split the rows of C (in MR units) when there are enough of them, else the columns (in
 * NR units); each thread packs its own A rows, so no barrier is needed inside a call. The k
 * blocks are the same for any thread count, hence identical results.
 */
#include "gemm/gemm.h"
#include "gemm/gemm_internal.h"
#include "status/status_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(RSCLIP_GEMM_HAVE_X86)
#include <cpuid.h>
#endif

/* k steps per block and rows per packed A block. Measured on Zen 5 (1 MiB L2) at the encoder's
 * shapes: re-reading and re-writing C once per k block costs more than streaming long A and W
 * panels from L2, so K is not blocked up to 4096 (bf16) / 2048 (f32) and the A block is small. */
#ifndef KS_MAX_BF16
#define KS_MAX_BF16 2048
#endif
#ifndef KS_MAX_F32
#define KS_MAX_F32 2048
#endif
#ifndef MC_BF16
#define MC_BF16 (GEMM_MR * 8)
#endif
#ifndef MC_F32
#define MC_F32 (GEMM_MR * 4)
#endif
#define MAX_THREADS 64
/* Threads split C's rows when each gets at least this many MR panels, else W's columns. */
#ifndef SPLIT_ROWS_MIN_PANELS
#define SPLIT_ROWS_MIN_PANELS 16
#endif

/* ---------------------------------------------------------------------------------------------
 * bf16 conversion (matches vcvtne2ps2bf16: round to nearest even, denormal inputs read as zero)
 */
unsigned short rsclip__f32_to_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7F800000u) == 0x7F800000u) {                              /* inf or NaN */
        if (u & 0x007FFFFFu) return (unsigned short)((u >> 16) | 0x40u); /* quiet NaN */
        return (unsigned short)(u >> 16);
    }
    if ((u & 0x7F800000u) == 0) return (unsigned short)((u >> 16) & 0x8000u); /* zero/denormal */
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}

float rsclip__bf16_to_f32(unsigned short h) {
    const uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* ---------------------------------------------------------------------------------------------
 * CPU features
 */
static int g_has_bf16, g_has_f, g_env_scalar;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void detect(void) {
#if defined(RSCLIP_GEMM_HAVE_X86)
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 27))) { /* OSXSAVE */
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        /* XMM, YMM, opmask, ZMM_Hi256, Hi16_ZMM state enabled by the OS */
        const int os_zmm = (lo & 0xE6u) == 0xE6u;
        if (os_zmm && __get_cpuid_count(7, 0, &a, &b, &c, &d)) {
            const int f = (b >> 16) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
            g_has_f = f;
            if (f && bw && vl && a >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d))
                g_has_bf16 = (a >> 5) & 1;
        }
    }
#endif
    const char *e = getenv("RSCLIP_GEMM_SCALAR");
    g_env_scalar = e && *e && strcmp(e, "0") != 0;
}

int rsclip__gemm_cpu_has_avx512bf16(void) {
    pthread_once(&g_once, detect);
    return g_has_bf16;
}

int rsclip__gemm_cpu_has_avx512f(void) {
    pthread_once(&g_once, detect);
    return g_has_f;
}

int rsclip__gemm_use_avx512f(void) {
    pthread_once(&g_once, detect);
    return g_has_f && !g_env_scalar;
}

rsclip__gemm_path rsclip__gemm_path_for(const rsclip__packed_w *b, unsigned flags) {
    pthread_once(&g_once, detect);
    if (!b || (flags & RSCLIP__GEMM_FORCE_SCALAR) || g_env_scalar) return RSCLIP__GEMM_PATH_SCALAR;
    if (b->format == RSCLIP__GEMM_BF16)
        return g_has_bf16 ? RSCLIP__GEMM_PATH_AVX512BF16 : RSCLIP__GEMM_PATH_SCALAR;
    return g_has_f ? RSCLIP__GEMM_PATH_AVX512F : RSCLIP__GEMM_PATH_SCALAR;
}

const char *rsclip__gemm_path_name(rsclip__gemm_path p) {
    switch (p) {
    case RSCLIP__GEMM_PATH_AVX512BF16:
        return "avx512bf16";
    case RSCLIP__GEMM_PATH_AVX512F:
        return "avx512f";
    default:
        return "scalar";
    }
}

/* ---------------------------------------------------------------------------------------------
 * Weight packing
 */
void *rsclip__alloc_huge(size_t bytes) {
    if (bytes == 0) bytes = 64;
    const size_t huge = (size_t)2 << 20;
    if (bytes < huge) return aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    void *p = NULL;
    if (posix_memalign(&p, huge, bytes) != 0) return NULL;
#if defined(MADV_HUGEPAGE)
    madvise(p, bytes & ~(huge - 1), MADV_HUGEPAGE); /* advice only: failure is harmless */
#endif
    return p;
}

static int pack_shape(size_t n, size_t k, size_t ldw, rsclip__gemm_format format, size_t *steps,
                      size_t *panels, size_t *bytes) {
    if (n == 0 || k == 0 || ldw < k || (format != RSCLIP__GEMM_BF16 && format != RSCLIP__GEMM_F32))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "gemm pack: bad arguments (n=%zu k=%zu ldw=%zu format=%d)", n, k, ldw,
                             (int)format);
    *steps = format == RSCLIP__GEMM_BF16 ? (k + 1) / 2 : k;
    *panels = (n + GEMM_NR - 1) / GEMM_NR;
    size_t units;
    if (rsclip__mul_size(*panels, *steps, &units) || rsclip__mul_size(units, GEMM_NR, &units) ||
        rsclip__mul_size(units, 4, bytes))
        return rsclip__error(RSCLIP_ERR_NOMEM, "gemm pack: %zu x %zu weights too large", n, k);
    return RSCLIP_OK;
}

size_t rsclip__pack_weights_bytes(size_t n, size_t k, rsclip__gemm_format format) {
    size_t steps = 0, panels = 0, bytes = 0;
    if (pack_shape(n, k, k, format, &steps, &panels, &bytes) != RSCLIP_OK) return 0;
    return bytes; /* a multiple of 128: NR units of 4 bytes per step */
}

/* Panel j, lane l = row j * NR + l of W; step s holds k = s (F32) or the pair (2s, 2s + 1) (BF16).
 * Row by row: contiguous reads, NR-strided writes, no per-element branch. */
static void pack_panels(const float *w, size_t n, size_t k, size_t ldw, int format, size_t steps,
                        size_t panels, uint32_t *data) {
#if defined(RSCLIP_GEMM_HAVE_X86)
    /* the vector packers give the same bits (RNE bf16 rounding, plain f32 copies); like the
     * kernels they step aside under RSCLIP_GEMM_SCALAR, so that the C loop below is tested too */
    if (format == RSCLIP__GEMM_F32 && g_has_f && !g_env_scalar) {
        rsclip__gemm_pack_w_f32_avx512(w, n, k, ldw, steps, panels, data);
        return;
    }
    if (format == RSCLIP__GEMM_BF16 && g_has_bf16 && !g_env_scalar) {
        rsclip__gemm_pack_w_bf16_avx512(w, n, k, ldw, steps, panels, data);
        return;
    }
#endif
    for (size_t j = 0; j < panels; j++) {
        uint32_t *pd = data + j * steps * GEMM_NR;
        for (size_t l = 0; l < GEMM_NR; l++) {
            const size_t row = j * GEMM_NR + l;
            uint32_t *col = pd + l;
            if (row >= n) {
                for (size_t s = 0; s < steps; s++) col[s * GEMM_NR] = 0;
                continue;
            }
            const float *wr = w + row * ldw;
            if (format == RSCLIP__GEMM_F32) {
                for (size_t s = 0; s < steps; s++) memcpy(&col[s * GEMM_NR], &wr[s], 4);
                continue;
            }
            const size_t pairs = k / 2; /* steps = pairs, plus one half-empty step for odd k */
            for (size_t s = 0; s < pairs; s++)
                col[s * GEMM_NR] = (uint32_t)rsclip__f32_to_bf16(wr[2 * s]) |
                                   (uint32_t)rsclip__f32_to_bf16(wr[2 * s + 1]) << 16;
            if (k % 2) col[pairs * GEMM_NR] = rsclip__f32_to_bf16(wr[k - 1]);
        }
    }
}

static int pack_common(const float *w, size_t n, size_t k, size_t ldw, rsclip__gemm_format format,
                       void *mem, rsclip__packed_w **out) {
    pthread_once(&g_once, detect);
    if (!out) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "gemm pack: out is NULL");
    *out = NULL;
    size_t steps = 0, panels = 0, bytes = 0;
    if (!w) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "gemm pack: weights are NULL");
    int rc = pack_shape(n, k, ldw, format, &steps, &panels, &bytes);
    if (rc != RSCLIP_OK) return rc;
    rsclip__packed_w *p = calloc(1, sizeof *p);
    if (!p) return rsclip__error(RSCLIP_ERR_NOMEM, "gemm pack: out of memory");
    p->owns_data = mem == NULL;
    p->data = mem ? mem : rsclip__alloc_huge(bytes);
    if (!p->data) {
        free(p);
        return rsclip__error(RSCLIP_ERR_NOMEM, "gemm pack: out of memory (%zu bytes)", bytes);
    }
    p->n = n;
    p->k = k;
    p->steps = steps;
    p->n_panels = panels;
    p->format = format;
    pack_panels(w, n, k, ldw, format, steps, panels, p->data);
    *out = p;
    return RSCLIP_OK;
}

int rsclip__pack_weights(const float *w, size_t n, size_t k, size_t ldw, rsclip__gemm_format format,
                         rsclip__packed_w **out) {
    return pack_common(w, n, k, ldw, format, NULL, out);
}

int rsclip__pack_weights_at(const float *w, size_t n, size_t k, size_t ldw,
                            rsclip__gemm_format format, void *mem, rsclip__packed_w **out) {
    if (!mem || ((uintptr_t)mem & 63)) {
        if (out) *out = NULL;
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "gemm pack: memory not 64-byte aligned");
    }
    return pack_common(w, n, k, ldw, format, mem, out);
}

void rsclip__packed_w_free(rsclip__packed_w *p) {
    if (!p) return;
    if (p->owns_data) free(p->data);
    free(p);
}

size_t rsclip__packed_w_n(const rsclip__packed_w *p) {
    return p ? p->n : 0;
}

size_t rsclip__packed_w_k(const rsclip__packed_w *p) {
    return p ? p->k : 0;
}

size_t rsclip__packed_w_bytes(const rsclip__packed_w *p) {
    return p ? p->n_panels * p->steps * GEMM_NR * 4 : 0;
}

/* ---------------------------------------------------------------------------------------------
 * Portable kernels (any CPU; also the reference for the vector paths)
 */
static float gelu_tanh(float x) {
    const float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    return 0.5f * x * (1.0f + tanhf(u));
}

static void store_tile(float acc[GEMM_MR][GEMM_NR], float *c, size_t ldc, int mr, int nr, int mode,
                       const float *bias, int gelu) {
    for (int r = 0; r < mr; r++) {
        float *cr = c + (size_t)r * ldc;
        for (int j = 0; j < nr; j++) {
            float v = acc[r][j];
            if (mode & GEMM_STORE_ADD_C) v += cr[j];
            if (mode & GEMM_STORE_LAST) {
                if (bias) v += bias[j];
                if (gelu) v = gelu_tanh(v);
            }
            cr[j] = v;
        }
    }
}

static void kernel_bf16_c(size_t ks, const uint32_t *a, const uint32_t *w, float *c, size_t ldc,
                          int mr, int nr, int mode, const float *bias, int gelu) {
    float acc[GEMM_MR][GEMM_NR];
    memset(acc, 0, sizeof acc);
    for (size_t s = 0; s < ks; s++) {
        float wlo[GEMM_NR], whi[GEMM_NR];
        for (int j = 0; j < GEMM_NR; j++) {
            wlo[j] = rsclip__bf16_to_f32((unsigned short)(w[j] & 0xFFFFu));
            whi[j] = rsclip__bf16_to_f32((unsigned short)(w[j] >> 16));
        }
        for (int r = 0; r < mr; r++) {
            const float alo = rsclip__bf16_to_f32((unsigned short)(a[r] & 0xFFFFu));
            const float ahi = rsclip__bf16_to_f32((unsigned short)(a[r] >> 16));
            /* bf16 x bf16 products are exact in f32; summed like vdpbf16ps (even, then odd) */
            for (int j = 0; j < GEMM_NR; j++) {
                acc[r][j] += alo * wlo[j];
                acc[r][j] += ahi * whi[j];
            }
        }
        a += GEMM_MR;
        w += GEMM_NR;
    }
    store_tile(acc, c, ldc, mr, nr, mode, bias, gelu);
}

static void kernel_f32_c(size_t ks, const uint32_t *a, const uint32_t *w, float *c, size_t ldc,
                         int mr, int nr, int mode, const float *bias, int gelu) {
    float acc[GEMM_MR][GEMM_NR];
    memset(acc, 0, sizeof acc);
    for (size_t s = 0; s < ks; s++) {
        const float *af = (const float *)a, *wf = (const float *)w;
        for (int r = 0; r < mr; r++)
            for (int j = 0; j < GEMM_NR; j++) acc[r][j] += af[r] * wf[j];
        a += GEMM_MR;
        w += GEMM_NR;
    }
    store_tile(acc, c, ldc, mr, nr, mode, bias, gelu);
}

static void pack_a_bf16_c(const float *a, size_t lda, size_t rows, size_t s0, size_t ks,
                          size_t k_total, uint32_t *dst) {
    const size_t panels = (rows + GEMM_MR - 1) / GEMM_MR;
    for (size_t p = 0; p < panels; p++) {
        uint32_t *pd = dst + p * ks * GEMM_MR;
        for (size_t r = 0; r < GEMM_MR; r++) {
            const size_t row = p * GEMM_MR + r;
            for (size_t s = 0; s < ks; s++) {
                const size_t k0 = 2 * (s0 + s);
                uint32_t u = 0;
                if (row < rows) {
                    const float *ar = a + row * lda;
                    if (k0 < k_total) u = rsclip__f32_to_bf16(ar[k0]);
                    if (k0 + 1 < k_total) u |= (uint32_t)rsclip__f32_to_bf16(ar[k0 + 1]) << 16;
                }
                pd[s * GEMM_MR + r] = u;
            }
        }
    }
}

static void pack_a_f32_c(const float *a, size_t lda, size_t rows, size_t s0, size_t ks,
                         size_t k_total, uint32_t *dst) {
    const size_t panels = (rows + GEMM_MR - 1) / GEMM_MR;
    for (size_t p = 0; p < panels; p++) {
        float *pd = (float *)(dst + p * ks * GEMM_MR);
        for (size_t r = 0; r < GEMM_MR; r++) {
            const size_t row = p * GEMM_MR + r;
            for (size_t s = 0; s < ks; s++) {
                const size_t k = s0 + s;
                pd[s * GEMM_MR + r] = row < rows && k < k_total ? a[row * lda + k] : 0.0f;
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * Context: worker threads + per-thread packed-A scratch
 */
typedef struct gemm_job {
    size_t m;
    const float *a;
    size_t lda;
    const rsclip__packed_w *b;
    float *c;
    size_t ldc;
    const float *bias;
    unsigned flags;
    gemm_kernel_fn kernel;
    gemm_pack_a_fn pack_a;
    size_t ks_max, mc;
    int split_rows, n_parts;
} gemm_job;

struct rsclip__gemm_ctx {
    int n_threads, n_started;
    pthread_t *threads;
    uint32_t **scratch; /* per thread, SCRATCH_UNITS units */
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    unsigned long generation;
    int pending, stop;
    /* the work of the current generation: fn(arg, part, n_parts, scratch) for part < n_parts */
    void (*fn)(void *arg, int part, int n_parts, uint32_t *scratch);
    void *arg;
    int n_parts;
};

typedef struct worker_arg {
    rsclip__gemm_ctx *g;
    int tid;
} worker_arg;

static size_t scratch_units(void) {
    const size_t bf = (size_t)MC_BF16 * KS_MAX_BF16, f = (size_t)MC_F32 * KS_MAX_F32;
    return bf > f ? bf : f;
}

static void run_part(const gemm_job *j, int part, uint32_t *scratch) {
    const rsclip__packed_w *b = j->b;
    const size_t mp = (j->m + GEMM_MR - 1) / GEMM_MR; /* MR panels of C rows */
    size_t r0 = 0, r1 = j->m, p0 = 0, p1 = b->n_panels;
    if (j->split_rows) {
        r0 = mp * (size_t)part / (size_t)j->n_parts * GEMM_MR;
        r1 = mp * (size_t)(part + 1) / (size_t)j->n_parts * GEMM_MR;
        if (r1 > j->m) r1 = j->m;
    } else {
        p0 = b->n_panels * (size_t)part / (size_t)j->n_parts;
        p1 = b->n_panels * (size_t)(part + 1) / (size_t)j->n_parts;
    }
    if (r0 >= r1 || p0 >= p1) return;
    const size_t steps = b->steps;
    const size_t n_kb = (steps + j->ks_max - 1) / j->ks_max;
    const size_t ks_blk = (steps + n_kb - 1) / n_kb;
    const int gelu = (j->flags & RSCLIP__GEMM_GELU) != 0;
    for (size_t kb = 0; kb < n_kb; kb++) {
        const size_t s0 = kb * ks_blk;
        const size_t ks = s0 + ks_blk <= steps ? ks_blk : steps - s0;
        int mode = kb == n_kb - 1 ? GEMM_STORE_LAST : 0;
        if (kb > 0 || (j->flags & RSCLIP__GEMM_ACCUMULATE)) mode |= GEMM_STORE_ADD_C;
        for (size_t i0 = r0; i0 < r1; i0 += j->mc) {
            const size_t rows = i0 + j->mc <= r1 ? j->mc : r1 - i0;
            j->pack_a(j->a + i0 * j->lda, j->lda, rows, s0, ks, b->k, scratch);
            const size_t panels = (rows + GEMM_MR - 1) / GEMM_MR;
            for (size_t p = p0; p < p1; p++) {
                const uint32_t *wp = b->data + (p * steps + s0) * GEMM_NR;
                const size_t col = p * GEMM_NR;
                const int nr = (int)(b->n - col < GEMM_NR ? b->n - col : GEMM_NR);
                const float *bias = j->bias ? j->bias + col : NULL;
                for (size_t ip = 0; ip < panels; ip++) {
                    const size_t row = i0 + ip * GEMM_MR;
                    const int mr =
                        (int)(rows - ip * GEMM_MR < GEMM_MR ? rows - ip * GEMM_MR : GEMM_MR);
                    j->kernel(ks, scratch + ip * ks * GEMM_MR, wp, j->c + row * j->ldc + col,
                              j->ldc, mr, nr, mode, bias, gelu);
                }
            }
        }
    }
}

static void *worker_main(void *argp) {
    worker_arg *wa = argp;
    rsclip__gemm_ctx *g = wa->g;
    const int tid = wa->tid;
    free(wa);
    unsigned long seen = 0;
    for (;;) {
        pthread_mutex_lock(&g->mu);
        while (!g->stop && g->generation == seen) pthread_cond_wait(&g->work_cv, &g->mu);
        if (g->stop) {
            pthread_mutex_unlock(&g->mu);
            return NULL;
        }
        seen = g->generation;
        void (*fn)(void *, int, int, uint32_t *) = g->fn;
        void *arg = g->arg;
        const int n_parts = g->n_parts;
        pthread_mutex_unlock(&g->mu);
        if (tid < n_parts) fn(arg, tid, n_parts, g->scratch[tid]);
        pthread_mutex_lock(&g->mu);
        if (--g->pending == 0) pthread_cond_signal(&g->done_cv);
        pthread_mutex_unlock(&g->mu);
    }
}

void rsclip__gemm_ctx_free(rsclip__gemm_ctx *g) {
    if (!g) return;
    if (g->n_started > 0) {
        pthread_mutex_lock(&g->mu);
        g->stop = 1;
        pthread_cond_broadcast(&g->work_cv);
        pthread_mutex_unlock(&g->mu);
        for (int i = 0; i < g->n_started; i++) pthread_join(g->threads[i], NULL);
    }
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->work_cv);
    pthread_cond_destroy(&g->done_cv);
    if (g->scratch)
        for (int i = 0; i < g->n_threads; i++) free(g->scratch[i]);
    free(g->scratch);
    free(g->threads);
    free(g);
}

int rsclip__gemm_ctx_new(int n_threads, rsclip__gemm_ctx **out) {
    if (!out) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "gemm context: out is NULL");
    *out = NULL;
    if (n_threads < 1 || n_threads > MAX_THREADS)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "gemm context: %d threads (1..%d)", n_threads,
                             MAX_THREADS);
    pthread_once(&g_once, detect);
    rsclip__gemm_ctx *g = calloc(1, sizeof *g);
    if (!g) return rsclip__error(RSCLIP_ERR_NOMEM, "gemm context: out of memory");
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->work_cv, NULL);
    pthread_cond_init(&g->done_cv, NULL);
    g->n_threads = n_threads;
    g->scratch = calloc((size_t)n_threads, sizeof *g->scratch);
    g->threads = calloc((size_t)n_threads, sizeof *g->threads);
    if (!g->scratch || !g->threads) {
        rsclip__gemm_ctx_free(g);
        return rsclip__error(RSCLIP_ERR_NOMEM, "gemm context: out of memory");
    }
    const size_t bytes = scratch_units() * 4;
    for (int i = 0; i < n_threads; i++) {
        g->scratch[i] = aligned_alloc(64, bytes);
        if (!g->scratch[i]) {
            rsclip__gemm_ctx_free(g);
            return rsclip__error(RSCLIP_ERR_NOMEM, "gemm context: out of memory");
        }
        memset(g->scratch[i], 0, bytes); /* touch the pages now, not inside a forward pass */
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (wa) {
            wa->g = g;
            wa->tid = i;
        }
        if (!wa || pthread_create(&g->threads[i - 1], NULL, worker_main, wa) != 0) {
            free(wa); /* the thread never started, so it is still ours */
            rsclip__gemm_ctx_free(g);
            return rsclip__error(RSCLIP_ERR_INTERNAL, "gemm context: cannot start thread %d", i);
        }
        g->n_started++;
    }
    *out = g;
    return RSCLIP_OK;
}

int rsclip__gemm_ctx_threads(const rsclip__gemm_ctx *g) {
    return g ? g->n_threads : 0;
}

/* Run fn(arg, part, n_parts, scratch of that thread) for every part < n_parts (<= n_threads):
 * part 0 on the caller, part i on worker i; returns when all are done. */
static void dispatch(rsclip__gemm_ctx *g, int n_parts, void (*fn)(void *, int, int, uint32_t *),
                     void *arg) {
    if (n_parts <= 1) {
        fn(arg, 0, 1, g->scratch[0]);
        return;
    }
    pthread_mutex_lock(&g->mu);
    g->fn = fn;
    g->arg = arg;
    g->n_parts = n_parts;
    g->pending = g->n_started;
    g->generation++;
    pthread_cond_broadcast(&g->work_cv);
    pthread_mutex_unlock(&g->mu);
    fn(arg, 0, n_parts, g->scratch[0]);
    pthread_mutex_lock(&g->mu);
    while (g->pending > 0) pthread_cond_wait(&g->done_cv, &g->mu);
    g->fn = NULL;
    g->arg = NULL;
    pthread_mutex_unlock(&g->mu);
}

static void gemm_part(void *arg, int part, int n_parts, uint32_t *scratch) {
    (void)n_parts;
    run_part(arg, part, scratch);
}

/* ---------------------------------------------------------------------------------------------
 * The call
 */
int rsclip__gemm(rsclip__gemm_ctx *g, size_t m, const float *a, size_t lda,
                 const rsclip__packed_w *b, float *c, size_t ldc, const float *bias,
                 unsigned flags) {
    if (!g || !b || (m > 0 && (!a || !c)) || lda < b->k || ldc < b->n)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "gemm: bad arguments (m=%zu lda=%zu ldc=%zu, weights %zu x %zu)", m,
                             lda, ldc, b ? b->n : 0, b ? b->k : 0);
    if (m == 0) return RSCLIP_OK;
    gemm_job j;
    memset(&j, 0, sizeof j);
    j.m = m;
    j.a = a;
    j.lda = lda;
    j.b = b;
    j.c = c;
    j.ldc = ldc;
    j.bias = bias;
    j.flags = flags;
    const rsclip__gemm_path path = rsclip__gemm_path_for(b, flags);
    const int bf16 = b->format == RSCLIP__GEMM_BF16;
    j.ks_max = bf16 ? KS_MAX_BF16 : KS_MAX_F32;
    j.mc = bf16 ? MC_BF16 : MC_F32;
    j.kernel = bf16 ? kernel_bf16_c : kernel_f32_c;
    j.pack_a = bf16 ? pack_a_bf16_c : pack_a_f32_c;
#if defined(RSCLIP_GEMM_HAVE_X86)
    if (path == RSCLIP__GEMM_PATH_AVX512BF16) {
        j.kernel = rsclip__gemm_kernel_bf16_avx512;
        j.pack_a = rsclip__gemm_pack_a_bf16_avx512;
    } else if (path == RSCLIP__GEMM_PATH_AVX512F) {
        j.kernel = rsclip__gemm_kernel_f32_avx512;
        j.pack_a = rsclip__gemm_pack_a_f32_avx512;
    }
#else
    (void)path;
#endif
    /* Rows when each thread gets at least two MR panels, else columns (small m: text head,
     * pooled vectors). */
    const size_t mp = (m + GEMM_MR - 1) / GEMM_MR;
    const size_t nt = (size_t)g->n_threads;
    j.split_rows = mp >= SPLIT_ROWS_MIN_PANELS * nt || b->n_panels < nt;
    size_t parts = j.split_rows ? (mp < nt ? mp : nt) : nt;
    j.n_parts = (int)parts;
    dispatch(g, j.n_parts, gemm_part, &j);
    return RSCLIP_OK;
}

typedef struct task_call {
    rsclip__gemm_task_fn fn;
    void *arg;
} task_call;

static void task_part(void *arg, int part, int n_parts, uint32_t *scratch) {
    (void)scratch;
    const task_call *t = arg;
    t->fn(t->arg, part, n_parts);
}

void rsclip__gemm_run(rsclip__gemm_ctx *g, int n_parts, rsclip__gemm_task_fn fn, void *arg) {
    if (!fn || n_parts <= 0) return;
    if (!g) {
        fn(arg, 0, 1);
        return;
    }
    if (n_parts > g->n_threads) n_parts = g->n_threads;
    task_call t = {fn, arg};
    dispatch(g, n_parts, task_part, &t);
}
