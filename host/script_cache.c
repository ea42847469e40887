/* script_cache — policies/cache.lua compiled: the snapshot-hash rules and what is cached.
 *
 * At load the table is checked (unknown keys are errors, every path is parsed by snaphash,
 * steps must be finite and >= 0) and compiled into a ph_cache_policy whose ph_hash_rules the
 * generation owns; nothing of it calls Lua afterwards, so a cache lookup never enters the
 * sandbox. Without policies/cache.lua the cache is off. Part of the script adapter. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "script_internal.h"
#include "snaphash.h"

#define FILE_NAME "policies/cache.lua"

static const char *const CACHE_KEYS[] = {"enabled", "store", "coalesce", "hash_rules", NULL};
static const char *const STORE_KEYS[] = {"llm", "heuristic", NULL};
static const char *const RULE_KEYS[] = {"ignore", "quantise", "sets", "relative", "anchor", NULL};


static int flag(lua_State *L, int idx, const char *key, int dflt, const char *what)
{
    int t = ph_sb_field(L, idx, key);
    int v = t == LUA_TNIL ? dflt : lua_toboolean(L, -1);
    if (t != LUA_TNIL && t != LUA_TBOOLEAN)
        luaL_error(L, "%s: %s'%s' must be true or false", FILE_NAME, what, key);
    lua_pop(L, 1);
    return v;
}

static void add_rule(lua_State *L, ph_hash_rules *r, const char *path, ph_hash_kind kind, double step,
                     const char *list)
{
    ph_error err;
    if (ph_hash_rules_add(r, path, kind, step, &err) != 0)
        luaL_error(L, "%s: hash_rules.%s: %s", FILE_NAME, list, err.message);
}

/* hash_rules[list] = { "path", ... }: one rule of `kind` per path. */
static void add_paths(lua_State *L, int idx, const char *list, ph_hash_kind kind, ph_hash_rules *r)
{
    int t = ph_sb_field(L, idx, list);
    if (t == LUA_TTABLE) {
        int n = (int)luaL_len(L, -1);
        for (int i = 1; i <= n; i++) {
            if (lua_rawgeti(L, -1, i) != LUA_TSTRING)
                luaL_error(L, "%s: hash_rules.%s[%d] must be a path string", FILE_NAME, list, i);
            add_rule(L, r, lua_tostring(L, -1), kind, 0, list);
            lua_pop(L, 1);
        }
    } else if (t != LUA_TNIL) {
        luaL_error(L, "%s: hash_rules.%s must be a list of path strings", FILE_NAME, list);
    }
    lua_pop(L, 1);
}

/* hash_rules.quantise = { ["path"] = step, ... } */
static void add_quantise(lua_State *L, int idx, ph_hash_rules *r)
{
    int t = ph_sb_field(L, idx, "quantise");
    if (t == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TNUMBER)
                luaL_error(L, "%s: hash_rules.quantise takes [\"path\"] = step pairs", FILE_NAME);
            double step = lua_tonumber(L, -1);
            if (!isfinite(step) || step < 0)
                ph_sb_raisef(L, "%s: hash_rules.quantise['%s'] = %g: a step is a number >= 0", FILE_NAME,
                           lua_tostring(L, -2), step);
            add_rule(L, r, lua_tostring(L, -2), PH_HASH_QUANTISE, step, "quantise");
            lua_pop(L, 1);
        }
    } else if (t != LUA_TNIL) {
        luaL_error(L, "%s: hash_rules.quantise must be a table of [\"path\"] = step", FILE_NAME);
    }
    lua_pop(L, 1);
}

static void compile_rules(lua_State *L, int idx, ph_hash_rules *r)
{
    ph_sb_check_keys(L, idx, RULE_KEYS, FILE_NAME ": hash_rules");
    add_paths(L, idx, "ignore", PH_HASH_IGNORE, r);
    add_quantise(L, idx, r);
    add_paths(L, idx, "sets", PH_HASH_SET, r);
    add_paths(L, idx, "relative", PH_HASH_RELATIVE, r);
    int t = ph_sb_field(L, idx, "anchor");
    ph_error err;
    if (t == LUA_TSTRING && ph_hash_rules_anchor(r, lua_tostring(L, -1), &err) != 0)
        luaL_error(L, "%s: hash_rules.anchor: %s", FILE_NAME, err.message);
    if (t != LUA_TSTRING && t != LUA_TNIL)
        luaL_error(L, "%s: hash_rules.anchor must be a path string", FILE_NAME);
    lua_pop(L, 1);
}

/* Stack: the table policies/cache.lua returned. */
static int cache_trampoline(lua_State *L)
{
    ph_gen *g = ph_sb_gen(L);
    ph_cache_policy *c = &g->cache;
    if (!(c->rules = ph_hash_rules_new()))
        return luaL_error(L, "%s: out of memory", FILE_NAME);
    ph_sb_unwrap(L, 1);
    int idx = lua_gettop(L);
    ph_sb_check_keys(L, idx, CACHE_KEYS, FILE_NAME);
    c->enabled = flag(L, idx, "enabled", 1, "");
    c->coalesce = flag(L, idx, "coalesce", 1, "");
    int t = ph_sb_field(L, idx, "store");
    if (t == LUA_TTABLE) {
        int s = lua_gettop(L);
        ph_sb_check_keys(L, s, STORE_KEYS, FILE_NAME ": store");
        c->store_llm = flag(L, s, "llm", 1, "store.");
        c->store_heuristic = flag(L, s, "heuristic", 0, "store.");
    } else if (t != LUA_TNIL) {
        luaL_error(L, "%s: 'store' must be a table like { llm = true, heuristic = false }", FILE_NAME);
    }
    lua_pop(L, 1);
    if (ph_sb_field(L, idx, "hash_rules") == LUA_TTABLE)
        compile_rules(L, lua_gettop(L), c->rules);
    else if (!lua_isnil(L, -1))
        luaL_error(L, "%s: 'hash_rules' must be a table", FILE_NAME);
    lua_pop(L, 1);
    return 0;
}

int ph_cache_policy_load(ph_gen *g, ph_error *err)
{
    ph_cache_policy *c = &g->cache;
    memset(c, 0, sizeof *c);
    c->store_llm = 1;
    int rc = ph_sb_run_policy(g, "cache", cache_trampoline, FILE_NAME, err);
    if (rc <= 0)
        return rc;                 /* an error, or no policy: no cache */
    if (!c->enabled) {
        ph_hash_rules_free(c->rules);
        c->rules = NULL;
    }
    return 0;
}

void ph_cache_policy_free(ph_gen *g)
{
    ph_hash_rules_free(g->cache.rules);
    g->cache.rules = NULL;
}

const ph_cache_policy *ph_gen_cache_policy(const ph_gen *g) { return &g->cache; }

ph_hash_rules *ph_gen_hash_rules(ph_gen *g) { return g->cache.rules; }
