/* metrics — counters and latency histograms per label set, rendered as Prometheus text.
 * See metrics.h for the families and the contract.
 *
 * Labelled series live in one array of at most PH_METRICS_MAX_SERIES (one allocation per
 * series: header and label text), found through an open-addressing table of twice that many
 * slots keyed by a hash of family and label values, and chained per family in first-seen
 * order for rendering. The unlabelled counters (submitted, reloads, dropped) are plain fields
 * and never count against the cap. Label values are normalised before lookup and storage:
 * cut to PH_METRICS_MAX_LABEL bytes at a character boundary, each byte of an invalid UTF-8
 * sequence replaced by '?' (a scrape with invalid UTF-8 is rejected whole). Durations are
 * kept in milliseconds and written in seconds. Depends on libc, buf and cache.h. */
#include "metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LABELS 4
#define NBUCKETS 11  /* finite bounds; +Inf is the count */
#define NSLOTS (2 * PH_METRICS_MAX_SERIES)

enum { F_PLANS, F_FALLBACKS, F_FIRST_STEP, F_PLAN_SECONDS, F_PROMPT, NFAMILIES };

typedef struct family {
    const char *name, *help;
    int histogram;
    const char *keys[MAX_LABELS];
} family;

static const family FAMILIES[NFAMILIES] = {
    {"planhost_plans_total", "Plans delivered, by tier, source, cache result and arm.", 0,
     {"tier", "source", "cache", "arm"}},
    {"planhost_fallbacks_total", "Fallbacks from one plan source to the next, by reason.", 0,
     {"from", "reason"}},
    {"planhost_first_step_seconds", "Submission to the first plan step, per tier and source.", 1, {"tier", "source"}},
    {"planhost_plan_seconds", "Submission to the plan, per tier and source.", 1, {"tier", "source"}},
    {"planhost_prompt_chars_total", "Prompt characters sent to a model, per tier.", 0, {"tier"}},
};

static const double BOUNDS_MS[NBUCKETS] = {5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
static const char *const BOUNDS_LE[NBUCKETS] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                                                "0.5", "1", "2.5", "5", "10"};

typedef struct series {
    uint32_t hash;
    int family;
    int next;                          /* next series of the family, -1 at the end */
    uint64_t count;                    /* a counter's value, a histogram's observations */
    double sum_ms;                     /* histograms */
    uint64_t bucket[NBUCKETS];         /* histograms: observations per bound, not cumulative */
    const char *val[MAX_LABELS];       /* into text; NULL = label left out */
    char text[];
} series;

struct ph_metrics {
    uint64_t submitted, reloads_ok, reloads_failed, dropped;
    uint64_t provisional[2];  /* provisional events: [0] without a plan (error), [1] with one */
    int nseries;
    int head[NFAMILIES], tail[NFAMILIES];
    uint16_t slot[NSLOTS];             /* series index + 1; 0 = empty */
    series *s[PH_METRICS_MAX_SERIES];
};

/* A label value after normalisation (see the file comment). */
typedef struct label {
    char text[PH_METRICS_MAX_LABEL + 1];
    size_t len;
    int absent;
} label;

ph_metrics *ph_metrics_new(void)
{
    ph_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    for (int f = 0; f < NFAMILIES; f++)
        m->head[f] = m->tail[f] = -1;
    return m;
}

void ph_metrics_free(ph_metrics *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->nseries; i++)
        free(m->s[i]);
    free(m);
}

/* Bytes in the valid UTF-8 sequence at p (at most n available), or 0 when it is invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    if (c < 0x80)
        return 1;
    size_t need = c < 0xC2 ? 0 : c <= 0xDF ? 2 : c <= 0xEF ? 3 : c <= 0xF4 ? 4 : 0;
    if (!need || need > n)
        return 0;
    unsigned lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
    unsigned hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return need;
}

/* Normalises s into *l. NULL is "", and "" is an absent label when optional (Prometheus
 * reads k="" as no label k, so the two must be one series). */
static void norm_label(label *l, const char *s, int optional)
{
    s = s ? s : "";
    l->len = 0;
    l->absent = optional && !*s;
    size_t n = strnlen(s, PH_METRICS_MAX_LABEL + 4);  /* enough to place every cut */
    for (size_t k; l->len < n; l->len += k) {         /* l->len is also the input offset */
        size_t ok = utf8_len((const unsigned char *)s + l->len, n - l->len);
        k = ok ? ok : 1;
        if (l->len + k > PH_METRICS_MAX_LABEL)
            break;
        memcpy(l->text + l->len, ok ? s + l->len : "?", k);
    }
    l->text[l->len] = '\0';
}

