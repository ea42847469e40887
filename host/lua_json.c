/*
 * lua_json — test-facing Lua binding of the jsonstream tokenizer.
 *
 * ph_lua_json_open pushes a table with one function, tokens(text [, opts]), which runs the real
 * tokenizer over text (whole or in pieces of a given size) and returns the token stream as Lua
 * tables, so specs can check token sequences, offsets, caps and modes. The bindings unit
 * (lua_planhost) exposes it as planhost.json. Depends on jsonstream and the Lua 5.4 C API.
 */
#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonstream.h"

#define BOX_META "planhost.json.run"

/* One tokens() run, kept in a userdata so a Lua error mid-run still frees everything. */
typedef struct run {
    ph_json *j;
    char *piece;          /* heap copy of the piece being fed (exact size, freed after) */
    lua_State *L;
    int toks;             /* stack index of the token array */
    lua_Integer n;        /* tokens so far */
    lua_Integer stop_after;
    int resume;
    int borrowed;         /* report whether text points into the fed bytes */
    const char *cur;      /* the bytes of the feed in progress */
    size_t cur_len;
} run;

typedef struct opts {
    ph_json_config cfg;
    size_t piece;         /* 0 = whole */
    lua_Integer stop_after;
    int resume;
    int borrowed;
} opts;

static const char *const kind_names[] = {
    "null", "true", "false", "number", "string", "key",
    "begin_object", "end_object", "begin_array", "end_array",
};

static int run_gc(lua_State *L)
{
    run *r = luaL_checkudata(L, 1, BOX_META);
    ph_json_free(r->j);
    free(r->piece);
    r->j = NULL;
    r->piece = NULL;
    return 0;
}

/* Token callback: appends {kind, text, offset, end, depth [, value_end] [, borrowed]}. */
static int on_token(void *ctx, const ph_json_token *t)
{
    run *r = ctx;
    lua_State *L = r->L;
    lua_createtable(L, 0, 6);                         /* ... tok */
    lua_pushstring(L, kind_names[t->kind]);
    lua_setfield(L, -2, "kind");
    if (t->text) {
        lua_pushlstring(L, t->text, t->len);
        lua_setfield(L, -2, "text");
    }
    lua_pushinteger(L, (lua_Integer)t->offset);
    lua_setfield(L, -2, "offset");
    lua_pushinteger(L, (lua_Integer)t->end);
    lua_setfield(L, -2, "end");
    lua_pushinteger(L, (lua_Integer)t->depth);
    lua_setfield(L, -2, "depth");
    if (r->borrowed && t->text) {
        uintptr_t a = (uintptr_t)t->text, lo = (uintptr_t)r->cur;
        lua_pushboolean(L, r->cur && a >= lo && a + t->len <= lo + r->cur_len);
        lua_setfield(L, -2, "borrowed");
    }
    if (t->flags & PH_JSON_TOK_VALUE_END) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "value_end");
    }
    lua_rawseti(L, r->toks, ++r->n);                  /* ... */
    return r->stop_after > 0 && r->n % r->stop_after == 0;
}

static lua_Integer opt_int(lua_State *L, const char *key, lua_Integer min, lua_Integer max)
{
    if (!lua_isinteger(L, -1))
        luaL_error(L, "tokens: option '%s' must be an integer", key);
    lua_Integer v = lua_tointeger(L, -1);
    if (v < min || v > max)
        luaL_error(L, "tokens: option '%s' must be in %I..%I", key, min, max);
    return v;
}

static int opt_bool(lua_State *L, const char *key)
{
    if (!lua_isboolean(L, -1))
        luaL_error(L, "tokens: option '%s' must be a boolean", key);
    return lua_toboolean(L, -1);
}

static void opt_flag(lua_State *L, opts *o, const char *key, unsigned flag)
{
    if (opt_bool(L, key))
        o->cfg.flags |= flag;
}

/* Reads the options table at idx; unknown keys raise. */
static void read_opts(lua_State *L, int idx, opts *o)
{
    memset(o, 0, sizeof *o);
    if (lua_isnoneornil(L, idx))
        return;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushnil(L);                                   /* ... nil */
    while (lua_next(L, idx)) {                        /* ... key value */
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
        if (!strcmp(k, "piece"))
            o->piece = (size_t)opt_int(L, k, 1, LUA_MAXINTEGER);
        else if (!strcmp(k, "max_depth"))
            o->cfg.max_depth = (unsigned)opt_int(L, k, 0, 1 << 20);
        else if (!strcmp(k, "max_token"))
            o->cfg.max_token = (size_t)opt_int(L, k, 0, LUA_MAXINTEGER);
        else if (!strcmp(k, "stop_after"))
            o->stop_after = opt_int(L, k, 1, LUA_MAXINTEGER);
        else if (!strcmp(k, "resume"))
            o->resume = opt_bool(L, k);
        else if (!strcmp(k, "borrowed"))
            o->borrowed = opt_bool(L, k);
        else if (!strcmp(k, "trailing_comma"))
            opt_flag(L, o, k, PH_JSON_ALLOW_TRAILING_COMMA);
        else if (!strcmp(k, "multiple"))
            opt_flag(L, o, k, PH_JSON_ALLOW_MULTIPLE);
        else if (!strcmp(k, "trailing_garbage"))
            opt_flag(L, o, k, PH_JSON_ALLOW_TRAILING_GARBAGE);
        else
            luaL_error(L, "tokens: unknown option '%s'", k);
        lua_pop(L, 1);                                /* ... key */
    }
}

