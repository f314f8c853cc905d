/* CPU / OS feature detection, the RSCLIP_ISA switch and the table behind `auto` precision. */
#include "gemm/isa.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define ISA_X86 1
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

static const char *const k_names[RSCLIP__ISA_N] = {"scalar", "avx2", "avx512", "avx512bf16", "amx"};

const char *rsclip__isa_name(rsclip__isa isa) {
    return (int)isa >= 0 && isa < RSCLIP__ISA_N ? k_names[isa] : "?";
}

int rsclip__isa_from_name(const char *s) {
    if (!s) return -1;
    for (int i = 0; i < RSCLIP__ISA_N; i++)
        if (strcmp(s, k_names[i]) == 0) return i;
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * Detection
 */
#if defined(ISA_X86)
static unsigned long long xgetbv0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}
#endif

void rsclip__cpu_detect(rsclip__cpu *c) {
    memset(c, 0, sizeof *c);
#if defined(ISA_X86)
    unsigned a, b, cx, d, max_leaf;
    if (!__get_cpuid(0, &max_leaf, &b, &cx, &d)) return;
    memcpy(c->vendor, &b, 4);
    memcpy(c->vendor + 4, &d, 4);
    memcpy(c->vendor + 8, &cx, 4);
    unsigned ext = __get_cpuid_max(0x80000000u, NULL);
    if (ext >= 0x80000004u) {
        unsigned r[12];
        for (unsigned i = 0; i < 3; i++)
            __get_cpuid(0x80000002u + i, &r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]);
        char raw[49];
        memcpy(raw, r, 48);
        raw[48] = 0;
        const char *p = raw;
        while (*p == ' ') p++;
        snprintf(c->brand, sizeof c->brand, "%s", p);
        for (size_t n = strlen(c->brand); n > 0 && c->brand[n - 1] == ' '; n--) c->brand[n - 1] = 0;
    }
    if (max_leaf < 1 || !__get_cpuid(1, &a, &b, &cx, &d)) return;
    const unsigned base_family = (a >> 8) & 0xF, base_model = (a >> 4) & 0xF;
    c->stepping = (int)(a & 0xF);
    c->family = (int)(base_family == 0xF ? base_family + ((a >> 20) & 0xFF) : base_family);
    c->model = (int)(base_family == 6 || base_family == 0xF ? (((a >> 16) & 0xF) << 4) | base_model
                                                            : base_model);
    c->fma = (cx >> 12) & 1;
    c->avx = (cx >> 28) & 1;
    const int osxsave = (cx >> 27) & 1;
    if (osxsave) {
        const unsigned long long xcr0 = xgetbv0();
        c->os_avx = (xcr0 & 0x6) == 0x6;         /* XMM, YMM */
        c->os_avx512 = (xcr0 & 0xE6) == 0xE6;    /* + opmask, ZMM_Hi256, Hi16_ZMM */
        c->os_amx = (xcr0 & 0x60000) == 0x60000; /* XTILECFG (17), XTILEDATA (18) */
    }
    if (max_leaf >= 7 && __get_cpuid_count(7, 0, &a, &b, &cx, &d)) {
        const unsigned sub = a;
        c->avx2 = (b >> 5) & 1;
        c->avx512f = (b >> 16) & 1;
        c->avx512dq = (b >> 17) & 1;
        c->avx512bw = (b >> 30) & 1;
        c->avx512vl = (b >> 31) & 1;
        c->avx512vnni = (cx >> 11) & 1;
        c->amx_bf16 = (d >> 22) & 1;
        c->amx_tile = (d >> 24) & 1;
        c->amx_int8 = (d >> 25) & 1;
        if (sub >= 1 && __get_cpuid_count(7, 1, &a, &b, &cx, &d)) c->avx512bf16 = (a >> 5) & 1;
    }
    /* Tile palette 1: the kernels use 8 tiles of 16 rows x 64 bytes. */
    if (c->amx_tile && max_leaf >= 0x1D && __get_cpuid_count(0x1D, 0, &a, &b, &cx, &d) && a >= 1 &&
        __get_cpuid_count(0x1D, 1, &a, &b, &cx, &d))
        c->amx_palette_ok = (b & 0xFFFF) >= 64 && (b >> 16) >= 8 && (cx & 0xFFFF) >= 16;
#endif
}

