/* validate — step and plan validation (see validate.h for the rules).
 *
 * A step object's tokens are collected into fixed slots (members, positions) with their
 * texts in one reusable arena; when the object closes it is checked against its tool's
 * parameters. A plan is one tokenizer pass over the steps array: each element is collected
 * and checked as it closes, and a kept step is copied byte for byte from the input (the
 * input is fed whole, so token offsets are offsets into it). No allocation per step once the
 * arena has grown to the longest step. Depends on jsonstream, buf, error, registry, snapview.
 */
#include "validate.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonstream.h"

#define MAX_MEMBERS 32
#define MAX_POINTS PH_VALIDATE_MAX_POINTS
#define MAX_SHOWN 40                  /* bytes of a value quoted in a reason */
#define ARENA_CAP (256u << 10)        /* bytes of keys and values per step */

enum { V_NONE, V_STR, V_NUM, V_BOOL, V_NULL, V_OBJ, V_LIST };

typedef struct sval { uint8_t kind; uint32_t off, len; } sval;
typedef struct point { long long x, y; uint8_t has_x, has_y, bad; } point;
typedef struct member {
    sval key, v;
    uint16_t pt0, npt;
    uint8_t bad;            /* a list with an item that is not a position, or too many */
} member;

/* The collector of one step object and everything a check needs. */
typedef struct vctx {
    const ph_registry *r;
    const int *tools;
    int ntools;
    const ph_snapview *s;
    const ph_validate_limits *lim;
    unsigned base;          /* depth of the step's braces */
    int nm, npt, field, toomany;
    member *cur;            /* the member whose value is being read */
    point *cpt;             /* the position being read */
    ph_buf arena;
    char why[PH_VALIDATE_REASON];
    member m[MAX_MEMBERS];
    point pt[MAX_POINTS];
} vctx;

ph_validate_limits ph_validate_limits_default(void)
{
    return (ph_validate_limits){-1000, -1000, 1000, 1000, 30.0, 50.0, 100.0, 8};
}

