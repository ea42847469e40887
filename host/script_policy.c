/* script_policy — the tier policy (policies/tiers.lua) and the calls into it.
 *
 * At load the tiers table is checked (unknown keys are errors, templates must exist) and
 * compiled into ph_policy; chain() and on_failure() are resolved once and kept as refs. Per
 * request, chain(ctx) picks the tiers and on_failure(ctx, reason) may redirect; both get a
 * read-only ctx and their answers are checked before use. The heuristic tier calls
 * lua/heuristic.lua's plan(). Without policies/tiers.lua the chain is simplified ->
 * heuristic -> emergency. Part of the script adapter. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "script_internal.h"

static const char *const POLICY_KEYS[] = {
    "tiers", "chain", "on_failure", "provisional", "budget_ms", "circuit", "latency_window", "connect_retries",
    NULL,
};
static const char *const TIER_KEYS[] = {
    "kind", "template", "model", "endpoint", "max_tokens", "schema", "first_byte_ms", "total_ms", "accept_partial",
    "min_partial_steps", "options", NULL,
};
static const char *const VALIDATE_KEYS[] = {
    "bounds", "max_duration", "max_radius", "max_distance", "max_steps", "validate", NULL,
};
static const char *const BOUNDS_KEYS[] = {"min_x", "min_y", "max_x", "max_y", NULL};
static const char *const CIRCUIT_KEYS[] = {
    "window", "min_requests", "open_ratio", "cooldown_ms", "close_after", "health_check", NULL,
};

#define FILE_NAME "policies/tiers.lua"


static double num(lua_State *L, int idx, const char *key, double lo, double hi, double dflt, const char *what)
{
    int t = ph_sb_field(L, idx, key);
    double v = dflt;
    if (t == LUA_TNUMBER)
        v = lua_tonumber(L, -1);
    else if (t != LUA_TNIL)
        luaL_error(L, "%s: %s: '%s' must be a number", FILE_NAME, what, key);
    if (!(v >= lo && v <= hi))
        ph_sb_raisef(L, "%s: %s: '%s' = %g is out of range [%g, %g]", FILE_NAME, what, key, v, lo, hi);
    lua_pop(L, 1);
    return v;
}

static int flag(lua_State *L, int idx, const char *key, int dflt)
{
    int t = ph_sb_field(L, idx, key);
    int v = t == LUA_TNIL ? dflt : lua_toboolean(L, -1);
    if (t != LUA_TNIL && t != LUA_TBOOLEAN)
        luaL_error(L, "%s: '%s' must be true or false", FILE_NAME, key);
    lua_pop(L, 1);
    return v;
}

static ph_tier_kind tier_kind(lua_State *L, int idx, const char *name)
{
    if (ph_sb_field(L, idx, "kind") != LUA_TSTRING)
        luaL_error(L, "%s: tier %s needs kind = \"llm\", \"heuristic\" or \"emergency\"", FILE_NAME, name);
    const char *k = lua_tostring(L, -1);
    ph_tier_kind kind = strcmp(k, "llm") == 0 ? PH_TIER_LLM
                      : strcmp(k, "heuristic") == 0 ? PH_TIER_HEURISTIC
                      : strcmp(k, "emergency") == 0 ? PH_TIER_EMERGENCY : (ph_tier_kind)-1;
    if ((int)kind < 0)
        luaL_error(L, "%s: tier %s: unknown kind '%s'", FILE_NAME, name, k);
    lua_pop(L, 1);
    return kind;
}

static void compile_tier(lua_State *L, ph_gen *g, int idx, ph_tier *t)
{
    char what[160];
    snprintf(what, sizeof what, "%s: tier %s", FILE_NAME, t->name);
    ph_sb_check_keys(L, idx, TIER_KEYS, what);
    snprintf(what, sizeof what, "tier %s", t->name);
    t->kind = tier_kind(L, idx, t->name);
    t->tmpl = -1;
    if (t->kind == PH_TIER_LLM) {
        if (ph_sb_field(L, idx, "template") != LUA_TSTRING)
            luaL_error(L, "%s: %s: an llm tier needs a template name", FILE_NAME, what);
        const ph_template *tp = ph_gen_find_template(g, lua_tostring(L, -1));
        if (!tp)
            luaL_error(L, "%s: %s: no template '%s' in prompts/", FILE_NAME, what, lua_tostring(L, -1));
        t->tmpl = (int)(tp - g->templates);
        lua_pop(L, 1);
    }
    t->first_byte_ms = (long)num(L, idx, "first_byte_ms", 0, 600000, 0, what);
    t->total_ms = (long)num(L, idx, "total_ms", 0, 600000, 0, what);
    t->accept_partial = flag(L, idx, "accept_partial", 1);
    t->min_partial_steps = (int)num(L, idx, "min_partial_steps", 1, 64, 1, what);
    t->max_tokens = (long)num(L, idx, "max_tokens", -1, 1e6, -1, what);
    t->schema = ph_sb_field(L, idx, "schema") == LUA_TNIL ? -1 : lua_toboolean(L, -1);
    lua_pop(L, 1);
    char where[200];
    snprintf(where, sizeof where, "%s: tier %s", FILE_NAME, t->name);
    ph_read_model_options(L, idx, &t->options, where);
    int mt = ph_sb_field(L, idx, "model");
    if (mt == LUA_TSTRING)
        t->model = strdup(lua_tostring(L, -1));
    else if (mt != LUA_TNIL)
        luaL_error(L, "%s: %s: 'model' must be a string", FILE_NAME, what);
    lua_pop(L, 1);
    mt = ph_sb_field(L, idx, "endpoint");
    if (mt == LUA_TSTRING)
        t->endpoint = strdup(lua_tostring(L, -1));
    else if (mt != LUA_TNIL)
        luaL_error(L, "%s: %s: 'endpoint' must be an endpoint group name", FILE_NAME, what);
    lua_pop(L, 1);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(((const ph_tier *)a)->name, ((const ph_tier *)b)->name);
}

/* Adds the built-in heuristic and emergency tiers when the policy does not define them. */
static void add_builtin(ph_policy *p, const char *name, ph_tier_kind kind)
{
    for (int i = 0; i < p->ntiers; i++)
        if (strcmp(p->tiers[i].name, name) == 0)
            return;
    p->tiers[p->ntiers++] = ph_tier_default(strdup(name), kind, -1);
}

