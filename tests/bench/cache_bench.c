/* cache_bench — the plan cache's hot paths and its memory per entry, as Markdown.
 *
 * For caches holding 100, 1,000 and 10,000 entries of a typical 400-byte plan: ns per get
 * hit (keys drawn at random from the ones present, so the LRU list is reshuffled and memory
 * is touched like a real mix), per get miss, per put of a new key into a full cache (which
 * evicts the least recently used: malloc + free + unlink + link), and per put replacing a
 * present key. Each figure is the median over REPS batches of BATCH operations (batch time /
 * BATCH; one timer call per batch, so timer cost does not count). Then bytes per entry:
 * what the cache charges (header + texts), plus its share of the bucket array, and the heap
 * really used as glibc's mallinfo2 sees it (malloc's own headers and rounding included).
 *
 * Standalone: cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Ihost tests/bench/cache_bench.c \
 *   host/cache.c host/buf.c host/error.c host/jsonw.c host/jsonstream.c host/jsonstream_scan.c -lm
 * Depends on the cache unit and libc. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "cache.h"

#define REPS 21
#define BATCH 200000
#define PLAN_LEN 400

static volatile size_t sink;

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A plan of exactly PLAN_LEN bytes: real steps, then padding in the last step's param. */
static void make_plan(char *out)
{
    const char *head = "{\"plan_id\":\"p1042\",\"steps\":[{\"act\":\"MoveTo\",\"x\":10,\"y\":5,"
                       "\"speed\":\"run\"},{\"act\":\"TakeCover\",\"position\":{\"x\":11,\"y\":5}},"
                       "{\"act\":\"ThrowSmoke\",\"x\":12,\"y\":2},{\"act\":\"Attack\",\"target_id\":3},"
                       "{\"act\":\"Scan\",\"note\":\"";
    const char *tail = "\"}]}";
    size_t h = strlen(head), t = strlen(tail);
    memcpy(out, head, h);
    memset(out + h, 'x', PLAN_LEN - h - t);
    memcpy(out + PLAN_LEN - t, tail, t);
    out[PLAN_LEN] = '\0';
}

typedef enum { OP_HIT, OP_MISS, OP_PUT_NEW, OP_PUT_REPLACE } op_kind;

/* One batch of BATCH operations; returns ns per operation. */
static double batch(ph_cache *c, op_kind op, const uint64_t *keys, size_t n, const char *plan,
                    uint64_t *rng, uint64_t *next_key)
{
    ph_cache_value v;
    size_t acc = 0;
    double t0 = now_ns();
    for (size_t i = 0; i < BATCH; i++) {
        uint64_t r = splitmix(rng);
        switch (op) {
        case OP_HIT: acc += ph_cache_get(c, keys[r % n], 0, &v) ? v.plan_len : 0; break;
        case OP_MISS: acc += (size_t)ph_cache_get(c, r | 1, 0, &v); break;
        case OP_PUT_NEW:
            acc += ph_cache_put(c, (*next_key)++ << 1, 7, plan, PLAN_LEN, "simplified", "llm", 0);
            break;
        case OP_PUT_REPLACE:
            acc += ph_cache_put(c, keys[r % n], 7, plan, PLAN_LEN, "simplified", "llm", 0);
            break;
        }
    }
    double dt = now_ns() - t0;
    sink += acc;
    return dt / BATCH;
}

static double median_of(ph_cache *c, op_kind op, const uint64_t *keys, size_t n, const char *plan,
                        uint64_t *rng, uint64_t *next_key)
{
    double r[REPS];
    for (int i = 0; i < REPS; i++)
        r[i] = batch(c, op, keys, n, plan, rng, next_key);
    qsort(r, REPS, sizeof r[0], cmp_double);
    return r[REPS / 2];
}

/* The keys present, in an array, for drawing hits. Keys are even; misses use odd ones. */
static int collect(void *ctx, uint64_t key, const ph_cache_value *v)
{
    (void)v;
    uint64_t **p = ctx;
    *(*p)++ = key;
    return 0;
}

static void run_size(size_t n, const char *plan)
{
    ph_cache_config cfg = {.max_entries = n, .max_bytes = (size_t)1 << 30};
    ph_cache *c = ph_cache_new(&cfg);
    uint64_t *keys = malloc(n * sizeof *keys), *k = keys, rng = 42, next = 1;
    if (!c || !keys) {
        fprintf(stderr, "cache_bench: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        ph_cache_put(c, next++ << 1, 7, plan, PLAN_LEN, "simplified", "llm", 0);
    ph_cache_each(c, 0, collect, &k);
    double hit = median_of(c, OP_HIT, keys, n, plan, &rng, &next);
    double miss = median_of(c, OP_MISS, keys, n, plan, &rng, &next);
    double rep = median_of(c, OP_PUT_REPLACE, keys, n, plan, &rng, &next);
    double put = median_of(c, OP_PUT_NEW, keys, n, plan, &rng, &next);
    printf("| %zu | %.1f | %.1f | %.1f | %.1f |\n", n, hit, miss, put, rep);
    free(keys);
    ph_cache_free(c);
}

static size_t heap_in_use(void)
{
#ifdef __GLIBC__
    return mallinfo2().uordblks;
#else
    return 0;
#endif
}

static void memory(const char *plan)
{
    const size_t n = 10000;
    size_t before = heap_in_use();
    ph_cache_config cfg = {.max_entries = n, .max_bytes = (size_t)1 << 30};
    ph_cache *c = ph_cache_new(&cfg);
    for (size_t i = 0; c && i < n; i++)
        ph_cache_put(c, (i + 1) << 1, 7, plan, PLAN_LEN, "simplified", "llm", 0);
    size_t heap = heap_in_use() - before;
    ph_cache_stats s;
    ph_cache_stats_get(c, &s);
    printf("\nBytes per entry, %d-byte plan, tier \"simplified\", source \"llm\", %zu entries:\n\n", PLAN_LEN, n);
    printf("| measure | bytes per entry |\n|---|---|\n");
    printf("| charged to the byte cap (header + texts) | %zu |\n", ph_cache_entry_bytes(PLAN_LEN, 10, 3));
    printf("| all the cache holds (stats.memory: + buckets, cache struct) | %.1f |\n", (double)s.memory / (double)n);
    if (heap)
        printf("| heap really used (glibc mallinfo2, malloc overhead included) | %.1f |\n", (double)heap / (double)n);
    printf("\nBudget (DESIGN.md): <= 2048 bytes per cached plan.\n");
    ph_cache_free(c);
}

int main(void)
{
    char plan[PLAN_LEN + 1];
    make_plan(plan);
    printf("Plan cache, %d-byte plans; ns per operation, median of %d batches of %d.\n\n",
           PLAN_LEN, REPS, BATCH);
    printf("| entries | get hit | get miss | put, new key (evicts LRU) | put, replace |\n");
    printf("|---|---|---|---|---|\n");
    run_size(100, plan);
    run_size(1000, plan);
    run_size(10000, plan);
    memory(plan);
    return sink == 1 ? 1 : 0;
}
