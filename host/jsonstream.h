/*
 * jsonstream — incremental (push) JSON tokenizer.
 *
 * The caller feeds bytes in pieces of any size; the tokenizer calls back once per token as soon
 * as the token is complete, in one pass over the input (no byte is scanned twice) and with
 * bounded memory: a container stack of max_depth bytes and a token buffer that never grows past
 * max_token bytes. Strict RFC 8259 by default, with opt-in relaxations (flags below).
 * Depends on libc only; knows nothing of Lua, plans or the network.
 *
 * Typical use:
 *
 *     ph_json *j = ph_json_new(NULL, on_token, ctx);
 *     while (more input)  if (ph_json_feed(j, buf, n, &used) != PH_JSON_OK) break;
 *     ph_json_finish(j);
 *     ph_json_free(j);
 *
 * Not thread-safe per handle; separate handles are independent.
 */
#ifndef PH_JSONSTREAM_H
#define PH_JSONSTREAM_H

#include <stddef.h>
#include <stdint.h>

/* Relaxations; the default (0) is strict RFC 8259. Bits not listed here are rejected by
 * ph_json_new, so adding a leniency later cannot silently change old callers. */
enum {
    /* Accept one comma before a closing bracket: [1,2,] and {"a":1,}. A comma alone ([,]) is
     * still an error. */
    PH_JSON_ALLOW_TRAILING_COMMA = 1u << 0,
    /* Accept zero or more top-level values one after another (NDJSON-style streams). Values
     * need no separator except where one is needed to end a number ("1 2", but "[1][2]"). */
    PH_JSON_ALLOW_MULTIPLE = 1u << 1,
    /* Stop cleanly after the first top-level value: ph_json_feed returns PH_JSON_COMPLETE at
     * once, reports how many bytes the value used and ignores everything after it. Leading
     * whitespace is still allowed; leading garbage is not (find the '{' first). Cannot be
     * combined with PH_JSON_ALLOW_MULTIPLE. */
    PH_JSON_ALLOW_TRAILING_GARBAGE = 1u << 2,
    /* Bits 3..15 are reserved for leniencies LLM output needs (comments, raw control
     * characters in strings, single quotes, ...). */
};

#define PH_JSON_DEFAULT_MAX_DEPTH 64u
#define PH_JSON_DEFAULT_MAX_TOKEN (64u * 1024u)

/* Zero-initialise and set what you need; 0 in a numeric field means "the default". */
typedef struct ph_json_config {
    unsigned flags;     /* PH_JSON_ALLOW_* */
    unsigned max_depth; /* deepest nesting of arrays/objects; 0 = PH_JSON_DEFAULT_MAX_DEPTH */
    size_t max_token;   /* longest string, key or number, counted in input bytes between the
                           quotes (raw, before unescaping); 0 = PH_JSON_DEFAULT_MAX_TOKEN */
} ph_json_config;

typedef enum ph_json_kind {
    PH_JSON_NULL,
    PH_JSON_TRUE,
    PH_JSON_FALSE,
    PH_JSON_NUMBER,       /* text = the raw number as written, grammar-checked, not converted */
    PH_JSON_STRING,       /* text = decoded UTF-8 (escapes resolved); may contain NUL bytes */
    PH_JSON_KEY,          /* object member name, decoded like PH_JSON_STRING */
    PH_JSON_BEGIN_OBJECT,
    PH_JSON_END_OBJECT,
    PH_JSON_BEGIN_ARRAY,
    PH_JSON_END_ARRAY,
} ph_json_kind;

/* Token flags. */
enum {
    /* This token completes a top-level value (a scalar at depth 0 or the closing bracket of
     * the outermost container); `end` is where that value ended. */
    PH_JSON_TOK_VALUE_END = 1u << 0,
};

