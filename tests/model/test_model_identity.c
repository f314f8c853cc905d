/* Model identity: the fingerprint is the SHA-256 of the whole checkpoint (computed here with
 * OpenSSL independently); floats changed where the legacy sampled fingerprint does not look leave
 * the legacy one equal but change the new one; rsclip_model_fingerprint_for picks the one an index
 * recorded; the digest cache is used (a planted well-formed entry is believed for that file
 * version only), keyed by version (a rewrite in place misses it), distrusted when malformed,
 * not written for a file changed within the last second; a mapped checkpoint written in place
 * makes the next encode fail naming it; an owned one is not affected. */
#include "model_test_util.h"
#include "test_util.h"

#include "rsclip/model.h"
#include "rsclip/safetensors.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void sha256_file(const char *path, char out[65]) {
    FILE *f = fopen(path, "rb");
    REQUIRE(f);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    REQUIRE(c && EVP_DigestInit_ex(c, EVP_sha256(), NULL));
    unsigned char buf[65536], md[32];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0) EVP_DigestUpdate(c, buf, k);
    fclose(f);
    unsigned int len = 0;
    EVP_DigestFinal_ex(c, md, &len);
    EVP_MD_CTX_free(c);
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    REQUIRE(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc(*n + 1);
    REQUIRE(b && fread(b, 1, *n, f) == *n);
    b[*n] = '\0';
    fclose(f);
    return b;
}

/* Write bytes into the existing file in place (same inode, new mtime and ctime). */
static void rewrite_in_place(const char *path, const void *p, size_t n) {
    int fd = open(path, O_WRONLY);
    REQUIRE(fd >= 0);
    REQUIRE(pwrite(fd, p, n, 0) == (ssize_t)n);
    close(fd);
}

static rsclip_model *load(const char *dir, int owned) {
    rsclip_model_params p = {.owned_weights = owned};
    rsclip_model *m = NULL;
    int rc = rsclip_model_load(dir, &p, &m);
    if (rc) fprintf(stderr, "load %s: %s\n", dir, rsclip_last_error());
    REQUIRE(m);
    return m;
}

static int encode_text(rsclip_model *m, float *out) {
    rsclip_encoder_params ep = rsclip_encoder_default_params();
    ep.max_batch = 1;
    ep.precision = RSCLIP_PRECISION_F32;
    rsclip_encoder *e = NULL;
    REQUIRE(rsclip_encoder_new(m, &ep, &e) == RSCLIP_OK);
    int32_t ids[64];
    REQUIRE(rsclip_model_tokenize(m, "a remote sensing image of a river", -1, ids, NULL) == 0);
    int rc = rsclip_encode_texts(e, 1, ids, out, NULL);
    rsclip_encoder_free(e);
    return rc;
}

/* The legacy fingerprint reads the header and 64 blocks of 4 KiB spread over the data: the byte
 * offset (in the file) of the middle of the gap after sampled block k. */
static size_t legacy_gap(const char *blob, size_t size, int k) {
    uint64_t hl;
    memcpy(&hl, blob, 8);
    size_t data = 8 + (size_t)hl, dsize = size - data, span = dsize - 4096;
    size_t q = span / 63, r = span % 63;
    size_t end_k = q * (size_t)k + r * (size_t)k / 63 + 4096;
    size_t next = q * (size_t)(k + 1) + r * (size_t)(k + 1) / 63;
    REQUIRE(next > end_k + 64);
    return (data + (end_k + next) / 2) & ~(size_t)3;
}

