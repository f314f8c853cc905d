/* Minimal assertion helpers shared by the C tests (asserts stay on in every build type). */
#ifndef RSCLIP_TEST_UTIL_H
#define RSCLIP_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tu_failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            tu_failures++;                                                                         \
        }                                                                                          \
    } while (0)

#define CHECK_OK(expr)                                                                             \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != 0) {                                                                            \
            fprintf(stderr, "%s:%d: %s returned %d: %s\n", __FILE__, __LINE__, #expr, rc_,         \
                    rsclip_last_error());                                                          \
            tu_failures++;                                                                         \
        }                                                                                          \
    } while (0)

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond);             \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static inline const char *tu_fixtures(void) {
    const char *d = getenv("RSCLIP_FIXTURES");
    return d ? d : "tests/fixtures";
}

/* A fresh folder ./<name>.tmp.XXXXXX in the working (build) directory, its absolute path in dir
 * (for tests that hand paths to programs and libraries running elsewhere). */
static inline void tu_abs_tmpdir(char *dir, size_t size, const char *name) {
    char rel[512];
    snprintf(rel, sizeof rel, "%s.tmp.XXXXXX", name);
    REQUIRE(mkdtemp(rel));
    char *abs = realpath(rel, NULL);
    REQUIRE(abs && strlen(abs) < size);
    snprintf(dir, size, "%s", abs);
    free(abs);
}

/* Copy a file byte for byte (the test stops if it cannot). */
static inline void tu_copy_file(const char *from, const char *to) {
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    REQUIRE(in && out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) REQUIRE(fwrite(buf, 1, n, out) == n);
    fclose(in);
    REQUIRE(fclose(out) == 0);
}

static inline int tu_finish(const char *name) {
    if (tu_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, tu_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

#endif
