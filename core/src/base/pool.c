/* The process's worker pool (see pool.h). One mutex (g_run) is held by the caller that owns the
 * workers for the duration of a call; a generation counter under g_mu hands the work to them. */
#include "base/pool.h"

#include <pthread.h>
#include <stdint.h>

static pthread_mutex_t g_run = PTHREAD_MUTEX_INITIALIZER; /* the caller using the workers */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;  /* the fields below */
static pthread_cond_t g_work = PTHREAD_COND_INITIALIZER, g_done = PTHREAD_COND_INITIALIZER;
static pthread_t g_threads[RSCLIP__POOL_MAX];
static int g_started; /* workers 1 .. g_started are running */
static unsigned long g_gen;
static unsigned long g_gen0[RSCLIP__POOL_MAX]; /* g_gen when worker i was started */
static int g_pending, g_stop;
static rsclip__pool_fn g_fn;
static void *g_arg;
static int g_n;      /* parts of the current call */
static int g_active; /* workers 1 .. g_active have a part in it */
static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;

static void *worker_main(void *argp) {
    const int tid = (int)(intptr_t)argp;
    pthread_mutex_lock(&g_mu);
    unsigned long seen = g_gen0[tid];
    for (;;) {
        while (!g_stop && (g_gen == seen || tid > g_active)) {
            seen = g_gen; /* a generation without a part for this worker is skipped */
            pthread_cond_wait(&g_work, &g_mu);
        }
        if (g_stop) break;
        seen = g_gen;
        const rsclip__pool_fn fn = g_fn;
        void *arg = g_arg;
        const int n = g_n;
        pthread_mutex_unlock(&g_mu);
        fn(arg, tid, n);
        pthread_mutex_lock(&g_mu);
        if (--g_pending == 0) pthread_cond_signal(&g_done);
    }
    pthread_mutex_unlock(&g_mu);
    return NULL;
}

/* A forked child has none of the parent's threads: start from an empty pool. */
static void atfork_child(void) {
    pthread_mutex_init(&g_run, NULL);
    pthread_mutex_init(&g_mu, NULL);
    pthread_cond_init(&g_work, NULL);
    pthread_cond_init(&g_done, NULL);
    g_started = 0;
    g_pending = 0;
    g_stop = 0;
}

static void register_atfork(void) {
    pthread_atfork(NULL, NULL, atfork_child);
}

/* Start workers up to n - 1 (g_run held). Returns how many exist. */
static int grow(int n) {
    pthread_once(&g_atfork_once, register_atfork);
    while (g_started < n - 1) {
        const int tid = g_started + 1;
        g_gen0[tid] = g_gen; /* before this call's generation: the worker waits for it */
        if (pthread_create(&g_threads[tid], NULL, worker_main, (void *)(intptr_t)tid) != 0) break;
        pthread_mutex_lock(&g_mu);
        g_started = tid;
        pthread_mutex_unlock(&g_mu);
    }
    return g_started;
}

void rsclip__pool_run(int n_parts, rsclip__pool_fn fn, void *arg) {
    if (!fn) return;
    int n = n_parts < 1 ? 1 : n_parts > RSCLIP__POOL_MAX ? RSCLIP__POOL_MAX : n_parts;
    if (n == 1 || pthread_mutex_trylock(&g_run) != 0) {
        for (int p = 0; p < n; p++) fn(arg, p, n);
        return;
    }
    const int have = grow(n);
    const int on_workers = have < n - 1 ? have : n - 1; /* parts 1 .. on_workers */
    pthread_mutex_lock(&g_mu);
    g_fn = fn;
    g_arg = arg;
    g_n = n;
    g_active = on_workers;
    g_pending = on_workers;
    g_gen++;
    pthread_cond_broadcast(&g_work);
    pthread_mutex_unlock(&g_mu);
    /* part numbers keep their meaning when a worker is missing: n parts are still run */
    fn(arg, 0, n);
    for (int p = on_workers + 1; p < n; p++) fn(arg, p, n);
    pthread_mutex_lock(&g_mu);
    while (g_pending > 0) pthread_cond_wait(&g_done, &g_mu);
    g_fn = NULL;
    g_arg = NULL;
    g_active = 0;
    pthread_mutex_unlock(&g_mu);
    pthread_mutex_unlock(&g_run);
}

int rsclip__pool_workers(void) {
    pthread_mutex_lock(&g_mu);
    const int n = g_started;
    pthread_mutex_unlock(&g_mu);
    return n;
}

/* At exit or unload (the GDAL plugin), stop and join the idle workers. A pool still in use by
 * another thread at that moment is left alone. */
__attribute__((destructor)) static void pool_shutdown(void) {
    if (pthread_mutex_trylock(&g_run) != 0) return;
    pthread_mutex_lock(&g_mu);
    g_stop = 1;
    pthread_cond_broadcast(&g_work);
    const int n = g_started;
    pthread_mutex_unlock(&g_mu);
    for (int i = 1; i <= n; i++) pthread_join(g_threads[i], NULL);
    pthread_mutex_lock(&g_mu);
    g_started = 0;
    g_stop = 0;
    pthread_mutex_unlock(&g_mu);
    pthread_mutex_unlock(&g_run);
}
