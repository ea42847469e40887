/*
 * lua_framing — test-facing Lua binding of the stream decoder (framing).
 *
 * ph_lua_framing_open pushes a table with one function,
 *
 *     decode(api, bytes [, opts]) -> events, status, feeds
 *
 * which runs the real decoder over a recorded body: api is "ollama", "ollama-generate",
 * "openai" or "llamacpp"; the bytes are fed in opts.piece-byte pieces (default: whole), each
 * copied to an exact-size heap block freed right after its feed (so a retained pointer shows
 * under ASan), then the decoder is finished. Events, in order:
 *     {kind="text", text=...}
 *     {kind="done", prompt_tokens=, completion_tokens=, cached_tokens=, prompt_ms=, gen_ms=,
 *      total_ms=, load_ms=, done_reason=}          (fields the server did not give are nil)
 *     {kind="error", message=..., server=true}     (the server's words, via the callback)
 *     {kind="error", message=...}                  (a framing error: bad line, cap, cut stream)
 * status is "done", "error", "stopped" (opts.stop_after) or "ok" (cannot come back after a
 * finish, listed for completeness). feeds[k] is how many events existed after the k-th feed
 * (events past feeds[#feeds] came from the finish), so specs can check when text arrived.
 * Options: piece, max_line, stop_after (the stop_after-th text callback asks to stop);
 * unknown keys raise. The bindings unit (lua_planhost) exposes it as planhost.framing.
 * Depends on framing, wire (ph_api_parse) and the Lua 5.4 C API.
 */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "framing.h"

#define BOX_META "planhost.framing.run"

/* One decode() run, kept in a userdata so a Lua error mid-run still frees everything. */
typedef struct run {
    ph_framing *f;
    char *piece;            /* heap copy of the piece being fed */
    lua_State *L;
    int events;             /* stack index of the event array */
    lua_Integer n;          /* events so far */
    lua_Integer texts;      /* text events so far */
    lua_Integer stop_after; /* 0: never stop */
    int server_error;       /* an error event came through the callback */
} run;

typedef struct opts {
    size_t piece;           /* 0 = whole */
    size_t max_line;        /* 0 = the decoder's default */
    lua_Integer stop_after;
} opts;

static int run_gc(lua_State *L)
{
    run *r = luaL_checkudata(L, 1, BOX_META);
    ph_framing_free(r->f);
    free(r->piece);
    r->f = NULL;
    r->piece = NULL;
    return 0;
}

/* Starts an event table {kind = kind}; appended by add_event. */
static void new_event(lua_State *L, const char *kind, int fields)
{
    lua_createtable(L, 0, fields + 1);                /* ... ev */
    lua_pushstring(L, kind);
    lua_setfield(L, -2, "kind");
}

static void add_event(run *r)
{
    lua_rawseti(r->L, r->events, ++r->n);             /* ... */
}

static int on_text(void *ud, const char *s, size_t len)
{
    run *r = ud;
    new_event(r->L, "text", 1);                       /* ... ev */
    lua_pushlstring(r->L, s, len);
    lua_setfield(r->L, -2, "text");
    add_event(r);
    return r->stop_after > 0 && ++r->texts >= r->stop_after;
}

/* Sets ev[key] = v unless v is the "unknown" value (negative count, NaN, NULL). */
static void set_count(lua_State *L, const char *key, long v)
{
    if (v >= 0) {
        lua_pushinteger(L, (lua_Integer)v);
        lua_setfield(L, -2, key);
    }
}

static void set_ms(lua_State *L, const char *key, double v)
{
    if (!isnan(v)) {
        lua_pushnumber(L, (lua_Number)v);
        lua_setfield(L, -2, key);
    }
}

static int on_done(void *ud, const ph_frame_stats *st)
{
    run *r = ud;
    lua_State *L = r->L;
    new_event(L, "done", 8);                          /* ... ev */
    set_count(L, "prompt_tokens", st->prompt_tokens);
    set_count(L, "completion_tokens", st->completion_tokens);
    set_count(L, "cached_tokens", st->cached_tokens);
    set_ms(L, "prompt_ms", st->prompt_ms);
    set_ms(L, "gen_ms", st->gen_ms);
    set_ms(L, "total_ms", st->total_ms);
    set_ms(L, "load_ms", st->load_ms);
    if (st->done_reason) {
        lua_pushstring(L, st->done_reason);
        lua_setfield(L, -2, "done_reason");
    }
    add_event(r);
    return 0;
}

