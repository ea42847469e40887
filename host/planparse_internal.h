/* planparse_internal — what the plan parser's two layers share: planparse.c (the plan
 * layer) and the step layer, which it feeds with the tokens of each step object
 * (planparse_step.c collects them, planparse_write.c checks and writes the step; what those
 * two share is in planparse_step_internal.h). Nothing else includes this. Depends on buf,
 * jsonstream, registry. */
#ifndef PH_PLANPARSE_INTERNAL_H
#define PH_PLANPARSE_INTERNAL_H

#include <stddef.h>

#include "buf.h"
#include "jsonstream.h"
#include "registry.h"

#define PH_PP_MAX_TEXT (1u << 20)  /* model text examined, bytes */
/* What a key of a plan-level object names. */
enum { PP_K_NONE, PP_K_OTHER, PP_K_STEPS, PP_K_PID, PP_K_ID, PP_K_AGENT };
typedef struct ph_step ph_step;

/* A step collector, empty; NULL when out of memory. Free with step_free. */
ph_step *ph_step_new(void);

void ph_step_free(ph_step *s);

/* Why the last step_write refused the step (valid until the next one). */
const char *ph_step_why(const ph_step *s);

/* Starts a step object whose '{' is at `depth`. */
void ph_step_begin(ph_step *s, unsigned depth);

/* A token inside the step object (deeper than its braces). Returns 1 when it opens an array
 * under a steps-like key of the object itself and may_be_plan: then the object is a plan,
 * not a step, and the caller takes over. */
int ph_step_token(ph_step *s, const ph_json_token *t, int may_be_plan);

/* Whether the step names a tool (well or badly). */
int ph_step_names_tool(const ph_step *s);

/* The best plan id among the step's members (for a step that turns out to be a plan):
 * its rank (2 plan_id, 1 id, 0 none), text and length. */
int ph_step_plan_id(const ph_step *s, const char **text, size_t *len);

/* Validates the collected step and appends it canonically to out (after a ',' when comma).
 * Returns the tool's registry index; or -1, with the reason in s->why and out as it was.
 * offered[i] says whether tool i may be used. */
int ph_step_write(ph_step *s, const ph_registry *r, const unsigned char *offered,
                  ph_buf *out, int comma);

/* What a key of a plan-level object names. */
int ph_pp_key_class(const char *k, size_t n);

/* Length of s[0..n) cut to at most max bytes, not inside a UTF-8 sequence. */
int ph_pp_clip(const char *s, size_t n, size_t max);

/* Cuts the buffer back to len bytes (and clears its failed flag). */
void ph_pp_buf_cut(ph_buf *b, size_t len);

#endif
