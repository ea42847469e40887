/* sim_lua — the simulator's Lua: latency profiles (examples/sim/profiles.lua) and the model
 * script (examples/sim/model.lua) that writes the answers. The one sim file with lua.h.
 *
 * The model script has its own lua_State with the standard libraries (it is a developer
 * tool, not sandboxed) and a module `sim` (require "sim"): sim.json_end(text, init) -> the
 * index of the last byte of the JSON value that starts at `init` (after blanks), or nil.
 * Contract (also in examples/sim/README.md):
 *
 *   return { answer = function(req) ... return text end,
 *            config = { misbehave = { fence = 0, prose = 0, ... } } }   -- config optional
 *   req = { api, path, model, system, prompt, stream, schema, seed (nil unless the request
 *           set one), n (arrival number), rng (integer for math.randomseed),
 *           options = { <wire name> = number, ..., stop = { ... } },
 *           misbehave = { name = rate } (the script's rates, after --misbehave and the
 *           request's X-Sim-Misbehave header) }
 *
 * A script that returns nothing may define a global function answer instead. Every call is
 * protected, has a traceback, and stops after MODEL_TIME_LIMIT seconds; one call at a time. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonstream.h"
#include "sim.h"

#define MODEL_TIME_LIMIT 2.0
#define MAX_RATES 16
#define MAX_PROFILES 64

typedef struct rate {
    char name[32];
    double value;
} rate;

struct sim_lua {
    lua_State *L;
    pthread_mutex_t mu;
    int answer_ref;
    rate rates[MAX_RATES];
    int nrates;
    double deadline;            /* of the call in progress */
};

/* ---- protected calls ------------------------------------------------------------------- */

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg ? msg : luaL_tolstring(L, 1, NULL), 1);
    return 1;
}

static void time_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    sim_lua *m = *(sim_lua **)lua_getextraspace(L);
    if (m && m->deadline > 0 && sim_now() > m->deadline)
        luaL_error(L, "model script ran for more than %d s", (int)MODEL_TIME_LIMIT);
}

/* Stack: function, nargs arguments. Leaves nresults results, or fills `err` and leaves
 * nothing. The message keeps Lua's "file:line:"; the traceback goes to err->traceback. */
static int pcall(lua_State *L, int nargs, int nresults, ph_error *err)
{
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    int rc = lua_pcall(L, nargs, nresults, base);
    lua_remove(L, base);
    if (rc == LUA_OK)
        return 0;
    const char *full = lua_tostring(L, -1);
    const char *nl = full ? strchr(full, '\n') : NULL;
    ph_error_set(err, PH_ERR_RUNTIME, "%.*s", nl ? (int)(nl - full) : 1000, full ? full : "error");
    if (err && full)
        snprintf(err->traceback, sizeof err->traceback, "%s", full);
    lua_pop(L, 1);
    return -1;
}

/* ---- profiles -------------------------------------------------------------------------- */

static const char *const profile_keys[] = {"prefill_tps", "decode_tps", "load_s", "jitter",
                                           "chars_per_token", "overhead_ms", "batch_penalty", NULL};

static double *profile_field(sim_profile *p, int i)
{
    double *fields[] = {&p->prefill_tps, &p->decode_tps, &p->load_s, &p->jitter,
                        &p->chars_per_token, &p->overhead_ms, &p->batch_penalty};
    return fields[i];
}