static void compile_tiers(lua_State *L, ph_gen *g, int idx)
{
    ph_policy *p = &g->policy;
    int n = 0;
    if (ph_sb_field(L, idx, "tiers") == LUA_TTABLE)
        for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1))
            n++;
    else if (!lua_isnil(L, -1))
        luaL_error(L, "%s: 'tiers' must be a table of name = tier", FILE_NAME);
    p->tiers = calloc((size_t)n + 2, sizeof *p->tiers);
    if (!p->tiers)
        luaL_error(L, "out of memory");
    int t = lua_gettop(L);
    for (lua_pushnil(L); n && lua_next(L, t); lua_pop(L, 1)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "%s: tier names must be strings", FILE_NAME);
        ph_sb_unwrap(L, -1);
        if (!lua_istable(L, -1))
            luaL_error(L, "%s: tier %s must be a table", FILE_NAME, lua_tostring(L, -3));
        ph_tier *tier = &p->tiers[p->ntiers++];
        tier->name = strdup(lua_tostring(L, -3));
        compile_tier(L, g, lua_gettop(L), tier);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    add_builtin(p, "heuristic", PH_TIER_HEURISTIC);
    add_builtin(p, "emergency", PH_TIER_EMERGENCY);
    qsort(p->tiers, (size_t)p->ntiers, sizeof *p->tiers, cmp_names);
}

