/* script_tmpl — reads policies/NAME.lua and prompts/NAME.lua into a generation.
 *
 * Policies: each file returns a table, kept by base name for the hooks later units resolve;
 * policies/sandbox.lua sets the budgets. Templates: each file returns a template table
 * (DESIGN.md, "Lua side"); keys, types, tool names and model options are checked here, and
 * the static system part is rendered once and kept as a C string. Everything that touches
 * script values runs inside ph_sb_call. Part of the script adapter. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "script_internal.h"

static const char *const TEMPLATE_KEYS[] = {
    "name", "description", "tools", "system", "user", "options", "schema", "batch", NULL,
};
static const char *const OPTION_KEYS[] = {
    "temperature", "top_p", "top_k", "seed", "num_predict", "num_ctx", "stop", NULL,
};
static const char *const SANDBOX_KEYS[] = {"instructions", "memory_mb", NULL};

#define MAX_STOP 8

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* "policies/sandbox.lua" -> "sandbox" in `out`. */
static void base_name(const char *path, char *out, size_t size)
{
    const char *slash = strrchr(path, '/');
    const char *b = slash ? slash + 1 : path;
    size_t n = strlen(b) - 4;   /* tree only lists *.lua */
    snprintf(out, size, "%.*s", (int)(n < size ? n : size - 1), b);
}

/* Pushes raw field `key` of table `idx`, unwrapped from any read-only view. */
int ph_sb_field(lua_State *L, int idx, const char *key)
{
    lua_getfield(L, idx, key);
    ph_sb_unwrap(L, -1);
    lua_remove(L, -2);
    return lua_type(L, -1);
}

int ph_sb_run_policy(ph_gen *g, const char *name, lua_CFunction trampoline, const char *file, ph_error *err)
{
    lua_State *L = g->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, g->policies_ref);
    if (lua_getfield(L, -1, name) == LUA_TNIL) {
        lua_pop(L, 2);
        return 0;
    }
    lua_remove(L, -2);
    lua_pushcfunction(L, trampoline);
    lua_insert(L, -2);
    return ph_sb_call(g, 1, 0, file, err) == 0 ? 1 : -1;
}

/* ---- policies ------------------------------------------------------------------------ */

static double number_in(lua_State *L, int idx, const char *key, double lo, double hi, const char *file)
{
    int t = ph_sb_field(L, idx, key);
    double v = NAN;
    if (t == LUA_TNUMBER)
        v = lua_tonumber(L, -1);
    else if (t != LUA_TNIL)
        luaL_error(L, "%s: '%s' must be a number", file, key);
    if (t != LUA_TNIL && !(v >= lo && v <= hi))
        ph_sb_raisef(L, "%s: '%s' = %g is out of range [%g, %g]", file, key, v, lo, hi);
    lua_pop(L, 1);
    return v;
}

/* Stack: policy table. Applies policies/sandbox.lua. */
static int sandbox_trampoline(lua_State *L)
{
    ph_gen *g = ph_sb_gen(L);
    const char *file = "policies/sandbox.lua";
    ph_sb_check_keys(L, 1, SANDBOX_KEYS, file);
    double ins = number_in(L, 1, "instructions", 1e4, 1e10, file);
    double mb = number_in(L, 1, "memory_mb", 1, 4096, file);
    if (!isnan(ins))
        g->limits.instructions = (long)ins;
    if (!isnan(mb))
        g->limits.memory = (size_t)(mb * 1048576.0);
    if (g->mem_used > g->limits.memory)
        ph_sb_raisef(L, "%s: memory_mb %g is below what the scripts already use", file, mb);
    return 0;
}

