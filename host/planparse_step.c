/* planparse_step — the plan parser's step layer: collecting (see planparse_internal.h and
 * planparse_step_internal.h).
 *
 * Collects a step object's members from its tokens into a ph_step: keys and scalars copied to
 * an arena, object and list values kept as positions ({"x":..,"y":..} with extra keys
 * ignored, [x, y], or a lone scalar in a list). Parameters nested in "params", "parameters",
 * "args" or "arguments" are lifted to the step's own level; a steps-like array under the
 * object's own key tells the caller the object is a plan, not a step. planparse_write.c then
 * checks the members and writes the step (its header lists the leniencies). Also here: the
 * key classes of the plan layer and its small text helpers. Depends on buf and jsonstream
 * (tokens), through planparse_step_internal.h (which also has the name matching). */
#include "planparse_step_internal.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- names --------------------------------------------------------------------------- */

/* What a key of a plan-level object names. */
int ph_pp_key_class(const char *k, size_t n)
{
    switch (first_of(k, n)) {
    case 's': return name_is(k, n, "steps") ? PP_K_STEPS : PP_K_OTHER;
    case 'p':
        return name_is(k, n, "planid") ? PP_K_PID : name_is(k, n, "plan") ? PP_K_STEPS : PP_K_OTHER;
    case 'i': return name_is(k, n, "id") ? PP_K_ID : PP_K_OTHER;
    case 'a':
        if (name_is(k, n, "actions"))
            return PP_K_STEPS;
        return name_is(k, n, "agentid") || name_is(k, n, "agent") ? PP_K_AGENT : PP_K_OTHER;
    default: return PP_K_OTHER;
    }
}

/* Which tool-naming key this is: 1 "act", 2 "action", 3 "tool", 0 none. */
static int tool_key(const char *k, size_t n)
{
    char c = first_of(k, n);
    if (c != 'a' && c != 't')
        return 0;
    return name_is(k, n, "act") ? 1 : name_is(k, n, "action") ? 2 : name_is(k, n, "tool") ? 3 : 0;
}

static int is_params_key(const char *k, size_t n)
{
    return first_of(k, n) == 'p' ? name_is(k, n, "params") || name_is(k, n, "parameters")
                                 : name_is(k, n, "args") || name_is(k, n, "arguments");
}

/* Length of s[0..n) cut to at most max bytes, not inside a UTF-8 sequence. */
int ph_pp_clip(const char *s, size_t n, size_t max)
{
    if (n > max)
        for (n = max; n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80; n--) {}
    return (int)n;
}

/* Cuts the buffer back to len bytes (and clears its failed flag). */
void ph_pp_buf_cut(ph_buf *b, size_t len)
{
    if (b->data && len <= b->len)
        b->len = len, b->data[len] = '\0';
    b->failed = 0;
}

/* ---- collecting ---------------------------------------------------------------------- */

/* Copies a token's text into the arena. */
static sval keep(ph_step *s, const ph_json_token *t)
{
    static const uint8_t kinds[] = {[PH_JSON_NULL] = V_NULL, [PH_JSON_TRUE] = V_BOOL,
                                    [PH_JSON_FALSE] = V_BOOL, [PH_JSON_NUMBER] = V_NUM,
                                    [PH_JSON_STRING] = V_STR, [PH_JSON_KEY] = V_STR};
    sval v = {kinds[t->kind], (uint32_t)s->arena.len, (uint32_t)t->len};
    if (ph_buf_add(&s->arena, t->text, t->len))
        v.kind = V_DEEP, v.len = 0;
    return v;
}

static int is_scalar(ph_json_kind k) { return k <= PH_JSON_STRING; }

static point *new_point(ph_step *s, int shape)
{
    if (s->npt == MAX_POINTS) {
        s->cur->v.kind = V_DEEP;
        return NULL;
    }
    point *pt = &s->pt[s->npt++];
    memset(pt, 0, sizeof *pt);
    pt->shape = (uint8_t)shape;
    s->cur->npt++;
    s->field = 0;
    return pt;
}

static void member_key(ph_step *s, const ph_json_token *t)
{
    s->cur = s->nm < MAX_MEMBERS ? &s->m[s->nm++] : NULL;
    if (!s->cur)
        return;
    sval k = keep(s, t);
    s->cur->koff = k.off, s->cur->klen = k.len;
    s->cur->v.kind = V_NONE, s->cur->npt = 0;
    s->cur->c0 = first_of(t->text, t->len);
    s->cur->tk = (uint8_t)tool_key(t->text, t->len);
}

/* A token at the member level: a key, or the start of its value. Returns 1 for an array
 * under a steps-like key when may_be_plan. */
