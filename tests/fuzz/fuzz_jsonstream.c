/* fuzz_jsonstream — libFuzzer target for the push tokenizer (host/jsonstream.h).
 *
 * Input: an 8-byte header, then the JSON text.
 *   [0] flags: bits 0..2 PH_JSON_ALLOW_* (MULTIPLE with TRAILING_GARBAGE must be refused
 *       by ph_json_new; the target then drops TRAILING_GARBAGE)
 *   [1] caps: low nibble max_depth (0 = default), high nibble max_token (0 = default, else
 *       2 * n - 1 bytes)
 *   [2] stop: the callback of the split run returns nonzero on every n-th token (0 = never)
 *   [3..7] piece sizes of the split run, used in turn
 * The text is tokenized twice: whole with a fresh handle, then in pieces with stops on a
 * handle that was left inside a value by other input and reset, resuming each stop at buf + consumed. Both runs must
 * give the same tokens (kind, flags, depth, text, offsets), the same final status, error
 * message and offset, the same ph_json_value_end and (when not in error) ph_json_offset. Every run also checks
 * what the header promises about one call: consumed per status, token order and nesting,
 * number text as written, no token past the bytes fed. A broken promise is abort().
 * Depends on jsonstream and buf. */
#define FUZZ_NAME "fuzz_jsonstream"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "buf.h"
#include "jsonstream.h"

#define HDR 8
#define MAX_STACK 64

typedef struct run {
    const uint8_t *in;          /* the whole text */
    size_t len;
    uint64_t fed;               /* bytes handed to ph_json_feed so far, this feed included */
    unsigned stop_every, ntok;
    ph_buf log;                 /* every token, serialised */
    uint64_t last_end, value_end;
    uint64_t stop_end;          /* end of the token that asked to stop */
    unsigned char stack[MAX_STACK + 1];   /* 1 object, 0 array, as the tokens say */
    unsigned depth;
    int discard;                /* tokens of the junk fed before a reset: not this run's */
    char outcome[400];          /* the end of the run in words, for the report of a mismatch */
} run;

static void log_bytes(run *r, const void *p, size_t n)
{
    CHECK(ph_buf_add(&r->log, p, n) == 0);
}

/* Nesting as the token stream tells it must agree with the depth the tokenizer reports. */
static void check_nesting(run *r, const ph_json_token *t)
{
    CHECK(t->depth == (t->kind == PH_JSON_END_OBJECT || t->kind == PH_JSON_END_ARRAY
                       ? r->depth - 1 : r->depth));
    int in_obj = r->depth > 0 && r->depth <= MAX_STACK && r->stack[r->depth - 1];
    switch (t->kind) {
    case PH_JSON_BEGIN_OBJECT:
    case PH_JSON_BEGIN_ARRAY:
        if (r->depth < MAX_STACK)
            r->stack[r->depth] = t->kind == PH_JSON_BEGIN_OBJECT;
        r->depth++;
        break;
    case PH_JSON_END_OBJECT:
    case PH_JSON_END_ARRAY:
        CHECK(r->depth > 0);
        if (r->depth <= MAX_STACK)
            CHECK(r->stack[r->depth - 1] == (t->kind == PH_JSON_END_OBJECT));
        r->depth--;
        break;
    case PH_JSON_KEY:
        CHECK(r->depth > MAX_STACK || in_obj);
        break;
    default:
        break;
    }
}

static void check_text(run *r, const ph_json_token *t)
{
    switch (t->kind) {
    case PH_JSON_NUMBER:
        CHECK(t->len == t->end - t->offset && t->end <= r->len);
        CHECK(memcmp(t->text, r->in + t->offset, t->len) == 0);
        break;
    case PH_JSON_STRING:
    case PH_JSON_KEY: {
        CHECK(t->end - t->offset >= 2 && t->len <= t->end - t->offset - 2);
        CHECK(r->in[t->offset] == '"' && r->in[t->end - 1] == '"');
        const uint8_t *raw = r->in + t->offset + 1;
        size_t n = (size_t)(t->end - t->offset - 2);
        if (!memchr(raw, '\\', n))
            CHECK(t->len == n && (n == 0 || memcmp(t->text, raw, n) == 0));
        break;
    }
    default:
        CHECK(t->text == NULL && t->len == 0);
        break;
    }
}

