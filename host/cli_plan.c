/* cli_plan — `planhost plan` and `planhost parse`.
 *
 *   plan SNAPSHOT.json: submits one request to the model server and prints its events as
 *     they happen, one JSON object per line (or, with --pretty, steps as they arrive and a
 *     summary line). Always ends with the request's one plan event.
 *   parse FILE: runs saved model output through the plan parser in --chunk N byte pieces
 *     and prints what it emits — the designer's tool for "why was this output rejected";
 *     with --snapshot S the steps also get the checks a request applies (drop events).
 * Depends on the public API, host.h and planparse. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "host.h"
#include "jsonw.h"
#include "planparse.h"
#include "request.h"
#include "snapview.h"
#include "validate.h"
#include "tree.h"

#define MAX_INPUT (4u << 20)

/* ---- plan ---------------------------------------------------------------------------- */

/* Prints `json`'s string or number field `key` (first match) into out; "" when absent. */
static void field(const char *json, const char *key, char *out, size_t size)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    out[0] = '\0';
    if (!p)
        return;
    p += strlen(pat);
    size_t n = 0;
    if (*p == '"') {
        for (p++; *p && *p != '"' && n + 1 < size; p++)
            out[n++] = *p == '\\' && p[1] ? *++p : *p;
    } else {
        while (*p && *p != ',' && *p != '}' && n + 1 < size)
            out[n++] = *p++;
    }
    out[n] = '\0';
}

static void print_pretty(const ph_event *ev)
{
    char a[256], b[256], c[256], d[512];
    switch (ev->kind) {
    case PH_EVENT_STEP: {
        const char *step = strstr(ev->json, "\"step\":");
        field(ev->json, "t_ms", a, sizeof a);
        field(ev->json, "index", b, sizeof b);
        const char *end = step ? strstr(step, ",\"t_ms\"") : NULL;
        printf("  %8s ms  step %s  %.*s\n", a, b, step && end ? (int)(end - step - 7) : 0, step ? step + 7 : "");
        break;
    }
    case PH_EVENT_PROVISIONAL: {
        const char *steps = strstr(ev->json, "\"steps\":");
        field(ev->json, "t_ms", a, sizeof a);
        field(ev->json, "error", d, sizeof d);
        if (steps)
            printf("  %8s ms  provisional plan (heuristic, until the real one): %.*s\n", a,
                   (int)(strstr(steps, "]") - steps - 7), steps + 8);
        else
            printf("  %8s ms  no provisional plan: %s\n", a, d);
        break;
    }
    case PH_EVENT_FALLBACK:
        field(ev->json, "from", a, sizeof a);
        field(ev->json, "to", b, sizeof b);
        field(ev->json, "reason", c, sizeof c);
        field(ev->json, "error", d, sizeof d);
        printf("  fallback %s -> %s: %s (%s)\n", a, b, c, d);
        break;
    case PH_EVENT_PLAN: {
        char total[32], first[32], chars[32], ptok[32], ctok[32], partial[16];
        field(ev->json, "tier", a, sizeof a);
        field(ev->json, "source", b, sizeof b);
        field(ev->json, "plan_id", c, sizeof c);
        field(ev->json, "total_ms", total, sizeof total);
        field(ev->json, "first_step_ms", first, sizeof first);
        field(ev->json, "prompt_chars", chars, sizeof chars);
        field(ev->json, "prompt_tokens", ptok, sizeof ptok);
        field(ev->json, "completion_tokens", ctok, sizeof ctok);
        field(ev->json, "partial", partial, sizeof partial);
        const char *steps = strstr(ev->json, "\"steps\":");
        char agent[160];
        field(ev->json, "agent", agent, sizeof agent);
        printf("[%s] ", agent);
        if (strcmp(first, "null") == 0)
            snprintf(first, sizeof first, "-");
        field(ev->json, "cache", d, sizeof d);
        if (strcmp(b, "cache") == 0 || strcmp(d, "coalesced") == 0)
            printf("plan %s from the cache (%s; made by the %s tier): %s ms\n", c, d, a, total);
        else if (strcmp(b, "llm") == 0)
            printf("plan %s from %s (llm)%s: first step %s ms, total %s ms, prompt %s chars / %s tokens, "
                   "completion %s tokens\n", c, a, strcmp(partial, "true") == 0 ? " PARTIAL" : "",
                   first, total, chars, ptok, ctok);
        else
            printf("plan %s from the %s tier: first step %s ms, total %s ms\n", c, b, first, total);
        if (steps && strcmp(b, "llm") != 0)
            printf("  steps %.*s\n", (int)(strstr(steps, "]") - steps - 7), steps + 8);
        break;
    }
    default:
        printf("%s\n", ev->json);
    }
    fflush(stdout);
}

