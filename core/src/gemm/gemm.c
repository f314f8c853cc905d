/* GEMM driver: weight packing, blocking, dispatch to the kernels, parts on the process pool.
 *
 * Blocking (BLIS order, W packed once so no W packing inside the call, except direct W):
 *   for each k block (ks steps; one block for most of the encoder's K)
 *     for each block of MC rows of A       -- packed A block (MC x ks) stays in L2
 *       pack A rows (f32 -> bf16 for BF16)
 *       for each NR panel of W             -- W panel (ks x NR) reused by the MC / MR kernels
 *         for each MR panel of the A block: micro-kernel (MR x NR tile in registers / tiles)
 * Parts split the rows of C (in MR units) when there are enough of them, else the columns (in
 * NR units); each part packs its own A rows, so no barrier is needed inside a call. The k
 * blocks are the same for any thread count, hence identical results.
 */
#include "base/base.h"
#include "gemm/gemm.h"
#include "gemm/gemm_internal.h"
#include "gemm/isa.h"
#include "base/pool.h"
#include "status/status_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

_Static_assert(sizeof(struct rsclip__packed_w) <= sizeof(rsclip__packed_w_storage),
               "rsclip__packed_w_storage too small");

/* k steps per block and rows per packed A block. Measured on Zen 5 (1 MiB L2) at the encoder's
 * shapes: re-reading and re-writing C once per k block costs more than streaming long A and W
 * panels from L2, so K is not blocked up to 4096 (bf16) / 2048 (f32) and the A block is small.
 * AMX (not measured here: no AMX on the development machine): k blocks of 384 steps (768 bf16)
 * keep a 32-row A panel and a W panel (48 KiB each) in L2 next to each other. */
#define KS_MAX_BF16 2048
#define KS_MAX_F32 2048
#define KS_MAX_AVX2 512
#define KS_MAX_AMX 384
#define MC_BF16 (GEMM_MR * 8)
#define MC_F32 (GEMM_MR * 4)
#define MC_AVX2 (GEMM_MR_AVX2 * 16)
#define MC_AMX (GEMM_MR_AMX * 4)
#define MC_Q8 (GEMM_MR * 4)
#define MAX_THREADS 64
/* Parts split C's rows when each gets at least this many row panels, else W's columns. */
#define SPLIT_ROWS_MIN_PANELS 16

/* Units of packed A per part: the largest MC x ks block of any path. */
static size_t a_units(void) {
    const size_t v[4] = {(size_t)MC_BF16 * KS_MAX_BF16, (size_t)MC_F32 * KS_MAX_F32,
                         (size_t)MC_AVX2 * KS_MAX_AVX2, (size_t)MC_AMX * KS_MAX_AMX};
    size_t m = 0;
    for (int i = 0; i < 4; i++) m = v[i] > m ? v[i] : m;
    return m;
}
/* Units of one direct-W panel (f32: ks <= KS_MAX_F32 steps of GEMM_NR lanes), then the int8
 * row scales of an A block. */
#define WPANEL_UNITS ((size_t)KS_MAX_F32 * GEMM_NR)
#define ASCALE_FLOATS ((size_t)(MC_Q8 + 15) / 16 * 16) /* a multiple of 64 bytes */

size_t rsclip__gemm_scratch_bytes(void) {
    return (a_units() + WPANEL_UNITS + ASCALE_FLOATS) * 4;
}

/* ---------------------------------------------------------------------------------------------
 * Paths
 */
