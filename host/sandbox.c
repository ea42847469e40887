/* sandbox — the allow-listed, frozen environment scripts run in, and its budgets.
 *
 * What a script sees: a globals table of its own that falls back to a frozen base holding
 * the safe base functions, read-only string/table/math/utf8, cjson's encode/decode/null,
 * os.clock/os.time, and the host helpers. Text chunks only (no bytecode), require() of the
 * script tree's lua/ modules only (returned read-only), no io, os, package, debug,
 * coroutine or collectgarbage. Time is bounded by a count hook whose stop no pcall inside
 * the script can swallow; memory by the allocator (script.c). Part of the script adapter. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lualib.h>

#include "script_internal.h"

#define HOOK_STEP 1000  /* instructions between two count-hook calls */

/* Registry keys: the addresses of these bytes. */
static const char KEY_P2T = 'p';     /* weak map proxy -> target */
static const char KEY_T2P = 't';     /* weak map target -> proxy */
static const char KEY_FROZEN_MT = 'm';
static const char KEY_MODULES = 'r'; /* require cache: name -> value or LOADING */
static const char LOADING = 'L';

ph_gen *ph_sb_gen(lua_State *L)
{
    return *(ph_gen **)lua_getextraspace(L);
}

/* ---- budgets ------------------------------------------------------------------------- */

static void count_hook(lua_State *L, lua_Debug *ar)
{
    ph_gen *g = ph_sb_gen(L);
    g->budget_left -= HOOK_STEP;
    if (g->budget_left > 0 && !g->killed)
        return;
    if (!g->killed) {
        g->killed = 1;
        lua_getinfo(L, "Sl", ar);
        if (ar->currentline > 0)
            snprintf(g->kill_msg, sizeof g->kill_msg, "%s:%d: instruction budget exceeded (%ld "
                     "instructions per call)", ar->short_src, ar->currentline, g->limits.instructions);
        else
            snprintf(g->kill_msg, sizeof g->kill_msg, "instruction budget exceeded (%ld "
                     "instructions per call)", g->limits.instructions);
    }
    lua_pushstring(L, g->kill_msg);
    lua_error(L);
}

/* ---- read-only views ----------------------------------------------------------------- */

static void push_weak_map(lua_State *L, const void *key, const char *mode)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) != LUA_TNIL)
        return;
    lua_pop(L, 1);
    lua_newtable(L);                         /* map */
    lua_newtable(L);                         /* map mt */
    lua_pushstring(L, mode);
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);                 /* map */
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, key);  /* map */
}

/* Pushes the target behind proxy `idx`, or nothing and returns 0 if it is no proxy. */
static int push_target(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    push_weak_map(L, &KEY_P2T, "k");         /* p2t */
    lua_pushvalue(L, idx);
    if (lua_rawget(L, -2) == LUA_TNIL) {     /* p2t target|nil */
        lua_pop(L, 2);
        return 0;
    }
    lua_remove(L, -2);                       /* target */
    return 1;
}

void ph_sb_unwrap(lua_State *L, int idx)
{
    if (!push_target(L, idx))
        lua_pushvalue(L, idx);
}

int ph_sb_raisef(lua_State *L, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return luaL_error(L, "%s", msg);
}

void ph_sb_check_keys(lua_State *L, int idx, const char *const *known, const char *what)
{
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "%s: keys must be strings, found a %s key", what, luaL_typename(L, -1));
        const char *k = lua_tostring(L, -1);
        const char *const *n = known;
        while (*n && strcmp(*n, k) != 0)
            n++;
        if (!*n) {
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            for (n = known; *n; n++)
                luaL_addstring(&b, *n), luaL_addstring(&b, n[1] ? ", " : "");
            luaL_pushresult(&b);
            luaL_error(L, "%s: unknown key '%s' (known: %s)", what, k, lua_tostring(L, -1));
        }
    }
}

/* Replaces the value at the top with its frozen view when it is a table. */
static void freeze_top(lua_State *L)
{
    if (lua_type(L, -1) == LUA_TTABLE)
        ph_sb_freeze(L, -1), lua_remove(L, -2);
}

static int ro_index(lua_State *L)
{
    if (!push_target(L, 1))                  /* proxy key target */
        return 0;
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);                       /* proxy key target value */
    freeze_top(L);
    return 1;
}

static int ro_newindex(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TSTRING)
        return luaL_error(L, "attempt to modify a read-only table (field '%s')", lua_tostring(L, 2));
    return luaL_error(L, "attempt to modify a read-only table");
}

static int ro_len(lua_State *L)
{
    if (!push_target(L, 1))
        return lua_pushinteger(L, 0), 1;
    lua_pushinteger(L, (lua_Integer)lua_rawlen(L, -1));
    return 1;
}

