/* planparse — finds the plan in model text on top of jsonstream (see planparse.h).
 *
 * Two layers, one pass. The plan layer skips prose up to the next '{' or '[' (a candidate)
 * and feeds the bytes from there to a jsonstream tokenizer; its token callback locates the
 * plan inside the candidate and hands each step object's tokens to the step layer, which
 * collects the members in a reused arena. When the step's '}' arrives, the step layer
 * validates it against the registry and appends it canonically to the plan's steps array
 * (one reused buffer, also what step() is handed) and step() is called, in the same feed.
 * (The step layer is planparse_step.c; this file is the plan layer.)
 * A candidate that is not a plan is abandoned: one that closed is skipped whole and the
 * search goes on after it; one that broke (prose like "use {braces}") is re-scanned from the
 * byte after its '{'. For that the bytes of a candidate are kept (capped) until its first
 * event is out; from then on the parser is committed to it and keeps nothing. Only that
 * re-scan ever reads a byte twice (and a step found by it comes out when the re-scan gets
 * to it, which may be a feed later than its brace).
 *
 * What is the plan. The first object holding a steps array, at any depth of the candidate
 * (so wrappers such as {"plan":{...}} or {"response":{...}} work). plan_id and agent_id are
 * read from that object, or else from the nearest enclosing one. Non-batch: the first such
 * object wins and PH_PP_DONE follows its '}' at once. A top-level array is taken as the steps
 * array itself once one of its elements names a tool; if instead an element has steps (a
 * batch-shaped answer), that element is the plan. Batch: every plan object in the top-level
 * value is emitted as it closes, with its agent; PH_PP_DONE follows the top-level value. An
 * element without steps emits nothing (the host sees that agent missing and falls back); an
 * empty steps array is a plan of no steps. A top-level object in batch mode is a batch of
 * one; {"plans": [...]} works too. A step's agent is known only when agent_id came before
 * the steps (as the prompts ask); the plan event always has it.
 *
 * Leniencies of the plan (those of a step are listed with the step layer), all from how
 * models write:
 *   - prose, code fences (any language tag) and <think> blocks around or before the plan;
 *     a later second object is ignored;
 *   - trailing commas (jsonstream's PH_JSON_ALLOW_TRAILING_COMMA);
 *   - a plan cut short — by the end of the text, or by a syntax error once a step is out
 *     (typically a fence closing before the last braces) — is emitted as a partial plan of
 *     the steps complete so far, when there is at least one (kept or dropped);
 *   - keys compare ignoring ASCII case and '_', '-', ' ': "planId", "plan-id" and "PlanID"
 *     are plan_id; plan_id may also be written "id" (plan_id wins when both are there) and
 *     may be a number; the steps array may be called "actions" or "plan"; agent_id "agent";
 *   - a missing or empty plan_id is generated: "p-" and 8 hex digits of the FNV-1a hash of
 *     the agent and the canonical steps array (the same plan gets the same id, at any piece
 *     size and in any run).
 * Not accepted (jsonstream would need the leniency): comments, single quotes, unquoted keys,
 * raw newlines inside strings, NaN. A plan broken by one of those after its first step is
 * emitted partial; before it, the search goes on after the broken candidate.
 *
 * Caps: 1 MiB of model text (more is PH_PP_ERROR); 64 steps a plan (later ones dropped, one
 * reason for all); 32 nesting levels; 32 keys and 64 positions a step; ids kept to 128 bytes.
 * Depends on planparse_step, jsonstream, buf and registry. */
#include "planparse.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "jsonstream.h"
#include "planparse_internal.h"

#define MAX_STEPS 64
#define MAX_DEPTH 32
#define MAX_ID 128
#define MAX_REPLAY (32u * PH_PP_MAX_TEXT)  /* re-scanned bytes in all (depth x text bound them) */

enum { S_SEARCH, S_CAND, S_DONE, S_STOPPED, S_ERROR };     /* driver; >= S_DONE is final */
enum { F_NONE, F_JSON, F_NOSTEPS, F_CUT };                   /* why no plan, best last */