typedef struct ph_json_token {
    ph_json_kind kind;
    unsigned flags;     /* PH_JSON_TOK_* */
    unsigned depth;     /* containers open around the token: '{' of the outermost object and
                           its '}' are at 0, its keys and member values at 1 */
    const char *text;   /* string/key/number text, NULL for the others; not NUL-terminated */
    size_t len;         /* bytes at text */
    uint64_t offset;    /* absolute offset of the token's first byte (a string's opening quote) */
    uint64_t end;       /* absolute offset just past the token's last byte */
} ph_json_token;

/* Called once per token. The token and its text are valid only during the call (text points
 * into the caller's feed buffer when the token lay wholly in one feed and needed no
 * unescaping, else into the tokenizer's own buffer). Return 0 to go on, nonzero to stop: the
 * feed then returns PH_JSON_STOPPED. The callback must not call ph_json_* on its own handle. */
typedef int (*ph_json_callback)(void *ctx, const ph_json_token *tok);

typedef enum ph_json_status {
    PH_JSON_OK,       /* all bytes used; feed more or finish */
    PH_JSON_STOPPED,  /* the callback asked to stop; see ph_json_feed */
    PH_JSON_COMPLETE, /* PH_JSON_ALLOW_TRAILING_GARBAGE: the value is closed; rest ignored */
    PH_JSON_ERROR,    /* see ph_json_error; the handle stays in error until reset */
} ph_json_status;

typedef struct ph_json ph_json;

/* Creates a tokenizer. cfg may be NULL (strict, default caps) and is copied; cb may be NULL
 * (validate only); ctx is passed to cb untouched and stays the caller's. Returns NULL when out
 * of memory or when cfg has unknown flags, conflicting flags, or max_depth > 1<<20. The caller
 * owns the handle and releases it with ph_json_free. */
ph_json *ph_json_new(const ph_json_config *cfg, ph_json_callback cb, void *ctx);

/* Releases the handle and its buffers. NULL is allowed. */
void ph_json_free(ph_json *j);

/* Returns the handle to its initial state (offset 0, no error) for a new input, keeping its
 * configuration, callback and allocated buffers. */
void ph_json_reset(ph_json *j);

/* Tokenizes the next len bytes of the input. buf stays the caller's; it is read only during
 * the call and never retained. consumed (may be NULL) receives how many bytes of this feed
 * were used:
 *   PH_JSON_OK        len.
 *   PH_JSON_STOPPED   bytes up to and including the token that stopped (a number ends at its
 *                     last digit; the byte that ended it is not included). Feeding the rest
 *                     (buf + *consumed) resumes the parse exactly where it stopped.
 *   PH_JSON_COMPLETE  bytes up to the end of the top-level value; later feeds use 0 bytes.
 *   PH_JSON_ERROR     bytes before the error offset (0 when it lies in an earlier feed);
 *                     see ph_json_error. */
ph_json_status ph_json_feed(ph_json *j, const void *buf, size_t len, size_t *consumed);

/* Marks the end of input: delivers a pending top-level number, then checks that the input
 * forms a complete value (or values, with PH_JSON_ALLOW_MULTIPLE). Returns PH_JSON_OK,
 * PH_JSON_STOPPED (the pending number's callback stopped; finish again to complete the
 * check), or PH_JSON_ERROR. Feeding after a successful finish is an error until reset. */
ph_json_status ph_json_finish(ph_json *j);

/* After PH_JSON_ERROR: the message (owned by the handle, valid until the next feed, finish,
 * reset or free) and, if offset is non-NULL, the absolute byte offset where the input went
 * wrong. Returns NULL when the handle is not in error. */
const char *ph_json_error(const ph_json *j, uint64_t *offset);

/* Absolute offset just past the most recently closed top-level value, or UINT64_MAX when no
 * top-level value has closed yet. */
uint64_t ph_json_value_end(const ph_json *j);

/* Absolute offset of the next byte the tokenizer expects (bytes used so far). */
uint64_t ph_json_offset(const ph_json *j);

#endif
