/* request_llm — one LLM attempt of a request: render, post, decode, parse.
 *
 * Steps are queued as step events the moment the parser hands them out; the transfer is
 * stopped shortly after the plan closes (DRAIN_MS / DRAIN_BYTES let the server end the
 * stream itself, so the connection is reused and its counts arrive). When the transfer ends
 * the chain in request.c decides what the attempt produced. See request.h. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "request_internal.h"
#include "schema.h"
#include "selfcheck.h"
#include "wire.h"

#define DRAIN_MS 50
#define DRAIN_BYTES 4096

void ph_req_attempt_reset(ph_req *r)
{
    attempt *a = &r->a;
    if (a->xfer) {
        a->abandoned = 1;          /* cancel runs the done callback now: let it do nothing */
        ph_http_cancel(r->env.http, a->xfer);
    }
    if (a->rec)
        ph_record_close(a->rec, NULL);
    ph_framing_free(a->fr);
    ph_planparse_free(a->pp);
    ph_buf_free(&a->plan);
    ph_buf_free(&a->kept);
    ph_buf_free(&a->drops);
    memset(a, 0, sizeof *a);
    ph_buf_init(&a->plan, 1u << 20);
    ph_buf_init(&a->kept, 1u << 20);
    ph_buf_init(&a->drops, 1u << 20);
}

/* ---- parser callbacks ---------------------------------------------------------------- */

static int on_step(void *ud, const ph_pp_step *s)
{
    ph_req *r = ud;
    ph_req_take_step(r, r->a.tmpl->tools, r->a.tmpl->ntools, s);
    return 0;
}

static int on_plan(void *ud, const ph_pp_plan *p)
{
    ph_req_take_plan(ud, p);
    return 0;
}

/* ---- stream callbacks ---------------------------------------------------------------- */

static int on_text(void *ud, const char *s, size_t len)
{
    ph_req *r = ud;
    attempt *a = &r->a;
    if (a->closed_ms > 0)          /* draining: only waiting for the server to finish */
        return (a->drained += len) > DRAIN_BYTES;
    a->answer_chars += ph_utf8_chars(s, len);
    ph_pp_status st = ph_planparse_feed(a->pp, s, len);
    if (st == PH_PP_DONE) {
        a->closed_ms = ph_req_now();
        ph_http_limit(r->env.http, a->xfer, DRAIN_MS);
        return 0;
    }
    if (st == PH_PP_ERROR)
        ph_req_fail(r, "parse", ph_planparse_error(a->pp));
    return st != PH_PP_MORE;
}

static int on_done(void *ud, const ph_frame_stats *st)
{
    ph_req *r = ud;
    r->a.stats = *st;
    r->a.have_stats = 1;
    return 0;
}

static int on_stream_error(void *ud, const char *message)
{
    ph_req_fail(ud, "stream_error", message);
    return 1;
}

/* ---- recording ----------------------------------------------------------------------- */

static void record_open(ph_req *r, long status)
{
    ph_api api = (ph_api)r->a.ep->api;
    ph_record_meta meta = {ph_api_name(api), ph_api_path(api), (int)status,
                           api == PH_API_OLLAMA || api == PH_API_OLLAMA_GENERATE
                               ? "application/x-ndjson" : "text/event-stream"};
    ph_error err;
    r->a.rec = ph_record_open(r->record_path, &meta, &err);
    if (!r->a.rec)
        fprintf(stderr, "planhost: cannot record: %s\n", err.message);
    free(r->record_path);          /* one attempt is recorded: the first that answers */
    r->record_path = NULL;
}

static int on_data(void *ud, const char *bytes, size_t len)
{
    ph_req *r = ud;
    attempt *a = &r->a;
    if (r->record_path)
        record_open(r, 200);
    if (a->rec)
        ph_record_add(a->rec, ph_req_now() - a->start_ms, bytes, len, NULL);
    ph_frame_status st = ph_framing_feed(a->fr, bytes, len);
    if (st == PH_FRAME_ERROR)
        ph_req_fail(r, "stream_error", ph_framing_error(a->fr));
    return st == PH_FRAME_STOPPED || st == PH_FRAME_ERROR;
}

/* ---- the end of the transfer --------------------------------------------------------- */

void ph_req_classify_http(ph_req *r, const ph_http_result *res)
{
    char code[32];
    switch (res->fail) {
    case PH_HTTP_CONNECT: case PH_HTTP_OTHER: ph_req_fail(r, "connect", res->message); return;
    case PH_HTTP_TIMEOUT: ph_req_fail(r, "timeout", res->message); return;
    case PH_HTTP_RECV: ph_req_fail(r, "stream_error", res->message); return;
    case PH_HTTP_TOO_LARGE: ph_req_fail(r, "stream_error", "the answer passed the response size cap"); return;
    default: break;
    }
    if (res->status >= 300) {
        snprintf(code, sizeof code, "http_%ld", res->status);
        ph_req_fail(r, code, res->message);
    }
}

static void record_finish(ph_req *r, const ph_http_result *res)
{
    attempt *a = &r->a;
    if (r->record_path && res->status >= 300) {
        record_open(r, res->status);
        if (a->rec && res->message)
            ph_record_add(a->rec, ph_req_now() - a->start_ms, res->message, strlen(res->message), NULL);
    }
    if (a->rec) {
        ph_record_close(a->rec, NULL);
        a->rec = NULL;
    }
}

