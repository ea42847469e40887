/* request — one planning request from prompt to plan event. See request.h. */
#define _POSIX_C_SOURCE 200809L
#include "request.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "framing.h"
#include "jsonstream.h"
#include "jsonw.h"
#include "planparse.h"
#include "record.h"
#include "schema.h"
#include "selfcheck.h"
#include "wire.h"

#define EVENT_CAP (1u << 20)

/* Once the plan has closed, the stream may run on this long (and this many bytes) so the
 * server can end it by itself: then the connection is reused and the server's own token
 * counts arrive. Past either limit the transfer is stopped, so the server stops generating. */
#define DRAIN_MS 50
#define DRAIN_BYTES 4096

struct ph_req {
    ph_req_env env;
    ph_gen *gen;
    const ph_template *tmpl;
    unsigned long id, xfer;
    char agent[128];
    double start_ms, first_step_ms;
    double closed_ms;              /* when the plan closed (0: not yet) */
    size_t drained;                /* model text bytes after the plan closed */
    size_t prompt_chars;
    size_t answer_chars;           /* model text received, in characters */
    ph_frame_stats stats;
    int have_stats;
    ph_framing *fr;
    ph_planparse *pp;
    int plan_seen;                 /* the parser emitted a plan (kept in `plan`) */
    ph_buf plan;                   /* the plan event's body fields, built at plan time */
    int nsteps;
    char reason[32];               /* why the LLM tier failed */
    char message[512];
    int ended, cancelled;
    char *record_path;             /* --record: where the raw stream goes */
    ph_record_writer *rec;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void fail(ph_req *r, const char *reason, const char *message)
{
    if (r->reason[0])
        return;                    /* the first cause wins */
    snprintf(r->reason, sizeof r->reason, "%s", reason);
    snprintf(r->message, sizeof r->message, "%s", message ? message : "");
}

/* ---- events -------------------------------------------------------------------------- */

static void event_head(ph_req *r, ph_buf *b, const char *kind)
{
    ph_buf_init(b, EVENT_CAP);
    ph_buf_addf(b, "{\"event\":\"%s\",\"agent\":", kind);
    ph_jsonw_cstr(b, r->agent);
    ph_buf_addf(b, ",\"request\":%lu", r->id);
}

static void queue(ph_req *r, ph_event_kind kind, ph_buf *b)
{
    ph_buf_adds(b, "}");
    r->env.queue(r->env.host, kind, r->id, b);
}

static int on_step(void *ud, const ph_pp_step *s)
{
    ph_req *r = ud;
    double t = now_ms() - r->start_ms;
    if (r->nsteps++ == 0)
        r->first_step_ms = t;
    ph_buf b;
    event_head(r, &b, "step");
    ph_buf_adds(&b, ",\"tier\":");
    ph_jsonw_cstr(&b, r->tmpl->name);
    ph_buf_addf(&b, ",\"index\":%d,\"step\":", s->index);
    ph_buf_add(&b, s->json, s->len);
    ph_buf_adds(&b, ",\"t_ms\":");
    ph_jsonw_num(&b, round(t * 10) / 10);
    queue(r, PH_EVENT_STEP, &b);
    return 0;
}

/* Keeps what the plan event will say about the parsed plan. */
static int on_plan(void *ud, const ph_pp_plan *p)
{
    ph_req *r = ud;
    if (r->plan_seen)
        return 0;
    r->plan_seen = 1;
    ph_buf *b = &r->plan;
    ph_buf_addf(b, ",\"partial\":%s,\"plan\":{\"plan_id\":", p->partial ? "true" : "false");
    ph_jsonw_cstr(b, p->plan_id);
    ph_buf_adds(b, ",\"steps\":");
    ph_buf_add(b, p->steps_json, p->steps_len);
    ph_buf_adds(b, "},\"dropped\":[");
    for (int i = 0; i < p->ndropped; i++) {
        ph_buf_addf(b, "%s{\"index\":%d,\"reason\":", i ? "," : "", p->dropped[i].index);
        ph_jsonw_cstr(b, p->dropped[i].reason);
        ph_buf_adds(b, "}");
    }
    ph_buf_adds(b, "]");
    if (p->nsteps == 0)
        fail(r, "invalid", "the plan has no usable step");
    return 0;
}

static void add_timing(ph_req *r, ph_buf *b)
{
    double total = (r->closed_ms > 0 ? r->closed_ms : now_ms()) - r->start_ms;
    ph_buf_adds(b, ",\"first_step_ms\":");
    ph_jsonw_num(b, r->nsteps ? round(r->first_step_ms * 10) / 10 : NAN);
    ph_buf_adds(b, ",\"total_ms\":");
    ph_jsonw_num(b, round(total * 10) / 10);
    /* The server's counts come in its final frame, which a stream stopped at the plan's
     * closing brace never reaches: then both counts are the estimate (characters / 4). */
    int server = r->have_stats && r->stats.prompt_tokens >= 0 && r->stats.completion_tokens >= 0;
    ph_buf_addf(b, ",\"prompt_chars\":%zu,\"prompt_tokens\":%ld,\"completion_tokens\":%ld,\"counts\":\"%s\"",
                r->prompt_chars, server ? r->stats.prompt_tokens : (long)ph_estimate_tokens(r->prompt_chars),
                server ? r->stats.completion_tokens : (long)ph_estimate_tokens(r->answer_chars),
                server ? "server" : "estimated");
}

static void queue_llm_plan(ph_req *r)
{
    ph_buf b;
    event_head(r, &b, "plan");
    ph_buf_adds(&b, ",\"tier\":");
    ph_jsonw_cstr(&b, r->tmpl->name);
    ph_buf_adds(&b, ",\"source\":\"llm\",\"cache\":\"off\"");
    ph_buf_add(&b, r->plan.data, r->plan.len);
    add_timing(r, &b);
    queue(r, PH_EVENT_PLAN, &b);
}

/* The tier that cannot fail: look around, then hold. */
static void queue_emergency(ph_req *r)
{
    ph_buf b;
    event_head(r, &b, "fallback");
    ph_buf_adds(&b, ",\"from\":");
    ph_jsonw_cstr(&b, r->tmpl->name);
    ph_buf_adds(&b, ",\"to\":\"emergency\",\"reason\":");
    ph_jsonw_cstr(&b, r->reason);
    ph_buf_adds(&b, ",\"error\":");
    ph_jsonw_cstr(&b, r->message);
    queue(r, PH_EVENT_FALLBACK, &b);
    event_head(r, &b, "plan");
    ph_buf_addf(&b, ",\"tier\":\"emergency\",\"source\":\"emergency\",\"cache\":\"off\",\"partial\":false,"
                    "\"plan\":{\"plan_id\":\"emergency-%lu\",\"steps\":[{\"act\":\"Scan\",\"radius\":10},"
                    "{\"act\":\"Wait\",\"duration\":1}]},\"dropped\":[]", r->id);
    r->nsteps = 0;
    add_timing(r, &b);
    queue(r, PH_EVENT_PLAN, &b);
}

/* Exactly once per request that was not cancelled. */
static void end(ph_req *r)
{
    if (r->ended)
        return;
    r->ended = 1;
    if (r->plan_seen && !r->reason[0])
        queue_llm_plan(r);
    else {
        fail(r, "parse", "no plan in the model's answer");
        queue_emergency(r);
    }
    r->env.finished(r->env.host, r);
}

/* ---- the stream ---------------------------------------------------------------------- */

static int on_text(void *ud, const char *s, size_t len)
{
    ph_req *r = ud;
    if (r->closed_ms > 0)          /* draining: only waiting for the server to finish */
        return (r->drained += len) > DRAIN_BYTES;
    r->answer_chars += ph_utf8_chars(s, len);
    ph_pp_status st = ph_planparse_feed(r->pp, s, len);
    if (st == PH_PP_DONE) {
        r->closed_ms = now_ms();
        ph_http_limit(r->env.http, r->xfer, DRAIN_MS);
        return 0;
    }
    if (st == PH_PP_ERROR)
        fail(r, "parse", ph_planparse_error(r->pp));
    return st != PH_PP_MORE;
}

static int on_done(void *ud, const ph_frame_stats *st)
{
    ph_req *r = ud;
    r->stats = *st;
    r->have_stats = 1;
    return 0;
}

static int on_stream_error(void *ud, const char *message)
{
    fail(ud, "stream_error", message);
    return 1;
}

/* Opens the record file once the status is known (at the first body bytes, or at the end). */
static void record_open(ph_req *r, long status)
{
    ph_api api = (ph_api)r->env.api;
    ph_record_meta meta = {ph_api_name(api), ph_api_path(api), (int)status,
                           api == PH_API_OLLAMA || api == PH_API_OLLAMA_GENERATE
                               ? "application/x-ndjson" : "text/event-stream"};
    ph_error err;
    r->rec = ph_record_open(r->record_path, &meta, &err);
    if (!r->rec)
        fprintf(stderr, "planhost: cannot record: %s\n", err.message);
    free(r->record_path);
    r->record_path = NULL;
}

static void record_chunk(ph_req *r, const char *bytes, size_t len)
{
    if (r->record_path)
        record_open(r, 200);
    if (r->rec)
        ph_record_add(r->rec, now_ms() - r->start_ms, bytes, len, NULL);
}

static int on_data(void *ud, const char *bytes, size_t len)
{
    ph_req *r = ud;
    record_chunk(r, bytes, len);
    ph_frame_status st = ph_framing_feed(r->fr, bytes, len);
    if (st == PH_FRAME_ERROR)
        fail(r, "stream_error", ph_framing_error(r->fr));
    return st == PH_FRAME_STOPPED || st == PH_FRAME_ERROR;
}

/* The body ended without the plan closing: what the parser has so far may be a partial plan. */
static void drain_parser(ph_req *r)
{
    if (r->plan_seen)
        return;
    if (ph_planparse_finish(r->pp) != PH_PP_DONE && !r->reason[0])
        fail(r, "parse", ph_planparse_error(r->pp));
}

static void classify_http(ph_req *r, const ph_http_result *res)
{
    char code[32];
    switch (res->fail) {
    case PH_HTTP_CONNECT: fail(r, "connect", res->message); return;
    case PH_HTTP_TIMEOUT: fail(r, "timeout", res->message); return;
    case PH_HTTP_RECV: fail(r, "stream_error", res->message); return;
    case PH_HTTP_TOO_LARGE: fail(r, "stream_error", "the answer passed the response size cap"); return;
    case PH_HTTP_OTHER: fail(r, "connect", res->message); return;
    default: break;
    }
    if (res->status >= 300) {
        snprintf(code, sizeof code, "http_%ld", res->status);
        fail(r, code, res->message);
    }
}

static void on_http_done(void *ud, const ph_http_result *res)
{
    ph_req *r = ud;
    r->xfer = 0;
    if (r->record_path && res->status >= 300) {
        record_open(r, res->status);
        if (r->rec && res->message)
            ph_record_add(r->rec, now_ms() - r->start_ms, res->message, strlen(res->message), NULL);
    }
    if (r->rec) {
        ph_record_close(r->rec, NULL);
        r->rec = NULL;
    }
    if (r->cancelled)
        return;
    if (res->fail == PH_HTTP_OK && res->status < 300 && ph_framing_finish(r->fr) == PH_FRAME_ERROR &&
        !r->plan_seen)
        fail(r, "stream_error", ph_framing_error(r->fr));
    if (!r->plan_seen)
        classify_http(r, res);
    drain_parser(r);
    if (r->plan_seen && r->reason[0] && strcmp(r->reason, "invalid") != 0)
        r->reason[0] = '\0';       /* a partial plan with steps stands despite the break */
    end(r);
}

/* ---- starting ------------------------------------------------------------------------ */

static const char *find_agent(const char *text, size_t len, char *out, size_t size);

static int render(ph_req *r, const ph_request_opts *o, ph_buf *body, ph_error *err)
{
    ph_buf user;
    ph_buf_init(&user, PH_MAX_PROMPT);
    if (ph_gen_render_user(r->gen, r->tmpl, &o->snapshot, &o->len, 1, &user, err) != 0) {
        ph_buf_free(&user);
        return -1;
    }
    r->prompt_chars = ph_utf8_chars(r->tmpl->system, r->tmpl->system_len) + ph_utf8_chars(user.data, user.len);
    ph_buf schema;
    ph_buf_init(&schema, 1u << 20);
    if (r->tmpl->schema)
        ph_schema_build(ph_gen_registry(r->gen), r->tmpl->tools, r->tmpl->ntools, r->tmpl->batch, &schema);
    ph_request_spec spec = {(ph_api)r->env.api, r->env.model, r->tmpl->system, r->tmpl->system_len,
                            ph_buf_str(&user), user.len, &r->tmpl->options, r->env.keep_alive,
                            r->tmpl->schema ? ph_buf_str(&schema) : NULL};
    int rc = ph_wire_body(&spec, body);
    ph_buf_free(&user);
    ph_buf_free(&schema);
    return rc == 0 ? 0 : ph_error_set(err, PH_ERR_LIMIT, "request body too large");
}

static int start_stream(ph_req *r, const ph_request_opts *o, ph_buf *body, int budget_ms)
{
    static const ph_framing_callbacks fcb = {on_text, on_done, on_stream_error};
    static const ph_pp_callbacks pcb = {on_step, on_plan};
    static const ph_http_callbacks hcb = {on_data, on_http_done};
    r->fr = ph_framing_new((ph_api)r->env.api, &fcb, r, 0);
    r->pp = ph_planparse_new(ph_gen_registry(r->gen), r->tmpl->tools, r->tmpl->ntools,
                             r->tmpl->batch ? PH_PP_BATCH : 0, &pcb, r);
    if (!r->fr || !r->pp)
        return fail(r, "connect", "out of memory"), -1;
    char url[1024];
    snprintf(url, sizeof url, "%s%s", r->env.url, ph_api_path((ph_api)r->env.api));
    ph_http_request req = {url, ph_buf_str(body), body->len, o->headers, r->env.connect_timeout_ms,
                           r->env.first_byte_timeout_ms, budget_ms, 0};
    r->xfer = ph_http_start(r->env.http, &req, &hcb, r);
    if (!r->xfer)
        return fail(r, "connect", "the transfer could not start"), -1;
    return 0;
}

ph_req *ph_req_start(const ph_req_env *env, ph_gen *g, unsigned long id, const ph_request_opts *o,
                     ph_error *err)
{
    const ph_template *t = ph_gen_find_template(g, o->template ? o->template : "simplified");
    if (!t)
        return ph_error_set(err, PH_ERR_NOTFOUND, "unknown template '%s'", o->template), NULL;
    ph_req *r = calloc(1, sizeof *r);
    if (!r)
        return ph_error_set(err, PH_ERR_MEMORY, "out of memory"), NULL;
    r->env = *env;
    r->gen = g;
    ph_gen_retain(g);
    r->tmpl = t;
    r->id = id;
    r->start_ms = now_ms();
    ph_buf_init(&r->plan, EVENT_CAP);
    r->record_path = o->record ? strdup(o->record) : NULL;
    if (o->agent)
        snprintf(r->agent, sizeof r->agent, "%s", o->agent);
    else
        find_agent(o->snapshot, o->len, r->agent, sizeof r->agent);
    ph_buf body;
    ph_buf_init(&body, 4u << 20);
    if (render(r, o, &body, err) != 0) {
        ph_buf_free(&body);
        ph_req_free(r);
        return NULL;
    }
    if (start_stream(r, o, &body, o->budget_ms) != 0)
        end(r);                    /* ends at once through the emergency tier */
    ph_buf_free(&body);
    return r;
}

void ph_req_cancel(ph_req *r)
{
    r->cancelled = 1;
    r->ended = 1;
    if (r->xfer)
        ph_http_cancel(r->env.http, r->xfer);
}

unsigned long ph_req_id(const ph_req *r) { return r->id; }

void ph_req_free(ph_req *r)
{
    if (!r)
        return;
    if (r->xfer) {
        r->cancelled = 1;
        ph_http_cancel(r->env.http, r->xfer);
    }
    if (r->rec)
        ph_record_close(r->rec, NULL);
    free(r->record_path);
    ph_framing_free(r->fr);
    ph_planparse_free(r->pp);
    ph_buf_free(&r->plan);
    ph_gen_release(r->gen);
    free(r);
}

/* ---- the snapshot's agent id --------------------------------------------------------- */

typedef struct agent_scan {
    char *out;
    size_t size;
    int next_is_agent;
} agent_scan;

static int scan_agent(void *ctx, const ph_json_token *t)
{
    agent_scan *a = ctx;
    if (t->depth != 1)
        return 0;
    if (t->kind == PH_JSON_KEY) {
        a->next_is_agent = t->len == 5 && memcmp(t->text, "agent", 5) == 0;
        return 0;
    }
    if (a->next_is_agent && (t->kind == PH_JSON_STRING || t->kind == PH_JSON_NUMBER)) {
        snprintf(a->out, a->size, "%.*s", (int)t->len, t->text);
        return 1;
    }
    a->next_is_agent = 0;
    return 0;
}

/* Copies the snapshot's top-level "agent" into `out` ("agent" when absent). */
static const char *find_agent(const char *text, size_t len, char *out, size_t size)
{
    snprintf(out, size, "agent");
    agent_scan a = {out, size, 0};
    ph_json *j = ph_json_new(NULL, scan_agent, &a);
    if (j) {
        ph_json_feed(j, text, len, NULL);
        ph_json_free(j);
    }
    return out;
}
