/* lua_cache — test-facing Lua binding of the plan cache (cache.h).
 *
 * ph_lua_cache_open pushes a table with
 *
 *     new{entries = N, bytes = N, ttl_ms = N}  -> cache   (every key optional; 0 = default)
 *     entry_bytes(plan [, tier [, source]])   -> the bytes such an entry is charged
 *
 * and a cache has the methods
 *
 *     put(key, plan [, {tier =, source =, generation = hex, now = ms}]) -> "stored" | "replaced"
 *                                             | nil, message, "too_big" | "bad_text" | "no_memory"
 *     get(key [, now])            -> plan, tier, source | nil
 *     remove(key)                 -> true if there was an entry
 *     stats()                     -> {hits =, misses =, puts =, refused =, evictions =,
 *                                     expirations =, removes =, coalesced =, stale =, entries =,
 *                                     bytes =, inflight =, memory =, max_entries =, max_bytes =,
 *                                     ttl_ms =}
 *     keys()                      -> keys, most recently used first
 *     save(path)                  -> true | nil, message, code
 *     load(path, generation [, now]) -> loaded, skipped | nil, message, code, where
 *     inflight_begin(key, id)     -> true when id leads (first), false when it joined
 *     inflight_end(key)           -> {waiting ids in arrival order} | nil, message
 *     count_coalesced(n), count_stale()
 *     close()                     (also __gc and __close)
 *
 * Keys and generations are strings of 1 to 16 hex digits (keys() gives 16, lower case); times
 * are integer milliseconds >= 0, tier and source default to "". Misuse raises (bad types,
 * unknown option keys, a closed cache); expected failures return nil, message. The bindings
 * unit (lua_planhost) exposes the table as planhost.cache. Depends on cache and Lua 5.4. */
#include <inttypes.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "lua_bind.h"

#define CACHE_MT "planhost.cache"

typedef struct lcache {
    ph_cache *c;  /* owned; NULL once closed */
} lcache;

static ph_cache *check_cache(lua_State *L)
{
    lcache *u = luaL_checkudata(L, 1, CACHE_MT);
    if (!u->c)
        luaL_error(L, "cache: the cache is closed");
    return u->c;
}

/* 1 to 16 hex digits, either case: 0, or -1. */
static int parse_hex(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)s[i], lc = ch | 32;
        int d = ch >= '0' && ch <= '9' ? ch - '0' : lc >= 'a' && lc <= 'f' ? lc - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return n >= 1 && n <= 16 ? 0 : -1;
}

static uint64_t check_hex(lua_State *L, int idx)
{
    size_t n;
    const char *s = luaL_checklstring(L, idx, &n);
    uint64_t v = 0;
    if (parse_hex(s, n, &v))
        luaL_argerror(L, idx, "expected 1 to 16 hex digits");
    return v;
}

static void push_hex(lua_State *L, uint64_t v)
{
    char s[17];
    snprintf(s, sizeof s, "%016" PRIx64, v);
    lua_pushstring(L, s);
}

static uint64_t check_count(lua_State *L, int idx)
{
    lua_Integer v = luaL_checkinteger(L, idx);
    luaL_argcheck(L, v >= 0, idx, "expected an integer >= 0");
    return (uint64_t)v;
}

/* Option `name` of the table at idx as an integer >= 0, or dflt when absent. */
static uint64_t opt_count(lua_State *L, int idx, const char *name, uint64_t dflt, const char *fn)
{
    int isnum;
    lua_getfield(L, idx, name);                       /* ... v */
    lua_Integer v = lua_tointegerx(L, -1, &isnum);
    if (!lua_isnil(L, -1) && (!isnum || v < 0))
        luaL_error(L, "%s: option '%s' must be an integer >= 0", fn, name);
    uint64_t out = lua_isnil(L, -1) ? dflt : (uint64_t)v;
    lua_pop(L, 1);                                    /* ... */
    return out;
}

/* Option `name` of the table at idx as a string without NUL bytes, or dflt when absent. The
 * string stays referenced by the table, so the pointer lives as long as the call. */
static const char *opt_text(lua_State *L, int idx, const char *name, const char *dflt, const char *fn)
{
    size_t n;
    lua_getfield(L, idx, name);                       /* ... v */
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
    if (!lua_isnil(L, -1) && (!s || strlen(s) != n))
        luaL_error(L, "%s: option '%s' must be a string without NUL bytes", fn, name);
    lua_pop(L, 1);                                    /* ... */
    return s ? s : dflt;
}

