/* snaphash — the hashing pass of the perceptual snapshot hash (see snaphash.h).
 *
 * One jsonstream pass over the snapshot. Every open container has a frame holding the DFA
 * state of its path (snaphash_internal.h); each member key or array slot steps it once and
 * the new state says which rules reach the value. Hashes are built bottom-up: a scalar hashes
 * its canonical bytes, a member mixes its key hash with its value hash, a container combines
 * its children's hashes (sorted first for objects and sets). With canonical text asked for,
 * each child's text is written to the output as it closes, and a closing container rewrites
 * its children's span in display order. Relative rules add a first pass that reads the
 * anchor and stops as soon as the anchor object closes.
 * Depends on snaphash_rules (the rules and the DFA), jsonstream, buf, error, libxxhash. */
#include "snaphash.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "jsonstream.h"
#include "snaphash_internal.h"

#define MAX_ENTRIES (1u << 22)        /* children waiting in open containers */
#define MAX_FRAMES ((int)PH_JSON_DEFAULT_MAX_DEPTH + 2)

/* Seeds 0x100 apart: sh_hash_bytes adds the length (<= 8) to its seed. */
enum { SEED_STR = 0x100, SEED_NUM = 0x200, SEED_CELL = 0x300, SEED_OBJ = 0x400, SEED_ARR = 0x500,
       SEED_SET = 0x600 };
#define H_NULL 0x6a09e667f3bcc908ull
#define H_TRUE 0xbb67ae8584caa73bull
#define H_FALSE 0x3c6ef372fe94f82bull
#define H_NOTHING 0xa54ff53a5f1d36f1ull

typedef struct qpick {
    int have, spec;           /* spec: literal parts of the rule that set it */
    double step;
} qpick;

/* What the next value of a container is, decided from its key or slot. */
typedef struct pend {
    uint32_t ds;              /* DFA state of its path */
    unsigned flags;           /* SH_IGNORE, SH_SET, SH_REL */
    int axis;                 /* 1..3: it is x, y or z of a relative position */
    qpick q;                  /* quantisation reaching it */
    uint64_t key_hash;
    size_t off;               /* canonical: where its text (with "key": in objects) starts */
    size_t klen;              /* canonical: bytes of the quoted key */
} pend;

typedef struct frame {
    uint32_t ds;
    int is_obj, set, rel;
    qpick q;
    size_t ent_off;           /* its first child in ent */
    size_t txt_off;           /* canonical: where its children's texts start */
    pend p;
} frame;

typedef struct entry {
    uint64_t h;
    size_t off, len, klen;    /* canonical: its text, and its key's part of it */
} entry;

struct ph_snaphasher {
    const ph_hash_rules *r;
    sh_dfa dfa;
    ph_json *j, *scan;
    frame fr[MAX_FRAMES];
    int nfr;                  /* the top frame; fr[0] is the document around the root value */
    entry *ent;
    size_t ent_top, ent_size;
    uint64_t *hs;
    size_t hs_size;
    ph_buf *text;             /* the caller's canonical buffer, or NULL */
    ph_buf tmp;               /* long numbers; a container's children while it is rewritten */
    int skip;                 /* open containers inside an ignored value */
    ph_code fail;
    const char *why;
    double anchor[3];
    unsigned axes;            /* anchor axes found (bit 0 = x) */
    unsigned am, acand, aaxis;    /* anchor pass: parts matched; key matched; axis key */
};

/* Records the first failure (why: for PH_ERR_LIMIT) and asks the tokenizer to stop. */
static int stop(ph_snaphasher *h, ph_code code, const char *why)
{
    if (h->fail == PH_OK)
        h->fail = code, h->why = why;
    return 1;
}

static void put(ph_snaphasher *h, const void *s, size_t n)
{
    if (h->text && ph_buf_add(h->text, s, n) != 0)
        stop(h, PH_ERR_LIMIT, "the canonical text passed its buffer's cap");
}

