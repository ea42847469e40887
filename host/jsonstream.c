/*
 * jsonstream — incremental JSON tokenizer (see jsonstream.h for the contract).
 *
 * One pass of one state machine over the bytes of each feed. run() holds the hot paths:
 * structural bytes dispatched through a character-class table, and strings, numbers and
 * literals that lie wholly inside the current feed scanned by tight loops (strings 16 bytes at
 * a time with SSE2 where the compiler offers it, indentation 8 spaces at a time; inline, from
 * jsonstream_internal.h) and handed to the callback as pointers into the caller's buffer. A
 * token that crosses a feed boundary, or a string that needs unescaping, goes on in the token
 * buffer through the slow paths of jsonstream_scan.c, whose byte-wise sub-states define the
 * exact error offsets; the fast paths only ever take input those would accept, so results
 * never depend on how the input was split. This file also owns the handle, error reporting,
 * the token buffer and token delivery.
 * Depends on jsonstream_internal.h (jsonstream_scan.c) and libc.
 */
#include "jsonstream_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH_LIMIT (1u << 20)

#define ALL_FLAGS                                                                             \
    (PH_JSON_ALLOW_TRAILING_COMMA | PH_JSON_ALLOW_MULTIPLE | PH_JSON_ALLOW_TRAILING_GARBAGE)

/* ---- errors, the token buffer, delivery ------------------------------------------------- */

int ph_js_fail(ph_json *j, uint64_t off, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->err, sizeof j->err, fmt, ap);
    va_end(ap);
    j->err_off = off;
    j->state = ST_ERROR;
    return R_ERR;
}

int ph_js_fail_byte(ph_json *j, const uint8_t *p, const char *what)
{
    if (*p >= 0x20 && *p < 0x7f)
        return ph_js_fail(j, off_of(j, p), "unexpected '%c': %s", *p, what);
    return ph_js_fail(j, off_of(j, p), "unexpected byte 0x%02x: %s", *p, what);
}

int ph_js_fail_cap(ph_json *j, const uint8_t *p)
{
    return ph_js_fail(j, off_of(j, p), "token longer than max_token (%zu bytes)", j->max_token);
}

/* Token text never outgrows its input bytes (an escape is never shorter than what it
 * decodes to), so max_token bounds the buffer. */
int ph_js_grow(ph_json *j, size_t need)
{
    size_t cap = j->cap ? j->cap : 256;
    if (need > j->max_token)
        return -1;
    while (cap < need)
        cap *= 2;
    if (cap > j->max_token)
        cap = j->max_token;
    char *nb = realloc(j->buf, cap);
    if (!nb)
        return -1;
    j->buf = nb;
    j->cap = cap;
    return 0;
}

/* Fills and delivers a token; marks it as ending the top-level value when it does. */
static inline int emit(ph_json *j, ph_json_kind kind, const char *text, size_t len,
                       uint64_t off, uint64_t end, unsigned depth)
{
    ph_json_token *t = &j->tok;
    t->kind = kind;
    t->text = text;
    t->len = len;
    t->offset = off;
    t->end = end;
    t->depth = depth;
    t->flags = 0;
    if (depth == 0 && kind != PH_JSON_BEGIN_OBJECT && kind != PH_JSON_BEGIN_ARRAY) {
        t->flags = PH_JSON_TOK_VALUE_END;
        j->value_end = end;
    }
    return j->cb(j->ctx, t) ? R_STOP : R_DONE;
}

/* Emits a scalar that was carried in the token buffer, leaving the state after it. */
int ph_js_emit_buffered(ph_json *j, ph_json_kind kind, const char *text, uint64_t end)
{
    j->state = kind == PH_JSON_KEY ? ST_COLON : j->depth ? ST_AFTER : j->top_next;
    return emit(j, kind, text, text ? j->len : 0, j->tok_off, end, j->depth);
}

/* ---- hand-overs to the slow paths -------------------------------------------------------
 * When a string, number or literal does not end in the current feed (or a string needs
 * unescaping), run() leaves it to jsonstream_scan.c through these. */

/* Moves the string opened at *pp, clean up to q, into the token buffer and goes on there. */
static int str_to_buffer(ph_json *j, const uint8_t **pp, const uint8_t *q, const uint8_t *end,
                         int is_key)
{
    const uint8_t *s = *pp + 1;
    j->tok_off = off_of(j, *pp);
    j->is_key = (uint8_t)is_key;
    j->len = 0;
    j->raw = (size_t)(q - s);
    j->sub = S_NORM;
    j->hi = 0;
    j->state = ST_STRING;
    *pp = q;
    int r = append(j, s, (size_t)(q - s));
    return r == R_DONE ? ph_js_str_slow(j, pp, end) : r;
}

