/* lua_planparse — test-facing Lua binding of the plan parser.
 *
 * ph_lua_planparse_push runs the real parser over a text (whole, or in pieces of a given size,
 * each piece a heap copy of exactly its bytes so the sanitizer sees any read past it), then
 * finishes it, and pushes the events in the order they happened as one array of tables:
 *   {kind="step", agent=, index=, act=, json=, ["end"]=, fed=}
 *   {kind="plan", agent=, plan_id=, plan_id_generated=, json=, nsteps=, partial=,
 *    dropped={{index=, reason=}, ...}, ["end"]=, fed=}
 *   {kind="done", fed=}          a feed returned PH_PP_DONE (nothing is fed after it, and
 *                                finish is not called)
 *   {kind="stopped", fed=}       (never: these callbacks do not stop)
 *   {kind="error", message=, fed=}  a feed or finish returned PH_PP_ERROR
 * `fed` is the bytes handed to the parser so far, the piece being fed included; `end` is
 * the parser's own offset just past the step's '}' or the plan's closing bracket.
 * The lead's bindings (lua_planhost) expose it as host:parse. Depends on planparse and the
 * Lua 5.4 C API. */
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "planparse.h"
#include "registry.h"

#define RUN_META "planhost.planparse.run"

/* One run, in a userdata so that a Lua error (out of memory) mid-run still frees it. */
typedef struct run {
    ph_planparse *pp;
    char *piece;
    lua_State *L;
    const ph_registry *reg;
    int events;             /* stack index of the event array */
    lua_Integer n;
    size_t fed;
} run;

static int run_gc(lua_State *L)
{
    run *r = luaL_checkudata(L, 1, RUN_META);
    ph_planparse_free(r->pp);
    free(r->piece);
    r->pp = NULL;
    r->piece = NULL;
    return 0;
}

/* Starts an event table of `kind` with its `fed` (the table is left on the stack). */
static void event_begin(run *r, const char *kind, int fields)
{
    lua_createtable(r->L, 0, fields + 2);                 /* ... ev */
    lua_pushstring(r->L, kind);
    lua_setfield(r->L, -2, "kind");
    lua_pushinteger(r->L, (lua_Integer)r->fed);
    lua_setfield(r->L, -2, "fed");
}

static void event_end(run *r)
{
    lua_rawseti(r->L, r->events, ++r->n);                 /* ... */
}

static void set_agent(lua_State *L, const char *agent)
{
    if (agent)
        lua_pushstring(L, agent), lua_setfield(L, -2, "agent");
}

static int on_step(void *ud, const ph_pp_step *s)
{
    run *r = ud;
    lua_State *L = r->L;
    event_begin(r, "step", 5);
    set_agent(L, s->agent);
    lua_pushinteger(L, s->index);
    lua_setfield(L, -2, "index");
    lua_pushstring(L, r->reg->tools[s->tool].name);
    lua_setfield(L, -2, "act");
    lua_pushlstring(L, s->json, s->len);
    lua_setfield(L, -2, "json");
    lua_pushinteger(L, (lua_Integer)s->end);
    lua_setfield(L, -2, "end");
    event_end(r);
    return 0;
}

static void push_dropped(lua_State *L, const ph_pp_plan *p)
{
    lua_createtable(L, p->ndropped, 0);                   /* ... ev dropped */
    for (int i = 0; i < p->ndropped; i++) {
        lua_createtable(L, 0, 2);                         /* ... ev dropped d */
        lua_pushinteger(L, p->dropped[i].index);
        lua_setfield(L, -2, "index");
        lua_pushstring(L, p->dropped[i].reason);
        lua_setfield(L, -2, "reason");
        lua_rawseti(L, -2, i + 1);                        /* ... ev dropped */
    }
    lua_setfield(L, -2, "dropped");                       /* ... ev */
}

static int on_plan(void *ud, const ph_pp_plan *p)
{
    run *r = ud;
    lua_State *L = r->L;
    event_begin(r, "plan", 8);
    set_agent(L, p->agent);
    lua_pushstring(L, p->plan_id);
    lua_setfield(L, -2, "plan_id");
    lua_pushboolean(L, p->plan_id_generated);
    lua_setfield(L, -2, "plan_id_generated");
    lua_pushlstring(L, p->steps_json, p->steps_len);
    lua_setfield(L, -2, "json");
    lua_pushinteger(L, p->nsteps);
    lua_setfield(L, -2, "nsteps");
    lua_pushboolean(L, p->partial);
    lua_setfield(L, -2, "partial");
    push_dropped(L, p);
    lua_pushinteger(L, (lua_Integer)p->end);
    lua_setfield(L, -2, "end");
    event_end(r);
    return 0;
}

/* Records what a status means (a finish's PH_PP_DONE is no event); returns 1 when the run
 * is over. */
static int record_status(run *r, ph_pp_status st, int finish)
{
    if (st == PH_PP_MORE || (finish && st == PH_PP_DONE))
        return st != PH_PP_MORE;
    if (st == PH_PP_ERROR) {
        event_begin(r, "error", 1);
        lua_pushstring(r->L, ph_planparse_error(r->pp));
        lua_setfield(r->L, -2, "message");
    } else {
        event_begin(r, st == PH_PP_DONE ? "done" : "stopped", 0);
    }
    event_end(r);
    return 1;
}

/* Feeds text in pieces of `piece` bytes (0 = whole); returns the last status. */
static ph_pp_status feed_all(run *r, const char *text, size_t len, size_t piece)
{
    size_t size = piece ? piece : len;
    ph_pp_status st = PH_PP_MORE;
    for (size_t at = 0; at < len && st == PH_PP_MORE; at += size) {
        size_t n = len - at < size ? len - at : size;
        free(r->piece);
        r->piece = malloc(n);
        if (!r->piece)
            luaL_error(r->L, "planparse: out of memory");
        memcpy(r->piece, text + at, n);
        r->fed += n;
        st = ph_planparse_feed(r->pp, r->piece, n);
    }
    return st;
}

int ph_lua_planparse_push(lua_State *L, const ph_registry *r, const int *tools, int ntools,
                          unsigned flags, const char *text, size_t len, size_t piece)
{
    run *u = lua_newuserdatauv(L, sizeof *u, 0);          /* ... run */
    memset(u, 0, sizeof *u);
    if (luaL_newmetatable(L, RUN_META)) {
        lua_pushcfunction(L, run_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    lua_newtable(L);                                      /* ... run events */
    u->L = L;
    u->reg = r;
    u->events = lua_gettop(L);
    ph_pp_callbacks cb = {on_step, on_plan};
    u->pp = ph_planparse_new(r, tools, ntools, flags, &cb, u);
    if (!u->pp)
        return luaL_error(L, "planparse: out of memory");
    ph_pp_status st = feed_all(u, text, len, piece);
    if (!record_status(u, st, 0))
        record_status(u, ph_planparse_finish(u->pp), 1);
    ph_planparse_free(u->pp);
    u->pp = NULL;
    lua_remove(L, -2);                                    /* ... events */
    return 1;
}
