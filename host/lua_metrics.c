/* lua_metrics — test-facing Lua binding of the metrics unit (metrics.h).
 *
 * ph_lua_metrics_open pushes a table with one function, new() -> metrics, and a metrics has
 * the methods
 *
 *     submitted()
 *     plan{tier =, source =, cache =, arm =, first_step_ms =, total_ms =, prompt_chars =}
 *         tier, source, cache and total_ms are required; arm may be left out (no arm label),
 *         first_step_ms too (the plan had no step: NaN); prompt_chars defaults to 0
 *     fallback(from, reason)
 *     reload(ok)                  ok a boolean
 *     render{cache = {hits =, misses =, ...}, pending =, generation =,
 *            endpoints = {{url =, state =}, ...}, cap = bytes}
 *         -> text | nil, message, truncated text
 *         every key optional: no cache table leaves the cache families out, cache takes the
 *         fields of ph_cache_stats (cache:stats() fits as it is, absent ones are 0); cap is
 *         the output's byte cap (default 16 MiB), there to reach the render's failure path
 *     close()                     (also __gc and __close)
 *
 * Misuse raises: wrong types, unknown option keys (in render's nested tables too), strings
 * with NUL bytes, a closed metrics. The bindings unit (lua_planhost) exposes the table as
 * planhost.metrics. Depends on metrics, buf and Lua 5.4. */
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <math.h>
#include <string.h>

#include "metrics.h"
#include "lua_bind.h"

#define METRICS_MT "planhost.metrics"
#define RENDER_CAP (16u << 20)
#define MAX_ENDPOINTS 64

typedef struct lmetrics {
    ph_metrics *m;  /* owned; NULL once closed */
    ph_buf out;     /* the last render's text, kept here so a raised error cannot leak it */
} lmetrics;

static lmetrics *check_box(lua_State *L)
{
    lmetrics *u = luaL_checkudata(L, 1, METRICS_MT);
    if (!u->m)
        luaL_error(L, "metrics: the metrics is closed");
    return u;
}

/* Field `name` of the table at idx as a string without NUL bytes, left on the stack (so it
 * lives as long as the call); NULL when absent and not required. */
static const char *get_text(lua_State *L, int idx, const char *name, int required, const char *fn)
{
    size_t n;
    lua_getfield(L, idx, name);                       /* ... v */
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
    if ((required || !lua_isnil(L, -1)) && (!s || strlen(s) != n))
        luaL_error(L, "%s: option '%s' must be a string without NUL bytes", fn, name);
    return s;
}

/* Field `name` of the table at idx as an integer in [lo, hi], or dflt when absent. */
static lua_Integer get_int(lua_State *L, int idx, const char *name, lua_Integer lo,
                           lua_Integer hi, lua_Integer dflt, const char *fn)
{
    int isnum;
    lua_getfield(L, idx, name);                       /* ... v */
    lua_Integer v = lua_tointegerx(L, -1, &isnum);
    if (!lua_isnil(L, -1) && (!isnum || v < lo || v > hi))
        luaL_error(L, "%s: option '%s' must be an integer in [%I, %I]", fn, name, lo, hi);
    v = lua_isnil(L, -1) ? dflt : v;
    lua_pop(L, 1);                                    /* ... */
    return v;
}

/* Field `name` of the table at idx as a number, or dflt when absent (unless required). */
static double get_num(lua_State *L, int idx, const char *name, int required, double dflt,
                      const char *fn)
{
    lua_getfield(L, idx, name);                       /* ... v */
    int absent = lua_isnil(L, -1);
    if ((required || !absent) && lua_type(L, -1) != LUA_TNUMBER)
        luaL_error(L, "%s: option '%s' must be a number", fn, name);
    double v = absent ? dflt : (double)lua_tonumber(L, -1);
    lua_pop(L, 1);                                    /* ... */
    return v;
}