rsclip__gemm_path rsclip__gemm_path_for(const rsclip__packed_w *b, unsigned flags) {
    if (!b || (flags & RSCLIP__GEMM_FORCE_SCALAR)) return RSCLIP__GEMM_PATH_SCALAR;
    const rsclip__isa top = rsclip__isa_ceiling();
    if (b->format == RSCLIP__GEMM_INT8)
        return rsclip__gemm_vnni_usable() ? RSCLIP__GEMM_PATH_AVX512VNNI : RSCLIP__GEMM_PATH_SCALAR;
    if (b->format == RSCLIP__GEMM_BF16) {
        if (top >= RSCLIP__ISA_AMX && b->steps % GEMM_AMX_KT == 0) return RSCLIP__GEMM_PATH_AMX;
        return top >= RSCLIP__ISA_AVX512BF16 ? RSCLIP__GEMM_PATH_AVX512BF16
                                             : RSCLIP__GEMM_PATH_SCALAR;
    }
    if (b->nr == GEMM_NR_AVX2)
        return top >= RSCLIP__ISA_AVX2 ? RSCLIP__GEMM_PATH_AVX2 : RSCLIP__GEMM_PATH_SCALAR;
    return top >= RSCLIP__ISA_AVX512 ? RSCLIP__GEMM_PATH_AVX512F : RSCLIP__GEMM_PATH_SCALAR;
}

const char *rsclip__gemm_path_name(rsclip__gemm_path p) {
    switch (p) {
    case RSCLIP__GEMM_PATH_AVX512BF16:
        return "avx512bf16";
    case RSCLIP__GEMM_PATH_AVX512F:
        return "avx512f";
    case RSCLIP__GEMM_PATH_AVX2:
        return "avx2";
    case RSCLIP__GEMM_PATH_AMX:
        return "amx";
    case RSCLIP__GEMM_PATH_AVX512VNNI:
        return "avx512vnni";
    default:
        return "scalar";
    }
}

/* The kernel, packers and blocking of a path for weights b. */
static gemm_kdesc kdesc_for(const rsclip__packed_w *b, unsigned flags) {
    gemm_kdesc d;
    memset(&d, 0, sizeof d);
    d.path = rsclip__gemm_path_for(b, flags);
    d.ks_align = 1;
    const int bf16 = b->format == RSCLIP__GEMM_BF16, narrow = b->nr == GEMM_NR_AVX2;
    d.mr = narrow ? GEMM_MR_AVX2 : GEMM_MR;
    d.mc = bf16 ? MC_BF16 : narrow ? MC_AVX2 : MC_F32;
    d.ks_max = bf16 ? KS_MAX_BF16 : narrow ? KS_MAX_AVX2 : KS_MAX_F32;
    d.kernel = bf16     ? rsclip__gemm_kernel_bf16_c
               : narrow ? rsclip__gemm_kernel_f32_c16
                        : rsclip__gemm_kernel_f32_c;
    d.pack_a = bf16     ? rsclip__gemm_pack_a_bf16_c
               : narrow ? rsclip__gemm_pack_a_f32_c6
                        : rsclip__gemm_pack_a_f32_c;
    d.pack_wpanel = narrow ? rsclip__gemm_pack_wpanel_f32_c16 : rsclip__gemm_pack_wpanel_f32_c;
    if (b->format == RSCLIP__GEMM_INT8) {
        d.mc = MC_Q8;
        d.ks_max = b->ks_blk; /* the blocks the offset sums were made for */
        d.kernel_q8 = rsclip__gemm_kernel_q8_c;
        d.pack_a_q8 = rsclip__gemm_pack_a_q8_c;
    }
#if defined(RSCLIP_GEMM_HAVE_X86)
    switch (d.path) {
    case RSCLIP__GEMM_PATH_AVX512VNNI:
        d.kernel_q8 = rsclip__gemm_kernel_q8_avx512;
        d.pack_a_q8 = rsclip__gemm_pack_a_q8_avx512;
        break;
    case RSCLIP__GEMM_PATH_AVX512BF16:
        d.kernel = rsclip__gemm_kernel_bf16_avx512;
        d.pack_a = rsclip__gemm_pack_a_bf16_avx512;
        break;
    case RSCLIP__GEMM_PATH_AVX512F:
        d.kernel = rsclip__gemm_kernel_f32_avx512;
        d.pack_a = rsclip__gemm_pack_a_f32_avx512;
        d.pack_wpanel = rsclip__gemm_pack_wpanel_f32_avx512;
        break;
    case RSCLIP__GEMM_PATH_AVX2:
        d.kernel = rsclip__gemm_kernel_f32_avx2;
        d.pack_a = rsclip__gemm_pack_a_f32_avx2;
        break;
    case RSCLIP__GEMM_PATH_AMX: {
        const int emu = rsclip__isa_amx_emulated();
        d.mr = GEMM_MR_AMX;
        d.mc = MC_AMX;
        d.ks_max = KS_MAX_AMX;
        d.ks_align = GEMM_AMX_KT;
        d.kernel = emu ? rsclip__gemm_amx_emu_kernel : rsclip__gemm_amx_kernel;
        d.pack_a = rsclip__gemm_pack_a_amx;
        d.begin = emu ? rsclip__gemm_amx_emu_begin : rsclip__gemm_amx_begin;
        d.end = emu ? rsclip__gemm_amx_emu_end : rsclip__gemm_amx_end;
        break;
    }
    default:
        break;
    }
#endif
    return d;
}