static int load_policy(ph_gen *g, const ph_file *f, ph_error *err)
{
    lua_State *L = g->L;
    char name[128];
    if (ph_sb_load(g, f->text, f->len, f->path, err) != 0 || ph_sb_call(g, 0, 1, f->path, err) != 0)
        return -1;
    if (!lua_istable(L, -1)) {
        ph_error_set(err, PH_ERR_CONTRACT, "%s: a policy file must return a table, not %s",
                     f->path, luaL_typename(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    base_name(f->path, name, sizeof name);
    if (strcmp(name, "sandbox") == 0) {
        lua_pushcfunction(L, sandbox_trampoline);
        lua_pushvalue(L, -2);
        if (ph_sb_call(g, 1, 0, f->path, err) != 0) {
            lua_pop(L, 1);
            return -1;
        }
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, g->policies_ref);
    lua_insert(L, -2);
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
    return 0;
}

int ph_policies_load(ph_gen *g, ph_error *err)
{
    lua_newtable(g->L);
    g->policies_ref = luaL_ref(g->L, LUA_REGISTRYINDEX);
    for (int i = 0; i < g->tree.nfiles; i++)
        if (starts_with(g->tree.files[i].path, "policies/") && load_policy(g, &g->tree.files[i], err) != 0)
            return -1;
    return 0;
}

/* ---- templates ----------------------------------------------------------------------- */

void ph_read_model_options(lua_State *L, int idx, ph_model_options *o, const char *where)
{
    o->temperature = o->top_p = NAN;
    o->top_k = o->seed = o->num_predict = o->num_ctx = -1;
    if (ph_sb_field(L, idx, "options") == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    if (!lua_istable(L, -1))
        luaL_error(L, "%s: 'options' must be a table", where);
    int op = lua_gettop(L);
    char what[256];
    snprintf(what, sizeof what, "%s: options", where);
    ph_sb_check_keys(L, op, OPTION_KEYS, what);
    o->temperature = number_in(L, op, "temperature", 0, 2, what);
    o->top_p = number_in(L, op, "top_p", 0, 1, what);
    double v;
    if (!isnan(v = number_in(L, op, "top_k", 0, 1e6, what))) o->top_k = (long)v;
    if (!isnan(v = number_in(L, op, "seed", 0, 4294967295.0, what))) o->seed = (long)v;
    if (!isnan(v = number_in(L, op, "num_predict", 1, 1e6, what))) o->num_predict = (long)v;
    if (!isnan(v = number_in(L, op, "num_ctx", 64, 1e7, what))) o->num_ctx = (long)v;
    if (ph_sb_field(L, op, "stop") == LUA_TTABLE) {
        int n = (int)lua_rawlen(L, -1);
        if (n > MAX_STOP)
            luaL_error(L, "%s: at most %d stop strings", what, MAX_STOP);
        o->stop = calloc((size_t)(n ? n : 1), sizeof *o->stop);
        for (int i = 1; i <= n && o->stop; i++) {
            lua_rawgeti(L, -1, i);
            if (lua_type(L, -1) != LUA_TSTRING)
                luaL_error(L, "%s: stop[%d] must be a string", what, i);
            o->stop[o->nstop++] = strdup(lua_tostring(L, -1));
            lua_pop(L, 1);
        }
    } else if (!lua_isnil(L, -1)) {
        luaL_error(L, "%s: 'stop' must be a list of strings", what);
    }
    lua_pop(L, 2);
}

static void read_tools(lua_State *L, int idx, ph_gen *g, ph_template *t)
{
    if (ph_sb_field(L, idx, "tools") != LUA_TTABLE)
        luaL_error(L, "%s: 'tools' must be a list of tool names", t->file);
    int n = (int)lua_rawlen(L, -1);
    if (n == 0)
        luaL_error(L, "%s: 'tools' is empty", t->file);
    t->tools = calloc((size_t)n, sizeof *t->tools);
    if (!t->tools)
        luaL_error(L, "out of memory");
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        const char *name = lua_tostring(L, -1);
        int k = lua_type(L, -1) == LUA_TSTRING ? ph_registry_find(g->registry, name) : -1;
        if (k < 0)
            luaL_error(L, "%s: tools[%d] is not a tool of the registry ('%s')", t->file, i,
                       name ? name : luaL_typename(L, -1));
        for (int j = 0; j < t->ntools; j++)
            if (t->tools[j] == k)
                luaL_error(L, "%s: tool '%s' is listed twice", t->file, name);
        t->tools[t->ntools++] = k;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static int read_flag(lua_State *L, int idx, const char *key, const char *file)
{
    int ty = ph_sb_field(L, idx, key);
    if (ty != LUA_TNIL && ty != LUA_TBOOLEAN)
        luaL_error(L, "%s: '%s' must be true or false", file, key);
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* Pushes ctx = read-only {template = name, tools = {registry records of the subset}}. */
static void push_ctx(lua_State *L, ph_gen *g, const ph_template *t)
{
    lua_createtable(L, 0, 2);
    lua_pushstring(L, t->name);
    lua_setfield(L, -2, "template");
    lua_rawgeti(L, LUA_REGISTRYINDEX, g->tools_ref);
    ph_sb_unwrap(L, -1);
    lua_getfield(L, -1, "tools");            /* ctx mod raw tools */
    lua_createtable(L, t->ntools, 0);
    for (int i = 0; i < t->ntools; i++) {
        lua_rawgeti(L, -2, t->tools[i] + 1);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -5, "tools");
    lua_pop(L, 3);
    ph_sb_freeze(L, -1);
    lua_remove(L, -2);
}

/* Renders the static part: system may be a string or a function of ctx. */
static void render_system(lua_State *L, int idx, ph_template *t)
{
    int ty = ph_sb_field(L, idx, "system");
    if (ty == LUA_TFUNCTION) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, t->ctx_ref);
        lua_call(L, 1, 1);
    } else if (ty != LUA_TSTRING) {
        luaL_error(L, "%s: 'system' must be a function or a string", t->file);
    }
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "%s: system() must return a string, not %s", t->file, luaL_typename(L, -1));
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    if (len > PH_MAX_PROMPT)
        luaL_error(L, "%s: system() returned %d bytes (limit %d)", t->file, (int)len, (int)PH_MAX_PROMPT);
    t->system = malloc(len + 1);
    if (!t->system)
        luaL_error(L, "out of memory");
    memcpy(t->system, s, len + 1);
    t->system_len = len;
    lua_pop(L, 1);
}

/* Stack: template table, lightuserdata ph_template (already named and in g->templates). */
static int template_trampoline(lua_State *L)
{
    ph_gen *g = ph_sb_gen(L);
    ph_template *t = lua_touserdata(L, 2);
    if (!lua_istable(L, 1))
        luaL_error(L, "%s: a template file must return a table, not %s", t->file, luaL_typename(L, 1));
    ph_sb_check_keys(L, 1, TEMPLATE_KEYS, t->file);
    if (ph_sb_field(L, 1, "name") != LUA_TNIL &&
        (lua_type(L, -1) != LUA_TSTRING || strcmp(lua_tostring(L, -1), t->name) != 0))
        luaL_error(L, "%s: 'name' must be \"%s\", the file's name", t->file, t->name);
    lua_pop(L, 1);
    read_tools(L, 1, g, t);
    ph_read_model_options(L, 1, &t->options, t->file);
    t->schema = read_flag(L, 1, "schema", t->file);
    t->batch = read_flag(L, 1, "batch", t->file);
    if (ph_sb_field(L, 1, "user") != LUA_TFUNCTION)
        luaL_error(L, "%s: 'user' must be a function (snapshot, ctx) -> string", t->file);
    t->user_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    push_ctx(L, g, t);
    t->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    render_system(L, 1, t);
    return 0;
}

static int load_template(ph_gen *g, const ph_file *f, ph_error *err)
{
    lua_State *L = g->L;
    ph_template *t = &g->templates[g->ntemplates++];
    char name[128];
    base_name(f->path, name, sizeof name);
    t->name = strdup(name);
    t->file = strdup(f->path);
    t->user_ref = t->ctx_ref = LUA_NOREF;
    if (ph_sb_load(g, f->text, f->len, f->path, err) != 0 || ph_sb_call(g, 0, 1, f->path, err) != 0)
        return -1;
    lua_pushcfunction(L, template_trampoline);
    lua_insert(L, -2);
    lua_pushlightuserdata(L, t);
    return ph_sb_call(g, 2, 0, f->path, err);
}

int ph_templates_load(ph_gen *g, ph_error *err)
{
    int n = 0;
    for (int i = 0; i < g->tree.nfiles; i++)
        n += starts_with(g->tree.files[i].path, "prompts/");
    if (n == 0)
        return ph_error_set(err, PH_ERR_NOTFOUND, "prompts/: no template files");
    g->templates = calloc((size_t)n, sizeof *g->templates);
    if (!g->templates)
        return ph_error_set(err, PH_ERR_MEMORY, "out of memory");
    for (int i = 0; i < g->tree.nfiles; i++)
        if (starts_with(g->tree.files[i].path, "prompts/") && load_template(g, &g->tree.files[i], err) != 0)
            return -1;
    return 0;
}

void ph_templates_free(ph_gen *g)
{
    for (int i = 0; i < g->ntemplates; i++) {
        ph_template *t = &g->templates[i];
        for (int s = 0; s < t->options.nstop; s++)
            free(t->options.stop[s]);
        free(t->options.stop);
        free(t->name);
        free(t->file);
        free(t->system);
        free(t->tools);
    }
    free(g->templates);
    g->templates = NULL;
    g->ntemplates = 0;
}
