/* Precision and compute path (ISA) of the encoder: names, the rule for what `auto` and `bf16`
 * run on this CPU (the table is in gemm/isa.c), and the report behind `rsclip --version
 * --verbose`. */
#include "gemm/isa.h"
#include "model/model_internal.h"

#include "status/status_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int rsclip_precision_parse(const char *s, rsclip_precision *out) {
    if (!s || !out) return rsclip__error(RSCLIP_ERR_INVALID_ARG, "precision: NULL argument");
    if (!strcmp(s, "auto"))
        *out = RSCLIP_PRECISION_AUTO;
    else if (!strcmp(s, "f32"))
        *out = RSCLIP_PRECISION_F32;
    else if (!strcmp(s, "bf16"))
        *out = RSCLIP_PRECISION_BF16;
    else if (!strcmp(s, "int8"))
        *out = RSCLIP_PRECISION_INT8;
    else
        return rsclip__error(RSCLIP_ERR_INVALID_ARG,
                             "precision '%s' is not one of auto, f32, bf16, int8", s);
    return RSCLIP_OK;
}

const char *rsclip_precision_name(rsclip_precision p) {
    switch (p) {
    case RSCLIP_PRECISION_AUTO:
        return "auto";
    case RSCLIP_PRECISION_F32:
        return "f32";
    case RSCLIP_PRECISION_BF16:
        return "bf16";
    case RSCLIP_PRECISION_INT8:
        return "int8";
    }
    return "?";
}

const char *rsclip_isa_name(rsclip_isa isa) {
    return rsclip__isa_name((rsclip__isa)isa);
}

rsclip_isa rsclip_precision_isa(rsclip_precision p, const char **why) {
    const rsclip__cpu *c = rsclip__cpu_get();
    const rsclip__isa top = rsclip__isa_ceiling();
    const int forced = rsclip__isa_forced();
    const char *w;
    rsclip__isa isa;
    if (p == RSCLIP_PRECISION_INT8 && rsclip__gemm_vnni_usable()) {
        isa = RSCLIP__ISA_AVX512;
        w = "int8 asked for: W8A8 on AVX512-VNNI";
    } else if (p == RSCLIP_PRECISION_INT8) {
        isa = rsclip__isa_best_f32(c, top);
        w = "int8 needs AVX512-VNNI: runs f32";
    } else if (p == RSCLIP_PRECISION_BF16 && top >= RSCLIP__ISA_AVX512BF16) {
        isa = top >= RSCLIP__ISA_AMX ? RSCLIP__ISA_AMX : RSCLIP__ISA_AVX512BF16;
        w = forced ? "bf16 asked for, path forced by RSCLIP_ISA" : "bf16 asked for";
    } else if (p == RSCLIP_PRECISION_BF16 || p == RSCLIP_PRECISION_F32) {
        isa = rsclip__isa_best_f32(c, top);
        w = p == RSCLIP_PRECISION_F32 ? "f32 asked for: the fastest f32 path"
                                      : "bf16 needs AMX or AVX512_BF16: runs f32";
    } else {
        isa = rsclip__isa_auto(c, top, forced, &w);
    }
    if (why) *why = w;
    return (rsclip_isa)isa;
}

rsclip_precision rsclip_precision_effective(rsclip_precision p) {
    if (p == RSCLIP_PRECISION_F32) return RSCLIP_PRECISION_F32;
    if (p == RSCLIP_PRECISION_INT8)
        return rsclip__gemm_vnni_usable() ? RSCLIP_PRECISION_INT8 : RSCLIP_PRECISION_F32;
    return rsclip_precision_isa(p, NULL) >= RSCLIP_ISA_AVX512BF16 ? RSCLIP_PRECISION_BF16
                                                                  : RSCLIP_PRECISION_F32;
}

/* ---------------------------------------------------------------------------------------------
 * Report
 */
typedef struct sbuf {
    char *p;
    size_t size, len;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) RSCLIP_PRINTF(2, 3);
static void put(sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const size_t room = b->len < b->size ? b->size - b->len : 0;
    const int n = vsnprintf(room ? b->p + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0) b->len += (size_t)n;
}

static void put_flag(sbuf *b, int on, const char *name) {
    put(b, " %s%s", on ? "" : "no-", name);
}

size_t rsclip_cpu_report(char *buf, size_t size) {
    sbuf b = {buf, size, 0};
    if (buf && size) buf[0] = 0;
    const rsclip__cpu *c = rsclip__cpu_get();
    put(&b, "cpu: %s (%s, family 0x%x, model 0x%x, stepping %d)\n", c->brand[0] ? c->brand : "?",
        c->vendor[0] ? c->vendor : "?", c->family, c->model, c->stepping);
    put(&b, "cpuid:");
    put_flag(&b, c->avx2, "avx2");
    put_flag(&b, c->fma, "fma");
    put_flag(&b, c->avx512f, "avx512f");
    put_flag(&b, c->avx512bw, "avx512bw");
    put_flag(&b, c->avx512vl, "avx512vl");
    put_flag(&b, c->avx512bf16, "avx512_bf16");
    put_flag(&b, c->avx512vnni, "avx512_vnni");
    put_flag(&b, c->amx_tile, "amx_tile");
    put_flag(&b, c->amx_bf16, "amx_bf16");
    put_flag(&b, c->amx_int8, "amx_int8");
    put(&b, "\nos (xcr0): avx %s, avx-512 %s, amx tiles %s; amx tile-data permission: %s\n",
        c->os_avx ? "on" : "off", c->os_avx512 ? "on" : "off", c->os_amx ? "on" : "off",
        c->amx_perm > 0   ? "granted"
        : c->amx_perm < 0 ? "refused"
                          : "not requested");
    put(&b, "paths:");
    for (int i = RSCLIP__ISA_N - 1; i >= 0; i--) {
        const char *why = NULL;
        int ok = rsclip__cpu_runs(c, (rsclip__isa)i, &why);
        if (i == RSCLIP__ISA_AMX && rsclip__isa_amx_emulated()) {
            ok = 1;
            why = "C emulation of the tiles: RSCLIP_AMX_EMULATE=1";
        }
        put(&b, " %s %s%s%s%s", rsclip__isa_name((rsclip__isa)i), ok ? "yes" : "no",
            why ? " (" : "", why ? why : "", why ? ")" : "");
        put(&b, "%s", i ? ";" : "\n");
    }
    const char *err = rsclip__isa_env_error();
    if (err)
        put(&b, "RSCLIP_ISA: error: %s\n", err);
    else
        put(&b, "RSCLIP_ISA: %s; kernels may use up to %s\n",
            rsclip__isa_forced() ? "set" : "unset", rsclip__isa_name(rsclip__isa_ceiling()));
    const rsclip_precision ps[4] = {RSCLIP_PRECISION_AUTO, RSCLIP_PRECISION_BF16,
                                    RSCLIP_PRECISION_F32, RSCLIP_PRECISION_INT8};
    for (int i = 0; i < 4; i++) {
        const char *why = NULL;
        const rsclip_isa isa = rsclip_precision_isa(ps[i], &why);
        put(&b, "precision %-4s -> %s (%s): %s\n", rsclip_precision_name(ps[i]),
            rsclip_isa_name(isa), rsclip_precision_name(rsclip_precision_effective(ps[i])),
            why ? why : "");
    }
    return b.len;
}