static int on_token(void *ctx, const ph_json_token *t)
{
    run *r = ctx;
    if (r->discard)
        return 0;
    CHECK(t->offset < t->end && t->end <= r->fed && t->offset >= r->last_end);
    check_nesting(r, t);
    check_text(r, t);
    int value_end = t->depth == 0 && t->kind != PH_JSON_BEGIN_OBJECT &&
                    t->kind != PH_JSON_BEGIN_ARRAY;
    CHECK(!!(t->flags & PH_JSON_TOK_VALUE_END) == value_end);
    if (value_end)
        r->value_end = t->end;
    r->last_end = t->end;
    uint32_t head[4] = {(uint32_t)t->kind, t->flags, t->depth, (uint32_t)t->len};
    uint64_t offs[2] = {t->offset, t->end};
    log_bytes(r, head, sizeof head);
    log_bytes(r, offs, sizeof offs);
    if (t->len)
        log_bytes(r, t->text, t->len);
    r->ntok++;
    if (r->stop_every && r->ntok % r->stop_every == 0) {
        r->stop_end = t->end;
        return 1;
    }
    return 0;
}

/* What one call returned, checked against the header, then logged. */
static void after_feed(run *r, ph_json *j, ph_json_status st, uint64_t base, size_t len,
                       size_t used)
{
    CHECK(used <= len);
    uint64_t off = 0;
    const char *msg = ph_json_error(j, &off);
    CHECK((st == PH_JSON_ERROR) == (msg != NULL));
    switch (st) {
    case PH_JSON_OK:
        CHECK(used == len && ph_json_offset(j) == base + len);
        break;
    case PH_JSON_STOPPED:
        CHECK(used == (r->stop_end > base ? r->stop_end - base : 0));
        CHECK(ph_json_offset(j) == base + used);
        break;
    case PH_JSON_COMPLETE:
        CHECK(r->value_end != UINT64_MAX);
        CHECK(used == (r->value_end > base ? r->value_end - base : 0));
        break;
    case PH_JSON_ERROR:
        CHECK(off <= base + len);
        CHECK(used == (off > base ? off - base : 0));
        break;
    }
    CHECK(ph_json_value_end(j) == r->value_end);
}

static void log_end(run *r, ph_json *j, ph_json_status st)
{
    uint64_t off = 0;
    const char *msg = ph_json_error(j, &off);
    /* ph_json_offset is "bytes used so far"; after an error the header gives it no meaning
     * (it stays at the start of the failing feed, so it depends on the split): not compared. */
    uint64_t tail[4] = {(uint64_t)st, off, msg ? 0 : ph_json_offset(j), ph_json_value_end(j)};
    log_bytes(r, "\xff" "END", 4);
    log_bytes(r, tail, sizeof tail);
    if (msg)
        log_bytes(r, msg, strlen(msg));
    snprintf(r->outcome, sizeof r->outcome, "%u tokens, status %d, offset %llu, value_end %lld, "
             "error at %llu: %s", r->ntok, (int)st, (unsigned long long)ph_json_offset(j),
             (long long)ph_json_value_end(j), (unsigned long long)off, msg ? msg : "-");
}

static ph_json_status finish(run *r, ph_json *j)
{
    ph_json_status st;
    int rounds = 0;
    while ((st = ph_json_finish(j)) == PH_JSON_STOPPED)
        CHECK(++rounds < 4);   /* only the pending top-level number can stop it */
    CHECK((st == PH_JSON_ERROR) == (ph_json_error(j, NULL) != NULL));
    CHECK(st == PH_JSON_OK || st == PH_JSON_ERROR);
    CHECK(ph_json_value_end(j) == r->value_end);
    return st;
}

