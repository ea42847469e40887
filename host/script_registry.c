/* script_registry — compiles lua/tools.lua into the C registry (registry.h).
 *
 * Strict: unknown keys, unknown types, upper-case enum values, duplicate names and subsets
 * naming unknown tools are errors that name the entry, so a typo in the registry fails the
 * reload instead of reaching the validator. Raw table access only. Part of the script
 * adapter. */
#include <stdlib.h>
#include <string.h>

#include "script_internal.h"

static const char *const TOP_KEYS[] = {"tools", "subsets", "by_name", NULL};
static const char *const TOOL_KEYS[] = {"name", "group", "cooldown", "desc", "params", NULL};
static const char *const PARAM_KEYS[] = {"name", "type", "optional", "values", "min_items", "of", NULL};
static const char *const OF_NAMES[] = {"enemy", "player", "self", "ally", "any", NULL};

/* Pushes raw field `key` of the table at `idx`, unwrapped; returns its type. */
static int get_field(lua_State *L, int idx, const char *key)
{
    lua_getfield(L, idx, key);   /* idx is a raw table: no metamethods in play */
    ph_sb_unwrap(L, -1);
    lua_remove(L, -2);
    return lua_type(L, -1);
}

static int get_index(lua_State *L, int idx, lua_Integer i)
{
    lua_rawgeti(L, idx, i);
    ph_sb_unwrap(L, -1);
    lua_remove(L, -2);
    return lua_type(L, -1);
}

/* calloc that raises instead of returning NULL. */
static void *xcalloc(lua_State *L, size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        luaL_error(L, "out of memory compiling the registry");
    return p;
}

static char *dup_field(lua_State *L, int idx, const char *key, int required, const char *what)
{
    int t = get_field(L, idx, key);
    char *s = NULL;
    if (t == LUA_TSTRING)
        s = strdup(lua_tostring(L, -1));
    else if (t != LUA_TNIL || required)
        luaL_error(L, "%s: '%s' must be a string", what, key);
    lua_pop(L, 1);
    return s;
}

