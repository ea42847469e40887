/* planparse — finds the plan in model text and hands out each step the moment it closes.
 *
 * Built on jsonstream. Model text arrives in fragments of any size (as the stream decoder
 * produces them). The parser skips prose and code fences, takes the first JSON object that
 * is a plan (or, in batch mode, the array of per-agent plans), and calls back:
 *   - step(): as soon as a step object closes, within the same feed call, with the step
 *     re-written canonically (registry spelling of `act`, lowercase enum values, numbers
 *     written as strings converted, parameters in registry order);
 *   - plan(): when the plan closes (or, at finish, as a partial plan of the steps complete
 *     so far), with the kept steps and the dropped ones with their reasons.
 * Per-step salvage: a step with an unknown `act`, a tool outside the given subset, or bad
 * parameters is dropped with a reason; the other steps are kept. It knows the registry, not
 * the snapshot: whether a target exists is validate's job. No Lua, no network.
 * Depends on jsonstream, registry, buf. */
#ifndef PH_PLANPARSE_H
#define PH_PLANPARSE_H

#include <stddef.h>

#include "registry.h"

enum {
    PH_PP_BATCH = 1u << 0,   /* expect the batch answer array of DESIGN.md */
};

typedef struct ph_pp_step {
    const char *agent;       /* batch: the element's agent_id as written, when it came before
                                the steps (as prompts ask); NULL otherwise */
    int index;               /* position among the plan's steps as the model wrote them
                                (dropped ones count) */
    int tool;                /* registry index */
    const char *json;        /* canonical step object, e.g. {"act":"MoveTo","x":10,"y":5} */
    size_t len;
    size_t end;              /* offset in the model text just past the step's '}' */
} ph_pp_step;

typedef struct ph_pp_drop {
    int index;               /* position as the model wrote it */
    const char *reason;      /* "unknown tool 'Extract'", "MoveTo: missing parameter 'y'", ... */
} ph_pp_drop;

typedef struct ph_pp_plan {
    const char *agent;       /* batch: agent_id as written (numbers as their text); else NULL */
    const char *plan_id;     /* as written, or generated when missing */
    int plan_id_generated;
    const char *steps_json;  /* the kept steps as a JSON array, canonical */
    size_t steps_len;
    int nsteps;              /* kept steps */
    const ph_pp_drop *dropped;
    int ndropped;
    int partial;             /* the plan did not close: these are the steps complete so far */
    size_t end;              /* offset in the model text just past the plan's closing bracket;
                                partial: where its JSON broke off or the text ended */
} ph_pp_plan;

/* Callbacks: everything passed is valid during the call only. Return nonzero to stop the
 * parse (feed/finish then return PH_PP_STOPPED). */
typedef struct ph_pp_callbacks {
    int (*step)(void *ud, const ph_pp_step *s);
    int (*plan)(void *ud, const ph_pp_plan *p);
} ph_pp_callbacks;

typedef enum ph_pp_status {
    PH_PP_MORE,      /* feed more text */
    PH_PP_DONE,      /* the plan (batch: the array) has closed; later text is ignored, so the
                        caller may stop the transfer */
    PH_PP_STOPPED,   /* a callback asked to stop */
    PH_PP_ERROR,     /* see ph_planparse_error */
} ph_pp_status;

/* Creates a parser over `r` (borrowed: it must outlive the parser) for the tools `tools[0..n)`
 * (registry indexes; NULL means every tool). `cb` is copied; `ud` is passed to it. Returns
 * NULL when out of memory. Free with ph_planparse_free. */
typedef struct ph_planparse ph_planparse;
ph_planparse *ph_planparse_new(const ph_registry *r, const int *tools, int ntools, unsigned flags,
                               const ph_pp_callbacks *cb, void *ud);

/* Feeds the next fragment of model text; step() and plan() are called from inside as their
 * objects close. Returns PH_PP_MORE, PH_PP_DONE, PH_PP_STOPPED or PH_PP_ERROR (over 1 MiB of
 * model text without the plan closing, or out of memory). JSON that nests past the caps is
 * no error: that candidate is abandoned and the search goes on. Once the status is not
 * PH_PP_MORE, later feeds read nothing and return it again. */
ph_pp_status ph_planparse_feed(ph_planparse *p, const char *text, size_t len);

/* End of the model text (the stream ended, broke or ran out of time). Emits the partial
 * plan when at least one step is complete (kept or dropped) and the plan has not closed.
 * Returns PH_PP_DONE when a plan was emitted (now or earlier), PH_PP_STOPPED when plan()
 * asked to stop, PH_PP_ERROR when no plan was found (the error says why: "no JSON object in
 * the model output", "the JSON has no steps", "the plan was cut off before its first step
 * closed", ...). Calling it again returns the same. */
ph_pp_status ph_planparse_finish(ph_planparse *p);

/* In PH_PP_ERROR: the message (owned by the parser, valid until it is freed); else NULL. */
const char *ph_planparse_error(const ph_planparse *p);

/* Bytes of model text fed so far (all of them, also those after PH_PP_DONE that were not
 * read). */
size_t ph_planparse_consumed(const ph_planparse *p);

void ph_planparse_free(ph_planparse *p);

#endif