/* Carries the number [s, q) in DFA state st over to the next feed. */
static int num_to_buffer(ph_json *j, const uint8_t *s, const uint8_t *q, uint64_t off,
                         unsigned st)
{
    j->state = ST_NUMBER;
    j->tok_off = off;
    j->sub = (uint8_t)st;
    j->len = 0;
    j->raw = (size_t)(q - s);
    int r = append(j, s, (size_t)(q - s));
    return r == R_DONE ? R_MORE : r;
}

/* Enters ST_LITERAL for the literal of `kind` starting at absolute offset off. */
static void lit_start(ph_json *j, ph_json_kind kind, uint64_t off)
{
    j->lit_kind = kind;
    j->sub = 0;
    j->tok_off = off;
    j->state = ST_LITERAL;
}

/* ---- the state machine ----------------------------------------------------------------- */

/* Whether the whole literal of `kind` lies at p, before end. */
static inline int lit_whole(const uint8_t *p, const uint8_t *end, ph_json_kind kind)
{
    size_t n = ph_js_lit_len[kind];
    return (size_t)(end - p) >= n && memcmp(p, ph_js_lit_name[kind], n) == 0;
}

#define SKIP_WS(st)                                                                           \
    do {                                                                                      \
        p = skip_ws(p, end);                                                                  \
        if (p == end) {                                                                       \
            j->state = (st);                                                                  \
            goto out;                                                                         \
        }                                                                                     \
    } while (0)

/* Delivers a token; on a stop, records the state to resume in and leaves. */
#define EMIT(kind, text, len, off, endoff, depth, next)                                       \
    do {                                                                                      \
        if (emit(j, kind, (const char *)(text), len, off, endoff, depth)) {                    \
            j->state = (next);                                                                \
            r = R_STOP;                                                                       \
            goto out;                                                                         \
        }                                                                                     \
    } while (0)

#define AFTER_VALUE (j->depth ? ST_AFTER : j->top_next)
#define OFF(x) (base + (uint64_t)((x) - feed))

/* Consumes [*pp, end). Hot paths (tokens wholly inside this feed) are inline and jump from
 * state to state; tokens carried across feeds go through the slow paths (ph_js_str_slow,
 * ph_js_*_cont in jsonstream_scan.c) and re-enter through the switch. */
