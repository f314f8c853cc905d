/*
 * gemm/isa.h -- private: what this CPU and OS can run, which compute path (ISA) the encoder's
 * matrix products take, and why.
 *
 * Paths, slowest to fastest: scalar (portable C) < avx2 (AVX2 + FMA, f32) < avx512 (AVX-512F, f32)
 * < avx512bf16 (vdpbf16ps, bf16 weights) < amx (AMX-BF16 tiles, bf16 weights). A path is usable
 * when CPUID reports its instructions AND the OS saves their registers (XCR0 via xgetbv); AMX also
 * needs Linux's per-process permission for the tile data (arch_prctl(ARCH_REQ_XCOMP_PERM,
 * XFEATURE_XTILEDATA), kernel >= 5.16), requested once, before the first tile instruction; when
 * it is refused the AMX path is simply not usable.
 *
 * The environment variable RSCLIP_ISA=amx|avx512bf16|avx512|avx2|scalar forces a path (for tests
 * and bug reports): it is the ceiling of every kernel choice, and `auto` runs exactly that path.
 * Naming a path the CPU cannot run, or an unknown name, is an error that rsclip_encoder_new
 * reports (the kernels meanwhile run the best usable path). RSCLIP_GEMM_SCALAR=1 (the older
 * switch) means RSCLIP_ISA=scalar. RSCLIP_AMX_EMULATE=1 (tests only) makes the AMX path usable on
 * any CPU with AVX512_BF16 by running the tile instructions through a bit-exact C emulation
 * (gemm/amx_tile.h), thousands of times slower than real tiles.
 */
#ifndef RSCLIP_GEMM_ISA_H
#define RSCLIP_GEMM_ISA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Same values as the public rsclip_isa (rsclip/model.h). */
typedef enum rsclip__isa {
    RSCLIP__ISA_SCALAR = 0,
    RSCLIP__ISA_AVX2 = 1,
    RSCLIP__ISA_AVX512 = 2,
    RSCLIP__ISA_AVX512BF16 = 3,
    RSCLIP__ISA_AMX = 4,
    RSCLIP__ISA_N = 5
} rsclip__isa;

/* What CPUID and the OS report (plus the AMX permission, once asked). */
typedef struct rsclip__cpu {
    char vendor[13];             /* "GenuineIntel", "AuthenticAMD", ... ("" off x86) */
    char brand[49];              /* processor brand string */
    int family, model, stepping; /* display family / model (extended fields folded in) */
    /* CPUID feature bits */
    int avx, avx2, fma, avx512f, avx512bw, avx512vl, avx512dq, avx512bf16, avx512vnni;
    int amx_tile, amx_bf16, amx_int8;
    int amx_palette_ok; /* CPUID leaf 0x1D palette 1 has >= 8 tiles of 16 rows x 64 bytes */
    /* OS register state enabled in XCR0 */
    int os_avx, os_avx512, os_amx;
    int amx_perm; /* 1 granted, 0 not asked (yet), -1 refused (kernel too old or denied) */
} rsclip__cpu;

/* Fill c from CPUID / XCR0 of the running CPU (no side effect; amx_perm = 0). */
void rsclip__cpu_detect(rsclip__cpu *c);

/* 1 if c can run isa (AMX: CPUID + XCR0 + palette + permission granted). *why (may be NULL)
 * receives a static sentence naming what is missing when it cannot. */
int rsclip__cpu_runs(const rsclip__cpu *c, rsclip__isa isa, const char **why);

/* "scalar", "avx2", "avx512", "avx512bf16", "amx" ("?" out of range). */
const char *rsclip__isa_name(rsclip__isa isa);
/* Inverse of rsclip__isa_name; -1 when s names no path. */
int rsclip__isa_from_name(const char *s);

/* The environment's request: isa_env = RSCLIP_ISA, scalar_env = RSCLIP_GEMM_SCALAR (either may be
 * NULL). *forced = 1 and *isa = the named path when one is named (RSCLIP_ISA wins over
 * RSCLIP_GEMM_SCALAR), else *forced = 0. Returns 0, or -1 with a message in err for an unknown
 * name. */
int rsclip__isa_parse_env(const char *isa_env, const char *scalar_env, rsclip__isa *isa,
                          int *forced, char *err, size_t err_size);

/* The path `auto` precision runs on c when the ceiling is `ceiling` (forced: named by RSCLIP_ISA,
 * then exactly that path), with the measured or documented reason for the choice. The table:
 * AMX when usable; AVX512_BF16 only on CPUs where vdpbf16ps is faster than f32 FMA (AMD Zen 4
 * and later); otherwise the best f32 path. Never a path slower than f32. */
rsclip__isa rsclip__isa_auto(const rsclip__cpu *c, rsclip__isa ceiling, int forced,
                             const char **reason);

/* The best f32 path (avx512, avx2 or scalar) at or below ceiling on c. */
rsclip__isa rsclip__isa_best_f32(const rsclip__cpu *c, rsclip__isa ceiling);

/* ---- process state (detected once, thread-safe) ---- */

/* This process's CPU description (AMX permission asked for when AMX may be used). */
const rsclip__cpu *rsclip__cpu_get(void);
/* The highest path the kernels may take: the best usable one, or the RSCLIP_ISA one. */
rsclip__isa rsclip__isa_ceiling(void);
/* 1 when RSCLIP_ISA (or RSCLIP_GEMM_SCALAR) named the path. */
int rsclip__isa_forced(void);
/* NULL, or why the RSCLIP_ISA request cannot be honoured (unknown name, CPU cannot run it). */
const char *rsclip__isa_env_error(void);
/* 1 when the int8 kernel may use AVX512-VNNI: the CPU has it and the ceiling is avx512 or above. */
int rsclip__gemm_vnni_usable(void);
/* 1 when the AMX tile operations run through the C emulation (RSCLIP_AMX_EMULATE=1). */
int rsclip__isa_amx_emulated(void);

#ifdef __cplusplus
}
#endif
#endif