static int run_plan(ph_host *h, const opts *o, const char *text, size_t len)
{
    ph_request_opts ro = {.snapshot = text, .len = len, .template = o->tmpl,
                          .budget_ms = o->timeout ? atoi(o->timeout) : 0, .record = o->record};
    ph_error err;
    unsigned long id = ph_host_submit(h, &ro, &err);
    if (!id) {
        if (err.code == PH_ERR_JSON)
            ph_error_prefix(&err, "%s", o->file);
        ph_cli_print_error(&err);
        return err.code == PH_ERR_JSON || err.code == PH_ERR_NOTFOUND ? 2 : 1;
    }
    for (int done = 0; !done;) {
        ph_host_poll(h, 1000);
        ph_event ev;
        while (ph_host_next_event(h, &ev)) {
            if (o->pretty)
                print_pretty(&ev);
            else
                printf("%s\n", ev.json), fflush(stdout);
            done |= ev.kind == PH_EVENT_PLAN && ev.request == id;
        }
    }
    return 0;
}

int ph_cli_plan(opts *o)
{
    if (!o->file) {
        fputs("planhost plan: which snapshot? (planhost plan [--url U] SNAPSHOT.json)\n", stderr);
        return 2;
    }
    if (o->timeout && atoi(o->timeout) <= 0) {
        fprintf(stderr, "planhost plan: --timeout-ms needs a positive number, not '%s'\n", o->timeout);
        return 2;
    }
    ph_error err;
    size_t len;
    char *text = ph_read_file(o->file, MAX_INPUT, &len, &err);
    if (!text)
        return ph_cli_print_error(&err), 2;
    ph_host *h = ph_cli_open_host(o, 0);
    int rc = h ? run_plan(h, o, text, len) : 1;
    if (h && o->metrics) {
        char *m = ph_host_metrics(h, NULL);
        fputs(m ? m : "planhost: out of memory\n", stderr);
        free(m);
    }
    ph_host_close(h);
    free(text);
    return rc;
}

/* ---- batch --------------------------------------------------------------------------- */

/* Submits every snapshot on the batch tier (they leave as one model request, agents in id
 * order) and prints the events until each has its plan. Exit 2 for a snapshot the host
 * refuses (the others still run). */
int ph_cli_batch(opts *o)
{
    if (o->nfiles < 1) {
        fputs("planhost batch: which snapshots? (planhost batch [--url U] A.json B.json ...)\n", stderr);
        return 2;
    }
    ph_host *h = ph_cli_open_host(o, 0);
    if (!h)
        return 1;
    int rc = 0, waiting = 0;
    for (int i = 0; i < o->nfiles; i++) {
        ph_error err;
        size_t len = 0;
        char *text = ph_read_file(o->files[i], MAX_INPUT, &len, &err);
        ph_request_opts ro = {.snapshot = text, .len = len, .template = o->tmpl ? o->tmpl : "batch",
                              .budget_ms = o->timeout ? atoi(o->timeout) : 0};
        if (text && ph_host_submit(h, &ro, &err)) {
            waiting++;
        } else {
            if (err.code == PH_ERR_JSON)
                ph_error_prefix(&err, "%s", o->files[i]);
            ph_cli_print_error(&err);
            rc = 2;
        }
        free(text);
    }
    while (waiting > 0) {
        ph_host_poll(h, 1000);
        ph_event ev;
        while (ph_host_next_event(h, &ev)) {
            if (o->pretty)
                print_pretty(&ev);
            else
                printf("%s\n", ev.json), fflush(stdout);
            waiting -= ev.kind == PH_EVENT_PLAN;
        }
    }
    ph_host_close(h);
    return rc;
}

/* ---- parse --------------------------------------------------------------------------- */

typedef struct parse_ctx {
    size_t fed;
    ph_gen *gen;
    const ph_template *t;
    ph_snapview *view;          /* --snapshot: validate against it */
    const char *snapshot;
    size_t snapshot_len;
    ph_buf kept, drops;
} parse_ctx;

/* With --snapshot: the checks a request applies. Returns 1 when the step stands. */
static int check_step(parse_ctx *c, const ph_pp_step *s, char *reason, size_t size)
{
    ph_error err;
    return !c->view || ph_check_step(c->gen, c->t ? c->t->tools : NULL, c->t ? c->t->ntools : 0, c->view,
                                     c->snapshot, c->snapshot_len, s->json, s->len, reason, size, &err) > 0;
}

