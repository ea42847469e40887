/* scenario_bench — plan-cache hit ratios on the scenario streams, and the cost of a hit.
 *
 *   scenario_bench SOURCE_ROOT   (the script tree under it, and its
 *                                 examples/scenarios/{patrol,skirmish,crowd}.ndjson)
 *
 * Each snapshot line, in file order, is one request, looked up in a ph_cache of N entries.
 * A hit is checked step by step against the CURRENT snapshot with ph_check_step (registry,
 * snapshot, the policy's limits and validate hook: the host's check before it delivers a
 * cached plan); a hit with a dropped step is stale: counted, removed, handled as a miss. A
 * miss stores the plan of the real heuristic tier (ph_gen_heuristic, standing in for the
 * model; deterministic, so line i's plan is made once and reused by every run). Keys are the
 * snapshot hash alone (the host also folds in template, tools, model and script hash, all
 * constant here): the perceptual hash under rules mirroring policies/cache.lua, XXH3 of the
 * raw bytes (an engine keying on the whole prompt, which holds t and last_seen), and the
 * defaults with one knob changed. Then the cost of a valid hit (hash + ph_cache_get +
 * ph_snapview_new + ph_check_step over the steps; medians of per-call CPU time,
 * CLOCK_PROCESS_CPUTIME_ID), cache bytes per plan, and the hash of the line nearest 1 KB
 * beside XXH3 of its bytes. Markdown on stdout. Depends on libplanhost and libxxhash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "buf.h"
#include "cache.h"
#include "jsonstream.h"
#include "request.h"
#include "script.h"
#include "snaphash.h"
#include "snapview.h"
#include "tree.h"
#include "validate.h"

#define MAX_STEPS 64       /* steps read from one cached plan */
#define TIMED_HITS 200     /* snapshots timed per scenario (evenly spread) */
#define REPS 16            /* timed calls per part and snapshot (ph_cache_get: 64 each) */
#define HASH_RUNS 15       /* samples of the 1 KB hash figure, HASH_SAMPLE_S each */
#define HASH_SAMPLE_S 0.02
#define NSCEN 3
#define NCAP 4

static const char *const SCENARIOS[NSCEN] = {"patrol", "skirmish", "crowd"};
static const size_t CAPACITIES[NCAP] = {100, 250, 500, 1000};

/* Mirrors policies/cache.lua's hash_rules (ignore, quantise, sets; relative is empty). A
 * change there should be made here too: the output says whether the two still match. */
static const ph_hash_rule BASE_RULES[] = {
    {"t", PH_HASH_IGNORE, 0}, {"agent", PH_HASH_IGNORE, 0}, {"**.last_seen", PH_HASH_IGNORE, 0},
    {"me.pos", PH_HASH_QUANTISE, 2}, {"player.pos", PH_HASH_QUANTISE, 4},
    {"enemies[].pos", PH_HASH_QUANTISE, 2}, {"pois[].pos", PH_HASH_QUANTISE, 2},
    {"me.hp", PH_HASH_QUANTISE, 20}, {"player.hp", PH_HASH_QUANTISE, 25},
    {"enemies[].hp", PH_HASH_QUANTISE, 25}, {"me.ammo", PH_HASH_QUANTISE, 10},
    {"me.morale", PH_HASH_QUANTISE, 0.25}, {"me.cooldowns", PH_HASH_QUANTISE, 5},
    {"enemies", PH_HASH_SET, 0}, {"pois", PH_HASH_SET, 0}, {"obstacles", PH_HASH_SET, 0},
};
#define NBASE (sizeof BASE_RULES / sizeof BASE_RULES[0])

static const char *const POS_PATHS[] = {"me.pos", "player.pos", "enemies[].pos", "pois[].pos", NULL};
static const char *const HP_PATHS[] = {"me.hp", "player.hp", "enemies[].hp", NULL};

