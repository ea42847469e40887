/* cache — the plan cache: 64-bit key -> plan JSON text, LRU, capped in entries and bytes.
 *
 * A key is computed elsewhere (snapshot hash folded with template, tool subset, model,
 * options and the script generation's content hash); the cache only compares it. Each entry
 * also keeps the generation hash on its own, so a warm start can skip another generation's
 * entries, plus the tier and source that produced the plan and its creation time.
 *
 * - get and put are O(1): a chained hash table over an intrusive doubly linked LRU list.
 * - Both caps are enforced on every put by evicting the least recently used entries first;
 *   an entry bigger than the byte cap is refused and nothing changes. Order is strict LRU
 *   (a get refreshes), so eviction is deterministic.
 * - Optional time to live, counted from creation (a get does not extend it). Time is always
 *   the caller's: every call that needs it takes now_ms, so tests are deterministic. An
 *   expired entry is a miss and is removed when it is looked up.
 * - One allocation per entry: header, plan, tier and source in one block. The bytes an entry
 *   is charged (ph_cache_entry_bytes) are that whole block, and the byte cap counts them.
 * - An in-flight table for coalescing identical requests (ph_cache_inflight_*).
 * - Warm start: save every entry to an NDJSON file and load it back in the same LRU order.
 *
 * cache.c implements the table, the LRU, get/put/remove, the counters, each and the in-flight
 * table; cache_file.c implements the warm start (ph_cache_save, ph_cache_load); the layout
 * they share is in cache_internal.h, which nothing else includes.
 *
 * Not thread-safe; one cache per thread or a lock around it. Depends on libc, buf, error,
 * jsonw and jsonstream (all but libc in cache_file.c only); knows nothing of Lua. */
#ifndef PH_CACHE_H
#define PH_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define PH_CACHE_DEFAULT_ENTRIES 4096u
#define PH_CACHE_DEFAULT_BYTES (8u * 1024u * 1024u)
#define PH_CACHE_MAX_NAME 255u          /* longest tier or source name */
#define PH_CACHE_MAX_LINE (1u << 20)    /* longest line ph_cache_load accepts */

/* Zero-initialise and set what you need; 0 means the default (no expiry for ttl_ms). */
typedef struct ph_cache_config {
    size_t max_entries;  /* 0 = PH_CACHE_DEFAULT_ENTRIES */
    size_t max_bytes;    /* entry bytes (ph_cache_entry_bytes) summed; 0 = the default */
    uint64_t ttl_ms;     /* 0 = entries never expire */
} ph_cache_config;

/* A hit, borrowed from the cache: every pointer is into the entry's block, NUL-terminated,
 * and valid until the next call that takes a non-const ph_cache * (put, get, remove, load,
 * free...). Copy what must live longer. */
typedef struct ph_cache_value {
    const char *plan;
    size_t plan_len;
    const char *tier;
    const char *source;
    uint64_t generation;
    uint64_t created_ms;
} ph_cache_value;

typedef struct ph_cache_stats {
    uint64_t hits, misses;   /* get results; an expired entry counts as a miss */
    uint64_t puts;           /* values stored (new or replacing) */
    uint64_t refused;        /* puts refused: too big or a bad argument */
    uint64_t evictions;      /* entries dropped to honour a cap */
    uint64_t expirations;    /* entries dropped because their time to live had passed */
    uint64_t removes;        /* entries dropped by ph_cache_remove */
    uint64_t coalesced;      /* counted by the caller: ph_cache_count_coalesced */
    uint64_t stale;          /* counted by the caller: ph_cache_count_stale */
    size_t entries, bytes;   /* in use now (bytes = sum of entry bytes) */
    size_t inflight;         /* keys in the in-flight table */
    size_t memory;           /* everything the cache holds: entries, buckets, in-flight */
    size_t max_entries, max_bytes;
    uint64_t ttl_ms;
} ph_cache_stats;

typedef enum ph_cache_result {
    PH_CACHE_STORED = 0, /* a new entry */
    PH_CACHE_REPLACED,   /* the key was present; the old value is gone */
    PH_CACHE_TOO_BIG,    /* the entry alone is bigger than max_bytes; nothing changed */
    PH_CACHE_BAD_TEXT,   /* tier or source NULL or longer than PH_CACHE_MAX_NAME, or a text
                            that is not UTF-8 (it could not be saved); nothing changed */
    PH_CACHE_NO_MEMORY,  /* allocation failed; nothing changed */
} ph_cache_result;

typedef struct ph_cache ph_cache;

/* Creates an empty cache; cfg may be NULL (defaults) and is copied. Returns NULL when out of
 * memory. The caller owns the cache and releases it with ph_cache_free. */
ph_cache *ph_cache_new(const ph_cache_config *cfg);

/* Releases every entry, the in-flight table and the cache. NULL is allowed. */
void ph_cache_free(ph_cache *c);