static int push_error(lua_State *L, run *r)
{
    uint64_t off = 0;
    const char *msg = ph_json_error(r->j, &off);
    lua_pushnil(L);
    lua_pushstring(L, msg ? msg : "?");
    lua_pushinteger(L, (lua_Integer)off);
    return 3;
}

/* Pushes the offset where the last top-level value ended, or nil. */
static void push_value_end(lua_State *L, const ph_json *j)
{
    uint64_t e = ph_json_value_end(j);
    if (e == UINT64_MAX)
        lua_pushnil(L);
    else
        lua_pushinteger(L, (lua_Integer)e);
}

/* Feeds one piece, resuming after stops when asked. Returns the last status. */
static ph_json_status feed_piece(run *r, const char *p, size_t n, int stops)
{
    ph_json_status st = PH_JSON_OK;
    while (n) {
        size_t used = 0;
        r->cur = p, r->cur_len = n;
        st = ph_json_feed(r->j, p, n, &used);
        if (st == PH_JSON_STOPPED) {
            lua_pushinteger(r->L, (lua_Integer)ph_json_offset(r->j));
            lua_rawseti(r->L, stops, (lua_Integer)lua_rawlen(r->L, stops) + 1);
            if (!r->resume)
                return st;
            p += used, n -= used;
            continue;
        }
        break;
    }
    return st == PH_JSON_STOPPED ? PH_JSON_OK : st;
}

/* Feeds text in pieces (each copied to an exact-size heap block, freed right after the feed
 * so a retained pointer shows up under ASan/valgrind). */
static ph_json_status feed_all(run *r, const char *text, size_t len, size_t piece, int stops)
{
    ph_json_status st = PH_JSON_OK;
    if (!piece)
        piece = len ? len : 1;
    for (size_t at = 0; at < len && st == PH_JSON_OK; at += piece) {
        size_t n = len - at < piece ? len - at : piece;
        r->piece = malloc(n);
        if (!r->piece)
            luaL_error(r->L, "tokens: out of memory");
        memcpy(r->piece, text + at, n);
        st = feed_piece(r, r->piece, n, stops);
        free(r->piece);
        r->piece = NULL;
    }
    return st;
}

static ph_json_status finish(run *r, int stops)
{
    ph_json_status st;
    r->cur = NULL, r->cur_len = 0;
    while ((st = ph_json_finish(r->j)) == PH_JSON_STOPPED) {
        lua_pushinteger(r->L, (lua_Integer)ph_json_offset(r->j));
        lua_rawseti(r->L, stops, (lua_Integer)lua_rawlen(r->L, stops) + 1);
        if (!r->resume)
            break;
    }
    return st;
}

/* tokens(text [, opts]) -> toks, end_offset, status ("ok"|"stopped"), stops
 *                      | nil, message, offset */
static int l_tokens(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    opts o;
    read_opts(L, 2, &o);
    lua_settop(L, 2);
    run *r = lua_newuserdatauv(L, sizeof *r, 0);      /* text opts run */
    memset(r, 0, sizeof *r);
    luaL_setmetatable(L, BOX_META);
    lua_newtable(L);                                  /* text opts run toks */
    lua_newtable(L);                                  /* text opts run toks stops */
    r->L = L;
    r->toks = 4;
    r->stop_after = o.stop_after;
    r->resume = o.resume;
    r->borrowed = o.borrowed;
    r->j = ph_json_new(&o.cfg, on_token, r);
    if (!r->j)
        return luaL_error(L, "tokens: invalid option combination (or out of memory)");
    ph_json_status st = feed_all(r, text, len, o.piece, 5);
    if (st == PH_JSON_OK || st == PH_JSON_COMPLETE)
        st = finish(r, 5);
    if (st == PH_JSON_ERROR)
        return push_error(L, r);
    lua_pushvalue(L, 4);                              /* ... toks */
    if (st == PH_JSON_STOPPED)
        lua_pushinteger(L, (lua_Integer)ph_json_offset(r->j));
    else
        push_value_end(L, r->j);                      /* ... toks end */
    lua_pushstring(L, st == PH_JSON_STOPPED ? "stopped" : "ok");
    lua_pushvalue(L, 5);                              /* ... toks end status stops */
    return 4;
}

/* Pushes the planhost.json table. Registers the run metatable on first use. Nothing is
 * owned by the caller beyond the pushed table. */
int ph_lua_json_open(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"tokens", l_tokens}, {NULL, NULL}};
    if (luaL_newmetatable(L, BOX_META)) {             /* meta */
        lua_pushcfunction(L, run_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);                                    /* */
    luaL_newlib(L, funcs);                            /* json */
    return 1;
}
