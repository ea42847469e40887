/* error — the one error record every planhost layer fills in.
 *
 * A failure carries a stable code (for programs), a message that says what and where (for
 * people; script errors start with "file:line:"), the location on its own, and, for script
 * errors, a Lua traceback. Fixed-size fields: filling one never allocates. No dependencies. */
#ifndef PH_ERROR_H
#define PH_ERROR_H

#include <stddef.h>

typedef enum ph_code {
    PH_OK = 0,
    PH_ERR_ARG,       /* the caller passed something unusable */
    PH_ERR_IO,        /* a file could not be read or listed */
    PH_ERR_JSON,      /* malformed JSON input; the message names the byte offset */
    PH_ERR_SYNTAX,    /* a script does not compile */
    PH_ERR_RUNTIME,   /* a script raised an error */
    PH_ERR_MEMORY,    /* a script passed its generation's memory cap */
    PH_ERR_BUDGET,    /* a script passed its instruction budget */
    PH_ERR_CONTRACT,  /* a script returned something of the wrong shape */
    PH_ERR_NOTFOUND,  /* no such template, tool or file */
    PH_ERR_SELFCHECK, /* a new generation failed its self-check */
    PH_ERR_LIMIT,     /* a size limit was reached */
} ph_code;

typedef struct ph_error {
    ph_code code;
    char message[1024];  /* "prompts/compact.lua:12: attempt to call a nil value" */
    char where[256];     /* "prompts/compact.lua:12", or "" when unknown */
    char traceback[2048];/* Lua traceback, or "" */
} ph_error;

/* Clears `e` to PH_OK with empty strings. `e` may be NULL. */
void ph_error_clear(ph_error *e);

/* Fills `e` (if not NULL) with a code and a printf-formatted message; clears where and
 * traceback. Returns -1 so callers can `return ph_error_set(...)`. */
int ph_error_set(ph_error *e, ph_code code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Puts "context: " in front of the message already in `e`. */
void ph_error_prefix(ph_error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The code's stable name: "syntax", "runtime", "memory", "budget", ... */
const char *ph_code_name(ph_code code);

#endif
