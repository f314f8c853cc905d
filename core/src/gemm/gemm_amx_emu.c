/* The AMX-BF16 kernel on a C emulation of the tile instructions (see gemm/amx_tile.h): the same
 * kernel source as gemm_amx.c, so that the AMX path (driver, packing, epilogues, attention) runs
 * and is tested on CPUs without AMX. Selected only with RSCLIP_AMX_EMULATE=1 (tests). */
#define RSCLIP_AMX_EMULATION 1
#include "gemm/amx_tile.h"
#include "gemm/gemm_internal.h"

#if defined(RSCLIP_GEMM_HAVE_X86)

#include <math.h>
#include <string.h>

/* The tile state of one thread: ldtilecfg's shapes and the eight 1 KiB tile registers. */
static __thread struct {
    int configured;
    int rows[8], colsb[8];
    uint8_t t[8][16][64];
} g_tiles;
static int g_faults; /* instructions that would fault (#UD / #GP) on real hardware */

int rsclip__amx_emu_faults(void) {
    return __atomic_load_n(&g_faults, __ATOMIC_RELAXED);
}

static int bad(int cond) {
    if (cond) __atomic_add_fetch(&g_faults, 1, __ATOMIC_RELAXED);
    return cond;
}

void rsclip__amx_emu_config(const rsclip__amx_tilecfg *cfg) {
    memset(&g_tiles, 0, sizeof g_tiles);
    if (bad(cfg->palette != 1)) return;
    for (int i = 0; i < 8; i++) {
        if (bad(cfg->rows[i] > 16 || cfg->colsb[i] > 64 || cfg->colsb[i] % 4)) return;
        g_tiles.rows[i] = cfg->rows[i];
        g_tiles.colsb[i] = cfg->colsb[i];
    }
    g_tiles.configured = 1;
}

void rsclip__amx_emu_release(void) {
    memset(&g_tiles, 0, sizeof g_tiles);
}

static int usable_tile(int t) {
    return !bad(!g_tiles.configured || t < 0 || t > 7 || g_tiles.rows[t] == 0);
}

void rsclip__amx_emu_zero(int t) {
    if (usable_tile(t)) memset(g_tiles.t[t], 0, sizeof g_tiles.t[t]);
}

/* tileloadd: rows * colsb bytes, the rest of each row and the rows past `rows` zeroed. */
void rsclip__amx_emu_load(int t, const void *base, long stride) {
    if (!usable_tile(t)) return;
    memset(g_tiles.t[t], 0, sizeof g_tiles.t[t]);
    for (int r = 0; r < g_tiles.rows[t]; r++)
        memcpy(g_tiles.t[t][r], (const uint8_t *)base + (long)r * stride, (size_t)g_tiles.colsb[t]);
}

void rsclip__amx_emu_store(int t, void *base, long stride) {
    if (!usable_tile(t)) return;
    for (int r = 0; r < g_tiles.rows[t]; r++)
        memcpy((uint8_t *)base + (long)r * stride, g_tiles.t[t][r], (size_t)g_tiles.colsb[t]);
}

static float f32_of(uint32_t u) {
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* DAZ / FTZ: a denormal reads (or is written) as a zero of the same sign. */
static float flush(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7F800000u) == 0) u &= 0x80000000u;
    return f32_of(u);
}

/* make_fp32 of the SDM: the bf16 bits in the upper half of an f32 (with DAZ). */
static float bf16_at(const uint8_t *row, int i) {
    uint16_t h;
    memcpy(&h, row + 2 * i, 2);
    return flush(f32_of((uint32_t)h << 16));
}

/* tdpbf16ps c, a, b as the SDM's pseudo-code: for each row m, temp1[2n] and temp1[2n+1] start at
 * zero and take the even and the odd products over k with an FP32 FMA each (RNE, DAZ, FTZ), then
 * c[m][n] = c[m][n] + (temp1[2n] + temp1[2n+1]). */
void rsclip__amx_emu_dpbf16ps(int c, int a, int b) {
    if (!usable_tile(c) || !usable_tile(a) || !usable_tile(b)) return;
    const int M = g_tiles.rows[c], N = g_tiles.colsb[c] / 4, K = g_tiles.colsb[a] / 4;
    if (bad(g_tiles.rows[a] != M || g_tiles.rows[b] != K || g_tiles.colsb[b] != g_tiles.colsb[c]))
        return;
    for (int m = 0; m < M; m++) {
        float even[16], odd[16];
        for (int n = 0; n < N; n++) even[n] = odd[n] = 0.0f;
        const uint8_t *arow = g_tiles.t[a][m];
        for (int k = 0; k < K; k++) {
            const uint8_t *brow = g_tiles.t[b][k];
            const float a0 = bf16_at(arow, 2 * k), a1 = bf16_at(arow, 2 * k + 1);
            for (int n = 0; n < N; n++) {
                even[n] = flush(fmaf(a0, bf16_at(brow, 2 * n), even[n]));
                odd[n] = flush(fmaf(a1, bf16_at(brow, 2 * n + 1), odd[n]));
            }
        }
        float crow[16];
        memcpy(crow, g_tiles.t[c][m], sizeof crow);
        for (int n = 0; n < N; n++) {
            const float sum = flush(even[n] + odd[n]);
            crow[n] = flush(flush(crow[n]) + sum);
        }
        memcpy(g_tiles.t[c][m], crow, sizeof crow);
    }
}

#define AMX_FN(name) rsclip__gemm_amx_emu_##name
#include "gemm/gemm_amx_body.h"

#else
typedef int rsclip__gemm_amx_emu_unused;
#endif
