/* snaphash_rules — rule paths, the rule set and the path automaton of the snapshot hash
 * (see snaphash.h for the path syntax, snaphash_internal.h for the automaton).
 *
 * A path parses to segments (key, '*', '**', "[]"); keys become symbols, interned once per
 * rule set in an open-addressing table keyed by the same hash the hashing pass computes
 * for every key anyway, so looking a key up costs one probe. The DFA is the subset
 * construction over the rules' segments, built one transition at a time on demand.
 * Depends on buf, error, libxxhash. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "snaphash_internal.h"

#define NAMES_CAP (1u << 20)       /* bytes of all literal keys */
#define MAX_KEY 256                /* bytes of one key in a path */

/* Makes *pp hold at least `need` elements of `size` bytes (new ones zeroed). 0 or -1. */
static int grow(void *pp, size_t *have, size_t need, size_t size)
{
    void **p = pp;
    if (need <= *have)
        return 0;
    size_t n = *have ? *have : 16;
    while (n < need)
        n *= 2;
    char *q = realloc(*p, n * size);
    if (!q)
        return -1;
    memset(q + *have * size, 0, (n - *have) * size);
    *p = q, *have = n;
    return 0;
}

/* ---- symbols ----------------------------------------------------------------------- */

uint32_t sh_symbol(const ph_hash_rules *r, const char *key, size_t len, uint64_t hash)
{
    size_t mask = r->index_size - 1;
    if (!r->index_size)
        return SYM_OTHER;
    for (size_t i = hash & mask; r->index[i]; i = (i + 1) & mask) {
        const sh_sym *s = &r->syms[r->index[i] - SYM_FIRST_KEY];
        if (s->hash == hash && s->len == len && memcmp(r->names.data + s->off, key, len) == 0)
            return r->index[i];
    }
    return SYM_OTHER;
}

static int reindex(ph_hash_rules *r, size_t size)
{
    uint32_t *ix = calloc(size, sizeof *ix);
    if (!ix)
        return -1;
    for (size_t k = 0; k < r->nsyms; k++) {
        size_t i = r->syms[k].hash & (size - 1);
        while (ix[i])
            i = (i + 1) & (size - 1);
        ix[i] = (uint32_t)(k + SYM_FIRST_KEY);
    }
    free(r->index);
    r->index = ix, r->index_size = size;
    return 0;
}

/* The symbol of key[0..len), added when new (the index stays at most 1/4 full). 0, or -1
 * (out of memory, or NAMES_CAP). */
static int intern(ph_hash_rules *r, const char *key, size_t len, uint32_t *sym)
{
    uint64_t h = sh_hash_bytes(key, len, SH_SEED_KEY);
    if ((*sym = sh_symbol(r, key, len, h)) != SYM_OTHER)
        return 0;
    size_t off = r->names.len;
    if ((4 * (r->nsyms + 1) > r->index_size &&
         reindex(r, r->index_size ? 2 * r->index_size : 16)) ||
        grow(&r->syms, &r->syms_size, r->nsyms + 1, sizeof *r->syms) ||
        ph_buf_add(&r->names, key, len) != 0)
        return -1;
    r->syms[r->nsyms] = (sh_sym){(uint32_t)off, (uint32_t)len, h};
    *sym = (uint32_t)(r->nsyms++ + SYM_FIRST_KEY);
    size_t i = h & (r->index_size - 1);
    while (r->index[i])
        i = (i + 1) & (r->index_size - 1);
    r->index[i] = *sym;
    return 0;
}

/* ---- paths ------------------------------------------------------------------------- */

static int bad(ph_error *err, const char *path, size_t at, const char *what)
{
    return ph_error_set(err, PH_ERR_ARG, "hash rule path '%s': %s at byte %zu", path, what, at);
}

