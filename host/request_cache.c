/* request_cache — a request's use of the plan cache: key, lookup, validated hits, storing,
 * and coalescing onto an identical request in flight.
 *
 * Key. The snapshot hash under the generation's rules (policies/cache.lua; it covers the rules'
 * fingerprint) folded with the generation's content hash (every script file: templates, their
 * tool subsets and options, the policies) and the tier's name and model. A request looks up
 * the key of the first cacheable tier of its chain (an LLM tier, or the heuristic tier when the
 * policy stores heuristic plans); a plan is stored under the key of the tier that made it.
 *
 * Hits. A cached plan is re-read by the plan parser and every step goes through the same
 * checks as a model's (ph_check_step) against the request's own snapshot; one failing step
 * makes the hit stale: the entry is removed, counted, and the request goes on as a miss
 * ("cache":"stale"). Events come only after the whole plan passed.
 *
 * Coalescing. A miss whose key is already being asked for waits for that answer (the
 * leader's) instead of sending its own. The leader's plan is handed to each waiter, validated
 * against the waiter's snapshot, and delivered with "cache":"coalesced"; a waiter whose check
 * fails, or whose leader ends with no shareable plan, runs its own chain. A waiter with
 * PH_WAIT_MARGIN_MS of its budget left stops waiting and goes to its chain's first tier that
 * needs no server (fallback event, reason "deadline"). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "cache.h"
#include "jsonw.h"
#include "request_internal.h"
#include "snaphash.h"

#define PH_WAIT_MARGIN_MS 25

uint64_t ph_req_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- keys ---------------------------------------------------------------------------- */

static const char *tier_model(const ph_req *r, const ph_tier *t)
{
    if (t->model)
        return t->model;
    const char *group = t->endpoint ? t->endpoint : "default";
    for (int i = 0; i < r->env.nendpoints; i++)
        if (strcmp(r->env.endpoints[i].group, group) == 0)
            return r->env.endpoints[i].model;
    return "";
}

static uint64_t tier_key(const ph_req *r, const ph_tier *t)
{
    char buf[768];
    uint64_t head[2] = {r->snap_hash, ph_gen_hash(r->gen)};
    memcpy(buf, head, sizeof head);
    int n = snprintf(buf + sizeof head, sizeof buf - sizeof head, "%s%c%s", t->name, 0,
                     t->kind == PH_TIER_LLM ? tier_model(r, t) : "");
    size_t len = sizeof head + (n < 0 ? 0 : (size_t)n < sizeof buf - sizeof head ? (size_t)n : sizeof buf - sizeof head - 1);
    return XXH3_64bits(buf, len);
}

static int cacheable_kind(const ph_cache_policy *p, ph_tier_kind k)
{
    return (k == PH_TIER_LLM && p->store_llm) || (k == PH_TIER_HEURISTIC && p->store_heuristic);
}

/* ---- reading a cached or shared plan back ---------------------------------------------- */

typedef struct reread {
    ph_req *r;
    const ph_template *tmpl;   /* the tier's tools; NULL: every tool */
    size_t at[64];             /* where each step starts in a->kept */
    size_t end[64];
    int n, bad;
    char plan_id[128];
} reread;

static int reread_step(void *ud, const ph_pp_step *s)
{
    reread *x = ud;
    ph_req *r = x->r;
    char reason[PH_VALIDATE_REASON];
    ph_error err;
    int ok = ph_req_check_step(r, x->tmpl ? x->tmpl->tools : NULL, x->tmpl ? x->tmpl->ntools : 0, s, reason,
                               sizeof reason, &err);
    if (ok <= 0 || x->n >= 64) {
        x->bad = 1;
        return 1;                  /* one failing step spoils the plan: stop here */
    }
    ph_buf_adds(&r->a.kept, r->a.kept.len ? "," : "[");
    x->at[x->n] = r->a.kept.len;
    ph_buf_add(&r->a.kept, s->json, s->len);
    x->end[x->n++] = r->a.kept.len;
    return 0;
}

static int reread_plan(void *ud, const ph_pp_plan *p)
{
    reread *x = ud;
    snprintf(x->plan_id, sizeof x->plan_id, "%s", p->plan_id);
    if (p->partial || p->ndropped)
        x->bad = 1;
    return 0;
}