static uint32_t hash_labels(int fam, const label *const *v, int n)
{
    uint32_t h = 2166136261u ^ (uint32_t)fam;
    for (int i = 0; i < n; i++) {
        for (size_t j = 0; j < v[i]->len; j++)
            h = (h ^ (unsigned char)v[i]->text[j]) * 16777619u;
        h = (h ^ (v[i]->absent ? 0xFEu : 0xFFu)) * 16777619u;  /* bytes no UTF-8 text has */
    }
    return h;
}

static int same_labels(const series *s, int fam, const label *const *v, int n)
{
    if (s->family != fam)
        return 0;
    for (int i = 0; i < n; i++) {
        if (v[i]->absent != !s->val[i])
            return 0;
        if (!v[i]->absent && strcmp(s->val[i], v[i]->text) != 0)
            return 0;
    }
    return 1;
}

/* A new series of fam with the n label values v, appended to the family's chain; NULL when
 * out of memory. The caller has checked the cap. */
static series *add_series(ph_metrics *m, int fam, const label *const *v, int n, uint32_t h)
{
    size_t text = 0;
    for (int i = 0; i < n; i++)
        text += v[i]->len + 1;
    series *s = calloc(1, sizeof *s + text);
    if (!s)
        return NULL;
    s->hash = h;
    s->family = fam;
    s->next = -1;
    char *p = s->text;
    for (int i = 0; i < n; i++) {
        memcpy(p, v[i]->text, v[i]->len + 1);
        s->val[i] = v[i]->absent ? NULL : p;
        p += v[i]->len + 1;
    }
    int idx = m->nseries++;
    m->s[idx] = s;
    if (m->tail[fam] >= 0)
        m->s[m->tail[fam]]->next = idx;
    else
        m->head[fam] = idx;
    m->tail[fam] = idx;
    return s;
}

/* The series of fam with these label values, made when new. NULL (and one more dropped
 * observation) past the cap or out of memory. */
static series *lookup(ph_metrics *m, int fam, const label *const *v, int n)
{
    uint32_t h = hash_labels(fam, v, n);
    size_t i = h % NSLOTS;
    for (; m->slot[i]; i = (i + 1) % NSLOTS) {
        series *s = m->s[m->slot[i] - 1];
        if (s->hash == h && same_labels(s, fam, v, n))
            return s;
    }
    series *s = m->nseries < PH_METRICS_MAX_SERIES ? add_series(m, fam, v, n, h) : NULL;
    if (!s) {
        m->dropped++;
        return NULL;
    }
    m->slot[i] = (uint16_t)m->nseries;  /* the table is never more than half full */
    return s;
}

static void observe(series *s, double ms)
{
    if (!s || isnan(ms))
        return;
    if (ms < 0)
        ms = 0;  /* a clock that went backwards */
    int b = 0;
    while (b < NBUCKETS && ms > BOUNDS_MS[b])
        b++;
    if (b < NBUCKETS)
        s->bucket[b]++;
    s->count++;
    s->sum_ms += ms;
}

void ph_metrics_submitted(ph_metrics *m)
{
    m->submitted++;
}

/* A total_ms of NaN is not observed; a negative time counts as 0. The prompt counter of a
 * tier is made on its first plan with prompt_chars > 0. */
void ph_metrics_plan(ph_metrics *m, const char *tier, const char *source, const char *cache,
                     const char *arm, double first_step_ms, double total_ms, size_t prompt_chars)
{
    label t, so, c, a;
    norm_label(&t, tier, 0);
    norm_label(&so, source, 0);
    norm_label(&c, cache, 0);
    norm_label(&a, arm, 1);
    const label *plan[] = {&t, &so, &c, &a}, *by_tier[] = {&t}, *by_source[] = {&t, &so};
    series *s = lookup(m, F_PLANS, plan, 4);
    if (s)
        s->count++;
    if (!isnan(first_step_ms))
        observe(lookup(m, F_FIRST_STEP, by_source, 2), first_step_ms);
    if (!isnan(total_ms))
        observe(lookup(m, F_PLAN_SECONDS, by_source, 2), total_ms);
    if (prompt_chars && (s = lookup(m, F_PROMPT, by_tier, 1)) != NULL)
        s->count += prompt_chars;
}