/* Values of id keys in the open objects, innermost on top (one per depth). */
typedef struct pstack {
    struct { unsigned depth; int rank; size_t off; } e[MAX_DEPTH + 1];
    int n;
    ph_buf text;            /* the values, NUL-separated */
} pstack;

struct ph_planparse {
    const ph_registry *reg;
    unsigned char *offered; /* per registry tool */
    unsigned flags;
    ph_pp_callbacks cb;
    void *ud;
    ph_json *json;

    int state, broke, committed, failure;
    size_t fed, examined, replayed;
    size_t base;            /* text offset of the first byte of the feed being run */
    size_t cand_at;         /* text offset of the candidate's first byte */
    ph_buf cand;            /* the uncommitted candidate's bytes */
    ph_buf replay, spare;   /* bytes to re-scan before the rest of the feed */
    size_t rpos, rbase;     /* next replay byte; text offset of replay[0] */
    char err[200];

    int key;                /* K_* of the key just read, for its value */
    pstack pids, agents;

    int found, bare, in_steps, tool_seen, elem;
    unsigned pdepth, sdepth;  /* depths of the plan object's '{' and the steps array's '[' */
    int index, nkept, ncomplete, overflow;
    ph_buf steps;           /* "[" and the kept steps */
    ph_buf reasons;
    struct { int index; size_t off; } drop[MAX_STEPS + 1];
    int ndrop;

    ph_step *step;          /* the steps-array element in progress (when elem == 1) */

    ph_pp_drop out[MAX_STEPS + 1];  /* (written before read: not zeroed) */
};

static void fail(ph_planparse *p, const char *msg)
{
    snprintf(p->err, sizeof p->err, "%s", msg);
    p->state = S_ERROR;
}

static void note(ph_planparse *p, int failure, const char *msg)
{
    if (failure > p->failure)
        p->failure = failure, snprintf(p->err, sizeof p->err, "%s", msg);
}

/* ---- id stack ------------------------------------------------------------------------ */

/* Records an id value for the object whose keys are at `depth`; a better-ranked key of the
 * same object replaces it. Empty values count as missing. */
static void pstack_set(pstack *s, unsigned depth, int rank, const char *v, size_t len)
{
    if (!len)
        return;
    if (s->n && s->e[s->n - 1].depth == depth) {
        if (s->e[s->n - 1].rank >= rank)
            return;
        ph_pp_buf_cut(&s->text, s->e[--s->n].off);
    }
    if (s->n == MAX_DEPTH + 1)
        return;
    size_t off = s->text.len;
    size_t n = (size_t)ph_pp_clip(v, len, MAX_ID);
    if (ph_buf_add(&s->text, v, n) || ph_buf_add(&s->text, "", 1)) {
        ph_pp_buf_cut(&s->text, off);
        return;
    }
    s->e[s->n].depth = depth, s->e[s->n].rank = rank, s->e[s->n++].off = off;
}

/* The object at `depth` closed: forget the ids of its keys. */
static void pstack_pop(pstack *s, unsigned depth)
{
    while (s->n && s->e[s->n - 1].depth > depth)
        ph_pp_buf_cut(&s->text, s->e[--s->n].off);
}

static const char *pstack_top(const pstack *s)
{
    return s->n ? s->text.data + s->e[s->n - 1].off : NULL;
}

/* ---- steps of the plan --------------------------------------------------------------- */

static void drop(ph_planparse *p, int index, const char *reason)
{
    size_t off = p->reasons.len;
    if (p->ndrop > MAX_STEPS)
        return;
    if (ph_buf_adds(&p->reasons, reason) || ph_buf_add(&p->reasons, "", 1)) {
        ph_pp_buf_cut(&p->reasons, off);
        return;
    }
    p->drop[p->ndrop].index = index;
    p->drop[p->ndrop++].off = off;
}

/* An event of this candidate is out: it is the one, its bytes need not be kept. */
static void commit(ph_planparse *p)
{
    p->committed = 1;
    ph_buf_reset(&p->cand);
}

