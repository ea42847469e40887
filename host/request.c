/* request — one planning request walking its tier chain to exactly one plan event.
 *
 * The chain comes from the policy's chain(ctx) (or --template: that template, then the
 * heuristic and emergency tiers). Each LLM tier is skipped when the endpoint's circuit is
 * open (circuit_open) or its recent p95 latency is more than the time left (deadline);
 * otherwise request_llm.c runs it. A failed tier asks on_failure(ctx, reason) where to go
 * and queues a fallback event naming from, to and reason; a connect failure is retried as
 * the policy says. The heuristic tier runs lua/heuristic.lua; its plan goes through the
 * same parser, so it is checked like the model's. The emergency tier (Scan, Wait) cannot
 * fail and ends every chain. See request.h. */
#define _POSIX_C_SOURCE 200809L
#include "request.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "circuit.h"
#include "jsonstream.h"
#include "jsonw.h"
#include "latency.h"
#include "metrics.h"
#include "request_internal.h"
#include "selfcheck.h"
#include "validate.h"

#define EVENT_CAP (1u << 20)
#define PH_SLOT_MARGIN_MS 25       /* a request waiting for a slot leaves this much budget */

double ph_req_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

long ph_req_left(const ph_req *r)
{
    return r->budget_ms - (long)(ph_req_now() - r->start_ms);
}

void ph_req_fail(ph_req *r, const char *reason, const char *message)
{
    if (r->a.reason[0])
        return;                    /* the first cause wins */
    snprintf(r->a.reason, sizeof r->a.reason, "%s", reason);
    snprintf(r->a.message, sizeof r->a.message, "%s", message ? message : "");
}

static const ph_tier *tier_at(const ph_req *r, int k)
{
    return k == -1 ? &r->adhoc : &ph_gen_policy(r->gen)->tiers[k];
}

/* ---- events -------------------------------------------------------------------------- */

void ph_req_event_head(ph_req *r, ph_buf *b, const char *kind)
{
    ph_buf_init(b, EVENT_CAP);
    ph_buf_addf(b, "{\"event\":\"%s\",\"agent\":", kind);
    ph_jsonw_cstr(b, r->agent);
    ph_buf_addf(b, ",\"request\":%lu", r->id);
}

void ph_req_queue_event(ph_req *r, ph_event_kind kind, ph_buf *b)
{
    ph_buf_adds(b, "}");
    r->env.queue(r->env.host, kind, r->id, r->user, b);
}

void ph_req_queue_step(ph_req *r, const char *tier, int index, const char *json, size_t len)
{
    ph_buf b;
    ph_req_event_head(r, &b, "step");
    ph_buf_adds(&b, ",\"tier\":");
    ph_jsonw_cstr(&b, tier);
    ph_buf_addf(&b, ",\"index\":%d,\"step\":", index);
    ph_buf_add(&b, json, len);
    ph_buf_adds(&b, ",\"t_ms\":");
    ph_jsonw_num(&b, round((ph_req_now() - r->start_ms) * 10) / 10);
    ph_req_queue_event(r, PH_EVENT_STEP, &b);
}

static void queue_fallback(ph_req *r, const char *from, const char *to, const char *reason, const char *error)
{
    ph_buf b;
    ph_req_event_head(r, &b, "fallback");
    ph_buf_adds(&b, ",\"from\":");
    ph_jsonw_cstr(&b, from);
    ph_buf_adds(&b, ",\"to\":");
    ph_jsonw_cstr(&b, to);
    ph_buf_adds(&b, ",\"reason\":");
    ph_jsonw_cstr(&b, reason);
    ph_buf_adds(&b, ",\"error\":");
    ph_jsonw_cstr(&b, error && *error ? error : reason);
    ph_req_queue_event(r, PH_EVENT_FALLBACK, &b);
    if (r->env.metrics)
        ph_metrics_fallback(r->env.metrics, from, reason);
}