static int member_top(ph_step *s, const ph_json_token *t, int may_be_plan)
{
    member *c = s->cur;
    if (t->kind == PH_JSON_KEY) {
        member_key(s, t);
    } else if (!c || c->v.kind != V_NONE) {
        return 0;
    } else if (is_scalar(t->kind)) {
        c->v = keep(s, t);
    } else if (t->kind == PH_JSON_BEGIN_OBJECT && !s->lifted &&
               is_params_key(key_of(s, c), c->klen)) {
        s->nm--, s->cur = NULL, s->mbase++, s->lifted = 1;
    } else if (t->kind == PH_JSON_BEGIN_ARRAY && may_be_plan && !s->lifted &&
               ph_pp_key_class(key_of(s, c), c->klen) == PP_K_STEPS) {
        return 1;
    } else {
        c->v.kind = t->kind == PH_JSON_BEGIN_OBJECT ? V_OBJ : V_LIST;
        c->pt0 = (uint16_t)s->npt;
        s->cpt = t->kind == PH_JSON_BEGIN_OBJECT ? new_point(s, P_OBJ) : NULL;
    }
    return 0;
}

/* A scalar or key inside a position: x, y, or ignored. */
static void point_token(ph_step *s, point *pt, const ph_json_token *t)
{
    if (t->kind == PH_JSON_KEY)
        s->field = name_is(t->text, t->len, "x") ? 1 : name_is(t->text, t->len, "y") ? 2 : 0;
    else if (!is_scalar(t->kind))
        pt->bad |= t->kind == PH_JSON_BEGIN_OBJECT || t->kind == PH_JSON_BEGIN_ARRAY;
    else if (pt->shape == P_PAIR)
        pt->n < 2 ? (void)((pt->n++ ? &pt->y : &pt->x)[0] = keep(s, t)) : (void)(pt->bad = 1);
    else if (s->field && (s->field == 1 ? &pt->x : &pt->y)->kind == V_NONE)
        (s->field == 1 ? &pt->x : &pt->y)[0] = keep(s, t);
}

/* A token inside a member's object or list value (rel = depth below the member keys). */
static void value_token(ph_step *s, const ph_json_token *t, int rel)
{
    member *c = s->cur;
    if (c->v.kind == V_OBJ && rel == 1 && s->cpt) {
        point_token(s, s->cpt, t);
    } else if (c->v.kind == V_LIST && rel == 1) {
        if (t->kind == PH_JSON_END_OBJECT || t->kind == PH_JSON_END_ARRAY || t->kind == PH_JSON_KEY)
            return;
        int shape = t->kind == PH_JSON_BEGIN_OBJECT ? P_OBJ
                  : t->kind == PH_JSON_BEGIN_ARRAY ? P_PAIR : P_LONE;
        if ((s->cpt = new_point(s, shape)) && shape == P_LONE)
            s->cpt->x = keep(s, t), s->cpt->n = 1;
    } else if (c->v.kind == V_LIST && rel == 2 && s->cpt) {
        point_token(s, s->cpt, t);
    } else if (s->cpt && (t->kind == PH_JSON_BEGIN_OBJECT || t->kind == PH_JSON_BEGIN_ARRAY)) {
        s->cpt->bad = 1;
    }
}

/* Starts a step object whose '{' is at `depth`. */
void ph_step_begin(ph_step *s, unsigned depth)
{
    s->nm = s->npt = 0;
    s->cur = NULL, s->cpt = NULL;
    s->mbase = depth + 1, s->lifted = 0;
    ph_buf_reset(&s->arena);
}

/* A token inside the step object (deeper than its braces). Returns 1 when it opens an array
 * under a steps-like key of the object itself and may_be_plan: then the object is a plan,
 * not a step, and the caller takes over. */
int ph_step_token(ph_step *s, const ph_json_token *t, int may_be_plan)
{
    int rel = (int)t->depth - (int)s->mbase;
    if (rel < 0)            /* the "params" object closed */
        s->lifted = 0, s->mbase--, s->cur = NULL;
    else if (rel == 0)
        return member_top(s, t, may_be_plan);
    else if (s->cur && s->cur->v.kind != V_DEEP)
        value_token(s, t, rel);
    return 0;
}

/* Whether the step names a tool (well or badly). */
int ph_step_names_tool(const ph_step *s)
{
    return tool_member(s) != NULL;
}

/* The best plan id among the step's members (for a step that turns out to be a plan):
 * its rank (2 plan_id, 1 id, 0 none), text and length. */
int ph_step_plan_id(const ph_step *s, const char **text, size_t *len)
{
    int best = 0;
    for (int i = 0; i < s->nm; i++) {
        const member *m = &s->m[i];
        int k = ph_pp_key_class(key_of(s, m), m->klen), rank = k == PP_K_PID ? 2 : k == PP_K_ID;
        if (rank > best && (m->v.kind == V_STR || m->v.kind == V_NUM))
            best = rank, *text = text_of(s, &m->v), *len = m->v.len;
    }
    return best;
}

/* A step collector, empty; NULL when out of memory. Free with step_free. */
ph_step *ph_step_new(void)
{
    ph_step *s = malloc(sizeof *s);
    if (!s)
        return NULL;
    memset(s, 0, offsetof(ph_step, m));
    ph_buf_init(&s->arena, PH_PP_MAX_TEXT);
    return s;
}

void ph_step_free(ph_step *s)
{
    if (s)
        ph_buf_free(&s->arena);
    free(s);
}

/* Why the last step_write refused the step (valid until the next one). */
const char *ph_step_why(const ph_step *s)
{
    return s->why;
}
