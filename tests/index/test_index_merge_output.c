/* rsclip_index_merge never writes over its inputs: not the input file under any path (symbolic
 * link, hard link, another spelling), and not one of its companion files (-wal, -shm, -journal,
 * .rsvec) that SQLite or the vector cache would read as the input's own. Each is refused before
 * anything is created; a proper output merges. */
#include "index_test_util.h"
#include "test_util.h"

#include <sys/stat.h>

#define DIM 16

static void make_index(const char *path) {
    rsclip_index *idx = NULL;
    REQUIRE(rsclip_index_open(path, RSCLIP_INDEX_CREATE, &idx) == RSCLIP_OK);
    CHECK_OK(rsclip_index_bind_model(idx, "tiny", "0123456789abcdef", DIM, NULL));
    rsclip_scene_info s = ti_scene("/data/a.tif", 1, 2, NULL, 2, 2);
    int64_t sid = 0;
    int state = 0;
    CHECK_OK(rsclip_index_begin_scene(idx, &s, 0, &sid, &state));
    CHECK_OK(ti_add_batch(idx, sid, 1, 7.0, 46.0, 2, 0, 4, DIM));
    CHECK_OK(rsclip_index_complete_scene(idx, sid, 0));
    rsclip_index_close(idx);
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

int main(void) {
    char dir[512], in[600], link_in[600], out[700];
    snprintf(dir, sizeof dir, "%s", ti_tmpdir("test_index_merge_output"));
    snprintf(in, sizeof in, "%s/a.gpkg", dir);
    snprintf(link_in, sizeof link_in, "%s/alias.gpkg", dir);
    make_index(in);
    REQUIRE(symlink("a.gpkg", link_in) == 0);
    snprintf(out, sizeof out, "%s/hard.gpkg", dir);
    REQUIRE(link(in, out) == 0);
    snprintf(out, sizeof out, "%s/sub", dir);
    REQUIRE(mkdir(out, 0755) == 0);
    long size0 = file_size(in);

    /* (input as named, output): the output is the input or one of its companions */
    static const char *const cases[][2] = {
        {"a.gpkg", "a.gpkg"},
        {"a.gpkg", "alias.gpkg"},
        {"a.gpkg", "hard.gpkg"},
        {"a.gpkg", "sub/../a.gpkg"},
        {"a.gpkg", "a.gpkg-wal"},
        {"a.gpkg", "a.gpkg-shm"},
        {"a.gpkg", "a.gpkg-journal"},
        {"a.gpkg", "a.gpkg.rsvec"},
        {"alias.gpkg", "a.gpkg-wal"},
        {"alias.gpkg", "alias.gpkg-wal"},
        {"alias.gpkg", "alias.gpkg.rsvec"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char src[700];
        snprintf(src, sizeof src, "%s/%s", dir, cases[i][0]);
        snprintf(out, sizeof out, "%s/%s", dir, cases[i][1]);
        int existed = file_size(out) >= 0;
        const char *inputs[1] = {src};
        rsclip_merge_report rep;
        int rc = rsclip_index_merge(out, inputs, 1, NULL, NULL, &rep);
        if (rc != RSCLIP_ERR_INVALID_ARG || !strstr(rsclip_last_error(), "refusing") ||
            !strstr(rsclip_last_error(), out)) {
            fprintf(stderr, "merge %s -> %s: rc %d: %s\n", cases[i][0], cases[i][1], rc,
                    rsclip_last_error());
            tu_failures++;
        }
        CHECK(existed || file_size(out) < 0); /* nothing created */
        CHECK(rep.tiles_added == 0);
    }
    CHECK(file_size(in) == size0);

    /* a proper output merges the input */
    snprintf(out, sizeof out, "%s/merged.gpkg", dir);
    const char *inputs[1] = {link_in};
    rsclip_merge_report rep;
    CHECK_OK(rsclip_index_merge(out, inputs, 1, NULL, NULL, &rep));
    CHECK(rep.tiles_added == 4);

    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (!tu_failures && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return tu_finish("test_index_merge_output");
}
