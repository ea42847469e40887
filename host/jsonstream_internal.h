/*
 * jsonstream_internal — what the two files of the JSON tokenizer share: jsonstream.c (the
 * handle, token delivery, the state machine and the public API) and jsonstream_scan.c (the
 * character tables and the byte-wise slow paths of strings, numbers and literals). Nothing
 * else includes this. The scanners the state machine's hot path runs on every token (string
 * content, whitespace, the number DFA, appending to the token buffer) are static inline here
 * so that splitting the files costs no calls. Depends on jsonstream.h and libc (and
 * <emmintrin.h> on x86).
 */
#ifndef PH_JSONSTREAM_INTERNAL_H
#define PH_JSONSTREAM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "jsonstream.h"

#if defined(__SSE2__) && defined(__GNUC__)
#include <emmintrin.h>
#define USE_SSE2 1
#endif

#if defined(__GNUC__)
#define HOT_INLINE inline __attribute__((always_inline))
/* Shared between the two files only: kept out of planhost.so's dynamic symbols, so calls and
 * table loads stay direct under -fPIC, as they were when all of this was file-local. */
#define PH_JS_HIDDEN __attribute__((visibility("hidden")))
/* Error and buffer-growth paths, now out of sight of the hot loops that call them: said to be
 * rare so that the compiler lays the loops out for the common case. */
#define PH_JS_COLD __attribute__((cold))
#else
#define HOT_INLINE inline
#define PH_JS_HIDDEN
#define PH_JS_COLD
#endif

/* Word-at-a-time scanning needs the index of the first marked byte of a little-endian word. */
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define FIRST_BYTE(m) ((size_t)__builtin_ctzll(m) >> 3)
#endif

enum state {
    ST_TOP,       /* before a top-level value */
    ST_TOP_AFTER, /* strict: after the top-level value, whitespace only */
    ST_VALUE,     /* after ':': a value */
    ST_ARR_FIRST, /* after '[': a value or ']' */
    ST_ARR_NEXT,  /* after ',' in an array: a value (or ']' with trailing commas) */
    ST_OBJ_FIRST, /* after '{': a key or '}' */
    ST_OBJ_NEXT,  /* after ',' in an object: a key (or '}' with trailing commas) */
    ST_COLON,     /* after a key */
    ST_AFTER,     /* after a value inside a container: ',' or the closing bracket */
    ST_STRING,    /* inside a string carried over a feed boundary or being unescaped */
    ST_NUMBER,    /* inside a number carried over a feed boundary */
    ST_LITERAL,   /* inside true/false/null carried over a feed boundary */
    ST_DONE,      /* trailing-garbage mode: the value closed, the rest is ignored */
    ST_FINISHED,  /* ph_json_finish succeeded */
    ST_ERROR,
};

/* String sub-states. */
enum { S_NORM, S_UTF8, S_ESC, S_U0, S_U1, S_U2, S_U3, S_LOW_BS, S_LOW_U };

/* Number sub-states (a DFA for RFC 8259's number grammar) and its two verdicts. */
enum { N_START, N_MINUS, N_ZERO, N_INT, N_DOT, N_FRAC, N_E, N_ESIGN, N_EXP, N_END, N_ERR };

/* Outcome of a token scanner. */
enum { R_DONE, R_MORE, R_STOP, R_ERR };

struct ph_json {
    ph_json_callback cb;
    void *ctx;
    unsigned flags;
    unsigned max_depth;
    size_t max_token;
    uint8_t top_next;       /* state after a top-level value closes */

    uint8_t state;
    uint8_t sub;            /* sub-state of ST_STRING / ST_NUMBER / ST_LITERAL */
    uint8_t is_key;         /* the string in progress is an object key */
    uint8_t u8_need, u8_lo, u8_hi; /* UTF-8 sequence in progress */
    unsigned depth;
    uint8_t *stack;         /* max_depth entries: 1 = object, 0 = array */

    const uint8_t *feed;    /* first byte of the current feed */
    uint64_t base;          /* absolute offset of feed[0] */
    uint64_t tok_off;       /* start of the token in progress */
    uint64_t esc_off;       /* start of the escape in progress */
    uint64_t hi_off;        /* start of the pending high-surrogate escape */
    uint64_t value_end;
    size_t raw;             /* input bytes of the token in progress (inside the quotes) */
    uint32_t cp, hi;        /* \u escape being read, pending high surrogate (0 = none) */
    ph_json_kind lit_kind;

