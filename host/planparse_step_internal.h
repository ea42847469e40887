/* planparse_step_internal — what the two files of the plan parser's step layer share:
 * planparse_step.c (collects a step object's members from its tokens) and planparse_write.c
 * (checks the members against the registry and writes the step): the collected step, and the
 * name matching both use. The plan layer (planparse.c) does not include this: to it a ph_step
 * stays opaque. Depends on planparse_internal.h (buf, jsonstream, registry). */
#ifndef PH_PLANPARSE_STEP_INTERNAL_H
#define PH_PLANPARSE_STEP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "planparse_internal.h"

#define MAX_MEMBERS 32
#define MAX_POINTS 64

enum { V_NONE, V_STR, V_NUM, V_BOOL, V_NULL, V_OBJ, V_LIST, V_DEEP };
enum { P_OBJ, P_PAIR, P_LONE };                              /* how a position was written */

typedef struct sval { uint8_t kind; uint32_t off, len; } sval;   /* a scalar in the arena */
typedef struct point { sval x, y; uint8_t shape, n, bad; } point;
typedef struct member {
    uint32_t koff, klen;
    sval v;                 /* scalar, or kind V_OBJ (point pt0) / V_LIST (points pt0..) */
    uint16_t pt0, npt;
    char c0;                /* first letter of the key, lowercase (a quick pre-check) */
    uint8_t tk;             /* the key names the tool: 1 "act", 2 "action", 3 "tool"; else 0 */
} member;

struct ph_step {
    unsigned mbase;         /* depth of the member keys */
    int lifted;             /* inside a "params" object */
    int nm, npt, field;
    member *cur;            /* the member whose value is being read */
    point *cpt;             /* the position being read */
    ph_buf arena;           /* keys and scalars of the step */
    ph_buf *out;            /* while writing: where */
    char why[256];          /* why the last step written was refused */
    member m[MAX_MEMBERS];  /* (written before read: not zeroed) */
    point pt[MAX_POINTS];
};

/* ---- names ------------------------------------------------------------------------------
 * Inline: matching keys and tool names against the registry is the step layer's inner loop. */

static inline int is_sep(char c) { return c == '_' || c == '-' || c == ' '; }
static inline char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c; }

/* Whether a name from the model equals `b`, ignoring ASCII case and '_', '-', ' '. */
static inline int name_eq(const char *a, size_t an, const char *b, size_t bn)
{
    size_t i = 0, j = 0;
    if (an == bn && memcmp(a, b, an) == 0)
        return 1;
    for (;;) {
        while (i < an && is_sep(a[i]))
            i++;
        while (j < bn && is_sep(b[j]))
            j++;
        if (i == an || j == bn)
            return i == an && j == bn;
        if (lower(a[i++]) != lower(b[j++]))
            return 0;
    }
}

static inline int name_is(const char *a, size_t an, const char *b)
{
    return name_eq(a, an, b, strlen(b));
}

/* The first letter of a name, lowercase, separators skipped ('\0' when none). */
static inline char first_of(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && is_sep(s[i]))
        i++;
    return i < n ? lower(s[i]) : '\0';
}

/* ---- the collected members ------------------------------------------------------------ */

static inline const char *text_of(const ph_step *s, const sval *v)
{
    return s->arena.data + v->off;
}

static inline const char *key_of(const ph_step *s, const member *m)
{
    return s->arena.data + m->koff;
}

/* The member naming the tool: "act", else "action", else "tool". */
static inline const member *tool_member(const ph_step *s)
{
    const member *best = NULL;
    for (int i = 0; i < s->nm; i++)
        if (s->m[i].tk && (!best || s->m[i].tk < best->tk))
            best = &s->m[i];
    return best;
}

#endif
