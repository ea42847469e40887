/* buf — a growing byte buffer with a hard cap (after curl's dynbuf).
 *
 * Every buffer that grows with outside input has a cap; an append that would pass it fails
 * cleanly and leaves the buffer as it was. The contents are always NUL-terminated, so
 * ph_buf_str() can be handed to functions that want a C string. No dependencies but libc. */
#ifndef PH_BUF_H
#define PH_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct ph_buf {
    char *data;   /* owned; NULL until the first append */
    size_t len;   /* bytes in use, not counting the terminating NUL */
    size_t size;  /* bytes allocated */
    size_t cap;   /* most bytes the buffer may ever hold */
    int failed;   /* sticky: an append failed since the last init/reset (so a writer can
                     append many pieces and check once) */
} ph_buf;

/* Sets up an empty buffer that may hold at most `cap` bytes. Allocates nothing. */
void ph_buf_init(ph_buf *b, size_t cap);

/* Frees the contents and leaves the buffer empty (still usable, same cap). */
void ph_buf_free(ph_buf *b);

/* Empties the buffer but keeps its memory for reuse. */
void ph_buf_reset(ph_buf *b);

/* Append bytes, a C string, or printf-formatted text. Return 0, or -1 when the cap would be
 * passed or memory ran out; on -1 the buffer is unchanged and `failed` is set. */
int ph_buf_add(ph_buf *b, const void *data, size_t len);
int ph_buf_adds(ph_buf *b, const char *s);
int ph_buf_addf(ph_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ph_buf_vaddf(ph_buf *b, const char *fmt, va_list ap);

/* The contents as a NUL-terminated string ("" when empty). Valid until the next change. */
const char *ph_buf_str(const ph_buf *b);

/* Hands the contents to the caller (who frees them with free()) and empties the buffer.
 * Never returns NULL: an empty buffer gives a freshly allocated "" (or NULL only if that
 * allocation fails). */
char *ph_buf_take(ph_buf *b);

#endif
