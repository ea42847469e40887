/* jsonw — small helpers for writing JSON text into a ph_buf.
 *
 * Used for events and request bodies: strings are escaped per RFC 8259 (control characters
 * as \u00XX, well-formed UTF-8 passed through, any other byte written as \ufffd so the
 * output is always valid JSON text whatever a server sent), numbers are written so they read back the same. The
 * caller places commas and brackets; these only write values. Depends on buf. */
#ifndef PH_JSONW_H
#define PH_JSONW_H

#include <stddef.h>

#include "buf.h"

/* Appends `s` (len bytes) as a JSON string literal, quotes included. Returns 0 or -1. */
int ph_jsonw_str(ph_buf *b, const char *s, size_t len);
int ph_jsonw_cstr(ph_buf *b, const char *s);             /* NULL writes null */
/* Appends "key": (with a leading comma unless `first`). */
int ph_jsonw_key(ph_buf *b, const char *key, int first);
/* Appends a number: integers exactly, others with 17 significant digits at most, trimmed;
 * NaN and infinities as null. */
int ph_jsonw_num(ph_buf *b, double v);

#endif
