/* record — recorded model-server responses, as they arrived on the wire.
 *
 * `planhost plan --record FILE` writes one (the HTTP client calls the writer as chunks come
 * in); `planhost sim --replay FILE` serves one back with the same status, content type,
 * bytes and timing. Specs use hand-made files to feed the real framing and parser.
 *
 * File format (NDJSON: one JSON object per line, UTF-8, each line ended by "\n"):
 *
 *   {"record":"planhost","version":1,"api":"ollama","path":"/api/chat","status":200,
 *    "content_type":"application/x-ndjson"}                      <- line 1, the header
 *   {"t_ms":12.5,"b64":"eyJtb2RlbCI6..."}                         <- one line per chunk
 *
 *   record        always "planhost"
 *   version       1; a reader refuses any other
 *   api           "ollama" (/api/chat), "ollama-generate", "openai", "llamacpp" (ph_api_name)
 *   path          the URL path the request was posted to
 *   status        the HTTP status of the response
 *   content_type  the response's Content-Type ("" when it had none)
 *   t_ms          milliseconds from sending the request to receiving this chunk (a number,
 *                 not decreasing from one chunk to the next)
 *   b64           the chunk's raw body bytes in standard base64 (RFC 4648 section 4, with
 *                 padding, no line breaks); chunk boundaries are kept as received
 *
 * The writer writes key order as above, one line per call, flushed at once (a crash keeps
 * what arrived). Readers ignore keys they do not know, on any line; later versions may add
 * some. A header with no chunk lines is a response with an empty body.
 *
 * No Lua, no curl, no libmicrohttpd. Depends on buf, error, jsonstream, jsonw. A writer or
 * a loaded record is used by one thread at a time. */
#ifndef PH_RECORD_H
#define PH_RECORD_H

#include <stddef.h>

#include "error.h"

#define PH_RECORD_VERSION 1
#define PH_RECORD_MAX_CHUNK (4u << 20)     /* raw bytes per chunk, both ways */

typedef struct ph_record_meta {
    const char *api;             /* see above; copied */
    const char *path;
    int status;
    const char *content_type;    /* NULL is written as "" */
} ph_record_meta;

typedef struct ph_record_writer ph_record_writer;

/* Creates (or truncates) `file` and writes the header line. Call it once the response's
 * status and content type are known (curl: at the first body chunk, or at the end for a
 * response without a body). The caller owns the writer until ph_record_close. Returns NULL
 * with `err` filled (PH_ERR_IO, PH_ERR_ARG for a missing api or path). */
ph_record_writer *ph_record_open(const char *file, const ph_record_meta *meta, ph_error *err);

/* Appends one chunk received `t_ms` after the request was sent (written with microsecond
 * precision). `data` stays the caller's. Returns 0, or -1 (PH_ERR_IO; PH_ERR_LIMIT past
 * PH_RECORD_MAX_CHUNK bytes); a failed writer fails every later call the same way. */
int ph_record_add(ph_record_writer *w, double t_ms, const void *data, size_t len, ph_error *err);

/* Flushes, closes and frees the writer (NULL is fine). Returns 0, or -1 when any write
 * failed along the way or the close did (the file is then incomplete). */
int ph_record_close(ph_record_writer *w, ph_error *err);

typedef struct ph_record_chunk {
    double t_ms;
    char *data;                  /* owned by the record; not NUL-terminated */
    size_t len;
} ph_record_chunk;

typedef struct ph_record {
    int version;
    char *api, *path, *content_type;   /* owned; never NULL after a successful load */
    int status;
    ph_record_chunk *chunks;     /* in file order */
    size_t nchunks;
    size_t bytes;                /* sum of the chunks' lengths */
} ph_record;

/* Reads a whole record file (at most `max_file` bytes; 0 means 64 MiB) into `out`, which
 * the caller frees with ph_record_free, also after a failure. Returns 0, or -1 with `err`
 * filled: PH_ERR_IO, PH_ERR_JSON ("FILE:LINE: ..."), PH_ERR_ARG (not a planhost record, a
 * missing key, a bad version, bad base64, times going backwards), PH_ERR_LIMIT. */
int ph_record_load(const char *file, size_t max_file, ph_record *out, ph_error *err);

/* Frees what ph_record_load filled in and zeroes the record. NULL is fine. */
void ph_record_free(ph_record *r);

#endif
