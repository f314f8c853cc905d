/*
 * base/pool.h -- private: the process's one pool of worker threads, shared by the encoder (GEMMs,
 * attention heads, layer-norm rows) and the search scan, so that one pool owns the cores and no
 * threads are created per encode or per query. (It lives beside the GEMM for now; it moves to a
 * shared base module later, hence this small header.)
 *
 *     static void part(void *arg, int part, int n_parts) { ... share part of n_parts ... }
 *     rsclip__pool_run(4, part, &job);   // part 0 on the caller, parts 1..3 on workers 1..3
 *
 * Workers are started on first need (worker i always runs part i, so consecutive calls split the
 * same way and find their data in the same caches) and live until the process exits (or the
 * library is unloaded). One caller at a time uses the workers: a caller that finds them busy
 * (another thread's call, or a call made from inside a part) runs all its parts itself, in order,
 * so a call never waits for another and never deadlocks. A part must not assume it runs on any
 * particular thread. When a worker cannot be started, the caller runs its part.
 */
#ifndef RSCLIP_GEMM_POOL_H
#define RSCLIP_GEMM_POOL_H

#ifdef __cplusplus
extern "C" {
#endif

#define RSCLIP__POOL_MAX 64 /* parts per call (the caller + 63 workers) */

typedef void (*rsclip__pool_fn)(void *arg, int part, int n_parts);

/* Run fn(arg, part, n) for part = 0 .. n - 1, n = n_parts clamped to 1 .. RSCLIP__POOL_MAX, and
 * return when all are done. n_parts <= 1 runs fn(arg, 0, 1) on the caller. */
void rsclip__pool_run(int n_parts, rsclip__pool_fn fn, void *arg);

/* Worker threads started so far in this process (for tests and diagnostics). */
int rsclip__pool_workers(void);

#ifdef __cplusplus
}
#endif
#endif