/* A key starting at p[*i], unescaped and interned. */
static int parse_key(ph_hash_rules *r, const char *p, size_t *i, sh_seg *s, ph_error *err)
{
    char key[MAX_KEY];
    size_t n = 0, at = *i;
    for (char c; (c = p[*i]) != '\0' && c != '.' && c != '['; (*i)++) {
        if (c == ']')
            return bad(err, p, *i, "stray ']'");
        if (c == '*')
            return bad(err, p, *i, "'*' inside a key (wildcards are whole parts: * or **)");
        if (c == '\\' && (!(c = p[++*i]) || !strchr(".[]*\\", c)))
            return bad(err, p, *i - 1, "'\\' must escape one of . [ ] * \\");
        if (n == MAX_KEY)
            return bad(err, p, at, "key longer than 256 bytes");
        key[n++] = c;
    }
    if (n == 0)
        return bad(err, p, at, "empty key");
    *s = (sh_seg){SEG_KEY, 0};
    if (intern(r, key, n, &s->sym) != 0)
        return ph_error_set(err, PH_ERR_MEMORY, "hash rules: out of memory (or more than %u "
                            "bytes of keys)", NAMES_CAP);
    return 0;
}

/* One part's head (key, '*' or '**') at p[*i]. */
static int parse_head(ph_hash_rules *r, const char *p, size_t *i, sh_seg *s, ph_error *err)
{
    size_t stars = 0;
    while (p[*i + stars] == '*')
        stars++;
    if (stars == 0)
        return parse_key(r, p, i, s, err);
    if (stars > 2)
        return bad(err, p, *i, "'***' (use * or **)");
    *i += stars;
    if (p[*i] != '\0' && p[*i] != '.' && p[*i] != '[')
        return bad(err, p, *i, "'*' inside a key (wildcards are whole parts: * or **)");
    *s = (sh_seg){stars == 1 ? SEG_ANY : SEG_DEEP, 0};
    return 0;
}

/* Parses p into out[] (at most PH_HASH_MAX_SEGS segments): their number, or -1. */
static int parse_path(ph_hash_rules *r, const char *p, sh_seg *out, ph_error *err)
{
    size_t i = 0;
    int n = 0;
    if (*p == '\0')
        return ph_error_set(err, PH_ERR_ARG, "hash rule path is empty");
    for (;;) {
        if (p[i] == '[' && i > 0)
            return bad(err, p, i, "\"[]\" must follow a key");
        if (n == PH_HASH_MAX_SEGS)
            return bad(err, p, i, "more than 32 parts");
        if (p[i] != '[' && parse_head(r, p, &i, &out[n++], err))
            return -1;
        for (; p[i] == '['; i += 2) {
            if (p[i + 1] != ']')
                return bad(err, p, i, "'[' not followed by ']'");
            if (n == PH_HASH_MAX_SEGS)
                return bad(err, p, i, "more than 32 parts");
            out[n++] = (sh_seg){SEG_ELEM, 0};
        }
        if (p[i] == '\0')
            return n;
        if (p[i] != '.')
            return bad(err, p, i, p[i] == ']' ? "stray ']'" : "expected '.' or \"[]\"");
        i++;
    }
}

/* ---- the rule set ------------------------------------------------------------------ */

ph_hash_rules *ph_hash_rules_new(void)
{
    ph_hash_rules *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    ph_buf_init(&r->names, NAMES_CAP);
    if (ph_hash_rules_anchor(r, "me.pos", NULL) != 0) {
        ph_hash_rules_free(r);
        return NULL;
    }
    return r;
}

void ph_hash_rules_free(ph_hash_rules *r)
{
    if (!r)
        return;
    ph_snaphasher_free(r->own);
    ph_buf_free(&r->names);
    free(r->rules);
    free(r->segs);
    free(r->syms);
    free(r->index);
    free(r);
}

/* Appends the parsed rule. */
static int store_rule(ph_hash_rules *r, sh_seg *tmp, int n, ph_hash_kind kind, double step)
{
    if (grow(&r->rules, &r->rules_size, r->nrules + 1, sizeof *r->rules) ||
        grow(&r->segs, &r->segs_size, r->nsegs + (size_t)n + 1, sizeof *r->segs))
        return -1;
    int spec = 0;
    for (int i = 0; i < n; i++)
        spec += tmp[i].kind == SEG_KEY || tmp[i].kind == SEG_ELEM;
    tmp[n] = (sh_seg){SEG_END, (uint32_t)r->nrules};
    memcpy(r->segs + r->nsegs, tmp, ((size_t)n + 1) * sizeof *tmp);
    r->rules[r->nrules++] = (sh_rule){kind, step, spec, (uint32_t)r->nsegs};
    r->nsegs += (size_t)n + 1;
    r->nrel += kind == PH_HASH_RELATIVE;
    r->version++;
    return 0;
}