static void add_timing(ph_req *r, ph_buf *b)
{
    attempt *a = &r->a;
    double total = (a->closed_ms > 0 ? a->closed_ms : ph_req_now()) - r->start_ms;
    ph_buf_adds(b, ",\"first_step_ms\":");
    ph_jsonw_num(b, a->nsteps ? round(a->first_step_ms * 10) / 10 : NAN);
    ph_buf_adds(b, ",\"total_ms\":");
    ph_jsonw_num(b, round(total * 10) / 10);
    /* The server's counts come in its final frame, which a stream stopped at the plan's
     * closing brace may never reach: then both counts are the estimate (characters / 4). */
    int server = a->have_stats && a->stats.prompt_tokens >= 0 && a->stats.completion_tokens >= 0;
    int sent = a->prompt_chars > 0;    /* cache, coalesced, heuristic, emergency: no prompt */
    ph_buf_addf(b, ",\"prompt_chars\":%zu,\"prompt_tokens\":%ld,\"completion_tokens\":%ld,\"counts\":\"%s\"",
                a->prompt_chars, server ? a->stats.prompt_tokens : (long)ph_estimate_tokens(a->prompt_chars),
                server ? a->stats.completion_tokens : (long)ph_estimate_tokens(a->answer_chars),
                server ? "server" : sent ? "estimated" : "none");
}

void ph_req_end_plan(ph_req *r, const char *source)
{
    ph_buf b;
    ph_req_event_head(r, &b, "plan");
    ph_buf_adds(&b, ",\"tier\":");
    ph_jsonw_cstr(&b, r->a.tier->name);
    ph_buf_addf(&b, ",\"source\":\"%s\",\"cache\":\"%s\"", source, r->cache_state ? r->cache_state : "off");
    if (r->batch_size > 0)
        ph_buf_addf(&b, ",\"batch_size\":%d", r->batch_size);
    if (r->arm) {
        ph_buf_adds(&b, ",\"arm\":");
        ph_jsonw_cstr(&b, r->arm);
    }
    ph_buf_add(&b, r->a.plan.data, r->a.plan.len);
    add_timing(r, &b);
    ph_req_queue_event(r, PH_EVENT_PLAN, &b);
    if (r->env.metrics) {
        attempt *a = &r->a;
        ph_metrics_plan(r->env.metrics, a->tier->name, source, r->cache_state ? r->cache_state : "off", r->arm,
                        a->nsteps ? a->first_step_ms : NAN,
                        (a->closed_ms > 0 ? a->closed_ms : ph_req_now()) - r->start_ms, a->prompt_chars);
    }
    ph_req_cache_store(r, source);
    r->ended = 1;
    ph_req_cache_release(r, source);
    r->env.finished(r->env.host, r);
}

static void end_emergency(ph_req *r)
{
    static const char scan[] = "{\"act\":\"Scan\",\"radius\":10}", wait[] = "{\"act\":\"Wait\",\"duration\":1}";
    ph_req_attempt_reset(r);
    r->a.tier = tier_at(r, ph_gen_find_tier(r->gen, "emergency"));
    snprintf(r->a.plan_id, sizeof r->a.plan_id, "emergency-%lu", r->id);
    ph_buf_addf(&r->a.plan, ",\"partial\":false,\"plan\":{\"plan_id\":\"%s\",\"steps\":[%s,%s]},"
                "\"dropped\":[]", r->a.plan_id, scan, wait);
    ph_req_queue_step(r, "emergency", 0, scan, sizeof scan - 1);
    ph_req_queue_step(r, "emergency", 1, wait, sizeof wait - 1);
    r->a.nsteps = 2;
    r->a.first_step_ms = ph_req_now() - r->start_ms;
    ph_req_end_plan(r, "emergency");
}

/* ---- the chain ----------------------------------------------------------------------- */

void ph_req_fill_ctx(ph_req *r, ph_chain_ctx *c, ph_ctx_space *sp)
{
    const ph_policy *p = ph_gen_policy(r->gen);
    for (int i = 0; i < p->ntiers && i < 64; i++)
        ph_latency_get(r->env.latency, p->tiers[i].name, &sp->med[i], &sp->p95[i], &sp->n[i]);
    for (int i = 0; i < r->env.nendpoints; i++) {
        sp->names[i] = r->env.endpoints[i].url;
        sp->states[i] = ph_circuit_name(r->env.endpoints[i].circuit.state);
    }
    *c = (ph_chain_ctx){r->snapshot, r->snapshot_len, r->game, ph_req_left(r), sp->med, sp->p95, sp->n,
                        sp->names, sp->states, r->env.nendpoints};
}

static void run_tier(ph_req *r);

