/*
 * lua_snaphash — test-facing Lua binding of the snapshot hash (snaphash.h).
 *
 * ph_lua_snaphash_open pushes a table with one function,
 *
 *     hash(json [, rules [, canonical = true]]) -> hex, canonical_text | nil
 *                                              | nil, message, code
 *
 * where rules = { quantise = { ["me.pos"] = 2, ["enemies[].hp"] = 10 },
 *                 ignore = { "t", "**.last_seen" }, sets = { "enemies" },
 *                 relative = true | false | { "enemies[].pos", ... }, anchor = "me.pos" }.
 * relative = true means { "**.pos" }: every `pos` object, the anchor's own included (which
 * so becomes {x:0,y:0}). hex is the 64-bit hash as 16 lowercase hex digits; canonical_text is
 * nil when the third argument is false. The rules are compiled on every call (a test binding,
 * not the hot path). Misuse raises: unknown rule keys, wrong types, bad paths or steps.
 * Malformed JSON returns nil, message ("snapshot: invalid JSON at byte N: ..."), "json".
 * The bindings unit (lua_planhost) exposes it as planhost.snaphash. Depends on snaphash and
 * the Lua 5.4 C API.
 */
#include <inttypes.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <string.h>

#include "snaphash.h"

#define BOX_META "planhost.snaphash.run"
#define TEXT_CAP (16u << 20)

/* One hash() call's C resources, in a userdata so a raised error still frees them. */
typedef struct box {
    ph_hash_rules *r;
    ph_buf text;
} box;

static int box_gc(lua_State *L)
{
    box *b = luaL_checkudata(L, 1, BOX_META);
    ph_hash_rules_free(b->r);
    b->r = NULL;
    ph_buf_free(&b->text);
    return 0;
}

static const char *const RULE_KEYS[] = {"quantise", "ignore", "sets", "relative", "anchor", NULL};

static void check_keys(lua_State *L, int idx)
{
    lua_pushnil(L);
    while (lua_next(L, idx)) {                        /* ... key value */
        lua_pop(L, 1);                                /* ... key */
        const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        const char *const *n = RULE_KEYS;
        while (k && *n && strcmp(*n, k) != 0)
            n++;
        if (!k || !*n)
            luaL_error(L, "snaphash.hash: unknown rules key '%s'", k ? k : luaL_typename(L, -1));
    }
}

static void add_rule(lua_State *L, box *b, const char *path, ph_hash_kind kind, double step)
{
    ph_error err;
    if (ph_hash_rules_add(b->r, path, kind, step, &err) != 0)
        luaL_error(L, "snaphash.hash: %s", err.message);
}

/* rules[field] = { "path", ... } (or nil): one rule of `kind` per path. */
static void read_list(lua_State *L, int idx, const char *field, ph_hash_kind kind, box *b)
{
    lua_getfield(L, idx, field);                      /* ... list */
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    if (!lua_istable(L, -1))
        luaL_error(L, "snaphash.hash: rules.%s must be a list of paths", field);
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1), count = 0;
    for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1))   /* ... list key value */
        count++;
    if (count != n)
        luaL_error(L, "snaphash.hash: rules.%s must be a list (1..n), not a map", field);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, -1, i) != LUA_TSTRING)     /* ... list path */
            luaL_error(L, "snaphash.hash: rules.%s[%d] must be a string", field, (int)i);
        add_rule(L, b, lua_tostring(L, -1), kind, 0);
        lua_pop(L, 1);                                /* ... list */
    }
    lua_pop(L, 1);                                    /* ... */
}

/* rules.quantise = { [path] = step, ... } */
static void read_quantise(lua_State *L, int idx, box *b)
{
    lua_getfield(L, idx, "quantise");                 /* ... q */
    if (!lua_isnil(L, -1)) {
        if (!lua_istable(L, -1))
            luaL_error(L, "snaphash.hash: rules.quantise must be a table { [path] = step }");
        for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1)) {   /* ... q path step */
            if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TNUMBER)
                luaL_error(L, "snaphash.hash: rules.quantise entries must be path = number");
            add_rule(L, b, lua_tostring(L, -2), PH_HASH_QUANTISE, lua_tonumber(L, -1));
        }
    }
    lua_pop(L, 1);                                    /* ... */
}

/* rules.relative = true | false | { path, ... }; rules.anchor = "dotted.path" */
static void read_relative(lua_State *L, int idx, box *b)
{
    lua_getfield(L, idx, "relative");                 /* ... rel */
    int t = lua_type(L, -1);
    lua_pop(L, 1);                                    /* ... */
    if (t == LUA_TBOOLEAN) {
        lua_getfield(L, idx, "relative");
        if (lua_toboolean(L, -1))
            add_rule(L, b, "**.pos", PH_HASH_RELATIVE, 0);
        lua_pop(L, 1);
    } else if (t != LUA_TNIL) {
        read_list(L, idx, "relative", PH_HASH_RELATIVE, b);
    }
    lua_getfield(L, idx, "anchor");                   /* ... anchor */
    if (!lua_isnil(L, -1)) {
        ph_error err;
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "snaphash.hash: rules.anchor must be a string");
        if (ph_hash_rules_anchor(b->r, lua_tostring(L, -1), &err) != 0)
            luaL_error(L, "snaphash.hash: %s", err.message);
    }
    lua_pop(L, 1);                                    /* ... */
}

/* hash(json [, rules [, canonical]]): see the file comment. */
static int l_hash(lua_State *L)
{
    size_t len;
    const char *json = luaL_checklstring(L, 1, &len);
    int want = lua_isnoneornil(L, 3) || lua_toboolean(L, 3);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 3);                                 /* json rules canonical */
    box *b = lua_newuserdatauv(L, sizeof *b, 0);      /* json rules canonical box */
    memset(b, 0, sizeof *b);
    ph_buf_init(&b->text, TEXT_CAP);
    luaL_setmetatable(L, BOX_META);
    if (!(b->r = ph_hash_rules_new()))
        return luaL_error(L, "snaphash.hash: out of memory");
    if (lua_istable(L, 2)) {
        check_keys(L, 2);
        read_quantise(L, 2, b);
        read_list(L, 2, "ignore", PH_HASH_IGNORE, b);
        read_list(L, 2, "sets", PH_HASH_SET, b);
        read_relative(L, 2, b);
    }
    ph_error err;
    int ok;
    uint64_t hv = ph_snaphash(b->r, json, len, want ? &b->text : NULL, &err, &ok);
    if (!ok) {
        luaL_pushfail(L);
        lua_pushstring(L, err.message);
        lua_pushstring(L, ph_code_name(err.code));
        return 3;                                     /* ... nil message code */
    }
    char hex[17];
    snprintf(hex, sizeof hex, "%016" PRIx64, hv);
    lua_pushstring(L, hex);                           /* ... hex */
    if (want)
        lua_pushlstring(L, ph_buf_str(&b->text), b->text.len);
    else
        lua_pushnil(L);                               /* ... hex text|nil */
    return 2;
}

/* Pushes the planhost.snaphash table. Registers the box metatable on first use. Nothing is
 * owned by the caller beyond the pushed table. */
int ph_lua_snaphash_open(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"hash", l_hash}, {NULL, NULL}};
    if (luaL_newmetatable(L, BOX_META)) {             /* meta */
        lua_pushcfunction(L, box_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);                                    /* */
    luaL_newlib(L, funcs);                            /* snaphash */
    return 1;
}
