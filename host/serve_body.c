/* serve_body — the body of POST /v1/plan into the byte ranges of its snapshots.
 *
 * One pass of the jsonstream tokenizer over the whole upload: it checks the JSON (errors
 * carry the byte offset), finds the shape (one snapshot object, an array of snapshots, or
 * the {"snapshots":[...], ...} wrapper) and records where each snapshot starts and ends, so
 * the main loop can submit slices of the upload without copying or re-parsing it. Each
 * snapshot's own checks are the host's (ph_host_submit). Depends on jsonstream only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonstream.h"
#include "serve.h"

enum { KEY_NONE, KEY_SNAPSHOTS, KEY_BUDGET, KEY_TEMPLATE, KEY_GAME, KEY_OTHER };

typedef struct scan {
    srv_body *b;
    int max;
    int top;                    /* '{', '[' or 0 before the first token */
    uint64_t top_start;
    int key;                    /* KEY_*: the depth-1 member being read */
    int wrapper;                /* a "snapshots" key was seen */
    uint64_t elem_start;
    char shape[300];            /* the first problem that matters only for a wrapper */
    uint64_t shape_off;
} scan;

static int fail(scan *s, unsigned status, uint64_t off, const char *msg)
{
    s->b->status = status;
    s->b->offset = off;
    snprintf(s->b->error, sizeof s->b->error, "%s", msg);
    return 1;
}

static void shape_problem(scan *s, uint64_t off, const char *msg)
{
    if (s->shape[0])
        return;
    snprintf(s->shape, sizeof s->shape, "%s", msg);
    s->shape_off = off;
}

static int is_begin(const ph_json_token *t)
{
    return t->kind == PH_JSON_BEGIN_OBJECT || t->kind == PH_JSON_BEGIN_ARRAY;
}

static int is_end(const ph_json_token *t)
{
    return t->kind == PH_JSON_END_OBJECT || t->kind == PH_JSON_END_ARRAY;
}

/* An element of the snapshot list at `depth`: remembers its start, adds it at its end. */
static int element(scan *s, const ph_json_token *t, unsigned depth)
{
    if (t->depth != depth)
        return 0;
    if (is_begin(t)) {
        s->elem_start = t->offset;
        return 0;
    }
    uint64_t start = is_end(t) ? s->elem_start : t->offset;
    if (s->b->nsnap >= s->max) {
        char msg[160];
        snprintf(msg, sizeof msg, "too many snapshots: at most %d in one request (--max-snapshots)", s->max);
        return fail(s, 413, start, msg);
    }
    s->b->snap[s->b->nsnap++] = (srv_range){(size_t)start, (size_t)(t->end - start)};
    return 0;
}

static int key_kind(const ph_json_token *t)
{
    static const char *const names[] = {"snapshots", "budget_ms", "template", "game"};
    for (int i = 0; i < 4; i++)
        if (t->len == strlen(names[i]) && memcmp(t->text, names[i], t->len) == 0)
            return KEY_SNAPSHOTS + i;
    return KEY_OTHER;
}

static void budget(scan *s, const ph_json_token *t)
{
    char num[32];
    long v = -1;
    if (t->kind == PH_JSON_NUMBER && t->len < sizeof num) {
        memcpy(num, t->text, t->len);
        num[t->len] = '\0';
        char *end;
        v = strtol(num, &end, 10);
        if (*end)
            v = -1;
    }
    if (v < 1 || v > 3600000)
        shape_problem(s, t->offset, "budget_ms must be a whole number of milliseconds from 1 to 3600000");
    else
        s->b->budget_ms = (int)v;
}

static void template_name(scan *s, const ph_json_token *t)
{
    if (t->kind != PH_JSON_STRING || t->len == 0 || t->len >= SRV_MAX_TEMPLATE ||
        memchr(t->text, '\0', t->len))
        return shape_problem(s, t->offset, "template must be a template's name (a short string)");
    memcpy(s->b->tmpl, t->text, t->len);
    s->b->tmpl[t->len] = '\0';
}

/* A member value of the top-level object at depth 1 (scalars, and the brackets around
 * containers; what lies inside them comes at depth 2 and deeper). */