/* The current tier failed with r->a.reason: ask the policy, say so, go on. */
void ph_req_next_tier(ph_req *r)
{
    r->batch_size = 0;             /* whatever answers now, it is not the batch */
    const ph_policy *p = ph_gen_policy(r->gen);
    const ph_tier *from = r->a.tier;
    char reason[32], message[512];
    snprintf(reason, sizeof reason, "%s", r->a.reason[0] ? r->a.reason : "invalid");
    snprintf(message, sizeof message, "%s", r->a.message);
    ph_ctx_space sp;
    ph_chain_ctx ctx;
    ph_req_fill_ctx(r, &ctx, &sp);
    ph_error err;
    int action = p->ntiers <= 64 ? ph_gen_on_failure(r->gen, &ctx, reason, &err) : -1;
    if (action == -3) {            /* the hook itself failed: say so, then go on */
        queue_fallback(r, from->name, "on_failure", "script", err.message);
        action = -1;
    }
    int emergency = ph_gen_find_tier(r->gen, "emergency");
    if (action == -2 || ++r->attempts >= PH_MAX_ATTEMPTS)
        r->ci = r->nchain, r->chain[r->nchain] = emergency;
    else if (action >= 0)
        r->chain[r->ci] = action;  /* jump: the answer takes the current slot */
    else
        r->ci++;
    int next = r->ci < r->nchain ? r->chain[r->ci] : emergency;
    queue_fallback(r, from->name, tier_at(r, next)->name, reason, message);
    if (r->ci >= r->nchain)
        r->chain[r->ci] = emergency, r->nchain = r->ci + 1;
    r->tried = 0;
    run_tier(r);
}

/* ---- steps and plans from any tier ---------------------------------------------------- */

int ph_check_step(ph_gen *g, const int *tools, int ntools, const ph_snapview *view,
                  const char *snapshot, size_t snapshot_len, const char *step, size_t len,
                  char *reason, size_t reason_size, ph_error *err)
{
    if (ph_validate_step(ph_gen_registry(g), tools, ntools, view, &ph_gen_policy(g)->limits, step, len,
                         reason, reason_size) != 0)
        return 0;
    int ok = ph_gen_validate_hook(g, step, len, snapshot, snapshot_len, reason, reason_size, err);
    if (ok < 0)
        snprintf(reason, reason_size, "policies/validate.lua failed: %.200s", err->message);
    return ok;
}

void ph_plan_fields(ph_buf *b, const ph_pp_plan *p, const ph_buf *kept, const ph_buf *drops)
{
    ph_buf_addf(b, ",\"partial\":%s,\"plan\":{\"plan_id\":", p->partial ? "true" : "false");
    ph_jsonw_cstr(b, p->plan_id);
    ph_buf_addf(b, ",\"steps\":%s]},\"dropped\":[", kept->len ? ph_buf_str(kept) : "[");
    for (int i = 0; i < p->ndropped; i++) {
        ph_buf_addf(b, "%s{\"index\":%d,\"reason\":", i ? "," : "", p->dropped[i].index);
        ph_jsonw_cstr(b, p->dropped[i].reason);
        ph_buf_adds(b, "}");
    }
    if (drops->len)
        ph_buf_adds(b, ph_buf_str(drops) + (p->ndropped ? 0 : 1));
    ph_buf_adds(b, "]");
}

int ph_req_check_step(ph_req *r, const int *tools, int ntools, const ph_pp_step *s, char *reason,
                      size_t reason_size, ph_error *err)
{
    return ph_check_step(r->gen, tools, ntools, r->view, r->snapshot, r->snapshot_len, s->json, s->len, reason,
                         reason_size, err);
}

void ph_req_take_step(ph_req *r, const int *tools, int ntools, const ph_pp_step *s)
{
    attempt *a = &r->a;
    char reason[PH_VALIDATE_REASON];
    ph_error err;
    int ok = ph_req_check_step(r, tools, ntools, s, reason, sizeof reason, &err);
    if (ok < 0)                    /* a broken hook fails the tier: reason "script" */
        ph_req_fail(r, "script", err.message);
    if (ok <= 0) {
        ph_buf_addf(&a->drops, ",{\"index\":%d,\"reason\":", s->index);
        ph_jsonw_cstr(&a->drops, reason);
        ph_buf_adds(&a->drops, "}");
        return;
    }
    if (a->nsteps >= ph_gen_policy(r->gen)->limits.max_steps) {
        ph_buf_addf(&a->drops, ",{\"index\":%d,\"reason\":\"plan: over the cap of %d steps\"}", s->index,
                    ph_gen_policy(r->gen)->limits.max_steps);
        return;
    }
    if (a->nsteps++ == 0)
        a->first_step_ms = ph_req_now() - r->start_ms;
    ph_buf_adds(&a->kept, a->kept.len ? "," : "[");
    ph_buf_add(&a->kept, s->json, s->len);
    ph_req_queue_step(r, a->tier->name, s->index, s->json, s->len);
}

