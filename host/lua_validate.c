/* lua_validate — test-facing Lua binding of the validator (validate.h, snapview.h).
 *
 * ph_lua_validate_push compiles the snapshot, validates the steps array against it and
 * pushes { kept = "<json array>", nkept = N, dropped = { {index =, reason =}, ... } }, with
 * `index` counted from 0 as in plan events. Expected failures (a malformed snapshot or steps
 * array) push nil, message. Misuse raises: an unknown limit key, a limit of the wrong type
 * or range. Everything C allocates lives in a userdata with __gc, so an error raised half-way
 * (out of memory in Lua) leaks nothing; drops are gathered in C and pushed after validation,
 * so no Lua error can unwind through the validator. The lead's bindings (lua_planhost)
 * expose it as host:validate. Depends on validate, snapview and the Lua 5.4 C API. */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "buf.h"
#include "validate.h"

#define BOX_META "planhost.validate.run"
#define OUT_CAP (4u << 20)     /* bytes of kept steps, and of drop records */

typedef struct box {
    ph_snapview *view;
    ph_buf kept, drops;        /* drops: records of int index, then the reason and a NUL */
} box;

static void box_free(box *b)
{
    ph_snapview_free(b->view);
    b->view = NULL;
    ph_buf_free(&b->kept);
    ph_buf_free(&b->drops);
}

static int box_gc(lua_State *L)
{
    box_free(luaL_checkudata(L, 1, BOX_META));
    return 0;
}

/* ---- limits -------------------------------------------------------------------------- */

typedef struct limit_key {
    const char *name;
    size_t off;
    int is_int;
} limit_key;

static const limit_key LIMIT_KEYS[] = {
    {"min_x", offsetof(ph_validate_limits, min_x), 1},
    {"min_y", offsetof(ph_validate_limits, min_y), 1},
    {"max_x", offsetof(ph_validate_limits, max_x), 1},
    {"max_y", offsetof(ph_validate_limits, max_y), 1},
    {"max_duration", offsetof(ph_validate_limits, max_duration), 0},
    {"max_radius", offsetof(ph_validate_limits, max_radius), 0},
    {"max_distance", offsetof(ph_validate_limits, max_distance), 0},
    {"max_steps", offsetof(ph_validate_limits, max_steps), 1},
    {NULL, 0, 0},
};

/* Sets one limit from the value on top of the stack; raises on a bad value. */
static void set_limit(lua_State *L, const limit_key *k, ph_validate_limits *lim)
{
    int ok;
    char *at = (char *)lim + k->off;
    if (k->is_int) {
        lua_Integer v = lua_tointegerx(L, -1, &ok);
        int positive = strcmp(k->name, "max_steps") == 0;
        if (!ok || v < (positive ? 1 : -2147483647 - 1) || v > 2147483647)
            luaL_error(L, "validate: limit '%s' must be %s", k->name,
                       positive ? "a positive integer" : "a 32-bit integer");
        int iv = (int)v;
        memcpy(at, &iv, sizeof iv);
    } else {
        lua_Number v = lua_tonumberx(L, -1, &ok);
        if (!ok || !(v > 0) || !isfinite(v))
            luaL_error(L, "validate: limit '%s' must be a positive number", k->name);
        double dv = (double)v;
        memcpy(at, &dv, sizeof dv);
    }
}

/* Reads the overrides in the table at `idx` into lim; raises on unknown keys. */
static void read_limits(lua_State *L, int idx, ph_validate_limits *lim)
{
    idx = lua_absindex(L, idx);
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushnil(L);                                       /* ... nil */
    while (lua_next(L, idx)) {                            /* ... key value */
        const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        const limit_key *k = LIMIT_KEYS;
        while (name && k->name && strcmp(k->name, name) != 0)
            k++;
        if (!name || !k->name)
            luaL_error(L, "validate: unknown limit '%s'", name ? name : luaL_typename(L, -2));
        set_limit(L, k, lim);
        lua_pop(L, 1);                                    /* ... key */
    }
    if (lim->min_x > lim->max_x || lim->min_y > lim->max_y)
        luaL_error(L, "validate: limits: min_x/min_y must not exceed max_x/max_y");
}

/* ---- results ------------------------------------------------------------------------- */

static void on_drop(void *ud, int index, const char *reason)
{
    box *b = ud;
    ph_buf_add(&b->drops, &index, sizeof index);
    ph_buf_add(&b->drops, reason, strlen(reason) + 1);
}

/* Pushes the dropped steps recorded in b->drops as a list of {index, reason}. */
static void push_drops(lua_State *L, const box *b)
{
    lua_newtable(L);                                      /* ... dropped */
    for (size_t at = 0, n = 1; at < b->drops.len; n++) {
        int index;
        memcpy(&index, b->drops.data + at, sizeof index);
        const char *reason = b->drops.data + at + sizeof index;
        at += sizeof index + strlen(reason) + 1;
        lua_createtable(L, 0, 2);                         /* ... dropped d */
        lua_pushinteger(L, index);
        lua_setfield(L, -2, "index");
        lua_pushstring(L, reason);
        lua_setfield(L, -2, "reason");
        lua_rawseti(L, -2, (lua_Integer)n);               /* ... dropped */
    }
}

static box *new_box(lua_State *L)
{
    box *b = lua_newuserdatauv(L, sizeof *b, 0);          /* ... box */
    b->view = NULL;
    ph_buf_init(&b->kept, OUT_CAP);
    ph_buf_init(&b->drops, OUT_CAP);
    if (luaL_newmetatable(L, BOX_META)) {                 /* ... box mt */
        lua_pushcfunction(L, box_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);                              /* ... box */
    return b;
}

int ph_lua_validate_push(lua_State *L, const ph_registry *r, const int *tools, int ntools,
                         const char *steps_json, size_t steps_len, const char *snapshot_json,
                         size_t snapshot_len, int limits_idx)
{
    ph_validate_limits lim = ph_validate_limits_default();
    ph_error err;
    if (limits_idx)
        read_limits(L, limits_idx, &lim);
    box *b = new_box(L);                                  /* ... box */
    b->view = ph_snapview_new(snapshot_json, snapshot_len, &err);
    int n = !b->view ? -1 : ph_validate_plan(r, tools, ntools, b->view, &lim, steps_json,
                                             steps_len, &b->kept, on_drop, b, &err);
    if (n < 0) {
        box_free(b);
        luaL_pushfail(L);                                 /* ... box nil */
        lua_pushstring(L, err.message);                   /* ... box nil msg */
        return 2;
    }
    if (b->drops.failed)
        luaL_error(L, "validate: out of memory");
    lua_createtable(L, 0, 3);                             /* ... box res */
    lua_pushlstring(L, b->kept.data, b->kept.len);
    lua_setfield(L, -2, "kept");
    lua_pushinteger(L, n);
    lua_setfield(L, -2, "nkept");
    push_drops(L, b);                                     /* ... box res dropped */
    lua_setfield(L, -2, "dropped");                       /* ... box res */
    box_free(b);
    return 1;
}