typedef struct line {
    const char *json;      /* the snapshot, len bytes, in its scenario's text */
    size_t len;
    char *plan;            /* the heuristic's plan for it (plan_len bytes), made on first need */
    size_t plan_len;
} line;

static volatile uint64_t sink;   /* results land here so the compiler keeps the work */

typedef struct scenario {
    const char *name;
    char *text;            /* the whole file; lines[0..n) point into it */
    line *lines;
    int n;
} scenario;

typedef struct keyspec { char label[80]; ph_hash_rules *rules; /* NULL: XXH3 of the bytes */ } keyspec;

typedef struct steps {     /* byte spans of the objects in a plan's "steps" array */
    size_t off[MAX_STEPS], len[MAX_STEPS];
    int n, armed, inside;
    size_t start;
} steps;

typedef struct bench {
    ph_gen *g;
    ph_json *tok;          /* finds the steps of cached plans, into st */
    steps st;
    long fresh_invalid;    /* heuristic plans refused against their own snapshot */
    double clock_ns;       /* what one cpu_ns() costs */
} bench;

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "scenario_bench: %s: %s\n", what, detail);
    exit(1);
}

static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double clock_cost_ns(void)
{
    double t0 = cpu_ns();
    for (int i = 0; i < 1000; i++)
        sink ^= (uint64_t)cpu_ns();
    return (cpu_ns() - t0) / 1000;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n ? v[n / 2] : 0;
}

/* ---- inputs: scenarios, the script generation, keys ----------------------------------- */

static void load_scenario(scenario *sc, const char *root, const char *name)
{
    char path[4096];
    ph_error err;
    size_t len;
    snprintf(path, sizeof path, "%s/examples/scenarios/%s.ndjson", root, name);
    if (!(sc->text = ph_read_file(path, 64u << 20, &len, &err)))
        die(path, err.message);
    size_t max = len / 2 + 1;
    sc->name = name;
    sc->lines = calloc(max, sizeof *sc->lines);
    sc->n = 0;
    for (char *p = sc->text, *end = p + len, *nl; p < end; p = nl + 1) {
        if (!(nl = memchr(p, '\n', (size_t)(end - p))))
            nl = end;
        if (nl > p)
            sc->lines[sc->n++] = (line){p, (size_t)(nl - p), NULL, 0};
    }
}

/* The defaults, with every path of `paths` quantised by `step` instead (paths NULL: as is). */
static ph_hash_rules *rules_with(const char *const *paths, double step)
{
    ph_hash_rule r[NBASE];
    memcpy(r, BASE_RULES, sizeof r);
    for (size_t i = 0; paths && i < NBASE; i++)
        for (const char *const *p = paths; *p; p++)
            if (strcmp(r[i].path, *p) == 0)
                r[i].step = step;
    ph_error err;
    ph_hash_rules *rules = ph_hash_rules_from(r, NBASE, NULL, &err);
    if (!rules)
        die("hash rules", err.message);
    return rules;
}

static int make_keys(keyspec *k)
{
    static const double steps_of[2][3] = {{1, 2, 4}, {10, 25, 50}};
    int n = 0;
    k[n++] = (keyspec){"perceptual: policies/cache.lua defaults", rules_with(NULL, 0)};
    k[n++] = (keyspec){"exact: XXH3 of the raw snapshot bytes (whole-prompt key)", NULL};
    for (int knob = 0; knob < 2; knob++)
        for (int i = 0; i < 3; i++, n++) {
            snprintf(k[n].label, sizeof k[n].label, "defaults, every %s step %g",
                     knob ? "hp" : "position", steps_of[knob][i]);
            k[n].rules = rules_with(knob ? HP_PATHS : POS_PATHS, steps_of[knob][i]);
        }
    return n;
}

static uint64_t key_of(const keyspec *k, const line *l)
{
    if (!k->rules)
        return XXH3_64bits(l->json, l->len);
    ph_error err;
    int ok;
    uint64_t h = ph_snaphash(k->rules, l->json, l->len, NULL, &err, &ok);
    if (!ok)
        die("snapshot hash", err.message);
    return h;
}