    char *buf;              /* token buffer: never more than max_token bytes */
    size_t len, cap;

    uint64_t err_off;
    char err[96];
    ph_json_token tok;
};

/* ---- character tables (jsonstream_scan.c) ---------------------------------------------- */

enum { C_OTHER, C_WS, C_QUOTE, C_NUM, C_T, C_F, C_N, C_OPEN };

/* Structural class of each byte (C_*), for dispatching on the first byte of a value. */
PH_JS_HIDDEN extern const uint8_t ph_js_cls[256];
/* 1 for bytes that stand for themselves inside a string: printable ASCII but '"' and '\'. */
PH_JS_HIDDEN extern const uint8_t ph_js_plain[256];
/* Number byte classes: 0 other, 1 '0', 2 '1'-'9', 3 '-', 4 '+', 5 '.', 6 'e'/'E'. */
PH_JS_HIDDEN extern const uint8_t ph_js_ncls[256];
/* The number DFA: [state][ncls] -> next state, N_END or N_ERR. */
PH_JS_HIDDEN extern const uint8_t ph_js_ndfa[N_END][7];
/* true/false/null, indexed by ph_json_kind (PH_JSON_NULL..PH_JSON_FALSE), and their lengths. */
PH_JS_HIDDEN extern const char *const ph_js_lit_name[3];
PH_JS_HIDDEN extern const uint8_t ph_js_lit_len[3];

/* ---- errors, the token buffer, delivery (jsonstream.c) ---------------------------------- */

/* Puts the handle in error at absolute offset off with a printf-style message; R_ERR. */
PH_JS_HIDDEN PH_JS_COLD int ph_js_fail(ph_json *j, uint64_t off, const char *fmt, ...);
/* The same for the byte at p (in the current feed), naming it and what was expected. */
PH_JS_HIDDEN PH_JS_COLD int ph_js_fail_byte(ph_json *j, const uint8_t *p, const char *what);
/* The token reached max_token at p. */
PH_JS_HIDDEN PH_JS_COLD int ph_js_fail_cap(ph_json *j, const uint8_t *p);
/* Grows the token buffer to at least need bytes (never past max_token); 0, or -1. */
PH_JS_HIDDEN PH_JS_COLD int ph_js_grow(ph_json *j, size_t need);
/* Emits a scalar that was carried in the token buffer, leaving the state after it. */
PH_JS_HIDDEN int ph_js_emit_buffered(ph_json *j, ph_json_kind kind, const char *text,
                                     uint64_t end);

/* ---- slow paths (jsonstream_scan.c) ------------------------------------------------------
 * Each consumes from *pp up to end, advances *pp, and returns R_DONE (token delivered, state
 * set to what follows), R_MORE (input ran out, state set to resume), R_STOP or R_ERR. */

/* Continues a string in the token buffer from *pp (state ST_STRING). */
PH_JS_HIDDEN int ph_js_str_slow(ph_json *j, const uint8_t **pp, const uint8_t *end);
/* Continues a number carried over a feed boundary (state ST_NUMBER). */
PH_JS_HIDDEN int ph_js_num_cont(ph_json *j, const uint8_t **pp, const uint8_t *end);
/* Continues a literal (state ST_LITERAL). */
PH_JS_HIDDEN int ph_js_lit_cont(ph_json *j, const uint8_t **pp, const uint8_t *end);

/* ---- hot-path scanners (inline) ---------------------------------------------------------- */

/* Absolute offset of p, a byte of the current feed. */
static inline uint64_t off_of(const ph_json *j, const uint8_t *p)
{
    return j->base + (uint64_t)(p - j->feed);
}

/* Appends n bytes to the token buffer. */
static inline int append(ph_json *j, const void *src, size_t n)
{
    if (j->len + n > j->cap && ph_js_grow(j, j->len + n))
        return ph_js_fail(j, j->tok_off, "out of memory");
    if (n <= 8) { /* pieces are often tiny: a call to memcpy would cost more than the copy */
        const uint8_t *s = src;
        for (size_t i = 0; i < n; i++)
            j->buf[j->len + i] = (char)s[i];
    } else {
        memcpy(j->buf + j->len, src, n);
    }
    j->len += n;
    return R_DONE;
}