static void cut(ph_buf *b, size_t len)
{
    b->len = len;
    if (b->data)
        b->data[len] = '\0';
}

/* Order-sensitive combination of two hashes (a bijection in each argument). */
static uint64_t mix2(uint64_t a, uint64_t b)
{
    return sh_fmix(a * 0x9e3779b97f4a7c15ull ^ sh_fmix(b));
}

/* ---- numbers and strings ----------------------------------------------------------- */

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Exact without strtod when the decimal has at most 19 significant digits, a mantissa up to
 * 2^53 and a power of ten up to 22 (both exact doubles, so one rounding). 0 or -1. */
static int fast_number(const char *s, size_t n, double *out)
{
    static const double p10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
                                 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
                                 1e21, 1e22};
    size_t i = s[0] == '-';
    uint64_t m = 0;
    int digits = 0, e10 = 0, frac = 0;
    if (n - i <= 15) {        /* plain integers, the common case */
        while (i < n && is_digit(s[i]))
            m = m * 10 + (uint64_t)(s[i++] - '0');
        if (i == n) {
            *out = s[0] == '-' ? -(double)m : (double)m;
            return 0;
        }
        i = s[0] == '-', m = 0;
    }
    for (; i < n; i++) {
        if (s[i] == '.') {
            frac = 1;
            continue;
        }
        if (!is_digit(s[i]))
            break;
        if ((m || s[i] != '0') && digits++ == 19)
            return -1;
        m = m * 10 + (uint64_t)(s[i] - '0');
        e10 -= frac;
    }
    if (i < n || m > (1ull << 53) || e10 < -22)
        return -1;    /* an exponent, or too many digits */
    double v = e10 ? (double)m / p10[-e10] : (double)m;
    *out = s[0] == '-' ? -v : v;
    return 0;
}

/* The number token s[0..n) (grammar-checked by the tokenizer) as a double. */
static double number_value(ph_snaphasher *h, const char *s, size_t n)
{
    double v;
    if (fast_number(s, n, &v) == 0)
        return v;
    ph_buf_reset(&h->tmp);
    if (ph_buf_add(&h->tmp, s, n) != 0)
        return stop(h, PH_ERR_MEMORY, NULL), 0;
    return strtod(ph_buf_str(&h->tmp), NULL);
}

/* Shortest of %.15g..%.17g that reads back as v; integers without a point. */
static void put_number(ph_snaphasher *h, double v)
{
    char s[40];
    int n;
    if (!isfinite(v))
        n = snprintf(s, sizeof s, "%s", isnan(v) ? "null" : v > 0 ? "1e999" : "-1e999");
    else if (v == floor(v) && fabs(v) < 1e15)
        n = snprintf(s, sizeof s, "%.0f", v);
    else
        for (int prec = 15;; prec++) {
            n = snprintf(s, sizeof s, "%.*g", prec, v);
            if (prec == 17 || strtod(s, NULL) == v)
                break;
        }
    put(h, s, (size_t)n);
}

/* s[0..n) as a JSON string: '"', '\\' and control bytes escaped, the rest (UTF-8) as is. */
static void put_string(ph_snaphasher *h, const char *s, size_t n)
{
    size_t run = 0;
    put(h, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        char esc[8];
        int k = c == '"' || c == '\\' ? snprintf(esc, sizeof esc, "\\%c", c)
                                      : snprintf(esc, sizeof esc, "\\u%04x", c);
        put(h, s + run, i - run);
        put(h, esc, (size_t)k);
        run = i + 1;
    }
    put(h, s + run, n - run);
    put(h, "\"", 1);
}

static uint64_t hash_double(double v, uint64_t seed)
{
    uint64_t bits;
    v = v == 0 ? 0.0 : isnan(v) ? NAN : v;    /* one zero, one NaN */
    memcpy(&bits, &v, sizeof bits);
    return sh_fmix(bits ^ sh_fmix(seed));
}

