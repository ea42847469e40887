/* selfcheck — renders every template of a generation against every example snapshot.
 *
 * A new generation is swapped in only if this passes; `planhost check` prints the same rows
 * as a table. A row fails when rendering fails, when the prompt does not name every tool of
 * the template's subset (as a whole word), or when it does not show the output shape
 * ("plan_id", "steps", "act"; batch templates also "agent_id"). Depends on script and tree. */
#ifndef PH_SELFCHECK_H
#define PH_SELFCHECK_H

#include <stddef.h>

#include "error.h"
#include "script.h"

typedef struct ph_snapshot_file {
    char *path;    /* as found: "examples/snapshots/hello_companion.json" */
    char *name;    /* "hello_companion" */
    char *text;
    size_t len;
} ph_snapshot_file;

typedef struct ph_snapshot_set {
    ph_snapshot_file *files;   /* sorted by name */
    int n;
} ph_snapshot_set;

/* Reads every *.json in `dir` (a missing folder gives an empty set). Returns 0 or -1. */
int ph_snapshots_read(const char *dir, ph_snapshot_set *set, ph_error *err);
void ph_snapshots_free(ph_snapshot_set *set);

typedef struct ph_check_row {
    const ph_template *tmpl;
    const char *snapshot;      /* snapshot name, or "(all N)" for a batch row */
    size_t chars, tokens;      /* of system + user, characters counted as code points */
    int tools_named, tools_total;
    int shape_ok;
    const ph_error *error;     /* NULL when the row passes */
} ph_check_row;

typedef void (*ph_check_fn)(void *ud, const ph_check_row *row);

/* Checks every template against every snapshot, calling `fn` (may be NULL) per row. Fills
 * `first` (may be NULL) with the first failure. Returns the number of failing rows. */
int ph_check_generation(ph_gen *g, const ph_snapshot_set *set, ph_check_fn fn, void *ud, ph_error *first);

/* Characters (UTF-8 code points) in `s`, and the token estimate used everywhere. */
size_t ph_utf8_chars(const char *s, size_t len);
size_t ph_estimate_tokens(size_t chars);

/* Does `text` contain `word` with no letter, digit or '_' right before or after it? */
int ph_names_word(const char *text, const char *word);

#endif
