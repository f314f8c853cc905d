/* The process worker pool: every part runs once with its number, worker i keeps running part i
 * (the same thread from call to call: no thread per call), a call made from inside a part or
 * while another thread holds the pool runs its parts on the caller, and a forked child gets a
 * working pool of its own. */
#include "base/pool.h"
#include "test_util.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct rec {
    int hits[RSCLIP__POOL_MAX];
    long tid[RSCLIP__POOL_MAX];
    int n_seen[RSCLIP__POOL_MAX];
} rec;

static long my_tid(void) {
    return (long)syscall(SYS_gettid);
}

static void record(void *arg, int part, int n_parts) {
    rec *r = arg;
    __atomic_add_fetch(&r->hits[part], 1, __ATOMIC_RELAXED);
    r->tid[part] = my_tid();
    r->n_seen[part] = n_parts;
}

static int run_and_check(int n, rec *r) {
    memset(r, 0, sizeof *r);
    rsclip__pool_run(n, record, r);
    const int eff = n < 1 ? 1 : n > RSCLIP__POOL_MAX ? RSCLIP__POOL_MAX : n;
    int ok = 1;
    for (int p = 0; p < RSCLIP__POOL_MAX; p++)
        ok &= p < eff ? r->hits[p] == 1 && r->n_seen[p] == eff : r->hits[p] == 0;
    return ok;
}

/* A part that itself calls the pool: must not deadlock, runs its parts on its own thread. */
static void nested(void *arg, int part, int n_parts) {
    (void)n_parts;
    rec *inner = (rec *)arg + 1 + part;
    rsclip__pool_run(3, record, inner);
    __atomic_add_fetch(&((rec *)arg)->hits[part], 1, __ATOMIC_RELAXED);
}

static void *other_caller(void *arg) {
    rec *r = arg;
    for (int i = 0; i < 200; i++) {
        memset(r, 0, sizeof *r);
        rsclip__pool_run(4, record, r);
        for (int p = 0; p < 4; p++)
            if (r->hits[p] != 1) return (void *)1;
    }
    return NULL;
}

int main(void) {
    rec r, first;
    CHECK(run_and_check(1, &r) && r.tid[0] == my_tid());
    CHECK(run_and_check(0, &r) && run_and_check(-5, &r));
    CHECK(run_and_check(4, &first) && first.tid[0] == my_tid());
    CHECK(rsclip__pool_workers() >= 3);
    const int started = rsclip__pool_workers();
    for (int p = 1; p < 4; p++) CHECK(first.tid[p] != my_tid());
    /* the same workers, part for part, call after call; no new threads */
    for (int i = 0; i < 500; i++) {
        CHECK(run_and_check(i % 4 + 1, &r));
        for (int p = 0; p < i % 4 + 1; p++) CHECK(r.tid[p] == first.tid[p]);
    }
    CHECK(rsclip__pool_workers() == started);
    CHECK(run_and_check(1000, &r)); /* clamped to RSCLIP__POOL_MAX parts */

    /* nested calls run on the calling part's thread */
    rec nest[4];
    memset(nest, 0, sizeof nest);
    rsclip__pool_run(3, nested, nest);
    for (int p = 0; p < 3; p++) {
        CHECK(nest[0].hits[p] == 1);
        for (int q = 0; q < 3; q++) CHECK(nest[1 + p].hits[q] == 1);
        CHECK(nest[1 + p].tid[0] == nest[1 + p].tid[2]); /* all on one thread */
    }

    /* two callers at once: both complete, every part exactly once */
    pthread_t th;
    rec other;
    REQUIRE(pthread_create(&th, NULL, other_caller, &other) == 0);
    for (int i = 0; i < 200; i++) CHECK(run_and_check(4, &r));
    void *bad = NULL;
    pthread_join(th, &bad);
    CHECK(bad == NULL);

    /* a forked child has no workers but a usable pool */
    fflush(NULL);
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        rec c;
        int ok = run_and_check(4, &c) && rsclip__pool_workers() == 3;
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return tu_finish("test_pool");
}