/* The bytes an entry with these text lengths is charged: its whole block, header included. */
size_t ph_cache_entry_bytes(size_t plan_len, size_t tier_len, size_t source_len);

/* Looks `key` up. On a live hit fills *out (see ph_cache_value for its lifetime), makes the
 * entry the most recently used and returns 1. Returns 0 on a miss; an entry whose time to
 * live has passed at now_ms is removed and counted as a miss and an expiration. */
int ph_cache_get(ph_cache *c, uint64_t key, uint64_t now_ms, ph_cache_value *out);

/* Stores a copy of plan (plan_len bytes, UTF-8, normally the plan object's JSON), tier and
 * source (UTF-8 C strings) under key, created at now_ms, as the most recently used entry,
 * evicting least recently used entries until both caps hold. The cache keeps no pointer to
 * the arguments. Counts a put, or a refusal (too big, bad text). */
ph_cache_result ph_cache_put(ph_cache *c, uint64_t key, uint64_t generation, const char *plan,
                             size_t plan_len, const char *tier, const char *source,
                             uint64_t now_ms);

/* The result's stable name: "stored", "replaced", "too_big", "bad_text", "no_memory". */
const char *ph_cache_result_name(ph_cache_result r);

/* Drops the entry under key (a hit that failed validation against the current snapshot).
 * Returns 1 if there was one, else 0. */
int ph_cache_remove(ph_cache *c, uint64_t key);

/* Counters the caller owns the meaning of: requests answered from another request's result,
 * and hits it rejected after validation (count the hit, then ph_cache_remove it). */
void ph_cache_count_coalesced(ph_cache *c, uint64_t n);
void ph_cache_count_stale(ph_cache *c);

/* Copies the counters and the current sizes into *out. */
void ph_cache_stats_get(const ph_cache *c, ph_cache_stats *out);

/* Calls fn for every entry from the most recently used to the least (or the reverse when
 * oldest_first); fn returns nonzero to stop. The value is valid during the call only, and fn
 * must not change the cache. Does not refresh anything or check time to live. */
typedef int (*ph_cache_visit)(void *ctx, uint64_t key, const ph_cache_value *v);
void ph_cache_each(const ph_cache *c, int oldest_first, ph_cache_visit fn, void *ctx);

/* Coalescing. begin records that request_id wants key: returns 0 when the key was not in
 * flight (the caller now leads: it runs the request and must call end), 1 when another
 * request already leads (request_id is added to the key's waiters), -1 when out of memory
 * (nothing recorded). */
int ph_cache_inflight_begin(ph_cache *c, uint64_t key, uint64_t request_id);

/* Ends key's flight. *ids receives the waiting request ids in arrival order as an array of
 * *n the caller owns and frees with free() (NULL when no one waited); the leader is not in
 * it. Returns 0, or -1 when key was not in flight (*ids = NULL, *n = 0). */
int ph_cache_inflight_end(ph_cache *c, uint64_t key, uint64_t **ids, size_t *n);

/* Writes every entry to path, one JSON object per line, least recently used first:
 *   {"key":"<16 hex>","generation":"<16 hex>","tier":"..","source":"..","created":N,"plan":{..}}
 * plan is written as the JSON it is when the text is one JSON object on one line, else as a
 * JSON string. Writes a temporary file beside path, then renames it over path, so path holds
 * either the old file or the whole new one (mode 0600, as mkstemp makes it). Returns 0, or -1
 * with err filled: PH_ERR_IO, PH_ERR_LIMIT (an entry needs a line longer than
 * PH_CACHE_MAX_LINE), PH_ERR_ARG (path too long) or PH_ERR_MEMORY; path is then untouched. */
int ph_cache_save(const ph_cache *c, const char *path, ph_error *err);

/* Reads a file ph_cache_save wrote and puts its entries of `generation` in file order (so the
 * least recently used ends last, as it was). Entries of another generation, entries expired
 * at now_ms (created later than now_ms counts as created now) and entries refused by put are
 * skipped and counted in *skipped. A created time from the file is kept, so time to live
 * carries over only when the caller's clock does (wall-clock milliseconds, say). The whole
 * file is checked before anything is stored: on error the cache is unchanged and -1 returns
 * with err filled — PH_ERR_NOTFOUND (no file), PH_ERR_IO, PH_ERR_JSON ("path:LINE: ...", with
 * where = "path:LINE"), PH_ERR_LIMIT (a line longer than PH_CACHE_MAX_LINE) or
 * PH_ERR_MEMORY. Returns 0 on success; *loaded counts entries stored (a file holding more
 * than the caps allow leaves its last, most recent ones), loaded and skipped may be NULL.
 * Memory while loading: the kept entries of the file, staged, plus one line. */
int ph_cache_load(ph_cache *c, const char *path, uint64_t generation, uint64_t now_ms,
                  size_t *loaded, size_t *skipped, ph_error *err);

#endif
