/*
 * jsonstream — incremental JSON tokenizer (see jsonstream.h for the contract).
 *
 * One pass of one state machine over the bytes of each feed. run() holds the hot paths:
 * structural bytes dispatched through a character-class table, and strings, numbers and
 * literals that lie wholly inside the current feed scanned by tight loops (strings 16 bytes at
 * a time with SSE2 where the compiler offers it, indentation 8 spaces at a time) and handed
 * to the callback as pointers into the caller's buffer. A token that crosses a feed boundary,
 * or a string that needs unescaping, goes on in the token buffer through the *_cont/str_slow
 * functions, whose byte-wise sub-states define the exact error offsets; the fast paths only
 * ever take input those would accept, so results never depend on how the input was split.
 * Depends on libc only (and <emmintrin.h> on x86).
 */
#include "jsonstream.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__) && defined(__GNUC__)
#include <emmintrin.h>
#define USE_SSE2 1
#endif

#define MAX_DEPTH_LIMIT (1u << 20)

#if defined(__GNUC__)
#define HOT_INLINE inline __attribute__((always_inline))
#else
#define HOT_INLINE inline
#endif

/* Word-at-a-time scanning needs the index of the first marked byte of a little-endian word. */
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define FIRST_BYTE(m) ((size_t)__builtin_ctzll(m) >> 3)
#endif
#define ALL_FLAGS                                                                             \
    (PH_JSON_ALLOW_TRAILING_COMMA | PH_JSON_ALLOW_MULTIPLE | PH_JSON_ALLOW_TRAILING_GARBAGE)

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

/* ---- character tables ---------------------------------------------------------------- */

enum { C_OTHER, C_WS, C_QUOTE, C_NUM, C_T, C_F, C_N, C_OPEN };

static const uint8_t cls[256] = {
    [' '] = C_WS, ['\t'] = C_WS, ['\n'] = C_WS, ['\r'] = C_WS, ['"'] = C_QUOTE,
    ['-'] = C_NUM, ['0'] = C_NUM, ['1'] = C_NUM, ['2'] = C_NUM, ['3'] = C_NUM, ['4'] = C_NUM,
    ['5'] = C_NUM, ['6'] = C_NUM, ['7'] = C_NUM, ['8'] = C_NUM, ['9'] = C_NUM,
    ['t'] = C_T, ['f'] = C_F, ['n'] = C_N, ['{'] = C_OPEN, ['['] = C_OPEN,
};

/* 1 for bytes that stand for themselves inside a string: printable ASCII but '"' and '\'. */
#define Z16 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
#define O16 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
static const uint8_t plain[256] = {
    Z16, Z16, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, O16, O16,   /* 0x00 - 0x4f */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, O16, O16,             /* 0x50 - 0x7f */
};

/* Number byte classes: 0 other, 1 '0', 2 '1'-'9', 3 '-', 4 '+', 5 '.', 6 'e'/'E'. */
static const uint8_t ncls[256] = {
    ['0'] = 1, ['1'] = 2, ['2'] = 2, ['3'] = 2, ['4'] = 2, ['5'] = 2, ['6'] = 2, ['7'] = 2,
    ['8'] = 2, ['9'] = 2, ['-'] = 3, ['+'] = 4, ['.'] = 5, ['e'] = 6, ['E'] = 6,
};

/* N_END: the byte is not part of the number and the number so far is complete. A byte that
 * could belong to a number but not here ("01", "1.2.3", "1-2") is an error, not an end. */
static const uint8_t ndfa[N_END][7] = {
    /*            other  '0'      1-9      '-'      '+'      '.'    e/E  */
    [N_START] = {N_ERR, N_ZERO, N_INT, N_MINUS, N_ERR, N_ERR, N_ERR},
    [N_MINUS] = {N_ERR, N_ZERO, N_INT, N_ERR, N_ERR, N_ERR, N_ERR},
    [N_ZERO] = {N_END, N_ERR, N_ERR, N_ERR, N_ERR, N_DOT, N_E},
    [N_INT] = {N_END, N_INT, N_INT, N_ERR, N_ERR, N_DOT, N_E},
    [N_DOT] = {N_ERR, N_FRAC, N_FRAC, N_ERR, N_ERR, N_ERR, N_ERR},
    [N_FRAC] = {N_END, N_FRAC, N_FRAC, N_ERR, N_ERR, N_ERR, N_E},
    [N_E] = {N_ERR, N_EXP, N_EXP, N_ESIGN, N_ESIGN, N_ERR, N_ERR},
    [N_ESIGN] = {N_ERR, N_EXP, N_EXP, N_ERR, N_ERR, N_ERR, N_ERR},
    [N_EXP] = {N_END, N_EXP, N_EXP, N_ERR, N_ERR, N_ERR, N_ERR},
};