/* ---------------------------------------------------------------------------------------------
 * Weight packing
 */

/* The layout a pack made now gets: lanes per panel and k steps (padded for AMX). */
static int pack_shape(size_t n, size_t k, size_t ldw, rsclip__gemm_format format, int *nr,
                      size_t *steps, size_t *panels, size_t *bytes) {
    if (n == 0 || k == 0 || ldw < k ||
        (format != RSCLIP__GEMM_BF16 && format != RSCLIP__GEMM_F32 && format != RSCLIP__GEMM_INT8))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "gemm pack: bad arguments (n=%zu k=%zu ldw=%zu format=%d)", n, k, ldw,
                             (int)format);
    const rsclip__isa top = rsclip__isa_ceiling();
    *nr = format == RSCLIP__GEMM_F32 && top < RSCLIP__ISA_AVX512 && top >= RSCLIP__ISA_AVX2
              ? GEMM_NR_AVX2
              : GEMM_NR;
    *steps = format == RSCLIP__GEMM_BF16   ? k / 2 + k % 2
             : format == RSCLIP__GEMM_INT8 ? k / GEMM_Q8_KPU + (k % GEMM_Q8_KPU != 0)
                                           : k;
    if (format == RSCLIP__GEMM_BF16 && top >= RSCLIP__ISA_AMX)
        *steps = (*steps + GEMM_AMX_KT - 1) / GEMM_AMX_KT * GEMM_AMX_KT;
    *panels = n / (size_t)*nr + (n % (size_t)*nr != 0);
    size_t units, side = 0;
    if (format == RSCLIP__GEMM_INT8) { /* scales and offset sums after the panels */
        size_t n_kb, ks_blk;
        rsclip__gemm_q8_blocks(*steps, &n_kb, &ks_blk);
        side = *panels * (size_t)*nr * (1 + n_kb) * 4;
    }
    if (rsclip__mul_size(*panels, *steps, &units) || rsclip__mul_size(units, (size_t)*nr, &units) ||
        rsclip__mul_size(units, 4, bytes) || rsclip__add_size(*bytes, side, bytes))
        return rsclip__error(RSCLIP_ERR_NOMEM, "gemm pack: %zu x %zu weights too large", n, k);
    return RSCLIP_OK;
}

size_t rsclip__pack_weights_bytes(size_t n, size_t k, rsclip__gemm_format format) {
    int nr = 0;
    size_t steps = 0, panels = 0, bytes = 0;
    if (pack_shape(n, k, k, format, &nr, &steps, &panels, &bytes) != RSCLIP_OK) return 0;
    return bytes; /* a multiple of 64: nr units of 4 bytes per step */
}

