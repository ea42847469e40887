/* request_batch — several requests answered by one model request.
 *
 * A request whose tier uses a batch template (prompts/batch.lua) joins the host's queue
 * instead of posting. ph_batcher_tick (from every poll) sends a batch when the queue holds
 * batch_size(queue, stats) requests of the same generation and tier, or when the oldest has
 * waited max_wait_ms (policies/batch.lua). Members are put in agent-id order and rendered into
 * one prompt, so the same agents and scripts give the same body.
 *
 * The answer array is parsed as it streams (planparse in batch mode). Each element goes to
 * the member whose agent id it names — or, when it names a 1-based position instead, the
 * member at that position; without an agent_id, the element's position. When the element
 * names its agent before its steps (as prompts/batch.lua asks), each step goes to the member
 * as it closes (a step event at once); otherwise its steps wait in the batch until the
 * element closes. The element's plan is the member's plan, delivered as the element closes
 * (the member's attempt ends there and the chain in request.c decides, as for a single
 * request). An element for an agent already answered is ignored. When the transfer ends
 * (or breaks), the parser first hands out what arrived — an element cut off is a partial
 * plan — then every member not answered fails alone (the stream's or the transfer's reason,
 * or "parse": missing from the answer) and goes on down its own chain.
 *
 * A queued member leaves the queue when cancelled or when PH_QUEUE_MARGIN_MS of its budget
 * is left (then it goes to its next tier, reason "deadline"); a member in flight leaves when
 * cancelled, or when its budget ends: with its complete steps as a partial plan, else
 * reason "timeout". A batch whose members all left is cancelled. See request.h. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "request_internal.h"
#include "wire.h"

#define PH_QUEUE_MARGIN_MS 25

struct ph_batcher {
    ph_req **queue;            /* waiting, oldest first */
    int n, size;
};

typedef struct held_step {    /* a step whose element has not named its agent yet */
    int index;
    size_t at, len;            /* in held */
} held_step;

struct ph_batch {
    ph_req_env env;
    ph_gen *gen;               /* retained while the transfer runs */
    const ph_tier *tier;
    const ph_template *tmpl;
    ph_endpoint *ep;
    ph_req *members[PH_MAX_BATCH];   /* rendered order; NULL once answered or gone */
    char agents[PH_MAX_BATCH][128];  /* their agent ids, kept after they leave */
    int answered[PH_MAX_BATCH];
    int n, left, elements;
    ph_framing *fr;
    ph_planparse *pp;
    unsigned long xfer;
    int abandoned;
    ph_buf held;
    held_step steps[64];
    int nheld;
    int routed;                /* the current element's member slot, once its steps name it; -1 */
    char stream_error[256];    /* the stream broke: members not answered fail with it at the end */
};

ph_batcher *ph_batcher_new(void) { return calloc(1, sizeof(ph_batcher)); }

void ph_batcher_free(ph_batcher *q)
{
    if (q)
        free(q->queue);
    free(q);
}

/* ---- the queue ------------------------------------------------------------------------- */

int ph_req_batch_join(ph_req *r)
{
    ph_batcher *q = r->env.batcher;
    if (!q)
        return -1;
    if (q->n == q->size) {
        int size = q->size ? 2 * q->size : 64;
        ph_req **grown = realloc(q->queue, (size_t)size * sizeof *grown);
        if (!grown)
            return -1;
        q->queue = grown;
        q->size = size;
    }
    q->queue[q->n++] = r;
    r->queued = 1;
    r->queued_ms = ph_req_now();
    r->wait_until_ms = r->start_ms + (double)r->budget_ms - PH_QUEUE_MARGIN_MS;
    return 0;
}

static void unqueue(ph_batcher *q, ph_req *r)
{
    for (int i = 0; i < q->n; i++)
        if (q->queue[i] == r) {
            memmove(q->queue + i, q->queue + i + 1, (size_t)(q->n - i - 1) * sizeof *q->queue);
            q->n--;
            break;
        }
    r->queued = 0;
}

/* ---- routing the answer ---------------------------------------------------------------- */