/* ---- small helpers --------------------------------------------------------------------- */

static inline uint64_t off_of(const ph_json *j, const uint8_t *p)
{
    return j->base + (uint64_t)(p - j->feed);
}

static int fail(ph_json *j, uint64_t off, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->err, sizeof j->err, fmt, ap);
    va_end(ap);
    j->err_off = off;
    j->state = ST_ERROR;
    return R_ERR;
}

static int fail_byte(ph_json *j, const uint8_t *p, const char *what)
{
    if (*p >= 0x20 && *p < 0x7f)
        return fail(j, off_of(j, p), "unexpected '%c': %s", *p, what);
    return fail(j, off_of(j, p), "unexpected byte 0x%02x: %s", *p, what);
}

static int fail_cap(ph_json *j, const uint8_t *p)
{
    return fail(j, off_of(j, p), "token longer than max_token (%zu bytes)", j->max_token);
}

/* Token text never outgrows its input bytes (an escape is never shorter than what it
 * decodes to), so max_token bounds the buffer. */
static int grow(ph_json *j, size_t need)
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

/* Appends n bytes to the token buffer. */
static inline int append(ph_json *j, const void *src, size_t n)
{
    if (j->len + n > j->cap && grow(j, j->len + n))
        return fail(j, j->tok_off, "out of memory");
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

static int append_utf8(ph_json *j, uint32_t cp)
{
    uint8_t b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (uint8_t)cp, n = 1;
    } else if (cp < 0x800) {
        b[0] = (uint8_t)(0xC0 | cp >> 6), b[1] = (uint8_t)(0x80 | (cp & 0x3F)), n = 2;
    } else if (cp < 0x10000) {
        b[0] = (uint8_t)(0xE0 | cp >> 12), b[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        b[2] = (uint8_t)(0x80 | (cp & 0x3F)), n = 3;
    } else {
        b[0] = (uint8_t)(0xF0 | cp >> 18), b[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
        b[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F)), b[3] = (uint8_t)(0x80 | (cp & 0x3F)), n = 4;
    }
    return append(j, b, n);
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

static inline int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
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
static int emit_buffered(ph_json *j, ph_json_kind kind, const char *text, uint64_t end)
{
    j->state = kind == PH_JSON_KEY ? ST_COLON : j->depth ? ST_AFTER : j->top_next;
    return emit(j, kind, text, text ? j->len : 0, j->tok_off, end, j->depth);
}

/* ---- strings --------------------------------------------------------------------------- */

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
        while (q < lim && plain[*q])
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
    while (p < end && cls[*p] == C_WS) {
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

/* A decoded \u escape; handles surrogate pairs. */
static int str_codepoint(ph_json *j)
{
    uint32_t cp = j->cp;
    if (j->hi) {
        if (cp < 0xDC00 || cp > 0xDFFF)
            return fail(j, j->hi_off, "lone surrogate \\u%04X", (unsigned)j->hi);
        cp = 0x10000 + ((j->hi - 0xD800) << 10) + (cp - 0xDC00);
        j->hi = 0;
    } else if (cp >= 0xD800 && cp <= 0xDBFF) {
        j->hi = cp;
        j->hi_off = j->esc_off;
        j->sub = S_LOW_BS;
        return R_DONE;
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        return fail(j, j->esc_off, "lone surrogate \\u%04X", (unsigned)cp);
    }
    j->sub = S_NORM;
    return append_utf8(j, cp);
}

static int str_escape(ph_json *j, uint8_t c)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *e = c ? strchr(from, c) : NULL;
    if (c == 'u') {
        j->sub = S_U0;
        j->cp = 0;
        return R_DONE;
    }
    if (!e)
        return fail(j, j->esc_off, "invalid escape in string");
    j->sub = S_NORM;
    return append(j, &to[e - from], 1);
}

/* One byte of a string in the slow path, other than a run of plain bytes in S_NORM. */
static int str_byte(ph_json *j, const uint8_t *p)
{
    uint8_t c = *p;
    switch (j->sub) {
    case S_NORM:
        if (c == '\\') {
            j->esc_off = off_of(j, p);
            j->sub = S_ESC;
            return R_DONE;
        }
        if (c < 0x20)
            return fail(j, off_of(j, p), "control character in string");
        j->u8_need = (uint8_t)utf8_lead(c, &j->u8_lo, &j->u8_hi);
        if (!j->u8_need)
            return fail(j, off_of(j, p), "invalid UTF-8 in string");
        j->sub = S_UTF8;
        return append(j, p, 1);
    case S_UTF8:
        if (c < j->u8_lo || c > j->u8_hi)
            return fail(j, off_of(j, p), "invalid UTF-8 in string");
        j->u8_lo = 0x80, j->u8_hi = 0xBF;
        if (--j->u8_need == 0)
            j->sub = S_NORM;
        return append(j, p, 1);
    case S_ESC:
        return str_escape(j, c);
    case S_U0: case S_U1: case S_U2: case S_U3: {
        int v = hexval(c);
        if (v < 0)
            return fail(j, j->esc_off, "invalid \\u escape in string");
        j->cp = j->cp << 4 | (uint32_t)v;
        return j->sub++ == S_U3 ? str_codepoint(j) : R_DONE;
    }
    default: /* S_LOW_BS, S_LOW_U: the '\' and 'u' of a low surrogate */
        if (c != (j->sub == S_LOW_BS ? '\\' : 'u'))
            return fail(j, j->hi_off, "lone surrogate \\u%04X", (unsigned)j->hi);
        if (j->sub == S_LOW_BS)
            j->esc_off = off_of(j, p);
        j->sub = j->sub == S_LOW_BS ? S_LOW_U : S_U0;
        j->cp = 0;
        return R_DONE;
    }
}

static inline int hex4(const uint8_t *p)
{
    int a = hexval(p[0]), b = hexval(p[1]), c = hexval(p[2]), d = hexval(p[3]);
    return (a | b | c | d) < 0 ? -1 : a << 12 | b << 8 | c << 4 | d;
}

/* Decodes the escape at p (a '\') when it is valid and ends before lim; returns its length,
 * or 0 to leave it to the byte-wise path (which then reports any error exactly). */
static size_t esc_whole(ph_json *j, const uint8_t *p, const uint8_t *lim)
{
    static const char simple[128] = {['"'] = '"', ['\\'] = '\\', ['/'] = '/', ['b'] = '\b',
                                     ['f'] = '\f', ['n'] = '\n', ['r'] = '\r', ['t'] = '\t'};
    size_t avail = (size_t)(lim - p);
    int cp, lo;
    if (avail < 2 || p[1] >= 0x80)
        return 0;
    if (p[1] != 'u')
        return simple[p[1]] && append(j, &simple[p[1]], 1) == R_DONE ? 2 : 0;
    if (avail < 6 || (cp = hex4(p + 2)) < 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
        return 0;
    if (cp < 0xD800 || cp > 0xDBFF)
        return append_utf8(j, (uint32_t)cp) == R_DONE ? 6 : 0;
    if (avail < 12 || p[6] != '\\' || p[7] != 'u' || (lo = hex4(p + 8)) < 0xDC00 || lo > 0xDFFF)
        return 0;
    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    return append_utf8(j, (uint32_t)cp) == R_DONE ? 12 : 0;
}

/* Continues a string in the token buffer from *pp (state ST_STRING). */
static int str_slow(ph_json *j, const uint8_t **pp, const uint8_t *end)
{
    const uint8_t *p = *pp;
    int r;
    while (p < end) {
        size_t room = j->max_token - j->raw, n;
        if (j->sub == S_NORM) {
            const uint8_t *q = scan_str(p, end, room);
            if ((r = append(j, p, (size_t)(q - p))) != R_DONE)
                return r;
            j->raw += (size_t)(q - p);
            room -= (size_t)(q - p);
            if ((p = q) == end)
                break;
            if (*p == '"') {
                *pp = p + 1;
                return emit_buffered(j, j->is_key ? PH_JSON_KEY : PH_JSON_STRING, j->buf,
                                     off_of(j, p) + 1);
            }
            n = *p == '\\' ? esc_whole(j, p, (size_t)(end - p) > room ? p + room : end) : 0;
            if (n) {
                p += n;
                j->raw += n;
                continue;
            }
        }
        if (room == 0)
            return fail_cap(j, p);
        if ((r = str_byte(j, p)) != R_DONE)
            return r;
        j->raw++;
        p++;
    }
    *pp = p;
    return R_MORE;
}

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
    return r == R_DONE ? str_slow(j, pp, end) : r;
}

/* ---- numbers and literals -------------------------------------------------------------- */

/* Runs the number DFA over [p, end) from state *st, raw bytes of the number already seen.
 * Returns where it stopped; *r = R_DONE (the number ended there), R_MORE (input ran out) or
 * R_ERR. */
static inline const uint8_t *num_scan(ph_json *j, const uint8_t *p, const uint8_t *end,
                                      unsigned *st, size_t raw, int *r)
{
    size_t room = j->max_token - raw;
    const uint8_t *stop = (size_t)(end - p) > room ? p + room : end;
    unsigned s = *st, ns = N_END;
    while (p < stop && (ns = ndfa[s][ncls[*p]]) < N_END) {
        s = ns;
        p++;
    }
    *st = s;
    if (p == end)
        *r = R_MORE;
    else if (ndfa[s][ncls[*p]] == N_END)
        *r = R_DONE;
    else
        *r = p == stop ? fail_cap(j, p) : fail_byte(j, p, "invalid number");
    return p;
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

static int num_cont(ph_json *j, const uint8_t **pp, const uint8_t *end)
{
    const uint8_t *s = *pp;
    unsigned st = j->sub;
    int r;
    *pp = num_scan(j, s, end, &st, j->raw, &r);
    if (r == R_ERR)
        return r;
    j->sub = (uint8_t)st;
    j->raw += (size_t)(*pp - s);
    int a = append(j, s, (size_t)(*pp - s));
    if (a != R_DONE || r == R_MORE)
        return a != R_DONE ? a : R_MORE;
    return emit_buffered(j, PH_JSON_NUMBER, j->buf, j->tok_off + j->len);
}

static const char *const lit_name[] = {"null", "true", "false"};
static const uint8_t lit_len[] = {4, 4, 5};

static inline int lit_whole(const uint8_t *p, const uint8_t *end, ph_json_kind kind)
{
    return (size_t)(end - p) >= lit_len[kind] && memcmp(p, lit_name[kind], lit_len[kind]) == 0;
}

static void lit_start(ph_json *j, ph_json_kind kind, uint64_t off)
{
    j->lit_kind = kind;
    j->sub = 0;
    j->tok_off = off;
    j->state = ST_LITERAL;
}

static int lit_cont(ph_json *j, const uint8_t **pp, const uint8_t *end)
{
    const uint8_t *p = *pp;
    const char *lit = lit_name[j->lit_kind];
    for (; lit[j->sub]; p++, j->sub++) {
        if (p == end) {
            *pp = p;
            return R_MORE;
        }
        if (*p != (uint8_t)lit[j->sub])
            return fail_byte(j, p, "invalid literal");
    }
    *pp = p;
    return emit_buffered(j, j->lit_kind, NULL, j->tok_off + j->sub);
}

/* ---- the state machine ----------------------------------------------------------------- */

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
 * state to state; tokens carried across feeds go through the *_cont functions and re-enter
 * through the switch. */
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
    case ST_STRING: r = str_slow(j, &t, end); break;
    case ST_NUMBER: r = num_cont(j, &t, end); break;
    case ST_LITERAL: r = lit_cont(j, &t, end); break;
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
    return fail_byte(j, p, "trailing characters after the top-level value");
value:
    SKIP_WS(ST_VALUE);
value_start:
    switch (cls[*p]) {
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
            return fail(j, OFF(p), "nesting deeper than max_depth (%u)", j->max_depth);
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
        return fail_byte(j, p, "expected a value");
    }
literal:
    off = OFF(p);
    if (lit_whole(p, end, kind)) {
        p += lit_len[kind];
        EMIT(kind, NULL, 0, off, off + lit_len[kind], j->depth, AFTER_VALUE);
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
    return fail_byte(j, p, "trailing comma");
obj_first:
    SKIP_WS(ST_OBJ_FIRST);
    if (*p == '"')
        goto key;
    if (*p == '}')
        goto close;
    return fail_byte(j, p, "expected a string key");
obj_next:
    SKIP_WS(ST_OBJ_NEXT);
    if (*p == '"')
        goto key;
    if (*p == '}' && (j->flags & PH_JSON_ALLOW_TRAILING_COMMA))
        goto close;
    return fail_byte(j, p, *p == '}' ? "trailing comma" : "expected a string key");
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
        return fail_byte(j, p, "expected ':' after key");
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
    return fail_byte(j, p, j->stack[j->depth - 1] ? "expected ',' or '}'" : "expected ',' or ']'");
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
    if (!j->stack || grow(j, 1)) {
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
        fail(j, j->base, "input already finished");
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
        return fail(j, off, "no JSON value in the input");
    case ST_TOP_AFTER: case ST_DONE: case ST_FINISHED: return R_DONE;
    case ST_ERROR: return R_ERR;
    case ST_STRING: return fail(j, off, "unexpected end of input in a string");
    case ST_LITERAL: return fail(j, off, "unexpected end of input in a literal");
    case ST_NUMBER:
        if (j->depth == 0)
            return fail(j, off, "unexpected end of input in a number");
        /* fall through */
    default:
        return fail(j, off, "unexpected end of input in an %s",
                    j->stack[j->depth - 1] ? "object" : "array");
    }
}

ph_json_status ph_json_finish(ph_json *j)
{
    if (j->state == ST_NUMBER && j->depth == 0 && ndfa[j->sub][0] == N_END) {
        if (emit_buffered(j, PH_JSON_NUMBER, j->buf, j->base) == R_STOP)
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