/* Feeds r->in in pieces (sizes NULL: whole), resuming after every stop. */
static void tokenize(run *r, ph_json *j, const uint8_t *sizes)
{
    size_t pos = 0, k = 0;
    ph_json_status st = PH_JSON_OK;
    while (pos < r->len) {
        size_t n = sizes ? fuzz_piece(sizes, 5, &k) : r->len;
        if (n > r->len - pos)
            n = r->len - pos;
        size_t end = pos + n;
        r->fed = end;
        while (pos < end) {
            size_t used = 0;
            uint64_t base = pos;
            st = ph_json_feed(j, r->in + pos, end - pos, &used);
            after_feed(r, j, st, base, end - pos, used);
            pos += used;
            if (st != PH_JSON_STOPPED)
                break;
        }
        if (st == PH_JSON_ERROR || st == PH_JSON_COMPLETE)
            break;
    }
    if (st == PH_JSON_COMPLETE) {
        size_t used = 1;
        CHECK(ph_json_feed(j, r->in, r->len, &used) == PH_JSON_COMPLETE && used == 0);
    }
    if (st != PH_JSON_ERROR)
        st = finish(r, j);
    log_end(r, j, st);
}

static void run_init(run *r, const uint8_t *in, size_t len, unsigned stop_every)
{
    memset(r, 0, sizeof *r);
    r->in = in, r->len = len, r->stop_every = stop_every;
    r->value_end = UINT64_MAX;
    ph_buf_init(&r->log, (size_t)-1 / 2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t hdr[HDR] = {0};
    memcpy(hdr, data, size < HDR ? size : HDR);
    const uint8_t *text = size > HDR ? data + HDR : data;
    size_t len = size > HDR ? size - HDR : 0;

    ph_json_config cfg = {hdr[0] & 7u, hdr[1] & 15u, 0};
    if (hdr[1] >> 4)
        cfg.max_token = 2u * (hdr[1] >> 4) - 1u;
    if ((cfg.flags & PH_JSON_ALLOW_MULTIPLE) && (cfg.flags & PH_JSON_ALLOW_TRAILING_GARBAGE)) {
        CHECK(ph_json_new(&cfg, NULL, NULL) == NULL);
        cfg.flags &= ~(unsigned)PH_JSON_ALLOW_TRAILING_GARBAGE;
    }
    ph_json_config bad = cfg;
    bad.flags |= 1u << 3;
    CHECK(ph_json_new(&bad, NULL, NULL) == NULL);

    run whole, split;
    run_init(&whole, text, len, 0);
    run_init(&split, text, len, hdr[2]);
    ph_json *j = ph_json_new(&cfg, on_token, &whole);
    CHECK(j != NULL);
    tokenize(&whole, j, NULL);
    if (ph_json_error(j, NULL) == NULL) {
        size_t used = 0;   /* feeding after a successful finish is an error until reset */
        CHECK(ph_json_feed(j, " ", 1, &used) == PH_JSON_ERROR && used == 0);
    }
    ph_json_free(j);

    /* The split run on a handle left mid-value by other input and then reset: a reset
     * handle must behave like a fresh one. */
    j = ph_json_new(&cfg, on_token, &split);
    CHECK(j != NULL);
    split.discard = 1;
    ph_json_feed(j, "[{\"k\":[\"x", 10, NULL);
    split.discard = 0;
    ph_json_reset(j);
    CHECK(ph_json_offset(j) == 0 && ph_json_value_end(j) == UINT64_MAX);
    CHECK(ph_json_error(j, NULL) == NULL);
    tokenize(&split, j, hdr + 3);
    ph_json_free(j);

    fuzz_same_logs(&whole.log, &split.log, whole.outcome, split.outcome);
    ph_buf_free(&whole.log);
    ph_buf_free(&split.log);
    return 0;
}