static int slot_for(const struct ph_batch *b, const char *agent)
{
    if (!agent)
        return b->elements < b->n ? b->elements : -1;    /* no agent_id: by position */
    for (int i = 0; i < b->n; i++)
        if (strcmp(b->agents[i], agent) == 0)
            return i;
    char *end;
    long k = strtol(agent, &end, 10);                     /* "2": the second agent */
    return *agent && !*end && k >= 1 && k <= b->n ? (int)(k - 1) : -1;
}

static int on_step(void *ud, const ph_pp_step *s)
{
    struct ph_batch *b = ud;
    if (s->agent && b->routed < 0 && b->nheld == 0) {   /* agent_id came first: route now */
        int slot = slot_for(b, s->agent);
        if (slot >= 0 && b->members[slot] && !b->answered[slot])
            b->routed = slot;
    }
    if (b->routed >= 0 && b->members[b->routed]) {       /* a step event as the step closes */
        ph_req_take_step(b->members[b->routed], b->tmpl->tools, b->tmpl->ntools, s);
        return 0;
    }
    if (b->nheld < 64 && ph_buf_add(&b->held, s->json, s->len) == 0)
        b->steps[b->nheld++] = (held_step){s->index, b->held.len - s->len, s->len};
    return 0;
}

/* The member at `slot` leaves the batch; its attempt ends now. */
static ph_req *detach(struct ph_batch *b, int slot)
{
    ph_req *m = b->members[slot];
    b->members[slot] = NULL;
    b->answered[slot] = 1;
    if (m) {
        m->batch = NULL;
        b->left--;
    }
    return m;
}

static int on_plan(void *ud, const ph_pp_plan *p)
{
    struct ph_batch *b = ud;
    int slot = b->routed >= 0 ? b->routed : slot_for(b, p->agent);
    b->elements++;
    b->routed = -1;
    ph_req *m = slot >= 0 && !b->answered[slot] ? detach(b, slot) : NULL;
    if (m && p->partial && b->stream_error[0])
        snprintf(m->a.break_reason, sizeof m->a.break_reason, "stream_error");
    if (m) {
        for (int i = 0; i < b->nheld; i++) {
            held_step *h = &b->steps[i];
            ph_pp_step s = {.index = h->index, .json = b->held.data + h->at, .len = h->len};
            ph_req_take_step(m, b->tmpl->tools, b->tmpl->ntools, &s);
        }
        ph_req_take_plan(m, p);
        m->a.closed_ms = ph_req_now();
        ph_req_llm_done(m);
    }
    ph_buf_reset(&b->held);
    b->nheld = 0;
    return 0;
}

/* ---- the transfer ---------------------------------------------------------------------- */

static int on_text(void *ud, const char *s, size_t len)
{
    struct ph_batch *b = ud;
    for (int i = 0; i < b->n; i++)
        if (b->members[i])
            b->members[i]->a.answer_chars += len;
    ph_pp_status st = ph_planparse_feed(b->pp, s, len);
    return st != PH_PP_MORE;       /* the array closed (or the parse gave up): stop reading */
}

static int on_done_frame(void *ud, const ph_frame_stats *st)
{
    struct ph_batch *b = ud;
    for (int i = 0; i < b->n; i++)
        if (b->members[i])
            b->members[i]->a.stats = *st, b->members[i]->a.have_stats = 1;
    return 0;
}

/* Members are failed at the end of the transfer, after the parser has handed out what
 * arrived (an element cut off here is still a partial plan). */
static int on_stream_error(void *ud, const char *message)
{
    struct ph_batch *b = ud;
    if (!b->stream_error[0])
        snprintf(b->stream_error, sizeof b->stream_error, "%s", message ? message : "the stream broke");
    return 1;
}

static int on_data(void *ud, const char *bytes, size_t len)
{
    struct ph_batch *b = ud;
    ph_frame_status st = ph_framing_feed(b->fr, bytes, len);
    if (st == PH_FRAME_ERROR)
        on_stream_error(b, ph_framing_error(b->fr));
    return st == PH_FRAME_STOPPED || st == PH_FRAME_ERROR || b->left == 0;
}

static void batch_free(struct ph_batch *b)
{
    ph_framing_free(b->fr);
    ph_planparse_free(b->pp);
    ph_buf_free(&b->held);
    ph_gen_release(b->gen);
    free(b);
}