static void pack_panels(rsclip__packed_w *p, const float *w, size_t ldw, int transposed) {
    if (p->format == RSCLIP__GEMM_INT8) {
        const size_t units = p->n_panels * p->steps * (size_t)p->nr;
        rsclip__gemm_q8_blocks(p->steps, &p->n_kb, &p->ks_blk);
        p->wscale = (float *)(p->data + units);
        p->wcorr = (int32_t *)(p->wscale + p->n_panels * (size_t)p->nr);
        rsclip__gemm_pack_w_q8_c(w, ldw, p);
        return;
    }
#if defined(RSCLIP_GEMM_HAVE_X86)
    /* the vector packers give the same bits (RNE bf16 rounding, plain f32 copies); like the
     * kernels they step aside under RSCLIP_ISA=scalar, so that the C loops are tested too */
    const rsclip__isa top = rsclip__isa_ceiling();
    if (p->nr == GEMM_NR && top >= RSCLIP__ISA_AVX512 && !transposed) {
        if (p->format == RSCLIP__GEMM_F32) {
            rsclip__gemm_pack_w_f32_avx512(w, p->n, p->k, ldw, p->steps, p->n_panels, p->data);
            return;
        }
        if (top >= RSCLIP__ISA_AVX512BF16) {
            rsclip__gemm_pack_w_bf16_avx512(w, p->n, p->k, ldw, p->steps, p->n_panels, p->data);
            return;
        }
    }
    if (transposed && p->format == RSCLIP__GEMM_BF16 && p->nr == GEMM_NR &&
        top >= RSCLIP__ISA_AVX512BF16) {
        rsclip__gemm_pack_wt_bf16_avx512(w, p->n, p->k, ldw, p->steps, p->n_panels, p->data);
        return;
    }
#endif
    if (transposed)
        rsclip__gemm_pack_wt_c(w, p->n, p->k, ldw, p->format, p->nr, p->steps, p->n_panels,
                               p->data);
    else
        rsclip__gemm_pack_w_c(w, p->n, p->k, ldw, p->format, p->nr, p->steps, p->n_panels, p->data);
}

/* Fill *p for w [n, k] (or its transpose) packed into mem (NULL: allocate). */
static int pack_fill(rsclip__packed_w *p, const float *w, size_t n, size_t k, size_t ldw,
                     int transposed, rsclip__gemm_format format, void *mem) {
    memset(p, 0, sizeof *p);
    if (!w) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "gemm pack: weights are NULL");
    size_t bytes = 0;
    /* a transposed source's row stride counts n floats */
    int rc =
        pack_shape(n, k, transposed ? k : ldw, format, &p->nr, &p->steps, &p->n_panels, &bytes);
    if (rc != RSCLIP_OK) return rc;
    if (transposed && (ldw < n || format == RSCLIP__GEMM_INT8))
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "gemm pack: bad transposed source");
    p->owns_data = mem == NULL;
    p->data = mem ? mem : rsclip__alloc_huge(bytes);
    if (!p->data) return rsclip__error(RSCLIP_ERR_NOMEM, "gemm pack: out of memory (%zu B)", bytes);
    p->n = n;
    p->k = k;
    p->format = format;
    pack_panels(p, w, ldw, transposed);
    return RSCLIP_OK;
}

static int pack_common(const float *w, size_t n, size_t k, size_t ldw, rsclip__gemm_format format,
                       void *mem, rsclip__packed_w **out) {
    if (!out) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "gemm pack: out is NULL");
    *out = NULL;
    rsclip__packed_w *p = rsclip__calloc(1, sizeof *p);
    if (!p) return rsclip__error(RSCLIP_ERR_NOMEM, "gemm pack: out of memory");
    const int rc = pack_fill(p, w, n, k, ldw, 0, format, mem);
    if (rc != RSCLIP_OK) {
        free(p);
        return rc;
    }
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

rsclip__packed_w *rsclip__pack_weights_into(rsclip__packed_w_storage *st, const float *w, size_t n,
                                            size_t k, size_t ldw, int transposed,
                                            rsclip__gemm_format format, void *mem) {
    rsclip__packed_w *p = (rsclip__packed_w *)st;
    if (!st || !mem || ((uintptr_t)mem & 63)) return NULL;
    return pack_fill(p, w, n, k, ldw, transposed, format, mem) == RSCLIP_OK ? p : NULL;
}