static int run(ph_json *j, const uint8_t **pp, const uint8_t *end)
{
    const uint8_t *p = *pp, *q, *t, *const feed = j->feed;
    const uint64_t base = j->base;
    int r = R_MORE, is_key = 0;
    unsigned st;
    ph_json_kind kind;
    uint64_t off;
resume:
    t = p;
    switch (j->state) {
    case ST_TOP: goto top;
    case ST_TOP_AFTER: goto top_after;
    case ST_VALUE: goto value;
    case ST_ARR_FIRST: goto arr_first;
    case ST_ARR_NEXT: goto arr_next;
    case ST_OBJ_FIRST: goto obj_first;
    case ST_OBJ_NEXT: goto obj_next;
    case ST_COLON: goto colon;
    case ST_AFTER: goto after;
    case ST_STRING: r = ph_js_str_slow(j, &t, end); break;
    case ST_NUMBER: r = ph_js_num_cont(j, &t, end); break;
    case ST_LITERAL: r = ph_js_lit_cont(j, &t, end); break;
    default: r = R_MORE; goto out; /* ST_DONE */
    }
    p = t;
    if (r != R_DONE)
        goto out;
    goto resume;

top:
    SKIP_WS(ST_TOP);
    goto value_start;
top_after:
    SKIP_WS(ST_TOP_AFTER);
    return ph_js_fail_byte(j, p, "trailing characters after the top-level value");
value:
    SKIP_WS(ST_VALUE);
value_start:
    switch (ph_js_cls[*p]) {
    case C_QUOTE:
        q = scan_str(p + 1, end, j->max_token);
        if (q < end && *q == '"') {
            off = OFF(p);
            t = p + 1;
            p = q + 1;
            EMIT(PH_JSON_STRING, t, (size_t)(q - t), off, OFF(p), j->depth, AFTER_VALUE);
            goto after_value;
        }
        is_key = 0;
        goto string_slow;
    case C_NUM:
        off = OFF(p);
        st = N_START;
        q = num_scan(j, p, end, &st, 0, &r);
        if (r == R_DONE) {
            t = p;
            p = q;
            EMIT(PH_JSON_NUMBER, t, (size_t)(q - t), off, OFF(p), j->depth, AFTER_VALUE);
            goto after_value;
        }
        if (r == R_MORE)
            r = num_to_buffer(j, p, q, off, st);
        p = q;
        goto out;
    case C_T: kind = PH_JSON_TRUE; goto literal;
    case C_F: kind = PH_JSON_FALSE; goto literal;
    case C_N: kind = PH_JSON_NULL; goto literal;
    case C_OPEN:
        if (j->depth == j->max_depth)
            return ph_js_fail(j, OFF(p), "nesting deeper than max_depth (%u)", j->max_depth);
        off = OFF(p);
        if (*p++ == '{') {
            j->stack[j->depth++] = 1;
            EMIT(PH_JSON_BEGIN_OBJECT, NULL, 0, off, off + 1, j->depth - 1, ST_OBJ_FIRST);
            goto obj_first;
        }
        j->stack[j->depth++] = 0;
        EMIT(PH_JSON_BEGIN_ARRAY, NULL, 0, off, off + 1, j->depth - 1, ST_ARR_FIRST);
        goto arr_first;
    default:
        return ph_js_fail_byte(j, p, "expected a value");
    }
literal:
    off = OFF(p);
    if (lit_whole(p, end, kind)) {
        p += ph_js_lit_len[kind];
        EMIT(kind, NULL, 0, off, off + ph_js_lit_len[kind], j->depth, AFTER_VALUE);
        goto after_value;
    }
    lit_start(j, kind, off);
    goto resume;
arr_first:
    SKIP_WS(ST_ARR_FIRST);
    if (*p == ']')
        goto close;
    goto value_start;
arr_next:
    SKIP_WS(ST_ARR_NEXT);
    if (*p != ']')
        goto value_start;
    if (j->flags & PH_JSON_ALLOW_TRAILING_COMMA)
        goto close;
    return ph_js_fail_byte(j, p, "trailing comma");
obj_first:
    SKIP_WS(ST_OBJ_FIRST);
    if (*p == '"')
        goto key;
    if (*p == '}')
        goto close;
    return ph_js_fail_byte(j, p, "expected a string key");
obj_next:
    SKIP_WS(ST_OBJ_NEXT);
    if (*p == '"')
        goto key;
    if (*p == '}' && (j->flags & PH_JSON_ALLOW_TRAILING_COMMA))
        goto close;
    return ph_js_fail_byte(j, p, *p == '}' ? "trailing comma" : "expected a string key");
key:
    q = scan_str(p + 1, end, j->max_token);
    if (q < end && *q == '"') {
        off = OFF(p);
        t = p + 1;
        p = q + 1;
        EMIT(PH_JSON_KEY, t, (size_t)(q - t), off, OFF(p), j->depth, ST_COLON);
        goto colon;
    }
    is_key = 1;
    goto string_slow;
colon:
    SKIP_WS(ST_COLON);
    if (*p != ':')
        return ph_js_fail_byte(j, p, "expected ':' after key");
    p++;
    goto value;
after:
    SKIP_WS(ST_AFTER);
    if (*p == ',') {
        p++;
        if (j->stack[j->depth - 1])
            goto obj_next;
        goto arr_next;
    }
    if (*p == (j->stack[j->depth - 1] ? '}' : ']'))
        goto close;
    return ph_js_fail_byte(j, p, j->stack[j->depth - 1] ? "expected ',' or '}'"
                                                        : "expected ',' or ']'");
close:
    off = OFF(p);
    j->depth--;
    EMIT(*p++ == '}' ? PH_JSON_END_OBJECT : PH_JSON_END_ARRAY, NULL, 0, off, off + 1, j->depth,
         AFTER_VALUE);
after_value:
    if (j->depth)
        goto after;
    if (j->top_next == ST_TOP)
        goto top;
    if (j->top_next == ST_TOP_AFTER)
        goto top_after;
    j->state = ST_DONE;
    r = R_MORE;
    goto out;
string_slow:
    t = p;
    r = str_to_buffer(j, &t, q, end, is_key);
    p = t;
    if (r == R_DONE)
        goto resume;
out:
    *pp = p;
    return r;
}

/* ---- public API ------------------------------------------------------------------------ */

static int ignore_token(void *ctx, const ph_json_token *tok)
{
    (void)ctx, (void)tok;
    return 0;
}