static int ro_next(lua_State *L)
{
    if (!push_target(L, 1))                  /* proxy key target */
        return 0;
    lua_pushvalue(L, 2);                     /* proxy key target key */
    if (!lua_next(L, -2))                    /* proxy key target [k v] */
        return 0;
    freeze_top(L);
    return 2;
}

static int ro_pairs(lua_State *L)
{
    lua_pushcfunction(L, ro_next);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

static void push_frozen_mt(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &KEY_FROZEN_MT) != LUA_TNIL)
        return;
    lua_pop(L, 1);
    static const luaL_Reg mt[] = {
        {"__index", ro_index}, {"__newindex", ro_newindex}, {"__len", ro_len},
        {"__pairs", ro_pairs}, {NULL, NULL},
    };
    luaL_newlib(L, mt);
    lua_pushliteral(L, "read-only");
    lua_setfield(L, -2, "__metatable");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &KEY_FROZEN_MT);
}

/* Iterates a shallow view's target directly (its values are functions or scalars). */
static int ro_pairs_shallow(lua_State *L)
{
    lua_pushcfunction(L, ro_next);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

/* A read-only view for a library table: __index is the table itself, so lookups stay on
 * the VM's fast path (no C call). The table holds only functions and scalars and is
 * reachable only through the locked metatable. Replaces the table at the top. */
static void freeze_shallow(lua_State *L)
{
    int t = lua_gettop(L);
    lua_newtable(L);                         /* t proxy */
    lua_createtable(L, 0, 6);                /* t proxy mt */
    lua_pushvalue(L, t);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, ro_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, ro_len);
    lua_setfield(L, -2, "__len");
    lua_pushcfunction(L, ro_pairs_shallow);
    lua_setfield(L, -2, "__pairs");
    lua_pushliteral(L, "read-only");
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);                 /* t proxy */
    push_weak_map(L, &KEY_P2T, "k");
    lua_pushvalue(L, -2);
    lua_pushvalue(L, t);
    lua_rawset(L, -3);                       /* p2t[proxy] = t, so rawset and unwrap know it */
    lua_pop(L, 1);
    lua_replace(L, t);                       /* proxy */
}

void ph_sb_freeze(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    if (push_target(L, idx)) {               /* already a proxy: itself */
        lua_pop(L, 1);
        lua_pushvalue(L, idx);
        return;
    }
    push_weak_map(L, &KEY_T2P, "k");         /* t2p */
    lua_pushvalue(L, idx);
    if (lua_rawget(L, -2) != LUA_TNIL) {     /* t2p proxy */
        lua_remove(L, -2);
        return;
    }
    lua_pop(L, 1);                           /* t2p */
    lua_newtable(L);                         /* t2p proxy */
    push_frozen_mt(L);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, idx);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);                       /* t2p[target] = proxy */
    lua_remove(L, -2);                       /* proxy */
    push_weak_map(L, &KEY_P2T, "k");
    lua_pushvalue(L, -2);
    lua_pushvalue(L, idx);
    lua_rawset(L, -3);                       /* p2t[proxy] = target */
    lua_pop(L, 1);                           /* proxy */
}

/* ---- replaced base functions --------------------------------------------------------- */

/* pcall/xpcall that cannot swallow a budget stop: once the budget is gone the stop goes on
 * up, whatever the script's handlers do. */
static int finish_pcall(lua_State *L, int status, int base)
{
    ph_gen *g = ph_sb_gen(L);
    if (g->killed) {
        lua_pushstring(L, g->kill_msg);
        return lua_error(L);
    }
    lua_pushboolean(L, status == LUA_OK);
    lua_insert(L, base);
    return lua_gettop(L) - base + 1;
}

static int sb_pcall(lua_State *L)
{
    luaL_checkany(L, 1);
    int status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
    return finish_pcall(L, status, 1);
}

/* The message handler xpcall installs: the script's handler, except after a budget stop.
 * A stop is raised inside the count hook, where Lua runs handlers with hooks off, so a
 * script handler must never run then (it could loop unstopped). */
static int xpcall_handler(lua_State *L)
{
    if (ph_sb_gen(L)->killed)
        return 1;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static int sb_xpcall(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, xpcall_handler, 1);  /* f h args... wrapped */
    lua_replace(L, 2);                       /* f wrapped args... */
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_replace(L, 1);
    lua_replace(L, 2);                       /* wrapped f args... */
    int status = lua_pcall(L, n - 2, LUA_MULTRET, 1);
    return finish_pcall(L, status, 2);
}

static int sb_rawset(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    if (push_target(L, 1))
        return luaL_error(L, "attempt to modify a read-only table");
    luaL_checkany(L, 3);
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 1;
}

/* setmetatable without __gc: Lua runs finalizers with hooks off, so a finalizer could loop
 * beyond the budget (even inside lua_close). */