/* A number: shifted when it is an axis of a relative position, then quantised. */
static uint64_t number_hash(ph_snaphasher *h, const ph_json_token *t, const pend *p)
{
    double v = number_value(h, t->text, t->len);
    if (p->axis)
        v -= h->anchor[p->axis - 1];
    if (!p->q.have || p->q.step == 0) {
        if (h->text)
            put_number(h, v == 0 ? 0.0 : v);
        return hash_double(v, SEED_NUM);
    }
    double cell = floor(v / p->q.step);
    if (h->text)
        put_number(h, cell == 0 ? 0.0 : cell * p->q.step);
    return hash_double(cell, SEED_CELL);
}

static uint64_t scalar_hash(ph_snaphasher *h, const ph_json_token *t, const pend *p)
{
    const char *s = t->text ? t->text : "";
    switch (t->kind) {
    case PH_JSON_NULL:
        return put(h, "null", 4), H_NULL;
    case PH_JSON_TRUE:
        return put(h, "true", 4), H_TRUE;
    case PH_JSON_FALSE:
        return put(h, "false", 5), H_FALSE;
    case PH_JSON_STRING:
        if (h->text)
            put_string(h, s, t->len);
        return sh_hash_bytes(s, t->len, SEED_STR);
    default:
        return number_hash(h, t, p);
    }
}

/* ---- building hashes --------------------------------------------------------------- */

/* Steps f's path by one key or slot symbol: f->p describes the value there. */
static int describe(ph_snaphasher *h, frame *f, uint32_t sym)
{
    uint32_t t = sh_dfa_step(&h->dfa, f->ds, sym);
    if (t == SH_NO_STATE)
        return stop(h, PH_ERR_LIMIT, "the rules need more than 4096 path automaton "
                    "states (or memory ran out)");
    const sh_dstate *s = &h->dfa.st[t];
    pend *p = &f->p;
    p->ds = t;
    p->flags = s->flags;
    p->q = f->q;                  /* inherited, unless this node's rule is as specific */
    if ((s->flags & SH_QUANT) && (!p->q.have || s->spec >= p->q.spec))
        p->q = (qpick){1, s->spec, s->step};
    return 0;
}

static int by_hash(const void *a, const void *b)
{
    uint64_t x = ((const entry *)a)->h, y = ((const entry *)b)->h;
    return x < y ? -1 : x > y;
}

static void sort_by_hash(entry *e, size_t n)
{
    if (n > 16) {
        qsort(e, n, sizeof *e, by_hash);
        return;
    }
    for (size_t i = 1; i < n; i++)
        for (size_t k = i; k > 0 && e[k - 1].h > e[k].h; k--) {
            entry t = e[k];
            e[k] = e[k - 1], e[k - 1] = t;
        }
}

/* Member order for display: quoted key bytes, then hash. */
static int key_cmp(const char *text, const entry *a, const entry *b)
{
    size_t m = a->klen < b->klen ? a->klen : b->klen;
    int c = memcmp(text + a->off, text + b->off, m);
    if (c == 0 && a->klen != b->klen)
        c = a->klen < b->klen ? -1 : 1;
    if (c == 0 && a->h != b->h)
        c = a->h < b->h ? -1 : 1;
    return c;
}

/* Debug path only, and objects are small: insertion sort. */
static void sort_by_key(const char *text, entry *e, size_t n)
{
    for (size_t i = 1; i < n; i++)
        for (size_t k = i; k > 0 && key_cmp(text, &e[k - 1], &e[k]) > 0; k--) {
            entry t = e[k];
            e[k] = e[k - 1], e[k - 1] = t;
        }
}

/* The value hash vh completes f's pending child. */
static int add_entry(ph_snaphasher *h, frame *f, uint64_t vh)
{
    if (h->ent_top == h->ent_size) {
        size_t size = 2 * h->ent_size;
        entry *e = size <= MAX_ENTRIES ? realloc(h->ent, size * sizeof *e) : NULL;
        if (!e)
            return stop(h, size <= MAX_ENTRIES ? PH_ERR_MEMORY : PH_ERR_LIMIT,
                        "more than 4194304 values open at once");
        h->ent = e, h->ent_size = size;
    }
    entry *e = &h->ent[h->ent_top++];
    e->h = f->is_obj ? mix2(f->p.key_hash, vh) : vh;
    if (!h->text)
        return h->fail != PH_OK;
    e->off = f->p.off;
    e->len = h->text->len - f->p.off;
    e->klen = f->p.klen;
    return h->fail != PH_OK;
}