/* The tier called `name` in this generation (the --template tier when it is that). */
static const ph_tier *find_tier(ph_req *r, const char *name)
{
    int k = ph_gen_find_tier(r->gen, name);
    if (k >= 0)
        return &ph_gen_policy(r->gen)->tiers[k];
    return r->adhoc.name && strcmp(r->adhoc.name, name) == 0 ? &r->adhoc : NULL;
}

/* Parses and checks `plan` against the request's snapshot into a fresh attempt for tier
 * `tier_name`; queues nothing. Returns 1 when every step passed. */
static int reread_plan_text(ph_req *r, const char *tier_name, const char *plan, size_t len, reread *x)
{
    ph_req_attempt_reset(r);
    const ph_tier *t = find_tier(r, tier_name);
    if (!t)
        return 0;
    r->a.tier = t;
    *x = (reread){.r = r, .tmpl = t->kind == PH_TIER_LLM ? ph_gen_template(r->gen, t->tmpl) : NULL};
    ph_pp_callbacks cb = {reread_step, reread_plan};
    ph_planparse *pp = ph_planparse_new(ph_gen_registry(r->gen), NULL, 0, 0, &cb, x);
    if (!pp)
        return 0;
    ph_pp_status st = ph_planparse_feed(pp, plan, len);
    if (st == PH_PP_MORE)
        st = ph_planparse_finish(pp);
    ph_planparse_free(pp);
    return st == PH_PP_DONE && !x->bad && x->n > 0;
}

/* Queues the step events and the plan event of a plan reread_plan_text accepted. */
static void deliver(ph_req *r, reread *x, const char *source, const char *cache_state)
{
    attempt *a = &r->a;
    for (int i = 0; i < x->n; i++)
        ph_req_queue_step(r, a->tier->name, i, a->kept.data + x->at[i], x->end[i] - x->at[i]);
    a->nsteps = x->n;
    a->first_step_ms = ph_req_now() - r->start_ms;
    ph_pp_plan p = {.plan_id = x->plan_id, .nsteps = x->n};
    ph_plan_fields(&a->plan, &p, &a->kept, &a->drops);
    a->plan_seen = 1;
    r->cache_state = cache_state;
    ph_req_end_plan(r, source);
}

/* ---- lookup, store, coalescing ---------------------------------------------------------- */

/* Picks the key tier and computes the snapshot hash; 0 when the cache is off for r. */
static int prepare(ph_req *r)
{
    const ph_cache_policy *p = ph_gen_cache_policy(r->gen);
    ph_hash_rules *rules = ph_gen_hash_rules(r->gen);
    if (!r->env.cache || !rules)
        return 0;
    const ph_tier *first = NULL;
    for (int i = 0; i < r->nchain && !first; i++) {
        const ph_tier *t = r->chain[i] == -1 ? &r->adhoc : &ph_gen_policy(r->gen)->tiers[r->chain[i]];
        if (cacheable_kind(p, t->kind))
            first = t;
    }
    if (!first)
        return 0;
    int ok = 0;
    r->snap_hash = ph_snaphash(rules, r->snapshot, r->snapshot_len, NULL, NULL, &ok);
    if (!ok)
        return 0;
    r->key = tier_key(r, first);
    r->cache_state = "miss";
    return 1;
}

int ph_req_cache_start(ph_req *r)
{
    r->cache_state = "off";
    if (!prepare(r))
        return 0;
    ph_cache_value v;
    if (ph_cache_get(r->env.cache, r->key, ph_req_wall_ms(), &v)) {
        reread x;
        if (reread_plan_text(r, v.tier, v.plan, v.plan_len, &x)) {
            deliver(r, &x, "cache", "hit");
            return 1;
        }
        ph_cache_count_stale(r->env.cache);
        ph_cache_remove(r->env.cache, r->key);
        r->cache_state = "stale";
        ph_req_attempt_reset(r);
    }
    return ph_req_cache_lead_or_wait(r);
}

