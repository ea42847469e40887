/* planparse_write — the plan parser's step writer (see planparse_step_internal.h).
 *
 * Checks the members planparse_step.c collected from a step object against the registry and
 * writes the step canonically: {"act":NAME, params in registry order}. Leniencies of a step:
 *   - the tool may be named under "act", "action" or "tool" (in that order of preference),
 *     matched ignoring ASCII case and '_', '-', ' ' ("move_to", "moveTo" are MoveTo); keys
 *     match parameters the same way ("targetId" is target_id), and a parameter named X_id
 *     may be written X ("target" for target_id);
 *   - parameters nested in "params", "parameters", "args" or "arguments" count as the step's
 *     (planparse_step.c lifts them while collecting);
 *   - numbers written as strings (" 2.5 ", "5", "+3", ".5") where a number is wanted; int
 *     and uint need an integral value (5.0 and 1e1 are fine, 5.5 is not), within 32 bits;
 *     floats are written without leading or trailing zeros ("2.50" is 2.5);
 *   - enum values in any case; written in the registry's lowercase;
 *   - entity: an integer, a string of digits (written as an integer), or any other non-empty
 *     string (passed on as a string: whether it exists is validate's business);
 *   - position: {"x":..,"y":..} (extra keys ignored) or [x, y]; when a position parameter is
 *     missing but the step has flat "x" and "y" (as MoveTo does), those;
 *   - null for an optional parameter means absent;
 *   - keys the tool does not have are left out, silently: models add "why" or "comment",
 *     and the engine wants the tool's parameters only.
 * Depends on buf, jsonw and registry, and on planparse_step.c for the collected members
 * (planparse_step_internal.h, which also has the name matching). */
#include "planparse_step_internal.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "jsonw.h"

#define MAX_SHOWN 40                 /* bytes of model text quoted in a reason */
#define INT_LIMIT 9007199254740992LL /* 2^53: the integers every JSON reader keeps exact */

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* ---- numbers ------------------------------------------------------------------------- */

typedef struct num {
    int neg, has_exp;
    const char *ip, *fp;    /* integer and fraction digits */
    size_t il, fl;
    long exp;
} num;

/* Reads a decimal number: JSON's grammar, plus surrounding spaces, '+', and a bare leading
 * or trailing '.' (the forms models put in strings). Returns 0, or -1 when it is not one. */
static int num_read(const char *s, size_t n, num *x)
{
    size_t i = 0;
    memset(x, 0, sizeof *x);
    while (n && is_space(s[n - 1]))
        n--;
    while (i < n && is_space(s[i]))
        i++;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        x->neg = s[i++] == '-';
    for (x->ip = s + i; i < n && is_digit(s[i]); i++)
        x->il++;
    if (i < n && s[i] == '.')
        for (x->fp = s + ++i; i < n && is_digit(s[i]); i++)
            x->fl++;
    if (x->il + x->fl == 0)
        return -1;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        int eneg = ++i < n && s[i] == '-';
        i += i < n && (s[i] == '-' || s[i] == '+');
        if (i == n || !is_digit(s[i]))
            return -1;
        for (; i < n && is_digit(s[i]); i++)
            x->exp = x->exp < 100000 ? x->exp * 10 + (s[i] - '0') : x->exp;
        x->exp = eneg ? -x->exp : x->exp;
        x->has_exp = 1;
    }
    return i == n ? 0 : -1;
}

static int num_digit(const num *x, size_t k)
{
    return (k < x->il ? x->ip[k] : x->fp[k - x->il]) - '0';
}

/* The exact value of an integral number: 0; -2 when it has a fraction; -3 past 2^53. */
static int num_int(const num *x, long long *out)
{
    size_t nd = x->il + x->fl, k = 0;
    long scale = x->exp - (long)x->fl;
    long long v = 0;
    while (nd > 0 && num_digit(x, nd - 1) == 0)
        nd--, scale++;
    while (k < nd && num_digit(x, k) == 0)
        k++;
    if (k < nd && scale < 0)
        return -2;
    for (; k < nd; k++)
        if ((v = v * 10 + num_digit(x, k)) > INT_LIMIT)
            return -3;
    for (; v && scale > 0; scale--)
        if ((v *= 10) > INT_LIMIT)
            return -3;
    *out = x->neg ? -v : v;
    return 0;
}

/* Writes v in decimal at out (room for 21 bytes); returns its length. */
static size_t fmt_int(char *out, long long v)
{
    char tmp[24], *e = tmp + sizeof tmp, *d = e;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do
        *--d = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        *--d = '-';
    memcpy(out, d, (size_t)(e - d));
    return (size_t)(e - d);
}

/* ---- writing ------------------------------------------------------------------------- */

