/* The ISA layer: RSCLIP_ISA parsing, what a CPU description can run (CPUID, XCR0, the AMX
 * permission), the `auto` table on described CPUs (AMD Zen 4/5 -> bf16, Intel Sapphire / Emerald
 * / Granite Rapids without AMX -> f32, AMX -> amx, unknown -> f32), and the report. */
#include "gemm/isa.h"
#include "rsclip/model.h"
#include "rsclip/status.h"
#include "test_util.h"

static rsclip__cpu cpu(const char *vendor, int family, int model, int avx512, int bf16, int amx) {
    rsclip__cpu c;
    memset(&c, 0, sizeof c);
    snprintf(c.vendor, sizeof c.vendor, "%s", vendor);
    c.family = family;
    c.model = model;
    c.avx = c.avx2 = c.fma = c.os_avx = 1;
    c.avx512f = c.avx512bw = c.avx512vl = c.avx512dq = c.os_avx512 = avx512;
    c.avx512bf16 = bf16;
    c.amx_tile = c.amx_bf16 = c.amx_int8 = c.amx_palette_ok = c.os_amx = amx;
    c.amx_perm = amx ? 1 : 0;
    return c;
}

static void test_parse(void) {
    rsclip__isa isa;
    int forced;
    char err[200];
    CHECK(rsclip__isa_parse_env(NULL, NULL, &isa, &forced, err, sizeof err) == 0 && !forced);
    CHECK(rsclip__isa_parse_env("", "0", &isa, &forced, err, sizeof err) == 0 && !forced);
    CHECK(rsclip__isa_parse_env("avx2", NULL, &isa, &forced, err, sizeof err) == 0 && forced &&
          isa == RSCLIP__ISA_AVX2);
    CHECK(rsclip__isa_parse_env("amx", NULL, &isa, &forced, err, sizeof err) == 0 && forced &&
          isa == RSCLIP__ISA_AMX);
    /* the older switch, and RSCLIP_ISA winning over it */
    CHECK(rsclip__isa_parse_env(NULL, "1", &isa, &forced, err, sizeof err) == 0 && forced &&
          isa == RSCLIP__ISA_SCALAR);
    CHECK(rsclip__isa_parse_env("avx512", "1", &isa, &forced, err, sizeof err) == 0 && forced &&
          isa == RSCLIP__ISA_AVX512);
    CHECK(rsclip__isa_parse_env("avx-512", NULL, &isa, &forced, err, sizeof err) == -1 && !forced &&
          strstr(err, "'avx-512'") && strstr(err, "avx512bf16"));
    for (int i = 0; i < RSCLIP__ISA_N; i++)
        CHECK(rsclip__isa_from_name(rsclip__isa_name((rsclip__isa)i)) == i);
    CHECK(rsclip__isa_from_name("AMX") == -1 && rsclip__isa_from_name(NULL) == -1);
    CHECK(strcmp(rsclip_isa_name(RSCLIP_ISA_AVX512BF16), "avx512bf16") == 0);
}

static void test_runs(void) {
    const char *why = NULL;
    rsclip__cpu c = cpu("AuthenticAMD", 0x1A, 0x02, 1, 1, 0);
    CHECK(rsclip__cpu_runs(&c, RSCLIP__ISA_AVX512BF16, NULL));
    CHECK(!rsclip__cpu_runs(&c, RSCLIP__ISA_AMX, &why) && why && strstr(why, "AMX"));
    /* CPUID says AVX-512 but the OS does not save the registers: not usable */
    c.os_avx512 = 0;
    CHECK(!rsclip__cpu_runs(&c, RSCLIP__ISA_AVX512, &why) && strstr(why, "XCR0"));
    CHECK(!rsclip__cpu_runs(&c, RSCLIP__ISA_AVX512BF16, NULL));
    CHECK(rsclip__cpu_runs(&c, RSCLIP__ISA_AVX2, NULL));
    c.os_avx = 0;
    CHECK(!rsclip__cpu_runs(&c, RSCLIP__ISA_AVX2, NULL) && rsclip__cpu_runs(&c, 0, NULL));
    /* AMX: CPUID, XCR0, palette and the Linux permission all needed */
    rsclip__cpu x = cpu("GenuineIntel", 6, 0x8F, 1, 1, 1);
    CHECK(rsclip__cpu_runs(&x, RSCLIP__ISA_AMX, &why) && why == NULL);
    x.amx_perm = -1;
    CHECK(!rsclip__cpu_runs(&x, RSCLIP__ISA_AMX, &why) && strstr(why, "refused"));
    x.amx_perm = 0;
    CHECK(!rsclip__cpu_runs(&x, RSCLIP__ISA_AMX, &why) && strstr(why, "not requested"));
    x.amx_perm = 1;
    x.os_amx = 0;
    CHECK(!rsclip__cpu_runs(&x, RSCLIP__ISA_AMX, &why) && strstr(why, "XCR0"));
    x.os_amx = 1;
    x.amx_palette_ok = 0;
    CHECK(!rsclip__cpu_runs(&x, RSCLIP__ISA_AMX, NULL));
}