void ph_req_take_plan(ph_req *r, const ph_pp_plan *p)
{
    attempt *a = &r->a;
    if (a->plan_seen)
        return;
    a->plan_seen = 1;
    a->partial = p->partial;
    snprintf(a->plan_id, sizeof a->plan_id, "%s", p->plan_id);
    ph_plan_fields(&a->plan, p, &a->kept, &a->drops);
    if (a->nsteps == 0)
        ph_req_fail(r, "invalid", p->ndropped || a->drops.len ? "every step of the plan was dropped" : "the plan has no steps");
}

static int pp_step(void *ud, const ph_pp_step *s)
{
    ph_req_take_step(ud, NULL, 0, s);
    return 0;
}

static int pp_plan(void *ud, const ph_pp_plan *p)
{
    ph_req_take_plan(ud, p);
    return 0;
}

static void run_heuristic(ph_req *r)
{
    ph_buf text;
    ph_buf_init(&text, 1u << 20);
    ph_error err;
    if (ph_gen_heuristic(r->gen, r->snapshot, r->snapshot_len, NULL, &text, &err) != 0) {
        ph_req_fail(r, "script", err.message);
    } else {
        ph_pp_callbacks cb = {pp_step, pp_plan};
        ph_planparse *pp = ph_planparse_new(ph_gen_registry(r->gen), NULL, 0, 0, &cb, r);
        if (pp && ph_planparse_feed(pp, text.data, text.len) != PH_PP_ERROR && ph_planparse_finish(pp) == PH_PP_DONE &&
            r->a.plan_seen && !r->a.reason[0]) {
            ph_planparse_free(pp);
            ph_buf_free(&text);
            ph_req_end_plan(r, "heuristic");
            return;
        }
        ph_req_fail(r, "invalid", pp ? (ph_planparse_error(pp) ? ph_planparse_error(pp) : "no valid step") : "out of memory");
        ph_planparse_free(pp);
    }
    ph_buf_free(&text);
    ph_req_next_tier(r);
}

/* The tier's group's endpoint with the fewest outstanding requests whose circuit lets a
 * request through and that has a free slot (max_in_flight), preferring ones this tier has
 * not tried yet. Returns 1 with r->a.ep set; 0 with the skip reason filled when there is
 * none; -1 when some endpoint would take it but every such one is full (wait for a slot). */
static int pick_endpoint(ph_req *r, const ph_tier *t, const ph_circuit_policy *cp)
{
    const char *group = t->endpoint ? t->endpoint : "default";
    int in_group = 0, full = 0;
    for (int pass = 0; pass < 2; pass++) {      /* untried first, then any */
        for (;;) {
            ph_endpoint *best = NULL;
            for (int i = 0; i < r->env.nendpoints; i++) {
                ph_endpoint *e = &r->env.endpoints[i];
                if (strcmp(e->group, group) != 0)
                    continue;
                in_group = 1;
                if ((pass == 0 && (r->tried & (1u << i))) || (r->skip & (1u << i)))
                    continue;
                if (e->max_in_flight > 0 && e->outstanding >= e->max_in_flight) {
                    full |= e->circuit.state != PH_CIRCUIT_OPEN;
                    continue;
                }
                if (!best || e->outstanding < best->outstanding)
                    best = e;
            }
            if (!best)
                break;
            int k = (int)(best - r->env.endpoints);
            if (ph_circuit_allow(&best->circuit, cp, ph_req_now())) {
                r->tried |= 1u << k;
                r->skip = 0;
                r->a.ep = best;
                return 1;
            }
            r->skip |= 1u << k;    /* open: look at the next one */
        }
    }
    r->skip = 0;
    if (full)
        return -1;
    char msg[160];
    snprintf(msg, sizeof msg, in_group ? "every endpoint of group '%s' has its circuit open"
                                       : "no endpoint in group '%s'", group);
    ph_req_fail(r, in_group ? "circuit_open" : "connect", msg);
    return 0;
}