ph_json *ph_json_new(const ph_json_config *cfg, ph_json_callback cb, void *ctx)
{
    ph_json_config c = cfg ? *cfg : (ph_json_config){0};
    if (c.flags & ~(unsigned)ALL_FLAGS)
        return NULL;
    if ((c.flags & PH_JSON_ALLOW_MULTIPLE) && (c.flags & PH_JSON_ALLOW_TRAILING_GARBAGE))
        return NULL;
    if (c.max_depth > MAX_DEPTH_LIMIT)
        return NULL;
    ph_json *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->cb = cb ? cb : ignore_token;
    j->ctx = ctx;
    j->flags = c.flags;
    j->max_depth = c.max_depth ? c.max_depth : PH_JSON_DEFAULT_MAX_DEPTH;
    j->max_token = c.max_token ? c.max_token : PH_JSON_DEFAULT_MAX_TOKEN;
    j->top_next = c.flags & PH_JSON_ALLOW_MULTIPLE ? ST_TOP
                : c.flags & PH_JSON_ALLOW_TRAILING_GARBAGE ? ST_DONE : ST_TOP_AFTER;
    j->stack = malloc(j->max_depth);
    if (!j->stack || ph_js_grow(j, 1)) {
        ph_json_free(j);
        return NULL;
    }
    ph_json_reset(j);
    return j;
}

void ph_json_free(ph_json *j)
{
    if (!j)
        return;
    free(j->stack);
    free(j->buf);
    free(j);
}

void ph_json_reset(ph_json *j)
{
    j->state = ST_TOP;
    j->depth = 0;
    j->base = 0;
    j->len = 0;
    j->hi = 0;
    j->value_end = UINT64_MAX;
    j->err[0] = '\0';
}

ph_json_status ph_json_feed(ph_json *j, const void *buf, size_t len, size_t *consumed)
{
    const uint8_t *p = buf;
    int r = R_MORE;
    j->feed = p;
    if (j->state == ST_FINISHED)
        ph_js_fail(j, j->base, "input already finished");
    if (j->state != ST_ERROR && j->state != ST_DONE && len)
        r = run(j, &p, p + len);
    if (j->state == ST_ERROR) {
        uint64_t before = j->err_off > j->base ? j->err_off - j->base : 0;
        if (consumed)
            *consumed = before < len ? (size_t)before : len;
        return PH_JSON_ERROR;
    }
    size_t used = (size_t)(p - (const uint8_t *)buf);
    j->base += used;
    if (consumed)
        *consumed = used;
    if (r == R_STOP)
        return PH_JSON_STOPPED;
    return j->state == ST_DONE ? PH_JSON_COMPLETE : PH_JSON_OK;
}

/* Whether the input may end in the current state; fails with the reason when not. */
static int finish_check(ph_json *j)
{
    uint64_t off = j->base;
    switch (j->state) {
    case ST_TOP:
        if (j->top_next == ST_TOP)
            return R_DONE;
        return ph_js_fail(j, off, "no JSON value in the input");
    case ST_TOP_AFTER: case ST_DONE: case ST_FINISHED: return R_DONE;
    case ST_ERROR: return R_ERR;
    case ST_STRING: return ph_js_fail(j, off, "unexpected end of input in a string");
    case ST_LITERAL: return ph_js_fail(j, off, "unexpected end of input in a literal");
    case ST_NUMBER:
        if (j->depth == 0)
            return ph_js_fail(j, off, "unexpected end of input in a number");
        /* fall through */
    default:
        return ph_js_fail(j, off, "unexpected end of input in an %s",
                    j->stack[j->depth - 1] ? "object" : "array");
    }
}

ph_json_status ph_json_finish(ph_json *j)
{
    if (j->state == ST_NUMBER && j->depth == 0 && ph_js_ndfa[j->sub][0] == N_END) {
        if (ph_js_emit_buffered(j, PH_JSON_NUMBER, j->buf, j->base) == R_STOP)
            return PH_JSON_STOPPED;
    }
    if (finish_check(j) != R_DONE)
        return PH_JSON_ERROR;
    j->state = ST_FINISHED;
    return PH_JSON_OK;
}

const char *ph_json_error(const ph_json *j, uint64_t *offset)
{
    if (j->state != ST_ERROR)
        return NULL;
    if (offset)
        *offset = j->err_off;
    return j->err;
}

uint64_t ph_json_value_end(const ph_json *j)
{
    return j->value_end;
}

uint64_t ph_json_offset(const ph_json *j)
{
    return j->base;
}