/* A rejected rule may leave new symbols behind: harmless (no rule uses them). */
int ph_hash_rules_add(ph_hash_rules *r, const char *path, ph_hash_kind kind, double step,
                      ph_error *err)
{
    sh_seg tmp[PH_HASH_MAX_SEGS + 1];
    if (!r || !path)
        return ph_error_set(err, PH_ERR_ARG, "hash rule: no rules or no path");
    if ((unsigned)kind > PH_HASH_RELATIVE)
        return ph_error_set(err, PH_ERR_ARG, "hash rule '%s': unknown kind %d", path, (int)kind);
    if (kind == PH_HASH_QUANTISE && !(step >= 0 && isfinite(step)))
        return ph_error_set(err, PH_ERR_ARG, "hash rule '%s': the step must be a finite "
                            "number >= 0 (0 = exact), not %g", path, step);
    if (r->nrules >= PH_HASH_MAX_RULES)
        return ph_error_set(err, PH_ERR_LIMIT, "hash rules: more than %d", PH_HASH_MAX_RULES);
    int n = parse_path(r, path, tmp, err);
    step = kind == PH_HASH_QUANTISE ? step : 0;
    if (n < 0)
        return -1;
    if (store_rule(r, tmp, n, kind, step) != 0)
        return ph_error_set(err, PH_ERR_MEMORY, "hash rules: out of memory");
    uint64_t bits;
    memcpy(&bits, &step, sizeof bits);
    r->sum += XXH3_64bits_withSeed(path, strlen(path), bits * 8 + (uint64_t)kind);
    return 0;
}

int ph_hash_rules_anchor(ph_hash_rules *r, const char *path, ph_error *err)
{
    sh_seg tmp[PH_HASH_MAX_SEGS + 1];
    if (!r || !path)
        return ph_error_set(err, PH_ERR_ARG, "hash rules anchor: no rules or no path");
    int n = parse_path(r, path, tmp, err), keys = 0;
    while (keys < n && tmp[keys].kind == SEG_KEY)
        keys++;
    if (n >= 0 && keys != n)
        n = ph_error_set(err, PH_ERR_ARG, "hash rules anchor '%s': must be a plain dotted "
                         "path of keys (no *, ** or [])", path);
    if (n < 0)
        return -1;
    for (int i = 0; i < n; i++)
        r->anchor_sym[i] = tmp[i].sym;
    r->nanchor = n;
    r->anchor_hash = XXH3_64bits(path, strlen(path));
    r->version++;
    return 0;
}