/* ---- the check on a hit, the plan on a miss ------------------------------------------- */

static int on_token(void *ud, const ph_json_token *t)
{
    steps *s = ud;
    if (t->depth == 1 && t->kind == PH_JSON_KEY)
        s->armed = t->len == 5 && memcmp(t->text, "steps", 5) == 0;
    else if (t->depth == 1 && (t->kind == PH_JSON_BEGIN_ARRAY || t->kind == PH_JSON_END_ARRAY))
        s->inside = t->kind == PH_JSON_BEGIN_ARRAY && s->armed;
    else if (s->inside && t->depth == 2 && t->kind == PH_JSON_BEGIN_OBJECT)
        s->start = (size_t)t->offset;
    else if (s->inside && t->depth == 2 && t->kind == PH_JSON_END_OBJECT && s->n < MAX_STEPS) {
        s->off[s->n] = s->start;
        s->len[s->n++] = (size_t)t->end - s->start;
    }
    return 0;
}

/* Finds the step objects of plan[0..len) into b->st; returns how many, -1 when not JSON. */
static int find_steps(bench *b, const char *plan, size_t len)
{
    memset(&b->st, 0, sizeof b->st);
    ph_json_reset(b->tok);
    if (ph_json_feed(b->tok, plan, len, NULL) != PH_JSON_OK || ph_json_finish(b->tok) != PH_JSON_OK)
        return -1;
    return b->st.n;
}

/* 1 when every step b->st found in plan stands against the snapshot; c_only: the C
 * validator alone (ph_validate_step), without the policy's Lua validate hook. */
static int check_steps(bench *b, const ph_snapview *v, const line *l, const char *plan, int c_only)
{
    char reason[PH_VALIDATE_REASON];
    ph_error err;
    for (int i = 0; i < b->st.n; i++) {
        const char *step = plan + b->st.off[i];
        int ok = c_only ? ph_validate_step(ph_gen_registry(b->g), NULL, 0, v, &ph_gen_policy(b->g)->limits,
                                           step, b->st.len[i], reason, sizeof reason) == 0
                        : ph_check_step(b->g, NULL, 0, v, l->json, l->len, step, b->st.len[i], reason,
                                        sizeof reason, &err);
        if (ok < 0)
            die("ph_check_step", reason);
        if (ok == 0)
            return 0;
    }
    return b->st.n > 0;
}

static int plan_valid(bench *b, const line *l, const char *plan, size_t len)
{
    ph_error err;
    ph_snapview *v = ph_snapview_new(l->json, l->len, &err);
    if (!v)
        die("snapview", err.message);
    int ok = find_steps(b, plan, len) > 0 && check_steps(b, v, l, plan, 0);
    ph_snapview_free(v);
    return ok;
}

/* The heuristic's plan for l (made once, and checked once against its own snapshot). */
static void make_plan(bench *b, line *l)
{
    ph_buf out;
    ph_error err;
    ph_buf_init(&out, 1u << 20);
    if (ph_gen_heuristic(b->g, l->json, l->len, NULL, &out, &err) != 0)
        die("heuristic", err.message);
    l->plan_len = out.len;
    l->plan = ph_buf_take(&out);
    b->fresh_invalid += !plan_valid(b, l, l->plan, l->plan_len);
}

/* ---- a stream through a cache ---------------------------------------------------------- */

typedef struct tally { long hits, stale; ph_cache_stats st; } tally;