static int l_new(lua_State *L)
{
    static const char *const keys[] = {"entries", "bytes", "ttl_ms", NULL};
    ph_cache_config cfg = {0};
    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TTABLE);
        ph_lua_check_keys(L, 1, keys, "cache.new");
        cfg.max_entries = (size_t)opt_count(L, 1, "entries", 0, "cache.new");
        cfg.max_bytes = (size_t)opt_count(L, 1, "bytes", 0, "cache.new");
        cfg.ttl_ms = opt_count(L, 1, "ttl_ms", 0, "cache.new");
    }
    lcache *u = lua_newuserdatauv(L, sizeof *u, 0);  /* ... u */
    u->c = NULL;
    luaL_setmetatable(L, CACHE_MT);
    u->c = ph_cache_new(&cfg);
    if (!u->c)
        return luaL_error(L, "cache.new: out of memory");
    return 1;
}

static int l_entry_bytes(lua_State *L)
{
    size_t p, t = 0, s = 0;
    luaL_checklstring(L, 1, &p);
    luaL_optlstring(L, 2, "", &t);
    luaL_optlstring(L, 3, "", &s);
    lua_pushinteger(L, (lua_Integer)ph_cache_entry_bytes(p, t, s));
    return 1;
}

static int l_put(lua_State *L)
{
    static const char *const keys[] = {"tier", "source", "generation", "now", NULL};
    ph_cache *c = check_cache(L);
    uint64_t key = check_hex(L, 2), gen = 0, now = 0;
    size_t len;
    const char *plan = luaL_checklstring(L, 3, &len), *tier = "", *source = "";
    if (!lua_isnoneornil(L, 4)) {
        luaL_checktype(L, 4, LUA_TTABLE);
        ph_lua_check_keys(L, 4, keys, "cache:put");
        tier = opt_text(L, 4, "tier", "", "cache:put");
        source = opt_text(L, 4, "source", "", "cache:put");
        const char *g = opt_text(L, 4, "generation", NULL, "cache:put");
        if (g && parse_hex(g, strlen(g), &gen))
            luaL_error(L, "cache:put: option 'generation' must be 1 to 16 hex digits");
        now = opt_count(L, 4, "now", 0, "cache:put");
    }
    ph_cache_result r = ph_cache_put(c, key, gen, plan, len, tier, source, now);
    if (r == PH_CACHE_STORED || r == PH_CACHE_REPLACED) {
        lua_pushstring(L, ph_cache_result_name(r));
        return 1;
    }
    ph_cache_stats st;
    ph_cache_stats_get(c, &st);
    luaL_pushfail(L);
    if (r == PH_CACHE_TOO_BIG)
        lua_pushfstring(L, "cache:put: an entry of %I bytes is bigger than the byte cap (%I)",
                        (lua_Integer)ph_cache_entry_bytes(len, strlen(tier), strlen(source)),
                        (lua_Integer)st.max_bytes);
    else
        lua_pushstring(L, r == PH_CACHE_BAD_TEXT
                              ? "cache:put: tier or source longer than 255 bytes, or text not UTF-8"
                              : "cache:put: out of memory");
    lua_pushstring(L, ph_cache_result_name(r));
    return 3;
}

static int l_get(lua_State *L)
{
    ph_cache *c = check_cache(L);
    uint64_t key = check_hex(L, 2);
    uint64_t now = lua_isnoneornil(L, 3) ? 0 : check_count(L, 3);
    ph_cache_value v;
    if (!ph_cache_get(c, key, now, &v)) {
        luaL_pushfail(L);
        return 1;
    }
    lua_pushlstring(L, v.plan, v.plan_len);
    lua_pushstring(L, v.tier);
    lua_pushstring(L, v.source);
    return 3;
}

static int l_remove(lua_State *L)
{
    ph_cache *c = check_cache(L);
    lua_pushboolean(L, ph_cache_remove(c, check_hex(L, 2)));
    return 1;
}

static void set_int(lua_State *L, const char *name, uint64_t v)
{
    lua_pushinteger(L, (lua_Integer)v);
    lua_setfield(L, -2, name);
}

static int l_stats(lua_State *L)
{
    ph_cache_stats s;
    ph_cache_stats_get(check_cache(L), &s);
    lua_createtable(L, 0, 16);                        /* ... t */
    set_int(L, "hits", s.hits), set_int(L, "misses", s.misses);
    set_int(L, "puts", s.puts), set_int(L, "refused", s.refused);
    set_int(L, "evictions", s.evictions), set_int(L, "expirations", s.expirations);
    set_int(L, "removes", s.removes), set_int(L, "coalesced", s.coalesced);
    set_int(L, "stale", s.stale), set_int(L, "entries", s.entries);
    set_int(L, "bytes", s.bytes), set_int(L, "inflight", s.inflight);
    set_int(L, "memory", s.memory), set_int(L, "max_entries", s.max_entries);
    set_int(L, "max_bytes", s.max_bytes), set_int(L, "ttl_ms", s.ttl_ms);
    return 1;
}

