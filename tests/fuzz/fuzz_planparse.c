/* fuzz_planparse — libFuzzer target for the plan parser (host/planparse.h) on model text.
 *
 * The registry is the real one: LLVMFuzzerInitialize loads a script generation from the
 * source tree (PLANHOST_SOURCE, else the tree the binary was built from), as the host does.
 * Input: an 8-byte header, then the model text.
 *   [0] bit 0 PH_PP_BATCH; bits 1..2 the tools offered: every tool, the "compact" subset, the
 *       "simplified" subset, or a hand list with out-of-range indexes (which must be ignored)
 *   [1] the n-th callback (step or plan) asks to stop, in both runs (0 = never)
 *   [2..7] piece sizes of the split run, used in turn
 * The text is parsed whole and in pieces (each piece copied to a block of its exact size and
 * freed after the feed, so a parser that kept a pointer into it shows up under ASan). Both
 * runs must give the same events (steps: index, tool, agent, canonical JSON, end; plans:
 * agent, plan_id, steps, dropped steps and reasons, partial, end) and the same final status
 * and error. Each run also checks: every step's JSON parses (strict), is an object and starts
 * with {"act":"<registry name>"; it names an offered tool; its end is a '}' of the text
 * already fed; a plan's steps_json is "[" + its steps' JSON joined by "," + "]" and parses;
 * non-batch text gives at most one plan and no agents; nothing is called back after a stop
 * or after the parser is done; finish is repeatable and consumed counts every byte.
 * Depends on planparse, jsonstream, buf, registry and (for the registry) the script adapter. */
#define FUZZ_NAME "fuzz_planparse"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "buf.h"
#include "error.h"
#include "jsonstream.h"
#include "planparse.h"
#include "registry.h"
#include "script.h"
#include "tree.h"

#ifndef PH_SOURCE_ROOT
#define PH_SOURCE_ROOT "."
#endif

#define HDR 8
#define NSIZES 6

static ph_gen *gen;                 /* kept for the whole process: the registry lives in it */
static const ph_registry *reg;
static ph_json *strict;             /* validate-only tokenizer for the emitted JSON */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *root = getenv("PLANHOST_SOURCE") ? getenv("PLANHOST_SOURCE") : PH_SOURCE_ROOT;
    ph_tree tree;
    ph_error err;
    if (ph_tree_read(root, PH_MAX_SCRIPT_FILE, &tree, &err) != 0 ||
        !(gen = ph_gen_load(&tree, 1, &err))) {
        fprintf(stderr, "fuzz_planparse: cannot load the scripts under %s: %s\n", root, err.message);
        exit(1);
    }
    reg = ph_gen_registry(gen);
    strict = ph_json_new(NULL, NULL, NULL);
    CHECK(reg && reg->ntools > 0 && strict);
    return 0;
}

/* Whether s[0..n) is one whole strict JSON value opening with `open`. */
static int is_json(const char *s, size_t n, char open)
{
    ph_json_reset(strict);
    return n > 0 && s[0] == open && ph_json_feed(strict, s, n, NULL) == PH_JSON_OK &&
           ph_json_finish(strict) == PH_JSON_OK;
}

typedef struct run {
    const char *text;
    size_t len, fed;            /* fed: bytes handed to the parser so far, this feed included */
    int batch, stop_at, nev, stopped, done;
    const unsigned char *offered;
    ph_buf log;                 /* the events, serialised */
    ph_buf pending;             /* this plan's steps so far, as steps_json must show them */
    int npending, last_index, nplans;
    char outcome[300];
} run;

static void put(run *r, const void *p, size_t n)
{
    CHECK(ph_buf_add(&r->log, p, n) == 0);
}

static void put_str(run *r, const char *s, size_t n)
{
    uint64_t len = s ? n : UINT64_MAX;
    put(r, &len, sizeof len);
    if (s && n)
        put(r, s, n);
}

/* Counts an event; nonzero when it is the one that stops the run. */
static int event(run *r)
{
    CHECK(!r->stopped && !r->done);    /* nothing is called back after a stop or the end */
    if (++r->nev == r->stop_at) {
        r->stopped = 1;
        return 1;
    }
    return 0;
}