/* Reads the profile table at the top of the stack into `p`. */
static int read_profile(lua_State *L, const char *name, sim_profile *p, ph_error *err)
{
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->chars_per_token = 4;
    for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1)) {
        const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
        int i = 0;
        while (profile_keys[i] && strcmp(profile_keys[i], key) != 0)
            i++;
        if (strcmp(key, "desc") == 0)
            continue;
        if (!profile_keys[i])
            return lua_pop(L, 2), ph_error_set(err, PH_ERR_CONTRACT, "profile %s: unknown key '%s'", name, key);
        if (!lua_isnumber(L, -1) || !(lua_tonumber(L, -1) >= 0) || !isfinite(lua_tonumber(L, -1)))
            return lua_pop(L, 2),
                   ph_error_set(err, PH_ERR_CONTRACT, "profile %s: %s must be a finite number >= 0", name, key);
        *profile_field(p, i) = lua_tonumber(L, -1);
    }
    if (p->jitter > 1 || p->chars_per_token <= 0 || p->chars_per_token > 1000)
        return ph_error_set(err, PH_ERR_CONTRACT, "profile %s: jitter must be <= 1, chars_per_token in (0, 1000]",
                            name);
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* "unknown profile 'x' (known: a, b, c)" from the table at the top of the stack. */
static int unknown_profile(lua_State *L, const char *file, const char *name, ph_error *err)
{
    const char *names[MAX_PROFILES];
    int n = 0;
    for (lua_pushnil(L); lua_next(L, -2) && n < MAX_PROFILES; lua_pop(L, 1))
        if (lua_type(L, -2) == LUA_TSTRING)
            names[n++] = lua_tostring(L, -2);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    char list[1024] = "";
    for (int i = 0, at = 0; i < n && at < (int)sizeof list; i++)
        at += snprintf(list + at, sizeof list - (size_t)at, "%s%s", i ? ", " : "", names[i]);
    return ph_error_set(err, PH_ERR_NOTFOUND, "%s: unknown profile '%s' (known: %s)", file, name, list);
}

int sim_profile_load(const char *file, const char *name, sim_profile *out, ph_error *err)
{
    lua_State *L = luaL_newstate();
    if (!L)
        return ph_error_set(err, PH_ERR_MEMORY, "out of memory");
    luaL_openlibs(L);
    int rc = -1;
    if (luaL_loadfilex(L, file, "t") != LUA_OK) {
        ph_error_set(err, PH_ERR_SYNTAX, "%s", lua_tostring(L, -1));
    } else if (pcall(L, 0, 1, err) == 0) {
        if (!lua_istable(L, -1))
            ph_error_set(err, PH_ERR_CONTRACT, "%s must return a table of profiles", file);
        else if (lua_getfield(L, -1, name) != LUA_TTABLE)
            lua_pop(L, 1), unknown_profile(L, file, name, err);
        else
            rc = read_profile(L, name, out, err);
    }
    lua_close(L);
    return rc;
}

/* ---- the sim module ---------------------------------------------------------------------- */

/* sim.json_end(text [, init]) -> index of the value's last byte, or nil */
static int l_json_end(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    lua_Integer init = luaL_optinteger(L, 2, 1);
    if (init < 1 || (size_t)init > len)
        return lua_pushnil(L), 1;
    ph_json_config cfg = {PH_JSON_ALLOW_TRAILING_GARBAGE, 64, SIM_MAX_BODY};
    ph_json *j = ph_json_new(&cfg, NULL, NULL);
    size_t used = 0;
    ph_json_status st = j ? ph_json_feed(j, s + init - 1, len - (size_t)init + 1, &used) : PH_JSON_ERROR;
    if (st == PH_JSON_OK && ph_json_finish(j) == PH_JSON_OK)
        st = PH_JSON_COMPLETE, used = len - (size_t)init + 1;
    ph_json_free(j);
    if (st != PH_JSON_COMPLETE)
        return lua_pushnil(L), 1;
    lua_pushinteger(L, init - 1 + (lua_Integer)used);
    return 1;
}

static int luaopen_sim(lua_State *L)
{
    static const luaL_Reg fns[] = {{"json_end", l_json_end}, {NULL, NULL}};
    luaL_newlib(L, fns);
    lua_pushstring(L, SIM_VERSION);
    lua_setfield(L, -2, "version");
    return 1;
}

/* ---- misbehave rates --------------------------------------------------------------------- */