int rsclip__packed_w_direct(const float *w, size_t n, size_t k, size_t ldw,
                            rsclip__packed_w **out) {
    if (!out) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "gemm direct: out is NULL");
    *out = NULL;
    int nr = 0;
    size_t steps = 0, panels = 0, bytes = 0;
    if (!w) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "gemm direct: weights are NULL");
    int rc = pack_shape(n, k, ldw, RSCLIP__GEMM_F32, &nr, &steps, &panels, &bytes);
    if (rc != RSCLIP_OK) return rc;
    rsclip__packed_w *p = rsclip__calloc(1, sizeof *p);
    if (!p) return rsclip__error(RSCLIP_ERR_NOMEM, "gemm direct: out of memory");
    p->n = n;
    p->k = k;
    p->steps = steps;
    p->n_panels = panels;
    p->nr = nr;
    p->format = RSCLIP__GEMM_F32;
    p->src = w;
    p->ldw = ldw;
    *out = p;
    return RSCLIP_OK;
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
    return p && p->data ? rsclip__pack_weights_bytes(p->n, p->k, (rsclip__gemm_format)p->format)
                        : 0;
}

/* ---------------------------------------------------------------------------------------------
 * The product, one part at a time
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
    gemm_kdesc kd;
    int split_rows, n_parts;
} gemm_job;

/* int8: rows [i0, i0 + rows) against panels [p0, p1), k block kb (steps [s0, s0 + ks)). */
static void run_block_q8(const gemm_job *j, uint32_t *scratch, size_t i0, size_t rows, size_t p0,
                         size_t p1, size_t kb, size_t s0, size_t ks, int mode) {
    const rsclip__packed_w *b = j->b;
    const gemm_kdesc *kd = &j->kd;
    const size_t nr = (size_t)b->nr, mr = (size_t)kd->mr;
    float *ascale = (float *)(scratch + a_units() + WPANEL_UNITS);
    kd->pack_a_q8(j->a + i0 * j->lda, j->lda, rows, s0, ks, b->k, scratch, ascale);
    const size_t panels = (rows + mr - 1) / mr;
    for (size_t p = p0; p < p1; p++) {
        const size_t col = p * nr;
        const int nc = (int)(b->n - col < nr ? b->n - col : nr);
        const uint32_t *wp = b->data + (p * b->steps + s0) * nr;
        const float *bias = j->bias ? j->bias + col : NULL;
        for (size_t ip = 0; ip < panels; ip++) {
            const size_t row = i0 + ip * mr;
            const int mrow = (int)(rows - ip * mr < mr ? rows - ip * mr : mr);
            kd->kernel_q8(ks, scratch + ip * ks * mr, wp, j->c + row * j->ldc + col, j->ldc, mrow,
                          nc, mode, bias, (j->flags & RSCLIP__GEMM_GELU) != 0, ascale + ip * mr,
                          b->wscale + col, b->wcorr + (p * b->n_kb + kb) * nr);
        }
    }
}

/* Rows [i0, i0 + rows) of the part against panels [p0, p1), k steps [s0, s0 + ks). */
static void run_block(const gemm_job *j, uint32_t *scratch, size_t i0, size_t rows, size_t p0,
                      size_t p1, size_t s0, size_t ks, int mode) {
    const rsclip__packed_w *b = j->b;
    const gemm_kdesc *kd = &j->kd;
    const size_t nr = (size_t)b->nr, mr = (size_t)kd->mr;
    const int gelu = (j->flags & RSCLIP__GEMM_GELU) != 0;
    uint32_t *wbuf = scratch + a_units();
    kd->pack_a(j->a + i0 * j->lda, j->lda, rows, s0, ks, b->k, scratch);
    const size_t panels = (rows + mr - 1) / mr;
    for (size_t p = p0; p < p1; p++) {
        const size_t col = p * nr;
        const int nc = (int)(b->n - col < nr ? b->n - col : nr);
        const uint32_t *wp;
        if (b->data) {
            wp = b->data + (p * b->steps + s0) * nr;
        } else { /* direct W: this panel's rows and k range, packed now */
            kd->pack_wpanel(b->src + col * b->ldw, b->ldw, (size_t)nc, s0, ks, b->k, wbuf);
            wp = wbuf;
        }
        const float *bias = j->bias ? j->bias + col : NULL;
        for (size_t ip = 0; ip < panels; ip++) {
            const size_t row = i0 + ip * mr;
            const int mrow = (int)(rows - ip * mr < mr ? rows - ip * mr : mr);
            kd->kernel(ks, scratch + ip * ks * mr, wp, j->c + row * j->ldc + col, j->ldc, mrow, nc,
                       mode, bias, gelu);
        }
    }
}