/* May the LLM tier run now? 1 yes, 0 no (the skip reason is filled), -1 wait for a slot. */
static int llm_allowed(ph_req *r, const ph_tier *t);

int ph_req_llm_allowed(ph_req *r) { return llm_allowed(r, r->a.tier); }

static int llm_allowed(ph_req *r, const ph_tier *t)
{
    const ph_policy *p = ph_gen_policy(r->gen);
    long left = ph_req_left(r);
    double med, p95;
    int n;
    ph_latency_get(r->env.latency, t->name, &med, &p95, &n);
    char msg[160];
    if (left <= 0 || (n > 0 && p95 > (double)left)) {
        snprintf(msg, sizeof msg, "%ld ms left, recent p95 of %s is %.0f ms", left > 0 ? left : 0, t->name,
                 n > 0 ? p95 : 0.0);
        ph_req_fail(r, "deadline", msg);
        return 0;
    }
    return pick_endpoint(r, t, &p->circuit);
}

static void run_tier(ph_req *r)
{
    int k = r->chain[r->ci];
    ph_req_attempt_reset(r);
    r->a.tier = tier_at(r, k);
    switch (r->a.tier->kind) {
    case PH_TIER_EMERGENCY:
        end_emergency(r);
        return;
    case PH_TIER_HEURISTIC:
        run_heuristic(r);
        return;
    case PH_TIER_LLM:
        break;
    }
    r->a.tmpl = ph_gen_template(r->gen, r->a.tier->tmpl);
    if (r->a.tmpl->batch && ph_req_batch_join(r) == 0)
        return;                    /* ph_batcher_tick sends it with others */
    int allowed = llm_allowed(r, r->a.tier);
    if (allowed < 0) {             /* every endpoint is at max_in_flight: wait for a slot */
        r->slot_wait = 1;
        r->wait_until_ms = r->start_ms + (double)r->budget_ms - PH_SLOT_MARGIN_MS;
        return;
    }
    if (!allowed) {
        ph_req_next_tier(r);
        return;
    }
    ph_error err;
    if (ph_req_llm_start(r, &err) != 0) {
        ph_req_fail(r, err.code == PH_ERR_MEMORY ? "connect" : "script", err.message);
        ph_circuit_record(&r->a.ep->circuit, &ph_gen_policy(r->gen)->circuit, 1, ph_req_now());
        ph_req_next_tier(r);
    }
}

static int endpoint_failure(const char *reason)
{
    return strcmp(reason, "connect") == 0 || strcmp(reason, "timeout") == 0 ||
           strcmp(reason, "stream_error") == 0 || strncmp(reason, "http_", 5) == 0;
}

void ph_req_llm_done(ph_req *r)
{
    attempt *a = &r->a;
    const ph_policy *p = ph_gen_policy(r->gen);
    const char *why = a->reason[0] ? a->reason : a->break_reason;
    ph_circuit_record(&a->ep->circuit, &p->circuit, !endpoint_failure(why), ph_req_now());
    int partial_ok = a->tier->accept_partial && a->nsteps >= a->tier->min_partial_steps;
    if (a->plan_seen && !a->reason[0] && (!a->partial || partial_ok)) {
        if (!a->partial)
            ph_latency_add(r->env.latency, a->tier->name, (a->closed_ms > 0 ? a->closed_ms : ph_req_now()) - a->start_ms,
                           p->latency_window);
        ph_req_end_plan(r, "llm");
        return;
    }
    if (!a->reason[0])
        ph_req_fail(r, a->break_reason[0] ? a->break_reason : "parse", "the partial plan has too few steps");
    if (strcmp(a->reason, "connect") == 0 && r->retries < p->connect_retries && ph_req_left(r) > 0) {
        r->retries++;
        queue_fallback(r, a->tier->name, a->tier->name, "connect", a->message);
        run_tier(r);               /* pick_endpoint prefers an endpoint not tried yet */
        return;
    }
    ph_req_next_tier(r);
}

/* ---- starting and ending ------------------------------------------------------------- */

/* A live experiment (policies/ab.lua): the agent's arm puts its tier in place of the chain's
 * first LLM tier. Not for --template requests: they chose their template. */