static int why(ph_step *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int why(ph_step *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof s->why, fmt, ap);
    va_end(ap);
    return -1;
}

static void put_int(ph_buf *b, long long v)
{
    char tmp[24];
    ph_buf_add(b, tmp, fmt_int(tmp, v));
}

/* Appends pre, then a registry name as a JSON string, then post: in one append when the
 * name needs no escaping (always, for registries written as tools.lua asks). pre and post
 * are string literals. */
#define put_name(b, pre, name, post)                                                         \
    put_name_((b), pre, sizeof pre - 1, (name), post, sizeof post - 1)
static void put_name_(ph_buf *b, const char *pre, size_t a, const char *name, const char *post,
                      size_t c)
{
    char tmp[128];
    size_t n = strlen(name);
    int plain = a + n + c + 2 <= sizeof tmp;
    for (size_t i = 0; plain && i < n; i++)
        plain = (unsigned char)name[i] >= 0x20 && name[i] != '"' && name[i] != '\\';
    if (!plain) {
        ph_buf_add(b, pre, a), ph_jsonw_cstr(b, name), ph_buf_add(b, post, c);
        return;
    }
    memcpy(tmp, pre, a);
    tmp[a] = '"';
    memcpy(tmp + a + 1, name, n);
    tmp[a + 1 + n] = '"';
    memcpy(tmp + a + 2 + n, post, c);
    ph_buf_add(b, tmp, a + n + c + 2);
}

/* Appends pre and {"x":X,"y":Y} in one go. */
static void put_point(ph_buf *b, const char *pre, long long x, long long y)
{
    char tmp[64];
    size_t n = strlen(pre);
    memcpy(tmp, pre, n);
    memcpy(tmp + n, "{\"x\":", 5), n += 5;
    n += fmt_int(tmp + n, x);
    memcpy(tmp + n, ",\"y\":", 5), n += 5;
    n += fmt_int(tmp + n, y);
    tmp[n++] = '}';
    ph_buf_add(b, tmp, n);
}

/* The integer a scalar stands for (a number, or a numeric string): 0, or -1 when it is no
 * number, -2 when it has a fraction, -3 when it is out of range. */
static int sval_int(const ph_step *s, const sval *v, long long *out)
{
    num x;
    if ((v->kind != V_NUM && v->kind != V_STR) || num_read(text_of(s, v), v->len, &x))
        return -1;
    return num_int(&x, out);
}

/* A short description of a value, for reasons. */
static const char *describe(const ph_step *s, const sval *v, char *out, size_t size)
{
    static const char *const names[] = {"nothing", "", "", "a boolean", "null", "an object",
                                        "a list", "a value nested too deep"};
    if (v->kind != V_NUM && v->kind != V_STR)
        return names[v->kind];
    const char *q = v->kind == V_STR ? "\"" : "", *t = text_of(s, v);
    snprintf(out, size, "%s%.*s%s", q, ph_pp_clip(t, v->len, MAX_SHOWN), t, q);
    return out;
}

static int bad(ph_step *s, const ph_tool *tl, const ph_param *pr, const char *want,
               const sval *v)
{
    char got[MAX_SHOWN + 8];
    return why(s, "%s: parameter '%s' must be %s, got %s", tl->name, pr->name, want,
               describe(s, v, got, sizeof got));
}

static int write_int(ph_step *s, const ph_tool *tl, const ph_param *pr, const sval *v)
{
    long long n;
    int uns = pr->type == PH_T_UINT, rc = sval_int(s, v, &n);
    if (rc == 0 && (n > (uns ? 4294967295LL : 2147483647LL) || n < (uns ? 0 : -2147483648LL)))
        rc = uns && n < 0 ? -1 : -3;
    if (rc == -3)
        return bad(s, tl, pr, uns ? "a 32-bit unsigned integer" : "a 32-bit integer", v);
    if (rc)
        return bad(s, tl, pr, uns ? "a non-negative integer" : "an integer", v);
    put_int(s->out, n);
    return 0;
}

static void write_long_float(ph_buf *b, const num *x)
{
    ph_buf_add(b, "-", (size_t)x->neg);
    ph_buf_add(b, x->il ? x->ip : "0", x->il ? x->il : 1);
    if (x->fl)
        ph_buf_add(b, ".", 1), ph_buf_add(b, x->fp, x->fl);
    if (x->has_exp)
        ph_buf_addf(b, "e%ld", x->exp);
}

/* Writes the number as JSON, without leading zeros or trailing fraction zeros ("2.50" is
 * 2.5, "19.0" is 19), so that equal values are written the same. */
