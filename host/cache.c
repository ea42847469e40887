/* cache — the plan cache in memory: the hash table, the LRU list, get/put/remove, the
 * counters, each, and the in-flight table. See cache.h; warm start (save and load) is in
 * cache_file.c, and the layout both files share is in cache_internal.h.
 *
 * Entries and in-flight records share one intrusive chained hash table type (`table`, keyed
 * by the 64-bit key through a mixer, buckets a power of two, doubled when the load passes 1).
 * The LRU list is doubly linked through the entries, most recently used at `mru`. An entry is
 * one malloc block: header, then "plan\0tier\0source\0". Depends on libc. */
#include "cache_internal.h"

#include <stdlib.h>
#include <string.h>

#define FIRST_BUCKETS_MAX (1u << 16)  /* buckets allocated up front at most; more by growing */

/* ---- the hash table ---- */

static size_t slot_of(const table *t, uint64_t k)
{
    k ^= k >> 33;           /* murmur3's finaliser: keys are hashes, but do not trust them */
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return (size_t)k & t->mask;
}

static int table_init(table *t, size_t want)
{
    size_t n = 16;
    while (n < want && n < FIRST_BUCKETS_MAX)
        n <<= 1;
    t->b = calloc(n, sizeof *t->b);
    t->mask = n - 1;
    t->count = 0;
    return t->b ? 0 : -1;
}

/* The link that points at key's node, or at the NULL ending its chain. */
static node **table_link(const table *t, uint64_t key)
{
    node **l = &t->b[slot_of(t, key)];
    while (*l && (*l)->key != key)
        l = &(*l)->hnext;
    return l;
}

/* Doubles the buckets; on allocation failure keeps the old ones (longer chains, still right). */
static void table_grow(table *t)
{
    size_t n = (t->mask + 1) * 2;
    node **b = calloc(n, sizeof *b);
    if (!b)
        return;
    table old = *t;
    t->b = b;
    t->mask = n - 1;
    for (size_t i = 0; i <= old.mask; i++) {
        for (node *x = old.b[i], *next; x; x = next) {
            next = x->hnext;
            node **l = &t->b[slot_of(t, x->key)];
            x->hnext = *l;
            *l = x;
        }
    }
    free(old.b);
}

/* Adds x, whose key must not be in the table yet. */
static void table_add(table *t, node *x)
{
    if (t->count >= t->mask + 1)
        table_grow(t);
    node **l = &t->b[slot_of(t, x->key)];
    x->hnext = *l;
    *l = x;
    t->count++;
}

/* Unlinks and returns key's node, or NULL. */
static node *table_take(table *t, uint64_t key)
{
    node **l = table_link(t, key);
    node *x = *l;
    if (x) {
        *l = x->hnext;
        t->count--;
    }
    return x;
}

/* ---- entries and the LRU list ---- */

typedef struct flight {
    node n;
    size_t len, cap;
    uint64_t *ids;              /* waiters, arrival order */
} flight;

size_t ph_cache_entry_bytes(size_t plan_len, size_t tier_len, size_t source_len)
{
    return sizeof(entry) + plan_len + tier_len + source_len + 3;
}

static size_t bytes_of(const entry *e)
{
    return ph_cache_entry_bytes(e->plan_len, e->tier_len, e->source_len);
}

static void lru_unlink(ph_cache *c, entry *e)
{
    *(e->prev ? &e->prev->next : &c->mru) = e->next;
    *(e->next ? &e->next->prev : &c->lru) = e->prev;
}

static void lru_push(ph_cache *c, entry *e)
{
    e->prev = NULL;
    e->next = c->mru;
    *(c->mru ? &c->mru->prev : &c->lru) = e;
    c->mru = e;
}

static void drop(ph_cache *c, entry *e)
{
    table_take(&c->entries, e->n.key);
    lru_unlink(c, e);
    c->bytes -= bytes_of(e);
    free(e);
}