static int on_step(void *ud, const ph_pp_step *s)
{
    run *r = ud;
    CHECK(s->tool >= 0 && s->tool < reg->ntools && r->offered[s->tool]);
    CHECK(s->json && is_json(s->json, s->len, '{'));
    const char *name = reg->tools[s->tool].name;
    size_t nl = strlen(name);
    CHECK(s->len > 9 + nl && memcmp(s->json, "{\"act\":\"", 8) == 0 &&
          memcmp(s->json + 8, name, nl) == 0 && s->json[8 + nl] == '"');
    CHECK(s->end >= 1 && s->end <= r->fed && r->text[s->end - 1] == '}');
    CHECK(s->index > r->last_index);
    CHECK(r->batch || s->agent == NULL);
    r->last_index = s->index;
    if (r->npending++)
        CHECK(ph_buf_add(&r->pending, ",", 1) == 0);
    CHECK(ph_buf_add(&r->pending, s->json, s->len) == 0);
    int32_t head[2] = {s->index, s->tool};
    uint64_t end = s->end;
    put(r, "S", 1);
    put(r, head, sizeof head);
    put(r, &end, sizeof end);
    put_str(r, s->agent, s->agent ? strlen(s->agent) : 0);
    put_str(r, s->json, s->len);
    return event(r);
}

static void check_plan(run *r, const ph_pp_plan *p)
{
    CHECK(p->steps_json && p->steps_len == r->pending.len + 2);
    CHECK(p->steps_json[0] == '[' && p->steps_json[p->steps_len - 1] == ']');
    CHECK(r->pending.len == 0 || memcmp(p->steps_json + 1, r->pending.data, r->pending.len) == 0);
    CHECK(is_json(p->steps_json, p->steps_len, '['));
    CHECK(p->nsteps == r->npending && p->ndropped >= 0);
    CHECK(p->plan_id && p->plan_id[0]);
    if (p->plan_id_generated) {
        unsigned x;
        char tail;
        CHECK(strlen(p->plan_id) == 10 && sscanf(p->plan_id, "p-%8x%c", &x, &tail) == 1);
    }
    CHECK(p->end <= r->fed);
    if (!p->partial)
        CHECK(p->end >= 1 && (r->text[p->end - 1] == '}' || r->text[p->end - 1] == ']'));
    CHECK(r->batch || (p->agent == NULL && r->nplans == 0));
    for (int i = 0; i < p->ndropped; i++)
        CHECK(p->dropped[i].reason && p->dropped[i].index >= 0);
}

static int on_plan(void *ud, const ph_pp_plan *p)
{
    run *r = ud;
    check_plan(r, p);
    int32_t head[5] = {p->plan_id_generated, p->nsteps, p->ndropped, p->partial, 0};
    uint64_t end = p->end;
    put(r, "P", 1);
    put(r, head, sizeof head);
    put(r, &end, sizeof end);
    put_str(r, p->agent, p->agent ? strlen(p->agent) : 0);
    put_str(r, p->plan_id, strlen(p->plan_id));
    put_str(r, p->steps_json, p->steps_len);
    for (int i = 0; i < p->ndropped; i++) {
        put(r, &p->dropped[i].index, sizeof p->dropped[i].index);
        put_str(r, p->dropped[i].reason, strlen(p->dropped[i].reason));
    }
    r->nplans++;
    ph_buf_reset(&r->pending);
    r->npending = 0, r->last_index = -1;
    return event(r);
}