static int push(ph_snaphasher *h, frame *f, int is_obj)
{
    if (h->nfr + 1 >= MAX_FRAMES)
        return stop(h, PH_ERR_LIMIT, "nested too deep");
    frame *c = &h->fr[++h->nfr];
    c->ds = f->p.ds;
    c->is_obj = is_obj;
    c->set = !is_obj && (f->p.flags & SH_SET);
    c->rel = is_obj && (f->p.flags & SH_REL) && h->axes;
    c->q = f->p.q;
    c->ent_off = h->ent_top;
    c->txt_off = h->text ? h->text->len : 0;
    c->p.klen = 0;
    return 0;
}

/* Rewrites the closing container's children texts, joined in display order. */
static void rewrite(ph_snaphasher *h, const frame *c, entry *e, size_t n)
{
    ph_buf *t = h->text;
    ph_buf_reset(&h->tmp);
    if (t->len > c->txt_off &&
        ph_buf_add(&h->tmp, t->data + c->txt_off, t->len - c->txt_off) != 0) {
        stop(h, PH_ERR_MEMORY, NULL);
        return;
    }
    if (c->is_obj)
        sort_by_key(t->data, e, n);
    cut(t, c->txt_off);
    put(h, c->is_obj ? "{" : "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            put(h, ",", 1);
        put(h, h->tmp.data + (e[i].off - c->txt_off), e[i].len);
    }
    put(h, c->is_obj ? "}" : "]", 1);
}

static int on_close(ph_snaphasher *h)
{
    frame *c = &h->fr[h->nfr];
    size_t n = h->ent_top - c->ent_off;
    entry *e = h->ent + c->ent_off;
    if (c->is_obj || c->set)
        sort_by_hash(e, n);
    if (n > h->hs_size) {
        uint64_t *hs = realloc(h->hs, 2 * n * sizeof *hs);
        if (!hs)
            return stop(h, PH_ERR_MEMORY, NULL);
        h->hs = hs, h->hs_size = 2 * n;
    }
    for (size_t i = 0; i < n; i++)
        h->hs[i] = e[i].h;
    uint64_t ch = mix2(n ? XXH3_64bits(h->hs, n * sizeof *h->hs) : 0,
                       c->is_obj ? SEED_OBJ : c->set ? SEED_SET : SEED_ARR);
    if (h->text)
        rewrite(h, c, e, n);
    h->ent_top = c->ent_off;
    h->nfr--;
    return add_entry(h, &h->fr[h->nfr], ch);
}

static int axis_of(const ph_snaphasher *h, const char *k, size_t n)
{
    int a = n == 1 && *k >= 'x' && *k <= 'z' ? *k - 'x' + 1 : 0;
    return a && (h->axes >> (a - 1) & 1) ? a : 0;
}

static int on_key(ph_snaphasher *h, const ph_json_token *t)
{
    frame *f = &h->fr[h->nfr];
    pend *p = &f->p;
    const char *k = t->text ? t->text : "";
    p->key_hash = sh_hash_bytes(k, t->len, SH_SEED_KEY);
    if (describe(h, f, sh_symbol(h->r, k, t->len, p->key_hash)))
        return 1;
    p->axis = f->rel ? axis_of(h, k, t->len) : 0;
    if ((p->flags & SH_IGNORE) || !h->text)
        return 0;
    p->off = h->text->len;
    put_string(h, k, t->len);
    p->klen = h->text->len - p->off;
    put(h, ":", 1);
    return h->fail != PH_OK;
}