static void compile_circuit(lua_State *L, int idx, ph_circuit_policy *c)
{
    int t = ph_sb_field(L, idx, "circuit");
    if (t == LUA_TTABLE) {
        int ci = lua_gettop(L);
        ph_sb_check_keys(L, ci, CIRCUIT_KEYS, FILE_NAME ": circuit");
        c->window = (int)num(L, ci, "window", 1, 1000, c->window, "circuit");
        c->min_requests = (int)num(L, ci, "min_requests", 1, 1000, c->min_requests, "circuit");
        c->open_ratio = num(L, ci, "open_ratio", 0.01, 1, c->open_ratio, "circuit");
        c->cooldown_ms = (long)num(L, ci, "cooldown_ms", 0, 3600000, (double)c->cooldown_ms, "circuit");
        c->close_after = (int)num(L, ci, "close_after", 1, 1000, c->close_after, "circuit");
        c->health_check = flag(L, ci, "health_check", c->health_check);
    } else if (t != LUA_TNIL) {
        luaL_error(L, "%s: 'circuit' must be a table", FILE_NAME);
    }
    lua_pop(L, 1);
}

static int ref_function(lua_State *L, int idx, const char *key, int required)
{
    int t = ph_sb_field(L, idx, key);
    if (t == LUA_TFUNCTION)
        return luaL_ref(L, LUA_REGISTRYINDEX);
    if (t != LUA_TNIL || required)
        luaL_error(L, "%s: '%s' must be a function", FILE_NAME, key);
    lua_pop(L, 1);
    return LUA_NOREF;
}

/* provisional = true | false | function(ctx) -> boolean */
static void compile_provisional(lua_State *L, int idx, ph_policy *p)
{
    int t = ph_sb_field(L, idx, "provisional");
    if (t == LUA_TFUNCTION) {
        p->provisional_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        return;
    }
    if (t != LUA_TNIL && t != LUA_TBOOLEAN)
        luaL_error(L, "%s: 'provisional' must be true, false or a function(ctx), not %s", FILE_NAME,
                   lua_typename(L, t));
    p->provisional = lua_toboolean(L, -1);
    lua_pop(L, 1);
}

/* Stack: the policy table. */
static int policy_trampoline(lua_State *L)
{
    ph_gen *g = ph_sb_gen(L);
    ph_policy *p = &g->policy;
    ph_sb_unwrap(L, 1);
    int idx = lua_gettop(L);
    ph_sb_check_keys(L, idx, POLICY_KEYS, FILE_NAME);
    compile_tiers(L, g, idx);
    p->budget_ms = (int)num(L, idx, "budget_ms", 1, 600000, p->budget_ms, "policy");
    p->latency_window = (int)num(L, idx, "latency_window", 1, 10000, p->latency_window, "policy");
    p->connect_retries = (int)num(L, idx, "connect_retries", 0, 10, p->connect_retries, "policy");
    compile_circuit(L, idx, &p->circuit);
    p->chain_ref = ref_function(L, idx, "chain", 1);
    p->on_failure_ref = ref_function(L, idx, "on_failure", 0);
    compile_provisional(L, idx, p);
    return 0;
}

static void policy_defaults(ph_policy *p)
{
    memset(p, 0, sizeof *p);
    p->budget_ms = 3000;
    p->latency_window = 50;
    p->connect_retries = 1;
    p->circuit = (ph_circuit_policy){20, 5, 2, 0.5, 5000, 1};
    p->limits = ph_validate_limits_default();
    p->chain_ref = p->on_failure_ref = p->validate_ref = p->provisional_ref = LUA_NOREF;
}

