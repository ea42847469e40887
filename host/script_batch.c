/* script_batch — policies/batch.lua compiled, and its batch_size(queue, stats) hook.
 *
 * At load: max_wait_ms (0..60000, default 30), max_size (1..PH_MAX_BATCH, default 10) and the
 * optional batch_size function, kept as a ref. Per dispatch decision the host calls
 * ph_gen_batch_size; the answer is checked (an integer from 1 to max_size) before use.
 * Without the file: the defaults and a batch size of max_size. Part of the script adapter. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "script_internal.h"

#define FILE_NAME "policies/batch.lua"

static const char *const BATCH_KEYS[] = {"max_wait_ms", "max_size", "batch_size", NULL};

static double num(lua_State *L, int idx, const char *key, double lo, double hi, double dflt)
{
    ph_sb_field(L, idx, key);
    double v = dflt;
    if (lua_type(L, -1) == LUA_TNUMBER)
        v = lua_tonumber(L, -1);
    else if (!lua_isnil(L, -1))
        luaL_error(L, "%s: '%s' must be a number", FILE_NAME, key);
    if (!(v >= lo && v <= hi))
        ph_sb_raisef(L, "%s: '%s' = %g is out of range [%g, %g]", FILE_NAME, key, v, lo, hi);
    lua_pop(L, 1);
    return v;
}

static int batch_trampoline(lua_State *L)
{
    ph_gen *g = ph_sb_gen(L);
    ph_batch_policy *b = &g->batch;
    ph_sb_unwrap(L, 1);
    int idx = lua_gettop(L);
    ph_sb_check_keys(L, idx, BATCH_KEYS, FILE_NAME);
    b->max_wait_ms = (int)num(L, idx, "max_wait_ms", 0, 60000, b->max_wait_ms);
    b->max_size = (int)num(L, idx, "max_size", 1, PH_MAX_BATCH, b->max_size);
    ph_sb_field(L, idx, "batch_size");
    if (lua_isfunction(L, -1))
        b->size_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    else if (!lua_isnil(L, -1))
        luaL_error(L, "%s: 'batch_size' must be a function", FILE_NAME);
    return 0;
}

int ph_batch_policy_load(ph_gen *g, ph_error *err)
{
    g->batch = (ph_batch_policy){30, 10, LUA_NOREF};
    return ph_sb_run_policy(g, "batch", batch_trampoline, FILE_NAME, err) < 0 ? -1 : 0;
}

const ph_batch_policy *ph_gen_batch_policy(const ph_gen *g) { return &g->batch; }

typedef struct size_args {
    int length;
    double oldest_ms, median_ms, p95_ms;
    int samples, answer;
} size_args;

static void set_num(lua_State *L, const char *key, double v)
{
    if (!isnan(v))
        lua_pushnumber(L, v), lua_setfield(L, -2, key);
}

static int size_trampoline(lua_State *L)
{
    ph_gen *g = ph_sb_gen(L);
    size_args *a = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, g->batch.size_ref);
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, a->length);
    lua_setfield(L, -2, "length");
    lua_pushnumber(L, a->oldest_ms);
    lua_setfield(L, -2, "oldest_ms");
    ph_sb_freeze(L, -1);
    lua_remove(L, -2);
    lua_createtable(L, 0, 3);
    set_num(L, "median_ms", a->median_ms);
    set_num(L, "p95_ms", a->p95_ms);
    lua_pushinteger(L, a->samples);
    lua_setfield(L, -2, "n");
    ph_sb_freeze(L, -1);
    lua_remove(L, -2);
    lua_call(L, 2, 1);
    if (!lua_isinteger(L, -1) && !(lua_isnumber(L, -1) && floor(lua_tonumber(L, -1)) == lua_tonumber(L, -1)))
        luaL_error(L, "%s: batch_size() must return an integer, not %s", FILE_NAME, luaL_typename(L, -1));
    lua_Number n = lua_tonumber(L, -1);
    if (n < 1 || n > g->batch.max_size)
        ph_sb_raisef(L, "%s: batch_size() returned %g (1 to max_size = %d allowed)", FILE_NAME, n, g->batch.max_size);
    a->answer = (int)n;
    return 0;
}

int ph_gen_batch_size(ph_gen *g, int length, double oldest_ms, double median_ms, double p95_ms, int samples,
                      ph_error *err)
{
    if (g->batch.size_ref == LUA_NOREF)
        return g->batch.max_size;
    size_args a = {length, oldest_ms, median_ms, p95_ms, samples, 0};
    lua_pushcfunction(g->L, size_trampoline);
    lua_pushlightuserdata(g->L, &a);
    if (ph_sb_call(g, 1, 0, FILE_NAME, err) != 0)
        return -1;
    return a.answer;
}