static int on_value(ph_snaphasher *h, const ph_json_token *t)
{
    frame *f = &h->fr[h->nfr];
    int open = t->kind == PH_JSON_BEGIN_OBJECT || t->kind == PH_JSON_BEGIN_ARRAY;
    if (!f->is_obj && h->nfr > 0) {
        if (describe(h, f, SYM_ELEM))
            return 1;
        f->p.axis = 0;
        f->p.off = h->text ? h->text->len : 0;
    }
    if (f->p.flags & SH_IGNORE)
        return h->skip = open, 0;
    if (open)
        return push(h, f, t->kind == PH_JSON_BEGIN_OBJECT);
    return add_entry(h, f, scalar_hash(h, t, &f->p));
}

static int on_token(void *ctx, const ph_json_token *t)
{
    ph_snaphasher *h = ctx;
    switch (t->kind) {
    case PH_JSON_KEY:
        return h->skip ? 0 : on_key(h, t);
    case PH_JSON_END_OBJECT:
    case PH_JSON_END_ARRAY:
        return h->skip ? (h->skip--, 0) : on_close(h);
    case PH_JSON_BEGIN_OBJECT:
    case PH_JSON_BEGIN_ARRAY:
        return h->skip ? (h->skip++, 0) : on_value(h, t);
    default:
        return h->skip ? 0 : on_value(h, t);
    }
}

/* ---- the anchor pass --------------------------------------------------------------- */

static int anchor_key(const ph_hash_rules *r, unsigned i, const char *k, size_t n)
{
    const sh_sym *s = &r->syms[r->anchor_sym[i] - SYM_FIRST_KEY];
    return s->len == n && memcmp(r->names.data + s->off, k, n) == 0;
}

/* Follows the anchor's keys down from the top-level object and reads its x, y, z; stops the
 * parse when the anchor object closes. am = anchor parts matched (we are inside them). */
static int on_anchor_token(void *ctx, const ph_json_token *t)
{
    ph_snaphasher *h = ctx;
    unsigned n = (unsigned)h->r->nanchor, d = t->depth, cand = h->acand, axis = h->aaxis;
    h->acand = h->aaxis = 0;
    if (t->kind == PH_JSON_KEY) {
        if (d == h->am + 1 && h->am < n)
            h->acand = anchor_key(h->r, h->am, t->text ? t->text : "", t->len);
        else if (d == n + 1 && h->am == n && t->len == 1 && *t->text >= 'x' && *t->text <= 'z')
            h->aaxis = (unsigned)(*t->text - 'x') + 1;
    } else if (t->kind == PH_JSON_BEGIN_OBJECT && cand && d == h->am + 1) {
        h->am++;
    } else if (t->kind == PH_JSON_END_OBJECT && h->am > 0 && d == h->am) {
        if (h->am-- == n)
            return 1;
    } else if (t->kind == PH_JSON_NUMBER && axis && !(h->axes >> (axis - 1) & 1)) {
        h->anchor[axis - 1] = number_value(h, t->text, t->len);
        h->axes |= 1u << (axis - 1);
    }
    return 0;
}

/* Malformed input is left for the main pass to report. */
static void find_anchor(ph_snaphasher *h, const char *json, size_t len)
{
    h->am = h->acand = h->aaxis = 0;
    ph_json_reset(h->scan);
    if (ph_json_feed(h->scan, json, len, NULL) == PH_JSON_OK)
        ph_json_finish(h->scan);
}

/* ---- running ----------------------------------------------------------------------- */

ph_snaphasher *ph_snaphasher_new(const ph_hash_rules *r)
{
    ph_json_config cfg = {0, PH_JSON_DEFAULT_MAX_DEPTH, 0};
    ph_snaphasher *h = r ? calloc(1, sizeof *h) : NULL;
    if (!h)
        return NULL;
    h->r = r;
    h->j = ph_json_new(&cfg, on_token, h);
    h->scan = ph_json_new(&cfg, on_anchor_token, h);
    ph_buf_init(&h->tmp, (size_t)-1 / 2);
    h->ent_size = h->hs_size = 256;
    h->ent = malloc(h->ent_size * sizeof *h->ent);
    h->hs = malloc(h->hs_size * sizeof *h->hs);
    if (!h->j || !h->scan || !h->ent || !h->hs || sh_dfa_init(&h->dfa, r) != 0) {
        ph_snaphasher_free(h);
        return NULL;
    }
    return h;
}

