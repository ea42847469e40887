/* cache — the plan cache. See cache.h.
 *
 * Entries and in-flight records share one intrusive chained hash table type (`table`, keyed
 * by the 64-bit key through a mixer, buckets a power of two, doubled when the load passes 1).
 * The LRU list is doubly linked through the entries, most recently used at `mru`. An entry is
 * one malloc block: header, then "plan\0tier\0source\0". Depends on libc, buf, error, jsonw
 * and jsonstream. */
#include "cache.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "jsonstream.h"
#include "jsonw.h"

#define FIRST_BUCKETS_MAX (1u << 16)  /* buckets allocated up front at most; more by growing */

/* ---- the hash table ---- */

typedef struct node {
    struct node *hnext;
    uint64_t key;
} node;

typedef struct table {
    node **b;
    size_t mask;   /* buckets - 1 */
    size_t count;
} table;

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

typedef struct entry {
    node n;                     /* first: an entry is its node */
    struct entry *prev, *next;  /* towards mru, towards lru */
    uint64_t generation, created_ms;
    uint32_t plan_len;
    uint8_t tier_len, source_len;
    char text[];                /* plan \0 tier \0 source \0 */
} entry;

typedef struct flight {
    node n;
    size_t len, cap;
    uint64_t *ids;              /* waiters, arrival order */
} flight;

struct ph_cache {
    ph_cache_config cfg;
    table entries, flights;
    entry *mru, *lru;
    size_t bytes, flight_bytes;
    ph_cache_stats st;          /* the counters; sizes are filled in by ph_cache_stats_get */
};

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

static int too_old(const ph_cache *c, uint64_t created_ms, uint64_t now_ms)
{
    return c->cfg.ttl_ms && now_ms >= created_ms && now_ms - created_ms >= c->cfg.ttl_ms;
}

static entry *entry_new(uint64_t key, uint64_t generation, const char *plan, size_t plan_len,
                        const char *tier, size_t tier_len, const char *source, size_t source_len)
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
static ph_cache_result insert(ph_cache *c, entry *e, uint64_t now_ms)
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
        if (too_old(c, c->lru->created_ms, now_ms))
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
    if (e && too_old(c, e->created_ms, now_ms)) {
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
    entry *e = entry_new(key, generation, plan ? plan : "", plan_len, tier, tl, source, sl);
    if (!e)
        return PH_CACHE_NO_MEMORY;
    e->created_ms = now_ms;
    return insert(c, e, now_ms);
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

/* ---- warm start: save ---- */

/* Whether the plan can go into the line as the JSON it is: one object alone on one line,
 * nested one level less deep than the reader allows (the line's object is one more). */
static int plan_is_object(ph_json *j, const char *s, size_t n)
{
    if (n < 2 || s[0] != '{' || s[n - 1] != '}' || memchr(s, '\n', n) || memchr(s, '\r', n))
        return 0;
    ph_json_reset(j);
    return ph_json_feed(j, s, n, NULL) == PH_JSON_OK && ph_json_finish(j) == PH_JSON_OK;
}

static int save_line(ph_buf *b, ph_json *j, const entry *e)
{
    const char *tier = e->text + e->plan_len + 1, *source = tier + e->tier_len + 1;
    ph_buf_reset(b);
    ph_buf_addf(b, "{\"key\":\"%016" PRIx64 "\",\"generation\":\"%016" PRIx64 "\",\"tier\":",
                e->n.key, e->generation);
    ph_jsonw_str(b, tier, e->tier_len);
    ph_buf_adds(b, ",\"source\":");
    ph_jsonw_str(b, source, e->source_len);
    ph_buf_addf(b, ",\"created\":%" PRIu64 ",\"plan\":", e->created_ms);
    if (plan_is_object(j, e->text, e->plan_len))
        ph_buf_add(b, e->text, e->plan_len);
    else
        ph_jsonw_str(b, e->text, e->plan_len);
    ph_buf_adds(b, "}\n");
    return b->failed ? -1 : 0;
}

static int save_entries(const ph_cache *c, FILE *f, const char *path, ph_error *err)
{
    ph_json_config cfg = {.max_depth = PH_JSON_DEFAULT_MAX_DEPTH - 1};
    ph_json *j = ph_json_new(&cfg, NULL, NULL);
    ph_buf b;
    ph_buf_init(&b, PH_CACHE_MAX_LINE);
    int rc = j ? 0 : ph_error_set(err, PH_ERR_MEMORY, "%s: out of memory", path);
    for (const entry *e = c->lru; e && !rc; e = e->prev) {
        if (save_line(&b, j, e))
            rc = ph_error_set(err, PH_ERR_LIMIT, "%s: entry %016" PRIx64 " needs a line longer "
                              "than %u bytes (or memory ran out)", path, e->n.key, PH_CACHE_MAX_LINE);
        else if (fwrite(b.data, 1, b.len, f) != b.len)
            rc = ph_error_set(err, PH_ERR_IO, "%s: %s", path, strerror(errno));
    }
    ph_buf_free(&b);
    ph_json_free(j);
    return rc;
}

int ph_cache_save(const ph_cache *c, const char *path, ph_error *err)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= (int)sizeof tmp)
        return ph_error_set(err, PH_ERR_ARG, "%s: path too long", path);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return ph_error_set(err, PH_ERR_IO, "%s: %s", tmp, strerror(errno));
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        return ph_error_set(err, PH_ERR_IO, "%s: %s", tmp, strerror(errno));
    }
    int rc = save_entries(c, f, path, err);
    if (!rc && (fflush(f) || fsync(fileno(f))))
        rc = ph_error_set(err, PH_ERR_IO, "%s: %s", tmp, strerror(errno));
    if (fclose(f) && !rc)
        rc = ph_error_set(err, PH_ERR_IO, "%s: %s", tmp, strerror(errno));
    if (!rc && rename(tmp, path))
        rc = ph_error_set(err, PH_ERR_IO, "%s: rename from %s: %s", path, tmp, strerror(errno));
    if (rc)
        unlink(tmp);
    return rc;
}