static void run_part(const gemm_job *j, int part, uint32_t *scratch) {
    const rsclip__packed_w *b = j->b;
    const gemm_kdesc *kd = &j->kd;
    const size_t mr = (size_t)kd->mr;
    const size_t mp = (j->m + mr - 1) / mr; /* row panels of C */
    size_t r0 = 0, r1 = j->m, p0 = 0, p1 = b->n_panels;
    if (j->split_rows) {
        r0 = mp * (size_t)part / (size_t)j->n_parts * mr;
        r1 = mp * (size_t)(part + 1) / (size_t)j->n_parts * mr;
        if (r1 > j->m) r1 = j->m;
    } else {
        p0 = b->n_panels * (size_t)part / (size_t)j->n_parts;
        p1 = b->n_panels * (size_t)(part + 1) / (size_t)j->n_parts;
    }
    if (r0 >= r1 || p0 >= p1) return;
    const size_t steps = b->steps;
    const size_t n_kb = (steps + kd->ks_max - 1) / kd->ks_max;
    size_t ks_blk = (steps + n_kb - 1) / n_kb;
    ks_blk = (ks_blk + kd->ks_align - 1) / kd->ks_align * kd->ks_align;
    /* direct W packs a panel per row block: take as many rows per block as the scratch holds */
    size_t mc = kd->mc;
    if (!b->data) {
        const size_t fit = a_units() / ks_blk / mr * mr;
        mc = fit > mc ? fit : mc;
    }
    if (kd->begin) kd->begin();
    for (size_t s0 = 0, kb = 0; s0 < steps; s0 += ks_blk, kb++) {
        const size_t ks = s0 + ks_blk <= steps ? ks_blk : steps - s0;
        int mode = s0 + ks >= steps ? GEMM_STORE_LAST : 0;
        if (kb > 0 || (j->flags & RSCLIP__GEMM_ACCUMULATE)) mode |= GEMM_STORE_ADD_C;
        for (size_t i0 = r0; i0 < r1; i0 += mc) {
            const size_t rows = i0 + mc <= r1 ? mc : r1 - i0;
            if (b->format == RSCLIP__GEMM_INT8)
                run_block_q8(j, scratch, i0, rows, p0, p1, kb, s0, ks, mode);
            else
                run_block(j, scratch, i0, rows, p0, p1, s0, ks, mode);
        }
    }
    if (kd->end) kd->end();
}

static int job_init(gemm_job *j, size_t m, const float *a, size_t lda, const rsclip__packed_w *b,
                    float *c, size_t ldc, const float *bias, unsigned flags, size_t n_threads) {
    if (!b || (m > 0 && (!a || !c)) || lda < b->k || ldc < b->n)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "gemm: bad arguments (m=%zu lda=%zu ldc=%zu, weights %zu x %zu)", m,
                             lda, ldc, b ? b->n : 0, b ? b->k : 0);
    memset(j, 0, sizeof *j);
    j->m = m;
    j->a = a;
    j->lda = lda;
    j->b = b;
    j->c = c;
    j->ldc = ldc;
    j->bias = bias;
    j->flags = flags;
    j->kd = kdesc_for(b, flags);
    /* Rows when each thread gets enough row panels, else columns (small m: text head, pooled
     * vectors). */
    const size_t mp = (m + (size_t)j->kd.mr - 1) / (size_t)j->kd.mr;
    j->split_rows = mp >= SPLIT_ROWS_MIN_PANELS * n_threads || b->n_panels < n_threads;
    j->n_parts = (int)(j->split_rows ? (mp < n_threads ? mp : n_threads) : n_threads);
    if (j->n_parts < 1) j->n_parts = 1;
    return RSCLIP_OK;
}

