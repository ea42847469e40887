/* jsonw — JSON writing helpers. See jsonw.h. */
#include "jsonw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the well-formed UTF-8 sequence at s[0..len) (RFC 3629: no overlongs, no
 * surrogates, nothing past U+10FFFF), or 0 when it is not one. s[0] >= 0x80. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
    unsigned c = s[0];
    size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (n == 0 || n > len)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) || (c == 0xf0 && s[1] < 0x90) ||
        (c == 0xf4 && s[1] > 0x8f))
        return 0;
    return n;
}

int ph_jsonw_str(ph_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (ph_buf_add(b, "\"", 1))
        return -1;
    size_t run = 0;  /* start of the pending run of bytes that need no escape */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {             /* well-formed UTF-8 passes; anything else becomes U+FFFD */
            size_t n = utf8_seq((const unsigned char *)s + i, len - i);
            if (n) {
                i += n - 1;
                continue;
            }
            if (ph_buf_add(b, s + run, i - run) || ph_buf_add(b, "\\ufffd", 6))
                return -1;
            run = i + 1;
            continue;
        }
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if (ph_buf_add(b, s + run, i - run))
            return -1;
        char esc[7] = {'\\', (char)c, 0};
        size_t n = 2;
        switch (c) {
        case '"': case '\\': break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        if (ph_buf_add(b, esc, n))
            return -1;
        run = i + 1;
    }
    if (ph_buf_add(b, s + run, len - run))
        return -1;
    return ph_buf_add(b, "\"", 1);
}

int ph_jsonw_cstr(ph_buf *b, const char *s)
{
    return s ? ph_jsonw_str(b, s, strlen(s)) : ph_buf_adds(b, "null");
}

int ph_jsonw_key(ph_buf *b, const char *key, int first)
{
    if (!first && ph_buf_add(b, ",", 1))
        return -1;
    if (ph_jsonw_cstr(b, key))
        return -1;
    return ph_buf_add(b, ":", 1);
}

int ph_jsonw_num(ph_buf *b, double v)
{
    if (!isfinite(v))
        return ph_buf_adds(b, "null");
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        return ph_buf_addf(b, "%.0f", v);
    char tmp[32];
    static const int precs[] = {6, 15, 17};   /* short when it reads back the same */
    for (int i = 0; i < 3; i++) {
        snprintf(tmp, sizeof tmp, "%.*g", precs[i], v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    return ph_buf_adds(b, tmp);
}