/* Without policies/tiers.lua: the default tiers over whatever templates exist. */
static void default_tiers(ph_gen *g)
{
    ph_policy *p = &g->policy;
    p->tiers = calloc((size_t)g->ntemplates + 2, sizeof *p->tiers);
    for (int i = 0; p->tiers && i < g->ntemplates; i++) {
        if (g->templates[i].batch)
            continue;
        p->tiers[p->ntiers++] = ph_tier_default(strdup(g->templates[i].name), PH_TIER_LLM, i);
    }
    if (p->tiers) {
        add_builtin(p, "heuristic", PH_TIER_HEURISTIC);
        add_builtin(p, "emergency", PH_TIER_EMERGENCY);
        qsort(p->tiers, (size_t)p->ntiers, sizeof *p->tiers, cmp_names);
    }
}

#define VALIDATE_FILE "policies/validate.lua"

static void compile_bounds(lua_State *L, int idx, ph_validate_limits *lim)
{
    if (ph_sb_field(L, idx, "bounds") == LUA_TTABLE) {
        int b = lua_gettop(L);
        ph_sb_check_keys(L, b, BOUNDS_KEYS, VALIDATE_FILE ": bounds");
        lim->min_x = (int)num(L, b, "min_x", -1e9, 1e9, lim->min_x, "bounds");
        lim->min_y = (int)num(L, b, "min_y", -1e9, 1e9, lim->min_y, "bounds");
        lim->max_x = (int)num(L, b, "max_x", -1e9, 1e9, lim->max_x, "bounds");
        lim->max_y = (int)num(L, b, "max_y", -1e9, 1e9, lim->max_y, "bounds");
        if (lim->min_x > lim->max_x || lim->min_y > lim->max_y)
            luaL_error(L, "%s: bounds: min is above max", VALIDATE_FILE);
    } else if (!lua_isnil(L, -1)) {
        luaL_error(L, "%s: 'bounds' must be a table", VALIDATE_FILE);
    }
    lua_pop(L, 1);
}

/* Stack: the table policies/validate.lua returned. */
static int validate_trampoline(lua_State *L)
{
    ph_gen *g = ph_sb_gen(L);
    ph_validate_limits *lim = &g->policy.limits;
    ph_sb_unwrap(L, 1);
    int idx = lua_gettop(L);
    ph_sb_check_keys(L, idx, VALIDATE_KEYS, VALIDATE_FILE);
    compile_bounds(L, idx, lim);
    lim->max_duration = num(L, idx, "max_duration", 0.001, 86400, lim->max_duration, "limits");
    lim->max_radius = num(L, idx, "max_radius", 0.001, 1e6, lim->max_radius, "limits");
    lim->max_distance = num(L, idx, "max_distance", 0.001, 1e6, lim->max_distance, "limits");
    lim->max_steps = (int)num(L, idx, "max_steps", 1, 64, lim->max_steps, "limits");
    g->policy.validate_ref = ref_function(L, idx, "validate", 0);
    return 0;
}

int ph_tier_policy_load(ph_gen *g, ph_error *err)
{
    policy_defaults(&g->policy);
    if (ph_sb_run_policy(g, "validate", validate_trampoline, VALIDATE_FILE, err) < 0)
        return -1;
    int rc = ph_sb_run_policy(g, "tiers", policy_trampoline, FILE_NAME, err);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    default_tiers(g);
    return g->policy.tiers ? 0 : ph_error_set(err, PH_ERR_MEMORY, "out of memory");
}

void ph_tier_policy_free(ph_gen *g)
{
    for (int i = 0; i < g->policy.ntiers; i++) {
        for (int s = 0; s < g->policy.tiers[i].options.nstop; s++)
            free(g->policy.tiers[i].options.stop[s]);
        free(g->policy.tiers[i].options.stop);
        free(g->policy.tiers[i].name);
        free(g->policy.tiers[i].model);
        free(g->policy.tiers[i].endpoint);
    }
    free(g->policy.tiers);
    g->policy.tiers = NULL;
    g->policy.ntiers = 0;
}

const ph_policy *ph_gen_policy(const ph_gen *g) { return &g->policy; }