static int parse_step(void *ud, const ph_pp_step *s)
{
    parse_ctx *c = ud;
    char reason[PH_VALIDATE_REASON];
    ph_buf b;
    ph_buf_init(&b, 1u << 20);
    if (!check_step(c, s, reason, sizeof reason)) {
        ph_buf_addf(&c->drops, ",{\"index\":%d,\"reason\":", s->index);
        ph_jsonw_cstr(&c->drops, reason);
        ph_buf_adds(&c->drops, "}");
        ph_buf_addf(&b, "{\"event\":\"drop\",\"index\":%d,\"fed\":%zu,\"reason\":", s->index, c->fed);
        ph_jsonw_cstr(&b, reason);
    } else {
        ph_buf_adds(&c->kept, c->kept.len ? "," : "[");
        ph_buf_add(&c->kept, s->json, s->len);
        ph_buf_addf(&b, "{\"event\":\"step\",\"index\":%d", s->index);
        if (s->agent)
            ph_jsonw_key(&b, "agent", 0), ph_jsonw_cstr(&b, s->agent);
        ph_buf_addf(&b, ",\"fed\":%zu,\"step\":", c->fed);
        ph_buf_add(&b, s->json, s->len);
    }
    printf("%s}\n", ph_buf_str(&b));
    ph_buf_free(&b);
    return 0;
}

static int parse_plan(void *ud, const ph_pp_plan *p)
{
    parse_ctx *c = ud;
    ph_buf b;
    ph_buf_init(&b, 1u << 20);
    ph_buf_adds(&b, "{\"event\":\"plan\"");
    if (p->agent)
        ph_jsonw_key(&b, "agent", 0), ph_jsonw_cstr(&b, p->agent);
    ph_buf_addf(&b, ",\"fed\":%zu", c->fed);
    ph_plan_fields(&b, p, &c->kept, &c->drops);
    ph_buf_adds(&b, "}");
    printf("%s\n", ph_buf_str(&b));
    ph_buf_free(&b);
    ph_buf_reset(&c->kept);
    ph_buf_reset(&c->drops);
    return 0;
}

static int run_parse(ph_host *h, const opts *o, const char *text, size_t len, const char *snap, size_t snap_len)
{
    parse_ctx c = {0, ph_host_gen(h), NULL, NULL, snap, snap_len, {0}, {0}};
    c.t = o->tmpl ? ph_gen_find_template(c.gen, o->tmpl) : NULL;
    if (o->tmpl && !c.t) {
        fprintf(stderr, "planhost parse: unknown template '%s'\n", o->tmpl);
        return 2;
    }
    ph_error err;
    if (snap && !(c.view = ph_snapview_new(snap, snap_len, &err))) {
        fprintf(stderr, "planhost parse: %s: %s\n", o->snapshot, err.message);
        return 2;
    }
    ph_buf_init(&c.kept, 1u << 20);
    ph_buf_init(&c.drops, 1u << 20);
    size_t chunk = o->chunk ? (size_t)atol(o->chunk) : len;
    if (chunk == 0)
        chunk = len ? len : 1;
    ph_pp_callbacks cb = {parse_step, parse_plan};
    ph_planparse *pp = ph_planparse_new(ph_gen_registry(c.gen), c.t ? c.t->tools : NULL, c.t ? c.t->ntools : 0,
                                        c.t && c.t->batch ? PH_PP_BATCH : 0, &cb, &c);
    ph_pp_status st = PH_PP_MORE;
    while (c.fed < len && st == PH_PP_MORE) {
        size_t n = len - c.fed < chunk ? len - c.fed : chunk;
        c.fed += n;
        st = ph_planparse_feed(pp, text + c.fed - n, n);
    }
    if (st == PH_PP_MORE)
        st = ph_planparse_finish(pp);
    int rc = 0;
    if (st == PH_PP_ERROR) {
        ph_buf b;
        ph_buf_init(&b, 4096);
        ph_jsonw_cstr(&b, ph_planparse_error(pp));
        printf("{\"event\":\"error\",\"fed\":%zu,\"error\":%s}\n", c.fed, ph_buf_str(&b));
        ph_buf_free(&b);
        rc = 1;
    }
    ph_planparse_free(pp);
    ph_snapview_free(c.view);
    ph_buf_free(&c.kept);
    ph_buf_free(&c.drops);
    return rc;
}

int ph_cli_parse(opts *o)
{
    if (!o->file) {
        fputs("planhost parse: which file? (planhost parse [--chunk N] [--template T] FILE)\n", stderr);
        return 2;
    }
    ph_error err;
    size_t len, snap_len = 0;
    char *text = ph_read_file(o->file, MAX_INPUT, &len, &err), *snap = NULL;
    if (!text)
        return ph_cli_print_error(&err), 2;
    if (o->snapshot && !(snap = ph_read_file(o->snapshot, MAX_INPUT, &snap_len, &err))) {
        free(text);
        return ph_cli_print_error(&err), 2;
    }
    ph_host *h = ph_cli_open_host(o, 0);
    int rc = h ? run_parse(h, o, text, len, snap, snap_len) : 1;
    ph_host_close(h);
    free(text);
    free(snap);
    return rc;
}
