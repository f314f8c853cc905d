/*
 * The library's side of the CUDA encoder: the entry points of cuda_encoder.h, forwarded to the
 * CUDA module (librsclip_cuda.so, see cuda_module.h), which is opened on the first request that
 * needs it. In a build without CUDA every device request fails with one clear message.
 *
 * Where the module is looked for, the first that exists being opened:
 *   1. $RSCLIP_CUDA_MODULE, the module's path, when set (then nothing else);
 *   2. the build tree's module, when the binary holding this code (the CLI, the plugin, a test)
 *      lives in the build tree;
 *   3. beside the binary holding this code, as installed: <bindir>/../<libdir>/rsclip/ for the
 *      CLI, <libdir>/rsclip/ for librsclip.so (a relocated prefix works);
 *   4. the install prefix's <libdir>/rsclip/librsclip_cuda.so.
 * A module that cannot be opened (missing, or its CUDA libraries absent) or that is from another
 * build makes every CUDA request fail with RSCLIP_ERR_UNSUPPORTED, naming the path and the reason;
 * the CPU encoder is unaffected. The module is opened once per process, at the first request that
 * needs a GPU (a CPU encoder never opens it), and never closed.
 */
#include "cuda/cuda_encoder.h"
#include "cuda/cuda_module.h"

#include "model/model_internal.h"
#include "status/status_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef RSCLIP_HAVE_CUDA
#include <dlfcn.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <unistd.h>

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static const rsclip__cuda_api *g_api;
static char g_why[PATH_MAX + 512]; /* why there is no module, when g_api is NULL */

static const rsclip__cuda_host g_host = {
    .abi = RSCLIP_CUDA_ABI,
    .model_size = sizeof(rsclip_model),
    .build_id = RSCLIP_CUDA_BUILD_ID,
};

/* The real path of the binary holding this code: the executable (whose dladdr name is only its
 * argv[0]) or the shared object (the plugin, librsclip.so). */
static int self_path(char *out) {
    Dl_info info;
    struct link_map *lm = NULL;
    if (!dladdr1(&g_host, &info, (void **)&lm, RTLD_DL_LINKMAP) || !lm) return 0;
    const char *name = lm->l_name && lm->l_name[0] ? lm->l_name : "/proc/self/exe";
    return realpath(name, out) != NULL;
}

/* The first candidate that exists (see the list above), or the install path when none does. */
static const char *module_path(char buf[PATH_MAX]) {
    const char *env = secure_getenv("RSCLIP_CUDA_MODULE");
    if (env && *env) return env;
    char self[PATH_MAX], build[PATH_MAX];
    if (!self_path(self)) return RSCLIP_CUDA_MODULE_INSTALL_PATH;
    if (realpath(RSCLIP_BUILD_DIR, build)) {
        const size_t n = strlen(build);
        if (!strncmp(self, build, n) && self[n] == '/') return RSCLIP_CUDA_MODULE_BUILD_PATH;
    }
    char *slash = strrchr(self, '/');
    if (slash) {
        *slash = 0;
        const char *rel[] = {RSCLIP_CUDA_MODULE_FROM_BINDIR, RSCLIP_CUDA_MODULE_FROM_LIBDIR};
        char cand[PATH_MAX + 64];
        for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
            int len = snprintf(cand, sizeof cand, "%s/%s/" RSCLIP_CUDA_MODULE_FILE, self, rel[i]);
            if (len > 0 && (size_t)len < sizeof cand && realpath(cand, buf)) return buf;
        }
    }
    return RSCLIP_CUDA_MODULE_INSTALL_PATH;
}

static void open_module(void) {
    char buf[PATH_MAX];
    const char *path = module_path(buf);
    if (access(path, F_OK) != 0) {
        snprintf(g_why, sizeof g_why,
                 "the CUDA module %s is missing: install rsclip's CUDA component there, or set "
                 "RSCLIP_CUDA_MODULE to the path of librsclip_cuda.so",
                 path);
        return;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(g_why, sizeof g_why,
                 "the CUDA module could not be loaded: %s (it needs the CUDA runtime and cuBLAS "
                 "libraries it was built with)",
                 e ? e : path);
        return;
    }
    rsclip__cuda_module_open_fn entry;
    *(void **)&entry = dlsym(h, RSCLIP_CUDA_MODULE_ENTRY);
    const rsclip__cuda_api *tbl = entry ? entry(&g_host) : NULL;
    if (!tbl) {
        snprintf(g_why, sizeof g_why,
                 "the CUDA module %s is not from this build of rsclip %s (reinstall rsclip, or "
                 "point RSCLIP_CUDA_MODULE at its own module)",
                 path, RSCLIP_VERSION_STRING);
        dlclose(h);
        return;
    }
    g_api = tbl; /* kept open for the life of the process: CUDA does not support unloading */
}

static const rsclip__cuda_api *api(void) {
    pthread_once(&g_once, open_module);
    return g_api;
}

static int no_cuda(void) {
    return rsclip__error(RSCLIP_ERR_UNSUPPORTED, "%s", g_why);
}

/* A module call's result: its failure becomes this library's error, with the module's message. */
static int relay(const rsclip__cuda_api *a, int rc) {
    return rc == RSCLIP_OK ? rc : rsclip__error(rc, "%s", a->last_error());
}
#else
static const rsclip__cuda_api *api(void) {
    return NULL;
}

static int no_cuda(void) {
    return rsclip__error(RSCLIP_ERR_UNSUPPORTED,
                         "this rsclip was built without CUDA support: rebuild with nvcc and "
                         "cuBLAS installed (cmake -DRSCLIP_CUDA=ON) to use a CUDA device");
}

static int relay(const rsclip__cuda_api *a, int rc) {
    (void)a;
    return rc;
}
#endif

int rsclip__cuda_device_count(int *n) {
    *n = 0;
    const rsclip__cuda_api *a = api();
    return a ? relay(a, a->device_count(n)) : no_cuda();
}

int rsclip__cuda_new(const rsclip_model *m, int device, int max_batch, rsclip_precision precision,
                     rsclip__cuda **out) {
    *out = NULL;
    const rsclip__cuda_api *a = api();
    return a ? relay(a, a->create(m, device, max_batch, precision, out)) : no_cuda();
}

/* The rest take an encoder made by rsclip__cuda_new (the module is open whenever one exists);
 * given none (a CPU encoder's) they never open the module. */
void rsclip__cuda_free(rsclip__cuda *c) {
    const rsclip__cuda_api *a = c ? api() : NULL;
    if (a) a->destroy(c);
}

rsclip_precision rsclip__cuda_precision(const rsclip__cuda *c) {
    const rsclip__cuda_api *a = c ? api() : NULL;
    return a ? a->precision(c) : RSCLIP_PRECISION_F32;
}

const char *rsclip__cuda_name(const rsclip__cuda *c) {
    const rsclip__cuda_api *a = c ? api() : NULL;
    return a ? a->name(c) : "cuda";
}

int rsclip__cuda_encode_images(rsclip__cuda *c, int n, const float *pixels, float *embeds,
                               float *last_hidden) {
    const rsclip__cuda_api *a = c ? api() : NULL;
    return a ? relay(a, a->encode_images(c, n, pixels, embeds, last_hidden)) : no_cuda();
}

int rsclip__cuda_encode_texts(rsclip__cuda *c, int n, const int32_t *ids, float *embeds,
                              float *last_hidden) {
    const rsclip__cuda_api *a = c ? api() : NULL;
    return a ? relay(a, a->encode_texts(c, n, ids, embeds, last_hidden)) : no_cuda();
}