static int push_key(void *ctx, uint64_t key, const ph_cache_value *v)
{
    (void)v;
    lua_State *L = ctx;                               /* ... t */
    push_hex(L, key);                                 /* ... t key */
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    return 0;
}

static int l_keys(lua_State *L)
{
    ph_cache *c = check_cache(L);
    ph_cache_stats s;
    ph_cache_stats_get(c, &s);
    lua_createtable(L, (int)s.entries, 0);
    ph_cache_each(c, 0, push_key, L);
    return 1;
}

/* nil, message, code [, where] */
static int push_error(lua_State *L, const ph_error *err, int with_where)
{
    luaL_pushfail(L);
    lua_pushstring(L, err->message);
    lua_pushstring(L, ph_code_name(err->code));
    if (with_where)
        lua_pushstring(L, err->where);
    return 3 + with_where;
}

static int l_save(lua_State *L)
{
    ph_cache *c = check_cache(L);
    ph_error err;
    if (ph_cache_save(c, luaL_checkstring(L, 2), &err))
        return push_error(L, &err, 0);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_load(lua_State *L)
{
    ph_cache *c = check_cache(L);
    const char *path = luaL_checkstring(L, 2);
    uint64_t gen = check_hex(L, 3);
    uint64_t now = lua_isnoneornil(L, 4) ? 0 : check_count(L, 4);
    size_t loaded, skipped;
    ph_error err;
    if (ph_cache_load(c, path, gen, now, &loaded, &skipped, &err))
        return push_error(L, &err, 1);
    lua_pushinteger(L, (lua_Integer)loaded);
    lua_pushinteger(L, (lua_Integer)skipped);
    return 2;
}

static int l_inflight_begin(lua_State *L)
{
    ph_cache *c = check_cache(L);
    int r = ph_cache_inflight_begin(c, check_hex(L, 2), (uint64_t)luaL_checkinteger(L, 3));
    if (r < 0)
        return luaL_error(L, "cache:inflight_begin: out of memory");
    lua_pushboolean(L, r == 0);
    return 1;
}

static int l_inflight_end(lua_State *L)
{
    ph_cache *c = check_cache(L);
    uint64_t *ids;
    size_t n;
    if (ph_cache_inflight_end(c, check_hex(L, 2), &ids, &n)) {
        luaL_pushfail(L);
        lua_pushliteral(L, "cache:inflight_end: the key is not in flight");
        return 2;
    }
    lua_createtable(L, (int)n, 0);                    /* ... ids */
    for (size_t i = 0; i < n; i++) {
        lua_pushinteger(L, (lua_Integer)ids[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    free(ids);
    return 1;
}

static int l_count_coalesced(lua_State *L)
{
    ph_cache *c = check_cache(L);
    ph_cache_count_coalesced(c, check_count(L, 2));
    return 0;
}

static int l_count_stale(lua_State *L)
{
    ph_cache_count_stale(check_cache(L));
    return 0;
}

static int l_close(lua_State *L)
{
    lcache *u = luaL_checkudata(L, 1, CACHE_MT);
    ph_cache_free(u->c);
    u->c = NULL;
    return 0;
}

static const luaL_Reg cache_methods[] = {
    {"put", l_put}, {"get", l_get}, {"remove", l_remove}, {"stats", l_stats}, {"keys", l_keys},
    {"save", l_save}, {"load", l_load}, {"inflight_begin", l_inflight_begin},
    {"inflight_end", l_inflight_end}, {"count_coalesced", l_count_coalesced},
    {"count_stale", l_count_stale}, {"close", l_close}, {NULL, NULL},
};

static const luaL_Reg cache_meta[] = {{"__gc", l_close}, {"__close", l_close}, {NULL, NULL}};

static const luaL_Reg cache_funcs[] = {{"new", l_new}, {"entry_bytes", l_entry_bytes}, {NULL, NULL}};

int ph_lua_cache_open(lua_State *L)
{
    if (luaL_newmetatable(L, CACHE_MT)) {             /* mt */
        luaL_setfuncs(L, cache_meta, 0);
        luaL_newlib(L, cache_methods);                /* mt methods */
        lua_setfield(L, -2, "__index");               /* mt */
    }
    lua_pop(L, 1);
    luaL_newlib(L, cache_funcs);                      /* funcs */
    return 1;
}
