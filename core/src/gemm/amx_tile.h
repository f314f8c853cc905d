/*
 * gemm/amx_tile.h -- the thin layer between the AMX kernel (gemm_amx_body.h) and the tiles.
 *
 * The kernel uses only these operations, always with literal tile numbers 0..7:
 *   AMX_TILE_CONFIG(cfg)      ldtilecfg: 64-byte palette-1 configuration (rsclip__amx_tilecfg)
 *   AMX_TILE_RELEASE()        tilerelease
 *   AMX_TILE_ZERO(t)          tilezero tmm<t>
 *   AMX_TILE_LOAD(t, p, ld)   tileloadd tmm<t>, [p + row * ld]
 *   AMX_TILE_STORE(t, p, ld)  tilestored [p + row * ld], tmm<t>
 *   AMX_TILE_DPBF16PS(c,a,b)  tdpbf16ps tmm<c>, tmm<a>, tmm<b>
 * Built normally, they are the compiler's AMX intrinsics (the functions that use them carry
 * AMX_TARGET), with compiler barriers around them: the intrinsics' inline asm takes only the
 * address, so without a barrier the compiler could move ordinary loads and stores of the same
 * memory across a tile load or store. Built with RSCLIP_AMX_EMULATION defined (gemm_amx_emu.c),
 * they call a C emulation of the instructions as Intel's SDM pseudo-code defines them, bit for
 * bit (tdpbf16ps: per row, the even and the odd bf16 products summed separately in f32 with
 * FMA, round-to-nearest-even, denormal inputs read as zero and denormal results flushed to zero,
 * then both sums added to the destination element), so that the driver, the packing and the
 * epilogues of the AMX path run and are tested on CPUs without AMX.
 */
#ifndef RSCLIP_AMX_TILE_H
#define RSCLIP_AMX_TILE_H

#include <stdint.h>

/* ldtilecfg's memory operand (palette 1). */
typedef struct rsclip__amx_tilecfg {
    uint8_t palette, start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} rsclip__amx_tilecfg;

/* Instructions the emulation saw that would fault on real hardware (unconfigured tiles,
 * mismatched shapes, a bad configuration), over the process: tests expect 0. */
int rsclip__amx_emu_faults(void);

#if defined(RSCLIP_AMX_EMULATION)

void rsclip__amx_emu_config(const rsclip__amx_tilecfg *cfg);
void rsclip__amx_emu_release(void);
void rsclip__amx_emu_zero(int t);
void rsclip__amx_emu_load(int t, const void *base, long stride);
void rsclip__amx_emu_store(int t, void *base, long stride);
void rsclip__amx_emu_dpbf16ps(int c, int a, int b);

#define AMX_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define AMX_TILE_CONFIG(cfg) rsclip__amx_emu_config(cfg)
#define AMX_TILE_RELEASE() rsclip__amx_emu_release()
#define AMX_TILE_ZERO(t) rsclip__amx_emu_zero(t)
#define AMX_TILE_LOAD(t, p, ld) rsclip__amx_emu_load(t, p, (long)(ld))
#define AMX_TILE_STORE(t, p, ld) rsclip__amx_emu_store(t, p, (long)(ld))
#define AMX_TILE_DPBF16PS(c, a, b) rsclip__amx_emu_dpbf16ps(c, a, b)

#else

#include <immintrin.h>

#define AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512bf16")))
#define AMX_BARRIER() __asm__ volatile("" ::: "memory")
#define AMX_TILE_CONFIG(cfg)                                                                       \
    do {                                                                                           \
        AMX_BARRIER();                                                                             \
        _tile_loadconfig(cfg);                                                                     \
    } while (0)
#define AMX_TILE_RELEASE() _tile_release()
#define AMX_TILE_ZERO(t) _tile_zero(t)
#define AMX_TILE_LOAD(t, p, ld)                                                                    \
    do {                                                                                           \
        AMX_BARRIER();                                                                             \
        _tile_loadd(t, p, ld);                                                                     \
    } while (0)
#define AMX_TILE_STORE(t, p, ld)                                                                   \
    do {                                                                                           \
        _tile_stored(t, p, ld);                                                                    \
        AMX_BARRIER();                                                                             \
    } while (0)
#define AMX_TILE_DPBF16PS(c, a, b) _tile_dpbf16ps(c, a, b)

#endif
#endif