static int write_float(ph_step *s, const ph_tool *tl, const ph_param *pr, const sval *v)
{
    num x;
    char tmp[64];
    size_t n = 0;
    if ((v->kind != V_NUM && v->kind != V_STR) || num_read(text_of(s, v), v->len, &x) ||
        x.exp > 300)
        return bad(s, tl, pr, "a number", v);
    while (x.il > 1 && *x.ip == '0')
        x.ip++, x.il--;
    while (x.fl && x.fp[x.fl - 1] == '0')
        x.fl--;
    if (x.il + x.fl > 40)
        return write_long_float(s->out, &x), 0;
    tmp[n] = '-', n += (size_t)x.neg;
    memcpy(tmp + n, x.il ? x.ip : "0", x.il ? x.il : 1), n += x.il ? x.il : 1;
    if (x.fl)
        tmp[n++] = '.', memcpy(tmp + n, x.fp, x.fl), n += x.fl;
    if (x.has_exp)
        tmp[n++] = 'e', n += fmt_int(tmp + n, x.exp);
    ph_buf_add(s->out, tmp, n);
    return 0;
}

static int write_entity(ph_step *s, const ph_tool *tl, const ph_param *pr, const sval *v)
{
    long long n;
    int rc = sval_int(s, v, &n);
    if (rc == 0) {
        put_int(s->out, n);
        return 0;
    }
    if (rc != -1 || v->kind != V_STR)      /* only a string has text to trim (found by fuzzing) */
        return bad(s, tl, pr, "an entity id", v);
    const char *t = text_of(s, v);
    size_t len = v->len;
    while (len && is_space(t[len - 1]))
        len--;
    while (len && is_space(*t))
        t++, len--;
    if (!len)
        return bad(s, tl, pr, "an entity id", v);
    ph_jsonw_str(s->out, t, len);
    return 0;
}

static int write_enum(ph_step *s, const ph_tool *tl, const ph_param *pr, const sval *v)
{
    char list[160] = "one of ";
    for (int i = 0; i < pr->nvalues; i++) {
        if (v->kind == V_STR && name_is(text_of(s, v), v->len, pr->values[i])) {
            put_name(s->out, "", pr->values[i], "");
            return 0;
        }
        size_t at = strlen(list);
        snprintf(list + at, sizeof list - at, "%s%s", i ? "|" : "", pr->values[i]);
    }
    return bad(s, tl, pr, list, v);
}

/* Reads a position into *x, *y; returns 0 when it is one. */
static int point_get(const ph_step *s, const point *pt, long long *x, long long *y)
{
    if (pt->bad || (pt->shape == P_PAIR && pt->n != 2) || pt->shape == P_LONE)
        return -1;
    if (sval_int(s, &pt->x, x) || sval_int(s, &pt->y, y))
        return -1;
    return *x < -2147483648LL || *x > 2147483647LL || *y < -2147483648LL || *y > 2147483647LL;
}

/* The member for a parameter; a name ending in "_id" may also be written without it. */
static const member *find_member(const ph_step *s, const char *name)
{
    size_t n = strlen(name);
    int alias = n > 3 && strcmp(name + n - 3, "_id") == 0;
    char c0 = lower(name[0]);
    for (int pass = 0; pass <= alias; pass++)
        for (int i = 0; i < s->nm; i++)
            if (s->m[i].c0 == c0 &&
                name_eq(key_of(s, &s->m[i]), s->m[i].klen, name, pass ? n - 3 : n))
                return &s->m[i];
    return NULL;
}

/* The step's flat "x" and "y" as a position: 0 when both are there. */
static int flat_position(const ph_step *s, point *out)
{
    const member *x = find_member(s, "x"), *y = find_member(s, "y");
    if (!x || !y || x->v.kind >= V_OBJ || y->v.kind >= V_OBJ)
        return -1;
    *out = (point){x->v, y->v, P_PAIR, 2, 0};
    return 0;
}

/* Writes a position parameter from its member, or (m NULL) from the step's flat x and y. */
static int write_position(ph_step *s, const ph_tool *tl, const ph_param *pr, const member *m)
{
    long long x, y;
    point pt = {{0}, {0}, P_PAIR, 0, 1};
    if (!m)
        flat_position(s, &pt);
    else if (m->v.kind == V_OBJ)
        pt = s->pt[m->pt0];
    else if (m->v.kind == V_LIST && m->npt == 2 && s->pt[m->pt0].shape == P_LONE &&
             s->pt[m->pt0 + 1].shape == P_LONE)
        pt = (point){s->pt[m->pt0].x, s->pt[m->pt0 + 1].x, P_PAIR, 2, 0};
    if (point_get(s, &pt, &x, &y) && !m)
        return why(s, "%s: parameter '%s' must be {\"x\":int,\"y\":int}", tl->name, pr->name);
    if (point_get(s, &pt, &x, &y))
        return bad(s, tl, pr, "{\"x\":int,\"y\":int}", &m->v);
    put_point(s->out, "", x, y);
    return 0;
}