/* For a UTF-8 lead byte: how many continuation bytes follow (0 = not a lead byte) and the
 * range allowed for the first of them (excludes overlong forms, surrogates, > U+10FFFF). */
static inline unsigned utf8_lead(uint8_t c, uint8_t *lo, uint8_t *hi)
{
    *lo = 0x80, *hi = 0xBF;
    if (c < 0xC2 || c > 0xF4)
        return 0;
    if (c < 0xE0)
        return 1;
    if (c < 0xF0) {
        if (c == 0xE0) *lo = 0xA0;
        if (c == 0xED) *hi = 0x9F;
        return 2;
    }
    if (c == 0xF0) *lo = 0x90;
    if (c == 0xF4) *hi = 0x8F;
    return 3;
}

/* Length of the valid UTF-8 sequence at p if it ends before lim, else 0. */
static inline size_t utf8_whole(const uint8_t *p, const uint8_t *lim)
{
    uint8_t lo, hi;
    unsigned need = utf8_lead(p[0], &lo, &hi);
    if (!need || (size_t)(lim - p) <= need || p[1] < lo || p[1] > hi)
        return 0;
    for (unsigned i = 2; i <= need; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return need + 1;
}

/* Skips string content that needs no decoding (plain ASCII and valid UTF-8) from q, at most
 * max bytes and not past end; returns where it stopped. */
static HOT_INLINE const uint8_t *scan_str(const uint8_t *q, const uint8_t *end, size_t max)
{
    const uint8_t *lim = (size_t)(end - q) > max ? q + max : end;
    for (;;) {
#ifdef USE_SSE2
        while (lim - q >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
            __m128i m = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                     _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
            /* signed compare: true for 0x00-0x1f and for 0x80-0xff */
            m = _mm_or_si128(m, _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)));
            unsigned bits = (unsigned)_mm_movemask_epi8(m);
            if (bits) {
                q += __builtin_ctz(bits);
                if (*q == '"' || *q == '\\')
                    return q;
                break;
            }
            q += 16;
        }
#endif
        while (q < lim && ph_js_plain[*q])
            q++;
        size_t n = q < lim && *q >= 0x80 ? utf8_whole(q, lim) : 0;
        if (!n)
            return q;
        q += n;
    }
}

#define ONES 0x0101010101010101ull

/* Skips whitespace from p; runs of spaces (indentation) a word at a time. */
static HOT_INLINE const uint8_t *skip_ws(const uint8_t *p, const uint8_t *end)
{
    while (p < end && ph_js_cls[*p] == C_WS) {
        p++;
#ifdef FIRST_BYTE
        uint64_t v, x, m;
        while (end - p >= 8) {
            memcpy(&v, p, 8);
            x = v ^ (ONES * ' ');
            m = (((x & ~(ONES * 0x80)) + ONES * 0x7F) | x) & (ONES * 0x80); /* byte != ' ' */
            if (m) {
                p += FIRST_BYTE(m);
                break;
            }
            p += 8;
        }
#endif
    }
    return p;
}

/* Runs the number DFA over [p, end) from state *st, raw bytes of the number already seen.
 * Returns where it stopped; *r = R_DONE (the number ended there), R_MORE (input ran out) or
 * R_ERR. */
static inline const uint8_t *num_scan(ph_json *j, const uint8_t *p, const uint8_t *end,
                                      unsigned *st, size_t raw, int *r)
{
    size_t room = j->max_token - raw;
    const uint8_t *stop = (size_t)(end - p) > room ? p + room : end;
    unsigned s = *st, ns = N_END;
    while (p < stop && (ns = ph_js_ndfa[s][ph_js_ncls[*p]]) < N_END) {
        s = ns;
        p++;
    }
    *st = s;
    if (p == end)
        *r = R_MORE;
    else if (ph_js_ndfa[s][ph_js_ncls[*p]] == N_END)
        *r = R_DONE;
    else
        *r = p == stop ? ph_js_fail_cap(j, p) : ph_js_fail_byte(j, p, "invalid number");
    return p;
}

#endif