int rsclip__cpu_runs(const rsclip__cpu *c, rsclip__isa isa, const char **why) {
    const char *w = NULL;
    switch (isa) {
    case RSCLIP__ISA_SCALAR:
        break;
    case RSCLIP__ISA_AVX2:
        if (!c->avx || !c->avx2 || !c->fma)
            w = "CPUID reports no AVX2 + FMA";
        else if (!c->os_avx)
            w = "the OS does not enable the AVX registers (XCR0)";
        break;
    case RSCLIP__ISA_AVX512:
        if (!c->avx512f)
            w = "CPUID reports no AVX-512F";
        else if (!c->os_avx512)
            w = "the OS does not enable the AVX-512 registers (XCR0)";
        break;
    case RSCLIP__ISA_AVX512BF16:
        if (!c->avx512f || !c->avx512bw || !c->avx512vl || !c->avx512bf16)
            w = "CPUID reports no AVX512_BF16 (with AVX-512F/BW/VL)";
        else if (!c->os_avx512)
            w = "the OS does not enable the AVX-512 registers (XCR0)";
        break;
    case RSCLIP__ISA_AMX:
        if (!c->amx_tile || !c->amx_bf16)
            w = "CPUID reports no AMX-BF16";
        else if (!rsclip__cpu_runs(c, RSCLIP__ISA_AVX512BF16, NULL))
            w = "AMX without AVX512_BF16 (needed around the tiles)";
        else if (!c->amx_palette_ok)
            w = "the AMX tile palette is smaller than 8 tiles of 16 x 64 bytes";
        else if (!c->os_amx)
            w = "the OS does not enable the AMX tile state (XCR0)";
        else if (c->amx_perm == 0)
            w = "the tile-data permission was not requested";
        else if (c->amx_perm < 0)
            w = "Linux refused the tile-data permission (ARCH_REQ_XCOMP_PERM; kernel < 5.16?)";
        break;
    default:
        w = "unknown path";
    }
    if (why) *why = w;
    return w == NULL;
}

/* Ask Linux for the AMX tile-data state for this process (once, before any tile instruction):
 * 1 granted, -1 refused. */
static int request_amx(void) {
#if defined(ISA_X86) && defined(__linux__) && defined(SYS_arch_prctl)
    enum { ARCH_GET_XCOMP_PERM = 0x1022, ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) return -1;
    unsigned long bits = 0;
    if (syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &bits) != 0) return -1;
    return (bits >> XFEATURE_XTILEDATA) & 1 ? 1 : -1;
#else
    return -1;
#endif
}

/* ---------------------------------------------------------------------------------------------
 * The environment
 */
