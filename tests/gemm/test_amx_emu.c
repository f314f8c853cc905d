/* The C emulation of the AMX tile instructions against the semantics of Intel's SDM pseudo-code
 * for TDPBF16PS (not the simplified order of the intrinsics guide): per destination row, the even
 * and the odd bf16 products summed separately from zero in f32 (FMA, round to nearest even),
 * denormal inputs read as zero, denormal results flushed to zero, then added to the destination;
 * TILELOADD / TILESTORED with strides, zeroing past the configured shape; and shape checks. */
#define RSCLIP_AMX_EMULATION 1
#include "gemm/amx_tile.h"
#include "gemm/gemm_internal.h"
#include "gemm/isa.h"
#include "test_util.h"

#include <stdint.h>

#if defined(RSCLIP_GEMM_HAVE_X86)
static uint16_t bf(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return (uint16_t)(u >> 16); /* exact for the values used here */
}

static float f32(uint32_t u) {
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* c (M x N) = tdpbf16ps over K pairs of a (M x 2K bf16) and b (K x 2N bf16); c in/out. */
static void dp(int M, int N, int K, const uint16_t *a, const uint16_t *b, float *c) {
    rsclip__amx_tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    cfg.rows[0] = (uint8_t)M, cfg.colsb[0] = (uint16_t)(4 * N);
    cfg.rows[1] = (uint8_t)M, cfg.colsb[1] = (uint16_t)(4 * K);
    cfg.rows[2] = (uint8_t)K, cfg.colsb[2] = (uint16_t)(4 * N);
    rsclip__amx_emu_config(&cfg);
    rsclip__amx_emu_load(0, c, 4 * N);
    rsclip__amx_emu_load(1, a, 4 * K);
    rsclip__amx_emu_load(2, b, 4 * N);
    rsclip__amx_emu_dpbf16ps(0, 1, 2);
    rsclip__amx_emu_store(0, c, 4 * N);
    rsclip__amx_emu_release();
}

int main(void) {
    /* order: even = 2^24 + 1 -> 2^24 (tie to even), odd = 1 + 1 = 2, c = 2^24 + 2. Summed in
     * k order into one accumulator (the intrinsics guide's reading) it would be 2^24. */
    {
        const uint16_t a[4] = {bf(4096.0f), bf(1.0f), bf(1.0f), bf(1.0f)};
        const uint16_t b[4] = {bf(4096.0f), bf(1.0f), bf(1.0f), bf(1.0f)};
        float c = 0.0f;
        dp(1, 1, 2, a, b, &c);
        CHECK(c == 16777218.0f);
    }
    /* DAZ: a bf16 denormal (2^-133) times 2^120 reads as 0, not 2^-13 */
    {
        const uint16_t a[2] = {0x0001, 0}, b[2] = {0x7B80, 0};
        float c = 0.0f;
        CHECK(f32(0x7B800000u) == 0x1p120f);
        dp(1, 1, 1, a, b, &c);
        CHECK(c == 0.0f);
    }
    /* FTZ: 2^-100 * 2^-30 = 2^-130 is an f32 denormal: flushed; a denormal destination too */
    {
        const uint16_t a[2] = {bf(0x1p-100f), 0}, b[2] = {bf(0x1p-30f), 0};
        float c = 0.0f;
        dp(1, 1, 1, a, b, &c);
        CHECK(c == 0.0f);
        c = f32(0x00000100u); /* a denormal already in C */
        const uint16_t z[2] = {0, 0};
        dp(1, 1, 1, z, z, &c);
        CHECK(c == 0.0f);
    }
    /* a plain product: 16 x 16 x 32 small integers, exact, against a loop; C accumulates */
    {
        uint16_t a[16 * 32], b[16 * 32];
        float c[16 * 16], want[16 * 16];
        for (int i = 0; i < 16 * 32; i++) {
            a[i] = bf((float)(i % 7) - 3.0f);
            b[i] = bf((float)(i % 5) - 2.0f);
        }
        for (int m = 0; m < 16; m++)
            for (int n = 0; n < 16; n++) {
                float s = (float)(m - n);
                c[m * 16 + n] = s;
                for (int k = 0; k < 32; k++) {
                    /* A[m][k] = a[m * 32 + k]; B[k][n]: row k / 2, element 2n + k % 2 */
                    const float x = (float)(((m * 32 + k) % 7) - 3);
                    const float y = (float)((((k / 2) * 32 + 2 * n + k % 2) % 5) - 2);
                    s += x * y;
                }
                want[m * 16 + n] = s;
            }
        dp(16, 16, 16, a, b, c);
        CHECK(memcmp(c, want, sizeof c) == 0);
    }
    CHECK(rsclip__amx_emu_faults() == 0);
    /* loads and stores honour the stride and zero what lies past the configured shape */
    {
        rsclip__amx_tilecfg cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.palette = 1;
        cfg.rows[3] = 2, cfg.colsb[3] = 8;
        rsclip__amx_emu_config(&cfg);
        const uint32_t src[2][5] = {{1, 2, 3, 4, 5}, {6, 7, 8, 9, 10}};
        uint32_t dst[3][4];
        memset(dst, 0xEE, sizeof dst);
        rsclip__amx_emu_load(3, src, 20);
        rsclip__amx_emu_store(3, dst, 16);
        CHECK(dst[0][0] == 1 && dst[0][1] == 2 && dst[1][0] == 6 && dst[1][1] == 7);
        CHECK(dst[0][2] == 0xEEEEEEEEu && dst[2][0] == 0xEEEEEEEEu);
        /* shape mismatch (K of A != rows of B) and an unconfigured tile fault */
        const int before = rsclip__amx_emu_faults();
        rsclip__amx_emu_dpbf16ps(3, 3, 3); /* 2 x 2 pairs vs 2 rows: fine */
        CHECK(rsclip__amx_emu_faults() == before);
        rsclip__amx_emu_zero(5);
        CHECK(rsclip__amx_emu_faults() == before + 1);
        rsclip__amx_emu_release();
        rsclip__amx_emu_zero(3);
        CHECK(rsclip__amx_emu_faults() == before + 2);
    }
    return tu_finish("test_amx_emu");
}
#else
int main(void) {
    printf("skipped: not x86-64\n");
    return 77;
}
#endif