entry *ph_cache_entry_new(uint64_t key, uint64_t generation, const char *plan, size_t plan_len,
                          const char *tier, size_t tier_len, const char *source,
                          size_t source_len)
{
    entry *e = malloc(ph_cache_entry_bytes(plan_len, tier_len, source_len));
    if (!e)
        return NULL;
    e->n.key = key;
    e->generation = generation;
    e->plan_len = (uint32_t)plan_len;
    e->tier_len = (uint8_t)tier_len;
    e->source_len = (uint8_t)source_len;
    char *p = e->text;
    memcpy(p, plan, plan_len), p += plan_len, *p++ = '\0';
    memcpy(p, tier, tier_len), p += tier_len, *p++ = '\0';
    memcpy(p, source, source_len), p[source_len] = '\0';
    return e;
}

static void value_of(const entry *e, ph_cache_value *v)
{
    v->plan = e->text;
    v->plan_len = e->plan_len;
    v->tier = e->text + e->plan_len + 1;
    v->source = v->tier + e->tier_len + 1;
    v->generation = e->generation;
    v->created_ms = e->created_ms;
}

/* Stores e, which the cache now owns, as the most recently used: replaces an entry under the
 * same key, then evicts from the LRU end until both caps hold with e in. */
ph_cache_result ph_cache_insert(ph_cache *c, entry *e, uint64_t now_ms)
{
    size_t need = bytes_of(e);
    if (need > c->cfg.max_bytes) {
        free(e);
        c->st.refused++;
        return PH_CACHE_TOO_BIG;
    }
    entry *old = (entry *)*table_link(&c->entries, e->n.key);
    int replaced = old != NULL;
    if (old)
        drop(c, old);
    while (c->lru && (c->entries.count + 1 > c->cfg.max_entries
                      || c->bytes + need > c->cfg.max_bytes)) {
        if (ph_cache_too_old(c, c->lru->created_ms, now_ms))
            c->st.expirations++;
        else
            c->st.evictions++;
        drop(c, c->lru);
    }
    table_add(&c->entries, &e->n);
    lru_push(c, e);
    c->bytes += need;
    c->st.puts++;
    return replaced ? PH_CACHE_REPLACED : PH_CACHE_STORED;
}

ph_cache *ph_cache_new(const ph_cache_config *cfg)
{
    ph_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (cfg)
        c->cfg = *cfg;
    if (!c->cfg.max_entries)
        c->cfg.max_entries = PH_CACHE_DEFAULT_ENTRIES;
    if (!c->cfg.max_bytes)
        c->cfg.max_bytes = PH_CACHE_DEFAULT_BYTES;
    if (table_init(&c->entries, c->cfg.max_entries) || table_init(&c->flights, 16)) {
        free(c->entries.b);
        free(c);
        return NULL;
    }
    return c;
}

void ph_cache_free(ph_cache *c)
{
    if (!c)
        return;
    for (entry *e = c->mru, *next; e; e = next) {
        next = e->next;
        free(e);
    }
    for (size_t i = 0; i <= c->flights.mask; i++) {
        for (node *x = c->flights.b[i], *next; x; x = next) {
            next = x->hnext;
            free(((flight *)x)->ids);
            free(x);
        }
    }
    free(c->entries.b);
    free(c->flights.b);
    free(c);
}

int ph_cache_get(ph_cache *c, uint64_t key, uint64_t now_ms, ph_cache_value *out)
{
    entry *e = (entry *)*table_link(&c->entries, key);
    if (e && ph_cache_too_old(c, e->created_ms, now_ms)) {
        drop(c, e);
        c->st.expirations++;
        e = NULL;
    }
    if (!e) {
        c->st.misses++;
        return 0;
    }
    if (e != c->mru) {
        lru_unlink(c, e);
        lru_push(c, e);
    }
    c->st.hits++;
    value_of(e, out);
    return 1;
}

/* Whether s is well-formed UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF): what the JSON reader takes back, so every entry survives a save and a load. */
static int utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint64_t a, b;
        while (n - i >= 16) {  /* sixteen ASCII bytes at a time: plans are mostly ASCII */
            memcpy(&a, s + i, 8);
            memcpy(&b, s + i + 8, 8);
            if ((a | b) & 0x8080808080808080ULL)
                break;
            i += 16;
        }
        while (i < n && s[i] < 0x80)
            i++;
        if (i == n)
            return 1;
        unsigned c = s[i], lo = 0x80, hi = 0xbf;
        size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
        lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : lo;
        hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : hi;
        if (c < 0xc2 || c > 0xf4 || n - i < len || s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k < len; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
        i += len;
    }
    return 1;
}

