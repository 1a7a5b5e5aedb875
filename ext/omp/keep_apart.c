/* Keep the OpenMP worker threads off the CPU of the thread that started the region.
 *
 * Linked into every OpenMP kernel module on Linux (setup.py), with the linker's
 * --wrap=GOMP_parallel: each parallel region the module starts goes through
 * __wrap_GOMP_parallel below, and from there to libgomp's GOMP_parallel.
 *
 * Why. libgomp's threads busy-wait for each other: at the end of a region the thread that
 * finished first spins (GOMP_SPINCOUNT, ~300 µs: minigrad/__init__.py) before it sleeps.
 * Two threads of one team on one CPU therefore lose a whole spin at every barrier: the
 * spinning thread holds the CPU the other one needs. A scheduler that packs threads onto
 * few CPUs on purpose (the 2-vCPU guest of benchmarks/RESULTS.md, session 27: there a
 * perf trace showed the main thread's wake-up of the worker, at a region's start, moving
 * the worker onto the main thread's vCPU) then turns LeNet-5's 2 ms training step into
 * 9-15 ms. OMP_PROC_BIND=true avoids it, but pins the main thread too,
 * and every process it starts inherits that one CPU.
 *
 * What. A worker that starts its share of a region on the CPU its team's main thread is
 * on moves itself: its affinity becomes the main thread's, minus that CPU. The main thread
 * is never moved or pinned. The check is one sched_getcpu() per worker per region; the two
 * system calls run only when a worker finds itself stacked. It is left out when
 *   - the user binds the threads (OMP_PROC_BIND other than "false", OMP_PLACES or
 *     GOMP_CPU_AFFINITY set): their placement wins;
 *   - MINIGRAD_WORKER_AFFINITY=off;
 *   - the team has more threads than the main thread has CPUs (oversubscribed: leaving
 *     the main thread's CPU would only stack the workers on the others).
 * The state is per module (each module links its own copy); each reads the environment
 * once, at its first region.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#define MG_HIDDEN __attribute__((visibility("hidden")))

void __real_GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads,
                          unsigned flags);

struct mg_region {
    void (*fn)(void *);
    void *data;
    int main_cpu;       /* the main thread's CPU when it started the region */
    pid_t main_tid;
};

static int mg_mode = -1;             /* -1: not read yet, 0: off, 1: on */
static __thread pid_t mg_tid_cache;  /* the calling thread's id, once asked */

/* A forked child's only thread is the one that forked, under a new id: forget the old. */
static void mg_forget_tid(void)
{
    mg_tid_cache = 0;
}

static int mg_env_is(const char *name, const char *value)
{
    const char *s = getenv(name);
    if (s == NULL)
        return 0;
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(value);
    if (strncasecmp(s, value, n) != 0)
        return 0;
    s += n;
    while (isspace((unsigned char)*s))
        s++;
    return *s == '\0';
}

/* Whether this module keeps workers apart: read once (the first region runs it on the
 * thread that starts it; a race between two first regions only computes it twice, and
 * registers the fork handler twice, which is harmless). */
MG_HIDDEN int mg_keep_apart_enabled(void)
{
    int m = __atomic_load_n(&mg_mode, __ATOMIC_RELAXED);
    if (m < 0) {
        int bound = (getenv("OMP_PROC_BIND") != NULL && !mg_env_is("OMP_PROC_BIND", "false"))
                    || getenv("OMP_PLACES") != NULL || getenv("GOMP_CPU_AFFINITY") != NULL;
        m = !bound && !mg_env_is("MINIGRAD_WORKER_AFFINITY", "off");
        pthread_atfork(NULL, NULL, mg_forget_tid);
        __atomic_store_n(&mg_mode, m, __ATOMIC_RELAXED);
    }
    return m;
}

MG_HIDDEN pid_t mg_gettid(void)
{
    if (mg_tid_cache == 0)
        mg_tid_cache = (pid_t)syscall(SYS_gettid);
    return mg_tid_cache;
}

/* The calling worker leaves `cpu`, the main thread's: its CPUs become the main thread's
 * without that one, if the team fits on those. Failure (a mask the kernel refuses) leaves
 * the worker where it is: a slower region, never a wrong one. */
static void mg_step_aside(const struct mg_region *r)
{
    cpu_set_t set;
    if (sched_getaffinity(r->main_tid, sizeof set, &set) != 0)
        return;
    if (omp_get_num_threads() > CPU_COUNT(&set))
        return;
    CPU_CLR(r->main_cpu, &set);
    if (CPU_COUNT(&set) > 0)
        sched_setaffinity(0, sizeof set, &set);
}

static void mg_region_body(void *p)
{
    const struct mg_region *r = p;
    if (r->main_cpu >= 0 && omp_get_thread_num() != 0 && sched_getcpu() == r->main_cpu)
        mg_step_aside(r);
    r->fn(r->data);
}

MG_HIDDEN void __wrap_GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads,
                                    unsigned flags)
{
    if (num_threads == 1 || !mg_keep_apart_enabled()) {
        __real_GOMP_parallel(fn, data, num_threads, flags);
        return;
    }
    struct mg_region r = {fn, data, sched_getcpu(), mg_gettid()};
    __real_GOMP_parallel(mg_region_body, &r, num_threads, flags);
}