static int why(vctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int why(vctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof c->why, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- collecting ---------------------------------------------------------------------- */

static void step_begin(vctx *c, unsigned depth)
{
    c->base = depth;
    c->nm = c->npt = c->toomany = 0;
    c->cur = NULL;
    c->cpt = NULL;
    ph_buf_reset(&c->arena);
}

static sval keep(vctx *c, const ph_json_token *t)
{
    static const uint8_t kinds[] = {[PH_JSON_NULL] = V_NULL, [PH_JSON_TRUE] = V_BOOL,
                                    [PH_JSON_FALSE] = V_BOOL, [PH_JSON_NUMBER] = V_NUM,
                                    [PH_JSON_STRING] = V_STR, [PH_JSON_KEY] = V_STR};
    sval v = {kinds[t->kind], (uint32_t)c->arena.len, (uint32_t)t->len};
    if (ph_buf_add(&c->arena, t->text, t->len))
        v.kind = V_NONE, v.len = 0, c->toomany = 1;
    return v;
}

static const char *text(const vctx *c, const sval *v) { return c->arena.data + v->off; }

/* Reads an integer from a number token into *out; sets *bad when it is none (or past 32
 * bits: no coordinate or count is larger). */
static void read_int(const ph_json_token *t, long long *out, uint8_t *bad)
{
    double v;
    if (t->kind != PH_JSON_NUMBER || ph_sv_number(t->text, t->len, &v) || v != floor(v) ||
        v > 4294967295.0 || v < -2147483648.0)
        *bad = 1;
    else
        *out = (long long)v;
}

static point *new_point(vctx *c)
{
    if (c->npt == MAX_POINTS) {
        c->cur->bad = 1;
        return NULL;
    }
    point *p = &c->pt[c->npt++];
    memset(p, 0, sizeof *p);
    c->cur->npt++;
    c->field = 0;
    return p;
}

/* A token inside a position object (a member's, or a list item's). */
static void point_token(vctx *c, const ph_json_token *t)
{
    point *p = c->cpt;
    if (t->kind == PH_JSON_KEY) {
        c->field = t->len == 1 && (*t->text == 'x' || *t->text == 'y') ? *t->text : 0;
    } else if (c->field == 'x' && !p->has_x) {
        p->has_x = 1, read_int(t, &p->x, &p->bad);
    } else if (c->field == 'y' && !p->has_y) {
        p->has_y = 1, read_int(t, &p->y, &p->bad);
    }
    if (t->kind == PH_JSON_BEGIN_OBJECT || t->kind == PH_JSON_BEGIN_ARRAY)
        c->field = 0;
}

/* A member's value token at the member level (depth base+1). */
static void member_value(vctx *c, const ph_json_token *t)
{
    member *m = c->cur;
    if (t->kind == PH_JSON_BEGIN_OBJECT) {
        m->v.kind = V_OBJ;
        m->pt0 = (uint16_t)c->npt;
        c->cpt = new_point(c);
    } else if (t->kind == PH_JSON_BEGIN_ARRAY) {
        m->v.kind = V_LIST;
        m->pt0 = (uint16_t)c->npt;
    } else if (t->kind == PH_JSON_END_OBJECT || t->kind == PH_JSON_END_ARRAY) {
        c->cpt = NULL, c->cur = NULL;
    } else {
        m->v = keep(c, t);
        c->cur = NULL;
    }
}

/* A token inside the step object (deeper than its braces). */
static void step_token(vctx *c, const ph_json_token *t)
{
    unsigned d = t->depth - c->base;
    if (d == 1 && t->kind == PH_JSON_KEY) {
        if (c->nm == MAX_MEMBERS) {
            c->toomany = 1, c->cur = NULL;
            return;
        }
        c->cur = &c->m[c->nm++];
        memset(c->cur, 0, sizeof *c->cur);
        c->cur->key = keep(c, t);
    } else if (d == 1 && c->cur) {
        member_value(c, t);
    } else if (d == 2 && c->cur && c->cur->v.kind == V_OBJ && c->cpt) {
        point_token(c, t);
    } else if (d == 2 && c->cur && c->cur->v.kind == V_LIST) {
        if (t->kind == PH_JSON_BEGIN_OBJECT)
            c->cpt = new_point(c);
        else if (t->kind == PH_JSON_END_OBJECT)
            c->cpt = NULL;
        else
            c->cur->bad = 1;    /* a scalar or a list where a position belongs */
    } else if (d == 3 && c->cur && c->cur->v.kind == V_LIST && c->cpt) {
        point_token(c, t);
    }
}

/* ---- checking ------------------------------------------------------------------------ */

static const member *find_member(const vctx *c, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < c->nm; i++)
        if (c->m[i].key.len == n && memcmp(text(c, &c->m[i].key), name, n) == 0)
            return &c->m[i];
    return NULL;
}

/* How many bytes of s[0..n) a reason quotes: at most MAX_SHOWN, not inside a UTF-8
 * sequence. */
static int clip(const char *s, size_t n)
{
    if (n > MAX_SHOWN)
        for (n = MAX_SHOWN; n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80; n--) {}
    return (int)n;
}

/* A value as a reason shows it: numbers as written, strings quoted and cut, others named. */
static const char *shown(const vctx *c, const sval *v, char *out, size_t size)
{
    static const char *const names[] = {[V_NONE] = "nothing", [V_BOOL] = "a boolean",
                                        [V_NULL] = "null", [V_OBJ] = "an object",
                                        [V_LIST] = "a list"};
    if (v->kind != V_NUM && v->kind != V_STR)
        return names[v->kind];
    int n = clip(text(c, v), v->len);
    const char *q = v->kind == V_STR ? "\"" : "";
    snprintf(out, size, "%s%.*s%s%s", q, n, text(c, v), (size_t)n < v->len ? "..." : "", q);
    return out;
}

static int number(const vctx *c, const sval *v, double *out)
{
    return v->kind == V_NUM ? ph_sv_number(text(c, v), v->len, out) : -1;
}

static int in_bounds(vctx *c, const char *tool, const char *what, char axis, long long v)
{
    const ph_validate_limits *l = c->lim;
    int lo = axis == 'x' ? l->min_x : l->min_y, hi = axis == 'x' ? l->max_x : l->max_y;
    if (v >= lo && v <= hi)
        return 0;
    return why(c, "%s: %s%s%c %lld is outside the bounds [%d, %d]", tool, what, *what ? " " : "",
               axis, v, lo, hi);
}

/* Bounds, and for a destination the obstacle check, of one cell. */
static int check_cell(vctx *c, const char *tool, const char *what, long long x, long long y,
                      int destination)
{
    if (in_bounds(c, tool, what, 'x', x) || in_bounds(c, tool, what, 'y', y))
        return -1;
    if (destination && ph_snapview_obstacle(c->s, x, y))
        return why(c, "%s: (%lld,%lld) is an obstacle", tool, x, y);
    return 0;
}

static int check_int(vctx *c, const ph_tool *tl, const ph_param *p, const sval *v)
{
    double d;
    char got[MAX_SHOWN + 8];
    if (number(c, v, &d) || d != floor(d) || d < -2147483648.0 ||
        d > (p->type == PH_T_UINT ? 4294967295.0 : 2147483647.0))
        return why(c, "%s: %s must be %s, got %s", tl->name, p->name,
                   p->type == PH_T_UINT ? "a 32-bit unsigned integer" : "a 32-bit integer",
                   shown(c, v, got, sizeof got));
    if (p->type == PH_T_UINT && d < 0)
        return why(c, "%s: %s %.0f must not be negative", tl->name, p->name, d);
    if (p->type == PH_T_INT && (!strcmp(p->name, "x") || !strcmp(p->name, "y")))
        return in_bounds(c, tl->name, "", p->name[0], (long long)d);
    return 0;
}

/* The cap of a float parameter, by name; 0 when it has none. */
static double float_cap(const vctx *c, const char *name)
{
    if (!strcmp(name, "duration"))
        return c->lim->max_duration;
    if (!strcmp(name, "radius"))
        return c->lim->max_radius;
    return !strcmp(name, "distance") ? c->lim->max_distance : 0;
}

static int check_float(vctx *c, const ph_tool *tl, const ph_param *p, const sval *v)
{
    double d, cap = float_cap(c, p->name);
    if (number(c, v, &d))
        return why(c, "%s: %s must be a number", tl->name, p->name);
    if (cap > 0 && d <= 0)
        return why(c, "%s: %s must be positive", tl->name, p->name);
    if (cap > 0 && d > cap)
        return why(c, "%s: %s %g is over the cap %g", tl->name, p->name, d, cap);
    return 0;
}

static int check_enum(vctx *c, const ph_tool *tl, const ph_param *p, const sval *v)
{
    char got[MAX_SHOWN + 8], list[160] = "";
    for (int i = 0; v->kind == V_STR && i < p->nvalues; i++)
        if (strlen(p->values[i]) == v->len && !memcmp(p->values[i], text(c, v), v->len))
            return 0;
    for (int i = 0; i < p->nvalues; i++) {
        size_t at = strlen(list);
        snprintf(list + at, sizeof list - at, "%s%s", i ? "|" : "", p->values[i]);
    }
    return why(c, "%s: %s %s is not one of %s", tl->name, p->name,
               v->kind == V_STR || v->kind == V_NUM ? shown(c, v, got, sizeof got) : "(not a string)",
               list);
}

/* "an enemy", "the player, the agent itself or an ally", ... for the kinds in `of`. */
static void kinds_phrase(unsigned of, char *out, size_t size)
{
    static const char *const names[] = {"an enemy", "the player", "the agent itself", "an ally",
                                        "an entity"};
    int n = 0, k = 0;
    for (int b = 0; b < 5; b++)
        n += (of >> b) & 1;
    out[0] = '\0';
    for (int b = 0; b < 5; b++) {
        if (!((of >> b) & 1))
            continue;
        size_t at = strlen(out);
        const char *sep = k == 0 ? "" : k == n - 1 ? " or " : ", ";
        snprintf(out + at, size - at, "%s%s", sep, names[b]);
        k++;
    }
}

static int check_entity(vctx *c, const ph_tool *tl, const ph_param *p, const sval *v)
{
    char got[MAX_SHOWN + 8], kinds[96];
    unsigned of = p->of ? p->of : PH_OF_ANY, want = of;
    if (v->kind != V_STR && v->kind != V_NUM)
        return why(c, "%s: %s must be an entity id", tl->name, p->name);
    if (of & PH_OF_ANY)
        want = PH_OF_ENEMY | PH_OF_PLAYER | PH_OF_SELF | PH_OF_ALLY | PH_SV_POI;
    unsigned k = ph_snapview_lookup(c->s, text(c, v), v->len);
    if (k & want)
        return 0;
    if ((k & PH_SV_DEAD) && (want & PH_OF_ENEMY))
        return why(c, "%s: %s %s is a dead enemy", tl->name, p->name, shown(c, v, got, sizeof got));
    kinds_phrase(of, kinds, sizeof kinds);
    return why(c, "%s: %s %s is not %s in the snapshot", tl->name, p->name,
               shown(c, v, got, sizeof got), kinds);
}

static int check_position(vctx *c, const ph_tool *tl, const ph_param *p, const member *m)
{
    const point *pt = &c->pt[m->pt0];
    if (m->v.kind != V_OBJ || m->npt != 1 || pt->bad || !pt->has_x || !pt->has_y)
        return why(c, "%s: %s must be {\"x\":int,\"y\":int}", tl->name, p->name);
    return check_cell(c, tl->name, p->name, pt->x, pt->y, 1);
}

static int check_positions(vctx *c, const ph_tool *tl, const ph_param *p, const member *m)
{
    char what[64];
    if (m->v.kind != V_LIST || m->bad)
        return why(c, "%s: %s must be a list of {\"x\":int,\"y\":int}", tl->name, p->name);
    if (m->npt < p->min_items)
        return why(c, "%s: needs at least %d %s", tl->name, p->min_items, p->name);
    for (int i = 0; i < m->npt; i++) {
        const point *pt = &c->pt[m->pt0 + i];
        snprintf(what, sizeof what, "%s[%d]", p->name, i);
        if (pt->bad || !pt->has_x || !pt->has_y)
            return why(c, "%s: %s must be {\"x\":int,\"y\":int}", tl->name, what);
        if (check_cell(c, tl->name, what, pt->x, pt->y, 1))
            return -1;
    }
    return 0;
}

static int check_param(vctx *c, const ph_tool *tl, const ph_param *p, const member *m)
{
    switch (p->type) {
    case PH_T_INT: case PH_T_UINT: return check_int(c, tl, p, &m->v);
    case PH_T_FLOAT: return check_float(c, tl, p, &m->v);
    case PH_T_ENUM: return check_enum(c, tl, p, &m->v);
    case PH_T_ENTITY: return check_entity(c, tl, p, &m->v);
    case PH_T_POSITION: return check_position(c, tl, p, m);
    case PH_T_POSITIONS: return check_positions(c, tl, p, m);
    case PH_T_STRING:
        if (m->v.kind != V_STR || m->v.len == 0)
            return why(c, "%s: %s must be a non-empty string", tl->name, p->name);
        return 0;
    default: return why(c, "%s: %s has an unknown type", tl->name, p->name);
    }
}

static int has_int_param(const ph_tool *tl, const char *name)
{
    for (int i = 0; i < tl->nparams; i++)
        if (tl->params[i].type == PH_T_INT && !strcmp(tl->params[i].name, name))
            return 1;
    return 0;
}

/* A movement tool's int x, y is where it goes: it must not be an obstacle. */
static int check_destination(vctx *c, const ph_tool *tl)
{
    const member *x, *y;
    double dx, dy;
    if (!tl->group || strcmp(tl->group, "movement") || !has_int_param(tl, "x") ||
        !has_int_param(tl, "y") || !(x = find_member(c, "x")) || !(y = find_member(c, "y")) ||
        number(c, &x->v, &dx) || number(c, &y->v, &dy))
        return 0;
    if (ph_snapview_obstacle(c->s, (long long)dx, (long long)dy))
        return why(c, "%s: (%lld,%lld) is an obstacle", tl->name, (long long)dx, (long long)dy);
    return 0;
}

static int offered(const vctx *c, int t)
{
    if (!c->tools)
        return 1;
    for (int i = 0; i < c->ntools; i++)
        if (c->tools[i] == t)
            return 1;
    return 0;
}

static int find_tool(const ph_registry *r, const char *name, size_t n)
{
    for (int i = 0; i < r->ntools; i++)
        if (r->tools[i].name[0] == *name && strlen(r->tools[i].name) == n &&
            memcmp(r->tools[i].name, name, n) == 0)
            return i;
    return -1;
}

/* Checks the collected step; 0 when valid, else -1 with the reason in c->why. */
static int check_step(vctx *c)
{
    const member *act = find_member(c, "act");
    if (c->toomany)
        return why(c, "the step is too large to check");
    if (!act)
        return why(c, "the step has no 'act'");
    if (act->v.kind != V_STR || act->v.len == 0)
        return why(c, "the step's 'act' is not a tool name");
    int t = find_tool(c->r, text(c, &act->v), act->v.len);
    if (t < 0)
        return why(c, "unknown tool '%.*s'", clip(text(c, &act->v), act->v.len), text(c, &act->v));
    const ph_tool *tl = &c->r->tools[t];
    if (!offered(c, t))
        return why(c, "%s: not in this tier's tools", tl->name);
    for (int i = 0; i < tl->nparams; i++) {
        const ph_param *p = &tl->params[i];
        const member *m = find_member(c, p->name);
        if (m && (m->v.kind == V_NULL || m->v.kind == V_NONE))
            m = NULL;
        if (!m && !p->optional)
            return why(c, "%s: missing parameter '%s'", tl->name, p->name);
        if (m && check_param(c, tl, p, m))
            return -1;
    }
    return check_destination(c, tl);
}

/* ---- runs ---------------------------------------------------------------------------- */

/* One validation call: the collector, and for a plan where kept steps and drops go. */
typedef struct vrun {
    vctx c;
    int in_step, got_step, index, nkept, result;
    uint64_t start;          /* offset of the current step's '{' */
    const char *src;
    ph_buf *kept;
    ph_validate_drop_fn on_drop;
    void *ud;
    ph_code fail;            /* why a plan run stopped: PH_ERR_JSON (not an array), LIMIT */
    ph_validate_limits defaults;
} vrun;

static void run_init(vrun *v, const ph_registry *r, const int *tools, int ntools,
                     const ph_snapview *s, const ph_validate_limits *lim)
{
    vctx *c = &v->c;    /* its member and position slots are written before they are read */
    c->r = r, c->tools = tools, c->ntools = ntools, c->s = s;
    v->defaults = ph_validate_limits_default();
    c->lim = lim ? lim : &v->defaults;
    c->base = 0, c->nm = c->npt = c->field = c->toomany = 0;
    c->cur = NULL, c->cpt = NULL, c->why[0] = '\0';
    ph_buf_init(&c->arena, ARENA_CAP);
    v->in_step = v->got_step = v->index = v->nkept = v->result = 0;
    v->start = 0, v->src = NULL, v->kept = NULL, v->on_drop = NULL, v->ud = NULL;
    v->fail = PH_OK;
}

static int on_step_token(void *ctx, const ph_json_token *t)
{
    vrun *v = ctx;
    if (t->depth > 0) {
        if (v->in_step)
            step_token(&v->c, t);
        return 0;
    }
    if (t->kind == PH_JSON_BEGIN_OBJECT) {
        step_begin(&v->c, 0);
        v->in_step = 1;
    } else if (t->kind == PH_JSON_END_OBJECT) {
        v->in_step = 0, v->got_step = 1;
        v->result = check_step(&v->c);
    } else {
        return 1;    /* not an object: stop */
    }
    return 0;
}

int ph_validate_step(const ph_registry *r, const int *tools, int ntools, const ph_snapview *s,
                     const ph_validate_limits *lim, const char *step_json, size_t len,
                     char *reason, size_t reason_size)
{
    vrun v;
    uint64_t off = 0;
    run_init(&v, r, tools, ntools, s, lim);
    ph_json *j = ph_json_new(NULL, on_step_token, &v);
    ph_json_status st = !j ? PH_JSON_ERROR : ph_json_feed(j, step_json, len, NULL);
    if (st == PH_JSON_OK)
        st = ph_json_finish(j);
    const char *msg = j ? ph_json_error(j, &off) : "out of memory";
    if (!j || st == PH_JSON_ERROR)
        v.result = why(&v.c, "the step is not valid JSON at byte %llu: %s",
                       (unsigned long long)off, msg);
    else if (st != PH_JSON_OK || !v.got_step)
        v.result = why(&v.c, "the step is not a JSON object");
    if (v.result && reason && reason_size)
        snprintf(reason, reason_size, "%s", v.c.why);
    ph_json_free(j);
    ph_buf_free(&v.c.arena);
    return v.result ? -1 : 0;
}

static void drop(vrun *v, int index, const char *reason)
{
    if (v->on_drop)
        v->on_drop(v->ud, index, reason);
}

/* A step object of the plan closed at `end`: keep it or drop it. Nonzero stops the run. */
static int plan_step(vrun *v, uint64_t end)
{
    int index = v->index++, cap = v->c.lim->max_steps;
    if (check_step(&v->c)) {
        drop(v, index, v->c.why);
        return 0;
    }
    if (cap > 0 && v->nkept >= cap) {
        why(&v->c, "plan: over the cap of %d steps", cap);
        drop(v, index, v->c.why);
        return 0;
    }
    if (v->nkept)
        ph_buf_add(v->kept, ",", 1);
    ph_buf_add(v->kept, v->src + v->start, (size_t)(end - v->start));
    v->nkept++;
    if (v->kept->failed)
        v->fail = PH_ERR_LIMIT;
    return v->kept->failed;
}

static int on_plan_token(void *ctx, const ph_json_token *t)
{
    vrun *v = ctx;
    if (t->depth == 0) {
        if (t->kind == PH_JSON_BEGIN_ARRAY || t->kind == PH_JSON_END_ARRAY)
            return 0;
        v->fail = PH_ERR_JSON;
        return 1;
    }
    if (t->depth > 1) {
        if (v->in_step)
            step_token(&v->c, t);
        return 0;
    }
    if (t->kind == PH_JSON_BEGIN_OBJECT) {
        step_begin(&v->c, 1);
        v->in_step = 1, v->start = t->offset;
    } else if (t->kind == PH_JSON_END_OBJECT) {
        v->in_step = 0;
        return plan_step(v, t->end);
    } else if (t->kind != PH_JSON_END_ARRAY) {
        drop(v, v->index++, "the step is not an object");
    }
    return 0;
}

static void buf_cut(ph_buf *b, size_t len)
{
    if (b->data && len <= b->len)
        b->len = len, b->data[len] = '\0';
    b->failed = 0;
}

/* Why a plan run failed, into err. */
static int plan_error(vrun *v, ph_json *j, ph_json_status st, ph_error *err)
{
    uint64_t off = 0;
    const char *msg = j ? ph_json_error(j, &off) : NULL;
    if (!j)
        return ph_error_set(err, PH_ERR_MEMORY, "validate: out of memory");
    if (st == PH_JSON_ERROR)
        return ph_error_set(err, PH_ERR_JSON, "steps: invalid JSON at byte %llu: %s",
                            (unsigned long long)off, msg);
    if (v->fail == PH_ERR_LIMIT)
        return ph_error_set(err, PH_ERR_LIMIT, "validate: the kept steps passed the buffer's cap");
    return ph_error_set(err, PH_ERR_JSON, "steps: invalid JSON at byte 0: not a JSON array");
}

int ph_validate_plan(const ph_registry *r, const int *tools, int ntools, const ph_snapview *s,
                     const ph_validate_limits *lim, const char *steps_json, size_t len,
                     ph_buf *kept, ph_validate_drop_fn on_drop, void *ud, ph_error *err)
{
    vrun v;
    size_t mark = kept->len;
    run_init(&v, r, tools, ntools, s, lim);
    v.src = steps_json, v.kept = kept, v.on_drop = on_drop, v.ud = ud;
    ph_json *j = ph_json_new(NULL, on_plan_token, &v);
    ph_buf_add(kept, "[", 1);
    ph_json_status st = !j ? PH_JSON_ERROR : ph_json_feed(j, steps_json, len, NULL);
    if (st == PH_JSON_OK)
        st = ph_json_finish(j);
    ph_buf_add(kept, "]", 1);
    if (st == PH_JSON_OK && kept->failed)
        st = PH_JSON_STOPPED, v.fail = PH_ERR_LIMIT;
    int rc = st == PH_JSON_OK ? v.nkept : plan_error(&v, j, st, err);
    if (rc < 0)
        buf_cut(kept, mark);
    ph_json_free(j);
    ph_buf_free(&v.c.arena);
    return rc;
}