void ph_metrics_fallback(ph_metrics *m, const char *from, const char *reason)
{
    label f, r;
    norm_label(&f, from, 0);
    norm_label(&r, reason, 0);
    const label *v[] = {&f, &r};
    series *s = lookup(m, F_FALLBACKS, v, 2);
    if (s)
        s->count++;
}

void ph_metrics_reload(ph_metrics *m, int ok)
{
    *(ok ? &m->reloads_ok : &m->reloads_failed) += 1;
}

void ph_metrics_provisional(ph_metrics *m, int ok)
{
    m->provisional[ok != 0]++;
}

/* ---- rendering: every write goes through out(), which stops at the first failure, so a
 * capped buffer holds a prefix of the exposition. */

typedef struct writer {
    ph_buf *b;
    int failed;
} writer;

static void out(writer *w, const char *s, size_t n)
{
    if (!w->failed && ph_buf_add(w->b, s, n) != 0)
        w->failed = 1;
}

static void outs(writer *w, const char *s)
{
    out(w, s, strlen(s));
}

static void out_u64(writer *w, uint64_t v)
{
    char num[24];
    out(w, num, (size_t)snprintf(num, sizeof num, "%" PRIu64, v));
}

/* The shortest of %.15g..%.17g that reads back as v; "NaN", "+Inf", "-Inf" as Prometheus
 * spells them. */
