/* cache_file — the plan cache's warm start: ph_cache_save and ph_cache_load (see cache.h for
 * the file format and the guarantees, cache_internal.h for the layout this reads).
 *
 * Save writes one NDJSON line per entry, least recently used first, into a mkstemp file
 * beside the target, then fsyncs and renames it over the target. Load reads line by line
 * (each capped at PH_CACHE_MAX_LINE), tokenizes each with the jsonstream tokenizer, and
 * stages every kept entry as a ready entry block; only when the whole file has been read are
 * the staged entries inserted, in file order, so an error leaves the cache unchanged.
 * Depends on libc, buf, error, jsonw, jsonstream and cache.c (through cache_internal.h). */
#include "cache_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "jsonstream.h"
#include "jsonw.h"

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
    if (r->generation != ld->generation || ph_cache_too_old(c, r->created, ld->now_ms)) {
        ld->skipped++;
        return 0;
    }
    entry *e = ph_cache_entry_new(r->key, r->generation, r->plan, r->plan_len, r->tier,
                                  r->tier_len, r->source, r->source_len);
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
        else if (ph_cache_insert(c, e, now_ms) == PH_CACHE_TOO_BIG)
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