/* The steps-array element that just closed was not an object. */
static void not_object(ph_planparse *p)
{
    int index = p->index++;
    p->elem = 0;
    p->ncomplete++;
    if (index >= MAX_STEPS)
        p->overflow++;
    else
        drop(p, index, "the step is not an object");
}

/* The step object's '}' arrived (text offset `end`): keep or drop it, and hand it out. */
static void step_end(ph_planparse *p, size_t end)
{
    int index = p->index++, comma = p->nkept > 0;
    p->elem = 0;
    p->ncomplete++;
    p->tool_seen |= ph_step_names_tool(p->step);
    if (index >= MAX_STEPS) {
        p->overflow++;
        return;
    }
    size_t at = p->steps.len + (size_t)comma;
    int tool = ph_step_write(p->step, p->reg, p->offered, &p->steps, comma);
    if (tool < 0) {
        drop(p, index, ph_step_why(p->step));
        return;
    }
    p->nkept++;
    ph_pp_step s = {(p->flags & PH_PP_BATCH) ? pstack_top(&p->agents) : NULL, index, tool,
                    p->steps.data + at, p->steps.len - at, end};
    commit(p);
    if (p->cb.step && p->cb.step(p->ud, &s))
        p->state = S_STOPPED;
}

static void plan_begin(ph_planparse *p, unsigned pdepth, unsigned sdepth, int bare)
{
    p->found = 1, p->bare = bare, p->in_steps = 1, p->tool_seen = 0;
    p->pdepth = pdepth, p->sdepth = sdepth;
    p->index = p->nkept = p->ncomplete = p->overflow = p->ndrop = p->elem = 0;
    ph_buf_reset(&p->steps);
    ph_buf_add(&p->steps, "[", 1);
    ph_buf_reset(&p->reasons);
}

/* A top-level array taken for the steps turns out to hold a plan object ({"steps": [...]}):
 * that element is the plan, with the plan_id it had so far. */
static void bare_to_plan(ph_planparse *p)
{
    const char *id = NULL;
    size_t len = 0;
    int rank = ph_step_plan_id(p->step, &id, &len);
    if (rank)
        pstack_set(&p->pids, p->sdepth + 2, rank, id, len);
    plan_begin(p, p->sdepth + 1, p->sdepth + 2, 0);
}

/* A token inside the steps array (deeper than its '['). */
static void elem_token(ph_planparse *p, const ph_json_token *t)
{
    if (t->depth > p->sdepth + 1) {
        if (p->elem == 1 && ph_step_token(p->step, t, p->bare && !p->nkept))
            bare_to_plan(p);
    } else if (t->kind == PH_JSON_BEGIN_OBJECT) {
        p->elem = 1;
        ph_step_begin(p->step, t->depth);
    } else if (t->kind == PH_JSON_END_OBJECT) {
        step_end(p, p->cand_at + (size_t)t->end);
    } else if (t->kind == PH_JSON_BEGIN_ARRAY) {
        p->elem = 2;
    } else {                /* a scalar, or the ']' of an array element */
        not_object(p);
    }
}

/* ---- plans --------------------------------------------------------------------------- */

