/* cache_internal — what cache.c (the table, the LRU, get/put and coalescing) and cache_file.c
 * (warm start: save and load) share: the cache's layout and the one way to store an entry.
 * Only those two files include it; it is not part of the public API.
 *
 * Entries and in-flight records share one intrusive chained hash table type (`table`). The
 * LRU list is doubly linked through the entries, most recently used at `mru`. An entry is one
 * malloc block: header, then "plan\0tier\0source\0". Depends on libc and cache.h. */
#ifndef PH_CACHE_INTERNAL_H
#define PH_CACHE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "cache.h"

typedef struct node {
    struct node *hnext;
    uint64_t key;
} node;

typedef struct table {
    node **b;
    size_t mask;   /* buckets - 1 */
    size_t count;
} table;

typedef struct entry {
    node n;                     /* first: an entry is its node */
    struct entry *prev, *next;  /* towards mru, towards lru */
    uint64_t generation, created_ms;
    uint32_t plan_len;
    uint8_t tier_len, source_len;
    char text[];                /* plan \0 tier \0 source \0 */
} entry;

struct ph_cache {
    ph_cache_config cfg;
    table entries, flights;
    entry *mru, *lru;
    size_t bytes, flight_bytes;
    ph_cache_stats st;          /* the counters; sizes are filled in by ph_cache_stats_get */
};

/* Whether an entry created at created_ms has outlived the time to live at now_ms. */
static inline int ph_cache_too_old(const ph_cache *c, uint64_t created_ms, uint64_t now_ms)
{
    return c->cfg.ttl_ms && now_ms >= created_ms && now_ms - created_ms >= c->cfg.ttl_ms;
}

/* A new entry block holding copies of the texts, whose lengths the caller has checked
 * (plan_len <= UINT32_MAX, names <= PH_CACHE_MAX_NAME). created_ms is the caller's to set;
 * prev and next are unset until ph_cache_insert links the entry. NULL when out of memory.
 * The caller owns the block until it hands it to ph_cache_insert, or frees it with free(). */
entry *ph_cache_entry_new(uint64_t key, uint64_t generation, const char *plan, size_t plan_len,
                          const char *tier, size_t tier_len, const char *source,
                          size_t source_len);

/* Stores e as the most recently used entry; the cache owns e from the call on, whatever the
 * result (a refused e is freed). Replaces an entry under the same key, then evicts from the
 * LRU end until both caps hold with e in. Returns PH_CACHE_STORED, PH_CACHE_REPLACED or
 * PH_CACHE_TOO_BIG (counted as refused); counts puts, evictions and expirations. */
ph_cache_result ph_cache_insert(ph_cache *c, entry *e, uint64_t now_ms);

#endif