ph_cache_result ph_cache_put(ph_cache *c, uint64_t key, uint64_t generation, const char *plan,
                             size_t plan_len, const char *tier, const char *source,
                             uint64_t now_ms)
{
    size_t tl = tier ? strlen(tier) : SIZE_MAX, sl = source ? strlen(source) : SIZE_MAX;
    ph_cache_result r = PH_CACHE_STORED;
    if (tl > PH_CACHE_MAX_NAME || sl > PH_CACHE_MAX_NAME || (!plan && plan_len))
        r = PH_CACHE_BAD_TEXT;
    else if (plan_len > UINT32_MAX || ph_cache_entry_bytes(plan_len, tl, sl) > c->cfg.max_bytes)
        r = PH_CACHE_TOO_BIG;
    else if (!utf8_ok((const unsigned char *)tier, tl) || !utf8_ok((const unsigned char *)source, sl)
             || (plan && !utf8_ok((const unsigned char *)plan, plan_len)))
        r = PH_CACHE_BAD_TEXT;
    if (r != PH_CACHE_STORED) {
        c->st.refused++;
        return r;
    }
    entry *e = ph_cache_entry_new(key, generation, plan ? plan : "", plan_len, tier, tl,
                                  source, sl);
    if (!e)
        return PH_CACHE_NO_MEMORY;
    e->created_ms = now_ms;
    return ph_cache_insert(c, e, now_ms);
}

const char *ph_cache_result_name(ph_cache_result r)
{
    static const char *const names[] = {"stored", "replaced", "too_big", "bad_text", "no_memory"};
    return (size_t)r < sizeof names / sizeof names[0] ? names[r] : "unknown";
}

int ph_cache_remove(ph_cache *c, uint64_t key)
{
    entry *e = (entry *)*table_link(&c->entries, key);
    if (!e)
        return 0;
    drop(c, e);
    c->st.removes++;
    return 1;
}

void ph_cache_count_coalesced(ph_cache *c, uint64_t n)
{
    c->st.coalesced += n;
}

void ph_cache_count_stale(ph_cache *c)
{
    c->st.stale++;
}

void ph_cache_stats_get(const ph_cache *c, ph_cache_stats *out)
{
    *out = c->st;
    out->entries = c->entries.count;
    out->bytes = c->bytes;
    out->inflight = c->flights.count;
    out->memory = sizeof *c + (c->entries.mask + 1 + c->flights.mask + 1) * sizeof(node *)
                  + c->bytes + c->flight_bytes;
    out->max_entries = c->cfg.max_entries;
    out->max_bytes = c->cfg.max_bytes;
    out->ttl_ms = c->cfg.ttl_ms;
}

void ph_cache_each(const ph_cache *c, int oldest_first, ph_cache_visit fn, void *ctx)
{
    ph_cache_value v;
    for (const entry *e = oldest_first ? c->lru : c->mru; e; e = oldest_first ? e->prev : e->next) {
        value_of(e, &v);
        if (fn(ctx, e->n.key, &v))
            return;
    }
}

/* ---- coalescing ---- */

int ph_cache_inflight_begin(ph_cache *c, uint64_t key, uint64_t request_id)
{
    flight *f = (flight *)*table_link(&c->flights, key);
    if (!f) {
        f = calloc(1, sizeof *f);
        if (!f)
            return -1;
        f->n.key = key;
        table_add(&c->flights, &f->n);
        c->flight_bytes += sizeof *f;
        return 0;
    }
    if (f->len == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 4;
        uint64_t *ids = realloc(f->ids, cap * sizeof *ids);
        if (!ids)
            return -1;
        c->flight_bytes += (cap - f->cap) * sizeof *ids;
        f->ids = ids;
        f->cap = cap;
    }
    f->ids[f->len++] = request_id;
    return 1;
}

int ph_cache_inflight_end(ph_cache *c, uint64_t key, uint64_t **ids, size_t *n)
{
    flight *f = (flight *)table_take(&c->flights, key);
    *ids = NULL;
    *n = 0;
    if (!f)
        return -1;
    c->flight_bytes -= sizeof *f + f->cap * sizeof *f->ids;
    if (f->len) {
        *ids = f->ids;
        *n = f->len;
    } else {
        free(f->ids);
    }
    free(f);
    return 0;
}
