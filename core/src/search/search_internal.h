/* Private declarations of the search module: the int8 dot-product kernels and a view of the scan's
 * candidate set (for tests). */
#ifndef RSCLIP_SEARCH_INTERNAL_H
#define RSCLIP_SEARCH_INTERNAL_H

#include "rsclip/search.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Two code sets per vector, both offset-binary with one float scale each:
 *   int8 codes: byte = c + 128, c in [-128, 127] (the quantiser writes [-127, 127]); a row is
 *               `stride` bytes: dim rounded up to RSCLIP__DIM_ALIGN, padded with 128 (c = 0).
 *   int4 codes: nibble = c + 8, c in [-8, 7] (the quantiser writes [-7, 7]); a row is stride / 2
 *               bytes; in each 64-byte block b the low nibble of byte j is dimension 128 b + j
 *               and the high nibble dimension 128 b + 64 + j (no shuffles to unpack).
 * The int4 codes feed a first, half-size pass over large sets; the int8 codes re-score its
 * candidates. Query codes are int8 in [-127, 127], `stride` long, padded with 0. */
#define RSCLIP__CODE_ALIGN 64
#define RSCLIP__DIM_ALIGN 128

/* One kernel call: for n rows, the exact integer dots of each row's codes c with nq query code
 * vectors: out[i * nq + j] = sum_t c[row_i][t] * qc[j][t].
 *   codes:  base of the code rows, stride bytes each (64-byte aligned rows); for int4 kernels
 *           stride is the int4 row size (half the int8 stride)
 *   rows:   row indices [n], or NULL for the contiguous rows first..first+n-1
 *   qc:     [nq, int8 stride] int8, 64-byte aligned
 *   qsum:   [nq] sum of each query's codes (the u8 x s8 instructions need it)
 * The results are exact integers, identical for every kernel. */
typedef void (*rsclip__dot_kernel)(const uint8_t *codes, size_t stride, const uint32_t *rows,
                                   size_t first, size_t n, const int8_t *qc, int nq,
                                   const int32_t *qsum, int32_t *out);

/* The kernel for an rsclip_kernel value, or NULL if this CPU (or build) cannot run it. AUTO picks
 * the best available. */
rsclip__dot_kernel rsclip__search_kernel(int kernel);
/* The same for the int4 codes. */
rsclip__dot_kernel rsclip__search_kernel4(int kernel);

/* The best kernel this CPU runs, as an rsclip_kernel value. */
int rsclip__search_best_kernel(void);

#ifdef __cplusplus
}
#endif
#endif