static int sb_setmetatable(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "setmetatable: __gc metamethods are not allowed in the sandbox");
        lua_pop(L, 1);
    }
    lua_getglobal(L, "setmetatable");
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static int sb_print(lua_State *L)
{
    int n = lua_gettop(L);
    fputs("[script]", stderr);
    for (int i = 1; i <= n; i++) {
        size_t len;
        const char *s = luaL_tolstring(L, i, &len);
        fputc(' ', stderr);
        fwrite(s, 1, len, stderr);
        lua_pop(L, 1);
    }
    fputc('\n', stderr);
    return 0;
}

/* load(text [, chunkname [, mode [, env]]]): text only, never bytecode. */
static int sb_load(lua_State *L)
{
    size_t len;
    const char *src = lua_tolstring(L, 1, &len);
    if (!src || lua_type(L, 1) != LUA_TSTRING)
        return luaL_error(L, "load: only source text can be loaded in the sandbox");
    const char *name = luaL_optstring(L, 2, "=(load)");
    const char *mode = luaL_optstring(L, 3, "t");
    if (strchr(mode, 't') == NULL) {
        luaL_pushfail(L);
        lua_pushliteral(L, "attempt to load a binary chunk (the sandbox loads text only)");
        return 2;
    }
    int has_env = !lua_isnone(L, 4);
    if (luaL_loadbufferx(L, src, len, name, "t") != LUA_OK) {
        luaL_pushfail(L);
        lua_insert(L, -2);
        return 2;
    }
    if (has_env)
        lua_pushvalue(L, 4);
    else
        ph_sb_push_env(L);
    if (!lua_setupvalue(L, -2, 1))
        lua_pop(L, 1);
    return 1;
}

static int valid_module_name(const char *s)
{
    if (!*s || *s == '.')
        return 0;
    for (const char *p = s; *p; p++) {
        if (*p == '.' && (p[1] == '.' || p[1] == '\0'))
            return 0;
        if (!(*p == '.' || *p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9')))
            return 0;
    }
    return 1;
}

/* require(name): loads lua/<name>.lua from the generation's tree, once, and returns its
 * value read-only. C modules and anything outside lua/ are refused. */
static int sb_require(lua_State *L)
{
    ph_gen *g = ph_sb_gen(L);
    const char *name = luaL_checkstring(L, 1);
    lua_settop(L, 1);
    if (!valid_module_name(name))
        return luaL_error(L, "require: '%s' is not a module name (letters, digits, _ and .)", name);
    push_weak_map(L, &KEY_MODULES, "");      /* name modules */
    if (lua_getfield(L, 2, name) != LUA_TNIL) {
        if (lua_touserdata(L, -1) == &LOADING)
            return luaL_error(L, "require: cyclic require of '%s'", name);
        return 1;
    }
    lua_pop(L, 1);
    char path[512];
    snprintf(path, sizeof path, "lua/%s.lua", name);
    for (char *p = path + 4; *p; p++)
        if (*p == '.' && strcmp(p, ".lua") != 0)
            *p = '/';
    const ph_file *f = ph_tree_find(&g->tree, path);
    if (!f)
        return luaL_error(L, "require: module '%s' not found (no %s; C modules are not allowed)", name, path);
    ph_error err;
    if (ph_sb_load(g, f->text, f->len, path, &err) != 0)
        return luaL_error(L, "%s", err.message);
    lua_pushlightuserdata(L, (void *)&LOADING);
    lua_setfield(L, 2, name);
    lua_pushstring(L, name);
    lua_call(L, 1, 1);                       /* name modules value */
    if (lua_isnil(L, -1))
        lua_pop(L, 1), lua_pushboolean(L, 1);
    freeze_top(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, 2, name);
    return 1;
}

/* host.tokens(s): the estimate used everywhere, characters / 4 rounded up. */
static int host_tokens(lua_State *L)
{
    size_t len, chars = 0;
    const char *s = luaL_checklstring(L, 1, &len);
    for (size_t i = 0; i < len; i++)
        chars += ((unsigned char)s[i] & 0xC0) != 0x80;
    lua_pushinteger(L, (lua_Integer)((chars + 3) / 4));
    return 1;
}

/* ---- building the base --------------------------------------------------------------- */

/* Copies the listed fields of the global library `lib` into a new table and freezes it. */
static void push_lib_subset(lua_State *L, const char *lib, const char *const *names)
{
    lua_getglobal(L, lib);                   /* lib */
    lua_newtable(L);                         /* lib copy */
    for (const char *const *n = names; *n; n++) {
        lua_getfield(L, -2, *n);
        lua_setfield(L, -2, *n);
    }
    freeze_shallow(L);                       /* lib view */
    lua_remove(L, -2);                       /* view */
}

static void push_lib_all(lua_State *L, const char *lib, const char *except)
{
    lua_getglobal(L, lib);
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, -3)) {                /* lib copy k v */
        if (except && lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), except) == 0) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
    freeze_shallow(L);                       /* lib view */
    lua_remove(L, -2);
}