static ph_cache *replay(bench *b, scenario *sc, const keyspec *k, size_t cap, tally *t)
{
    ph_cache_config cfg = {.max_entries = cap, .max_bytes = 64u << 20};
    ph_cache *c = ph_cache_new(&cfg);
    if (!c)
        die("cache", "out of memory");
    memset(t, 0, sizeof *t);
    for (int i = 0; i < sc->n; i++) {
        line *l = &sc->lines[i];
        uint64_t key = key_of(k, l);
        ph_cache_value v;
        if (ph_cache_get(c, key, (uint64_t)i, &v)) {
            t->hits++;
            if (plan_valid(b, l, v.plan, v.plan_len))
                continue;
            t->stale++;
            ph_cache_count_stale(c);
            ph_cache_remove(c, key);
        }
        if (!l->plan)
            make_plan(b, l);
        ph_cache_put(c, key, ph_gen_hash(b->g), l->plan, l->plan_len, "heuristic", "heuristic", (uint64_t)i);
    }
    ph_cache_stats_get(c, &t->st);
    return c;
}

static void ratio_table(bench *b, scenario *sc, const keyspec *keys, int nkeys)
{
    size_t bytes = 0;
    for (int i = 0; i < sc->n; i++)
        bytes += sc->lines[i].len;
    printf("\n### %s.ndjson: %d requests, %.0f bytes per snapshot on average\n\n| key |", sc->name,
           sc->n, (double)bytes / sc->n);
    for (int c = 0; c < NCAP; c++)
        printf(" %zu entries |", CAPACITIES[c]);
    printf(" unbounded: distinct keys (ceiling) |\n|---|---|---|---|---|---|\n");
    for (int k = 0; k < nkeys; k++) {
        printf("| %s |", keys[k].label);
        for (int c = 0; c < NCAP; c++) {
            tally t;
            ph_cache_free(replay(b, sc, &keys[k], CAPACITIES[c], &t));
            printf(" %.1f%% (%ld hits, %ld stale) |", 100.0 * (double)(t.hits - t.stale) / sc->n,
                   t.hits, t.stale);
        }
        tally t;   /* capacity = requests: nothing is evicted, each distinct key stays */
        ph_cache_free(replay(b, sc, &keys[k], (size_t)sc->n, &t));
        printf(" %zu (%.1f%%) |\n", t.st.entries, 100.0 * (double)(sc->n - (long)t.st.entries) / sc->n);
    }
}

/* ---- the cost of a hit: one job per component, and the whole path ---------------------- */

typedef struct hitctx {
    bench *b;
    const keyspec *k;
    ph_cache *c;
    const line *l;         /* the snapshot, a valid hit in c under key */
    uint64_t key;
    char *plan;            /* a copy of the cached plan, plan_len bytes */
    size_t plan_len;
    ph_snapview *view;     /* of l */
} hitctx;

enum { J_HASH, J_GET, J_VIEW, J_CHECK, J_CHECK_C, J_TOTAL, NJOBS };

/* One call of one part of the hit path (J_GET: 64 calls), or of the whole (J_TOTAL:
 * snapshot in, every step of the cached plan checked). */
static void job(hitctx *h, int j)
{
    ph_cache_value v;
    switch (j) {
    case J_HASH: sink ^= key_of(h->k, h->l); break;
    case J_GET:
        for (int i = 0; i < 64; i++)
            sink ^= (uint64_t)ph_cache_get(h->c, h->key, 0, &v);
        break;
    case J_VIEW: ph_snapview_free(ph_snapview_new(h->l->json, h->l->len, NULL)); break;
    case J_CHECK:
    case J_CHECK_C:
        find_steps(h->b, h->plan, h->plan_len);
        sink ^= (uint64_t)check_steps(h->b, h->view, h->l, h->plan, j == J_CHECK_C);
        break;
    case J_TOTAL:
        if (!ph_cache_get(h->c, key_of(h->k, h->l), 0, &v))
            die("hit path", "the key is gone");
        ph_snapview *view = ph_snapview_new(h->l->json, h->l->len, NULL);
        find_steps(h->b, v.plan, v.plan_len);
        sink ^= (uint64_t)check_steps(h->b, view, h->l, v.plan, 0);
        ph_snapview_free(view);
        break;
    }
}

