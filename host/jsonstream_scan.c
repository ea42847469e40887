/*
 * jsonstream_scan — the JSON tokenizer's character tables and slow paths (see
 * jsonstream_internal.h).
 *
 * The slow paths take over from jsonstream.c's state machine when a token does not lie wholly
 * in the current feed, or when a string needs unescaping: they go on byte by byte (strings
 * still skip clean runs with the inline scanner) in the token buffer, through sub-states that
 * survive a feed boundary and define the exact error offsets: UTF-8 sequences, escapes and
 * surrogate pairs in strings, the number DFA, the letters of true/false/null.
 * Depends on jsonstream_internal.h (errors, the token buffer and delivery from jsonstream.c)
 * and libc.
 */
#include "jsonstream_internal.h"

#include <string.h>

/* ---- character tables ---------------------------------------------------------------- */

const uint8_t ph_js_cls[256] = {
    [' '] = C_WS, ['\t'] = C_WS, ['\n'] = C_WS, ['\r'] = C_WS, ['"'] = C_QUOTE,
    ['-'] = C_NUM, ['0'] = C_NUM, ['1'] = C_NUM, ['2'] = C_NUM, ['3'] = C_NUM, ['4'] = C_NUM,
    ['5'] = C_NUM, ['6'] = C_NUM, ['7'] = C_NUM, ['8'] = C_NUM, ['9'] = C_NUM,
    ['t'] = C_T, ['f'] = C_F, ['n'] = C_N, ['{'] = C_OPEN, ['['] = C_OPEN,
};

/* 1 for bytes that stand for themselves inside a string: printable ASCII but '"' and '\'. */
#define Z16 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
#define O16 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
const uint8_t ph_js_plain[256] = {
    Z16, Z16, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, O16, O16,   /* 0x00 - 0x4f */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, O16, O16,             /* 0x50 - 0x7f */
};

/* Number byte classes: 0 other, 1 '0', 2 '1'-'9', 3 '-', 4 '+', 5 '.', 6 'e'/'E'. */
const uint8_t ph_js_ncls[256] = {
    ['0'] = 1, ['1'] = 2, ['2'] = 2, ['3'] = 2, ['4'] = 2, ['5'] = 2, ['6'] = 2, ['7'] = 2,
    ['8'] = 2, ['9'] = 2, ['-'] = 3, ['+'] = 4, ['.'] = 5, ['e'] = 6, ['E'] = 6,
};

/* N_END: the byte is not part of the number and the number so far is complete. A byte that
 * could belong to a number but not here ("01", "1.2.3", "1-2") is an error, not an end. */
const uint8_t ph_js_ndfa[N_END][7] = {
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

const char *const ph_js_lit_name[3] = {"null", "true", "false"};
const uint8_t ph_js_lit_len[3] = {4, 4, 5};

/* ---- strings --------------------------------------------------------------------------- */

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

static inline int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* A decoded \u escape; handles surrogate pairs. */
static int str_codepoint(ph_json *j)
{
    uint32_t cp = j->cp;
    if (j->hi) {
        if (cp < 0xDC00 || cp > 0xDFFF)
            return ph_js_fail(j, j->hi_off, "lone surrogate \\u%04X", (unsigned)j->hi);
        cp = 0x10000 + ((j->hi - 0xD800) << 10) + (cp - 0xDC00);
        j->hi = 0;
    } else if (cp >= 0xD800 && cp <= 0xDBFF) {
        j->hi = cp;
        j->hi_off = j->esc_off;
        j->sub = S_LOW_BS;
        return R_DONE;
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        return ph_js_fail(j, j->esc_off, "lone surrogate \\u%04X", (unsigned)cp);
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
        return ph_js_fail(j, j->esc_off, "invalid escape in string");
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
            return ph_js_fail(j, off_of(j, p), "control character in string");
        j->u8_need = (uint8_t)utf8_lead(c, &j->u8_lo, &j->u8_hi);
        if (!j->u8_need)
            return ph_js_fail(j, off_of(j, p), "invalid UTF-8 in string");
        j->sub = S_UTF8;
        return append(j, p, 1);
    case S_UTF8:
        if (c < j->u8_lo || c > j->u8_hi)
            return ph_js_fail(j, off_of(j, p), "invalid UTF-8 in string");
        j->u8_lo = 0x80, j->u8_hi = 0xBF;
        if (--j->u8_need == 0)
            j->sub = S_NORM;
        return append(j, p, 1);
    case S_ESC:
        return str_escape(j, c);
    case S_U0: case S_U1: case S_U2: case S_U3: {
        int v = hexval(c);
        if (v < 0)
            return ph_js_fail(j, j->esc_off, "invalid \\u escape in string");
        j->cp = j->cp << 4 | (uint32_t)v;
        return j->sub++ == S_U3 ? str_codepoint(j) : R_DONE;
    }
    default: /* S_LOW_BS, S_LOW_U: the '\' and 'u' of a low surrogate */
        if (c != (j->sub == S_LOW_BS ? '\\' : 'u'))
            return ph_js_fail(j, j->hi_off, "lone surrogate \\u%04X", (unsigned)j->hi);
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
int ph_js_str_slow(ph_json *j, const uint8_t **pp, const uint8_t *end)
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
                return ph_js_emit_buffered(j, j->is_key ? PH_JSON_KEY : PH_JSON_STRING,
                                           j->buf, off_of(j, p) + 1);
            }
            n = *p == '\\' ? esc_whole(j, p, (size_t)(end - p) > room ? p + room : end) : 0;
            if (n) {
                p += n;
                j->raw += n;
                continue;
            }
        }
        if (room == 0)
            return ph_js_fail_cap(j, p);
        if ((r = str_byte(j, p)) != R_DONE)
            return r;
        j->raw++;
        p++;
    }
    *pp = p;
    return R_MORE;
}

/* ---- numbers and literals -------------------------------------------------------------- */

int ph_js_num_cont(ph_json *j, const uint8_t **pp, const uint8_t *end)
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
    return ph_js_emit_buffered(j, PH_JSON_NUMBER, j->buf, j->tok_off + j->len);
}

int ph_js_lit_cont(ph_json *j, const uint8_t **pp, const uint8_t *end)
{
    const uint8_t *p = *pp;
    const char *lit = ph_js_lit_name[j->lit_kind];
    for (; lit[j->sub]; p++, j->sub++) {
        if (p == end) {
            *pp = p;
            return R_MORE;
        }
        if (*p != (uint8_t)lit[j->sub])
            return ph_js_fail_byte(j, p, "invalid literal");
    }
    *pp = p;
    return ph_js_emit_buffered(j, j->lit_kind, NULL, j->tok_off + j->sub);
}