static void out_double(writer *w, double v)
{
    char num[32];
    if (isnan(v) || isinf(v)) {
        outs(w, isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(num, sizeof num, "%.*g", prec, v);
        if (strtod(num, NULL) == v)
            break;
    }
    outs(w, num);
}

static void out_escaped(writer *w, const char *s)
{
    for (const char *run = s;; s++) {
        if (*s && *s != '\\' && *s != '"' && *s != '\n')
            continue;
        out(w, run, (size_t)(s - run));
        if (!*s)
            return;
        outs(w, *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : "\\n");
        run = s + 1;
    }
}

static void out_header(writer *w, const char *name, const char *help, const char *type)
{
    outs(w, "# HELP "), outs(w, name), outs(w, " "), outs(w, help);
    outs(w, "\n# TYPE "), outs(w, name), outs(w, " "), outs(w, type), outs(w, "\n");
}

/* {k="v",...} for the present labels of s, then le="..." when le is not NULL; nothing when
 * there is no label at all. */
static void out_labels(writer *w, const series *s, const char *le)
{
    int first = 1;
    for (int i = 0; i < MAX_LABELS; i++) {
        const char *key = FAMILIES[s->family].keys[i];
        if (!key || !s->val[i])
            continue;
        outs(w, first ? "{" : ","), outs(w, key), outs(w, "=\"");
        out_escaped(w, s->val[i]);
        outs(w, "\"");
        first = 0;
    }
    if (le)
        outs(w, first ? "{le=\"" : ",le=\""), outs(w, le), outs(w, "\"");
    if (!first || le)
        outs(w, "}");
}

static void out_histogram(writer *w, const char *name, const series *s)
{
    uint64_t cum = 0;
    for (int b = 0; b <= NBUCKETS; b++) {
        cum += b < NBUCKETS ? s->bucket[b] : 0;
        outs(w, name), outs(w, "_bucket");
        out_labels(w, s, b < NBUCKETS ? BOUNDS_LE[b] : "+Inf");
        outs(w, " "), out_u64(w, b < NBUCKETS ? cum : s->count), outs(w, "\n");
    }
    outs(w, name), outs(w, "_sum"), out_labels(w, s, NULL), outs(w, " ");
    out_double(w, s->sum_ms / 1000.0), outs(w, "\n");
    outs(w, name), outs(w, "_count"), out_labels(w, s, NULL), outs(w, " ");
    out_u64(w, s->count), outs(w, "\n");
}

static void out_family(writer *w, const ph_metrics *m, int fam)
{
    const family *f = &FAMILIES[fam];
    out_header(w, f->name, f->help, f->histogram ? "histogram" : "counter");
    for (int i = m->head[fam]; i >= 0; i = m->s[i]->next) {
        if (f->histogram) {
            out_histogram(w, f->name, m->s[i]);
            continue;
        }
        outs(w, f->name), out_labels(w, m->s[i], NULL), outs(w, " ");
        out_u64(w, m->s[i]->count), outs(w, "\n");
    }
}

/* One family of a single unlabelled sample. */
static void out_single(writer *w, const char *name, const char *help, const char *type,
                       uint64_t v)
{
    out_header(w, name, help, type);
    outs(w, name), outs(w, " "), out_u64(w, v), outs(w, "\n");
}

/* A counter with an ok and a failed series. */
static void out_ok_failed(writer *w, const char *name, const char *help, uint64_t ok, uint64_t failed)
{
    out_header(w, name, help, "counter");
    outs(w, name), outs(w, "{result=\"ok\"} "), out_u64(w, ok);
    outs(w, "\n"), outs(w, name), outs(w, "{result=\"failed\"} "), out_u64(w, failed);
    outs(w, "\n");
}

static void out_reloads(writer *w, const ph_metrics *m)
{
    out_ok_failed(w, "planhost_reloads_total", "Script reloads, by result.", m->reloads_ok, m->reloads_failed);
    out_ok_failed(w, "planhost_provisional_plans_total",
                  "Provisional plans handed out (ok) or not (failed: the policy function or the planner).",
                  m->provisional[1], m->provisional[0]);
}

static void out_cache(writer *w, const ph_cache_stats *c)
{
    const struct { const char *name, *help; uint64_t v; } rows[] = {
        {"planhost_cache_hits_total", "Plan cache lookups that found a live entry.", c->hits},
        {"planhost_cache_misses_total", "Plan cache lookups that found none.", c->misses},
        {"planhost_cache_puts_total", "Plans stored in the cache.", c->puts},
        {"planhost_cache_evictions_total", "Cache entries dropped to honour a cap.", c->evictions},
        {"planhost_cache_expirations_total", "Cache entries dropped as their time to live passed.",
         c->expirations},
        {"planhost_cache_coalesced_total", "Requests answered from another request's result.",
         c->coalesced},
        {"planhost_cache_stale_total", "Cache hits rejected against the snapshot.", c->stale},
        {"planhost_cache_entries", "Entries in the plan cache.", c->entries},
        {"planhost_cache_bytes", "Bytes charged to the plan cache's entries.", c->bytes},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        out_single(w, rows[i].name, rows[i].help, i < 7 ? "counter" : "gauge", rows[i].v);
    uint64_t looked = c->hits + c->misses;
    out_header(w, "planhost_cache_hit_ratio", "Hits over lookups (0 before any lookup).", "gauge");
    outs(w, "planhost_cache_hit_ratio ");
    out_double(w, looked ? (double)c->hits / (double)looked : 0.0), outs(w, "\n");
}

static void out_circuits(writer *w, const ph_metrics_gauges *g)
{
    static const char *const states[] = {"closed", "open", "half_open"};
    out_header(w, "planhost_circuit_state", "Endpoint circuit state: 1 for the current one.",
               "gauge");
    for (int i = 0; i < g->nendpoints; i++) {
        label url;
        norm_label(&url, g->endpoints[i], 0);
        const char *now = g->circuit_states ? g->circuit_states[i] : NULL;
        for (int k = 0; k < 3; k++) {
            outs(w, "planhost_circuit_state{endpoint=\""), out_escaped(w, url.text);
            outs(w, "\",state=\""), outs(w, states[k]), outs(w, "\"} ");
            outs(w, now && strcmp(now, states[k]) == 0 ? "1\n" : "0\n");
        }
    }
}

/* g NULL renders like a zeroed ph_metrics_gauges. */
int ph_metrics_render(const ph_metrics *m, const ph_metrics_gauges *g, ph_buf *b)
{
    static const ph_metrics_gauges none = {0};
    writer w = {b, 0};
    g = g ? g : &none;
    out_single(&w, "planhost_requests_submitted_total", "Requests submitted to the host.",
               "counter", m->submitted);
    for (int f = 0; f < NFAMILIES; f++)
        out_family(&w, m, f);
    out_reloads(&w, m);
    out_single(&w, "planhost_script_generation", "The serving script generation.", "gauge",
               g->generation);
    out_header(&w, "planhost_requests_pending", "Requests submitted and not ended.", "gauge");
    char num[16];
    snprintf(num, sizeof num, "%d", g->pending);
    outs(&w, "planhost_requests_pending "), outs(&w, num), outs(&w, "\n");
    if (g->cache)
        out_cache(&w, g->cache);
    if (g->nendpoints > 0 && g->endpoints)
        out_circuits(&w, g);
    out_single(&w, "planhost_metrics_series_dropped_total",
               "Observations not kept because the series cap was reached.", "counter", m->dropped);
    return w.failed ? -1 : 0;
}
