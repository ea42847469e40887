/* buf — growing byte buffer with a hard cap. See buf.h. */
#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ph_buf_init(ph_buf *b, size_t cap)
{
    b->data = NULL;
    b->len = 0;
    b->size = 0;
    b->cap = cap;
    b->failed = 0;
}

void ph_buf_free(ph_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->size = 0;
}

void ph_buf_reset(ph_buf *b)
{
    b->len = 0;
    b->failed = 0;
    if (b->data)
        b->data[0] = '\0';
}

/* Makes room for `extra` more bytes plus the NUL. */
static int reserve(ph_buf *b, size_t extra)
{
    if (extra > b->cap || b->len > b->cap - extra)
        return b->failed = 1, -1;
    size_t need = b->len + extra + 1;
    if (need <= b->size)
        return 0;
    size_t size = b->size ? b->size : 256;
    while (size < need)
        size *= 2;
    char *p = realloc(b->data, size);
    if (!p)
        return b->failed = 1, -1;
    b->data = p;
    b->size = size;
    return 0;
}

int ph_buf_add(ph_buf *b, const void *data, size_t len)
{
    if (reserve(b, len) != 0)
        return -1;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int ph_buf_adds(ph_buf *b, const char *s)
{
    return ph_buf_add(b, s, strlen(s));
}

int ph_buf_vaddf(ph_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    size_t room = b->data ? b->size - b->len : 0;   /* try in place first: one pass */
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return b->failed = 1, -1;
    if ((size_t)n < room && (size_t)n <= b->cap - b->len) {
        b->len += (size_t)n;
        return 0;
    }
    if (room)
        b->data[b->len] = '\0';  /* undo the partial write */
    if (reserve(b, (size_t)n) != 0)
        return -1;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int ph_buf_addf(ph_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = ph_buf_vaddf(b, fmt, ap);
    va_end(ap);
    return rc;
}

const char *ph_buf_str(const ph_buf *b)
{
    return b->data ? b->data : "";
}

char *ph_buf_take(ph_buf *b)
{
    char *p = b->data ? b->data : strdup("");
    b->data = NULL;
    b->len = 0;
    b->size = 0;
    b->failed = 0;
    return p;
}