static void on_http_done(void *ud, const ph_http_result *res)
{
    struct ph_batch *b = ud;
    b->xfer = 0;
    b->ep->outstanding--;
    b->ep->freed++;
    if (!b->abandoned) {
        ph_framing_finish(b->fr);
        ph_planparse_finish(b->pp);    /* an element cut off: its complete steps, partial */
        for (int i = 0; i < b->n; i++) {
            ph_req *m = b->members[i];
            if (!m)
                continue;
            if (b->stream_error[0])
                ph_req_fail(m, "stream_error", b->stream_error);
            ph_req_classify_http(m, res);
            ph_req_fail(m, "parse", "the agent is missing from the batch answer");
            detach(b, i);
            m->a.closed_ms = ph_req_now();
            ph_req_llm_done(m);
        }
    }
    batch_free(b);
}

/* ---- sending a batch ------------------------------------------------------------------- */

static int by_agent(const void *x, const void *y)
{
    const ph_req *a = *(ph_req *const *)x, *b = *(ph_req *const *)y;
    int c = strcmp(a->agent, b->agent);
    return c ? c : (a->id > b->id) - (a->id < b->id);
}

/* Renders and posts the members (already out of the queue, in agent order). 0, or -1 with
 * every member's failure reason set. */
static int post(struct ph_batch *b)
{
    static const ph_framing_callbacks fcb = {on_text, on_done_frame, on_stream_error};
    static const ph_pp_callbacks pcb = {on_step, on_plan};
    static const ph_http_callbacks hcb = {on_data, on_http_done};
    const char *snaps[PH_MAX_BATCH];
    size_t lens[PH_MAX_BATCH], chars = 0;
    long total = 0;
    for (int i = 0; i < b->n; i++) {
        snaps[i] = b->members[i]->snapshot, lens[i] = b->members[i]->snapshot_len;
        long left = ph_req_left(b->members[i]);
        total = left > total ? left : total;
    }
    if (b->tier->total_ms > 0 && b->tier->total_ms < total)
        total = b->tier->total_ms;
    ph_buf body;
    ph_buf_init(&body, 4u << 20);
    ph_error err;
    int rc = ph_req_body(b->gen, b->tier, b->tmpl, b->ep, b->env.keep_alive, snaps, lens, b->n, &body, &chars, &err);
    b->fr = ph_framing_new((ph_api)b->ep->api, &fcb, b, 0);
    b->pp = ph_planparse_new(ph_gen_registry(b->gen), b->tmpl->tools, b->tmpl->ntools, PH_PP_BATCH, &pcb, b);
    if (rc == 0 && b->fr && b->pp) {
        char url[1024];
        snprintf(url, sizeof url, "%s%s", b->ep->url, ph_api_path((ph_api)b->ep->api));
        ph_http_request req = {url, ph_buf_str(&body), body.len, (const char *const *)b->ep->headers,
                               (const char *const *)b->members[0]->headers,
                               b->env.connect_timeout_ms, b->tier->first_byte_ms, total > 0 ? total : 1,
                               b->env.max_response};
        b->xfer = ph_http_start(b->env.http, &req, &hcb, b);
    }
    ph_buf_free(&body);
    for (int i = 0; i < b->n; i++) {
        attempt *a = &b->members[i]->a;
        a->prompt_chars = chars;
        if (rc != 0)
            ph_req_fail(b->members[i], "script", err.message);
        else if (!b->xfer)
            ph_req_fail(b->members[i], "connect", "the transfer could not start");
    }
    if (!b->xfer)
        return -1;
    b->ep->outstanding++;
    return 0;
}

/* Takes the first k queued members of the oldest's generation and tier out of the queue and
 * sends them as one batch (or, when the tier may not run, sends each on down its chain). */