int ph_req_cache_lead_or_wait(ph_req *r)
{
    if (!ph_gen_cache_policy(r->gen)->coalesce || !r->key)
        return 0;
    int rc = ph_cache_inflight_begin(r->env.cache, r->key, r->id);
    if (rc == 0)
        r->leads = 1;
    if (rc != 1)
        return 0;                  /* leads (or out of memory): run the chain */
    r->waiting = 1;
    r->wait_until_ms = r->start_ms + (double)(r->budget_ms - PH_WAIT_MARGIN_MS);
    return 1;
}

/* The delivered plan as a plan object, {"plan_id":..,"steps":[kept steps]}, into b. */
static void plan_object(const attempt *a, ph_buf *b)
{
    ph_buf_adds(b, "{\"plan_id\":");
    ph_jsonw_cstr(b, a->plan_id);
    ph_buf_adds(b, ",\"steps\":");
    ph_buf_add(b, a->kept.data, a->kept.len);
    ph_buf_adds(b, "]}");
}

void ph_req_cache_store(ph_req *r, const char *source)
{
    attempt *a = &r->a;
    const ph_cache_policy *p = ph_gen_cache_policy(r->gen);
    int from_tier = strcmp(source, "llm") == 0 || strcmp(source, "heuristic") == 0;
    if (!r->key || !from_tier || a->partial || !a->nsteps || !cacheable_kind(p, a->tier->kind))
        return;
    ph_buf plan;
    ph_buf_init(&plan, 1u << 20);
    plan_object(a, &plan);
    if (!plan.failed)
        ph_cache_put(r->env.cache, tier_key(r, a->tier), ph_gen_hash(r->gen), plan.data, plan.len, a->tier->name,
                     source, ph_req_wall_ms());
    ph_buf_free(&plan);
}

/* The plan r delivered as something a waiter can take, or NULL (emergency, nothing kept). */
void ph_req_cache_release(ph_req *r, const char *source)
{
    if (!r->leads)
        return;
    r->leads = 0;
    attempt *a = &r->a;
    ph_buf plan;
    ph_buf_init(&plan, 1u << 20);
    ph_req_shared s = {0};
    if (r->ended && !r->cancelled && source && strcmp(source, "emergency") != 0 && a->tier && a->nsteps) {
        plan_object(a, &plan);
        s = (ph_req_shared){plan.data, plan.len, a->tier->name, strcmp(source, "cache") == 0 ? "llm" : source,
                            r->id};
    }
    r->env.flight_done(r->env.host, r->key, plan.failed || !s.plan ? NULL : &s);
    ph_buf_free(&plan);
}

void ph_req_take_shared(ph_req *r, const ph_req_shared *s)
{
    if (!r->waiting || r->ended)
        return;
    r->waiting = 0;
    if (s) {
        reread x;
        char tier[128];
        snprintf(tier, sizeof tier, "%s", s->tier);
        if (reread_plan_text(r, tier, s->plan, s->len, &x)) {
            if (r->env.cache)
                ph_cache_count_coalesced(r->env.cache, 1);
            deliver(r, &x, s->source, "coalesced");
            return;
        }
        ph_req_attempt_reset(r);
    }
    if (ph_req_cache_lead_or_wait(r))
        return;                    /* another waiter of the same key leads now */
    ph_req_run_chain(r);
}

int ph_req_waiting(const ph_req *r) { return (r->waiting || r->slot_wait || r->batch) && !r->ended; }

double ph_req_wake_ms(const ph_req *r)
{
    if (!ph_req_waiting(r))
        return INFINITY;
    return r->batch ? r->start_ms + (double)r->budget_ms : r->wait_until_ms;
}

void ph_req_tick(ph_req *r, double now_ms, int slots_freed)
{
    if (!ph_req_waiting(r))
        return;
    if (r->batch) {                /* in a batch in flight: leaves it when its budget ends */
        if (now_ms >= r->start_ms + (double)r->budget_ms)
            ph_req_batch_expire(r);    /* keeps its complete steps as a partial plan */
        return;
    }
    if (r->slot_wait && (slots_freed || now_ms >= r->wait_until_ms)) {
        ph_req_retry_slot(r, now_ms);
        return;
    }
    if (r->slot_wait || now_ms < r->wait_until_ms)
        return;
    r->waiting = 0;
    ph_req_give_up_waiting(r);
}