/* The generation keeps the last snapshot its Lua hooks decoded; hooking another one makes the
 * next check decode its snapshot again, as a new request's does. */
static void forget_snapshot(bench *b)
{
    char reason[PH_VALIDATE_REASON];
    ph_error err;
    ph_gen_validate_hook(b->g, "{\"act\":\"Wait\"}", 14, "{}", 2, reason, sizeof reason, &err);
}

/* Mean of REPS timed calls, each on a snapshot the hooks have not decoded yet, less the
 * cost of reading the clock. */
static double job_us(hitctx *h, int j)
{
    double sum = 0;
    for (int i = 0; i < REPS; i++) {
        forget_snapshot(h->b);
        double t0 = cpu_ns();
        job(h, j);
        sum += cpu_ns() - t0 - h->b->clock_ns;
    }
    return sum / REPS / (j == J_GET ? 64 : 1) / 1e3;
}

/* Fills a cache with the stream, then times up to TIMED_HITS of its snapshots that are
 * valid hits in it (evenly spread over the stream). */
static void hit_costs(bench *b, scenario *sc, const keyspec *k)
{
    static double t[NJOBS][TIMED_HITS];
    double m[NJOBS];
    int n = 0, stride = sc->n / TIMED_HITS + 1;
    long nsteps = 0;
    tally ta;
    hitctx h = {.b = b, .k = k, .c = replay(b, sc, k, 1000, &ta)};
    for (int i = 0; i < sc->n && n < TIMED_HITS; i += stride) {
        ph_cache_value v;
        h.l = &sc->lines[i];
        h.key = key_of(k, h.l);
        if (!ph_cache_get(h.c, h.key, 0, &v) || !plan_valid(b, h.l, v.plan, v.plan_len))
            continue;
        h.plan = strndup(v.plan, v.plan_len);
        h.plan_len = v.plan_len;
        h.view = ph_snapview_new(h.l->json, h.l->len, NULL);
        for (int j = 0; j < NJOBS; j++)
            t[j][n] = job_us(&h, j);
        nsteps += b->st.n;
        n++;
        ph_snapview_free(h.view);
        free(h.plan);
    }
    for (int j = 0; j < NJOBS; j++)
        m[j] = median(t[j], n);
    double plans = ta.st.entries ? (double)ta.st.entries : 1;
    printf("| %s | %d | %.2f | %.2f | %.3f | %.2f | %.2f | %.2f | %.2f | %zu | %.0f / %.0f |\n", sc->name,
           n, n ? (double)nsteps / n : 0, m[0], m[1], m[2], m[3], m[4], m[5], ta.st.entries,
           (double)ta.st.bytes / plans, (double)ta.st.memory / plans);
    ph_cache_free(h.c);
}

/* ---- the hash of the snapshot nearest 1 KB --------------------------------------------- */

static double hash_ns(const keyspec *k, const line *l)
{
    double s[HASH_RUNS];
    for (int r = 0; r < HASH_RUNS; r++) {
        long n = 0;
        double t0 = cpu_ns(), t1;
        do {
            for (int i = 0; i < 256; i++)
                sink ^= key_of(k, l);
            n += 256;
        } while ((t1 = cpu_ns()) - t0 < HASH_SAMPLE_S * 1e9);
        s[r] = (t1 - t0) / (double)n;
    }
    return median(s, HASH_RUNS);
}

static void hash_figure(const scenario *sc, const keyspec *perceptual, const keyspec *exact)
{
    int bs = 0, bi = 0;
    for (int s = 0; s < NSCEN; s++)
        for (int i = 0; i < sc[s].n; i++)
            if (llabs((long long)sc[s].lines[i].len - 1024) < llabs((long long)sc[bs].lines[bi].len - 1024))
                bs = s, bi = i;
    const line *l = &sc[bs].lines[bi];
    printf("| %s.ndjson line %d | %zu | %.0f | %.0f |\n", sc[bs].name, bi + 1, l->len,
           hash_ns(perceptual, l), hash_ns(exact, l));
}