static uint32_t fnv1a(uint32_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* Hands out the plan in progress (whole, or partial: cut before it closed at `end`). */
static void plan_emit(ph_planparse *p, int partial, size_t end)
{
    const char *agent = (p->flags & PH_PP_BATCH) ? pstack_top(&p->agents) : NULL;
    const char *pid = pstack_top(&p->pids);
    char gen[16], why[96];
    if (p->overflow) {
        snprintf(why, sizeof why, "steps %d to %d dropped: a plan has at most %d steps",
                 MAX_STEPS, MAX_STEPS + p->overflow - 1, MAX_STEPS);
        drop(p, MAX_STEPS, why);
    }
    ph_buf_add(&p->steps, "]", 1);
    if (!pid) {
        uint32_t h = fnv1a(2166136261u, agent ? agent : "", agent ? strlen(agent) + 1 : 1);
        snprintf(gen, sizeof gen, "p-%08x", (unsigned)fnv1a(h, p->steps.data, p->steps.len));
    }
    for (int i = 0; i < p->ndrop; i++)
        p->out[i].index = p->drop[i].index, p->out[i].reason = p->reasons.data + p->drop[i].off;
    ph_pp_plan pl = {agent, pid ? pid : gen, !pid, p->steps.data, p->steps.len, p->nkept,
                     p->out, p->ndrop, partial, end};
    commit(p);
    p->found = p->in_steps = 0;
    if (p->cb.plan && p->cb.plan(p->ud, &pl))
        p->state = S_STOPPED;
}

/* Whether the plan in progress may be emitted partial: it has a complete step. */
static int can_emit_partial(const ph_planparse *p)
{
    return p->found && p->ncomplete > 0 && (!p->bare || p->tool_seen);
}

/* The plan's closing bracket arrived. */
static void plan_close(ph_planparse *p, size_t end)
{
    if (p->bare && !p->tool_seen) {
        p->found = 0;
        return;
    }
    plan_emit(p, 0, end);
    if (!(p->flags & PH_PP_BATCH) && p->state == S_CAND)
        p->state = S_DONE;
}

/* The candidate's top-level value closed. */
static void cand_closed(ph_planparse *p)
{
    if (p->committed) {
        p->state = S_DONE;
        return;
    }
    note(p, F_NOSTEPS, "the JSON has no steps");
    p->state = S_SEARCH;
}

/* A token outside any steps array: ids, the steps array, the plan's end. */
static void scope_token(ph_planparse *p, const ph_json_token *t)
{
    int key = p->key;
    p->key = PP_K_NONE;
    switch (t->kind) {
    case PH_JSON_KEY:
        p->key = ph_pp_key_class(t->text, t->len);
        break;
    case PH_JSON_STRING: case PH_JSON_NUMBER:
        if (key == PP_K_AGENT)
            pstack_set(&p->agents, t->depth, 1, t->text, t->len);
        else if (key == PP_K_PID || key == PP_K_ID)
            pstack_set(&p->pids, t->depth, key == PP_K_PID ? 2 : 1, t->text, t->len);
        break;
    case PH_JSON_BEGIN_ARRAY:
        if (!p->found && key == PP_K_STEPS)
            plan_begin(p, t->depth - 1, t->depth, 0);
        else if (!p->found && t->depth == 0 && !(p->flags & PH_PP_BATCH))
            plan_begin(p, 0, 0, 1);
        break;
    case PH_JSON_END_OBJECT: case PH_JSON_END_ARRAY:
        if (p->found && t->depth == p->pdepth && (t->kind == PH_JSON_END_ARRAY) == p->bare)
            plan_close(p, p->cand_at + (size_t)t->end);
        if (t->kind == PH_JSON_END_OBJECT)
            pstack_pop(&p->pids, t->depth), pstack_pop(&p->agents, t->depth);
        break;
    default:
        break;
    }
    if ((t->flags & PH_JSON_TOK_VALUE_END) && p->state == S_CAND)
        cand_closed(p);
}

/* The tokenizer's callback: stops it when the state leaves S_CAND. */
static int on_token(void *ud, const ph_json_token *t)
{
    ph_planparse *p = ud;
    if (p->in_steps && t->depth > p->sdepth) {
        elem_token(p, t);
    } else {
        p->in_steps = 0;    /* (the steps array's ']' when it was in) */
        scope_token(p, t);
    }
    return p->state != S_CAND;
}

/* ---- the driver ---------------------------------------------------------------------- */

/* The candidate broke. Committed: its plan ends there, partial. Else the bytes after its
 * first one are queued for a re-scan (run() does that). */
static void cand_broke(ph_planparse *p)
{
    uint64_t off = 0;
    const char *msg = ph_json_error(p->json, &off);
    if (p->committed) {
        if (can_emit_partial(p))
            plan_emit(p, 1, p->cand_at + (size_t)off);
        if (p->state == S_CAND)
            p->state = S_DONE;
        return;
    }
    char why[160];
    snprintf(why, sizeof why, "%s: %s", p->found ? "the plan broke before its first step"
             : "the JSON in the model output is malformed", msg);
    note(p, p->found ? F_CUT : F_JSON, why);
    p->broke = 1;
}

/* Skips prose up to the next '{' or '[' (text offset at + i) and starts a candidate there;
 * returns bytes skipped. */
static size_t seek(ph_planparse *p, const char *s, size_t n, size_t at)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '{' || s[i] == '[') {
            ph_json_reset(p->json);
            ph_buf_reset(&p->cand);
            p->key = PP_K_NONE;
            p->found = p->in_steps = p->elem = p->committed = 0;
            p->pids.n = p->agents.n = 0;
            ph_buf_reset(&p->pids.text);
            ph_buf_reset(&p->agents.text);
            p->cand_at = at + i;
            p->state = S_CAND;
            return i;
        }
    }
    return n;
}