void ph_snaphasher_free(ph_snaphasher *h)
{
    if (!h)
        return;
    ph_json_free(h->j);
    ph_json_free(h->scan);
    ph_buf_free(&h->tmp);
    sh_dfa_free(&h->dfa);
    free(h->ent);
    free(h->hs);
    free(h);
}

/* Empty stacks, and the document frame whose pending value is the root. */
static int start(ph_snaphasher *h, ph_buf *canonical)
{
    h->text = canonical;
    if (h->dfa.version != h->r->version && sh_dfa_init(&h->dfa, h->r) != 0)
        return -1;
    memset(h->fr, 0, sizeof h->fr[0]);
    h->nfr = 0, h->ent_top = 0, h->skip = 0, h->fail = PH_OK, h->why = NULL, h->axes = 0;
    pend *p = &h->fr[0].p;
    p->off = h->fr[0].txt_off = canonical ? canonical->len : 0;
    p->flags = h->dfa.st[0].flags;
    if (p->flags & SH_QUANT)
        p->q = (qpick){1, h->dfa.st[0].spec, h->dfa.st[0].step};
    return 0;
}

static uint64_t failed(ph_snaphasher *h, ph_json_status st, size_t base, ph_error *err)
{
    uint64_t off = 0;
    const char *msg = st == PH_JSON_ERROR ? ph_json_error(h->j, &off) : NULL;
    if (h->text)
        cut(h->text, base);
    if (msg)
        ph_error_set(err, PH_ERR_JSON, "snapshot: invalid JSON at byte %llu: %s",
                     (unsigned long long)off, msg);
    else if (h->fail == PH_ERR_LIMIT)
        ph_error_set(err, PH_ERR_LIMIT, "snapshot hash: %s", h->why);
    else
        ph_error_set(err, PH_ERR_MEMORY, "snapshot hash: out of memory");
    return 0;
}

uint64_t ph_snaphasher_run(ph_snaphasher *h, const char *json, size_t len, ph_buf *canonical,
                           ph_error *err, int *ok)
{
    int dummy;
    ok = ok ? ok : &dummy;
    *ok = 0;
    if (!h || (!json && len)) {
        ph_error_set(err, PH_ERR_ARG, "snapshot hash: no hasher or no input");
        return 0;
    }
    size_t base = canonical ? canonical->len : 0;
    if (start(h, canonical) != 0)
        return failed(h, PH_JSON_STOPPED, base, err);
    if (h->r->nrel)
        find_anchor(h, json ? json : "", len);
    ph_json_reset(h->j);
    ph_json_status st = h->fail ? PH_JSON_STOPPED : ph_json_feed(h->j, json ? json : "", len, NULL);
    if (st == PH_JSON_OK)
        st = ph_json_finish(h->j);
    if (st != PH_JSON_OK || h->fail != PH_OK)
        return failed(h, st, base, err);
    uint64_t root = h->ent_top ? h->ent[0].h : H_NOTHING;
    *ok = 1;
    ph_error_clear(err);
    return mix2(root, ph_hash_rules_fingerprint(h->r));
}

uint64_t ph_snaphash(ph_hash_rules *r, const char *json, size_t len, ph_buf *canonical,
                     ph_error *err, int *ok)
{
    if (r && !r->own && !(r->own = ph_snaphasher_new(r))) {
        if (ok)
            *ok = 0;
        ph_error_set(err, PH_ERR_MEMORY, "snapshot hash: out of memory");
        return 0;
    }
    return ph_snaphasher_run(r ? r->own : NULL, json, len, canonical, err, ok);
}