static int l_new(lua_State *L)
{
    lmetrics *u = lua_newuserdatauv(L, sizeof *u, 0); /* u */
    u->m = NULL;
    ph_buf_init(&u->out, RENDER_CAP);
    luaL_setmetatable(L, METRICS_MT);
    u->m = ph_metrics_new();
    if (!u->m)
        return luaL_error(L, "metrics.new: out of memory");
    return 1;
}

static int l_submitted(lua_State *L)
{
    ph_metrics_submitted(check_box(L)->m);
    return 0;
}

static int l_plan(lua_State *L)
{
    static const char *const keys[] = {"tier", "source", "cache", "arm", "first_step_ms",
                                       "total_ms", "prompt_chars", NULL};
    static const char *const fn = "metrics:plan";
    ph_metrics *m = check_box(L)->m;
    luaL_checktype(L, 2, LUA_TTABLE);
    ph_lua_check_keys(L, 2, keys, fn);
    const char *tier = get_text(L, 2, "tier", 1, fn);
    const char *source = get_text(L, 2, "source", 1, fn);
    const char *cache = get_text(L, 2, "cache", 1, fn);
    const char *arm = get_text(L, 2, "arm", 0, fn);  /* strings stay on the stack */
    double first = get_num(L, 2, "first_step_ms", 0, NAN, fn);
    double total = get_num(L, 2, "total_ms", 1, 0, fn);
    lua_Integer chars = get_int(L, 2, "prompt_chars", 0, LUA_MAXINTEGER, 0, fn);
    ph_metrics_plan(m, tier, source, cache, arm, first, total, (size_t)chars);
    return 0;
}

/* Argument idx as a string without NUL bytes. */
static const char *check_text(lua_State *L, int idx)
{
    size_t n;
    const char *s = luaL_checklstring(L, idx, &n);
    luaL_argcheck(L, strlen(s) == n, idx, "a string without NUL bytes expected");
    return s;
}

static int l_fallback(lua_State *L)
{
    ph_metrics *m = check_box(L)->m;
    ph_metrics_fallback(m, check_text(L, 2), check_text(L, 3));
    return 0;
}

static int l_reload(lua_State *L)
{
    ph_metrics *m = check_box(L)->m;
    luaL_checktype(L, 2, LUA_TBOOLEAN);
    ph_metrics_reload(m, lua_toboolean(L, 2));
    return 0;
}

static const char *const CACHE_KEYS[] = {
    "hits", "misses", "puts", "refused", "evictions", "expirations", "removes", "coalesced",
    "stale", "entries", "bytes", "inflight", "memory", "max_entries", "max_bytes", "ttl_ms", NULL,
};

/* render's cache = {...} at idx into *s; every field absent is 0. */
static void read_cache(lua_State *L, int idx, ph_cache_stats *s)
{
    static const char *const fn = "metrics:render: cache";
    if (!lua_istable(L, idx))
        luaL_error(L, "metrics:render: option 'cache' must be a table");
    ph_lua_check_keys(L, idx, CACHE_KEYS, fn);
    uint64_t v[sizeof CACHE_KEYS / sizeof CACHE_KEYS[0]];
    for (int i = 0; CACHE_KEYS[i]; i++)
        v[i] = (uint64_t)get_int(L, idx, CACHE_KEYS[i], 0, LUA_MAXINTEGER, 0, fn);
    *s = (ph_cache_stats){
        .hits = v[0], .misses = v[1], .puts = v[2], .refused = v[3], .evictions = v[4],
        .expirations = v[5], .removes = v[6], .coalesced = v[7], .stale = v[8],
        .entries = (size_t)v[9], .bytes = (size_t)v[10], .inflight = (size_t)v[11],
        .memory = (size_t)v[12], .max_entries = (size_t)v[13], .max_bytes = (size_t)v[14],
        .ttl_ms = v[15],
    };
}

/* render's endpoints = {{url =, state =}, ...} at idx into urls and states; the strings are
 * left on the stack. Returns how many. */