/* Feeds the candidate's tokenizer; returns bytes used. */
static size_t cand_feed(ph_planparse *p, const char *s, size_t n)
{
    size_t used = 0;
    ph_json_status st = ph_json_feed(p->json, s, n, &used);
    if ((st == PH_JSON_OK || st == PH_JSON_ERROR) && !p->committed &&
        ph_buf_add(&p->cand, s, used) != 0) {
        fail(p, "out of memory keeping the candidate JSON");
        return used;
    }
    if (st == PH_JSON_ERROR)
        cand_broke(p);
    else if (st != PH_JSON_OK && p->state == S_CAND)
        p->state = S_SEARCH;    /* (not reached: the top-level close moved the state) */
    return used;
}

/* Queues the broken candidate's bytes after its first for a re-scan, ahead of the rest. */
static void rescan(ph_planparse *p)
{
    ph_buf *b = &p->spare;
    ph_buf_reset(b);
    if (p->cand.len > 1)
        ph_buf_add(b, p->cand.data + 1, p->cand.len - 1);
    if (p->replay.len > p->rpos)       /* (replay may never have been allocated) */
        ph_buf_add(b, p->replay.data + p->rpos, p->replay.len - p->rpos);
    p->replayed += b->len;
    if (b->failed || p->replayed > MAX_REPLAY) {
        fail(p, "the model output needs too much re-scanning");
        return;
    }
    ph_buf t = p->replay;
    p->replay = p->spare, p->spare = t;
    p->rbase = p->cand_at + 1, p->rpos = 0;
    p->state = S_SEARCH;
}

/* Runs the pending re-scan, then text[0..n) (text offset p->base). */
static void run(ph_planparse *p, const char *text, size_t n)
{
    size_t i = 0;
    if (p->state == S_CAND && p->committed && p->rpos == p->replay.len) {
        i = cand_feed(p, text, n);      /* the usual case: inside the plan, nothing queued */
        if (i == n || p->state >= S_DONE)
            return;
    }
    while (p->state < S_DONE) {
        int from_replay = p->rpos < p->replay.len;
        const char *s = from_replay ? p->replay.data + p->rpos : text + i;
        size_t len = from_replay ? p->replay.len - p->rpos : n - i;
        size_t at = from_replay ? p->rbase + p->rpos : p->base + i;
        if (len == 0)
            break;
        size_t used = p->state == S_SEARCH ? seek(p, s, len, at) : cand_feed(p, s, len);
        *(from_replay ? &p->rpos : &i) += used;
        if (p->broke)
            p->broke = 0, rescan(p);
    }
}

/* ---- public API ---------------------------------------------------------------------- */