int ph_gen_find_tier(const ph_gen *g, const char *name)
{
    for (int i = 0; i < g->policy.ntiers; i++)
        if (strcmp(g->policy.tiers[i].name, name) == 0)
            return i;
    return -1;
}

/* ---- per request --------------------------------------------------------------------- */

typedef struct call_args {
    const ph_chain_ctx *ctx;
    const char *reason;          /* on_failure */
    int *out;                    /* chain */
    int max, n;
    int action;                  /* on_failure */
    char json_error[256];
} call_args;

/* Pushes the read-only ctx table. Raises on a malformed snapshot or game object. */
static void push_ctx(lua_State *L, ph_gen *g, call_args *a)
{
    const ph_chain_ctx *c = a->ctx;
    lua_createtable(L, 0, 5);
    if (ph_sb_push_snapshot(L, g, c->snapshot, c->snapshot_len, a->json_error, sizeof a->json_error) != 0)
        luaL_error(L, "snapshot: %s", a->json_error);
    lua_setfield(L, -2, "snapshot");
    if (c->game && ph_sb_push_json(L, &g->json, c->game, strlen(c->game), a->json_error, sizeof a->json_error) != 0)
        luaL_error(L, "game context: %s", a->json_error);
    if (!c->game)
        lua_newtable(L);
    lua_setfield(L, -2, "game");
    lua_pushinteger(L, c->budget_ms);
    lua_setfield(L, -2, "budget_ms");
    lua_createtable(L, 0, g->policy.ntiers);
    for (int i = 0; i < g->policy.ntiers; i++) {
        lua_createtable(L, 0, 3);
        if (c->median && !isnan(c->median[i]))
            lua_pushnumber(L, c->median[i]), lua_setfield(L, -2, "median");
        if (c->p95 && !isnan(c->p95[i]))
            lua_pushnumber(L, c->p95[i]), lua_setfield(L, -2, "p95");
        lua_pushinteger(L, c->samples ? c->samples[i] : 0);
        lua_setfield(L, -2, "n");
        lua_setfield(L, -2, g->policy.tiers[i].name);
    }
    lua_setfield(L, -2, "latency");
    lua_createtable(L, 0, c->ncircuits);
    for (int i = 0; i < c->ncircuits; i++) {
        lua_pushstring(L, c->circuit_states[i]);
        lua_setfield(L, -2, c->circuit_names[i]);
    }
    lua_setfield(L, -2, "circuits");
    ph_sb_freeze(L, -1);
    lua_remove(L, -2);
}

static int tier_of(lua_State *L, ph_gen *g, int idx, const char *what)
{
    if (lua_type(L, idx) != LUA_TSTRING)
        luaL_error(L, "%s: %s must be a tier name, not %s", FILE_NAME, what, luaL_typename(L, idx));
    int k = ph_gen_find_tier(g, lua_tostring(L, idx));
    if (k < 0)
        luaL_error(L, "%s: %s names no tier: '%s'", FILE_NAME, what, lua_tostring(L, idx));
    return k;
}

/* A trampoline's start: pushes the policy function `ref` and the ctx from the call's args
 * (stack slot 1), which it returns. */
static call_args *push_policy_call(lua_State *L, ph_gen *g, int ref)
{
    call_args *a = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    push_ctx(L, g, a);
    return a;
}

static int chain_trampoline(lua_State *L)
{
    ph_gen *g = ph_sb_gen(L);
    call_args *a = push_policy_call(L, g, g->policy.chain_ref);
    lua_call(L, 1, 1);
    ph_sb_unwrap(L, -1);
    if (!lua_istable(L, -1))
        luaL_error(L, "%s: chain() must return a list of tier names, not %s", FILE_NAME, luaL_typename(L, -1));
    int n = (int)lua_rawlen(L, -1);
    if (n < 1 || n > a->max)
        luaL_error(L, "%s: chain() returned %d tiers (1 to %d allowed)", FILE_NAME, n, a->max);
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        a->out[a->n++] = tier_of(L, g, -1, "chain() entry");
        lua_pop(L, 1);
    }
    return 0;
}