int main(void) {
    char *tmp = mt_tempdir();
    char cache[1100], a[1100], b[1100], pa[1200], pb[1200], dc[1200];
    snprintf(cache, sizeof cache, "%s/cache", tmp);
    setenv("RSCLIP_CACHE", cache, 1);
    snprintf(dc, sizeof dc, "%s/.sha256-digests", cache);
    snprintf(a, sizeof a, "%s/a", tmp);
    snprintf(b, sizeof b, "%s/b", tmp);
    const char *files[] = {"config.json", "model.safetensors", "spiece.model",
                           "preprocessor_config.json", "tokenizer_config.json"};
    REQUIRE(mkdir(a, 0755) == 0 && mkdir(b, 0755) == 0);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char src[1200], d1[1200], d2[1200];
        snprintf(src, sizeof src, "%s/siglip-tiny/%s", tu_fixtures(), files[i]);
        snprintf(d1, sizeof d1, "%s/%s", a, files[i]);
        snprintf(d2, sizeof d2, "%s/%s", b, files[i]);
        mt_copy_file(src, d1);
        mt_copy_file(src, d2);
    }
    snprintf(pa, sizeof pa, "%s/model.safetensors", a);
    snprintf(pb, sizeof pb, "%s/model.safetensors", b);
    /* b: 1,741 floats changed, all in the gaps between the legacy fingerprint's samples */
    size_t size;
    char *orig = slurp(pa, &size), *mod = malloc(size);
    memcpy(mod, orig, size);
    int changed = 0;
    for (int k = 0; k < 63 && changed < 1741; k++) {
        size_t at = legacy_gap(orig, size, k);
        for (int j = -200; j < 200 && changed < 1741; j += 4, changed++) {
            float f;
            memcpy(&f, mod + at + j, 4);
            f = f * 1.5f + 0.01f;
            memcpy(mod + at + j, &f, 4);
        }
    }
    CHECK(changed == 1741);
    rewrite_in_place(pb, mod, size);
    sleep(2); /* the files' ctime must be a second older than their hashing for the cache */

    /* the fingerprints: SHA-256 of the file, and the legacy one of the same bytes */
    char want_a[65], want_b[65], fp[100];
    sha256_file(pa, want_a);
    sha256_file(pb, want_b);
    rsclip_model *ma = load(a, 0), *mb = load(b, 0);
    const rsclip_model_info *ia = rsclip_model_get_info(ma), *ib = rsclip_model_get_info(mb);
    snprintf(fp, sizeof fp, "sha256:%s", want_a);
    CHECK(strcmp(ia->fingerprint, fp) == 0);
    snprintf(fp, sizeof fp, "sha256:%s", want_b);
    CHECK(strcmp(ib->fingerprint, fp) == 0);
    CHECK(strcmp(ia->fingerprint, ib->fingerprint) != 0);
    /* the old sampled fingerprint cannot tell them apart: that is why it was replaced */
    CHECK(strlen(ia->fingerprint_legacy) == 16);
    CHECK(strcmp(ia->fingerprint_legacy, ib->fingerprint_legacy) == 0);
    rsclip_st_file *st = NULL;
    CHECK_OK(rsclip_st_open(pa, &st));
    char legacy[17];
    rsclip_st_fingerprint(st, legacy);
    rsclip_st_close(st);
    CHECK(strcmp(legacy, ia->fingerprint_legacy) == 0);
    /* which one to compare with a recorded fingerprint */
    CHECK(rsclip_model_fingerprint_for(ma, legacy) == ia->fingerprint_legacy);
    CHECK(rsclip_model_fingerprint_for(ma, ib->fingerprint) == ia->fingerprint);
    CHECK(rsclip_model_fingerprint_for(ma, "") == ia->fingerprint);
    CHECK(rsclip_model_fingerprint_for(ma, NULL) == ia->fingerprint);
    CHECK(rsclip_model_fingerprint_for(NULL, legacy) == NULL);
    /* the owned copy has the same identity and the same outputs */
    rsclip_model *mo = load(a, 1);
    CHECK(strcmp(rsclip_model_get_info(mo)->fingerprint, ia->fingerprint) == 0);
    CHECK(strcmp(rsclip_model_get_info(mo)->fingerprint_legacy, ia->fingerprint_legacy) == 0);
    float ea[32], eo[32], eb[32];
    CHECK_OK(encode_text(ma, ea));
    CHECK_OK(encode_text(mo, eo));
    CHECK_OK(encode_text(mb, eb));
    CHECK(memcmp(ea, eo, sizeof ea) == 0);
    CHECK(memcmp(ea, eb, sizeof ea) != 0); /* the change matters */
    rsclip_model_free(mb);

    /* the digest cache: both versions are in it */
    size_t n;
    char *text = slurp(dc, &n);
    CHECK(strncmp(text, "rsclip sha256 digests 1\n", 24) == 0);
    CHECK(strstr(text, want_a) && strstr(text, want_b));
    /* a planted, well-formed entry is believed for that file version: loads do not rehash */
    char bogus[65];
    memset(bogus, 'e', 64);
    bogus[64] = '\0';
    char *at = strstr(text, want_a);
    memcpy(at, bogus, 64);
    mt_write_text(dc, text);
    rsclip_model *m2 = load(a, 0);
    snprintf(fp, sizeof fp, "sha256:%s", bogus);
    CHECK(strcmp(rsclip_model_get_info(m2)->fingerprint, fp) == 0);
    rsclip_model_free(m2);
    /* an owned load hashes what it reads, whatever the cache says */
    m2 = load(a, 1);
    CHECK(strcmp(rsclip_model_get_info(m2)->fingerprint, ia->fingerprint) == 0);
    rsclip_model_free(m2);
    /* a malformed cache is distrusted as a whole (and rewritten well-formed) */
    free(text);
    text = slurp(dc, &n);
    char *bad = malloc(n + 64);
    snprintf(bad, n + 64, "%sgarbage line\n", text);
    mt_write_text(dc, bad);
    free(bad);
    m2 = load(b, 0);
    snprintf(fp, sizeof fp, "sha256:%s", want_b);
    CHECK(strcmp(rsclip_model_get_info(m2)->fingerprint, fp) == 0);
    rsclip_model_free(m2);
    free(text);
    text = slurp(dc, &n);
    CHECK(!strstr(text, "garbage") && strstr(text, want_b));

    /* a mapped checkpoint written in place while in use: the next encode fails, naming it */
    rewrite_in_place(pa, orig, size); /* same bytes, but a new version (mtime, ctime) */
    float e2[32];
    CHECK(encode_text(ma, e2) == RSCLIP_ERR_MISMATCH);
    CHECK(strstr(rsclip_last_error(), pa) && strstr(rsclip_last_error(), "while it was in use"));
    /* ... an owned one is not affected, even by other content */
    rewrite_in_place(pa, mod, size);
    CHECK_OK(encode_text(mo, e2));
    CHECK(memcmp(e2, ea, sizeof ea) == 0);
    /* the new version, loaded now, is hashed afresh (its version misses the cache) and, changed
     * within the last second, not cached */
    m2 = load(a, 0);
    snprintf(fp, sizeof fp, "sha256:%s", want_b); /* a now holds b's bytes */
    CHECK(strcmp(rsclip_model_get_info(m2)->fingerprint, fp) == 0);
    rsclip_model_free(m2);
    free(text);
    text = slurp(dc, &n);
    struct stat sa;
    REQUIRE(stat(pa, &sa) == 0);
    char key[64];
    snprintf(key, sizeof key, "\n%llu %llu ", (unsigned long long)sa.st_dev,
             (unsigned long long)sa.st_ino);
    CHECK(strstr(text, key) == NULL);

    free(text);
    free(orig);
    free(mod);
    rsclip_model_free(ma);
    rsclip_model_free(mo);
    mt_rmtree(tmp);
    return tu_finish("test_model_identity");
}
