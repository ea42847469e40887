/* fuzz_serve_body — libFuzzer target for the POST /v1/plan body checker (srv_body_parse in
 * host/serve_body.c, declared in host/serve.h) on arbitrary bytes.
 *
 * Input: a 1-byte header, then the body. The header picks --max-snapshots: below 128,
 * 1 + (byte % 8) (so the 413 path is reached), else the default SRV_DEFAULT_MAX_SNAPSHOTS.
 * The body is copied to a block of its exact size (no NUL after it), so a read past its end
 * shows up under ASan. Checked (abort() on a broken promise):
 *   - on 0: status 0, 1 to max snapshots, each range inside the body, in order, not
 *     overlapping, and each one whole strict JSON value; the game range (when set) a JSON
 *     object inside the body; budget_ms 0 or 1..3600000; template a NUL-terminated string;
 *     outside the wrapper shape no budget, template or game;
 *   - on -1: status 400, 413 or 500, a NUL-terminated non-empty error, offset inside the body;
 *   - against an independent strict parse of the body (same caps): malformed JSON is refused
 *     and valid JSON is never called "invalid JSON"; a top-level scalar is a 400; a top-level array
 *     of n values gives n snapshots (1 <= n <= max), a 413 past max, a 400 when empty; an
 *     object without a "snapshots" key is one snapshot, the whole object.
 * Depends on serve_body and jsonstream. */
#define FUZZ_NAME "fuzz_serve_body"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "jsonstream.h"
#include "serve.h"

/* What an independent pass sees in the body. */
typedef struct shape {
    int top;                    /* '{', '[' or 's' (scalar), 0 before the first token */
    int wrapper;                /* a top-level object with a "snapshots" key */
    int nelem;                  /* top-level array: its values */
    uint64_t start, end;        /* the top-level value */
} shape;

static int on_shape(void *ctx, const ph_json_token *t)
{
    shape *s = ctx;
    if (t->depth == 0) {
        if (!s->top) {
            s->top = t->kind == PH_JSON_BEGIN_OBJECT ? '{' : t->kind == PH_JSON_BEGIN_ARRAY ? '[' : 's';
            s->start = t->offset;
        }
        s->end = t->end;
    } else if (t->depth == 1 && s->top == '[' && t->kind != PH_JSON_END_OBJECT &&
               t->kind != PH_JSON_END_ARRAY) {
        s->nelem++;
    } else if (t->depth == 1 && s->top == '{' && t->kind == PH_JSON_KEY && t->len == 9 &&
               memcmp(t->text, "snapshots", 9) == 0) {
        s->wrapper = 1;
    }
    return 0;
}

static ph_json_config caps(size_t len)
{
    ph_json_config cfg = {0, PH_JSON_DEFAULT_MAX_DEPTH + 2, len ? len : 1};
    return cfg;
}

/* Whether body[off..off+len) is one whole strict JSON value. */
static int whole_value(const char *body, size_t off, size_t len)
{
    ph_json_config cfg = caps(len);
    ph_json *j = ph_json_new(&cfg, NULL, NULL);
    CHECK(j != NULL);
    int ok = len > 0 && ph_json_feed(j, body + off, len, NULL) == PH_JSON_OK &&
             ph_json_finish(j) == PH_JSON_OK;
    ph_json_free(j);
    return ok;
}

static int parse_shape(const char *body, size_t len, shape *s)
{
    ph_json_config cfg = caps(len);
    ph_json *j = ph_json_new(&cfg, on_shape, s);
    CHECK(j != NULL);
    int ok = ph_json_feed(j, body, len, NULL) == PH_JSON_OK && ph_json_finish(j) == PH_JSON_OK;
    ph_json_free(j);
    return ok;
}

static void check_ok(const srv_body *b, const char *body, size_t len, int max)
{
    CHECK(b->status == 0 && b->nsnap >= 1 && b->nsnap <= max && b->snap);
    size_t next = 0;
    for (int i = 0; i < b->nsnap; i++) {
        const srv_range *r = &b->snap[i];
        CHECK(r->off >= next && r->len > 0 && r->off + r->len <= len);
        CHECK(whole_value(body, r->off, r->len));
        next = r->off + r->len;
    }
    if (b->game.len) {
        CHECK(b->game.off + b->game.len <= len && body[b->game.off] == '{');
        CHECK(whole_value(body, b->game.off, b->game.len));
    }
    CHECK(b->budget_ms >= 0 && b->budget_ms <= 3600000);
    CHECK(memchr(b->tmpl, '\0', sizeof b->tmpl) != NULL);
}

static void check_fail(const srv_body *b, size_t len)
{
    CHECK(b->status == 400 || b->status == 413 || b->status == 500);
    CHECK(memchr(b->error, '\0', sizeof b->error) != NULL && b->error[0]);
    CHECK(b->offset <= len);
}

/* The verdict against what the independent pass saw. */
static void check_shape(const srv_body *b, int rc, int valid, const shape *s, int max)
{
    int invalid_msg = rc != 0 && strncmp(b->error, "invalid JSON", 12) == 0;
    if (!valid) {   /* refused; a shape problem met before the syntax error may be the reason */
        CHECK(rc != 0);
        return;
    }
    CHECK(!invalid_msg);
    if (s->top == 's')
        CHECK(rc != 0 && b->status == 400);
    if (s->top == '[') {
        if (s->nelem == 0 || s->nelem > max)
            CHECK(rc != 0 && b->status == (s->nelem ? 413u : 400u));
        else
            CHECK(rc == 0 && b->nsnap == s->nelem);
    }
    if (s->top == '{' && !s->wrapper) {
        CHECK(rc == 0 && b->nsnap == 1);
        CHECK(b->snap[0].off == s->start && b->snap[0].len == s->end - s->start);
    }
    if (rc == 0 && !s->wrapper)
        CHECK(b->budget_ms == 0 && b->tmpl[0] == '\0' && b->game.len == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int max = size && data[0] < 128 ? 1 + data[0] % 8 : (int)SRV_DEFAULT_MAX_SNAPSHOTS;
    size_t len = size > 1 ? size - 1 : 0;
    char *body = malloc(len ? len : 1);
    CHECK(body != NULL);
    if (len)
        memcpy(body, data + 1, len);

    srv_body b;
    int rc = srv_body_parse(body, len, max, &b);
    CHECK(rc == 0 || rc == -1);
    if (rc == 0)
        check_ok(&b, body, len, max);
    else
        check_fail(&b, len);
    shape s = {0};
    int valid = parse_shape(body, len, &s);
    check_shape(&b, rc, valid, &s, max);
    srv_body_free(&b);
    CHECK(b.snap == NULL && b.nsnap == 0);
    free(body);
    return 0;
}