/* The chain without a chain() function: simplified (when it exists), heuristic, emergency. */
static int default_chain(ph_gen *g, int *out, int max)
{
    static const char *const names[] = {"simplified", "heuristic", "emergency"};
    int n = 0;
    for (int i = 0; i < 3 && n < max; i++) {
        int k = ph_gen_find_tier(g, names[i]);
        if (k >= 0)
            out[n++] = k;
    }
    return n;
}

int ph_gen_chain(ph_gen *g, const ph_chain_ctx *ctx, int *out, int max, ph_error *err)
{
    if (g->policy.chain_ref == LUA_NOREF)
        return default_chain(g, out, max);
    call_args a = {ctx, NULL, out, max, 0, 0, ""};
    lua_pushcfunction(g->L, chain_trampoline);
    lua_pushlightuserdata(g->L, &a);
    if (ph_sb_call(g, 1, 0, FILE_NAME, err) != 0)
        return -1;
    return a.n;
}

static int failure_trampoline(lua_State *L)
{
    ph_gen *g = ph_sb_gen(L);
    call_args *a = push_policy_call(L, g, g->policy.on_failure_ref);
    lua_pushstring(L, a->reason);
    lua_call(L, 2, 1);
    if (lua_isnil(L, -1))
        a->action = -1;
    else if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "stop") == 0)
        a->action = -2;
    else
        a->action = tier_of(L, g, -1, "on_failure()'s answer");
    return 0;
}

int ph_gen_on_failure(ph_gen *g, const ph_chain_ctx *ctx, const char *reason, ph_error *err)
{
    if (g->policy.on_failure_ref == LUA_NOREF)
        return -1;
    call_args a = {ctx, reason, NULL, 0, 0, -1, ""};
    lua_pushcfunction(g->L, failure_trampoline);
    lua_pushlightuserdata(g->L, &a);
    if (ph_sb_call(g, 1, 0, FILE_NAME, err) != 0)
        return -3;
    return a.action;
}

static int provisional_trampoline(lua_State *L)
{
    ph_gen *g = ph_sb_gen(L);
    call_args *a = push_policy_call(L, g, g->policy.provisional_ref);
    lua_call(L, 1, 1);
    if (!lua_isboolean(L, -1))
        luaL_error(L, "%s: provisional() must return true or false, not %s", FILE_NAME, luaL_typename(L, -1));
    a->action = lua_toboolean(L, -1);
    return 0;
}

int ph_gen_may_provisional(const ph_gen *g)
{
    return g->policy.provisional || g->policy.provisional_ref != LUA_NOREF;
}

int ph_gen_provisional(ph_gen *g, const ph_chain_ctx *ctx, ph_error *err)
{
    if (g->policy.provisional_ref == LUA_NOREF)
        return g->policy.provisional;
    call_args a = {ctx, NULL, NULL, 0, 0, 0, ""};
    lua_pushcfunction(g->L, provisional_trampoline);
    lua_pushlightuserdata(g->L, &a);
    if (ph_sb_call(g, 1, 0, FILE_NAME, err) != 0)
        return -1;
    return a.action;
}

typedef struct heur_args {
    const char *snapshot;
    size_t len;
    const ph_template *t;
    char json_error[256];
} heur_args;