static int read_endpoints(lua_State *L, int idx, const char **urls, const char **states)
{
    static const char *const keys[] = {"url", "state", NULL};
    static const char *const fn = "metrics:render: endpoint";
    if (!lua_istable(L, idx))
        luaL_error(L, "metrics:render: option 'endpoints' must be a list");
    int n = (int)lua_rawlen(L, idx);
    if (n > MAX_ENDPOINTS)
        luaL_error(L, "metrics:render: at most %d endpoints", MAX_ENDPOINTS);
    luaL_checkstack(L, 3 * n, "metrics:render: endpoints");
    for (int i = 0; i < n; i++) {
        if (lua_rawgeti(L, idx, i + 1) != LUA_TTABLE) /* ... e */
            luaL_error(L, "metrics:render: endpoints[%d] must be a table", i + 1);
        int e = lua_gettop(L);
        ph_lua_check_keys(L, e, keys, fn);
        urls[i] = get_text(L, e, "url", 1, fn);       /* ... e url */
        states[i] = get_text(L, e, "state", 1, fn);   /* ... e url state */
    }
    return n;
}

static int l_render(lua_State *L)
{
    static const char *const keys[] = {"cache", "pending", "generation", "endpoints", "cap", NULL};
    static const char *const fn = "metrics:render";
    lmetrics *u = check_box(L);
    ph_cache_stats cs;
    const char *urls[MAX_ENDPOINTS], *states[MAX_ENDPOINTS];
    ph_metrics_gauges g = {0};
    size_t cap = RENDER_CAP;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_settop(L, 2);
        ph_lua_check_keys(L, 2, keys, fn);
        g.pending = (int)get_int(L, 2, "pending", INT_MIN, INT_MAX, 0, fn);
        g.generation = (unsigned)get_int(L, 2, "generation", 0, UINT_MAX, 0, fn);
        cap = (size_t)get_int(L, 2, "cap", 0, LUA_MAXINTEGER, RENDER_CAP, fn);
        if (lua_getfield(L, 2, "cache") != LUA_TNIL) /* 2 cache */
            read_cache(L, 3, &cs), g.cache = &cs;
        if (lua_getfield(L, 2, "endpoints") != LUA_TNIL) /* 2 cache endpoints */
            g.nendpoints = read_endpoints(L, 4, urls, states);
        g.endpoints = urls, g.circuit_states = states;
    }
    ph_buf_free(&u->out);
    ph_buf_init(&u->out, cap);
    int rc = ph_metrics_render(u->m, &g, &u->out);
    if (rc == 0) {
        lua_pushlstring(L, ph_buf_str(&u->out), u->out.len);
        return 1;
    }
    luaL_pushfail(L);
    lua_pushfstring(L, "metrics:render: the text passed the cap of %I bytes", (lua_Integer)cap);
    lua_pushlstring(L, ph_buf_str(&u->out), u->out.len);
    return 3;
}

static int l_close(lua_State *L)
{
    lmetrics *u = luaL_checkudata(L, 1, METRICS_MT);
    ph_metrics_free(u->m);
    u->m = NULL;
    ph_buf_free(&u->out);
    return 0;
}

static const luaL_Reg metrics_methods[] = {
    {"submitted", l_submitted}, {"plan", l_plan}, {"fallback", l_fallback},
    {"reload", l_reload}, {"render", l_render}, {"close", l_close}, {NULL, NULL},
};

static const luaL_Reg metrics_meta[] = {{"__gc", l_close}, {"__close", l_close}, {NULL, NULL}};

static const luaL_Reg metrics_funcs[] = {{"new", l_new}, {NULL, NULL}};

/* Pushes the planhost.metrics table. Registers the metatable on first use. */
int ph_lua_metrics_open(lua_State *L)
{
    if (luaL_newmetatable(L, METRICS_MT)) {           /* mt */
        luaL_setfuncs(L, metrics_meta, 0);
        luaL_newlib(L, metrics_methods);              /* mt methods */
        lua_setfield(L, -2, "__index");               /* mt */
    }
    lua_pop(L, 1);
    luaL_newlib(L, metrics_funcs);                    /* funcs */
    return 1;
}
