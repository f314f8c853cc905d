/* hub without the network: short names, cache folders, repo-id validation, resolving -m. The
 * downloads themselves are tested end to end by test_hub.py against a local server. */
#include "rsclip/rsclip.h"
#include "test_util.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp[256];

static void test_names(void) {
    CHECK(strcmp(rsclip_hub_repo_id("base"), "lcybuaa/Git-RSCLIP-base") == 0);
    CHECK(strcmp(rsclip_hub_repo_id("large"), "lcybuaa/Git-RSCLIP") == 0);
    CHECK(strcmp(rsclip_hub_repo_id("a/b"), "a/b") == 0);
    CHECK(rsclip_hub_repo_id(NULL) == NULL);
}

static void test_cache_dir(void) {
    char out[1024];
    unsetenv("XDG_CACHE_HOME");
    setenv("RSCLIP_CACHE", "/x/cache", 1);
    CHECK_OK(rsclip_hub_cache_dir("base", out, sizeof out));
    CHECK(strcmp(out, "/x/cache/lcybuaa/Git-RSCLIP-base") == 0);
    unsetenv("RSCLIP_CACHE");
    setenv("HOME", "/home/u", 1);
    CHECK_OK(rsclip_hub_cache_dir("owner/name", out, sizeof out));
    CHECK(strcmp(out, "/home/u/.cache/rsclip/models/owner/name") == 0);
    setenv("XDG_CACHE_HOME", "/xdg", 1);
    CHECK_OK(rsclip_hub_cache_dir("owner/name", out, sizeof out));
    CHECK(strcmp(out, "/xdg/rsclip/models/owner/name") == 0);
    unsetenv("XDG_CACHE_HOME");

    /* names that would leave the cache, or are not owner/name */
    static const char *const bad[] = {"../x",  "a",      "a/b/c", ".hidden/x", "a/..",
                                      "a/.b",  "/abs/x", "a//b",  "a/b c",     "",
                                      "a/b\n", "..//..", "x/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = rsclip_hub_cache_dir(bad[i], out, sizeof out);
        CHECK(rc == RSCLIP_ERR_INVALID_ARG);
        if (rc != RSCLIP_ERR_INVALID_ARG) fprintf(stderr, "  accepted '%s'\n", bad[i]);
    }
    CHECK(rsclip_hub_cache_dir("owner/name", out, 10) == RSCLIP_ERR_INVALID_ARG);
}

static void test_resolve(void) {
    char out[1024], path[512];
    setenv("RSCLIP_CACHE", tmp, 1);

    /* an existing folder is taken as it is */
    CHECK_OK(rsclip_hub_resolve(tmp, out, sizeof out));
    CHECK(strcmp(out, tmp) == 0);

    /* a file is not a model */
    snprintf(path, sizeof path, "%s/file", tmp);
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    fclose(f);
    CHECK(rsclip_hub_resolve(path, out, sizeof out) == RSCLIP_ERR_INVALID_ARG);
    CHECK(strstr(rsclip_last_error(), path) != NULL);

    /* a repo id not in the cache: the hint names the fetch command */
    CHECK(rsclip_hub_resolve("someone/model", out, sizeof out) == RSCLIP_ERR_NOT_FOUND);
    CHECK(strstr(rsclip_last_error(), "rsclip model fetch someone/model") != NULL);
    CHECK(rsclip_hub_resolve("base", out, sizeof out) == RSCLIP_ERR_NOT_FOUND);
    CHECK(strstr(rsclip_last_error(), "rsclip model fetch base") != NULL);
    CHECK(rsclip_hub_resolve("nonsense", out, sizeof out) == RSCLIP_ERR_NOT_FOUND);
    CHECK(strstr(rsclip_last_error(), "nonsense") != NULL);

    /* once its config.json is in the cache, the repo id and the short name resolve */
    snprintf(path, sizeof path, "%s/lcybuaa", tmp);
    CHECK(mkdir(path, 0755) == 0);
    snprintf(path, sizeof path, "%s/lcybuaa/Git-RSCLIP-base", tmp);
    CHECK(mkdir(path, 0755) == 0);
    snprintf(path, sizeof path, "%s/lcybuaa/Git-RSCLIP-base/config.json", tmp);
    f = fopen(path, "w");
    REQUIRE(f);
    fputs("{}", f);
    fclose(f);
    char want[1024];
    snprintf(want, sizeof want, "%s/lcybuaa/Git-RSCLIP-base", tmp);
    CHECK_OK(rsclip_hub_resolve("base", out, sizeof out));
    CHECK(strcmp(out, want) == 0);
    CHECK_OK(rsclip_hub_resolve("lcybuaa/Git-RSCLIP-base", out, sizeof out));
    CHECK(strcmp(out, want) == 0);
    CHECK(rsclip_hub_resolve("base", out, 8) == RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_hub_resolve("", out, sizeof out) == RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_hub_resolve(NULL, out, sizeof out) == RSCLIP_ERR_INVALID_ARG);

    /* fetch refuses bad names before any network access */
    CHECK(rsclip_hub_fetch("../../x", tmp, NULL, NULL, out, sizeof out) == RSCLIP_ERR_INVALID_ARG);
    CHECK(rsclip_hub_fetch(NULL, tmp, NULL, NULL, out, sizeof out) == RSCLIP_ERR_INVALID_ARG);
}

int main(void) {
    snprintf(tmp, sizeof tmp, "/tmp/rsclip_test_hub_unit_XXXXXX");
    REQUIRE(mkdtemp(tmp));
    test_names();
    test_cache_dir();
    test_resolve();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK(system(cmd) == 0);
    return tu_finish("test_hub_unit");
}