/* Applies "name=rate,name=rate" to `rates` (names must be there already). */
static int apply_rates(rate *rates, int n, const char *spec, ph_error *err)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", spec);
    char *save = NULL;
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '='), *end = NULL;
        double v = eq ? strtod(eq + 1, &end) : -1;
        if (!eq || end == eq + 1 || *end || v < 0 || v > 1)
            return ph_error_set(err, PH_ERR_ARG, "misbehave '%s': want name=rate, rate from 0 to 1", item);
        *eq = '\0';
        int i = 0;
        while (i < n && strcmp(rates[i].name, item) != 0)
            i++;
        if (i == n) {
            char known[400] = "";
            for (int k = 0, at = 0; k < n && at < (int)sizeof known; k++)
                at += snprintf(known + at, sizeof known - (size_t)at, "%s%s", k ? ", " : "", rates[k].name);
            return ph_error_set(err, PH_ERR_ARG, "misbehave: unknown kind '%s' (known: %s)", item, known);
        }
        rates[i].value = v;
    }
    return 0;
}

static int cmp_rate(const void *a, const void *b) { return strcmp(((const rate *)a)->name, ((const rate *)b)->name); }

/* Reads config.misbehave from the module table at the top of the stack (left as it was). */
static int read_rates(sim_lua *m, ph_error *err)
{
    lua_State *L = m->L;
    int top = lua_gettop(L), rc = 0;
    if (lua_getfield(L, -1, "config") == LUA_TTABLE && lua_getfield(L, -1, "misbehave") == LUA_TTABLE) {
        for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1)) {
            double v = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : -1;
            if (lua_type(L, -2) != LUA_TSTRING || !(v >= 0 && v <= 1) || m->nrates >= MAX_RATES) {
                rc = ph_error_set(err, PH_ERR_CONTRACT,
                                  "model script: config.misbehave must map names to rates in [0, 1]");
                break;
            }
            rate *r = &m->rates[m->nrates++];
            snprintf(r->name, sizeof r->name, "%s", lua_tostring(L, -2));
            r->value = v;
        }
    }
    lua_settop(L, top);
    qsort(m->rates, (size_t)m->nrates, sizeof *m->rates, cmp_rate);   /* stable messages */
    return rc;
}

/* ---- the model script -------------------------------------------------------------------- */

static void set_path(lua_State *L, const char *lua_dir)
{
    if (!lua_dir)
        return;
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s/?.lua;%s", lua_dir, lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 2);
}

/* Runs the script and keeps its answer function. Stack: unchanged. */
static int load_script(sim_lua *m, const char *file, ph_error *err)
{
    lua_State *L = m->L;
    if (luaL_loadfilex(L, file, "t") != LUA_OK) {
        ph_error_set(err, PH_ERR_SYNTAX, "%s", lua_tostring(L, -1));
        return lua_pop(L, 1), -1;
    }
    m->deadline = sim_now() + MODEL_TIME_LIMIT;
    if (pcall(L, 0, 1, err) != 0)
        return -1;
    if (lua_istable(L, -1) && read_rates(m, err) != 0)
        return lua_pop(L, 1), -1;
    if (lua_istable(L, -1))
        lua_getfield(L, -1, "answer");
    else
        lua_getglobal(L, "answer");
    if (!lua_isfunction(L, -1)) {
        lua_pop(L, 2);
        return ph_error_set(err, PH_ERR_CONTRACT, "%s: return a table with answer(req), or define answer", file);
    }
    m->answer_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
    return 0;
}

sim_lua *sim_lua_open(const char *file, const char *lua_dir, const char *misbehave, ph_error *err)
{
    sim_lua *m = calloc(1, sizeof *m);
    if (!m || !(m->L = luaL_newstate())) {
        free(m);
        return ph_error_set(err, PH_ERR_MEMORY, "out of memory"), NULL;
    }
    pthread_mutex_init(&m->mu, NULL);
    *(sim_lua **)lua_getextraspace(m->L) = m;
    luaL_openlibs(m->L);
    luaL_requiref(m->L, "sim", luaopen_sim, 0);
    lua_pop(m->L, 1);
    set_path(m->L, lua_dir);
    lua_sethook(m->L, time_hook, LUA_MASKCOUNT, 10000);
    if (load_script(m, file, err) != 0 || (misbehave && apply_rates(m->rates, m->nrates, misbehave, err) != 0)) {
        sim_lua_close(m);
        return NULL;
    }
    return m;
}