int rsclip__isa_parse_env(const char *isa_env, const char *scalar_env, rsclip__isa *isa,
                          int *forced, char *err, size_t err_size) {
    *forced = 0;
    *isa = RSCLIP__ISA_SCALAR;
    if (err_size) err[0] = 0;
    if (isa_env && *isa_env) {
        const int i = rsclip__isa_from_name(isa_env);
        if (i < 0) {
            snprintf(err, err_size,
                     "RSCLIP_ISA='%.40s' is not one of amx, avx512bf16, avx512, avx2, scalar",
                     isa_env);
            return -1;
        }
        *isa = (rsclip__isa)i;
        *forced = 1;
        return 0;
    }
    if (scalar_env && *scalar_env && strcmp(scalar_env, "0") != 0) {
        *isa = RSCLIP__ISA_SCALAR;
        *forced = 1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * `auto`: which CPUs run bf16 dot products (vdpbf16ps) faster than f32 FMA. AMX, where usable,
 * is taken before this table is consulted. Rows are matched top-down; a CPU no row names runs
 * f32, so `auto` is never slower than f32 on a CPU nobody measured.
 */
typedef struct auto_row {
    const char *vendor;
    int family_lo, family_hi, model_lo, model_hi;
    int bf16_faster;
    const char *reason;
} auto_row;

static const auto_row k_auto_table[] = {
    {"AuthenticAMD", 0x1A, 0xFF, 0, 0xFF, 1,
     "AMD Zen 5: the vdpbf16ps encoder measured 1.85x the f32 one (EPYC, base vision tower, "
     "batch 8, 2 threads)"},
    {"AuthenticAMD", 0x19, 0x19, 0, 0xFF, 1,
     "AMD Zen 4: vdpbf16ps does twice the work of an f32 FMA at the same issue rate (as on Zen 5, "
     "where the bf16 encoder measured 1.85x f32)"},
    {"GenuineIntel", 6, 6, 0x8F, 0x8F, 0,
     "Intel Sapphire Rapids without usable AMX: the vdpbf16ps encoder measured 0.6x the f32 one "
     "(issue 13), so f32"},
    {"GenuineIntel", 6, 6, 0xCF, 0xCF, 0,
     "Intel Emerald Rapids without usable AMX: Sapphire Rapids cores, where vdpbf16ps measured "
     "0.6x f32, so f32"},
    {"GenuineIntel", 6, 6, 0xAD, 0xAE, 0,
     "Intel Granite Rapids without usable AMX: vdpbf16ps is no faster than f32 FMA on Intel cores "
     "(0.6x measured on Sapphire Rapids), so f32"},
};

rsclip__isa rsclip__isa_best_f32(const rsclip__cpu *c, rsclip__isa ceiling) {
    if (ceiling >= RSCLIP__ISA_AVX512 && rsclip__cpu_runs(c, RSCLIP__ISA_AVX512, NULL))
        return RSCLIP__ISA_AVX512;
    if (ceiling >= RSCLIP__ISA_AVX2 && rsclip__cpu_runs(c, RSCLIP__ISA_AVX2, NULL))
        return RSCLIP__ISA_AVX2;
    return RSCLIP__ISA_SCALAR;
}

rsclip__isa rsclip__isa_auto(const rsclip__cpu *c, rsclip__isa ceiling, int forced,
                             const char **reason) {
    const char *r;
    rsclip__isa isa;
    if (forced) {
        isa = ceiling;
        r = "forced by RSCLIP_ISA";
    } else if (ceiling >= RSCLIP__ISA_AMX) {
        isa = RSCLIP__ISA_AMX;
        r = "AMX-BF16 tiles: 16x the bf16 work per cycle of AVX-512 FMA (oneDNN bf16 on AMX "
            "measured 1.2x rsclip's f32 encoder on a Xeon, issue 13)";
    } else if (ceiling >= RSCLIP__ISA_AVX512BF16) {
        const auto_row *row = NULL;
        for (size_t i = 0; i < sizeof k_auto_table / sizeof k_auto_table[0] && !row; i++) {
            const auto_row *t = &k_auto_table[i];
            if (strcmp(c->vendor, t->vendor) == 0 && c->family >= t->family_lo &&
                c->family <= t->family_hi && c->model >= t->model_lo && c->model <= t->model_hi)
                row = t;
        }
        isa = row && row->bf16_faster ? RSCLIP__ISA_AVX512BF16 : rsclip__isa_best_f32(c, ceiling);
        r = row ? row->reason
                : "no measurement shows vdpbf16ps faster than f32 FMA on this CPU, so f32";
    } else {
        isa = rsclip__isa_best_f32(c, ceiling);
        r = "no bf16 path on this CPU: the fastest f32 one";
    }
    if (reason) *reason = r;
    return isa;
}

/* ---------------------------------------------------------------------------------------------
 * Process state
 */
static struct {
    rsclip__cpu cpu;
    rsclip__isa ceiling;
    int forced, emulated;
    char error[160];
} g_isa;
static pthread_once_t g_isa_once = PTHREAD_ONCE_INIT;

static int usable(rsclip__isa isa, const char **why) {
    if (isa == RSCLIP__ISA_AMX && g_isa.emulated) {
        if (why) *why = NULL;
        return 1;
    }
    return rsclip__cpu_runs(&g_isa.cpu, isa, why);
}

static void isa_init(void) {
    rsclip__cpu_detect(&g_isa.cpu);
    rsclip__isa want = RSCLIP__ISA_SCALAR;
    const int bad = rsclip__isa_parse_env(getenv("RSCLIP_ISA"), getenv("RSCLIP_GEMM_SCALAR"), &want,
                                          &g_isa.forced, g_isa.error, sizeof g_isa.error);
    if (bad) g_isa.forced = 0;
    const char *emu = getenv("RSCLIP_AMX_EMULATE");
    g_isa.emulated = emu && *emu && strcmp(emu, "0") != 0 &&
                     rsclip__cpu_runs(&g_isa.cpu, RSCLIP__ISA_AVX512BF16, NULL);
    /* The permission changes the process (bigger signal frames): only ask when AMX may run. */
    const rsclip__cpu *c = &g_isa.cpu;
    if (!g_isa.emulated && c->amx_tile && c->amx_bf16 && c->amx_palette_ok && c->os_amx &&
        (!g_isa.forced || want == RSCLIP__ISA_AMX))
        g_isa.cpu.amx_perm = request_amx();
    rsclip__isa best = RSCLIP__ISA_SCALAR;
    for (int i = RSCLIP__ISA_N - 1; i > 0; i--)
        if (usable((rsclip__isa)i, NULL)) {
            best = (rsclip__isa)i;
            break;
        }
    g_isa.ceiling = best;
    if (g_isa.forced) {
        const char *why = NULL;
        if (usable(want, &why)) {
            g_isa.ceiling = want;
        } else {
            snprintf(g_isa.error, sizeof g_isa.error, "RSCLIP_ISA=%s: this CPU cannot run it (%s)",
                     rsclip__isa_name(want), why ? why : "?");
            g_isa.forced = 0;
        }
    }
}

const rsclip__cpu *rsclip__cpu_get(void) {
    pthread_once(&g_isa_once, isa_init);
    return &g_isa.cpu;
}

rsclip__isa rsclip__isa_ceiling(void) {
    pthread_once(&g_isa_once, isa_init);
    return g_isa.ceiling;
}

int rsclip__isa_forced(void) {
    pthread_once(&g_isa_once, isa_init);
    return g_isa.forced;
}

const char *rsclip__isa_env_error(void) {
    pthread_once(&g_isa_once, isa_init);
    return g_isa.error[0] ? g_isa.error : NULL;
}

int rsclip__isa_amx_emulated(void) {
    pthread_once(&g_isa_once, isa_init);
    return g_isa.emulated;
}

int rsclip__gemm_vnni_usable(void) {
    pthread_once(&g_isa_once, isa_init);
    return g_isa.ceiling >= RSCLIP__ISA_AVX512 && g_isa.cpu.avx512vnni && g_isa.cpu.avx512bw &&
           g_isa.cpu.avx512vl;
}
