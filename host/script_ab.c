/* script_ab — policies/ab.lua compiled: a live A/B experiment's arms and the assignment.
 *
 * At load (only when enabled; an experiment that is off is not checked beyond its keys and
 * name): enabled, name, arms (arm name -> tier name; the tier must exist and be an LLM
 * tier), split (shares, default equal) and an optional arm(agent_id) function. Assignment
 * is stable: XXH3 of "name\0agent" picks an arm by its share, arms taken in name order, so
 * an agent keeps its arm across requests, restarts and reloads that keep name and split.
 * Part of the script adapter. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "script_internal.h"

#define FILE_NAME "policies/ab.lua"

static const char *const AB_KEYS[] = {"enabled", "name", "arms", "split", "arm", NULL};

static int by_name(const void *a, const void *b)
{
    return strcmp(((const ph_ab_arm *)a)->name, ((const ph_ab_arm *)b)->name);
}

static void read_arms(lua_State *L, int idx, ph_gen *g, ph_ab_policy *p)
{
    ph_sb_field(L, idx, "arms");
    if (!lua_istable(L, -1))
        luaL_error(L, "%s: 'arms' must be a table like { A = \"simplified\", B = \"compact\" }", FILE_NAME);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "%s: arms takes arm = \"tier name\" pairs", FILE_NAME);
        if (p->narms >= PH_AB_MAX_ARMS)
            luaL_error(L, "%s: at most %d arms", FILE_NAME, PH_AB_MAX_ARMS);
        int k = ph_gen_find_tier(g, lua_tostring(L, -1));
        if (k < 0 || g->policy.tiers[k].kind != PH_TIER_LLM)
            luaL_error(L, "%s: arm %s: '%s' is not an LLM tier of policies/tiers.lua", FILE_NAME,
                       lua_tostring(L, -2), lua_tostring(L, -1));
        ph_ab_arm *a = &p->arms[p->narms++];
        snprintf(a->name, sizeof a->name, "%s", lua_tostring(L, -2));
        a->tier = k;
        a->share = 1;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (p->narms < 1)
        luaL_error(L, "%s: 'arms' is empty", FILE_NAME);
    qsort(p->arms, (size_t)p->narms, sizeof p->arms[0], by_name);
}

static void read_split(lua_State *L, int idx, ph_ab_policy *p)
{
    ph_sb_field(L, idx, "split");
    if (lua_istable(L, -1)) {
        for (int i = 0; i < p->narms; i++) {
            lua_getfield(L, -1, p->arms[i].name);
            if (!lua_isnumber(L, -1) || !(lua_tonumber(L, -1) > 0))
                luaL_error(L, "%s: split.%s must be a positive number", FILE_NAME, p->arms[i].name);
            p->arms[i].share = lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
    } else if (!lua_isnil(L, -1)) {
        luaL_error(L, "%s: 'split' must be a table of arm = share", FILE_NAME);
    }
    lua_pop(L, 1);
}

static int ab_trampoline(lua_State *L)
{
    ph_gen *g = ph_sb_gen(L);
    ph_ab_policy *p = &g->ab;
    ph_sb_unwrap(L, 1);
    int idx = lua_gettop(L);
    ph_sb_check_keys(L, idx, AB_KEYS, FILE_NAME);
    lua_getfield(L, idx, "enabled");
    p->enabled = lua_toboolean(L, -1);
    lua_getfield(L, idx, "name");
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "%s: 'name' must be the experiment's name", FILE_NAME);
    snprintf(p->name, sizeof p->name, "%s", lua_tostring(L, -1));
    lua_pop(L, 2);
    if (!p->enabled)
        return 0;                  /* off: its arms may name tiers this tree does not have */
    read_arms(L, idx, g, p);
    read_split(L, idx, p);
    ph_sb_field(L, idx, "arm");
    if (lua_isfunction(L, -1))
        p->arm_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    else if (!lua_isnil(L, -1))
        luaL_error(L, "%s: 'arm' must be a function(agent_id)", FILE_NAME);
    return 0;
}

int ph_ab_policy_load(ph_gen *g, ph_error *err)
{
    memset(&g->ab, 0, sizeof g->ab);
    g->ab.arm_ref = LUA_NOREF;
    return ph_sb_run_policy(g, "ab", ab_trampoline, FILE_NAME, err) < 0 ? -1 : 0;
}

typedef struct arm_args {
    const char *agent;
    int arm;                   /* -1: none */
} arm_args;

static int arm_trampoline(lua_State *L)
{
    ph_gen *g = ph_sb_gen(L);
    arm_args *a = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, g->ab.arm_ref);
    lua_pushstring(L, a->agent);
    lua_call(L, 1, 1);
    if (lua_isnil(L, -1))
        return 0;
    const char *name = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    for (int i = 0; name && i < g->ab.narms; i++)
        if (strcmp(g->ab.arms[i].name, name) == 0)
            a->arm = i;
    if (a->arm < 0)
        luaL_error(L, "%s: arm() returned %s, not an arm name", FILE_NAME, name ? name : luaL_typename(L, -1));
    return 0;
}

int ph_gen_ab_arm(ph_gen *g, const char *agent, ph_error *err)
{
    const ph_ab_policy *p = &g->ab;
    if (!p->enabled || p->narms == 0)
        return -1;
    if (p->arm_ref != LUA_NOREF) {
        arm_args a = {agent, -1};
        lua_pushcfunction(g->L, arm_trampoline);
        lua_pushlightuserdata(g->L, &a);
        return ph_sb_call(g, 1, 0, FILE_NAME, err) != 0 ? -2 : a.arm;
    }
    char key[512];
    int n = snprintf(key, sizeof key, "%s%c%s", p->name, 0, agent);
    uint64_t h = XXH3_64bits(key, n < 0 ? 0 : (size_t)n < sizeof key ? (size_t)n : sizeof key - 1);
    double total = 0;
    for (int i = 0; i < p->narms; i++)
        total += p->arms[i].share;
    double u = (double)(h >> 11) / 9007199254740992.0 * total;   /* uniform in [0, total) */
    for (int i = 0; i < p->narms; i++) {
        if (u < p->arms[i].share)
            return i;
        u -= p->arms[i].share;
    }
    return p->narms - 1;
}

const ph_ab_policy *ph_gen_ab_policy(const ph_gen *g) { return &g->ab; }