static void push_error(run *r, const char *message, int server)
{
    new_event(r->L, "error", 2);                      /* ... ev */
    lua_pushstring(r->L, message ? message : "?");
    lua_setfield(r->L, -2, "message");
    if (server) {
        lua_pushboolean(r->L, 1);
        lua_setfield(r->L, -2, "server");
    }
    add_event(r);
}

static int on_error(void *ud, const char *message)
{
    run *r = ud;
    r->server_error = 1;
    push_error(r, message, 1);
    return 0;
}

static lua_Integer opt_int(lua_State *L, const char *key)
{
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1)
        luaL_error(L, "decode: option '%s' must be a positive integer", key);
    return lua_tointeger(L, -1);
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
            o->piece = (size_t)opt_int(L, k);
        else if (!strcmp(k, "max_line"))
            o->max_line = (size_t)opt_int(L, k);
        else if (!strcmp(k, "stop_after"))
            o->stop_after = opt_int(L, k);
        else
            luaL_error(L, "decode: unknown option '%s'", k);
        lua_pop(L, 1);                                /* ... key */
    }
}

/* Feeds bytes in pieces, noting the event count after each feed in the table at `feeds`.
 * Goes on feeding after the decoder stopped: those bytes must be ignored. */
static void feed_all(run *r, const char *bytes, size_t len, size_t piece, int feeds)
{
    lua_Integer k = 0;
    if (!piece)
        piece = len ? len : 1;
    for (size_t at = 0; at < len; at += piece) {
        size_t n = len - at < piece ? len - at : piece;
        r->piece = malloc(n);
        if (!r->piece)
            luaL_error(r->L, "decode: out of memory");
        memcpy(r->piece, bytes + at, n);
        ph_framing_feed(r->f, r->piece, n);
        free(r->piece);
        r->piece = NULL;
        lua_pushinteger(r->L, r->n);
        lua_rawseti(r->L, feeds, ++k);
    }
}

static const char *status_name(ph_frame_status st)
{
    switch (st) {
    case PH_FRAME_DONE: return "done";
    case PH_FRAME_STOPPED: return "stopped";
    case PH_FRAME_ERROR: return "error";
    default: return "ok";
    }
}

/* decode(api, bytes [, opts]) -> events, status, feeds */
static int l_decode(lua_State *L)
{
    static const ph_framing_callbacks cbs = {on_text, on_done, on_error};
    const char *name = luaL_checkstring(L, 1);
    int api = ph_api_parse(name);
    size_t len;
    const char *bytes = luaL_checklstring(L, 2, &len);
    opts o;
    if (api < 0)
        return luaL_argerror(L, 1, "expected \"ollama\", \"ollama-generate\", \"openai\" or \"llamacpp\"");
    read_opts(L, 3, &o);
    lua_settop(L, 3);                                 /* api bytes opts */
    run *r = lua_newuserdatauv(L, sizeof *r, 0);      /* api bytes opts run */
    memset(r, 0, sizeof *r);
    luaL_setmetatable(L, BOX_META);
    lua_newtable(L);                                  /* api bytes opts run events */
    lua_newtable(L);                                  /* api bytes opts run events feeds */
    r->L = L;
    r->events = 5;
    r->stop_after = o.stop_after;
    r->f = ph_framing_new((ph_api)api, &cbs, r, o.max_line);
    if (!r->f)
        return luaL_error(L, "decode: out of memory");
    feed_all(r, bytes, len, o.piece, 6);
    ph_frame_status st = ph_framing_finish(r->f);
    if (st == PH_FRAME_ERROR && !r->server_error)
        push_error(r, ph_framing_error(r->f), 0);
    lua_pushvalue(L, 5);                              /* ... events */
    lua_pushstring(L, status_name(st));               /* ... events status */
    lua_pushvalue(L, 6);                              /* ... events status feeds */
    return 3;
}

/* Pushes the planhost.framing table. Registers the run metatable on first use. Nothing is
 * owned by the caller beyond the pushed table. */
int ph_lua_framing_open(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"decode", l_decode}, {NULL, NULL}};
    if (luaL_newmetatable(L, BOX_META)) {             /* meta */
        lua_pushcfunction(L, run_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);                                    /* */
    luaL_newlib(L, funcs);                            /* framing */
    return 1;
}