/* ---- main ------------------------------------------------------------------------------ */

static void print_intro(void)
{
    printf("Snapshots in file order, one request each. A hit counts only when every step of the cached\n"
           "plan passes ph_check_step against the current snapshot; else it is stale (removed, re-planned).\n"
           "Misses are planned by the real heuristic tier (standing in for the model) and cached. Cells:\n"
           "valid hits / requests (hits found, stale among them). Ceiling: 1 - distinct keys / requests.\n"
           "Position knob: me, player, enemies[], pois[] .pos (defaults 2, player 4); hp knob: me, player,\n"
           "enemies[] .hp (defaults 20 for me, 25 the others).\n");
}

int main(int argc, char **argv)
{
    static bench b;
    static scenario sc[NSCEN];
    keyspec keys[8];
    if (argc != 2)
        return fprintf(stderr, "usage: scenario_bench SOURCE_ROOT\n"), 2;
    ph_tree tree;
    ph_error err;
    if (ph_tree_read(argv[1], PH_MAX_SCRIPT_FILE, &tree, &err) != 0 || !(b.g = ph_gen_load(&tree, 1, &err)))
        die("script generation", err.message);
    if (!(b.tok = ph_json_new(NULL, on_token, &b.st)))
        die("tokenizer", "out of memory");
    for (int i = 0; i < NSCEN; i++)
        load_scenario(&sc[i], argv[1], SCENARIOS[i]);
    b.clock_ns = clock_cost_ns();
    int nkeys = make_keys(keys);
    print_intro();
    ph_hash_rules *policy = ph_gen_hash_rules(b.g);   /* what the host compiled from the file */
    int same = policy && ph_hash_rules_fingerprint(policy) == ph_hash_rules_fingerprint(keys[0].rules);
    printf("\nPerceptual rules: BASE_RULES in C %s policies/cache.lua's hash_rules as the host compiles them%s.\n",
           same ? "match" : "**do not match**", same ? "" : " (update scenario_bench.c)");
    for (int i = 0; i < NSCEN; i++)
        ratio_table(&b, &sc[i], keys, nkeys);
    printf("\nFresh heuristic plans refused against their own snapshot: %ld (expected 0).\n", b.fresh_invalid);
    printf("\n### Cost of a valid hit (perceptual key, 1000 entries; median us per call), memory per plan\n\n"
           "| scenario | snapshots timed | steps per plan | snapshot hash | ph_cache_get | ph_snapview_new "
           "| ph_check_step over the steps | of which C only (ph_validate_step) | whole hit path "
           "| plans held | bytes per plan: charged / all the cache holds |\n"
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < NSCEN; i++)
        hit_costs(&b, &sc[i], &keys[0]);
    printf("\nSnapshots timed: up to %d per stream, each a valid hit in the cache the stream filled; every\n"
           "timed call sees a snapshot the Lua hook has not decoded yet; ph_cache_get: one key (hot). The\n"
           "steps columns include finding the steps in the plan (one tokenizer pass); ph_check_step minus\n"
           "the C-only column is policies/validate.lua's hook. Bytes: ph_cache stats bytes (charged to\n"
           "the cap) and memory (+ buckets), per plan.\n"
           "Budgets (DESIGN.md): <= 10 us for a cache hit, JSON in, validated plan out; <= 2048 bytes per\n"
           "cached plan.\n", TIMED_HITS);
    printf("\n### Snapshot hash of the line nearest 1 KB (median ns per call)\n\n"
           "| snapshot | bytes | perceptual hash (defaults) | XXH3 of the raw bytes (peer) |\n|---|---:|---:|---:|\n");
    hash_figure(sc, &keys[0], &keys[1]);
    printf("\nBudget (DESIGN.md): <= 2 us for a 1 KB snapshot.\n");
    return 0;
}