/* ---- warm start: load ---- */

enum { F_KEY, F_GEN, F_TIER, F_SOURCE, F_CREATED, F_PLAN, F_COUNT, F_OTHER = F_COUNT };
static const char *const FIELDS[F_COUNT] = {"key", "generation", "tier", "source", "created", "plan"};

/* One line being read: the members seen so far. */
typedef struct line_rec {
    int field;                /* F_* of the member whose value comes next */
    unsigned have;            /* 1 << F_* for each member read */
    uint64_t key, generation, created;
    char tier[PH_CACHE_MAX_NAME + 1], source[PH_CACHE_MAX_NAME + 1];
    size_t tier_len, source_len;
    const char *line;         /* the line, for the plan object's raw text */
    uint64_t plan_at;         /* offset of the plan object's '{' */
    const char *plan;
    size_t plan_len;
    ph_buf str;               /* the plan when it was written as a string */
    char msg[384];            /* why the line is refused */
} line_rec;

static int refuse(line_rec *r, const char *what)
{
    snprintf(r->msg, sizeof r->msg, "\"%s\" %s", FIELDS[r->field], what);
    return 1;
}

static int hex_digit(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 32;
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

static int parse_hex(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        int d = hex_digit((unsigned char)s[i]);
        if (d < 0)
            return -1;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return n >= 1 && n <= 16 ? 0 : -1;
}

/* A whole number of at most 19 digits (always below 2^64). */
static int parse_ms(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return n >= 1 && n <= 19 ? 0 : -1;
}

static int take_name(line_rec *r, const ph_json_token *t, char *dst, size_t *len)
{
    if (t->kind != PH_JSON_STRING)
        return refuse(r, "must be a string");
    if (t->len > PH_CACHE_MAX_NAME || memchr(t->text, '\0', t->len))
        return refuse(r, "is too long or holds a NUL");
    memcpy(dst, t->text, t->len);
    dst[t->len] = '\0';
    *len = t->len;
    return 0;
}

static int take_plan(line_rec *r, const ph_json_token *t)
{
    if (t->kind == PH_JSON_BEGIN_OBJECT) {
        r->plan_at = t->offset;
        return 0;
    }
    if (t->kind == PH_JSON_END_OBJECT) {
        r->plan = r->line + r->plan_at;
        r->plan_len = (size_t)(t->end - r->plan_at);
        return 0;
    }
    if (t->kind != PH_JSON_STRING)
        return refuse(r, "must be an object or a string");
    ph_buf_reset(&r->str);
    if (ph_buf_add(&r->str, t->text, t->len))
        return refuse(r, "does not fit in memory");
    r->plan = r->str.data ? r->str.data : "";
    r->plan_len = t->len;
    return 0;
}

/* A member value (or a container bracket) at depth 1. */
static int take_value(line_rec *r, const ph_json_token *t)
{
    int bad = 0;
    switch (r->field) {
    case F_OTHER: return 0;
    case F_PLAN: bad = take_plan(r, t); break;
    case F_TIER: bad = take_name(r, t, r->tier, &r->tier_len); break;
    case F_SOURCE: bad = take_name(r, t, r->source, &r->source_len); break;
    case F_KEY: case F_GEN:
        if (t->kind != PH_JSON_STRING
            || parse_hex(t->text, t->len, r->field == F_KEY ? &r->key : &r->generation))
            return refuse(r, "must be a string of 1 to 16 hex digits");
        break;
    case F_CREATED:
        if (t->kind != PH_JSON_NUMBER || parse_ms(t->text, t->len, &r->created))
            return refuse(r, "must be a whole number of milliseconds");
        break;
    }
    if (!bad && !(r->field == F_PLAN && t->kind == PH_JSON_BEGIN_OBJECT))
        r->have |= 1u << r->field;
    return bad;
}

static int on_token(void *ctx, const ph_json_token *t)
{
    line_rec *r = ctx;
    if (t->depth == 0) {
        if (t->kind == PH_JSON_BEGIN_OBJECT || t->kind == PH_JSON_END_OBJECT)
            return 0;
        snprintf(r->msg, sizeof r->msg, "a line must be one JSON object");
        return 1;
    }
    if (t->depth > 1)
        return 0;
    if (t->kind == PH_JSON_KEY) {
        r->field = 0;
        while (r->field < F_COUNT && (strlen(FIELDS[r->field]) != t->len ||
                                      memcmp(FIELDS[r->field], t->text, t->len)))
            r->field++;
        return 0;
    }
    return take_value(r, t);
}

/* Reads one line, without its '\n', into b. Returns 1 for a line, 0 at the end of the file,
 * -1 when the line is longer than b's cap. */
static int read_line(FILE *f, ph_buf *b)
{
    char chunk[512];
    size_t n = 0;
    int ch, any = 0;
    ph_buf_reset(b);
    while ((ch = getc_unlocked(f)) != EOF) {
        any = 1;
        if (ch == '\n')
            break;
        chunk[n++] = (char)ch;
        if (n == sizeof chunk && ph_buf_add(b, chunk, n))
            return -1;
        n %= sizeof chunk;
    }
    return ph_buf_add(b, chunk, n) ? -1 : any;
}

/* Fills r from one line; 0, or -1 with r->msg saying why. */
static int parse_line(ph_json *j, line_rec *r, const char *s, size_t n)
{
    r->field = F_OTHER;
    r->have = 0;
    r->line = s;
    ph_json_reset(j);
    ph_json_status st = ph_json_feed(j, s, n, NULL);
    if (st == PH_JSON_OK)
        st = ph_json_finish(j);
    if (st == PH_JSON_STOPPED)
        return -1;
    uint64_t off = 0;
    if (st == PH_JSON_ERROR) {
        const char *m = ph_json_error(j, &off);
        snprintf(r->msg, sizeof r->msg, "column %" PRIu64 ": %s", off + 1, m);
        return -1;
    }
    for (int f = 0; f < F_COUNT; f++) {
        if (!(r->have & 1u << f)) {
            snprintf(r->msg, sizeof r->msg, "missing \"%s\"", FIELDS[f]);
            return -1;
        }
    }
    return 0;
}

/* One ph_cache_load run. */
typedef struct loader {
    const char *path;
    ph_error *err;
    uint64_t generation, now_ms;
    ph_json *j;
    line_rec *r;
    ph_buf line;
    entry *first, *last;      /* staged entries in file order, linked through next */
    size_t skipped;
} loader;

static int line_error(loader *ld, ph_code code, size_t no, const char *msg)
{
    ph_error_set(ld->err, code, "%s:%zu: %s", ld->path, no, msg);
    if (ld->err)
        snprintf(ld->err->where, sizeof ld->err->where, "%s:%zu", ld->path, no);
    return -1;
}

/* Keeps the line's entry for later, or counts it skipped. 0, or -1 when out of memory. */
static int stage(const ph_cache *c, loader *ld)
{
    line_rec *r = ld->r;
    if (r->created > ld->now_ms)
        r->created = ld->now_ms;
    if (r->generation != ld->generation || too_old(c, r->created, ld->now_ms)) {
        ld->skipped++;
        return 0;
    }
    entry *e = entry_new(r->key, r->generation, r->plan, r->plan_len, r->tier, r->tier_len,
                         r->source, r->source_len);
    if (!e)
        return -1;
    e->created_ms = r->created;
    e->next = NULL;
    *(ld->last ? &ld->last->next : &ld->first) = e;
    ld->last = e;
    return 0;
}

/* Reads and stages line `no`: 0, 1 at the end of the file, or -1 with the error filled. */
static int load_line(const ph_cache *c, loader *ld, FILE *f, size_t no)
{
    int got = read_line(f, &ld->line);
    if (got < 0)
        return line_error(ld, PH_ERR_LIMIT, no, "line longer than PH_CACHE_MAX_LINE bytes");
    if (got == 0)
        return ferror(f) ? ph_error_set(ld->err, PH_ERR_IO, "%s: read error", ld->path) : 1;
    if (ld->line.len == strspn(ph_buf_str(&ld->line), " \t\r"))  /* blank (a NUL is not) */
        return 0;
    if (parse_line(ld->j, ld->r, ld->line.data, ld->line.len))
        return line_error(ld, PH_ERR_JSON, no, ld->r->msg);
    if (stage(c, ld))
        return line_error(ld, PH_ERR_MEMORY, no, "out of memory");
    return 0;
}

static int load_file(const ph_cache *c, loader *ld, FILE *f)
{
    ph_json_config cfg = {.max_depth = PH_JSON_DEFAULT_MAX_DEPTH, .max_token = PH_CACHE_MAX_LINE};
    ld->r = calloc(1, sizeof *ld->r);
    ld->j = ld->r ? ph_json_new(&cfg, on_token, ld->r) : NULL;
    ph_buf_init(&ld->line, PH_CACHE_MAX_LINE - 1);
    int rc = ld->j ? 0 : ph_error_set(ld->err, PH_ERR_MEMORY, "%s: out of memory", ld->path);
    if (ld->r)
        ph_buf_init(&ld->r->str, PH_CACHE_MAX_LINE);
    for (size_t no = 1; !rc; no++)
        rc = load_line(c, ld, f, no);
    ph_buf_free(&ld->line);
    if (ld->r)
        ph_buf_free(&ld->r->str);
    free(ld->r);
    ph_json_free(ld->j);
    return rc < 0 ? -1 : 0;
}

int ph_cache_load(ph_cache *c, const char *path, uint64_t generation, uint64_t now_ms,
                  size_t *loaded, size_t *skipped, ph_error *err)
{
    loader ld = {.path = path, .err = err, .generation = generation, .now_ms = now_ms};
    size_t n = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return ph_error_set(err, errno == ENOENT ? PH_ERR_NOTFOUND : PH_ERR_IO, "%s: %s", path,
                            strerror(errno));
    int rc = load_file(c, &ld, f);
    fclose(f);
    for (entry *e = ld.first, *next; e; e = next) {
        next = e->next;
        if (rc)
            free(e);
        else if (insert(c, e, now_ms) == PH_CACHE_TOO_BIG)
            ld.skipped++;
        else
            n++;
    }
    if (loaded)
        *loaded = rc ? 0 : n;
    if (skipped)
        *skipped = rc ? 0 : ld.skipped;
    return rc;
}