static void init_bufs(ph_planparse *p)
{
    ph_buf_init(&p->cand, PH_PP_MAX_TEXT);
    ph_buf_init(&p->replay, PH_PP_MAX_TEXT);
    ph_buf_init(&p->spare, PH_PP_MAX_TEXT);
    ph_buf_init(&p->pids.text, (MAX_DEPTH + 1) * (MAX_ID + 1));
    ph_buf_init(&p->agents.text, (MAX_DEPTH + 1) * (MAX_ID + 1));
    ph_buf_init(&p->steps, 4 * PH_PP_MAX_TEXT);   /* [x,y] is written {"x":x,"y":y}: output grows */
    ph_buf_init(&p->reasons, (MAX_STEPS + 1) * 256);
}

ph_planparse *ph_planparse_new(const ph_registry *r, const int *tools, int ntools, unsigned flags,
                               const ph_pp_callbacks *cb, void *ud)
{
    ph_json_config cfg = {PH_JSON_ALLOW_TRAILING_COMMA | PH_JSON_ALLOW_TRAILING_GARBAGE,
                          MAX_DEPTH, PH_PP_MAX_TEXT};
    ph_planparse *p = malloc(sizeof *p);
    if (!p)
        return NULL;
    memset(p, 0, offsetof(ph_planparse, out));
    init_bufs(p);
    p->reg = r, p->flags = flags, p->ud = ud;
    if (cb)
        p->cb = *cb;
    p->offered = calloc((size_t)r->ntools + 1, 1);
    p->json = ph_json_new(&cfg, on_token, p);
    p->step = ph_step_new();
    if (!p->offered || !p->json || !p->step) {
        ph_planparse_free(p);
        return NULL;
    }
    for (int i = 0; i < (tools ? ntools : r->ntools); i++)
        if (!tools || (tools[i] >= 0 && tools[i] < r->ntools))
            p->offered[tools ? tools[i] : i] = 1;
    return p;
}

static ph_pp_status status(const ph_planparse *p)
{
    switch (p->state) {
    case S_DONE: return PH_PP_DONE;
    case S_STOPPED: return PH_PP_STOPPED;
    case S_ERROR: return PH_PP_ERROR;
    default: return PH_PP_MORE;
    }
}

ph_pp_status ph_planparse_feed(ph_planparse *p, const char *text, size_t len)
{
    p->fed += len;
    if (p->state >= S_DONE)
        return status(p);
    size_t n = len < PH_PP_MAX_TEXT - p->examined ? len : PH_PP_MAX_TEXT - p->examined;
    p->base = p->examined;
    p->examined += n;
    run(p, text, n);
    if (p->state < S_DONE && n < len)
        fail(p, "the model output is longer than 1 MiB");
    return status(p);
}

/* At the end of the text: the plan in progress, if any, ends here. */
static void finish_candidate(ph_planparse *p)
{
    if (can_emit_partial(p))
        plan_emit(p, 1, p->examined);
    if (p->committed) {
        if (p->state == S_CAND)
            p->state = S_DONE;
        return;
    }
    if (p->found)
        note(p, F_CUT, "the plan was cut off before its first step closed");
    else
        note(p, F_NOSTEPS, "the JSON has no steps");
    p->state = S_SEARCH;
}

ph_pp_status ph_planparse_finish(ph_planparse *p)
{
    if (p->state == S_CAND)
        finish_candidate(p);
    if (p->state >= S_DONE)
        return status(p);
    if (p->failure == F_NONE)
        snprintf(p->err, sizeof p->err, "no JSON object in the model output");
    p->state = S_ERROR;
    return PH_PP_ERROR;
}

const char *ph_planparse_error(const ph_planparse *p)
{
    return p->state == S_ERROR ? p->err : NULL;
}

size_t ph_planparse_consumed(const ph_planparse *p)
{
    return p->fed;
}

void ph_planparse_free(ph_planparse *p)
{
    if (!p)
        return;
    ph_json_free(p->json);
    free(p->offered);
    ph_step_free(p->step);
    ph_buf *bufs[] = {&p->cand, &p->replay, &p->spare, &p->pids.text, &p->agents.text,
                      &p->steps, &p->reasons};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        ph_buf_free(bufs[i]);
    free(p);
}