static void set_base_functions(lua_State *L)
{
    static const char *const plain[] = {
        "assert", "error", "ipairs", "next", "pairs", "select", "tonumber", "tostring",
        "type", "rawequal", "rawget", "rawlen", "getmetatable", "_VERSION", NULL,
    };
    for (const char *const *n = plain; *n; n++) {
        lua_getglobal(L, *n);
        lua_setfield(L, -2, *n);
    }
    static const luaL_Reg replaced[] = {
        {"pcall", sb_pcall}, {"xpcall", sb_xpcall}, {"rawset", sb_rawset}, {"print", sb_print},
        {"setmetatable", sb_setmetatable},
        {"load", sb_load}, {"require", sb_require}, {NULL, NULL},
    };
    luaL_setfuncs(L, replaced, 0);
}

static void set_libraries(lua_State *L)
{
    static const char *const os_names[] = {"clock", "time", NULL};
    static const char *const cjson_names[] = {"encode", "decode", "null", NULL};
    push_lib_all(L, "string", "dump");
    lua_setfield(L, -2, "string");
    push_lib_all(L, "table", NULL);
    lua_setfield(L, -2, "table");
    push_lib_all(L, "math", NULL);
    lua_setfield(L, -2, "math");
    push_lib_all(L, "utf8", NULL);
    lua_setfield(L, -2, "utf8");
    push_lib_subset(L, "os", os_names);
    lua_setfield(L, -2, "os");
    push_lib_subset(L, "cjson", cjson_names);
    lua_setfield(L, -2, "cjson");
    lua_newtable(L);
    lua_pushcfunction(L, host_tokens);
    lua_setfield(L, -2, "tokens");
    lua_pushcfunction(L, ph_sb_json_encode);
    lua_setfield(L, -2, "json_encode");
    freeze_shallow(L);
    lua_setfield(L, -2, "host");
}

/* Loads cjson through the ordinary module path, into the (hidden) real globals. */
static int open_cjson(lua_State *L)
{
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cjson");
    lua_call(L, 1, 1);
    lua_setglobal(L, "cjson");
    return 0;
}

/* Opens the standard libraries the base draws on, then hides the string metatable and
 * removes string.dump so no path leads to bytecode. Runs unprotected-safe via lua_pcall. */
static int open_all(lua_State *L)
{
    luaL_openlibs(L);
    open_cjson(L);
    lua_getglobal(L, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
    ph_sb_guard_patterns(L);                 /* sandbox_pattern.c */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);
    lua_newtable(L);                         /* base: reachable only as the locked __index of
                                                every chunk's globals, so it needs no view */
    set_base_functions(L);
    set_libraries(L);
    return 1;
}

int ph_sb_open(ph_gen *g, ph_error *err)
{
    lua_State *L = g->L;
    lua_pushcfunction(L, open_all);
    if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
        ph_error_set(err, PH_ERR_RUNTIME, "cannot set up the script sandbox: %s",
                     lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
        lua_pop(L, 1);
        return -1;
    }
    g->base_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_STEP);
    return 0;
}

void ph_sb_push_env(lua_State *L)
{
    lua_newtable(L);                         /* env */
    if (luaL_newmetatable(L, "planhost.env")) { /* env mt: shared, so locked */
        lua_rawgeti(L, LUA_REGISTRYINDEX, ph_sb_gen(L)->base_ref);
        lua_setfield(L, -2, "__index");
        lua_pushliteral(L, "sandbox environment");
        lua_setfield(L, -2, "__metatable");
    }
    lua_setmetatable(L, -2);                 /* env */
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "_G");
}

int ph_sb_load(ph_gen *g, const char *text, size_t len, const char *path, ph_error *err)
{
    lua_State *L = g->L;
    char chunk[512];
    snprintf(chunk, sizeof chunk, "@%s", path);
    int st = luaL_loadbufferx(L, text, len, chunk, "t");
    if (st != LUA_OK) {
        const char *m = lua_tostring(L, -1);
        ph_error_set(err, st == LUA_ERRMEM ? PH_ERR_MEMORY : PH_ERR_SYNTAX, "%s", m ? m : "?");
        lua_pop(L, 1);
        return -1;
    }
    ph_sb_push_env(L);
    lua_setupvalue(L, -2, 1);
    return 0;
}

static int require_trampoline(lua_State *L)
{
    return sb_require(L);
}

int ph_sb_require(ph_gen *g, const char *name, ph_error *err)
{
    lua_pushcfunction(g->L, require_trampoline);
    lua_pushstring(g->L, name);
    return ph_sb_call(g, 1, 1, name, err);
}