/* Stack: args. Pushes the plan's JSON text. */
static int heuristic_trampoline(lua_State *L)
{
    ph_gen *g = ph_sb_gen(L);
    heur_args *a = lua_touserdata(L, 1);
    lua_settop(L, 1);
    luaL_checkstack(L, 8, "heuristic");
    lua_rawgeti(L, LUA_REGISTRYINDEX, g->base_ref);   /* base: its require */
    lua_getfield(L, -1, "require");
    lua_pushliteral(L, "json");
    lua_call(L, 1, 1);                                /* args base json */
    lua_getfield(L, -1, "encode");                    /* args base json encode */
    lua_getfield(L, 2, "require");
    lua_pushliteral(L, "heuristic");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "plan");                      /* ... encode heuristic plan */
    if (ph_sb_push_json(L, &g->json, a->snapshot, a->len, a->json_error, sizeof a->json_error) != 0)
        luaL_error(L, "snapshot: %s", a->json_error);
    lua_createtable(L, 0, 1);
    if (a->t) {
        lua_createtable(L, a->t->ntools, 0);
        for (int i = 0; i < a->t->ntools; i++)
            lua_pushstring(L, g->registry->tools[a->t->tools[i]].name), lua_rawseti(L, -2, i + 1);
        lua_setfield(L, -2, "tools");
    }
    lua_call(L, 2, 1);                                /* ... encode heuristic result */
    lua_remove(L, -2);
    lua_call(L, 1, 1);                                /* args base json text */
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "lua/heuristic.lua: the plan did not encode to JSON text");
    return 1;
}

int ph_gen_heuristic(ph_gen *g, const char *snapshot, size_t len, const ph_template *t,
                     ph_buf *out, ph_error *err)
{
    if (!ph_tree_find(&g->tree, "lua/heuristic.lua"))
        return ph_error_set(err, PH_ERR_NOTFOUND, "lua/heuristic.lua: the heuristic planner is missing");
    heur_args a = {snapshot, len, t, ""};
    lua_pushcfunction(g->L, heuristic_trampoline);
    lua_pushlightuserdata(g->L, &a);
    if (ph_sb_call(g, 1, 1, "lua/heuristic.lua", err) != 0)
        return -1;
    size_t n;
    const char *s = lua_tolstring(g->L, -1, &n);
    int rc = ph_buf_add(out, s, n);
    lua_pop(g->L, 1);
    return rc == 0 ? 0 : ph_error_set(err, PH_ERR_LIMIT, "lua/heuristic.lua: plan too large");
}

/* ---- the validate hook --------------------------------------------------------------- */

typedef struct hook_args {
    const char *step, *snapshot;
    size_t step_len, snapshot_len;
    char *reason;
    size_t reason_size;
    int ok;
    char json_error[256];
} hook_args;

static int hook_trampoline(lua_State *L)
{
    ph_gen *g = ph_sb_gen(L);
    hook_args *a = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, g->policy.validate_ref);
    if (ph_sb_push_json(L, &g->json, a->step, a->step_len, a->json_error, sizeof a->json_error) != 0 ||
        ph_sb_push_snapshot(L, g, a->snapshot, a->snapshot_len, a->json_error, sizeof a->json_error) != 0)
        luaL_error(L, "%s", a->json_error);
    lua_call(L, 2, 2);
    if (lua_type(L, -2) != LUA_TBOOLEAN)
        luaL_error(L, "%s: validate() must return true, or false and a reason, not %s", VALIDATE_FILE,
                   luaL_typename(L, -2));
    a->ok = lua_toboolean(L, -2);
    const char *why = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "refused by " VALIDATE_FILE;
    if (!a->ok)
        snprintf(a->reason, a->reason_size, "%s", why);
    return 0;
}

int ph_gen_has_validate_hook(const ph_gen *g)
{
    return g->policy.validate_ref != LUA_NOREF;
}

int ph_gen_validate_hook(ph_gen *g, const char *step, size_t step_len, const char *snapshot,
                         size_t snapshot_len, char *reason, size_t reason_size, ph_error *err)
{
    if (g->policy.validate_ref == LUA_NOREF)
        return 1;
    hook_args a = {step, snapshot, step_len, snapshot_len, reason, reason_size, 1, ""};
    lua_pushcfunction(g->L, hook_trampoline);
    lua_pushlightuserdata(g->L, &a);
    if (ph_sb_call(g, 1, 0, VALIDATE_FILE, err) != 0)
        return -1;
    return a.ok;
}