int rsclip__gemm_serial(void *scratch, size_t m, const float *a, size_t lda,
                        const rsclip__packed_w *b, float *c, size_t ldc, const float *bias,
                        unsigned flags) {
    gemm_job j;
    if (!scratch) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "gemm: scratch is NULL");
    int rc = job_init(&j, m, a, lda, b, c, ldc, bias, flags, 1);
    if (rc != RSCLIP_OK || m == 0) return rc;
    run_part(&j, 0, scratch);
    return RSCLIP_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Context: the thread count and per-part scratch; the threads are the process pool's
 */
struct rsclip__gemm_ctx {
    int n_threads;
    uint32_t **scratch; /* per part, rsclip__gemm_scratch_bytes() each */
};

void rsclip__gemm_ctx_free(rsclip__gemm_ctx *g) {
    if (!g) return;
    if (g->scratch)
        for (int i = 0; i < g->n_threads; i++) free(g->scratch[i]);
    free(g->scratch);
    free(g);
}

int rsclip__gemm_ctx_new(int n_threads, rsclip__gemm_ctx **out) {
    if (!out) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "gemm context: out is NULL");
    *out = NULL;
    if (n_threads < 1 || n_threads > MAX_THREADS)
        return rsclip__error(RSCLIP_ERR_INVALID_ARG, "gemm context: %d threads (1..%d)", n_threads,
                             MAX_THREADS);
    rsclip__gemm_ctx *g = rsclip__calloc(1, sizeof *g);
    if (!g) return rsclip__error(RSCLIP_ERR_NOMEM, "gemm context: out of memory");
    g->n_threads = n_threads;
    g->scratch = rsclip__calloc((size_t)n_threads, sizeof *g->scratch);
    if (!g->scratch) {
        rsclip__gemm_ctx_free(g);
        return rsclip__error(RSCLIP_ERR_NOMEM, "gemm context: out of memory");
    }
    const size_t bytes = rsclip__gemm_scratch_bytes();
    for (int i = 0; i < n_threads; i++) {
        g->scratch[i] = rsclip__aligned_alloc(64, bytes);
        if (!g->scratch[i]) {
            rsclip__gemm_ctx_free(g);
            return rsclip__error(RSCLIP_ERR_NOMEM, "gemm context: out of memory");
        }
        memset(g->scratch[i], 0, bytes); /* touch the pages now, not inside a forward pass */
    }
    *out = g;
    return RSCLIP_OK;
}

int rsclip__gemm_ctx_threads(const rsclip__gemm_ctx *g) {
    return g ? g->n_threads : 0;
}

typedef struct task_call {
    rsclip__gemm_ctx *g;
    rsclip__gemm_task_fn fn;
    void *arg;
} task_call;

static void task_part(void *arg, int part, int n_parts) {
    const task_call *t = arg;
    t->fn(t->arg, part, n_parts, t->g->scratch[part]);
}

void rsclip__gemm_run(rsclip__gemm_ctx *g, int n_parts, rsclip__gemm_task_fn fn, void *arg) {
    if (!fn || n_parts <= 0) return;
    if (!g) {
        fn(arg, 0, 1, NULL);
        return;
    }
    if (n_parts > g->n_threads) n_parts = g->n_threads;
    task_call t = {g, fn, arg};
    rsclip__pool_run(n_parts, task_part, &t);
}

static void gemm_part(void *arg, int part, int n_parts, void *scratch) {
    (void)n_parts;
    run_part(arg, part, scratch);
}

int rsclip__gemm(rsclip__gemm_ctx *g, size_t m, const float *a, size_t lda,
                 const rsclip__packed_w *b, float *c, size_t ldc, const float *bias,
                 unsigned flags) {
    gemm_job j;
    if (!g) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "gemm: context is NULL");
    int rc = job_init(&j, m, a, lda, b, c, ldc, bias, flags, (size_t)g->n_threads);
    if (rc != RSCLIP_OK || m == 0) return rc;
    rsclip__gemm_run(g, j.n_parts, gemm_part, &j);
    return RSCLIP_OK;
}