static void assign_arm(ph_req *r)
{
    ph_error err;
    int arm = ph_gen_ab_arm(r->gen, r->agent, &err);
    if (arm == -2)
        queue_fallback(r, "ab", tier_at(r, r->chain[0])->name, "script", err.message);
    if (arm < 0)
        return;
    const ph_ab_arm *a = &ph_gen_ab_policy(r->gen)->arms[arm];
    r->arm = a->name;
    for (int i = 0; i < r->nchain; i++)
        if (tier_at(r, r->chain[i])->kind == PH_TIER_LLM) {
            r->chain[i] = a->tier;
            break;
        }
}

/* The chain: --template (that template's tier, then heuristic, emergency) or chain(ctx). */
static void pick_chain(ph_req *r, const char *tmpl)
{
    int heur = ph_gen_find_tier(r->gen, "heuristic"), emer = ph_gen_find_tier(r->gen, "emergency");
    if (tmpl) {
        int k = ph_gen_find_tier(r->gen, tmpl);
        if (k < 0 || tier_at(r, k)->kind != PH_TIER_LLM || strcmp(ph_gen_template(r->gen, tier_at(r, k)->tmpl)->name, tmpl)) {
            const ph_template *t = ph_gen_find_template(r->gen, tmpl);
            r->adhoc = ph_tier_default(t->name, PH_TIER_LLM, (int)(t - ph_gen_template(r->gen, 0)));
            k = -1;
        }
        r->chain[0] = k, r->chain[1] = heur, r->chain[2] = emer, r->nchain = 3;
        return;
    }
    ph_ctx_space sp;
    ph_chain_ctx ctx;
    ph_req_fill_ctx(r, &ctx, &sp);
    ph_error err;
    r->nchain = ph_gen_chain(r->gen, &ctx, r->chain, PH_MAX_CHAIN, &err);
    if (r->nchain < 1) {           /* the policy failed: the fallback says so, then safe tiers */
        queue_fallback(r, "chain", "heuristic", "script", err.message);
        r->chain[0] = heur, r->chain[1] = emer, r->nchain = 2;
    }
    if (tier_at(r, r->chain[r->nchain - 1])->kind != PH_TIER_EMERGENCY)
        r->chain[r->nchain++] = emer;
    assign_arm(r);
}

/* ---- the snapshot's agent id --------------------------------------------------------- */

typedef struct agent_scan {
    char *out;
    size_t size;
    int next_is_agent, found;
} agent_scan;

static int scan_agent(void *ctx, const ph_json_token *t)
{
    agent_scan *a = ctx;
    if (t->depth != 1 || a->found)
        return 0;                  /* the whole text is still checked: never stop early */
    if (t->kind == PH_JSON_KEY) {
        a->next_is_agent = t->len == 5 && memcmp(t->text, "agent", 5) == 0;
        return 0;
    }
    if (a->next_is_agent && (t->kind == PH_JSON_STRING || t->kind == PH_JSON_NUMBER)) {
        snprintf(a->out, a->size, "%.*s", (int)t->len, t->text);
        a->found = 1;
        return 0;
    }
    a->next_is_agent = 0;
    return 0;
}

/* Checks that `text` is one JSON value; when `agent` is not NULL also copies its top-level
 * "agent" member there ("agent" when absent) in the same pass. */
static int check_json(const char *text, size_t len, char *agent, size_t agent_size, ph_error *err)
{
    agent_scan a = {agent, agent_size, 0, 0};
    if (agent)
        snprintf(agent, agent_size, "agent");
    ph_json *j = ph_json_new(NULL, agent ? scan_agent : NULL, &a);
    if (!j)
        return ph_error_set(err, PH_ERR_MEMORY, "out of memory");
    ph_json_status st = ph_json_feed(j, text, len, NULL);
    if (st == PH_JSON_OK)
        st = ph_json_finish(j);
    uint64_t off = 0;
    const char *msg = st == PH_JSON_OK ? NULL : ph_json_error(j, &off);
    int rc = msg ? ph_error_set(err, PH_ERR_JSON, "invalid JSON at byte %llu: %s", (unsigned long long)off, msg) : 0;
    ph_json_free(j);
    return rc;
}

static int copy_inputs(ph_req *r, const ph_request_opts *o, ph_error *err)
{
    r->snapshot = malloc(o->len + 1);
    if (!r->snapshot)
        return ph_error_set(err, PH_ERR_MEMORY, "out of memory");
    memcpy(r->snapshot, o->snapshot, o->len);
    r->snapshot[o->len] = '\0';
    r->snapshot_len = o->len;
    r->game = o->game ? strdup(o->game) : NULL;
    r->user = o->user;
    r->record_path = o->record ? strdup(o->record) : NULL;
    char why[160];
    if (ph_http_headers_copy(r->headers, PH_MAX_HEADERS, o->headers, why, sizeof why) != 0)
        return ph_error_set(err, PH_ERR_ARG, "%s", why);
    if (o->agent)
        snprintf(r->agent, sizeof r->agent, "%s", o->agent);
    return 0;
}