void sim_lua_close(sim_lua *m)
{
    if (!m)
        return;
    lua_close(m->L);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static void set_str(lua_State *L, const char *key, const ph_buf *b)
{
    lua_pushlstring(L, b->data ? b->data : "", b->len);
    lua_setfield(L, -2, key);
}

static void push_options(lua_State *L, const sim_request *r)
{
    lua_createtable(L, 0, r->nopts + 1);
    for (int i = 0; i < r->nopts; i++) {
        double v = r->opts[i].value;
        if (fabs(v) < 9007199254740992.0 && v == floor(v))
            lua_pushinteger(L, (lua_Integer)v);
        else
            lua_pushnumber(L, v);
        lua_setfield(L, -2, r->opts[i].name);
    }
    lua_createtable(L, r->nstop, 0);
    for (int i = 0; i < r->nstop; i++)
        lua_pushstring(L, r->stop[i]), lua_rawseti(L, -2, i + 1);
    lua_setfield(L, -2, "stop");
}

static void push_request(lua_State *L, const sim_call *call, const rate *rates, int nrates)
{
    const sim_request *r = call->req;
    lua_createtable(L, 0, 16);
    lua_pushstring(L, sim_api_name(r->api)), lua_setfield(L, -2, "api");
    lua_pushstring(L, sim_api_path(r->api)), lua_setfield(L, -2, "path");
    lua_pushstring(L, r->model), lua_setfield(L, -2, "model");
    set_str(L, "system", &r->system);
    set_str(L, "prompt", &r->prompt);
    lua_pushboolean(L, r->stream), lua_setfield(L, -2, "stream");
    lua_pushboolean(L, r->schema), lua_setfield(L, -2, "schema");
    if (r->has_seed)
        lua_pushinteger(L, (lua_Integer)r->seed), lua_setfield(L, -2, "seed");
    lua_pushinteger(L, (lua_Integer)call->n), lua_setfield(L, -2, "n");
    lua_pushinteger(L, (lua_Integer)(call->rng & 0x7FFFFFFFFFFFFFFFull)), lua_setfield(L, -2, "rng");
    push_options(L, r);
    lua_setfield(L, -2, "options");
    lua_createtable(L, 0, nrates);
    for (int i = 0; i < nrates; i++)
        lua_pushnumber(L, rates[i].value), lua_setfield(L, -2, rates[i].name);
    lua_setfield(L, -2, "misbehave");
}

/* Under the lock: calls answer(req) and checks what comes back. */
static int call_answer(sim_lua *m, const sim_call *call, const rate *rates, int nrates, ph_buf *out, ph_error *err)
{
    lua_State *L = m->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, m->answer_ref);
    push_request(L, call, rates, nrates);
    m->deadline = sim_now() + MODEL_TIME_LIMIT;
    if (pcall(L, 1, 1, err) != 0)
        return -1;
    int rc = 0;
    size_t len;
    if (lua_type(L, -1) != LUA_TSTRING)
        rc = ph_error_set(err, PH_ERR_CONTRACT, "model script: answer(req) returned %s, not a string",
                          luaL_typename(L, -1));
    else if (lua_tolstring(L, -1, &len), len > SIM_MAX_ANSWER)
        rc = ph_error_set(err, PH_ERR_CONTRACT, "model script: answer of %zu bytes is past the cap", len);
    else if (ph_buf_add(out, lua_tostring(L, -1), len) != 0)
        rc = ph_error_set(err, PH_ERR_MEMORY, "out of memory");
    lua_pop(L, 1);
    return rc;
}

int sim_lua_answer(sim_lua *m, const sim_call *call, ph_buf *out, ph_error *err)
{
    rate rates[MAX_RATES];
    pthread_mutex_lock(&m->mu);
    int n = m->nrates;
    memcpy(rates, m->rates, sizeof rates);
    int rc = call->misbehave ? apply_rates(rates, n, call->misbehave, err) : 0;
    if (rc == 0)
        rc = call_answer(m, call, rates, n, out, err);
    pthread_mutex_unlock(&m->mu);
    return rc;
}
