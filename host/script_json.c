/* script_json — JSON text to Lua values, through the incremental tokenizer (jsonstream).
 *
 * Snapshots reach templates as Lua tables built straight from the tokens: integers stay
 * integers, null is cjson.null (a NULL light userdata), and a malformed text fails with the
 * tokenizer's message and byte offset. The tokenizer handle lives in the generation, not on
 * the C stack, so a Lua error thrown mid-parse (out of memory) leaks nothing: the next use
 * or the generation's release frees it.
 * Part of the script adapter. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonstream.h"
#include "script_internal.h"

#define MAX_DEPTH 64

typedef struct builder {
    lua_State *L;
    int depth;
    lua_Integer next[MAX_DEPTH + 1];  /* next array index per open container; 0 for objects */
} builder;

/* Stores the value at the top into the container below it (or leaves a top-level value). */
static void store(builder *b)
{
    if (b->depth == 0)
        return;
    lua_Integer *n = &b->next[b->depth];
    if (*n > 0)
        lua_rawseti(b->L, -2, (*n)++);   /* array: container value */
    else
        lua_rawset(b->L, -3);            /* object: container key value */
}

static void push_number(lua_State *L, const char *text, size_t len)
{
    char tmp[128];
    if (len < sizeof tmp) {
        memcpy(tmp, text, len);
        tmp[len] = '\0';
        if (lua_stringtonumber(L, tmp) != 0)
            return;
    }
    char *copy = strndup(text, len);     /* a number longer than any double: read as one */
    lua_pushnumber(L, copy ? strtod(copy, NULL) : 0);
    free(copy);
}

static int on_token(void *ctx, const ph_json_token *t)
{
    builder *b = ctx;
    lua_State *L = b->L;
    switch (t->kind) {
    case PH_JSON_BEGIN_OBJECT:
    case PH_JSON_BEGIN_ARRAY:
        lua_newtable(L);
        b->next[++b->depth] = t->kind == PH_JSON_BEGIN_ARRAY ? 1 : 0;
        return 0;
    case PH_JSON_END_OBJECT:
    case PH_JSON_END_ARRAY:
        b->depth--;
        break;
    case PH_JSON_KEY:
        lua_pushlstring(L, t->text, t->len);
        return 0;
    case PH_JSON_STRING:
        lua_pushlstring(L, t->text, t->len);
        break;
    case PH_JSON_NUMBER:
        push_number(L, t->text, t->len);
        break;
    case PH_JSON_TRUE:
    case PH_JSON_FALSE:
        lua_pushboolean(L, t->kind == PH_JSON_TRUE);
        break;
    case PH_JSON_NULL:
        lua_pushlightuserdata(L, NULL);
        break;
    }
    store(b);
    return 0;
}

int ph_sb_push_json(lua_State *L, ph_json **handle, const char *text, size_t len, char *msg, size_t msgsize)
{
    builder b;
    b.L = L;
    b.depth = 0;
    luaL_checkstack(L, 2 * MAX_DEPTH + 8, "JSON nesting");
    int top = lua_gettop(L);
    if (*handle)
        ph_json_free(*handle);     /* per use: the callback's context lives on this stack */
    ph_json_config cfg = {0, MAX_DEPTH, 0};
    *handle = ph_json_new(&cfg, on_token, &b);
    if (!*handle)
        return snprintf(msg, msgsize, "out of memory"), -1;
    size_t used;
    ph_json_status st = ph_json_feed(*handle, text, len, &used);
    if (st == PH_JSON_OK)
        st = ph_json_finish(*handle);
    if (st != PH_JSON_OK) {
        uint64_t off = 0;
        const char *e = ph_json_error(*handle, &off);
        snprintf(msg, msgsize, "invalid JSON at byte %llu: %s", (unsigned long long)off, e ? e : "?");
        lua_settop(L, top);
        return -1;
    }
    return 0;
}

int ph_sb_push_snapshot(lua_State *L, ph_gen *g, const char *text, size_t len, char *msg, size_t msgsize)
{
    if (g->snap_text && g->snap_len == len && memcmp(g->snap_text, text, len) == 0) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, g->snap_ref);
        return 0;
    }
    if (ph_sb_push_json(L, &g->json, text, len, msg, msgsize) != 0)
        return -1;
    ph_sb_freeze(L, -1);
    lua_remove(L, -2);
    char *copy = malloc(len + 1);
    if (!copy)
        return 0;                  /* served, just not kept */
    memcpy(copy, text, len);
    ph_sb_snapshot_free(g);
    g->snap_text = copy;
    g->snap_len = len;
    lua_pushvalue(L, -1);
    g->snap_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

void ph_sb_snapshot_free(ph_gen *g)
{
    if (g->snap_text && g->L)
        luaL_unref(g->L, LUA_REGISTRYINDEX, g->snap_ref);
    free(g->snap_text);
    g->snap_text = NULL;
    g->snap_ref = LUA_NOREF;
    g->snap_len = 0;
}