ph_req *ph_req_start(const ph_req_env *env, ph_gen *g, unsigned long id, const ph_request_opts *o,
                     ph_error *err)
{
    char agent[128];
    if (check_json(o->snapshot, o->len, o->agent ? NULL : agent, sizeof agent, err) != 0 ||
        (o->game && check_json(o->game, strlen(o->game), NULL, 0, err) != 0))
        return NULL;
    if (o->template && !ph_gen_find_template(g, o->template))
        return ph_error_set(err, PH_ERR_NOTFOUND, "unknown template '%s'", o->template), NULL;
    ph_req *r = calloc(1, sizeof *r);
    if (!r)
        return ph_error_set(err, PH_ERR_MEMORY, "out of memory"), NULL;
    r->env = *env;
    r->gen = g;
    ph_gen_retain(g);
    r->id = id;
    r->start_ms = ph_req_now();
    r->budget_ms = o->budget_ms > 0 ? o->budget_ms : ph_gen_policy(g)->budget_ms;
    if (!o->agent)
        snprintf(r->agent, sizeof r->agent, "%s", agent);
    ph_buf_init(&r->a.plan, 1u << 20);
    ph_buf_init(&r->a.kept, 1u << 20);
    ph_buf_init(&r->a.drops, 1u << 20);
    if (copy_inputs(r, o, err) != 0 || !(r->view = ph_snapview_new(o->snapshot, o->len, err))) {
        ph_req_free(r);
        return NULL;
    }
    pick_chain(r, o->template);
    if (!ph_req_cache_start(r))
        run_tier(r);
    if (!r->ended)                 /* it waits for a model (or a batch, a slot, a leader) */
        ph_req_offer_provisional(r);
    return r;
}

void ph_req_run_chain(ph_req *r)
{
    r->ci = 0;
    r->tried = 0;
    run_tier(r);
}

/* A request waiting for a slot: try again now; past its wait, on to the next tier. */
void ph_req_retry_slot(ph_req *r, double now_ms)
{
    r->slot_wait = 0;
    if (now_ms >= r->wait_until_ms) {
        char msg[160];
        snprintf(msg, sizeof msg, "no free slot (max_in_flight) on the endpoints of tier %s within the budget",
                 r->a.tier->name);
        ph_req_fail(r, "deadline", msg);
        ph_req_next_tier(r);
        return;
    }
    run_tier(r);
}

void ph_req_give_up_waiting(ph_req *r)
{
    int k = 0;
    while (k < r->nchain - 1 && tier_at(r, r->chain[k])->kind == PH_TIER_LLM)
        k++;
    char msg[200];
    snprintf(msg, sizeof msg, "waited %.0f ms for an identical request in flight; %ld ms of the budget left",
             ph_req_now() - r->start_ms, ph_req_left(r));
    queue_fallback(r, tier_at(r, r->chain[0])->name, tier_at(r, r->chain[k])->name, "deadline", msg);
    r->ci = k;
    r->tried = 0;
    run_tier(r);
}

void ph_req_cancel(ph_req *r)
{
    r->cancelled = 1;
    r->ended = 1;
    r->waiting = 0;
    r->slot_wait = 0;
    ph_req_batch_leave(r);
    ph_req_attempt_reset(r);
    ph_req_cache_release(r, NULL);
}

unsigned long ph_req_id(const ph_req *r) { return r->id; }
int ph_req_ended(const ph_req *r) { return r->ended; }

void ph_req_free(ph_req *r)
{
    if (!r)
        return;
    r->cancelled = 1;
    ph_req_batch_leave(r);
    ph_req_attempt_reset(r);
    ph_req_cache_release(r, NULL);
    ph_buf_free(&r->a.plan);
    ph_buf_free(&r->a.kept);
    ph_buf_free(&r->a.drops);
    ph_snapview_free(r->view);
    ph_http_headers_free(r->headers);
    free(r->snapshot);
    free(r->game);
    free(r->record_path);
    ph_gen_release(r->gen);
    free(r);
}