static void dispatch(ph_batcher *q, int k)
{
    ph_req *first = q->queue[0];
    struct ph_batch *b = calloc(1, sizeof *b);
    if (!b)
        return;
    for (int i = 0; i < q->n && b->n < k;) {
        ph_req *r = q->queue[i];
        if (r->gen == first->gen && r->a.tier == first->a.tier) {
            unqueue(q, r);
            b->members[b->n++] = r;
        } else {
            i++;
        }
    }
    qsort(b->members, (size_t)b->n, sizeof b->members[0], by_agent);
    for (int i = 0; i < b->n; i++)
        snprintf(b->agents[i], sizeof b->agents[i], "%s", b->members[i]->agent);
    b->env = first->env;
    b->gen = first->gen;
    ph_gen_retain(b->gen);
    b->tier = first->a.tier;
    b->tmpl = first->a.tmpl;
    b->left = b->n;
    b->routed = -1;
    ph_buf_init(&b->held, 1u << 20);
    int allowed = ph_req_llm_allowed(b->members[0]);
    b->ep = b->members[0]->a.ep;
    if (allowed > 0 && post(b) == 0) {
        for (int i = 0; i < b->n; i++) {
            ph_req *m = b->members[i];
            m->batch = b;
            m->batch_size = b->n;
            m->a.ep = b->ep;
            m->a.start_ms = ph_req_now();
        }
        return;
    }
    if (allowed < 0)
        ph_req_fail(b->members[0], "deadline", "no free slot (max_in_flight) for the batch");
    char reason[32], message[512];     /* why the tier cannot run: the same for every member */
    snprintf(reason, sizeof reason, "%s", b->members[0]->a.reason[0] ? b->members[0]->a.reason : "connect");
    snprintf(message, sizeof message, "%s", b->members[0]->a.message);
    for (int i = 0; i < b->n; i++) {   /* each member moves on down its own chain */
        ph_req *m = b->members[i];
        b->members[i] = NULL;
        ph_req_fail(m, reason, message);
        ph_req_next_tier(m);
    }
    batch_free(b);
}

double ph_batcher_tick(ph_batcher *q, double now)
{
    for (int i = 0; i < q->n;) {          /* members out of time leave the queue first */
        ph_req *r = q->queue[i];
        if (now < r->wait_until_ms) {
            i++;
            continue;
        }
        unqueue(q, r);
        char msg[160];
        snprintf(msg, sizeof msg, "waited %.0f ms in the batch queue; %ld ms of the budget left",
                 now - r->queued_ms, ph_req_left(r));
        ph_req_fail(r, "deadline", msg);
        ph_req_next_tier(r);
    }
    while (q->n > 0) {
        ph_req *first = q->queue[0];
        const ph_batch_policy *p = ph_gen_batch_policy(first->gen);
        int same = 0;
        for (int i = 0; i < q->n; i++)
            same += q->queue[i]->gen == first->gen && q->queue[i]->a.tier == first->a.tier;
        double med, p95;
        int samples;
        ph_latency_get(first->env.latency, first->a.tier->name, &med, &p95, &samples);
        ph_error err;
        int k = ph_gen_batch_size(first->gen, same, now - first->queued_ms, med, p95, samples, &err);
        if (k < 1)
            k = p->max_size;           /* a broken hook: batch as the file's max_size says */
        if (same < k && now - first->queued_ms < p->max_wait_ms)
            return first->queued_ms + p->max_wait_ms;
        dispatch(q, k);
    }
    return INFINITY;
}

void ph_req_batch_expire(ph_req *r)
{
    struct ph_batch *b = r->batch;
    int slot = -1;
    for (int i = 0; b && i < b->n; i++)
        if (b->members[i] == r)
            slot = i;
    if (slot >= 0 && b->routed == slot)
        b->routed = -1;                    /* the rest of its element goes nowhere */
    ph_req_batch_leave(r);
    attempt *a = &r->a;
    if (a->nsteps > 0) {                   /* its complete steps so far: a partial plan */
        char id[64];
        snprintf(id, sizeof id, "partial-%lu", r->id);
        ph_pp_plan p = {.plan_id = id, .nsteps = a->nsteps, .partial = 1};
        snprintf(a->break_reason, sizeof a->break_reason, "timeout");
        ph_req_take_plan(r, &p);
        a->closed_ms = ph_req_now();
        ph_req_llm_done(r);
        return;
    }
    ph_req_fail(r, "timeout", "the batch answer did not reach this agent within its budget");
    ph_req_next_tier(r);
}

void ph_req_batch_leave(ph_req *r)
{
    if (r->queued)
        unqueue(r->env.batcher, r);
    struct ph_batch *b = r->batch;
    if (!b)
        return;
    for (int i = 0; i < b->n; i++)
        if (b->members[i] == r)
            detach(b, i);
    if (b->left == 0 && b->xfer) {
        b->abandoned = 1;
        ph_http_cancel(b->env.http, b->xfer);   /* its done callback frees the batch */
    }
}