static int member(scan *s, const ph_json_token *t)
{
    switch (s->key) {
    case KEY_SNAPSHOTS:
        if (t->kind != PH_JSON_BEGIN_ARRAY && t->kind != PH_JSON_END_ARRAY)
            shape_problem(s, t->offset, "snapshots must be an array of snapshot objects");
        return 0;
    case KEY_BUDGET:
        if (!is_end(t))
            budget(s, t);
        return 0;
    case KEY_TEMPLATE:
        if (!is_end(t))
            template_name(s, t);
        return 0;
    case KEY_GAME:
        if (t->kind == PH_JSON_BEGIN_OBJECT)
            s->b->game.off = (size_t)t->offset;
        else if (t->kind == PH_JSON_END_OBJECT)
            s->b->game.len = (size_t)(t->end - s->b->game.off);
        else if (!is_end(t))
            shape_problem(s, t->offset, "game must be a JSON object");
        return 0;
    default:
        return 0;
    }
}

static int in_object(scan *s, const ph_json_token *t)
{
    if (t->depth == 1 && t->kind == PH_JSON_KEY) {
        s->key = key_kind(t);
        if (s->key == KEY_SNAPSHOTS)
            s->wrapper = 1;
        if (s->key == KEY_OTHER) {
            char msg[200];
            snprintf(msg, sizeof msg, "unknown key '%.*s' beside \"snapshots\" (known: snapshots, budget_ms, "
                     "template, game)", t->len > 64 ? 64 : (int)t->len, t->text);
            shape_problem(s, t->offset, msg);
        }
        return 0;
    }
    if (t->depth == 1)
        return member(s, t);
    if (s->key == KEY_SNAPSHOTS)
        return element(s, t, 2);
    return 0;
}

static int on_token(void *ctx, const ph_json_token *t)
{
    scan *s = ctx;
    if (t->depth == 0) {
        if (t->kind == PH_JSON_BEGIN_OBJECT || t->kind == PH_JSON_BEGIN_ARRAY) {
            s->top = t->kind == PH_JSON_BEGIN_OBJECT ? '{' : '[';
            s->top_start = t->offset;
        } else if (t->kind == PH_JSON_END_OBJECT && !s->wrapper) {
            s->b->snap[s->b->nsnap++] = (srv_range){(size_t)s->top_start, (size_t)(t->end - s->top_start)};
        } else if (!is_end(t)) {
            return fail(s, 400, t->offset, "the body must be a snapshot object, an array of them, or "
                        "{\"snapshots\":[...]}");
        }
        return 0;
    }
    return s->top == '[' ? element(s, t, 1) : in_object(s, t);
}

static int check_shape(scan *s)
{
    if (s->wrapper && s->shape[0])
        return fail(s, 400, s->shape_off, s->shape), -1;
    if (!s->wrapper)
        s->b->budget_ms = 0, s->b->tmpl[0] = '\0', s->b->game.len = 0;
    if (s->b->nsnap == 0)
        return fail(s, 400, 0, "no snapshots in the body"), -1;
    return 0;
}

int srv_body_parse(const char *body, size_t len, int max, srv_body *out)
{
    memset(out, 0, sizeof *out);
    scan s = {.b = out, .max = max};
    ph_json_config cfg = {.max_depth = PH_JSON_DEFAULT_MAX_DEPTH + 2, .max_token = len ? len : 1};
    ph_json *j = ph_json_new(&cfg, on_token, &s);
    out->snap = calloc((size_t)max + 1, sizeof *out->snap);  /* + the whole body as one */
    if (!j || !out->snap) {
        ph_json_free(j);
        return fail(&s, 500, 0, "out of memory"), -1;
    }
    ph_json_status st = ph_json_feed(j, body, len, NULL);
    if (st == PH_JSON_OK)
        st = ph_json_finish(j);
    uint64_t off = 0;
    const char *msg = st == PH_JSON_ERROR ? ph_json_error(j, &off) : NULL;
    if (msg) {
        char text[400];
        snprintf(text, sizeof text, "invalid JSON at byte %llu: %s", (unsigned long long)off, msg);
        fail(&s, 400, off, text);
    }
    ph_json_free(j);
    if (out->status || check_shape(&s) != 0)
        return -1;
    return 0;
}

void srv_body_free(srv_body *b)
{
    free(b->snap);
    b->snap = NULL;
    b->nsnap = 0;
}
