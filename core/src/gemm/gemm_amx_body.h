/*
 * The AMX-BF16 micro-kernel, written once against gemm/amx_tile.h and compiled twice: on the real
 * tiles (gemm_amx.c) and on their C emulation (gemm_amx_emu.c). AMX_FN(name) names the functions
 * of each build.
 *
 * Tiles (palette 1, all 16 rows x 64 bytes): tmm0..3 the 2 x 2 f32 accumulators of a 32 x 32 C
 * block, tmm4..5 two A tiles (16 rows x 16 bf16 pairs, from rsclip__gemm_pack_a_amx), tmm6..7 two
 * B tiles read straight from the packed W panel: 16 steps x 16 lanes of bf16 pairs, the VNNI
 * layout, at the panel's row stride of GEMM_NR units (128 bytes). Per 16 steps (32 k): 4 tile
 * loads, 4 tdpbf16ps. The C block then goes through a 4 KiB buffer into the AVX-512 epilogue that
 * the vdpbf16ps kernel uses (accumulate, bias, GELU).
 */
#include "gemm/amx_tile.h"
#include "gemm/gemm_internal.h"
#include "gemm/simd_avx512.h"

#include <string.h>

AMX_TARGET void AMX_FN(begin)(void) {
    rsclip__amx_tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    AMX_TILE_CONFIG(&cfg);
}

AMX_TARGET void AMX_FN(end)(void) {
    AMX_TILE_RELEASE();
}

AMX_TARGET void AMX_FN(kernel)(size_t ks, const uint32_t *a, const uint32_t *w, float *c,
                               size_t ldc, int mr, int nr, int mode, const float *bias, int gelu) {
    AMX_TILE_ZERO(0);
    AMX_TILE_ZERO(1);
    AMX_TILE_ZERO(2);
    AMX_TILE_ZERO(3);
    for (size_t s = 0; s < ks; s += GEMM_AMX_KT) {
        const uint32_t *at = a + s * GEMM_MR_AMX, *wt = w + s * GEMM_NR;
        AMX_TILE_LOAD(4, at, 64);
        AMX_TILE_LOAD(5, at + 16 * GEMM_AMX_KT, 64);
        AMX_TILE_LOAD(6, wt, GEMM_NR * 4);
        AMX_TILE_LOAD(7, wt + 16, GEMM_NR * 4);
        AMX_TILE_DPBF16PS(0, 4, 6);
        AMX_TILE_DPBF16PS(1, 4, 7);
        AMX_TILE_DPBF16PS(2, 5, 6);
        AMX_TILE_DPBF16PS(3, 5, 7);
    }
    float buf[GEMM_MR_AMX * GEMM_NR] __attribute__((aligned(64)));
    AMX_TILE_STORE(0, buf, GEMM_NR * 4);
    AMX_TILE_STORE(1, buf + 16, GEMM_NR * 4);
    AMX_TILE_STORE(2, buf + 16 * GEMM_NR, GEMM_NR * 4);
    AMX_TILE_STORE(3, buf + 16 * GEMM_NR + 16, GEMM_NR * 4);
    const __mmask16 m0 = rsclip__mask16(nr), m1 = rsclip__mask16(nr - 16);
    for (int r = 0; r < mr; r++)
        rsclip__store_row32(c + (size_t)r * ldc, _mm512_load_ps(buf + r * GEMM_NR),
                            _mm512_load_ps(buf + r * GEMM_NR + 16), m0, m1, mode, bias, gelu);
}
