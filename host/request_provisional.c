/* request_provisional — the provisional plan: when policies/tiers.lua asks for one
 * (`provisional = true`, or `provisional(ctx)` answers true), a request that has to wait for a
 * model gets the heuristic planner's plan at once, so the agent can act while the model
 * thinks. The plan's steps go through the same checks as any tier's (registry, snapshot,
 * limits, the validate hook); steps that fail are left out. The event:
 *
 *   {"event":"provisional","agent":"c2","request":7,"tier":"heuristic","source":"heuristic",
 *    "plan":{"plan_id":"h-..","steps":[...]},"dropped":[...],"t_ms":0.4}
 *
 * or, when the policy function or the planner failed, "plan":null and "error":"...". It is
 * never the request's answer: the request's one plan event follows, from whichever tier. The
 * request's own attempt state is not touched. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "jsonw.h"
#include "metrics.h"
#include "request_internal.h"

typedef struct provisional {
    ph_req *r;
    ph_buf kept;               /* the steps that passed, as a JSON array without its ']' */
    ph_buf drops;              /* ",{"index":..,"reason":..}" for each step that did not */
    char plan_id[128];
    int closed;                /* the plan object closed */
} provisional;

static int on_step(void *ud, const ph_pp_step *s)
{
    provisional *p = ud;
    ph_req *r = p->r;
    char reason[PH_VALIDATE_REASON];
    ph_error err;
    if (ph_req_check_step(r, NULL, 0, s, reason, sizeof reason, &err) > 0) {
        ph_buf_adds(&p->kept, p->kept.len ? "," : "[");
        ph_buf_add(&p->kept, s->json, s->len);
    } else {
        ph_buf_addf(&p->drops, ",{\"index\":%d,\"reason\":", s->index);
        ph_jsonw_cstr(&p->drops, reason);
        ph_buf_adds(&p->drops, "}");
    }
    return 0;
}

static int on_plan(void *ud, const ph_pp_plan *pl)
{
    provisional *p = ud;
    snprintf(p->plan_id, sizeof p->plan_id, "%s", pl->plan_id);
    p->closed = 1;
    return 0;
}

/* The planner's plan for r, checked, into p; NULL, or what went wrong. */
static const char *make_plan(ph_req *r, provisional *p, ph_error *err)
{
    ph_buf text;
    ph_buf_init(&text, 1u << 20);
    const char *problem = NULL;
    if (ph_gen_heuristic(r->gen, r->snapshot, r->snapshot_len, NULL, &text, err) != 0) {
        problem = err->message;
    } else {
        ph_pp_callbacks cb = {on_step, on_plan};
        ph_planparse *pp = ph_planparse_new(ph_gen_registry(r->gen), NULL, 0, 0, &cb, p);
        if (!pp || ph_planparse_feed(pp, text.data, text.len) == PH_PP_ERROR || ph_planparse_finish(pp) != PH_PP_DONE)
            problem = pp && ph_planparse_error(pp) ? ph_planparse_error(pp) : "the heuristic planner's answer is no plan";
        else if (!p->closed || !p->kept.len)
            problem = "the heuristic planner's plan has no step that passes the checks";
        if (problem && problem != err->message)
            ph_error_set(err, PH_ERR_CONTRACT, "%s", problem);   /* the parser owns its text */
        ph_planparse_free(pp);
    }
    ph_buf_free(&text);
    return problem ? err->message : NULL;
}

void ph_req_offer_provisional(ph_req *r)
{
    if (!ph_gen_may_provisional(r->gen))
        return;                    /* every submit comes here: build no ctx for nothing */
    ph_ctx_space sp;
    ph_chain_ctx ctx;
    ph_req_fill_ctx(r, &ctx, &sp);
    ph_error err;
    int want = ph_gen_provisional(r->gen, &ctx, &err);
    if (want == 0)
        return;
    provisional p = {.r = r};
    ph_buf_init(&p.kept, 1u << 20);
    ph_buf_init(&p.drops, 1u << 20);
    const char *problem = want < 0 ? err.message : make_plan(r, &p, &err);
    ph_buf b;
    ph_req_event_head(r, &b, "provisional");
    ph_buf_adds(&b, ",\"tier\":\"heuristic\",\"source\":\"heuristic\",\"plan\":");
    if (problem) {
        ph_buf_adds(&b, "null,\"error\":");
        ph_jsonw_cstr(&b, problem);
    } else {
        ph_buf_adds(&b, "{\"plan_id\":");
        ph_jsonw_cstr(&b, p.plan_id);
        ph_buf_addf(&b, ",\"steps\":%s]},\"dropped\":[%s]", ph_buf_str(&p.kept),
                    p.drops.len ? ph_buf_str(&p.drops) + 1 : "");
    }
    ph_buf_adds(&b, ",\"t_ms\":");
    ph_jsonw_num(&b, round((ph_req_now() - r->start_ms) * 10) / 10);
    ph_req_queue_event(r, PH_EVENT_PROVISIONAL, &b);
    if (r->env.metrics)
        ph_metrics_provisional(r->env.metrics, !problem);
    ph_buf_free(&p.kept);
    ph_buf_free(&p.drops);
}