static rsclip__isa auto_of(const rsclip__cpu *c, const char *want_in_reason) {
    rsclip__isa top = RSCLIP__ISA_SCALAR;
    for (int i = RSCLIP__ISA_N - 1; i >= 0; i--)
        if (rsclip__cpu_runs(c, (rsclip__isa)i, NULL)) {
            top = (rsclip__isa)i;
            break;
        }
    const char *reason = NULL;
    const rsclip__isa isa = rsclip__isa_auto(c, top, 0, &reason);
    CHECK(reason != NULL);
    if (want_in_reason && !(reason && strstr(reason, want_in_reason))) {
        fprintf(stderr, "auto reason '%s' lacks '%s'\n", reason ? reason : "", want_in_reason);
        tu_failures++;
    }
    return isa;
}

static void test_auto_table(void) {
    rsclip__cpu zen5 = cpu("AuthenticAMD", 0x1A, 0x02, 1, 1, 0);
    CHECK(auto_of(&zen5, "1.85x") == RSCLIP__ISA_AVX512BF16);
    rsclip__cpu zen4 = cpu("AuthenticAMD", 0x19, 0x11, 1, 1, 0);
    CHECK(auto_of(&zen4, "Zen 4") == RSCLIP__ISA_AVX512BF16);
    /* Intel without usable AMX: vdpbf16ps measured slower than f32 FMA -> f32 */
    const int intel_models[4] = {0x8F, 0xCF, 0xAD, 0xAE};
    for (int i = 0; i < 4; i++) {
        rsclip__cpu x = cpu("GenuineIntel", 6, intel_models[i], 1, 1, 1);
        CHECK(auto_of(&x, "AMX") == RSCLIP__ISA_AMX);
        x.amx_perm = -1; /* kernel too old / permission refused */
        CHECK(auto_of(&x, "0.6x") == RSCLIP__ISA_AVX512);
    }
    /* Zen 4 with AVX-512 disabled by the OS: the f32 AVX2 path, never bf16 */
    zen4.os_avx512 = 0;
    CHECK(auto_of(&zen4, NULL) == RSCLIP__ISA_AVX2);
    /* nobody measured it: f32 (never slower than f32) */
    rsclip__cpu other = cpu("HygonGenuine", 0x18, 0x01, 1, 1, 0);
    CHECK(auto_of(&other, "no measurement") == RSCLIP__ISA_AVX512);
    rsclip__cpu old = cpu("GenuineIntel", 6, 0x55, 1, 0, 0);
    CHECK(auto_of(&old, NULL) == RSCLIP__ISA_AVX512);
    rsclip__cpu avx2 = cpu("GenuineIntel", 6, 0x9A, 0, 0, 0);
    CHECK(auto_of(&avx2, NULL) == RSCLIP__ISA_AVX2);
    rsclip__cpu none;
    memset(&none, 0, sizeof none);
    CHECK(auto_of(&none, NULL) == RSCLIP__ISA_SCALAR);
    /* RSCLIP_ISA: auto runs exactly the forced path, even against the table */
    const char *r = NULL;
    rsclip__cpu spr = cpu("GenuineIntel", 6, 0x8F, 1, 1, 0);
    CHECK(rsclip__isa_auto(&spr, RSCLIP__ISA_AVX512BF16, 1, &r) == RSCLIP__ISA_AVX512BF16 &&
          strstr(r, "RSCLIP_ISA"));
    CHECK(rsclip__isa_best_f32(&zen5, RSCLIP__ISA_AMX) == RSCLIP__ISA_AVX512);
    CHECK(rsclip__isa_best_f32(&zen5, RSCLIP__ISA_AVX2) == RSCLIP__ISA_AVX2);
}

/* This process: the public view agrees with the private one, and the report says it. */
static void test_process(void) {
    const rsclip__cpu *c = rsclip__cpu_get();
    const rsclip__isa top = rsclip__isa_ceiling();
    const char *why = NULL;
    const rsclip_isa a = rsclip_precision_isa(RSCLIP_PRECISION_AUTO, &why);
    CHECK((int)a == (int)rsclip__isa_auto(c, top, rsclip__isa_forced(), NULL) && why);
    CHECK(rsclip_precision_isa(RSCLIP_PRECISION_F32, NULL) <= RSCLIP_ISA_AVX512);
    CHECK((rsclip_precision_effective(RSCLIP_PRECISION_AUTO) == RSCLIP_PRECISION_BF16) ==
          (a >= RSCLIP_ISA_AVX512BF16));
    CHECK(rsclip_precision_effective(RSCLIP_PRECISION_F32) == RSCLIP_PRECISION_F32);
    if (!rsclip__isa_forced()) /* the ceiling is the best usable path */
        for (int i = top + 1; i < RSCLIP__ISA_N; i++)
            CHECK(!rsclip__cpu_runs(c, (rsclip__isa)i, NULL));
    CHECK(rsclip__cpu_runs(c, RSCLIP__ISA_SCALAR, NULL));
    char small[8];
    const size_t need = rsclip_cpu_report(small, sizeof small);
    CHECK(need > 100 && strlen(small) == 7);
    char *full = malloc(need + 1);
    REQUIRE(full);
    CHECK(rsclip_cpu_report(full, need + 1) == need && strlen(full) == need);
    CHECK(strstr(full, "cpu: ") && strstr(full, "precision auto -> ") &&
          strstr(full, "precision f32  -> ") && strstr(full, "paths: amx "));
    printf("%s", full);
    free(full);
    CHECK(rsclip_cpu_report(NULL, 0) == need);
}

int main(void) {
    test_parse();
    test_runs();
    test_auto_table();
    test_process();
    return tu_finish("test_isa");
}