ph_hash_rules *ph_hash_rules_from(const ph_hash_rule *list, size_t n, const char *anchor,
                                  ph_error *err)
{
    ph_hash_rules *r = ph_hash_rules_new();
    if (!r) {
        ph_error_set(err, PH_ERR_MEMORY, "hash rules: out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (ph_hash_rules_add(r, list[i].path, list[i].kind, list[i].step, err) != 0) {
            ph_error_prefix(err, "hash rule %zu", i + 1);
            ph_hash_rules_free(r);
            return NULL;
        }
    if (anchor && ph_hash_rules_anchor(r, anchor, err) != 0) {
        ph_hash_rules_free(r);
        return NULL;
    }
    return r;
}

uint64_t ph_hash_rules_fingerprint(const ph_hash_rules *r)
{
    uint64_t parts[3] = {r->sum, (uint64_t)r->nrules, r->nrel ? r->anchor_hash : 0};
    return XXH3_64bits(parts, sizeof parts);
}

/* ---- the DFA ----------------------------------------------------------------------- */

/* Adds NFA state x, and through '**' the states it reaches without a step, to d->tmp. */
static uint32_t add_state(sh_dfa *d, uint32_t k, uint32_t x)
{
    for (;; x++) {
        if (d->mark[x] == d->stamp)
            return k;
        d->mark[x] = d->stamp;
        d->tmp[k++] = x;
        if (d->r->segs[x].kind != SEG_DEEP)
            return k;
    }
}

static void new_set(sh_dfa *d)
{
    if (++d->stamp == 0) {
        memset(d->mark, 0, d->mark_size * sizeof *d->mark);
        d->stamp = 1;
    }
}

static int by_value(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* What the rules ending in this set do to a value at its path. Of several quantise rules,
 * more literal parts win, then the finer step. */
static void settle(const ph_hash_rules *r, sh_dstate *s, const uint32_t *set)
{
    s->flags = 0, s->spec = 0, s->step = 0;
    for (uint32_t i = 0; i < s->set_n; i++) {
        const sh_seg *g = &r->segs[set[i]];
        const sh_rule *ru = g->kind == SEG_END ? &r->rules[g->sym] : NULL;
        if (!ru)
            continue;
        if (ru->kind == PH_HASH_IGNORE)
            s->flags |= SH_IGNORE;
        else if (ru->kind == PH_HASH_SET)
            s->flags |= SH_SET;
        else if (ru->kind == PH_HASH_RELATIVE)
            s->flags |= SH_REL;
        else if (!(s->flags & SH_QUANT) || ru->spec > s->spec ||
                 (ru->spec == s->spec && ru->step < s->step))
            s->flags |= SH_QUANT, s->spec = ru->spec, s->step = ru->step;
    }
}

/* The state whose set is d->tmp[0..k) (sorted here), made when new. */
static uint32_t intern_set(sh_dfa *d, uint32_t k)
{
    qsort(d->tmp, k, sizeof *d->tmp, by_value);
    for (size_t i = 0; i < d->n; i++)
        if (d->st[i].set_n == k &&
            (k == 0 || !memcmp(d->sets + d->st[i].set_off, d->tmp, k * sizeof *d->tmp)))
            return (uint32_t)i;
    if (d->n >= SH_MAX_DSTATES ||
        grow(&d->st, &d->size, d->n + 1, sizeof *d->st) ||
        grow(&d->sets, &d->sets_size, d->sets_len + k, sizeof *d->sets) ||
        grow(&d->next, &d->next_size, (d->n + 1) * d->nsym, sizeof *d->next))
        return SH_NO_STATE;
    sh_dstate *s = &d->st[d->n];
    s->set_off = (uint32_t)d->sets_len, s->set_n = k;
    if (k)
        memcpy(d->sets + d->sets_len, d->tmp, k * sizeof *d->tmp);
    d->sets_len += k;
    settle(d->r, s, d->tmp);
    memset(d->next + d->n * d->nsym, 0xff, d->nsym * sizeof *d->next);
    return (uint32_t)d->n++;
}

int sh_dfa_init(sh_dfa *d, const ph_hash_rules *r)
{
    d->r = r, d->version = r->version;
    d->nsym = SYM_FIRST_KEY + (uint32_t)r->nsyms;
    d->n = 0, d->sets_len = 0;
    if (grow(&d->mark, &d->mark_size, r->nsegs + 1, sizeof *d->mark) ||
        grow(&d->tmp, &d->tmp_size, r->nsegs + 1, sizeof *d->tmp))
        return -1;
    new_set(d);
    uint32_t k = 0;
    for (size_t i = 0; i < r->nrules; i++)
        k = add_state(d, k, r->rules[i].first);
    return intern_set(d, k) == SH_NO_STATE ? -1 : 0;
}

void sh_dfa_free(sh_dfa *d)
{
    free(d->st);
    free(d->sets);
    free(d->next);
    free(d->mark);
    free(d->tmp);
    memset(d, 0, sizeof *d);
}

uint32_t sh_dfa_build(sh_dfa *d, uint32_t state, uint32_t sym)
{
    const ph_hash_rules *r = d->r;
    const sh_dstate *s = &d->st[state];
    uint32_t k = 0;
    new_set(d);
    for (uint32_t i = 0; i < s->set_n; i++) {
        uint32_t x = d->sets[s->set_off + i];
        const sh_seg *g = &r->segs[x];
        if (g->kind == SEG_DEEP)
            k = add_state(d, k, x);
        else if (sym == SYM_ELEM ? g->kind == SEG_ELEM
                                 : g->kind == SEG_ANY || (g->kind == SEG_KEY && g->sym == sym))
            k = add_state(d, k, x + 1);
    }
    uint32_t t = intern_set(d, k);
    if (t != SH_NO_STATE)
        d->next[(size_t)state * d->nsym + sym] = t;
    return t;
}