static void on_http_done(void *ud, const ph_http_result *res)
{
    ph_req *r = ud;
    attempt *a = &r->a;
    a->xfer = 0;
    a->ep->outstanding--;
    a->ep->freed++;
    record_finish(r, res);
    if (a->abandoned || r->cancelled || r->ended)
        return;
    if (res->fail == PH_HTTP_OK && res->status < 300 && ph_framing_finish(a->fr) == PH_FRAME_ERROR && !a->plan_seen)
        ph_req_fail(r, "stream_error", ph_framing_error(a->fr));
    if (!a->plan_seen)
        ph_req_classify_http(r, res);
    if (!a->plan_seen && ph_planparse_finish(a->pp) != PH_PP_DONE)
        ph_req_fail(r, "parse", ph_planparse_error(a->pp));
    if (a->plan_seen && a->partial && a->reason[0] && strcmp(a->reason, "invalid") != 0) {
        snprintf(a->break_reason, sizeof a->break_reason, "%s", a->reason);
        a->reason[0] = '\0';       /* a partial plan: the chain decides whether it stands */
    }
    ph_req_llm_done(r);
}

/* ---- starting ------------------------------------------------------------------------ */

int ph_req_body(ph_gen *g, const ph_tier *tier, const ph_template *t, const ph_endpoint *ep,
                const char *keep_alive, const char *const *snaps, const size_t *lens, int n, ph_buf *body,
                size_t *prompt_chars, ph_error *err)
{
    ph_buf user, schema;
    ph_buf_init(&user, PH_MAX_PROMPT);
    ph_buf_init(&schema, 1u << 20);
    int rc = ph_gen_render_user(g, t, snaps, lens, n, &user, err);
    if (rc == 0) {
        *prompt_chars = ph_utf8_chars(t->system, t->system_len) + ph_utf8_chars(user.data, user.len);
        int use_schema = tier->schema >= 0 ? tier->schema : t->schema;
        ph_model_options opt = t->options;          /* the tier's own options win */
        const ph_model_options *to = &tier->options;
        if (!isnan(to->temperature)) opt.temperature = to->temperature;
        if (!isnan(to->top_p)) opt.top_p = to->top_p;
        if (to->top_k >= 0) opt.top_k = to->top_k;
        if (to->seed >= 0) opt.seed = to->seed;
        if (to->num_predict >= 0) opt.num_predict = to->num_predict;
        if (to->num_ctx >= 0) opt.num_ctx = to->num_ctx;
        if (to->nstop > 0) opt.stop = to->stop, opt.nstop = to->nstop;
        if (tier->max_tokens > 0)
            opt.num_predict = tier->max_tokens;
        if (use_schema)
            ph_schema_build(ph_gen_registry(g), t->tools, t->ntools, t->batch, &schema);
        ph_request_spec spec = {(ph_api)ep->api, tier->model ? tier->model : ep->model, t->system,
                                t->system_len, ph_buf_str(&user), user.len, &opt, keep_alive,
                                use_schema ? ph_buf_str(&schema) : NULL};
        if (ph_wire_body(&spec, body) != 0)
            rc = ph_error_set(err, PH_ERR_LIMIT, "request body too large");
    }
    ph_buf_free(&user);
    ph_buf_free(&schema);
    return rc;
}

static int render(ph_req *r, ph_buf *body, ph_error *err)
{
    const char *snap = r->snapshot;
    return ph_req_body(r->gen, r->a.tier, r->a.tmpl, r->a.ep, r->env.keep_alive, &snap, &r->snapshot_len, 1, body,
                       &r->a.prompt_chars, err);
}

int ph_req_llm_start(ph_req *r, ph_error *err)
{
    static const ph_framing_callbacks fcb = {on_text, on_done, on_stream_error};
    static const ph_pp_callbacks pcb = {on_step, on_plan};
    static const ph_http_callbacks hcb = {on_data, on_http_done};
    attempt *a = &r->a;
    a->start_ms = ph_req_now();
    ph_buf body;
    ph_buf_init(&body, 4u << 20);
    if (render(r, &body, err) != 0) {
        ph_buf_free(&body);
        return -1;
    }
    a->fr = ph_framing_new((ph_api)a->ep->api, &fcb, r, 0);
    a->pp = ph_planparse_new(ph_gen_registry(r->gen), a->tmpl->tools, a->tmpl->ntools,
                             a->tmpl->batch ? PH_PP_BATCH : 0, &pcb, r);
    long left = ph_req_left(r);
    long total = a->tier->total_ms > 0 && a->tier->total_ms < left ? a->tier->total_ms : left;
    char url[1024];
    snprintf(url, sizeof url, "%s%s", a->ep->url, ph_api_path((ph_api)a->ep->api));
    ph_http_request req = {url, ph_buf_str(&body), body.len, (const char *const *)a->ep->headers,
                           (const char *const *)r->headers,
                           r->env.connect_timeout_ms, a->tier->first_byte_ms, total > 0 ? total : 1,
                           r->env.max_response};
    if (a->fr && a->pp)
        a->xfer = ph_http_start(r->env.http, &req, &hcb, r);
    ph_buf_free(&body);
    if (!a->xfer)
        return ph_error_set(err, PH_ERR_MEMORY, "the transfer could not start");
    a->ep->outstanding++;
    return 0;
}