static int write_positions(ph_step *s, const ph_tool *tl, const ph_param *pr, const member *m)
{
    long long x, y;
    if (m->v.kind != V_LIST)
        return bad(s, tl, pr, "a list of positions", &m->v);
    if (m->npt < pr->min_items)
        return why(s, "%s: parameter '%s' needs at least %d positions, got %d", tl->name,
                   pr->name, pr->min_items, m->npt);
    for (int i = 0; i < m->npt; i++)
        if (point_get(s, &s->pt[m->pt0 + i], &x, &y))
            return why(s, "%s: parameter '%s': position %d must be {\"x\":int,\"y\":int}",
                       tl->name, pr->name, i);
    for (int i = 0; i < m->npt; i++) {
        point_get(s, &s->pt[m->pt0 + i], &x, &y);
        put_point(s->out, i ? "," : "[", x, y);
    }
    ph_buf_adds(s->out, m->npt ? "]" : "[]");
    return 0;
}

static int write_param(ph_step *s, const ph_tool *tl, const ph_param *pr, const member *m)
{
    switch (pr->type) {
    case PH_T_INT: case PH_T_UINT: return write_int(s, tl, pr, &m->v);
    case PH_T_FLOAT: return write_float(s, tl, pr, &m->v);
    case PH_T_ENTITY: return write_entity(s, tl, pr, &m->v);
    case PH_T_ENUM: return write_enum(s, tl, pr, &m->v);
    case PH_T_POSITION: return write_position(s, tl, pr, m);
    case PH_T_POSITIONS: return write_positions(s, tl, pr, m);
    case PH_T_STRING:
        if (m->v.kind != V_STR || m->v.len == 0)
            return bad(s, tl, pr, "a non-empty string", &m->v);
        ph_jsonw_str(s->out, text_of(s, &m->v), m->v.len);
        return 0;
    default: return why(s, "%s: parameter '%s' has an unknown type", tl->name, pr->name);
    }
}

/* Writes the tool's parameters in registry order. */
static int write_params(ph_step *s, const ph_tool *tl)
{
    point flat;
    for (int i = 0; i < tl->nparams; i++) {
        const ph_param *pr = &tl->params[i];
        const member *m = find_member(s, pr->name);
        if (m && (m->v.kind == V_NULL || m->v.kind == V_NONE))
            m = NULL;   /* null: absent */
        if (!m && pr->type == PH_T_POSITION && flat_position(s, &flat) == 0) {
            put_name(s->out, ",", pr->name, ":");
            if (write_position(s, tl, pr, NULL))
                return -1;
        } else if (!m && !pr->optional) {
            return why(s, "%s: missing parameter '%s'", tl->name, pr->name);
        } else if (m) {
            put_name(s->out, ",", pr->name, ":");
            if (write_param(s, tl, pr, m))
                return -1;
        }
    }
    return 0;
}

static int find_tool(const ph_registry *r, const char *name, size_t n)
{
    char c0 = first_of(name, n);
    for (int i = 0; i < r->ntools; i++)
        if (lower(r->tools[i].name[0]) == c0 && name_is(name, n, r->tools[i].name))
            return i;
    return -1;
}

/* Validates the collected step and appends it canonically to out (after a ',' when comma).
 * Returns the tool's registry index; or -1, with the reason in s->why and out as it was.
 * offered[i] says whether tool i may be used. */
int ph_step_write(ph_step *s, const ph_registry *r, const unsigned char *offered,
                      ph_buf *out, int comma)
{
    const member *act = tool_member(s);
    size_t mark = out->len;
    if (!act)
        return why(s, "the step has no 'act'");
    const char *name = text_of(s, &act->v);
    if (act->v.kind != V_STR)
        return why(s, "the step's '%.*s' is not a tool name", ph_pp_clip(key_of(s, act), act->klen,
                    MAX_SHOWN), key_of(s, act));
    int t = find_tool(r, name, act->v.len);
    if (t < 0)
        return why(s, "unknown tool '%.*s'", ph_pp_clip(name, act->v.len, MAX_SHOWN), name);
    const ph_tool *tl = &r->tools[t];
    if (!offered[t])
        return why(s, "tool '%s' is not in the offered tool set", tl->name);
    s->out = out;
    if (comma)
        put_name(out, ",{\"act\":", tl->name, "");
    else
        put_name(out, "{\"act\":", tl->name, "");
    int rc = write_params(s, tl);
    ph_buf_add(out, "}", 1);
    if (rc == 0 && out->failed)
        rc = why(s, "%s: the step is too long", tl->name);
    if (rc)
        ph_pp_buf_cut(out, mark);
    return rc ? -1 : t;
}