static void compile_values(lua_State *L, int idx, ph_param *p, const char *what)
{
    if (get_field(L, idx, "values") != LUA_TTABLE)
        luaL_error(L, "%s: an enum needs a 'values' list", what);
    int n = (int)lua_rawlen(L, -1);
    if (n == 0)
        luaL_error(L, "%s: 'values' is empty", what);
    p->values = xcalloc(L, (size_t)n, sizeof *p->values);
    for (int i = 1; i <= n; i++) {
        if (get_index(L, -1, i) != LUA_TSTRING)
            luaL_error(L, "%s: values[%d] must be a string", what, i);
        const char *v = lua_tostring(L, -1);
        for (const char *c = v; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                luaL_error(L, "%s: enum value '%s' must be lowercase", what, v);
        p->values[p->nvalues++] = strdup(v);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static unsigned compile_of(lua_State *L, int idx, const char *what)
{
    if (get_field(L, idx, "of") == LUA_TNIL) {
        lua_pop(L, 1);
        return PH_OF_ENEMY;
    }
    if (!lua_istable(L, -1))
        luaL_error(L, "%s: 'of' must be a list", what);
    unsigned mask = 0;
    for (int i = 1; get_index(L, -1, i) != LUA_TNIL; i++) {
        int k = 0;
        while (OF_NAMES[k] && (!lua_isstring(L, -1) || strcmp(OF_NAMES[k], lua_tostring(L, -1)) != 0))
            k++;
        if (!OF_NAMES[k])
            luaL_error(L, "%s: 'of' entry %d is not one of enemy, player, self, ally, any", what, i);
        mask |= 1u << k;
        lua_pop(L, 1);
    }
    lua_pop(L, 2);
    return mask ? mask : PH_OF_ENEMY;
}

static void compile_param(lua_State *L, int idx, ph_param *p, const char *tool, int pi)
{
    char what[256];
    snprintf(what, sizeof what, "tool %s, parameter %d", tool, pi);
    ph_sb_check_keys(L, idx, PARAM_KEYS, what);
    p->name = dup_field(L, idx, "name", 1, what);
    snprintf(what, sizeof what, "tool %s, parameter '%s'", tool, p->name);
    char *type = dup_field(L, idx, "type", 1, what);
    int t = ph_ptype_parse(type);
    if (t < 0) {
        lua_pushstring(L, type);
        free(type);
        luaL_error(L, "%s: unknown type '%s' (known: int, uint, float, string, entity, position, "
                      "positions, enum)", what, lua_tostring(L, -1));
    }
    free(type);
    p->type = (ph_ptype)t;
    p->optional = get_field(L, idx, "optional") == LUA_TBOOLEAN && lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (get_field(L, idx, "min_items") == LUA_TNUMBER)
        p->min_items = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (p->type == PH_T_ENUM)
        compile_values(L, idx, p, what);
    if (p->type == PH_T_ENTITY)
        p->of = compile_of(L, idx, what);
}

static void compile_tool(lua_State *L, int idx, ph_tool *t, int i)
{
    char what[128];
    snprintf(what, sizeof what, "tools[%d]", i);
    ph_sb_check_keys(L, idx, TOOL_KEYS, what);
    t->name = dup_field(L, idx, "name", 1, what);
    snprintf(what, sizeof what, "tool %s", t->name);
    t->group = dup_field(L, idx, "group", 1, what);
    t->desc = dup_field(L, idx, "desc", 0, what);
    if (get_field(L, idx, "cooldown") == LUA_TNUMBER)
        t->cooldown = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (get_field(L, idx, "params") != LUA_TTABLE)
        luaL_error(L, "%s: 'params' must be a list (empty for none)", what);
    int n = (int)lua_rawlen(L, -1);
    t->params = xcalloc(L, (size_t)n, sizeof *t->params);
    for (int p = 1; p <= n; p++) {
        if (get_index(L, -1, p) != LUA_TTABLE)
            luaL_error(L, "%s: params[%d] must be a table", what, p);
        t->nparams++;
        compile_param(L, lua_gettop(L), &t->params[p - 1], t->name, p);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static void compile_subset(lua_State *L, ph_registry *r, ph_subset *s)
{
    int n = (int)lua_rawlen(L, -1);
    s->tools = xcalloc(L, (size_t)n, sizeof *s->tools);
    for (int i = 1; i <= n; i++) {
        if (get_index(L, -1, i) != LUA_TSTRING)
            luaL_error(L, "subset %s: entry %d must be a tool name", s->name, i);
        int k = ph_registry_find(r, lua_tostring(L, -1));
        if (k < 0)
            luaL_error(L, "subset %s: unknown tool '%s'", s->name, lua_tostring(L, -1));
        s->tools[s->ntools++] = k;
        lua_pop(L, 1);
    }
}

static void compile_subsets(lua_State *L, int idx, ph_registry *r)
{
    if (get_field(L, idx, "subsets") == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    luaL_checktype(L, -1, LUA_TTABLE);
    int n = 0;
    for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1))
        n++;
    r->subsets = xcalloc(L, (size_t)n, sizeof *r->subsets);
    for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "subsets: keys must be subset names");
        ph_sb_unwrap(L, -1);
        if (!lua_istable(L, -1))
            luaL_error(L, "subset %s: must be a list of tool names", lua_tostring(L, -3));
        ph_subset *s = &r->subsets[r->nsubsets++];
        s->name = strdup(lua_tostring(L, -3));
        compile_subset(L, r, s);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

void ph_registry_compile(lua_State *L, int idx, ph_registry *r)
{
    ph_sb_unwrap(L, idx);
    int top = lua_gettop(L);
    if (!lua_istable(L, top))
        luaL_error(L, "the registry module must return a table");
    ph_sb_check_keys(L, top, TOP_KEYS, "registry");
    if (get_field(L, top, "tools") != LUA_TTABLE)
        luaL_error(L, "registry: 'tools' must be a list");
    int n = (int)lua_rawlen(L, -1);
    if (n == 0)
        luaL_error(L, "registry: 'tools' is empty");
    r->tools = xcalloc(L, (size_t)n, sizeof *r->tools);
    for (int i = 1; i <= n; i++) {
        if (get_index(L, -1, i) != LUA_TTABLE)
            luaL_error(L, "tools[%d] must be a table", i);
        r->ntools++;
        compile_tool(L, lua_gettop(L), &r->tools[i - 1], i);
        lua_pop(L, 1);
        if (ph_registry_find(r, r->tools[i - 1].name) != i - 1)
            luaL_error(L, "tool %s is defined twice", r->tools[i - 1].name);
    }
    lua_pop(L, 1);
    compile_subsets(L, top, r);
    lua_settop(L, top - 1);
}