/* Feeds the text whole (sizes NULL) or in copied pieces, then finishes and checks the end. */
static void parse(run *r, ph_planparse *p, const uint8_t *sizes)
{
    ph_pp_status st = PH_PP_MORE;
    size_t pos = 0, k = 0;
    while (pos < r->len) {
        size_t n = sizes ? fuzz_piece(sizes, NSIZES, &k) : r->len;
        if (n > r->len - pos)
            n = r->len - pos;
        char *copy = malloc(n);
        CHECK(copy != NULL);
        memcpy(copy, r->text + pos, n);
        r->fed = pos + n;
        ph_pp_status was = st;
        st = ph_planparse_feed(p, copy, n);
        free(copy);
        CHECK(was == PH_PP_MORE || st == was);    /* a final status stays */
        CHECK(st != PH_PP_STOPPED || r->stopped);
        if (st == PH_PP_DONE)
            r->done = 1;
        pos += n;
    }
    CHECK(ph_planparse_consumed(p) == r->len);
    ph_pp_status fin = ph_planparse_finish(p);
    r->done = 1;
    CHECK(ph_planparse_finish(p) == fin);
    CHECK(fin == PH_PP_DONE || fin == PH_PP_STOPPED || fin == PH_PP_ERROR);
    CHECK(st == PH_PP_MORE || fin == st);
    CHECK((fin == PH_PP_STOPPED) == r->stopped);
    if (fin == PH_PP_DONE && !r->batch)
        CHECK(r->nplans == 1);
    if (fin != PH_PP_STOPPED)
        CHECK(r->npending == 0);     /* every step is followed by its plan */
    const char *err = ph_planparse_error(p);
    CHECK((fin == PH_PP_ERROR) == (err != NULL));
    CHECK(ph_planparse_feed(p, "{", 1) == fin);
    int32_t tail = fin;
    put(r, "E", 1);
    put(r, &tail, sizeof tail);
    put_str(r, err, err ? strlen(err) : 0);
    snprintf(r->outcome, sizeof r->outcome, "%d events, %d plans, status %d, error: %s", r->nev,
             r->nplans, (int)fin, err ? err : "-");
}

static void run_once(run *r, const char *text, size_t len, const uint8_t *hdr,
                     const uint8_t *sizes, const int *tools, int ntools,
                     const unsigned char *offered)
{
    memset(r, 0, sizeof *r);
    r->text = text, r->len = len;
    r->batch = hdr[0] & 1, r->stop_at = hdr[1], r->offered = offered, r->last_index = -1;
    ph_buf_init(&r->log, (size_t)-1 / 2);
    ph_buf_init(&r->pending, (size_t)-1 / 2);
    ph_pp_callbacks cb = {on_step, on_plan};
    ph_planparse *p = ph_planparse_new(reg, tools, ntools, r->batch ? PH_PP_BATCH : 0, &cb, r);
    CHECK(p != NULL);
    parse(r, p, sizes);
    ph_planparse_free(p);
    ph_buf_free(&r->pending);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t hdr[HDR] = {0};
    memcpy(hdr, data, size < HDR ? size : HDR);
    const char *text = size > HDR ? (const char *)data + HDR : "";
    size_t len = size > HDR ? size - HDR : 0;

    const int hand[] = {0, 3, -1, 5, 999, 2};
    const int *tools = NULL;
    int ntools = 0;
    const ph_subset *sub = NULL;
    switch ((hdr[0] >> 1) & 3) {
    case 1: sub = ph_registry_subset(reg, "compact"); break;
    case 2: sub = ph_registry_subset(reg, "simplified"); break;
    case 3: tools = hand, ntools = (int)(sizeof hand / sizeof *hand); break;
    default: break;
    }
    if (sub)
        tools = sub->tools, ntools = sub->ntools;
    unsigned char *offered = calloc((size_t)reg->ntools, 1);
    CHECK(offered != NULL);
    for (int i = 0; i < (tools ? ntools : reg->ntools); i++)
        if (!tools || (tools[i] >= 0 && tools[i] < reg->ntools))
            offered[tools ? tools[i] : i] = 1;

    run whole, split;
    run_once(&whole, text, len, hdr, NULL, tools, ntools, offered);
    run_once(&split, text, len, hdr, hdr + 2, tools, ntools, offered);
    fuzz_same_logs(&whole.log, &split.log, whole.outcome, split.outcome);
    ph_buf_free(&whole.log);
    ph_buf_free(&split.log);
    free(offered);
    return 0;
}
